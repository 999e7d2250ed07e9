/* test_http.c - /healthz, /readyz, /metrics over real HTTP (libcurl), checked by promtool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "runtime/http.h"
#include "reconciler/reconciler.h"
#include "runtime/metrics.h"
#include "testlib.h"

extern char **environ;

static atomic_int ready;
static atomic_int alive = 1;

static int check_ready(void *ctx, char *reason, size_t size)
{
	(void)ctx;
	if (atomic_load(&ready))
		return 1;
	snprintf(reason, size, "caches not synced");
	return 0;
}

static int check_alive(void *ctx, char *reason, size_t size)
{
	(void)ctx;
	if (atomic_load(&alive))
		return 1;
	snprintf(reason, size, "reconcile loop stuck");
	return 0;
}

struct reply {
	long status;
	struct kr_buf body;
	char ctype[128];
	char allow[64];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct kr_buf *b = arg;

	return kr_buf_add(b, p, size * n) == KR_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t len = size * n;
	char line[256];

	snprintf(line, sizeof(line), "%.*s", (int)len, p);
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "Content-Type: ", 14) == 0)
		snprintf(r->ctype, sizeof(r->ctype), "%s", line + 14);
	if (strncasecmp(line, "Allow: ", 7) == 0)
		snprintf(r->allow, sizeof(r->allow), "%s", line + 7);
	return len;
}

/* One request to 127.0.0.1:port; the caller releases r->body. */
static void http_do(int port, const char *method, const char *path, struct reply *r)
{
	CURL *c = curl_easy_init();
	char url[128];
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	kr_buf_init(&r->body);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK)
		fail_msg("%s %s: %s", method, url, curl_easy_strerror(cc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
}

struct fixture {
	struct kr_metrics *metrics;
	struct kr_runtime_metrics rt;
	struct kr_keyrotator_metrics km;
	struct kr_http_server *server;
	int port;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct kr_http_handlers h = {check_alive, NULL, check_ready, NULL, NULL};
	struct kr_error err;

	assert_non_null(fx);
	fx->metrics = kr_metrics_new();
	assert_int_equal(kr_metrics_register_runtime(fx->metrics, KR_METRICS_PREFIX, "0.1.0-test",
					     &fx->rt, &err),
			 KR_OK);
	assert_int_equal(kr_metrics_register_keyrotator(fx->metrics, &fx->km, &err), KR_OK);
	h.metrics = fx->metrics;
	atomic_store(&ready, 0);
	atomic_store(&alive, 1);
	if (kr_http_server_new("127.0.0.1:0", &h, &fx->server, &err) != KR_OK)
		fail_msg("start: %s", err.msg);
	fx->port = kr_http_server_port(fx->server);
	assert_true(fx->port > 0 && fx->port < 65536);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	kr_http_server_free(fx->server);
	kr_metrics_free(fx->metrics);
	free(fx);
	return 0;
}

static void test_routes(void **state)
{
	static const struct {
		const char *method, *path;
		long status;
		const char *body, *ctype_prefix;
	} cases[] = {
	    {"GET", "/healthz", 200, "ok", "text/plain"},
	    {"HEAD", "/healthz", 200, "", "text/plain"},
	    {"GET", "/readyz", 503, "caches not synced", "text/plain"},
	    {"GET", "/metrics", 200, NULL, "text/plain; version=0.0.4; charset=utf-8"},
	    {"HEAD", "/metrics", 200, "", "text/plain; version=0.0.4"},
	    {"GET", "/", 404, "not found", "text/plain"},
	    {"GET", "/metrics/x", 404, "not found", "text/plain"},
	    {"GET", "/healthz?verbose=1", 200, "ok", "text/plain"},
	    {"POST", "/metrics", 405, "method not allowed", "text/plain"},
	    {"DELETE", "/healthz", 405, "method not allowed", "text/plain"},
	    {"PUT", "/nowhere", 405, "method not allowed", "text/plain"},
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r;

		http_do(fx->port, cases[i].method, cases[i].path, &r);
		if (r.status != cases[i].status)
			fail_msg("%s %s: status %ld, want %ld", cases[i].method, cases[i].path,
				 r.status, cases[i].status);
		if (cases[i].body != NULL)
			assert_string_equal(r.body.data, cases[i].body);
		if (strncmp(r.ctype, cases[i].ctype_prefix, strlen(cases[i].ctype_prefix)) != 0)
			fail_msg("%s %s: Content-Type \"%s\"", cases[i].method, cases[i].path,
				 r.ctype);
		if (r.status == 405)
			assert_string_equal(r.allow, "GET, HEAD");
		kr_buf_release(&r.body);
	}
}

static void test_readiness_and_liveness_follow_callbacks(void **state)
{
	struct fixture *fx = *state;
	struct reply r;

	http_do(fx->port, "GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body.data, "caches not synced");
	kr_buf_release(&r.body);

	atomic_store(&ready, 1); /* the caches synced */
	http_do(fx->port, "GET", "/readyz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "ok");
	kr_buf_release(&r.body);

	atomic_store(&alive, 0);
	http_do(fx->port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body.data, "reconcile loop stuck");
	kr_buf_release(&r.body);
}

static void test_metrics_reflect_updates_and_deletes(void **state)
{
	struct fixture *fx = *state;
	struct reply r;

	kr_gauge_set(fx->km.key_age_seconds, KR_LV("sirius", "api"), 42);
	http_do(fx->port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(
	    r.body.data, "keyrotator_key_age_seconds{namespace=\"sirius\",name=\"api\"} 42\n"));
	assert_non_null(strstr(r.body.data, "keyrotator_build_info{version=\"0.1.0-test\"} 1\n"));
	kr_buf_release(&r.body);

	kr_metrics_delete_object(fx->metrics, "sirius", "api");
	http_do(fx->port, "GET", "/metrics", &r);
	assert_null(strstr(r.body.data, "name=\"api\""));
	kr_buf_release(&r.body);
}

/* promtool on PATH, or NULL. */
static char *find_on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *dirs, *save = NULL, *found = NULL;

	dirs = strdup(path ? path : "/usr/bin:/bin");
	assert_non_null(dirs);
	for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char cand[1024];

		snprintf(cand, sizeof(cand), "%s/%s", *d ? d : ".", prog);
		if (access(cand, X_OK) == 0)
			found = strdup(cand);
	}
	free(dirs);
	return found;
}

/* Run `promtool check metrics < input`, output to `log`; returns the exit status. */
static int run_promtool(const char *promtool, const char *input, const char *log)
{
	char *argv[] = {(char *)promtool, "check", "metrics", NULL};
	posix_spawn_file_actions_t fa;
	int status = -1;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, input, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	assert_int_equal(posix_spawn(&pid, promtool, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void fill_every_family(struct kr_runtime_metrics *rt, struct kr_keyrotator_metrics *km)
{
	kr_counter_inc(km->rotations_total, KR_LV("succeeded"));
	kr_counter_inc(km->rotations_total, KR_LV("rolled_back"));
	kr_histogram_observe(km->rotation_duration_seconds, NULL, 95.5);
	kr_counter_add(rt->reconcile_total, KR_LV("success"), 12);
	kr_counter_inc(rt->reconcile_total, KR_LV("error"));
	kr_histogram_observe(rt->reconcile_duration_seconds, NULL, 0.0123);
	kr_histogram_observe(rt->reconcile_duration_seconds, NULL, 30);
	kr_gauge_set(rt->workqueue_depth, NULL, 3);
	kr_counter_add(rt->workqueue_adds_total, NULL, 17);
	kr_counter_inc(rt->workqueue_retries_total, NULL);
	kr_gauge_set(km->unauthorized_rate, KR_LV("sirius", "api"), 0.2);
	/* Odd but legal label values must come out escaped, or promtool rejects the page. */
	kr_gauge_set(km->key_age_seconds, KR_LV("we\"ird", "back\\slash\nnewline"), 7776000);
	kr_counter_inc(km->keystore_repairs_total, NULL);
	kr_gauge_set(rt->leader, NULL, 1);
}

static void test_metrics_pass_promtool(void **state)
{
	struct fixture *fx = *state;
	char input[600], log[640];
	char *promtool = find_on_path("promtool");
	struct reply r;
	FILE *f;
	int rc;

	if (promtool == NULL)
		fail_msg("promtool not found on PATH: install Debian's \"prometheus\" package "
			 "(it provides /usr/bin/promtool); this test does not skip");
	fill_every_family(&fx->rt, &fx->km);
	http_do(fx->port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	snprintf(input, sizeof(input), "%s/metrics.txt", kr_test_tmpdir("http"));
	snprintf(log, sizeof(log), "%s.promtool.log", input);
	f = fopen(input, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(r.body.data, 1, r.body.len, f), r.body.len);
	assert_int_equal(fclose(f), 0);
	rc = run_promtool(promtool, input, log);
	if (rc != 0) {
		char *out = kr_test_read_file(log);

		fail_msg("promtool check metrics exited %d:\n%s\n--- page ---\n%s", rc,
			 out ? out : "", r.body.data);
	}
	assert_non_null(
	    strstr(r.body.data, "keyrotator_rotation_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
	kr_buf_release(&r.body);
	free(promtool);
}

static void test_handlers_left_out_answer_404(void **state)
{
	struct kr_http_handlers h = {check_alive, NULL, check_ready, NULL, NULL};
	struct kr_http_server *s = NULL;
	struct kr_error err;
	struct reply r;

	(void)state;
	h.readiness = NULL; /* a server with /healthz only */
	assert_int_equal(kr_http_server_new("127.0.0.1:0", &h, &s, &err), KR_OK);
	http_do(kr_http_server_port(s), "GET", "/metrics", &r);
	assert_int_equal(r.status, 404);
	kr_buf_release(&r.body);
	http_do(kr_http_server_port(s), "GET", "/readyz", &r);
	assert_int_equal(r.status, 404);
	kr_buf_release(&r.body);
	http_do(kr_http_server_port(s), "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	kr_buf_release(&r.body);
	kr_http_server_free(s);
	kr_http_server_free(NULL);
}

/* ":port" listens on every interface (IPv6 dual stack, or IPv4 where there is no IPv6). */
static void test_empty_host_serves_loopback(void **state)
{
	struct kr_http_handlers h = {check_alive, NULL, NULL, NULL, NULL};
	struct kr_http_server *s = NULL;
	struct kr_error err;
	struct reply r;

	(void)state;
	if (kr_http_server_new(":0", &h, &s, &err) != KR_OK)
		fail_msg("listen on \":0\": %s", err.msg);
	http_do(kr_http_server_port(s), "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	kr_buf_release(&r.body);
	kr_http_server_free(s);
}

static void test_port_in_use_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct kr_http_handlers h = {check_alive, NULL, NULL, NULL, NULL};
	struct kr_http_server *s = NULL;
	struct kr_error err;
	char addr[64];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
	kr_error_clear(&err);
	assert_int_equal(kr_http_server_new(addr, &h, &s, &err), KR_EIO);
	assert_null(s);
	if (strstr(err.msg, addr) == NULL || strstr(err.msg, "in use") == NULL)
		fail_msg("error does not name the address and the cause: %s", err.msg);
}

static void test_address_parsing(void **state)
{
	static const struct {
		const char *addr;
		enum kr_status rc;
		const char *host;
		int port;
	} cases[] = {
	    {":8080", KR_OK, "", 8080},		{"127.0.0.1:0", KR_OK, "127.0.0.1", 0},
	    {"[::1]:9090", KR_OK, "::1", 9090}, {"localhost:8081", KR_OK, "localhost", 8081},
	    {":65535", KR_OK, "", 65535},	{"8080", KR_EINVAL, NULL, 0},
	    {"", KR_EINVAL, NULL, 0},		{"host:", KR_EINVAL, NULL, 0},
	    {":65536", KR_EINVAL, NULL, 0},	{":123456", KR_EINVAL, NULL, 0},
	    {":80a", KR_EINVAL, NULL, 0},	{":-1", KR_EINVAL, NULL, 0},
	    {"::1:80", KR_EINVAL, NULL, 0},	{"[::1]80", KR_EINVAL, NULL, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_error err;
		char host[64];
		int port = -1;

		kr_error_clear(&err);
		assert_int_equal(kr_http_addr_parse(cases[i].addr, host, sizeof(host), &port, &err),
				 cases[i].rc);
		if (cases[i].rc == KR_OK) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		} else if (strstr(err.msg, cases[i].addr) == NULL ||
			   strstr(err.msg, ":8080") == NULL) {
			fail_msg("message for \"%s\" should name it and an example: %s",
				 cases[i].addr, err.msg);
		}
	}
}

static void test_bad_address_fails_server_new(void **state)
{
	struct kr_http_handlers h = {check_alive, NULL, NULL, NULL, NULL};
	struct kr_http_server *s = NULL;
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_http_server_new("nonsense", &h, &s, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "\"nonsense\""));
	assert_int_equal(kr_http_server_new("no-such-host.invalid:80", &h, &s, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "no-such-host.invalid"));
	assert_null(s);
}

/*
 * At debug level libmicrohttpd's own messages reach our log. Starting a server must not
 * produce any: in particular not "MHD_OPTION_EXTERNAL_LOGGER is not the first option",
 * which it says when options it parses before the logger could have logged to stderr.
 */
static void test_server_start_logs_nothing_from_microhttpd(void **state)
{
	struct kr_http_handlers h = {check_alive, NULL, NULL, NULL, NULL};
	struct kr_http_server *s = NULL;
	struct kr_error err;
	enum kr_log_level was = kr_log_get_level();
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	(void)state;
	assert_non_null(mem);
	kr_log_set_stream(mem);
	kr_log_set_level(KR_LOG_DEBUG);
	if (kr_http_server_new("127.0.0.1:0", &h, &s, &err) != KR_OK)
		fail_msg("server: %s", err.msg);
	kr_http_server_free(s);
	kr_log_set_level(was);
	kr_log_set_stream(NULL);
	fclose(mem);
	if (strstr(text, "http server:") != NULL)
		fail_msg("libmicrohttpd logged while starting: %s", text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readiness_and_liveness_follow_callbacks, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_metrics_reflect_updates_and_deletes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_metrics_pass_promtool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_port_in_use_is_an_error, setup, teardown),
	    cmocka_unit_test(test_handlers_left_out_answer_404),
	    cmocka_unit_test(test_empty_host_serves_loopback),
	    cmocka_unit_test(test_address_parsing),
	    cmocka_unit_test(test_bad_address_fails_server_new),
	    cmocka_unit_test(test_server_start_logs_nothing_from_microhttpd),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
