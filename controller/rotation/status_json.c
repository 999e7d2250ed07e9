/* status_json.c - a KeyRotation's .status as JSON: decode into the model, encode it back. */
#include <math.h> /* isfinite: a macro, no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/schedule.h"
#include "json/json.h"
#include "rotation/status_json.h"

#define PATH_MAX_LEN 96

/* ---- decoding helpers ------------------------------------------------------------ */

/* Text of `field` into buf; `strict`: refuse over-long text instead of truncating. */
static enum kr_status get_text(const cJSON *obj, const char *path, const char *field, char *buf,
			       size_t size, bool strict, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);

	buf[0] = '\0';
	if (!v)
		return KR_OK;
	if (!cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be a string", path, field);
	if (strict && strlen(v->valuestring) >= size)
		return kr_error_set(err, KR_EINVAL, "%s.%s: longer than %zu characters", path,
				    field, size - 1);
	snprintf(buf, size, "%s", v->valuestring);
	return KR_OK;
}

static enum kr_status get_time(const cJSON *obj, const char *path, const char *field, time_t *out,
			       struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);
	enum kr_status rc;

	*out = 0;
	if (!v)
		return KR_OK;
	if (!cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an RFC3339 time string", path,
				    field);
	rc = kr_time_parse_rfc3339(v->valuestring, out, err);
	if (rc != KR_OK)
		kr_error_prefix(err, "%s.%s: ", path, field);
	return rc;
}

static enum kr_status get_int(const cJSON *obj, const char *path, const char *field, int64_t def,
			      int64_t *out, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);

	*out = def;
	if (!v)
		return KR_OK;
	/* range first: the cast is only defined for values that fit */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9007199254740992.0) ||
	    !(v->valuedouble <= 9007199254740992.0) ||
	    (double)(int64_t)v->valuedouble != v->valuedouble)
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an integer", path, field);
	*out = (int64_t)v->valuedouble;
	return KR_OK;
}

/* An int-sized integer. */
static enum kr_status get_int32(const cJSON *obj, const char *path, const char *field, int def,
				int *out, struct kr_error *err)
{
	int64_t v;
	enum kr_status rc = get_int(obj, path, field, def, &v, err);

	if (rc != KR_OK)
		return rc;
	if (v < -2147483647 || v > 2147483647)
		return kr_error_set(err, KR_EINVAL, "%s.%s: %lld is out of range", path, field,
				    (long long)v);
	*out = (int)v;
	return KR_OK;
}

/* A rate kept as text ("0.02"). */
static enum kr_status get_rate(const cJSON *obj, const char *path, const char *field, bool *has,
			       double *out, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);
	char *end = NULL;

	*has = false;
	*out = 0;
	if (!v)
		return KR_OK;
	if (!cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be a string", path, field);
	*out = strtod(v->valuestring, &end);
	if (end == v->valuestring || *end != '\0' || !isfinite(*out))
		return kr_error_set(err, KR_EINVAL, "%s.%s: \"%.32s\" is not a number", path, field,
				    v->valuestring);
	*has = true;
	return KR_OK;
}

/* obj's member `field` as an object (NULL when absent); KR_EINVAL if it is something else. */
static enum kr_status get_object(const cJSON *obj, const char *path, const char *field,
				 const cJSON **out, struct kr_error *err)
{
	*out = kr_jr_member(obj, field);
	if (*out && !cJSON_IsObject(*out))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an object", path, field);
	return KR_OK;
}

static enum kr_status get_array(const cJSON *obj, const char *path, const char *field,
				const cJSON **out, struct kr_error *err)
{
	*out = kr_jr_member(obj, field);
	if (*out && !cJSON_IsArray(*out))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an array", path, field);
	return KR_OK;
}

/* ---- decoding -------------------------------------------------------------------- */

