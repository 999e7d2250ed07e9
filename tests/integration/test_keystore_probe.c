/* test_keystore_probe.c - kr_keystore_probe, the idle check of many KeyRotations in one
 * round trip, against a real redis-server: each kind of drift is told apart, a tenant's
 * broken key does not hide the others', more than one chunk, and a dead server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "testlib.h"

/* More than two chunks, so a verdict cannot come from the wrong reply. */
#define NTENANTS (2 * KR_PROBE_CHUNK + 44)

struct tenant {
	char bootstrap[64];
	struct kr_keystore *ks;
	struct kr_keystore_layout *layout; /* kr_keystore_layout_copy: what the reconciler keeps */
	struct kr_secret *key;
	char id[KR_KEY_ID_LEN + 1];
	char member[200];
};

static struct kr_test_redis g_redis;
static struct tenant g_t[NTENANTS];

static void raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	freeReplyObject(r);
}

/* Tenant i: its own bootstrapKey, layouts alternating, one shared activeSet and server. */
static void tenant_open(struct tenant *t, int i)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout lay, *l = &lay;
	struct kr_key_meta meta = {.label = "probe", .rotation = "ns/t"};

	kr_keystore_opts_init(&o);
	o.port = g_redis.port;
	o.connect_timeout_ms = 2000;
	o.command_timeout_ms = 3000;
	kr_keystore_layout_init_defaults(l);
	l->store_as = i % 2 ? KR_STORE_PLAINTEXT : KR_STORE_SHA256;
	snprintf(t->bootstrap, sizeof(t->bootstrap), "tenant%d:bootstrap", i);
	l->bootstrap_key = t->bootstrap;
	assert_int_equal(kr_keystore_new(&o, l, &t->ks, NULL), KR_OK);
	/* what the reconciler keeps of an idle KeyRotation's store: its own strings */
	t->layout = kr_keystore_layout_copy(t->ks);
	assert_non_null(t->layout);
	assert_string_equal(t->layout->bootstrap_key, t->bootstrap);
	assert_ptr_not_equal(t->layout->bootstrap_key, t->bootstrap);
	assert_int_equal(t->layout->store_as, l->store_as);
	assert_int_equal(kr_key_generate("sk_", 32, &t->key, NULL), KR_OK);
	kr_key_id(t->key, t->id);
	if (l->store_as == KR_STORE_SHA256)
		kr_key_hash_hex(t->key, t->member);
	else
		snprintf(t->member, sizeof(t->member), "%s", kr_secret_data(t->key));
	assert_int_equal(kr_keystore_activate(t->ks, t->key, &meta, NULL, NULL), KR_OK);
	assert_int_equal(kr_keystore_set_bootstrap(t->ks, t->id, NULL, NULL), KR_OK);
}

static int group_setup(void **state)
{
	(void)state;
	if (kr_test_redis_start(&g_redis, NULL) != 0)
		return -1;
	for (int i = 0; i < NTENANTS; i++)
		tenant_open(&g_t[i], i);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NTENANTS; i++) {
		kr_keystore_free(g_t[i].ks);
		free(g_t[i].layout);
		kr_secret_free(g_t[i].key);
	}
	kr_test_redis_stop(&g_redis);
	return 0;
}

static struct kr_keystore_probe *probe_all(enum kr_status want, struct kr_error *err)
{
	struct kr_keystore_probe *p = calloc(NTENANTS, sizeof(*p));

	assert_non_null(p);
	for (int i = 0; i < NTENANTS; i++)
		p[i] = (struct kr_keystore_probe){g_t[i].layout, g_t[i].key, g_t[i].id, 0, ""};
	assert_int_equal(kr_keystore_probe(g_t[0].ks, p, NTENANTS, err), want);
	for (int i = 0; i < NTENANTS; i++) /* no verdict ever names a key */
		assert_null(strstr(p[i].why, kr_secret_data(g_t[i].key)));
	return p;
}

