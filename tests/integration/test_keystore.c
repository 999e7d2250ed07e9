/* test_keystore.c - the Valkey key store against a real redis-server: every operation in both
 * layouts, auth, races, and the runbooks' incidents (data loss, marker drift, wrong types,
 * a server killed mid-operation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"
#include "testlib.h"

static struct kr_test_redis g_redis;
static const enum kr_store_as g_layouts[] = {KR_STORE_SHA256, KR_STORE_PLAINTEXT};
#define NLAYOUTS (sizeof(g_layouts) / sizeof(g_layouts[0]))

/* ---- helpers ---- */

static redisContext *raw_connect(const struct kr_test_redis *r)
{
	redisContext *c = redisConnect("127.0.0.1", r->port);

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	return c;
}

/* Run a command on a raw connection; returns the reply (caller frees). */
static redisReply *raw(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static void raw_ok(redisContext *c, const char *cmd)
{
	freeReplyObject(raw(c, cmd));
}

static long long raw_int(redisContext *c, const char *fmt, const char *a, const char *b)
{
	redisReply *r = raw(c, fmt, a, b);
	long long v;

	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* HGET as a malloc'd string, NULL when absent. */
static char *raw_hget(redisContext *c, const char *key, const char *field)
{
	redisReply *r = raw(c, "HGET %s %s", key, field);
	char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;

	freeReplyObject(r);
	return v;
}

static void flushall(void)
{
	redisContext *c = raw_connect(&g_redis);

	raw_ok(c, "FLUSHALL");
	redisFree(c);
}

static struct kr_keystore *ks_open(int port, enum kr_store_as as, const char *user,
				   const char *password, struct kr_error *err)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_secret *pw = password ? kr_secret_new(password, strlen(password)) : NULL;
	struct kr_keystore *ks = NULL;

	kr_keystore_opts_init(&o);
	o.port = port;
	o.username = user;
	o.password = pw;
	o.connect_timeout_ms = 2000;
	o.command_timeout_ms = 3000;
	kr_keystore_layout_init_defaults(&l);
	l.store_as = as;
	assert_int_equal(kr_keystore_new(&o, &l, &ks, err), KR_OK);
	kr_secret_free(pw);
	return ks;
}

static struct kr_keystore *ks_default(enum kr_store_as as)
{
	return ks_open(g_redis.port, as, NULL, NULL, NULL);
}

static struct kr_secret *new_key(void)
{
	struct kr_secret *k = NULL;

	assert_int_equal(kr_key_generate("sk_", 32, &k, NULL), KR_OK);
	return k;
}

/* The member and metadata key name this layout uses for `key`. */
static void names_for(enum kr_store_as as, const struct kr_secret *key, char *member, char *meta)
{
	if (as == KR_STORE_SHA256)
		kr_key_hash_hex(key, member);
	else
		snprintf(member, 200, "%s", kr_secret_data(key));
	snprintf(meta, 300, "api_key:%s:meta", member);
}

static int is_active(struct kr_keystore *ks, const struct kr_secret *key)
{
	int active = -1;

	assert_int_equal(kr_keystore_is_active(ks, key, &active, NULL), KR_OK);
	return active;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return kr_test_redis_start(&g_redis, NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	kr_test_redis_stop(&g_redis);
	return 0;
}

/* ---- operations, both layouts ---- */

static void test_activate_verify_revoke(void **state)
{
	(void)state;
	for (size_t li = 0; li < NLAYOUTS; li++) {
		struct kr_keystore *ks = ks_default(g_layouts[li]);
		redisContext *c = raw_connect(&g_redis);
		struct kr_secret *key = new_key();
		struct kr_key_meta meta = {"2024-Q1-Rotation", "sirius/sirius-service-key", NULL};
		struct kr_activate_result res = {-1, -1};
		enum kr_revoke_outcome out;
		char member[200], mk[300], id[13], *created, *v;

		flushall();
		names_for(g_layouts[li], key, member, mk);
		kr_key_id(key, id);
		assert_int_equal(is_active(ks, key), 0);
		assert_int_equal(kr_keystore_activate(ks, key, &meta, &res, NULL), KR_OK);
		assert_int_equal(res.added, 1);
		assert_int_equal(res.reactivated, 0);
		assert_int_equal(is_active(ks, key), 1);
		assert_int_equal(raw_int(c, "SISMEMBER %s %s", "api_keys:active", member), 1);
		created = raw_hget(c, mk, "created_at");
		assert_non_null(created);
		assert_int_equal(strlen(created), 20); /* 2024-05-01T03:00:00Z */
		v = raw_hget(c, mk, "label");
		assert_string_equal(v, "2024-Q1-Rotation");
		free(v);
		v = raw_hget(c, mk, "rotation");
		assert_string_equal(v, "sirius/sirius-service-key");
		free(v);
		v = raw_hget(c, mk, "status");
		assert_string_equal(v, "active");
		free(v);
		v = raw_hget(c, mk, "id");
		assert_string_equal(v, id);
		free(v);

		/* idempotent: a second activation adds nothing and keeps created_at */
		assert_int_equal(kr_keystore_activate(ks, key, NULL, &res, NULL), KR_OK);
		assert_int_equal(res.added, 0);
		v = raw_hget(c, mk, "created_at");
		assert_string_equal(v, created);
		free(v);
		v = raw_hget(c, mk, "label"); /* NULL meta leaves the label alone */
		assert_string_equal(v, "2024-Q1-Rotation");
		free(v);

		assert_int_equal(kr_keystore_revoke_key(ks, key, &out, NULL), KR_OK);
		assert_int_equal(out, KR_REVOKE_DONE);
		assert_int_equal(is_active(ks, key), 0);
		v = raw_hget(c, mk, "status");
		assert_string_equal(v, "revoked");
		free(v);
		char *revoked_at = raw_hget(c, mk, "revoked_at");
		assert_non_null(revoked_at);
		/* idempotent: already revoked, revoked_at kept */
		assert_int_equal(kr_keystore_revoke_key(ks, key, &out, NULL), KR_OK);
		assert_int_equal(out, KR_REVOKE_ALREADY);
		v = raw_hget(c, mk, "revoked_at");
		assert_string_equal(v, revoked_at);
		free(v);
		free(revoked_at);

		/* re-activation clears the revocation */
		assert_int_equal(kr_keystore_activate(ks, key, NULL, &res, NULL), KR_OK);
		assert_int_equal(res.added, 1);
		assert_int_equal(res.reactivated, 1);
		assert_null(raw_hget(c, mk, "revoked_at"));

		free(created);
		kr_secret_free(key);
		redisFree(c);
		kr_keystore_free(ks);
	}
}

static void test_revoke_unknown_writes_nothing(void **state)
{
	(void)state;
	for (size_t li = 0; li < NLAYOUTS; li++) {
		struct kr_keystore *ks = ks_default(g_layouts[li]);
		redisContext *c = raw_connect(&g_redis);
		struct kr_secret *key = new_key();
		enum kr_revoke_outcome out = KR_REVOKE_DONE;
		redisReply *r;

		flushall();
		assert_int_equal(kr_keystore_revoke_key(ks, key, &out, NULL), KR_OK);
		assert_int_equal(out, KR_REVOKE_ABSENT);
		r = raw(c, "DBSIZE");
		assert_int_equal(r->integer, 0);
		freeReplyObject(r);
		kr_secret_free(key);
		redisFree(c);
		kr_keystore_free(ks);
	}
}

static void test_list_and_find_member(void **state)
{
	(void)state;
	for (size_t li = 0; li < NLAYOUTS; li++) {
		struct kr_keystore *ks = ks_default(g_layouts[li]);
		struct kr_secret *a = new_key(), *b = new_key(), *member = NULL;
		struct kr_key_meta ma = {"old", "cli", "2024-01-01T00:00:00Z"};
		struct kr_key_meta mb = {"new", "cli", "2024-04-01T00:00:00Z"};
		struct kr_key_info *infos = NULL;
		enum kr_revoke_outcome out;
		char ida[13], idb[13];
		struct kr_error err;
		size_t n = 0;

		flushall();
		kr_key_id(a, ida);
		kr_key_id(b, idb);
		assert_int_equal(kr_keystore_list(ks, &infos, &n, &err), KR_OK);
		assert_int_equal(n, 0);
		assert_int_equal(kr_keystore_activate(ks, a, &ma, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_activate(ks, b, &mb, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_find_member(ks, ida, &member, &err), KR_OK);
		assert_int_equal(kr_keystore_revoke_member(ks, member, &out, &err), KR_OK);
		assert_int_equal(out, KR_REVOKE_DONE);
		kr_secret_free(member);

		assert_int_equal(kr_keystore_list(ks, &infos, &n, &err), KR_OK);
		assert_int_equal(n, 2); /* the revoked key is listed through its metadata */
		assert_string_equal(infos[0].id, ida);
		assert_int_equal(infos[0].active, 0);
		assert_string_equal(infos[0].status, "revoked");
		assert_string_equal(infos[0].label, "old");
		assert_non_null(infos[0].revoked_at);
		assert_string_equal(infos[1].id, idb);
		assert_int_equal(infos[1].active, 1);
		assert_string_equal(infos[1].status, "active");
		assert_string_equal(infos[1].created_at, "2024-04-01T00:00:00Z");
		assert_null(infos[1].last_used_at);
		kr_key_info_free_array(infos, n);

		assert_int_equal(kr_keystore_find_member(ks, "000000000000", &member, &err),
				 KR_ENOTFOUND);
		assert_non_null(strstr(err.msg, "no key with id 000000000000"));
		assert_int_equal(kr_keystore_find_member(ks, "xyz", &member, &err), KR_EINVAL);
		kr_secret_free(a);
		kr_secret_free(b);
		kr_keystore_free(ks);
	}
}

/* The legacy layout as the seeds' key_manager wrote it: raw key as member and in the name. */
static void test_legacy_plaintext_seed_data(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_PLAINTEXT);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *legacy = kr_secret_new("hc_legacy_Key-1234.x", 20), *member = NULL;
	struct kr_key_info *infos = NULL;
	char id[13];
	size_t n = 0;

	(void)state;
	flushall();
	kr_key_id(legacy, id);
	raw_ok(c, "SADD api_keys:active hc_legacy_Key-1234.x");
	raw_ok(c, "HSET api_key:hc_legacy_Key-1234.x:meta created_at 2024-01-02T00:00:00Z "
		  "label 2024-Q1-Rotation");
	assert_int_equal(is_active(ks, legacy), 1);
	assert_int_equal(kr_keystore_list(ks, &infos, &n, NULL), KR_OK);
	assert_int_equal(n, 1);
	assert_string_equal(infos[0].id, id);
	assert_string_equal(infos[0].label, "2024-Q1-Rotation");
	assert_int_equal(infos[0].active, 1);
	assert_null(infos[0].status); /* the legacy writer kept no status */
	kr_key_info_free_array(infos, n);
	assert_int_equal(kr_keystore_find_member(ks, id, &member, NULL), KR_OK);
	assert_true(kr_secret_equal(member, legacy));
	assert_int_equal(kr_keystore_revoke_member(ks, member, NULL, NULL), KR_OK);
	assert_int_equal(is_active(ks, legacy), 0);
	kr_secret_free(member);
	kr_secret_free(legacy);
	redisFree(c);
	kr_keystore_free(ks);
}

static void test_find_member_ambiguous(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *member = NULL;
	struct kr_error err;

	(void)state;
	flushall();
	raw_ok(c, "SADD api_keys:active "
		  "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001 "
		  "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000002");
	assert_int_equal(kr_keystore_find_member(ks, "aaaaaaaaaaaa", &member, &err), KR_ECONFLICT);
	assert_null(member);
	assert_non_null(strstr(err.msg, "2 keys have id aaaaaaaaaaaa"));
	redisFree(c);
	kr_keystore_free(ks);
}

static void test_bootstrap_marker(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	char value[64];
	int changed = -1;
	struct kr_error err;

	(void)state;
	flushall();
	assert_int_equal(kr_keystore_get_bootstrap(ks, value, sizeof(value), NULL), KR_OK);
	assert_string_equal(value, "");
	assert_int_equal(kr_keystore_set_bootstrap(ks, "3f9a0c1d2e4b", &changed, NULL), KR_OK);
	assert_int_equal(changed, 1);
	assert_int_equal(kr_keystore_set_bootstrap(ks, "3f9a0c1d2e4b", &changed, NULL), KR_OK);
	assert_int_equal(changed, 0);
	assert_int_equal(kr_keystore_get_bootstrap(ks, value, sizeof(value), NULL), KR_OK);
	assert_string_equal(value, "3f9a0c1d2e4b");
	assert_int_equal(kr_keystore_set_bootstrap(ks, "not-an-id", &changed, &err), KR_EINVAL);
	kr_keystore_free(ks);
}

/* ---- reconcile: the runbooks' incidents ---- */

static void test_reconcile_after_data_loss(void **state)
{
	(void)state;
	for (size_t li = 0; li < NLAYOUTS; li++) {
		struct kr_keystore *ks = ks_default(g_layouts[li]);
		redisContext *c = raw_connect(&g_redis);
		struct kr_secret *cur = new_key(), *prev = new_key();
		const struct kr_secret *keys[] = {cur, prev, cur}; /* duplicates count once */
		struct kr_keystore_repair rep;
		char cid[13], value[32], member[200], mk[300], *v;
		struct kr_buf text;

		flushall();
		kr_key_id(cur, cid);
		assert_int_equal(kr_keystore_activate(ks, prev, NULL, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_activate(ks, cur, NULL, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_set_bootstrap(ks, cid, NULL, NULL), KR_OK);
		raw_ok(c, "FLUSHALL"); /* Valkey data loss */
		assert_int_equal(is_active(ks, cur), 0);

		kr_keystore_repair_init(&rep);
		assert_int_equal(kr_keystore_reconcile(ks, keys, 3, cid, "sirius/key", &rep, NULL),
				 KR_OK);
		assert_int_equal(rep.n, 2);
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(rep.items[i].readded, 1);
			assert_int_equal(rep.items[i].fields, KR_META_ID | KR_META_CREATED_AT |
								  KR_META_STATUS |
								  KR_META_ROTATION);
		}
		assert_string_equal(rep.items[0].id, cid);
		assert_int_equal(rep.marker_fixed, 1);
		assert_int_equal(rep.unknown_members, 0);
		assert_int_equal(is_active(ks, cur), 1);
		assert_int_equal(is_active(ks, prev), 1);
		assert_int_equal(kr_keystore_get_bootstrap(ks, value, sizeof(value), NULL), KR_OK);
		assert_string_equal(value, cid);
		names_for(g_layouts[li], cur, member, mk);
		v = raw_hget(c, mk, "rotation");
		assert_string_equal(v, "sirius/key");
		free(v);

		/* a second pass finds nothing to do */
		assert_int_equal(kr_keystore_reconcile(ks, keys, 3, cid, "sirius/key", &rep, NULL),
				 KR_OK);
		assert_int_equal(kr_keystore_repair_count(&rep), 0);
		kr_buf_init(&text);
		assert_int_equal(kr_keystore_repair_describe(&rep, "api_keys:active", &text),
				 KR_OK);
		assert_string_equal(text.data, "in sync");
		kr_buf_release(&text);
		kr_keystore_repair_release(&rep);
		kr_secret_free(cur);
		kr_secret_free(prev);
		redisFree(c);
		kr_keystore_free(ks);
	}
}

static void test_reconcile_marker_present_key_missing(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	struct kr_secret *cur = new_key();
	const struct kr_secret *keys[] = {cur};
	struct kr_keystore_repair rep;
	char cid[13];

	(void)state;
	flushall();
	kr_key_id(cur, cid);
	assert_int_equal(kr_keystore_set_bootstrap(ks, cid, NULL, NULL), KR_OK);
	kr_keystore_repair_init(&rep);
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, cid, NULL, &rep, NULL), KR_OK);
	assert_int_equal(rep.marker_fixed, 0);
	assert_int_equal(rep.items[0].readded, 1);
	assert_int_equal(is_active(ks, cur), 1);
	kr_keystore_repair_release(&rep);
	kr_secret_free(cur);
	kr_keystore_free(ks);
}

static void test_reconcile_key_present_marker_missing_or_stale(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *cur = new_key();
	const struct kr_secret *keys[] = {cur};
	struct kr_key_meta meta = {"l", "sirius/key", NULL};
	struct kr_keystore_repair rep;
	char cid[13], value[32];

	(void)state;
	flushall();
	kr_key_id(cur, cid);
	assert_int_equal(kr_keystore_activate(ks, cur, &meta, NULL, NULL), KR_OK);
	kr_keystore_repair_init(&rep);
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, cid, "sirius/key", &rep, NULL), KR_OK);
	assert_int_equal(rep.marker_fixed, 1);
	assert_int_equal(rep.items[0].readded, 0);
	assert_int_equal(rep.items[0].fields, 0);
	/* a stale marker (another key id, or the legacy "1" flag) is fixed too */
	raw_ok(c, "SET api_keys:bootstrap 1");
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, cid, NULL, &rep, NULL), KR_OK);
	assert_int_equal(rep.marker_fixed, 1);
	assert_int_equal(kr_keystore_get_bootstrap(ks, value, sizeof(value), NULL), KR_OK);
	assert_string_equal(value, cid);
	kr_keystore_repair_release(&rep);
	kr_secret_free(cur);
	redisFree(c);
	kr_keystore_free(ks);
}

