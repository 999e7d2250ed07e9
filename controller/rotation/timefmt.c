/* timefmt.c - the UTC calendar (no libc time zones) and RFC3339 parsing and formatting. */
#include "rotation/schedule.h"

#include <stdio.h>
#include <string.h>

/* Seconds from 0000-01-01T00:00:00Z and to 9999-12-31T23:59:59Z, as time_t. */
#define KR_TIME_MIN (-62167219200LL)
#define KR_TIME_MAX (253402300799LL)

static bool kr_is_leap(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int kr_days_in_month(int64_t year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month < 1 || month > 12)
		KR_BUG("month %d", month);
	if (month == 2 && kr_is_leap(year))
		return 29;
	return days[month - 1];
}

/* Howard Hinnant's days_from_civil: exact for the whole proleptic Gregorian calendar. */
int64_t kr_days_from_civil(int64_t year, int month, int day)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static void kr_civil_from_days(int64_t z, struct kr_utc *out)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	out->day = (int)(doy - (153 * mp + 2) / 5 + 1);
	out->month = (int)(mp < 10 ? mp + 3 : mp - 9);
	out->year = yoe + era * 400 + (out->month <= 2);
}

static int64_t kr_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

void kr_time_to_utc(time_t t, struct kr_utc *out)
{
	int64_t days = kr_floor_div((int64_t)t, 86400);
	int64_t secs = (int64_t)t - days * 86400;

	kr_civil_from_days(days, out);
	out->hour = (int)(secs / 3600);
	out->minute = (int)(secs / 60 % 60);
	out->second = (int)(secs % 60);
	/* 1970-01-01 was a Thursday (4). */
	out->weekday = (int)(((days % 7) + 11) % 7);
}

time_t kr_time_from_utc(const struct kr_utc *u)
{
	int64_t days = kr_days_from_civil(u->year, u->month, u->day);

	return (time_t)(days * 86400 + u->hour * 3600 + u->minute * 60 + u->second);
}

/* Read exactly `n` digits at *p into *out; advances *p. 0 when they are not there. */
static bool kr_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool kr_expect(const char **p, char a, char b)
{
	if (**p != a && **p != b)
		return false;
	(*p)++;
	return true;
}

static enum kr_status kr_rfc3339_syntax(const char *text, struct kr_error *err)
{
	return kr_error_set(err, KR_EINVAL,
			    "invalid time \"%.64s\": expected RFC3339 like 2026-01-01T00:00:00Z",
			    text);
}

/* The "Z" or "+hh:mm"/"-hh:mm" suffix at p, as seconds east of UTC. */
static enum kr_status kr_rfc3339_offset(const char *text, const char *p, int *offset,
					struct kr_error *err)
{
	int sign, oh, om;

	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		*offset = 0;
		return KR_OK;
	}
	if (*p != '+' && *p != '-')
		return kr_rfc3339_syntax(text, err);
	sign = *p++ == '-' ? -1 : 1;
	if (!kr_digits(&p, 2, &oh) || !kr_expect(&p, ':', ':') || !kr_digits(&p, 2, &om) ||
	    *p != '\0')
		return kr_rfc3339_syntax(text, err);
	if (oh > 23 || om > 59)
		return kr_error_set(err, KR_EINVAL, "invalid time \"%.64s\": offset out of range",
				    text);
	*offset = sign * (oh * 3600 + om * 60);
	return KR_OK;
}

static enum kr_status kr_rfc3339_check(const char *text, const struct kr_utc *u,
				       struct kr_error *err)
{
	const char *what = NULL;

	if (u->month < 1 || u->month > 12)
		what = "month";
	else if (u->day < 1 || u->day > kr_days_in_month(u->year, u->month))
		what = "day";
	else if (u->hour > 23)
		what = "hour";
	else if (u->minute > 59)
		what = "minute";
	else if (u->second > 59)
		what = "second";
	if (what)
		return kr_error_set(err, KR_EINVAL, "invalid time \"%.64s\": %s out of range", text,
				    what);
	return KR_OK;
}

enum kr_status kr_time_parse_rfc3339(const char *text, time_t *out, struct kr_error *err)
{
	struct kr_utc u = {0};
	const char *p = text;
	enum kr_status rc;
	int year, offset = 0;

	if (!text)
		return kr_error_set(err, KR_EINVAL, "invalid time: empty");
	if (!kr_digits(&p, 4, &year) || !kr_expect(&p, '-', '-') || !kr_digits(&p, 2, &u.month) ||
	    !kr_expect(&p, '-', '-') || !kr_digits(&p, 2, &u.day) || !kr_expect(&p, 'T', 't') ||
	    !kr_digits(&p, 2, &u.hour) || !kr_expect(&p, ':', ':') ||
	    !kr_digits(&p, 2, &u.minute) || !kr_expect(&p, ':', ':') ||
	    !kr_digits(&p, 2, &u.second))
		return kr_rfc3339_syntax(text, err);
	u.year = year;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return kr_rfc3339_syntax(text, err);
		while (*p >= '0' && *p <= '9')
			p++;
	}
	rc = kr_rfc3339_offset(text, p, &offset, err);
	if (rc != KR_OK)
		return rc;
	rc = kr_rfc3339_check(text, &u, err);
	if (rc != KR_OK)
		return rc;
	*out = kr_time_from_utc(&u) - offset;
	return KR_OK;
}

enum kr_status kr_time_format_rfc3339(time_t t, char *buf, size_t size)
{
	struct kr_utc u;

	if (size > 0)
		buf[0] = '\0';
	if ((int64_t)t < KR_TIME_MIN || (int64_t)t > KR_TIME_MAX)
		return KR_EINVAL;
	if (size < KR_RFC3339_BUFSZ)
		return KR_ETOOBIG;
	kr_time_to_utc(t, &u);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)u.year, u.month, u.day, u.hour,
		 u.minute, u.second);
	return KR_OK;
}
