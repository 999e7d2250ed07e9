/* test_keystore_sentinel.c - the key store through redis-sentinel: a master, a replica and one
 * sentinel (quorum 1, down after 500 ms). The master is found and checked with ROLE, a wrong
 * master name or no sentinel is an error naming them, and a killed master is followed to the
 * promoted replica (the time it takes is printed), as is a manual failover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "keystore/internal.h"
#include "keystore/keystore.h"
#include "testlib.h"

#define MASTER_NAME "sirius"

static struct kr_test_redis g_master, g_replica;
static int g_sentinel_port;
static pid_t g_sentinel;
static char g_sentinel_addr[64];

/* The pause between two polls (each poll loop has its own deadline). */
static void pause_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
}

static int start_sentinel(void)
{
	const char *dir = kr_test_tmpdir("sentinel");
	char conf[600], log[600];
	char *argv[] = {"redis-sentinel", conf, NULL};
	FILE *f;

	if (!dir)
		return -1;
	g_sentinel_port = kr_test_free_port();
	snprintf(conf, sizeof(conf), "%s/sentinel.conf", dir);
	snprintf(log, sizeof(log), "%s/sentinel.log", dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"bind 127.0.0.1\nport %d\ndir %s\n"
		"sentinel monitor " MASTER_NAME " 127.0.0.1 %d 1\n"
		"sentinel down-after-milliseconds " MASTER_NAME " 500\n"
		"sentinel failover-timeout " MASTER_NAME " 3000\n",
		g_sentinel_port, dir, g_master.port);
	fclose(f);
	g_sentinel = kr_test_spawn(argv, log);
	snprintf(g_sentinel_addr, sizeof(g_sentinel_addr), "127.0.0.1:%d", g_sentinel_port);
	return g_sentinel > 0 && kr_test_wait_port(g_sentinel_port, 10000) ? 0 : -1;
}

static struct kr_keystore *ks_sentinel(const char *master_name, const char *addr)
{
	const char *addrs[] = {addr};
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;
	struct kr_error err = {0};

	kr_keystore_opts_init(&o);
	o.host = NULL;
	o.connect_timeout_ms = 1000;
	o.command_timeout_ms = 2000;
	o.sentinel.addresses = addrs;
	o.sentinel.n_addresses = 1;
	o.sentinel.master_name = master_name;
	kr_keystore_layout_init_defaults(&l);
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_OK);
	return ks;
}

/* One command on the handle's connection (internal API), the reply dropped. */
static enum kr_status call(struct kr_keystore *ks, const char *a0, const char *a1, const char *a2,
			   struct kr_error *err)
{
	struct kr_ks_arg args[3] = {kr_ks_str(a0), kr_ks_str(a1), kr_ks_str(a2)};
	struct kr_ks_cmd cmd = {a2 ? 3 : a1 ? 2 : 1, args, a0};
	redisReply *reply = NULL;
	enum kr_status rc = kr_ks_call(ks, &cmd, &reply, err);

	kr_ks_reply_free(reply);
	return rc;
}

/* The replica has caught up: WAIT for one replica on the master (polled: the replica may
 * still be in its first sync). */
static void wait_replicated(struct kr_keystore *ks)
{
	struct kr_ks_arg args[3] = {kr_ks_str("WAIT"), kr_ks_str("1"), kr_ks_str("500")};
	struct kr_ks_cmd cmd = {3, args, "WAIT"};
	int64_t deadline = kr_mono_ms() + 20000;

	for (;;) {
		redisReply *reply = NULL;
		struct kr_error err = {0};
		long long acked;

		assert_int_equal(kr_ks_call(ks, &cmd, &reply, &err), KR_OK);
		assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
		acked = reply->integer;
		kr_ks_reply_free(reply);
		if (acked == 1)
			return;
		assert_true(kr_mono_ms() < deadline);
	}
}

