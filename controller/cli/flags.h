/* flags.h - the one command-line flag parser: a verb declares a table, parsing and help follow. */
#ifndef KR_CLI_FLAGS_H
#define KR_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

/* What a flag's value is, and so the type of its destination field. */
enum kr_flag_kind {
	KR_FLAG_STRING,	  /* const char *, borrowed from argv or the environment */
	KR_FLAG_INT,	  /* long, decimal, within [min, max] */
	KR_FLAG_DURATION, /* long milliseconds, Go syntax (500ms, 5s, 1h30m), within [min, max] */
	KR_FLAG_BOOL,	  /* bool: alone true; a value only after '=' (true|false|1|0|yes|no) */
	KR_FLAG_CHOICE,	  /* const char *: the matching string of .choices */
	KR_FLAG_LIST,	  /* struct kr_flag_list: repeatable, each value appended with .tag */
	KR_FLAG_CUSTOM,	  /* anything: .parse(value, destination, err) */
};

#define KR_FLAG_LIST_MAX 16

/* A repeatable flag's values in command-line order; flags sharing one list tell apart by tag. */
struct kr_flag_list {
	size_t n;
	const char *values[KR_FLAG_LIST_MAX]; /* borrowed from argv */
	int tags[KR_FLAG_LIST_MAX];
};

/* .opts bits */
#define KR_FLAG_EMPTY_OK 1u /* "" is a meaningful value (otherwise: needs a non-empty value) */

/*
 * One entry of a verb's table. A table ends with an all-zero entry; an entry with no name
 * but a help text is a heading in the generated help.
 */
struct kr_flag {
	const char *name; /* "workers" for --workers */
	char shrt;	  /* 'f' for -f, or 0 */
	enum kr_flag_kind kind;
	size_t off;	     /* the destination: offset in the verb's options struct */
	const char *metavar; /* the value's name in the help ("N", "PATH"); not for BOOL */
	const char *help; /* one paragraph; the generator wraps it and adds range, env, default */
	const char *env;  /* read when the flag is not given (an empty variable counts as unset) */
	const char *def;  /* parsed like a value when neither is given; shown in the help */
	long min, max;	  /* INT, DURATION (ms): the range (both 0: any); LIST: at most max */
	int tag;	  /* LIST: stored with each value */
	const char *const *choices; /* CHOICE: NULL-terminated */
	/* CUSTOM: store `value` into `dst`; KR_EINVAL with a message not naming the flag (the
	 * parser prefixes it). A parse that allocates frees what `dst` held (a repeated flag). */
	enum kr_status (*parse)(const char *value, void *dst, struct kr_error *err);
	unsigned groups; /* 0: always; else only when the parse's groups share a bit */
	unsigned opts;	 /* KR_FLAG_EMPTY_OK */
};

/* The destination of a table entry, type-checked: a field of `type` of exactly `ctype`. */
#define KR_FLAG_OFF(type, field, ctype) _Generic(((type *)0)->field, ctype : offsetof(type, field))
#define KR_FLAG_STRING_AT(T, f)		.kind = KR_FLAG_STRING, .off = KR_FLAG_OFF(T, f, const char *)
#define KR_FLAG_INT_AT(T, f)		.kind = KR_FLAG_INT, .off = KR_FLAG_OFF(T, f, long)
#define KR_FLAG_DURATION_AT(T, f)	.kind = KR_FLAG_DURATION, .off = KR_FLAG_OFF(T, f, long)
#define KR_FLAG_BOOL_AT(T, f)		.kind = KR_FLAG_BOOL, .off = KR_FLAG_OFF(T, f, bool)
#define KR_FLAG_CHOICE_AT(T, f)		.kind = KR_FLAG_CHOICE, .off = KR_FLAG_OFF(T, f, const char *)
#define KR_FLAG_LIST_AT(T, f)		.kind = KR_FLAG_LIST, .off = KR_FLAG_OFF(T, f, struct kr_flag_list)
#define KR_FLAG_CUSTOM_AT(T, f)		.kind = KR_FLAG_CUSTOM, .off = offsetof(T, f)

/*
 * Parse argv[1..argc) into `opts` by `table`, taking only entries that apply to `groups`.
 * Accepts "--name V", "--name=V", "-s V", "-sV", "-s=V"; a BOOL takes a value only after
 * '='. "--" ends the flags; "-" is an argument. Then, for every applicable entry not given
 * on the command line, its environment variable, else its default. Arguments that are not
 * flags are moved, in order, to argv[1..1 + *nargs). `opts` fields are left alone unless
 * set. KR_EINVAL with one message naming the flag as typed (or the variable) and what is
 * wrong: unknown option, missing or empty value, a number or duration out of range, not
 * one of the choices, too many values; KR_ENOMEM from a CUSTOM parse.
 */
enum kr_status kr_flags_parse(const struct kr_flag *table, unsigned groups, void *opts, int argc,
			      char **argv, int *nargs, struct kr_error *err);

/*
 * The index in argv of the first argument that is not a flag or a flag's value (argc if
 * none): a verb whose flags depend on a subcommand word finds that word first.
 */
int kr_flags_first_arg(const struct kr_flag *table, unsigned groups, int argc, char **argv);

/*
 * The options of `table` that apply to `groups`, one per line ("  -f, --filename FILE  help
 * (range; ENV; default X)"), wrapped at 80 columns, headings as they come.
 */
void kr_flags_help(FILE *out, const struct kr_flag *table, unsigned groups);

#endif