static enum kr_status decode_key(const cJSON *status, const char *field, struct kr_key_ref *key,
				 char *label, size_t label_size, struct kr_error *err)
{
	char path[PATH_MAX_LEN];
	const cJSON *obj;
	enum kr_status rc;

	memset(key, 0, sizeof(*key));
	if (label)
		label[0] = '\0';
	rc = get_object(status, "status", field, &obj, err);
	if (rc != KR_OK || !obj)
		return rc;
	snprintf(path, sizeof(path), "status.%s", field);
	rc = get_text(obj, path, "id", key->id, sizeof(key->id), true, err);
	if (rc == KR_OK)
		rc = get_time(obj, path, "createdAt", &key->created_at, err);
	if (rc == KR_OK && label)
		rc = get_text(obj, path, "label", label, label_size, false, err);
	return rc;
}

static enum kr_status decode_enums(const cJSON *rot, const char *path,
				   struct kr_rotation_progress *p, struct kr_error *err)
{
	char text[64];
	enum kr_status rc;

	rc = get_text(rot, path, "trigger", text, sizeof(text), false, err);
	if (rc != KR_OK)
		return rc;
	p->trigger = kr_trigger_parse(text);
	rc = get_text(rot, path, "step", text, sizeof(text), false, err);
	if (rc != KR_OK)
		return rc;
	p->step = kr_step_parse(text);
	rc = get_text(rot, path, "stage", text, sizeof(text), false, err); /* type check only */
	if (rc != KR_OK)
		return rc;
	rc = get_text(rot, path, "outcome", text, sizeof(text), false, err);
	if (rc != KR_OK)
		return rc;
	p->outcome = kr_outcome_parse(text);
	return KR_OK;
}

static enum kr_status decode_rotation(const cJSON *status, struct kr_rotation_progress *p,
				      struct kr_error *err)
{
	const char *path = "status.rotation";
	const cJSON *rot;
	enum kr_status rc;

	rc = get_object(status, "status", "rotation", &rot, err);
	if (rc != KR_OK || !rot)
		return rc;
	rc = decode_enums(rot, path, p, err);
	if (rc == KR_OK)
		rc = get_time(rot, path, "startedAt", &p->started_at, err);
	if (rc == KR_OK)
		rc = get_int32(rot, path, "stageIndex", -1, &p->stage_index, err);
	if (rc == KR_OK)
		rc = get_time(rot, path, "stageStartedAt", &p->stage_started_at, err);
	if (rc == KR_OK)
		rc = get_time(rot, path, "windowStartedAt", &p->window_started_at, err);
	if (rc == KR_OK)
		rc = get_time(rot, path, "lastMeasurementTime", &p->last_measured_at, err);
	if (rc == KR_OK)
		rc = get_rate(rot, path, "baseline", &p->has_baseline, &p->baseline, err);
	if (rc == KR_OK)
		rc = get_int32(rot, path, "consecutiveFailures", 0, &p->failures, err);
	if (rc == KR_OK)
		rc = get_int32(rot, path, "consecutiveErrors", 0, &p->errors, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(rot, path, "oldKeyRevoked", &p->old_revoked, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(rot, path, "newKeyRevoked", &p->new_revoked, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(rot, path, "promoted", &p->promoted, err);
	if (rc == KR_OK)
		rc = get_text(rot, path, "reason", p->reason, sizeof(p->reason), false, err);
	return rc;
}

/* status.unlistedConsumers: [{kind, name}], at most KR_ROT_UNLISTED_MAX kept. */
static enum kr_status decode_unlisted(const cJSON *s, struct kr_rotation_status *st,
				      struct kr_error *err)
{
	const cJSON *arr, *it;
	enum kr_status rc;

	st->n_unlisted = 0;
	rc = get_array(s, "status", "unlistedConsumers", &arr, err);
	cJSON_ArrayForEach(it, arr)
	{
		struct kr_unlisted *u = &st->unlisted[st->n_unlisted];

		if (rc != KR_OK || st->n_unlisted >= KR_ROT_UNLISTED_MAX)
			break;
		if (!cJSON_IsObject(it))
			return kr_error_set(err, KR_EINVAL,
					    "status.unlistedConsumers: must hold objects");
		rc = get_text(it, "status.unlistedConsumers", "kind", u->kind, sizeof(u->kind),
			      false, err);
		if (rc == KR_OK)
			rc = get_text(it, "status.unlistedConsumers", "name", u->name,
				      sizeof(u->name), false, err);
		st->n_unlisted++;
	}
	return rc;
}

static bool add_unlisted(cJSON *s, const struct kr_rotation_status *st)
{
	cJSON *arr, *o;

	if (!st->n_unlisted)
		return true;
	arr = cJSON_AddArrayToObject(s, "unlistedConsumers");
	for (size_t i = 0; arr && i < st->n_unlisted; i++) {
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o) ||
		    !cJSON_AddStringToObject(o, "kind", st->unlisted[i].kind) ||
		    !cJSON_AddStringToObject(o, "name", st->unlisted[i].name))
			return false;
	}
	return arr != NULL;
}

static enum kr_status decode_top(const cJSON *s, struct kr_rotation_status *st,
				 struct kr_error *err)
{
	const char *path = "status";
	char phase[64];
	enum kr_status rc;

