/* test_controller_run.c - `keyrotator run` as a process against the local API server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "testlib.h"

#define WAIT_MS 20000
#define N_KR	50
/* The KeyStore the N_KR KeyRotations name: no server listens there. */
#define STORE	      "valkey"
#define STORE_ADDRESS "127.0.0.1:6379"

struct fixture {
	struct kr_test_kubeapi api;
	struct kr_test_redis redis; /* the inline key store's server (its tests only) */
	const char *dir;
	int metrics_port, health_port;
	pid_t pid;
	char log[700];
};

/* GET http://127.0.0.1:port/path; returns the HTTP status (0 if unreachable). */
static long http_get(int port, const char *path, struct kr_buf *body)
{
	char url[512];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return kr_test_http("GET", url, NULL, NULL, body, NULL);
}

/* The KeyRotations' collection URL on the local API server. */
static void keyrotations_url(struct fixture *f, char *url, size_t size)
{
	snprintf(url, size, "%s/apis/keyrotator.io/v1alpha1/namespaces/default/keyrotations",
		 f->api.url);
}

static void admin(struct fixture *f, const char *op, const char *json, char **out)
{
	int code = kr_test_kubeapi_admin(&f->api, op, json, out);

	if (code != 200 && code != 201)
		fail_msg("admin %s: HTTP %d", op, code);
}

/* Create a KeyRotation through the API server (the test needs no kube client). */
static void keyrotation_create(struct fixture *f, int i)
{
	char body[1024], url[256];
	struct kr_buf out;
	long code;

	kr_buf_init(&out);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\","
		 "\"metadata\":{\"name\":\"kr-%d\"},\"spec\":{"
		 "\"secretRef\":{\"name\":\"key-%d\",\"key\":\"API_KEY\"},"
		 "\"keyStoreRef\":{\"kind\":\"KeyStore\",\"name\":\"" STORE "\"},"
		 "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\","
		 "\"name\":\"app-%d\"}]}]}}",
		 i, i, i);
	keyrotations_url(f, url, sizeof(url));
	code = kr_test_http("POST", url, f->api.token, body, &out, NULL);
	if (code != 201)
		fail_msg("create kr-%d: HTTP %ld %s", i, code, out.data ? out.data : "");
	kr_buf_release(&out);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(kr_test_kubeapi_start_crds(&f->api, 0, NULL), 0);
	f->dir = kr_test_tmpdir("run");
	assert_int_equal(kr_test_keystore_create(&f->api, "default", STORE, STORE_ADDRESS, NULL),
			 0);
	for (int i = 0; i < N_KR; i++)
		keyrotation_create(f, i);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->pid > 0)
		kr_test_stop(f->pid, SIGKILL);
	kr_test_kubeapi_stop(&f->api);
	kr_test_redis_stop(&f->redis);
	free(f);
	return 0;
}

static void start_run(struct fixture *f, const char *tag, const char *extra)
{
	char maddr[64], haddr[64];
	const char *bin = getenv("KR_BINARY");
	char *argv[] = {(char *)bin,	  "run",   "--kubeconfig",  f->api.kubeconfig,
			"--metrics-addr", maddr,   "--health-addr", haddr,
			"--log-level",	  "debug", (char *)extra,   NULL};

	assert_non_null(bin);
	f->metrics_port = kr_test_free_port();
	f->health_port = kr_test_free_port();
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", f->metrics_port);
	snprintf(haddr, sizeof(haddr), "127.0.0.1:%d", f->health_port);
	snprintf(f->log, sizeof(f->log), "%s/%s.log", f->dir, tag);
	f->pid = kr_test_spawn(argv, f->log);
	assert_true(f->pid > 0);
	assert_true(kr_test_wait_port(f->health_port, WAIT_MS));
}

/* SIGTERM: exits 0 within 5 s. */
static void stop_run(struct fixture *f)
{
	struct timespec t0, t1;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	status = kr_test_stop(f->pid, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	f->pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
}

static int cond_ready(void *arg)
{
	struct fixture *f = arg;
	struct kr_buf b;
	long code;

	kr_buf_init(&b);
	code = http_get(f->health_port, "/readyz", &b);
	kr_buf_release(&b);
	return code == 200;
}

/* Sum of keyrotator_reconcile_total over its results, from /metrics. */
static double reconciles(struct fixture *f)
{
	struct kr_buf b;
	double sum = 0;

	kr_buf_init(&b);
	http_get(f->metrics_port, "/metrics", &b);
	for (char *p = b.data; (p = strstr(p, "\nkeyrotator_reconcile_total{")); p++)
		sum += atof(strchr(p, '}') + 1);
	kr_buf_release(&b);
	return sum;
}

static int cond_all_reconciled(void *arg)
{
	return reconciles(arg) >= N_KR;
}

/* Every KeyRotation carries the status the controller wrote (conditions set). */
static int cond_all_have_status(void *arg)
{
	struct fixture *f = arg;
	char url[256];
	struct kr_buf out;
	const cJSON *item;
	cJSON *list;
	int with = 0;

	kr_buf_init(&out);
	keyrotations_url(f, url, sizeof(url));
	kr_test_http("GET", url, f->api.token, NULL, &out, NULL);
	list = out.data ? cJSON_Parse(out.data) : NULL;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(list, "items"))
	{
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(item, "status");

		with += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "conditions")) > 0;
	}
	cJSON_Delete(list);
	kr_buf_release(&out);
	return with >= N_KR;
}

