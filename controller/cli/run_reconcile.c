/* run_reconcile.c - a placeholder reconcile that observes KeyRotations; rotation replaces it. */
#include "cli/run_reconcile.h"

#include "base/log.h"

static int kr_run_count(const cJSON *obj, const char *field)
{
	return cJSON_GetArraySize(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), field));
}

static const char *kr_run_phase(const cJSON *obj)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "status"), "phase");

	return cJSON_IsString(p) ? p->valuestring : "";
}

enum kr_status kr_run_reconcile(void *arg, struct kr_kube_client *client, const char *ns,
				const char *name, struct kr_reconcile_result *res)
{
	const cJSON *gen;
	cJSON *obj = NULL;
	enum kr_status rc;

	(void)arg;
	rc = kr_kube_get(client, &kr_kube_keyrotations, ns, name, &obj, &res->err);
	if (rc == KR_ENOTFOUND) {
		kr_log_debug(res->log, "KeyRotation is gone");
		return rc;
	}
	if (rc != KR_OK)
		return rc;
	gen = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
					       "generation");
	kr_log_debug(res->log, "observed KeyRotation: generation %d, %d stage(s), phase \"%s\"",
		     cJSON_IsNumber(gen) ? gen->valueint : 0, kr_run_count(obj, "stages"),
		     kr_run_phase(obj));
	cJSON_Delete(obj);
	return KR_OK;
}