static int setup(void **state)
{
	char extra[128];

	(void)state;
	if (kr_test_redis_start(&g_master, NULL) != 0)
		return -1;
	snprintf(extra, sizeof(extra), "replicaof 127.0.0.1 %d\n", g_master.port);
	if (kr_test_redis_start(&g_replica, extra) != 0 || start_sentinel() != 0) {
		fprintf(stderr, "cannot start the replica or redis-sentinel\n");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kr_test_stop(g_sentinel, SIGKILL);
	kr_test_redis_stop(&g_master);
	kr_test_redis_stop(&g_replica);
	return 0;
}

static void test_master_found_and_checked(void **state)
{
	struct kr_keystore *ks = ks_sentinel(MASTER_NAME, g_sentinel_addr);
	struct kr_secret *key = NULL;
	struct kr_error err = {0};
	char want[64];
	int active = 0;

	(void)state;
	assert_string_equal(kr_keystore_master(ks), "");
	assert_int_equal(kr_key_generate("sk_", 32, &key, NULL), KR_OK);
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
	snprintf(want, sizeof(want), "127.0.0.1:%d", g_master.port);
	assert_string_equal(kr_keystore_master(ks), want);
	assert_non_null(strstr(kr_keystore_server(ks), want));
	assert_non_null(strstr(kr_keystore_server(ks), "master " MASTER_NAME));
	assert_int_equal(kr_keystore_is_active(ks, key, &active, &err), KR_OK);
	assert_int_equal(active, 1);
	kr_secret_free(key);
	kr_keystore_free(ks);
}

static void test_unknown_master_name(void **state)
{
	struct kr_keystore *ks = ks_sentinel("no-such-master", g_sentinel_addr);
	struct kr_error err = {0};
	char want[80];

	(void)state;
	snprintf(want, sizeof(want), "sentinel %s: knows no master named \"no-such-master\"",
		 g_sentinel_addr);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_ENOTFOUND);
	assert_non_null(strstr(err.msg, want));
	kr_keystore_free(ks);
}

static void test_no_sentinel_answers(void **state)
{
	char addr[64];
	struct kr_keystore *ks;
	struct kr_error err = {0};

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", kr_test_free_port());
	ks = ks_sentinel(MASTER_NAME, addr);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EIO);
	assert_non_null(strstr(err.msg, "sentinel 127.0.0.1:"));
	assert_non_null(strstr(err.msg, "cannot connect"));
	kr_keystore_free(ks);
}

/* Poll `ks` with an activation of `key` until it succeeds; the milliseconds it took. */
static int64_t follow(struct kr_keystore *ks, const struct kr_secret *key, int64_t timeout_ms)
{
	int64_t t0 = kr_mono_ms(), deadline = t0 + timeout_ms;
	struct kr_error err = {0};
	int attempts = 0;

	for (;;) {
		enum kr_status rc = kr_keystore_activate(ks, key, NULL, NULL, &err);

		attempts++;
		if (rc == KR_OK)
			break;
		if (kr_mono_ms() > deadline) {
			print_message("  still failing after %lld ms: %s\n", (long long)timeout_ms,
				      err.msg);
			fail();
		}
		pause_ms(50);
	}
	if (attempts > 1)
		print_message("  followed in %lld ms (%d attempts; last error: %s)\n",
			      (long long)(kr_mono_ms() - t0), attempts,
			      err.msg[0] ? err.msg : "none");
	return kr_mono_ms() - t0;
}

static void test_killed_master_followed(void **state)
{
	struct kr_keystore *ks = ks_sentinel(MASTER_NAME, g_sentinel_addr);
	struct kr_secret *before = NULL, *after = NULL;
	struct kr_error err = {0};
	char want[64];
	int active = 0;

	(void)state;
	assert_int_equal(kr_key_generate("sk_", 32, &before, NULL), KR_OK);
	assert_int_equal(kr_key_generate("sk_", 32, &after, NULL), KR_OK);
	assert_int_equal(kr_keystore_activate(ks, before, NULL, NULL, &err), KR_OK);
	wait_replicated(ks);
	kr_test_redis_stop(&g_master); /* SIGKILL */
	follow(ks, after, 30000);
	snprintf(want, sizeof(want), "127.0.0.1:%d", g_replica.port);
	assert_string_equal(kr_keystore_master(ks), want);
	assert_int_equal(kr_keystore_is_active(ks, before, &active, &err), KR_OK);
	assert_int_equal(active, 1); /* replicated before the kill: kept */
	kr_secret_free(before);
	kr_secret_free(after);
	kr_keystore_free(ks);
}

/* The old master comes back (as a replica), then a manual failover makes it master again:
 * a connection to the demoted server is refused writes (READONLY) or dropped, and followed. */
static void test_manual_failover_followed(void **state)
{
	struct kr_keystore *ks = ks_sentinel(MASTER_NAME, g_sentinel_addr);
	struct kr_keystore *sentinel;
	struct kr_secret *key = NULL;
	struct kr_error err = {0};
	char want[64];
	int64_t deadline;
	enum kr_status rc;

	(void)state;
	assert_int_equal(kr_key_generate("sk_", 32, &key, NULL), KR_OK);
	assert_int_equal(kr_test_redis_restart(&g_master), 0);
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
	/* a raw handle on the sentinel itself (no layout use), to ask for the failover */
	{
		struct kr_keystore_opts o;
		struct kr_keystore_layout l;

		kr_keystore_opts_init(&o);
		o.port = g_sentinel_port;
		kr_keystore_layout_init_defaults(&l);
		assert_int_equal(kr_keystore_new(&o, &l, &sentinel, &err), KR_OK);
	}
	/* the sentinel must see the old master as a healthy replica first: retried until then */
	deadline = kr_mono_ms() + 30000;
	while ((rc = call(sentinel, "SENTINEL", "FAILOVER", MASTER_NAME, &err)) != KR_OK) {
		assert_true(kr_mono_ms() < deadline);
		pause_ms(100);
	}
	snprintf(want, sizeof(want), "127.0.0.1:%d", g_master.port);
	deadline = kr_mono_ms() + 30000;
	while (strcmp(kr_keystore_master(ks), want) != 0) {
		assert_true(kr_mono_ms() < deadline);
		follow(ks, key, 30000);
		pause_ms(50);
	}
	kr_keystore_free(sentinel);
	kr_secret_free(key);
	kr_keystore_free(ks);
}

