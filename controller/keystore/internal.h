/* internal.h - what the keystore's files share: the handle, the wire, layout helpers. */
#ifndef KR_KEYSTORE_INTERNAL_H
#define KR_KEYSTORE_INTERNAL_H

#include <string.h>

#include <hiredis/hiredis.h>

#include "keystore/keystore.h"

/*
 * Bounds on what a server may send (issue 18), checked as bytes arrive, before hiredis
 * sees them: our replies are tiny (a SCAN page of COUNT 500 names is tens of KiB), so a
 * reply past KR_KS_REPLY_MAX_BYTES, a bulk string announcing more, an array announcing
 * more than KR_KS_REPLY_MAX_ELEMENTS elements in all, or nesting past KR_KS_REPLY_MAX_DEPTH
 * (hiredis 0.14's own limit) ends the exchange and closes the connection. Each round trip
 * (one command, or one pipeline) must complete within command_timeout_ms in all, however
 * the server spaces its bytes.
 */
#define KR_KS_REPLY_MAX_BYTES	 (1024 * 1024)
#define KR_KS_REPLY_MAX_ELEMENTS 10000
#define KR_KS_REPLY_MAX_DEPTH	 7

/*
 * A RESP2 scanner that only measures: it follows the replies' framing byte by byte and
 * counts each reply's bytes and elements. Embedded by value; zero it (kr_ks_resp_guard_init)
 * before the first reply of a connection.
 */
struct kr_ks_resp_guard {
	int state;		      /* expecting a type byte, in a header line, in a bulk body */
	char type;		      /* '+', '-', ':', '$', '*' of the current header */
	int neg, digits, bad, cr;     /* the header's number so far; cr: the last byte was CR */
	unsigned long long num;	      /* capped, so it cannot overflow */
	unsigned long long bulk_left; /* body bytes plus CRLF still to come */
	size_t depth;
	long long left[KR_KS_REPLY_MAX_DEPTH]; /* elements still to come, per open array */
	size_t bytes, elements;		       /* of the reply being read */
	size_t replies;			       /* complete replies so far */
};

void kr_ks_resp_guard_init(struct kr_ks_resp_guard *g);
/*
 * Scan `len` more bytes. KR_ETOOBIG ("reply larger than 1 MiB", "reply of more than 10000
 * elements") or KR_EPROTO ("reply nested deeper than 7 levels", "bad reply: ...") with the
 * message in `err` (not naming the server); after an error the guard is spent. Framing
 * errors hiredis also reports are reported here first, in the same words where it can.
 */
enum kr_status kr_ks_resp_guard_feed(struct kr_ks_resp_guard *g, const char *data, size_t len,
				     struct kr_error *err);

struct kr_keystore {
	/* settings, owned copies */
	char *host;
	int port;
	int database;
	char *username;		    /* NULL: AUTH <password> */
	struct kr_secret *password; /* NULL: no AUTH */
	int connect_timeout_ms;
	int command_timeout_ms;
	char *active_set, *meta_key, *bootstrap_key;
	struct kr_keystore_layout layout; /* points at the copies above */
	char *server;			  /* "valkey host:port", for messages */
	redisContext *ctx;		  /* NULL until connected, and after a failure */
	struct kr_ks_resp_guard guard;	  /* the bytes of ctx's replies, measured */
};

/* One argument of a command: `len` bytes at `data` (a key's bytes are fine here). */
struct kr_ks_arg {
	const char *data;
	size_t len;
};

/* One command of a pipeline; `what` names it in errors ("SISMEMBER activeSet \"x\""). */
struct kr_ks_cmd {
	size_t argc;
	const struct kr_ks_arg *argv;
	const char *what;
};

/*
 * Send `n` commands and read their `n` replies (connecting first when needed). The
 * command and reply bytes only pass through buffers that are wiped. On a dropped
 * connection the whole pipeline is sent once more on a fresh connection (callers only
 * pipeline idempotent commands). Error replies are not errors here: replies[i] may be
 * REDIS_REPLY_ERROR; check them with kr_ks_reply_check. On success the caller frees
 * every replies[i] with kr_ks_reply_free; on error all are NULL.
 */
