/* test_cli_flags.c - the CLI's one flag parser (cli/flags.c): parsing, errors, env, help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli/flags.h"

struct opts {
	const char *name, *output, *id;
	long count, timeout_ms;
	bool verbose;
	struct kr_flag_list files;
	const char *only_b;
};

static enum kr_status parse_id(const char *v, void *dst, struct kr_error *err)
{
	if (strspn(v, "0123456789abcdef") != strlen(v))
		return kr_error_set(err, KR_EINVAL, "not a key id");
	*(const char **)dst = v;
	return KR_OK;
}

#define O(kind, f) KR_FLAG_##kind##_AT(struct opts, f)

static const struct kr_flag table[] = {
    {.help = "Options:"},
    {.name = "name",
     .shrt = 'n',
     O(STRING, name),
     .metavar = "NAME",
     .env = "KRT_NAME",
     .def = "anon",
     .help = "who"},
    {.name = "count",
     O(INT, count),
     .metavar = "N",
     .min = 1,
     .max = 10,
     .env = "KRT_COUNT",
     .def = "3",
     .help = "how many"},
    {.name = "timeout",
     O(DURATION, timeout_ms),
     .metavar = "DUR",
     .min = 1000,
     .max = 600000,
     .def = "5s",
     .help = "how long"},
    {.name = "verbose", .shrt = 'v', O(BOOL, verbose), .env = "KRT_VERBOSE", .help = "talk"},
    {.name = "output",
     .shrt = 'o',
     O(CHOICE, output),
     .choices = (const char *const[]){"text", "json", NULL},
     .def = "text",
     .help = "format"},
    {.name = "file", O(LIST, files), .tag = 2, .metavar = "FILE", .max = 2, .help = "a file"},
    {.name = "id", O(CUSTOM, id), .parse = parse_id, .metavar = "ID", .help = "an id"},
    {.help = "Group B:", .groups = 2},
    {.name = "only-b", O(STRING, only_b), .metavar = "X", .groups = 2, .help = "b only"},
    {0},
};

/* argv from a NULL-terminated list of strings; argv[0] is "verb". */
struct args {
	int argc;
	char *argv[16];
};

static struct args mkargs(const char *first, ...)
{
	struct args a = {1, {"verb"}};
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s && a.argc < 15; s = va_arg(ap, const char *))
		a.argv[a.argc++] = (char *)s;
	va_end(ap);
	a.argv[a.argc] = NULL;
	return a;
}

#define ARGS(...) mkargs(__VA_ARGS__, (const char *)NULL)

static enum kr_status run(struct args *a, unsigned groups, struct opts *o, int *nargs,
			  struct kr_error *err)
{
	memset(o, 0, sizeof(*o));
	kr_error_clear(err);
	return kr_flags_parse(table, groups, o, a->argc, a->argv, nargs, err);
}

static int setup(void **state)
{
	(void)state;
	unsetenv("KRT_NAME");
	unsetenv("KRT_COUNT");
	unsetenv("KRT_VERBOSE");
	return 0;
}

static void test_forms(void **state)
{
	struct args a =
	    ARGS("pos1", "--name", "x", "--count=7", "-o", "json", "-v", "--", "--count");
	struct kr_error err;
	struct opts o;
	int n = -1;

	(void)state;
	assert_int_equal(run(&a, 0, &o, &n, &err), KR_OK);
	assert_string_equal(o.name, "x");
	assert_int_equal(o.count, 7);
	assert_string_equal(o.output, "json");
	assert_true(o.verbose);
	assert_int_equal(n, 2); /* pos1, and --count after "--" */
	assert_string_equal(a.argv[1], "pos1");
	assert_string_equal(a.argv[2], "--count");

	a = ARGS("-nshort", "-o=text", "--verbose=false", "-", "--timeout", "90s");
	assert_int_equal(run(&a, 0, &o, &n, &err), KR_OK);
	assert_string_equal(o.name, "short");
	assert_string_equal(o.output, "text");
	assert_false(o.verbose);
	assert_int_equal(o.timeout_ms, 90000);
	assert_int_equal(n, 1);
	assert_string_equal(a.argv[1], "-");
}