static void test_reconcile_repairs_metadata_and_counts_unknown(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *cur = new_key();
	const struct kr_secret *keys[] = {cur};
	struct kr_keystore_repair rep;
	char member[200], mk[300], *v;
	struct kr_buf text;

	(void)state;
	flushall();
	names_for(KR_STORE_SHA256, cur, member, mk);
	/* in the set, but metadata says revoked; and two other tenants' members */
	freeReplyObject(raw(c, "SADD api_keys:active %s other1 other2", member));
	freeReplyObject(raw(c,
			    "HSET %s status revoked revoked_at 2024-01-01T00:00:00Z "
			    "created_at 2023-01-01T00:00:00Z",
			    mk));
	kr_keystore_repair_init(&rep);
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, NULL, NULL, &rep, NULL), KR_OK);
	assert_int_equal(rep.items[0].readded, 0);
	assert_int_equal(rep.items[0].fields, KR_META_ID | KR_META_STATUS | KR_META_REVOKED_AT);
	assert_int_equal(rep.marker_fixed, 0);
	assert_int_equal(rep.unknown_members, 2);
	assert_int_equal(raw_int(c, "SCARD %s%s", "api_keys:active", ""), 3); /* never removed */
	v = raw_hget(c, mk, "created_at");
	assert_string_equal(v, "2023-01-01T00:00:00Z"); /* kept */
	free(v);
	assert_int_equal(raw_int(c, "EXISTS %s%s", "api_keys:bootstrap", ""), 0); /* not asked */
	kr_buf_init(&text);
	assert_int_equal(kr_keystore_repair_describe(&rep, "api_keys:active", &text), KR_OK);
	assert_non_null(strstr(text.data, "(id, status, revoked_at)"));
	assert_non_null(strstr(text.data, "2 members of api_keys:active not known here"));
	kr_buf_release(&text);
	kr_keystore_repair_release(&rep);
	kr_secret_free(cur);
	redisFree(c);
	kr_keystore_free(ks);
}

