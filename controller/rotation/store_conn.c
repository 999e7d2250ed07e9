/* store_conn.c - a key store's tls and sentinel settings, decoded and checked as the CRDs say. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "rotation/internal.h"

static const struct kr_jr_rule R_SERVER_NAME = {1, 253, NULL, NULL};
static const struct kr_jr_rule R_MASTER_NAME = {1, 128, NULL, NULL};
static const struct kr_jr_rule R_SENTINEL_USER = {0, 128, NULL, NULL};

#define PATH_LEN 256

/* A Secret reference {name, key (default `def_key`; NULL: no key field), namespace}. */
static enum kr_status decode_ref(const cJSON *obj, const char *path, const char *field,
				 const char *def_key, bool with_ns, char **name, char **key,
				 char **ns, struct kr_error *err)
{
	const cJSON *ref = NULL;
	char rpath[PATH_LEN];
	enum kr_status rc = kr_jr_object(obj, path, field, &ref, err);

	if (rc != KR_OK || !ref)
		return rc;
	kr_jr_path(rpath, sizeof(rpath), path, field);
	rc = kr_jr_require(ref, rpath, "name", err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, rpath, "name", NULL, &KR_JR_SUBDOMAIN, name, err);
	if (rc == KR_OK && key)
		rc = kr_jr_str(ref, rpath, "key", def_key, &KR_JR_DATA_KEY, key, err);
	if (rc == KR_OK && with_ns)
		rc = kr_jr_str(ref, rpath, "namespace", NULL, &KR_JR_LABEL, ns, err);
	return rc;
}

static enum kr_status decode_tls(const cJSON *conn, const char *p, bool with_ns,
				 struct kr_store_tls_spec *t, struct kr_error *err)
{
	const cJSON *tls = NULL;
	char tp[PATH_LEN];
	enum kr_status rc = kr_jr_object(conn, p, "tls", &tls, err);

	if (rc != KR_OK || !tls)
		return rc;
	t->enabled = true;
	kr_jr_path(tp, sizeof(tp), p, "tls");
	rc = decode_ref(tls, tp, "caSecretRef", "ca.crt", with_ns, &t->ca_name, &t->ca_key,
			&t->ca_ns, err);
	if (rc == KR_OK)
		rc = decode_ref(tls, tp, "clientCertSecretRef", NULL, with_ns, &t->cert_name, NULL,
				&t->cert_ns, err);
	if (rc == KR_OK)
		rc = kr_jr_str(tls, tp, "serverName", NULL, &R_SERVER_NAME, &t->server_name, err);
	if (rc == KR_OK && t->server_name &&
	    (!kr_jr_check_dns_subdomain(t->server_name) && !strchr(t->server_name, ':') &&
	     strspn(t->server_name, "0123456789.") != strlen(t->server_name)))
		rc = kr_error_set(err, KR_EINVAL,
				  "%s.serverName: \"%.64s\" is not a DNS name or an IP address", tp,
				  t->server_name);
	return rc;
}

static enum kr_status decode_sentinel(const cJSON *conn, const char *p, bool with_ns,
				      struct kr_store_sentinel_spec *s, struct kr_error *err)
{
	const cJSON *sen = NULL, *addrs = NULL, *it;
	char sp[PATH_LEN], ap[PATH_LEN];
	size_t n = 0;
	enum kr_status rc = kr_jr_object(conn, p, "sentinel", &sen, err);

