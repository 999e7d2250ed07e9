/* test_metrics.c - the metrics registry: text rendering, escaping, histograms, deletion, threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "reconciler/reconciler.h"
#include "runtime/metrics.h"

enum op_kind { END = 0, INC, ADD, SET, GADD, GINC, GDEC, OBS, DEL };

struct op {
	enum op_kind kind;
	const char *values[KR_METRIC_MAX_LABELS];
	double v;
};

static const double two_buckets[] = {0.5, 1};

/* One family, a list of updates, the exact text expected. */
static const struct render_case {
	const char *what;
	struct kr_metric_desc desc;
	struct op ops[12];
	const char *want;
} render_cases[] = {
    {"label-less counter renders 0 before first use",
     {KR_METRIC_COUNTER, "t_total", "Things.", {NULL}, NULL, 0},
     {{END, {NULL}, 0}},
     "# HELP t_total Things.\n# TYPE t_total counter\nt_total 0\n"},
    {"counter inc and add",
     {KR_METRIC_COUNTER, "t_total", "h", {NULL}, NULL, 0},
     {{INC, {NULL}, 0}, {ADD, {NULL}, 2.5}},
     "# HELP t_total h\n# TYPE t_total counter\nt_total 3.5\n"},
    {"labelled family with no series renders nothing",
     {KR_METRIC_GAUGE, "g", "h", {"a"}, NULL, 0},
     {{END, {NULL}, 0}},
     ""},
    {"label values escaped: backslash, quote, newline",
     {KR_METRIC_GAUGE, "g", "h", {"v"}, NULL, 0},
     {{SET, {"a\\b"}, 1}, {SET, {"q\"x"}, 2}, {SET, {"n\nl"}, 3}},
     "# HELP g h\n# TYPE g gauge\n"
     "g{v=\"a\\\\b\"} 1\ng{v=\"n\\nl\"} 3\ng{v=\"q\\\"x\"} 2\n"},
    {"HELP escapes backslash and newline only",
     {KR_METRIC_GAUGE, "g", "say \"a\\b\"\nnext", {NULL}, NULL, 0},
     {{END, {NULL}, 0}},
     "# HELP g say \"a\\\\b\"\\nnext\n# TYPE g gauge\ng 0\n"},
    {"series sorted by label values, first label first",
     {KR_METRIC_COUNTER, "r_total", "h", {"ns", "name"}, NULL, 0},
     {{INC, {"b", "a"}, 0}, {INC, {"a", "z"}, 0}, {INC, {"a", "b"}, 0}, {ADD, {"b", "a"}, 2}},
     "# HELP r_total h\n# TYPE r_total counter\n"
     "r_total{ns=\"a\",name=\"b\"} 1\nr_total{ns=\"a\",name=\"z\"} 1\n"
     "r_total{ns=\"b\",name=\"a\"} 3\n"},
    {"gauge set, add, inc, dec; numbers in shortest round-trip form",
     {KR_METRIC_GAUGE, "g", "h", {"k"}, NULL, 0},
     {{SET, {"a"}, 0.1},
      {SET, {"b"}, 1e21},
      {SET, {"c"}, INFINITY},
      {GADD, {"d"}, -3},
      {SET, {"e"}, 123456789},
      {SET, {"g"}, -0.000012},
      {SET, {"h"}, 3600},
      {GINC, {"f"}, 0},
      {GINC, {"f"}, 0},
      {GDEC, {"f"}, 0}},
     "# HELP g h\n# TYPE g gauge\n"
     "g{k=\"a\"} 0.1\ng{k=\"b\"} 1e+21\ng{k=\"c\"} +Inf\ng{k=\"d\"} -3\n"
     "g{k=\"e\"} 123456789\ng{k=\"f\"} 1\ng{k=\"g\"} -1.2e-05\ng{k=\"h\"} 3600\n"},
    {"histogram buckets cumulative, +Inf, _sum, _count",
     {KR_METRIC_HISTOGRAM, "d_seconds", "h", {NULL}, two_buckets, 2},
     {{OBS, {NULL}, 0.25}, {OBS, {NULL}, 0.5}, {OBS, {NULL}, 0.75}, {OBS, {NULL}, 4}},
     "# HELP d_seconds h\n# TYPE d_seconds histogram\n"
     "d_seconds_bucket{le=\"0.5\"} 2\nd_seconds_bucket{le=\"1\"} 3\n"
     "d_seconds_bucket{le=\"+Inf\"} 4\nd_seconds_sum 5.5\nd_seconds_count 4\n"},
    {"histogram with labels puts le last",
     {KR_METRIC_HISTOGRAM, "d_seconds", "h", {"op"}, two_buckets, 2},
     {{OBS, {"x"}, 2}},
     "# HELP d_seconds h\n# TYPE d_seconds histogram\n"
     "d_seconds_bucket{op=\"x\",le=\"0.5\"} 0\nd_seconds_bucket{op=\"x\",le=\"1\"} 0\n"
     "d_seconds_bucket{op=\"x\",le=\"+Inf\"} 1\nd_seconds_sum{op=\"x\"} 2\n"
     "d_seconds_count{op=\"x\"} 1\n"},
    {"deleted series disappear",
     {KR_METRIC_GAUGE, "g", "h", {"k"}, NULL, 0},
     {{SET, {"a"}, 1}, {SET, {"b"}, 2}, {DEL, {"a"}, 0}},
     "# HELP g h\n# TYPE g gauge\ng{k=\"b\"} 2\n"},
    {"deleting the last series drops the family",
     {KR_METRIC_GAUGE, "g", "h", {"k"}, NULL, 0},
     {{SET, {"a"}, 1}, {DEL, {"a"}, 0}},
     ""},
};