/* inspect: membership, metadata, last use, set size and marker in one round trip. */
static void test_inspect_both_layouts(void **state)
{
	(void)state;
	for (int as = KR_STORE_SHA256; as <= KR_STORE_PLAINTEXT; as++) {
		struct kr_keystore *ks = ks_default((enum kr_store_as)as);
		redisContext *c = raw_connect(&g_redis);
		struct kr_secret *a = new_key(), *b = new_key(), *gone = new_key();
		const struct kr_secret *keys[] = {a, b, gone};
		struct kr_key_state st[3];
		struct kr_store_state store;
		struct kr_key_meta meta = {.label = "t", .rotation = "ns/n"};
		char member[200], mk[300], id[13];
		struct kr_error err;

		flushall();
		assert_int_equal(kr_keystore_activate(ks, a, &meta, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_activate(ks, b, &meta, NULL, NULL), KR_OK);
		assert_int_equal(kr_keystore_revoke_key(ks, b, NULL, NULL), KR_OK);
		names_for((enum kr_store_as)as, a, member, mk);
		freeReplyObject(raw(c, "HSET %s last_used_at 2026-01-02T03:04:05Z", mk));
		freeReplyObject(raw(c, "SADD api_keys:active other-tenant"));
		kr_key_id(a, id);
		assert_int_equal(kr_keystore_set_bootstrap(ks, id, NULL, NULL), KR_OK);

		assert_int_equal(kr_keystore_inspect(ks, keys, 3, st, &store, &err), KR_OK);
		assert_true(st[0].active && st[0].has_meta && st[0].meta_active);
		assert_string_equal(st[0].last_used_at, "2026-01-02T03:04:05Z");
		assert_true(!st[1].active && st[1].has_meta && !st[1].meta_active);
		assert_string_equal(st[1].last_used_at, "");
		assert_true(!st[2].active && !st[2].has_meta);
		assert_int_equal(store.active_members, 2);
		assert_string_equal(store.marker, id);

		/* A wrong type is an error naming the set, never a key. */
		raw_ok(c, "SET api_keys:active oops");
		assert_int_equal(kr_keystore_inspect(ks, keys, 1, st, &store, &err), KR_ESTORE);
		assert_non_null(strstr(err.msg, "WRONGTYPE"));
		assert_null(strstr(err.msg, kr_secret_data(a)));
		kr_secret_free(a);
		kr_secret_free(b);
		kr_secret_free(gone);
		redisFree(c);
		kr_keystore_free(ks);
	}
}

/* ---- errors: wrong types, auth, timeouts, dead servers ---- */

static void test_wrongtype_active_set(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *key = new_key();
	const struct kr_secret *keys[] = {key};
	struct kr_keystore_repair rep;
	struct kr_key_info *infos = NULL;
	char server[64], id[13];
	struct kr_error err;
	size_t n;
	redisReply *r;
	int active;

	(void)state;
	flushall();
	kr_key_id(key, id);
	snprintf(server, sizeof(server), "valkey 127.0.0.1:%d", g_redis.port);
	raw_ok(c, "SET api_keys:active oops");
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, server));
	assert_non_null(strstr(err.msg, "WRONGTYPE activeSet api_keys:active holds a string"));
	r = raw(c, "DBSIZE"); /* nothing half-written */
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_int_equal(kr_keystore_is_active(ks, key, &active, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, "activeSet \"api_keys:active\""));
	assert_non_null(strstr(err.msg, "WRONGTYPE"));
	assert_int_equal(kr_keystore_revoke_key(ks, key, NULL, &err), KR_ESTORE);
	kr_keystore_repair_init(&rep);
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, id, NULL, &rep, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, "holds a string"));
	assert_int_equal(kr_keystore_list(ks, &infos, &n, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, server));

	/* metadata and bootstrap keys of the wrong type are named by key id / key name */
	raw_ok(c, "DEL api_keys:active");
	raw_ok(c, "SADD api_keys:bootstrap x");
	assert_int_equal(kr_keystore_set_bootstrap(ks, id, NULL, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, "bootstrapKey api_keys:bootstrap holds a set"));
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, id, NULL, &rep, &err), KR_ESTORE);
	kr_keystore_repair_release(&rep);
	kr_secret_free(key);
	redisFree(c);
	kr_keystore_free(ks);
}