enum kr_status kr_ks_pipeline(struct kr_keystore *ks, const struct kr_ks_cmd *cmds, size_t n,
			      redisReply **replies, struct kr_error *err);
/* A pipeline of one; an error reply becomes an error (kr_ks_reply_check) and no reply. */
enum kr_status kr_ks_call(struct kr_keystore *ks, const struct kr_ks_cmd *cmd, redisReply **reply,
			  struct kr_error *err);
/*
 * KR_OK unless `reply` is an error reply: then KR_EAUTH (NOAUTH, WRONGPASS, NOPERM)
 * or KR_ESTORE, the message "valkey h:p: <what>: <server text>".
 */
enum kr_status kr_ks_reply_check(struct kr_keystore *ks, const redisReply *reply, const char *what,
				 struct kr_error *err);
/* Wipe every string in the reply tree, then freeReplyObject. NULL is fine. */
void kr_ks_reply_free(redisReply *reply);
/* Close the connection (wiping hiredis's read buffer first). */
void kr_ks_disconnect(struct kr_keystore *ks);

/* Layout helpers (layout.c). All results wiped on free: in plaintext they hold keys. */
enum kr_status kr_ks_member(const struct kr_keystore_layout *layout, const struct kr_secret *key,
			    struct kr_secret **out, struct kr_error *err);
/* The key id of a stored member (never the member itself). */
void kr_ks_member_id(const struct kr_keystore_layout *layout, const char *member, size_t len,
		     char id[KR_KEY_ID_LEN + 1]);
enum kr_status kr_ks_meta_key(const struct kr_keystore_layout *layout, const char *member,
			      size_t len, struct kr_secret **out, struct kr_error *err);
/* 1 when `name` matches metaKey; member at name[*off .. *off + *mlen). */
int kr_ks_meta_key_member(const struct kr_keystore_layout *layout, const char *name, size_t len,
			  size_t *off, size_t *mlen);
/* SCAN MATCH pattern for metaKey: {id} -> '*', glob characters escaped. */
enum kr_status kr_ks_meta_pattern(const struct kr_keystore_layout *layout, struct kr_buf *out);

/*
 * Every multi-step change is one Lua script, so it is atomic on the server. Scripts
 * check types before writing anything, and their errors name the key id, never a
 * metadata key name (in plaintext layout that name contains the raw key).
 */
#define KR_LUA_CHECK_SET(k)                                                                        \
	"local t = redis.call('TYPE', " k ").ok\n"                                                 \
	"if t ~= 'set' and t ~= 'none' then return redis.error_reply('WRONGTYPE activeSet ' "      \
	".. " k " .. ' holds a ' .. t .. ', not a set') end\n"
#define KR_LUA_CHECK_HASH(k, id)                                                                   \
	"local mt = redis.call('TYPE', " k ").ok\n"                                                \
	"if mt ~= 'hash' and mt ~= 'none' then return redis.error_reply('WRONGTYPE "               \
	"metadata of key ' .. " id " .. ' holds a ' .. mt .. ', not a hash') end\n"
#define KR_LUA_CHECK_STRING(k)                                                                     \
	"local bt = redis.call('TYPE', " k ").ok\n"                                                \
	"if bt ~= 'string' and bt ~= 'none' then return redis.error_reply('WRONGTYPE "             \
	"bootstrapKey ' .. " k " .. ' holds a ' .. bt .. ', not a string') end\n"

/* Argument helpers. */
static inline struct kr_ks_arg kr_ks_str(const char *s)
{
	struct kr_ks_arg a = {s, s ? strlen(s) : 0};
	return a;
}

static inline struct kr_ks_arg kr_ks_sec(const struct kr_secret *s)
{
	struct kr_ks_arg a = {kr_secret_data(s), kr_secret_len(s)};
	return a;
}

#endif
