/* handle.c - the key store handle: its settings (server, credentials, TLS, sentinels), copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

static char *kr_strdup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static struct kr_secret *kr_secret_dup(const struct kr_secret *s)
{
	return kr_secret_new(kr_secret_data(s), kr_secret_len(s));
}

/* "valkey host:port" (brackets around an IPv6 literal) into out. */
void kr_ks_server_text(char *out, size_t size, const char *role, const char *host, int port)
{
	snprintf(out, size, strchr(host, ':') ? "%s [%s]:%d" : "%s %s:%d", role, host, port);
}

static enum kr_status kr_ks_copy_sentinel(struct kr_keystore *ks,
					  const struct kr_keystore_sentinel *s,
					  struct kr_error *err)
{
	if (s->n_addresses > KR_KEYSTORE_MAX_SENTINELS)
		return kr_error_set(err, KR_EINVAL, "sentinel.addresses: at most %d",
				    KR_KEYSTORE_MAX_SENTINELS);
	if (!s->master_name || !*s->master_name)
		return kr_error_set(err, KR_EINVAL, "sentinel.masterName: required");
	ks->sentinels = calloc(s->n_addresses, sizeof(char *));
	ks->master_name = strdup(s->master_name);
	ks->sentinel_user = kr_strdup_opt(s->username);
	ks->sentinel_password = s->password ? kr_secret_dup(s->password) : NULL;
	if (!ks->sentinels || !ks->master_name ||
	    (s->username && *s->username && !ks->sentinel_user) ||
	    (s->password && !ks->sentinel_password))
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n_addresses; i++) {
		ks->sentinels[i] = strdup(s->addresses[i]);
		if (!ks->sentinels[i])
			return kr_error_set(err, KR_ENOMEM, "out of memory");
		ks->n_sentinels++;
	}
	snprintf(ks->server, sizeof(ks->server), "valkey master %.200s (via sentinel)",
		 ks->master_name);
	return KR_OK;
}

/* Everything but the TLS context. */
static enum kr_status kr_ks_copy(struct kr_keystore *ks, const struct kr_keystore_opts *opts,
				 const struct kr_keystore_layout *layout, struct kr_error *err)
{
	if (!opts->sentinel.n_addresses && (!opts->host || !*opts->host))
		return kr_error_set(err, KR_EINVAL, "keyStore.address has no host");
	if (opts->host && strlen(opts->host) > 255)
		return kr_error_set(err, KR_EINVAL, "keyStore.address: host too long");
	ks->host = kr_strdup_opt(opts->host);
	ks->port = opts->port > 0 ? opts->port : 6379;
	ks->database = opts->database;
	ks->username = kr_strdup_opt(opts->username);
	if (opts->password)
		ks->password = kr_secret_dup(opts->password);
	ks->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	ks->command_timeout_ms = opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 5000;
	ks->tls_server_name = kr_strdup_opt(opts->tls.enabled ? opts->tls.server_name : NULL);
	ks->active_set = strdup(layout->active_set);
	ks->meta_key = strdup(layout->meta_key);
	ks->bootstrap_key = strdup(layout->bootstrap_key);
	ks->layout.active_set = ks->active_set;
	ks->layout.meta_key = ks->meta_key;
	ks->layout.bootstrap_key = ks->bootstrap_key;
	ks->layout.store_as = layout->store_as;
	if ((opts->host && *opts->host && !ks->host) || !ks->active_set || !ks->meta_key ||
	    !ks->bootstrap_key || (opts->username && *opts->username && !ks->username) ||
	    (opts->password && !ks->password) ||
	    (opts->tls.enabled && opts->tls.server_name && *opts->tls.server_name &&
	     !ks->tls_server_name))
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (opts->sentinel.n_addresses)
		return kr_ks_copy_sentinel(ks, &opts->sentinel, err);
	kr_ks_server_text(ks->server, sizeof(ks->server), "valkey", ks->host, ks->port);
	return KR_OK;
}

enum kr_status kr_keystore_new(const struct kr_keystore_opts *opts,
			       const struct kr_keystore_layout *layout, struct kr_keystore **out,
			       struct kr_error *err)
{
	struct kr_keystore *ks;
	enum kr_status rc;

	*out = NULL;
	rc = kr_keystore_layout_check(layout, err);
	if (rc != KR_OK)
		return rc;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	kr_ks_net_init(&ks->net);
	rc = kr_ks_copy(ks, opts, layout, err);
	if (rc == KR_OK && opts->tls.enabled) {
		struct kr_buf fp;

		rc = kr_ks_tls_ctx_new(&opts->tls, &ks->tls, err);
		kr_buf_init(&fp);
		kr_ks_tls_fingerprint(&opts->tls, &fp);
		kr_key_hash_hex_bytes(fp.data ? fp.data : "", fp.len, ks->tls_fp);
		kr_buf_release(&fp);
	}
	if (rc != KR_OK) {
		kr_keystore_free(ks);
		return rc;
	}
	*out = ks;
	return KR_OK;
}

enum kr_status kr_keystore_dup(const struct kr_keystore *ks, struct kr_keystore **out,
			       struct kr_error *err)
{
	struct kr_keystore_opts o = {
	    .host = ks->host,
	    .port = ks->port,
	    .database = ks->database,
	    .username = ks->username,
	    .password = ks->password,
	    .connect_timeout_ms = ks->connect_timeout_ms,
	    .command_timeout_ms = ks->command_timeout_ms,
	    .tls = {.enabled = ks->tls != NULL, .server_name = ks->tls_server_name},
	    .sentinel = {.addresses = (const char *const *)ks->sentinels,
			 .n_addresses = ks->n_sentinels,
			 .master_name = ks->master_name,
			 .username = ks->sentinel_user,
			 .password = ks->sentinel_password},
	};
	struct kr_keystore *d;
	enum kr_status rc;

