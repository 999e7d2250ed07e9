/* test_harden.c - no core dumps, and key bytes wiped on every path that frees them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "base/harden.h"
#include "reconciler/internal.h"

/*
 * Linked with -Wl,--wrap=free: every free() of the test and of the libraries linked in
 * statically (kr_harden_free's, kr_secret_free's) comes here first, so the test looks at
 * a block while it is still allocated, never at freed memory. cJSON is a shared library:
 * its own calls to free() would not come here, only those through its hooks.
 */
void __real_free(void *p);
void __wrap_free(void *p);

#define WATCH_MAX 64

static struct {
	const void *block[WATCH_MAX]; /* blocks that held key bytes */
	size_t len[WATCH_MAX];	      /* how many bytes of each held them */
	int n;
	int all_zero; /* every block freed must be zero over its whole usable size */
	int caught;   /* watched blocks seen being freed */
	int dirty;    /* nonzero bytes seen in them (or, with all_zero, in any block) */
	int frees;
} w;

static void watch_reset(void)
{
	memset(&w, 0, sizeof(w));
}

static void watch(const void *block, size_t len)
{
	assert_true(w.n < WATCH_MAX);
	w.block[w.n] = block;
	w.len[w.n++] = len;
}

void __wrap_free(void *p)
{
	const unsigned char *b = p;

	if (p) {
		w.frees++;
		for (int i = 0; i < w.n; i++)
			if (w.block[i] == p) {
				w.caught++;
				for (size_t j = 0; j < w.len[i]; j++)
					w.dirty += b[j] != 0;
				w.block[i] = NULL;
			}
		if (w.all_zero)
			for (size_t j = 0, n = malloc_usable_size(p); j < n; j++)
				w.dirty += b[j] != 0;
	}
	__real_free(p);
}

/* A cJSON free hook that wipes nothing: the control that shows the test can see a leak. */
static void plain_free(void *p)
{
	__wrap_free(p);
}

/* A Secret as the API server sends it; "c2stbGl2ZS0..." is base64 of a live-looking key. */
#define KEY_B64 "c2stbGl2ZS00ZjJhOWMxZTdiM2Q1YTA4NmYxYzJlOWQ3YjRhNjBlOA=="
static const char secret_json[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"app-key\","
    "\"namespace\":\"default\",\"annotations\":{\"keyrotator.io/keyrotation\":\"app\"}},"
    "\"type\":\"Opaque\",\"data\":{\"API_KEY\":\"" KEY_B64 "\",\"OTHER\":\"b3RoZXI=\"}}";

static void harden(void)
{
	struct kr_error err = {0};

	assert_int_equal(kr_process_harden(&err), KR_OK);
}

/* kr_process_harden: not dumpable, and a core size limit of 0 that cannot be raised. */
static void test_process_not_dumpable_no_core(void **state)
{
	struct rlimit rl;

	(void)state;
	harden();
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_true(rl.rlim_cur == 0);
	assert_true(rl.rlim_max == 0);
	/* Twice is fine (tests, and a CLI command that runs another). */
	harden();
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}

/* Watch the value of data[key] in a parsed Secret. */
static void watch_data(const cJSON *secret, const char *key)
{
	const cJSON *v =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(secret, "data"), key);

	assert_true(cJSON_IsString(v));
	watch(v->valuestring, strlen(v->valuestring));
}

/*
 * With the hooks kr_process_harden installs, deleting a parsed Secret frees every block
 * (nodes, names, values) through kr_harden_free: each is zero over its whole usable size
 * when it reaches free(), the data values included.
 */
static void test_cjson_delete_wipes_secret_data(void **state)
{
	cJSON *secret;

	(void)state;
	harden();
	secret = cJSON_Parse(secret_json);
	assert_non_null(secret);
	watch_reset();
	watch_data(secret, "API_KEY");
	watch_data(secret, "OTHER");
	w.all_zero = 1;
	cJSON_Delete(secret);
	assert_int_equal(w.caught, 2);
	assert_true(w.frees >= 20); /* every node and string, not only the two values */
	assert_int_equal(w.dirty, 0);
	watch_reset();
}

/*
 * Printing a Secret (the body of a PUT) grows cJSON's print buffer: with the hooks it is
 * copied and the old one freed through kr_harden_free, never realloc'd in place and left
 * behind. The printed text itself is wiped by cJSON_free.
 */
static void test_cjson_print_buffers_wiped(void **state)
{
	char big[4096 + 1];
	cJSON *secret, *data;
	char *text;

	(void)state;
	harden();
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	secret = cJSON_Parse(secret_json);
	assert_non_null(secret);
	data = cJSON_GetObjectItemCaseSensitive(secret, "data");
	assert_non_null(cJSON_AddStringToObject(data, "BIG", big));
	watch_reset();
	w.all_zero = 1;
	text = cJSON_PrintUnformatted(secret);
	assert_non_null(text);
	assert_true(w.frees >= 1); /* the buffer grew past its first 256 bytes */
	assert_int_equal(w.dirty, 0);
	assert_non_null(strstr(text, KEY_B64));
	cJSON_free(text);
	assert_int_equal(w.dirty, 0);
	cJSON_Delete(secret);
	assert_int_equal(w.dirty, 0);
	watch_reset();
}

