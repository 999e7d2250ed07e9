/* promtext.c - a streaming parser for the Prometheus text exposition format (0.0.4). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

/* The defaults are in analysis.h (KR_PROMTEXT_MAX_*), with why they are what they are. */
#define PT_DEFAULT_MAX_BYTES   KR_PROMTEXT_MAX_BYTES
#define PT_DEFAULT_MAX_LINE    KR_PROMTEXT_MAX_LINE
#define PT_DEFAULT_MAX_SAMPLES KR_PROMTEXT_MAX_SAMPLES

/*
 * The line being parsed. Unescaped strings are written into p->scratch, which is grown
 * once per line to a size no line can outgrow (each string is at most as long as its
 * source, plus its NUL), so offsets stay valid and pointers are taken only at the end.
 */
struct pt_cursor {
	struct kr_promtext *p;
	const char *s;
	size_t i, n;
	size_t name_off;
	size_t nlabels;
};

const char *kr_prom_type_name(enum kr_prom_type type)
{
	static const char *const names[] = {"untyped", "counter", "gauge", "histogram", "summary"};

	if ((unsigned)type >= sizeof(names) / sizeof(names[0]))
		return "untyped";
	return names[type];
}

void kr_promtext_init(struct kr_promtext *p, const struct kr_promtext_limits *limits,
		      kr_promtext_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	if (limits)
		p->limits = *limits;
	if (!p->limits.max_bytes)
		p->limits.max_bytes = PT_DEFAULT_MAX_BYTES;
	if (!p->limits.max_line)
		p->limits.max_line = PT_DEFAULT_MAX_LINE;
	if (!p->limits.max_samples)
		p->limits.max_samples = PT_DEFAULT_MAX_SAMPLES;
	p->fn = fn;
	p->arg = arg;
	kr_buf_init(&p->line);
	kr_buf_init(&p->scratch);
	kr_buf_init(&p->family);
}

void kr_promtext_release(struct kr_promtext *p)
{
	kr_buf_release(&p->line);
	kr_buf_release(&p->scratch);
	kr_buf_release(&p->family);
	free(p->labels);
	free(p->offsets);
	p->labels = NULL;
	p->offsets = NULL;
	p->labels_cap = p->offsets_cap = 0;
}

static int pt_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void pt_skip_blanks(struct pt_cursor *c)
{
	while (c->i < c->n && pt_blank(c->s[c->i]))
		c->i++;
}

static enum kr_status pt_fail(struct pt_cursor *c, struct kr_error *err, const char *what)
{
	return kr_error_set(err, KR_EPROTO, "line %zu: %s", c->p->lineno, what);
}

/* Start a string in scratch; returns its offset. */
static size_t pt_begin(struct pt_cursor *c)
{
	return c->p->scratch.len;
}

static void pt_put(struct pt_cursor *c, char ch)
{
	c->p->scratch.data[c->p->scratch.len++] = ch;
}

static void pt_end(struct pt_cursor *c)
{
	c->p->scratch.data[c->p->scratch.len++] = '\0';
}