static void test_wrongtype_meta_in_plaintext_never_names_key(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_PLAINTEXT);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *key = new_key();
	char member[200], mk[300], id[13];
	struct kr_error err;

	(void)state;
	flushall();
	kr_key_id(key, id);
	names_for(KR_STORE_PLAINTEXT, key, member, mk);
	freeReplyObject(raw(c, "SET %s x", mk));
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_ESTORE);
	assert_non_null(strstr(err.msg, "metadata of key"));
	assert_non_null(strstr(err.msg, id));
	assert_null(strstr(err.msg, kr_secret_data(key)));
	kr_secret_free(key);
	redisFree(c);
	kr_keystore_free(ks);
}

static void test_auth_requirepass(void **state)
{
	struct kr_test_redis r;
	struct kr_keystore *ks;
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_test_redis_start(&r, "requirepass s3cret-pass\n"), 0);
	ks = ks_open(r.port, KR_STORE_SHA256, NULL, NULL, NULL);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EAUTH);
	assert_non_null(strstr(err.msg, "NOAUTH"));
	kr_keystore_free(ks);
	ks = ks_open(r.port, KR_STORE_SHA256, NULL, "wrong", NULL);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EAUTH);
	assert_non_null(strstr(err.msg, "AUTH as user \"default\" refused"));
	assert_null(strstr(err.msg, "wrong"));
	kr_keystore_free(ks);
	ks = ks_open(r.port, KR_STORE_SHA256, NULL, "s3cret-pass", NULL);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_OK);
	kr_keystore_free(ks);
	kr_test_redis_stop(&r);
}

