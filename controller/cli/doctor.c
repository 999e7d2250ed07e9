/* doctor.c - `keyrotator doctor`: can this config reach the API server and do the job? */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kube/kube.h"

static const char kr_doctor_intro[] =
    "Usage: keyrotator doctor [--kubeconfig PATH] [--context NAME]\n\n"
    "Check that keyrotator can work against the cluster: load the configuration the way\n"
    "`keyrotator run` does, reach the API server, find the CRDs (KeyRotation, KeyStore,\n"
    "ClusterKeyStore), and read Secrets in the namespace. Prints one \"ok ...\" or\n"
    "\"FAIL ...\" line per check.\n\n";

struct kr_doctor_opts {
	const char *kubeconfig;
	const char *context;
};

#define DOCTOR(kind, f) KR_FLAG_##kind##_AT(struct kr_doctor_opts, f)

static const struct kr_flag kr_doctor_flags[] = {
    {.help = "Options:"},
    {.name = "kubeconfig",
     DOCTOR(STRING, kubeconfig),
     .metavar = "PATH",
     .help = "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"},
    {.name = "context",
     DOCTOR(STRING, context),
     .metavar = "NAME",
     .help = "context to use instead of current-context"},
    {0},
};

static int kr_doctor_parse(int argc, char **argv, struct kr_doctor_opts *o)
{
	int nargs = 0, rc = kr_cli_flags("doctor", kr_doctor_flags, 0, o, argc, argv, &nargs);

	if (rc == KR_EXIT_OK && nargs > 0)
		return kr_cli_usage_error("doctor", "unexpected argument '%s'", argv[1]);
	return rc;
}

/* GET /version; falls back to discovery (/api) on servers that hide /version. */
static int kr_doctor_reach(struct kr_kube_client *c, const struct kr_kube_config *cfg)
{
	struct kr_error err;
	const cJSON *gv;
	cJSON *doc = NULL;
	enum kr_status rc;

	kr_error_clear(&err);
	rc = kr_kube_request(c, "GET", "/version", NULL, NULL, &doc, &err);
	if (rc == KR_OK) {
		gv = cJSON_GetObjectItemCaseSensitive(doc, "gitVersion");
		printf("ok API server %s answers (Kubernetes %s)\n", cfg->server,
		       cJSON_IsString(gv) ? gv->valuestring : "version unknown");
		cJSON_Delete(doc);
		return 0;
	}
	if (rc == KR_ENOTFOUND || rc == KR_EAUTH) {
		rc = kr_kube_request(c, "GET", "/api", NULL, NULL, &doc, &err);
		cJSON_Delete(doc);
		if (rc == KR_OK) {
			printf("ok API server %s answers (discovery /api)\n", cfg->server);
			return 0;
		}
	}
	printf("FAIL API server %s: %s\n", cfg->server, err.msg);
	return 1;
}

/* The group-version must be served with every kind of keyrotator.io (kubectl apply -f crds/). */
static int kr_doctor_crd(struct kr_kube_client *c)
{
	static const char gv[] = "/apis/keyrotator.io/v1alpha1";
	static const char *const plurals[] = {"keyrotations", "keystores", "clusterkeystores"};
	const cJSON *r, *list;
	struct kr_error err;
	cJSON *doc = NULL;
	enum kr_status rc;
	int failed = 0;

	kr_error_clear(&err);
	rc = kr_kube_request(c, "GET", gv, NULL, NULL, &doc, &err);
	if (rc == KR_ENOTFOUND) {
		printf("FAIL CRD keyrotations.keyrotator.io: CRD not installed: "
		       "kubectl apply -f crds/\n");
		return 1;
	}
	if (rc != KR_OK) {
		printf("FAIL CRD keyrotations.keyrotator.io: GET %s: %s\n", gv, err.msg);
		return 1;
	}
	list = cJSON_GetObjectItemCaseSensitive(doc, "resources");
	for (size_t i = 0; i < sizeof(plurals) / sizeof(plurals[0]); i++) {
		int found = 0;

		cJSON_ArrayForEach(r, list)
		{
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");

			if (cJSON_IsString(name) && !strcmp(name->valuestring, plurals[i]))
				found = 1;
		}
		if (found) {
			printf("ok CRD %s.keyrotator.io is served (keyrotator.io/v1alpha1)\n",
			       plurals[i]);
			continue;
		}
		printf("FAIL CRD %s.keyrotator.io: keyrotator.io/v1alpha1 is served but has no %s "
		       "resource: kubectl apply -f crds/\n",
		       plurals[i], plurals[i]);
		failed = 1;
	}
	cJSON_Delete(doc);
	return failed;
}

/*
 * GET a Secret that should not exist: RBAC gives the controller get, not list/watch, on
 * Secrets, so a 404 proves the permission it needs without reading anyone's data.
 */
static int kr_doctor_secrets(struct kr_kube_client *c, const char *ns)
{
	struct kr_error err;
	cJSON *obj = NULL;
	enum kr_status rc;

	kr_error_clear(&err);
	rc = kr_kube_get(c, &kr_kube_secrets, ns, "keyrotator-doctor-probe", &obj, &err);
	cJSON_Delete(obj); /* not looked at: it may hold key material */
	if (rc == KR_EAUTH) {
		printf("FAIL Secrets in namespace %s: the credentials may not get them: %s\n", ns,
		       err.msg);
		return 1;
	}
	if (rc != KR_OK && rc != KR_ENOTFOUND) {
		printf("FAIL Secrets in namespace %s: %s\n", ns, err.msg);
		return 1;
	}
	printf("ok Secrets in namespace %s can be read\n", ns);
	return 0;
}

int kr_cli_doctor(int argc, char **argv)
{
	struct kr_doctor_opts opts = {0};
	struct kr_kube_client *client = NULL;
	struct kr_kube_config cfg;
	struct kr_error err;
	int rc, failed = 0;

	if (kr_cli_wants_help(argc, argv)) {
		fputs(kr_doctor_intro, stdout);
		kr_flags_help(stdout, kr_doctor_flags, 0);
		fputs("\nExit codes: 0 every check passed, 1 a check failed, 2 bad usage.\n",
		      stdout);
		return KR_EXIT_OK;
	}
	rc = kr_doctor_parse(argc, argv, &opts);
	if (rc != KR_EXIT_OK)
		return rc;
	kr_error_clear(&err);
	kr_kube_config_init(&cfg);
	if (kr_kube_config_load(&cfg, opts.kubeconfig, opts.context, &err) != KR_OK) {
		printf("FAIL configuration: %s\n", err.msg);
		failed = 1;
		goto out;
	}
	printf("ok configuration: %s, server %s, namespace %s\n", cfg.source, cfg.server,
	       cfg.namespace_);
	client = kr_kube_client_new(&cfg, &err);
	if (!client) {
		printf("FAIL client: %s\n", err.msg);
		failed = 1;
		goto out;
	}
	kr_kube_client_set_timeouts(client, 5000, 15000);
	failed = kr_doctor_reach(client, &cfg);
	if (failed)
		goto out; /* the other checks would only repeat the same transport error */
	failed |= kr_doctor_crd(client);
	failed |= kr_doctor_secrets(client, cfg.namespace_);
out:
	kr_kube_client_free(client);
	kr_kube_config_release(&cfg);
	fflush(stdout);
	return failed ? KR_EXIT_FAIL : KR_EXIT_OK;
}
