/* test_secret_wipe.c - key buffers are wiped before their memory goes back to the allocator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/secret.h"

/*
 * Linked with -Wl,--wrap=free: kr_base's calls to free() come here first, so the test
 * sees the bytes of a kr_secret at the moment it is released. The watched range is set
 * by the test (a pointer into the secret); anything else passes straight through.
 */
void __real_free(void *p);
void __wrap_free(void *p);

static const unsigned char *watch_lo, *watch_hi;
static int watched_frees, nonzero_bytes;

void __wrap_free(void *p)
{
	const unsigned char *b = p;

	if (watch_lo && b && b <= watch_lo && watch_lo - b < 64) {
		watched_frees++;
		for (const unsigned char *q = watch_lo; q < watch_hi; q++)
			nonzero_bytes += *q != 0;
		watch_lo = watch_hi = NULL;
	}
	__real_free(p);
}

static void watch(const struct kr_secret *s)
{
	watch_lo = (const unsigned char *)kr_secret_data(s);
	watch_hi = watch_lo + kr_secret_len(s) + 1; /* and the NUL */
	watched_frees = nonzero_bytes = 0;
}

static void test_free_wipes_every_byte(void **state)
{
	static const size_t sizes[] = {1, 28, 51, 108, 4096};

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *raw = malloc(sizes[i]);
		struct kr_secret *s;

		assert_non_null(raw);
		memset(raw, 'k', sizes[i]);
		s = kr_secret_new(raw, sizes[i]);
		free(raw);
		assert_non_null(s);
		watch(s);
		kr_secret_free(s);
		assert_int_equal(watched_frees, 1);
		assert_int_equal(nonzero_bytes, 0);
	}
}

static void test_filled_through_mut_is_wiped_too(void **state)
{
	struct kr_secret *s = kr_secret_alloc(64);

	(void)state;
	assert_non_null(s);
	memset(kr_secret_mut(s), 0xa5, 64);
	watch(s);
	kr_secret_free(s);
	assert_int_equal(watched_frees, 1);
	assert_int_equal(nonzero_bytes, 0);
}

/* The comparison is right for every position of a difference (the constant-time loop
 * reads all bytes; correctness at each position is what a test can pin down). */
static void test_memeq_every_position(void **state)
{
	char a[108], b[108];

	(void)state;
	memset(a, 'x', sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(kr_secret_memeq(a, b, sizeof(a)));
	assert_true(kr_secret_memeq(a, b, 0));
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] = (char)(a[i] ^ (1 << bit));
			assert_false(kr_secret_memeq(a, b, sizeof(a)));
			assert_true(kr_secret_memeq(a, b, i)); /* the prefix before it is equal */
			b[i] = a[i];
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_free_wipes_every_byte),
	    cmocka_unit_test(test_filled_through_mut_is_wiped_too),
	    cmocka_unit_test(test_memeq_every_position),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
