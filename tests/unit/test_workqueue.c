/* test_workqueue.c - the work queue's guarantees, delays and rate limits, with real threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/workqueue.h"

#define MS  INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* ---- fixtures ------------------------------------------------------------------- */

/* A monotonic clock that moves only when the test says so. */
struct fake_clock {
	pthread_mutex_t mu;
	int64_t now;
	int reads; /* get reads the clock under the queue lock right before it waits */
};

static int64_t fake_now(void *arg)
{
	struct fake_clock *c = arg;
	int64_t now;

	pthread_mutex_lock(&c->mu);
	now = c->now;
	c->reads++;
	pthread_mutex_unlock(&c->mu);
	return now;
}

struct fixture {
	struct fake_clock clock;
	struct kr_workqueue *q;
};

/* Move the fake clock to `t` ns since the fixture's epoch and wake getters. */
static void clock_set(struct fixture *f, int64_t t)
{
	pthread_mutex_lock(&f->clock.mu);
	f->clock.now = 1000 * SEC + t; /* a non-zero epoch, like a real monotonic clock */
	pthread_mutex_unlock(&f->clock.mu);
	kr_workqueue_wake(f->q);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kr_workqueue_opts opts = {.clock = fake_now};

	assert_non_null(f);
	pthread_mutex_init(&f->clock.mu, NULL);
	f->clock.now = 1000 * SEC;
	opts.clock_arg = &f->clock;
	f->q = kr_workqueue_new(&opts);
	assert_non_null(f->q);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kr_workqueue_free(f->q);
	pthread_mutex_destroy(&f->clock.mu);
	free(f);
	return 0;
}

/* get must hand out `want` at once (the caller knows a key is ready). */
static void expect_get(struct kr_workqueue *q, const char *want)
{
	char *key = NULL;

	assert_int_equal(kr_workqueue_get(q, &key), KR_OK);
	assert_string_equal(key, want);
	kr_workqueue_done(q, key);
	free(key);
}

/*
 * A thread blocked in kr_workqueue_get. It reports its return through a mutex and
 * condvar so the test can wait with a deadline and still give helgrind a happens-before
 * edge (pthread_timedjoin_np does not).
 */
struct getter {
	pthread_t thread;
	struct kr_workqueue *q;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int returned;
	enum kr_status rc;
	char *key;
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	char *key = NULL;
	enum kr_status rc = kr_workqueue_get(g->q, &key);

	pthread_mutex_lock(&g->mu);
	g->rc = rc;
	g->key = key;
	g->returned = 1;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static void getter_start(struct getter *g, struct kr_workqueue *q)
{
	memset(g, 0, sizeof(*g));
	g->q = q;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cond, NULL);
	assert_int_equal(pthread_create(&g->thread, NULL, getter_main, g), 0);
}

/* Join with a deadline so a getter that never wakes fails the test instead of hanging. */
static void getter_join(struct getter *g, int64_t timeout_ms)
{
	struct timespec ts;
	int returned;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(timeout_ms / 1000);
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->mu);
	while (!g->returned && pthread_cond_timedwait(&g->cond, &g->mu, &ts) == 0)
		;
	returned = g->returned;
	pthread_mutex_unlock(&g->mu);
	if (!returned)
		kr_workqueue_shutdown(g->q); /* release it so teardown can free the queue */
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->mu);
	if (!returned)
		fail_msg("getter did not return within %lld ms", (long long)timeout_ms);
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int clock_reads(struct fixture *f)
{
	int n;

	pthread_mutex_lock(&f->clock.mu);
	n = f->clock.reads;
	pthread_mutex_unlock(&f->clock.mu);
	return n;
}

/*
 * Start `n` getters on the fixture's queue and return once each is blocked: a getter
 * reads the clock under the queue lock and then waits, releasing the lock atomically,
 * so after its read anything that takes the lock sees it waiting.
 */
static void start_blocked_getters(struct fixture *f, struct getter *g, int n)
{
	int before = clock_reads(f);
	int64_t deadline = real_ms() + 10000;

	for (int i = 0; i < n; i++)
		getter_start(&g[i], f->q);
	while (clock_reads(f) < before + n && real_ms() < deadline)
		sched_yield();
	assert_true(clock_reads(f) >= before + n);
}

/* ---- basic queue semantics ------------------------------------------------------ */