static const char *const *op_values(const struct kr_metric_desc *d, const struct op *op)
{
	return d->labels[0] == NULL ? NULL : op->values;
}

static void apply(struct kr_metric *f, const struct kr_metric_desc *d, const struct op *op)
{
	const char *const *lv = op_values(d, op);
	enum kr_status rc = KR_OK;

	switch (op->kind) {
	case INC:
		rc = kr_counter_inc(f, lv);
		break;
	case ADD:
		rc = kr_counter_add(f, lv, op->v);
		break;
	case SET:
		rc = kr_gauge_set(f, lv, op->v);
		break;
	case GADD:
		rc = kr_gauge_add(f, lv, op->v);
		break;
	case GINC:
		rc = kr_gauge_inc(f, lv);
		break;
	case GDEC:
		rc = kr_gauge_dec(f, lv);
		break;
	case OBS:
		rc = kr_histogram_observe(f, lv, op->v);
		break;
	case DEL:
		rc = kr_metric_delete(f, lv);
		break;
	case END:
		break;
	}
	assert_int_equal(rc, KR_OK);
}

static void test_render_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		const struct render_case *c = &render_cases[i];
		struct kr_metrics *m = kr_metrics_new();
		struct kr_metric *f = NULL;
		struct kr_error err;
		struct kr_buf b;

		kr_buf_init(&b);
		assert_int_equal(kr_metrics_register(m, &c->desc, &f, &err), KR_OK);
		for (size_t j = 0; j < 12 && c->ops[j].kind != END; j++)
			apply(f, &c->desc, &c->ops[j]);
		assert_int_equal(kr_metrics_render(m, &b), KR_OK);
		if (strcmp(b.data, c->want) != 0)
			fail_msg("case \"%s\":\n got: %s\nwant: %s", c->what, b.data, c->want);
		kr_buf_release(&b);
		kr_metrics_free(m);
	}
}

static void test_families_sorted_by_name(void **state)
{
	static const char *const names[] = {"c_total", "a_total", "b_total"};
	struct kr_metrics *m = kr_metrics_new();
	struct kr_buf b;

	(void)state;
	kr_buf_init(&b);
	for (size_t i = 0; i < 3; i++) {
		struct kr_metric_desc d = {KR_METRIC_COUNTER, names[i], "h", {NULL}, NULL, 0};
		struct kr_metric *f;

		assert_int_equal(kr_metrics_register(m, &d, &f, NULL), KR_OK);
	}
	assert_int_equal(kr_metrics_render(m, &b), KR_OK);
	assert_string_equal(b.data, "# HELP a_total h\n# TYPE a_total counter\na_total 0\n"
				    "# HELP b_total h\n# TYPE b_total counter\nb_total 0\n"
				    "# HELP c_total h\n# TYPE c_total counter\nc_total 0\n");
	kr_buf_release(&b);
	/* GET /metrics?name=c_total&name=a_total&name=nope: those families only, in order */
	kr_buf_init(&b);
	assert_int_equal(kr_metrics_render_only(m, (const char *[]){"c_total", "a_total", "nope"},
						3, &b),
			 KR_OK);
	assert_string_equal(b.data, "# HELP a_total h\n# TYPE a_total counter\na_total 0\n"
				    "# HELP c_total h\n# TYPE c_total counter\nc_total 0\n");
	kr_buf_release(&b);
	kr_buf_init(&b);
	assert_int_equal(kr_metrics_render_only(m, (const char *[]){"nope"}, 1, &b), KR_OK);
	assert_int_equal(b.len, 0);
	kr_buf_release(&b);
	kr_metrics_free(m);
}

