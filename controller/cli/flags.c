/* flags.c - the one command-line flag parser and the help it generates from the same table. */
#include "cli/flags.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/schedule.h"

#define KR_FLAGS_MAX	     64 /* entries per table: one bit each in the "given" mask */
#define KR_FLAGS_HELP_INDENT 28 /* the help text's column */
#define KR_FLAGS_HELP_WIDTH  80 /* lines stay shorter than this */

static bool kr_flags_applies(const struct kr_flag *e, unsigned groups)
{
	return !e->groups || (e->groups & groups);
}

static bool kr_flags_end(const struct kr_flag *e)
{
	return !e->name && !e->help;
}

/* The applicable entry for "--name" (len bytes) or, with len 0, for "-c". */
static const struct kr_flag *kr_flags_find(const struct kr_flag *table, unsigned groups,
					   const char *name, size_t len, char c, size_t *index)
{
	for (const struct kr_flag *e = table; !kr_flags_end(e); e++) {
		if (!e->name || !kr_flags_applies(e, groups))
			continue;
		if (len ? strlen(e->name) == len && !strncmp(e->name, name, len)
			: e->shrt && e->shrt == c) {
			*index = (size_t)(e - table);
			return e;
		}
	}
	return NULL;
}

/* "1h", "10m", "5s", "100ms": the shortest exact unit, for ranges in messages and help. */
static void kr_flags_ms(long ms, char *buf, size_t size)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, size, "%ldh", ms / 3600000);
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, size, "%ldm", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, size, "%lds", ms / 1000);
	else
		snprintf(buf, size, "%ldms", ms);
}

static bool kr_flags_ranged(const struct kr_flag *e)
{
	return e->min != 0 || e->max != 0;
}

static enum kr_status kr_flags_int(const struct kr_flag *e, const char *v, const char *from,
				   long *dst, struct kr_error *err)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || (kr_flags_ranged(e) && (n < e->min || n > e->max))) {
		if (!kr_flags_ranged(e))
			return kr_error_set(err, KR_EINVAL, "%s: \"%s\" is not a number", from, v);
		return kr_error_set(err, KR_EINVAL, "%s: \"%s\" is not a number from %ld to %ld",
				    from, v, e->min, e->max);
	}
	*dst = n;
	return KR_OK;
}

static enum kr_status kr_flags_duration(const struct kr_flag *e, const char *v, const char *from,
					long *dst, struct kr_error *err)
{
	char lo[32], hi[32];
	int64_t ms;

	if (kr_duration_parse(v, &ms, NULL) != KR_OK ||
	    (kr_flags_ranged(e) && (ms < e->min || ms > e->max)) || ms > (int64_t)LONG_MAX) {
		if (!kr_flags_ranged(e))
			return kr_error_set(err, KR_EINVAL,
					    "%s: \"%s\" is not a duration (e.g. 500ms, 5s, 1h)",
					    from, v);
		kr_flags_ms(e->min, lo, sizeof(lo));
		kr_flags_ms(e->max, hi, sizeof(hi));
		return kr_error_set(
		    err, KR_EINVAL,
		    "%s: \"%s\" is not a duration from %s to %s (e.g. 500ms, 5s, 1h)", from, v, lo,
		    hi);
	}
	*dst = (long)ms;
	return KR_OK;
}

static enum kr_status kr_flags_bool(const char *v, const char *from, bool *dst,
				    struct kr_error *err)
{
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*dst = true;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*dst = false;
	else
		return kr_error_set(err, KR_EINVAL, "%s: \"%s\" is not true or false", from, v);
	return KR_OK;
}

static enum kr_status kr_flags_choice(const struct kr_flag *e, const char *v, const char *from,
				      const char **dst, struct kr_error *err)
{
	char list[256] = "";
	size_t n = 0, len = 0;

	for (const char *const *c = e->choices; *c; c++, n++)
		if (!strcmp(*c, v)) {
			*dst = *c;
			return KR_OK;
		}
	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					i == 0	     ? ""
					: i + 1 == n ? " or "
						     : ", ",
					e->choices[i]);
	if (n == 1)
		return kr_error_set(err, KR_EINVAL, "%s: \"%s\" is not supported (only %s)", from,
				    v, list);
	return kr_error_set(err, KR_EINVAL, "%s: \"%s\" is not %s", from, v, list);
}

static enum kr_status kr_flags_list(const struct kr_flag *e, const char *v, const char *from,
				    struct kr_flag_list *dst, struct kr_error *err)
{
	long max = e->max > 0 && e->max < KR_FLAG_LIST_MAX ? e->max : KR_FLAG_LIST_MAX;

	if ((long)dst->n >= max)
		return kr_error_set(err, KR_EINVAL, "%s: at most %ld values", from, max);
	dst->tags[dst->n] = e->tag;
	dst->values[dst->n++] = v;
	return KR_OK;
}

