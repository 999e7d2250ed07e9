/* keystore_ref.c - a KeyRotation's keyStoreRef resolved against the KeyStore object it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "rotation/internal.h"

const char *kr_store_ref_kind_name(enum kr_store_ref_kind kind)
{
	switch (kind) {
	case KR_STORE_REF_KEYSTORE:
		return "KeyStore";
	case KR_STORE_REF_CLUSTER:
		return "ClusterKeyStore";
	case KR_STORE_INLINE:
		break;
	}
	return "";
}

/* ---- allowedNamespaces ---- */

static bool in_values(const cJSON *values, const char *v)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, values)
	{
		if (cJSON_IsString(it) && v && strcmp(it->valuestring, v) == 0)
			return true;
	}
	return false;
}

/* metav1.LabelSelector over `labels` (a JSON object, NULL: none). {} matches everything. */
bool kr_label_selector_matches(const cJSON *sel, const cJSON *labels)
{
	const cJSON *it;

	if (!cJSON_IsObject(sel))
		return false;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sel, "matchLabels"))
	{
		const char *have =
		    kr_json_str(labels, (const char *[]){it->string ? it->string : "", NULL});

		if (!cJSON_IsString(it) || !have || strcmp(have, it->valuestring) != 0)
			return false;
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sel, "matchExpressions"))
	{
		const char *key = kr_json_str(it, (const char *[]){"key", NULL});
		const char *op = kr_json_str(it, (const char *[]){"operator", NULL});
		const cJSON *values = cJSON_GetObjectItemCaseSensitive(it, "values");
		const char *have = key ? kr_json_str(labels, (const char *[]){key, NULL}) : NULL;

		if (!key || !op)
			return false;
		if (strcmp(op, "In") == 0	      ? !(have && in_values(values, have))
		    : strcmp(op, "NotIn") == 0	      ? (have && in_values(values, have))
		    : strcmp(op, "Exists") == 0	      ? !have
		    : strcmp(op, "DoesNotExist") == 0 ? have != NULL
						      : true)
			return false;
	}
	return true;
}

bool kr_keystore_object_needs_labels(const cJSON *store, const char *ns)
{
	const cJSON *allowed =
	    kr_json_at(store, (const char *[]){"spec", "allowedNamespaces", NULL});

	return !in_values(cJSON_GetObjectItemCaseSensitive(allowed, "names"), ns) &&
	       cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(allowed, "selector"));
}

bool kr_keystore_object_allows(const cJSON *store, const char *ns, const cJSON *ns_labels)
{
	const cJSON *allowed =
	    kr_json_at(store, (const char *[]){"spec", "allowedNamespaces", NULL});

	/* Labels unknown (NULL) match no selector, not even NotIn, DoesNotExist or {}. */
	return in_values(cJSON_GetObjectItemCaseSensitive(allowed, "names"), ns) ||
	       (ns_labels && kr_label_selector_matches(
				 cJSON_GetObjectItemCaseSensitive(allowed, "selector"), ns_labels));
}

void kr_keystore_object_assume_selector(cJSON *store, const char *ns)
{
	cJSON *allowed, *names;

	if (!kr_keystore_object_needs_labels(store, ns))
		return;
	allowed = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(store, "spec"),
						   "allowedNamespaces");
	names = cJSON_GetObjectItemCaseSensitive(allowed, "names");
	if (!cJSON_IsArray(names)) {
		cJSON_DeleteItemFromObjectCaseSensitive(allowed, "names");
		names = cJSON_AddArrayToObject(allowed, "names");
	}
	cJSON_AddItemToArray(names, cJSON_CreateString(ns));
}

/* ---- layout placeholders ---- */

