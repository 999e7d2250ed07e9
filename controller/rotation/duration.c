/* duration.c - Go's duration syntax ("1h30m", "2160h"), parsed to and formatted from ms. */
#include "rotation/schedule.h"

#include <stdio.h>
#include <string.h>

#define KR_NS_LIMIT (UINT64_C(1) << 63) /* Go's bound: a Duration is an int64 of ns */

struct kr_duration_unit {
	const char *name;
	uint64_t ns;
};

/* Go's unitMap: "us" also as U+00B5 (micro sign) and U+03BC (Greek mu). */
static const struct kr_duration_unit kr_duration_units[] = {
    {"ns", 1ULL},
    {"us", 1000ULL},
    {"\xc2\xb5s", 1000ULL},
    {"\xce\xbcs", 1000ULL},
    {"ms", 1000000ULL},
    {"s", 1000000000ULL},
    {"m", 60ULL * 1000000000ULL},
    {"h", 3600ULL * 1000000000ULL},
};

static bool kr_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits at *p as an integer; false on overflow past 2^63 (Go's leadingInt). */
static bool kr_leading_int(const char **p, uint64_t *out)
{
	uint64_t x = 0;

	for (; kr_is_digit(**p); (*p)++) {
		if (x > KR_NS_LIMIT / 10)
			return false;
		x = x * 10 + (uint64_t)(**p - '0');
		if (x > KR_NS_LIMIT)
			return false;
	}
	*out = x;
	return true;
}

/* Digits after a '.': value and scale, digits past int64 precision ignored (Go's). */
static void kr_leading_fraction(const char **p, uint64_t *f, double *scale)
{
	bool overflow = false;
	uint64_t x = 0;

	*scale = 1;
	for (; kr_is_digit(**p); (*p)++) {
		if (overflow)
			continue;
		if (x > (KR_NS_LIMIT - 1) / 10) {
			overflow = true;
			continue;
		}
		uint64_t y = x * 10 + (uint64_t)(**p - '0');
		if (y > KR_NS_LIMIT) {
			overflow = true;
			continue;
		}
		x = y;
		*scale *= 10;
	}
	*f = x;
}

static const struct kr_duration_unit *kr_duration_unit(const char *u, size_t len)
{
	for (size_t i = 0; i < sizeof(kr_duration_units) / sizeof(kr_duration_units[0]); i++)
		if (strlen(kr_duration_units[i].name) == len &&
		    !memcmp(kr_duration_units[i].name, u, len))
			return &kr_duration_units[i];
	return NULL;
}

static enum kr_status kr_duration_invalid(const char *text, const char *why, struct kr_error *err)
{
	return kr_error_set(err, KR_EINVAL, "invalid duration \"%.64s\": %s", text, why);
}

/* One "<number>[.<fraction>]<unit>" at *p, added to *total (ns). */
static enum kr_status kr_duration_segment(const char *text, const char **p, uint64_t *total,
					  struct kr_error *err)
{
	const char *start = *p, *u;
	uint64_t v, f = 0;
	double scale = 1;
	bool post = false;

	if (!kr_leading_int(p, &v))
		return kr_duration_invalid(text, "too large", err);
	bool pre = *p != start;
	if (**p == '.') {
		const char *frac = ++*p;
		kr_leading_fraction(p, &f, &scale);
		post = *p != frac;
	}
	if (!pre && !post)
		return kr_duration_invalid(text, "expected a number", err);
	for (u = *p; **p && **p != '.' && !kr_is_digit(**p); (*p)++)
		;
	if (*p == u)
		return kr_duration_invalid(text, "missing unit (ns, us, ms, s, m or h)", err);
	const struct kr_duration_unit *unit = kr_duration_unit(u, (size_t)(*p - u));
	if (!unit)
		return kr_error_set(
		    err, KR_EINVAL,
		    "invalid duration \"%.64s\": unknown unit \"%.*s\" (use ns, us, "
		    "ms, s, m or h)",
		    text, (int)(*p - u > 16 ? 16 : *p - u), u);
	if (v > KR_NS_LIMIT / unit->ns)
		return kr_duration_invalid(text, "too large", err);
	v *= unit->ns;
	if (f > 0) {
		/* As Go: float64 is nanosecond-exact for fractions of the largest unit. */
		v += (uint64_t)((double)f * ((double)unit->ns / scale));
		if (v > KR_NS_LIMIT)
			return kr_duration_invalid(text, "too large", err);
	}
	*total += v;
	if (*total > KR_NS_LIMIT)
		return kr_duration_invalid(text, "too large", err);
	return KR_OK;
}

enum kr_status kr_duration_parse(const char *text, int64_t *ms, struct kr_error *err)
{
	const char *p = text;
	uint64_t total = 0;
	enum kr_status rc;

	if (!text || !*text)
		return kr_error_set(err, KR_EINVAL, "invalid duration \"\": empty");
	if (*p == '-')
		return kr_duration_invalid(text, "must not be negative", err);
	if (*p == '+')
		return kr_duration_invalid(text, "no sign allowed", err);
	if (!strcmp(text, "0")) {
		*ms = 0;
		return KR_OK;
	}
	while (*p) {
		rc = kr_duration_segment(text, &p, &total, err);
		if (rc != KR_OK)
			return rc;
	}
	if (total > KR_NS_LIMIT - 1)
		return kr_duration_invalid(text, "too large", err);
	*ms = (int64_t)(total / 1000000);
	return KR_OK;
}

/* "S" or "S.fff" (trailing zeros trimmed) for `ms` < 60000 into p; returns length. */
static int kr_format_seconds(char *p, size_t size, uint64_t ms)
{
	uint64_t frac = ms % 1000;
	char digits[4];
	int n;

	if (!frac)
		return snprintf(p, size, "%llus", (unsigned long long)(ms / 1000));
	n = snprintf(digits, sizeof(digits), "%03llu", (unsigned long long)frac);
	while (n > 0 && digits[n - 1] == '0')
		digits[--n] = '\0';
	return snprintf(p, size, "%llu.%ss", (unsigned long long)(ms / 1000), digits);
}

enum kr_status kr_duration_format(int64_t ms, char *buf, size_t size)
{
	/* Magnitude without overflow for INT64_MIN. */
	uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
	char tmp[KR_DURATION_BUFSZ + 8];
	uint64_t hours = u / 3600000, minutes = u / 60000 % 60;
	const char *sign = ms < 0 ? "-" : "";
	int n;

	if (u == 0)
		n = snprintf(tmp, sizeof(tmp), "0s");
	else if (u < 1000)
		n = snprintf(tmp, sizeof(tmp), "%s%llums", sign, (unsigned long long)u);
	else if (hours)
		n = snprintf(tmp, sizeof(tmp), "%s%lluh%llum", sign, (unsigned long long)hours,
			     (unsigned long long)minutes);
	else if (minutes)
		n = snprintf(tmp, sizeof(tmp), "%s%llum", sign, (unsigned long long)minutes);
	else
		n = snprintf(tmp, sizeof(tmp), "%s", sign);
	if (u >= 1000)
		n += kr_format_seconds(tmp + n, sizeof(tmp) - (size_t)n, u % 60000);
	if (size > 0)
		snprintf(buf, size, "%s", tmp);
	return (size_t)n < size ? KR_OK : KR_ETOOBIG;
}
