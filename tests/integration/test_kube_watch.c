/* test_kube_watch.c - the reflector against the local API server: order, resume, 410, idle, stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "kube/kube.h"
#include "testlib.h"

#define MAX_SEEN 128
#define WAIT_MS	 10000

struct seen_event {
	enum kr_kube_event_type type;
	char key[128]; /* "namespace/name" */
	char kind[32];
	long rv;
};

struct recorder {
	pthread_mutex_t lock;
	int n, synced, errors;
	struct seen_event ev[MAX_SEEN];
	enum kr_status last_error;
	int64_t first_error_ms, synced_ms;
};

struct fixture {
	struct kr_test_kubeapi api;
	struct kr_kube_config cfg;
	struct kr_kube_client *client; /* the test's own, for writes */
	struct kr_kube_watch_opts opts;
	struct kr_kube_reflector *r;
	pthread_t thread;
	int running;
	struct recorder rec;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the handler ---- */

static const char *meta(const cJSON *obj, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), field);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static void on_event(void *arg, enum kr_kube_event_type type, const cJSON *obj)
{
	struct recorder *rec = arg;
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");

	pthread_mutex_lock(&rec->lock);
	if (rec->n < MAX_SEEN) {
		struct seen_event *e = &rec->ev[rec->n++];

		e->type = type;
		snprintf(e->key, sizeof(e->key), "%s/%s", meta(obj, "namespace"),
			 meta(obj, "name"));
		snprintf(e->kind, sizeof(e->kind), "%s",
			 cJSON_IsString(kind) ? kind->valuestring : "");
		e->rv = atol(meta(obj, "resourceVersion"));
	}
	pthread_mutex_unlock(&rec->lock);
}

static void on_synced(void *arg, const char *rv)
{
	struct recorder *rec = arg;

	(void)rv;
	pthread_mutex_lock(&rec->lock);
	rec->synced++;
	rec->synced_ms = now_ms();
	pthread_mutex_unlock(&rec->lock);
}

static void on_error(void *arg, const struct kr_error *err)
{
	struct recorder *rec = arg;

	pthread_mutex_lock(&rec->lock);
	if (rec->errors++ == 0)
		rec->first_error_ms = now_ms();
	rec->last_error = err->code;
	pthread_mutex_unlock(&rec->lock);
}

/* ---- fixture ---- */

static int setup_with(void **state, const char *const *args)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kr_error err;

	assert_non_null(f);
	pthread_mutex_init(&f->rec.lock, NULL);
	assert_int_equal(kr_test_kubeapi_start(&f->api, 0, args), 0);
	kr_kube_config_init(&f->cfg);
	assert_int_equal(kr_kube_config_load(&f->cfg, f->api.kubeconfig, NULL, &err), KR_OK);
	f->client = kr_kube_client_new(&f->cfg, &err);
	assert_non_null(f->client);
	f->opts = (struct kr_kube_watch_opts){
	    .res = &kr_kube_secrets,
	    .ns = "default",
	    .timeout_min_s = 30,
	    .timeout_max_s = 40,
	    .idle_timeout_s = 2,
	    .backoff_initial_ms = 50,
	    .backoff_max_ms = 1000,
	};
	*state = f;
	return 0;
}

/* The local API server sends a bookmark every second on watches that ask for them. */
static int setup(void **state)
{
	static const char *const args[] = {"--verbose", NULL};

	return setup_with(state, args);
}

/* A quiet server: no bookmark for an hour, as a real one may be on a quiet resource. */
static int setup_quiet(void **state)
{
	static const char *const args[] = {"--verbose", "--bookmark-interval", "3600", NULL};

	return setup_with(state, args);
}

static void *run_thread(void *arg)
{
	struct fixture *f = arg;

	kr_kube_reflector_run(f->r);
	return NULL;
}

