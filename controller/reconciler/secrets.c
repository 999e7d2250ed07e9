/* secrets.c - Secret data in and out of wiped buffers, and whether a Secret opted in. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "reconciler/internal.h"

enum kr_status kr_secret_ref_value(enum kr_status rc, cJSON *sec, const char *field,
				   const char *ns, const char *name, const char *key,
				   size_t max_text, struct kr_secret **out, struct kr_error *err)
{
	*out = NULL;
	if (rc == KR_ENOTFOUND)
		return kr_error_set(err, rc, "%s: Secret %s/%s not found", field, ns, name);
	if (rc != KR_OK)
		return kr_error_prefix(err, "%s: Secret %s/%s: ", field, ns, name);
	*out = kr_secret_data_get_max(sec, key, max_text);
	kr_json_wipe_delete(sec);
	if (!*out)
		return kr_error_set(err, KR_EINVAL,
				    "%s: Secret %s/%s has no key %s (or not base64)", field, ns,
				    name, key);
	return KR_OK;
}

struct kr_secret *kr_secret_data_get_max(const cJSON *secret, const char *key, size_t max_text)
{
	const char *b64 = kr_json_str(secret, (const char *[]){"data", key, NULL});
	struct kr_secret *out = NULL, *tmp;
	size_t len, pad = 0;
	int n;

	if (!b64 || !b64[0])
		return NULL;
	len = strlen(b64);
	if (len % 4 != 0 || len > max_text)
		return NULL;
	while (pad < 2 && b64[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (!((b64[i] >= 'A' && b64[i] <= 'Z') || (b64[i] >= 'a' && b64[i] <= 'z') ||
		      (b64[i] >= '0' && b64[i] <= '9') || b64[i] == '+' || b64[i] == '/'))
			return NULL; /* not standard base64 (or more than two '=') */
	tmp = kr_secret_alloc(len / 4 * 3 + 1);
	if (!tmp)
		return NULL;
	n = EVP_DecodeBlock((unsigned char *)kr_secret_mut(tmp), (const unsigned char *)b64,
			    (int)len);
	if (n >= 0 && (size_t)n > pad)
		out = kr_secret_new(kr_secret_data(tmp), (size_t)n - pad);
	kr_secret_free(tmp);
	return out;
}

struct kr_secret *kr_secret_data_get(const cJSON *secret, const char *key)
{
	return kr_secret_data_get_max(secret, key, KR_SECRET_TEXT_MAX);
}

enum kr_status kr_secret_data_set(cJSON *secret, const char *key, const struct kr_secret *value)
{
	size_t len = kr_secret_len(value);
	struct kr_secret *b64 = kr_secret_alloc((len + 2) / 3 * 4 + 1);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data"), *item, *old;

	if (!b64)
		return KR_ENOMEM;
	EVP_EncodeBlock((unsigned char *)kr_secret_mut(b64),
			(const unsigned char *)kr_secret_data(value), (int)len);
	if (!cJSON_IsObject(data)) {
		cJSON_DeleteItemFromObjectCaseSensitive(secret, "data");
		data = cJSON_AddObjectToObject(secret, "data");
	}
	item = data ? cJSON_CreateString(kr_secret_data(b64)) : NULL;
	kr_secret_free(b64);
	if (!item)
		return KR_ENOMEM;
	old = cJSON_GetObjectItemCaseSensitive(data, key);
	if (old) {
		/* The value replaced is a key too: wipe it before cJSON frees it. */
		if (cJSON_IsString(old) && old->valuestring)
			explicit_bzero(old->valuestring, strlen(old->valuestring));
		cJSON_ReplaceItemInObjectCaseSensitive(data, key, item);
	} else {
		cJSON_AddItemToObject(data, key, item);
	}
	return KR_OK;
}

static void kr_json_wipe(cJSON *obj)
{
	cJSON *it;

	if (cJSON_IsString(obj) && obj->valuestring)
		explicit_bzero(obj->valuestring, strlen(obj->valuestring));
	cJSON_ArrayForEach(it, obj)
	{
		kr_json_wipe(it);
	}
}

