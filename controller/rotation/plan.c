/* plan.c - the human plan of a rotation (status.plan with dryRun, `keyrotator plan`). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rotation/rotation.h"

static enum kr_status add_line(cJSON *arr, struct kr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum kr_status add_line(cJSON *arr, struct kr_error *err, const char *fmt, ...)
{
	char line[1024];
	cJSON *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s = cJSON_CreateString(line);
	if (!s || !cJSON_AddItemToArray(arr, s)) {
		cJSON_Delete(s);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	return KR_OK;
}

/* `emergency`: no manual gate (stages[].pause) is planned, as none holds an emergency. */
static enum kr_status add_stage(cJSON *arr, const struct kr_rotation_spec *spec, size_t i,
				const char *new_id, bool gated, bool emergency,
				struct kr_error *err)
{
	const struct kr_stage_spec *st = &spec->stages[i];
	char list[900] = "", dur[KR_DURATION_BUFSZ];
	size_t used = 0;

	for (size_t j = 0; j < st->n_workloads && used < sizeof(list); j++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s/%s", j ? ", " : "",
					 kr_workload_kind_name(st->workloads[j].kind),
					 st->workloads[j].name);
	kr_duration_format(st->timeout_ms, dur, sizeof(dur));
	if (st->pause && !emergency &&
	    add_line(arr, err, "pause before stage %s until %s gets a new value", st->name,
		     KR_ANNOTATION_PROMOTE) != KR_OK)
		return KR_ENOMEM;
	if (add_line(arr, err, "roll out stage %s: %s (pod template %s=%s, timeout %s)", st->name,
		     list, KR_ANNOTATION_KEY_ID, new_id, dur) != KR_OK)
		return KR_ENOMEM;
	if (!gated)
		return KR_OK;
	kr_duration_format(spec->analysis.interval_ms, dur, sizeof(dur));
	return add_line(arr, err,
			"analyse stage %s: 401 rate every %s, at most baseline + %g/s, roll back "
			"after %d failed or %d inconclusive measurements in a row",
			st->name, dur, spec->analysis.threshold, spec->analysis.failure_limit,
			spec->analysis.error_limit);
}

static enum kr_status add_revoke(cJSON *arr, const struct kr_rotation_spec *spec,
				 const char *old_id, bool emergency, struct kr_error *err)
{
	char dur[KR_DURATION_BUFSZ];
	enum kr_status rc;

	if (!emergency && spec->pause_before_revoke) {
		rc = add_line(arr, err, "pause before the revoke until %s gets a new value",
			      KR_ANNOTATION_PROMOTE);
		if (rc != KR_OK)
			return rc;
	}
	if (!emergency && spec->revoke_when_unused_ms >= 0) {
		kr_duration_format(spec->revoke_when_unused_ms, dur, sizeof(dur));
		rc = add_line(arr, err, "wait until key %s has not been used for %s", old_id, dur);
		if (rc != KR_OK)
			return rc;
	}
	rc = spec->store_active_set
		 ? add_line(arr, err, "revoke key %s in %s", old_id, spec->store_active_set)
		 : add_line(arr, err, "revoke key %s in the key store of %s %s", old_id,
			    kr_store_ref_kind_name(spec->store_ref_kind), spec->store_ref_name);
	if (rc == KR_OK && spec->verify_url)
		rc =
		    add_line(arr, err, "verify at %s (header %s): key %s gets 401, the new key 2xx",
			     spec->verify_url, spec->verify_header, old_id);
	return rc;
}

static enum kr_status add_start(cJSON *arr, const struct kr_rotation_spec *spec, const char *ns,
				const char *name, const char *new_id, bool gated,
				struct kr_error *err)
{
	enum kr_status rc = KR_OK;

	if (gated)
		rc = add_line(arr, err, "measure the baseline 401 rate (%s)",
			      spec->analysis.source == KR_ANALYSIS_PROMETHEUS ? "prometheus"
									      : "scrape");
	if (rc == KR_OK)
		rc = add_line(arr, err,
			      "generate a key (prefix \"%s\", %d random bytes) into Secret "
			      "%s/%s-rotation",
			      spec->key_prefix ? spec->key_prefix : "", spec->key_bytes, ns, name);
	if (rc == KR_OK)
		rc = spec->store_sentinel.n_addresses
			 ? add_line(arr, err, "activate key %s in %s at the master of %s (sentinel)",
				    new_id, spec->store_active_set,
				    spec->store_sentinel.master_name)
		     : spec->store_address /* NULL: a keyStoreRef not resolved (plan -f alone) */
			 ? add_line(arr, err, "activate key %s in %s at %s", new_id,
				    spec->store_active_set, spec->store_address)
			 : add_line(arr, err, "activate key %s in the key store of %s %s", new_id,
				    kr_store_ref_kind_name(spec->store_ref_kind),
				    spec->store_ref_name);
	if (rc == KR_OK)
		rc = add_line(arr, err, "write Secret %s/%s key %s", ns, spec->secret_name,
			      spec->secret_key);
	return rc;
}