/* ---- a demoted master that keeps its clients: READONLY ---- */

/*
 * A stand-in sentinel: answers every command with the master it is told to name (an array
 * of host and port), so the test decides what "the sentinels" say.
 */
struct fake_sentinel {
	int fd, port;
	volatile int master_port;
	volatile int stop;
	pthread_t thread;
};

static void *fake_sentinel_run(void *arg)
{
	struct fake_sentinel *f = arg;

	while (!f->stop) {
		int c = accept(f->fd, NULL, NULL);
		char buf[512], out[128];
		ssize_t n;

		if (c < 0)
			continue;
		n = recv(c, buf, sizeof(buf), 0); /* one command a connection is all we serve */
		if (n > 0) {
			char port[16];

			snprintf(port, sizeof(port), "%d", f->master_port);
			snprintf(out, sizeof(out), "*2\r\n$9\r\n127.0.0.1\r\n$%zu\r\n%s\r\n",
				 strlen(port), port);
			if (send(c, out, strlen(out), MSG_NOSIGNAL) < 0)
				n = 0;
		}
		close(c);
	}
	return NULL;
}

static void fake_sentinel_start(struct fake_sentinel *f, int master_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct timeval tv = {0, 100000};

	memset(f, 0, sizeof(*f));
	f->master_port = master_port;
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sa, &len), 0);
	f->port = ntohs(sa.sin_port);
	setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept wakes for stop */
	assert_int_equal(pthread_create(&f->thread, NULL, fake_sentinel_run, f), 0);
}

static void fake_sentinel_stop(struct fake_sentinel *f)
{
	f->stop = 1;
	pthread_join(f->thread, NULL);
	close(f->fd);
}

static void raw_command(int port, const char *cmd)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	r = redisCommand(c, cmd);
	assert_non_null(r);
	freeReplyObject(r);
	redisFree(c);
}

static void test_readonly_after_demotion_followed(void **state)
{
	struct kr_test_redis a, b;
	struct fake_sentinel f;
	struct kr_keystore *ks;
	struct kr_secret *k1 = NULL, *k2 = NULL;
	struct kr_error err = {0};
	char addr[64], want[64], cmd[64];
	int active = 0;

	(void)state;
	assert_int_equal(kr_test_redis_start(&a, NULL), 0);
	assert_int_equal(kr_test_redis_start(&b, NULL), 0);
	fake_sentinel_start(&f, a.port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f.port);
	ks = ks_sentinel(MASTER_NAME, addr);
	assert_int_equal(kr_key_generate("sk_", 32, &k1, NULL), KR_OK);
	assert_int_equal(kr_key_generate("sk_", 32, &k2, NULL), KR_OK);
	assert_int_equal(kr_keystore_activate(ks, k1, NULL, NULL, &err), KR_OK);
	/* a is demoted (its clients stay connected) and b is the master the sentinels name */
	snprintf(cmd, sizeof(cmd), "REPLICAOF 127.0.0.1 %d", b.port);
	raw_command(a.port, cmd);
	f.master_port = b.port;
	/* the write on the old connection gets READONLY; the master is asked for again */
	assert_int_equal(kr_keystore_activate(ks, k2, NULL, NULL, &err), KR_OK);
	snprintf(want, sizeof(want), "127.0.0.1:%d", b.port);
	assert_string_equal(kr_keystore_master(ks), want);
	assert_int_equal(kr_keystore_is_active(ks, k2, &active, &err), KR_OK);
	assert_int_equal(active, 1);
	kr_keystore_free(ks);
	kr_secret_free(k1);
	kr_secret_free(k2);
	fake_sentinel_stop(&f);
	kr_test_redis_stop(&a);
	kr_test_redis_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_master_found_and_checked),
	    cmocka_unit_test(test_unknown_master_name),
	    cmocka_unit_test(test_no_sentinel_answers),
	    cmocka_unit_test(test_killed_master_followed),
	    cmocka_unit_test(test_manual_failover_followed),
	    cmocka_unit_test(test_readonly_after_demotion_followed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
