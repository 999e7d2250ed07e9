/* buf.c - growable NUL-terminated buffer. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char kr_buf_empty[1];

void kr_buf_init(struct kr_buf *b)
{
	b->data = kr_buf_empty;
	b->len = 0;
	b->cap = 0;
}

void kr_buf_release(struct kr_buf *b)
{
	if (b->cap)
		free(b->data);
	kr_buf_init(b);
}

void kr_buf_release_wipe(struct kr_buf *b)
{
	if (b->cap)
		explicit_bzero(b->data, b->cap);
	kr_buf_release(b);
}

void kr_buf_reset(struct kr_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

char *kr_buf_detach(struct kr_buf *b, size_t *len)
{
	char *out = b->cap ? b->data : strdup("");

	if (len)
		*len = b->len;
	kr_buf_init(b);
	return out;
}

enum kr_status kr_buf_grow(struct kr_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > ((size_t)-1) / 2 - b->len)
		return KR_ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return KR_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	/* Never realloc: the old bytes may be key material that must be wiped. */
	p = malloc(cap);
	if (!p)
		return KR_ENOMEM;
	memcpy(p, b->data, b->len + 1);
	if (b->cap) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return KR_OK;
}

enum kr_status kr_buf_add(struct kr_buf *b, const void *data, size_t len)
{
	enum kr_status rc = kr_buf_grow(b, len);

	if (rc != KR_OK)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return KR_OK;
}

enum kr_status kr_buf_adds(struct kr_buf *b, const char *s)
{
	return kr_buf_add(b, s, strlen(s));
}

enum kr_status kr_buf_addch(struct kr_buf *b, char c)
{
	return kr_buf_add(b, &c, 1);
}

enum kr_status kr_buf_vaddf(struct kr_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	enum kr_status rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return KR_EINVAL;
	rc = kr_buf_grow(b, (size_t)n);
	if (rc != KR_OK)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return KR_OK;
}

enum kr_status kr_buf_addf(struct kr_buf *b, const char *fmt, ...)
{
	va_list ap;
	enum kr_status rc;

	va_start(ap, fmt);
	rc = kr_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

enum kr_status kr_buf_add_json_string(struct kr_buf *b, const char *s)
{
	enum kr_status rc = kr_buf_addch(b, '"');

	for (; rc == KR_OK && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			rc = kr_buf_add(b, esc, 2);
		} else if (c == '\n') {
			rc = kr_buf_adds(b, "\\n");
		} else if (c == '\t') {
			rc = kr_buf_adds(b, "\\t");
		} else if (c == '\r') {
			rc = kr_buf_adds(b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			rc = kr_buf_addf(b, "\\u%04x", c);
		} else {
			rc = kr_buf_addch(b, (char)c);
		}
	}
	if (rc == KR_OK)
		rc = kr_buf_addch(b, '"');
	return rc;
}

void kr_buf_consume(struct kr_buf *b, size_t n)
{
	if (n >= b->len) {
		kr_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}
