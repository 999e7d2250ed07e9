/* plugin.c - the kubectl plugin `kubectl keyrotation rotate|abort|promote|status|history|plan
 * NAME`. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "cli/plan_print.h"
#include "json/json.h"
#include "cli/plugin_view.h"
#include "kube/kube.h"
#include "rotation/rotation.h"
#include "rotation/schedule.h"
#include "rotation/status_json.h"

static const char kr_plugin_intro[] =
    "Usage: kubectl keyrotation COMMAND NAME [options]\n\n"
    "Drive a KeyRotation (keyrotations.keyrotator.io) from kubectl. Installed as\n"
    "`kubectl-keyrotation` on the PATH: the keyrotator binary, chosen by its name.\n\n"
    "Commands:\n"
    "  rotate NAME [--emergency REASON]\n"
    "             ask for a rotation now: sets the annotation keyrotator.io/rotate to the\n"
    "             current time (UTC); --emergency sets keyrotator.io/emergency to REASON\n"
    "             instead (old key revoked before the roll-out, no analysis gates)\n"
    "  abort NAME [--reason REASON]\n"
    "             roll back the rotation in flight: sets keyrotator.io/abort to REASON\n"
    "             (default: the current time); refused once the old key is revoked\n"
    "  promote NAME\n"
    "             let a Paused rotation go on (spec.stages[].pause, pauseBeforeRevoke):\n"
    "             sets keyrotator.io/promote to the current time\n"
    "  status NAME  phase, conditions, keys, the rotation in flight, per-stage and\n"
    "             per-workload adoption of the new key, 401 rate, last/next rotation\n"
    "  history NAME past rotations: key id, trigger, activated, revoked, outcome, reason\n"
    "  plan NAME [--emergency]\n"
    "             what a rotation of this object would do, step by step (changes nothing)\n"
    "\n";

static const char kr_plugin_outro[] =
    "\nExamples:\n"
    "  kubectl keyrotation rotate sirius-service-key -n sirius\n"
    "  kubectl keyrotation rotate sirius-service-key -n sirius --emergency \"key leaked\"\n"
    "  kubectl keyrotation abort sirius-service-key -n sirius --reason \"ui errors\"\n"
    "  kubectl keyrotation promote sirius-service-key -n sirius\n"
    "  kubectl keyrotation status sirius-service-key -n sirius\n"
    "Exit codes: 0 ok, 1 the request failed (not found, refused, unreachable), 2 bad usage.\n";

enum kr_plugin_cmd {
	KR_PLUGIN_NONE = 0,
	KR_PLUGIN_ROTATE,
	KR_PLUGIN_STATUS,
	KR_PLUGIN_HISTORY,
	KR_PLUGIN_PLAN,
	KR_PLUGIN_ABORT,
	KR_PLUGIN_PROMOTE,
};

/* Which commands a flag goes with (kr_flag.groups); 0 for every command. */
#define KR_PLUGIN_G(cmd) (1u << (cmd))

struct kr_plugin_args {
	enum kr_plugin_cmd cmd;
	const char *name;
	const char *ns; /* NULL: the context's */
	const char *kubeconfig;
	const char *context;
	const char *emergency; /* rotate: the reason */
	const char *reason;    /* abort: the reason */
	bool plan_emergency;   /* plan --emergency */
	const char *output;    /* "json" or NULL */
	bool json;
};

#define PLUGIN(kind, f) KR_FLAG_##kind##_AT(struct kr_plugin_args, f)