static void test_auth_acl_user_and_database(void **state)
{
	struct kr_test_redis r;
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;
	struct kr_secret *pw = kr_secret_new("rot8-pass", 9), *key = new_key();
	struct kr_error err;
	redisContext *c;
	redisReply *rep;

	(void)state;
	assert_int_equal(kr_test_redis_start(&r, "user keyrot on >rot8-pass ~* +@all\n"
						 "user default off\n"),
			 0);
	ks = ks_open(r.port, KR_STORE_SHA256, "keyrot", "bad-pass", NULL);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EAUTH);
	assert_non_null(strstr(err.msg, "AUTH as user \"keyrot\" refused"));
	assert_non_null(strstr(err.msg, "WRONGPASS"));
	kr_keystore_free(ks);

	kr_keystore_opts_init(&o);
	o.port = r.port;
	o.username = "keyrot";
	o.password = pw;
	o.database = 3;
	kr_keystore_layout_init_defaults(&l);
	assert_int_equal(kr_keystore_new(&o, &l, &ks, NULL), KR_OK);
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
	assert_int_equal(is_active(ks, key), 1);
	kr_keystore_free(ks);

	/* the key went to database 3, not 0 */
	c = raw_connect(&r);
	freeReplyObject(raw(c, "AUTH keyrot rot8-pass"));
	rep = raw(c, "SCARD api_keys:active");
	assert_int_equal(rep->integer, 0);
	freeReplyObject(rep);
	freeReplyObject(raw(c, "SELECT 3"));
	rep = raw(c, "SCARD api_keys:active");
	assert_int_equal(rep->integer, 1);
	freeReplyObject(rep);
	redisFree(c);
	kr_secret_free(pw);
	kr_secret_free(key);
	kr_test_redis_stop(&r);
}