static void start(struct fixture *f)
{
	struct kr_kube_watch_handler h = {on_event, on_synced, on_error, &f->rec};
	struct kr_error err;

	f->r = kr_kube_reflector_new(&f->cfg, &f->opts, &h, &err);
	assert_non_null(f->r);
	assert_int_equal(pthread_create(&f->thread, NULL, run_thread, f), 0);
	f->running = 1;
}

/* Stop the reflector; returns how long run() took to return. */
static int64_t stop(struct fixture *f)
{
	int64_t t0 = now_ms();

	if (!f->running)
		return 0;
	kr_kube_reflector_stop(f->r);
	pthread_join(f->thread, NULL);
	f->running = 0;
	return now_ms() - t0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop(f);
	kr_kube_reflector_free(f->r);
	kr_kube_client_free(f->client);
	kr_kube_config_release(&f->cfg);
	kr_test_kubeapi_stop(&f->api);
	pthread_mutex_destroy(&f->rec.lock);
	free(f);
	return 0;
}

/* ---- writes through the client ---- */

static long secret_create(struct fixture *f, const char *name, const char *label)
{
	char text[256];
	cJSON *body, *out = NULL;
	struct kr_error err;
	long rv;

	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\","
		 "\"labels\":{\"app\":\"%s\"}},"
		 "\"data\":{\"k\":\"dg==\"}}",
		 name, label ? label : "none");
	body = cJSON_Parse(text);
	if (kr_kube_create(f->client, &kr_kube_secrets, "default", body, &out, &err) != KR_OK)
		fail_msg("create secret %s: %s", name, err.msg);
	rv = atol(meta(out, "resourceVersion"));
	cJSON_Delete(body);
	cJSON_Delete(out);
	return rv;
}

static void secret_modify(struct fixture *f, const char *name, const char *value)
{
	char patch[128];
	struct kr_error err;

	snprintf(patch, sizeof(patch), "{\"metadata\":{\"annotations\":{\"v\":\"%s\"}}}", value);
	assert_int_equal(kr_kube_patch(f->client, &kr_kube_secrets, "default", name, NULL,
				       KR_KUBE_PATCH_MERGE, patch, NULL, &err),
			 KR_OK);
}

static void secret_delete(struct fixture *f, const char *name)
{
	struct kr_error err;

	assert_int_equal(kr_kube_delete(f->client, &kr_kube_secrets, "default", name, &err), KR_OK);
}

static void admin(struct fixture *f, const char *op, const char *json)
{
	int code = kr_test_kubeapi_admin(&f->api, op, json, NULL);

	assert_true(code == 200 || code == 201);
}

/* ---- waiting ---- */

struct wait_arg {
	struct fixture *f;
	int n;
	const char *text;
};

static int cond_events(void *arg)
{
	struct wait_arg *w = arg;
	int n;

	pthread_mutex_lock(&w->f->rec.lock);
	n = w->f->rec.n;
	pthread_mutex_unlock(&w->f->rec.lock);
	return n >= w->n;
}

static int cond_synced(void *arg)
{
	struct wait_arg *w = arg;
	int n;

	pthread_mutex_lock(&w->f->rec.lock);
	n = w->f->rec.synced;
	pthread_mutex_unlock(&w->f->rec.lock);
	return n >= w->n;
}

static int cond_errors(void *arg)
{
	struct wait_arg *w = arg;
	int n;

	pthread_mutex_lock(&w->f->rec.lock);
	n = w->f->rec.errors;
	pthread_mutex_unlock(&w->f->rec.lock);
	return n >= w->n;
}

static int cond_watches(void *arg)
{
	struct wait_arg *w = arg;
	struct kr_kube_reflector_stats st;

	kr_kube_reflector_stats(w->f->r, &st);
	return st.watches >= (unsigned long)w->n;
}

static int cond_rv(void *arg)
{
	struct wait_arg *w = arg;
	struct kr_kube_reflector_stats st;

	kr_kube_reflector_stats(w->f->r, &st);
	return strcmp(st.last_resource_version, w->text) == 0;
}

