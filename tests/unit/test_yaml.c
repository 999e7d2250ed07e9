/* test_yaml.c - YAML documents to cJSON: scalars, structure, aliases, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "yaml/yaml.h"

/* Each row: YAML in, compact JSON of the documents array out. */
static const struct {
	const char *yaml;
	const char *json;
} kr_yaml_ok[] = {
	{ "a: 1", "[{\"a\":1}]" },
	{ "a: '1'", "[{\"a\":\"1\"}]" },
	{ "a: !!str 1", "[{\"a\":\"1\"}]" },
	{ "a: true\nb: False\nc: ~\nd: null\ne:", "[{\"a\":true,\"b\":false,\"c\":null,\"d\":null,\"e\":null}]" },
	{ "a: yes", "[{\"a\":\"yes\"}]" }, /* YAML 1.2: not a boolean */
	{ "a: 1.5\nb: -2\nc: 1e3\nd: 0x10", "[{\"a\":1.5,\"b\":-2,\"c\":1000,\"d\":\"0x10\"}]" },
	{ "a: 10m\nb: '0 3 1 */3 *'", "[{\"a\":\"10m\",\"b\":\"0 3 1 */3 *\"}]" },
	{ "- x\n- [1, 2]\n- {k: v}", "[[\"x\",[1,2],{\"k\":\"v\"}]]" },
	{ "a: &x {k: v}\nb: *x", "[{\"a\":{\"k\":\"v\"},\"b\":{\"k\":\"v\"}}]" },
	{ "---\na: 1\n---\n---\nb: 2\n", "[{\"a\":1},{\"b\":2}]" },
	{ "", "[]" },
	{ "a: |\n  line1\n  line2\n", "[{\"a\":\"line1\\nline2\\n\"}]" },
	{ "1: one\ntrue: t", "[{\"1\":\"one\",\"true\":\"t\"}]" },
	{ "a: 1\na: 2", "[{\"a\":2}]" },
};

static void test_yaml_documents(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kr_yaml_ok) / sizeof(kr_yaml_ok[0]); i++) {
		struct kr_error err;
		cJSON *docs = NULL;
		char *text;

		kr_error_clear(&err);
		assert_int_equal(kr_yaml_parse(kr_yaml_ok[i].yaml, strlen(kr_yaml_ok[i].yaml), "t",
					       &docs, &err), KR_OK);
		text = cJSON_PrintUnformatted(docs);
		if (strcmp(text, kr_yaml_ok[i].json))
			fail_msg("row %zu: got %s want %s", i, text, kr_yaml_ok[i].json);
		free(text);
		cJSON_Delete(docs);
	}
}

static const struct {
	const char *yaml;
	enum kr_status code;
	const char *msg;
} kr_yaml_bad[] = {
	{ "a: [1, 2", KR_EINVAL, "f.yaml: line " },
	{ "a: *nope", KR_EINVAL, "unknown alias" },
	{ "a:\n\tb: 1", KR_EINVAL, "YAML syntax error" },
	{ "{[1]: x}", KR_EINVAL, "mapping keys must be scalars" },
	{ "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
	  KR_ETOOBIG, "too many nodes" },
};

static void test_yaml_errors_name_file_and_position(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kr_yaml_bad) / sizeof(kr_yaml_bad[0]); i++) {
		struct kr_error err;
		cJSON *docs = (cJSON *)1;

		kr_error_clear(&err);
		assert_int_equal(kr_yaml_parse(kr_yaml_bad[i].yaml, strlen(kr_yaml_bad[i].yaml),
					       "f.yaml", &docs, &err), kr_yaml_bad[i].code);
		assert_null(docs);
		if (!strstr(err.msg, kr_yaml_bad[i].msg))
			fail_msg("row %zu: message '%s' lacks '%s'", i, err.msg, kr_yaml_bad[i].msg);
		assert_non_null(strstr(err.msg, "f.yaml"));
	}
}

static void test_yaml_deep_nesting_is_refused(void **state)
{
	char text[2000];
	struct kr_error err;
	cJSON *docs;

	(void)state;
	memset(text, '[', 1000);
	text[1000] = '\0';
	assert_int_not_equal(kr_yaml_parse(text, strlen(text), NULL, &docs, &err), KR_OK);
	assert_null(docs);
}

static void test_yaml_garbage_never_crashes(void **state)
{
	unsigned int seed = 42;

	(void)state;
	for (int round = 0; round < 300; round++) {
		char text[256];
		struct kr_error err;
		cJSON *docs;
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(text));

		for (size_t i = 0; i < n; i++)
			text[i] = "ab:- \n[]{}&*!|>'\"#\t0,"[rand_r(&seed) % 22];
		if (kr_yaml_parse(text, n, "fuzz", &docs, &err) == KR_OK)
			cJSON_Delete(docs);
	}
}

static void test_yaml_missing_file(void **state)
{
	struct kr_error err;
	cJSON *docs;

	(void)state;
	assert_int_equal(kr_yaml_parse_file("/nonexistent/x.yaml", &docs, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "/nonexistent/x.yaml: cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml_documents),
		cmocka_unit_test(test_yaml_errors_name_file_and_position),
		cmocka_unit_test(test_yaml_deep_nesting_is_refused),
		cmocka_unit_test(test_yaml_garbage_never_crashes),
		cmocka_unit_test(test_yaml_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
