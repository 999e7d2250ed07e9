/* keys.c - `keyrotator keys create|list|revoke|verify|reconcile`: the runbooks' manual procedure.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/keys_conn.h"
#include "keystore/keystore.h"
#include "rotation/schedule.h"

#define KR_KEYS_MAX_SOURCES  16
#define KR_KEYS_MAX_KEY_FILE 4096

enum kr_keys_sub {
	KR_SUB_CREATE = 1 << 0,
	KR_SUB_LIST = 1 << 1,
	KR_SUB_REVOKE = 1 << 2,
	KR_SUB_VERIFY = 1 << 3,
	KR_SUB_RECONCILE = 1 << 4,
	KR_SUB_ALL = 0x1f,
};

/* How a key is given (the tag of its --key-* flag in kr_keys_args.sources). */
enum kr_keys_source { KR_SOURCE_ENV = 1, KR_SOURCE_FILE = 2 };

struct kr_keys_args {
	enum kr_keys_sub sub;
	const char *verb; /* "keys create", for messages */
	/* store */
	const char *addr, *user, *password_file;
	long db, timeout_ms;
	const char *active_set, *meta_key, *bootstrap_key;
	enum kr_store_as store_as;
	struct kr_keys_conn_args conn; /* TLS, sentinels */
	/* create */
	const char *label, *prefix, *rotation;
	long bytes;
	bool bootstrap;
	/* list */
	bool json;
	/* revoke, verify, reconcile */
	bool any_format, no_bootstrap;
	struct kr_flag_list sources;  /* --key-from-env, --key-file, in order */
	struct kr_secret *positional; /* ID or KEY, copied (argv is wiped) */
};

static enum kr_status kr_keys_parse_store_as(const char *v, void *dst, struct kr_error *err)
{
	return kr_store_as_parse(v, dst, err);
}

#define KEYS(kind, f)	  KR_FLAG_##kind##_AT(struct kr_keys_args, f)
#define KR_KEYS_STR2(x)	  #x
#define KR_KEYS_STR(x)	  KR_KEYS_STR2(x)
#define KR_KEYS_WITH_KEYS (KR_SUB_REVOKE | KR_SUB_VERIFY | KR_SUB_RECONCILE)

