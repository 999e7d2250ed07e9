/* schedule.c - `keyrotator schedule "<cron>"`: print the next run times of a schedule. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "rotation/schedule.h"

#define KR_SCHEDULE_DEFAULT_COUNT 5
#define KR_SCHEDULE_MAX_COUNT	  1000

struct kr_schedule_args {
	const char *expr;
	const char *from; /* NULL: now */
	long count;
};

static void kr_schedule_help(void)
{
	printf(
	    "Usage: keyrotator schedule \"<cron>\" [--from RFC3339] [--count N]\n\n"
	    "Print the next times a KeyRotation's spec.schedule fires, one RFC3339 time\n"
	    "(UTC) per line, as the controller computes them.\n\n"
	    "  <cron>          5 fields, UTC: minute hour day-of-month month day-of-week;\n"
	    "                  lists 1,15  ranges 1-5  steps */15 1-30/5  names jan-dec sun-sat;\n"
	    "                  or @yearly @monthly @weekly @daily @hourly. Quote it.\n"
	    "                  When day-of-month and day-of-week are both restricted (neither\n"
	    "                  starts with '*'), a day matching either one fires (Vixie cron).\n"
	    "  --from TIME     start after this RFC3339 time (default: now)\n"
	    "  --count N       how many times to print, 1-%d (default %d)\n\n"
	    "Example: keyrotator schedule \"0 3 1 */3 *\" --from 2026-01-01T00:00:00Z\n"
	    "Exit codes: 0 ok, 1 no further run time (after year 9999), 2 bad usage or input.\n",
	    KR_SCHEDULE_MAX_COUNT, KR_SCHEDULE_DEFAULT_COUNT);
}

/* The value of --name (as "--name V" or "--name=V") at argv[*i], or NULL if not that flag. */
static const char *kr_schedule_flag(const char *name, int argc, char **argv, int *i, int *missing)
{
	size_t len = strlen(name);

	if (strncmp(argv[*i], name, len))
		return NULL;
	if (argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (argv[*i][len] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = 1;
		return NULL;
	}
	return argv[++*i];
}

static int kr_schedule_count(const char *text, long *count)
{
	char *end;

	errno = 0;
	*count = strtol(text, &end, 10);
	if (errno || end == text || *end || *count < 1 || *count > KR_SCHEDULE_MAX_COUNT)
		return kr_cli_usage_error("schedule",
					  "--count: \"%s\" is not a number from 1 to %d", text,
					  KR_SCHEDULE_MAX_COUNT);
	return KR_EXIT_OK;
}

static int kr_schedule_parse_args(int argc, char **argv, struct kr_schedule_args *a)
{
	const char *v;
	int missing = 0, rc, only_args = 0;

	for (int i = 1; i < argc; i++) {
		if (!only_args && !strcmp(argv[i], "--")) {
			only_args = 1;
		} else if (!only_args &&
			   (v = kr_schedule_flag("--from", argc, argv, &i, &missing))) {
			a->from = v;
		} else if (!only_args &&
			   (v = kr_schedule_flag("--count", argc, argv, &i, &missing))) {
			rc = kr_schedule_count(v, &a->count);
			if (rc != KR_EXIT_OK)
				return rc;
		} else if (missing) {
			return kr_cli_usage_error("schedule", "%s needs a value", argv[i]);
		} else if (!only_args && argv[i][0] == '-' && argv[i][1] != '\0') {
			return kr_cli_usage_error("schedule", "unknown option '%s'", argv[i]);
		} else if (a->expr) {
			return kr_cli_usage_error(
			    "schedule",
			    "expected one cron expression, got more arguments "
			    "('%s'); quote it: keyrotator schedule \"0 3 * * *\"",
			    argv[i]);
		} else {
			a->expr = argv[i];
		}
	}
	if (!a->expr)
		return kr_cli_usage_error("schedule", "missing the cron expression");
	return KR_EXIT_OK;
}

int kr_cli_schedule(int argc, char **argv)
{
	struct kr_schedule_args a = {NULL, NULL, KR_SCHEDULE_DEFAULT_COUNT};
	char text[KR_RFC3339_BUFSZ];
	struct kr_error err;
	struct kr_cron cron;
	time_t t;
	int rc;

	if (kr_cli_wants_help(argc, argv)) {
		kr_schedule_help();
		return KR_EXIT_OK;
	}
	rc = kr_schedule_parse_args(argc, argv, &a);
	if (rc != KR_EXIT_OK)
		return rc;
	kr_error_clear(&err);
	/* The library says "schedule: field 3 ..."; after "keyrotator schedule: " once is enough.
	 */
	if (kr_cron_parse(a.expr, &cron, &err) != KR_OK)
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