/* `pattern` with {namespace} and {name} replaced; NULL when out of memory. */
static char *expand(const char *pattern, const char *ns, const char *name)
{
	size_t cap = strlen(pattern) + 1, n = 0;
	char *out;

	for (const char *p = pattern; (p = strchr(p, '{')) != NULL; p++)
		cap += strlen(ns) + strlen(name);
	out = malloc(cap);
	if (!out)
		return NULL;
	for (const char *p = pattern; *p;) {
		const char *with = !strncmp(p, "{namespace}", 11) ? ns
				   : !strncmp(p, "{name}", 6)	  ? name
								  : NULL;

		if (with) {
			memcpy(out + n, with, strlen(with));
			n += strlen(with);
			p += with == ns ? 11 : 6;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return out;
}

static enum kr_status expand_in_place(char **s, const char *ns, const char *name)
{
	char *e = expand(*s, ns, name);

	if (!e)
		return KR_ENOMEM;
	free(*s);
	*s = e;
	return KR_OK;
}

/* ---- check and apply ---- */

enum kr_status kr_keystore_object_decode(const cJSON *store, bool cluster, const char *ns,
					 const char *controller_ns, struct kr_rotation_spec *spec,
					 struct kr_error *err)
{
	const cJSON *sp = kr_json_at(store, (const char *[]){"spec", NULL}), *layout = NULL;
	enum kr_status rc;

	memset(spec, 0, sizeof(*spec));
	spec->store_ref_kind = cluster ? KR_STORE_REF_CLUSTER : KR_STORE_REF_KEYSTORE;
	rc = cJSON_IsObject(sp) ? KR_OK : kr_error_set(err, KR_EINVAL, "spec: required");
	if (rc == KR_OK)
		rc = kr_jr_object(sp, "spec", "layout", &layout, err);
	if (rc == KR_OK)
		rc = kr_spec_decode_store(sp, "spec", layout, "spec.layout", cluster, spec, err);
	if (rc == KR_OK) {
		const char *dns = cluster ? (controller_ns ? controller_ns : "keyrotator-system")
					  : ns;

		rc = kr_store_conn_default_ns(spec, dns);
		if (rc == KR_OK && spec->store_password_name && !spec->store_password_ns &&
		    !(spec->store_password_ns = strdup(dns)))
			rc = KR_ENOMEM;
		if (rc == KR_ENOMEM)
			kr_error_set(err, rc, "out of memory");
	}
	if (rc != KR_OK)
		kr_rotation_spec_release(spec);
	return rc;
}

enum kr_status kr_keystore_object_check(const cJSON *store, bool cluster, char **address,
					struct kr_error *err)
{
	const cJSON *sp = kr_json_at(store, (const char *[]){"spec", NULL}), *layout = NULL;
	struct kr_rotation_spec tmp;
	enum kr_status rc;

	memset(&tmp, 0, sizeof(tmp));
	*address = NULL;
	rc = cJSON_IsObject(sp) ? KR_OK : kr_error_set(err, KR_EINVAL, "spec: required");
	if (rc == KR_OK)
		rc = kr_jr_object(sp, "spec", "layout", &layout, err);
	if (rc == KR_OK)
		rc = kr_spec_decode_store(sp, "spec", layout, "spec.layout", cluster, &tmp, err);
	if (rc == KR_OK) {
		*address = tmp.store_address;
		tmp.store_address = NULL;
	}
	kr_rotation_spec_release(&tmp);
	return rc;
}

static void move_str(char **to, char **from)
{
	free(*to);
	*to = *from;
	*from = NULL;
}

enum kr_status kr_keystore_object_apply(struct kr_rotation_spec *spec, const cJSON *store,
					const char *ns, const char *name, const cJSON *ns_labels,
					const char *controller_ns, char reason[64],
					struct kr_error *err)
{
	bool cluster = spec->store_ref_kind == KR_STORE_REF_CLUSTER;
	const char *kind = kr_store_ref_kind_name(spec->store_ref_kind);
	const cJSON *sp = kr_json_at(store, (const char *[]){"spec", NULL}), *layout = NULL;
	struct kr_rotation_spec tmp;
	enum kr_status rc;

	memset(&tmp, 0, sizeof(tmp));
	reason[0] = '\0';
	if (cluster && !kr_keystore_object_allows(store, ns, ns_labels)) {
		snprintf(reason, 64, "KeyStoreNotAllowed");
		return kr_error_set(err, KR_EAUTH,
				    "ClusterKeyStore %s does not allow namespace %s: its "
				    "spec.allowedNamespaces (names or selector) must list it",
				    spec->store_ref_name, ns);
	}
	rc = cJSON_IsObject(sp) ? KR_OK : kr_error_set(err, KR_EINVAL, "spec: required");
	if (rc == KR_OK)
		rc = kr_jr_object(sp, "spec", "layout", &layout, err);
	if (rc == KR_OK)
		rc = kr_spec_decode_store(sp, "spec", layout, "spec.layout", cluster, &tmp, err);
	if (rc == KR_OK)
		rc = expand_in_place(&tmp.store_active_set, ns, name);
	if (rc == KR_OK)
		rc = expand_in_place(&tmp.store_meta_key, ns, name);
	if (rc == KR_OK)
		rc = expand_in_place(&tmp.store_bootstrap_key, ns, name);
	if (rc == KR_OK && tmp.store_password_name && !tmp.store_password_ns)
		tmp.store_password_ns =
		    strdup(cluster ? (controller_ns ? controller_ns : "keyrotator-system") : ns);
	if (rc == KR_OK && tmp.store_password_name && !tmp.store_password_ns)
		rc = KR_ENOMEM;
	if (rc == KR_OK) /* tls and sentinel Secrets: where the password's would be */
		rc = kr_store_conn_default_ns(
		    &tmp, cluster ? (controller_ns ? controller_ns : "keyrotator-system") : ns);
	if (rc != KR_OK) {
		if (rc == KR_ENOMEM)
			kr_error_set(err, rc, "out of memory");
		else
			snprintf(reason, 64, "KeyStoreInvalid");
		kr_error_prefix(err, "%s %s%s%s is not usable: ", kind, cluster ? "" : ns,
				cluster ? "" : "/", spec->store_ref_name);
		kr_rotation_spec_release(&tmp);
		return rc;
	}
	move_str(&spec->store_address, &tmp.store_address);
	move_str(&spec->store_username, &tmp.store_username);
	move_str(&spec->store_password_name, &tmp.store_password_name);
	move_str(&spec->store_password_key, &tmp.store_password_key);
	move_str(&spec->store_password_ns, &tmp.store_password_ns);
	move_str(&spec->store_active_set, &tmp.store_active_set);
	move_str(&spec->store_meta_key, &tmp.store_meta_key);
	move_str(&spec->store_bootstrap_key, &tmp.store_bootstrap_key);
	spec->store_database = tmp.store_database;
	spec->store_as = tmp.store_as;
	kr_store_conn_spec_release(spec);
	spec->store_tls = tmp.store_tls;
	spec->store_sentinel = tmp.store_sentinel;
	memset(&tmp.store_tls, 0, sizeof(tmp.store_tls));
	memset(&tmp.store_sentinel, 0, sizeof(tmp.store_sentinel));
	kr_rotation_spec_release(&tmp);
	return KR_OK;
}
