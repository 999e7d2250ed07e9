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

struct kr_keys_args {
	enum kr_keys_sub sub;
	const char *verb; /* "keys create", for messages */
	/* store */
	const char *addr, *db, *user, *password_file, *timeout;
	const char *active_set, *meta_key, *bootstrap_key, *store_as;
	struct kr_keys_conn_args conn; /* TLS, sentinels */
	/* create */
	const char *label, *prefix, *bytes, *rotation;
	int bootstrap;
	/* list */
	int json;
	/* revoke, verify, reconcile */
	int any_format, no_bootstrap;
	const char *sources[KR_KEYS_MAX_SOURCES];
	int source_is_env[KR_KEYS_MAX_SOURCES];
	size_t nsources;
	struct kr_secret *positional; /* ID or KEY, copied (argv is wiped) */
};

/* A flag: its name, which subcommands take it, and where its value goes. */
struct kr_keys_flag {
	const char *name;
	unsigned subs;
	size_t str_off;	 /* offset of a const char * slot, or 0 */
	size_t bool_off; /* offset of an int slot, or 0 */
	int source_env;	 /* 1: --key-from-env, 2: --key-file (repeatable sources) */
	int empty_ok;	 /* "" is a meaningful value */
};

#define KR_STR(f)	   offsetof(struct kr_keys_args, f), 0, 0, 0
#define KR_STR_EMPTY_OK(f) offsetof(struct kr_keys_args, f), 0, 0, 1
#define KR_BOOL(f)	   0, offsetof(struct kr_keys_args, f), 0, 0

static const struct kr_keys_flag kr_keys_flags[] = {
    {"--addr", KR_SUB_ALL, KR_STR(addr)},
    {"--db", KR_SUB_ALL, KR_STR(db)},
    {"--user", KR_SUB_ALL, KR_STR(user)},
    {"--password-file", KR_SUB_ALL, KR_STR(password_file)},
    {"--timeout", KR_SUB_ALL, KR_STR(timeout)},
    {"--active-set", KR_SUB_ALL, KR_STR(active_set)},
    {"--meta-key", KR_SUB_ALL, KR_STR(meta_key)},
    {"--bootstrap-key", KR_SUB_ALL, KR_STR(bootstrap_key)},
    {"--store-as", KR_SUB_ALL, KR_STR(store_as)},
    {"--tls", KR_SUB_ALL, KR_BOOL(conn.tls)},
    {"--tls-ca", KR_SUB_ALL, KR_STR(conn.ca)},
    {"--tls-server-name", KR_SUB_ALL, KR_STR(conn.server_name)},
    {"--tls-cert", KR_SUB_ALL, KR_STR(conn.cert)},
    {"--tls-key", KR_SUB_ALL, KR_STR(conn.key)},
    {"--sentinel", KR_SUB_ALL, KR_STR(conn.sentinels)},
    {"--master-name", KR_SUB_ALL, KR_STR(conn.master_name)},
    {"--sentinel-user", KR_SUB_ALL, KR_STR(conn.sentinel_user)},
    {"--sentinel-password-file", KR_SUB_ALL, KR_STR(conn.sentinel_password_file)},
    {"--label", KR_SUB_CREATE, KR_STR(label)},
    {"--prefix", KR_SUB_CREATE, KR_STR_EMPTY_OK(prefix)},
    {"--bytes", KR_SUB_CREATE, KR_STR(bytes)},
    {"--rotation", KR_SUB_CREATE | KR_SUB_RECONCILE, KR_STR(rotation)},
    {"--bootstrap", KR_SUB_CREATE, KR_BOOL(bootstrap)},
    {"--json", KR_SUB_LIST, KR_BOOL(json)},
    {"--any-format", KR_SUB_REVOKE | KR_SUB_VERIFY, KR_BOOL(any_format)},
    {"--no-bootstrap", KR_SUB_RECONCILE, KR_BOOL(no_bootstrap)},
    {"--key-from-env", KR_SUB_REVOKE | KR_SUB_VERIFY | KR_SUB_RECONCILE, 0, 0, 1, 0},
    {"--key-file", KR_SUB_REVOKE | KR_SUB_VERIFY | KR_SUB_RECONCILE, 0, 0, 2, 0},
};

