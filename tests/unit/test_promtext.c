/* test_promtext.c - the text exposition parser: Prometheus's own examples, edge cases, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "base/buf.h"

/* Every sample rendered as one line: name{labels} value [@ts] type/family. */
static enum kr_status render(void *arg, const struct kr_prom_sample *s, struct kr_error *err)
{
	struct kr_buf *out = arg;

	(void)err;
	kr_buf_addf(out, "%s{", s->name);
	for (size_t i = 0; i < s->nlabels; i++) {
		kr_buf_addf(out, "%s%s=\"", i ? "," : "", s->labels[i].name);
		for (const char *v = s->labels[i].value; *v; v++) {
			if (*v == '\n')
				kr_buf_adds(out, "\\n");
			else if (*v == '"' || *v == '\\')
				kr_buf_addf(out, "\\%c", *v);
			else
				kr_buf_addch(out, *v);
		}
		kr_buf_addch(out, '"');
	}
	if (isnan(s->value))
		kr_buf_adds(out, "} NaN");
	else if (isinf(s->value))
		kr_buf_adds(out, s->value > 0 ? "} +Inf" : "} -Inf");
	else
		kr_buf_addf(out, "} %.10g", s->value);
	if (s->has_timestamp)
		kr_buf_addf(out, " @%" PRId64, s->timestamp_ms);
	kr_buf_addf(out, " %s/%s\n", kr_prom_type_name(s->type), s->family);
	return KR_OK;
}

/* From prometheus/docs, docs/instrumenting/exposition_formats.md, "Text format example". */
static const char docs_example[] =
    "# HELP http_requests_total The total number of HTTP requests.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
    "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
    "\n"
    "# Escaping in label values:\n"
    "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
    "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
    "\n"
    "# Minimalistic line:\n"
    "metric_without_timestamp_and_labels 12.47\n"
    "\n"
    "# A weird metric from before the epoch:\n"
    "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
    "\n"
    "# A histogram, which has a pretty complex representation in the text format:\n"
    "# HELP http_request_duration_seconds A histogram of the request duration.\n"
    "# TYPE http_request_duration_seconds histogram\n"
    "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
    "http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n"
    "http_request_duration_seconds_bucket{le=\"0.2\"} 100392\n"
    "http_request_duration_seconds_bucket{le=\"0.5\"} 129389\n"
    "http_request_duration_seconds_bucket{le=\"1\"} 133988\n"
    "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
    "http_request_duration_seconds_sum 53423\n"
    "http_request_duration_seconds_count 144320\n"
    "\n"
    "# Finally a summary, which has a complex representation, too:\n"
    "# HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n"
    "# TYPE rpc_duration_seconds summary\n"
    "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
    "rpc_duration_seconds{quantile=\"0.05\"} 3272\n"
    "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
    "rpc_duration_seconds{quantile=\"0.9\"} 9001\n"
    "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
    "rpc_duration_seconds_sum 1.7560473e+07\n"
    "rpc_duration_seconds_count 2693\n";

static const char docs_expected[] =
    "http_requests_total{method=\"post\",code=\"200\"} 1027 @1395066363000 "
    "counter/http_requests_total\n"
    "http_requests_total{method=\"post\",code=\"400\"} 3 @1395066363000 "
    "counter/http_requests_total\n"
    "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
    "file:\\n\\\"FILE.TXT\\\"\"} 1458255915 untyped/msdos_file_access_time_seconds\n"
    "metric_without_timestamp_and_labels{} 12.47 untyped/metric_without_timestamp_and_labels\n"
    "something_weird{problem=\"division by zero\"} +Inf @-3982045 untyped/something_weird\n"
    "http_request_duration_seconds_bucket{le=\"0.05\"} 24054 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_bucket{le=\"0.1\"} 33444 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_bucket{le=\"0.2\"} 100392 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_bucket{le=\"0.5\"} 129389 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_bucket{le=\"1\"} 133988 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320 "
    "histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_sum{} 53423 histogram/http_request_duration_seconds\n"
    "http_request_duration_seconds_count{} 144320 histogram/http_request_duration_seconds\n"
    "rpc_duration_seconds{quantile=\"0.01\"} 3102 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds{quantile=\"0.05\"} 3272 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds{quantile=\"0.5\"} 4773 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds{quantile=\"0.9\"} 9001 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds{quantile=\"0.99\"} 76656 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds_sum{} 17560473 summary/rpc_duration_seconds\n"
    "rpc_duration_seconds_count{} 2693 summary/rpc_duration_seconds\n";