static const double bad_buckets[] = {1, 1};

static void test_register_rejects(void **state)
{
	static const struct {
		struct kr_metric_desc d;
		enum kr_status want;
		const char *msg_has;
	} cases[] = {
	    {{KR_METRIC_GAUGE, "1abc", "h", {NULL}, NULL, 0}, KR_EINVAL, "1abc"},
	    {{KR_METRIC_GAUGE, "a-b", "h", {NULL}, NULL, 0}, KR_EINVAL, "a-b"},
	    {{KR_METRIC_GAUGE, NULL, "h", {NULL}, NULL, 0}, KR_EINVAL, "(null)"},
	    {{KR_METRIC_GAUGE, "g", "h", {"__x"}, NULL, 0}, KR_EINVAL, "__x"},
	    {{KR_METRIC_GAUGE, "g", "h", {"a:b"}, NULL, 0}, KR_EINVAL, "a:b"},
	    {{KR_METRIC_GAUGE, "g", "h", {"a", "a"}, NULL, 0}, KR_EINVAL, "twice"},
	    {{KR_METRIC_GAUGE, "g", "h", {NULL, "a"}, NULL, 0}, KR_EINVAL, "NULL"},
	    {{KR_METRIC_HISTOGRAM, "h", "h", {"le"}, two_buckets, 2}, KR_EINVAL, "le"},
	    {{KR_METRIC_HISTOGRAM, "h", "h", {NULL}, NULL, 0}, KR_EINVAL, "buckets"},
	    {{KR_METRIC_HISTOGRAM, "h", "h", {NULL}, bad_buckets, 2}, KR_EINVAL, "increasing"},
	    {{KR_METRIC_GAUGE, "taken", "h", {NULL}, NULL, 0}, KR_EEXIST, "taken"},
	};
	struct kr_metric_desc taken = {KR_METRIC_COUNTER, "taken", "h", {NULL}, NULL, 0};
	struct kr_metrics *m = kr_metrics_new();
	struct kr_metric *f;
	struct kr_buf b;

	(void)state;
	assert_int_equal(kr_metrics_register(m, &taken, &f, NULL), KR_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_metric *g = NULL;
		struct kr_error err;

		kr_error_clear(&err);
		assert_int_equal(kr_metrics_register(m, &cases[i].d, &g, &err), cases[i].want);
		assert_null(g);
		if (strstr(err.msg, cases[i].msg_has) == NULL)
			fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg,
				 cases[i].msg_has);
	}
	/* Nothing half-registered: only "taken" renders. */
	kr_buf_init(&b);
	assert_int_equal(kr_metrics_render(m, &b), KR_OK);
	assert_string_equal(b.data, "# HELP taken h\n# TYPE taken counter\ntaken 0\n");
	kr_buf_release(&b);
	kr_metrics_free(m);
}

static void test_bad_updates_change_nothing(void **state)
{
	struct kr_metric_desc dc = {KR_METRIC_COUNTER, "c_total", "h", {"k"}, NULL, 0};
	struct kr_metric_desc dg = {KR_METRIC_GAUGE, "g", "h", {NULL}, NULL, 0};
	struct kr_metrics *m = kr_metrics_new();
	struct kr_metric *c, *g;
	double v = -1;

	(void)state;
	assert_int_equal(kr_metrics_register(m, &dc, &c, NULL), KR_OK);
	assert_int_equal(kr_metrics_register(m, &dg, &g, NULL), KR_OK);
	assert_int_equal(kr_counter_add(c, KR_LV("a"), -1), KR_EINVAL);
	assert_int_equal(kr_counter_add(c, KR_LV("a"), NAN), KR_EINVAL);
	assert_int_equal(kr_metric_get(c, KR_LV("a"), &v, NULL), KR_ENOTFOUND);
	assert_int_equal(kr_gauge_set(g, NULL, NAN), KR_EINVAL);
	assert_int_equal(kr_metric_get(g, NULL, &v, NULL), KR_OK);
	assert_true(v == 0);
	assert_int_equal(kr_metric_delete(c, KR_LV("never")), KR_ENOTFOUND);
	kr_metrics_free(m);
}

