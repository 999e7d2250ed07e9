/* test_reconciler_secrets.c - Secret data in and out of wiped buffers; the reconciler's clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reconciler/internal.h"

static cJSON *secret_with(const char *key, const char *b64)
{
	cJSON *s = cJSON_CreateObject();
	cJSON *data = cJSON_AddObjectToObject(s, "data");

	if (b64)
		cJSON_AddStringToObject(data, key, b64);
	return s;
}

/* Round trips of every length 1..70 (all three paddings) through data[key]. */
static void test_data_roundtrip_every_length(void **state)
{
	(void)state;
	for (size_t len = 1; len <= 70; len++) {
		char raw[80];
		struct kr_secret *in, *out;
		cJSON *s = cJSON_CreateObject();

		for (size_t i = 0; i < len; i++)
			raw[i] = (char)('A' + (i * 7 + len) % 50);
		in = kr_secret_new(raw, len);
		assert_int_equal(kr_secret_data_set(s, "K", in), KR_OK);
		out = kr_secret_data_get(s, "K");
		assert_non_null(out);
		assert_int_equal(kr_secret_len(out), len);
		assert_true(kr_secret_equal(in, out));
		/* Setting again replaces, never duplicates, the data key. */
		assert_int_equal(kr_secret_data_set(s, "K", in), KR_OK);
		assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "data")), 1);
		kr_secret_free(in);
		kr_secret_free(out);
		kr_json_wipe_delete(s);
	}
}

static void test_data_known_answer(void **state)
{
	cJSON *s = secret_with("SIRIUS_API_KEY", "c2tfYWJj"); /* "sk_abc" */
	struct kr_secret *k = kr_secret_data_get(s, "SIRIUS_API_KEY");

	(void)state;
	assert_non_null(k);
	assert_int_equal(kr_secret_len(k), 6);
	assert_memory_equal(kr_secret_data(k), "sk_abc", 6);
	kr_secret_free(k);
	kr_json_wipe_delete(s);
}

/* Absent, empty, or not base64: no key (the decision then sees "no key"). */
static void test_data_absent_or_invalid(void **state)
{
	static const char *bad[] = {"", "abc", "a===", "!!!!", NULL};
	cJSON *none = secret_with("K", NULL);

	(void)state;
	assert_null(kr_secret_data_get(NULL, "K"));
	assert_null(kr_secret_data_get(none, "K"));
	assert_null(kr_secret_data_get(none, "other"));
	kr_json_wipe_delete(none);
	for (int i = 0; bad[i]; i++) {
		cJSON *s = secret_with("K", bad[i]);

		assert_null(kr_secret_data_get(s, "K"));
		kr_json_wipe_delete(s);
	}
}

/* A Secret object without "data" (or with a non-object one) gets one. */
static void test_data_set_creates_data(void **state)
{
	cJSON *s = cJSON_CreateObject();
	struct kr_secret *in = kr_secret_new("xyz", 3), *out;

	(void)state;
	cJSON_AddStringToObject(s, "data", "not an object");
	assert_int_equal(kr_secret_data_set(s, "K", in), KR_OK);
	out = kr_secret_data_get(s, "K");
	assert_true(kr_secret_equal(in, out));
	kr_secret_free(in);
	kr_secret_free(out);
	kr_json_wipe_delete(s);
	kr_json_wipe_delete(NULL);
}

/* The clock: time(NULL), plus the skew file's seconds when one is given. */
static void test_clock_skew_file(void **state)
{
	char path[] = "/tmp/kr-skew-XXXXXX";
	int fd = mkstemp(path);
	struct kr_reconciler_opts o = {.clock_skew_file = path, .instance = "t"};
	struct kr_reconciler *r;
	time_t before;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "86400\n", 6), 6);
	close(fd);
	r = kr_reconciler_new(&o, NULL);
	assert_non_null(r);
	before = time(NULL);
	assert_true(kr_reconciler_now(r) >= before + 86400);
	assert_true(kr_reconciler_now(r) <= time(NULL) + 86400);
	unlink(path); /* gone: no skew */
	assert_true(kr_reconciler_now(r) <= time(NULL));
	kr_reconciler_free(r);
	kr_reconciler_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_data_roundtrip_every_length),
	    cmocka_unit_test(test_data_known_answer),
	    cmocka_unit_test(test_data_absent_or_invalid),
	    cmocka_unit_test(test_data_set_creates_data),
	    cmocka_unit_test(test_clock_skew_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
