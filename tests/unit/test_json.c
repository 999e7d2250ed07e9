/* test_json.c - the one JSON reader: path lookups, typed getters that name the field path, and
 * kr_json_sanitize for text shown on a terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_lookups(void **state)
{
	cJSON *o = cJSON_Parse("{\"a\":{\"b\":\"x\",\"n\":3,\"z\":null},\"s\":\"t\"}");

	(void)state;
	assert_string_equal(kr_json_str(o, (const char *[]){"a", "b", NULL}), "x");
	assert_null(kr_json_str(o, (const char *[]){"a", "n", NULL})); /* not a string */
	assert_null(kr_json_str(o, (const char *[]){"a", "b", "c", NULL}));
	assert_null(kr_json_str(NULL, (const char *[]){"a", NULL}));
	assert_true(kr_json_num(o, (const char *[]){"a", "n", NULL}, -1) == 3);
	assert_true(kr_json_num(o, (const char *[]){"a", "b", NULL}, -1) == -1);
	assert_null(kr_jr_member(cJSON_GetObjectItem(o, "a"), "z")); /* null is absent */
	cJSON_Delete(o);
}

/* Each getter over one member "f" of an object at path "spec.x": the error names the path. */
static const struct {
	const char *json; /* the value of "f" */
	const char *want; /* the error's start, or NULL when accepted */
} str_cases[] = {
    {"\"ok-name\"", NULL},
    {"7", "spec.x.f: must be a string"},
    {"\"\"", "spec.x.f: length 0 is outside 1..253"},
    {"\"Bad_Name\"", "spec.x.f: \"Bad_Name\" does not match a DNS subdomain"},
    {"\"a.b-c.d\"", NULL},
};

static void test_str_getter_names_the_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(str_cases); i++) {
		char json[256], *out = NULL;
		struct kr_error err;
		cJSON *o;
		enum kr_status rc;

		snprintf(json, sizeof(json), "{\"f\":%s}", str_cases[i].json);
		o = cJSON_Parse(json);
		kr_error_clear(&err);
		rc = kr_jr_str(o, "spec.x", "f", NULL, &KR_JR_SUBDOMAIN, &out, &err);
		if (!str_cases[i].want) {
			assert_int_equal(rc, KR_OK);
			assert_non_null(out);
		} else {
			assert_int_equal(rc, KR_EINVAL);
			assert_null(out);
			if (strncmp(err.msg, str_cases[i].want, strlen(str_cases[i].want)) != 0)
				fail_msg("case %zu: got \"%s\"", i, err.msg);
		}
		free(out);
		cJSON_Delete(o);
	}
}

static void test_other_getters(void **state)
{
	cJSON *o = cJSON_Parse("{\"i\":1.5,\"big\":2000,\"b\":\"yes\",\"e\":\"md5\",\"l\":[1,2,3],"
			       "\"obj\":[],\"ok\":\"plaintext\"}");
	static const char *const names[] = {"sha256", "plaintext", NULL};
	struct kr_error err;
	const cJSON *v;
	bool b;
	int n;

	(void)state;
	assert_int_equal(kr_jr_int(o, "p", "i", 0, 0, 10, &n, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.i: must be an integer");
	assert_int_equal(kr_jr_int(o, "p", "big", 0, 0, 1023, &n, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.big: 2000 is outside 0..1023");
	assert_int_equal(kr_jr_int(o, "p", "absent", 7, 0, 10, &n, &err), KR_OK);
	assert_int_equal(n, 7);
	assert_int_equal(kr_jr_bool(o, "p", "b", &b, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.b: must be true or false");
	assert_int_equal(kr_jr_enum(o, "p", "e", names, 0, &n, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.e: \"md5\" is not one of sha256, plaintext");
	assert_int_equal(kr_jr_enum(o, "p", "ok", names, 0, &n, &err), KR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(kr_jr_array(o, "p", "l", 2, &v, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.l: 3 items, at most 2 allowed");
	assert_int_equal(kr_jr_object(o, "p", "obj", &v, &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.obj: must be an object");
	assert_int_equal(kr_jr_require(o, "p", "nope", &err), KR_EINVAL);
	assert_string_equal(err.msg, "p.nope: required");
	cJSON_Delete(o);
}

/* Text anyone with write access may set is printed without escapes or control bytes. */
static void test_sanitize_every_string(void **state)
{
	cJSON *o = cJSON_Parse("{\"status\":{\"conditions\":[{\"message\":\"ok\\u001b[2J\\u001b]0;"
			       "pwned\\u0007 done\\r\\nnext\"}],\"k\\u001bey\":\"v\"},\"n\":1}");
	char *text;

	(void)state;
	assert_non_null(o);
	kr_json_sanitize(o);
	text = cJSON_PrintUnformatted(o);
	assert_null(strchr(text, '\x1b'));
	assert_null(strstr(text, "\\u001b"));
	assert_null(strstr(text, "\\r"));
	assert_non_null(strstr(text, "\"message\":\"ok?? done??next\""));
	assert_non_null(strstr(text, "\"k?y\":\"v\"")); /* ESC and one byte */
	free(text);
	kr_json_sanitize(NULL);
	cJSON_Delete(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_str_getter_names_the_path),
	    cmocka_unit_test(test_other_getters),
	    cmocka_unit_test(test_sanitize_every_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
