/* test_analysis_prometheus.c - the 401 watch against Debian's prometheus and a test service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "analysis/analysis.h"
#include "testlib.h"

/* One counter_service.py. */
struct svc {
	int port;
	pid_t pid;
	char log[600];
	const char *extra[6]; /* NULL-terminated extra arguments */
};

static struct {
	const char *dir;
	struct svc scraped; /* the one prometheus scrapes */
	int prom_port;
	pid_t prom_pid;
	char prom_url[64];
} g;

static const struct kr_prom_label code401[] = {{"code", "401"}};

static int svc_start(struct svc *s)
{
	char script[600], port[16];
	char *argv[16];
	int n = 0;

	snprintf(script, sizeof(script), "%s/analysis/counter_service.py", kr_test_tests_dir());
	if (!s->port)
		s->port = kr_test_free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	if (!s->log[0])
		snprintf(s->log, sizeof(s->log), "%s/svc-%d.log", g.dir, s->port);
	argv[n++] = (char *)kr_test_python();
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = port;
	for (int i = 0; s->extra[i] && n < 15; i++)
		argv[n++] = (char *)s->extra[i];
	argv[n] = NULL;
	s->pid = kr_test_spawn(argv, s->log);
	return s->pid > 0 && kr_test_wait_port(s->port, 15000);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data;
	(void)arg;
	return size * nmemb;
}

/* POST to the service's admin API; 1 on HTTP 200. */
static int svc_admin(const struct svc *s, const char *path_and_query)
{
	char url[256];
	long status = 0;
	CURL *c = curl_easy_init();

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path_and_query);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status == 200;
}

static enum kr_status query(const char *q, struct kr_measurement *m)
{
	struct kr_analysis_http_opts o = {.timeout_ms = 2000};

	return kr_analysis_query_prometheus(g.prom_url, q, &o, m, NULL);
}

struct above {
	const char *query;
	double min;
	struct kr_measurement m;
};

static int query_above(void *arg)
{
	struct above *a = arg;

	return query(a->query, &a->m) == KR_OK && a->m.value > a->min;
}

static int prom_start(void)
{
	char conf[600], data[600], listen[64], log[600], cfg_arg[700], data_arg[700];
	char *argv[] = {"prometheus",
			cfg_arg,
			data_arg,
			listen,
			"--log.level=warn",
			"--storage.tsdb.retention.time=1h",
			NULL};
	struct above ready = {"sum(up{job=\"svc\"})", 0.5, {0}};
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/prometheus.yml", g.dir);
	snprintf(data, sizeof(data), "%s/tsdb", g.dir);
	snprintf(log, sizeof(log), "%s/prometheus.log", g.dir);
	f = fopen(conf, "w");
	if (!f)
		return 0;
	fprintf(f,
		"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
		"scrape_configs:\n  - job_name: svc\n    static_configs:\n"
		"      - targets: ['127.0.0.1:%d']\n",
		g.scraped.port);
	fclose(f);
	g.prom_port = kr_test_free_port();
	snprintf(cfg_arg, sizeof(cfg_arg), "--config.file=%s", conf);
	snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
	snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", g.prom_port);
	snprintf(g.prom_url, sizeof(g.prom_url), "http://127.0.0.1:%d", g.prom_port);
	g.prom_pid = kr_test_spawn(argv, log);
	/* Up once it has scraped the service at least once. */
	return g.prom_pid > 0 && kr_test_wait_port(g.prom_port, 30000) &&
	       kr_test_wait_for(query_above, &ready, 30000);
}