static const struct kr_flag kr_plugin_flags[] = {
    {.help = "Options:"},
    {.name = "namespace",
     .shrt = 'n',
     PLUGIN(STRING, ns),
     .metavar = "NS",
     .help = "the object's namespace (default: the context's, else default)"},
    {.name = "kubeconfig",
     PLUGIN(STRING, kubeconfig),
     .metavar = "PATH",
     .help = "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"},
    {.name = "context",
     PLUGIN(STRING, context),
     .metavar = "NAME",
     .help = "kubeconfig context to use instead of current-context"},
    {.name = "output",
     .shrt = 'o',
     PLUGIN(CHOICE, output),
     .choices = (const char *const[]){"json", NULL},
     .help = "status: the status object; history: status.history; plan: "
	     "{\"namespace\",\"name\",\"trigger\",\"plan\"}"},
    /* --emergency: a REASON for rotate (refused later for status and history), a switch
     * for plan. Described with the commands above, so not listed under Options. */
    {.name = "emergency",
     PLUGIN(STRING, emergency),
     .opts = KR_FLAG_EMPTY_OK,
     .groups = ~KR_PLUGIN_G(KR_PLUGIN_PLAN)},
    {.name = "emergency", PLUGIN(BOOL, plan_emergency), .groups = KR_PLUGIN_G(KR_PLUGIN_PLAN)},
    /* --reason: abort's REASON (refused later for the other commands); with the commands
     * above too, so groups that are never 0 keep it out of the Options list. */
    {.name = "reason", PLUGIN(STRING, reason), .opts = KR_FLAG_EMPTY_OK, .groups = ~0u},
    {0},
};

static int kr_plugin_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kr_plugin_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nSee 'kubectl keyrotation --help' for usage.\n", stderr);
	return KR_EXIT_USAGE;
}

/* An API error as kubectl prints it: "Error from server (NotFound): ...". Returns 1. */
static int kr_plugin_fail(const struct kr_error *err)
{
	const char *sep = strstr(err->msg, ": ");

	if (err->http_status > 0 && sep)
		fprintf(stderr, "Error from server (%.*s): %s\n", (int)(sep - err->msg), err->msg,
			sep + 2);
	else
		fprintf(stderr, "error: %s\n", err->msg);
	return KR_EXIT_FAIL;
}

static enum kr_plugin_cmd kr_plugin_cmd_parse(const char *s)
{
	static const char *const names[] = {"rotate", "status", "history",
					    "plan",   "abort",	"promote"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i]))
			return (enum kr_plugin_cmd)(i + 1);
	return KR_PLUGIN_NONE;
}

/* A positional argument: the command, then NAME. */
static int kr_plugin_positional(struct kr_plugin_args *a, const char *arg)
{
	if (a->cmd == KR_PLUGIN_NONE) {
		a->cmd = kr_plugin_cmd_parse(arg);
		if (a->cmd == KR_PLUGIN_NONE)
			return kr_plugin_usage_error("unknown command \"%s\" (rotate, abort, "
						     "promote, status, history or plan)",
						     arg);
	} else if (!a->name) {
		a->name = arg;
	} else {
		return kr_plugin_usage_error("unexpected argument \"%s\": one NAME only", arg);
	}
	return KR_EXIT_OK;
}

