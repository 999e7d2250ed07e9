/* error.c - status texts and the single error-detail setter. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kr_status_text[KR_LAST] = {
	[KR_OK] = "ok",
	[KR_ENOMEM] = "out of memory",
	[KR_EINVAL] = "invalid input",
	[KR_EIO] = "i/o or connection error",
	[KR_ETIMEOUT] = "timed out",
	[KR_EPROTO] = "protocol error",
	[KR_EAUTH] = "authentication or authorisation refused",
	[KR_ENOTFOUND] = "not found",
	[KR_EEXIST] = "already exists",
	[KR_ECONFLICT] = "conflict",
	[KR_EGONE] = "resource version expired",
	[KR_EHTTP] = "server error",
	[KR_ESTORE] = "key store error",
	[KR_ETOOBIG] = "too large",
	[KR_ESTATE] = "invalid state",
	[KR_ECANCELED] = "canceled",
};

const char *kr_strerror(enum kr_status status)
{
	if ((int)status < 0 || status >= KR_LAST || !kr_status_text[status])
		return "unknown error";
	return kr_status_text[status];
}

void kr_error_clear(struct kr_error *err)
{
	if (!err)
		return;
	err->code = KR_OK;
	err->http_status = 0;
	err->msg[0] = '\0';
}

enum kr_status kr_error_set(struct kr_error *err, enum kr_status code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->http_status = 0;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

enum kr_status kr_error_prefix(struct kr_error *err, const char *fmt, ...)
{
	char prefix[KR_ERROR_MSG_MAX];
	char old[KR_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return KR_OK;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation is intended: the prefix wins, the tail of the old text goes. */
	size_t plen = strnlen(prefix, sizeof(err->msg) - 1);
	size_t olen = strnlen(old, sizeof(err->msg) - 1 - plen);
	memcpy(err->msg, prefix, plen);
	memcpy(err->msg + plen, old, olen);
	err->msg[plen + olen] = '\0';
	return err->code;
}

void kr_bug(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "BUG at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
