/* test_rotation_spec.c - KeyRotation spec decoding: the examples, CRD defaults, and a table of
 * invalid specs, each refused with a message that names the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "rotation/rotation.h"
#include "yaml/yaml.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The document of `kind` (and metadata.name `name`, when not NULL) in `docs`. */
static const cJSON *find_doc(const cJSON *docs, const char *kind, const char *name)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, docs)
	{
		const char *k = kr_json_str(d, (const char *[]){"kind", NULL});
		const char *n = kr_json_str(d, (const char *[]){"metadata", "name", NULL});

		if (k && !strcmp(k, kind) && (!name || (n && !strcmp(n, name))))
			return d;
	}
	return NULL;
}

/* Decode the KeyRotation of an example file and apply the KeyStore it names (same file). */
static void decode_yaml(const char *rel, struct kr_rotation_spec *spec)
{
	char path[1024], reason[64];
	struct kr_error err;
	cJSON *docs = NULL;
	const cJSON *kr, *store = NULL;

	snprintf(path, sizeof(path), "%s/../%s", KR_TESTS_DIR, rel);
	if (kr_yaml_parse_file(path, &docs, &err) != KR_OK)
		fail_msg("%s: %s", rel, err.msg);
	kr = cJSON_GetArraySize(docs) == 1 ? cJSON_GetArrayItem(docs, 0)
					   : find_doc(docs, "KeyRotation", NULL);
	assert_non_null(kr);
	if (kr_rotation_spec_decode(kr, spec, &err) != KR_OK)
		fail_msg("%s: %s", rel, err.msg);
	if (spec->store_ref_kind != KR_STORE_INLINE) {
		store = find_doc(docs, kr_store_ref_kind_name(spec->store_ref_kind),
				 spec->store_ref_name);
		assert_non_null(store);
		if (kr_keystore_object_apply(
			spec, store,
			kr_json_str(kr, (const char *[]){"metadata", "namespace", NULL}),
			kr_json_str(kr, (const char *[]){"metadata", "name", NULL}), NULL, NULL,
			reason, &err) != KR_OK)
			fail_msg("%s: %s (%s)", rel, err.msg, reason);
	}
	cJSON_Delete(docs);
}

static void test_sirius_example(void **state)
{
	struct kr_rotation_spec s;

	(void)state;
	decode_yaml("manifests/examples/sirius-keyrotation.yaml", &s);
	assert_string_equal(s.secret_name, "sirius-api-key");
	assert_string_equal(s.secret_key, "SIRIUS_API_KEY");
	assert_string_equal(s.store_address, "valkey.sirius.svc:6379");
	assert_string_equal(s.store_password_name, "valkey-auth");
	assert_string_equal(s.store_password_key, "password");
	assert_string_equal(s.store_password_ns, "sirius"); /* a KeyStore's own namespace */
	assert_int_equal(s.store_ref_kind, KR_STORE_REF_KEYSTORE);
	assert_string_equal(s.store_ref_name, "sirius-valkey");
	assert_int_equal(s.store_as, KR_ROT_STORE_SHA256);
	assert_string_equal(s.key_prefix, "sk_");
	assert_int_equal(s.key_bytes, 32);
	assert_int_equal(s.n_stages, 3);
	assert_int_equal(s.n_workloads, 4);
	assert_string_equal(s.stages[2].name, "engine");
	assert_int_equal(s.stages[2].first, 2);
	assert_int_equal(s.stages[2].workloads[1].kind, KR_WORKLOAD_STATEFULSET);
	assert_string_equal(s.stages[2].workloads[1].name, "sirius-scanner");
	assert_int_equal(s.stages[0].timeout_ms, 600000);
	assert_int_equal(s.analysis.source, KR_ANALYSIS_PROMETHEUS);
	assert_string_equal(s.analysis.url, "http://prometheus.monitoring:9090");
	assert_non_null(strstr(s.analysis.query, "code=\"401\""));
	assert_int_equal(s.analysis.interval_ms, 15000);
	assert_int_equal(s.analysis.failure_limit, 2);
	assert_int_equal(s.analysis.error_limit, 4);
	assert_int_equal(s.validation_period_ms, 600000);
	assert_int_equal(s.revoke_when_unused_ms, 300000);
	assert_string_equal(s.schedule, "0 3 1 */3 *");
	assert_int_equal(s.max_key_age_ms, INT64_C(2160) * 3600 * 1000);
	assert_string_equal(s.verify_url, "http://sirius-api.sirius:8080/api/v1/ping");
	assert_string_equal(s.verify_header, "X-API-Key");
	assert_int_equal(s.history_limit, 10);
	kr_rotation_spec_release(&s);
	kr_rotation_spec_release(&s); /* twice is fine */
}