static int api_writes(struct fixture *f)
{
	char *out = NULL;
	cJSON *stats;
	int writes;

	assert_int_equal(kr_test_kubeapi_admin(&f->api, "stats", NULL, &out), 200);
	stats = cJSON_Parse(out);
	assert_non_null(stats);
	writes = cJSON_GetObjectItemCaseSensitive(stats, "writes")->valueint;
	cJSON_Delete(stats);
	free(out);
	return writes;
}

static void test_readyz_waits_for_caches(void **state)
{
	struct fixture *f = *state;
	struct kr_buf b;

	/* The KeyRotation list fails until the fault is cleared: caches cannot sync. */
	admin(f, "faults",
	      "{\"method\":\"GET\",\"path\":\".*keyrotations.*\",\"status\":503,\"count\":-1}",
	      NULL);
	start_run(f, "ready", NULL);
	kr_buf_init(&b);
	assert_int_equal(http_get(f->health_port, "/readyz", &b), 503);
	assert_non_null(strstr(b.data, "keyrotations"));
	kr_buf_reset(&b);
	assert_int_equal(http_get(f->health_port, "/healthz", &b), 200);
	kr_buf_release(&b);
	{
		char url[256];

		snprintf(url, sizeof(url), "%s/_kubeapi/faults", f->api.url);
		assert_int_equal(kr_test_http("DELETE", url, NULL, NULL, NULL, NULL), 200);
	}
	assert_true(kr_test_wait_for(cond_ready, f, WAIT_MS));
	stop_run(f);
}

static void test_metrics_parse_with_promtool(void **state)
{
	struct fixture *f = *state;
	char path[700], cmd[1600];
	struct kr_buf b;
	FILE *out;

	start_run(f, "metrics", NULL);
	assert_true(kr_test_wait_for(cond_ready, f, WAIT_MS));
	assert_true(kr_test_wait_for(cond_all_reconciled, f, WAIT_MS));
	kr_buf_init(&b);
	assert_int_equal(http_get(f->metrics_port, "/metrics", &b), 200);
	assert_non_null(strstr(b.data, "keyrotator_workqueue_depth"));
	assert_non_null(strstr(b.data, "keyrotator_reconcile_duration_seconds_bucket"));
	snprintf(path, sizeof(path), "%s/metrics.txt", f->dir);
	out = fopen(path, "w");
	assert_non_null(out);
	fwrite(b.data, 1, b.len, out);
	fclose(out);
	kr_buf_release(&b);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s.out 2>&1", path, path);
	assert_int_equal(system(cmd), 0);
	stop_run(f);
}

static int cond_metrics_up(void *arg)
{
	struct fixture *f = arg;
	struct kr_buf b;
	long code;

	kr_buf_init(&b);
	code = http_get(f->metrics_port, "/metrics", &b);
	kr_buf_release(&b);
	return code == 200;
}

/* GET path on the metrics port into b (initialised here), answered with `code`. */
static void expect_get(struct fixture *f, const char *path, long code, struct kr_buf *b)
{
	kr_buf_init(b);
	assert_int_equal(http_get(f->metrics_port, path, b), code);
}

/*
 * The first scrape already has every counter alerts and dashboards name, at 0 for the
 * results and outcomes that have not happened (as controller-runtime initialises them).
 */
