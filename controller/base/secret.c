/* secret.c - wiped heap buffers for key material, kept out of core dumps. */
#include "secret.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct kr_secret {
	size_t len;
	char data[];
};

/*
 * The pages a secret lies on are marked MADV_DONTDUMP: a core dump, were one ever written
 * despite kr_process_harden, leaves them out. The flag is per page and stays when the secret
 * is freed; whatever else lies on those pages, now or later, is left out of a dump too, which
 * costs nothing (there are no dumps) and is why the secret need not have pages of its own
 * (no page of memory per key). The advice is best effort: a kernel that refuses it still
 * gets a working, wiped secret. Cost: one madvise call per secret, about a microsecond.
 */
static void kr_secret_no_dump(const void *p, size_t size)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)p & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + size + page - 1) & ~(page - 1);

	(void)madvise((void *)lo, hi - lo, MADV_DONTDUMP);
}

struct kr_secret *kr_secret_alloc(size_t len)
{
	struct kr_secret *s;

	if (len > ((size_t)1 << 24))
		return NULL;
	s = calloc(1, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
	kr_secret_no_dump(s, sizeof(*s) + len + 1);
	s->len = len;
	return s;
}

struct kr_secret *kr_secret_new(const void *data, size_t len)
{
	struct kr_secret *s = kr_secret_alloc(len);

	if (s && len)
		memcpy(s->data, data, len);
	return s;
}

void kr_secret_free(struct kr_secret *s)
{
	if (!s)
		return;
	explicit_bzero(s->data, s->len + 1);
	s->len = 0;
	free(s);
}

const char *kr_secret_data(const struct kr_secret *s)
{
	return s->data;
}

char *kr_secret_mut(struct kr_secret *s)
{
	return s->data;
}

size_t kr_secret_len(const struct kr_secret *s)
{
	return s->len;
}

int kr_secret_memeq(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	size_t i;

	for (i = 0; i < len; i++)
		diff |= (unsigned char)(x[i] ^ y[i]);
	return diff == 0;
}

int kr_secret_equal(const struct kr_secret *a, const struct kr_secret *b)
{
	if (!a || !b || a->len != b->len)
		return 0;
	return kr_secret_memeq(a->data, b->data, a->len);
}