static int kr_plugin_parse(int argc, char **argv, struct kr_plugin_args *a)
{
	struct kr_error err;
	int nargs = 0, first, rc = KR_EXIT_OK;

	kr_error_clear(&err);
	/* The command decides whether --emergency takes a value: find it first. */
	first = kr_flags_first_arg(kr_plugin_flags, KR_PLUGIN_G(KR_PLUGIN_ROTATE), argc, argv);
	if (first < argc)
		rc = kr_plugin_positional(a, argv[first]);
	if (rc != KR_EXIT_OK)
		return rc;
	if (kr_flags_parse(kr_plugin_flags, KR_PLUGIN_G(a->cmd), a, argc, argv, &nargs, &err) !=
	    KR_OK)
		return kr_plugin_usage_error("%s", err.msg);
	for (int i = 2; i <= nargs && rc == KR_EXIT_OK; i++)
		rc = kr_plugin_positional(a, argv[i]);
	if (rc != KR_EXIT_OK)
		return rc;
	if (a->cmd == KR_PLUGIN_NONE)
		return kr_plugin_usage_error(
		    "missing command (rotate, abort, promote, status, history or plan)");
	if (!a->name || !a->name[0])
		return kr_plugin_usage_error("missing the KeyRotation NAME");
	a->json = a->output != NULL;
	if (a->emergency && a->cmd != KR_PLUGIN_ROTATE)
		return kr_plugin_usage_error("--emergency goes with rotate (or plan)");
	if (a->emergency && (!a->emergency[0] || strlen(a->emergency) >= KR_ROT_REQUEST_MAX))
		return kr_plugin_usage_error("--emergency: the REASON must be 1 to %d bytes",
					     KR_ROT_REQUEST_MAX - 1);
	if (a->emergency)
		a->plan_emergency = true;
	if (a->reason && a->cmd != KR_PLUGIN_ABORT)
		return kr_plugin_usage_error("--reason goes with abort");
	if (a->reason && (!a->reason[0] || strlen(a->reason) >= KR_ROT_REQUEST_MAX))
		return kr_plugin_usage_error("--reason: the REASON must be 1 to %d bytes",
					     KR_ROT_REQUEST_MAX - 1);
	if (a->json && (a->cmd == KR_PLUGIN_ROTATE || a->cmd == KR_PLUGIN_ABORT ||
			a->cmd == KR_PLUGIN_PROMOTE))
		return kr_plugin_usage_error("--output applies to status, history and plan");
	return KR_EXIT_OK;
}

/* GET the KeyRotation; prints the error itself. */
static int kr_plugin_get(struct kr_kube_client *c, const struct kr_plugin_args *a, cJSON **obj)
{
	struct kr_error err;

	kr_error_clear(&err);
	if (kr_kube_get(c, &kr_kube_keyrotations, a->ns, a->name, obj, &err) != KR_OK)
		return kr_plugin_fail(&err);
	return KR_EXIT_OK;
}

static const char *kr_plugin_annotation(const cJSON *obj, const char *key)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The merge patch {"metadata":{"annotations":{key: value}}} as text; caller frees. */
static char *kr_plugin_annotation_patch(const char *key, const char *value)
{
	cJSON *patch = cJSON_CreateObject(), *meta, *ann;
	char *text = NULL;

	meta = cJSON_AddObjectToObject(patch, "metadata");
	ann = cJSON_AddObjectToObject(meta, "annotations");
	if (cJSON_AddStringToObject(ann, key, value))
		text = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	return text;
}

/*
 * Whether the KeyRotation's status lets `a->cmd` (abort, promote) do anything; prints why
 * not and returns KR_EXIT_FAIL. The controller decides again (and says so in an Event):
 * this only spares a request that would be ignored.
 */
static int kr_plugin_check_control(const struct kr_plugin_args *a, const cJSON *obj)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	struct kr_rotation_status st;

	if (a->cmd == KR_PLUGIN_ROTATE || kr_rotation_status_decode(status, &st, NULL) != KR_OK)
		return KR_EXIT_OK;
	if (a->cmd == KR_PLUGIN_PROMOTE && st.phase != KR_PHASE_PAUSED) {
		fprintf(stderr, "error: keyrotation.keyrotator.io/%s is not paused (phase %s)\n",
			a->name, kr_phase_name(st.phase));
		return KR_EXIT_FAIL;
	}
	if (a->cmd == KR_PLUGIN_ABORT &&
	    (st.phase == KR_PHASE_IDLE || st.phase == KR_PHASE_FAILED)) {
		fprintf(stderr,
			"error: keyrotation.keyrotator.io/%s has no rotation in flight "
			"(phase %s)\n",
			a->name, kr_phase_name(st.phase));
		return KR_EXIT_FAIL;
	}
	if (a->cmd == KR_PLUGIN_ABORT && st.rotation.old_revoked) {
		fprintf(stderr,
			"error: keyrotation.keyrotator.io/%s: the old key is already revoked; the "
			"rotation can no longer be rolled back\n",
			a->name);
		return KR_EXIT_FAIL;
	}
	return KR_EXIT_OK;
}

