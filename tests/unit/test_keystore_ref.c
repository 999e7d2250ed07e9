/* test_keystore_ref.c - keyStoreRef resolved against KeyStore / ClusterKeyStore objects:
 * allowedNamespaces (names, label selectors), layout placeholders, password namespaces, and
 * invalid stores refused with a reason and a message that names the store and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/rotation.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define KR_SPEC(kind)                                                                              \
	"{\"secretRef\":{\"name\":\"k\",\"key\":\"K\"},\"keyStoreRef\":{\"kind\":\"" kind          \
	"\",\"name\":\"shared\"},\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":"            \
	"\"Deployment\",\"name\":\"d\"}]}]}"

static void decode(const char *kind, struct kr_rotation_spec *s)
{
	struct kr_error err;
	cJSON *j = cJSON_Parse(strcmp(kind, "KeyStore") ? KR_SPEC("ClusterKeyStore")
							: KR_SPEC("KeyStore"));

	assert_non_null(j);
	if (kr_rotation_spec_decode(j, s, &err) != KR_OK)
		fail_msg("%s", err.msg);
	assert_null(s->store_address); /* nothing until the store is applied */
	cJSON_Delete(j);
}

#define ADDR "\"address\":\"valkey.shared:6379\""

/* ClusterKeyStore allowedNamespaces over namespace "team-a" with labels {tier: prod}. */
static const struct {
	const char *allowed; /* the JSON of spec.allowedNamespaces, or NULL: absent */
	bool labels_known;
	bool allows;
} allow_cases[] = {
    {NULL, true, false}, /* absent: no namespace */
    {"{}", true, false},
    {"{\"names\":[\"team-b\"]}", true, false},
    {"{\"names\":[\"team-b\",\"team-a\"]}", true, true},
    {"{\"names\":[\"team\"]}", true, false}, /* a prefix is not the name */
    {"{\"selector\":{}}", true, true},	     /* every namespace */
    {"{\"selector\":{\"matchLabels\":{\"tier\":\"prod\"}}}", true, true},
    {"{\"selector\":{\"matchLabels\":{\"tier\":\"dev\"}}}", true, false},
    {"{\"selector\":{\"matchLabels\":{\"tier\":\"prod\",\"x\":\"y\"}}}", true, false},
    {"{\"selector\":{\"matchLabels\":{\"tier\":\"prod\"}}}", false, false}, /* unknown */
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\","
     "\"values\":[\"dev\",\"prod\"]}]}}",
     true, true},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\","
     "\"values\":[\"prod\"]}]}}",
     true, false},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\"}]}}", true,
     true},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":"
     "\"DoesNotExist\"}]}}",
     true, false},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Bogus\"}]}}", true,
     false},
    {"{\"names\":[\"team-b\"],\"selector\":{\"matchLabels\":{\"tier\":\"prod\"}}}", true, true},
    /* labels unknown (the Namespace could not be read): no selector matches */
    {"{\"selector\":{}}", false, false},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"NotIn\","
     "\"values\":[\"dev\"]}]}}",
     false, false},
    {"{\"selector\":{\"matchExpressions\":[{\"key\":\"x\",\"operator\":\"DoesNotExist\"}]}}", false,
     false},
    {"{\"names\":[\"team-a\"],\"selector\":{}}", false, true}, /* by name */
};