static void test_counters_exist_from_the_first_scrape(void **state)
{
	static const char *const zero[] = {
	    "keyrotator_reconcile_total{result=\"error\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"succeeded\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"rolled_back\"} 0\n",
	    "keyrotator_rotations_total{outcome=\"failed\"} 0\n",
	    "keyrotator_events_dropped_total 0\n",
	    "keyrotator_workqueue_retries_total 0\n",
	};
	struct fixture *f = *state;
	struct kr_buf b;

	start_run(f, "first-scrape", NULL);
	assert_true(kr_test_wait_for(cond_metrics_up, f, WAIT_MS));
	expect_get(f, "/metrics", 200, &b);
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		if (!strstr(b.data, zero[i]))
			fail_msg("the first scrape lacks \"%s\":\n%s", zero[i], b.data);
	assert_non_null(strstr(b.data, "keyrotator_reconcile_total{result=\"success\"}"));
	assert_non_null(strstr(b.data, "keyrotator_reconcile_total{result=\"requeue\"}"));
	kr_buf_release(&b);
	/* ?name=F: only the families named (a poll that renders no series per KeyRotation) */
	expect_get(f,
		   "/metrics?name=keyrotator_events_dropped_total"
		   "&name=keyrotator_workqueue_retries_total",
		   200, &b);
	assert_non_null(strstr(b.data, "keyrotator_events_dropped_total 0\n"));
	assert_non_null(strstr(b.data, "keyrotator_workqueue_retries_total 0\n"));
	assert_null(strstr(b.data, "keyrotator_reconcile_total"));
	kr_buf_release(&b);
	expect_get(f,
		   "/metrics?name=a&name=b&name=c&name=d&name=e&name=f&name=g&name=h"
		   "&name=i&name=j&name=k&name=l&name=m&name=n&name=o&name=p&name=q",
		   400, &b);
	kr_buf_release(&b);
	stop_run(f);
}

/* A restarted controller over N steady-state KeyRotations writes nothing. */
static void test_restart_makes_zero_writes(void **state)
{
	struct fixture *f = *state;

	start_run(f, "first", NULL);
	/* Reconciles are counted per call (a wake-up by its own write counts too): wait for
	 * the status of every KeyRotation, the first run's last write. */
	assert_true(kr_test_wait_for(cond_all_reconciled, f, WAIT_MS));
	assert_true(kr_test_wait_for(cond_all_have_status, f, WAIT_MS));
	stop_run(f);
	admin(f, "stats/reset", "{}", NULL);
	start_run(f, "second", NULL);
	assert_true(kr_test_wait_for(cond_ready, f, WAIT_MS));
	assert_true(kr_test_wait_for(cond_all_reconciled, f, WAIT_MS));
	assert_int_equal(api_writes(f), 0);
	stop_run(f);
	assert_int_equal(api_writes(f), 0);
}

/* Every line is one JSON object with ts/level/msg; reconcile lines carry their context. */
static void test_json_logs_carry_context(void **state)
{
	struct fixture *f = *state;
	char *text, *line, *save = NULL;
	int with_ctx = 0, lines = 0;

	start_run(f, "logs", "--leader-elect");
	assert_true(kr_test_wait_for(cond_all_reconciled, f, WAIT_MS));
	stop_run(f);
	text = kr_test_read_file(f->log);
	assert_non_null(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(line);

		if (!o)
			fail_msg("not JSON: %s", line);
		lines++;
		assert_non_null(cJSON_GetObjectItemCaseSensitive(o, "ts"));
		assert_non_null(cJSON_GetObjectItemCaseSensitive(o, "level"));
		assert_non_null(cJSON_GetObjectItemCaseSensitive(o, "msg"));
		if (cJSON_GetObjectItemCaseSensitive(o, "reconcileID") &&
		    cJSON_GetObjectItemCaseSensitive(o, "namespace") &&
		    cJSON_GetObjectItemCaseSensitive(o, "name"))
			with_ctx++;
		cJSON_Delete(o);
	}
	assert_true(lines > 0);
	assert_true(with_ctx >= N_KR);
	free(text);
}

/* ---- the inline spec.keyStore: honoured only with --allow-inline-key-stores ---- */

#define INLINE "inline"

/* GET `path` on the local API server: the parsed body when 200, else NULL. */
static cJSON *api_get(struct fixture *f, const char *path)
{
	char url[512];
	struct kr_buf out;
	cJSON *obj = NULL;

	kr_buf_init(&out);
	snprintf(url, sizeof(url), "%s%s", f->api.url, path);
	if (kr_test_http("GET", url, f->api.token, NULL, &out, NULL) == 200)
		obj = cJSON_Parse(out.data);
	kr_buf_release(&out);
	return obj;
}

/* A redis-server, Deployment INLINE, and KeyRotation INLINE whose inline spec.keyStore
 * names that server. */
static void inline_create(struct fixture *f)
{
	char body[1024];
	struct kr_buf out;
	long code;

	assert_int_equal(kr_test_redis_start(&f->redis, NULL), 0);
	kr_buf_init(&out);
	code = kr_test_kubeapi_post(
	    &f->api, "/apis/apps/v1/namespaces/default/deployments",
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
	    "\"" INLINE "\"},\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":"
	    "\"" INLINE "\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"" INLINE "\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
	    &out);
	if (code != 201)
		fail_msg("create Deployment " INLINE ": HTTP %ld %s", code, out.data);
	kr_buf_reset(&out);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\","
		 "\"metadata\":{\"name\":\"" INLINE "\"},\"spec\":{"
		 "\"secretRef\":{\"name\":\"" INLINE "-key\",\"key\":\"API_KEY\"},"
		 "\"keyStore\":{\"address\":\"127.0.0.1:%d\"},"
		 "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\","
		 "\"name\":\"" INLINE "\"}]}]}}",
		 f->redis.port);
	code = kr_test_kubeapi_post(
	    &f->api, "/apis/keyrotator.io/v1alpha1/namespaces/default/keyrotations", body, &out);
	if (code != 201)
		fail_msg("create " INLINE ": HTTP %ld %s", code, out.data);
	kr_buf_release(&out);
}

