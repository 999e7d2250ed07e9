/*
 * test_hostile_valkey.c - Valkey servers that announce huge replies, drip them, or never
 * answer (issue 18): each call ends with the right error by the command deadline, the
 * connection is closed (never reused), the next call connects afresh, and the peak RSS of
 * this process hardly moves. Also the RESP scanner that measures replies, as a table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hostile.h"
#include "keystore/internal.h"

#define TIMEOUT_MS 1000

/* ---- behaviours: read the command, then misbehave ---- */

static void vk_announce(struct hostile_conn *c)
{
	hostile_read_some(c);
	hostile_writes(c, c->arg);
	hostile_hold(c);
}

/* 9000 strings of 200 bytes: each part is fine, the whole is 1.8 MiB. */
static void vk_many_strings(struct hostile_conn *c)
{
	char item[256];

	hostile_read_some(c);
	memset(item, 'x', sizeof(item));
	memcpy(item, "$200\r\n", 6);
	memcpy(item + 206, "\r\n", 2);
	if (hostile_writes(c, "*9000\r\n") != 0)
		return;
	for (int i = 0; i < 9000; i++)
		if (hostile_write(c, item, 208) != 0)
			return;
	hostile_hold(c);
}

/* A bulk reply of 100 bytes, one byte every 300 ms: each recv gets a byte in time. */
static void vk_drip(struct hostile_conn *c)
{
	hostile_read_some(c);
	hostile_drip(c,
		     "$100\r\n"
		     "0123456789012345678901234567890123456789012345678901234567890123456789"
		     "012345678901234567890123456789\r\n",
		     300);
}

static void vk_silent(struct hostile_conn *c)
{
	hostile_read_some(c);
	hostile_hold(c);
}

/* Three pipelined PINGs: two answered at once, the third dripped. */
static void vk_pipeline_drip(struct hostile_conn *c)
{
	hostile_read_some(c);
	if (hostile_writes(c, "+PONG\r\n+PONG\r\n") != 0)
		return;
	hostile_drip(c, "+PONG-PONG-PONG-PONG-PONG-PONG\r\n", 300);
}

/* A well-behaved server: +PONG for every read. */
static void vk_pong(struct hostile_conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n <= 0 || hostile_writes(c, "+PONG\r\n") != 0)
			return;
	}
}

/* ---- the calls ---- */

struct call {
	enum kr_status rc;
	struct kr_error err;
	int64_t ms;
	long hwm_grew;
	int closed; /* the connection was closed after the failure */
	enum kr_status next_rc;
};

static struct kr_keystore *ks_for(int port)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;

	kr_keystore_opts_init(&o);
	o.host = "127.0.0.1";
	o.port = port;
	o.connect_timeout_ms = o.command_timeout_ms = TIMEOUT_MS;
	kr_keystore_layout_init_defaults(&l);
	assert_int_equal(kr_keystore_new(&o, &l, &ks, NULL), KR_OK);
	return ks;
}

/* PING (or three pipelined) against `fn` on the first connection, then a good server. */
static void ping(hostile_fn fn, const char *arg, int pipelined, struct call *out)
{
	hostile_fn fns[2] = {fn, vk_pong};
	struct hostile_server s;
	struct kr_keystore *ks;
	long hwm;
	int64_t t0;

	hostile_start(&s, fns, 2, arg);
	ks = ks_for(s.port);
	hwm = hostile_hwm_kib();
	t0 = hostile_now_ms();
	if (pipelined) {
		struct kr_ks_arg a = kr_ks_str("PING");
		struct kr_ks_cmd cmds[3] = {{1, &a, "PING"}, {1, &a, "PING"}, {1, &a, "PING"}};
		redisReply *replies[3];

		out->rc = kr_ks_pipeline(ks, cmds, 3, replies, &out->err);
		for (int i = 0; i < 3; i++)
			kr_ks_reply_free(replies[i]);
	} else {
		out->rc = kr_keystore_ping(ks, &out->err);
	}
	out->ms = hostile_now_ms() - t0;
	out->hwm_grew = hostile_hwm_kib() - hwm;
	out->closed = ks->net.fd < 0;
	out->next_rc = kr_keystore_ping(ks, NULL); /* a new connection, to vk_pong */
	print_message("  port %d: %d in %lld ms, peak RSS +%ld KiB, next %d: %s\n", s.port,
		      (int)out->rc, (long long)out->ms, out->hwm_grew, (int)out->next_rc,
		      out->err.msg);
	kr_keystore_free(ks);
	hostile_stop(&s);
}

static void assert_refused(const struct call *c, enum kr_status rc, const char *msg)
{
	char want[128];

	assert_int_equal(c->rc, rc);
	snprintf(want, sizeof(want), "valkey 127.0.0.1:");
	assert_non_null(strstr(c->err.msg, want));
	assert_non_null(strstr(c->err.msg, msg));
	assert_true(c->closed);
	assert_int_equal(c->next_rc, KR_OK);
	assert_true(c->hwm_grew >= 0 && c->hwm_grew < hostile_hwm_budget_kib());
}

