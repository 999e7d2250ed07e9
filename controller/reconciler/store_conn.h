/* store_conn.h - a key store's connection settings with the Secrets they name (store_conn.c). */
#ifndef KR_RECONCILER_STORE_CONN_H
#define KR_RECONCILER_STORE_CONN_H

#include "keystore/keystore.h"
#include "rotation/rotation.h"

/* Base64 text of a PEM Secret value (a CA bundle, a certificate chain). */
#define KR_STORE_PEM_MAX (256 * 1024)
/* ... and of a password (as KR_SECRET_TEXT_MAX). */
#define KR_STORE_PASSWORD_MAX 4096

/*
 * Read data[key] of Secret ns/name (ns NULL: the reader's own rule), which the spec field
 * `field` names, into *out (caller frees; name NULL: *out NULL and KR_OK). Errors name the
 * field and the Secret.
 */
typedef enum kr_status (*kr_store_secret_fn)(void *arg, const char *field, const char *ns,
					     const char *name, const char *key, size_t max_text,
					     struct kr_secret **out, struct kr_error *err);

/* What the settings borrow: freed (wiped) by kr_store_creds_release after kr_keystore_new. */
struct kr_store_creds {
	struct kr_secret *password, *ca, *cert, *key, *sentinel_password;
	char host[256];
};

/*
 * The connection settings of spec's key store into *ko (kr_keystore_opts_init first):
 * address or sentinels, database, user, TLS, and every Secret read through `read`
 * (`password` false: the store's own password is not read, as for the status probe).
 * `prefix` ("spec.keyStore" or "spec") starts the field names in errors. The strings of
 * *ko borrow from spec and *c; release *c after kr_keystore_new.
 */
enum kr_status kr_store_opts_fill(const struct kr_rotation_spec *spec, const char *prefix,
				  bool password, kr_store_secret_fn read, void *arg,
				  struct kr_keystore_opts *ko, struct kr_store_creds *c,
				  struct kr_error *err);
void kr_store_creds_release(struct kr_store_creds *c);

#endif