	*out = NULL;
	o.tls.enabled = 0; /* the context is shared, not rebuilt (no PEMs are kept) */
	rc = kr_keystore_new(&o, &ks->layout, &d, err);
	if (rc != KR_OK)
		return rc;
	if (ks->tls) {
		SSL_CTX_up_ref(ks->tls);
		d->tls = ks->tls;
		memcpy(d->tls_fp, ks->tls_fp, sizeof(d->tls_fp));
		if (ks->tls_server_name && !(d->tls_server_name = strdup(ks->tls_server_name))) {
			kr_keystore_free(d);
			return kr_error_set(err, KR_ENOMEM, "out of memory");
		}
	}
	*out = d;
	return KR_OK;
}

/* Replace *field with a copy of `value` unless equal. */
static enum kr_status kr_ks_set_str(char **field, const char *value)
{
	char *copy;

	if (*field && !strcmp(*field, value))
		return KR_OK;
	copy = strdup(value);
	if (!copy)
		return KR_ENOMEM;
	free(*field);
	*field = copy;
	return KR_OK;
}

enum kr_status kr_keystore_adopt_layout(struct kr_keystore *conn,
					const struct kr_keystore *settings, struct kr_error *err)
{
	if (kr_ks_set_str(&conn->active_set, settings->active_set) != KR_OK ||
	    kr_ks_set_str(&conn->meta_key, settings->meta_key) != KR_OK ||
	    kr_ks_set_str(&conn->bootstrap_key, settings->bootstrap_key) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", conn->server);
	conn->layout.active_set = conn->active_set;
	conn->layout.meta_key = conn->meta_key;
	conn->layout.bootstrap_key = conn->bootstrap_key;
	conn->layout.store_as = settings->layout.store_as;
	return KR_OK;
}

/* SHA-256 (hex) over the connection settings, and the layout too when `layout` is set. */
static void kr_ks_fingerprint(const struct kr_keystore *ks, int layout, char out[65])
{
	struct kr_buf b;
	char pw[65] = "-", spw[65] = "-";

	if (ks->password)
		kr_key_hash_hex_bytes(kr_secret_data(ks->password), kr_secret_len(ks->password),
				      pw);
	if (ks->sentinel_password)
		kr_key_hash_hex_bytes(kr_secret_data(ks->sentinel_password),
				      kr_secret_len(ks->sentinel_password), spw);
	kr_buf_init(&b);
	kr_buf_addf(&b, "%s|%d|%d|%s|%s|%d|%d|%s", ks->host ? ks->host : "", ks->port, ks->database,
		    ks->username ? ks->username : "", pw, ks->connect_timeout_ms,
		    ks->command_timeout_ms, ks->tls_fp);
	if (ks->n_sentinels) {
		kr_buf_addf(&b, "|sentinel|%s|%s|%s", ks->master_name,
			    ks->sentinel_user ? ks->sentinel_user : "", spw);
		for (size_t i = 0; i < ks->n_sentinels; i++)
			kr_buf_addf(&b, "|%s", ks->sentinels[i]);
	}
	if (layout)
		kr_buf_addf(&b, "|%s|%s|%s|%d", ks->active_set, ks->meta_key, ks->bootstrap_key,
			    (int)ks->layout.store_as);
	kr_key_hash_hex_bytes(b.data ? b.data : "", b.len, out);
	kr_buf_release(&b);
}

void kr_keystore_fingerprint(const struct kr_keystore *ks, char out[65])
{
	kr_ks_fingerprint(ks, 1, out);
}

void kr_keystore_server_fingerprint(const struct kr_keystore *ks, char out[65])
{
	kr_ks_fingerprint(ks, 0, out);
}

struct kr_keystore_layout *kr_keystore_layout_copy(const struct kr_keystore *ks)
{
	const char *s[3] = {ks->active_set, ks->meta_key, ks->bootstrap_key};
	size_t len[3], all = sizeof(struct kr_keystore_layout);
	struct kr_keystore_layout *l;
	char *at;

	for (int i = 0; i < 3; i++)
		all += (len[i] = strlen(s[i])) + 1;
	l = malloc(all);
	if (!l)
		return NULL;
	at = (char *)(l + 1);
	for (int i = 0; i < 3; i++) {
		memcpy(at, s[i], len[i] + 1);
		s[i] = at;
		at += len[i] + 1;
	}
	*l = (struct kr_keystore_layout){.active_set = s[0],
					 .meta_key = s[1],
					 .bootstrap_key = s[2],
					 .store_as = ks->layout.store_as};
	return l;
}

void kr_keystore_free(struct kr_keystore *ks)
{
	if (!ks)
		return;
	kr_ks_disconnect(ks);
	SSL_CTX_free(ks->tls);
	free(ks->tls_server_name);
	free(ks->host);
	free(ks->username);
	kr_secret_free(ks->password);
	for (size_t i = 0; i < ks->n_sentinels; i++)
		free(ks->sentinels[i]);
	free(ks->sentinels);
	free(ks->master_name);
	free(ks->sentinel_user);
	kr_secret_free(ks->sentinel_password);
	free(ks->active_set);
	free(ks->meta_key);
	free(ks->bootstrap_key);
	free(ks);
}

const char *kr_keystore_server(const struct kr_keystore *ks)
{
	return ks->server;
}

const char *kr_keystore_master(const struct kr_keystore *ks)
{
	return ks->master;
}

const struct kr_keystore_layout *kr_keystore_get_layout(const struct kr_keystore *ks)
{
	return &ks->layout;
}
