/* decide_rollback.c - the decision's rollback steps, measurement records and key store repair. */
#include <stdio.h>
#include <string.h>

#include "rotation/internal.h"

void kr_begin_rollback(const struct kr_observed *obs, struct kr_action *out, const char *reason)
{
	struct kr_rotation_progress *r = &out->status.rotation;

	snprintf(r->reason, KR_ROT_REASON_MAX, "%s", reason);
	r->outcome = KR_OUTCOME_ROLLED_BACK;
	r->window_started_at = 0; /* from here on: when the last stage had rolled back */
	/* Before anything changed (Baseline) there is nothing to roll back. */
	if (obs->status.rotation.step == KR_STEP_BASELINE) {
		r->outcome = KR_OUTCOME_FAILED;
		kr_set_step(obs, out, KR_STEP_FAIL_FINISH);
	} else {
		kr_set_step(obs, out, KR_STEP_ROLLBACK);
	}
	if (out->type == KR_ACTION_NONE)
		kr_act(out, KR_ACTION_ROLLBACK_BEGIN, "roll back: %s", reason);
	kr_event(out, true, "RollingBack", "rolling back: %s", reason);
}

/*
 * A hold on the analysis gate: its Degraded message is kept in status.rotation.reason, so
 * the decisions until the next measurement show it too (kr_hold_condition).
 */
static void hold_reason(struct kr_action *out)
{
	struct kr_rotation_progress *r = &out->status.rotation;

	if (r->outcome == KR_OUTCOME_NONE)
		snprintf(r->reason, KR_ROT_REASON_MAX, "%s",
			 out->conditions[KR_COND_DEGRADED].message);
}

void kr_hold_condition(struct kr_action *out)
{
	const struct kr_rotation_progress *r = &out->status.rotation;

	if (out->conditions[KR_COND_DEGRADED].reason[0] || r->outcome != KR_OUTCOME_NONE ||
	    !r->reason[0] ||
	    (r->step != KR_STEP_BASELINE && r->step != KR_STEP_ROLLOUT &&
	     r->step != KR_STEP_VALIDATE))
		return;
	if (r->errors)
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "AnalysisInconclusive", "%s",
			r->reason);
	else if (r->failures)
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "UnauthorizedRateHigh", "%s",
			r->reason);
}

static void record_value(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_analysis_spec *a = &obs->spec->analysis;
	struct kr_rotation_progress *r = &out->status.rotation;
	double rate = obs->measurement.rate, limit = r->baseline + a->threshold;
	char reason[KR_ROT_REASON_MAX];

	out->status.has_rate = true;
	out->status.unauthorized_rate = rate;
	r->errors = 0;
	if (r->outcome == KR_OUTCOME_NONE)
		r->reason[0] = '\0'; /* the hold, if any, is over */
	if (obs->status.rotation.step == KR_STEP_BASELINE) {
		r->has_baseline = true;
		r->baseline = rate;
		kr_enter_next(obs, out, KR_STEP_BASELINE);
		return;
	}
	r->failures = rate > limit ? r->failures + 1 : 0;
	if (r->failures >= a->failure_limit) {
		snprintf(reason, sizeof(reason),
			 "401 rate %.4g/s above baseline %.4g/s + threshold %.4g/s in %d "
			 "measurements in a row",
			 rate, r->baseline, a->threshold, r->failures);
		kr_begin_rollback(obs, out, reason);
	} else if (r->failures) {
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "UnauthorizedRateHigh",
			"401 rate %.4g/s above %.4g/s (%d of %d)", rate, limit, r->failures,
			a->failure_limit);
		hold_reason(out);
	}
}

static void record_inconclusive(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_analysis_spec *a = &obs->spec->analysis;
	struct kr_rotation_progress *r = &out->status.rotation;
	char reason[KR_ROT_REASON_MAX];

	r->errors++;
	if (r->errors >= a->error_limit) {
		snprintf(reason, sizeof(reason), "%d inconclusive measurements in a row: %.160s",
			 r->errors, obs->measurement.error);
		kr_begin_rollback(obs, out, reason);
		return;
	}
	kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "AnalysisInconclusive",
		"measurement %d of %d inconclusive: %s", r->errors, a->error_limit,
		obs->measurement.error);
	hold_reason(out);
}

void kr_record_measurement(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_progress *r = &out->status.rotation;
	time_t window = r->window_started_at;

	kr_act(out, KR_ACTION_RECORD_MEASUREMENT, "record measurement");
	out->requeue_after_ms = obs->spec->analysis.interval_ms;
	out->status_changed = true;
	if (obs->measurement.kind == KR_MEASUREMENT_VALUE)
		record_value(obs, out);
	else
		record_inconclusive(obs, out);
	if (r->step == obs->status.rotation.step) {
		r->last_measured_at = obs->now;
		r->window_started_at = window ? window : obs->now;
	}
}