/* rotate, abort, promote: set the annotation to a value it has not had. */
static int kr_plugin_request(struct kr_kube_client *c, const struct kr_plugin_args *a)
{
	const char *key = a->cmd == KR_PLUGIN_ABORT	? KR_ANNOTATION_ABORT
			  : a->cmd == KR_PLUGIN_PROMOTE ? KR_ANNOTATION_PROMOTE
			  : a->emergency		? KR_ANNOTATION_EMERGENCY
							: KR_ANNOTATION_ROTATE;
	const char *given = a->cmd == KR_PLUGIN_ABORT ? a->reason : a->emergency;
	const char *what = a->cmd == KR_PLUGIN_ABORT	 ? "abort"
			   : a->cmd == KR_PLUGIN_PROMOTE ? "promote"
			   : a->emergency		 ? "emergency rotation"
							 : "rotation";
	char now[KR_RFC3339_BUFSZ], *patch = NULL;
	const char *value = given, *old;
	struct kr_error err;
	cJSON *obj = NULL;
	int code;

	kr_error_clear(&err);
	if (!value && kr_time_format_rfc3339(time(NULL), now, sizeof(now)) != KR_OK) {
		fprintf(stderr, "error: the system clock is outside years 0000-9999\n");
		return KR_EXIT_FAIL;
	}
	value = value ? value : now;
	code = kr_plugin_get(c, a, &obj);
	if (code != KR_EXIT_OK)
		goto out;
	code = kr_plugin_check_control(a, obj);
	if (code != KR_EXIT_OK)
		goto out;
	old = kr_plugin_annotation(obj, key);
	if (old && !strcmp(old, value)) {
		fprintf(
		    stderr,
		    "error: keyrotation.keyrotator.io/%s already has %s=%s; the controller acts "
		    "on each value once: %s\n",
		    a->name, key, value,
		    given ? "give a different REASON" : "try again in a second");
		code = KR_EXIT_FAIL;
		goto out;
	}
	patch = kr_plugin_annotation_patch(key, value);
	if (!patch) {
		fprintf(stderr, "error: out of memory\n");
		code = KR_EXIT_FAIL;
		goto out;
	}
	if (kr_kube_patch(c, &kr_kube_keyrotations, a->ns, a->name, NULL, KR_KUBE_PATCH_MERGE,
			  patch, NULL, &err) != KR_OK) {
		code = kr_plugin_fail(&err);
		goto out;
	}
	printf("keyrotation.keyrotator.io/%s %s requested (%s=%s)\n", a->name, what, key, value);
out:
	free(patch);
	cJSON_Delete(obj);
	return code;
}

/*
 * The key store a keyStoreRef names, with the user's credentials: the plan then shows its
 * server and layout, as the controller's does. A store the user may not read, or that does
 * not exist, leaves the plan naming it. A namespace selector is assumed to match (the user
 * may not read Namespaces; the controller checks it).
 */
static void kr_plugin_resolve_store(struct kr_kube_client *c, const struct kr_plugin_args *a,
				    struct kr_rotation_spec *spec)
{
	bool cluster = spec->store_ref_kind == KR_STORE_REF_CLUSTER;
	cJSON *store = NULL;
	struct kr_error err;
	char reason[64];

	if (spec->store_ref_kind == KR_STORE_INLINE)
		return;
	kr_error_clear(&err);
	if ((cluster ? kr_kube_get(c, &kr_kube_clusterkeystores, NULL, spec->store_ref_name, &store,
				   &err)
		     : kr_kube_get(c, &kr_kube_keystores, a->ns, spec->store_ref_name, &store,
				   &err)) != KR_OK)
		return;
	if (cluster)
		kr_keystore_object_assume_selector(store, a->ns);
	kr_keystore_object_apply(spec, store, a->ns, a->name, NULL, NULL, reason, &err);
	cJSON_Delete(store);
}