static const char kr_keys_store_help[] =
    "Key store (flag, else environment variable, else default):\n"
    "  --addr HOST:PORT       KEYROTATOR_VALKEY_ADDR ([v6]:port too; 127.0.0.1:6379)\n"
    "  --db N                 KEYROTATOR_VALKEY_DB (0)\n"
    "  --user NAME            KEYROTATOR_VALKEY_USERNAME (ACL user; none: AUTH <password>)\n"
    "  --password-file FILE   KEYROTATOR_VALKEY_PASSWORD_FILE; or the password itself in\n"
    "                         KEYROTATOR_VALKEY_PASSWORD (never on the command line)\n"
    "  --timeout DURATION     KEYROTATOR_VALKEY_TIMEOUT, connect and per command (5s)\n"
    "  --active-set NAME      KEYROTATOR_VALKEY_ACTIVE_SET (api_keys:active)\n"
    "  --meta-key TEMPLATE    KEYROTATOR_VALKEY_META_KEY (api_key:{id}:meta)\n"
    "  --bootstrap-key NAME   KEYROTATOR_VALKEY_BOOTSTRAP_KEY (api_keys:bootstrap)\n"
    "  --store-as LAYOUT      KEYROTATOR_VALKEY_STORE_AS: sha256 (members are SHA-256 of\n"
    "                         the key; default) or plaintext (the raw key is the member)\n";

static const char kr_keys_exit_help[] =
    "Exit codes: 0 ok, 1 the check or operation failed, 2 bad usage or input.\n";

static const char kr_keys_usage_create[] =
    "Usage: keyrotator keys create [--label L] [--prefix P] [--bytes N] "
    "[--rotation R] [--bootstrap] [store options]\n\n"
    "Generate a key (getrandom(2)), make it active in the key store with its\n"
    "metadata, and print it once on stdout - nothing else goes to stdout. The key\n"
    "id and label go to stderr. Store the key now: it cannot be shown again.\n\n"
    "  --label L      metadata label (e.g. 2024-Q1-Rotation)\n"
    "  --prefix P     [a-z0-9_]{0,16}, e.g. sk_ (default: none)\n"
    "  --bytes N      random bytes, 16..64 (default 32)\n"
    "  --rotation R   metadata `rotation` (default: cli)\n"
    "  --bootstrap    also point the bootstrap marker at the new key\n\n";

static const char kr_keys_usage_list[] =
    "Usage: keyrotator keys list [--json] [store options]\n\n"
    "List the keys the store knows - members of activeSet and keys with metadata,\n"
    "revoked ones included - by id (first 12 hex digits of SHA-256 of the key),\n"
    "never the keys themselves, in either layout. STATUS is active (the API\n"
    "accepts it), revoked, or missing (metadata says active but activeSet lacks\n"
    "it: run `keys reconcile`). '*' marks the id the bootstrap marker holds.\n\n"
    "  --json   one JSON array instead of the table\n\n";

static const char kr_keys_usage_revoke[] =
    "Usage: keyrotator keys revoke ID|KEY [--any-format] [store options]\n"
    "       keyrotator keys revoke --key-from-env VAR | --key-file FILE\n\n"
    "Remove a key from activeSet and mark its metadata revoked (revoked_at). ID "
    "is\n"
    "a 12-hex-digit key id as `keys list` shows; KEY the key itself (better from\n"
    "an environment variable or a file, '-' for stdin, than on the command line).\n"
    "Revoking a revoked key succeeds and says so.\n\n"
    "  --any-format   accept a KEY not made by keyrotator (no checksum check)\n\n";

static const char kr_keys_usage_verify[] =
    "Usage: keyrotator keys verify KEY [--any-format] [store options]\n"
    "       keyrotator keys verify --key-from-env VAR | --key-file FILE\n\n"
    "Exit 0 when the key is active (a member of activeSet), 1 when it is not. A\n"
    "keyrotator key with a bad checksum is rejected without asking the store.\n"
    "KEY '-' reads the key from stdin; a file or a variable keeps it out of your\n"
    "shell history.\n\n"
    "  --any-format   look up a key not made by keyrotator (legacy keys)\n\n";

static const char kr_keys_usage_reconcile[] =
    "Usage: keyrotator keys reconcile (--key-from-env VAR | --key-file FILE)... "
    "[--rotation R] [--no-bootstrap] [store options]\n\n"
    "The runbooks' \"restart to reconcile key metadata + bootstrap state\": the "
    "keys\n"
    "given must be active. Re-add what is missing (after Valkey data loss),\n"
    "repair their metadata, and point the bootstrap marker at the first key.\n"
    "Members of activeSet it was not given are counted, never removed. Keys in "
    "any\n"
    "format are accepted (the deployed key is the source of truth). Repeat the\n"
    "flags for several keys (current first, then previous).\n\n"
    "  --key-from-env VAR   the key is in environment variable VAR\n"
    "  --key-file FILE      the key is in FILE ('-': stdin); trailing newline ok\n"
    "  --rotation R         metadata `rotation` where missing (default: cli)\n"
    "  --no-bootstrap       leave the bootstrap marker alone\n\n";

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