/* KeyRotation INLINE's Ready condition (a copy; NULL while it has none). */
static cJSON *inline_ready(struct fixture *f)
{
	cJSON *kr =
	    api_get(f, "/apis/keyrotator.io/v1alpha1/namespaces/default/keyrotations/" INLINE);
	const cJSON *c, *conds = cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(kr, "status"), "conditions");
	cJSON *ready = NULL;

	cJSON_ArrayForEach(c, conds)
	{
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");

		if (cJSON_IsString(type) && !strcmp(type->valuestring, "Ready"))
			ready = cJSON_Duplicate(c, 1);
	}
	cJSON_Delete(kr);
	return ready;
}

static const char *field(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static int cond_inline_refused(void *arg)
{
	cJSON *ready = inline_ready(arg);
	int yes = !strcmp(field(ready, "status"), "False") &&
		  !strcmp(field(ready, "reason"), "InlineKeyStoreNotAllowed");

	cJSON_Delete(ready);
	return yes;
}

/* A Warning Event about KeyRotation INLINE with reason InlineKeyStoreNotAllowed. */
static int cond_inline_refused_event(void *arg)
{
	cJSON *list = api_get(arg, "/api/v1/namespaces/default/events");
	const cJSON *ev;
	int yes = 0;

	cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(list, "items"))
	{
		const cJSON *io = cJSON_GetObjectItemCaseSensitive(ev, "involvedObject");

		yes |= !strcmp(field(io, "kind"), "KeyRotation") &&
		       !strcmp(field(io, "name"), INLINE) &&
		       !strcmp(field(ev, "type"), "Warning") &&
		       !strcmp(field(ev, "reason"), "InlineKeyStoreNotAllowed");
	}
	cJSON_Delete(list);
	return yes;
}

/* With the flag: the controller used the inline store (its key is there), no refusal. */
static int cond_inline_used(void *arg)
{
	struct fixture *f = arg;
	cJSON *ready = inline_ready(f);
	int yes = ready && strcmp(field(ready, "reason"), "InlineKeyStoreNotAllowed") != 0 &&
		  kr_test_redis_dbsize(&f->redis, NULL) > 0;

	cJSON_Delete(ready);
	return yes;
}

/* Without --allow-inline-key-stores: Ready=False, a Warning Event, nothing written. */
static void test_inline_key_store_refused_without_flag(void **state)
{
	struct fixture *f = *state;
	cJSON *secret;

	inline_create(f);
	start_run(f, "inline-refused", NULL);
	assert_true(kr_test_wait_for(cond_inline_refused, f, WAIT_MS));
	assert_true(kr_test_wait_for(cond_inline_refused_event, f, WAIT_MS));
	/* The other KeyRotations (keyStoreRef) were reconciled meanwhile: not held up. */
	assert_true(kr_test_wait_for(cond_all_have_status, f, WAIT_MS));
	assert_int_equal(kr_test_redis_dbsize(&f->redis, NULL), 0);
	/* Nor was the consumers' Secret created. */
	secret = api_get(f, "/api/v1/namespaces/default/secrets/" INLINE "-key");
	assert_null(secret);
	stop_run(f);
	assert_int_equal(kr_test_redis_dbsize(&f->redis, NULL), 0);
}

/* With it, the same KeyRotation is honoured: its key reaches the inline store. */
static void test_inline_key_store_honoured_with_flag(void **state)
{
	struct fixture *f = *state;

	inline_create(f);
	start_run(f, "inline-allowed", "--allow-inline-key-stores");
	assert_true(kr_test_wait_for(cond_inline_used, f, WAIT_MS));
	assert_false(cond_inline_refused_event(f));
	stop_run(f);
}

static void test_bad_flags_exit_2(void **state)
{
	const char *bin = getenv("KR_BINARY");
	char *argv[] = {(char *)bin, "run", "--workers", "0", NULL};
	pid_t pid;
	int status;

	(void)state;
	pid = kr_test_spawn(argv, "/dev/null");
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_readyz_waits_for_caches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics_parse_with_promtool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counters_exist_from_the_first_scrape, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_restart_makes_zero_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_json_logs_carry_context, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inline_key_store_refused_without_flag, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_inline_key_store_honoured_with_flag, setup,
					    teardown),
	    cmocka_unit_test(test_bad_flags_exit_2),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