static void test_docs_example_whole(void **state)
{
	struct kr_buf out;
	struct kr_error err;

	(void)state;
	kr_buf_init(&out);
	assert_int_equal(
	    kr_promtext_parse(docs_example, strlen(docs_example), NULL, render, &out, &err), KR_OK);
	assert_string_equal(out.data, docs_expected);
	kr_buf_release(&out);
}

/* Chunk boundaries fall anywhere, even inside escapes: the result is the same. */
static void test_docs_example_streamed(void **state)
{
	static const size_t chunks[] = {1, 2, 7, 64, 4096};

	(void)state;
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct kr_promtext p;
		struct kr_buf out;
		struct kr_error err;
		size_t len = strlen(docs_example);

		kr_buf_init(&out);
		kr_promtext_init(&p, NULL, render, &out);
		for (size_t off = 0; off < len; off += chunks[c]) {
			size_t n = len - off < chunks[c] ? len - off : chunks[c];

			assert_int_equal(kr_promtext_feed(&p, docs_example + off, n, &err), KR_OK);
		}
		assert_int_equal(kr_promtext_finish(&p, &err), KR_OK);
		assert_string_equal(out.data, docs_expected);
		kr_promtext_release(&p);
		kr_buf_release(&out);
	}
}

/* The unescaped bytes of the docs' escaping example, not just their re-rendering. */
static enum kr_status keep_labels(void *arg, const struct kr_prom_sample *s, struct kr_error *err)
{
	char **vals = arg;

	(void)err;
	for (size_t i = 0; i < s->nlabels && i < 2; i++)
		vals[i] = strdup(s->labels[i].value);
	return KR_OK;
}

static void test_docs_escapes_unescaped(void **state)
{
	static const char line[] =
	    "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\","
	    "error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n";
	char *vals[2] = {NULL, NULL};
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_promtext_parse(line, strlen(line), NULL, keep_labels, vals, &err),
			 KR_OK);
	assert_string_equal(vals[0], "C:\\DIR\\FILE.TXT");
	assert_string_equal(vals[1], "Cannot find file:\n\"FILE.TXT\"");
	free(vals[0]);
	free(vals[1]);
}

struct ok_case {
	const char *in, *out;
};

