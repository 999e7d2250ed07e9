/* decide_revoke.c - the decision's last forward steps: validate, revoke the old key, verify,
 * finish. */
#include <stdio.h>
#include <string.h>

#include "rotation/internal.h"

/* Before the old key goes: every workload of every stage runs the new key, complete. */
static bool hold_for_workloads(const struct kr_observed *obs, struct kr_action *out)
{
	for (size_t i = 0; i < obs->spec->n_stages; i++) {
		char msg[KR_ROT_MSG_MAX] = "";
		uint64_t mask = kr_stale_mask(obs, i, kr_new_id(obs));

		if (mask) {
			kr_restart_stage(obs, out, i, mask);
			return true;
		}
		if (kr_stage_rollout(obs, i, kr_new_id(obs), msg, sizeof(msg)) !=
		    KR_ROLLOUT_COMPLETE) {
			kr_act(out, KR_ACTION_WAIT, "holding the revoke: %s", msg);
			out->requeue_after_ms = KR_POLL_MS;
			kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "RevokeHeld", "%s", msg);
			return true;
		}
	}
	return false;
}

/*
 * The longest terminationGracePeriodSeconds of the stages' workloads. A rollout is complete
 * when no old pod is counted any more, but a terminating one is not counted and keeps
 * serving with the key it started with for up to its grace period: the old key stays valid
 * at least that long after the last stage completed (the validation window's start), and
 * the new key as long after a rollback (decide_rollback.c).
 */
int64_t kr_longest_grace(const struct kr_observed *obs)
{
	int64_t g = 0;

	for (size_t i = 0; obs->workloads && i < obs->spec->n_workloads; i++)
		if (obs->workloads[i].exists && obs->workloads[i].termination_grace_s > g)
			g = obs->workloads[i].termination_grace_s;
	return g;
}

void kr_step_validate(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	int64_t period = obs->spec->validation_period_ms,
		interval = obs->spec->analysis.interval_ms;
	/*
	 * Times are whole seconds, floored: the window began somewhere in the second
	 * window_started_at, so only from that + ceil(period) + 1 on has the whole period
	 * surely passed (a revoke 7 ms after the last stage was seen with a 1s period).
	 */
	int64_t grace = kr_longest_grace(obs);
	int64_t wait_s = (period + 999) / 1000 > grace ? (period + 999) / 1000 : grace;
	time_t end = r->window_started_at + (time_t)wait_s + 1;

	if (kr_ensure_distributed(obs, out) || hold_for_workloads(obs, out))
		return;
	if (obs->measurement.kind != KR_MEASUREMENT_NONE && kr_analysis_on(obs)) {
		kr_record_measurement(obs, out);
		return;
	}
	if (!kr_analysis_on(obs)
		? obs->now >= end
		: (r->last_measured_at >= end && r->failures == 0 && r->errors == 0)) {
		kr_set_step(obs, out, KR_STEP_REVOKE);
		kr_act(out, KR_ACTION_START_REVOKE, "validation period over");
		return;
	}
	if (!kr_analysis_on(obs) ||
	    (r->last_measured_at && (int64_t)(obs->now - r->last_measured_at) * 1000 < interval)) {
		if (grace * 1000 > period)
			kr_act(out, KR_ACTION_WAIT,
			       "validating until %lld (old pods may run %llds after their "
			       "rollout: terminationGracePeriodSeconds)",
			       (long long)end, (long long)grace);
		else
			kr_act(out, KR_ACTION_WAIT, "validating until %lld", (long long)end);
		out->requeue_after_ms =
		    !kr_analysis_on(obs)
			? kr_until_ms(obs->now, end)
			: interval - (int64_t)(obs->now - r->last_measured_at) * 1000;
		return;
	}
	kr_act(out, KR_ACTION_MEASURE, "measure the 401 rate (validation)");
	out->measure_for = KR_STEP_VALIDATE;
}

