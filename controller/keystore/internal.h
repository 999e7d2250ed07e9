/* internal.h - what the keystore's files share: the handle, the wire, layout helpers. */
#ifndef KR_KEYSTORE_INTERNAL_H
#define KR_KEYSTORE_INTERNAL_H

#include <string.h>

#include <hiredis/hiredis.h>

#include "keystore/keystore.h"

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
