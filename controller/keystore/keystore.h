/* keystore.h - API keys: their format, and the Valkey key store the API checks them in. */
#ifndef KR_KEYSTORE_H
#define KR_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/secret.h"

/*
 * Ownership, stated once for the whole API:
 *   - every `const char *` and `const struct kr_secret *` argument is borrowed and
 *     copied when kept;
 *   - raw keys only ever travel as struct kr_secret (wiped on free); a `struct
 *     kr_secret **out` belongs to the caller, who frees it with kr_secret_free;
 *   - no hiredis type crosses this header: replies are consumed (and wiped) inside.
 * Errors: every call takes a `struct kr_error *err` (may be NULL) and returns its code.
 * Messages name the server ("valkey 10.0.0.5:6379") and the Valkey key involved,
 * never a raw key.
 */

/* ---- key format (key.c): pure, no I/O ---- */

/*
 * A key is  prefix + body + checksum:
 *   prefix    [a-z0-9_]{0,16}, chosen by the user ("sk_");
 *   body      the `bytes` random bytes (getrandom(2)) as one big-endian number in
 *             base62, zero-padded to exactly kr_key_body_len(bytes) digits, which is
 *             ceil(8 * bytes / log2(62)) (bytes 16..64 -> 22..86 digits; 32 -> 43);
 *   checksum  CRC-32 (IEEE 802.3 / zlib polynomial) of prefix+body, as exactly 6
 *             base62 digits, zero-padded, most significant first.
 * The base62 alphabet is 0-9, A-Z, a-z in that order. A key is thus 28..108
 * characters of [A-Za-z0-9_], safe in URLs, headers and env files, and secret scanners
 * can recognise it without a store lookup.
 */
#define KR_KEY_MIN_BYTES     16
#define KR_KEY_MAX_BYTES     64
#define KR_KEY_DEFAULT_BYTES 32
#define KR_KEY_MAX_PREFIX    16
#define KR_KEY_CHECKSUM_LEN  6
#define KR_KEY_MIN_LEN	     28	 /* no prefix, 16 bytes */
#define KR_KEY_MAX_LEN	     108 /* 16-character prefix, 64 bytes */
#define KR_KEY_ID_LEN	     12	 /* hex digits */

/* Digits of the base62 body for `bytes` random bytes; 0 when bytes is out of range. */
size_t kr_key_body_len(int bytes);

/* KR_OK when `prefix` matches [a-z0-9_]{0,16}; else KR_EINVAL saying why. */
enum kr_status kr_key_prefix_check(const char *prefix, struct kr_error *err);

/*
 * Generate a key with `bytes` (16..64) random bytes from getrandom(2) and the given
 * prefix (NULL = none). On success *out is the key (caller frees with kr_secret_free);
 * every intermediate buffer is wiped. KR_EINVAL for a bad prefix or size, KR_EIO when
 * getrandom fails.
 */
enum kr_status kr_key_generate(const char *prefix, int bytes, struct kr_secret **out,
			       struct kr_error *err);

/*
 * The key for given random bytes (what kr_key_generate does after getrandom): for
 * tests and known-answer vectors. `random` is borrowed; *out as for kr_key_generate.
 */
enum kr_status kr_key_from_bytes(const char *prefix, const unsigned char *random, int bytes,
				 struct kr_secret **out, struct kr_error *err);

/*
 * Check a presented key without a store round trip: length, alphabet, the
 * prefix/body/checksum shape, and the checksum. KR_OK or KR_EINVAL; the message says
 * what is wrong (length, position of a bad character, checksum mismatch) and never
 * contains the key.
 */
enum kr_status kr_key_check(const char *text, size_t len, struct kr_error *err);

/* As kr_key_check, and the key must have exactly this prefix and byte count. */
enum kr_status kr_key_check_for(const char *text, size_t len, const char *prefix, int bytes,
				struct kr_error *err);

/* The 6 checksum characters for `len` bytes of prefix+body, NUL-terminated. */
void kr_key_checksum(const char *text, size_t len, char out[KR_KEY_CHECKSUM_LEN + 1]);
/* CRC-32 (IEEE, as zlib's crc32(0, data, len)). */
uint32_t kr_key_crc32(const void *data, size_t len);