void kr_step_revoke(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_spec *spec = obs->spec;
	bool emergency = obs->status.rotation.trigger == KR_TRIGGER_EMERGENCY;
	time_t unused_since =
	    obs->old_key_last_used_at + (time_t)(spec->revoke_when_unused_ms / 1000);

	if (!obs->rsecret.has_previous) {
		kr_act(out, KR_ACTION_REFUSE,
		       "Secret %s-rotation lost the old key; cannot revoke it",
		       obs->name ? obs->name : "");
		out->requeue_after_ms = KR_BACKOFF_MS;
		return;
	}
	if (!emergency && (kr_ensure_distributed(obs, out) || hold_for_workloads(obs, out)))
		return;
	if (kr_gate_closed(obs, spec->pause_before_revoke)) {
		kr_gate_hold(obs, out, "the revoke", KR_STEP_VALIDATE);
		return;
	}
	if (!emergency && spec->revoke_when_unused_ms >= 0 && obs->old_key_usage_known &&
	    obs->now < unused_since) {
		char used[32] = "?", until[32] = "?";

		kr_time_format_rfc3339(obs->old_key_last_used_at, used, sizeof(used));
		kr_time_format_rfc3339(unused_since, until, sizeof(until));
		kr_act(out, KR_ACTION_WAIT,
		       "holding the revoke: key %s was last used at %s; waiting "
		       "until it is unused for %llds (%s at the earliest)",
		       kr_old_id(obs), used, (long long)(spec->revoke_when_unused_ms / 1000),
		       until);
		out->requeue_after_ms = kr_until_ms(obs->now, unused_since);
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "OldKeyInUse", "%s", out->reason);
		return;
	}
	if (!emergency && kr_hold_for_unlisted(obs, out))
		return;
	out->status.rotation.old_revoked = true;
	memset(&out->status.previous_key, 0, sizeof(out->status.previous_key));
	kr_enter_next(obs, out, KR_STEP_REVOKE);
	snprintf(out->key_id, sizeof(out->key_id), "%s", obs->rsecret.previous_id);
	out->repair.set_marker = true;
	snprintf(out->repair.marker, KR_ROT_ID_SIZE, "%s", kr_new_id(obs));
	kr_act(out, KR_ACTION_REVOKE_OLD, "revoke key %s", out->key_id);
	kr_event(out, emergency, "OldKeyRevoked", "%s", out->reason);
}

void kr_step_verify(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_progress *r = &out->status.rotation;
	int limit = obs->spec->analysis.source ? obs->spec->analysis.error_limit : KR_VERIFY_ERRORS;
	int64_t interval = obs->spec->analysis.interval_ms;

	if (obs->verify.result == KR_VERIFY_NONE) {
		if (r->last_measured_at &&
		    (int64_t)(obs->now - r->last_measured_at) * 1000 < interval) {
			kr_act(out, KR_ACTION_WAIT, "verifying again later");
			out->requeue_after_ms =
			    interval - (int64_t)(obs->now - r->last_measured_at) * 1000;
			return;
		}
		kr_act(out, KR_ACTION_VERIFY, "verify: old key must get 401, new key 2xx");
		return;
	}
	kr_act(out, KR_ACTION_RECORD_VERIFY, "verify: %s", obs->verify.message);
	out->status_changed = true;
	r->last_measured_at = obs->now;
	if (obs->verify.result == KR_VERIFY_ERROR && ++r->errors < limit) {
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "VerifyInconclusive", "%s",
			obs->verify.message);
		out->requeue_after_ms = interval;
		return;
	}
	if (obs->verify.result != KR_VERIFY_PASSED) {
		r->outcome = KR_OUTCOME_FAILED;
		snprintf(r->reason, KR_ROT_REASON_MAX, "verify failed: %.200s",
			 obs->verify.message);
		kr_event(out, true, "VerifyFailed", "%s", r->reason);
	}
	kr_enter_next(obs, out, KR_STEP_VERIFY);
}

void kr_step_finish(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_status *st = &out->status;
	const struct kr_rotation_progress *r = &obs->status.rotation;
	enum kr_outcome outcome = r->outcome == KR_OUTCOME_NONE ? KR_OUTCOME_SUCCEEDED : r->outcome;

	out->has_history = true;
	snprintf(out->history.key_id, KR_ROT_ID_SIZE, "%s", kr_new_id(obs));
	out->history.trigger = r->trigger;
	out->history.activated_at = obs->status.pending_key.created_at;
	out->history.outcome = outcome;
	snprintf(out->history.reason, KR_ROT_REASON_MAX, "%s",
		 r->reason[0] ? r->reason : kr_trigger_name(r->trigger));
	snprintf(st->current_key.id, KR_ROT_ID_SIZE, "%s", kr_new_id(obs));
	st->current_key.created_at = obs->status.pending_key.created_at;
	memset(&st->pending_key, 0, sizeof(st->pending_key));
	memset(&st->previous_key, 0, sizeof(st->previous_key));
	st->last_rotation_time = obs->now;
	st->phase = outcome == KR_OUTCOME_SUCCEEDED ? KR_PHASE_IDLE : KR_PHASE_FAILED;
	if (outcome == KR_OUTCOME_SUCCEEDED) {
		memset(&st->rotation, 0, sizeof(st->rotation));
		st->rotation.stage_index = -1;
	}
	st->next_rotation_time = kr_rotation_next_time(obs->spec, st, obs->created_at);
	out->status_changed = true;
	out->repair.set_marker = true;
	snprintf(out->repair.marker, KR_ROT_ID_SIZE, "%s", st->current_key.id);
	kr_act(out, KR_ACTION_FINISH, "finish: key %s is current", st->current_key.id);
	kr_event(out, outcome != KR_OUTCOME_SUCCEEDED, "RotationFinished",
		 "rotated to key %s (%s): %s", st->current_key.id, kr_trigger_name(r->trigger),
		 kr_outcome_name(outcome));
}
