/* test_cron.c - cron parsing (fields, names, steps, macros, errors) and next-run times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/schedule.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* "0,15,30" -> bits 0, 15 and 30 ("" -> 0): the expected sets, spelled out. */
static uint64_t bits_of(const char *list)
{
	uint64_t bits = 0;
	char *end;

	for (const char *p = list; *p; p = *end ? end + 1 : end) {
		long v = strtol(p, &end, 10);
		assert_true(end != p && v >= 0 && v < 64);
		bits |= UINT64_C(1) << v;
	}
	return bits;
}

static time_t at(const char *rfc3339)
{
	struct kr_error err;
	time_t t = 0;

	if (kr_time_parse_rfc3339(rfc3339, &t, &err) != KR_OK)
		fail_msg("bad fixture time %s: %s", rfc3339, err.msg);
	return t;
}

static void parse_ok(const char *expr, struct kr_cron *c)
{
	struct kr_error err;

	kr_error_clear(&err);
	if (kr_cron_parse(expr, c, &err) != KR_OK)
		fail_msg("\"%s\" should parse: %s", expr, err.msg);
}

static void test_cron_parse_fields(void **state)
{
	/* One row per feature: the expression and the values it sets in one field. */
	static const struct {
		const char *expr;
		int field; /* 0 minute .. 4 day of week */
		const char *values;
	} cases[] = {
	    {"* * * * *", 1, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23"},
	    {"0 0 * * *", 0, "0"},
	    {"59 23 31 12 6", 0, "59"},
	    {"59 23 31 12 6", 2, "31"},
	    {"0,30 * * * *", 0, "0,30"},
	    {"*/15 * * * *", 0, "0,15,30,45"},
	    {"*/59 * * * *", 0, "0,59"},
	    {"5/15 * * * *", 0, "5,20,35,50"},
	    {"1-30/5 * * * *", 0, "1,6,11,16,21,26"},
	    {"10-14,40-41 * * * *", 0, "10,11,12,13,14,40,41"},
	    {"3-3 * * * *", 0, "3"},
	    {"*/1 0 * * *", 1, "0"},
	    {"0 */6 * * *", 1, "0,6,12,18"},
	    {"0 9-17/4 * * *", 1, "9,13,17"},
	    {"0 22/1 * * *", 1, "22,23"},
	    {"0 0 1,15,31 * *", 2, "1,15,31"},
	    {"0 0 */10 * *", 2, "1,11,21,31"},
	    {"0 0 */30 * *", 2, "1,31"},
	    {"0 0 * jan,JUL,Dec *", 3, "1,7,12"},
	    {"0 0 * feb-apr *", 3, "2,3,4"},
	    {"0 0 * */3 *", 3, "1,4,7,10"},
	    {"0 3 1 */3 *", 3, "1,4,7,10"},
	    {"0 0 * 2/4 *", 3, "2,6,10"},
	    {"0 0 * nov-dec/1 *", 3, "11,12"},
	    {"0 0 * * mon-fri", 4, "1,2,3,4,5"},
	    {"0 0 * * MON-Fri", 4, "1,2,3,4,5"},
	    {"0 0 * * 0", 4, "0,7"},
	    {"0 0 * * 7", 4, "0,7"},
	    {"0 0 * * sun", 4, "0,7"},
	    {"0 0 * * SAT,sun", 4, "0,6,7"},
	    {"0 0 * * fri-sun", 4, "0,5,6,7"},
	    {"0 0 * * 5-0", 4, "0,5,6,7"},
	    {"0 0 * * 6-7", 4, "0,6,7"},
	    {"0 0 * * */2", 4, "0,2,4,6,7"},
	    {"0 0 * * 1/2", 4, "0,1,3,5,7"},
	    {"0 0 * * 1-5/2", 4, "1,3,5"},
	    {"0 0 * * *", 4, "0,1,2,3,4,5,6,7"},
	    {"  0\t0  *  *  *  \n", 1, "0"},
	    {"0 0 30 2 1", 2, "30"}, /* February never has a 30th, but Mondays: fine */
	    {"0 0 29 2 *", 2, "29"}, /* leap years only, still a schedule */
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_cron c;
		uint64_t got[5];

		parse_ok(cases[i].expr, &c);
		got[0] = c.minute;
		got[1] = c.hour;
		got[2] = c.dom;
		got[3] = c.month;
		got[4] = c.dow;
		if (got[cases[i].field] != bits_of(cases[i].values))
			fail_msg("\"%s\" field %d: got %#llx, want {%s}", cases[i].expr,
				 cases[i].field + 1, (unsigned long long)got[cases[i].field],
				 cases[i].values);
	}
}

static void test_cron_star_flags(void **state)
{
	/* The day rule follows from which day fields start with '*'. */
	static const struct {
		const char *expr;
		bool dom_star, dow_star;
	} cases[] = {
	    {"0 0 * * *", true, true},	  {"0 0 1 * *", false, true},
	    {"0 0 * * 1", true, false},	  {"0 0 1 * 1", false, false},
	    {"0 0 */2 * 1", true, false}, {"0 0 1-31 * 1", false, false},
	    {"0 0 1 * */2", false, true}, {"0 0 *,5 * 1", true, false},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_cron c;

		parse_ok(cases[i].expr, &c);
		if (c.dom_star != cases[i].dom_star || c.dow_star != cases[i].dow_star)
			fail_msg("\"%s\": dom_star %d dow_star %d", cases[i].expr, c.dom_star,
				 c.dow_star);
	}
}

static void assert_same_cron(const struct kr_cron *a, const struct kr_cron *b, const char *what)
{
	if (a->minute != b->minute || a->hour != b->hour || a->dom != b->dom ||
	    a->month != b->month || a->dow != b->dow || a->dom_star != b->dom_star ||
	    a->dow_star != b->dow_star)
		fail_msg("%s differs from its expansion", what);
}

static void test_cron_macros(void **state)
{
	static const struct {
		const char *macro, *expansion;
	} cases[] = {
	    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},	  {"@midnight", "0 0 * * *"},
	    {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},	  {"  @weekly ", "0 0 * * 0"},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_cron a, b;

		parse_ok(cases[i].macro, &a);
		parse_ok(cases[i].expansion, &b);
		assert_same_cron(&a, &b, cases[i].macro);
	}
}