static void test_valid_inputs(void **state)
{
	static const struct ok_case cases[] = {
	    /* floats as Go's ParseFloat reads them */
	    {"a 1e3\n", "a{} 1000 untyped/a\n"},
	    {"a -1.5E-3\n", "a{} -0.0015 untyped/a\n"},
	    {"a .5\n", "a{} 0.5 untyped/a\n"},
	    {"a +7\n", "a{} 7 untyped/a\n"},
	    {"a 0x1p-2\n", "a{} 0.25 untyped/a\n"},
	    {"a NaN\n", "a{} NaN untyped/a\n"},
	    {"a nan\n", "a{} NaN untyped/a\n"},
	    {"a +Inf\n", "a{} +Inf untyped/a\n"},
	    {"a -Inf\n", "a{} -Inf untyped/a\n"},
	    {"a Inf\n", "a{} +Inf untyped/a\n"},
	    {"a 1.7976931348623157e308\n", "a{} 1.797693135e+308 untyped/a\n"},
	    /* timestamps */
	    {"a 1 -5\n", "a{} 1 @-5 untyped/a\n"},
	    {"a 1 +5\n", "a{} 1 @5 untyped/a\n"},
	    {"a 1 9223372036854775807\n", "a{} 1 @9223372036854775807 untyped/a\n"},
	    /* blanks, tabs, CRLF, no final newline, empty lines */
	    {"  \ta\t{b=\"c\"}\t 2 \t\r\n\n\n", "a{b=\"c\"} 2 untyped/a\n"},
	    {"a{ b = \"c\" , d=\"e\" } 1\n", "a{b=\"c\",d=\"e\"} 1 untyped/a\n"},
	    {"a 1", "a{} 1 untyped/a\n"},
	    {"", ""},
	    {"\n\n", ""},
	    /* label syntax */
	    {"a{b=\"c\",} 1\n", "a{b=\"c\"} 1 untyped/a\n"},
	    {"a{} 1\n", "a{} 1 untyped/a\n"},
	    {"a{b=\"\"} 1\n", "a{b=\"\"} 1 untyped/a\n"},
	    {"a{b=\"} {,=\"} 1\n", "a{b=\"} {,=\"} 1 untyped/a\n"},
	    {"a{b=\"\xc3\xbc\"} 1\n", "a{b=\"\xc3\xbc\"} 1 untyped/a\n"},
	    {"job:http_requests:rate5m 3\n",
	     "job:http_requests:rate5m{} 3 untyped/job:http_requests:rate5m\n"},
	    {"_a{_b=\"1\"} 1\n", "_a{_b=\"1\"} 1 untyped/_a\n"},
	    /* UTF-8 names, quoted (the docs' line, with the value it lacks) */
	    {"{\"my.dotted.metric\", \"error.message\"=\"Not Found\"} 1\n",
	     "my.dotted.metric{error.message=\"Not Found\"} 1 untyped/my.dotted.metric\n"},
	    {"a{\"b.c\"=\"d\"} 1\n", "a{b.c=\"d\"} 1 untyped/a\n"},
	    /* comments, HELP, TYPE */
	    {"# just a comment\n#\n#TYPE a gauge\na 1\n", "a{} 1 gauge/a\n"},
	    {"# HELP a two\\nlines \\\\ and \"quotes\"\n# TYPE a counter\na 1\n",
	     "a{} 1 counter/a\n"},
	    {"# TYPE a counter\n# HELP a text\na 1\n", "a{} 1 counter/a\n"},
	    {"# TYPE a untyped\na 1\n", "a{} 1 untyped/a\n"},
	    {"# EOF\n", ""},
	    /* family membership */
	    {"# TYPE x counter\nx_total 4\nx_created 1\ny 2\n",
	     "x_total{} 4 counter/x\nx_created{} 1 counter/x\ny{} 2 untyped/y\n"},
	    {"# TYPE x summary\nx_bucket 1\nx_count 1\n",
	     "x_bucket{} 1 untyped/x_bucket\nx_count{} 1 summary/x\n"},
	    {"# TYPE x gauge\nx_sum 1\n", "x_sum{} 1 untyped/x_sum\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_buf out;
		struct kr_error err;
		enum kr_status rc;

		kr_buf_init(&out);
		kr_error_clear(&err);
		rc = kr_promtext_parse(cases[i].in, strlen(cases[i].in), NULL, render, &out, &err);
		if (rc != KR_OK || strcmp(out.data, cases[i].out) != 0)
			fail_msg("case %zu \"%s\": rc %d (%s), got \"%s\"", i, cases[i].in, rc,
				 err.msg, out.data);
		kr_buf_release(&out);
	}
}

struct bad_case {
	const char *in;
	enum kr_status code;
	const char *msg; /* substring of the error */
};

/* Found by fuzz_promtext: a NUL inside quotes must not cut "401\0junk" down to "401",
 * and empty quoted names are refused as Prometheus refuses them. */
static void test_nul_and_empty_quoted_names(void **state)
{
	static const char nul[] = "http_requests_total{code=\"401\0junk\"} 5\n";
	static const struct bad_case cases[] = {
	    {"{\"\"} 2\n", KR_EPROTO, "line 1: empty quoted name"},
	    {"x{\"\"=\"v\"} 1\n", KR_EPROTO, "line 1: empty quoted name"},
	};
	struct kr_buf out;
	struct kr_error err;

	(void)state;
	kr_buf_init(&out);
	assert_int_equal(kr_promtext_parse(nul, sizeof(nul) - 1, NULL, render, &out, &err),
			 KR_EPROTO);
	assert_non_null(strstr(err.msg, "NUL byte"));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kr_buf_reset(&out);
		assert_int_equal(kr_promtext_parse(cases[i].in, strlen(cases[i].in), NULL, render,
						   &out, &err),
				 cases[i].code);
		assert_non_null(strstr(err.msg, cases[i].msg));
	}
	kr_buf_release(&out);
}