/* Lowercase hex SHA-256 of `len` bytes, NUL-terminated. */
void kr_key_hash_hex_bytes(const void *data, size_t len, char out[65]);
/* Lowercase hex SHA-256 of the key. */
void kr_key_hash_hex(const struct kr_secret *key, char out[65]);
/* The key id: the first 12 hex digits of SHA-256 of the key, NUL-terminated. */
void kr_key_id(const struct kr_secret *key, char out[KR_KEY_ID_LEN + 1]);
/* 1 when `text` is a key id: exactly 12 lowercase hex digits. */
int kr_key_id_valid(const char *text);

/* ---- where the store is and how it is laid out (layout.c) ---- */

enum kr_store_as {
	KR_STORE_SHA256 = 0, /* members are hex SHA-256 of the key; the key never leaves us */
	KR_STORE_PLAINTEXT,  /* members are the raw keys (legacy `api_keys:active` layouts) */
};

/*
 * The KeyRotation's `keyStore` names. Strings are borrowed; kr_keystore_new copies them.
 * `meta_key` contains "{id}" exactly once, replaced by the stored member (the hash, or
 * in plaintext layout the raw key itself).
 */
struct kr_keystore_layout {
	const char *active_set;	   /* default "api_keys:active" */
	const char *meta_key;	   /* default "api_key:{id}:meta" */
	const char *bootstrap_key; /* default "api_keys:bootstrap" */
	enum kr_store_as store_as; /* default KR_STORE_SHA256 */
};

/* The DESIGN.md defaults. */
void kr_keystore_layout_init_defaults(struct kr_keystore_layout *layout);
/* KR_OK, or KR_EINVAL naming the field that is empty, lacks "{id}", or collides. */
enum kr_status kr_keystore_layout_check(const struct kr_keystore_layout *layout,
					struct kr_error *err);
/* "sha256" / "plaintext" <-> enum; parse returns KR_EINVAL for anything else. */
const char *kr_store_as_name(enum kr_store_as store_as);
enum kr_status kr_store_as_parse(const char *text, enum kr_store_as *out, struct kr_error *err);

/*
 * TLS to every server of the store (the master, and the sentinels when there are). The
 * server's certificate is always verified: against `ca` (PEM, one or more certificates)
 * or, when NULL, the system's trust store; and its name against `server_name`, or the host
 * connected to when NULL (an IP literal is matched against the certificate's IP SANs).
 * TLS 1.2 is the minimum. `client_cert` and `client_key` (PEM; both or neither) log in
 * with a client certificate (mutual TLS). There is deliberately no way to turn
 * verification off. All borrowed; kr_keystore_new copies what it keeps into an OpenSSL
 * context and keeps no copy of the private key's PEM.
 */
struct kr_keystore_tls {
	int enabled;
	const struct kr_secret *ca;	     /* PEM; NULL: the system bundle */
	const char *server_name;	     /* NULL or "": the host */
	const struct kr_secret *client_cert; /* PEM, or NULL */
	const struct kr_secret *client_key;  /* PEM, or NULL */
};

/* The sentinels may name at most this many addresses. */
#define KR_KEYSTORE_MAX_SENTINELS 16

/*
 * Sentinel: instead of one address, ask these sentinels (in order, the first that answers)
 * for the current master of `master_name` (SENTINEL get-master-addr-by-name), connect to
 * it, and check with ROLE that it is a master. A connection that fails, or a write
 * refused with READONLY, is opened again through the sentinels: a failover is followed.
 * `username`/`password` log in to the sentinels (Sentinel's own requirepass/ACL), not to
 * the master. Everything borrowed.
 */
struct kr_keystore_sentinel {
	const char *const *addresses; /* "host:port" ([v6]:port too); n_addresses of them */
	size_t n_addresses;	      /* 0: no sentinels, connect to host:port */
	const char *master_name;
	const char *username;		  /* NULL/"": AUTH <password> */
	const struct kr_secret *password; /* NULL: no AUTH to the sentinels */
};

/* Connection settings; all pointers borrowed (kr_keystore_new copies them). */
struct kr_keystore_opts {
	const char *host;		      /* name, IPv4 or IPv6 literal (no brackets) */
	int port;			      /* default 6379 when 0 */
	int database;			      /* SELECT n when n > 0 */
	const char *username;		      /* ACL user, or NULL/"" for AUTH <password> */
	const struct kr_secret *password;     /* or NULL for no AUTH */
	int connect_timeout_ms;		      /* default 5000 when 0 */
	int command_timeout_ms;		      /* default 5000 when 0 */
	struct kr_keystore_tls tls;	      /* zero: plain TCP */
	struct kr_keystore_sentinel sentinel; /* zero: host:port is the master */
};