	if (rc != KR_OK || !sen)
		return rc;
	kr_jr_path(sp, sizeof(sp), p, "sentinel");
	rc = kr_jr_require(sen, sp, "addresses", err);
	if (rc == KR_OK)
		rc = kr_jr_require(sen, sp, "masterName", err);
	if (rc == KR_OK)
		rc = kr_jr_array(sen, sp, "addresses", 16, &addrs, err);
	if (rc == KR_OK && cJSON_GetArraySize(addrs) == 0)
		rc = kr_error_set(err, KR_EINVAL, "%s.addresses: at least one sentinel", sp);
	if (rc == KR_OK &&
	    !(s->addresses = calloc((size_t)cJSON_GetArraySize(addrs), sizeof(char *))))
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, addrs)
	{
		cJSON *wrap;

		if (rc != KR_OK)
			break;
		snprintf(ap, sizeof(ap), "%s.addresses[%zu]", sp, n);
		/* kr_jr_str reads a member: the element goes through a one-member object. */
		wrap = cJSON_CreateObject();
		if (!wrap || !cJSON_AddItemReferenceToObject(wrap, "a", (cJSON *)it)) {
			cJSON_Delete(wrap);
			rc = kr_error_set(err, KR_ENOMEM, "out of memory");
			break;
		}
		rc = kr_jr_str(wrap, ap, "a", NULL, &KR_JR_ADDRESS, &s->addresses[n], err);
		cJSON_Delete(wrap);
		if (rc != KR_OK)
			kr_error_set(err, KR_EINVAL, "%s: not a host:port address", ap);
		else
			s->n_addresses = ++n;
	}
	if (rc == KR_OK)
		rc = kr_jr_str(sen, sp, "masterName", NULL, &R_MASTER_NAME, &s->master_name, err);
	if (rc == KR_OK)
		rc = kr_jr_str(sen, sp, "username", NULL, &R_SENTINEL_USER, &s->username, err);
	if (rc == KR_OK && s->username && !s->username[0]) {
		free(s->username);
		s->username = NULL;
	}
	if (rc == KR_OK)
		rc = decode_ref(sen, sp, "passwordSecretRef", NULL, with_ns, &s->password_name,
				&s->password_key, &s->password_ns, err);
	if (rc == KR_OK && s->password_name && !s->password_key)
		rc = kr_error_set(err, KR_EINVAL, "%s.passwordSecretRef.key: required", sp);
	return rc;
}

enum kr_status kr_spec_decode_store_conn(const cJSON *conn, const char *p, bool with_ns,
					 struct kr_rotation_spec *out, struct kr_error *err)
{
	enum kr_status rc = decode_tls(conn, p, with_ns, &out->store_tls, err);

	if (rc == KR_OK)
		rc = decode_sentinel(conn, p, with_ns, &out->store_sentinel, err);
	if (rc == KR_OK && !out->store_address && !out->store_sentinel.n_addresses)
		rc = kr_error_set(err, KR_EINVAL, "%s.address: required (or %s.sentinel)", p, p);
	if (rc == KR_OK && out->store_address && out->store_sentinel.n_addresses)
		rc = kr_error_set(err, KR_EINVAL,
				  "%s: set exactly one of address and sentinel (the sentinels "
				  "name the master)",
				  p);
	return rc;
}

/* Each namespace field that is NULL gets `ns` (a copy). */
enum kr_status kr_store_conn_default_ns(struct kr_rotation_spec *spec, const char *ns)
{
	char **fields[] = {&spec->store_tls.ca_ns, &spec->store_tls.cert_ns,
			   &spec->store_sentinel.password_ns};
	const char *names[] = {spec->store_tls.ca_name, spec->store_tls.cert_name,
			       spec->store_sentinel.password_name};

	for (size_t i = 0; i < 3; i++)
		if (names[i] && !*fields[i] && !(*fields[i] = strdup(ns)))
			return KR_ENOMEM;
	return KR_OK;
}

void kr_store_conn_spec_release(struct kr_rotation_spec *spec)
{
	struct kr_store_tls_spec *t = &spec->store_tls;
	struct kr_store_sentinel_spec *s = &spec->store_sentinel;

	free(t->ca_name);
	free(t->ca_key);
	free(t->ca_ns);
	free(t->cert_name);
	free(t->cert_ns);
	free(t->server_name);
	for (size_t i = 0; s->addresses && i < s->n_addresses; i++)
		free(s->addresses[i]);
	free(s->addresses);
	free(s->master_name);
	free(s->username);
	free(s->password_name);
	free(s->password_key);
	free(s->password_ns);
	memset(t, 0, sizeof(*t));
	memset(s, 0, sizeof(*s));
}