static void test_bulk_of_2gb_announced(void **state)
{
	struct call c;

	(void)state;
	ping(vk_announce, "$2000000000\r\n", 0, &c);
	assert_refused(&c, KR_ETOOBIG, ": reply larger than 1 MiB");
	assert_true(c.ms < TIMEOUT_MS / 2); /* refused from the header, not after waiting */
}

static void test_bulk_just_over_1mib_announced(void **state)
{
	struct call c;

	(void)state;
	ping(vk_announce, "$1048577\r\n", 0, &c);
	assert_refused(&c, KR_ETOOBIG, ": reply larger than 1 MiB");
	assert_true(c.ms < TIMEOUT_MS / 2);
}

static void test_array_of_2g_elements_announced(void **state)
{
	struct call c;

	(void)state;
	ping(vk_announce, "*2000000000\r\n", 0, &c);
	assert_refused(&c, KR_ETOOBIG, ": reply of more than 10000 elements");
	assert_true(c.ms < TIMEOUT_MS / 2);
}

static void test_nested_arrays_announced(void **state)
{
	struct call c;
	char deep[200] = "";

	(void)state;
	for (int i = 0; i < 20; i++)
		strcat(deep, "*1\r\n");
	ping(vk_announce, deep, 0, &c);
	assert_refused(&c, KR_EPROTO, ": reply nested deeper than 7 levels");
}

static void test_many_small_strings_over_1mib(void **state)
{
	struct call c;

	(void)state;
	ping(vk_many_strings, NULL, 0, &c);
	assert_refused(&c, KR_ETOOBIG, ": reply larger than 1 MiB");
	assert_true(c.ms < TIMEOUT_MS);
}

static void test_dripped_reply_ends_by_deadline(void **state)
{
	struct call c;

	(void)state;
	ping(vk_drip, NULL, 0, &c);
	assert_refused(&c, KR_ETIMEOUT, ": timed out after 1000 ms waiting for a complete reply");
	assert_true(c.ms >= TIMEOUT_MS - 50 && c.ms < TIMEOUT_MS + 700); /* the drip: ~32 s */
}

static void test_silent_server_ends_by_deadline(void **state)
{
	struct call c;

	(void)state;
	ping(vk_silent, NULL, 0, &c);
	assert_refused(&c, KR_ETIMEOUT, ": timed out after 1000 ms waiting for a complete reply");
	assert_true(c.ms >= TIMEOUT_MS - 50 && c.ms < TIMEOUT_MS + 700);
}

static void test_pipeline_shares_one_deadline(void **state)
{
	struct call c;

	(void)state;
	ping(vk_pipeline_drip, NULL, 1, &c);
	assert_refused(&c, KR_ETIMEOUT, ": timed out after 1000 ms waiting for a complete reply");
	assert_true(c.ms >= TIMEOUT_MS - 50 && c.ms < TIMEOUT_MS + 700);
}

/* ---- the scanner alone ---- */

struct guard_case {
	const char *name;
	const char *bytes;
	size_t len; /* 0: strlen */
	enum kr_status rc;
	size_t replies; /* complete replies when rc == KR_OK */
	const char *msg;
};

static enum kr_status guard_run(const struct guard_case *gc, size_t step, size_t *replies,
				struct kr_error *err)
{
	struct kr_ks_resp_guard g;
	size_t len = gc->len ? gc->len : strlen(gc->bytes);
	enum kr_status rc = KR_OK;

	kr_ks_resp_guard_init(&g);
	for (size_t off = 0; off < len && rc == KR_OK; off += step)
		rc = kr_ks_resp_guard_feed(&g, gc->bytes + off, len - off < step ? len - off : step,
					   err);
	*replies = g.replies;
	return rc;
}

