/* record.c - after an action: status via /status (only when it changes), Events, metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconciler/internal.h"
#include "rotation/schedule.h"

/* ---- Events ---- */

/*
 * Queued to the controller's Event recorder (runtime/events.h), which writes it off this
 * thread and counts repeats up; only the log line is written here and now.
 */
void kr_world_event(struct kr_world *w, bool warning, const char *reason, const char *message)
{
	const struct kr_event_object obj = {"keyrotator.io/v1alpha1", "KeyRotation", w->ns,
					    w->name, w->uid};

	if (w->r->ctl && kr_world_fenced(w, NULL) == KR_OK)
		kr_events_emit(kr_controller_events(w->r->ctl), &obj, warning, reason, message);
	KR_LOG(warning ? KR_LOG_WARN : KR_LOG_INFO, w->log, "event %s: %s", reason, message);
}

/* ---- status ---- */

/* The next .status from the action over the doc as read; owned by w->doc. */
static enum kr_status next_doc(struct kr_world *w, const struct kr_action *a, struct kr_error *err)
{
	struct kr_status_doc *d = &w->doc;

	if (a->status_changed)
		d->status = a->status;
	d->status.observed_generation = w->obs.generation;
	kr_conditions_merge(d->conditions, a->conditions, w->obs.generation, w->obs.now,
			    d->conditions);
	if (!w->have_spec)
		return KR_OK;
	if (a->type == KR_ACTION_REVOKE_OLD || a->type == KR_ACTION_REVOKE_NEW)
		kr_status_doc_mark_revoked(d, a->key_id, w->obs.now);
	if (a->has_history)
		kr_status_doc_add_history(d, &a->history, w->spec.history_limit);
	cJSON_Delete(d->stages);
	d->stages = kr_status_stages(&w->spec, w->wls, &d->status);
	if (a->type == KR_ACTION_PLAN) {
		cJSON_Delete(d->plan);
		d->plan = NULL;
		enum kr_status rc = kr_rotation_plan(
		    &w->spec, w->ns, w->name, NULL,
		    d->status.current_key.id[0] ? d->status.current_key.id : w->obs.consumer.key_id,
		    false, &d->plan, err);

		if (rc == KR_OK)
			rc = kr_rotation_plan_unlisted(&w->spec, w->ns, w->obs.unlisted,
						       w->obs.n_unlisted, false, d->plan, err);
		return rc;
	}
	if (!w->spec.dry_run) {
		cJSON_Delete(d->plan);
		d->plan = NULL;
	}
	return KR_OK;
}

/* PUT /status when the encoded status differs from the one read. *written = 1 if so. */
static enum kr_status write_status(struct kr_world *w, bool *written, struct kr_error *err)
{
	const cJSON *cur = cJSON_GetObjectItemCaseSensitive(w->kr, "status");
	cJSON *next = NULL, *body, *out = NULL;
	enum kr_status rc;

	*written = false;
	rc = kr_status_doc_encode(&w->doc, w->have_spec ? &w->spec : NULL, &next, err);
	if (rc != KR_OK)
		return rc;
	if (kr_status_json_same(cur, next)) {
		cJSON_Delete(next);
		return KR_OK;
	}
	rc = kr_world_fenced(w, err);
	if (rc != KR_OK) {
		cJSON_Delete(next);
		return rc;
	}
	body = cJSON_Duplicate(w->kr, 1);
	if (!body) {
		cJSON_Delete(next);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
	cJSON_AddItemToObject(body, "status", next);
	rc = kr_kube_update_status(w->client, &kr_kube_keyrotations, w->ns, w->name, body, &out,
				   err);
	cJSON_Delete(body);
	if (rc != KR_OK)
		return kr_error_prefix(err, "status of KeyRotation %s/%s: ", w->ns, w->name);
	if (out) { /* the object as written: the next step starts from it */
		cJSON_Delete(w->written[KR_CARRY_KR]);
		w->written[KR_CARRY_KR] = out;
		w->wrote[KR_CARRY_KR] = true;
	}
	*written = true;
	return KR_OK;
}

static const char *outcome_label(enum kr_outcome o)
{
	switch (o) {
	case KR_OUTCOME_SUCCEEDED:
		return "succeeded";
	case KR_OUTCOME_ROLLED_BACK:
		return "rolled_back";
	default:
		return "failed";
	}
}

/* What status says now, as gauges alerts and dashboards can use (reconciler.h). */
static void record_state_metrics(struct kr_world *w)
{
	static const enum kr_phase phases[] = {KR_PHASE_IDLE,	    KR_PHASE_ROTATING,
					       KR_PHASE_VALIDATING, KR_PHASE_REVOKING,
					       KR_PHASE_ROLLING_BACK, KR_PHASE_FAILED};
	const struct kr_keyrotator_metrics *fam = &w->r->fam;
	const struct kr_rotation_status *st = &w->doc.status;
	const struct kr_rotation_progress *rot = &st->rotation;
	const char *obj[] = {w->ns, w->name};

	kr_gauge_set(fam->ready, obj,
		     w->doc.conditions[KR_COND_READY].set &&
			     w->doc.conditions[KR_COND_READY].status == KR_COND_TRUE
			 ? 1
			 : 0);
	kr_gauge_set(fam->keystore_in_sync, obj,
		     w->doc.conditions[KR_COND_KEYSTORE_IN_SYNC].set &&
			     w->doc.conditions[KR_COND_KEYSTORE_IN_SYNC].status == KR_COND_TRUE
			 ? 1
			 : 0);
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		const char *ph[] = {w->ns, w->name, kr_phase_name(phases[i])};

		if (phases[i] == st->phase)
			kr_gauge_set(fam->phase, ph, 1);
		else
			kr_metric_delete(fam->phase, ph);
	}
	if (!w->have_spec)
		return;
	if (w->spec.max_key_age_ms > 0)
		kr_gauge_set(fam->max_key_age_seconds, obj, (double)w->spec.max_key_age_ms / 1000.0);
	else
		kr_metric_delete(fam->max_key_age_seconds, obj);
	if (st->phase == KR_PHASE_ROTATING && rot->step == KR_STEP_ROLLOUT &&
	    rot->stage_index >= 0 && (size_t)rot->stage_index < w->spec.n_stages &&
	    rot->stage_started_at > 0)
		kr_gauge_set(fam->stage_deadline_timestamp_seconds, obj,
			     (double)rot->stage_started_at +
				 (double)w->spec.stages[rot->stage_index].timeout_ms / 1000.0);
	else
		kr_metric_delete(fam->stage_deadline_timestamp_seconds, obj);
}

