/* test_kube_objset.c - the reflector's known-object set: put, find, remove, mark and sweep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "kube/objset.h"

static void test_put_find_update_remove(void **state)
{
	struct kr_objset s;
	char key[32], rv[32];

	(void)state;
	kr_objset_init(&s);
	assert_null(kr_objset_find(&s, "ns/a"));
	kr_objset_remove(&s, "ns/a"); /* on an empty set */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "ns/o%d", i);
		snprintf(rv, sizeof(rv), "%d", i);
		assert_int_equal(kr_objset_put(&s, key, rv), KR_OK);
	}
	assert_int_equal(s.count, 1000);
	assert_string_equal(kr_objset_find(&s, "ns/o999")->rv, "999");
	assert_int_equal(kr_objset_put(&s, "ns/o5", "77"), KR_OK);
	assert_int_equal(s.count, 1000);
	assert_string_equal(kr_objset_find(&s, "ns/o5")->rv, "77");
	kr_objset_remove(&s, "ns/o5");
	assert_null(kr_objset_find(&s, "ns/o5"));
	assert_int_equal(s.count, 999);
	/* resourceVersions are opaque: a long one is kept whole, and short again after it */
	assert_int_equal(kr_objset_put(&s, "ns/o7", "123456789012345678901234567890-opaque"),
			 KR_OK);
	assert_string_equal(kr_objset_find(&s, "ns/o7")->rv,
			    "123456789012345678901234567890-opaque");
	assert_int_equal(kr_objset_put(&s, "ns/o7", "8"), KR_OK);
	assert_string_equal(kr_objset_find(&s, "ns/o7")->rv, "8");
	assert_int_equal(kr_objset_put(&s, "ns/long", "99999999999999999999999999999999"), KR_OK);
	kr_objset_release(&s);
	kr_objset_release(&s);
}

struct swept {
	int n;
	char keys[8][32];
};

static void on_sweep(void *arg, const char *key, const char *rv)
{
	struct swept *w = arg;

	snprintf(w->keys[w->n++], sizeof(w->keys[0]), "%s=%s", key, rv);
}

/* A relist marks what it sees; the sweep removes (and reports) exactly the rest. */
static void test_mark_and_sweep(void **state)
{
	static const char *const keys[] = {"a/x", "a/y", "b/x", "/cluster"};
	struct kr_objset s;
	struct swept w = {0};

	(void)state;
	kr_objset_init(&s);
	for (int i = 0; i < 4; i++)
		assert_int_equal(kr_objset_put(&s, keys[i], "1"), KR_OK);
	kr_objset_begin_mark(&s);
	kr_objset_touch(kr_objset_find(&s, "a/y"), &s);
	assert_int_equal(kr_objset_put(&s, "b/x", "2"), KR_OK);
	assert_int_equal(kr_objset_put(&s, "c/new", "3"), KR_OK);
	kr_objset_sweep(&s, on_sweep, &w);
	assert_int_equal(w.n, 2);
	assert_true((strcmp(w.keys[0], "a/x=1") == 0 && strcmp(w.keys[1], "/cluster=1") == 0) ||
		    (strcmp(w.keys[1], "a/x=1") == 0 && strcmp(w.keys[0], "/cluster=1") == 0));
	assert_int_equal(s.count, 3);
	assert_non_null(kr_objset_find(&s, "a/y"));
	assert_non_null(kr_objset_find(&s, "c/new"));
	kr_objset_begin_mark(&s);
	w.n = 0;
	kr_objset_sweep(&s, on_sweep, &w); /* nothing seen this time: all go */
	assert_int_equal(w.n, 3);
	assert_int_equal(s.count, 0);
	kr_objset_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_find_update_remove),
	    cmocka_unit_test(test_mark_and_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