static void test_cluster_store_allowed_namespaces(void **state)
{
	cJSON *labels = cJSON_Parse("{\"tier\":\"prod\"}");

	(void)state;
	for (size_t i = 0; i < N(allow_cases); i++) {
		char json[1024], reason[64];
		struct kr_rotation_spec s;
		struct kr_error err;
		cJSON *store;
		enum kr_status rc;

		snprintf(json, sizeof(json), "{\"spec\":{" ADDR "%s%s}}",
			 allow_cases[i].allowed ? ",\"allowedNamespaces\":" : "",
			 allow_cases[i].allowed ? allow_cases[i].allowed : "");
		store = cJSON_Parse(json);
		assert_non_null(store);
		decode("ClusterKeyStore", &s);
		kr_error_clear(&err);
		rc = kr_keystore_object_apply(&s, store, "team-a", "kr",
					      allow_cases[i].labels_known ? labels : NULL, NULL,
					      reason, &err);
		if ((rc == KR_OK) != allow_cases[i].allows)
			fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
		if (rc != KR_OK) {
			assert_int_equal(rc, KR_EAUTH);
			assert_string_equal(reason, "KeyStoreNotAllowed");
			assert_non_null(strstr(err.msg, "ClusterKeyStore shared"));
			assert_non_null(strstr(err.msg, "namespace team-a"));
			assert_null(s.store_address); /* nothing applied */
		} else {
			assert_string_equal(s.store_address, "valkey.shared:6379");
		}
		kr_rotation_spec_release(&s);
		cJSON_Delete(store);
	}
	cJSON_Delete(labels);
}

static void test_layout_placeholders_and_password_namespace(void **state)
{
	cJSON *cks = cJSON_Parse(
	    "{\"spec\":{" ADDR ",\"database\":3,\"username\":\"kr\",\"passwordSecretRef\":"
	    "{\"name\":\"pw\",\"key\":\"password\"},\"layout\":{\"activeSet\":"
	    "\"{namespace}:api_keys:active\",\"metaKey\":\"{namespace}:{name}:{id}:meta\","
	    "\"bootstrapKey\":\"{namespace}:{name}:bootstrap\",\"storeAs\":\"plaintext\"},"
	    "\"allowedNamespaces\":{\"names\":[\"team-a\"]}}}");
	cJSON *cks_ns = cJSON_Parse("{\"spec\":{" ADDR ",\"passwordSecretRef\":{\"namespace\":"
				    "\"vault\",\"name\":\"pw\",\"key\":\"p\"},"
				    "\"allowedNamespaces\":{\"names\":[\"team-a\"]}}}");
	cJSON *ks = cJSON_Parse("{\"spec\":{" ADDR ",\"passwordSecretRef\":{\"name\":\"pw\","
				"\"key\":\"p\"}}}");
	struct kr_rotation_spec s;
	struct kr_error err;
	char reason[64];

	(void)state;
	decode("ClusterKeyStore", &s);
	assert_int_equal(
	    kr_keystore_object_apply(&s, cks, "team-a", "payments", NULL, "kr-sys", reason, &err),
	    KR_OK);
	assert_string_equal(s.store_active_set, "team-a:api_keys:active");
	assert_string_equal(s.store_meta_key, "team-a:payments:{id}:meta");
	assert_string_equal(s.store_bootstrap_key, "team-a:payments:bootstrap");
	assert_int_equal(s.store_as, KR_ROT_STORE_PLAINTEXT);
	assert_int_equal(s.store_database, 3);
	assert_string_equal(s.store_username, "kr");
	assert_string_equal(s.store_password_ns, "kr-sys"); /* the controller's namespace */
	kr_rotation_spec_release(&s);

	decode("ClusterKeyStore", &s);
	assert_int_equal(
	    kr_keystore_object_apply(&s, cks_ns, "team-a", "payments", NULL, NULL, reason, &err),
	    KR_OK);
	assert_string_equal(s.store_password_ns, "vault");
	assert_string_equal(s.store_active_set, "api_keys:active"); /* the defaults */
	kr_rotation_spec_release(&s);

	/* A namespaced KeyStore: its password Secret is in its (the KeyRotation's) namespace. */
	decode("KeyStore", &s);
	assert_int_equal(
	    kr_keystore_object_apply(&s, ks, "team-a", "payments", NULL, "kr-sys", reason, &err),
	    KR_OK);
	assert_string_equal(s.store_password_ns, "team-a");
	kr_rotation_spec_release(&s);
	cJSON_Delete(cks);
	cJSON_Delete(cks_ns);
	cJSON_Delete(ks);
}