/* The server holds `n` open watches. */
static int cond_open_watches(void *arg)
{
	struct wait_arg *w = arg;
	char *out = NULL;
	int ok = 0;

	if (kr_test_kubeapi_admin(&w->f->api, "watches", "{}", &out) == 200) {
		cJSON *doc = cJSON_Parse(out);
		const cJSON *open = cJSON_GetObjectItemCaseSensitive(doc, "open");

		ok = cJSON_IsNumber(open) && open->valueint == w->n;
		cJSON_Delete(doc);
	}
	free(out);
	return ok;
}

static void wait_for(int (*cond)(void *), struct fixture *f, int n)
{
	struct wait_arg w = {f, n, NULL};

	assert_true(kr_test_wait_for(cond, &w, WAIT_MS));
}

/* Start the reflector and wait until it has listed and its watch is open. */
static void start_and_sync(struct fixture *f)
{
	start(f);
	wait_for(cond_synced, f, 1);
	wait_for(cond_open_watches, f, 1);
}

/* ---- checking what the handler saw ---- */

static const char *type_name(enum kr_kube_event_type t)
{
	static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
	return names[t];
}

static void event_text(const struct seen_event *e, char *out, size_t size)
{
	snprintf(out, size, "%s %s", type_name(e->type), e->key);
}

/* Events [from, from+len(want)) are exactly `want`, in order, and nothing follows. */
static void assert_events(struct fixture *f, int from, const char *const *want)
{
	int n = 0;

	while (want[n])
		n++;
	pthread_mutex_lock(&f->rec.lock);
	for (int i = 0; i < f->rec.n; i++) {
		char text[200];

		event_text(&f->rec.ev[i], text, sizeof(text));
		print_message("  event %d: %s rv %ld\n", i, text, f->rec.ev[i].rv);
	}
	assert_int_equal(f->rec.n, from + n);
	for (int i = 0; i < n; i++) {
		char text[200];

		event_text(&f->rec.ev[from + i], text, sizeof(text));
		assert_string_equal(text, want[i]);
	}
	pthread_mutex_unlock(&f->rec.lock);
}

/* Each of `want` occurs exactly once among events [from, to). */
static void assert_events_unordered(struct fixture *f, int from, int to, const char *const *want)
{
	pthread_mutex_lock(&f->rec.lock);
	for (int k = 0; want[k]; k++) {
		int count = 0;

		for (int i = from; i < to; i++) {
			char text[200];

			event_text(&f->rec.ev[i], text, sizeof(text));
			count += strcmp(text, want[k]) == 0;
		}
		assert_int_equal(count, 1);
	}
	pthread_mutex_unlock(&f->rec.lock);
}

/*
 * What every user relies on, per object: ADDED first, nothing after DELETED but a new
 * ADDED, resourceVersions only growing (a DELETED may repeat the last one).
 */
static void assert_per_object_order(struct fixture *f)
{
	pthread_mutex_lock(&f->rec.lock);
	for (int i = 0; i < f->rec.n; i++) {
		const struct seen_event *e = &f->rec.ev[i];
		const struct seen_event *prev = NULL;

		for (int j = i - 1; j >= 0 && !prev; j--)
			if (strcmp(f->rec.ev[j].key, e->key) == 0)
				prev = &f->rec.ev[j];
		if (!prev || prev->type == KR_KUBE_DELETED) {
			assert_int_equal(e->type, KR_KUBE_ADDED);
			continue;
		}
		assert_int_not_equal(e->type, KR_KUBE_ADDED);
		if (e->type == KR_KUBE_DELETED)
			assert_true(e->rv >= prev->rv);
		else
			assert_true(e->rv > prev->rv);
	}
	pthread_mutex_unlock(&f->rec.lock);
}

