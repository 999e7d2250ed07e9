/* test_reconciler_sources.c - the workload projections keep the Secrets a pod template reads
 * (unlisted consumers, issue 21): every place a template names one, sorted, each once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "reconciler/reconciler.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cronjob_running),
	    cmocka_unit_test(test_workload_and_cronjob_secrets),
	    cmocka_unit_test(test_no_secret_no_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
