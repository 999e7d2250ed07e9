/* test_analysis_rate.c - matching counter series in a scrape, and rates across resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"

static const struct kr_prom_label code401[] = {{"code", "401"}};

static enum kr_status snap_from(struct kr_counter_snapshot *s, const char *text, double at,
				const char *metric, const struct kr_prom_label *labels,
				size_t nlabels, struct kr_error *err)
{
	struct kr_counter_match mt = {metric, labels, nlabels, NULL};

	kr_counter_snapshot_init(s);
	return kr_counter_snapshot_parse(s, text, strlen(text), &mt, at, err);
}

static void test_match_sums_series(void **state)
{
	static const char text[] =
	    "# HELP http_requests_total Requests.\n"
	    "# TYPE http_requests_total counter\n"
	    "http_requests_total{method=\"get\",code=\"200\"} 1000\n"
	    "http_requests_total{method=\"get\",code=\"401\"} 7\n"
	    "http_requests_total{code=\"401\",method=\"post\"} 3 1395066363000\n"
	    "http_requests_total_other{code=\"401\"} 100\n"
	    "other_total{code=\"401\"} 100\n";
	struct kr_counter_snapshot s;
	struct kr_error err;

	(void)state;
	assert_int_equal(snap_from(&s, text, 10, "http_requests_total", code401, 1, &err), KR_OK);
	assert_int_equal(s.n, 2);
	assert_true(s.sum == 10);
	assert_int_equal(s.metric_seen, 3);
	assert_int_equal(s.type, KR_PROM_COUNTER);
	/* canonical keys: labels sorted by name */
	assert_string_equal(s.series[0].key, "code=\"401\",method=\"get\"");
	assert_string_equal(s.series[1].key, "code=\"401\",method=\"post\"");
	kr_counter_snapshot_release(&s);
	kr_counter_snapshot_release(&s); /* twice is fine */
}

struct match_case {
	const char *text;
	const struct kr_prom_label *labels;
	size_t nlabels;
	enum kr_status rc;
	double sum;
	const char *msg;
};

static void test_match_table(void **state)
{
	static const struct kr_prom_label none_env[] = {{"code", "401"}, {"env", ""}};
	static const struct kr_prom_label escaped[] = {{"path", "a\"b\\c\nd"}};
	static const struct match_case cases[] = {
	    /* the metric exists, the 401 series not yet: zero, not an error */
	    {"x_total{code=\"200\"} 5\n", code401, 1, KR_OK, 0, NULL},
	    /* no selector: every series */
	    {"x_total{code=\"200\"} 5\nx_total{code=\"401\"} 2\n", NULL, 0, KR_OK, 7, NULL},
	    /* a selector label that is absent matches "" */
	    {"x_total{code=\"401\"} 5\nx_total{code=\"401\",env=\"p\"} 2\n", none_env, 2, KR_OK, 5,
	     NULL},
	    {"x_total{path=\"a\\\"b\\\\c\\nd\"} 4\n", escaped, 1, KR_OK, 4, NULL},
	    /* summary/histogram counts are counters too */
	    {"# TYPE x_total summary\nx_total{code=\"401\"} 1\n", code401, 1, KR_OK, 1, NULL},
	    {"y_total 1\n", code401, 1, KR_ENOTFOUND, 0, "no series named x_total"},
	    {"", NULL, 0, KR_ENOTFOUND, 0, "no series named x_total"},
	    {"# TYPE x_total gauge\nx_total{code=\"401\"} 1\n", code401, 1, KR_EINVAL, 0,
	     "x_total is a gauge, not a counter"},
	    {"x_total{code=\"401\"} NaN\n", code401, 1, KR_EPROTO, 0,
	     "x_total: a matching series is NaN, not a counter value"},
	    {"x_total{code=\"401\"} +Inf\n", code401, 1, KR_EPROTO, 0, "is infinite"},
	    {"x_total{code=\"401\"} -1\n", code401, 1, KR_EPROTO, 0, "is negative"},
	    {"x_total{code=\"401\",a=\"1\"} 1\nx_total{a=\"1\",code=\"401\"} 1\n", code401, 1,
	     KR_EPROTO, 0, "x_total: two matching series have the same labels"},
	    {"x_total{code=\"401\" 1\n", code401, 1, KR_EPROTO, 0, "line 1: "},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_counter_snapshot s;
		struct kr_error err;
		enum kr_status rc;

		kr_error_clear(&err);
		rc = snap_from(&s, cases[i].text, 1, "x_total", cases[i].labels, cases[i].nlabels,
			       &err);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, err.msg);
		if (rc == KR_OK && s.sum != cases[i].sum)
			fail_msg("case %zu: sum %g, want %g", i, s.sum, cases[i].sum);
		if (rc != KR_OK && !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: error \"%s\", want \"%s\"", i, err.msg, cases[i].msg);
		kr_counter_snapshot_release(&s);
	}
}