static void test_duplicates_collapse_and_fifo(void **state)
{
	struct fixture *f = *state;
	struct kr_workqueue_stats st;

	assert_int_equal(kr_workqueue_add(f->q, "ns/c"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/c"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/b"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_len(f->q), 3);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.adds_total, 3); /* collapsed duplicates are not adds */
	expect_get(f->q, "ns/c");
	expect_get(f->q, "ns/a");
	expect_get(f->q, "ns/b");
	assert_int_equal(kr_workqueue_len(f->q), 0);
}

static void test_readd_while_in_flight_runs_again_after_done(void **state)
{
	struct fixture *f = *state;
	struct kr_workqueue_stats st;
	char *key = NULL;

	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_get(f->q, &key), KR_OK);
	assert_string_equal(key, "ns/a");
	/* Added twice while a worker holds it: not handed out now, and once later. */
	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/b"), KR_OK);
	assert_int_equal(kr_workqueue_len(f->q), 1);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.in_flight, 1);
	expect_get(f->q, "ns/b");
	kr_workqueue_done(f->q, key);
	free(key);
	assert_int_equal(kr_workqueue_len(f->q), 1);
	expect_get(f->q, "ns/a");
	assert_int_equal(kr_workqueue_len(f->q), 0);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.adds_total, 3);
}

static void test_blocked_getter_wakes_on_add(void **state)
{
	struct fixture *f = *state;
	struct getter g;

	start_blocked_getters(f, &g, 1);
	assert_int_equal(kr_workqueue_add(f->q, "ns/late"), KR_OK);
	getter_join(&g, 10000);
	assert_int_equal(g.rc, KR_OK);
	assert_string_equal(g.key, "ns/late");
	kr_workqueue_done(f->q, g.key);
	free(g.key);
}

/*
 * Many keys: exercises the hash table's growth and backward-shift deletion. Half the
 * keys are finished (and freed) while the rest stay queued; re-adding the rest must
 * still find them, so the queue length does not change.
 */
static void test_ten_thousand_keys(void **state)
{
	enum { N = 10000 };
	struct fixture *f = *state;
	static unsigned char seen[N];
	char key[32];

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns/key-%d", i);
		assert_int_equal(kr_workqueue_add(f->q, key), KR_OK);
	}
	assert_int_equal(kr_workqueue_len(f->q), N);
	for (int i = 0; i < N / 2; i++) {
		snprintf(key, sizeof(key), "ns/key-%d", i);
		expect_get(f->q, key);
	}
	for (int i = N / 2; i < N; i++) {
		snprintf(key, sizeof(key), "ns/key-%d", i);
		assert_int_equal(kr_workqueue_add(f->q, key), KR_OK);
	}
	assert_int_equal(kr_workqueue_len(f->q), N / 2);
	for (int i = 0; i < N / 2; i++) {
		char *got = NULL;
		int n = -1;

		assert_int_equal(kr_workqueue_get(f->q, &got), KR_OK);
		assert_int_equal(sscanf(got, "ns/key-%d", &n), 1);
		assert_true(n >= N / 2 && n < N && !seen[n]);
		seen[n] = 1;
		kr_workqueue_done(f->q, got);
		free(got);
	}
	assert_int_equal(kr_workqueue_len(f->q), 0);
}

/* ---- exclusivity under load ------------------------------------------------------ */

enum { STRESS_KEYS = 100, STRESS_ADDS = 10000, STRESS_WORKERS = 4 };

struct stress {
	struct kr_workqueue *q;
	atomic_int busy[STRESS_KEYS];	   /* 1 while some worker holds the key */
	atomic_int added_gen[STRESS_KEYS]; /* bumped before each add */
	atomic_int seen_gen[STRESS_KEYS];  /* highest added_gen a worker started after */
	atomic_int overlaps;		   /* times a key was handed to two workers */
	atomic_int processed;
};

static void *stress_worker(void *arg)
{
	struct stress *s = arg;
	char *key;

	while (kr_workqueue_get(s->q, &key) == KR_OK) {
		int k = atoi(key + 3);
		int gen;

		if (atomic_exchange(&s->busy[k], 1) != 0)
			atomic_fetch_add(&s->overlaps, 1);
		gen = atomic_load(&s->added_gen[k]);
		if (gen > atomic_load(&s->seen_gen[k]))
			atomic_store(&s->seen_gen[k], gen); /* only the holder writes it */
		sched_yield();				    /* widen the window for overlaps */
		atomic_fetch_add(&s->processed, 1);
		atomic_store(&s->busy[k], 0);
		kr_workqueue_done(s->q, key);
		free(key);
	}
	return NULL;
}

