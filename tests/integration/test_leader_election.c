/* test_leader_election.c - two candidate processes on one Lease: one leader at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "testlib.h"

/* Short durations so the suite is quick; same ratios client-go validates. */
#define LEASE_MS 3000
#define RENEW_MS 2000
#define RETRY_MS 500
/* Scheduling slack for process start-up, the Python server, and log writes. */
#define SLACK_MS 700

struct cand {
	char id[32];
	char token[64];
	char kubeconfig[700];
	char out[700];
	pid_t pid;
};

struct world {
	struct kr_test_kubeapi api;
	struct cand c[2];
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A kubeconfig for the server with this candidate's own token (so faults can target it). */
static void cand_setup(struct world *w, int i, const char *dir)
{
	struct cand *c = &w->c[i];
	char body[256], id[32];
	FILE *f;

	snprintf(id, sizeof(id), "cand-%c", 'a' + i);
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->token, sizeof(c->token), "token-%s-%d", id, (int)getpid());
	snprintf(c->kubeconfig, sizeof(c->kubeconfig), "%s/%s.kubeconfig", dir, id);
	snprintf(c->out, sizeof(c->out), "%s/%s.out", dir, id);
	snprintf(body, sizeof(body), "{\"token\": \"token-%s-%d\", \"user\": \"%s\"}", id,
		 (int)getpid(), id);
	assert_int_equal(kr_test_kubeapi_admin(&w->api, "tokens", body, NULL), 200);
	f = fopen(c->kubeconfig, "w");
	assert_non_null(f);
	fprintf(f,
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		"    server: %s\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
		"    user: u\n    namespace: default\ncurrent-context: x\nusers:\n- name: u\n"
		"  user:\n    token: %s\n",
		w->api.url, c->token);
	fclose(f);
}

static void cand_start(struct cand *c, const char *dir)
{
	const char *bin = getenv("KR_LEADER_CANDIDATE");
	char lease[16], renew[16], retry[16], log[800];
	char *argv[] = {(char *)bin, c->kubeconfig, c->id, c->out, lease, renew, retry, NULL};

	if (!bin)
		fail_msg("KR_LEADER_CANDIDATE is not set (run through ctest)");
	snprintf(lease, sizeof(lease), "%d", LEASE_MS);
	snprintf(renew, sizeof(renew), "%d", RENEW_MS);
	snprintf(retry, sizeof(retry), "%d", RETRY_MS);
	snprintf(log, sizeof(log), "%s/%s.log", dir, c->id);
	c->pid = kr_test_spawn(argv, log);
	assert_true(c->pid > 0);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	char dir[512];

	if (!w || kr_test_kubeapi_start(&w->api, 0, NULL) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s", w->api.dir);
	for (int i = 0; i < 2; i++)
		cand_setup(w, i, dir);
	for (int i = 0; i < 2; i++)
		cand_start(&w->c[i], dir);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	for (int i = 0; i < 2; i++)
		if (w->c[i].pid > 0)
			kr_test_stop(w->c[i].pid, SIGKILL);
	kr_test_kubeapi_stop(&w->api);
	free(w);
	return 0;
}

/* Time of the first line starting with `what` (after `after`), or -1. */
static long event_ms(const struct cand *c, const char *what, long after)
{
	char *text = kr_test_read_file(c->out), *line, *save = NULL;
	long t = -1;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *sp = strrchr(line, ' ');
		long ms = sp ? atol(sp + 1) : -1;

		if (strncmp(line, what, strlen(what)) == 0 && line[strlen(what)] == ' ' &&
		    ms > after) {
			t = ms;
			break;
		}
	}
	free(text);
	return t;
}

/* Time of the last WRITE, or -1. */
static long last_write_ms(const struct cand *c)
{
	char *text = kr_test_read_file(c->out), *p;
	long t = -1;

	for (p = text; p && (p = strstr(p, "WRITE ")) != NULL; p++) {
		const char *nl = strchr(p, '\n');
		const char *sp = nl ? memrchr(p, ' ', (size_t)(nl - p)) : NULL;

		if (sp)
			t = atol(sp + 1);
	}
	free(text);
	return t;
}

static int some_leader(void *arg)
{
	struct world *w = arg;

	return event_ms(&w->c[0], "LEADER", 0) > 0 || event_ms(&w->c[1], "LEADER", 0) > 0;
}

/* Index of the first leader; asserts the other has not led. */
static int wait_first_leader(struct world *w)
{
	int l;

	assert_true(kr_test_wait_for(some_leader, w, LEASE_MS + 5000));
	l = event_ms(&w->c[0], "LEADER", 0) > 0 ? 0 : 1;
	assert_true(event_ms(&w->c[1 - l], "LEADER", 0) < 0);
	/* It is writing, i.e. its fence is open. */
	return l;
}