struct rate_case {
	const char *name;
	const char *prev, *cur; /* series "x_total{...} v" lines */
	double dt;
	int ok;
	double rate;
};

static void test_rate_table(void **state)
{
	static const struct rate_case cases[] = {
	    {"steady increase", "x_total{i=\"a\"} 10\n", "x_total{i=\"a\"} 40\n", 10, 1, 3},
	    {"no change", "x_total{i=\"a\"} 10\n", "x_total{i=\"a\"} 10\n", 5, 1, 0},
	    {"reset: new value is the increase", "x_total{i=\"a\"} 100\n", "x_total{i=\"a\"} 5\n",
	     5, 1, 1},
	    {"reset to zero", "x_total{i=\"a\"} 100\n", "x_total{i=\"a\"} 0\n", 5, 1, 0},
	    {"one series reset, one not", "x_total{i=\"a\"} 10\nx_total{i=\"b\"} 50\n",
	     "x_total{i=\"a\"} 20\nx_total{i=\"b\"} 3\n", 1, 1, 13},
	    {"a reset in one series is not hidden by the sum",
	     "x_total{i=\"a\"} 100\nx_total{i=\"b\"} 0\n",
	     "x_total{i=\"a\"} 0\nx_total{i=\"b\"} 60\n", 10, 1, 6},
	    {"series born since the last scrape counts from 0", "x_total{i=\"a\"} 10\n",
	     "x_total{i=\"a\"} 10\nx_total{i=\"b\"} 4\n", 2, 1, 2},
	    {"first 401 series ever", "y 1\n", "x_total{i=\"a\"} 6\n", 3, 1, 2},
	    {"series gone adds nothing", "x_total{i=\"a\"} 10\nx_total{i=\"b\"} 4\n",
	     "x_total{i=\"a\"} 12\n", 2, 1, 1},
	    {"fractional counters", "x_total 0.5\n", "x_total 2\n", 0.5, 1, 3},
	    {"no time between scrapes", "x_total 1\n", "x_total 2\n", 0, 0, 0},
	    {"clock went back", "x_total 1\n", "x_total 2\n", -1, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_counter_snapshot a, b;
		struct kr_measurement m;
		struct kr_error err;
		struct kr_counter_match mt = {"x_total", NULL, 0, NULL};

		kr_counter_snapshot_init(&a);
		kr_counter_snapshot_init(&b);
		/* prev may lack the metric: parse without finish's "not found" check */
		mt.snap = &a;
		assert_int_equal(kr_promtext_parse(cases[i].prev, strlen(cases[i].prev), NULL,
						   kr_counter_match_sample, &mt, &err),
				 KR_OK);
		a.at = 100;
		if (a.metric_seen)
			assert_int_equal(kr_counter_snapshot_finish(&a, "x_total", &err), KR_OK);
		assert_int_equal(kr_counter_snapshot_parse(&b, cases[i].cur, strlen(cases[i].cur),
							   &mt, 100 + cases[i].dt, &err),
				 KR_OK);
		kr_counter_rate(&a, &b, &m);
		if (m.ok != cases[i].ok || (m.ok && fabs(m.value - cases[i].rate) > 1e-9))
			fail_msg("%s: ok %d rate %g, want ok %d rate %g (%s)", cases[i].name, m.ok,
				 m.value, cases[i].ok, cases[i].rate, m.reason.msg);
		if (!m.ok)
			assert_non_null(strstr(m.reason.msg, "no time between the two scrapes"));
		else
			assert_true(m.at == b.at);
		kr_counter_snapshot_release(&a);
		kr_counter_snapshot_release(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_sums_series),
	    cmocka_unit_test(test_match_table),
	    cmocka_unit_test(test_rate_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