static void test_series_limit(void **state)
{
	struct kr_metric_desc d = {KR_METRIC_GAUGE, "g", "h", {"k"}, NULL, 0};
	struct kr_metrics *m = kr_metrics_new();
	struct kr_metric *f;
	char name[32];
	double v;

	(void)state;
	assert_int_equal(kr_metrics_register(m, &d, &f, NULL), KR_OK);
	for (int i = 0; i < KR_METRICS_MAX_SERIES; i++) {
		snprintf(name, sizeof(name), "s%06d", i);
		assert_int_equal(kr_gauge_set(f, KR_LV(name), i), KR_OK);
	}
	assert_int_equal(kr_gauge_set(f, KR_LV("one-more"), 1), KR_ETOOBIG);
	/* Existing series still update; deleting one makes room. */
	assert_int_equal(kr_gauge_set(f, KR_LV("s000007"), 70), KR_OK);
	assert_int_equal(kr_metric_get(f, KR_LV("s000007"), &v, NULL), KR_OK);
	assert_true(v == 70);
	assert_int_equal(kr_metric_delete(f, KR_LV("s000000")), KR_OK);
	assert_int_equal(kr_gauge_set(f, KR_LV("one-more"), 1), KR_OK);
	kr_metrics_free(m);
}

/* The runtime's families and keyrotator's, registered as `keyrotator run` does. */
struct all_metrics {
	struct kr_runtime_metrics rt;
	struct kr_keyrotator_metrics km;
};

static enum kr_status register_all(struct kr_metrics *m, const char *version,
				   struct all_metrics *a, struct kr_error *err)
{
	enum kr_status rc = kr_metrics_register_runtime(m, KR_METRICS_PREFIX, version, &a->rt, err);

	return rc == KR_OK ? kr_metrics_register_keyrotator(m, &a->km, err) : rc;
}

static void test_keyrotator_families(void **state)
{
	static const char *const want[] = {
	    "# TYPE keyrotator_rotation_duration_seconds histogram\n",
	    "keyrotator_rotation_duration_seconds_bucket{le=\"10800\"} 0\n",
	    "# TYPE keyrotator_reconcile_total counter\n",
	    "keyrotator_reconcile_duration_seconds_bucket{le=\"0.005\"} 1\n",
	    "keyrotator_reconcile_duration_seconds_bucket{le=\"10\"} 1\n",
	    "keyrotator_workqueue_depth 0\n",
	    "keyrotator_workqueue_adds_total 0\n",
	    "keyrotator_workqueue_retries_total 0\n",
	    "keyrotator_unauthorized_rate{namespace=\"sirius\",name=\"api\"} 0.25\n",
	    "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 3600\n",
	    "keyrotator_keystore_repairs_total 0\n",
	    "keyrotator_leader 1\n",
	    "keyrotator_build_info{version=\"1.2.3\"} 1\n",
	    "keyrotator_reconcile_total{result=\"success\"} 1\n",
	    /* Counters with labels start at 0 for every value alerts may name. */
	    "keyrotator_reconcile_total{result=\"error\"} 0\n",
	    "keyrotator_reconcile_total{result=\"requeue\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"succeeded\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"rolled_back\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"failed\"} 0\n",
	};
	struct all_metrics a;
	struct kr_metrics *m = kr_metrics_new();
	struct kr_error err;
	struct kr_buf b;

	(void)state;
	kr_buf_init(&b);
	assert_int_equal(register_all(m, "1.2.3", &a, &err), KR_OK);
	assert_int_equal(kr_counter_inc(a.rt.reconcile_total, KR_LV("success")), KR_OK);
	assert_int_equal(kr_histogram_observe(a.rt.reconcile_duration_seconds, NULL, 0.001), KR_OK);
	assert_int_equal(kr_gauge_set(a.km.unauthorized_rate, KR_LV("sirius", "api"), 0.25), KR_OK);
	assert_int_equal(kr_gauge_set(a.km.key_age_seconds, KR_LV("sirius", "api"), 3600), KR_OK);
	assert_int_equal(kr_gauge_set(a.rt.leader, NULL, 1), KR_OK);
	assert_int_equal(kr_metrics_render(m, &b), KR_OK);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(b.data, want[i]) == NULL)
			fail_msg("missing \"%s\" in:\n%s", want[i], b.data);
	/* Labelled families without zero values stay out until first use. */
	assert_null(strstr(b.data, "keyrotator_rotation_duration_seconds_count{"));
	assert_int_equal(kr_metrics_register_keyrotator(m, &a.km, &err), KR_EEXIST);
	assert_int_equal(kr_metrics_register_runtime(m, KR_METRICS_PREFIX, "1.2.3", &a.rt, &err),
			 KR_EEXIST);
	kr_buf_release(&b);
	kr_metrics_free(m);
}