struct wait_event {
	const struct cand *c;
	const char *what;
	long after;
};

static int has_event(void *arg)
{
	struct wait_event *e = arg;

	return event_ms(e->c, e->what, e->after) > 0;
}

static long wait_event_ms(const struct cand *c, const char *what, long after, int timeout_ms)
{
	struct wait_event e = {c, what, after};

	if (!kr_test_wait_for(has_event, &e, timeout_ms))
		fail_msg("%s: no %s within %d ms", c->id, what, timeout_ms);
	return event_ms(c, what, after);
}

/*
 * The core invariant: every WRITE of the old leader happened before the new leader
 * started leading (CLOCK_MONOTONIC is shared by the processes).
 */
static void assert_no_overlap(const struct cand *old, const struct cand *new_)
{
	long last = last_write_ms(old), start = event_ms(new_, "LEADER", 0);

	assert_true(last > 0);
	assert_true(start > 0);
	if (last >= start)
		fail_msg("%s wrote at %ld, after %s led at %ld", old->id, last, new_->id, start);
	assert_true(last_write_ms(new_) > start - 1);
}

static void test_kill_leader_standby_takes_over(void **state)
{
	struct world *w = *state;
	int l = wait_first_leader(w);
	struct cand *old = &w->c[l], *next = &w->c[1 - l];
	long killed, took;

	wait_event_ms(old, "WRITE", 0, 2000);
	killed = now_ms();
	kr_test_stop(old->pid, SIGKILL);
	old->pid = 0;
	took = wait_event_ms(next, "LEADER", 0, LEASE_MS + 3 * RETRY_MS + SLACK_MS);
	/* Not before the lease could have expired: it was renewed at most RETRY_MS ago. */
	assert_true(took - killed >= LEASE_MS - RETRY_MS - 100);
	/* Within the lease duration plus one jittered retry (2.2 x retry). */
	assert_true(took - killed <= LEASE_MS + 22 * RETRY_MS / 10 + SLACK_MS);
	wait_event_ms(next, "WRITE", took - 1, 2000);
	assert_no_overlap(old, next);
}

static void test_sigterm_releases_lease(void **state)
{
	struct world *w = *state;
	int l = wait_first_leader(w);
	struct cand *old = &w->c[l], *next = &w->c[1 - l];
	long termed, took, stopped;
	int status;

	wait_event_ms(old, "WRITE", 0, 2000);
	termed = now_ms();
	status = kr_test_stop(old->pid, SIGTERM);
	old->pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	stopped = event_ms(old, "STOPPED", 0);
	assert_true(stopped > 0);
	took = wait_event_ms(next, "LEADER", 0, LEASE_MS + SLACK_MS);
	/* Released: one jittered retry, far less than the lease duration. */
	assert_true(took - termed <= 22 * RETRY_MS / 10 + 300);
	assert_true(took - termed < LEASE_MS - 500);
	assert_true(stopped < took);
	wait_event_ms(next, "WRITE", took - 1, 2000);
	assert_no_overlap(old, next);
}

static void test_partitioned_leader_stops_writing(void **state)
{
	struct world *w = *state;
	int l = wait_first_leader(w);
	struct cand *old = &w->c[l], *next = &w->c[1 - l];
	char body[256];
	long cut, stopped, took;
	int status;

	wait_event_ms(old, "WRITE", 0, 2000);
	/* Partition the leader alone: its token is now refused (403) on every request. */
	snprintf(body, sizeof(body), "{\"token\": \"%s\", \"forbidden\": true}", old->token);
	cut = now_ms();
	assert_int_equal(kr_test_kubeapi_admin(&w->api, "tokens", body, NULL), 200);
	stopped = wait_event_ms(old, "STOPPED", 0, RENEW_MS + SLACK_MS);
	/* It gave up within the renew deadline of its last successful renewal. */
	assert_true(stopped - cut <= RENEW_MS + 200);
	status = kr_test_stop(old->pid, 0);
	old->pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_true(event_ms(old, "WRITE", stopped) < 0);
	took = wait_event_ms(next, "LEADER", 0, LEASE_MS + 3 * RETRY_MS + SLACK_MS);
	assert_true(stopped < took);
	wait_event_ms(next, "WRITE", took - 1, 2000);
	assert_no_overlap(old, next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kill_leader_standby_takes_over, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sigterm_releases_lease, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_partitioned_leader_stops_writing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
