/*
 * test_hostile_http.c - Prometheus and scrape targets that answer too much, too deep or too
 * slowly (issue 18): each call ends with the right error by its deadline, and the peak RSS
 * of this process hardly moves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "hostile.h"

#define BIG_BODY (8u * 1024 * 1024)
#define SERIES	 1000000

static const char ok_json_headers[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				      "Connection: close\r\n\r\n";
static const char ok_text_headers[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				      "Connection: close\r\n\r\n";

/* ---- behaviours ---- */

/* 8 MiB of "[0,0,0,...", no Content-Length: only reading can stop it. */
static void http_big(struct hostile_conn *c)
{
	char chunk[65536];

	hostile_read_request(c);
	if (hostile_writes(c, ok_json_headers) != 0)
		return;
	for (size_t i = 0; i < sizeof(chunk); i += 2)
		memcpy(chunk + i, "0,", 2);
	chunk[0] = '[';
	for (size_t sent = 0; sent < BIG_BODY; sent += sizeof(chunk))
		if (hostile_write(c, chunk, sizeof(chunk)) != 0)
			return;
}

/* The same size announced up front. */
static void http_big_announced(struct hostile_conn *c)
{
	hostile_read_request(c);
	hostile_writes(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			  "Content-Length: 8388608\r\nConnection: close\r\n\r\n[0");
	hostile_hold(c);
}

/* An error page over the cap: the status is still named. */
static void http_big_error(struct hostile_conn *c)
{
	char chunk[16384];

	hostile_read_request(c);
	memset(chunk, 'x', sizeof(chunk));
	if (hostile_writes(c, "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n") != 0)
		return;
	for (int i = 0; i < 64; i++)
		if (hostile_write(c, chunk, sizeof(chunk)) != 0)
			return;
}

static void http_body(struct hostile_conn *c)
{
	hostile_read_request(c);
	hostile_writes(c, ok_json_headers);
	hostile_writes(c, c->arg);
}

/* A whole valid answer, one byte a second. */
static void http_drip(struct hostile_conn *c)
{
	hostile_read_request(c);
	hostile_drip(c,
		     "HTTP/1.1 200 OK\r\nContent-Length: 110\r\n\r\n"
		     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		     "{\"metric\":{},\"value\":[1,\"1\"]}]}}",
		     1000);
}

/* Headers at once, then the body one byte a second. */
static void http_drip_body(struct hostile_conn *c)
{
	hostile_read_request(c);
	if (hostile_writes(c, ok_text_headers) != 0)
		return;
	hostile_drip(c, "requests_total{code=\"401\"} 5\n", 1000);
}

static void http_silent(struct hostile_conn *c)
{
	hostile_read_request(c);
	hostile_hold(c);
}

/*
 * A /metrics page with a million series, written as it is generated: `c->arg` is the
 * name of the million (NULL: "other_total"), then the one series the test asks for.
 */
static void http_million(struct hostile_conn *c)
{
	const char *name = c->arg ? c->arg : "other_total";
	char chunk[65536];
	size_t used = 0;

	hostile_read_request(c);
	if (hostile_writes(c, ok_text_headers) != 0)
		return;
	for (int i = 0; i < SERIES; i++) {
		used += (size_t)snprintf(chunk + used, sizeof(chunk) - used,
					 "%s{code=\"401\",i=\"%d\"} 1\n", name, i);
		if (used > sizeof(chunk) - 128) {
			if (hostile_write(c, chunk, used) != 0)
				return;
			used = 0;
		}
	}
	used += (size_t)snprintf(chunk + used, sizeof(chunk) - used,
				 "requests_total{code=\"401\"} 5\n");
	hostile_write(c, chunk, used);
}

/* ---- helpers ---- */

struct call {
	enum kr_status rc;
	struct kr_error err;
	int64_t ms;    /* how long the call took */
	long hwm_grew; /* KiB */
	struct kr_measurement m;
};