static void test_malformed_inputs(void **state)
{
	static const struct bad_case cases[] = {
	    {"a{b=\"c} 1\n", KR_EPROTO, "line 1: label 1: missing closing quote"},
	    {"a{b=\"\\q\"} 1\n", KR_EPROTO,
	     "line 1: label 1: invalid escape sequence (only \\\\, \\\" and \\n)"},
	    {"a{x=\"y\",b=\"\\t\"} 1\n", KR_EPROTO, "label 2: invalid escape sequence"},
	    {"a{b=c} 1\n", KR_EPROTO, "label 1: value must be a quoted string"},
	    {"a{b} 1\n", KR_EPROTO, "label 1: expected '=' after the name"},
	    {"a{b=\"c\" d=\"e\"} 1\n", KR_EPROTO, "expected ',' or '}' after a label"},
	    {"a{b=\"c\"\n", KR_EPROTO, "expected ',' or '}'"},
	    {"a{b=\"c\",\n", KR_EPROTO, "missing '}' after the labels"},
	    {"a{,} 1\n", KR_EPROTO, "invalid label name"},
	    {"a{1b=\"c\"} 1\n", KR_EPROTO, "invalid label name"},
	    {"a{b:c=\"d\"} 1\n", KR_EPROTO, "expected '=' after the name"},
	    {"a{b=\"1\",b=\"2\"} 1\n", KR_EPROTO, "line 1: label 2: the same name as label 1"},
	    {"a\n", KR_EPROTO, "line 1: missing value"},
	    {"a{b=\"c\"}\n", KR_EPROTO, "missing value"},
	    {"a 1x\n", KR_EPROTO, "line 1: invalid value (not a number)"},
	    {"a 1,5\n", KR_EPROTO, "invalid value"},
	    {"a 1_000\n", KR_EPROTO, "invalid value"},
	    {"a nan(0x1)\n", KR_EPROTO, "invalid value"},
	    {"a 1e999\n", KR_EPROTO, "invalid value"},
	    {"a 1 1.5\n", KR_EPROTO, "invalid timestamp (not an integer of milliseconds)"},
	    {"a 1 99999999999999999999\n", KR_EPROTO, "invalid timestamp"},
	    {"a 1 2 3\n", KR_EPROTO, "unexpected text after the timestamp"},
	    {"1a 1\n", KR_EPROTO, "invalid metric name"},
	    {"a-b 1\n", KR_EPROTO, "invalid metric name"},
	    {"{} 1\n", KR_EPROTO, "no metric name"},
	    {"a{b=\"c\"}1\n", KR_EPROTO, "expected a blank between the labels and the value"},
	    {"{\"x\"} \n", KR_EPROTO, "missing value"},
	    /* the docs' UTF-8 example line as printed there, without a value */
	    {"{\"my.dotted.metric\", \"error.message\"=\"Not Found\"}\n", KR_EPROTO,
	     "missing value"},
	    {"# TYPE a bogus\n", KR_EPROTO,
	     "unknown metric type (want counter, gauge, histogram, summary or untyped)"},
	    {"# TYPE a\n", KR_EPROTO, "TYPE takes a metric name and one type"},
	    {"# TYPE a counter extra\n", KR_EPROTO, "TYPE takes a metric name and one type"},
	    {"# TYPE 1a counter\n", KR_EPROTO, "TYPE without a valid metric name"},
	    {"# HELP\n", KR_EPROTO, "HELP without a valid metric name"},
	    {"# HELP a bad \\q\n", KR_EPROTO,
	     "HELP text: invalid escape sequence (only \\\\ and \\n)"},
	    {"# TYPE a counter\na 1\n# TYPE a gauge\n", KR_EPROTO,
	     "line 3: TYPE after the samples of its metric"},
	    {"ok 1\n\n# fine\nbad{ 1\n", KR_EPROTO, "line 4: "},
	    {"ok 1\r\nbad 1 x\r\n", KR_EPROTO, "line 2: invalid timestamp"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_buf out;
		struct kr_error err;
		enum kr_status rc;

		kr_buf_init(&out);
		kr_error_clear(&err);
		rc = kr_promtext_parse(cases[i].in, strlen(cases[i].in), NULL, render, &out, &err);
		if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu \"%s\": rc %d, error \"%s\", want \"%s\"", i,
				 cases[i].in, rc, err.msg, cases[i].msg);
		kr_buf_release(&out);
	}
}

/*
 * A scrape URL is chosen by a KeyRotation's author: whatever the server sent must not come
 * back in a message (status, Events). Errors name lines and label positions, never text.
 */