static int setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g.dir = kr_test_tmpdir("analysis");
	if (!g.dir || !svc_start(&g.scraped)) {
		fprintf(stderr, "cannot start counter_service.py\n");
		return -1;
	}
	if (!prom_start()) {
		fprintf(stderr, "prometheus did not come up; see %s/prometheus.log\n", g.dir);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

static void test_query_returns_a_value(void **state)
{
	struct kr_measurement m;

	(void)state;
	assert_int_equal(query("sum(rate(http_requests_total{code=\"401\"}[5s])) or vector(0)", &m),
			 KR_OK);
	assert_true(m.ok);
	assert_true(m.value >= 0);
	assert_true(m.at > 1.6e9);
	/* a scalar works too */
	assert_int_equal(query("scalar(sum(up{job=\"svc\"}))", &m), KR_OK);
	assert_true(m.value == 1);
}

static void test_raised_401_rate_is_seen(void **state)
{
	struct above raised = {"sum(rate(http_requests_total{code=\"401\"}[5s]))", 8, {0}};
	struct kr_analysis_limits lim = {0.5, 2, 2};
	struct kr_analysis_state st = {.has_baseline = 1, .baseline = 0};
	struct kr_gate_decision d;

	(void)state;
	assert_true(svc_admin(&g.scraped, "/admin/rate?method=get&code=401&per_sec=20"));
	if (!kr_test_wait_for(query_above, &raised, 20000))
		fail_msg("401 rate never rose above 8/s: last %g (%s)", raised.m.value,
			 raised.m.reason.msg);
	kr_analysis_gate(&lim, &st, &raised.m, &st, &d);
	assert_int_equal(d.verdict, KR_GATE_FAIL);
	assert_true(svc_admin(&g.scraped, "/admin/rate?method=get&code=401&per_sec=0"));
}

/*
 * The worked queries in the README (.readme-parts/analysis.md) parse, and give one value
 * even where their metric does not exist: that is what "or vector(0)" is for.
 */
static void test_readme_queries_give_one_value(void **state)
{
	static const char *const queries[] = {
	    "sum(rate(http_requests_total{job=\"sirius-api\", code=\"401\"}[1m])) or vector(0)",
	    "sum(rate(nginx_ingress_controller_requests{namespace=\"sirius\", "
	    "ingress=\"sirius-api\", status=\"401\"}[1m])) or vector(0)",
	    "sum(rate(istio_requests_total{reporter=\"destination\", "
	    "destination_workload_namespace=\"sirius\",\n    destination_workload=\"sirius-api\", "
	    "response_code=\"401\"}[1m])) or vector(0)",
	    "sum(rate(http_server_requests_seconds_count{application=\"sirius-api\", "
	    "status=\"401\"}[1m])) or vector(0)",
	    "(\n  sum(rate(http_requests_total{job=\"sirius-api\", code=\"401\"}[1m]))\n  /\n"
	    "  (sum(rate(http_requests_total{job=\"sirius-api\"}[1m])) > 0)\n) or vector(0)",
	    /* the same share against the test service, which has traffic */
	    "(sum(rate(http_requests_total{job=\"svc\", code=\"401\"}[5s])) / "
	    "(sum(rate(http_requests_total{job=\"svc\"}[5s])) > 0)) or vector(0)",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct kr_measurement m;

		if (query(queries[i], &m) != KR_OK)
			fail_msg("query %zu: %s", i, m.reason.msg);
		assert_true(m.value >= 0);
	}
}

struct inconclusive_case {
	const char *query;
	enum kr_status rc;
	const char *reason; /* after "prometheus http://127.0.0.1:PORT: " */
};

static void test_inconclusive_results(void **state)
{
	static const struct inconclusive_case cases[] = {
	    {"http_requests_total{code=\"599\"}", KR_ENOTFOUND, "query returned no series"},
	    {"http_requests_total{code=\"401\"}", KR_EPROTO,
	     "query returned 2 series, want 1: aggregate with sum()"},
	    {"http_requests_total[5s]", KR_EPROTO, "query returned a range vector (matrix)"},
	    {"sum(", KR_EHTTP, "query failed (HTTP 400): bad_data: "},
	    {"vector(0) / 0", KR_EPROTO, "query returned NaN"},
	    {"vector(1) / 0", KR_EPROTO, "query returned +Inf"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_measurement m;
		char want[600];

		snprintf(want, sizeof(want), "prometheus %s: %s", g.prom_url, cases[i].reason);
		assert_int_equal(query(cases[i].query, &m), cases[i].rc);
		assert_false(m.ok);
		if (strncmp(m.reason.msg, want, strlen(want)) != 0)
			fail_msg("%s: reason \"%s\", want \"%s...\"", cases[i].query, m.reason.msg,
				 want);
	}
}

/* Credentials in the URL never reach a message. */
static void test_reason_hides_url_credentials(void **state)
{
	struct kr_measurement m;
	struct kr_error err;
	char url[128], want[160];

	(void)state;
	snprintf(url, sizeof(url), "http://admin:hunter2@127.0.0.1:%d/", g.prom_port);
	snprintf(want, sizeof(want), "prometheus http://127.0.0.1:%d/: ", g.prom_port);
	assert_int_equal(kr_analysis_query_prometheus(url, "sum(", NULL, &m, &err), KR_EHTTP);
	assert_string_equal(err.msg, m.reason.msg);
	assert_null(strstr(m.reason.msg, "hunter2"));
	assert_non_null(strstr(m.reason.msg, want));
}

static void test_timeout_is_inconclusive(void **state)
{
	struct kr_analysis_http_opts o = {.timeout_ms = 300};
	struct kr_measurement m;
	char url[128], want[160];

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", g.scraped.port);
	snprintf(want, sizeof(want), "prometheus %s: timed out", url);
	assert_int_equal(kr_analysis_query_prometheus(url, "up", &o, &m, NULL), KR_ETIMEOUT);
	assert_false(m.ok);
	assert_non_null(strstr(m.reason.msg, want));
}

/* Bearer and Basic credentials reach a Prometheus-shaped endpoint; a wrong one is refused. */
static void test_prometheus_auth(void **state)
{
	struct svc bearer = {.extra = {"--token", "t0k3n-for-test", NULL}};
	struct svc basic = {.extra = {"--basic", "watch:pa55", NULL}};
	struct kr_secret *good = kr_secret_new("t0k3n-for-test", 14);
	struct kr_secret *bad = kr_secret_new("wrong", 5);
	struct kr_secret *pw = kr_secret_new("pa55", 4);
	struct kr_analysis_http_opts o = {.timeout_ms = 2000, .bearer_token = good};
	struct kr_measurement m;
	char url[128];

	(void)state;
	assert_true(svc_start(&bearer));
	assert_true(svc_start(&basic));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/fakeprom", bearer.port);
	assert_int_equal(kr_analysis_query_prometheus(url, "x", &o, &m, NULL), KR_OK);
	assert_true(m.value == 42);
	o.bearer_token = bad;
	assert_int_equal(kr_analysis_query_prometheus(url, "x", &o, &m, NULL), KR_EAUTH);
	assert_non_null(strstr(m.reason.msg, "HTTP 401: credentials refused"));
	assert_null(strstr(m.reason.msg, "wrong"));
	o.bearer_token = NULL;
	o.basic_user = "watch";
	o.basic_password = pw;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/fakeprom", basic.port);
	assert_int_equal(kr_analysis_query_prometheus(url, "x", &o, &m, NULL), KR_OK);
	o.basic_password = bad;
	assert_int_equal(kr_analysis_query_prometheus(url, "x", &o, &m, NULL), KR_EAUTH);
	kr_test_stop(bearer.pid, SIGKILL);
	kr_test_stop(basic.pid, SIGKILL);
	kr_secret_free(good);
	kr_secret_free(bad);
	kr_secret_free(pw);
}

/* Scrape the service directly: a rate between two scrapes, and across a restart. */
static void test_scrape_rate_and_reset(void **state)
{
	struct svc s = {0};
	struct kr_counter_snapshot a, b, c;
	struct kr_measurement m;
	struct kr_error err;
	char url[128];

	(void)state;
	kr_counter_snapshot_init(&a);
	kr_counter_snapshot_init(&b);
	kr_counter_snapshot_init(&c);
	assert_true(svc_start(&s));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", s.port);
	assert_true(svc_admin(&s, "/admin/bump?method=get&code=401&n=50"));
	assert_int_equal(kr_analysis_scrape(url, NULL, "http_requests_total", code401, 1, &a, &err),
			 KR_OK);
	assert_true(a.sum == 50);
	assert_int_equal(a.n, 2); /* get and post */
	assert_true(svc_admin(&s, "/admin/bump?method=get&code=401&n=30"));
	assert_true(svc_admin(&s, "/admin/bump?method=post&code=401&n=6"));
	assert_int_equal(kr_analysis_scrape(url, NULL, "http_requests_total", code401, 1, &b, &err),
			 KR_OK);
	kr_counter_rate(&a, &b, &m);
	assert_true(m.ok);
	assert_true(fabs(m.value * (b.at - a.at) - 36) < 1e-6);

	/* The service restarts: its counters start again from zero. */
	kr_test_stop(s.pid, SIGKILL);
	assert_true(svc_start(&s));
	assert_true(svc_admin(&s, "/admin/bump?method=get&code=401&n=5"));
	assert_int_equal(kr_analysis_scrape(url, NULL, "http_requests_total", code401, 1, &c, &err),
			 KR_OK);
	assert_true(c.sum == 5);
	kr_counter_rate(&b, &c, &m);
	assert_true(m.ok);
	assert_true(m.value > 0);
	assert_true(fabs(m.value * (c.at - b.at) - 5) < 1e-6);

	kr_test_stop(s.pid, SIGKILL);
	kr_counter_snapshot_release(&a);
	kr_counter_snapshot_release(&b);
	kr_counter_snapshot_release(&c);
}

static void test_scrape_errors_name_the_target(void **state)
{
	struct kr_promtext_limits tiny = {.max_bytes = 64};
	struct kr_analysis_http_opts o = {.scrape_limits = &tiny};
	struct kr_counter_snapshot s;
	struct kr_error err;
	char url[128], want[200];
	int dead = kr_test_free_port();

	(void)state;
	kr_counter_snapshot_init(&s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", g.scraped.port);
	assert_int_equal(kr_analysis_scrape(url, NULL, "requests_total", code401, 1, &s, &err),
			 KR_ENOTFOUND);
	snprintf(want, sizeof(want), "scrape %s: no series named requests_total", url);
	assert_string_equal(err.msg, want);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", g.scraped.port);
	assert_int_equal(kr_analysis_scrape(url, NULL, "x", NULL, 0, &s, &err), KR_EHTTP);
	assert_int_equal(err.http_status, 404);
	assert_non_null(strstr(err.msg, "HTTP 404"));
	assert_null(strstr(err.msg, "page not found")); /* the body is the server's, not ours */

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", dead);
	assert_int_equal(kr_analysis_scrape(url, NULL, "x", NULL, 0, &s, &err), KR_EIO);
	snprintf(want, sizeof(want), "scrape %s: ", url);
	assert_non_null(strstr(err.msg, want));

	/* A scrape larger than the cap is refused, not buffered. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", g.scraped.port);
	assert_int_equal(kr_analysis_scrape(url, &o, "http_requests_total", NULL, 0, &s, &err),
			 KR_ETOOBIG);
	assert_non_null(strstr(err.msg, "exposition larger than 64 bytes"));
	kr_counter_snapshot_release(&s);
}

/* HTTPS with a CA from a Secret (caSecretRef): verified with it, refused without it. */
static void test_scrape_https_with_ca(void **state)
{
	char cert[600], key[600], cmd[2000], url[128];
	struct svc s = {.extra = {"--tls-cert", cert, "--tls-key", key, NULL}};
	struct kr_analysis_http_opts o = {.timeout_ms = 3000};
	struct kr_counter_snapshot snap;
	struct kr_error err;
	char *pem;

	(void)state;
	snprintf(cert, sizeof(cert), "%s/tls.crt", g.dir);
	snprintf(key, sizeof(key), "%s/tls.key", g.dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
		 key, cert);
	assert_int_equal(system(cmd), 0);
	pem = kr_test_read_file(cert);
	assert_non_null(pem);
	assert_true(svc_start(&s));
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/metrics", s.port);
	kr_counter_snapshot_init(&snap);

	assert_int_equal(
	    kr_analysis_scrape(url, &o, "http_requests_total", code401, 1, &snap, &err), KR_EIO);
	assert_non_null(strstr(err.msg, "scrape https://127.0.0.1"));
	o.ca_pem = pem;
	o.ca_pem_len = strlen(pem);
	assert_int_equal(
	    kr_analysis_scrape(url, &o, "http_requests_total", code401, 1, &snap, &err), KR_OK);
	assert_int_equal(snap.n, 2);

	kr_test_stop(s.pid, SIGKILL);
	kr_counter_snapshot_release(&snap);
	free(pem);
}

/* Last: Prometheus goes away. The result is inconclusive and the reason names the server. */
static void test_prometheus_killed_is_inconclusive(void **state)
{
	struct kr_analysis_limits lim = {0.5, 2, 2};
	struct kr_analysis_state st = {.has_baseline = 1};
	struct kr_gate_decision d;
	struct kr_measurement m;
	char want[128];

	(void)state;
	kr_test_stop(g.prom_pid, SIGKILL);
	assert_int_equal(query("sum(rate(http_requests_total{code=\"401\"}[5s]))", &m), KR_EIO);
	assert_false(m.ok);
	snprintf(want, sizeof(want), "prometheus %s: ", g.prom_url);
	assert_non_null(strstr(m.reason.msg, want));
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_int_equal(d.verdict, KR_GATE_INCONCLUSIVE);
	assert_non_null(strstr(d.reason, want));
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_int_equal(d.verdict, KR_GATE_ROLLBACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_returns_a_value),
	    cmocka_unit_test(test_raised_401_rate_is_seen),
	    cmocka_unit_test(test_readme_queries_give_one_value),
	    cmocka_unit_test(test_inconclusive_results),
	    cmocka_unit_test(test_reason_hides_url_credentials),
	    cmocka_unit_test(test_timeout_is_inconclusive),
	    cmocka_unit_test(test_prometheus_auth),
	    cmocka_unit_test(test_scrape_rate_and_reset),
	    cmocka_unit_test(test_scrape_errors_name_the_target),
	    cmocka_unit_test(test_scrape_https_with_ca),
	    cmocka_unit_test(test_prometheus_killed_is_inconclusive),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