	rc = get_int(s, path, "observedGeneration", 0, &st->observed_generation, err);
	if (rc == KR_OK)
		rc = get_text(s, path, "phase", phase, sizeof(phase), false, err);
	if (rc == KR_OK)
		st->phase = kr_phase_parse(phase);
	if (rc == KR_OK)
		rc = get_time(s, path, "lastRotationTime", &st->last_rotation_time, err);
	if (rc == KR_OK)
		rc = get_time(s, path, "nextRotationTime", &st->next_rotation_time, err);
	if (rc == KR_OK)
		rc = get_text(s, path, "lastHandledRequest", st->last_handled_request,
			      sizeof(st->last_handled_request), true, err);
	if (rc == KR_OK)
		rc = get_text(s, path, "lastHandledEmergency", st->last_handled_emergency,
			      sizeof(st->last_handled_emergency), true, err);
	if (rc == KR_OK)
		rc = get_text(s, path, "lastHandledAbort", st->last_handled_abort,
			      sizeof(st->last_handled_abort), true, err);
	if (rc == KR_OK)
		rc = get_text(s, path, "lastHandledPromote", st->last_handled_promote,
			      sizeof(st->last_handled_promote), true, err);
	if (rc == KR_OK)
		rc = get_rate(s, path, "unauthorizedRate", &st->has_rate, &st->unauthorized_rate,
			      err);
	if (rc == KR_OK)
		rc = get_int32(s, path, "unknownMembers", 0, &st->unknown_members, err);
	if (rc == KR_OK)
		rc = decode_unlisted(s, st, err);
	return rc;
}

static enum kr_status decode_status(const cJSON *s, struct kr_status_doc *doc, struct kr_error *err)
{
	struct kr_rotation_status *st = &doc->status;
	enum kr_status rc;

	if (!s || cJSON_IsNull(s))
		return KR_OK;
	if (!cJSON_IsObject(s))
		return kr_error_set(err, KR_EINVAL, "status: must be an object");
	rc = decode_top(s, st, err);
	if (rc == KR_OK)
		rc = decode_key(s, "currentKey", &st->current_key, doc->current_label,
				sizeof(doc->current_label), err);
	if (rc == KR_OK)
		rc = decode_key(s, "pendingKey", &st->pending_key, doc->pending_label,
				sizeof(doc->pending_label), err);
	if (rc == KR_OK)
		rc = decode_key(s, "previousKey", &st->previous_key, doc->previous_label,
				sizeof(doc->previous_label), err);
	if (rc == KR_OK)
		rc = decode_rotation(s, &st->rotation, err);
	return rc;
}

static enum kr_status decode_condition(const cJSON *item, const char *path,
				       struct kr_status_condition *conds, struct kr_error *err)
{
	struct kr_status_condition c;
	char type[64], status[16];
	enum kr_status rc;
	int t;

