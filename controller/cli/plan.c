/* plan.c - `keyrotator plan -f FILE`: what a rotation would do, step by step, without doing it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "cli/plan_print.h"
#include "json/json.h"
#include "rotation/rotation.h"
#include "yaml/yaml.h"

#define KR_PLAN_MAX_STDIN (16u << 20) /* as kr_yaml_parse_file's limit */

static const char kr_plan_intro[] =
    "Usage: keyrotator plan -f FILE [--emergency] [--new-id ID] [--current-id ID]\n"
    "                       [-o text|json]\n\n"
    "Print what a rotation of each KeyRotation in FILE would do, step by step, without\n"
    "doing it: the same plan spec.dryRun puts into status.plan. Reads no cluster and no\n"
    "key store. FILE is YAML or JSON and may hold several documents (`---`); documents of\n"
    "other kinds are skipped. The spec is validated as the controller validates it.\n"
    "A spec.keyStoreRef is resolved against a KeyStore or ClusterKeyStore in the same\n"
    "FILE (its server and layout in the plan; a namespace selector is assumed to match);\n"
    "without one, the plan names the store.\n"
    "Not shown, since they need the cluster: unlisted consumers (workloads that read the\n"
    "Secret but no stage lists, which hold the revoke) and the cluster's KeyStores.\n"
    "`kubectl keyrotation plan NAME` shows both.\n\n";

static const char kr_plan_outro[] =
    "\nExample: keyrotator plan -f manifests/examples/sirius-keyrotation.yaml\n"
    "Exit codes: 0 ok, 2 bad usage, an unreadable file or an invalid spec.\n";

struct kr_plan_args {
	const char *file;
	const char *new_id;
	const char *old_id;
	bool emergency;
	const char *output; /* "text" or "json" */
};

static enum kr_status kr_plan_parse_id(const char *v, void *dst, struct kr_error *err)
{
	if (!kr_cli_is_key_id(v)) /* not echoed: it may be a raw key given by mistake */
		return kr_error_set(err, KR_EINVAL,
				    "not a key id (1 to 12 lowercase hex digits, the start of the "
				    "key's SHA-256; never the key)");
	*(const char **)dst = v;
	return KR_OK;
}

#define PLAN(kind, f) KR_FLAG_##kind##_AT(struct kr_plan_args, f)

static const struct kr_flag kr_plan_flags[] = {
    {.help = "Options:"},
    {.name = "filename",
     .shrt = 'f',
     PLAN(STRING, file),
     .metavar = "FILE",
     .help = "the manifest; - reads standard input"},
    {.name = "emergency",
     PLAN(BOOL, emergency),
     .help = "the emergency order: revoke the old key before the roll-out, no analysis "
	     "gates, no validation period"},
    {.name = "new-id",
     PLAN(CUSTOM, new_id),
     .parse = kr_plan_parse_id,
     .metavar = "ID",
     .help = "the new key's id, when known (default \"<new id>\")"},
    {.name = "current-id",
     PLAN(CUSTOM, old_id),
     .parse = kr_plan_parse_id,
     .metavar = "ID",
     .help = "the current key's id (default \"<current id>\"); a key id is the first 12 hex "
	     "digits of the key's SHA-256, never the key"},
    {.name = "output",
     .shrt = 'o',
     PLAN(CHOICE, output),
     .choices = (const char *const[]){"text", "json", NULL},
     .def = "text",
     .help = "text: a header and numbered steps; json: one object per KeyRotation and "
	     "line, {\"namespace\",\"name\",\"trigger\",\"plan\"}"},
    {0},
};

/* One KeyRotation of the file, decoded. */
struct kr_plan_item {
	struct kr_rotation_spec spec;
	const char *ns; /* borrowed from the document */
	const char *name;
};

int kr_cli_is_key_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > KR_ROT_ID_SIZE - 1)
		return 0;
	return strspn(id, "0123456789abcdef") == n;
}

static enum kr_status kr_plan_text(FILE *out, const struct kr_plan_target *t, const cJSON *plan)
{
	int n = cJSON_GetArraySize(plan), width = n >= 100 ? 3 : n >= 10 ? 2 : 1, i = 0;
	const cJSON *step;

	fprintf(out, "KeyRotation %s/%s (trigger %s)\n", t->ns, t->name,
		kr_trigger_name(t->emergency ? KR_TRIGGER_EMERGENCY : KR_TRIGGER_MANUAL));
	cJSON_ArrayForEach(step, plan)
	{
		fprintf(out, "  %*d. %s\n", width, ++i,
			cJSON_IsString(step) ? step->valuestring : "?");
	}
	return ferror(out) ? KR_EIO : KR_OK;
}