/* Poll until nothing is queued or in flight, with a deadline. */
static int wait_idle(struct kr_workqueue *q, int64_t timeout_ms)
{
	int64_t deadline = real_ms() + timeout_ms;
	struct kr_workqueue_stats st;

	do {
		kr_workqueue_stats(q, &st);
		if (st.depth == 0 && st.in_flight == 0 && st.delayed == 0)
			return 1;
		sched_yield();
	} while (real_ms() < deadline);
	return 0;
}

static void test_workers_never_share_a_key(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	pthread_t workers[STRESS_WORKERS];
	char key[16];

	(void)state;
	assert_non_null(s);
	s->q = kr_workqueue_new(NULL);
	assert_non_null(s->q);
	for (int i = 0; i < STRESS_WORKERS; i++)
		assert_int_equal(pthread_create(&workers[i], NULL, stress_worker, s), 0);
	for (int i = 0; i < STRESS_ADDS; i++) {
		int k = (i * 37) % STRESS_KEYS;

		snprintf(key, sizeof(key), "ns/%d", k);
		atomic_fetch_add(&s->added_gen[k], 1);
		assert_int_equal(kr_workqueue_add(s->q, key), KR_OK);
	}
	assert_true(wait_idle(s->q, 60000));
	kr_workqueue_shutdown(s->q);
	for (int i = 0; i < STRESS_WORKERS; i++)
		assert_int_equal(pthread_join(workers[i], NULL), 0);
	assert_int_equal(atomic_load(&s->overlaps), 0);
	/* No add was lost: every key ran after its last add. */
	for (int k = 0; k < STRESS_KEYS; k++)
		assert_int_equal(atomic_load(&s->seen_gen[k]), atomic_load(&s->added_gen[k]));
	assert_true(atomic_load(&s->processed) >= STRESS_KEYS);
	assert_true(atomic_load(&s->processed) <= STRESS_ADDS);
	kr_workqueue_free(s->q);
	free(s);
}

/* ---- shutdown ------------------------------------------------------------------- */

static void test_shutdown_wakes_blocked_getters(void **state)
{
	struct fixture *f = *state;
	struct getter g[3];
	int64_t start;

	/* One delayed key far out: getters sit in a timed wait, not a plain one. */
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/far", 3600 * 1000), KR_OK);
	start_blocked_getters(f, g, 3);
	start = real_ms();
	kr_workqueue_shutdown(f->q);
	for (int i = 0; i < 3; i++) {
		getter_join(&g[i], 5000);
		assert_int_equal(g[i].rc, KR_ECANCELED);
		assert_null(g[i].key);
	}
	assert_true(real_ms() - start < 2000);
}

static void test_shutdown_drops_queue_refuses_adds_allows_done(void **state)
{
	struct fixture *f = *state;
	struct kr_workqueue_stats st;
	char *held = NULL, *key = NULL;

	assert_int_equal(kr_workqueue_add(f->q, "ns/held"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/queued"), KR_OK);
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/later", 1000), KR_OK);
	assert_int_equal(kr_workqueue_get(f->q, &held), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/held"), KR_OK);
	kr_workqueue_shutdown(f->q);
	kr_workqueue_shutdown(f->q); /* twice is fine */
	assert_int_equal(kr_workqueue_add(f->q, "ns/new"), KR_ECANCELED);
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/new", 5), KR_ECANCELED);
	assert_int_equal(kr_workqueue_add_rate_limited(f->q, "ns/new"), KR_ECANCELED);
	assert_int_equal(kr_workqueue_get(f->q, &key), KR_ECANCELED);
	assert_null(key);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.delayed, 0);
	assert_int_equal(st.in_flight, 1);
	kr_workqueue_done(f->q, held); /* the re-add is dropped, not queued */
	free(held);
	clock_set(f, 2 * SEC);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.in_flight, 0);
}

/* ---- delayed adds (fake clock) -------------------------------------------------- */

static void test_add_after_orders_by_deadline(void **state)
{
	static const struct {
		const char *key;
		int64_t delay_ms;
	} adds[] = {
	    {"ns/a", 300}, {"ns/b", 100}, {"ns/c", 200}, {"ns/d", 100}, {"ns/e", 0},
	};
	struct fixture *f = *state;
	struct kr_workqueue_stats st;

	for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++)
		assert_int_equal(kr_workqueue_add_after(f->q, adds[i].key, adds[i].delay_ms),
				 KR_OK);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth, 1); /* delay 0 is an immediate add */
	assert_int_equal(st.delayed, 4);
	expect_get(f->q, "ns/e");
	clock_set(f, 100 * MS - 1);
	assert_int_equal(kr_workqueue_len(f->q), 0);
	clock_set(f, 100 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 2);
	clock_set(f, 1000 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 4);
	/* Equal deadlines keep the order they were added in. */
	expect_get(f->q, "ns/b");
	expect_get(f->q, "ns/d");
	expect_get(f->q, "ns/c");
	expect_get(f->q, "ns/a");
}