static void test_hypercode_example(void **state)
{
	struct kr_rotation_spec s;

	(void)state;
	decode_yaml("manifests/examples/hypercode-keyrotation.yaml", &s);
	assert_int_equal(s.store_as, KR_ROT_STORE_PLAINTEXT);
	assert_null(s.store_password_name);
	assert_int_equal(s.analysis.source, KR_ANALYSIS_SCRAPE);
	assert_string_equal(s.analysis.metric, "http_requests_total");
	assert_int_equal(s.analysis.n_labels, 1);
	assert_string_equal(s.analysis.labels[0].name, "code");
	assert_string_equal(s.analysis.labels[0].value, "401");
	assert_int_equal(s.analysis.interval_ms, 30000);
	assert_true(s.analysis.threshold > 0.19 && s.analysis.threshold < 0.21);
	assert_int_equal(s.stages[1].workloads[1].kind, KR_WORKLOAD_DAEMONSET);
	assert_int_equal(s.max_key_age_ms, INT64_C(720) * 3600 * 1000);
	assert_null(s.schedule);
	assert_null(s.verify_url);
	assert_int_equal(s.revoke_when_unused_ms, -1);
	kr_rotation_spec_release(&s);
}

static void test_defaults_as_the_crd(void **state)
{
	struct kr_rotation_spec s;

	(void)state;
	decode_yaml("tests/unit/fixtures/rotation/minimal.json", &s); /* JSON is YAML */
	assert_int_equal(s.store_database, 0);
	assert_null(s.store_username);
	assert_string_equal(s.store_active_set, "api_keys:active");
	assert_string_equal(s.store_meta_key, "api_key:{id}:meta");
	assert_string_equal(s.store_bootstrap_key, "api_keys:bootstrap");
	assert_int_equal(s.store_as, KR_ROT_STORE_SHA256);
	assert_string_equal(s.key_prefix, "");
	assert_int_equal(s.key_bytes, 32);
	assert_int_equal(s.stages[0].timeout_ms, 600000);
	assert_int_equal(s.analysis.source, KR_ANALYSIS_NONE);
	assert_int_equal(s.validation_period_ms, 600000);
	assert_int_equal(s.revoke_when_unused_ms, -1);
	assert_int_equal(s.max_key_age_ms, -1);
	assert_false(s.dry_run);
	assert_false(s.pause_before_revoke);
	assert_false(s.stages[0].pause);
	assert_int_equal(s.unlisted_policy, KR_UNLISTED_HOLD_REVOKE);
	assert_false(s.suspend);
	assert_null(s.schedule);
	assert_null(s.verify_url);
	assert_int_equal(s.history_limit, 10);
	kr_rotation_spec_release(&s);
}

/* A valid spec with `extra` members added (or, placed later, overriding) at the top. */
#define SECRET "\"secretRef\":{\"name\":\"k\",\"key\":\"K\"}"
#define STORE  "\"keyStore\":{\"address\":\"v:6379\"}"
#define STAGES                                                                                     \
	"\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"d\"}]}]"
#define SPEC(...) "{" SECRET "," STORE "," STAGES __VA_ARGS__ "}"
#define PROM	  "\"url\":\"http://p:9090\",\"query\":\"q\""
#define REF	  "{\"name\":\"tok\",\"key\":\"token\"}"