static enum kr_status kr_plan_json(FILE *out, const struct kr_plan_target *t, cJSON **plan,
				   struct kr_error *err)
{
	const char *trigger =
	    kr_trigger_name(t->emergency ? KR_TRIGGER_EMERGENCY : KR_TRIGGER_MANUAL);
	cJSON *obj = cJSON_CreateObject();
	char *text = NULL;
	enum kr_status rc = KR_ENOMEM;

	if (!obj || !cJSON_AddStringToObject(obj, "namespace", t->ns) ||
	    !cJSON_AddStringToObject(obj, "name", t->name) ||
	    !cJSON_AddStringToObject(obj, "trigger", trigger) ||
	    !cJSON_AddItemToObject(obj, "plan", *plan))
		goto out;
	*plan = NULL; /* now owned by obj */
	text = cJSON_PrintUnformatted(obj);
	if (!text)
		goto out;
	fprintf(out, "%s\n", text);
	rc = ferror(out) ? KR_EIO : KR_OK;
out:
	if (rc == KR_ENOMEM)
		kr_error_set(err, rc, "out of memory");
	else if (rc == KR_EIO)
		kr_error_set(err, rc, "cannot write the plan");
	free(text);
	cJSON_Delete(obj);
	return rc;
}

enum kr_status kr_cli_plan_print(FILE *out, const struct kr_plan_target *t, bool json,
				 struct kr_error *err)
{
	cJSON *plan = NULL;
	enum kr_status rc;

	rc = kr_rotation_plan(t->spec, t->ns, t->name, t->new_id, t->old_id, t->emergency, &plan,
			      err);
	if (rc == KR_OK && t->unlisted)
		rc = kr_rotation_plan_unlisted(t->spec, t->ns, t->unlisted, t->n_unlisted,
					       t->emergency, plan, err);
	if (rc != KR_OK) {
		cJSON_Delete(plan);
		return rc;
	}
	if (json) {
		rc = kr_plan_json(out, t, &plan, err);
	} else {
		rc = kr_plan_text(out, t, plan);
		if (rc != KR_OK)
			kr_error_set(err, rc, "cannot write the plan");
	}
	cJSON_Delete(plan);
	return rc;
}

static int kr_plan_parse_args(int argc, char **argv, struct kr_plan_args *a)
{
	int nargs = 0, rc;

	rc = kr_cli_flags("plan", kr_plan_flags, 0, a, argc, argv, &nargs);
	if (rc != KR_EXIT_OK)
		return rc;
	if (nargs > 0)
		return kr_cli_usage_error("plan",
					  "unexpected argument '%s'; the file "
					  "goes after -f",
					  argv[1]);
	if (!a->file)
		return kr_cli_usage_error("plan", "missing -f FILE (- for standard input)");
	return KR_EXIT_OK;
}

static enum kr_status kr_plan_read_stdin(cJSON **docs, struct kr_error *err)
{
	struct kr_buf b;
	char chunk[65536];
	size_t n;
	enum kr_status rc = KR_OK;

	kr_buf_init(&b);
	while (rc == KR_OK && (n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		rc = kr_buf_add(&b, chunk, n);
		if (rc == KR_OK && b.len > KR_PLAN_MAX_STDIN)
			rc = kr_error_set(err, KR_ETOOBIG, "<stdin>: larger than 16 MiB");
		else if (rc != KR_OK)
			kr_error_set(err, rc, "out of memory");
	}
	if (rc == KR_OK && ferror(stdin))
		rc = kr_error_set(err, KR_EINVAL, "<stdin>: read error");
	if (rc == KR_OK)
		rc = kr_yaml_parse(b.data, b.len, "<stdin>", docs, err);
	kr_buf_release(&b);
	return rc;
}

static const char *kr_plan_meta(const cJSON *doc, const char *field)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, field);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int kr_plan_is_keyrotation(const cJSON *doc)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");

	return cJSON_IsString(kind) && !strcmp(kind->valuestring, "KeyRotation");
}

/*
 * A keyStoreRef whose KeyStore/ClusterKeyStore is in the same file: plan with its server
 * and layout. Not in the file: the plan names the store. A ClusterKeyStore's namespace
 * selector cannot be evaluated offline: it is assumed to match (names are checked).
 */