static void test_defaults_list_custom(void **state)
{
	struct args a = ARGS("--file", "a", "--file=b", "--id", "abc");
	struct kr_error err;
	struct opts o;
	int n;

	(void)state;
	assert_int_equal(run(&a, 0, &o, &n, &err), KR_OK);
	assert_string_equal(o.name, "anon");
	assert_int_equal(o.count, 3);
	assert_int_equal(o.timeout_ms, 5000);
	assert_string_equal(o.output, "text");
	assert_false(o.verbose);
	assert_int_equal(o.files.n, 2);
	assert_string_equal(o.files.values[0], "a");
	assert_string_equal(o.files.values[1], "b");
	assert_int_equal(o.files.tags[1], 2);
	assert_string_equal(o.id, "abc");
	assert_int_equal(n, 0);
}

/* Flag > environment > default; an empty variable counts as unset. */
static void test_precedence(void **state)
{
	struct args none = ARGS("pos");
	struct args flag = ARGS("--count", "9", "--name", "flag");
	struct kr_error err;
	struct opts o;
	int n;

	(void)state;
	setenv("KRT_COUNT", "5", 1);
	setenv("KRT_NAME", "", 1);
	setenv("KRT_VERBOSE", "yes", 1);
	assert_int_equal(run(&none, 0, &o, &n, &err), KR_OK);
	assert_int_equal(o.count, 5);
	assert_string_equal(o.name, "anon");
	assert_true(o.verbose);
	assert_int_equal(run(&flag, 0, &o, &n, &err), KR_OK);
	assert_int_equal(o.count, 9);
	assert_string_equal(o.name, "flag");
	/* a bad variable is an error naming it, unless the flag is given */
	setenv("KRT_COUNT", "11", 1);
	flag = ARGS("--count", "9");
	assert_int_equal(run(&flag, 0, &o, &n, &err), KR_OK);
	none = ARGS("pos");
	assert_int_equal(run(&none, 0, &o, &n, &err), KR_EINVAL);
	assert_string_equal(err.msg, "KRT_COUNT: \"11\" is not a number from 1 to 10");
	setup(NULL);
}

/* Every error: KR_EINVAL, the message names the flag as typed; kr_cli_flags exits 2. */
static void test_errors(void **state)
{
	static const struct {
		const char *argv[4];
		const char *msg;
	} cases[] = {
	    {{"--bogus"}, "unknown option '--bogus'"},
	    {{"--bogus=secret"}, "unknown option '--bogus'"},
	    {{"-x"}, "unknown option '-x'"},
	    {{"--only-b", "1"}, "unknown option '--only-b'"}, /* not in group 1 */
	    {{"--count"}, "--count needs a value"},
	    {{"-n"}, "-n needs a value"},
	    {{"--name="}, "--name needs a non-empty value"},
	    {{"--name", ""}, "--name needs a non-empty value"},
	    {{"--count", "0"}, "--count: \"0\" is not a number from 1 to 10"},
	    {{"--count", "11"}, "--count: \"11\" is not a number from 1 to 10"},
	    {{"--count", "5x"}, "--count: \"5x\" is not a number from 1 to 10"},
	    {{"--count", "99999999999999999999"},
	     "--count: \"99999999999999999999\" is not a number from 1 to 10"},
	    {{"--timeout", "1h"},
	     "--timeout: \"1h\" is not a duration from 1s to 10m (e.g. 500ms, 5s, 1h)"},
	    {{"--timeout", "soon"},
	     "--timeout: \"soon\" is not a duration from 1s to 10m (e.g. 500ms, 5s, 1h)"},
	    {{"--verbose=maybe"}, "--verbose: \"maybe\" is not true or false"},
	    {{"-o", "yaml"}, "-o: \"yaml\" is not text or json"},
	    {{"--id", "XYZ"}, "--id: not a key id"},
	    {{"--file", "a", "--file", "b"}, NULL}, /* filled below: three is one too many */
	};
	struct kr_error err;
	struct opts o;
	int n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct args a =
		    ARGS(cases[i].argv[0], cases[i].argv[1], cases[i].argv[2], cases[i].argv[3]);
		const char *want = cases[i].msg;
		char out[1024] = "";
		FILE *tmp = tmpfile();
		int saved = dup(STDERR_FILENO);

		if (!want) {
			a.argv[a.argc++] = "--file";
			a.argv[a.argc++] = "c";
			a.argv[a.argc] = NULL;
			want = "--file: at most 2 values";
		}
		print_message("case %zu: %s\n", i, want);
		assert_int_equal(run(&a, 1, &o, &n, &err), KR_EINVAL);
		assert_string_equal(err.msg, want);
		/* The same through the verb helper: exit 2, the message and the hint. */
		assert_non_null(tmp);
		fflush(stderr);
		dup2(fileno(tmp), STDERR_FILENO);
		memset(&o, 0, sizeof(o));
		assert_int_equal(kr_cli_flags("verb", table, 1, &o, a.argc, a.argv, &n),
				 KR_EXIT_USAGE);
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		rewind(tmp);
		out[fread(out, 1, sizeof(out) - 1, tmp)] = '\0';
		fclose(tmp);
		assert_non_null(strstr(out, "keyrotator verb: "));
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "Run 'keyrotator verb --help' for usage."));
		assert_null(strstr(out, "secret"));
	}
}