/* The manual gates (design.md §1c): stages[].pause and pauseBeforeRevoke. */
static void test_manual_gates(void **state)
{
	const char *text = "{" SECRET "," STORE ",\"pauseBeforeRevoke\":true,"
			   "\"unlistedConsumers\":\"Ignore\",\"stages\":[{"
			   "\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":"
			   "\"d\"}]},{\"name\":\"b\",\"pause\":true,\"workloads\":[{\"kind\":"
			   "\"Deployment\",\"name\":\"e\"}]}]}";
	struct kr_rotation_spec s;
	struct kr_error err;
	cJSON *j = cJSON_Parse(text);

	(void)state;
	assert_non_null(j);
	if (kr_rotation_spec_decode(j, &s, &err) != KR_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(j);
	assert_true(s.pause_before_revoke);
	assert_int_equal(s.unlisted_policy, KR_UNLISTED_IGNORE);
	assert_false(s.stages[0].pause);
	assert_true(s.stages[1].pause);
	kr_rotation_spec_release(&s);
}

static const struct {
	const char *json;
	const char *msg; /* the error must start with this */
} invalid[] = {
    {"[]", "spec: must be an object"},
    {"{" STORE "," STAGES "}", "spec.secretRef: required"},
    {"{\"secretRef\":{\"name\":\"k\"}," STORE "," STAGES "}", "spec.secretRef.key: required"},
    {"{\"secretRef\":{\"name\":\"Bad_Name\",\"key\":\"K\"}," STORE "," STAGES "}",
     "spec.secretRef.name: \"Bad_Name\" does not match"},
    {"{\"secretRef\":{\"name\":\"k\",\"key\":\"a b\"}," STORE "," STAGES "}",
     "spec.secretRef.key: \"a b\" does not match"},
    {"{" SECRET "," STAGES "}", "spec.keyStoreRef: required"},
    {"{" SECRET "," STORE ",\"keyStoreRef\":{\"name\":\"s\"}," STAGES "}",
     "spec: set exactly one of spec.keyStoreRef and spec.keyStore"},
    {"{" SECRET ",\"keyStoreRef\":{\"kind\":\"Vault\",\"name\":\"s\"}," STAGES "}",
     "spec.keyStoreRef.kind: \"Vault\" is not one of KeyStore, ClusterKeyStore"},
    {"{" SECRET ",\"keyStoreRef\":{\"kind\":\"KeyStore\"}," STAGES "}",
     "spec.keyStoreRef.name: required"},
    {"{" SECRET ",\"keyStoreRef\":{\"name\":\"Bad\"}," STAGES "}",
     "spec.keyStoreRef.name: \"Bad\" does not match"},
    {"{" SECRET ",\"keyStore\":{\"address\":\"valkey\"}," STAGES "}",
     "spec.keyStore.address: \"valkey\" does not match host:port"},
    {"{" SECRET ",\"keyStore\":{\"address\":\"v:6379\",\"database\":1024}," STAGES "}",
     "spec.keyStore.database: 1024 is outside 0..1023"},
    {"{" SECRET ",\"keyStore\":{\"address\":\"v:6379\",\"database\":1.5}," STAGES "}",
     "spec.keyStore.database: must be an integer"},
    {"{" SECRET ",\"keyStore\":{\"address\":\"v:6379\",\"metaKey\":\"api_key:meta\"}," STAGES "}",
     "spec.keyStore.metaKey: \"api_key:meta\" does not match a pattern holding {id}"},
    {"{" SECRET ",\"keyStore\":{\"address\":\"v:6379\",\"storeAs\":\"md5\"}," STAGES "}",
     "spec.keyStore.storeAs: \"md5\" is not one of sha256, plaintext"},
    /* tls inline (issue 22); sentinel is the admin's kinds' only */
    {"{" SECRET ",\"keyStore\":{\"address\":\"v:6379\",\"tls\":{\"serverName\":\"-x\"}}," STAGES
     "}",
     "spec.keyStore.tls.serverName: \"-x\" is not a DNS name or an IP address"},
    {"{" SECRET
     ",\"keyStore\":{\"sentinel\":{\"addresses\":[\"s:26379\"],\"masterName\":\"m\"}}," STAGES "}",
     "spec.keyStore.sentinel: not in the inline form"},
    {"{" SECRET
     ",\"keyStore\":{\"address\":\"v:6379\",\"bootstrapKey\":\"api_keys:active\"}," STAGES "}",
     "spec.keyStore.bootstrapKey: \"api_keys:active\" is also the activeSet"},
    {"{" SECRET
     ",\"keyStore\":{\"address\":\"v:6379\",\"passwordSecretRef\":{\"name\":\"p\"}}," STAGES "}",
     "spec.keyStore.passwordSecretRef.key: required"},
    {SPEC(",\"key\":{\"prefix\":\"SK-\"}"), "spec.key.prefix: \"SK-\" does not match"},
    {SPEC(",\"key\":{\"bytes\":8}"), "spec.key.bytes: 8 is outside 16..64"},
    {"{" SECRET "," STORE "}", "spec.stages: required"},
    {"{" SECRET "," STORE ",\"stages\":[]}", "spec.stages: must be a list of 1 to 32 stages"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[]}]}",
     "spec.stages[0].workloads: must be a list of 1 to 64 workloads"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"d\"}]},{\"name\":\"b\",\"workloads\":[{\"kind\":\"CronJob\",\"name\":\"c\"}]}]}",
     "spec.stages[1].workloads[0].kind: \"CronJob\" is not one of"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"d\"}]},{\"name\":\"b\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"e\"}],"
     "\"timeout\":\"10x\"}]}",
     "spec.stages[1].timeout: \"10x\" is not a duration: "},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"d\"}]},{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"e\"}]}]"
     "}",
     "spec.stages[1].name: \"a\" is also the name of spec.stages[0]"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"d\"}]},{\"name\":\"b\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"d\"}]}]"
     "}",
     "spec.stages[1].workloads[0]: Deployment/d is listed twice"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"API\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"d\"}]}]}",
     "spec.stages[0].name: \"API\" does not match"},
    {"{" SECRET "," STORE
     ",\"stages\":[{\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"d\"}]}]}",
     "spec.stages[0].name: required"},
    {SPEC(",\"analysis\":{\"interval\":\"15s\"}"),
     "spec.analysis: exactly one of analysis.prometheus and analysis.scrape must be set"},
    {SPEC(",\"analysis\":{\"prometheus\":{\"url\":\"http://p\",\"query\":\"q\"},"
	  "\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"}}"),
     "spec.analysis: exactly one of"},
    {SPEC(",\"analysis\":{\"prometheus\":{\"url\":\"prom:9090\",\"query\":\"q\"}}"),
     "spec.analysis.prometheus.url: \"prom:9090\" does not match ^https?://"},
    {SPEC(",\"analysis\":{\"prometheus\":{\"url\":\"http://p\"}}"),
     "spec.analysis.prometheus.query: required"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"1bad\"}}"),
     "spec.analysis.scrape.metric: \"1bad\" does not match"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://"
	  "s\",\"metric\":\"m\",\"labels\":{\"code\":401}}}"),
     "spec.analysis.scrape.labels.code: must be a string"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://"
	  "s\",\"metric\":\"m\",\"labels\":{\"1code\":\"401\"}}}"),
     "spec.analysis.scrape.labels: \"1code\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, at "
     "most 128 characters)"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://"
	  "s\",\"metric\":\"m\",\"labels\":{\"status-code\":\"401\"}}}"),
     "spec.analysis.scrape.labels: \"status-code\" is not a label name"},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\","
     "\"name\":\"API_server\"}]}]}",
     "spec.stages[0].workloads[0].name: \"API_server\" does not match a DNS subdomain"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"},\"interval\":\"0\"}"),
     "spec.analysis.interval: must be more than 0"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"},\"threshold\":-1}"),
     "spec.analysis.threshold: must be a number >= 0"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"},\"failureLimit\":0}"),
     "spec.analysis.failureLimit: 0 is outside 1..100"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"},\"errorLimit\":101}"),
     "spec.analysis.errorLimit: 101 is outside 1..100"},
    {SPEC(",\"validationPeriod\":\"-5m\""), "spec.validationPeriod: \"-5m\" is not a duration"},
    {SPEC(",\"revokeWhenUnusedFor\":5"), "spec.revokeWhenUnusedFor: must be a string"},
    {SPEC(",\"maxKeyAge\":\"90d\""), "spec.maxKeyAge: \"90d\" is not a duration: "},
    {SPEC(",\"maxKeyAge\":\"0s\""), "spec.maxKeyAge: must be more than 0"},
    {SPEC(",\"schedule\":\"0 3 32 * *\""), "spec.schedule: \"0 3 32 * *\": schedule: field 3"},
    {SPEC(",\"schedule\":\"@reboot\""), "spec.schedule: \"@reboot\": "},
    /* at most one rotation an hour: maxKeyAge and the schedule's shortest gap */
    {SPEC(",\"maxKeyAge\":\"1s\""),
     "spec.maxKeyAge: \"1s\" is less than 1h; at least 1h (the minimum interval between "
     "rotations)"},
    {SPEC(",\"maxKeyAge\":\"59m59.999s\""), "spec.maxKeyAge: \"59m59.999s\" is less than 1h"},
    {SPEC(",\"schedule\":\"*/5 * * * *\""),
     "spec.schedule: \"*/5 * * * *\" fires every 5m; at most once an hour (the minimum "
     "interval between rotations)"},
    {SPEC(",\"schedule\":\"* * * * *\""), "spec.schedule: \"* * * * *\" fires every 1m; "},
    {SPEC(",\"schedule\":\"0,30 * * * *\""), "spec.schedule: \"0,30 * * * *\" fires every 30m; "},
    {SPEC(",\"schedule\":\"0,10,50 3 * * *\""),
     "spec.schedule: \"0,10,50 3 * * *\" fires as often as every 10m; at most once an hour"},
    {SPEC(",\"schedule\":\"0,59 0 1 1 *\""),
     "spec.schedule: \"0,59 0 1 1 *\" fires as often as every 59m; "},
    {SPEC(",\"dryRun\":\"yes\""), "spec.dryRun: must be true or false"},
    {SPEC(",\"pauseBeforeRevoke\":\"yes\""), "spec.pauseBeforeRevoke: must be true or false"},
    {SPEC(",\"unlistedConsumers\":\"Hold\""), "spec.unlistedConsumers: "},
    {"{" SECRET "," STORE ",\"stages\":[{\"name\":\"a\",\"pause\":1,\"workloads\":[{\"kind\":"
     "\"Deployment\",\"name\":\"d\"}]}]}",
     "spec.stages[0].pause: must be true or false"},
    {SPEC(",\"suspend\":1"), "spec.suspend: must be true or false"},
    {SPEC(",\"verify\":{\"header\":\"X-API-Key\"}"), "spec.verify.url: required"},
    {SPEC(",\"verify\":{\"url\":\"http://a\",\"header\":\"X API\"}"),
     "spec.verify.header: \"X API\" does not match"},
    {SPEC(",\"historyLimit\":101"), "spec.historyLimit: 101 is outside 0..100"},
    /* the Secrets the 401 watch and verify read credentials and CA bundles from */
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"caSecretRef\":{\"name\":\"ca\"}}}"),
     "spec.analysis.prometheus.caSecretRef.key: required"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"caSecretRef\":\"ca\"}}"),
     "spec.analysis.prometheus.caSecretRef: must be an object"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM
	  ",\"bearerTokenSecretRef\":{\"name\":\"t\",\"key\":\"\"}}}"),
     "spec.analysis.prometheus.bearerTokenSecretRef.key: length 0 is outside 1..253"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"basicAuth\":{\"username\":\"u\"}}}"),
     "spec.analysis.prometheus.basicAuth.passwordSecretRef: required"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"basicAuth\":{\"passwordSecretRef\":" REF
	  "}}}"),
     "spec.analysis.prometheus.basicAuth.username: required"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"basicAuth\":{\"username\":7,"
	  "\"passwordSecretRef\":" REF "}}}"),
     "spec.analysis.prometheus.basicAuth.username: must be a string"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"basicAuth\":{\"username\":\"u\","
	  "\"passwordSecretRef\":{\"key\":\"p\"}}}}"),
     "spec.analysis.prometheus.basicAuth.passwordSecretRef.name: required"},
    {SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"bearerTokenSecretRef\":" REF
	  ",\"basicAuth\":{\"username\":\"u\",\"passwordSecretRef\":" REF "}}}"),
     "spec.analysis.prometheus: at most one of bearerTokenSecretRef and basicAuth"},
    {SPEC(",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\","
	  "\"caSecretRef\":{\"name\":1,\"key\":\"k\"}}}"),
     "spec.analysis.scrape.caSecretRef.name: must be a string"},
    {SPEC(",\"verify\":{\"url\":\"http://a\",\"caSecretRef\":{\"key\":\"ca.crt\"}}"),
     "spec.verify.caSecretRef.name: required"},
};