	memset(&c, 0, sizeof(c));
	c.set = true;
	if (!cJSON_IsObject(item))
		return kr_error_set(err, KR_EINVAL, "%s: must be an object", path);
	rc = get_text(item, path, "type", type, sizeof(type), false, err);
	if (rc == KR_OK)
		rc = get_text(item, path, "status", status, sizeof(status), false, err);
	if (rc == KR_OK)
		rc = get_int(item, path, "observedGeneration", 0, &c.observed_generation, err);
	if (rc == KR_OK)
		rc = get_time(item, path, "lastTransitionTime", &c.last_transition, err);
	if (rc == KR_OK)
		rc = get_text(item, path, "reason", c.reason, sizeof(c.reason), false, err);
	if (rc == KR_OK)
		rc = get_text(item, path, "message", c.message, sizeof(c.message), false, err);
	if (rc != KR_OK)
		return rc;
	c.status = strcmp(status, "True") == 0	  ? KR_COND_TRUE
		   : strcmp(status, "False") == 0 ? KR_COND_FALSE
						  : KR_COND_UNKNOWN;
	for (t = 0; t < KR_COND_COUNT; t++)
		if (strcmp(type, kr_cond_type_name((enum kr_cond_type)t)) == 0)
			conds[t] = c; /* other types are not ours: ignored */
	return KR_OK;
}

static enum kr_status decode_history_entry(const cJSON *item, const char *path,
					   struct kr_history_entry *h, struct kr_error *err)
{
	char text[64];
	enum kr_status rc;

	memset(h, 0, sizeof(*h));
	if (!cJSON_IsObject(item))
		return kr_error_set(err, KR_EINVAL, "%s: must be an object", path);
	rc = get_text(item, path, "keyId", h->key_id, sizeof(h->key_id), true, err);
	if (rc == KR_OK)
		rc = get_text(item, path, "trigger", text, sizeof(text), false, err);
	if (rc == KR_OK)
		h->trigger = kr_trigger_parse(text);
	if (rc == KR_OK)
		rc = get_time(item, path, "activatedAt", &h->activated_at, err);
	if (rc == KR_OK)
		rc = get_time(item, path, "revokedAt", &h->revoked_at, err);
	if (rc == KR_OK)
		rc = get_text(item, path, "outcome", text, sizeof(text), false, err);
	if (rc == KR_OK)
		h->outcome = kr_outcome_parse(text);
	if (rc == KR_OK)
		rc = get_text(item, path, "reason", h->reason, sizeof(h->reason), false, err);
	return rc;
}

static enum kr_status decode_lists(const cJSON *s, struct kr_status_doc *doc, struct kr_error *err)
{
	char path[PATH_MAX_LEN];
	const cJSON *arr, *item;
	enum kr_status rc;
	size_t i = 0;

	rc = get_array(s, "status", "conditions", &arr, err);
	if (rc != KR_OK)
		return rc;
	cJSON_ArrayForEach(item, arr)
	{
		snprintf(path, sizeof(path), "status.conditions[%zu]", i++);
		rc = decode_condition(item, path, doc->conditions, err);
		if (rc != KR_OK)
			return rc;
	}
	rc = get_array(s, "status", "history", &arr, err);
	if (rc != KR_OK)
		return rc;
	i = 0;
	cJSON_ArrayForEach(item, arr)
	{
		/* keep the newest KR_STATUS_HISTORY_MAX: drop from the front */
		if (doc->n_history == KR_STATUS_HISTORY_MAX)
			memmove(doc->history, doc->history + 1,
				--doc->n_history * sizeof(doc->history[0]));
		snprintf(path, sizeof(path), "status.history[%zu]", i++);
		rc = decode_history_entry(item, path, &doc->history[doc->n_history++], err);
		if (rc != KR_OK)
			return rc;
	}
	return rc;
}

/* stages and plan: carried through, shape checked. */
static enum kr_status decode_passthrough(const cJSON *s, struct kr_status_doc *doc,
					 struct kr_error *err)
{
	const cJSON *stages, *plan, *item;
	enum kr_status rc;
	size_t i = 0;

