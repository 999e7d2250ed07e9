/* keys_internal.h - `keyrotator keys`: what its files (keys*.c) share; not a public API. */
#ifndef KR_CLI_KEYS_INTERNAL_H
#define KR_CLI_KEYS_INTERNAL_H

#include <stdbool.h>

#include "cli/cli.h"
#include "cli/keys_conn.h"
#include "keystore/keystore.h"

#define KR_KEYS_MAX_SOURCES  16
#define KR_KEYS_MAX_KEY_FILE 4096

enum kr_keys_sub {
	KR_SUB_CREATE = 1 << 0,
	KR_SUB_LIST = 1 << 1,
	KR_SUB_REVOKE = 1 << 2,
	KR_SUB_VERIFY = 1 << 3,
	KR_SUB_RECONCILE = 1 << 4,
	KR_SUB_ALL = 0x1f,
};

/* How a key is given (the tag of its --key-* flag in kr_keys_args.sources). */
enum kr_keys_source { KR_SOURCE_ENV = 1, KR_SOURCE_FILE = 2 };

struct kr_keys_args {
	enum kr_keys_sub sub;
	const char *verb; /* "keys create", for messages */
	/* store */
	const char *addr, *user, *password_file;
	long db, timeout_ms;
	const char *active_set, *meta_key, *bootstrap_key;
	enum kr_store_as store_as;
	struct kr_keys_conn_args conn; /* TLS, sentinels */
	/* create */
	const char *label, *prefix, *rotation;
	long bytes;
	bool bootstrap;
	/* list */
	bool json;
	/* revoke, verify, reconcile */
	bool any_format, no_bootstrap;
	struct kr_flag_list sources;  /* --key-from-env, --key-file, in order */
	struct kr_secret *positional; /* ID or KEY, copied (argv is wiped) */
};

/* The table of every subcommand's flags (keys_flags.c); .groups are enum kr_keys_sub. */
extern const struct kr_flag kr_keys_flags[];

/*
 * Flags (flag, else KEYROTATOR_VALKEY_*, else default) into `a`, whose sub and verb are
 * set; argv[0] is the subcommand. An argument (revoke, verify: one) is copied into
 * a->positional and wiped from argv. Returns an exit code, the message printed.
 */
int kr_keys_parse(int argc, char **argv, struct kr_keys_args *a);

/* ---- keys_store.c: the store and the keys given ---- */

/* Open the key store the settings describe; an exit code (2: bad settings, printed). */
int kr_keys_open(const struct kr_keys_args *a, struct kr_keystore **ks);
/* Print a store error; exit code 2 for bad input (KR_EINVAL), else 1. */
int kr_keys_store_fail(const struct kr_keys_args *a, const struct kr_error *err);
/*
 * A key from environment variable `source` (is_env) or file `source` ("-": stdin), one
 * printable word. KR_EINVAL with a message naming the source; caller frees *out with
 * kr_secret_free.
 */
enum kr_status kr_keys_load_key(const char *source, int is_env, struct kr_secret **out,
				struct kr_error *err);
/* The one key revoke and verify work on (the argument, or one --key-*); caller frees *key. */
int kr_keys_single_key(struct kr_keys_args *a, struct kr_secret **key);

/* ---- the subcommands: an exit code, messages printed ---- */

int kr_keys_create(struct kr_keys_args *a);    /* keys_write.c */
int kr_keys_revoke(struct kr_keys_args *a);    /* keys_write.c */
int kr_keys_reconcile(struct kr_keys_args *a); /* keys_write.c */
int kr_keys_list(struct kr_keys_args *a);      /* keys_list.c */
int kr_keys_verify(struct kr_keys_args *a);    /* keys_list.c */

#endif