static void test_connect_refused_names_server(void **state)
{
	int port = kr_test_free_port();
	struct kr_keystore *ks = ks_open(port, KR_STORE_SHA256, NULL, NULL, NULL);
	struct kr_error err;
	char server[64];

	(void)state;
	snprintf(server, sizeof(server), "valkey 127.0.0.1:%d: cannot connect", port);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EIO);
	assert_non_null(strstr(err.msg, server));
	kr_keystore_free(ks);
}

static void test_command_timeout(void **state)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = new_key();
	struct kr_error err;
	redisContext *sleeper;
	redisReply *r = NULL;

	(void)state;
	kr_keystore_opts_init(&o);
	o.port = g_redis.port;
	o.command_timeout_ms = 200;
	kr_keystore_layout_init_defaults(&l);
	assert_int_equal(kr_keystore_new(&o, &l, &ks, NULL), KR_OK);
	assert_int_equal(kr_keystore_ping(ks, NULL), KR_OK);
	/* the server holds every client for 700 ms; CLIENT PAUSE is in force when it answers */
	sleeper = raw_connect(&g_redis);
	raw_ok(sleeper, "CLIENT PAUSE 700 ALL");
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_ETIMEOUT);
	assert_non_null(strstr(err.msg, "timed out after 200 ms"));
	r = raw(sleeper, "PING"); /* answered once the pause is over */
	freeReplyObject(r);
	redisFree(sleeper);
	/* the next call connects afresh and works */
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
	kr_secret_free(key);
	kr_keystore_free(ks);
}