static void test_add_after_earliest_deadline_wins(void **state)
{
	struct fixture *f = *state;
	struct kr_workqueue_stats st;

	assert_int_equal(kr_workqueue_add_after(f->q, "ns/x", 500), KR_OK);
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/x", 100), KR_OK); /* replaces 500 */
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/y", 100), KR_OK);
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/y", 500), KR_OK); /* dropped */
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.delayed, 2);
	clock_set(f, 100 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 2);
	expect_get(f->q, "ns/x");
	expect_get(f->q, "ns/y");
	clock_set(f, 600 * MS);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.delayed, 0);
}

static void test_delayed_key_due_while_in_flight_runs_after_done(void **state)
{
	struct fixture *f = *state;
	char *key = NULL;

	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_get(f->q, &key), KR_OK);
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/a", 50), KR_OK);
	clock_set(f, 50 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 0);
	kr_workqueue_done(f->q, key);
	free(key);
	assert_int_equal(kr_workqueue_len(f->q), 1);
	expect_get(f->q, "ns/a");
}

static void test_blocked_getter_wakes_when_fake_time_passes(void **state)
{
	struct fixture *f = *state;
	struct getter g;

	/* An hour: the getter's real timed wait would outlast the join deadline. */
	assert_int_equal(kr_workqueue_add_after(f->q, "ns/timer", 3600 * 1000), KR_OK);
	start_blocked_getters(f, &g, 1);
	clock_set(f, 3600 * SEC);
	getter_join(&g, 10000);
	assert_int_equal(g.rc, KR_OK);
	assert_string_equal(g.key, "ns/timer");
	kr_workqueue_done(f->q, g.key);
	free(g.key);
}

/* With the real clock: get waits out the delay and no longer. */
static void test_add_after_real_clock(void **state)
{
	struct kr_workqueue *q = kr_workqueue_new(NULL);
	int64_t start = real_ms(), took;
	char *key = NULL;

	(void)state;
	assert_non_null(q);
	assert_int_equal(kr_workqueue_add_after(q, "ns/soon", 30), KR_OK);
	assert_int_equal(kr_workqueue_get(q, &key), KR_OK);
	took = real_ms() - start;
	assert_string_equal(key, "ns/soon");
	assert_true(took >= 29);
	assert_true(took < 5000);
	kr_workqueue_done(q, key);
	free(key);
	kr_workqueue_free(q);
}

/* ---- rate limits (fake clock) --------------------------------------------------- */

/*
 * Rate-limit `key` at fake time `at` and check it becomes ready exactly `want` later.
 * Leaves the clock at at + want, with the key handed out and done.
 */
static void expect_retry_delay(struct fixture *f, const char *key, int64_t at, int64_t want)
{
	clock_set(f, at);
	assert_int_equal(kr_workqueue_add_rate_limited(f->q, key), KR_OK);
	clock_set(f, at + want - 1);
	assert_int_equal(kr_workqueue_len(f->q), 0);
	clock_set(f, at + want);
	assert_int_equal(kr_workqueue_len(f->q), 1);
	expect_get(f->q, key);
}

static void test_backoff_doubles_from_5ms_and_caps_at_1000s(void **state)
{
	struct fixture *f = *state;
	int64_t t = 0, want = 5 * MS;

	for (unsigned n = 0; n < 40; n++) {
		assert_int_equal(kr_workqueue_num_requeues(f->q, "ns/flaky"), n);
		expect_retry_delay(f, "ns/flaky", t, want);
		t += want;
		want = want * 2 > 1000 * SEC ? 1000 * SEC : want * 2;
	}
	/* 5 ms * 2^17 = 655.36 s is the last uncapped step. */
	assert_int_equal(kr_workqueue_num_requeues(f->q, "ns/flaky"), 40);
	/* Another key has its own backoff. */
	expect_retry_delay(f, "ns/other", t, 5 * MS);
}