/* ---- rollback -------------------------------------------------------------------- */

static size_t top_stage(const struct kr_observed *obs)
{
	int i = obs->status.rotation.stage_index;

	if (i < 0)
		return 0;
	return (size_t)i < obs->spec->n_stages ? (size_t)i : obs->spec->n_stages - 1;
}

/* Workloads of `stage` whose pod template carries key-id `id`. */
static uint64_t mask_with(const struct kr_observed *obs, size_t stage, const char *id)
{
	uint64_t mask = 0;

	for (size_t j = 0; j < obs->spec->stages[stage].n_workloads; j++) {
		const struct kr_observed_workload *wl = kr_wl(obs, stage, j);

		if (wl->exists && id[0] && strcmp(wl->key_id, id) == 0)
			mask |= UINT64_C(1) << j;
	}
	return mask;
}

/*
 * The highest rolled stage that still needs work: a workload on the new key (restart it),
 * or one on the old key whose rollout is not complete (wait). -1 when none: done.
 */
static int rollback_stage(const struct kr_observed *obs, bool *restart, char *msg, size_t size)
{
	const char *old = obs->rsecret.previous_id, *new = kr_new_id(obs);

	for (int i = (int)top_stage(obs); i >= 0; i--) {
		const struct kr_stage_spec *st = &obs->spec->stages[i];

		*restart = mask_with(obs, (size_t)i, new) != 0;
		if (*restart)
			return i;
		for (size_t j = 0; j < st->n_workloads; j++) {
			const struct kr_observed_workload *wl = kr_wl(obs, (size_t)i, j);

			if (!wl->exists || strcmp(wl->key_id, old) != 0)
				continue;
			if (kr_workload_rollout(st->workloads[j].kind, st->workloads[j].name, wl,
						old, msg, size) != KR_ROLLOUT_COMPLETE)
				return i;
		}
	}
	return -1;
}

bool kr_rollback_stages_done(const struct kr_observed *obs)
{
	char msg[8];
	bool restart;

	return obs->status.rotation.step == KR_STEP_ROLLBACK_STAGES &&
	       rollback_stage(obs, &restart, msg, sizeof(msg)) < 0;
}

static void rollback_secret(const struct kr_observed *obs, struct kr_action *out)
{
	kr_set_step(obs, out, KR_STEP_ROLLBACK_STAGES);
	snprintf(out->key_id, sizeof(out->key_id), "%s", obs->rsecret.previous_id);
	kr_act(out, KR_ACTION_ROLLBACK_SECRET, "write the old key %s back into Secret %s",
	       out->key_id, obs->spec->secret_name);
}

static void revoke_new(const struct kr_observed *obs, struct kr_action *out)
{
	out->status.rotation.new_revoked = true;
	kr_set_step(obs, out, KR_STEP_FAIL_FINISH);
	snprintf(out->key_id, sizeof(out->key_id), "%s", obs->rsecret.pending_id);
	kr_act(out, KR_ACTION_REVOKE_NEW, "revoke the new key %s", out->key_id);
}

/*
 * Every stage is back on the old key, but a pod of the new key that the rollback replaced is
 * counted nowhere and may serve with the new key for up to its grace period: the new key is
 * revoked that long after the last stage had rolled back (status.rotation.windowStartedAt).
 */
static bool new_key_drained(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_progress *r = &out->status.rotation;
	int64_t grace = kr_longest_grace(obs);
	time_t end;

	if (grace <= 0)
		return true;
	if (!r->window_started_at) {
		r->window_started_at = obs->now;
		out->status_changed = true;
	}
	end = r->window_started_at + (time_t)grace + 1;
	if (obs->now >= end)
		return true;
	kr_act(out, KR_ACTION_WAIT,
	       "rolling back: every stage is on key %s; the new key %s is revoked at %lld (its "
	       "pods may run %llds after their rollout: terminationGracePeriodSeconds)",
	       obs->rsecret.previous_id, obs->rsecret.pending_id, (long long)end,
	       (long long)grace);
	out->requeue_after_ms = kr_until_ms(obs->now, end);
	kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "RollingBack", "%s; both keys stay valid",
		out->reason);
	return false;
}

