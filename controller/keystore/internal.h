/* internal.h - what the keystore's files share: the handle, the wire, layout helpers. */
#ifndef KR_KEYSTORE_INTERNAL_H
#define KR_KEYSTORE_INTERNAL_H

#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

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

/* One connection: a TCP socket, TLS on it when the store asks for it, hiredis's reader. */
struct kr_ks_net {
	int fd;	  /* -1: closed */
	SSL *ssl; /* NULL: plain TCP */
	redisReader *reader;
	struct kr_ks_resp_guard guard; /* the bytes of the replies, measured */
};

struct kr_keystore {
	/* settings, owned copies */
	char *host; /* NULL with sentinels */
	int port;
	int database;
	char *username;		    /* NULL: AUTH <password> */
	struct kr_secret *password; /* NULL: no AUTH */
	int connect_timeout_ms;
	int command_timeout_ms;
	SSL_CTX *tls;	       /* NULL: plain TCP; shared with dups (reference counted) */
	char *tls_server_name; /* NULL: the host */
	char tls_fp[65];       /* SHA-256 over the TLS settings ("" without TLS) */
	char **sentinels;      /* "host:port" each; NULL when none */
	size_t n_sentinels;
	char *master_name;
	char *sentinel_user;
	struct kr_secret *sentinel_password;
	size_t sentinel_next; /* the sentinel to ask first: the one that answered last */
	char *active_set, *meta_key, *bootstrap_key;
	struct kr_keystore_layout layout; /* points at the copies above */
	char master[300];		  /* with sentinels: "host:port" in use, "" before */
	char server[400];		  /* "valkey host:port", for messages */
	struct kr_ks_net net;		  /* fd -1 until connected, and after a failure */
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
/* kr_ks_reply_check with the server text `who` instead of a handle's. */
enum kr_status kr_ks_reply_check_who(const char *who, const redisReply *reply, const char *what,
				     struct kr_error *err);

/* ---- the transport (wire.c, tls.c) ---- */

/* "<role> host:port" ("[v6]:port" for an IPv6 literal) into out (handle.c). */
void kr_ks_server_text(char *out, size_t size, const char *role, const char *host, int port);

/* A closed connection (fd -1). */
void kr_ks_net_init(struct kr_ks_net *n);
/*
 * Connect to host:port within timeout_ms (TCP, then the TLS handshake when `tls` is set,
 * checking the certificate against `server_name`, or `host`). `who` ("valkey h:p") starts
 * every message: "valkey h:p: cannot connect: ...", "valkey h:p: TLS handshake failed:
 * certificate verify failed: ...". On error `n` stays closed.
 */
enum kr_status kr_ks_net_open(struct kr_ks_net *n, const char *host, int port, SSL_CTX *tls,
			      const char *server_name, int timeout_ms, const char *who,
			      struct kr_error *err);
/* Close (wiping the reader's buffer first). Closed is fine. */
void kr_ks_net_close(struct kr_ks_net *n);
/*
 * Send `wire` and read `n` replies, all within timeout_ms, with the bounds above.
 * *dropped = 1 when the connection turned out to be gone (EOF, reset): worth one retry.
 * On error every replies[i] is NULL; on success the caller frees them (kr_ks_reply_free).
 */
enum kr_status kr_ks_net_exchange(struct kr_ks_net *n, const struct kr_buf *wire, size_t count,
				  redisReply **replies, int timeout_ms, const char *who,
				  int *dropped, struct kr_error *err);
/* RESP for every command, into one buffer sized up front (wipe it after use). */
enum kr_status kr_ks_format(const struct kr_ks_cmd *cmds, size_t n, struct kr_buf *out);

/* TLS (tls.c). A client context: verify on, TLS 1.2+, CA or system bundle, client cert. */
enum kr_status kr_ks_tls_ctx_new(const struct kr_keystore_tls *tls, SSL_CTX **out,
				 struct kr_error *err);
/* A session on `fd` that checks the name (server_name, else host; IP literals as IPs). */
enum kr_status kr_ks_tls_session(SSL_CTX *ctx, int fd, const char *host, const char *server_name,
				 SSL **out, struct kr_error *err);
/* Why a handshake failed, for a message ("certificate verify failed: ..."). */
void kr_ks_tls_handshake_error(SSL *ssl, char *out, size_t size);
/* The reason of OpenSSL's latest error, or `dflt`. */
const char *kr_ks_tls_reason(const char *dflt);
/* Append the TLS settings to a fingerprint input (PEMs as SHA-256 only). */
void kr_ks_tls_fingerprint(const struct kr_keystore_tls *tls, struct kr_buf *b);

/*
 * Sentinel (sentinel.c): ask the sentinels for the master, open ks->net to it, log in
 * (kr_ks_handshake) and check with ROLE that it is a master; ks->master and ks->server
 * name it. Tries each sentinel once, starting with the one that answered last.
 */
enum kr_status kr_ks_sentinel_connect(struct kr_keystore *ks, struct kr_error *err);
/*
 * With sentinels, after a write: WAIT until at least one replica has it (when the master has
 * any), so that a failover cannot lose a key the caller goes on to hand to consumers.
 * KR_ETIMEOUT naming `what` when no replica acknowledged within half command_timeout_ms:
 * the write stands, the caller does it again (every write here is idempotent). KR_OK
 * without sentinels, or when the master has no replica.
 */
enum kr_status kr_ks_replicated(struct kr_keystore *ks, const char *what, struct kr_error *err);
/* AUTH and SELECT on a fresh ks->net (conn.c). */
enum kr_status kr_ks_handshake(struct kr_keystore *ks, struct kr_error *err);
/* One command on `net` (no retry); an error reply becomes an error. */
enum kr_status kr_ks_net_call(struct kr_ks_net *net, const struct kr_ks_cmd *cmd, int timeout_ms,
			      const char *who, redisReply **reply, struct kr_error *err);

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
