/* keys_list.c - `keyrotator keys list|verify`: what the store holds, read only. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/keys_internal.h"

static const char *kr_keys_status(const struct kr_key_info *k)
{
	if (k->active)
		return "active";
	if (!k->status || !strcmp(k->status, "active"))
		return k->status ? "missing" : "unknown";
	return k->status;
}

static void kr_keys_json_str(cJSON *obj, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
}

static int kr_keys_print_json(const struct kr_key_info *infos, size_t n, const char *current)
{
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", infos[i].id);
		cJSON_AddStringToObject(o, "status", kr_keys_status(&infos[i]));
		cJSON_AddBoolToObject(o, "active", infos[i].active);
		cJSON_AddBoolToObject(o, "current", !strcmp(current, infos[i].id));
		kr_keys_json_str(o, "label", infos[i].label);
		kr_keys_json_str(o, "created_at", infos[i].created_at);
		kr_keys_json_str(o, "revoked_at", infos[i].revoked_at);
		kr_keys_json_str(o, "last_used_at", infos[i].last_used_at);
		kr_keys_json_str(o, "rotation", infos[i].rotation);
	}
	text = arr ? cJSON_Print(arr) : NULL;
	cJSON_Delete(arr);
	if (!text)
		return kr_cli_fail(KR_EXIT_FAIL, "keys list", "out of memory");
	printf("%s\n", text);
	free(text);
	return KR_EXIT_OK;
}

static void kr_keys_print_table(const struct kr_key_info *infos, size_t n, const char *current)
{
	int marked = 0;

	printf("%-13s  %-8s  %-20s  %-20s  %-20s  %s\n", "ID", "STATUS", "CREATED", "REVOKED",
	       "LAST USED", "LABEL");
	for (size_t i = 0; i < n; i++) {
		const struct kr_key_info *k = &infos[i];
		int cur = !strcmp(current, k->id);

		marked |= cur;
		printf("%s%-*s  %-8s  %-20s  %-20s  %-20s  %s\n", k->id, 13 - KR_KEY_ID_LEN,
		       cur ? "*" : "", kr_keys_status(k), k->created_at ? k->created_at : "-",
		       k->revoked_at ? k->revoked_at : "-", k->last_used_at ? k->last_used_at : "-",
		       k->label ? k->label : "-");
	}
	if (marked)
		printf("(* the bootstrap marker holds this id)\n");
}

int kr_keys_list(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_key_info *infos = NULL;
	struct kr_error err;
	char current[64];
	size_t n = 0;
	int rc;

	kr_error_clear(&err);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_keystore_list(ks, &infos, &n, &err) != KR_OK ||
	    kr_keystore_get_bootstrap(ks, current, sizeof(current), &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	if (a->json) {
		rc = kr_keys_print_json(infos, n, current);
	} else {
		kr_keys_print_table(infos, n, current);
		if (n == 0)
			fprintf(stderr, "no keys in %s (activeSet %s)\n", kr_keystore_server(ks),
				kr_keystore_get_layout(ks)->active_set);
	}
out:
	kr_key_info_free_array(infos, n);
	kr_keystore_free(ks);
	return rc;
}

int kr_keys_verify(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc = kr_keys_single_key(a, &key), active = 0;

	kr_error_clear(&err);
	if (rc != KR_EXIT_OK)
		return rc;
	kr_key_id(key, id);
	if (!a->any_format &&
	    kr_key_check(kr_secret_data(key), kr_secret_len(key), &err) != KR_OK) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb,
				 "key %s rejected without a store lookup: %s "
				 "(for a key made elsewhere add --any-format)",
				 id, err.msg);
		goto out;
	}
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		goto out;
	if (kr_keystore_is_active(ks, key, &active, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	printf("key %s is %sactive\n", id, active ? "" : "not ");
	rc = active ? KR_EXIT_OK : KR_EXIT_FAIL;
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}