/* The control: with a free hook that does not wipe, the same watch sees the key bytes. */
static void test_control_unwiped_free_is_seen(void **state)
{
	cJSON_Hooks plain = {.malloc_fn = malloc, .free_fn = plain_free};
	cJSON *secret;

	(void)state;
	cJSON_InitHooks(&plain);
	secret = cJSON_Parse(secret_json);
	assert_non_null(secret);
	watch_reset();
	watch_data(secret, "API_KEY");
	cJSON_Delete(secret);
	assert_int_equal(w.caught, 1);
	assert_int_equal(w.dirty, (int)strlen(KEY_B64));
	watch_reset();
	harden();
}

/*
 * kr_secret_data_set wipes the value it replaces itself, whatever cJSON's free does: here
 * the hook is the plain one, and the old base64 text is zero when it reaches free().
 */
static void test_data_set_wipes_replaced_value(void **state)
{
	static const struct {
		const char *key;  /* the key set */
		const char *keep; /* the other key, untouched */
	} cases[] = {{"API_KEY", "OTHER"}, {"OTHER", "API_KEY"}};
	cJSON_Hooks plain = {.malloc_fn = malloc, .free_fn = plain_free};

	(void)state;
	cJSON_InitHooks(&plain);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_secret *next = kr_secret_new("sk-next", 7);
		cJSON *secret = cJSON_Parse(secret_json);
		const char *keep_before, *now;

		assert_non_null(next);
		assert_non_null(secret);
		keep_before = cJSON_GetObjectItemCaseSensitive(
				  cJSON_GetObjectItemCaseSensitive(secret, "data"), cases[i].keep)
				  ->valuestring;
		watch_reset();
		watch_data(secret, cases[i].key);
		assert_int_equal(kr_secret_data_set(secret, cases[i].key, next), KR_OK);
		assert_int_equal(w.caught, 1);
		assert_int_equal(w.dirty, 0);
		watch_reset();
		/* The new value is in place under the same name; the other one is untouched. */
		now = cJSON_GetObjectItemCaseSensitive(
			  cJSON_GetObjectItemCaseSensitive(secret, "data"), cases[i].key)
			  ->valuestring;
		assert_string_equal(now, "c2stbmV4dA==");
		assert_ptr_equal(
		    cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(secret, "data"), cases[i].keep)
			->valuestring,
		    keep_before);
		kr_secret_free(next);
		cJSON_Delete(secret);
	}
	harden();
}

/* kr_harden_realloc: growing copies the bytes and wipes the old block; fitting keeps it. */
static void test_harden_realloc(void **state)
{
	char *p = malloc(32), *q;

	(void)state;
	assert_non_null(p);
	memcpy(p, "sk-live-0123456789abcdef01234567", 32);
	q = kr_harden_realloc(p, 16); /* fits: same block, nothing moves */
	assert_ptr_equal(q, p);
	watch_reset();
	watch(p, 32);
	q = kr_harden_realloc(p, 4096);
	assert_non_null(q);
	assert_ptr_not_equal(q, p);
	assert_int_equal(w.caught, 1);
	assert_int_equal(w.dirty, 0);
	assert_memory_equal(q, "sk-live-0123456789abcdef01234567", 32);
	watch_reset();
	watch(q, 32);
	kr_harden_free(q);
	assert_int_equal(w.caught, 1);
	assert_int_equal(w.dirty, 0);
	watch_reset();
	q = kr_harden_realloc(NULL, 8);
	assert_non_null(q);
	kr_harden_free(q);
	kr_harden_free(NULL);
}

/* The VmFlags of the mapping of /proc/self/smaps that holds `addr`; "" when not found. */
static void vmflags_of(const void *addr, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long a = (unsigned long)addr, lo, hi;
	char line[512];
	int inside = 0;

	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			inside = a >= lo && a < hi;
		else if (inside && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, size, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

/*
 * Secret buffers are left out of core dumps: the pages they lie on carry MADV_DONTDUMP
 * ("dd"), from the length before the bytes to the NUL after them. Sizes from one byte to
 * more than malloc's mmap threshold. (That they are wiped is test_secret_wipe's.)
 */
static void test_secret_pages_not_dumped(void **state)
{
	static const size_t sizes[] = {1, 64, 4000, 5000, 70000, 300000};
	char flags[256];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct kr_secret *s = kr_secret_alloc(sizes[i]);
		const char *first = (const char *)s, *last = kr_secret_data(s) + sizes[i];

		assert_non_null(s);
		vmflags_of(first, flags, sizeof(flags));
		if (!flags[0] && i == 0)
			skip(); /* no /proc/self/smaps: nothing to look at */
		assert_non_null(strstr(flags, " dd"));
		vmflags_of(last, flags, sizeof(flags));
		assert_non_null(strstr(flags, " dd"));
		kr_secret_free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_process_not_dumpable_no_core),
	    cmocka_unit_test(test_cjson_delete_wipes_secret_data),
	    cmocka_unit_test(test_cjson_print_buffers_wiped),
	    cmocka_unit_test(test_control_unwiped_free_is_seen),
	    cmocka_unit_test(test_data_set_wipes_replaced_value),
	    cmocka_unit_test(test_harden_realloc),
	    cmocka_unit_test(test_secret_pages_not_dumped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