static void test_messages_quote_nothing(void **state)
{
	static const char *const inputs[] = {
	    "m hunter2\n",
	    "m 1 hunter2\n",
	    "m{hunter2=x} 1\n",
	    "m{hunter2} 1\n",
	    "m{a=\"hunter2\\q\"} 1\n",
	    "m{hunter2=\"1\",hunter2=\"2\"} 1\n",
	    "m{\"hunter2\"=\"1\",\"hunter2\"=\"2\"} 1\n",
	    "# TYPE m hunter2\n",
	    "# HELP hunter2 x\nhunter2 1\n# TYPE hunter2 counter\n",
	    "# HELP m hunter2 \\x\n",
	    "m{a=\"hunter2\n",
	    "hunter2{a=\"b\"}1\n",
	    "hunter2-x 1\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct kr_buf out;
		struct kr_error err;
		enum kr_status rc;

		kr_buf_init(&out);
		kr_error_clear(&err);
		rc = kr_promtext_parse(inputs[i], strlen(inputs[i]), NULL, render, &out, &err);
		if (rc != KR_EPROTO || strstr(err.msg, "hunter2"))
			fail_msg("case %zu: rc %d, \"%s\"", i, rc, err.msg);
		kr_buf_release(&out);
	}
}

static void test_limits(void **state)
{
	struct kr_promtext_limits line = {.max_line = 16};
	struct kr_promtext_limits bytes = {.max_bytes = 10};
	struct kr_promtext_limits samples = {.max_samples = 2};
	struct kr_promtext p;
	struct kr_buf out;
	struct kr_error err;

	(void)state;
	kr_buf_init(&out);
	assert_int_equal(
	    kr_promtext_parse("a 1\nlong_metric_name_here 1\n", 27, &line, render, &out, &err),
	    KR_ETOOBIG);
	assert_string_equal(err.msg, "line 2: longer than 16 bytes");
	assert_int_equal(kr_promtext_parse("a 1\nb 2\nc 3\n", 12, &bytes, render, &out, &err),
			 KR_ETOOBIG);
	assert_string_equal(err.msg, "exposition larger than 10 bytes");
	assert_int_equal(kr_promtext_parse("a 1\nb 2\nc 3\n", 12, &samples, render, &out, &err),
			 KR_ETOOBIG);
	assert_string_equal(err.msg, "line 3: more than 2 samples");

	/* A line split across chunks still counts whole; after an error, nothing more. */
	kr_buf_reset(&out);
	kr_promtext_init(&p, &line, render, &out);
	assert_int_equal(kr_promtext_feed(&p, "a 1\nlong_met", 12, &err), KR_OK);
	assert_int_equal(kr_promtext_feed(&p, "ric_name 1\n", 11, &err), KR_ETOOBIG);
	assert_int_equal(kr_promtext_feed(&p, "b 1\n", 4, &err), KR_ETOOBIG);
	assert_int_equal(kr_promtext_finish(&p, &err), KR_ETOOBIG);
	assert_string_equal(out.data, "a{} 1 untyped/a\n");
	kr_promtext_release(&p);
	kr_buf_release(&out);
}

static enum kr_status stop_at_second(void *arg, const struct kr_prom_sample *s,
				     struct kr_error *err)
{
	int *count = arg;

	if (++*count == 2)
		return kr_error_set(err, KR_ECANCELED, "stopped at line %zu", s->line);
	return KR_OK;
}

static void test_callback_stops_parse(void **state)
{
	struct kr_error err;
	int count = 0;

	(void)state;
	assert_int_equal(
	    kr_promtext_parse("a 1\n# c\nb 2\nc 3\n", 16, NULL, stop_at_second, &count, &err),
	    KR_ECANCELED);
	assert_string_equal(err.msg, "stopped at line 3");
	assert_int_equal(count, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_docs_example_whole),
	    cmocka_unit_test(test_docs_example_streamed),
	    cmocka_unit_test(test_docs_escapes_unescaped),
	    cmocka_unit_test(test_valid_inputs),
	    cmocka_unit_test(test_malformed_inputs),
	    cmocka_unit_test(test_nul_and_empty_quoted_names),
	    cmocka_unit_test(test_messages_quote_nothing),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_callback_stops_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