static void test_every_drift_is_told_apart(void **state)
{
	static const struct {
		int tenant;
		const char *why;
	} broken[] = {
	    {5, "the current key is not active"},
	    {6, "the current key's metadata is not active"},
	    {7, "the bootstrap marker moved"},
	    {8, "WRONGTYPE"},
	    {KR_PROBE_CHUNK + 3, "the bootstrap marker moved"},
	    {2 * KR_PROBE_CHUNK + 1, "the current key is not active"},
	};
	redisContext *c = redisConnect("127.0.0.1", g_redis.port);
	struct kr_keystore_probe *p;
	struct kr_error err;
	char meta[300];

	(void)state;
	assert_non_null(c);
	p = probe_all(KR_OK, &err);
	for (int i = 0; i < NTENANTS; i++)
		assert_true(p[i].ok);
	free(p);

	raw(c, "SREM api_keys:active %s", g_t[5].member);
	snprintf(meta, sizeof(meta), "api_key:%s:meta", g_t[6].member);
	raw(c, "HSET %s status revoked", meta);
	raw(c, "SET %s %s", g_t[7].bootstrap, g_t[9].id);
	raw(c, "DEL %s", g_t[8].bootstrap);
	raw(c, "SADD %s x", g_t[8].bootstrap);
	raw(c, "DEL %s", g_t[KR_PROBE_CHUNK + 3].bootstrap);
	raw(c, "SREM api_keys:active %s", g_t[2 * KR_PROBE_CHUNK + 1].member);
	p = probe_all(KR_OK, &err);
	for (int i = 0; i < NTENANTS; i++) {
		const char *why = NULL;

		for (size_t b = 0; b < sizeof(broken) / sizeof(broken[0]); b++)
			if (broken[b].tenant == i)
				why = broken[b].why;
		if (!why) {
			assert_true(p[i].ok);
			continue;
		}
		assert_false(p[i].ok);
		if (!strstr(p[i].why, why))
			fail_msg("tenant %d: \"%s\", want \"%s\"", i, p[i].why, why);
	}
	free(p);
	redisFree(c);
}

/* One connection lent to KeyRotations of other layouts (the reconciler's pool). */
static void test_adopt_layout_shares_connection(void **state)
{
	struct kr_keystore *conn = NULL;
	char marker[64];

	(void)state;
	assert_int_equal(kr_keystore_dup(g_t[0].ks, &conn, NULL), KR_OK);
	for (int i = 10; i < 14; i++) { /* both layouts, each its own bootstrapKey */
		int active = -1;

		assert_int_equal(kr_keystore_adopt_layout(conn, g_t[i].ks, NULL), KR_OK);
		assert_int_equal(kr_keystore_is_active(conn, g_t[i].key, &active, NULL), KR_OK);
		assert_int_equal(active, 1);
		assert_int_equal(kr_keystore_get_bootstrap(conn, marker, sizeof(marker), NULL),
				 KR_OK);
		assert_string_equal(marker, g_t[i].id);
	}
	kr_keystore_free(conn);
}

/* Last: stops the server. Every probe fails with the server's error, none is ok. */
static void test_dead_server_fails_every_probe(void **state)
{
	struct kr_keystore_probe *p;
	struct kr_error err;
	char server[64];

	(void)state;
	kr_test_redis_stop(&g_redis);
	p = probe_all(KR_EIO, &err);
	snprintf(server, sizeof(server), "127.0.0.1:%d", g_redis.port);
	assert_non_null(strstr(err.msg, server));
	for (int i = 0; i < NTENANTS; i++) {
		assert_false(p[i].ok);
		assert_non_null(strstr(p[i].why, server));
	}
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_adopt_layout_shares_connection),
	    cmocka_unit_test(test_every_drift_is_told_apart),
	    cmocka_unit_test(test_dead_server_fails_every_probe),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