static void test_cron_parse_errors(void **state)
{
	/* Each error names the field and what is wrong with it. */
	static const struct {
		const char *expr, *want;
	} cases[] = {
	    {"", "schedule: empty expression"},
	    {" \t ", "schedule: empty expression"},
	    {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
	    {"0 * * * * *", "got 6"},
	    {"0 0 1 1 * 2026", "got 6"},
	    {"60 * * * *", "schedule: field 1 (minute): 60 is out of range 0-59"},
	    {"* 24 * * *", "schedule: field 2 (hour): 24 is out of range 0-23"},
	    {"0 0 32 * *", "schedule: field 3 (day of month): 32 is out of range 1-31"},
	    {"0 0 0 * *", "schedule: field 3 (day of month): 0 is out of range 1-31"},
	    {"0 0 * 13 *", "schedule: field 4 (month): 13 is out of range 1-12"},
	    {"0 0 * 0 *", "schedule: field 4 (month): 0 is out of range 1-12"},
	    {"0 0 * * 8", "schedule: field 5 (day of week): 8 is out of range 0-7"},
	    {"99999999999999999999 * * * *", "field 1 (minute): 99999999999999999999 is out of "
					     "range 0-59"},
	    {"0 0 * foo *", "field 4 (month): unknown name \"foo\" (use jan-dec)"},
	    {"0 0 * january *", "field 4 (month): unknown name \"january\""},
	    {"0 0 * * funday", "field 5 (day of week): unknown name \"funday\" (use sun-sat)"},
	    {"0 0 * * monday", "unknown name \"monday\""},
	    {"0 jan * * *", "field 2 (hour): \"jan\" is not a number"},
	    {"0 0 mon * *", "field 3 (day of month): \"mon\" is not a number"},
	    {"1a * * * *", "field 1 (minute): \"1a\" is not a number"},
	    {"L * * * *", "field 1 (minute): \"L\" is not a number"},
	    {"? * * * *", "field 1 (minute): expected a number in \"?\""},
	    {"-1 * * * *", "field 1 (minute): expected a number in \"-1\""},
	    {"1- * * * *", "field 1 (minute): expected a number"},
	    {"*/0 * * * *", "field 1 (minute): step 0: a step must be at least 1"},
	    {"*/60 * * * *", "field 1 (minute): step 60 is larger than the field's span 0-59"},
	    {"0 */24 * * *", "field 2 (hour): step 24 is larger"},
	    {"*/ * * * *", "field 1 (minute): expected a step number after '/'"},
	    {"*/x * * * *", "expected a step number after '/'"},
	    {"5-1 * * * *", "field 1 (minute): range 5-1 runs backwards"},
	    {"0 0 * dec-jan *", "field 4 (month): range 12-1 runs backwards"},
	    {"0 0 * * sat-mon", "field 5 (day of week): range 6-1 runs backwards"},
	    {"1,,2 * * * *", "field 1 (minute): empty list element"},
	    {"1, * * * *", "field 1 (minute): empty list element"},
	    {",1 * * * *", "field 1 (minute): empty list element"},
	    {"1-2-3 * * * *", "field 1 (minute): unexpected \"-3\" in \"1-2-3\""},
	    {"*/5/2 * * * *", "unexpected \"/2\" in \"*/5/2\""},
	    {"*-5 * * * *", "unexpected \"-5\" in \"*-5\""},
	    {"** * * * *", "unexpected \"*\""},
	    {"@reboot", "schedule: @reboot is not supported"},
	    {"@every 5m", "schedule: unknown macro \"@every\""},
	    {"@", "schedule: unknown macro \"@\""},
	    {"@daily 5", "schedule: unexpected text after @daily"},
	    {"0 0 30 2 *", "schedule: never matches"},
	    {"0 0 31 4,6,9,11 *", "never matches"},
	    {"0 0 30,31 feb *", "never matches"},
	    {"0 0 31 2,4 */2", "never matches"},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_cron c;
		struct kr_error err;

		memset(&c, 0xab, sizeof(c));
		kr_error_clear(&err);
		if (kr_cron_parse(cases[i].expr, &c, &err) != KR_EINVAL)
			fail_msg("\"%s\" should be refused", cases[i].expr);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].expr, err.msg,
				 cases[i].want);
		assert_int_equal(c.hour, 0xabababab); /* *out untouched on error */
	}
	assert_int_equal(kr_cron_parse(NULL, &(struct kr_cron){0}, NULL), KR_EINVAL);
}