static void query(hostile_fn fn, const void *arg, long timeout_ms, struct call *out)
{
	hostile_fn fns[1] = {fn};
	struct kr_analysis_http_opts o = {.timeout_ms = timeout_ms};
	struct hostile_server s;
	char url[64];
	long hwm;
	int64_t t0;

	memset(out, 0, sizeof(*out));
	hostile_start(&s, fns, 1, arg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
	hwm = hostile_hwm_kib();
	t0 = hostile_now_ms();
	out->rc = kr_analysis_query_prometheus(url, "sum(rate(x[5m]))", &o, &out->m, &out->err);
	out->ms = hostile_now_ms() - t0;
	out->hwm_grew = hostile_hwm_kib() - hwm;
	hostile_stop(&s);
	print_message("  %s: %d in %lld ms, peak RSS +%ld KiB: %s\n", url, (int)out->rc,
		      (long long)out->ms, out->hwm_grew, out->err.msg);
}

static void scrape(hostile_fn fn, const void *arg, const struct kr_promtext_limits *lim,
		   long timeout_ms, struct kr_counter_snapshot *snap, struct call *out)
{
	static const struct kr_prom_label code401 = {"code", "401"};
	hostile_fn fns[1] = {fn};
	struct kr_analysis_http_opts o = {.timeout_ms = timeout_ms, .scrape_limits = lim};
	struct hostile_server s;
	char url[64];
	long hwm;
	int64_t t0;

	memset(out, 0, sizeof(*out));
	hostile_start(&s, fns, 1, arg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", s.port);
	hwm = hostile_hwm_kib();
	t0 = hostile_now_ms();
	out->rc = kr_analysis_scrape(url, &o, "requests_total", &code401, 1, snap, &out->err);
	out->ms = hostile_now_ms() - t0;
	out->hwm_grew = hostile_hwm_kib() - hwm;
	hostile_stop(&s);
	print_message("  %s: %d in %lld ms, peak RSS +%ld KiB: %s\n", url, (int)out->rc,
		      (long long)out->ms, out->hwm_grew, out->err.msg);
}

static void assert_small(const struct call *c)
{
	assert_true(c->hwm_grew >= 0);
	assert_true(c->hwm_grew < hostile_hwm_budget_kib());
}

/* ---- queries ---- */

static void test_query_8mib_body_refused_while_read(void **state)
{
	struct call c;

	(void)state;
	query(http_big, NULL, 10000, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, ": answer larger than 64 KiB"));
	assert_non_null(strstr(c.err.msg, "prometheus http://127.0.0.1:"));
	assert_false(c.m.ok);
	assert_int_equal(c.m.reason.code, KR_ETOOBIG);
	assert_true(c.ms < 5000);
	assert_small(&c);
}

static void test_query_announced_length_refused(void **state)
{
	struct call c;

	(void)state;
	query(http_big_announced, NULL, 10000, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, ": answer larger than 64 KiB"));
	assert_true(c.ms < 5000); /* not the 10 s the held body would take */
	assert_small(&c);
}

static void test_query_big_error_page_names_status(void **state)
{
	struct call c;

	(void)state;
	query(http_big_error, NULL, 10000, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, ": HTTP 502, and an answer larger than 64 KiB"));
	assert_small(&c);
}

static void test_query_nested_100_levels(void **state)
{
	struct kr_buf body;
	struct call c;

	(void)state;
	kr_buf_init(&body);
	kr_buf_adds(&body,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":");
	for (int i = 0; i < 100; i++)
		kr_buf_addch(&body, '[');
	for (int i = 0; i < 100; i++)
		kr_buf_addch(&body, ']');
	kr_buf_adds(&body, "}}");
	query(http_body, body.data, 10000, &c);
	assert_int_equal(c.rc, KR_EPROTO);
	assert_non_null(strstr(c.err.msg, ": answer nested deeper than 32 levels"));
	assert_small(&c);
	kr_buf_release(&body);
}

static void test_query_too_many_values(void **state)
{
	struct kr_buf body;
	struct call c;

	(void)state;
	kr_buf_init(&body);
	kr_buf_adds(&body,
		    "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[0");
	for (int i = 0; i < 5000; i++)
		kr_buf_adds(&body, ",0");
	kr_buf_adds(&body, "]}}");
	query(http_body, body.data, 10000, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, ": answer has more than 4096 JSON values"));
	kr_buf_release(&body);
}

static void test_query_dripped_ends_by_deadline(void **state)
{
	struct call c;

	(void)state;
	query(http_drip, NULL, 1500, &c);
	assert_int_equal(c.rc, KR_ETIMEOUT);
	assert_non_null(strstr(c.err.msg, ": timed out after 1.5s"));
	assert_true(c.ms >= 1400 && c.ms < 3000); /* the drip would take ~150 s */
	assert_small(&c);
}

static void test_query_silent_ends_by_deadline(void **state)
{
	struct call c;

	(void)state;
	query(http_silent, NULL, 1000, &c);
	assert_int_equal(c.rc, KR_ETIMEOUT);
	assert_true(c.ms >= 900 && c.ms < 2500);
}

