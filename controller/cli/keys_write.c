/* keys_write.c - `keyrotator keys create|revoke|reconcile`: the commands that change keys. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "cli/keys_internal.h"

int kr_keys_create(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc, active = 0;

	kr_error_clear(&err);
	if (kr_key_prefix_check(a->prefix, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--prefix: %s", err.msg);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	struct kr_key_meta meta = {a->label, a->rotation, NULL};
	if (kr_key_generate(a->prefix, (int)a->bytes, &key, &err) != KR_OK ||
	    kr_keystore_activate(ks, key, &meta, NULL, &err) != KR_OK ||
	    kr_keystore_is_active(ks, key, &active, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	kr_key_id(key, id);
	if (!active) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb, "%s: key %s does not read back as active",
				 kr_keystore_server(ks), id);
		goto out;
	}
	if (a->bootstrap && kr_keystore_set_bootstrap(ks, id, NULL, &err) != KR_OK) {
		kr_keystore_revoke_key(ks, key, NULL, NULL);
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	/* the one line on stdout; a key nobody received must not stay valid */
	if (fwrite(kr_secret_data(key), 1, kr_secret_len(key), stdout) != kr_secret_len(key) ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		kr_keystore_revoke_key(ks, key, NULL, NULL);
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb,
				 "cannot write the key to stdout (%s); key "
				 "%s revoked again",
				 strerror(errno), id);
		goto out;
	}
	fprintf(stderr, "created key %s in %s (activeSet %s, %s layout%s%s%s)%s\n", id,
		kr_keystore_server(ks), kr_keystore_get_layout(ks)->active_set,
		kr_store_as_name(kr_keystore_get_layout(ks)->store_as),
		a->label ? ", label \"" : "", a->label ? a->label : "", a->label ? "\"" : "",
		a->bootstrap ? "; bootstrap marker set" : "");
	rc = KR_EXIT_OK;
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}

static int kr_keys_revoke_by_id(struct kr_keys_args *a, struct kr_keystore *ks, const char *id)
{
	struct kr_secret *member = NULL;
	enum kr_revoke_outcome out = KR_REVOKE_ABSENT;
	struct kr_error err;
	int rc;

	kr_error_clear(&err);
	if (kr_keystore_find_member(ks, id, &member, &err) != KR_OK ||
	    kr_keystore_revoke_member(ks, member, &out, &err) != KR_OK)
		rc = kr_keys_store_fail(a, &err);
	else if (out == KR_REVOKE_DONE)
		rc = printf("revoked key %s\n", id) < 0 ? KR_EXIT_FAIL : KR_EXIT_OK;
	else
		rc = printf("key %s was already revoked\n", id) < 0 ? KR_EXIT_FAIL : KR_EXIT_OK;
	kr_secret_free(member);
	return rc;
}

int kr_keys_revoke(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	enum kr_revoke_outcome out = KR_REVOKE_ABSENT;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc = kr_keys_single_key(a, &key);

	kr_error_clear(&err);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_key_id_valid(kr_secret_data(key))) {
		memcpy(id, kr_secret_data(key), sizeof(id));
		rc = kr_keys_open(a, &ks);
		if (rc == KR_EXIT_OK)
			rc = kr_keys_revoke_by_id(a, ks, id);
		goto out;
	}
	if (!a->any_format &&
	    kr_key_check(kr_secret_data(key), kr_secret_len(key), &err) != KR_OK) {
		rc = kr_cli_usage_error(a->verb,
					"not a key id (12 hex digits) nor a keyrotator key: "
					"%s; for a key made elsewhere add --any-format",
					err.msg);
		goto out;
	}
	kr_key_id(key, id);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		goto out;
	if (kr_keystore_revoke_key(ks, key, &out, &err) != KR_OK)
		rc = kr_keys_store_fail(a, &err);
	else if (out == KR_REVOKE_ABSENT)
		rc =
		    kr_cli_fail(KR_EXIT_FAIL, a->verb,
				"%s: key %s is not in activeSet %s and has "
				"no metadata",
				kr_keystore_server(ks), id, kr_keystore_get_layout(ks)->active_set);
	else
		printf(out == KR_REVOKE_DONE ? "revoked key %s\n" : "key %s was already revoked\n",
		       id);
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}

static int kr_keys_reconcile_run(struct kr_keys_args *a, struct kr_secret **keys, size_t n)
{
	struct kr_keystore *ks = NULL;
	struct kr_keystore_repair rep;
	struct kr_error err;
	struct kr_buf text;
	char cur[KR_KEY_ID_LEN + 1];
	int rc;

	kr_error_clear(&err);
	kr_keystore_repair_init(&rep);
	kr_buf_init(&text);
	kr_key_id(keys[0], cur);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_keystore_reconcile(ks, (const struct kr_secret *const *)keys, n,
				  a->no_bootstrap ? NULL : cur, a->rotation, &rep, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	if (kr_keystore_repair_describe(&rep, kr_keystore_get_layout(ks)->active_set, &text) !=
	    KR_OK) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb, "out of memory");
		goto out;
	}
	printf("%s: %s\n", kr_keystore_server(ks), text.data);
out:
	kr_buf_release(&text);
	kr_keystore_repair_release(&rep);
	kr_keystore_free(ks);
	return rc;
}

int kr_keys_reconcile(struct kr_keys_args *a)
{
	struct kr_secret *keys[KR_KEYS_MAX_SOURCES] = {0};
	struct kr_error err;
	int rc = KR_EXIT_OK;

	kr_error_clear(&err);
	if (a->sources.n == 0)
		return kr_cli_usage_error(a->verb, "give the deployed key: --key-from-env VAR or "
						   "--key-file FILE");
	for (size_t i = 0; i < a->sources.n && rc == KR_EXIT_OK; i++) {
		char id[KR_KEY_ID_LEN + 1];

		if (kr_keys_load_key(a->sources.values[i], a->sources.tags[i] == KR_SOURCE_ENV,
				     &keys[i], &err) != KR_OK) {
			rc = kr_cli_usage_error(a->verb, "%s", err.msg);
			break;
		}
		kr_key_id(keys[i], id);
		if (kr_key_check(kr_secret_data(keys[i]), kr_secret_len(keys[i]), NULL) != KR_OK)
			fprintf(stderr,
				"note: key %s is not in keyrotator's format (a legacy key); "
				"reconciling it as it is\n",
				id);
	}
	if (rc == KR_EXIT_OK)
		rc = kr_keys_reconcile_run(a, keys, a->sources.n);
	for (size_t i = 0; i < a->sources.n; i++)
		kr_secret_free(keys[i]);
	return rc;
}