static int events_now(struct fixture *f)
{
	int n;

	pthread_mutex_lock(&f->rec.lock);
	n = f->rec.n;
	pthread_mutex_unlock(&f->rec.lock);
	return n;
}

/* Write a sentinel object and wait for it: every event before it has arrived. */
static void flush_with_sentinel(struct fixture *f, const char *name)
{
	int n = events_now(f);

	secret_create(f, name, NULL);
	wait_for(cond_events, f, n + 1);
}

static struct kr_kube_reflector_stats stats(struct fixture *f)
{
	struct kr_kube_reflector_stats st;

	kr_kube_reflector_stats(f->r, &st);
	return st;
}

/* ---- tests ---- */

static void test_events_in_order(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {"ADDED default/pre", "ADDED default/a",
					   "MODIFIED default/a", "DELETED default/a", NULL};

	secret_create(f, "pre", NULL);
	start_and_sync(f);
	secret_create(f, "a", NULL);
	secret_modify(f, "a", "1");
	secret_delete(f, "a");
	wait_for(cond_events, f, 4);
	assert_events(f, 0, want);
	assert_per_object_order(f);
	assert_int_equal(stats(f).lists, 1);
	assert_int_equal(f->rec.errors, 0);
}

/* Changes made while the watch is down arrive once each, in order, without a relist. */
static void test_dropped_watch_resumes(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {"ADDED default/a",	 "ADDED default/b",
					   "MODIFIED default/a", "DELETED default/a",
					   "ADDED default/z",	 NULL};

	secret_create(f, "a", NULL);
	start_and_sync(f);
	admin(f, "watches/stall", NULL);
	secret_create(f, "b", NULL);
	secret_modify(f, "a", "1");
	secret_delete(f, "a");
	admin(f, "watches/drop", NULL);
	admin(f, "watches/resume", NULL);
	wait_for(cond_events, f, 4);
	flush_with_sentinel(f, "z");
	assert_events(f, 0, want);
	assert_per_object_order(f);
	assert_int_equal(stats(f).lists, 1);
	assert_int_equal(stats(f).expired, 0);
	assert_true(stats(f).watches >= 2);
}

/* After compaction the resume point is gone: relist, and what vanished is DELETED. */
static void test_expired_relists_with_tombstones(void **state)
{
	struct fixture *f = *state;
	static const char *const first[] = {"ADDED default/a", "ADDED default/b", "ADDED default/c",
					    NULL};
	static const char *const relist[] = {"MODIFIED default/a", "DELETED default/b",
					     "ADDED default/d", NULL};
	int tomb = -1;

	secret_create(f, "a", NULL);
	secret_create(f, "b", NULL);
	secret_create(f, "c", NULL);
	start_and_sync(f);
	admin(f, "watches/stall", NULL);
	secret_modify(f, "a", "1");
	secret_delete(f, "b");
	secret_create(f, "d", NULL);
	admin(f, "compact", NULL);
	admin(f, "watches/drop", NULL);
	admin(f, "watches/resume", NULL);
	wait_for(cond_synced, f, 2);
	flush_with_sentinel(f, "z");
	assert_int_equal(events_now(f), 7); /* c unchanged: no MODIFIED for it */
	assert_events_unordered(f, 0, 3, first);
	assert_events_unordered(f, 3, 6, relist);
	assert_per_object_order(f);
	for (int i = 3; i < 6; i++)
		if (f->rec.ev[i].type == KR_KUBE_DELETED)
			tomb = i;
	assert_true(tomb >= 0);
	assert_string_equal(f->rec.ev[tomb].kind, "Secret");
	assert_true(stats(f).expired >= 1);
	assert_int_equal(stats(f).lists, 2);
}

