/* test_reconciler_sources.c - the workload projections keep the Secrets a pod template reads
 * (unlisted consumers, issue 21): every place a template names one, sorted, each once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/reconciler.h"
#include "runtime/controller.h"
#include "testlib.h"

/* A pod spec naming Secrets in every way, out of order and twice. */
#define POD_SPEC                                                                                   \
	"{\"containers\":[{\"name\":\"a\",\"env\":["                                               \
	"{\"name\":\"K\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"zeta\",\"key\":\"k\"}}},"     \
	"{\"name\":\"C\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cm\",\"key\":\"k\"}}},"    \
	"{\"name\":\"V\",\"value\":\"x\"}],"                                                       \
	"\"envFrom\":[{\"secretRef\":{\"name\":\"beta\"}},{\"configMapRef\":{\"name\":\"cm2\"}}]}" \
	"],"                                                                                       \
	"\"initContainers\":[{\"name\":\"i\",\"env\":[{\"name\":\"K\",\"valueFrom\":"              \
	"{\"secretKeyRef\":{\"name\":\"zeta\",\"key\":\"k\"}}}]}],"                                \
	"\"volumes\":[{\"name\":\"s\",\"secret\":{\"secretName\":\"mu\"}},"                        \
	"{\"name\":\"p\",\"projected\":{\"sources\":[{\"configMap\":{\"name\":\"cm3\"}},"          \
	"{\"secret\":{\"name\":\"alpha\"}}]}}]}"

static void expect_secrets(cJSON *proj, const char *want)
{
	char *got = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(proj, "secrets"));

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	cJSON_Delete(proj);
}

static void test_workload_and_cronjob_secrets(void **state)
{
	static const char *const docs[] = {
	    "{\"spec\":{\"template\":{\"spec\":" POD_SPEC "}}}",
	    "{\"spec\":{\"jobTemplate\":{\"spec\":{\"template\":{\"spec\":" POD_SPEC "}}}}}",
	};
	const char *want = "[\"alpha\",\"beta\",\"mu\",\"zeta\"]";

	(void)state;
	for (int i = 0; i < 2; i++) {
		cJSON *obj = cJSON_Parse(docs[i]);

		assert_non_null(obj);
		expect_secrets(i ? kr_reconciler_project_cronjob(NULL, obj)
				 : kr_reconciler_project_workload(NULL, obj),
			       want);
		cJSON_Delete(obj);
	}
}

/* No Secret: no "secrets" member (a few bytes less per workload in the cache). */
static void test_no_secret_no_member(void **state)
{
	cJSON *obj = cJSON_Parse("{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":"
				 "\"a\",\"env\":[{\"name\":\"V\",\"value\":\"x\"}]}]}}}}");
	cJSON *proj;

	(void)state;
	assert_non_null(obj);
	proj = kr_reconciler_project_workload(NULL, obj);
	assert_null(cJSON_GetObjectItemCaseSensitive(proj, "secrets"));
	cJSON_Delete(proj);
	proj = kr_reconciler_project_cronjob(NULL, obj);
	assert_null(cJSON_GetObjectItemCaseSensitive(proj, "secrets"));
	cJSON_Delete(proj);
	cJSON_Delete(obj);
}

/* A CronJob with a Job running (status.active) says so: it holds the revoke meanwhile. */
static void test_cronjob_running(void **state)
{
	cJSON *idle = cJSON_Parse("{\"status\":{\"active\":[]}}");
	cJSON *busy = cJSON_Parse("{\"status\":{\"active\":[{\"kind\":\"Job\","
				  "\"name\":\"nightly-1\"}]}}");
	cJSON *proj;

	(void)state;
	assert_non_null(idle);
	assert_non_null(busy);
	proj = kr_reconciler_project_cronjob(NULL, idle);
	assert_null(cJSON_GetObjectItemCaseSensitive(proj, "running"));
	cJSON_Delete(proj);
	proj = kr_reconciler_project_cronjob(NULL, busy);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(proj, "running")));
	cJSON_Delete(proj);
	cJSON_Delete(idle);
	cJSON_Delete(busy);
}

static char *read_fixture(const char *name)
{
	char path[1024], *text;

	snprintf(path, sizeof(path), "%s/unit/fixtures/%s", KR_TESTS_DIR, name);
	text = kr_test_read_file(path);
	assert_non_null(text);
	return text;
}

/*
 * A KeyRotation's cached projection (the whole object: a reconcile reads it from the
 * cache) packed with the words of sources.c: an idle KeyRotation unlike the one the words
 * were taken from (other names, stages, kinds) takes under a sixth of its text, and
 * comes back byte for byte. The memory of 10,000 KeyRotations depends on it.
 */
static void test_keyrotation_projection_packs(void **state)
{
	const struct kr_controller_source *src = &kr_reconciler_sources()[KR_SRC_KEYROTATIONS];
	char *fixture = read_fixture("keyrotation-idle.json"), *text, *packed, *plain, *back;
	cJSON *obj = cJSON_Parse(fixture), *proj;

	(void)state;
	assert_non_null(obj);
	assert_non_null(src->pack_dict);
	proj = src->project(NULL, obj);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(proj, "object"));
	text = cJSON_PrintUnformatted(proj);
	packed = kr_pack(text, src->pack_dict);
	plain = kr_pack(text, NULL);
	assert_non_null(packed);
	assert_non_null(plain);
	print_message("KeyRotation projection: %zu bytes, packed %zu (without the words %zu)\n",
		      strlen(text), kr_pack_size(packed), kr_pack_size(plain));
	assert_true(kr_pack_size(packed) * 6 < strlen(text));
	assert_true(kr_pack_size(packed) * 2 < kr_pack_size(plain));
	back = kr_unpack(packed, src->pack_dict);
	assert_non_null(back);
	assert_string_equal(back, text);
	free(back);
	free(plain);
	free(packed);
	free(text);
	cJSON_Delete(proj);
	cJSON_Delete(obj);
	free(fixture);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cronjob_running),
	    cmocka_unit_test(test_keyrotation_projection_packs),
	    cmocka_unit_test(test_workload_and_cronjob_secrets),
	    cmocka_unit_test(test_no_secret_no_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
