/* schedule.h - when rotations happen: 5-field cron (UTC), Go-style durations, RFC3339 times. */
#ifndef KR_SCHEDULE_H
#define KR_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/error.h"

/*
 * Everything here is a pure function: no I/O, no clock, no allocation, no locale, no
 * time zone. All times are UTC. Thread-safe. Error messages never hold secrets (these
 * inputs are spec fields), and name what is wrong so a condition message can carry them.
 */

/* ---- cron (cron.c) ---------------------------------------------------------------- */

/*
 * A parsed 5-field cron expression, "minute hour day-of-month month day-of-week", as
 * Vixie cron (and cronie, Debian's cron) reads it, always in UTC:
 *
 *   *            every value of the field
 *   5  1,15      values and lists
 *   1-5          a range (inclusive); in day of week "fri-sun" / "5-0" wraps to 5-7
 *   * /15 1-30/5 steps over the whole field or over a range (written without the space)
 *   5/15         a step from a start to the end of the field: 5-59/15 in minutes
 *   jan-dec      month names, sun-sat day names; 3 letters, any case, in ranges too
 *   0 or 7       both mean Sunday in day of week
 *   @yearly @annually @monthly @weekly @daily @midnight @hourly
 *                the same as "0 0 1 1 *", "0 0 1 1 *", "0 0 1 * *", "0 0 * * 0",
 *                "0 0 * * *", "0 0 * * *" and "0 * * * *" (@reboot is refused: a
 *                controller that restarts is not a machine that boots)
 *
 * The day rule (Vixie's DOM_STAR/DOW_STAR): a day matches when
 *   - day of month or day of week starts with '*': BOTH fields must match (the '*'
 *     one matches every day unless it has a step, see below);
 *   - otherwise (both restricted): EITHER field matching is enough.
 * So "0 3 1,15 * 1" runs on the 1st, the 15th AND every Monday; "0 3 * * 1" only on
 * Mondays; "0 3 1 * *" only on the 1st. The test is on the field's first character, as
 * in Vixie: "0 3 * /2 * 1" (no space) means odd days that are also Mondays, while
 * "0 3 1-31/2 * 1" means odd days or Mondays.
 *
 * Bit i of each set is value i. Embedded by value; no release needed.
 */
struct kr_cron {
	uint64_t minute; /* bits 0-59 */
	uint32_t hour;	 /* bits 0-23 */
	uint32_t dom;	 /* bits 1-31 */
	uint16_t month;	 /* bits 1-12 */
	uint8_t dow;	 /* bits 0-7; 0 and 7 (Sunday) are always both set or both clear */
	bool dom_star;	 /* day-of-month field started with '*' */
	bool dow_star;	 /* day-of-week field started with '*' */
};

/*
 * Parse `expr` into *out. Leading/trailing blanks are ignored; fields are separated by
 * spaces or tabs. KR_EINVAL with a message naming the field and the problem, e.g.
 *   "schedule: field 3 (day of month): 32 is out of range 1-31"
 *   "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 6"
 * An expression that can never fire ("0 0 30 2 *") is refused here too, with
 * "schedule: never matches: ...". *out is written only on success.
 */
enum kr_status kr_cron_parse(const char *expr, struct kr_cron *out, struct kr_error *err);

/* 1 when the minute that contains `t` is one the schedule fires in. */
bool kr_cron_matches(const struct kr_cron *cron, time_t t);

/*
 * The first minute (seconds = 0) strictly after `after` that matches. It skips whole
 * months, days and hours that cannot match, so it is fast for rare schedules, and it
 * searches at most 400 years (the Gregorian calendar repeats every 400 years, so a
 * schedule with no match there never matches): then KR_EINVAL "schedule never matches".
 * Also KR_EINVAL when the answer would be after 9999-12-31 or `after` is before 0000.
 */
enum kr_status kr_cron_next(const struct kr_cron *cron, time_t after, time_t *next,
			    struct kr_error *err);

/*
 * How often `cron` fires: the shortest gap, in seconds, between two consecutive runs
 * (kr_cron_next) from its first run after 2000-01-01T00:00:00Z: over the runs in the 8
 * days from that one, at least 2 and at most KR_CRON_GAP_RUNS of them (so a rare schedule
 * costs two searches); and whether every gap there was that one (*uniform; "0-59/5 * * * *"
 * yes, "0,10,50 * * * *" no). The start is fixed, so a spec's validation never depends on
 * the clock. The window opens with the first hour the schedule fires in, and in every hour
 * it fires in, it fires at each minute of field 1: so *min_s < 3600 exactly when the
 * schedule can fire more than once in an hour. INT64_MAX when it runs only once before
 * year 10000. KR_EINVAL only when it never runs (which kr_cron_parse refuses).
 */
