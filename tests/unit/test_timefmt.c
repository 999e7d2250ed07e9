/* test_timefmt.c - the UTC calendar and RFC3339 parsing/formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "rotation/schedule.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_rfc3339_parse_valid(void **state)
{
	static const struct {
		const char *text;
		int64_t t;
	} cases[] = {
	    {"1970-01-01T00:00:00Z", 0},
	    {"2026-01-01T00:00:00Z", 1767225600},
	    {"2026-01-01t00:00:00z", 1767225600},
	    {"2026-01-01T01:00:00+01:00", 1767225600},
	    {"2025-12-31T19:00:00-05:00", 1767225600},
	    {"2026-01-01T05:30:00+05:30", 1767225600},
	    {"2026-01-01T00:00:00-00:00", 1767225600},
	    {"2026-01-01T00:00:00.123456789Z", 1767225600},
	    {"2026-01-01T00:00:00.9+00:00", 1767225600},
	    {"2000-02-29T00:00:00Z", 951782400},
	    {"1969-12-31T23:59:59Z", -1},
	    {"1969-12-31T00:00:00Z", -86400},
	    {"9999-12-31T23:59:59Z", INT64_C(253402300799)},
	    {"0000-01-01T00:00:00Z", INT64_C(-62167219200)},
	    {"2026-06-30T23:59:59.999Z", 1782863999},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_error err;
		time_t t = 7;

		kr_error_clear(&err);
		if (kr_time_parse_rfc3339(cases[i].text, &t, &err) != KR_OK)
			fail_msg("\"%s\" should parse: %s", cases[i].text, err.msg);
		if ((int64_t)t != cases[i].t)
			fail_msg("\"%s\": got %lld, want %lld", cases[i].text, (long long)t,
				 (long long)cases[i].t);
	}
}

static void test_rfc3339_parse_invalid(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"", "expected RFC3339 like 2026-01-01T00:00:00Z"},
	    {"now", "expected RFC3339"},
	    {"2026-01-01", "expected RFC3339"},
	    {"2026-01-01T00:00:00", "expected RFC3339"},
	    {"2026-01-01 00:00:00Z", "expected RFC3339"},
	    {"2026-1-01T00:00:00Z", "expected RFC3339"},
	    {"20260101T000000Z", "expected RFC3339"},
	    {"+2026-01-01T00:00:00Z", "expected RFC3339"},
	    {"2026-01-01T00:00Z", "expected RFC3339"},
	    {"2026-01-01T00:00:00.Z", "expected RFC3339"},
	    {"2026-01-01T00:00:00+0100", "expected RFC3339"},
	    {"2026-01-01T00:00:00+01", "expected RFC3339"},
	    {"2026-01-01T00:00:00Zjunk", "expected RFC3339"},
	    {"2026-01-01T00:00:00Z ", "expected RFC3339"},
	    {"2026-13-01T00:00:00Z", "\"2026-13-01T00:00:00Z\": month out of range"},
	    {"2026-00-01T00:00:00Z", "month out of range"},
	    {"2026-01-00T00:00:00Z", "day out of range"},
	    {"2026-02-29T00:00:00Z", "day out of range"},
	    {"2100-02-29T00:00:00Z", "day out of range"},
	    {"2026-04-31T00:00:00Z", "day out of range"},
	    {"2026-01-01T24:00:00Z", "hour out of range"},
	    {"2026-01-01T00:60:00Z", "minute out of range"},
	    {"2026-12-31T23:59:60Z", "second out of range"},
	    {"2026-01-01T00:00:00+24:00", "offset out of range"},
	    {"2026-01-01T00:00:00+01:60", "offset out of range"},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_error err;
		time_t t = 7;

		kr_error_clear(&err);
		if (kr_time_parse_rfc3339(cases[i].text, &t, &err) != KR_EINVAL)
			fail_msg("\"%s\" should be refused", cases[i].text);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].text, err.msg,
				 cases[i].want);
		assert_int_equal(t, 7);
	}
	assert_int_equal(kr_time_parse_rfc3339(NULL, &(time_t){0}, NULL), KR_EINVAL);
}

static void test_rfc3339_format(void **state)
{
	static const struct {
		int64_t t;
		const char *text;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {-1, "1969-12-31T23:59:59Z"},
	    {951782400, "2000-02-29T00:00:00Z"},
	    {1767225600, "2026-01-01T00:00:00Z"},
	    {1782863999, "2026-06-30T23:59:59Z"},
	    {INT64_C(253402300799), "9999-12-31T23:59:59Z"},
	    {INT64_C(-62167219200), "0000-01-01T00:00:00Z"},
	};
	char buf[KR_RFC3339_BUFSZ];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(kr_time_format_rfc3339((time_t)cases[i].t, buf, sizeof(buf)),
				 KR_OK);
		assert_string_equal(buf, cases[i].text);
	}
	assert_int_equal(kr_time_format_rfc3339(INT64_C(253402300800), buf, sizeof(buf)),
			 KR_EINVAL);
	assert_string_equal(buf, "");
	assert_int_equal(kr_time_format_rfc3339(INT64_C(-62167219201), buf, sizeof(buf)),
			 KR_EINVAL);
	assert_int_equal(kr_time_format_rfc3339(0, buf, sizeof(buf) - 1), KR_ETOOBIG);
	assert_string_equal(buf, "");
}

/* The calendar agrees with glibc's gmtime_r, weekday included, over five centuries. */
static void test_utc_matches_gmtime(void **state)
{
	const int64_t from = INT64_C(-2208988800); /* 1900-01-01 */
	const int64_t to = INT64_C(13569465600);   /* 2400-01-01 */

	(void)state;
	for (int64_t t = from; t < to; t += 86400 * 7 + 3607) {
		time_t tt = (time_t)t;
		struct kr_utc u;
		struct tm tm;

		kr_time_to_utc(tt, &u);
		assert_non_null(gmtime_r(&tt, &tm));
		if (u.year != tm.tm_year + 1900 || u.month != tm.tm_mon + 1 ||
		    u.day != tm.tm_mday || u.hour != tm.tm_hour || u.minute != tm.tm_min ||
		    u.second != tm.tm_sec || u.weekday != tm.tm_wday)
			fail_msg("t=%lld differs from gmtime_r", (long long)t);
		assert_int_equal(kr_time_from_utc(&u), tt);
	}
}