static void rollback_stages(const struct kr_observed *obs, struct kr_action *out)
{
	char msg[KR_ROT_MSG_MAX] = "";
	bool restart = false;
	int i;

	if (strcmp(obs->consumer.key_id, obs->rsecret.previous_id) != 0) {
		rollback_secret(obs, out);
		return;
	}
	i = rollback_stage(obs, &restart, msg, sizeof(msg));
	if (i < 0) {
		if (new_key_drained(obs, out))
			revoke_new(obs, out);
		return;
	}
	if (out->status.rotation.window_started_at) { /* a stage needs work again */
		out->status.rotation.window_started_at = 0;
		out->status_changed = true;
	}
	if (restart) {
		out->stage = i;
		out->workload_mask = mask_with(obs, (size_t)i, kr_new_id(obs));
		snprintf(out->key_id, sizeof(out->key_id), "%s", obs->rsecret.previous_id);
		kr_act(out, KR_ACTION_ROLLBACK_RESTART_STAGE, "roll stage %s back to key-id %s",
		       obs->spec->stages[i].name, out->key_id);
		return;
	}
	kr_act(out, KR_ACTION_WAIT, "rolling back: %s", msg);
	out->requeue_after_ms = KR_POLL_MS;
	kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "RollingBack", "%s; both keys stay valid",
		msg);
}

static void fail_finish(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_status *st = &out->status;
	const struct kr_rotation_progress *r = &obs->status.rotation;

	out->has_history = true;
	snprintf(out->history.key_id, KR_ROT_ID_SIZE, "%s", kr_new_id(obs));
	out->history.trigger = r->trigger;
	out->history.activated_at = obs->status.pending_key.created_at;
	out->history.revoked_at = r->new_revoked ? obs->now : 0;
	out->history.outcome = r->new_revoked ? KR_OUTCOME_ROLLED_BACK : KR_OUTCOME_FAILED;
	snprintf(out->history.reason, KR_ROT_REASON_MAX, "%s", r->reason);
	st->rotation.outcome = out->history.outcome;
	memset(&st->pending_key, 0, sizeof(st->pending_key));
	memset(&st->previous_key, 0, sizeof(st->previous_key));
	st->phase = KR_PHASE_FAILED;
	st->rotation.step = KR_STEP_NONE;
	st->next_rotation_time = kr_rotation_next_time(obs->spec, st, obs->created_at);
	out->status_changed = true;
	kr_act(out, KR_ACTION_FAIL_FINISH, "rotation failed: %s", r->reason);
	kr_event(out, true,
		 out->history.outcome == KR_OUTCOME_ROLLED_BACK ? "RotationRolledBack"
								: "RotationFailed",
		 "%s", out->reason);
}

void kr_decide_rollback(const struct kr_observed *obs, struct kr_action *out)
{
	enum kr_step step = obs->status.rotation.step;

	if (step == KR_STEP_FAIL_FINISH) {
		fail_finish(obs, out);
		return;
	}
	if (step != KR_STEP_ROLLBACK && step != KR_STEP_ROLLBACK_STAGES &&
	    step != KR_STEP_REVOKE_NEW) {
		kr_act(out, KR_ACTION_REFUSE,
		       "status.rotation.step \"%s\" is not a step of phase %s", kr_step_name(step),
		       kr_phase_name(obs->status.phase));
		out->requeue_after_ms = KR_BACKOFF_MS;
		return;
	}
	if (!obs->rsecret.has_previous || !obs->rsecret.has_pending) {
		kr_act(out, KR_ACTION_REFUSE,
		       "Secret %s-rotation lost its keys during the rollback; "
		       "restore it",
		       obs->name ? obs->name : "");
		out->requeue_after_ms = KR_BACKOFF_MS;
		return;
	}
	if (step == KR_STEP_ROLLBACK)
		rollback_secret(obs, out);
	else if (step == KR_STEP_REVOKE_NEW)
		revoke_new(obs, out);
	else
		rollback_stages(obs, out);
}

/* ---- key store repair ------------------------------------------------------------ */

/* Add `id` to the repair list from whichever Secret holds it; false when none does. */
static bool want(const struct kr_observed *obs, struct kr_repair *rep, const char *id)
{
	struct kr_repair_item *it = &rep->add[rep->n_add];

	if (!id[0] || kr_store_has(obs, id) || rep->n_add >= 3)
		return true;
	if (obs->consumer.has_key && strcmp(obs->consumer.key_id, id) == 0)
		it->source = KR_SOURCE_CONSUMER_SECRET;
	else if (obs->rsecret.has_pending && strcmp(obs->rsecret.pending_id, id) == 0)
		it->source = KR_SOURCE_ROTATION_PENDING;
	else if (obs->rsecret.has_previous && strcmp(obs->rsecret.previous_id, id) == 0)
		it->source = KR_SOURCE_ROTATION_PREVIOUS;
	else
		return false;
	snprintf(it->id, KR_ROT_ID_SIZE, "%s", id);
	rep->n_add++;
	return true;
}