static void test_groups_and_first_arg(void **state)
{
	struct args a = ARGS("--only-b", "v", "cmd", "--name", "x");
	struct kr_error err;
	struct opts o;
	int n;

	(void)state;
	assert_int_equal(run(&a, 2, &o, &n, &err), KR_OK);
	assert_string_equal(o.only_b, "v");
	a = ARGS("-n", "x", "--verbose", "cmd", "rest");
	assert_int_equal(kr_flags_first_arg(table, 1, a.argc, a.argv), 4);
	a = ARGS("--name=x", "--", "-cmd");
	assert_int_equal(kr_flags_first_arg(table, 1, a.argc, a.argv), 3);
	a = ARGS("--name", "x");
	assert_int_equal(kr_flags_first_arg(table, 1, a.argc, a.argv), 3);
}

/* The help lists every flag of the groups asked for, with its env and default. */
static void test_help_lists_every_flag(void **state)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	(void)state;
	assert_non_null(out);
	kr_flags_help(out, table, 1);
	fclose(out);
	for (const struct kr_flag *e = table; e->name || e->help; e++) {
		char want[64];

		if (!e->name)
			continue;
		snprintf(want, sizeof(want), "--%s", e->name);
		if (e->groups & 2)
			assert_null(strstr(text, want));
		else
			assert_non_null(strstr(text, want));
	}
	assert_non_null(strstr(text, "Options:\n"));
	assert_null(strstr(text, "Group B:"));
	assert_non_null(strstr(text, "  -n, --name NAME"));
	assert_non_null(strstr(text, "(KRT_NAME; default anon)"));
	assert_non_null(strstr(text, "(1..10; KRT_COUNT; default 3)"));
	assert_non_null(strstr(text, "(1s..10m; default 5s)"));
	assert_non_null(strstr(text, "KRT_VERBOSE=true|false"));
	assert_non_null(strstr(text, "-o, --output text|json"));
	for (char *line = text; *line; line = strchr(line, '\n') + 1)
		assert_true(strcspn(line, "\n") < 80);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_forms, setup),
	    cmocka_unit_test_setup(test_defaults_list_custom, setup),
	    cmocka_unit_test_setup(test_precedence, setup),
	    cmocka_unit_test_setup(test_errors, setup),
	    cmocka_unit_test_setup(test_groups_and_first_arg, setup),
	    cmocka_unit_test_setup(test_help_lists_every_flag, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