static void test_guard_table(void **state)
{
	static const struct guard_case cases[] = {
	    {"status", "+OK\r\n", 0, KR_OK, 1, NULL},
	    {"error", "-ERR x\r\n", 0, KR_OK, 1, NULL},
	    {"integer", ":-42\r\n", 0, KR_OK, 1, NULL},
	    {"bulk", "$5\r\nhe\r\nl\r\n", 0, KR_OK, 1, NULL},
	    {"nil bulk", "$-1\r\n", 0, KR_OK, 1, NULL},
	    {"empty bulk", "$0\r\n\r\n", 0, KR_OK, 1, NULL},
	    {"nil array", "*-1\r\n", 0, KR_OK, 1, NULL},
	    {"empty array", "*0\r\n", 0, KR_OK, 1, NULL},
	    {"scan page", "*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n:3\r\n", 0, KR_OK, 1, NULL},
	    {"pipeline", "+OK\r\n:1\r\n*1\r\n$-1\r\n", 0, KR_OK, 3, NULL},
	    {"partial", "*2\r\n+a\r\n", 0, KR_OK, 0, NULL},
	    {"status with LF inside", "+a\nb\r\n", 0, KR_OK, 1, NULL},
	    {"bulk of NULs", "$3\r\n\0\0\0\r\n", 9, KR_OK, 1, NULL},
	    {"1 MiB bulk announced", "$1048576\r\n", 0, KR_OK, 0, NULL},
	    {"over 1 MiB announced", "$1048577\r\n", 0, KR_ETOOBIG, 0, "reply larger than 1 MiB"},
	    {"huge bulk", "$99999999999999999999999\r\n", 0, KR_ETOOBIG, 0,
	     "reply larger than 1 MiB"},
	    {"10000 elements", "*10000\r\n", 0, KR_OK, 0, NULL},
	    {"10001 elements", "*10001\r\n", 0, KR_ETOOBIG, 0, "reply of more than 10000 elements"},
	    {"elements add up", "*2\r\n*0\r\n*9999\r\n", 0, KR_ETOOBIG, 0,
	     "reply of more than 10000 elements"},
	    {"depth 7", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 0, KR_OK, 1, NULL},
	    {"depth 8", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n", 0, KR_EPROTO, 0,
	     "reply nested deeper than 7 levels"},
	    {"unknown type", "%2\r\n", 0, KR_EPROTO, 0, "bad reply: unknown reply type"},
	    {"NUL type", "\0", 1, KR_EPROTO, 0, "bad reply: unknown reply type"},
	    {"length not a number", "$1x\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"length empty", "*\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"nil is -1 only", "$-2\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"no -0", "*-0\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"no + sign", "$+1\r\nx\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"leading zero", "$01\r\nx\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	    {"integer not a number", ":1a\r\n", 0, KR_EPROTO, 0, "bad reply: malformed integer"},
	    {"integer -0", ":-0\r\n", 0, KR_EPROTO, 0, "bad reply: malformed integer"},
	    {"integer of 18 digits", ":-123456789012345678\r\n", 0, KR_OK, 1, NULL},
	    {"integer of 19 digits", ":1234567890123456789\r\n", 0, KR_EPROTO, 0,
	     "bad reply: malformed integer"},
	    {"CR in a length", "$1\r2\r\n", 0, KR_EPROTO, 0, "bad reply: malformed length"},
	};
	struct kr_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static const size_t steps[] = {1, 3, 1 << 20};

		for (size_t k = 0; k < 3; k++) {
			size_t replies;
			enum kr_status rc;

			kr_error_clear(&err);
			rc = guard_run(&cases[i], steps[k], &replies, &err);
			print_message("  %s (chunks of %zu): %d %zu %s\n", cases[i].name, steps[k],
				      (int)rc, replies, err.msg);
			assert_int_equal(rc, cases[i].rc);
			if (rc == KR_OK)
				assert_int_equal(replies, cases[i].replies);
			else
				assert_string_equal(err.msg, cases[i].msg);
		}
	}
}

/* A reply of exactly 1 MiB passes; one byte more does not. */
static void test_guard_byte_cap(void **state)
{
	struct kr_ks_resp_guard g;
	struct kr_error err;
	static char chunk[4096];
	/* "$N\r\n" + N + "\r\n" = 1 MiB in all */
	size_t n = KR_KS_REPLY_MAX_BYTES - strlen("$1048566\r\n") - 2;
	char head[32];

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	snprintf(head, sizeof(head), "$%zu\r\n", n);
	assert_int_equal(strlen(head) + n + 2, KR_KS_REPLY_MAX_BYTES);
	kr_ks_resp_guard_init(&g);
	assert_int_equal(kr_ks_resp_guard_feed(&g, head, strlen(head), &err), KR_OK);
	for (size_t left = n; left > 0;) {
		size_t k = left < sizeof(chunk) ? left : sizeof(chunk);

		assert_int_equal(kr_ks_resp_guard_feed(&g, chunk, k, &err), KR_OK);
		left -= k;
	}
	assert_int_equal(kr_ks_resp_guard_feed(&g, "\r\n", 2, &err), KR_OK);
	assert_int_equal(g.replies, 1);
	/* the count starts again for the next reply; a 1 MiB status line is one too many */
	assert_int_equal(kr_ks_resp_guard_feed(&g, "+", 1, &err), KR_OK);
	for (size_t left = KR_KS_REPLY_MAX_BYTES; left > 0; left -= sizeof(chunk)) {
		enum kr_status rc = kr_ks_resp_guard_feed(&g, chunk, sizeof(chunk), &err);

		if (rc != KR_OK) {
			assert_int_equal(rc, KR_ETOOBIG);
			assert_string_equal(err.msg, "reply larger than 1 MiB");
			assert_true(left == sizeof(chunk));
			break;
		}
	}
	/* spent */
	assert_int_equal(kr_ks_resp_guard_feed(&g, "+OK\r\n", 5, &err), KR_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_guard_table),
	    cmocka_unit_test(test_guard_byte_cap),
	    cmocka_unit_test(test_bulk_of_2gb_announced),
	    cmocka_unit_test(test_bulk_just_over_1mib_announced),
	    cmocka_unit_test(test_array_of_2g_elements_announced),
	    cmocka_unit_test(test_nested_arrays_announced),
	    cmocka_unit_test(test_many_small_strings_over_1mib),
	    cmocka_unit_test(test_dripped_reply_ends_by_deadline),
	    cmocka_unit_test(test_silent_server_ends_by_deadline),
	    cmocka_unit_test(test_pipeline_shares_one_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