static void test_reconnects_once_after_drop(void **state)
{
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	redisContext *c = raw_connect(&g_redis);
	struct kr_secret *key = new_key();
	struct kr_error err;

	(void)state;
	flushall();
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
	/* the server drops our connection (CLIENT KILL, idle timeout, failover) */
	raw_ok(c, "CLIENT KILL TYPE normal SKIPME yes");
	assert_int_equal(is_active(ks, key), 1);
	redisFree(c);
	kr_secret_free(key);
	kr_keystore_free(ks);
}

struct kr_op_thread {
	struct kr_keystore *ks;
	const struct kr_secret *key;
	volatile int started;
	enum kr_status rc;
	struct kr_error err;
};

static void *activate_thread(void *arg)
{
	struct kr_op_thread *t = arg;

	t->started = 1;
	t->rc = kr_keystore_activate(t->ks, t->key, NULL, NULL, &t->err);
	return NULL;
}

static int thread_started(void *arg)
{
	return ((struct kr_op_thread *)arg)->started;
}

static void test_server_killed_mid_operation(void **state)
{
	struct kr_test_redis r;
	struct kr_op_thread t = {0};
	struct kr_secret *key = new_key();
	redisContext *sleeper;
	pthread_t th;
	char server[64];

	(void)state;
	assert_int_equal(kr_test_redis_start(&r, NULL), 0);
	t.ks = ks_open(r.port, KR_STORE_SHA256, NULL, NULL, NULL);
	t.key = key;
	assert_int_equal(kr_keystore_ping(t.ks, NULL), KR_OK);
	sleeper = raw_connect(&r);
	raw_ok(sleeper, "CLIENT PAUSE 10000 ALL"); /* the server stalls ... */
	assert_int_equal(pthread_create(&th, NULL, activate_thread, &t), 0);
	assert_true(kr_test_wait_for(thread_started, &t, 5000));
	kr_test_redis_stop(&r); /* ... and dies while the activation waits */
	assert_int_equal(pthread_join(th, NULL), 0);
	redisFree(sleeper);
	assert_int_equal(t.rc, KR_EIO);
	snprintf(server, sizeof(server), "valkey 127.0.0.1:%d", r.port);
	assert_non_null(strstr(t.err.msg, server));

	/* restarted (empty: no persistence): the next operation reconnects and succeeds */
	assert_int_equal(kr_test_redis_restart(&r), 0);
	assert_int_equal(kr_keystore_activate(t.ks, key, NULL, NULL, &t.err), KR_OK);
	assert_int_equal(is_active(t.ks, key), 1);
	/* and a restart between two calls is absorbed by the one reconnect */
	assert_int_equal(kr_test_redis_restart(&r), 0);
	assert_int_equal(kr_keystore_activate(t.ks, key, NULL, NULL, &t.err), KR_OK);
	kr_keystore_free(t.ks);
	kr_secret_free(key);
	kr_test_redis_stop(&r);
}

#define RACE_ROUNDS 40

struct kr_race {
	pthread_barrier_t *barrier;
	struct kr_secret *keys[RACE_ROUNDS];
	const char *label;
	enum kr_status rc;
};

static void *race_thread(void *arg)
{
	struct kr_race *race = arg;
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	struct kr_key_meta meta = {race->label, "cli", NULL};

	race->rc = KR_OK;
	for (int i = 0; i < RACE_ROUNDS && race->rc == KR_OK; i++) {
		pthread_barrier_wait(race->barrier);
		race->rc = kr_keystore_activate(ks, race->keys[i], &meta, NULL, NULL);
	}
	kr_keystore_free(ks);
	return NULL;
}

static void test_two_activations_racing(void **state)
{
	pthread_barrier_t barrier;
	struct kr_race races[2] = {{&barrier, {0}, "left", KR_OK}, {&barrier, {0}, "right", KR_OK}};
	struct kr_keystore *ks = ks_default(KR_STORE_SHA256);
	struct kr_key_info *infos = NULL;
	pthread_t th[2];
	size_t n = 0;

	(void)state;
	flushall();
	pthread_barrier_init(&barrier, NULL, 2);
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < RACE_ROUNDS; i++)
			races[t].keys[i] = new_key();
	for (int t = 0; t < 2; t++)
		assert_int_equal(pthread_create(&th[t], NULL, race_thread, &races[t]), 0);
	for (int t = 0; t < 2; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	for (int t = 0; t < 2; t++)
		assert_int_equal(races[t].rc, KR_OK);
	assert_int_equal(kr_keystore_list(ks, &infos, &n, NULL), KR_OK);
	assert_int_equal(n, 2 * RACE_ROUNDS);
	for (int t = 0; t < 2; t++) {
		for (int i = 0; i < RACE_ROUNDS; i++) {
			char id[13];
			size_t j;

			assert_int_equal(is_active(ks, races[t].keys[i]), 1);
			kr_key_id(races[t].keys[i], id);
			for (j = 0; j < n && strcmp(infos[j].id, id); j++)
				;
			assert_true(j < n);
			assert_string_equal(infos[j].label, races[t].label);
			assert_string_equal(infos[j].status, "active");
			kr_secret_free(races[t].keys[i]);
		}
	}
	kr_key_info_free_array(infos, n);
	pthread_barrier_destroy(&barrier);
	kr_keystore_free(ks);
}