/* A KeyStore cannot name a password Secret in another namespace. */
static const struct {
	const char *store;
	const char *msg;
} invalid[] = {
    {"{}", "KeyStore team-a/shared is not usable: spec: required"},
    {"{\"spec\":{}}", "KeyStore team-a/shared is not usable: spec.address: required"},
    {"{\"spec\":{\"address\":\"nope\"}}",
     "KeyStore team-a/shared is not usable: spec.address: \"nope\" does not match host:port"},
    {"{\"spec\":{" ADDR ",\"layout\":{\"metaKey\":\"m\"}}}",
     "KeyStore team-a/shared is not usable: spec.layout.metaKey: length 1 is outside"},
    {"{\"spec\":{" ADDR ",\"layout\":{\"storeAs\":\"md5\"}}}",
     "KeyStore team-a/shared is not usable: spec.layout.storeAs: \"md5\" is not one of sha256, "
     "plaintext"},
    {"{\"spec\":{" ADDR ",\"layout\":{\"activeSet\":\"x\",\"bootstrapKey\":\"x\"}}}",
     "KeyStore team-a/shared is not usable: spec.layout.bootstrapKey: \"x\" is also the "
     "activeSet"},
    {"{\"spec\":{" ADDR ",\"passwordSecretRef\":{\"name\":\"pw\"}}}",
     "KeyStore team-a/shared is not usable: spec.passwordSecretRef.key: required"},
    /* tls and sentinel (issue 22) */
    {"{\"spec\":{" ADDR ",\"tls\":{\"serverName\":\"a b\"}}}",
     "KeyStore team-a/shared is not usable: spec.tls.serverName: \"a b\" is not a DNS name"},
    {"{\"spec\":{" ADDR ",\"tls\":{\"caSecretRef\":{\"key\":\"ca.crt\"}}}}",
     "KeyStore team-a/shared is not usable: spec.tls.caSecretRef.name: required"},
    {"{\"spec\":{" ADDR ",\"tls\":{\"clientCertSecretRef\":{\"name\":\"Bad\"}}}}",
     "KeyStore team-a/shared is not usable: spec.tls.clientCertSecretRef.name: \"Bad\" does "
     "not match"},
    {"{\"spec\":{" ADDR ",\"tls\":true}}",
     "KeyStore team-a/shared is not usable: spec.tls: must be an object"},
    {"{\"spec\":{" ADDR ",\"sentinel\":{\"addresses\":[\"s:26379\"],\"masterName\":\"m\"}}}",
     "KeyStore team-a/shared is not usable: spec: set exactly one of address and sentinel"},
    {"{\"spec\":{\"sentinel\":{\"addresses\":[\"s:26379\"]}}}",
     "KeyStore team-a/shared is not usable: spec.sentinel.masterName: required"},
    {"{\"spec\":{\"sentinel\":{\"addresses\":[],\"masterName\":\"m\"}}}",
     "KeyStore team-a/shared is not usable: spec.sentinel.addresses: at least one sentinel"},
    {"{\"spec\":{\"sentinel\":{\"addresses\":[\"s:1\",\"nope\"],\"masterName\":\"m\"}}}",
     "KeyStore team-a/shared is not usable: spec.sentinel.addresses[1]: not a host:port"},
    {"{\"spec\":{\"sentinel\":{\"addresses\":[\"s:1\",\"s:2\",\"s:3\",\"s:4\",\"s:5\","
     "\"s:6\",\"s:7\",\"s:8\",\"s:9\",\"s:10\",\"s:11\",\"s:12\",\"s:13\",\"s:14\","
     "\"s:15\",\"s:16\",\"s:17\"],\"masterName\":\"m\"}}}",
     "KeyStore team-a/shared is not usable: spec.sentinel.addresses: "},
    {"{\"spec\":{\"sentinel\":{\"addresses\":[\"s:1\"],\"masterName\":\"m\","
     "\"passwordSecretRef\":{\"name\":\"pw\"}}}}",
     "KeyStore team-a/shared is not usable: spec.sentinel.passwordSecretRef.key: required"},
};

