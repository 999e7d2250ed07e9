/* secrets.c - Secret data in and out of wiped buffers. */
#include <string.h>

#include <openssl/evp.h>

#include "reconciler/internal.h"

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
	cJSON *data = cJSON_GetObjectItemCaseSensitive(secret, "data"), *item;

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
	if (cJSON_GetObjectItemCaseSensitive(data, key))
		cJSON_ReplaceItemInObjectCaseSensitive(data, key, item);
	else
		cJSON_AddItemToObject(data, key, item);
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