/* `usage` is one of the kr_keys_usage_* texts; subcommands also list the store options. */
static void kr_keys_help(const char *usage)
{
	printf("%s", usage);
	if (usage != kr_keys_usage_all)
		printf("%s%s\n", kr_keys_store_help, kr_keys_conn_help);
	printf("%s", kr_keys_exit_help);
}

/* ---- parsing ---- */

static const struct kr_keys_flag *kr_keys_find_flag(const char *arg, size_t *nlen)
{
	for (size_t i = 0; i < sizeof(kr_keys_flags) / sizeof(kr_keys_flags[0]); i++) {
		size_t n = strlen(kr_keys_flags[i].name);

		if (!strncmp(arg, kr_keys_flags[i].name, n) && (arg[n] == '\0' || arg[n] == '=')) {
			*nlen = n;
			return &kr_keys_flags[i];
		}
	}
	return NULL;
}

static int kr_keys_take_positional(struct kr_keys_args *a, char *arg)
{
	if (a->positional || !(a->sub & (KR_SUB_REVOKE | KR_SUB_VERIFY)))
		return kr_cli_usage_error(a->verb, "unexpected argument");
	a->positional = kr_secret_new(arg, strlen(arg));
	if (!a->positional)
		return kr_cli_fail(KR_EXIT_FAIL, a->verb, "out of memory");
	/* it may be a key: keep it out of /proc/<pid>/cmdline from now on */
	explicit_bzero(arg, strlen(arg));
	return KR_EXIT_OK;
}

static int kr_keys_set_flag(struct kr_keys_args *a, const struct kr_keys_flag *f, const char *value)
{
	if (f->bool_off) {
		if (value)
			return kr_cli_usage_error(a->verb, "%s takes no value", f->name);
		*(int *)((char *)a + f->bool_off) = 1;
		return KR_EXIT_OK;
	}
	if (!value || (!*value && !f->empty_ok))
		return kr_cli_usage_error(a->verb, "%s needs a non-empty value", f->name);
	if (f->source_env) {
		if (a->nsources == KR_KEYS_MAX_SOURCES)
			return kr_cli_usage_error(a->verb, "at most %d keys", KR_KEYS_MAX_SOURCES);
		a->source_is_env[a->nsources] = f->source_env == 1;
		a->sources[a->nsources++] = value;
		return KR_EXIT_OK;
	}
	*(const char **)((char *)a + f->str_off) = value;
	return KR_EXIT_OK;
}

static int kr_keys_parse(int argc, char **argv, struct kr_keys_args *a)
{
	int only_args = 0, rc = KR_EXIT_OK;

	for (int i = 2; i < argc && rc == KR_EXIT_OK; i++) {
		const struct kr_keys_flag *f;
		const char *value = NULL;
		size_t n = 0;

		if (only_args || argv[i][0] != '-' || !strcmp(argv[i], "-")) {
			rc = kr_keys_take_positional(a, argv[i]);
			continue;
		}
		if (!strcmp(argv[i], "--")) {
			only_args = 1;
			continue;
		}
		f = kr_keys_find_flag(argv[i], &n);
		if (!f || !(f->subs & a->sub))
			return kr_cli_usage_error(a->verb, "unknown option '%.*s'",
						  (int)strcspn(argv[i], "="), argv[i]);
		if (argv[i][n] == '=')
			value = argv[i] + n + 1;
		else if (!f->bool_off && i + 1 < argc)
			value = argv[++i];
		rc = kr_keys_set_flag(a, f, value);
	}
	return rc;
}