static void test_rfc3339_round_trip(void **state)
{
	(void)state;
	for (int64_t t = INT64_C(-62167219200); t <= INT64_C(253402300799);
	     t += INT64_C(12345678901)) {
		char buf[KR_RFC3339_BUFSZ];
		time_t back = 0;

		assert_int_equal(kr_time_format_rfc3339((time_t)t, buf, sizeof(buf)), KR_OK);
		assert_int_equal(kr_time_parse_rfc3339(buf, &back, NULL), KR_OK);
		assert_int_equal(back, t);
	}
}

static void test_days_in_month(void **state)
{
	static const struct {
		int64_t year;
		int month, days;
	} cases[] = {
	    {2026, 1, 31}, {2026, 2, 28}, {2028, 2, 29}, {2100, 2, 28},
	    {2000, 2, 29}, {1900, 2, 28}, {2026, 4, 30}, {2026, 12, 31},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		assert_int_equal(kr_days_in_month(cases[i].year, cases[i].month), cases[i].days);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339_parse_valid),
	    cmocka_unit_test(test_rfc3339_parse_invalid),
	    cmocka_unit_test(test_rfc3339_format),
	    cmocka_unit_test(test_utc_matches_gmtime),
	    cmocka_unit_test(test_rfc3339_round_trip),
	    cmocka_unit_test(test_days_in_month),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