/* Zero the struct and set host 127.0.0.1, port 6379, timeouts 5000 ms. */
void kr_keystore_opts_init(struct kr_keystore_opts *opts);

/*
 * Parse "host:port", "host", "[v6]:port", "[v6]" (port 6379 when absent) into `host`
 * (capacity `host_size`, brackets removed) and *port. KR_EINVAL names what is wrong.
 */
enum kr_status kr_keystore_parse_address(const char *address, char *host, size_t host_size,
					 int *port, struct kr_error *err);

/* ---- the store (conn.c, store.c, list.c) ---- */

/*
 * One connection to one Valkey (or Redis 6+) server with one layout. Not thread-safe:
 * use one per thread. Every operation is atomic on the server (a Lua script or a
 * single command) and idempotent, so when the connection turns out to be dropped
 * (EOF, reset, broken pipe) the operation reconnects once, re-authenticates and is
 * retried once; a timeout is not retried. Error codes: KR_EIO (connect or transport),
 * KR_ETIMEOUT, KR_EAUTH (AUTH refused, NOAUTH, NOPERM), KR_ESTORE (an error reply,
 * e.g. WRONGTYPE: the message names the Valkey key and the type found), KR_EPROTO.
 *
 * In sha256 layout the raw key is hashed here and never sent to the server. In
 * plaintext layout it must be sent; the command and reply bytes then pass only
 * through buffers this module wipes.
 */
struct kr_keystore;

/*
 * Copy settings and layout (checked with kr_keystore_layout_check). Does not connect:
 * the first operation does. Caller frees with kr_keystore_free. NULL-safe free.
 */
enum kr_status kr_keystore_new(const struct kr_keystore_opts *opts,
			       const struct kr_keystore_layout *layout, struct kr_keystore **out,
			       struct kr_error *err);
void kr_keystore_free(struct kr_keystore *ks);

/* A new, unconnected handle with the same settings and layout. */
enum kr_status kr_keystore_dup(const struct kr_keystore *ks, struct kr_keystore **out,
			       struct kr_error *err);
/*
 * SHA-256 (hex) over every setting and the layout (the password only as its hash): two
 * handles with the same fingerprint are interchangeable, so a connection can be reused.
 */
void kr_keystore_fingerprint(const struct kr_keystore *ks, char out[65]);
/* The same over the connection settings only (server, database, credentials, timeouts): two
 * handles with the same one can share a connection for kr_keystore_probe. */
void kr_keystore_server_fingerprint(const struct kr_keystore *ks, char out[65]);
/* A copy of `ks`'s layout with its strings in the same block: one free() frees it. NULL on
 * ENOMEM. (What an idle KeyRotation keeps of its store besides the shared connection
 * settings: idle.c.) */
struct kr_keystore_layout *kr_keystore_layout_copy(const struct kr_keystore *ks);
/*
 * Make `conn` use the layout of `settings` (activeSet, metaKey, bootstrapKey, storeAs),
 * keeping its connection: one connection serves every KeyRotation on a server. The two
 * must have the same kr_keystore_server_fingerprint. On error conn is unchanged.
 */
enum kr_status kr_keystore_adopt_layout(struct kr_keystore *conn,
					const struct kr_keystore *settings, struct kr_error *err);

/* Close the connection (if any); settings are kept and the next operation reconnects. */
void kr_keystore_close(struct kr_keystore *ks);

/* Connect now (or check the connection with PING): for "is the store reachable". */
enum kr_status kr_keystore_ping(struct kr_keystore *ks, struct kr_error *err);
/* "valkey host:port" (db n when n > 0): the server text used in messages. Borrowed. */
const char *kr_keystore_server(const struct kr_keystore *ks);
const struct kr_keystore_layout *kr_keystore_get_layout(const struct kr_keystore *ks);
/*
 * With sentinels: "host:port" of the master the sentinels named last (the one in use
 * while connected), "" before they were asked. Without sentinels "". Borrowed.
 */
const char *kr_keystore_master(const struct kr_keystore *ks);

/*
 * The connection pool (pool.c): this thread's open connection for `settings` (borrowed),
 * with the layout of `settings`. Each thread keeps a few, one per
 * kr_keystore_server_fingerprint, closes the least recently used beyond that, and reopens
 * one older than five minutes (a changed password or ACL shows up). Never NULL: without
 * a pool (out of memory) it is `settings` itself. The pool owns what it returns; it is
 * freed when the thread exits.
 */
