/* keys_store.c - `keyrotator keys`: opening the key store, reading keys and passwords. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/keys_internal.h"

/* Read a whole small file (or stdin for "-") into a secret, trailing whitespace dropped. */
static enum kr_status kr_keys_read_file(const char *path, struct kr_secret **out,
					struct kr_error *err)
{
	char buf[KR_KEYS_MAX_KEY_FILE + 1];
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t n;

	*out = NULL;
	if (!f)
		return kr_error_set(err, KR_EINVAL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	if (f != stdin)
		fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		n--;
	if (n > KR_KEYS_MAX_KEY_FILE) {
		explicit_bzero(buf, sizeof(buf));
		return kr_error_set(err, KR_EINVAL, "%s: more than %d bytes", path,
				    KR_KEYS_MAX_KEY_FILE);
	}
	*out = kr_secret_new(buf, n);
	explicit_bzero(buf, sizeof(buf));
	return *out ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

/* A key from the environment or a file; KR_EINVAL when empty or not one printable word. */
enum kr_status kr_keys_load_key(const char *source, int is_env, struct kr_secret **out,
				struct kr_error *err)
{
	enum kr_status rc = KR_OK;
	const char *v;

	if (is_env) {
		v = getenv(source);
		*out = v ? kr_secret_new(v, strlen(v)) : NULL;
		if (!v)
			return kr_error_set(err, KR_EINVAL, "environment variable %s is not set",
					    source);
		if (!*out)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
	} else {
		rc = kr_keys_read_file(source, out, err);
		if (rc != KR_OK)
			return rc;
	}
	if (kr_secret_len(*out) == 0)
		rc = kr_error_set(err, KR_EINVAL, "%s %s: the key is empty",
				  is_env ? "environment variable" : "file", source);
	for (size_t i = 0; rc == KR_OK && i < kr_secret_len(*out); i++) {
		unsigned char c = (unsigned char)kr_secret_data(*out)[i];

		if (c <= ' ' || c == 0x7f)
			rc = kr_error_set(err, KR_EINVAL,
					  "%s %s: the key contains whitespace or a control "
					  "character (position %zu)",
					  is_env ? "environment variable" : "file", source, i + 1);
	}
	if (rc != KR_OK) {
		kr_secret_free(*out);
		*out = NULL;
	}
	return rc;
}

static enum kr_status kr_keys_password(const struct kr_keys_args *a, struct kr_secret **out,
				       struct kr_error *err)
{
	const char *file = a->password_file; /* flag or KEYROTATOR_VALKEY_PASSWORD_FILE */
	const char *pw = getenv("KEYROTATOR_VALKEY_PASSWORD");

	*out = NULL;
	if (file)
		return kr_keys_read_file(file, out, err);
	if (pw && *pw) {
		*out = kr_secret_new(pw, strlen(pw));
		if (!*out)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	return KR_OK;
}

/* ---- opening the store ---- */

/* Settings (flag, else environment, else default) into opts/layout; host into `host`. */
static int kr_keys_settings(const struct kr_keys_args *a, struct kr_keystore_opts *o,
			    struct kr_keystore_layout *l, char *host, size_t host_size)
{
	struct kr_error err;

	kr_error_clear(&err);
	kr_keystore_opts_init(o);
	kr_keystore_layout_init_defaults(l);
	if (kr_keystore_parse_address(a->addr ? a->addr : "127.0.0.1:6379", host, host_size,
				      &o->port, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--addr: %s", err.msg);
	o->host = host;
	o->database = (int)a->db;
	o->username = a->user;
	o->connect_timeout_ms = o->command_timeout_ms = (int)a->timeout_ms;
	l->active_set = a->active_set;
	l->meta_key = a->meta_key;
	l->bootstrap_key = a->bootstrap_key;
	l->store_as = a->store_as;
	if (kr_keystore_layout_check(l, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}

int kr_keys_open(const struct kr_keys_args *a, struct kr_keystore **ks)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_secret *pw = NULL;
	struct kr_keys_conn conn;
	struct kr_error err;
	char host[256];
	int rc;

	kr_error_clear(&err);
	rc = kr_keys_settings(a, &o, &l, host, sizeof(host));
	if (rc != KR_EXIT_OK)
		return rc;
	rc = kr_keys_conn_fill(a->verb, &a->conn, a->addr != NULL, &o, &conn);
	if (rc != KR_EXIT_OK) {
		kr_keys_conn_release(&conn);
		return rc;
	}
	if (o.sentinel.n_addresses)
		o.host = NULL; /* the sentinels name the master */
	if (kr_keys_password(a, &pw, &err) != KR_OK) {
		kr_keys_conn_release(&conn);
		return kr_cli_usage_error(a->verb, "password: %s", err.msg);
	}
	o.password = pw;
	rc = kr_keystore_new(&o, &l, ks, &err) == KR_OK ? KR_EXIT_OK : KR_EXIT_USAGE;
	kr_secret_free(pw);
	kr_keys_conn_release(&conn);
	if (rc != KR_EXIT_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}

/* Exit code for a store error: bad input is 2, everything else 1. */
int kr_keys_store_fail(const struct kr_keys_args *a, const struct kr_error *err)
{
	return kr_cli_fail(err->code == KR_EINVAL ? KR_EXIT_USAGE : KR_EXIT_FAIL, a->verb, "%s",
			   err->msg);
}

/* The one key revoke/verify work on: the positional argument, or one --key-* source. */
int kr_keys_single_key(struct kr_keys_args *a, struct kr_secret **key)
{
	struct kr_error err;

	kr_error_clear(&err);
	if ((a->positional ? 1 : 0) + a->sources.n != 1)
		return kr_cli_usage_error(a->verb,
					  "give exactly one key: KEY%s, --key-from-env VAR "
					  "or --key-file FILE",
					  a->sub == KR_SUB_REVOKE ? ", ID" : "");
	if (a->positional && strcmp(kr_secret_data(a->positional), "-")) {
		*key = a->positional;
		a->positional = NULL;
		return KR_EXIT_OK;
	}
	if (a->positional) /* "-": the key comes on stdin */
		return kr_keys_load_key("-", 0, key, &err) == KR_OK
			   ? KR_EXIT_OK
			   : kr_cli_usage_error(a->verb, "%s", err.msg);
	if (kr_keys_load_key(a->sources.values[0], a->sources.tags[0] == KR_SOURCE_ENV, key,
			     &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}