/* Next-run times worked out by hand (weekdays: 2026-01-01 is a Thursday). */
static const struct {
	const char *expr, *after, *want;
} next_cases[] = {
    /* strictly after, to the minute */
    {"* * * * *", "2026-03-10T12:34:56Z", "2026-03-10T12:35:00Z"},
    {"* * * * *", "2026-03-10T12:35:00Z", "2026-03-10T12:36:00Z"},
    {"* * * * *", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"},
    {"5,55 */2 * * *", "2026-01-01T00:56:00Z", "2026-01-01T02:05:00Z"},
    {"30 * * * *", "2026-01-01T23:30:00Z", "2026-01-02T00:30:00Z"},
    {"@hourly", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"},
    /* DESIGN.md's example: quarterly */
    {"0 3 1 */3 *", "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z"},
    {"0 3 1 */3 *", "2026-01-01T03:00:00Z", "2026-04-01T03:00:00Z"},
    {"0 3 1 */3 *", "2026-11-15T00:00:00Z", "2027-01-01T03:00:00Z"},
    /* year rollover */
    {"0 0 1 1 *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
    {"59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"},
    {"@yearly", "2026-06-15T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"@monthly", "2026-12-15T08:00:00Z", "2027-01-01T00:00:00Z"},
    /* month ends */
    {"0 0 1 * *", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"},
    {"0 12 31 * *", "2026-02-01T00:00:00Z", "2026-03-31T12:00:00Z"},
    {"0 12 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T12:00:00Z"},
    {"0 0 31 * *", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z"},
    {"0 0 31 * *", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"},
    {"0 0 30 * *", "2026-01-30T00:00:00Z", "2026-03-30T00:00:00Z"},
    {"0 0 29 * *", "2027-01-29T00:00:00Z", "2027-03-29T00:00:00Z"},
    {"0 0 * * *", "2026-02-28T23:59:00Z", "2026-03-01T00:00:00Z"},
    /* leap years: Feb 29 */
    {"0 0 29 * *", "2028-01-29T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 * * *", "2028-02-28T23:59:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 29 2 *", "1999-01-01T00:00:00Z", "2000-02-29T00:00:00Z"},   /* 400: leap */
    {"0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},   /* 2100: not */
    {"0 0 29 2 */7", "2026-01-01T00:00:00Z", "2032-02-29T00:00:00Z"}, /* Sun Feb 29 */
    /* day of week */
    {"0 0 * * 1", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"},
    {"0 0 * * 0", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
    {"0 0 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
    {"@weekly", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
    {"0 0 * * fri-sun", "2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z"},
    {"*/15 9-17 * * mon-fri", "2026-01-02T17:50:00Z", "2026-01-05T09:00:00Z"},
    {"*/15 9-17 * * mon-fri", "2026-01-05T09:00:00Z", "2026-01-05T09:15:00Z"},
    /* DOM/DOW: both restricted -> either; one starting with '*' -> both */
    {"0 0 13 * 5", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"}, /* Friday */
    {"0 0 13 * 5", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z"}, /* Tuesday 13th */
    {"0 0 1,15 * 1", "2026-01-12T00:00:00Z", "2026-01-15T00:00:00Z"},
    {"0 0 1,15 * 1", "2026-01-15T00:00:00Z", "2026-01-19T00:00:00Z"},
    {"0 0 */2 * 5", "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z"},	/* odd AND Fri */
    {"0 0 1-31/2 * 5", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"}, /* odd OR Fri */
    {"0 0 13 * *", "2026-01-14T00:00:00Z", "2026-02-13T00:00:00Z"},
    {"0 0 13 * */1", "2026-01-14T00:00:00Z", "2026-02-13T00:00:00Z"},
    {"0 0 30 2 1", "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"},
    {"0 0 29 2 1", "2026-03-01T00:00:00Z", "2027-02-01T00:00:00Z"},
    {"0 0 1 * */7", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"}, /* Sunday 1st */
    /* UTC only: daylight saving days are ordinary days */
    {"30 2 * * *", "2026-03-29T01:00:00Z", "2026-03-29T02:30:00Z"},
    {"30 2 * * *", "2026-03-08T00:00:00Z", "2026-03-08T02:30:00Z"},
    {"30 1 * * *", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"},
    /* before 1970 and across the epoch */
    {"0 0 * * *", "1969-12-31T12:00:00Z", "1970-01-01T00:00:00Z"},
    {"* * * * *", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"},
    {"59 23 * * *", "1969-12-30T00:00:00Z", "1969-12-30T23:59:00Z"},
    /* the last possible minute */
    {"59 23 31 12 *", "9999-12-31T23:58:00Z", "9999-12-31T23:59:00Z"},
};

static void test_cron_next_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(next_cases); i++) {
		char got[KR_RFC3339_BUFSZ];
		struct kr_error err;
		struct kr_cron c;
		time_t next = 0;

		parse_ok(next_cases[i].expr, &c);
		kr_error_clear(&err);
		if (kr_cron_next(&c, at(next_cases[i].after), &next, &err) != KR_OK)
			fail_msg("\"%s\" after %s: %s", next_cases[i].expr, next_cases[i].after,
				 err.msg);
		assert_int_equal(kr_time_format_rfc3339(next, got, sizeof(got)), KR_OK);
		if (strcmp(got, next_cases[i].want))
			fail_msg("\"%s\" after %s: got %s, want %s", next_cases[i].expr,
				 next_cases[i].after, got, next_cases[i].want);
		assert_true(kr_cron_matches(&c, next));
	}
}

static void test_cron_next_sequence(void **state)
{
	static const char *const quarterly[] = {
	    "2026-01-01T03:00:00Z", "2026-04-01T03:00:00Z", "2026-07-01T03:00:00Z",
	    "2026-10-01T03:00:00Z", "2027-01-01T03:00:00Z", "2027-04-01T03:00:00Z",
	};
	struct kr_cron c;
	time_t t = at("2026-01-01T00:00:00Z");

	(void)state;
	parse_ok("0 3 1 */3 *", &c);
	for (size_t i = 0; i < N(quarterly); i++) {
		assert_int_equal(kr_cron_next(&c, t, &t, NULL), KR_OK);
		assert_int_equal(t, at(quarterly[i]));
	}
}

/*
 * The skipping search agrees with a minute-by-minute walk: every minute between two
 * consecutive answers fails kr_cron_matches, and each answer passes it.
 */
static void test_cron_next_agrees_with_walk(void **state)
{
	static const char *const exprs[] = {
	    "*/7 */5 * * *",  "0 0 13 * 5",	"0 0 */2 * 5",
	    "15 4 1-7 * mon", "0 12 7,14 * *",	"0 */4 29-31 * *",
	    "1-5/2 23 * 2 *", "0 0 1,15 * 1-5", "45 6 * jun-aug sat,sun",
	};
	const time_t start = at("2027-12-01T00:00:00Z");
	const time_t stop = start + 100 * 86400;

	(void)state;
	for (size_t i = 0; i < N(exprs); i++) {
		struct kr_cron c;
		time_t t = start, next;

		parse_ok(exprs[i], &c);
		while (t < stop) {
			assert_int_equal(kr_cron_next(&c, t, &next, NULL), KR_OK);
			for (time_t m = t - t % 60 + 60; m < next; m += 60)
				if (kr_cron_matches(&c, m))
					fail_msg("\"%s\": %lld matches before next %lld", exprs[i],
						 (long long)m, (long long)next);
			assert_true(kr_cron_matches(&c, next));
			assert_int_equal(next % 60, 0);
			t = next;
		}
	}
}

static void test_cron_next_errors(void **state)
{
	struct kr_cron impossible = {0}, c;
	struct kr_error err;
	time_t next = 12345;

	(void)state;
	/* Built by hand (the parser refuses it): Feb 30th, AND rule. */
	impossible.minute = 1;
	impossible.hour = 1;
	impossible.dom = 1u << 30;
	impossible.month = 1u << 2;
	impossible.dow = 0xff;
	impossible.dom_star = true;
	kr_error_clear(&err);
	assert_int_equal(kr_cron_next(&impossible, at("2026-01-01T00:00:00Z"), &next, &err),
			 KR_EINVAL);
	assert_non_null(strstr(err.msg, "never matches"));
	assert_int_equal(next, 12345);

	/* No hour at all: bounded too. */
	parse_ok("0 0 * * *", &c);
	c.hour = 0;
	assert_int_equal(kr_cron_next(&c, 0, &next, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "never matches"));

	parse_ok("0 0 1 1 *", &c);
	assert_int_equal(kr_cron_next(&c, at("9999-06-01T00:00:00Z"), &next, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "before year 10000"));
	assert_int_equal(kr_cron_next(&c, INT64_MAX, &next, &err), KR_EINVAL);
	assert_int_equal(kr_cron_next(&c, INT64_MIN, &next, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "before year 0000"));
}

static void test_cron_matches(void **state)
{
	static const struct {
		const char *expr, *when;
		bool want;
	} cases[] = {
	    {"0 3 * * *", "2026-05-05T03:00:59Z", true},
	    {"0 3 * * *", "2026-05-05T03:01:00Z", false},
	    {"0 0 13 * 5", "2026-02-13T00:00:00Z", true}, /* Friday the 13th */
	    {"0 0 13 * 5", "2026-01-16T00:00:00Z", true}, /* a Friday */
	    {"0 0 13 * 5", "2026-01-15T00:00:00Z", false},
	    {"0 0 */2 * 5", "2026-01-02T00:00:00Z", false}, /* Friday, even day */
	    {"0 0 */2 * 5", "2026-01-03T00:00:00Z", false}, /* odd day, Saturday */
	    {"0 0 1-31/2 * 5", "2026-01-03T00:00:00Z", true},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_cron c;

		parse_ok(cases[i].expr, &c);
		if (kr_cron_matches(&c, at(cases[i].when)) != cases[i].want)
			fail_msg("\"%s\" at %s: want %d", cases[i].expr, cases[i].when,
				 cases[i].want);
	}
}

/*
 * The shortest gap between runs (the spec's "at most once an hour" check): "0,30" fires
 * twice an hour though its minute field is no step; a single minute never fires twice in
 * an hour whatever the other fields; wrap-around gaps (55 -> 00 of the next hour) count.
 */
static void test_cron_min_gap(void **state)
{
	static const struct {
		const char *expr;
		int64_t min_s;
		bool uniform;
	} cases[] = {
	    {"* * * * *", 60, true},
	    {"*/5 * * * *", 300, true},
	    {"0,30 * * * *", 1800, true},
	    {"0,10,50 * * * *", 600, false},
	    {"*/7 * * * *", 240, false},   /* ..., 49, 56, then 00 of the next hour */
	    {"0,59 * * * *", 60, false},   /* 00:59 -> 01:00 */
	    {"0,59 0 1 1 *", 3540, false}, /* twice a year, 59 minutes apart */
	    {"5-6 * * 2 1", 60, false},	   /* Mondays in February only */
	    {"@hourly", 3600, true},
	    {"59 * * * *", 3600, true},
	    {"30 0,1 * * *", 3600, false}, /* 00:30, 01:30, then 00:30 the next day */
	    {"0 */2 * * *", 7200, true},
	    {"@daily", 86400, true},
	    {"0 3 1 */3 *", 91 * 86400, true},		 /* two runs: Jan 1st, Apr 1st 2000 */
	    {"0 0 29 2 *", (4 * 365 + 1) * 86400, true}, /* 2000-02-29, 2004-02-29 */
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_error err;
		struct kr_cron c;
		int64_t min_s = 0;
		bool uniform = !cases[i].uniform;
		int minutes = 0;

		parse_ok(cases[i].expr, &c);
		kr_error_clear(&err);
		if (kr_cron_min_gap(&c, &min_s, &uniform, &err) != KR_OK)
			fail_msg("\"%s\": %s", cases[i].expr, err.msg);
		if (min_s != cases[i].min_s || uniform != cases[i].uniform)
			fail_msg("\"%s\": got %llds%s, want %llds%s", cases[i].expr,
				 (long long)min_s, uniform ? " uniform" : "",
				 (long long)cases[i].min_s, cases[i].uniform ? " uniform" : "");
		/* Under an hour exactly when some hour holds two of its minutes. */
		for (int m = 0; m < 60; m++)
			minutes += (int)(c.minute >> m & 1);
		assert_int_equal(min_s < 3600, minutes >= 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cron_parse_fields),
	    cmocka_unit_test(test_cron_star_flags),
	    cmocka_unit_test(test_cron_macros),
	    cmocka_unit_test(test_cron_parse_errors),
	    cmocka_unit_test(test_cron_next_table),
	    cmocka_unit_test(test_cron_next_sequence),
	    cmocka_unit_test(test_cron_next_agrees_with_walk),
	    cmocka_unit_test(test_cron_next_errors),
	    cmocka_unit_test(test_cron_matches),
	    cmocka_unit_test(test_cron_min_gap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