/* The ids that must be active now, and the marker; see DESIGN.md §2, key store. */
static bool plan_repair(const struct kr_observed *obs, struct kr_repair *rep, const char **lost)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	enum kr_phase ph = obs->status.phase;
	const char *old = kr_old_id(obs), *new = obs->status.pending_key.id, *marker;
	bool flight = ph != KR_PHASE_IDLE && ph != KR_PHASE_FAILED;
	bool ok = true;

	if (!flight) {
		old = obs->consumer.has_key ? obs->consumer.key_id : "";
		new = "";
	}
	/* The step whose action revokes a key does not want it back. */
	if (flight && (r->old_revoked || r->step == KR_STEP_REVOKE))
		old = "";
	if (flight &&
	    (r->new_revoked || r->step == KR_STEP_REVOKE_NEW || kr_rollback_stages_done(obs)))
		new = "";
	if (!want(obs, rep, old))
		*lost = old, ok = false;
	if (!want(obs, rep, new))
		*lost = new, ok = false;
	marker = flight && r->old_revoked ? obs->status.pending_key.id : kr_old_id(obs);
	if (!flight)
		marker = old;
	if (flight && r->step == KR_STEP_REVOKE)
		marker = ""; /* REVOKE_OLD moves it to the new key */
	if (marker[0] && (!obs->store.has_marker || strcmp(obs->store.marker, marker) != 0)) {
		rep->set_marker = true;
		snprintf(rep->marker, KR_ROT_ID_SIZE, "%s", marker);
	}
	return ok;
}

/*
 * An idle repair also adopts the Secret's key when status does not name it yet (a first
 * install): the repair makes that key the active one, and the adoption is status only, so one
 * status write and one Event say both instead of two steps. Not with a stale rotation Secret:
 * its clean-up comes first, as when adopting without a repair.
 */
static bool adopt_with_repair(const struct kr_observed *obs, struct kr_action *out)
{
	enum kr_phase ph = obs->status.phase;

	if ((ph != KR_PHASE_IDLE && ph != KR_PHASE_FAILED) || obs->rsecret.exists ||
	    !obs->consumer.has_key || strcmp(obs->consumer.key_id, obs->status.current_key.id) == 0)
		return false;
	snprintf(out->status.current_key.id, KR_ROT_ID_SIZE, "%s", obs->consumer.key_id);
	out->status.current_key.created_at = 0;
	out->status_changed = true;
	return true;
}

bool kr_repair_is_drift(const struct kr_observed *obs)
{
	return obs->store.has_marker || obs->status.current_key.id[0] ||
	       obs->status.pending_key.id[0];
}

bool kr_decide_repair(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_repair *rep = &out->repair;
	const char *lost = "";
	char what[KR_ROT_MSG_MAX] = "", adopt[KR_ROT_MSG_MAX] = "";

	if (!plan_repair(obs, rep, &lost))
		kr_cond(out, KR_COND_KEYSTORE_IN_SYNC, KR_COND_FALSE, "KeyMissing",
			"key %s is not in %s and no Secret holds it", lost,
			obs->spec->store_active_set);
	if (rep->n_add == 0 && !rep->set_marker)
		return false;
	for (size_t i = 0; i < rep->n_add; i++)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sre-add key %s",
			 i ? ", " : "", rep->add[i].id);
	if (rep->set_marker)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sset %s to %s",
			 rep->n_add ? ", " : "", obs->spec->store_bootstrap_key, rep->marker);
	if (adopt_with_repair(obs, out))
		snprintf(adopt, sizeof(adopt), "; adopt key %s found in Secret %s",
			 obs->consumer.key_id, obs->spec->secret_name);
	/* A first install's set-up (the key and the marker never there) is not drift: no
	 * repair counted, and a Normal Event, KeyAdopted when it adopts the Secret's key. */
	rep->drift = kr_repair_is_drift(obs);
	kr_act(out, KR_ACTION_REPAIR_KEYSTORE, "%s the key store: %s%s",
	       rep->drift ? "repair" : "set up", what, adopt);
	out->requeue_after_ms = 1000;
	if (!lost[0])
		kr_cond(out, KR_COND_KEYSTORE_IN_SYNC, KR_COND_TRUE, "Repaired", "%s", what);
	if (rep->drift)
		kr_event(out, true, "KeyStoreRepaired", "%s%s", what, adopt);
	else if (adopt[0])
		kr_event(out, false, "KeyAdopted", "adopt key %s found in Secret %s; %s",
			 obs->consumer.key_id, obs->spec->secret_name, what);
	else
		kr_event(out, false, "KeyStoreSetUp", "%s", what);
	return true;
}