/* A test clock for growing gauges, in milliseconds. */
static int64_t fake_now_ms(void *arg)
{
	return *(const int64_t *)arg;
}

/* The series `want` in a fresh render of `m`; fails the test when it is not there. */
static void assert_rendered(struct kr_metrics *m, const char *want)
{
	struct kr_buf b;

	kr_buf_init(&b);
	assert_int_equal(kr_metrics_render(m, &b), KR_OK);
	if (b.data == NULL || strstr(b.data, want) == NULL)
		fail_msg("missing \"%s\" in:\n%s", want, b.data ? b.data : "");
	kr_buf_release(&b);
}

/*
 * An age set once reads true at every scrape: a growing gauge adds the registry clock's
 * whole seconds since it was set, at render and at kr_metric_get, with no update between.
 */
static void test_growing_gauge_grows_between_scrapes(void **state)
{
	struct all_metrics a;
	struct kr_metrics *m = kr_metrics_new();
	int64_t now = 1000000;
	struct kr_buf b;
	double v;

	(void)state;
	kr_metrics_set_clock(m, fake_now_ms, &now);
	assert_int_equal(register_all(m, "1.2.3", &a, NULL), KR_OK);
	assert_int_equal(kr_gauge_set_growing(a.km.key_age_seconds, KR_LV("sirius", "api"), 3600),
			 KR_OK);
	assert_int_equal(kr_gauge_set(a.km.key_age_seconds, KR_LV("sirius", "db"), 60), KR_OK);
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 3600\n");
	now += 999; /* whole seconds only */
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 3600\n");
	now += 1;
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 3601\n");
	now += 3599 * 1000; /* an hour after the set, still no update */
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 7200\n");
	assert_int_equal(kr_metric_get(a.km.key_age_seconds, KR_LV("sirius", "api"), &v, NULL),
			 KR_OK);
	assert_true(v == 7200);
	/* a plain gauge stays what it was set to */
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"db\"} 60\n");
	/* the families named: the same instant, the same value */
	kr_buf_init(&b);
	assert_int_equal(kr_metrics_render_only(m, KR_LV("keyrotator_key_age_seconds"), 1, &b),
			 KR_OK);
	assert_non_null(strstr(b.data, "{namespace=\"sirius\",name=\"api\"} 7200\n"));
	kr_buf_release(&b);
	/* add moves it and it keeps growing; a new set starts from the new value and now */
	assert_int_equal(kr_gauge_add(a.km.key_age_seconds, KR_LV("sirius", "api"), 10), KR_OK);
	now += 2000;
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 7212\n");
	assert_int_equal(kr_gauge_set_growing(a.km.key_age_seconds, KR_LV("sirius", "api"), 5),
			 KR_OK);
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 5\n");
	now -= 60000; /* a clock behind the set: never below the value set */
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 5\n");
	now += 63000;
	/* kr_gauge_set makes it plain again */
	assert_int_equal(kr_gauge_set(a.km.key_age_seconds, KR_LV("sirius", "api"), 42), KR_OK);
	now += 10000;
	assert_rendered(m, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 42\n");
	kr_metrics_free(m);
}