struct kr_keystore *kr_keystore_pool_get(struct kr_keystore *settings);

/* Metadata written on activation. Strings borrowed; NULL or "" = leave unchanged. */
struct kr_key_meta {
	const char *label;
	const char *rotation;	/* "namespace/name", or "cli" */
	const char *created_at; /* RFC 3339 UTC; NULL = now (kept if already set) */
};

/* What an activation found. */
struct kr_activate_result {
	int added;	 /* 1 when the member was not in activeSet before */
	int reactivated; /* 1 when the metadata said revoked before */
};

/*
 * Make `key` valid: add its member to activeSet and write its metadata hash
 * (`id`, `created_at` unless already set, `label`, `rotation`, `status`=active; a
 * `revoked_at` is removed). Idempotent. `result` may be NULL.
 */
enum kr_status kr_keystore_activate(struct kr_keystore *ks, const struct kr_secret *key,
				    const struct kr_key_meta *meta,
				    struct kr_activate_result *result, struct kr_error *err);

enum kr_revoke_outcome {
	KR_REVOKE_DONE = 0, /* it was active; now removed and marked revoked */
	KR_REVOKE_ALREADY,  /* not in activeSet; metadata now says revoked (kept revoked_at) */
	KR_REVOKE_ABSENT,   /* neither in activeSet nor any metadata: nothing written */
};

/*
 * Revoke: remove the member from activeSet, metadata `status`=revoked and
 * `revoked_at`=now (kept when already set). Idempotent. `outcome` may be NULL.
 */
enum kr_status kr_keystore_revoke_key(struct kr_keystore *ks, const struct kr_secret *key,
				      enum kr_revoke_outcome *outcome, struct kr_error *err);
/* The same for a stored member as returned by kr_keystore_find_member. */
enum kr_status kr_keystore_revoke_member(struct kr_keystore *ks, const struct kr_secret *member,
					 enum kr_revoke_outcome *outcome, struct kr_error *err);

/*
 * Find the stored member whose key id is `id` (12 hex digits), among activeSet and the
 * metadata hashes. KR_ENOTFOUND when none, KR_ECONFLICT when several match. *member is
 * the caller's (kr_secret_free): in plaintext layout it is the raw key.
 */
enum kr_status kr_keystore_find_member(struct kr_keystore *ks, const char *id,
				       struct kr_secret **member, struct kr_error *err);

/* *active = 1 when the key's member is in activeSet (what the API checks), else 0. */
enum kr_status kr_keystore_is_active(struct kr_keystore *ks, const struct kr_secret *key,
				     int *active, struct kr_error *err);

/* One stored key as `keys list` shows it. Never holds the key or the member. */
struct kr_key_info {
	char id[KR_KEY_ID_LEN + 1];
	int active;   /* member of activeSet */
	int has_meta; /* a metadata hash exists */
	char *status; /* metadata `status`, or NULL; strings below likewise */
	char *label;
	char *rotation;
	char *created_at;
	char *revoked_at;
	char *last_used_at;
};

/*
 * Every key the store knows: members of activeSet and keys with a metadata hash
 * (revoked ones included), sorted by created_at then id. *out is the caller's: free with
 * kr_key_info_free_array(*out, *n). *n may be 0 (then *out is NULL).
 */
enum kr_status kr_keystore_list(struct kr_keystore *ks, struct kr_key_info **out, size_t *n,
				struct kr_error *err);
void kr_key_info_free_array(struct kr_key_info *infos, size_t n);

/* What kr_keystore_inspect found about one key. */
struct kr_key_state {
	int active;	       /* member of activeSet (what the API checks) */
	int has_meta;	       /* a metadata hash with a `status` exists */
	int meta_active;       /* its `status` is active */
	char last_used_at[32]; /* metadata `last_used_at` (RFC 3339), "" when absent */
};

/* ... and about the store. */
struct kr_store_state {
	long long active_members; /* SCARD activeSet */
	char marker[64];	  /* the value of bootstrapKey, "" when absent */
};

/*
 * For each of keys[0..n) (n <= 8): membership and metadata; plus the size of activeSet and
 * the bootstrap marker. One pipelined round trip of read-only commands; cost independent
 * of how many other keys the store holds (no SCAN). WRONGTYPE is KR_ESTORE naming the key.
 */