/* Store `v` (from the flag as typed, a variable or the default: `from`) into opts. */
static enum kr_status kr_flags_set(const struct kr_flag *e, const char *v, const char *from,
				   void *opts, struct kr_error *err)
{
	void *dst = (char *)opts + e->off;
	struct kr_error sub;
	enum kr_status rc;

	if (!v[0] && !(e->opts & KR_FLAG_EMPTY_OK))
		return kr_error_set(err, KR_EINVAL, "%s needs a non-empty value", from);
	switch (e->kind) {
	case KR_FLAG_STRING:
		*(const char **)dst = v;
		return KR_OK;
	case KR_FLAG_INT:
		return kr_flags_int(e, v, from, dst, err);
	case KR_FLAG_DURATION:
		return kr_flags_duration(e, v, from, dst, err);
	case KR_FLAG_BOOL:
		return kr_flags_bool(v, from, dst, err);
	case KR_FLAG_CHOICE:
		return kr_flags_choice(e, v, from, dst, err);
	case KR_FLAG_LIST:
		return kr_flags_list(e, v, from, dst, err);
	case KR_FLAG_CUSTOM:
		kr_error_clear(&sub);
		rc = e->parse(v, dst, &sub);
		if (rc != KR_OK)
			return kr_error_set(err, rc, "%s: %s", from, sub.msg);
		return KR_OK;
	}
	KR_BUG("flag --%s: unknown kind %d", e->name, (int)e->kind);
}

/* After the command line: the environment, else the default, for what was not given. */
static enum kr_status kr_flags_fallback(const struct kr_flag *table, unsigned groups,
					uint64_t given, void *opts, struct kr_error *err)
{
	enum kr_status rc;

	for (const struct kr_flag *e = table; !kr_flags_end(e); e++) {
		const char *v = e->env ? getenv(e->env) : NULL;
		char from[80];

		if (!e->name || !kr_flags_applies(e, groups) || (given >> (e - table) & 1))
			continue;
		if (v && v[0]) {
			rc = kr_flags_set(e, v, e->env, opts, err);
			if (rc != KR_OK)
				return rc;
		} else if (e->def) {
			snprintf(from, sizeof(from), "the default of --%s", e->name);
			rc = kr_flags_set(e, e->def, from, opts, err);
			if (rc != KR_OK)
				KR_BUG("%s", err->msg); /* the table is wrong */
		}
	}
	return KR_OK;
}

/* argv[i] is a flag ("-x..." or "--x..."): its entry, the name as typed, an attached value. */
static const struct kr_flag *kr_flags_lookup(const struct kr_flag *table, unsigned groups,
					     const char *a, char *typed, size_t size,
					     const char **value, size_t *index)
{
	size_t len = strcspn(a, "=");
	const struct kr_flag *e;

	snprintf(typed, size, "%.*s", (int)len, a);
	*value = NULL;
	if (a[1] == '-') {
		e = kr_flags_find(table, groups, a + 2, len - 2, 0, index);
		if (a[len] == '=')
			*value = a + len + 1;
		return e;
	}
	snprintf(typed, size, "-%c", a[1]);
	e = kr_flags_find(table, groups, NULL, 0, a[1], index);
	if (a[2])
		*value = a + 2 + (a[2] == '=');
	return e;
}

static bool kr_flags_is_arg(const char *a)
{
	return a[0] != '-' || a[1] == '\0';
}

enum kr_status kr_flags_parse(const struct kr_flag *table, unsigned groups, void *opts, int argc,
			      char **argv, int *nargs, struct kr_error *err)
{
	bool only_args = false;
	uint64_t given = 0;
	int w = 1;

	for (const struct kr_flag *e = table; !kr_flags_end(e); e++)
		if (e - table >= KR_FLAGS_MAX)
			KR_BUG("a flag table holds at most %d entries", KR_FLAGS_MAX);
	*nargs = 0;
	for (int i = 1; i < argc; i++) {
		const struct kr_flag *e;
		const char *value;
		char typed[64];
		size_t index = 0;
		enum kr_status rc;

		if (only_args || kr_flags_is_arg(argv[i])) {
			argv[w++] = argv[i];
			continue;
		}
		if (!strcmp(argv[i], "--")) {
			only_args = true;
			continue;
		}
		e = kr_flags_lookup(table, groups, argv[i], typed, sizeof(typed), &value, &index);
		if (!e)
			return kr_error_set(err, KR_EINVAL, "unknown option '%.*s'",
					    (int)strcspn(argv[i], "="), argv[i]);
		if (!value && e->kind == KR_FLAG_BOOL)
			value = "true";
		if (!value && i + 1 >= argc)
			return kr_error_set(err, KR_EINVAL, "%s needs a value", typed);
		if (!value)
			value = argv[++i];
		rc = kr_flags_set(e, value, typed, opts, err);
		if (rc != KR_OK)
			return rc;
		given |= (uint64_t)1 << index;
	}
	*nargs = w - 1;
	return kr_flags_fallback(table, groups, given, opts, err);
}