/* ---- what goes over the wire ---- */

/* Everything MONITOR saw until the marker command, as one string. */
static char *monitor_collect(redisContext *mon, const char *marker)
{
	struct kr_buf all;
	redisReply *r = NULL;

	kr_buf_init(&all);
	for (;;) {
		assert_int_equal(redisGetReply(mon, (void **)&r), REDIS_OK);
		assert_int_equal(kr_buf_add(&all, r->str, r->len), KR_OK);
		assert_int_equal(kr_buf_addch(&all, '\n'), KR_OK);
		int done = strstr(r->str, marker) != NULL;
		freeReplyObject(r);
		if (done)
			break;
	}
	return kr_buf_detach(&all, NULL);
}

static char *run_all_ops_monitored(enum kr_store_as as, const struct kr_secret *key)
{
	struct kr_keystore *ks = ks_default(as);
	redisContext *mon = raw_connect(&g_redis), *c = raw_connect(&g_redis);
	const struct kr_secret *keys[] = {key};
	struct kr_keystore_repair rep;
	struct kr_key_info *infos = NULL;
	struct kr_secret *member = NULL;
	char id[13], *seen;
	size_t n;

	flushall();
	kr_key_id(key, id);
	freeReplyObject(raw(mon, "MONITOR"));
	kr_keystore_repair_init(&rep);
	assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, NULL), KR_OK);
	assert_int_equal(is_active(ks, key), 1);
	assert_int_equal(kr_keystore_list(ks, &infos, &n, NULL), KR_OK);
	kr_key_info_free_array(infos, n);
	assert_int_equal(kr_keystore_find_member(ks, id, &member, NULL), KR_OK);
	assert_int_equal(kr_keystore_revoke_member(ks, member, NULL, NULL), KR_OK);
	assert_int_equal(kr_keystore_revoke_key(ks, key, NULL, NULL), KR_OK);
	assert_int_equal(kr_keystore_reconcile(ks, keys, 1, id, "x/y", &rep, NULL), KR_OK);
	raw_ok(c, "PING monitor-end-marker");
	seen = monitor_collect(mon, "monitor-end-marker");
	kr_keystore_repair_release(&rep);
	kr_secret_free(member);
	redisFree(mon);
	redisFree(c);
	kr_keystore_free(ks);
	return seen;
}

static void test_sha256_layout_never_sends_the_key(void **state)
{
	struct kr_secret *key = new_key();
	char hex[65], *seen;

	(void)state;
	kr_key_hash_hex(key, hex);
	seen = run_all_ops_monitored(KR_STORE_SHA256, key);
	assert_non_null(strstr(seen, "SISMEMBER"));	/* the monitor did see our traffic */
	assert_non_null(strstr(seen, hex));		/* ... with the hash as member */
	assert_null(strstr(seen, kr_secret_data(key))); /* ... and never the key */
	free(seen);
	/* the control: in plaintext layout the key must (and does) travel */
	seen = run_all_ops_monitored(KR_STORE_PLAINTEXT, key);
	assert_non_null(strstr(seen, kr_secret_data(key)));
	free(seen);
	kr_secret_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_activate_verify_revoke),
	    cmocka_unit_test(test_revoke_unknown_writes_nothing),
	    cmocka_unit_test(test_list_and_find_member),
	    cmocka_unit_test(test_legacy_plaintext_seed_data),
	    cmocka_unit_test(test_find_member_ambiguous),
	    cmocka_unit_test(test_bootstrap_marker),
	    cmocka_unit_test(test_reconcile_after_data_loss),
	    cmocka_unit_test(test_reconcile_marker_present_key_missing),
	    cmocka_unit_test(test_reconcile_key_present_marker_missing_or_stale),
	    cmocka_unit_test(test_reconcile_repairs_metadata_and_counts_unknown),
	    cmocka_unit_test(test_inspect_both_layouts),
	    cmocka_unit_test(test_wrongtype_active_set),
	    cmocka_unit_test(test_wrongtype_meta_in_plaintext_never_names_key),
	    cmocka_unit_test(test_auth_requirepass),
	    cmocka_unit_test(test_auth_acl_user_and_database),
	    cmocka_unit_test(test_connect_refused_names_server),
	    cmocka_unit_test(test_command_timeout),
	    cmocka_unit_test(test_reconnects_once_after_drop),
	    cmocka_unit_test(test_server_killed_mid_operation),
	    cmocka_unit_test(test_two_activations_racing),
	    cmocka_unit_test(test_sha256_layout_never_sends_the_key),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
