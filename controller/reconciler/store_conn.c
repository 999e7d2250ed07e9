/* store_conn.c - a key store's connection settings, with the Secrets its spec names read. */
#include <stdio.h>
#include <string.h>

#include "reconciler/store_conn.h"

void kr_store_creds_release(struct kr_store_creds *c)
{
	kr_secret_free(c->password);
	kr_secret_free(c->ca);
	kr_secret_free(c->cert);
	kr_secret_free(c->key);
	kr_secret_free(c->sentinel_password);
	memset(c, 0, sizeof(*c));
}

static enum kr_status read_tls(const struct kr_rotation_spec *spec, const char *prefix,
			       kr_store_secret_fn read, void *arg, struct kr_keystore_opts *ko,
			       struct kr_store_creds *c, struct kr_error *err)
{
	const struct kr_store_tls_spec *t = &spec->store_tls;
	char field[128];
	enum kr_status rc;

	ko->tls.enabled = 1;
	ko->tls.server_name = t->server_name;
	snprintf(field, sizeof(field), "%s.tls.caSecretRef", prefix);
	rc = read(arg, field, t->ca_ns, t->ca_name, t->ca_key, KR_STORE_PEM_MAX, &c->ca, err);
	snprintf(field, sizeof(field), "%s.tls.clientCertSecretRef", prefix);
	if (rc == KR_OK)
		rc = read(arg, field, t->cert_ns, t->cert_name, "tls.crt", KR_STORE_PEM_MAX,
			  &c->cert, err);
	if (rc == KR_OK)
		rc = read(arg, field, t->cert_ns, t->cert_name, "tls.key", KR_STORE_PEM_MAX,
			  &c->key, err);
	ko->tls.ca = c->ca;
	ko->tls.client_cert = c->cert;
	ko->tls.client_key = c->key;
	return rc;
}

enum kr_status kr_store_opts_fill(const struct kr_rotation_spec *spec, const char *prefix,
				  bool password, kr_store_secret_fn read, void *arg,
				  struct kr_keystore_opts *ko, struct kr_store_creds *c,
				  struct kr_error *err)
{
	const struct kr_store_sentinel_spec *s = &spec->store_sentinel;
	char field[128];
	enum kr_status rc = KR_OK;

	memset(c, 0, sizeof(*c));
	if (spec->store_address) {
		rc = kr_keystore_parse_address(spec->store_address, c->host, sizeof(c->host),
					       &ko->port, err);
		if (rc != KR_OK)
			return kr_error_prefix(err, "%s.address: ", prefix);
		ko->host = c->host;
	}
	ko->database = spec->store_database;
	ko->username = spec->store_username;
	snprintf(field, sizeof(field), "%s.passwordSecretRef", prefix);
	if (password)
		rc = read(arg, field, spec->store_password_ns, spec->store_password_name,
			  spec->store_password_key, KR_STORE_PASSWORD_MAX, &c->password, err);
	ko->password = c->password;
	if (rc == KR_OK && spec->store_tls.enabled)
		rc = read_tls(spec, prefix, read, arg, ko, c, err);
	if (rc == KR_OK && s->n_addresses) {
		snprintf(field, sizeof(field), "%s.sentinel.passwordSecretRef", prefix);
		rc = read(arg, field, s->password_ns, s->password_name, s->password_key,
			  KR_STORE_PASSWORD_MAX, &c->sentinel_password, err);
		ko->host = NULL; /* the sentinels name it */
		ko->sentinel.addresses = (const char *const *)s->addresses;
		ko->sentinel.n_addresses = s->n_addresses;
		ko->sentinel.master_name = s->master_name;
		ko->sentinel.username = s->username;
		ko->sentinel.password = c->sentinel_password;
	}
	if (rc != KR_OK)
		kr_store_creds_release(c);
	return rc;
}
