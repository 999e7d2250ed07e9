/* secret.h - the one type that holds raw key material; wiped on free, unprintable by design. */
#ifndef KR_SECRET_H
#define KR_SECRET_H

#include <stddef.h>

#include "error.h"

/*
 * A raw key (or password, or token). Heap object: kr_secret_new* / kr_secret_free.
 * The bytes are NUL-terminated for convenience, and wiped with explicit_bzero when
 * freed. Because it is a struct, not a char *, it cannot be handed to printf or to
 * the logger by mistake: reaching the bytes takes an explicit kr_secret_data() call,
 * which reviewers grep for.
 */
struct kr_secret;

/* Copy `len` bytes of `data`. Caller frees with kr_secret_free. NULL on ENOMEM. */
struct kr_secret *kr_secret_new(const void *data, size_t len);
/* An empty secret of `len` bytes of zeros, to be filled through kr_secret_mut(). */
struct kr_secret *kr_secret_alloc(size_t len);
/* Wipe and free. kr_secret_free(NULL) does nothing. */
void kr_secret_free(struct kr_secret *s);

/* Borrowed view of the bytes, valid until kr_secret_free. Never log it. */
const char *kr_secret_data(const struct kr_secret *s);
char *kr_secret_mut(struct kr_secret *s);
size_t kr_secret_len(const struct kr_secret *s);
/* Constant-time equality of contents (lengths compared first; length is not secret). */
int kr_secret_equal(const struct kr_secret *a, const struct kr_secret *b);
/* Constant-time comparison of two byte ranges of equal length; 1 when equal. */
int kr_secret_memeq(const void *a, const void *b, size_t len);

#endif
