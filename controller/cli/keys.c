/* keys.c - `keyrotator keys create|list|revoke|verify|reconcile`: help and dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/keys_internal.h"

static const char kr_keys_exit_help[] =
    "Exit codes: 0 ok, 1 the check or operation failed, 2 bad usage or input.\n";

static const char kr_keys_usage_create[] =
    "Usage: keyrotator keys create [--label L] [--prefix P] [--bytes N] "
    "[--rotation R] [--bootstrap] [store options]\n\n"
    "Generate a key (getrandom(2)), make it active in the key store with its\n"
    "metadata, and print it once on stdout - nothing else goes to stdout. The key\n"
    "id and label go to stderr. Store the key now: it cannot be shown again.\n\n";

static const char kr_keys_usage_list[] =
    "Usage: keyrotator keys list [--json] [store options]\n\n"
    "List the keys the store knows - members of activeSet and keys with metadata,\n"
    "revoked ones included - by id (first 12 hex digits of SHA-256 of the key),\n"
    "never the keys themselves, in either layout. STATUS is active (the API\n"
    "accepts it), revoked, or missing (metadata says active but activeSet lacks\n"
    "it: run `keys reconcile`). '*' marks the id the bootstrap marker holds.\n\n";

static const char kr_keys_usage_revoke[] =
    "Usage: keyrotator keys revoke ID|KEY [--any-format] [store options]\n"
    "       keyrotator keys revoke --key-from-env VAR | --key-file FILE\n\n"
    "Remove a key from activeSet and mark its metadata revoked (revoked_at). ID is\n"
    "a 12-hex-digit key id as `keys list` shows; KEY the key itself (better from\n"
    "an environment variable or a file, '-' for stdin, than on the command line).\n"
    "Revoking a revoked key succeeds and says so.\n\n";

static const char kr_keys_usage_verify[] =
    "Usage: keyrotator keys verify KEY [--any-format] [store options]\n"
    "       keyrotator keys verify --key-from-env VAR | --key-file FILE\n\n"
    "Exit 0 when the key is active (a member of activeSet), 1 when it is not. A\n"
    "keyrotator key with a bad checksum is rejected without asking the store.\n"
    "KEY '-' reads the key from stdin; a file or a variable keeps it out of your\n"
    "shell history.\n\n";

static const char kr_keys_usage_reconcile[] =
    "Usage: keyrotator keys reconcile (--key-from-env VAR | --key-file FILE)... "
    "[--rotation R] [--no-bootstrap] [store options]\n\n"
    "The runbooks' \"restart to reconcile key metadata + bootstrap state\": the keys\n"
    "given must be active. Re-add what is missing (after Valkey data loss),\n"
    "repair their metadata, and point the bootstrap marker at the first key.\n"
    "Members of activeSet it was not given are counted, never removed. Keys in any\n"
    "format are accepted (the deployed key is the source of truth). Repeat the\n"
    "flags for several keys (current first, then previous).\n\n";

static const char kr_keys_usage_all[] =
    "Usage: keyrotator keys <command> [options]\n\n"
    "Work on a Valkey/Redis key store directly, as the runbooks do by hand.\n\n"
    "Commands:\n"
    "  create      generate a key, activate it, print it once\n"
    "  list        ids, labels, dates, status - never keys\n"
    "  revoke      revoke a key by id or by key\n"
    "  verify      exit 0 if a key is active, 1 if not\n"
    "  reconcile   restore keys, metadata and bootstrap marker from deployed "
    "keys\n\n"
    "Run 'keyrotator keys <command> --help' for a command's options.\n\n";

/* `usage` is one of the kr_keys_usage_* texts; a subcommand's lists its flags, `sub`. */
static void kr_keys_help(const char *usage, unsigned sub)
{
	printf("%s", usage);
	if (sub) {
		kr_flags_help(stdout, kr_keys_flags, sub);
		printf("\n");
	}
	printf("%s", kr_keys_exit_help);
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	enum kr_keys_sub sub;
	int (*run)(struct kr_keys_args *a);
	const char *usage;
} kr_keys_subs[] = {
    {"create", KR_SUB_CREATE, kr_keys_create, kr_keys_usage_create},
    {"list", KR_SUB_LIST, kr_keys_list, kr_keys_usage_list},
    {"revoke", KR_SUB_REVOKE, kr_keys_revoke, kr_keys_usage_revoke},
    {"verify", KR_SUB_VERIFY, kr_keys_verify, kr_keys_usage_verify},
    {"reconcile", KR_SUB_RECONCILE, kr_keys_reconcile, kr_keys_usage_reconcile},
};

int kr_cli_keys(int argc, char **argv)
{
	struct kr_keys_args a;
	char verb[32];
	int rc;

	if (argc < 2)
		return kr_cli_usage_error("keys", "missing command: create, list, revoke, verify "
						  "or reconcile");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		kr_keys_help(kr_keys_usage_all, 0);
		return KR_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(kr_keys_subs) / sizeof(kr_keys_subs[0]); i++) {
		if (strcmp(argv[1], kr_keys_subs[i].name))
			continue;
		if (kr_cli_wants_help(argc - 1, argv + 1)) {
			kr_keys_help(kr_keys_subs[i].usage, kr_keys_subs[i].sub);
			return KR_EXIT_OK;
		}
		memset(&a, 0, sizeof(a));
		a.sub = kr_keys_subs[i].sub;
		snprintf(verb, sizeof(verb), "keys %s", kr_keys_subs[i].name);
		a.verb = verb;
		rc = kr_keys_parse(argc - 1, argv + 1, &a);
		if (rc == KR_EXIT_OK)
			rc = kr_keys_subs[i].run(&a);
		kr_secret_free(a.positional);
		return rc;
	}
	return kr_cli_usage_error("keys",
				  "unknown command '%s' (create, list, revoke, verify, "
				  "reconcile)",
				  argv[1]);
}
