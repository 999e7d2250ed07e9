/* secret.c - wiped heap buffers for key material. */
#include "secret.h"

#include <stdlib.h>
#include <string.h>

struct kr_secret {
	size_t len;
	char data[];
};

struct kr_secret *kr_secret_alloc(size_t len)
{
	struct kr_secret *s;

	if (len > ((size_t)1 << 24))
		return NULL;
	s = calloc(1, sizeof(*s) + len + 1);
	if (!s)
		return NULL;
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