/* An HTTP 410 on the watch request (not in-stream) relists too; nothing is repeated. */
static void test_http_410_relists(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {"ADDED default/a", "ADDED default/z", NULL};

	secret_create(f, "a", NULL);
	start_and_sync(f);
	admin(f, "faults", "{\"method\":\"GET\",\"path\":\"watch=\",\"status\":410,\"count\":1}");
	admin(f, "watches/drop", NULL);
	wait_for(cond_synced, f, 2);
	flush_with_sentinel(f, "z");
	assert_events(f, 0, want);
	assert_int_equal(stats(f).expired, 1);
}

/* Bookmarks move the resume point: after compaction at the bookmark, no 410. */
static void test_bookmarks_advance_resume_point(void **state)
{
	struct fixture *f = *state;
	cJSON *lease =
	    cJSON_Parse("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
			"\"metadata\":{\"name\":\"l\"},\"spec\":{\"holderIdentity\":\"x\"}}");
	cJSON *out = NULL;
	struct kr_error err;
	struct wait_arg w = {f, 0, NULL};
	char rv[32], *log, needle[64], path[700];

	start_and_sync(f);
	/* Another resource moves the global resourceVersion; only a bookmark can tell us. */
	assert_int_equal(kr_kube_create(f->client, &kr_kube_leases, "default", lease, &out, &err),
			 KR_OK);
	snprintf(rv, sizeof(rv), "%s", meta(out, "resourceVersion"));
	cJSON_Delete(lease);
	cJSON_Delete(out);
	w.text = rv;
	assert_true(kr_test_wait_for(cond_rv, &w, WAIT_MS));
	admin(f, "compact", NULL);
	admin(f, "watches/drop", NULL);
	wait_for(cond_watches, f, 2);
	flush_with_sentinel(f, "z");
	assert_int_equal(stats(f).expired, 0);
	assert_int_equal(stats(f).lists, 1);
	snprintf(path, sizeof(path), "%s/kubeapi.log", f->api.dir);
	log = kr_test_read_file(path);
	assert_non_null(log);
	snprintf(needle, sizeof(needle), "resourceVersion=%s", rv);
	assert_non_null(strstr(log, needle));
	free(log);
}

/* A watch that goes silent is aborted after idle_timeout and resumed. */
static void test_stalled_watch_is_aborted(void **state)
{
	struct fixture *f = *state;
	int64_t t0;

	start_and_sync(f);
	t0 = now_ms();
	admin(f, "watches/stall", NULL);
	wait_for(cond_errors, f, 1);
	assert_true(now_ms() - t0 >= 1500); /* idle 2 s, with a bookmark up to 1 s before */
	assert_int_equal(f->rec.last_error, KR_ETIMEOUT);
	wait_for(cond_watches, f, 2);
	admin(f, "watches/resume", NULL);
	flush_with_sentinel(f, "z");
	assert_int_equal(stats(f).lists, 1);
}

/* A 5xx on the list is reported and retried with growing waits. */
static void test_list_5xx_retried_with_backoff(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {"ADDED default/a", NULL};

	secret_create(f, "a", NULL);
	admin(f, "faults",
	      "{\"method\":\"GET\",\"path\":\"^/api/v1/namespaces/default/secrets"
	      "(?!.*watch=)\",\"status\":500,\"count\":3}");
	start(f);
	wait_for(cond_synced, f, 1);
	assert_int_equal(f->rec.errors, 3);
	assert_int_equal(f->rec.last_error, KR_EHTTP);
	/* waits of [25,50] + [50,100] + [100,200] ms */
	assert_true(f->rec.synced_ms - f->rec.first_error_ms >= 150);
	assert_int_equal(stats(f).errors, 3);
	assert_int_equal(stats(f).lists, 1);
	assert_events(f, 0, want);
}

static void test_stop_is_prompt_while_watching(void **state)
{
	struct fixture *f = *state;
	int64_t took;

	start_and_sync(f);
	took = stop(f);
	print_message("  stop took %lld ms\n", (long long)took);
	assert_true(took < 300);
}

