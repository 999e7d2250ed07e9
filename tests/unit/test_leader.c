/* test_leader.c - leader election options, the acquire decision on a fake clock, prompt stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube.h"
#include "runtime/leader.h"

/* ---- options ------------------------------------------------------------------- */

static const struct opts_case {
	const char *ns, *name;
	long lease, renew, retry;
	enum kr_status want;
	const char *msg; /* substring of the error */
} opts_cases[] = {
    {"default", "keyrotator", 0, 0, 0, KR_OK, NULL}, /* defaults 15 s / 10 s / 2 s */
    {"default", "keyrotator", 15000, 10000, 2000, KR_OK, NULL},
    {"default", "keyrotator", 3000, 2000, 500, KR_OK, NULL},
    {"default", "keyrotator", 1000, 999, 1, KR_OK, NULL},
    {NULL, "keyrotator", 0, 0, 0, KR_EINVAL, "namespace is required"},
    {"", "keyrotator", 0, 0, 0, KR_EINVAL, "namespace is required"},
    {"default", NULL, 0, 0, 0, KR_EINVAL, "lease name is required"},
    {"default", "", 0, 0, 0, KR_EINVAL, "lease name is required"},
    {"default", "k", -1000, 0, 0, KR_EINVAL, "greater than zero"},
    {"default", "k", 0, -1, 0, KR_EINVAL, "greater than zero"},
    {"default", "k", 0, 0, -1, KR_EINVAL, "greater than zero"},
    {"default", "k", 3500, 2000, 500, KR_EINVAL, "whole number of seconds"},
    {"default", "k", 10000, 10000, 2000, KR_EINVAL, "greater than the renew deadline"},
    {"default", "k", 5000, 10000, 2000, KR_EINVAL, "greater than the renew deadline"},
    {"default", "k", 0, 20000, 0, KR_EINVAL, "greater than the renew deadline"},
    {"default", "k", 15000, 2400, 2000, KR_EINVAL, "1.2 x the retry period"},
    {"default", "k", 15000, 2401, 2000, KR_OK, NULL},
    {"default", "k", 15000, 10000, 9000, KR_EINVAL, "1.2 x the retry period"},
    {"default", "k", 0, 0, 10000, KR_EINVAL, "1.2 x the retry period"},
};

static void test_opts_validate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(opts_cases) / sizeof(opts_cases[0]); i++) {
		const struct opts_case *c = &opts_cases[i];
		struct kr_leader_opts o = {.namespace_ = c->ns,
					   .name = c->name,
					   .lease_duration_ms = c->lease,
					   .renew_deadline_ms = c->renew,
					   .retry_period_ms = c->retry};
		struct kr_error err;
		enum kr_status rc;

		kr_error_clear(&err);
		rc = kr_leader_opts_validate(&o, &err);
		if (rc != c->want || (c->msg && !strstr(err.msg, c->msg))) {
			fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, err.msg, c->want,
				 c->msg ? c->msg : "");
		}
	}
}

static void test_opts_defaults(void **state)
{
	struct kr_leader_opts o = {.namespace_ = "ns", .name = "n", .retry_period_ms = 700};

	(void)state;
	kr_leader_opts_defaults(&o);
	assert_int_equal(o.lease_duration_ms, 15000);
	assert_int_equal(o.renew_deadline_ms, 10000);
	assert_int_equal(o.retry_period_ms, 700);
}

/* ---- the acquire decision, on a fake clock ------------------------------------------ */

static const struct acquire_case {
	const char *holder;
	int duration_s;
	int64_t observed_ms, now_ms;
	int want;
} acquire_cases[] = {
    {"", 15, 1000, 1000, 1},	   /* released (or never held): take it at once */
    {"", 1, 1000, 1000, 1},	   /* client-go's release record */
    {"me", 15, 1000, 1001, 1},	   /* ours: renew */
    {"other", 15, 1000, 1000, 0},  /* just seen */
    {"other", 15, 1000, 15999, 0}, /* 1 ms before it expires by our clock */
    {"other", 15, 1000, 16000, 1}, /* expired by our clock */
    {"other", 15, 1000, 99999, 1},
    {"other", 3, 50000, 52999, 0}, /* the holder's duration counts, not ours */
    {"other", 3, 50000, 53000, 1},
    {"other", 0, 1000, 1000, 1}, /* a zero duration expires at once */
    {"me2", 15, 1000, 2000, 0},	 /* prefix of our identity is someone else */
};