enum kr_status kr_keystore_inspect(struct kr_keystore *ks, const struct kr_secret *const *keys,
				   size_t n, struct kr_key_state *states,
				   struct kr_store_state *store, struct kr_error *err);

/*
 * One key of kr_keystore_probe: is `key` still active (a member of its activeSet, and its
 * metadata `status` active) and does its bootstrapKey hold `key_id`? Each probe brings
 * its own settings (layout, activeSet, bootstrapKey); all probes of one call go over the
 * connection of `ks` (same kr_keystore_server_fingerprint).
 */
struct kr_keystore_probe {
	const struct kr_keystore_layout *layout; /* borrowed: where this KeyRotation's keys are */
	const struct kr_secret *key;		 /* borrowed */
	const char *key_id;			 /* KR_KEY_ID_LEN hex digits */
	int ok;				    /* out */
	char why[200]; /* out, when !ok: what differs, or the server's error; never a key */
};

/*
 * Probe p[0..n): three read-only commands each, pipelined, one round trip per
 * KR_PROBE_CHUNK probes: the idle check of many KeyRotations on one server. KR_OK when
 * the server answered (a probe's own error reply, WRONGTYPE say, is in its `why`);
 * otherwise the connection's error, and every probe not yet answered is !ok with it.
 */
#define KR_PROBE_CHUNK 128
enum kr_status kr_keystore_probe(struct kr_keystore *ks, struct kr_keystore_probe *p, size_t n,
				 struct kr_error *err);

/*
 * The bootstrap marker: bootstrapKey holds the current key id. set writes `id` (a key
 * id, checked); *changed = 1 when the value was different or absent (may be NULL).
 * get copies the value (at most size-1 bytes) into `out`, "" when absent.
 */
enum kr_status kr_keystore_set_bootstrap(struct kr_keystore *ks, const char *id, int *changed,
					 struct kr_error *err);
enum kr_status kr_keystore_get_bootstrap(struct kr_keystore *ks, char *out, size_t size,
					 struct kr_error *err);

/* Metadata fields a reconcile may repair (bits of kr_keystore_repair_item.fields). */
enum kr_meta_field {
	KR_META_ID = 1 << 0,
	KR_META_CREATED_AT = 1 << 1,
	KR_META_STATUS = 1 << 2,
	KR_META_REVOKED_AT = 1 << 3, /* removed from a key that must be active */
	KR_META_ROTATION = 1 << 4,
};

struct kr_keystore_repair_item {
	char id[KR_KEY_ID_LEN + 1];
	int readded;	 /* was missing from activeSet, added back */
	unsigned fields; /* enum kr_meta_field bits repaired */
};

/* What a reconcile repaired. Embedded: zero it (or _init), then _release. */
struct kr_keystore_repair {
	struct kr_keystore_repair_item *items; /* one per distinct key given */
	size_t n;
	int marker_fixed;	   /* bootstrapKey was absent or held another value */
	long long unknown_members; /* members of activeSet not among the keys given */
};

void kr_keystore_repair_init(struct kr_keystore_repair *r);
void kr_keystore_repair_release(struct kr_keystore_repair *r);
/* Number of changes made (re-added members, keys with repaired metadata, marker). */
size_t kr_keystore_repair_count(const struct kr_keystore_repair *r);
/*
 * Human summary appended to `out`: "in sync" or "re-added key 3f9a0c1d2e4b; repaired
 * metadata of key 3f9a0c1d2e4b (created_at, status); set bootstrap marker", plus
 * "; 2 members of api_keys:active not known here (left in place)" when there are.
 */
enum kr_status kr_keystore_repair_describe(const struct kr_keystore_repair *r,
					   const char *active_set, struct kr_buf *out);

/*
 * The keys in keys[0..n) must be active: re-add missing members, repair their
 * metadata (id, created_at, status=active, revoked_at removed, rotation when missing and
 * `rotation` is given), and when `current_id` is not NULL make bootstrapKey hold it.
 * Never removes anything: members it does not know are only counted. One atomic
 * script. `report` (initialised by the caller) is filled; duplicates in keys count once.
 */
enum kr_status kr_keystore_reconcile(struct kr_keystore *ks, const struct kr_secret *const *keys,
				     size_t n, const char *current_id, const char *rotation,
				     struct kr_keystore_repair *report, struct kr_error *err);

/* The current time as RFC 3339 UTC ("2024-05-01T03:00:00Z") into out[21]. */
void kr_keystore_now(char out[21]);

#endif