static const char *kr_keys_opt(const char *flag, const char *env)
{
	const char *v = getenv(env);

	return flag ? flag : (v && *v ? v : NULL);
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
	const char *file = kr_keys_opt(a->password_file, "KEYROTATOR_VALKEY_PASSWORD_FILE");
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

static int kr_keys_int(const struct kr_keys_args *a, const char *name, const char *text, long lo,
		       long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(text, &end, 10);
	if (errno || end == text || *end || *out < lo || *out > hi)
		return kr_cli_usage_error(a->verb, "%s: \"%s\" is not a number from %ld to %ld",
					  name, text, lo, hi);
	return KR_EXIT_OK;
}

/* Settings from flags and environment into opts/layout; strings point into `host`. */
static int kr_keys_settings(const struct kr_keys_args *a, struct kr_keystore_opts *o,
			    struct kr_keystore_layout *l, char *host, size_t host_size)
{
	const char *addr = kr_keys_opt(a->addr, "KEYROTATOR_VALKEY_ADDR");
	const char *db = kr_keys_opt(a->db, "KEYROTATOR_VALKEY_DB");
	const char *timeout = kr_keys_opt(a->timeout, "KEYROTATOR_VALKEY_TIMEOUT");
	const char *store_as = kr_keys_opt(a->store_as, "KEYROTATOR_VALKEY_STORE_AS");
	struct kr_error err;
	int64_t ms = 5000;
	long v;

	kr_error_clear(&err);
	kr_keystore_opts_init(o);
	kr_keystore_layout_init_defaults(l);
	if (kr_keystore_parse_address(addr ? addr : "127.0.0.1:6379", host, host_size, &o->port,
				      &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--addr: %s", err.msg);
	o->host = host;
	if (db && kr_keys_int(a, "--db", db, 0, 1000000, &v) != KR_EXIT_OK)
		return KR_EXIT_USAGE;
	o->database = db ? (int)v : 0;
	o->username = kr_keys_opt(a->user, "KEYROTATOR_VALKEY_USERNAME");
	if (timeout &&
	    (kr_duration_parse(timeout, &ms, &err) != KR_OK || ms < 1 || ms > 3600 * 1000))
		return kr_cli_usage_error(a->verb,
					  "--timeout: \"%s\" is not a duration from 1ms "
					  "to 1h (e.g. 5s, 500ms)",
					  timeout);
	o->connect_timeout_ms = o->command_timeout_ms = (int)ms;
	l->active_set = kr_keys_opt(a->active_set, "KEYROTATOR_VALKEY_ACTIVE_SET");
	l->meta_key = kr_keys_opt(a->meta_key, "KEYROTATOR_VALKEY_META_KEY");
	l->bootstrap_key = kr_keys_opt(a->bootstrap_key, "KEYROTATOR_VALKEY_BOOTSTRAP_KEY");
	if (!l->active_set)
		l->active_set = "api_keys:active";
	if (!l->meta_key)
		l->meta_key = "api_key:{id}:meta";
	if (!l->bootstrap_key)
		l->bootstrap_key = "api_keys:bootstrap";
	if (store_as && kr_store_as_parse(store_as, &l->store_as, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--store-as: %s", err.msg);
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
	rc = kr_keys_conn_fill(a->verb, &a->conn,
			       kr_keys_opt(a->addr, "KEYROTATOR_VALKEY_ADDR") != NULL, &o, &conn);
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
	long bytes = KR_KEY_DEFAULT_BYTES;
	int rc, active = 0;

	kr_error_clear(&err);
	if (a->bytes && kr_keys_int(a, "--bytes", a->bytes, KR_KEY_MIN_BYTES, KR_KEY_MAX_BYTES,
				    &bytes) != KR_EXIT_OK)
		return KR_EXIT_USAGE;
	if (kr_key_prefix_check(a->prefix, &err) != KR_OK)
		return kr_cli_usage_error(a->verb, "--prefix: %s", err.msg);
	rc = kr_keys_open(a, &ks);
	if (rc != KR_EXIT_OK)
		return rc;
	struct kr_key_meta meta = {a->label, a->rotation ? a->rotation : "cli", NULL};
	if (kr_key_generate(a->prefix, (int)bytes, &key, &err) != KR_OK ||
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
	if ((a->positional ? 1 : 0) + a->nsources != 1)
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
	if (kr_keys_load_key(a->sources[0], a->source_is_env[0], key, &err) != KR_OK)
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
				  a->no_bootstrap ? NULL : cur, a->rotation ? a->rotation : "cli",
				  &rep, &err) != KR_OK) {
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
	if (a->nsources == 0)
		return kr_cli_usage_error(a->verb, "give the deployed key: --key-from-env VAR or "
						   "--key-file FILE");
	for (size_t i = 0; i < a->nsources && rc == KR_EXIT_OK; i++) {
		char id[KR_KEY_ID_LEN + 1];

		if (kr_keys_load_key(a->sources[i], a->source_is_env[i], &keys[i], &err) != KR_OK) {
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
		rc = kr_keys_reconcile_run(a, keys, a->nsources);
	for (size_t i = 0; i < a->nsources; i++)
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
		kr_keys_help(kr_keys_usage_all);
		return KR_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(kr_keys_subs) / sizeof(kr_keys_subs[0]); i++) {
		if (strcmp(argv[1], kr_keys_subs[i].name))
			continue;
		if (kr_cli_wants_help(argc - 1, argv + 1)) {
			kr_keys_help(kr_keys_subs[i].usage);
			return KR_EXIT_OK;
		}
		memset(&a, 0, sizeof(a));
		a.sub = kr_keys_subs[i].sub;
		snprintf(verb, sizeof(verb), "keys %s", kr_keys_subs[i].name);
		a.verb = verb;
		rc = kr_keys_parse(argc, argv, &a);
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
