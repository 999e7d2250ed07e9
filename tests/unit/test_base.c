/* test_base.c - buffers, errors, secret buffers and the JSON logger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/secret.h"

static void test_buf_grows_and_stays_terminated(void **state)
{
	struct kr_buf b;

	(void)state;
	kr_buf_init(&b);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(kr_buf_addf(&b, "%d,", i % 10), KR_OK);
	assert_int_equal(b.len, 2000);
	assert_int_equal(b.data[b.len], '\0');
	kr_buf_consume(&b, 1998);
	assert_string_equal(b.data, "9,");
	kr_buf_release(&b);
	kr_buf_release(&b); /* twice is fine */
}

static void test_buf_json_string_escapes(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "\"plain\"" },
		{ "q\"b\\", "\"q\\\"b\\\\\"" },
		{ "nl\n\t\r", "\"nl\\n\\t\\r\"" },
		{ "\x01\x1f", "\"\\u0001\\u001f\"" },
		{ "", "\"\"" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_buf b;

		kr_buf_init(&b);
		assert_int_equal(kr_buf_add_json_string(&b, cases[i].in), KR_OK);
		assert_string_equal(b.data, cases[i].out);
		kr_buf_release(&b);
	}
}

static void test_error_set_prefix_and_null(void **state)
{
	struct kr_error err;

	(void)state;
	kr_error_clear(&err);
	assert_int_equal(kr_error_set(&err, KR_EINVAL, "field %s", "spec.key"), KR_EINVAL);
	assert_int_equal(kr_error_prefix(&err, "file %s: ", "a.yaml"), KR_EINVAL);
	assert_string_equal(err.msg, "file a.yaml: field spec.key");
	assert_int_equal(kr_error_set(NULL, KR_EIO, "dropped"), KR_EIO);
	assert_string_equal(kr_strerror(KR_ECONFLICT), "conflict");
	assert_string_equal(kr_strerror((enum kr_status)999), "unknown error");
	for (int i = 0; i < KR_LAST; i++)
		assert_non_null(kr_strerror((enum kr_status)i));
}

static void test_secret_compare_and_free(void **state)
{
	struct kr_secret *a = kr_secret_new("abc", 3);
	struct kr_secret *b = kr_secret_new("abc", 3);
	struct kr_secret *c = kr_secret_new("abd", 3);

	(void)state;
	assert_true(kr_secret_equal(a, b));
	assert_false(kr_secret_equal(a, c));
	assert_int_equal(kr_secret_len(a), 3);
	assert_string_equal(kr_secret_data(a), "abc");
	kr_secret_free(a);
	kr_secret_free(b);
	kr_secret_free(c);
	kr_secret_free(NULL);
}

static void test_log_lines_are_json(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	struct kr_log_ctx ctx = { "ns1", "kr1", "r-1" };
	cJSON *line;

	(void)state;
	kr_log_set_stream(mem);
	kr_log_set_level(KR_LOG_INFO);
	kr_log_debug(&ctx, "hidden %d", 1);
	kr_log_info(&ctx, "hello \"%s\"\n", "world");
	fflush(mem);
	kr_log_set_stream(NULL);
	fclose(mem);
	assert_non_null(strchr(text, '\n'));
	assert_null(strchr(strchr(text, '\n') + 1, '\n')); /* exactly one line */
	line = cJSON_Parse(text);
	assert_non_null(line);
	assert_string_equal(cJSON_GetObjectItem(line, "level")->valuestring, "info");
	assert_string_equal(cJSON_GetObjectItem(line, "msg")->valuestring, "hello \"world\"\n");
	assert_string_equal(cJSON_GetObjectItem(line, "namespace")->valuestring, "ns1");
	assert_string_equal(cJSON_GetObjectItem(line, "reconcileID")->valuestring, "r-1");
	assert_non_null(cJSON_GetObjectItem(line, "ts"));
	cJSON_Delete(line);
	free(text);
	assert_int_equal(kr_log_parse_level("WARNING"), KR_LOG_WARN);
	assert_int_equal(kr_log_parse_level("loud"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_grows_and_stays_terminated),
		cmocka_unit_test(test_buf_json_string_escapes),
		cmocka_unit_test(test_error_set_prefix_and_null),
		cmocka_unit_test(test_secret_compare_and_free),
		cmocka_unit_test(test_log_lines_are_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
