/* schedule.c - `keyrotator schedule "<cron>"`: print the next run times of a schedule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "rotation/schedule.h"

#define KR_SCHEDULE_DEFAULT_COUNT 5
#define KR_SCHEDULE_MAX_COUNT	  1000

struct kr_schedule_args {
	const char *from; /* NULL: now */
	long count;
};

#define SCHED(kind, f) KR_FLAG_##kind##_AT(struct kr_schedule_args, f)
#define KR_STR2(x)     #x
#define KR_STR(x)      KR_STR2(x)

static const struct kr_flag kr_schedule_flags[] = {
    {.name = "from",
     SCHED(STRING, from),
     .metavar = "TIME",
     .help = "start after this RFC3339 time (default: now)"},
    {.name = "count",
     SCHED(INT, count),
     .metavar = "N",
     .min = 1,
     .max = KR_SCHEDULE_MAX_COUNT,
     .def = KR_STR(KR_SCHEDULE_DEFAULT_COUNT),
     .help = "how many times to print"},
    {0},
};

static void kr_schedule_help(void)
{
	printf("Usage: keyrotator schedule \"<cron>\" [--from RFC3339] [--count N]\n\n"
	       "Print the next times a KeyRotation's spec.schedule fires, one RFC3339 time\n"
	       "(UTC) per line, as the controller computes them.\n\n"
	       "  <cron>                    5 fields, UTC: minute hour day-of-month month\n"
	       "                            day-of-week; lists 1,15  ranges 1-5  steps */15\n"
	       "                            1-30/5  names jan-dec sun-sat; or @yearly @monthly\n"
	       "                            @weekly @daily @hourly. Quote it. When day-of-month\n"
	       "                            and day-of-week are both restricted (neither starts\n"
	       "                            with '*'), a day matching either one fires (Vixie\n"
	       "                            cron).\n");
	kr_flags_help(stdout, kr_schedule_flags, 0);
	printf("\nExample: keyrotator schedule \"0 3 1 */3 *\" --from 2026-01-01T00:00:00Z\n"
	       "Exit codes: 0 ok, 1 no further run time (after year 9999), 2 bad usage or "
	       "input.\n");
}

/* The flags, then exactly one argument: the expression, into *expr. */
static int kr_schedule_parse_args(int argc, char **argv, struct kr_schedule_args *a,
				  const char **expr)
{
	int nargs = 0, rc;

	rc = kr_cli_flags("schedule", kr_schedule_flags, 0, a, argc, argv, &nargs);
	if (rc != KR_EXIT_OK)
		return rc;
	if (nargs == 0)
		return kr_cli_usage_error("schedule", "missing the cron expression");
	if (nargs > 1)
		return kr_cli_usage_error("schedule",
					  "expected one cron expression, got more arguments "
					  "('%s'); quote it: keyrotator schedule \"0 3 * * *\"",
					  argv[2]);
	*expr = argv[1];
	return KR_EXIT_OK;
}

int kr_cli_schedule(int argc, char **argv)
{
	struct kr_schedule_args a = {0};
	const char *expr = NULL;
	char text[KR_RFC3339_BUFSZ];
	struct kr_error err;
	struct kr_cron cron;
	time_t t;
	int rc;

	if (kr_cli_wants_help(argc, argv)) {
		kr_schedule_help();
		return KR_EXIT_OK;
	}
	rc = kr_schedule_parse_args(argc, argv, &a, &expr);
	if (rc != KR_EXIT_OK)
		return rc;
	kr_error_clear(&err);
	/* The library says "schedule: field 3 ..."; after "keyrotator schedule: " once is enough.
	 */
	if (kr_cron_parse(expr, &cron, &err) != KR_OK)
		return kr_cli_fail(KR_EXIT_USAGE, "schedule", "%s",
				   err.msg + (strncmp(err.msg, "schedule: ", 10) ? 0 : 10));
	if (!a.from)
		t = time(NULL);
	else if (kr_time_parse_rfc3339(a.from, &t, &err) != KR_OK)
		return kr_cli_fail(KR_EXIT_USAGE, "schedule", "--from: %s", err.msg);
	for (long i = 0; i < a.count; i++) {
		if (kr_cron_next(&cron, t, &t, &err) != KR_OK)
			return kr_cli_fail(KR_EXIT_FAIL, "schedule", "%s", err.msg);
		if (kr_time_format_rfc3339(t, text, sizeof(text)) != KR_OK)
			return kr_cli_fail(KR_EXIT_FAIL, "schedule", "cannot format a run time");
		printf("%s\n", text);
	}
	return fflush(stdout) == 0 ? KR_EXIT_OK : KR_EXIT_FAIL;
}