/* Every credential and CA reference decodes into the spec; absent ones stay NULL. */
static void test_auth_and_ca_refs(void **state)
{
	struct kr_rotation_spec s;
	struct kr_error err;
	cJSON *j = cJSON_Parse(
	    SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"caSecretRef\":{\"name\":\"prom-ca\","
		 "\"key\":\"ca.crt\"},\"basicAuth\":{\"username\":\"kr\",\"passwordSecretRef\":"
		 "{\"name\":\"prom-auth\",\"key\":\"password\"}}}},\"verify\":{\"url\":\"https://a/"
		 "ping\",\"caSecretRef\":{\"name\":\"api-ca\",\"key\":\"bundle.pem\"}}"));
	cJSON *k = cJSON_Parse(
	    SPEC(",\"analysis\":{\"prometheus\":{" PROM ",\"bearerTokenSecretRef\":" REF "}}"));

	(void)state;
	assert_int_equal(kr_rotation_spec_decode(j, &s, &err), KR_OK);
	assert_string_equal(s.analysis.ca.name, "prom-ca");
	assert_string_equal(s.analysis.ca.key, "ca.crt");
	assert_string_equal(s.analysis.basic_username, "kr");
	assert_string_equal(s.analysis.basic_password.name, "prom-auth");
	assert_string_equal(s.analysis.basic_password.key, "password");
	assert_null(s.analysis.bearer_token.name);
	assert_string_equal(s.verify_ca.name, "api-ca");
	assert_string_equal(s.verify_ca.key, "bundle.pem");
	kr_rotation_spec_release(&s);
	assert_int_equal(kr_rotation_spec_decode(k, &s, &err), KR_OK);
	assert_string_equal(s.analysis.bearer_token.name, "tok");
	assert_string_equal(s.analysis.bearer_token.key, "token");
	assert_null(s.analysis.ca.name);
	assert_null(s.analysis.basic_username);
	assert_null(s.analysis.basic_password.name);
	assert_null(s.verify_ca.name);
	kr_rotation_spec_release(&s);
	cJSON_Delete(j);
	cJSON_Delete(k);
}