/* tls and sentinel: copied, with every Secret's namespace resolved as the password's. */
static void test_tls_and_sentinel_settings(void **state)
{
	cJSON *cks = cJSON_Parse(
	    "{\"spec\":{\"sentinel\":{\"addresses\":[\"s1:26379\",\"[::1]:26380\"],"
	    "\"masterName\":\"sirius\",\"username\":\"sen\",\"passwordSecretRef\":{\"name\":"
	    "\"spw\",\"key\":\"p\"}},\"tls\":{\"caSecretRef\":{\"name\":\"ca\",\"namespace\":"
	    "\"certs\"},\"clientCertSecretRef\":{\"name\":\"client\"},\"serverName\":"
	    "\"valkey.test\"},\"allowedNamespaces\":{\"names\":[\"team-a\"]}}}");
	cJSON *ks = cJSON_Parse("{\"spec\":{" ADDR ",\"tls\":{}}}");
	struct kr_rotation_spec s;
	struct kr_error err;
	char reason[64];

	(void)state;
	decode("ClusterKeyStore", &s);
	assert_int_equal(
	    kr_keystore_object_apply(&s, cks, "team-a", "payments", NULL, "kr-sys", reason, &err),
	    KR_OK);
	assert_null(s.store_address);
	assert_int_equal(s.store_sentinel.n_addresses, 2);
	assert_string_equal(s.store_sentinel.addresses[1], "[::1]:26380");
	assert_string_equal(s.store_sentinel.master_name, "sirius");
	assert_string_equal(s.store_sentinel.username, "sen");
	assert_string_equal(s.store_sentinel.password_ns, "kr-sys");
	assert_true(s.store_tls.enabled);
	assert_string_equal(s.store_tls.ca_ns, "certs");
	assert_string_equal(s.store_tls.ca_key, "ca.crt"); /* the default */
	assert_string_equal(s.store_tls.cert_name, "client");
	assert_string_equal(s.store_tls.cert_ns, "kr-sys");
	assert_string_equal(s.store_tls.server_name, "valkey.test");
	kr_rotation_spec_release(&s);

	decode("KeyStore", &s); /* tls: {}: the system's trust store, no client certificate */
	assert_int_equal(
	    kr_keystore_object_apply(&s, ks, "team-a", "payments", NULL, "kr-sys", reason, &err),
	    KR_OK);
	assert_true(s.store_tls.enabled);
	assert_null(s.store_tls.ca_name);
	assert_null(s.store_tls.cert_name);
	assert_int_equal(s.store_sentinel.n_addresses, 0);
	kr_rotation_spec_release(&s);
	cJSON_Delete(cks);
	cJSON_Delete(ks);
}

static void test_invalid_stores_name_store_and_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(invalid); i++) {
		struct kr_rotation_spec s;
		struct kr_error err;
		char reason[64];
		cJSON *store = cJSON_Parse(invalid[i].store);

		assert_non_null(store);
		decode("KeyStore", &s);
		kr_error_clear(&err);
		assert_int_equal(
		    kr_keystore_object_apply(&s, store, "team-a", "kr", NULL, NULL, reason, &err),
		    KR_EINVAL);
		if (strncmp(err.msg, invalid[i].msg, strlen(invalid[i].msg)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err.msg,
				 invalid[i].msg);
		assert_string_equal(reason, "KeyStoreInvalid");
		assert_null(s.store_address);
		kr_rotation_spec_release(&s);
		cJSON_Delete(store);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cluster_store_allowed_namespaces),
	    cmocka_unit_test(test_layout_placeholders_and_password_namespace),
	    cmocka_unit_test(test_invalid_stores_name_store_and_field),
	    cmocka_unit_test(test_tls_and_sentinel_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