static void record_metrics(struct kr_world *w, const struct kr_action *a)
{
	const struct kr_keyrotator_metrics *fam = &w->r->fam;
	const struct kr_rotation_status *st = &w->doc.status;
	const char *obj[] = {w->ns, w->name};
	time_t born;

	record_state_metrics(w);
	if (st->has_rate)
		kr_gauge_set(fam->unauthorized_rate, obj, st->unauthorized_rate);
	/* Growing from now on: the age is true at every scrape, not only after a reconcile
	 * (an idle KeyRotation's comes at the resync period). */
	born = st->current_key.id[0] ? kr_rotation_key_born(st, w->obs.created_at) : 0;
	if (born > 0)
		kr_gauge_set_growing(fam->key_age_seconds, obj,
				     w->obs.now > born ? (double)(w->obs.now - born) : 0);
	if (a->has_history && (a->type == KR_ACTION_FINISH || a->type == KR_ACTION_FAIL_FINISH)) {
		kr_counter_inc(fam->rotations_total,
			       (const char *[]){outcome_label(a->history.outcome)});
		if (w->obs.status.rotation.started_at > 0)
			kr_histogram_observe(
			    fam->rotation_duration_seconds, NULL,
			    (double)(w->obs.now - w->obs.status.rotation.started_at));
	}
}

/* The Event reason of a step the decision gave no event of its own. */
static const char *step_reason(enum kr_action_type t)
{
	switch (t) {
	case KR_ACTION_GENERATE:
		return "KeyGenerated";
	case KR_ACTION_ACTIVATE:
		return "KeyActivated";
	case KR_ACTION_DISTRIBUTE:
		return "SecretUpdated";
	case KR_ACTION_RESTART_STAGE:
		return "StageRollingOut";
	case KR_ACTION_ADVANCE_STAGE:
		return "StageCompleted";
	case KR_ACTION_REVOKE_OLD:
		return "OldKeyRevoked";
	case KR_ACTION_ROLLBACK_SECRET:
		return "SecretRestored";
	case KR_ACTION_ROLLBACK_RESTART_STAGE:
		return "StageRollingBack";
	case KR_ACTION_REVOKE_NEW:
		return "NewKeyRevoked";
	case KR_ACTION_REPAIR_KEYSTORE:
		return "KeyStoreRepaired";
	case KR_ACTION_CLEANUP:
		return "RotationSecretDeleted";
	default:
		return "RotationProgress";
	}
}

static bool is_rollback(enum kr_action_type t)
{
	return t == KR_ACTION_ROLLBACK_SECRET || t == KR_ACTION_ROLLBACK_RESTART_STAGE ||
	       t == KR_ACTION_REVOKE_NEW || t == KR_ACTION_REPAIR_KEYSTORE;
}

enum kr_status kr_world_record(struct kr_world *w, const struct kr_action *a, bool acted,
			       struct kr_error *err)
{
	bool written = false;
	enum kr_status rc = next_doc(w, a, err);

	if (rc == KR_OK)
		rc = write_status(w, &written, err);
	if (rc != KR_OK)
		return rc;
	/* A hold or a refusal is logged (at debug otherwise) when it changes what status says. */
	if (written && (a->type == KR_ACTION_WAIT || a->type == KR_ACTION_REFUSE))
		KR_LOG(w->doc.conditions[KR_COND_DEGRADED].status == KR_COND_TRUE ? KR_LOG_WARN
										  : KR_LOG_INFO,
		       w->log, "%s: %s", kr_action_name(a->type), a->reason);
	if (a->event.set && (acted || written))
		kr_world_event(w, a->event.warning, a->event.reason, a->event.message);
	else if (acted || a->type == KR_ACTION_ADVANCE_STAGE)
		kr_world_event(w, is_rollback(a->type), step_reason(a->type), a->reason);
	if (w->r->ctl)
		record_metrics(w, a);
	return KR_OK;
}

void kr_world_record_failure(struct kr_world *w, const struct kr_action *a,
			     const struct kr_error *why)
{
	struct kr_action f = {.type = KR_ACTION_WAIT};
	struct kr_condition *c = &f.conditions[KR_COND_DEGRADED];
	struct kr_error e = {0};
	bool written = false;

	c->status = KR_COND_TRUE;
	snprintf(c->reason, sizeof(c->reason), "%s", "ActionFailed");
	snprintf(c->message, sizeof(c->message), "%s failed: %s", kr_action_name(a->type),
		 why->msg);
	if (next_doc(w, &f, &e) == KR_OK && write_status(w, &written, &e) == KR_OK && written)
		kr_world_event(w, true, "ActionFailed", c->message);
	else if (e.code != KR_OK)
		kr_log_warn(w->log, "could not record the failure: %s", e.msg);
}