int kr_flags_first_arg(const struct kr_flag *table, unsigned groups, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const struct kr_flag *e;
		const char *value;
		char typed[64];
		size_t index;

		if (kr_flags_is_arg(argv[i]))
			return i;
		if (!strcmp(argv[i], "--"))
			return i + 1 < argc ? i + 1 : argc;
		e = kr_flags_lookup(table, groups, argv[i], typed, sizeof(typed), &value, &index);
		if (e && !value && e->kind != KR_FLAG_BOOL)
			i++; /* its value */
	}
	return argc;
}

/* ---- help ---- */

/* Word-wrapped output at the help column. */
struct kr_flags_wrap {
	FILE *out;
	int col;
	bool fresh; /* at the start of the text: no space before the next word */
};

static void kr_flags_word(struct kr_flags_wrap *w, const char *word, int len)
{
	if (!w->fresh && w->col + 1 + len >= KR_FLAGS_HELP_WIDTH) {
		fprintf(w->out, "\n%*s", KR_FLAGS_HELP_INDENT, "");
		w->col = KR_FLAGS_HELP_INDENT;
	} else if (!w->fresh) {
		fputc(' ', w->out);
		w->col++;
	}
	fprintf(w->out, "%.*s", len, word);
	w->col += len;
	w->fresh = false;
}

/* `text` split at blanks; '\n' starts a new line at the help column. */
static void kr_flags_wrap_text(struct kr_flags_wrap *w, const char *text)
{
	while (*text) {
		size_t len = strcspn(text, " \n");

		if (len)
			kr_flags_word(w, text, (int)len);
		text += len;
		if (*text == '\n') {
			fprintf(w->out, "\n%*s", KR_FLAGS_HELP_INDENT, "");
			w->col = KR_FLAGS_HELP_INDENT;
			w->fresh = true;
		}
		if (*text)
			text++;
	}
}

/* "(1..64; KEYROTATOR_WORKERS; default 4)", or "" when there is nothing to say. */
static void kr_flags_notes(const struct kr_flag *e, char *buf, size_t size)
{
	char lo[32], hi[32];
	size_t n = 0;

	buf[0] = '\0';
	if (kr_flags_ranged(e) && (e->kind == KR_FLAG_INT || e->kind == KR_FLAG_DURATION)) {
		if (e->kind == KR_FLAG_INT) {
			snprintf(lo, sizeof(lo), "%ld", e->min);
			snprintf(hi, sizeof(hi), "%ld", e->max);
		} else {
			kr_flags_ms(e->min, lo, sizeof(lo));
			kr_flags_ms(e->max, hi, sizeof(hi));
		}
		n += (size_t)snprintf(buf + n, size - n, "; %s..%s", lo, hi);
	}
	if (e->env && n < size)
		n += (size_t)snprintf(buf + n, size - n, "; %s%s", e->env,
				      e->kind == KR_FLAG_BOOL ? "=true|false" : "");
	if (e->def && n < size)
		n += (size_t)snprintf(buf + n, size - n, "; default %s", e->def);
	if (n > 0 && n < size) {
		buf[0] = '(';
		memmove(buf + 1, buf + 2, n - 1); /* "; x" -> "(x" */
		snprintf(buf + n - 1, size - (n - 1), ")");
	}
}

/* "-f, --filename FILE" or "--workers N" or "-o, --output text|json". */
static int kr_flags_left(FILE *out, const struct kr_flag *e)
{
	int col = fprintf(out, "  ");

	if (e->shrt)
		col += fprintf(out, "-%c, ", e->shrt);
	col += fprintf(out, "--%s", e->name);
	if (e->metavar) {
		col += fprintf(out, " %s", e->metavar);
	} else if (e->kind == KR_FLAG_CHOICE) {
		for (const char *const *c = e->choices; *c; c++)
			col += fprintf(out, "%c%s", c == e->choices ? ' ' : '|', *c);
	}
	return col;
}

void kr_flags_help(FILE *out, const struct kr_flag *table, unsigned groups)
{
	bool any = false;

	for (const struct kr_flag *e = table; !kr_flags_end(e); e++) {
		struct kr_flags_wrap w = {out, 0, true};
		char notes[256];

		if (!kr_flags_applies(e, groups))
			continue;
		if (!e->name) {
			fprintf(out, "%s%s\n", any ? "\n" : "", e->help);
			any = true;
			continue;
		}
		any = true;
		w.col = kr_flags_left(out, e);
		if (w.col + 2 > KR_FLAGS_HELP_INDENT)
			w.col += fprintf(out, "  ");
		else
			w.col += fprintf(out, "%*s", KR_FLAGS_HELP_INDENT - w.col, "");
		kr_flags_wrap_text(&w, e->help ? e->help : "");
		kr_flags_notes(e, notes, sizeof(notes));
		kr_flags_wrap_text(&w, notes);
		fputc('\n', out);
	}
}
