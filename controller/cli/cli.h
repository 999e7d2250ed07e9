/* cli.h - the `keyrotator` command line: verb dispatch and shared helpers. */
#ifndef KR_CLI_H
#define KR_CLI_H

#include <stdio.h>

/* Exit codes, public contract (DESIGN.md §3). */
enum kr_exit {
	KR_EXIT_OK = 0,     /* ok */
	KR_EXIT_FAIL = 1,   /* the check failed / the operation failed */
	KR_EXIT_USAGE = 2,  /* bad usage or input */
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
 * The value of a flag at argv[*i]: "--long V", "--long=V", "-s V", "-sV", "-s=V" (`shrt`
 * may be NULL). NULL when argv[*i] is not this flag; sets *missing when it is but has no
 * value. Advances *i past a separate value.
 */
const char *kr_cli_flag(const char *lng, const char *shrt, int argc, char **argv, int *i,
			int *missing);

#endif
