/* buf.h - a growable, always NUL-terminated byte buffer (after git's strbuf). */
#ifndef KR_BUF_H
#define KR_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"

/*
 * Invariants: after kr_buf_init, data is never NULL and data[len] == '\0'.
 * Embedded by value: kr_buf_init / kr_buf_release. Not thread-safe.
 */
struct kr_buf {
	char *data;
	size_t len;
	size_t cap;
};

void kr_buf_init(struct kr_buf *b);
/* Free the storage and re-init. Safe on an initialised or zeroed buffer. */
void kr_buf_release(struct kr_buf *b);
/* As kr_buf_release, but overwrites the bytes first: for anything that held a key. */
void kr_buf_release_wipe(struct kr_buf *b);
/* Keep the storage, set len to 0. */
void kr_buf_reset(struct kr_buf *b);
/* Hand the storage to the caller (free with free()); b is re-initialised. */
char *kr_buf_detach(struct kr_buf *b, size_t *len);

enum kr_status kr_buf_grow(struct kr_buf *b, size_t extra);
enum kr_status kr_buf_add(struct kr_buf *b, const void *data, size_t len);
enum kr_status kr_buf_adds(struct kr_buf *b, const char *s);
enum kr_status kr_buf_addch(struct kr_buf *b, char c);
enum kr_status kr_buf_addf(struct kr_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
enum kr_status kr_buf_vaddf(struct kr_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Append `s` as a JSON string literal, quotes included. */
enum kr_status kr_buf_add_json_string(struct kr_buf *b, const char *s);
/* Drop the first n bytes (n <= len). */
void kr_buf_consume(struct kr_buf *b, size_t n);

#endif