static void test_invalid_specs_name_the_field(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(invalid); i++) {
		struct kr_rotation_spec s;
		struct kr_error err;
		cJSON *j = cJSON_Parse(invalid[i].json);

		if (!j)
			fail_msg("case %zu: fixture is not JSON", i);
		kr_error_clear(&err);
		if (kr_rotation_spec_decode(j, &s, &err) != KR_EINVAL)
			fail_msg("case %zu (%s): accepted", i, invalid[i].msg);
		if (strncmp(err.msg, invalid[i].msg, strlen(invalid[i].msg)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err.msg,
				 invalid[i].msg);
		assert_null(s.secret_name); /* released on error */
		assert_null(s.stages);
		cJSON_Delete(j);
	}
}

/* `n` stages of `per` workloads each (names s<i>w<j>), `extra` appended to the spec. */
static char *stages_json(int n, int per, const char *extra)
{
	size_t size = 4096 + (size_t)n * 64 + (size_t)n * (size_t)per * 64 + strlen(extra);
	char *out = malloc(size);
	size_t used;

	assert_non_null(out);
	used = (size_t)snprintf(out, size, "{" SECRET "," STORE ",\"stages\":[");
	for (int i = 0; i < n; i++) {
		used += (size_t)snprintf(out + used, size - used,
					 "%s{\"name\":\"s%d\",\"workloads\":[", i ? "," : "", i);
		for (int j = 0; j < per; j++)
			used += (size_t)snprintf(out + used, size - used,
						 "%s{\"kind\":\"Deployment\",\"name\":\"s%dw%d\"}",
						 j ? "," : "", i, j);
		used += (size_t)snprintf(out + used, size - used, "]}");
	}
	snprintf(out + used, size - used, "]%s}", extra);
	assert_true(strlen(out) < size - 1);
	return out;
}

