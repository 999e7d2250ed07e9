/* cron.c - 5-field cron expressions as Vixie cron reads them, and their next run in UTC. */
#include "rotation/schedule.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KR_CRON_FIELDS	     5
#define KR_CRON_SEARCH_YEARS 401	      /* one whole Gregorian cycle, and then some */
#define KR_CRON_TIME_MIN     (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define KR_CRON_YEAR_MAX     9999

struct kr_cron_field {
	const char *name;
	int min, max;
	const char *const *names; /* NULL: numbers only; else names[i] is min + i */
	const char *names_hint;	  /* "jan-dec" */
};

static const char *const kr_cron_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
					     "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const kr_cron_days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct kr_cron_field kr_cron_fields[KR_CRON_FIELDS] = {
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day of month", 1, 31, NULL, NULL},
    {"month", 1, 12, kr_cron_months, "jan-dec"},
    {"day of week", 0, 7, kr_cron_days, "sun-sat"},
};

/* What a macro stands for; @reboot is handled separately (refused). */
static const struct {
	const char *name;
	const char *expr;
} kr_cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},	  {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* The field being parsed, for error messages. */
struct kr_cron_ctx {
	int index; /* 0-based */
	const struct kr_cron_field *f;
	struct kr_error *err;
	const char *elem; /* the list element being parsed, elem_len bytes */
	int elem_len;
};

static enum kr_status kr_cron_fail(const struct kr_cron_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum kr_status kr_cron_fail(const struct kr_cron_ctx *c, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return kr_error_set(c->err, KR_EINVAL, "schedule: field %d (%s): %s", c->index + 1,
			    c->f->name, detail);
}

static bool kr_cron_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A number or a name at *p (up to e), checked against the field's range. */
static enum kr_status kr_cron_value(const struct kr_cron_ctx *c, const char **p, const char *e,
				    int *out)
{
	const char *s = *p;
	bool digits = true;
	long v = 0;

	while (*p < e && kr_cron_alnum(**p)) {
		if (**p < '0' || **p > '9')
			digits = false;
		else if (v < 1000000)
			v = v * 10 + (**p - '0');
		(*p)++;
	}
	int len = (int)(*p - s);
	if (len == 0)
		return kr_cron_fail(c, "expected a number%s in \"%.*s\"",
				    c->f->names ? " or a name" : "", c->elem_len, c->elem);
	if (!digits) {
		for (int i = 0; c->f->names && c->f->names[i]; i++) {
			if (len == 3 && !strncasecmp(c->f->names[i], s, 3)) {
				*out = c->f->min + i;
				return KR_OK;
			}
		}
		if (c->f->names)
			return kr_cron_fail(c, "unknown name \"%.*s\" (use %s)",
					    len > 32 ? 32 : len, s, c->f->names_hint);
		return kr_cron_fail(c, "\"%.*s\" is not a number", len > 32 ? 32 : len, s);
	}
	if (v < c->f->min || v > c->f->max)
		return kr_cron_fail(c, "%.*s is out of range %d-%d", len > 32 ? 32 : len, s,
				    c->f->min, c->f->max);
	*out = (int)v;
	return KR_OK;
}

/* The "/step" part: a plain number from 1 to the field's span. */
static enum kr_status kr_cron_step(const struct kr_cron_ctx *c, const char **p, const char *e,
				   int *step)
{
	const char *s = *p;
	long v = 0;

	while (*p < e && **p >= '0' && **p <= '9') {
		if (v < 1000000)
			v = v * 10 + (**p - '0');
		(*p)++;
	}
	if (*p == s)
		return kr_cron_fail(c, "expected a step number after '/' in \"%.*s\"", c->elem_len,
				    c->elem);
	if (v == 0)
		return kr_cron_fail(c, "step 0: a step must be at least 1");
	if (v > c->f->max - c->f->min)
		return kr_cron_fail(c, "step %.*s is larger than the field's span %d-%d",
				    (int)(*p - s > 16 ? 16 : *p - s), s, c->f->min, c->f->max);
	*step = (int)v;
	return KR_OK;
}

/* Parse "*", "a", "a-b", each with an optional "/step", or "a/step" (a to the end). */
static enum kr_status kr_cron_element(struct kr_cron_ctx *c, const char *s, const char *e,
				      uint64_t *bits)
{
	const char *p = s;
	bool star = false, range = false;
	int lo = c->f->min, hi = c->f->max, step = 1;
	enum kr_status rc;

	c->elem = s;
	c->elem_len = (int)(e - s > 32 ? 32 : e - s);
	if (s == e)
		return kr_cron_fail(c, "empty list element");
	if (*p == '*') {
		star = true;
		p++;
	} else {
		rc = kr_cron_value(c, &p, e, &lo);
		if (rc != KR_OK)
			return rc;
		hi = lo;
		if (p < e && *p == '-') {
			p++;
			range = true;
			rc = kr_cron_value(c, &p, e, &hi);
			if (rc != KR_OK)
				return rc;
			/* Day of week: "fri-sun" is 5-0, meaning 5-7 (cronie). */
			if (c->f->max == 7 && hi == 0 && lo > 0)
				hi = 7;
			if (lo > hi)
				return kr_cron_fail(c, "range %d-%d runs backwards", lo, hi);
		}
	}
	if (p < e && *p == '/') {
		p++;
		rc = kr_cron_step(c, &p, e, &step);
		if (rc != KR_OK)
			return rc;
		if (!star && !range)
			hi = c->f->max; /* "5/15" is "5-59/15" */
	}
	if (p != e)
		return kr_cron_fail(c, "unexpected \"%.*s\" in \"%.*s\"",
				    (int)(e - p > 16 ? 16 : e - p), p,
				    (int)(e - s > 32 ? 32 : e - s), s);
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return KR_OK;
}

/* A comma-separated list of elements in [s, e). */
static enum kr_status kr_cron_list(int index, const char *s, const char *e, uint64_t *bits,
				   struct kr_error *err)
{
	struct kr_cron_ctx c = {index, &kr_cron_fields[index], err, s, 0};
	enum kr_status rc;

	*bits = 0;
	for (const char *p = s;;) {
		const char *q = memchr(p, ',', (size_t)(e - p));

		rc = kr_cron_element(&c, p, q ? q : e, bits);
		if (rc != KR_OK)
			return rc;
		if (!q)
			break;
		p = q + 1;
	}
	/* Sunday is both 0 and 7. */
	if (index == 4 && (*bits & 0x81))
		*bits |= 0x81;
	return KR_OK;
}

static bool kr_cron_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Split at blanks; fills up to `max` fields and returns how many there are in all. */
static int kr_cron_split(const char *expr, const char *start[], const char *end[], int max)
{
	const char *p = expr;
	int n = 0;

	for (;;) {
		while (*p && kr_cron_blank(*p))
			p++;
		if (!*p)
			return n;
		const char *s = p;
		while (*p && !kr_cron_blank(*p))
			p++;
		if (n < max) {
			start[n] = s;
			end[n] = p;
		}
		n++;
	}
}

/* Under the AND rule, some month must have one of the days (Feb: 29, the leap case). */
static bool kr_cron_possible(const struct kr_cron *c)
{
	if (!c->dom_star && !c->dow_star)
		return true; /* OR rule: every month has every weekday */
	for (int m = 1; m <= 12; m++) {
		if (!(c->month >> m & 1))
			continue;
		for (int d = 1; d <= kr_days_in_month(2000, m); d++)
			if (c->dom >> d & 1)
				return true;
	}
	return false;
}

static enum kr_status kr_cron_macro(const char *s, const char *e, int nfields, struct kr_cron *out,
				    struct kr_error *err)
{
	int len = (int)(e - s);

	if (len == 7 && !strncasecmp(s, "@reboot", 7))
		return kr_error_set(err, KR_EINVAL,
				    "schedule: @reboot is not supported: a controller has no boot "
				    "to run at; use a time, e.g. @daily or \"0 3 * * *\"");
	for (size_t i = 0; i < sizeof(kr_cron_macros) / sizeof(kr_cron_macros[0]); i++) {
		if ((int)strlen(kr_cron_macros[i].name) != len ||
		    strncasecmp(kr_cron_macros[i].name, s, (size_t)len))
			continue;
		if (nfields > 1)
			return kr_error_set(err, KR_EINVAL, "schedule: unexpected text after %s",
					    kr_cron_macros[i].name);
		return kr_cron_parse(kr_cron_macros[i].expr, out, err);
	}
	return kr_error_set(err, KR_EINVAL,
			    "schedule: unknown macro \"%.*s\" (use @yearly, @annually, @monthly, "
			    "@weekly, @daily, @midnight or @hourly)",
			    len > 32 ? 32 : len, s);
}

enum kr_status kr_cron_parse(const char *expr, struct kr_cron *out, struct kr_error *err)
{
	const char *start[KR_CRON_FIELDS], *end[KR_CRON_FIELDS];
	uint64_t bits[KR_CRON_FIELDS];
	struct kr_cron c;
	enum kr_status rc;
	int n;

	n = kr_cron_split(expr ? expr : "", start, end, KR_CRON_FIELDS);
	if (n == 0)
		return kr_error_set(err, KR_EINVAL, "schedule: empty expression");
	if (*start[0] == '@')
		return kr_cron_macro(start[0], end[0], n, out, err);
	if (n != KR_CRON_FIELDS)
		return kr_error_set(err, KR_EINVAL,
				    "schedule: expected 5 fields (minute hour day-of-month month "
				    "day-of-week), got %d",
				    n);
	for (int i = 0; i < KR_CRON_FIELDS; i++) {
		rc = kr_cron_list(i, start[i], end[i], &bits[i], err);
		if (rc != KR_OK)
			return rc;
	}
	c.minute = bits[0];
	c.hour = (uint32_t)bits[1];
	c.dom = (uint32_t)bits[2];
	c.month = (uint16_t)bits[3];
	c.dow = (uint8_t)bits[4];
	c.dom_star = *start[2] == '*';
	c.dow_star = *start[4] == '*';
	if (!kr_cron_possible(&c))
		return kr_error_set(err, KR_EINVAL,
				    "schedule: never matches: no month in field 4 (month) has a "
				    "day from field 3 (day of month)");
	*out = c;
	return KR_OK;
}

/* Vixie's day rule: AND when either day field starts with '*', else OR. */
static bool kr_cron_day(const struct kr_cron *c, int64_t year, int month, int day)
{
	int64_t days = kr_days_from_civil(year, month, day);
	int weekday = (int)(((days % 7) + 11) % 7);
	bool dom = c->dom >> day & 1, dow = c->dow >> weekday & 1;

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

bool kr_cron_matches(const struct kr_cron *c, time_t t)
{
	struct kr_utc u;

	kr_time_to_utc(t, &u);
	return (c->minute >> u.minute & 1) && (c->hour >> u.hour & 1) &&
	       (c->month >> u.month & 1) && kr_cron_day(c, u.year, u.month, u.day);
}

static int kr_cron_next_bit(uint64_t bits, int from, int max)
{
	for (int i = from; i <= max; i++)
		if (bits >> i & 1)
			return i;
	return -1;
}

static void kr_cron_next_month(struct kr_utc *u)
{
	u->day = 1;
	u->hour = 0;
	u->minute = 0;
	if (++u->month > 12) {
		u->month = 1;
		u->year++;
	}
}

static void kr_cron_next_day(struct kr_utc *u)
{
	u->hour = 0;
	u->minute = 0;
	if (++u->day > kr_days_in_month(u->year, u->month))
		kr_cron_next_month(u);
}

enum kr_status kr_cron_next(const struct kr_cron *c, time_t after, time_t *next,
			    struct kr_error *err)
{
	struct kr_utc u;
	int64_t limit;
	int h, m;

	if ((int64_t)after < KR_CRON_TIME_MIN)
		return kr_error_set(err, KR_EINVAL, "schedule: start time is before year 0000");
	if ((int64_t)after >= (int64_t)253402300800LL)
		return kr_error_set(err, KR_EINVAL, "schedule: no run time before year 10000");
	/* The next whole minute; after >= KR_CRON_TIME_MIN, so plain division floors. */
	kr_time_to_utc(
	    (time_t)(((int64_t)after - KR_CRON_TIME_MIN) / 60 * 60 + KR_CRON_TIME_MIN + 60), &u);
	limit = u.year + KR_CRON_SEARCH_YEARS;
	for (;;) {
		if (u.year > KR_CRON_YEAR_MAX)
			return kr_error_set(err, KR_EINVAL,
					    "schedule: no run time before year 10000");
		if (u.year > limit)
			return kr_error_set(err, KR_EINVAL, "schedule never matches");
		if (!(c->month >> u.month & 1)) {
			kr_cron_next_month(&u);
			continue;
		}
		if (!kr_cron_day(c, u.year, u.month, u.day)) {
			kr_cron_next_day(&u);
			continue;
		}
		h = kr_cron_next_bit(c->hour, u.hour, 23);
		if (h < 0) {
			kr_cron_next_day(&u);
			continue;
		}
		if (h != u.hour) {
			u.hour = h;
			u.minute = 0;
		}
		m = kr_cron_next_bit(c->minute, u.minute, 59);
		if (m < 0) {
			u.minute = 0;
			if (++u.hour > 23)
				kr_cron_next_day(&u);
			continue;
		}
		u.minute = m;
		u.second = 0;
		*next = kr_time_from_utc(&u);
		return KR_OK;
	}
}

enum kr_status kr_cron_min_gap(const struct kr_cron *c, int64_t *min_s, bool *uniform,
			       struct kr_error *err)
{
	const time_t start = (time_t)946684800; /* 2000-01-01T00:00:00Z */
	time_t first, prev, next;
	int64_t gap, max_s = 0;
	enum kr_status rc;

	*min_s = INT64_MAX;
	*uniform = true;
	rc = kr_cron_next(c, start - 1, &first, err);
	if (rc != KR_OK)
		return rc;
	prev = first;
	for (int i = 1; i < KR_CRON_GAP_RUNS; i++) {
		if (i >= 2 && (int64_t)prev - (int64_t)first > KR_CRON_GAP_WINDOW_S)
			break; /* two runs at least, then those in the window */
		if (kr_cron_next(c, prev, &next, NULL) != KR_OK)
			break; /* no run before year 10000: the gaps seen are all there are */
		gap = (int64_t)next - (int64_t)prev;
		if (gap < *min_s)
			*min_s = gap;
		if (gap > max_s)
			max_s = gap;
		prev = next;
	}
	*uniform = *min_s == INT64_MAX || *min_s == max_s;
	return KR_OK;
}