void kr_json_wipe_delete(cJSON *obj)
{
	if (!obj)
		return;
	kr_json_wipe(obj);
	cJSON_Delete(obj);
}

/* ---- who may use a Secret (design.md §1b) ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Is `name` one of the comma-separated names of `list` (blanks around a name ignored)? */
static bool list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (n > 0 && *list) {
		size_t len = strcspn(list, ",");
		const char *p = list, *end = list + len;

		while (p < end && is_blank(*p))
			p++;
		while (end > p && is_blank(end[-1]))
			end--;
		if ((size_t)(end - p) == n && memcmp(p, name, n) == 0)
			return true;
		list += len;
		if (*list == ',')
			list++;
	}
	return false;
}

bool kr_secret_opted_in(const cJSON *secret, const char *kr_name)
{
	const char *v = kr_json_str(
	    secret, (const char *[]){"metadata", "annotations", KR_ANNOTATION_KEYROTATION, NULL});

	return v && kr_name && list_has(v, kr_name);
}

bool kr_secret_created_for(const cJSON *secret, const char *kr_name)
{
	const char *by = kr_json_str(
	    secret, (const char *[]){"metadata", "labels", KR_INFORMER_MANAGED_LABEL, NULL});
	const char *kr = kr_json_str(
	    secret, (const char *[]){"metadata", "labels", KR_ANNOTATION_KEYROTATION, NULL});

	return by && kr && kr_name && kr_name[0] && strcmp(by, "keyrotator") == 0 &&
	       strcmp(kr, kr_name) == 0;
}

bool kr_secret_owned_by(const cJSON *secret, const char *uid)
{
	const cJSON *refs =
	    kr_json_at(secret, (const char *[]){"metadata", "ownerReferences", NULL});
	const cJSON *ref;

	if (!uid || !uid[0] || !cJSON_IsArray(refs))
		return false;
	cJSON_ArrayForEach(ref, refs)
	{
		const char *kind = kr_json_str(ref, (const char *[]){"kind", NULL});
		const char *u = kr_json_str(ref, (const char *[]){"uid", NULL});

		if (kind && u && strcmp(kind, "KeyRotation") == 0 && strcmp(u, uid) == 0)
			return true;
	}
	return false;
}

void kr_refuse(struct kr_observed *obs, const char *reason, const char *fmt, ...)
{
	va_list ap;

	if (obs->refusal_reason[0])
		return;
	snprintf(obs->refusal_reason, sizeof(obs->refusal_reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(obs->refusal, sizeof(obs->refusal), fmt, ap);
	va_end(ap);
}

bool kr_secrets_usable(struct kr_observed *obs, const char *uid, const char *secret_name,
		       const char *rsecret_name, const cJSON *consumer, const cJSON *rsecret)
{
	const char *ns = obs->ns ? obs->ns : "", *name = obs->name ? obs->name : "";

	if (strcmp(secret_name, rsecret_name) == 0) {
		kr_refuse(obs, "InvalidSecretRef",
			  "spec.secretRef.name: Secret %s/%s is this KeyRotation's own rotation "
			  "Secret, which holds the keys in flight; name the consumers' Secret",
			  ns, rsecret_name);
		return false;
	}
	if (consumer && !kr_secret_opted_in(consumer, name) &&
	    !kr_secret_created_for(consumer, name)) {
		kr_refuse(obs, "SecretNotOptedIn",
			  "Secret %s/%s is not managed by this KeyRotation: add the annotation "
			  "%s: %s to it (someone who may edit that Secret must opt it in)",
			  ns, secret_name, KR_ANNOTATION_KEYROTATION, name);
		return false;
	}
	if (rsecret && !kr_secret_owned_by(rsecret, uid)) {
		kr_refuse(
		    obs, "RotationSecretNotOwned",
		    "Secret %s/%s is not owned by this KeyRotation (no ownerReference to "
		    "KeyRotation %s with uid %s): delete or rename that Secret, or rename the "
		    "KeyRotation",
		    ns, rsecret_name, name, uid ? uid : "");
		return false;
	}
	return true;
}