/* "x" * n, in a static buffer (n < 1024). */
static const char *repeat(char c, size_t n)
{
	static char buf[1024];

	assert_true(n < sizeof(buf));
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/*
 * The size bounds the CRD states too: at most 32 stages of 64 workloads and 64 workloads in
 * all, durations of 64 characters, 16 scrape labels with names of 128 and values of 256.
 */
static void test_size_bounds(void **state)
{
	char extra[2048], labels[2048];
	static const struct {
		int stages, per;
		const char *want; /* NULL: accepted */
	} shapes[] = {
	    {32, 2, NULL},
	    {1, 64, NULL},
	    {2, 32, NULL},
	    {33, 1, "spec.stages: must be a list of 1 to 32 stages"},
	    {1, 65, "spec.stages[0].workloads: must be a list of 1 to 64 workloads"},
	    {2, 33, "spec.stages: 66 workloads in all stages together; at most 64"},
	    {32, 3, "spec.stages: 96 workloads in all stages together; at most 64"},
	};
	struct {
		const char *extra, *want;
	} fields[6];
	size_t used = 0;

	(void)state;
	for (size_t i = 0; i < N(shapes); i++) {
		struct kr_rotation_spec s;
		struct kr_error err;
		char *text = stages_json(shapes[i].stages, shapes[i].per, "");
		cJSON *j = cJSON_Parse(text);
		enum kr_status rc;

		assert_non_null(j);
		kr_error_clear(&err);
		rc = kr_rotation_spec_decode(j, &s, &err);
		if (!shapes[i].want && rc != KR_OK)
			fail_msg("%d x %d: %s", shapes[i].stages, shapes[i].per, err.msg);
		if (shapes[i].want && (rc != KR_EINVAL || strcmp(err.msg, shapes[i].want) != 0))
			fail_msg("%d x %d: got \"%s\", want \"%s\"", shapes[i].stages,
				 shapes[i].per, err.msg, shapes[i].want);
		if (rc == KR_OK) {
			assert_int_equal(s.n_workloads, (size_t)(shapes[i].stages * shapes[i].per));
			kr_rotation_spec_release(&s);
		}
		cJSON_Delete(j);
		free(text);
	}

	/* 17 labels; a name of 129; a value of 257; durations of 65 characters. */
	for (int i = 0; i < 17; i++)
		used += (size_t)snprintf(labels + used, sizeof(labels) - used, "%s\"l%d\":\"v\"",
					 i ? "," : "", i);
	fields[0].want = "spec.analysis.scrape.labels: 17 labels; at most 16";
	fields[1].want = "spec.analysis.scrape.labels: \"lllll";
	fields[2].want = "spec.analysis.scrape.labels.code: longer than 256 characters";
	fields[3].want = "spec.maxKeyAge: longer than 64 characters";
	fields[4].want = "spec.analysis.interval: longer than 64 characters";
	fields[5].want = "spec.validationPeriod: longer than 64 characters";
	for (size_t i = 0; i < N(fields); i++) {
		struct kr_rotation_spec s;
		struct kr_error err;
		char *text;
		cJSON *j;

		if (i == 0)
			snprintf(extra, sizeof(extra),
				 ",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\","
				 "\"labels\":{%s}}}",
				 labels);
		else if (i == 1)
			snprintf(extra, sizeof(extra),
				 ",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\","
				 "\"labels\":{\"%s\":\"v\"}}}",
				 repeat('l', 129));
		else if (i == 2)
			snprintf(extra, sizeof(extra),
				 ",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\","
				 "\"labels\":{\"code\":\"%s\"}}}",
				 repeat('4', 257));
		else if (i == 3) /* 65 characters of a valid duration */
			snprintf(extra, sizeof(extra), ",\"maxKeyAge\":\"%sh\"", repeat('1', 64));
		else if (i == 4)
			snprintf(
			    extra, sizeof(extra),
			    ",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\"},"
			    "\"interval\":\"%ss\"}",
			    repeat('0', 64));
		else
			snprintf(extra, sizeof(extra), ",\"validationPeriod\":\"%sm\"",
				 repeat('0', 64));
		text = stages_json(1, 1, extra);
		j = cJSON_Parse(text);
		assert_non_null(j);
		kr_error_clear(&err);
		if (kr_rotation_spec_decode(j, &s, &err) != KR_EINVAL ||
		    strncmp(err.msg, fields[i].want, strlen(fields[i].want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err.msg,
				 fields[i].want);
		cJSON_Delete(j);
		free(text);
	}

	/* At the bounds: 16 labels, a name of 128, a value of 256, a 64-character duration. */
	used = 0;
	for (int i = 0; i < 15; i++)
		used += (size_t)snprintf(labels + used, sizeof(labels) - used, "\"l%d\":\"v\",", i);
	snprintf(labels + used, sizeof(labels) - used, "\"%s\":\"v\"", repeat('l', 128));
	snprintf(extra, sizeof(extra),
		 ",\"analysis\":{\"scrape\":{\"url\":\"http://s\",\"metric\":\"m\","
		 "\"labels\":{%s}},\"interval\":\"%ss\"}",
		 labels, repeat('0', 63) /* "000...01s"-like: 64 characters */);
	{
		struct kr_rotation_spec s;
		struct kr_error err;
		char *text;
		cJSON *j;
		size_t n = strlen(extra);

		/* turn the last '0' of the interval into '1': 63 digits + "s" = 64 characters */
		extra[n - 4] = '1';
		text = stages_json(1, 1, extra);
		j = cJSON_Parse(text);
		assert_non_null(j);
		if (kr_rotation_spec_decode(j, &s, &err) != KR_OK)
			fail_msg("at the bounds: %s", err.msg);
		assert_int_equal(s.analysis.n_labels, 16);
		assert_int_equal(s.analysis.interval_ms, 1000);
		kr_rotation_spec_release(&s);
		cJSON_Delete(j);
		free(text);
	}
}

/* The bounds themselves pass: once an hour, a key an hour old. */
static void test_hourly_is_the_limit(void **state)
{
	static const char *const ok[] = {
	    SPEC(",\"maxKeyAge\":\"1h\""),	    SPEC(",\"maxKeyAge\":\"3600s\""),
	    SPEC(",\"schedule\":\"@hourly\""),	    SPEC(",\"schedule\":\"59 * * * *\""),
	    SPEC(",\"schedule\":\"30 0,1 * * *\""), SPEC(",\"schedule\":\"0 */2 * * *\""),
	};

	(void)state;
	for (size_t i = 0; i < N(ok); i++) {
		struct kr_rotation_spec s;
		struct kr_error err;
		cJSON *j = cJSON_Parse(ok[i]);

		assert_non_null(j);
		kr_error_clear(&err);
		if (kr_rotation_spec_decode(j, &s, &err) != KR_OK)
			fail_msg("%s: %s", ok[i], err.msg);
		kr_rotation_spec_release(&s);
		cJSON_Delete(j);
	}
}

/* The spec object alone decodes as the whole KeyRotation does. */
static void test_spec_object_alone(void **state)
{
	struct kr_rotation_spec s;
	struct kr_error err;
	cJSON *j = cJSON_Parse(SPEC(",\"key\":{\"prefix\":\"sk_\",\"bytes\":16},\"suspend\":true"));

	(void)state;
	assert_int_equal(kr_rotation_spec_decode(j, &s, &err), KR_OK);
	assert_string_equal(s.key_prefix, "sk_");
	assert_int_equal(s.key_bytes, 16);
	assert_true(s.suspend);
	kr_rotation_spec_release(&s);
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sirius_example),
	    cmocka_unit_test(test_manual_gates),
	    cmocka_unit_test(test_hypercode_example),
	    cmocka_unit_test(test_defaults_as_the_crd),
	    cmocka_unit_test(test_invalid_specs_name_the_field),
	    cmocka_unit_test(test_spec_object_alone),
	    cmocka_unit_test(test_hourly_is_the_limit),
	    cmocka_unit_test(test_size_bounds),
	    cmocka_unit_test(test_auth_and_ca_refs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
