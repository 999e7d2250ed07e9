/* cli.h - the `keyrotator` command line: verb dispatch and shared helpers. */
#ifndef KR_CLI_H
#define KR_CLI_H

#include <stdio.h>

#include "cli/flags.h"

/* Exit codes, public contract (DESIGN.md §3). */
enum kr_exit {
	KR_EXIT_OK = 0,	   /* ok */
	KR_EXIT_FAIL = 1,  /* the check failed / the operation failed */
	KR_EXIT_USAGE = 2, /* bad usage or input */
};

/* A verb: `keyrotator <name> ...`; argv[0] is the verb name. Returns an exit code. */
struct kr_cli_verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Entry point used by main(): dispatches on argv[1] (or on argv[0] for plugins). */
int kr_cli_main(int argc, char **argv);

/* Print "keyrotator <verb>: <message>\n" plus a --help hint to stderr; returns 2. */
int kr_cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "keyrotator <verb>: <message>\n" to stderr; returns `code`. */
int kr_cli_fail(int code, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 when argv[i] for some i >= 1 is --help or -h (checked before parsing). */
int kr_cli_wants_help(int argc, char **argv);

/* Verbs, one file each (cli/<verb>.c). */
int kr_cli_version(int argc, char **argv);
int kr_cli_run(int argc, char **argv);
int kr_cli_schedule(int argc, char **argv);
int kr_cli_doctor(int argc, char **argv);
int kr_cli_keys(int argc, char **argv);
int kr_cli_plan(int argc, char **argv);
/* The kubectl plugin: `keyrotator kubectl ...`, or the binary run as kubectl-keyrotation. */
int kr_cli_kubectl(int argc, char **argv);

/*
 * kr_flags_parse for a verb (flags.h), printing a failure the way every verb does:
 * "keyrotator <verb>: <message>" and the --help hint. Returns an exit code: 2 for bad
 * usage, 1 when out of memory.
 */
int kr_cli_flags(const char *verb, const struct kr_flag *table, unsigned groups, void *opts,
		 int argc, char **argv, int *nargs);

#endif
