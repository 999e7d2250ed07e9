/* guard.c - the bounds on what a key store server may send, measured before hiredis reads it. */
#include <string.h>

#include "keystore/internal.h"

enum { KR_G_TYPE = 0, KR_G_LINE, KR_G_BULK, KR_G_SPENT };

void kr_ks_resp_guard_init(struct kr_ks_resp_guard *g)
{
	memset(g, 0, sizeof(*g));
}

static enum kr_status kr_ks_guard_fail(struct kr_ks_resp_guard *g, enum kr_status code,
				       const char *msg, struct kr_error *err)
{
	g->state = KR_G_SPENT;
	return kr_error_set(err, code, "%s", msg);
}

/* A value is complete: it fills one slot of each array it closes, or ends the reply. */
static void kr_ks_guard_value(struct kr_ks_resp_guard *g)
{
	g->state = KR_G_TYPE;
	while (g->depth > 0) {
		if (--g->left[g->depth - 1] > 0)
			return;
		g->depth--;
	}
	g->replies++;
	g->bytes = 0;
	g->elements = 0;
}

/* A header line ended (its CRLF consumed). */
static enum kr_status kr_ks_guard_header(struct kr_ks_resp_guard *g, struct kr_error *err)
{
	if (g->type == ':' && (g->bad || !g->digits || (g->neg && g->num == 0)))
		return kr_ks_guard_fail(g, KR_EPROTO, "bad reply: malformed integer", err);
	if (g->type != '$' && g->type != '*') {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	/* Only "-1" is nil; hiredis reads other negatives its own way, so they are refused. */
	if (g->bad || !g->digits || (g->neg && g->num != 1))
		return kr_ks_guard_fail(g, KR_EPROTO, "bad reply: malformed length", err);
	if (g->neg) {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	if (g->type == '$') {
		if (g->num > KR_KS_REPLY_MAX_BYTES)
			return kr_ks_guard_fail(g, KR_ETOOBIG, "reply larger than 1 MiB", err);
		g->bulk_left = g->num + 2;
		g->state = KR_G_BULK;
		return KR_OK;
	}
	if (g->num > KR_KS_REPLY_MAX_ELEMENTS - g->elements)
		return kr_ks_guard_fail(g, KR_ETOOBIG, "reply of more than 10000 elements", err);
	if (g->depth == KR_KS_REPLY_MAX_DEPTH) /* an empty array counts: hiredis nests it too */
		return kr_ks_guard_fail(g, KR_EPROTO, "reply nested deeper than 7 levels", err);
	g->elements += (size_t)g->num;
	if (g->num == 0) {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	g->left[g->depth++] = (long long)g->num;
	g->state = KR_G_TYPE;
	return KR_OK;
}

/*
 * One byte of a header line; a line ends at CRLF, as hiredis reads it. Numbers are read
 * at least as strictly as hiredis does (no sign but '-', no leading zero, integers of at
 * most 18 digits), so whatever passes here parses there.
 */
static enum kr_status kr_ks_guard_line(struct kr_ks_resp_guard *g, char c, struct kr_error *err)
{
	int numeric = g->type == '$' || g->type == '*' || g->type == ':';

	if (c == '\n' && g->cr)
		return kr_ks_guard_header(g, err);
	if (numeric && g->cr)
		g->bad = 1; /* a CR inside a length */
	g->cr = c == '\r';
	if (!numeric || g->cr)
		return KR_OK;
	if (c == '-' && !g->neg && !g->digits) {
		g->neg = 1;
	} else if (c >= '0' && c <= '9') {
		if ((g->digits > 0 && g->num == 0) || (g->type == ':' && g->digits >= 18))
			g->bad = 1; /* a leading zero; an integer hiredis might overflow on */
		if (g->num < 1000000000000ull) /* past every cap already: stop counting */
			g->num = 10 * g->num + (unsigned)(c - '0');
		g->digits++;
	} else {
		g->bad = 1;
	}
	return KR_OK;
}

enum kr_status kr_ks_resp_guard_feed(struct kr_ks_resp_guard *g, const char *data, size_t len,
				     struct kr_error *err)
{
	size_t i = 0;

	if (g->state == KR_G_SPENT)
		return kr_error_set(err, KR_EPROTO, "bad reply: the reply stream was refused");
	while (i < len) {
		enum kr_status rc = KR_OK;
		size_t take = 1;

		if (g->state == KR_G_BULK) /* a string's body: skipped whole, never looked at */
			take = g->bulk_left < len - i ? (size_t)g->bulk_left : len - i;
		if (take > KR_KS_REPLY_MAX_BYTES - g->bytes)
			return kr_ks_guard_fail(g, KR_ETOOBIG, "reply larger than 1 MiB", err);
		g->bytes += take;
		if (g->state == KR_G_BULK) {
			g->bulk_left -= take;
			if (g->bulk_left == 0)
				kr_ks_guard_value(g);
		} else if (g->state == KR_G_LINE) {
			rc = kr_ks_guard_line(g, data[i], err);
		} else if (strchr("+-:$*", data[i]) && data[i] != '\0') {
			g->state = KR_G_LINE;
			g->type = data[i];
			g->neg = g->digits = g->bad = g->cr = 0;
			g->num = 0;
		} else {
			rc = kr_ks_guard_fail(g, KR_EPROTO, "bad reply: unknown reply type", err);
		}
		if (rc != KR_OK)
			return rc;
		i += take;
	}
	return KR_OK;
}
