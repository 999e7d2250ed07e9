/* test_duration.c - Go-syntax durations: valid, invalid, overflow, format and round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rotation/schedule.h"

#define N(a)	     (sizeof(a) / sizeof((a)[0]))
#define KR_GO_MAX_MS INT64_C(9223372036854) /* Go's largest Duration, in whole ms */

static void test_duration_parse_valid(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
	    {"0", 0},
	    {"0s", 0},
	    {"0h0m", 0},
	    {"1ms", 1},
	    {"100ms", 100},
	    {"15s", 15000},
	    {"90s", 90000},
	    {"10m", 600000},
	    {"1h", 3600000},
	    {"1h30m", 5400000},
	    {"2160h", INT64_C(7776000000)},
	    {"1.5h", 5400000},
	    {"1.5s", 1500},
	    {".5s", 500},
	    {"1.s", 1000},
	    {"0.001s", 1},
	    {"1h0m0s", 3600000},
	    {"2h45m30.5s", 9930500},
	    {"3m3m", 360000},	  /* Go accepts a unit twice */
	    {"1s1h", 3601000},	  /* and in any order */
	    {"1500us", 1},	  /* sub-millisecond parts are dropped */
	    {"1500\xc2\xb5s", 1}, /* U+00B5 micro sign */
	    {"1500\xce\xbcs", 1}, /* U+03BC Greek mu */
	    {"999999ns", 0},
	    {"1000000ns", 1},
	    {"1.0000001s", 1000},
	    {"0.1234567891234h", 444444},
	    {"0010s", 10000},
	    {"2562047h47m16.854775807s", KR_GO_MAX_MS},
	    {"9223372036854775807ns", KR_GO_MAX_MS},
	    {"2562047h", INT64_C(9223369200000)},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_error err;
		int64_t ms = -1;

		kr_error_clear(&err);
		if (kr_duration_parse(cases[i].text, &ms, &err) != KR_OK)
			fail_msg("\"%s\" should parse: %s", cases[i].text, err.msg);
		if (ms != cases[i].ms)
			fail_msg("\"%s\": got %lld ms, want %lld", cases[i].text, (long long)ms,
				 (long long)cases[i].ms);
	}
}

static void test_duration_parse_invalid(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"", "invalid duration \"\": empty"},
	    {"-5m", "invalid duration \"-5m\": must not be negative"},
	    {"-0", "must not be negative"},
	    {"+5m", "invalid duration \"+5m\": no sign allowed"},
	    {"10", "invalid duration \"10\": missing unit"},
	    {"1h30", "missing unit"},
	    {"1.5", "missing unit"},
	    {"10d", "invalid duration \"10d\": unknown unit \"d\" (use ns, us, ms, s, m or h)"},
	    {"5S", "unknown unit \"S\""},
	    {"1e3s", "unknown unit \"e\""},
	    {"0x10s", "unknown unit \"x\""},
	    {"1h 30m", "unknown unit \"h \""},
	    {"5s ", "unknown unit \"s \""},
	    {" 5s", "expected a number"},
	    {"h", "expected a number"},
	    {".s", "expected a number"},
	    {".", "expected a number"},
	    {"1h.", "expected a number"},
	    {"--1s", "must not be negative"},
	    {"9223372036854775808ns", "too large"},
	    {"2562048h", "too large"},
	    {"2562047h47m16.854775808s", "too large"},
	    {"99999999999999999999s", "too large"},
	    {"2562047h2562047h", "too large"},
	    {"9223372036s9223372036s", "too large"},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_error err;
		int64_t ms = 42;

		kr_error_clear(&err);
		if (kr_duration_parse(cases[i].text, &ms, &err) != KR_EINVAL)
			fail_msg("\"%s\" should be refused", cases[i].text);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"", cases[i].text, err.msg,
				 cases[i].want);
		assert_int_equal(ms, 42);
	}
	assert_int_equal(kr_duration_parse(NULL, &(int64_t){0}, NULL), KR_EINVAL);
}

static void test_duration_format(void **state)
{
	/* Exactly what Go's time.Duration.String() prints for the same value. */
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
	    {0, "0s"},
	    {1, "1ms"},
	    {999, "999ms"},
	    {1000, "1s"},
	    {1001, "1.001s"},
	    {1010, "1.01s"},
	    {1500, "1.5s"},
	    {59999, "59.999s"},
	    {60000, "1m0s"},
	    {90000, "1m30s"},
	    {600000, "10m0s"},
	    {3600000, "1h0m0s"},
	    {5400000, "1h30m0s"},
	    {3723004, "1h2m3.004s"},
	    {INT64_C(7776000000), "2160h0m0s"},
	    {KR_GO_MAX_MS, "2562047h47m16.854s"},
	    {-5, "-5ms"},
	    {-1500, "-1.5s"},
	    {-5400000, "-1h30m0s"},
	    {INT64_MAX, "2562047788015h12m55.807s"},
	    {INT64_MIN, "-2562047788015h12m55.808s"},
	};
	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		char buf[KR_DURATION_BUFSZ];

		assert_int_equal(kr_duration_format(cases[i].ms, buf, sizeof(buf)), KR_OK);
		if (strcmp(buf, cases[i].text))
			fail_msg("%lld ms: got \"%s\", want \"%s\"", (long long)cases[i].ms, buf,
				 cases[i].text);
	}
}

static void test_duration_format_small_buffer(void **state)
{
	char buf[4];

	(void)state;
	assert_int_equal(kr_duration_format(5400000, buf, sizeof(buf)), KR_ETOOBIG);
	assert_string_equal(buf, "1h3");
	assert_int_equal(kr_duration_format(5400000, buf, 0), KR_ETOOBIG);
	assert_int_equal(kr_duration_format(1, buf, sizeof(buf)), KR_OK);
	assert_string_equal(buf, "1ms");
}

/* format then parse gives the value back, across the whole range Go accepts. */
static void test_duration_round_trip(void **state)
{
	static const int64_t edges[] = {0,	     1,	      999,     1000,	 59999,
					60000,	     3599999, 3600000, 86400000, KR_GO_MAX_MS - 1,
					KR_GO_MAX_MS};
	uint64_t x = 88172645463325252ULL; /* xorshift64 state: a fixed, varied sequence */

	(void)state;
	for (size_t i = 0; i < N(edges) + 5000; i++) {
		char buf[KR_DURATION_BUFSZ];
		int64_t ms, back = -1;

		if (i < N(edges)) {
			ms = edges[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Spread over magnitudes: ms, seconds, hours, years. */
			ms = (int64_t)(x % (uint64_t)(KR_GO_MAX_MS + 1) >> (x % 40));
		}
		assert_int_equal(kr_duration_format(ms, buf, sizeof(buf)), KR_OK);
		if (kr_duration_parse(buf, &back, NULL) != KR_OK || back != ms)
			fail_msg("%lld -> \"%s\" -> %lld", (long long)ms, buf, (long long)back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration_parse_valid),
	    cmocka_unit_test(test_duration_parse_invalid),
	    cmocka_unit_test(test_duration_format),
	    cmocka_unit_test(test_duration_format_small_buffer),
	    cmocka_unit_test(test_duration_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