static void test_forget_resets_backoff(void **state)
{
	struct fixture *f = *state;

	expect_retry_delay(f, "ns/a", 0, 5 * MS);
	expect_retry_delay(f, "ns/a", 5 * MS, 10 * MS);
	expect_retry_delay(f, "ns/a", 15 * MS, 20 * MS);
	assert_int_equal(kr_workqueue_num_requeues(f->q, "ns/a"), 3);
	kr_workqueue_forget(f->q, "ns/a");
	kr_workqueue_forget(f->q, "ns/unknown");
	assert_int_equal(kr_workqueue_num_requeues(f->q, "ns/a"), 0);
	expect_retry_delay(f, "ns/a", 35 * MS, 5 * MS);
}

/* 100 retries pass at once (after each key's 5 ms backoff), then 10 per second. */
static void test_token_bucket_burst_100_then_10_per_second(void **state)
{
	enum { KEYS = 130 };
	struct fixture *f = *state;
	char key[32];

	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof(key), "ns/k%d", i);
		assert_int_equal(kr_workqueue_add_rate_limited(f->q, key), KR_OK);
	}
	clock_set(f, 5 * MS - 1);
	assert_int_equal(kr_workqueue_len(f->q), 0);
	clock_set(f, 5 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 100);
	for (int j = 1; j <= KEYS - 100; j++) {
		clock_set(f, j * 100 * MS - 1);
		assert_int_equal(kr_workqueue_len(f->q), 100 + j - 1);
		clock_set(f, j * 100 * MS);
		assert_int_equal(kr_workqueue_len(f->q), 100 + j);
	}
	for (int i = 0; i < KEYS; i++) {
		snprintf(key, sizeof(key), "ns/k%d", i);
		expect_get(f->q, key);
		kr_workqueue_forget(f->q, key);
	}
	/* 3 s + 10 s later the bucket is full again: another burst of 100. */
	clock_set(f, 16 * SEC);
	for (int i = 0; i < 101; i++) {
		snprintf(key, sizeof(key), "ns/k%d", i);
		assert_int_equal(kr_workqueue_add_rate_limited(f->q, key), KR_OK);
	}
	clock_set(f, 16 * SEC + 5 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 100);
	clock_set(f, 16 * SEC + 100 * MS);
	assert_int_equal(kr_workqueue_len(f->q), 101);
}

static void test_stats_counters(void **state)
{
	struct fixture *f = *state;
	struct kr_workqueue_stats st;
	char *key = NULL;

	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth + st.delayed + st.in_flight + st.adds_total, 0);
	assert_int_equal(st.retries_total + (uint64_t)st.oldest_ready_ms, 0);
	assert_int_equal(kr_workqueue_add(f->q, "ns/a"), KR_OK);
	assert_int_equal(kr_workqueue_add(f->q, "ns/b"), KR_OK);
	assert_int_equal(kr_workqueue_add_rate_limited(f->q, "ns/c"), KR_OK);
	assert_int_equal(kr_workqueue_add_rate_limited(f->q, "ns/c"), KR_OK);
	clock_set(f, 250 * MS);
	assert_int_equal(kr_workqueue_get(f->q, &key), KR_OK);
	kr_workqueue_stats(f->q, &st);
	assert_int_equal(st.depth, 2); /* ns/b and ns/c (due after 5 ms) */
	assert_int_equal(st.delayed, 0);
	assert_int_equal(st.in_flight, 1);
	assert_int_equal(st.adds_total, 3);
	assert_int_equal(st.retries_total, 2);
	assert_int_equal(st.oldest_ready_ms, 250);
	assert_int_equal(kr_workqueue_len(f->q), st.depth);
	kr_workqueue_done(f->q, key);
	free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_duplicates_collapse_and_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readd_while_in_flight_runs_again_after_done, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_blocked_getter_wakes_on_add, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ten_thousand_keys, setup, teardown),
	    cmocka_unit_test(test_workers_never_share_a_key),
	    cmocka_unit_test_setup_teardown(test_shutdown_wakes_blocked_getters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_drops_queue_refuses_adds_allows_done,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_after_orders_by_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_add_after_earliest_deadline_wins, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delayed_key_due_while_in_flight_runs_after_done,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blocked_getter_wakes_when_fake_time_passes, setup,
					    teardown),
	    cmocka_unit_test(test_add_after_real_clock),
	    cmocka_unit_test_setup_teardown(test_backoff_doubles_from_5ms_and_caps_at_1000s, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_forget_resets_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_bucket_burst_100_then_10_per_second, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_stats_counters, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