	rc = get_array(s, "status", "stages", &stages, err);
	if (rc == KR_OK)
		rc = get_array(s, "status", "plan", &plan, err);
	if (rc != KR_OK)
		return rc;
	cJSON_ArrayForEach(item, stages)
	{
		if (!cJSON_IsObject(item))
			return kr_error_set(err, KR_EINVAL, "status.stages[%zu]: must be an object",
					    i);
		i++;
	}
	i = 0;
	cJSON_ArrayForEach(item, plan)
	{
		if (!cJSON_IsString(item))
			return kr_error_set(err, KR_EINVAL, "status.plan[%zu]: must be a string",
					    i);
		i++;
	}
	if (stages && !(doc->stages = cJSON_Duplicate(stages, 1)))
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (plan && !(doc->plan = cJSON_Duplicate(plan, 1)))
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	return KR_OK;
}

void kr_status_doc_init(struct kr_status_doc *doc)
{
	memset(doc, 0, sizeof(*doc));
	kr_rotation_status_init(&doc->status);
}

void kr_status_doc_release(struct kr_status_doc *doc)
{
	cJSON_Delete(doc->stages);
	cJSON_Delete(doc->plan);
	kr_status_doc_init(doc);
}

enum kr_status kr_status_doc_decode(const cJSON *status, struct kr_status_doc *out,
				    struct kr_error *err)
{
	enum kr_status rc;

	kr_status_doc_init(out);
	rc = decode_status(status, out, err);
	if (rc == KR_OK && cJSON_IsObject(status))
		rc = decode_lists(status, out, err);
	if (rc == KR_OK && cJSON_IsObject(status))
		rc = decode_passthrough(status, out, err);
	if (rc != KR_OK)
		kr_status_doc_release(out);
	return rc;
}

enum kr_status kr_rotation_status_decode(const cJSON *status, struct kr_rotation_status *out,
					 struct kr_error *err)
{
	struct kr_status_doc *doc = malloc(sizeof(*doc));
	enum kr_status rc;