static int kr_plugin_plan(struct kr_kube_client *c, const struct kr_plugin_args *a,
			  const cJSON *obj)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	struct kr_rotation_status st;
	struct kr_rotation_spec spec;
	struct kr_error err;
	struct kr_plan_target t = {
	    .spec = &spec, .ns = a->ns, .name = a->name, .emergency = a->plan_emergency};
	enum kr_status rc;

	kr_error_clear(&err);
	if (kr_rotation_spec_decode(obj, &spec, &err) != KR_OK) {
		fprintf(stderr, "error: keyrotation.keyrotator.io/%s: %s\n", a->name, err.msg);
		return KR_EXIT_FAIL;
	}
	kr_plugin_resolve_store(c, a, &spec);
	/* The status is only read for the key ids and the unlisted consumers the controller
	 * found: a status it cannot read plans without. */
	if (kr_rotation_status_decode(status, &st, NULL) == KR_OK) {
		t.old_id = st.current_key.id;
		t.unlisted = st.unlisted;
		t.n_unlisted = st.n_unlisted;
		if (st.phase != KR_PHASE_IDLE && st.phase != KR_PHASE_FAILED)
			t.new_id = st.pending_key.id;
	}
	rc = kr_cli_plan_print(stdout, &t, a->json, &err);
	kr_rotation_spec_release(&spec);
	if (rc != KR_OK) {
		fprintf(stderr, "error: %s\n", err.msg);
		return KR_EXIT_FAIL;
	}
	return KR_EXIT_OK;
}

/* status, history, plan: GET the object, then show it. */
static int kr_plugin_show(struct kr_kube_client *c, const struct kr_plugin_args *a)
{
	cJSON *obj = NULL;
	int code;

	code = kr_plugin_get(c, a, &obj);
	if (code != KR_EXIT_OK)
		return code;
	/* Status text is written by the controller, but anyone who may write the status could
	 * put terminal escapes there: nothing reaches the terminal unsanitised. */
	kr_json_sanitize(obj);
	if (a->cmd == KR_PLUGIN_STATUS)
		code = kr_plugin_view_status(stdout, obj, a->json);
	else if (a->cmd == KR_PLUGIN_HISTORY)
		code = kr_plugin_view_history(stdout, obj, a->json);
	else
		code = kr_plugin_plan(c, a, obj);
	cJSON_Delete(obj);
	if (fflush(stdout) != 0)
		code = KR_EXIT_FAIL;
	return code;
}

int kr_cli_kubectl(int argc, char **argv)
{
	struct kr_plugin_args a = {0};
	struct kr_kube_client *client = NULL;
	struct kr_kube_config cfg;
	struct kr_error err;
	int code;

	if (argc < 2 || kr_cli_wants_help(argc, argv)) {
		FILE *out = argc < 2 ? stderr : stdout;

		fputs(kr_plugin_intro, out);
		kr_flags_help(out, kr_plugin_flags, 0);
		fputs(kr_plugin_outro, out);
		return argc < 2 ? KR_EXIT_USAGE : KR_EXIT_OK;
	}
	code = kr_plugin_parse(argc, argv, &a);
	if (code != KR_EXIT_OK)
		return code;
	kr_error_clear(&err);
	kr_kube_config_init(&cfg);
	if (kr_kube_config_load(&cfg, a.kubeconfig, a.context, &err) != KR_OK) {
		code = kr_plugin_fail(&err);
		goto out;
	}
	if (!a.ns)
		a.ns = cfg.namespace_ && cfg.namespace_[0] ? cfg.namespace_ : "default";
	client = kr_kube_client_new(&cfg, &err);
	if (!client) {
		code = kr_plugin_fail(&err);
		goto out;
	}
	kr_kube_client_set_timeouts(client, 5000, 30000);
	if (a.cmd == KR_PLUGIN_ROTATE || a.cmd == KR_PLUGIN_ABORT || a.cmd == KR_PLUGIN_PROMOTE)
		code = kr_plugin_request(client, &a);
	else
		code = kr_plugin_show(client, &a);
out:
	kr_kube_client_free(client);
	kr_kube_config_release(&cfg);
	return code;
}
