/* keys_conn.c - `keyrotator keys`: TLS to the key store and Sentinel, from flags or environment. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/keys_conn.h"

/* A PEM file is at most this long (a CA bundle with a few hundred certificates). */
#define KR_KEYS_PEM_MAX	     (256 * 1024)
#define KR_KEYS_PASSWORD_MAX 4096

/* A whole file, at most `max` bytes, into a secret (the read buffer wiped). */
static int read_file(const char *verb, const char *what, const char *path, size_t max, int trim,
		     struct kr_secret **out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return kr_cli_usage_error(verb, "%s %s: %s", what, path, strerror(errno));
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return kr_cli_fail(KR_EXIT_FAIL, verb, "out of memory");
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	while (trim && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n > max || n == 0) {
		explicit_bzero(buf, max + 1);
		free(buf);
		return kr_cli_usage_error(verb, "%s %s: %s", what, path, n ? "too long" : "empty");
	}
	*out = kr_secret_new(buf, n);
	explicit_bzero(buf, max + 1);
	free(buf);
	return *out ? KR_EXIT_OK : kr_cli_fail(KR_EXIT_FAIL, verb, "out of memory");
}

static int fill_tls(const char *verb, const struct kr_keys_conn_args *in,
		    struct kr_keystore_opts *o, struct kr_keys_conn *c)
{
	const char *ca = in->ca, *cert = in->cert, *key = in->key;
	int rc = KR_EXIT_OK;

	o->tls.server_name = in->server_name;
	o->tls.enabled = in->tls || ca || cert || key || o->tls.server_name;
	if (!cert != !key)
		return kr_cli_usage_error(verb, "--tls-cert and --tls-key go together");
	if (ca)
		rc = read_file(verb, "--tls-ca", ca, KR_KEYS_PEM_MAX, 0, &c->ca);
	if (rc == KR_EXIT_OK && cert)
		rc = read_file(verb, "--tls-cert", cert, KR_KEYS_PEM_MAX, 0, &c->cert);
	if (rc == KR_EXIT_OK && key)
		rc = read_file(verb, "--tls-key", key, KR_KEYS_PEM_MAX, 0, &c->key);
	o->tls.ca = c->ca;
	o->tls.client_cert = c->cert;
	o->tls.client_key = c->key;
	return rc;
}

static int fill_sentinel(const char *verb, const struct kr_keys_conn_args *in, int addr_given,
			 struct kr_keystore_opts *o, struct kr_keys_conn *c)
{
	const char *list = in->sentinels, *master = in->master_name;
	const char *pwfile = in->sentinel_password_file;
	const char *pw = getenv("KEYROTATOR_VALKEY_SENTINEL_PASSWORD");
	size_t n = 0;
	char *save = NULL;

	if (!list)
		return master ? kr_cli_usage_error(verb, "--master-name needs --sentinel")
			      : KR_EXIT_OK;
	if (addr_given)
		return kr_cli_usage_error(verb, "--sentinel and --addr: give one (the sentinels "
						"name the master)");
	if (!master)
		return kr_cli_usage_error(verb, "--sentinel needs --master-name");
	c->list = strdup(list);
	if (!c->list)
		return kr_cli_fail(KR_EXIT_FAIL, verb, "out of memory");
	for (char *t = strtok_r(c->list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char host[256];
		int port = 0;
		struct kr_error err;

		if (n == KR_KEYSTORE_MAX_SENTINELS)
			return kr_cli_usage_error(verb, "--sentinel: at most %d addresses",
						  KR_KEYSTORE_MAX_SENTINELS);
		if (kr_keystore_parse_address(t, host, sizeof(host), &port, &err) != KR_OK)
			return kr_cli_usage_error(verb, "--sentinel: %s", err.msg);
		c->addrs[n++] = t;
	}
	if (n == 0)
		return kr_cli_usage_error(verb, "--sentinel: no address");
	o->sentinel.addresses = c->addrs;
	o->sentinel.n_addresses = n;
	o->sentinel.master_name = master;
	o->sentinel.username = in->sentinel_user;
	if (pwfile)
		return read_file(verb, "--sentinel-password-file", pwfile, KR_KEYS_PASSWORD_MAX, 1,
				 &c->sentinel_password) == KR_EXIT_OK
			   ? (o->sentinel.password = c->sentinel_password, KR_EXIT_OK)
			   : KR_EXIT_USAGE;
	if (pw && *pw) {
		c->sentinel_password = kr_secret_new(pw, strlen(pw));
		if (!c->sentinel_password)
			return kr_cli_fail(KR_EXIT_FAIL, verb, "out of memory");
		o->sentinel.password = c->sentinel_password;
	}
	return KR_EXIT_OK;
}

int kr_keys_conn_fill(const char *verb, const struct kr_keys_conn_args *in, int addr_given,
		      struct kr_keystore_opts *o, struct kr_keys_conn *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	rc = fill_tls(verb, in, o, c);
	if (rc == KR_EXIT_OK)
		rc = fill_sentinel(verb, in, addr_given, o, c);
	return rc;
}

void kr_keys_conn_release(struct kr_keys_conn *c)
{
	kr_secret_free(c->ca);
	kr_secret_free(c->cert);
	kr_secret_free(c->key);
	kr_secret_free(c->sentinel_password);
	free(c->list);
	memset(c, 0, sizeof(*c));
}
