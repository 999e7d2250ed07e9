/* cli.c - verb table and dispatch for the keyrotator binary. */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

#include "version.h"

/* The verbs, in the order `keyrotator --help` lists them. */
static const struct kr_cli_verb kr_cli_verbs[] = {
    {"version", kr_cli_version, "print the version"},
    {"run", kr_cli_run, "run the controller (watch KeyRotations and reconcile them)"},
    {"schedule", kr_cli_schedule, "print the next run times of a cron schedule"},
    {"doctor", kr_cli_doctor, "check the cluster connection, CRD and permissions"},
    {"keys", kr_cli_keys, "create, list, revoke, verify or reconcile keys in a key store"},
    {"plan", kr_cli_plan, "print what a rotation of a KeyRotation manifest would do"},
    {"kubectl", kr_cli_kubectl, "the kubectl plugin (installed as kubectl-keyrotation)"},
};

#define KR_CLI_NVERBS (sizeof(kr_cli_verbs) / sizeof(kr_cli_verbs[0]))

static void kr_cli_help(FILE *out)
{
	fprintf(out,
		"keyrotator %s - zero-downtime rotation of service API keys on Kubernetes\n\n"
		"Usage: keyrotator <command> [options]\n\nCommands:\n",
		KR_VERSION);
	for (size_t i = 0; i < KR_CLI_NVERBS; i++)
		fprintf(out, "  %-10s %s\n", kr_cli_verbs[i].name, kr_cli_verbs[i].summary);
	fprintf(out, "\nRun 'keyrotator <command> --help' for a command's options.\n"
		     "Exit codes: 0 ok, 1 the check or operation failed, 2 bad usage or input.\n");
}

int kr_cli_main(int argc, char **argv)
{
	const char *base = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;

	base = base ? base + 1 : argc > 0 && argv[0] ? argv[0] : "";
	if (!strcmp(base, "kubectl-keyrotation"))
		return kr_cli_kubectl(argc, argv);
	if (argc < 2) {
		kr_cli_help(stderr);
		return KR_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		kr_cli_help(stdout);
		return KR_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return kr_cli_version(argc - 1, argv + 1);
	for (size_t i = 0; i < KR_CLI_NVERBS; i++)
		if (!strcmp(argv[1], kr_cli_verbs[i].name))
			return kr_cli_verbs[i].run(argc - 1, argv + 1);
	fprintf(stderr,
		"keyrotator: unknown command '%s'\n"
		"Run 'keyrotator --help' for the list of commands.\n",
		argv[1]);
	return KR_EXIT_USAGE;
}

int kr_cli_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keyrotator %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun 'keyrotator %s --help' for usage.\n", verb);
	return KR_EXIT_USAGE;
}

int kr_cli_fail(int code, const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keyrotator %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int kr_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	}
	return 0;
}

int kr_cli_flags(const char *verb, const struct kr_flag *table, unsigned groups, void *opts,
		 int argc, char **argv, int *nargs)
{
	struct kr_error err;
	enum kr_status rc;

	kr_error_clear(&err);
	rc = kr_flags_parse(table, groups, opts, argc, argv, nargs, &err);
	if (rc == KR_OK)
		return KR_EXIT_OK;
	if (rc == KR_EINVAL)
		return kr_cli_usage_error(verb, "%s", err.msg);
	return kr_cli_fail(KR_EXIT_FAIL, verb, "%s", err.msg);
}
