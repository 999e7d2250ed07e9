/* keys_conn.h - `keyrotator keys`: the TLS and Sentinel options (keys_conn.c). */
#ifndef KR_CLI_KEYS_CONN_H
#define KR_CLI_KEYS_CONN_H

#include <stdbool.h>

#include "keystore/keystore.h"

/* The flags, else their KEYROTATOR_VALKEY_* variables (NULL: neither; keys.c's table). */
struct kr_keys_conn_args {
	bool tls; /* --tls */
	const char *ca, *server_name, *cert, *key;
	const char *sentinels, *master_name, *sentinel_user, *sentinel_password_file;
};

/* What the settings borrow: the files read, the sentinel list split. */
struct kr_keys_conn {
	struct kr_secret *ca, *cert, *key, *sentinel_password;
	char *list;
	const char *addrs[KR_KEYSTORE_MAX_SENTINELS];
};

/*
 * Fill o->tls and o->sentinel from the settings (any TLS option turns TLS on), reading the
 * files they name and KEYROTATOR_VALKEY_SENTINEL_PASSWORD. `addr_given`: --addr or
 * KEYROTATOR_VALKEY_ADDR was set (refused together with sentinels). Returns an exit code
 * (2 with a message for bad usage); release *c after kr_keystore_new either way.
 */
int kr_keys_conn_fill(const char *verb, const struct kr_keys_conn_args *in, int addr_given,
		      struct kr_keystore_opts *o, struct kr_keys_conn *c);
void kr_keys_conn_release(struct kr_keys_conn *c);

#endif
