/* keys_flags.c - `keyrotator keys`: the flags of every subcommand, one table, and parsing. */
#include <string.h>

#include "cli/keys_internal.h"

static enum kr_status kr_keys_parse_store_as(const char *v, void *dst, struct kr_error *err)
{
	return kr_store_as_parse(v, dst, err);
}

#define KEYS(kind, f)	  KR_FLAG_##kind##_AT(struct kr_keys_args, f)
#define KR_KEYS_STR2(x)	  #x
#define KR_KEYS_STR(x)	  KR_KEYS_STR2(x)
#define KR_KEYS_WITH_KEYS (KR_SUB_REVOKE | KR_SUB_VERIFY | KR_SUB_RECONCILE)

/* Every flag of every `keys` subcommand; .groups says which take it (0: all). */
const struct kr_flag kr_keys_flags[] = {
    {.help = "Options:", .groups = KR_SUB_ALL},
    {.name = "label",
     KEYS(STRING, label),
     .metavar = "L",
     .groups = KR_SUB_CREATE,
     .help = "metadata label (e.g. 2024-Q1-Rotation)"},
    {.name = "prefix",
     KEYS(STRING, prefix),
     .metavar = "P",
     .groups = KR_SUB_CREATE,
     .opts = KR_FLAG_EMPTY_OK,
     .help = "[a-z0-9_]{0,16}, e.g. sk_ (default: none)"},
    {.name = "bytes",
     KEYS(INT, bytes),
     .metavar = "N",
     .groups = KR_SUB_CREATE,
     .min = KR_KEY_MIN_BYTES,
     .max = KR_KEY_MAX_BYTES,
     .def = KR_KEYS_STR(KR_KEY_DEFAULT_BYTES),
     .help = "random bytes"},
    {.name = "rotation",
     KEYS(STRING, rotation),
     .metavar = "R",
     .def = "cli",
     .groups = KR_SUB_CREATE | KR_SUB_RECONCILE,
     .help = "metadata `rotation` (reconcile: where missing)"},
    {.name = "bootstrap",
     KEYS(BOOL, bootstrap),
     .groups = KR_SUB_CREATE,
     .help = "also point the bootstrap marker at the new key"},
    {.name = "json",
     KEYS(BOOL, json),
     .groups = KR_SUB_LIST,
     .help = "one JSON array instead of the table"},
    {.name = "any-format",
     KEYS(BOOL, any_format),
     .groups = KR_SUB_REVOKE | KR_SUB_VERIFY,
     .help = "accept a KEY not made by keyrotator (legacy keys: no checksum check)"},
    {.name = "key-from-env",
     KEYS(LIST, sources),
     .tag = KR_SOURCE_ENV,
     .metavar = "VAR",
     .max = KR_KEYS_MAX_SOURCES,
     .groups = KR_KEYS_WITH_KEYS,
     .help = "the key is in environment variable VAR"},
    {.name = "key-file",
     KEYS(LIST, sources),
     .tag = KR_SOURCE_FILE,
     .metavar = "FILE",
     .max = KR_KEYS_MAX_SOURCES,
     .groups = KR_KEYS_WITH_KEYS,
     .help = "the key is in FILE ('-': stdin); trailing newline ok"},
    {.name = "no-bootstrap",
     KEYS(BOOL, no_bootstrap),
     .groups = KR_SUB_RECONCILE,
     .help = "leave the bootstrap marker alone"},
    {.help = "Key store (flag, else environment variable, else default):"},
    {.name = "addr",
     KEYS(STRING, addr),
     .metavar = "HOST:PORT",
     .env = "KEYROTATOR_VALKEY_ADDR",
     .help = "the server, [v6]:port too (default 127.0.0.1:6379)"},
    {.name = "db",
     KEYS(INT, db),
     .metavar = "N",
     .min = 0,
     .max = 1000000,
     .env = "KEYROTATOR_VALKEY_DB",
     .def = "0",
     .help = "database number"},
    {.name = "user",
     KEYS(STRING, user),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_USERNAME",
     .help = "ACL user (none: AUTH <password>)"},
    {.name = "password-file",
     KEYS(STRING, password_file),
     .metavar = "FILE",
     .env = "KEYROTATOR_VALKEY_PASSWORD_FILE",
     .help = "the password; or the password itself in KEYROTATOR_VALKEY_PASSWORD (never on "
	     "the command line)"},
    {.name = "timeout",
     KEYS(DURATION, timeout_ms),
     .metavar = "DURATION",
     .min = 1,
     .max = 3600000,
     .env = "KEYROTATOR_VALKEY_TIMEOUT",
     .def = "5s",
     .help = "connect, and per command"},
    {.name = "active-set",
     KEYS(STRING, active_set),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_ACTIVE_SET",
     .def = "api_keys:active",
     .help = "the set of active keys"},
    {.name = "meta-key",
     KEYS(STRING, meta_key),
     .metavar = "TEMPLATE",
     .env = "KEYROTATOR_VALKEY_META_KEY",
     .def = "api_key:{id}:meta",
     .help = "a key's metadata hash ({id}: the stored member)"},
    {.name = "bootstrap-key",
     KEYS(STRING, bootstrap_key),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_BOOTSTRAP_KEY",
     .def = "api_keys:bootstrap",
     .help = "the bootstrap marker"},
    {.name = "store-as",
     KEYS(CUSTOM, store_as),
     .parse = kr_keys_parse_store_as,
     .metavar = "LAYOUT",
     .env = "KEYROTATOR_VALKEY_STORE_AS",
     .def = "sha256",
     .help = "sha256 (members are SHA-256 of the key) or plaintext (the raw key is the "
	     "member)"},
    {.help = "TLS (verification is always on; any of these turns TLS on):"},
    {.name = "tls",
     KEYS(BOOL, conn.tls),
     .env = "KEYROTATOR_VALKEY_TLS",
     .help = "TLS, the system's trust store"},
    {.name = "tls-ca",
     KEYS(STRING, conn.ca),
     .metavar = "FILE",
     .env = "KEYROTATOR_VALKEY_TLS_CA",
     .help = "PEM CA bundle to verify the server"},
    {.name = "tls-server-name",
     KEYS(STRING, conn.server_name),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_TLS_SERVER_NAME",
     .help = "the name the server's certificate must carry (default: the host connected "
	     "to)"},
    {.name = "tls-cert",
     KEYS(STRING, conn.cert),
     .metavar = "FILE",
     .env = "KEYROTATOR_VALKEY_TLS_CERT",
     .help = "client certificate (PEM), with"},
    {.name = "tls-key",
     KEYS(STRING, conn.key),
     .metavar = "FILE",
     .env = "KEYROTATOR_VALKEY_TLS_KEY",
     .help = "its private key (mutual TLS)"},
    {.help = "Sentinel (instead of --addr):"},
    {.name = "sentinel",
     KEYS(STRING, conn.sentinels),
     .metavar = "H:P[,H:P]",
     .env = "KEYROTATOR_VALKEY_SENTINELS",
     .help = "sentinels to ask for the master"},
    {.name = "master-name",
     KEYS(STRING, conn.master_name),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_MASTER_NAME",
     .help = "the master's name there"},
    {.name = "sentinel-user",
     KEYS(STRING, conn.sentinel_user),
     .metavar = "NAME",
     .env = "KEYROTATOR_VALKEY_SENTINEL_USERNAME",
     .help = "ACL user on the sentinels"},
    {.name = "sentinel-password-file",
     KEYS(STRING, conn.sentinel_password_file),
     .metavar = "FILE",
     .env = "KEYROTATOR_VALKEY_SENTINEL_PASSWORD_FILE",
     .help = "the sentinels' password; or the password itself in "
	     "KEYROTATOR_VALKEY_SENTINEL_PASSWORD"},
    {0},
};

/* Flags into `a`; arguments (wiped from argv: they may be keys) into a->positional. */
int kr_keys_parse(int argc, char **argv, struct kr_keys_args *a)
{
	int nargs = 0, rc;

	rc = kr_cli_flags(a->verb, kr_keys_flags, a->sub, a, argc, argv, &nargs);
	if (rc == KR_EXIT_OK && nargs > 0 && (a->sub & (KR_SUB_REVOKE | KR_SUB_VERIFY))) {
		a->positional = kr_secret_new(argv[1], strlen(argv[1]));
		if (!a->positional)
			rc = kr_cli_fail(KR_EXIT_FAIL, a->verb, "out of memory");
	}
	if (rc == KR_EXIT_OK && nargs > ((a->sub & (KR_SUB_REVOKE | KR_SUB_VERIFY)) ? 1 : 0))
		rc = kr_cli_usage_error(a->verb, "unexpected argument");
	/* keep them out of /proc/<pid>/cmdline from now on */
	for (int i = 1; i <= nargs; i++)
		explicit_bzero(argv[i], strlen(argv[i]));
	return rc;
}