static void test_stop_is_prompt_during_backoff(void **state)
{
	struct fixture *f = *state;
	int64_t took;

	f->opts.backoff_initial_ms = 20000;
	f->opts.backoff_max_ms = 60000;
	admin(f, "faults", "{\"method\":\"GET\",\"path\":\"secrets\",\"status\":503,\"count\":-1}");
	start(f);
	wait_for(cond_errors, f, 1);
	took = stop(f);
	print_message("  stop took %lld ms\n", (long long)took);
	assert_true(took < 300);
}

/* Every watch asks for bookmarks and a timeout within range; a clean close resumes. */
static void test_watch_query(void **state)
{
	struct fixture *f = *state;
	static const char *const want[] = {"ADDED default/in", NULL};
	char path[700], *log, *p;
	int watches = 0;

	f->opts.timeout_min_s = 1;
	f->opts.timeout_max_s = 2;
	f->opts.label_selector = "app=x";
	secret_create(f, "in", "x");
	secret_create(f, "out", "y");
	start(f);
	wait_for(cond_watches, f, 3); /* two clean closes by timeoutSeconds */
	assert_int_equal(stats(f).lists, 1);
	assert_int_equal(f->rec.errors, 0);
	assert_events(f, 0, want);
	snprintf(path, sizeof(path), "%s/kubeapi.log", f->api.dir);
	log = kr_test_read_file(path);
	assert_non_null(log);
	for (p = strstr(log, "watch=1"); p; p = strstr(p + 1, "watch=1")) {
		char *eol = strchr(p, '\n');
		const char *t;

		if (eol)
			*eol = '\0';
		print_message("  %s\n", p);
		assert_non_null(strstr(p, "allowWatchBookmarks=true"));
		assert_non_null(strstr(p, "labelSelector=app%3Dx"));
		assert_non_null(strstr(p, "resourceVersion="));
		t = strstr(p, "timeoutSeconds=");
		assert_non_null(t);
		assert_in_range(atoi(t + strlen("timeoutSeconds=")), 1, 2);
		watches++;
		if (eol)
			*eol = '\n';
	}
	assert_true(watches >= 2);
	free(log);
}

/* Start capturing the log at debug level; log_stop returns what was written. */
static FILE *log_start(char **text, size_t *len)
{
	FILE *mem = open_memstream(text, len);

	assert_non_null(mem);
	kr_log_set_stream(mem);
	kr_log_set_level(KR_LOG_DEBUG);
	return mem;
}