static void test_may_acquire(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(acquire_cases) / sizeof(acquire_cases[0]); i++) {
		const struct acquire_case *c = &acquire_cases[i];
		struct kr_leader_record rec = {.lease_duration_s = c->duration_s};

		snprintf(rec.holder, sizeof(rec.holder), "%s", c->holder);
		if (kr_leader_may_acquire(&rec, "me", c->observed_ms, c->now_ms) != c->want)
			fail_msg("case %zu: holder '%s' want %d", i, c->holder, c->want);
	}
}

/* ---- the elector object, against a server that refuses connections -------------------- */

static void config_unreachable(struct kr_kube_config *cfg)
{
	kr_kube_config_init(cfg);
	cfg->server = strdup("http://127.0.0.1:1");
	cfg->namespace_ = strdup("default");
	cfg->source = strdup("test");
	assert_non_null(cfg->server);
}

static void test_new_rejects_bad_opts(void **state)
{
	struct kr_kube_config cfg;
	struct kr_leader_opts o = {.namespace_ = "default", .name = "k", .lease_duration_ms = 1000};
	struct kr_error err;

	(void)state;
	config_unreachable(&cfg);
	assert_null(kr_leader_new(&cfg, &o, NULL, &err));
	assert_int_equal(err.code, KR_EINVAL);
	assert_non_null(strstr(err.msg, "renew deadline"));
	kr_leader_free(NULL);
	kr_kube_config_release(&cfg);
}

static void test_default_identity(void **state)
{
	struct kr_kube_config cfg;
	struct kr_leader_opts o = {.namespace_ = "default", .name = "k"};
	struct kr_leader *a, *b;
	const char *ida, *us;
	struct kr_error err;

	(void)state;
	config_unreachable(&cfg);
	a = kr_leader_new(&cfg, &o, NULL, &err);
	b = kr_leader_new(&cfg, &o, NULL, &err);
	assert_non_null(a);
	assert_non_null(b);
	ida = kr_leader_identity(a);
	us = strrchr(ida, '_');
	assert_non_null(us);
	assert_true(us > ida);
	assert_int_equal(strlen(us + 1), 16);
	for (const char *p = us + 1; *p; p++)
		assert_true(isxdigit((unsigned char)*p));
	assert_string_not_equal(ida, kr_leader_identity(b));
	assert_false(kr_leader_is_leader(a));
	kr_leader_free(a);
	kr_leader_free(b);
	o.identity = "pod-1";
	a = kr_leader_new(&cfg, &o, NULL, &err);
	assert_non_null(a);
	assert_string_equal(kr_leader_identity(a), "pod-1");
	kr_leader_free(a);
	kr_kube_config_release(&cfg);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct runner {
	struct kr_leader *l;
	enum kr_status rc;
	struct kr_error err;
};

static void *run_thread(void *arg)
{
	struct runner *r = arg;

	r->rc = kr_leader_run(r->l, &r->err);
	return NULL;
}

/* A candidate waiting out a long retry period stops at once, never having led. */
static void test_stop_interrupts_wait(void **state)
{
	struct kr_kube_config cfg;
	struct kr_leader_opts o = {.namespace_ = "default",
				   .name = "k",
				   .lease_duration_ms = 120000,
				   .renew_deadline_ms = 100000,
				   .retry_period_ms = 60000};
	struct runner r = {0};
	struct timespec pause = {0, 200 * 1000000};
	pthread_t t;
	int64_t t0;

	(void)state;
	config_unreachable(&cfg);
	r.l = kr_leader_new(&cfg, &o, NULL, &r.err);
	assert_non_null(r.l);
	assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
	/*
	 * Give the first attempt time to fail (connection refused) so the stop most likely
	 * lands in the 60 s wait; the assertions hold wherever it lands.
	 */
	nanosleep(&pause, NULL);
	t0 = now_ms();
	kr_leader_stop(r.l);
	pthread_join(t, NULL);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(r.rc, KR_OK);
	assert_false(kr_leader_is_leader(r.l));
	/* Run is once only. */
	assert_int_equal(kr_leader_run(r.l, &r.err), KR_EINVAL);
	kr_leader_free(r.l);
	kr_kube_config_release(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_opts_validate),    cmocka_unit_test(test_opts_defaults),
	    cmocka_unit_test(test_may_acquire),	     cmocka_unit_test(test_new_rejects_bad_opts),
	    cmocka_unit_test(test_default_identity), cmocka_unit_test(test_stop_interrupts_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
