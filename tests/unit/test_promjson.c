/* test_promjson.c - decoding /api/v1/query responses: the one value, or why there is none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"

#define OK_VEC(v)                                                                                  \
	"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"  \
	"\"value\":[1700000000.5,\"" v "\"]}]}}"

struct json_case {
	const char *body;
	long http;
	enum kr_status rc;
	double value;	 /* when rc == KR_OK */
	const char *msg; /* substring of the reason otherwise */
};

static void test_decode_table(void **state)
{
	static const struct json_case cases[] = {
	    {OK_VEC("0.5"), 200, KR_OK, 0.5, NULL},
	    {OK_VEC("0"), 200, KR_OK, 0, NULL},
	    {OK_VEC("1e-05"), 200, KR_OK, 1e-05, NULL},
	    {OK_VEC("-2.5E+2"), 200, KR_OK, -250, NULL},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
	     "[1700000000,\"2\"]}}",
	     200, KR_OK, 2, NULL},
	    {"{\"status\":\"success\",\"warnings\":[\"x\"],\"data\":{\"resultType\":\"vector\","
	     "\"result\":[{\"metric\":{\"job\":\"api\"},\"value\":[1,\"3\"]}]}}",
	     200, KR_OK, 3, NULL},
	    {OK_VEC("NaN"), 200, KR_EPROTO, 0, "query returned NaN"},
	    {OK_VEC("+Inf"), 200, KR_EPROTO, 0, "query returned +Inf"},
	    {OK_VEC("-Inf"), 200, KR_EPROTO, 0, "query returned -Inf"},
	    {OK_VEC("abc"), 200, KR_EPROTO, 0, "malformed sample value: not a number"},
	    {OK_VEC(""), 200, KR_EPROTO, 0, "malformed sample value"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", 200,
	     KR_ENOTFOUND, 0, "query returned no series (append \"or vector(0)\""},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
	     "{\"metric\":{\"code\":\"401\",\"method\":\"get\"},\"value\":[1,\"1\"]},"
	     "{\"metric\":{\"code\":\"401\",\"method\":\"post\"},\"value\":[1,\"2\"]}]}}",
	     200, KR_EPROTO, 0, "query returned 2 series, want 1: aggregate with sum()"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
	     "{\"metric\":{},\"values\":[[1,\"1\"],[2,\"2\"]]}]}}",
	     200, KR_EPROTO, 0, "range vector (matrix)"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"hi\"]}}",
	     200, KR_EPROTO, 0, "query returned a string, want a vector or a scalar"},
	    {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:5: parse error: "
	     "unexpected character\"}",
	     400, KR_EHTTP, 0,
	     "query failed (HTTP 400): bad_data: the query or its parameters are not valid (run "
	     "it in Prometheus for the details)"},
	    {"{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":\"query timed out\"}", 503,
	     KR_EHTTP, 0, "query failed (HTTP 503): timeout: the query timed out in Prometheus"},
	    {"{\"status\":\"error\",\"errorType\":\"new_kind\",\"error\":\"x\"}", 500, KR_EHTTP, 0,
	     "query failed (HTTP 500): new_kind"},
	    {"{\"status\":\"error\",\"errorType\":\"Bad-Data\",\"error\":\"x\"}", 400, KR_EHTTP, 0,
	     "query failed (HTTP 400): Prometheus reported an error"},
	    {"{\"status\":\"error\"}", 422, KR_EHTTP, 0,
	     "query failed (HTTP 422): Prometheus reported an error"},
	    {"<html>502 Bad Gateway</html>", 502, KR_EHTTP, 0,
	     "HTTP 502, and the response is not a Prometheus answer"},
	    {"not json", 200, KR_EPROTO, 0, "response is not JSON"},
	    {"", 200, KR_EPROTO, 0, "response is not JSON"},
	    {"[1,2]", 200, KR_EPROTO, 0, "response is not a JSON object"},
	    {"{\"data\":{}}", 200, KR_EPROTO, 0, "response has no status \"success\""},
	    {"{\"status\":\"partial\"}", 200, KR_EPROTO, 0,
	     "response has status \"partial\", want success"},
	    {"{\"status\":\"Hunter2!\"}", 200, KR_EPROTO, 0, "response has no status \"success\""},
	    {"{\"status\":\"success\"}", 200, KR_EPROTO, 0, "no data.resultType"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
	     "\"metric\":{},\"value\":[1,2]}]}}",
	     200, KR_EPROTO, 0, "malformed sample: want [<time>, \"<value>\"]"},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{"
	     "\"metric\":{}}]}}",
	     200, KR_EPROTO, 0, "malformed sample"},
	    {OK_VEC("1"), 500, KR_EHTTP, 0, "HTTP 500 with status success"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_measurement m;
		enum kr_status rc;

		rc = kr_promjson_decode(cases[i].body, strlen(cases[i].body), cases[i].http, &m);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, m.reason.msg);
		if (rc == KR_OK) {
			assert_true(m.ok);
			assert_true(m.value == cases[i].value);
			continue;
		}
		assert_false(m.ok);
		assert_int_equal(m.reason.code, cases[i].rc);
		if (!strstr(m.reason.msg, cases[i].msg))
			fail_msg("case %zu: reason \"%s\", want \"%s\"", i, m.reason.msg,
				 cases[i].msg);
	}
}

/* The body need not be NUL-terminated: only `len` bytes are read. */
static void test_decode_uses_len(void **state)
{
	char body[256];
	struct kr_measurement m;
	size_t len;

	(void)state;
	snprintf(body, sizeof(body), "%sGARBAGE", OK_VEC("4.25"));
	len = strlen(body) - strlen("GARBAGE");
	assert_int_equal(kr_promjson_decode(body, len, 200, &m), KR_OK);
	assert_true(m.value == 4.25);
	assert_true(m.at == 1700000000.5);
	assert_int_equal(kr_promjson_decode(NULL, 0, 200, &m), KR_EPROTO);
}

/*
 * The body is the server's: none of it reaches a message, whatever the shape of the answer
 * (an error text, a label value, a sample value, a result type, an HTML page).
 */
static void test_reasons_quote_nothing(void **state)
{
	static const struct {
		const char *body;
		long http;
	} cases[] = {
	    {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"AKIAhunter2 token\"}",
	     400},
	    {"{\"status\":\"error\",\"errorType\":\"hunter2\\u001b[31m\",\"error\":\"x\"}", 400},
	    {"<html><title>hunter2</title></html>", 502},
	    {"hunter2", 200},
	    {"{\"status\":\"hunter2hunter2hunter2hunter2hunter2hunter2\"}", 200},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
	     "{\"metric\":{\"hunter2\":\"hunter2\"},\"value\":[1,\"1\"]},"
	     "{\"metric\":{\"a\":\"b\"},\"value\":[1,\"2\"]}]}}",
	     200},
	    {OK_VEC("hunter2"), 200},
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"Hunter2\",\"result\":[]}}", 200},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_measurement m;

		assert_int_not_equal(
		    kr_promjson_decode(cases[i].body, strlen(cases[i].body), cases[i].http, &m),
		    KR_OK);
		if (strstr(m.reason.msg, "hunter2") || strstr(m.reason.msg, "Hunter2") ||
		    strchr(m.reason.msg, '\x1b'))
			fail_msg("case %zu: \"%s\"", i, m.reason.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_table),
	    cmocka_unit_test(test_decode_uses_len),
	    cmocka_unit_test(test_reasons_quote_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