static const char *pt_str(const struct pt_cursor *c, size_t off)
{
	return c->p->scratch.data + off;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names (colons allowed), without colons for labels. */
static int pt_ident(struct pt_cursor *c, int colons, size_t *off)
{
	size_t start = c->i;

	while (c->i < c->n) {
		char ch = c->s[c->i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
			 (colons && ch == ':') || (c->i > start && ch >= '0' && ch <= '9');

		if (!ok)
			break;
		c->i++;
	}
	if (c->i == start)
		return 0;
	*off = pt_begin(c);
	for (size_t k = start; k < c->i; k++)
		pt_put(c, c->s[k]);
	pt_end(c);
	return 1;
}

/* A "quoted" string with \\, \" and \n escapes; the cursor is on the opening quote. */
static enum kr_status pt_quoted(struct pt_cursor *c, const char *what, size_t *off,
				struct kr_error *err)
{
	*off = pt_begin(c);
	c->i++;
	while (c->i < c->n && c->s[c->i] != '"') {
		char ch = c->s[c->i++];

		/* A NUL would cut the C string the callback sees: "401\0x" must not read "401". */
		if (ch == '\0')
			return kr_error_set(err, KR_EPROTO, "line %zu: %s: NUL byte",
					    c->p->lineno, what);
		if (ch == '\\') {
			char e = c->i < c->n ? c->s[c->i++] : '\0';

			if (e == 'n')
				ch = '\n';
			else if (e == '\\' || e == '"')
				ch = e;
			else
				return kr_error_set(err, KR_EPROTO,
						    "line %zu: %s: invalid escape sequence (only "
						    "\\\\, \\\" and \\n)",
						    c->p->lineno, what);
		}
		pt_put(c, ch);
	}
	if (c->i >= c->n)
		return kr_error_set(err, KR_EPROTO, "line %zu: %s: missing closing quote",
				    c->p->lineno, what);
	c->i++;
	pt_end(c);
	return KR_OK;
}

static enum kr_status pt_add_label(struct pt_cursor *c, size_t name, size_t value,
				   struct kr_error *err)
{
	struct kr_promtext *p = c->p;

	for (size_t k = 0; k < c->nlabels; k++) {
		if (strcmp(pt_str(c, p->offsets[2 * k]), pt_str(c, name)) == 0)
			return kr_error_set(err, KR_EPROTO,
					    "line %zu: label %zu: the same name as label %zu",
					    p->lineno, c->nlabels + 1, k + 1);
	}
	if (2 * c->nlabels + 2 > p->offsets_cap) {
		size_t cap = p->offsets_cap ? 2 * p->offsets_cap : 32;
		size_t *o = realloc(p->offsets, cap * sizeof(*o));

		if (!o)
			return kr_error_set(err, KR_ENOMEM, "out of memory parsing line %zu",
					    p->lineno);
		p->offsets = o;
		p->offsets_cap = cap;
	}
	p->offsets[2 * c->nlabels] = name;
	p->offsets[2 * c->nlabels + 1] = value;
	c->nlabels++;
	return KR_OK;
}

/*
 * One `name="value"` (or a lone quoted metric name first inside the braces). Messages
 * name a label by its position: its name is the scraped server's text (analysis.h).
 */
static enum kr_status pt_label(struct pt_cursor *c, int first, struct kr_error *err)
{
	size_t name, value;
	enum kr_status rc;
	char what[80];

	if (c->s[c->i] == '"') {
		rc = pt_quoted(c, "quoted name", &name, err);
		if (rc != KR_OK)
			return rc;
		if (!*pt_str(c, name))
			return kr_error_set(err, KR_EPROTO, "line %zu: empty quoted name",
					    c->p->lineno);
		pt_skip_blanks(c);
		if (first && c->name_off == (size_t)-1 && (c->i >= c->n || c->s[c->i] != '=')) {
			c->name_off = name;
			return KR_OK;
		}
	} else if (!pt_ident(c, 0, &name)) {
		return pt_fail(c, err, "invalid label name");
	}
	pt_skip_blanks(c);
	snprintf(what, sizeof(what), "label %zu", c->nlabels + 1);
	if (c->i >= c->n || c->s[c->i] != '=') {
		strncat(what, ": expected '=' after the name", sizeof(what) - strlen(what) - 1);
		return pt_fail(c, err, what);
	}
	c->i++;
	pt_skip_blanks(c);
	if (c->i >= c->n || c->s[c->i] != '"') {
		strncat(what, ": value must be a quoted string", sizeof(what) - strlen(what) - 1);
		return pt_fail(c, err, what);
	}
	rc = pt_quoted(c, what, &value, err);
	if (rc != KR_OK)
		return rc;
	return pt_add_label(c, name, value, err);
}

static enum kr_status pt_labels(struct pt_cursor *c, struct kr_error *err)
{
	enum kr_status rc;
	int first = 1;

	c->i++; /* '{' */
	for (;;) {
		pt_skip_blanks(c);
		if (c->i >= c->n)
			return pt_fail(c, err, "missing '}' after the labels");
		if (c->s[c->i] == '}')
			break;
		rc = pt_label(c, first, err);
		if (rc != KR_OK)
			return rc;
		first = 0;
		pt_skip_blanks(c);
		if (c->i < c->n && c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->i < c->n && c->s[c->i] == '}')
			break;
		return pt_fail(c, err, "expected ',' or '}' after a label");
	}
	c->i++;
	return KR_OK;
}

/* The next blank-delimited token, copied into scratch for strtod/strtoll. */
static size_t pt_token(struct pt_cursor *c, size_t *len)
{
	size_t start = c->i, off = pt_begin(c);

	while (c->i < c->n && !pt_blank(c->s[c->i]))
		pt_put(c, c->s[c->i++]);
	pt_end(c);
	*len = c->i - start;
	return off;
}

/* Go's ParseFloat: decimal or hex, exponents, Inf/+Inf/-Inf/NaN (any case). */
static int pt_parse_float(const char *t, size_t len, double *out)
{
	char *end = NULL;

	if (len == 0 || strchr(t, '(') || strchr(t, '_'))
		return 0;
	errno = 0;
	*out = strtod(t, &end);
	if (end != t + len)
		return 0;
	/* Go accepts overflow as +-Inf with an error; a sample that big is malformed. */
	return !(errno == ERANGE && (*out > 1.0 || *out < -1.0));
}

static int pt_parse_int64(const char *t, size_t len, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (len == 0 || t[0] == ' ')
		return 0;
	errno = 0;
	v = strtoll(t, &end, 10);
	if (end != t + len || errno == ERANGE)
		return 0;
	*out = (int64_t)v;
	return 1;
}

static int pt_has_suffix(const char *name, const char *family, const char *suffix)
{
	size_t fl = strlen(family);

	return strncmp(name, family, fl) == 0 && strcmp(name + fl, suffix) == 0;
}

/* Which family a sample name belongs to, given the last HELP/TYPE line. */
static int pt_in_family(const struct kr_promtext *p, const char *name)
{
	const char *fam = p->family.data;

	if (!p->family.len)
		return 0;
	if (strcmp(name, fam) == 0)
		return 1;
	switch (p->family_type) {
	case KR_PROM_HISTOGRAM:
		return pt_has_suffix(name, fam, "_bucket") || pt_has_suffix(name, fam, "_count") ||
		       pt_has_suffix(name, fam, "_sum") || pt_has_suffix(name, fam, "_created");
	case KR_PROM_SUMMARY:
		return pt_has_suffix(name, fam, "_count") || pt_has_suffix(name, fam, "_sum") ||
		       pt_has_suffix(name, fam, "_created");
	case KR_PROM_COUNTER:
		return pt_has_suffix(name, fam, "_total") || pt_has_suffix(name, fam, "_created");
	default:
		return 0;
	}
}

static enum kr_status pt_emit(struct pt_cursor *c, struct kr_prom_sample *smp, struct kr_error *err)
{
	struct kr_promtext *p = c->p;

	if (c->nlabels > p->labels_cap) {
		size_t cap = c->nlabels < 16 ? 16 : c->nlabels;
		struct kr_prom_label *l = realloc(p->labels, cap * sizeof(*l));

		if (!l)
			return kr_error_set(err, KR_ENOMEM, "out of memory parsing line %zu",
					    p->lineno);
		p->labels = l;
		p->labels_cap = cap;
	}
	for (size_t k = 0; k < c->nlabels; k++) {
		p->labels[k].name = pt_str(c, p->offsets[2 * k]);
		p->labels[k].value = pt_str(c, p->offsets[2 * k + 1]);
	}
	smp->name = pt_str(c, c->name_off);
	smp->labels = p->labels;
	smp->nlabels = c->nlabels;
	smp->line = p->lineno;
	if (pt_in_family(p, smp->name)) {
		smp->family = p->family.data;
		smp->type = p->family_type;
		p->family_has_samples = 1;
	} else {
		smp->family = smp->name;
		smp->type = KR_PROM_UNTYPED;
	}
	if (++p->samples > p->limits.max_samples)
		return kr_error_set(err, KR_ETOOBIG, "line %zu: more than %zu samples", p->lineno,
				    p->limits.max_samples);
	return p->fn(p->arg, smp, err);
}

static enum kr_status pt_value_and_timestamp(struct pt_cursor *c, struct kr_prom_sample *smp,
					     struct kr_error *err)
{
	size_t len, off;

	pt_skip_blanks(c);
	if (c->i >= c->n)
		return pt_fail(c, err, "missing value");
	off = pt_token(c, &len);
	if (!pt_parse_float(pt_str(c, off), len, &smp->value))
		return pt_fail(c, err, "invalid value (not a number)");
	pt_skip_blanks(c);
	if (c->i >= c->n)
		return KR_OK;
	off = pt_token(c, &len);
	if (!pt_parse_int64(pt_str(c, off), len, &smp->timestamp_ms))
		return pt_fail(c, err, "invalid timestamp (not an integer of milliseconds)");
	smp->has_timestamp = 1;
	pt_skip_blanks(c);
	if (c->i < c->n)
		return pt_fail(c, err, "unexpected text after the timestamp");
	return KR_OK;
}

static enum kr_status pt_sample(struct pt_cursor *c, struct kr_error *err)
{
	struct kr_prom_sample smp;
	enum kr_status rc;

	memset(&smp, 0, sizeof(smp));
	c->name_off = (size_t)-1;
	if (c->s[c->i] != '{' && !pt_ident(c, 1, &c->name_off))
		return pt_fail(c, err, "invalid metric name");
	if (c->i < c->n && c->s[c->i] != '{' && !pt_blank(c->s[c->i]))
		return pt_fail(c, err, "invalid metric name");
	pt_skip_blanks(c); /* "name {labels}" is allowed, as in client_golang's parser */
	if (c->i < c->n && c->s[c->i] == '{') {
		rc = pt_labels(c, err);
		if (rc != KR_OK)
			return rc;
		if (c->i < c->n && !pt_blank(c->s[c->i]))
			return pt_fail(c, err, "expected a blank between the labels and the value");
	}
	if (c->name_off == (size_t)-1)
		return pt_fail(c, err, "no metric name");
	rc = pt_value_and_timestamp(c, &smp, err);
	if (rc != KR_OK)
		return rc;
	return pt_emit(c, &smp, err);
}

static enum kr_status pt_set_family(struct pt_cursor *c, size_t name_off)
{
	struct kr_promtext *p = c->p;

	if (p->family.len && strcmp(p->family.data, pt_str(c, name_off)) == 0)
		return KR_OK;
	kr_buf_reset(&p->family);
	p->family_type = KR_PROM_UNTYPED;
	p->family_has_samples = 0;
	return kr_buf_adds(&p->family, pt_str(c, name_off));
}

static enum kr_status pt_type(struct pt_cursor *c, size_t name_off, struct kr_error *err)
{
	static const char *const types[] = {"untyped", "counter", "gauge", "histogram", "summary"};
	struct kr_promtext *p = c->p;
	size_t len, off;

	pt_skip_blanks(c);
	off = pt_token(c, &len);
	pt_skip_blanks(c);
	if (len == 0 || c->i < c->n)
		return pt_fail(c, err, "TYPE takes a metric name and one type");
	if (pt_set_family(c, name_off) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "out of memory parsing line %zu", p->lineno);
	if (p->family_has_samples)
		return pt_fail(c, err, "TYPE after the samples of its metric");
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		if (strcmp(pt_str(c, off), types[k]) == 0) {
			p->family_type = (enum kr_prom_type)k;
			return KR_OK;
		}
	}
	return pt_fail(c, err,
		       "unknown metric type (want counter, gauge, histogram, summary or untyped)");
}

/* HELP text may hold any UTF-8, but only \\ and \n escapes. */
static enum kr_status pt_help(struct pt_cursor *c, size_t name_off, struct kr_error *err)
{
	for (size_t k = c->i; k < c->n; k++) {
		if (c->s[k] != '\\')
			continue;
		if (k + 1 >= c->n || (c->s[k + 1] != '\\' && c->s[k + 1] != 'n'))
			return kr_error_set(
			    err, KR_EPROTO,
			    "line %zu: HELP text: invalid escape sequence (only \\\\ and \\n)",
			    c->p->lineno);
		k++;
	}
	if (pt_set_family(c, name_off) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "out of memory parsing line %zu", c->p->lineno);
	return KR_OK;
}

/* "# HELP name text", "# TYPE name type"; any other comment is ignored. */
static enum kr_status pt_comment(struct pt_cursor *c, struct kr_error *err)
{
	size_t len, off, name_off;
	int help;
	enum kr_status rc;

	c->i++;
	pt_skip_blanks(c);
	off = pt_token(c, &len);
	help = strcmp(pt_str(c, off), "HELP") == 0;
	if (!help && strcmp(pt_str(c, off), "TYPE") != 0)
		return KR_OK;
	pt_skip_blanks(c);
	if (c->i < c->n && c->s[c->i] == '"') {
		rc = pt_quoted(c, "quoted name", &name_off, err);
		if (rc != KR_OK)
			return rc;
	} else if (!pt_ident(c, 1, &name_off)) {
		return pt_fail(c, err,
			       help ? "HELP without a valid metric name"
				    : "TYPE without a valid metric name");
	}
	if (c->i < c->n && !pt_blank(c->s[c->i]))
		return pt_fail(c, err, "invalid metric name");
	pt_skip_blanks(c);
	return help ? pt_help(c, name_off, err) : pt_type(c, name_off, err);
}

static enum kr_status pt_line(struct kr_promtext *p, const char *s, size_t n, struct kr_error *err)
{
	struct pt_cursor c = {.p = p, .s = s, .n = n};

	p->lineno++;
	while (n > 0 && (pt_blank(s[n - 1]) || s[n - 1] == '\r'))
		n--;
	while (n > 0 && pt_blank(*s)) {
		s++;
		n--;
	}
	if (n == 0)
		return KR_OK;
	kr_buf_reset(&p->scratch);
	if (kr_buf_grow(&p->scratch, 2 * n + 16) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "out of memory parsing line %zu", p->lineno);
	c.s = s;
	c.n = n;
	return s[0] == '#' ? pt_comment(&c, err) : pt_sample(&c, err);
}

enum kr_status kr_promtext_feed(struct kr_promtext *p, const char *data, size_t len,
				struct kr_error *err)
{
	enum kr_status rc;

	if (p->failed != KR_OK)
		return kr_error_set(err, p->failed, "exposition parser stopped at line %zu",
				    p->lineno);
	if (len > p->limits.max_bytes - p->bytes) {
		char size[24];

		kr_analysis_size_text(p->limits.max_bytes, size);
		p->failed = KR_ETOOBIG;
		return kr_error_set(err, KR_ETOOBIG, "exposition larger than %s", size);
	}
	p->bytes += len;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t piece = nl ? (size_t)(nl - data) : len;

		if (p->line.len + piece > p->limits.max_line) {
			p->failed = KR_ETOOBIG;
			return kr_error_set(err, KR_ETOOBIG, "line %zu: longer than %zu bytes",
					    p->lineno + 1, p->limits.max_line);
		}
		if (kr_buf_add(&p->line, data, piece) != KR_OK) {
			rc = kr_error_set(err, KR_ENOMEM, "out of memory reading line %zu",
					  p->lineno + 1);
		} else if (nl) {
			rc = pt_line(p, p->line.data, p->line.len, err);
			kr_buf_reset(&p->line);
		} else {
			rc = KR_OK;
		}
		if (rc != KR_OK) {
			p->failed = rc;
			return rc;
		}
		data += piece + (nl ? 1 : 0);
		len -= piece + (nl ? 1 : 0);
	}
	return KR_OK;
}

enum kr_status kr_promtext_finish(struct kr_promtext *p, struct kr_error *err)
{
	enum kr_status rc;

	if (p->failed != KR_OK)
		return kr_error_set(err, p->failed, "exposition parser stopped at line %zu",
				    p->lineno);
	if (!p->line.len)
		return KR_OK;
	rc = pt_line(p, p->line.data, p->line.len, err);
	kr_buf_reset(&p->line);
	if (rc != KR_OK)
		p->failed = rc;
	return rc;
}

enum kr_status kr_promtext_parse(const char *text, size_t len,
				 const struct kr_promtext_limits *limits, kr_promtext_fn fn,
				 void *arg, struct kr_error *err)
{
	struct kr_promtext p;
	enum kr_status rc;

	kr_promtext_init(&p, limits, fn, arg);
	rc = kr_promtext_feed(&p, text, len, err);
	if (rc == KR_OK)
		rc = kr_promtext_finish(&p, err);
	kr_promtext_release(&p);
	return rc;
}