static void log_stop(FILE *mem)
{
	kr_log_set_level(KR_LOG_INFO);
	kr_log_set_stream(NULL);
	fclose(mem);
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/*
 * A quiet watch that the server ends at its timeoutSeconds is routine: reopened from where
 * it was, with a debug line, never an error (the reflector used to abort quiet watches
 * after a fixed 90 s of silence, before the server's 300-600 s timeout, and report it).
 */
static void test_quiet_watch_ended_by_server_is_routine(void **state)
{
	struct fixture *f = *state;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;

	f->opts.timeout_min_s = 2;
	f->opts.timeout_max_s = 2;
	f->opts.idle_timeout_s = 0; /* the default: sized to the watch's timeout */
	mem = log_start(&text, &len);
	start(f);
	wait_for(cond_synced, f, 1);
	wait_for(cond_watches, f, 3); /* two watches ended by the server */
	stop(f);
	log_stop(mem);
	assert_int_equal(f->rec.errors, 0);
	assert_int_equal(stats(f).errors, 0);
	assert_int_equal(stats(f).lists, 1);
	assert_int_equal(f->rec.n, 0);
	print_message("  %s", text);
	assert_true(count_lines(text, "\"level\":\"debug\",\"msg\":\"watch secrets: the server "
				      "ended it after") >= 2);
	/* (the server's one bookmark is the one it sends as the watch ends, as a real one does) */
	assert_non_null(strstr(text, "(timeoutSeconds=2, 0 events, "));
	assert_null(strstr(text, "\"level\":\"warn\""));
	assert_null(strstr(text, "\"level\":\"error\""));
	free(text);
}

static long long want_limit_ms;

static int cond_idle_limit(void *arg)
{
	struct wait_arg *w = arg;
	struct kr_kube_reflector_stats st;

	kr_kube_reflector_stats(w->f->r, &st);
	return st.idle_limit_ms == want_limit_ms;
}

/* The silence limit is the watch's timeoutSeconds plus a tenth, within 5..60 s. */
static void test_silence_limit_follows_the_timeout(void **state)
{
	static const struct {
		int min_s, max_s, idle_s;
		long long want_ms;
	} cases[] = {
	    {300, 300, 0, 330000},    {600, 600, 0, 660000}, {1, 1, 0, 6000},
	    {1200, 1200, 0, 1260000}, {300, 300, 2, 2000},
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wait_arg w = {f, 0, NULL};

		f->opts.timeout_min_s = cases[i].min_s;
		f->opts.timeout_max_s = cases[i].max_s;
		f->opts.idle_timeout_s = cases[i].idle_s;
		want_limit_ms = cases[i].want_ms;
		start(f);
		wait_for(cond_watches, f, 1);
		/* the limit is set as the transfer starts, just after the count */
		if (!kr_test_wait_for(cond_idle_limit, &w, WAIT_MS))
			fail_msg("case %zu: silence limit %lld ms, want %lld", i,
				 stats(f).idle_limit_ms, cases[i].want_ms);
		stop(f);
		kr_kube_reflector_free(f->r);
		f->r = NULL;
	}
}

/*
 * Bookmarks are liveness: a watch with a 2 s silence limit stays open for 4 s on a server
 * that sends nothing but a bookmark a second, and nothing is delivered for them.
 */
static void test_bookmarks_keep_a_quiet_watch_open(void **state)
{
	struct fixture *f = *state;
	struct wait_arg w = {f, 1, NULL};

	f->opts.idle_timeout_s = 2;
	start_and_sync(f);
	/* No error may come within 4 s: waiting for one must time out. */
	assert_false(kr_test_wait_for(cond_errors, &w, 4000));
	assert_int_equal(stats(f).watches, 1);
	assert_int_equal(f->rec.errors, 0);
	assert_int_equal(f->rec.n, 0);
	assert_true(atol(stats(f).last_resource_version) > 0);
}

/*
 * A server that keeps a watch open past its timeoutSeconds without a byte (the connection
 * died silently) is aborted once the margin is spent, and reported.
 */
static void test_watch_silent_past_its_timeout_is_aborted(void **state)
{
	struct fixture *f = *state;
	int64_t t0;

	f->opts.timeout_min_s = 1;
	f->opts.timeout_max_s = 1;
	f->opts.idle_timeout_s = 0; /* 1 s + the 5 s minimum margin */
	start_and_sync(f);
	admin(f, "watches/stall", NULL);
	t0 = now_ms();
	wait_for(cond_errors, f, 1);
	print_message("  aborted after %lld ms\n", (long long)(now_ms() - t0));
	assert_true(now_ms() - t0 >= 4500); /* 6 s after the last byte, up to 1 s before */
	assert_int_equal(f->rec.last_error, KR_ETIMEOUT);
	admin(f, "watches/resume", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_events_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped_watch_resumes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expired_relists_with_tombstones, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_410_relists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bookmarks_advance_resume_point, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stalled_watch_is_aborted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_list_5xx_retried_with_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_is_prompt_while_watching, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_is_prompt_during_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch_query, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quiet_watch_ended_by_server_is_routine,
					    setup_quiet, teardown),
	    cmocka_unit_test_setup_teardown(test_silence_limit_follows_the_timeout, setup_quiet,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bookmarks_keep_a_quiet_watch_open, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_watch_silent_past_its_timeout_is_aborted, setup,
					    teardown),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