enum kr_status kr_rotation_plan(const struct kr_rotation_spec *spec, const char *ns,
				const char *name, const char *new_id, const char *old_id,
				bool emergency, cJSON **out, struct kr_error *err)
{
	bool gated = !emergency && spec->analysis.source != KR_ANALYSIS_NONE;
	char dur[KR_DURATION_BUFSZ];
	cJSON *arr = cJSON_CreateArray();
	enum kr_status rc;

	*out = NULL;
	if (!arr)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	new_id = new_id && new_id[0] ? new_id : "<new id>";
	old_id = old_id && old_id[0] ? old_id : "<current id>";
	ns = ns ? ns : "default";
	name = name ? name : "keyrotation";
	rc = add_start(arr, spec, ns, name, new_id, gated, err);
	if (rc == KR_OK && emergency)
		rc = add_revoke(arr, spec, old_id, true, err);
	for (size_t i = 0; rc == KR_OK && i < spec->n_stages; i++)
		rc = add_stage(arr, spec, i, new_id, gated, emergency, err);
	if (rc == KR_OK && !emergency) {
		kr_duration_format(spec->validation_period_ms, dur, sizeof(dur));
		rc = add_line(arr, err, "validate for %s%s", dur,
			      gated ? " while measuring the 401 rate" : "");
		if (rc == KR_OK)
			rc = add_revoke(arr, spec, old_id, false, err);
	}
	if (rc == KR_OK)
		rc = add_line(arr, err,
			      "finish: key %s becomes current; clear Secret %s/%s-rotation", new_id,
			      ns, name);
	if (rc != KR_OK) {
		cJSON_Delete(arr);
		return rc;
	}
	*out = arr;
	return KR_OK;
}

static bool starts_with(const cJSON *line, const char *prefix)
{
	return cJSON_IsString(line) && !strncmp(line->valuestring, prefix, strlen(prefix));
}

enum kr_status kr_rotation_plan_unlisted(const struct kr_rotation_spec *spec, const char *ns,
					 const struct kr_unlisted *u, size_t n, bool emergency,
					 cJSON *plan, struct kr_error *err)
{
	char list[900] = "";
	size_t used = 0;
	bool hold = !emergency && spec->unlisted_policy == KR_UNLISTED_HOLD_REVOKE;
	const cJSON *line;
	cJSON *tmp;
	int at = 0;

	if (!n)
		return KR_OK;
	for (size_t i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s/%s", i ? ", " : "",
					 u[i].kind, u[i].name);
	tmp = cJSON_CreateArray();
	if (!tmp || add_line(tmp, err,
			     "%s: %s read%s Secret %s/%s and no stage lists %s (unlistedConsumers: "
			     "%s%s)",
			     hold ? "hold the revoke while" : "the revoke locks out", list,
			     n == 1 ? "s" : "", ns ? ns : "default", spec->secret_name,
			     n == 1 ? "it" : "them", hold ? "HoldRevoke" : "Ignore",
			     hold ? "; a CronJob only while a Job of it runs" : "") != KR_OK) {
		cJSON_Delete(tmp);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	cJSON_ArrayForEach(line, plan)
	{
		if (starts_with(line, "pause before the revoke") ||
		    starts_with(line, "wait until key") || starts_with(line, "revoke key"))
			break;
		at++;
	}
	/* The lines from `at` on move behind the new one (cJSON 1.7.15 cannot insert in the
	 * middle of an array). */
	while (cJSON_GetArraySize(plan) > at)
		cJSON_AddItemToArray(tmp, cJSON_DetachItemFromArray(plan, at));
	while (cJSON_GetArraySize(tmp) > 0)
		cJSON_AddItemToArray(plan, cJSON_DetachItemFromArray(tmp, 0));
	cJSON_Delete(tmp);
	return KR_OK;
}