	if (!doc)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	kr_status_doc_init(doc);
	rc = decode_status(status, doc, err);
	*out = doc->status;
	if (rc != KR_OK)
		kr_rotation_status_init(out);
	kr_status_doc_release(doc);
	free(doc);
	return rc;
}

/* ---- encoding -------------------------------------------------------------------- */

/* Each add_* returns false on failure (out of memory, or a time out of range). */
static bool add_text(cJSON *obj, const char *field, const char *text)
{
	return !text || !text[0] || cJSON_AddStringToObject(obj, field, text);
}

static bool add_time(cJSON *obj, const char *field, time_t t)
{
	char buf[KR_RFC3339_BUFSZ];

	if (t == 0)
		return true;
	return kr_time_format_rfc3339(t, buf, sizeof(buf)) == KR_OK &&
	       cJSON_AddStringToObject(obj, field, buf);
}

static bool add_int(cJSON *obj, const char *field, int64_t v)
{
	return v == 0 || cJSON_AddNumberToObject(obj, field, (double)v);
}

static bool add_bool(cJSON *obj, const char *field, bool v)
{
	return !v || cJSON_AddTrueToObject(obj, field);
}

/* The shortest text that reads back as the same double. */
static bool add_rate(cJSON *obj, const char *field, bool has, double v)
{
	char buf[40];

	if (!has)
		return true;
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	return cJSON_AddStringToObject(obj, field, buf);
}

static cJSON *add_object(cJSON *parent, const char *field)
{
	return cJSON_AddObjectToObject(parent, field);
}

static bool add_key(cJSON *status, const char *field, const struct kr_key_ref *key,
		    const char *label)
{
	cJSON *obj;

	if (!key->id[0] && key->created_at == 0 && (!label || !label[0]))
		return true;
	obj = add_object(status, field);
	return obj && add_text(obj, "id", key->id) && add_time(obj, "createdAt", key->created_at) &&
	       add_text(obj, "label", label);
}

static bool rotation_empty(const struct kr_rotation_progress *p)
{
	return !p->trigger && !p->started_at && !p->step && p->stage_index < 0 &&
	       !p->stage_started_at && !p->window_started_at && !p->last_measured_at &&
	       !p->has_baseline && !p->failures && !p->errors && !p->old_revoked &&
	       !p->new_revoked && !p->promoted && !p->outcome && !p->reason[0];
}

static bool add_progress(cJSON *rot, const struct kr_rotation_progress *p)
{
	return add_time(rot, "stageStartedAt", p->stage_started_at) &&
	       add_time(rot, "windowStartedAt", p->window_started_at) &&
	       add_time(rot, "lastMeasurementTime", p->last_measured_at) &&
	       add_rate(rot, "baseline", p->has_baseline, p->baseline) &&
	       add_int(rot, "consecutiveFailures", p->failures) &&
	       add_int(rot, "consecutiveErrors", p->errors) &&
	       add_bool(rot, "oldKeyRevoked", p->old_revoked) &&
	       add_bool(rot, "newKeyRevoked", p->new_revoked) &&
	       add_bool(rot, "promoted", p->promoted) &&
	       add_text(rot, "outcome", kr_outcome_name(p->outcome)) &&
	       add_text(rot, "reason", p->reason);
}

static bool add_rotation(cJSON *status, const struct kr_rotation_progress *p,
			 const struct kr_rotation_spec *spec)
{
	const char *stage = NULL;
	cJSON *rot;

	if (rotation_empty(p))
		return true;
	if (spec && p->stage_index >= 0 && (size_t)p->stage_index < spec->n_stages)
		stage = spec->stages[p->stage_index].name;
	rot = add_object(status, "rotation");
	return rot && add_text(rot, "trigger", kr_trigger_name(p->trigger)) &&
	       add_time(rot, "startedAt", p->started_at) &&
	       add_text(rot, "step", kr_step_name(p->step)) && add_text(rot, "stage", stage) &&
	       (p->stage_index < 0 || cJSON_AddNumberToObject(rot, "stageIndex", p->stage_index)) &&
	       add_progress(rot, p);
}

static bool add_status(cJSON *s, const struct kr_rotation_status *st, const char *const labels[3],
		       const struct kr_rotation_spec *spec)
{
	return add_int(s, "observedGeneration", st->observed_generation) &&
	       cJSON_AddStringToObject(s, "phase", kr_phase_name(st->phase)) &&
	       add_key(s, "currentKey", &st->current_key, labels[0]) &&
	       add_key(s, "pendingKey", &st->pending_key, labels[1]) &&
	       add_key(s, "previousKey", &st->previous_key, labels[2]) &&
	       add_rotation(s, &st->rotation, spec) &&
	       add_time(s, "lastRotationTime", st->last_rotation_time) &&
	       add_time(s, "nextRotationTime", st->next_rotation_time) &&
	       add_text(s, "lastHandledRequest", st->last_handled_request) &&
	       add_text(s, "lastHandledEmergency", st->last_handled_emergency) &&
	       add_text(s, "lastHandledAbort", st->last_handled_abort) &&
	       add_text(s, "lastHandledPromote", st->last_handled_promote) &&
	       add_rate(s, "unauthorizedRate", st->has_rate, st->unauthorized_rate) &&
	       add_int(s, "unknownMembers", st->unknown_members) && add_unlisted(s, st);
}

static bool add_conditions(cJSON *s, const struct kr_status_condition *conds)
{
	cJSON *arr = NULL, *c;
	char time_buf[KR_RFC3339_BUFSZ];

	for (int t = 0; t < KR_COND_COUNT; t++) {
		if (!conds[t].set)
			continue;
		if (!arr && !(arr = cJSON_AddArrayToObject(s, "conditions")))
			return false;
		if (kr_time_format_rfc3339(conds[t].last_transition, time_buf, sizeof(time_buf)))
			return false;
		c = cJSON_CreateObject();
		if (!c || !cJSON_AddItemToArray(arr, c))
			return cJSON_Delete(c), false;
		if (!cJSON_AddStringToObject(c, "type", kr_cond_type_name((enum kr_cond_type)t)) ||
		    !cJSON_AddStringToObject(c, "status", kr_cond_status_name(conds[t].status)) ||
		    !add_int(c, "observedGeneration", conds[t].observed_generation) ||
		    !cJSON_AddStringToObject(c, "lastTransitionTime", time_buf) ||
		    !cJSON_AddStringToObject(c, "reason", conds[t].reason) ||
		    !cJSON_AddStringToObject(c, "message", conds[t].message))
			return false;
	}
	return true;
}

static bool add_history(cJSON *s, const struct kr_history_entry *hist, size_t n)
{
	cJSON *arr, *h;

	if (n == 0)
		return true;
	arr = cJSON_AddArrayToObject(s, "history");
	for (size_t i = 0; arr && i < n; i++) {
		h = cJSON_CreateObject();
		if (!h || !cJSON_AddItemToArray(arr, h))
			return cJSON_Delete(h), false;
		if (!add_text(h, "keyId", hist[i].key_id) ||
		    !add_text(h, "trigger", kr_trigger_name(hist[i].trigger)) ||
		    !add_time(h, "activatedAt", hist[i].activated_at) ||
		    !add_time(h, "revokedAt", hist[i].revoked_at) ||
		    !add_text(h, "outcome", kr_outcome_name(hist[i].outcome)) ||
		    !add_text(h, "reason", hist[i].reason))
			return false;
	}
	return arr != NULL;
}

static bool add_copy(cJSON *s, const char *field, const cJSON *arr)
{
	cJSON *copy;

	if (!arr)
		return true;
	copy = cJSON_Duplicate(arr, 1);
	if (!copy || !cJSON_AddItemToObject(s, field, copy))
		return cJSON_Delete(copy), false;
	return true;
}

/* Why encoding failed: the only non-memory cause is a time outside years 0000-9999. */
static enum kr_status encode_failed(cJSON **out, struct kr_error *err)
{
	cJSON_Delete(*out);
	*out = NULL;
	return kr_error_set(err, KR_EINVAL,
			    "status: cannot encode (a time outside years 0000-9999, or out of "
			    "memory)");
}

enum kr_status kr_status_doc_encode(const struct kr_status_doc *doc,
				    const struct kr_rotation_spec *spec, cJSON **out,
				    struct kr_error *err)
{
	const char *const labels[3] = {doc->current_label, doc->pending_label, doc->previous_label};