/* Every flag of every `keys` subcommand; .groups says which take it (0: all). */
static const struct kr_flag kr_keys_flags[] = {
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

/* ---- parsing ---- */

/* Flags into `a`; arguments (wiped from argv: they may be keys) into a->positional. */
static int kr_keys_parse(int argc, char **argv, struct kr_keys_args *a)
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

/* ---- reading keys and passwords ---- */

/* Read a whole small file (or stdin for "-") into a secret, trailing whitespace dropped. */
static enum kr_status kr_keys_read_file(const char *path, struct kr_secret **out,
					struct kr_error *err)
{
	char buf[KR_KEYS_MAX_KEY_FILE + 1];
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t n;

	*out = NULL;
	if (!f)
		return kr_error_set(err, KR_EINVAL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	if (f != stdin)
		fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
			 buf[n - 1] == '\t'))
		n--;
	if (n > KR_KEYS_MAX_KEY_FILE) {
		explicit_bzero(buf, sizeof(buf));
		return kr_error_set(err, KR_EINVAL, "%s: more than %d bytes", path,
				    KR_KEYS_MAX_KEY_FILE);
	}
	*out = kr_secret_new(buf, n);
	explicit_bzero(buf, sizeof(buf));
	return *out ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

/* A key from the environment or a file; KR_EINVAL when empty or not one printable word. */
static enum kr_status kr_keys_load_key(const char *source, int is_env, struct kr_secret **out,
				       struct kr_error *err)
{
	enum kr_status rc = KR_OK;
	const char *v;

	if (is_env) {
		v = getenv(source);
		*out = v ? kr_secret_new(v, strlen(v)) : NULL;
		if (!v)
			return kr_error_set(err, KR_EINVAL, "environment variable %s is not set",
					    source);
		if (!*out)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
	} else {
		rc = kr_keys_read_file(source, out, err);
		if (rc != KR_OK)
			return rc;
	}
	if (kr_secret_len(*out) == 0)
		rc = kr_error_set(err, KR_EINVAL, "%s %s: the key is empty",
				  is_env ? "environment variable" : "file", source);
	for (size_t i = 0; rc == KR_OK && i < kr_secret_len(*out); i++) {
		unsigned char c = (unsigned char)kr_secret_data(*out)[i];

		if (c <= ' ' || c == 0x7f)
			rc = kr_error_set(err, KR_EINVAL,
					  "%s %s: the key contains whitespace or a control "
					  "character (position %zu)",
					  is_env ? "environment variable" : "file", source, i + 1);
	}
	if (rc != KR_OK) {
		kr_secret_free(*out);
		*out = NULL;
	}
	return rc;
}

static enum kr_status kr_keys_password(const struct kr_keys_args *a, struct kr_secret **out,
				       struct kr_error *err)
{
	const char *file = a->password_file; /* flag or KEYROTATOR_VALKEY_PASSWORD_FILE */
	const char *pw = getenv("KEYROTATOR_VALKEY_PASSWORD");

	*out = NULL;
	if (file)
		return kr_keys_read_file(file, out, err);
	if (pw && *pw) {
		*out = kr_secret_new(pw, strlen(pw));
		if (!*out)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	return KR_OK;
}

/* ---- opening the store ---- */

/* Settings (flag, else environment, else default) into opts/layout; host into `host`. */
static int kr_keys_settings(const struct kr_keys_args *a, struct kr_keystore_opts *o,
			    struct kr_keystore_layout *l, char *host, size_t host_size)
{
	struct kr_error err;

	kr_error_clear(&err);
	kr_keystore_opts_init(o);
	kr_keystore_layout_init_defaults(l);
	if (kr_keystore_parse_address(a->addr ? a->addr : "127.0.0.1:6379", host, host_size,
				      &o->port, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--addr: %s", err.msg);
	o->host = host;
	o->database = (int)a->db;
	o->username = a->user;
	o->connect_timeout_ms = o->command_timeout_ms = (int)a->timeout_ms;
	l->active_set = a->active_set;
	l->meta_key = a->meta_key;
	l->bootstrap_key = a->bootstrap_key;
	l->store_as = a->store_as;
	if (kr_keystore_layout_check(l, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}

static int kr_keys_open(const struct kr_keys_args *a, struct kr_keystore **ks)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_secret *pw = NULL;
	struct kr_keys_conn conn;
	struct kr_error err;
	char host[256];
	int rc;

	kr_error_clear(&err);
	rc = kr_keys_settings(a, &o, &l, host, sizeof(host));
	if (rc != KR_EXIT_OK)
		return rc;
	rc = kr_keys_conn_fill(a->verb, &a->conn, a->addr != NULL, &o, &conn);
	if (rc != KR_EXIT_OK) {
		kr_keys_conn_release(&conn);
		return rc;
	}
	if (o.sentinel.n_addresses)
		o.host = NULL; /* the sentinels name the master */
	if (kr_keys_password(a, &pw, &err) != KR_OK) {
		kr_keys_conn_release(&conn);
		return kr_cli_usage_error(a->verb, "password: %s", err.msg);
	}
	o.password = pw;
	rc = kr_keystore_new(&o, &l, ks, &err) == KR_OK ? KR_EXIT_OK : KR_EXIT_USAGE;
	kr_secret_free(pw);
	kr_keys_conn_release(&conn);
	if (rc != KR_EXIT_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}

/* Exit code for a store error: bad input is 2, everything else 1. */
static int kr_keys_store_fail(const struct kr_keys_args *a, const struct kr_error *err)
{
	return kr_cli_fail(err->code == KR_EINVAL ? KR_EXIT_USAGE : KR_EXIT_FAIL, a->verb, "%s",
			   err->msg);
}

/* ---- the subcommands ---- */

static int kr_keys_create(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc, active = 0;

	kr_error_clear(&err);
	if (kr_key_prefix_check(a->prefix, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--prefix: %s", err.msg);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	struct kr_key_meta meta = {a->label, a->rotation, NULL};
	if (kr_key_generate(a->prefix, (int)a->bytes, &key, &err) != KR_OK ||
	    kr_keystore_activate(ks, key, &meta, NULL, &err) != KR_OK ||
	    kr_keystore_is_active(ks, key, &active, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	kr_key_id(key, id);
	if (!active) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb, "%s: key %s does not read back as active",
				 kr_keystore_server(ks), id);
		goto out;
	}
	if (a->bootstrap && kr_keystore_set_bootstrap(ks, id, NULL, &err) != KR_OK) {
		kr_keystore_revoke_key(ks, key, NULL, NULL);
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	/* the one line on stdout; a key nobody received must not stay valid */
	if (fwrite(kr_secret_data(key), 1, kr_secret_len(key), stdout) != kr_secret_len(key) ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		kr_keystore_revoke_key(ks, key, NULL, NULL);
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb,
				 "cannot write the key to stdout (%s); key "
				 "%s revoked again",
				 strerror(errno), id);
		goto out;
	}
	fprintf(stderr, "created key %s in %s (activeSet %s, %s layout%s%s%s)%s\n", id,
		kr_keystore_server(ks), kr_keystore_get_layout(ks)->active_set,
		kr_store_as_name(kr_keystore_get_layout(ks)->store_as),
		a->label ? ", label \"" : "", a->label ? a->label : "", a->label ? "\"" : "",
		a->bootstrap ? "; bootstrap marker set" : "");
	rc = KR_EXIT_OK;
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}

static const char *kr_keys_status(const struct kr_key_info *k)
{
	if (k->active)
		return "active";
	if (!k->status || !strcmp(k->status, "active"))
		return k->status ? "missing" : "unknown";
	return k->status;
}

static void kr_keys_json_str(cJSON *obj, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(obj, name, value);
	else
		cJSON_AddNullToObject(obj, name);
}

static int kr_keys_print_json(const struct kr_key_info *infos, size_t n, const char *current)
{
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddItemToArray(arr, o);
		cJSON_AddStringToObject(o, "id", infos[i].id);
		cJSON_AddStringToObject(o, "status", kr_keys_status(&infos[i]));
		cJSON_AddBoolToObject(o, "active", infos[i].active);
		cJSON_AddBoolToObject(o, "current", !strcmp(current, infos[i].id));
		kr_keys_json_str(o, "label", infos[i].label);
		kr_keys_json_str(o, "created_at", infos[i].created_at);
		kr_keys_json_str(o, "revoked_at", infos[i].revoked_at);
		kr_keys_json_str(o, "last_used_at", infos[i].last_used_at);
		kr_keys_json_str(o, "rotation", infos[i].rotation);
	}
	text = arr ? cJSON_Print(arr) : NULL;
	cJSON_Delete(arr);
	if (!text)
		return kr_cli_fail(KR_EXIT_FAIL, "keys list", "out of memory");
	printf("%s\n", text);
	free(text);
	return KR_EXIT_OK;
}

static void kr_keys_print_table(const struct kr_key_info *infos, size_t n, const char *current)
{
	int marked = 0;

	printf("%-13s  %-8s  %-20s  %-20s  %-20s  %s\n", "ID", "STATUS", "CREATED", "REVOKED",
	       "LAST USED", "LABEL");
	for (size_t i = 0; i < n; i++) {
		const struct kr_key_info *k = &infos[i];
		int cur = !strcmp(current, k->id);

		marked |= cur;
		printf("%s%-*s  %-8s  %-20s  %-20s  %-20s  %s\n", k->id, 13 - KR_KEY_ID_LEN,
		       cur ? "*" : "", kr_keys_status(k), k->created_at ? k->created_at : "-",
		       k->revoked_at ? k->revoked_at : "-", k->last_used_at ? k->last_used_at : "-",
		       k->label ? k->label : "-");
	}
	if (marked)
		printf("(* the bootstrap marker holds this id)\n");
}

static int kr_keys_list(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_key_info *infos = NULL;
	struct kr_error err;
	char current[64];
	size_t n = 0;
	int rc;

	kr_error_clear(&err);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_keystore_list(ks, &infos, &n, &err) != KR_OK ||
	    kr_keystore_get_bootstrap(ks, current, sizeof(current), &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	if (a->json) {
		rc = kr_keys_print_json(infos, n, current);
	} else {
		kr_keys_print_table(infos, n, current);
		if (n == 0)
			fprintf(stderr, "no keys in %s (activeSet %s)\n", kr_keystore_server(ks),
				kr_keystore_get_layout(ks)->active_set);
	}
out:
	kr_key_info_free_array(infos, n);
	kr_keystore_free(ks);
	return rc;
}

/* The one key revoke/verify work on: the positional argument, or one --key-* source. */
static int kr_keys_single_key(struct kr_keys_args *a, struct kr_secret **key)
{
	struct kr_error err;

	kr_error_clear(&err);
	if ((a->positional ? 1 : 0) + a->sources.n != 1)
		return kr_cli_usage_error(a->verb,
					  "give exactly one key: KEY%s, --key-from-env VAR "
					  "or --key-file FILE",
					  a->sub == KR_SUB_REVOKE ? ", ID" : "");
	if (a->positional && strcmp(kr_secret_data(a->positional), "-")) {
		*key = a->positional;
		a->positional = NULL;
		return KR_EXIT_OK;
	}
	if (a->positional) /* "-": the key comes on stdin */
		return kr_keys_load_key("-", 0, key, &err) == KR_OK
			   ? KR_EXIT_OK
			   : kr_cli_usage_error(a->verb, "%s", err.msg);
	if (kr_keys_load_key(a->sources.values[0], a->sources.tags[0] == KR_SOURCE_ENV, key,
			     &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "%s", err.msg);
	return KR_EXIT_OK;
}

static int kr_keys_revoke_by_id(struct kr_keys_args *a, struct kr_keystore *ks, const char *id)
{
	struct kr_secret *member = NULL;
	enum kr_revoke_outcome out = KR_REVOKE_ABSENT;
	struct kr_error err;
	int rc;

	kr_error_clear(&err);
	if (kr_keystore_find_member(ks, id, &member, &err) != KR_OK ||
	    kr_keystore_revoke_member(ks, member, &out, &err) != KR_OK)
		rc = kr_keys_store_fail(a, &err);
	else if (out == KR_REVOKE_DONE)
		rc = printf("revoked key %s\n", id) < 0 ? KR_EXIT_FAIL : KR_EXIT_OK;
	else
		rc = printf("key %s was already revoked\n", id) < 0 ? KR_EXIT_FAIL : KR_EXIT_OK;
	kr_secret_free(member);
	return rc;
}

static int kr_keys_revoke(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	enum kr_revoke_outcome out = KR_REVOKE_ABSENT;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc = kr_keys_single_key(a, &key);

	kr_error_clear(&err);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_key_id_valid(kr_secret_data(key))) {
		memcpy(id, kr_secret_data(key), sizeof(id));
		rc = kr_keys_open(a, &ks);
		if (rc == KR_EXIT_OK)
			rc = kr_keys_revoke_by_id(a, ks, id);
		goto out;
	}
	if (!a->any_format &&
	    kr_key_check(kr_secret_data(key), kr_secret_len(key), &err) != KR_OK) {
		rc = kr_cli_usage_error(a->verb,
					"not a key id (12 hex digits) nor a keyrotator key: "
					"%s; for a key made elsewhere add --any-format",
					err.msg);
		goto out;
	}
	kr_key_id(key, id);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		goto out;
	if (kr_keystore_revoke_key(ks, key, &out, &err) != KR_OK)
		rc = kr_keys_store_fail(a, &err);
	else if (out == KR_REVOKE_ABSENT)
		rc =
		    kr_cli_fail(KR_EXIT_FAIL, a->verb,
				"%s: key %s is not in activeSet %s and has "
				"no metadata",
				kr_keystore_server(ks), id, kr_keystore_get_layout(ks)->active_set);
	else
		printf(out == KR_REVOKE_DONE ? "revoked key %s\n" : "key %s was already revoked\n",
		       id);
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}

static int kr_keys_verify(struct kr_keys_args *a)
{
	struct kr_keystore *ks = NULL;
	struct kr_secret *key = NULL;
	struct kr_error err;
	char id[KR_KEY_ID_LEN + 1];
	int rc = kr_keys_single_key(a, &key), active = 0;

	kr_error_clear(&err);
	if (rc != KR_EXIT_OK)
		return rc;
	kr_key_id(key, id);
	if (!a->any_format &&
	    kr_key_check(kr_secret_data(key), kr_secret_len(key), &err) != KR_OK) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb,
				 "key %s rejected without a store lookup: %s "
				 "(for a key made elsewhere add --any-format)",
				 id, err.msg);
		goto out;
	}
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		goto out;
	if (kr_keystore_is_active(ks, key, &active, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	printf("key %s is %sactive\n", id, active ? "" : "not ");
	rc = active ? KR_EXIT_OK : KR_EXIT_FAIL;
out:
	kr_secret_free(key);
	kr_keystore_free(ks);
	return rc;
}

static int kr_keys_reconcile_run(struct kr_keys_args *a, struct kr_secret **keys, size_t n)
{
	struct kr_keystore *ks = NULL;
	struct kr_keystore_repair rep;
	struct kr_error err;
	struct kr_buf text;
	char cur[KR_KEY_ID_LEN + 1];
	int rc;

	kr_error_clear(&err);
	kr_keystore_repair_init(&rep);
	kr_buf_init(&text);
	kr_key_id(keys[0], cur);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_keystore_reconcile(ks, (const struct kr_secret *const *)keys, n,
				  a->no_bootstrap ? NULL : cur, a->rotation, &rep, &err) != KR_OK) {
		rc = kr_keys_store_fail(a, &err);
		goto out;
	}
	if (kr_keystore_repair_describe(&rep, kr_keystore_get_layout(ks)->active_set, &text) !=
	    KR_OK) {
		rc = kr_cli_fail(KR_EXIT_FAIL, a->verb, "out of memory");
		goto out;
	}
	printf("%s: %s\n", kr_keystore_server(ks), text.data);
out:
	kr_buf_release(&text);
	kr_keystore_repair_release(&rep);
	kr_keystore_free(ks);
	return rc;
}

static int kr_keys_reconcile(struct kr_keys_args *a)
{
	struct kr_secret *keys[KR_KEYS_MAX_SOURCES] = {0};
	struct kr_error err;
	int rc = KR_EXIT_OK;

	kr_error_clear(&err);
	if (a->sources.n == 0)
		return kr_cli_usage_error(a->verb, "give the deployed key: --key-from-env VAR or "
						   "--key-file FILE");
	for (size_t i = 0; i < a->sources.n && rc == KR_EXIT_OK; i++) {
		char id[KR_KEY_ID_LEN + 1];

		if (kr_keys_load_key(a->sources.values[i], a->sources.tags[i] == KR_SOURCE_ENV,
				     &keys[i], &err) != KR_OK) {
			rc = kr_cli_usage_error(a->verb, "%s", err.msg);
			break;
		}
		kr_key_id(keys[i], id);
		if (kr_key_check(kr_secret_data(keys[i]), kr_secret_len(keys[i]), NULL) != KR_OK)
			fprintf(stderr,
				"note: key %s is not in keyrotator's format (a legacy key); "
				"reconciling it as it is\n",
				id);
	}
	if (rc == KR_EXIT_OK)
		rc = kr_keys_reconcile_run(a, keys, a->sources.n);
	for (size_t i = 0; i < a->sources.n; i++)
		kr_secret_free(keys[i]);
	return rc;
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