/* The pre-scan counts brackets outside strings only, and a normal answer passes it. */
static void test_decode_prescan_table(void **state)
{
	static const struct {
		const char *body;
		enum kr_status rc;
		const char *msg;
	} cases[] = {
	    {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":"
	     "{\"path\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\",,,\"},\"value\":[1,\"2\"]}]"
	     "}}",
	     KR_OK, NULL},
	    {"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{", KR_EPROTO, "answer nested deeper than 32 levels"},
	};
	struct kr_measurement m;
	char deep[80];

	(void)state;
	/* 32 levels pass the pre-scan (and cJSON), 33 do not */
	for (int levels = 32; levels <= 33; levels++) {
		memset(deep, '[', (size_t)levels);
		memset(deep + levels, ']', (size_t)levels);
		deep[2 * levels] = '\0';
		kr_promjson_decode(deep, strlen(deep), 200, &m);
		assert_string_equal(m.reason.msg, levels == 32
						      ? "response is not a JSON object"
						      : "answer nested deeper than 32 levels");
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum kr_status rc =
		    kr_promjson_decode(cases[i].body, strlen(cases[i].body), 200, &m);

		print_message("  case %zu: %d %s\n", i, (int)rc, m.ok ? "" : m.reason.msg);
		assert_int_equal(rc, cases[i].rc);
		if (cases[i].msg)
			assert_string_equal(m.reason.msg, cases[i].msg);
		else
			assert_true(m.ok && m.value == 2);
	}
	/* not 200: the status leads, whatever the body */
	assert_int_equal(kr_promjson_decode(cases[1].body, strlen(cases[1].body), 503, &m),
			 KR_EHTTP);
	assert_string_equal(m.reason.msg, "HTTP 503, and the response is not a Prometheus answer");
}

/* ---- scrapes ---- */

static void test_scrape_million_series_refused_by_default(void **state)
{
	struct kr_counter_snapshot snap;
	struct call c;

	(void)state;
	kr_counter_snapshot_init(&snap);
	scrape(http_million, NULL, NULL, 30000, &snap, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, "more than 100000 samples"));
	assert_small(&c);
	kr_counter_snapshot_release(&snap);
}

/* With the caps raised, a million other series stream through and only one is kept. */
static void test_scrape_million_series_keeps_only_the_match(void **state)
{
	struct kr_promtext_limits wide = {.max_bytes = 256u << 20, .max_samples = 2 * SERIES};
	struct kr_counter_snapshot snap;
	struct call c;

	(void)state;
	kr_counter_snapshot_init(&snap);
	scrape(http_million, NULL, &wide, 60000, &snap, &c);
	assert_int_equal(c.rc, KR_OK);
	assert_int_equal(snap.n, 1);
	assert_true(snap.sum == 5);
	assert_small(&c);
	kr_counter_snapshot_release(&snap);
}

/* A million series that all match: the snapshot stops at KR_COUNTER_MAX_SERIES. */
static void test_scrape_million_matching_series(void **state)
{
	struct kr_promtext_limits wide = {.max_bytes = 256u << 20, .max_samples = 2 * SERIES};
	struct kr_counter_snapshot snap;
	struct call c;

	(void)state;
	kr_counter_snapshot_init(&snap);
	scrape(http_million, "requests_total", &wide, 60000, &snap, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, "more than 10000 series of requests_total match"));
	assert_small(&c);
	kr_counter_snapshot_release(&snap);
}

static void test_scrape_byte_cap(void **state)
{
	struct kr_promtext_limits small = {.max_bytes = 1u << 20, .max_samples = 2 * SERIES};
	struct kr_counter_snapshot snap;
	struct call c;

	(void)state;
	kr_counter_snapshot_init(&snap);
	scrape(http_million, NULL, &small, 30000, &snap, &c);
	assert_int_equal(c.rc, KR_ETOOBIG);
	assert_non_null(strstr(c.err.msg, ": exposition larger than 1 MiB"));
	assert_small(&c);
	kr_counter_snapshot_release(&snap);
}

static void test_scrape_dripped_ends_by_deadline(void **state)
{
	struct kr_counter_snapshot snap;
	struct call c;

	(void)state;
	kr_counter_snapshot_init(&snap);
	scrape(http_drip_body, NULL, NULL, 1500, &snap, &c);
	assert_int_equal(c.rc, KR_ETIMEOUT);
	assert_non_null(strstr(c.err.msg, ": timed out after 1.5s"));
	assert_true(c.ms >= 1400 && c.ms < 3000);
	kr_counter_snapshot_release(&snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_prescan_table),
	    cmocka_unit_test(test_query_8mib_body_refused_while_read),
	    cmocka_unit_test(test_query_announced_length_refused),
	    cmocka_unit_test(test_query_big_error_page_names_status),
	    cmocka_unit_test(test_query_nested_100_levels),
	    cmocka_unit_test(test_query_too_many_values),
	    cmocka_unit_test(test_query_dripped_ends_by_deadline),
	    cmocka_unit_test(test_query_silent_ends_by_deadline),
	    cmocka_unit_test(test_scrape_million_series_refused_by_default),
	    cmocka_unit_test(test_scrape_million_series_keeps_only_the_match),
	    cmocka_unit_test(test_scrape_million_matching_series),
	    cmocka_unit_test(test_scrape_byte_cap),
	    cmocka_unit_test(test_scrape_dripped_ends_by_deadline),
	};
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