	*out = cJSON_CreateObject();
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (!add_status(*out, &doc->status, labels, spec) ||
	    !add_copy(*out, "stages", doc->stages) || !add_copy(*out, "plan", doc->plan) ||
	    !add_conditions(*out, doc->conditions) ||
	    !add_history(*out, doc->history, doc->n_history))
		return encode_failed(out, err);
	return KR_OK;
}

enum kr_status kr_rotation_status_encode(const struct kr_rotation_status *st,
					 const struct kr_rotation_spec *spec, cJSON **out,
					 struct kr_error *err)
{
	const char *const labels[3] = {NULL, NULL, NULL};

	*out = cJSON_CreateObject();
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (!add_status(*out, st, labels, spec))
		return encode_failed(out, err);
	return KR_OK;
}

bool kr_status_json_same(const cJSON *current, const cJSON *next)
{
	if (!current || cJSON_IsNull(current))
		current = NULL;
	if (!next || cJSON_IsNull(next))
		next = NULL;
	if (!current || !next)
		return current == next;
	return cJSON_Compare(current, next, 1);
}

/* ---- conditions ------------------------------------------------------------------ */

void kr_conditions_merge(const struct kr_status_condition old[KR_COND_COUNT],
			 const struct kr_condition next[KR_COND_COUNT], int64_t generation,
			 time_t now, struct kr_status_condition out[KR_COND_COUNT])
{
	for (int t = 0; t < KR_COND_COUNT; t++) {
		struct kr_status_condition c = old[t];

		if (next[t].reason[0]) {
			if (!c.set || c.status != next[t].status)
				c.last_transition = now;
			c.set = true;
			c.status = next[t].status;
			c.observed_generation = generation;
			snprintf(c.reason, sizeof(c.reason), "%s", next[t].reason);
			snprintf(c.message, sizeof(c.message), "%s", next[t].message);
		}
		out[t] = c;
	}
}