static void test_delete_object_removes_its_series(void **state)
{
	struct all_metrics a;
	struct kr_metrics *m = kr_metrics_new();
	struct kr_metric_desc other = {KR_METRIC_GAUGE, "x", "h", {"name"}, NULL, 0};
	struct kr_metric *x;
	struct kr_buf b;
	double v;

	(void)state;
	kr_buf_init(&b);
	assert_int_equal(register_all(m, "v", &a, NULL), KR_OK);
	assert_int_equal(kr_metrics_register(m, &other, &x, NULL), KR_OK);
	kr_gauge_set(a.km.key_age_seconds, KR_LV("ns1", "a"), 1);
	kr_gauge_set(a.km.key_age_seconds, KR_LV("ns1", "b"), 2);
	kr_gauge_set(a.km.key_age_seconds, KR_LV("ns2", "a"), 3);
	kr_gauge_set(a.km.unauthorized_rate, KR_LV("ns1", "a"), 4);
	kr_gauge_set(x, KR_LV("a"), 5); /* no namespace label: not an object's series */

	assert_int_equal(kr_metrics_delete_object(m, "ns1", "a"), 2);
	assert_int_equal(kr_metric_get(a.km.key_age_seconds, KR_LV("ns1", "a"), &v, NULL),
			 KR_ENOTFOUND);
	assert_int_equal(kr_metric_get(a.km.key_age_seconds, KR_LV("ns1", "b"), &v, NULL), KR_OK);
	assert_int_equal(kr_metric_get(a.km.key_age_seconds, KR_LV("ns2", "a"), &v, NULL), KR_OK);
	assert_int_equal(kr_metric_get(x, KR_LV("a"), &v, NULL), KR_OK);
	assert_int_equal(kr_metrics_render(m, &b), KR_OK);
	assert_null(strstr(b.data, "keyrotator_unauthorized_rate"));
	assert_null(strstr(b.data, "namespace=\"ns1\",name=\"a\""));
	assert_int_equal(kr_metrics_delete_object(m, "ns1", "a"), 0);
	kr_buf_release(&b);
	kr_metrics_free(m);
}

#define N_THREADS 8
#define N_ITERS	  20000

struct thread_arg {
	struct all_metrics *km;
	struct kr_metrics *m;
	int id;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;
	char ns[16];

	snprintf(ns, sizeof(ns), "ns%d", a->id % 2);
	for (int i = 0; i < N_ITERS; i++) {
		kr_counter_inc(a->km->rt.reconcile_total, KR_LV(i % 2 ? "success" : "error"));
		kr_gauge_inc(a->km->rt.workqueue_depth, NULL);
		kr_gauge_dec(a->km->rt.workqueue_depth, NULL);
		kr_histogram_observe(a->km->rt.reconcile_duration_seconds, NULL, 0.5);
		kr_gauge_set(a->km->km.key_age_seconds, KR_LV(ns, "obj"), i);
		if (i % 1000 == 0) {
			struct kr_buf b;

			kr_buf_init(&b);
			kr_metrics_render(a->m, &b);
			kr_buf_release(&b);
			kr_metrics_delete_object(a->m, ns, "obj");
		}
	}
	return NULL;
}

static void test_concurrent_updates_add_up(void **state)
{
	struct all_metrics km;
	struct kr_metrics *m = kr_metrics_new();
	struct thread_arg args[N_THREADS];
	pthread_t t[N_THREADS];
	double v, sum;

	(void)state;
	assert_int_equal(register_all(m, "v", &km, NULL), KR_OK);
	for (int i = 0; i < N_THREADS; i++) {
		args[i] = (struct thread_arg){&km, m, i};
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(kr_metric_get(km.rt.reconcile_total, KR_LV("success"), &v, NULL), KR_OK);
	assert_true(v == N_THREADS * N_ITERS / 2);
	assert_int_equal(kr_metric_get(km.rt.reconcile_total, KR_LV("error"), &v, NULL), KR_OK);
	assert_true(v == N_THREADS * N_ITERS / 2);
	assert_int_equal(kr_metric_get(km.rt.workqueue_depth, NULL, &v, NULL), KR_OK);
	assert_true(v == 0);
	assert_int_equal(kr_metric_get(km.rt.reconcile_duration_seconds, NULL, &v, &sum), KR_OK);
	assert_true(v == N_THREADS * N_ITERS);
	assert_true(sum == N_THREADS * N_ITERS * 0.5);
	kr_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_cases),
	    cmocka_unit_test(test_families_sorted_by_name),
	    cmocka_unit_test(test_register_rejects),
	    cmocka_unit_test(test_bad_updates_change_nothing),
	    cmocka_unit_test(test_series_limit),
	    cmocka_unit_test(test_keyrotator_families),
	    cmocka_unit_test(test_growing_gauge_grows_between_scrapes),
	    cmocka_unit_test(test_delete_object_removes_its_series),
	    cmocka_unit_test(test_concurrent_updates_add_up),
	};
	kr_metrics_free(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
