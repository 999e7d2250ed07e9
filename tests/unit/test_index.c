/* test_index.c - the string map (base/map.h) and the reference index the controller uses to
 * find the KeyRotations a Secret or workload event concerns (runtime/informer.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "runtime/informer.h"

/* ---- kr_smap ----------------------------------------------------------------------- */

static int dropped;

static void count_drop(void *val)
{
	dropped++;
	free(val);
}

static void sum_each(void *arg, const char *key, void *val)
{
	(void)key;
	*(long *)arg += *(int *)val;
}

static void test_smap_many_keys(void **state)
{
	struct kr_smap m = {.drop = count_drop};
	char key[64];
	long sum = 0;

	(void)state;
	for (int i = 0; i < 5000; i++) { /* grows from 4 slots many times */
		struct kr_smap_entry *e;

		snprintf(key, sizeof(key), "ns-%d/keyrotation-with-a-long-name-%d", i % 7, i);
		e = kr_smap_upsert(&m, key);
		assert_non_null(e);
		assert_null(e->val);
		assert_string_equal(e->key, key);
		e->val = malloc(sizeof(int));
		*(int *)e->val = i;
	}
	assert_int_equal(m.count, 5000);
	for (int i = 0; i < 5000; i += 97) {
		struct kr_smap_entry *e;

		snprintf(key, sizeof(key), "ns-%d/keyrotation-with-a-long-name-%d", i % 7, i);
		e = kr_smap_find(&m, key);
		assert_non_null(e);
		assert_int_equal(*(int *)e->val, i);
		assert_ptr_equal(kr_smap_upsert(&m, key), e); /* an upsert of a key finds it */
	}
	assert_null(kr_smap_find(&m, "ns-0/absent"));
	kr_smap_each(&m, sum_each, &sum);
	assert_int_equal(sum, 4999L * 5000 / 2);
	free(kr_smap_take(&m, "ns-0/keyrotation-with-a-long-name-0"));
	assert_null(kr_smap_take(&m, "ns-0/keyrotation-with-a-long-name-0"));
	assert_int_equal(m.count, 4999);
	kr_smap_release(&m);
	assert_int_equal(dropped, 4999);
	assert_int_equal(m.count, 0);
	assert_null(kr_smap_find(&m, "ns-1/keyrotation-with-a-long-name-1"));
	assert_non_null(kr_smap_upsert(&m, "reused")); /* released maps are reusable */
	kr_smap_release(&m);
}

/* ---- kr_refindex ------------------------------------------------------------------- */

struct owners {
	char names[8][64];
	size_t n;
};

static void collect(void *arg, const char *owner)
{
	struct owners *o = arg;

	snprintf(o->names[o->n++], sizeof(o->names[0]), "%s", owner);
}

static size_t lookup(struct kr_refindex *idx, const char *ref, struct owners *o)
{
	memset(o, 0, sizeof(*o));
	return kr_refindex_lookup(idx, ref, collect, o);
}

static bool has(const struct owners *o, const char *name)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->names[i], name) == 0)
			return true;
	return false;
}

static void test_refindex_owners_and_counts(void **state)
{
	struct kr_refindex *idx = kr_refindex_new();
	struct owners o;

	(void)state;
	assert_non_null(idx);
	assert_int_equal(lookup(idx, "Secret/prod/api-key", &o), 0);
	/* Two KeyRotations name one Secret (a conflict the reconciler reports). */
	assert_int_equal(kr_refindex_add(idx, "Secret/prod/api-key", "prod/a"), KR_OK);
	assert_int_equal(kr_refindex_add(idx, "Secret/prod/api-key", "prod/b"), KR_OK);
	/* One KeyRotation names a Deployment in two stages: counted, listed once. */
	assert_int_equal(kr_refindex_add(idx, "Deployment/prod/api", "prod/a"), KR_OK);
	assert_int_equal(kr_refindex_add(idx, "Deployment/prod/api", "prod/a"), KR_OK);
	assert_int_equal(lookup(idx, "Secret/prod/api-key", &o), 2);
	assert_true(has(&o, "prod/a") && has(&o, "prod/b"));
	assert_int_equal(lookup(idx, "Deployment/prod/api", &o), 1);
	assert_string_equal(o.names[0], "prod/a");

	kr_refindex_remove(idx, "Deployment/prod/api", "prod/a");
	assert_int_equal(lookup(idx, "Deployment/prod/api", &o), 1); /* still named once */
	kr_refindex_remove(idx, "Deployment/prod/api", "prod/a");
	assert_int_equal(lookup(idx, "Deployment/prod/api", &o), 0);

	kr_refindex_remove(idx, "Secret/prod/api-key", "prod/a");
	assert_int_equal(lookup(idx, "Secret/prod/api-key", &o), 1);
	assert_string_equal(o.names[0], "prod/b");
	kr_refindex_remove(idx, "Secret/prod/api-key", "prod/zzz"); /* not an owner: no-op */
	kr_refindex_remove(idx, "Secret/prod/absent", "prod/b");
	assert_int_equal(lookup(idx, "Secret/prod/api-key", &o), 1);
	/* Removing the first of three owners keeps the others linked. */
	assert_int_equal(kr_refindex_add(idx, "Secret/prod/api-key", "prod/c"), KR_OK);
	assert_int_equal(kr_refindex_add(idx, "Secret/prod/api-key", "prod/d"), KR_OK);
	kr_refindex_remove(idx, "Secret/prod/api-key", "prod/b");
	assert_int_equal(lookup(idx, "Secret/prod/api-key", &o), 2);
	assert_true(has(&o, "prod/c") && has(&o, "prod/d"));
	kr_refindex_free(idx); /* frees what is left; valgrind checks */
	kr_refindex_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_smap_many_keys),
	    cmocka_unit_test(test_refindex_owners_and_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