#define KR_CRON_GAP_RUNS     128
#define KR_CRON_GAP_WINDOW_S (8 * 86400)
enum kr_status kr_cron_min_gap(const struct kr_cron *cron, int64_t *min_s, bool *uniform,
			       struct kr_error *err);

/* ---- durations (duration.c) ------------------------------------------------------- */

/*
 * Go's time.ParseDuration syntax, in milliseconds: a sequence of decimal numbers, each
 * with an optional fraction and a unit: "ns", "us" (or "µs"/"μs"), "ms", "s", "m", "h".
 * "90s", "10m", "1h30m", "1.5h", ".5s", "2160h"; "0" alone is valid. Parsing is exact
 * to the nanosecond as in Go; the result is truncated to whole milliseconds ("1500us" is
 * 1 ms). The largest value is Go's, 2562047h47m16.854775807s. Refused (KR_EINVAL): empty
 * text, a sign ("-5m": a negative duration means nothing here; "+5m" too), a missing
 * unit ("10"), an unknown unit ("10d": Go has no days; write 240h), blanks, overflow.
 * The message quotes the text: `invalid duration "10d": unknown unit "d"`; callers
 * prefix the field ("spec.maxKeyAge: ").
 */
enum kr_status kr_duration_parse(const char *text, int64_t *ms, struct kr_error *err);

/* Big enough for any int64_t millisecond count, with the terminating NUL. */
#define KR_DURATION_BUFSZ 32

/*
 * Go's time.Duration.String() for `ms` milliseconds: "0s", "250ms", "1.5s", "1m30s",
 * "1h30m0s", "2160h0m0s" (hours, then minutes and seconds always shown once a larger
 * unit is; fractions of a second with trailing zeros trimmed). Negative values get a
 * '-'. kr_duration_parse reads every output back to the same value (within Go's range).
 * KR_ETOOBIG when `size` is too small (the text is then truncated, still terminated).
 */
enum kr_status kr_duration_format(int64_t ms, char *buf, size_t size);

/* ---- UTC calendar and RFC3339 (timefmt.c) ----------------------------------------- */

/* A broken-down UTC time, proleptic Gregorian calendar. */
struct kr_utc {
	int64_t year;
	int month;   /* 1-12 */
	int day;     /* 1-31 */
	int hour;    /* 0-23 */
	int minute;  /* 0-59 */
	int second;  /* 0-59 */
	int weekday; /* 0 = Sunday .. 6 = Saturday */
};

/* Days in `month` (1-12) of `year`: 28-31, Gregorian leap years. */
int kr_days_in_month(int64_t year, int month);
/* Days since 1970-01-01 of a calendar date (negative before); fields must be valid. */
int64_t kr_days_from_civil(int64_t year, int month, int day);
/* Break `t` down in UTC. Never fails (no time zone, no libc). */
void kr_time_to_utc(time_t t, struct kr_utc *out);
/* The inverse for valid fields (weekday is ignored). */
time_t kr_time_from_utc(const struct kr_utc *u);

/*
 * Parse an RFC3339 timestamp: "2026-01-01T00:00:00Z", with an optional fraction of a
 * second (dropped: the result is in whole seconds) and "Z" or a "+hh:mm"/"-hh:mm"
 * offset; 't' and 'z' may be lower case. Years 0000-9999; second 60 is refused as Go
 * (and so Kubernetes) does. KR_EINVAL with a message that quotes the text.
 */
enum kr_status kr_time_parse_rfc3339(const char *text, time_t *out, struct kr_error *err);

/* "2006-01-02T15:04:05Z" plus NUL. */
#define KR_RFC3339_BUFSZ 21

/*
 * Format `t` as "2006-01-02T15:04:05Z" (UTC, whole seconds: Kubernetes' metav1.Time).
 * KR_EINVAL when the year is outside 0000-9999, KR_ETOOBIG when size < KR_RFC3339_BUFSZ;
 * buf is then "" (when size > 0).
 */
enum kr_status kr_time_format_rfc3339(time_t t, char *buf, size_t size);

#endif