static void kr_plan_apply_store(const cJSON *docs, struct kr_plan_item *it, struct kr_error *err)
{
	const char *kind = kr_store_ref_kind_name(it->spec.store_ref_kind);
	bool cluster = it->spec.store_ref_kind == KR_STORE_REF_CLUSTER;
	cJSON *store = NULL;
	const cJSON *doc;
	char reason[64];

	if (it->spec.store_ref_kind == KR_STORE_INLINE)
		return;
	cJSON_ArrayForEach(doc, docs)
	{
		const char *k = kr_json_str(doc, (const char *[]){"kind", NULL});
		const char *n = kr_plan_meta(doc, "name"), *ns = kr_plan_meta(doc, "namespace");

		if (k && n && !strcmp(k, kind) && !strcmp(n, it->spec.store_ref_name) &&
		    (cluster || !strcmp(ns ? ns : "default", it->ns)))
			store = cJSON_Duplicate(doc, 1);
	}
	if (!store)
		return;
	if (cluster)
		kr_keystore_object_assume_selector(store, it->ns);
	kr_keystore_object_apply(&it->spec, store, it->ns, it->name, NULL, NULL, reason, err);
	cJSON_Delete(store);
}

/* Decode every KeyRotation of `docs` into items[] (*n of them); exit code. */
static int kr_plan_decode_all(const char *file, const cJSON *docs, struct kr_plan_item *items,
			      size_t *n)
{
	struct kr_error err;
	const cJSON *doc;
	size_t total = 0;

	cJSON_ArrayForEach(doc, docs) total += kr_plan_is_keyrotation(doc);
	cJSON_ArrayForEach(doc, docs)
	{
		struct kr_plan_item *it = &items[*n];

		if (!kr_plan_is_keyrotation(doc))
			continue;
		it->name = kr_plan_meta(doc, "name");
		it->ns = kr_plan_meta(doc, "namespace");
		if (!it->ns)
			it->ns = "default";
		if (!it->name)
			return kr_cli_fail(KR_EXIT_USAGE, "plan", "%s: metadata.name: required",
					   file);
		kr_error_clear(&err);
		if (kr_rotation_spec_decode(doc, &it->spec, &err) == KR_OK &&
		    (kr_plan_apply_store(docs, it, &err), err.code != KR_OK))
			kr_rotation_spec_release(&it->spec);
		if (err.code != KR_OK) {
			if (total > 1)
				return kr_cli_fail(KR_EXIT_USAGE, "plan",
						   "%s: KeyRotation %s/%s: %s", file, it->ns,
						   it->name, err.msg);
			return kr_cli_fail(KR_EXIT_USAGE, "plan", "%s: %s", file, err.msg);
		}
		++*n;
	}
	if (*n == 0)
		return kr_cli_fail(KR_EXIT_USAGE, "plan", "%s: no KeyRotation in the file", file);
	return KR_EXIT_OK;
}

static int kr_plan_print_all(const struct kr_plan_args *a, const struct kr_plan_item *items,
			     size_t n)
{
	bool json = !strcmp(a->output, "json");
	struct kr_error err;

	kr_error_clear(&err);
	for (size_t i = 0; i < n; i++) {
		struct kr_plan_target t = {.spec = &items[i].spec,
					   .ns = items[i].ns,
					   .name = items[i].name,
					   .new_id = a->new_id,
					   .old_id = a->old_id,
					   .emergency = a->emergency};

		if (i > 0 && !json)
			fputc('\n', stdout);
		if (kr_cli_plan_print(stdout, &t, json, &err) != KR_OK)
			return kr_cli_fail(KR_EXIT_FAIL, "plan", "%s", err.msg);
	}
	return fflush(stdout) == 0 ? KR_EXIT_OK : KR_EXIT_FAIL;
}

int kr_cli_plan(int argc, char **argv)
{
	struct kr_plan_args a = {0};
	struct kr_plan_item *items = NULL;
	struct kr_error err;
	cJSON *docs = NULL;
	const char *file;
	size_t n = 0;
	int code;

	if (kr_cli_wants_help(argc, argv)) {
		fputs(kr_plan_intro, stdout);
		kr_flags_help(stdout, kr_plan_flags, 0);
		fputs(kr_plan_outro, stdout);
		return KR_EXIT_OK;
	}
	code = kr_plan_parse_args(argc, argv, &a);
	if (code != KR_EXIT_OK)
		return code;
	kr_error_clear(&err);
	file = strcmp(a.file, "-") ? a.file : "<stdin>";
	if ((strcmp(a.file, "-") ? kr_yaml_parse_file(a.file, &docs, &err)
				 : kr_plan_read_stdin(&docs, &err)) != KR_OK)
		return kr_cli_fail(KR_EXIT_USAGE, "plan", "%s", err.msg);
	items = calloc((size_t)cJSON_GetArraySize(docs) + 1, sizeof(*items));
	if (!items) {
		code = kr_cli_fail(KR_EXIT_FAIL, "plan", "out of memory");
		goto out;
	}
	code = kr_plan_decode_all(file, docs, items, &n);
	if (code == KR_EXIT_OK)
		code = kr_plan_print_all(&a, items, n);
out:
	for (size_t i = 0; items && i < n; i++)
		kr_rotation_spec_release(&items[i].spec);
	free(items);
	cJSON_Delete(docs);
	return code;
}
