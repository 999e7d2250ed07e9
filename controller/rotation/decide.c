/* decide.c - the pure rotation decision: observed state in, exactly one next action out. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rotation/internal.h"

/* ---- small helpers ---------------------------------------------------------------- */

void kr_act(struct kr_action *out, enum kr_action_type type, const char *fmt, ...)
{
	va_list ap;

	out->type = type;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

void kr_cond(struct kr_action *out, enum kr_cond_type type, enum kr_cond_status status,
	     const char *reason, const char *fmt, ...)
{
	struct kr_condition *c = &out->conditions[type];
	va_list ap;

	c->status = status;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

void kr_event(struct kr_action *out, bool warning, const char *reason, const char *fmt, ...)
{
	va_list ap;

	out->event.set = true;
	out->event.warning = warning;
	snprintf(out->event.reason, sizeof(out->event.reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(out->event.message, sizeof(out->event.message), fmt, ap);
	va_end(ap);
}

const char *kr_old_id(const struct kr_observed *obs)
{
	if (obs->status.current_key.id[0])
		return obs->status.current_key.id;
	return obs->rsecret.has_previous ? obs->rsecret.previous_id : "";
}

const char *kr_new_id(const struct kr_observed *obs)
{
	if (obs->status.pending_key.id[0])
		return obs->status.pending_key.id;
	return obs->rsecret.has_pending ? obs->rsecret.pending_id : "";
}

bool kr_store_has(const struct kr_observed *obs, const char *id)
{
	for (size_t i = 0; i < obs->store.n_keys && i < KR_OBSERVED_STORE_KEYS; i++)
		if (id[0] && strcmp(obs->store.keys[i].id, id) == 0)
			return obs->store.keys[i].active && obs->store.keys[i].has_meta;
	return false;
}

const struct kr_observed_workload *kr_wl(const struct kr_observed *obs, size_t stage, size_t j)
{
	return &obs->workloads[obs->spec->stages[stage].first + j];
}

bool kr_analysis_on(const struct kr_observed *obs)
{
	enum kr_trigger t = obs->status.rotation.trigger;

	return obs->spec->analysis.source != KR_ANALYSIS_NONE && t != KR_TRIGGER_EMERGENCY &&
	       t != KR_TRIGGER_BOOTSTRAP;
}

static bool in_flight(enum kr_phase phase)
{
	return phase != KR_PHASE_IDLE && phase != KR_PHASE_FAILED;
}

int64_t kr_until_ms(time_t now, time_t when)
{
	return when > now ? (int64_t)(when - now) * 1000 : 1000;
}

/* ---- steps and their order ------------------------------------------------------- */

static enum kr_phase phase_for(const struct kr_observed *obs, enum kr_step step)
{
	switch (step) {
	case KR_STEP_VALIDATE:
		return KR_PHASE_VALIDATING;
	case KR_STEP_REVOKE:
	case KR_STEP_VERIFY:
	case KR_STEP_FINISH:
		return obs->status.rotation.trigger == KR_TRIGGER_EMERGENCY ? KR_PHASE_ROTATING
									    : KR_PHASE_REVOKING;
	case KR_STEP_ROLLBACK:
	case KR_STEP_ROLLBACK_STAGES:
	case KR_STEP_REVOKE_NEW:
	case KR_STEP_FAIL_FINISH:
		return KR_PHASE_ROLLING_BACK;
	default:
		return KR_PHASE_ROTATING;
	}
}

void kr_set_step(const struct kr_observed *obs, struct kr_action *out, enum kr_step step)
{
	out->status.rotation.step = step;
	out->status.phase = phase_for(obs, step);
	out->status_changed = true;
}

enum kr_step kr_next_step(const struct kr_observed *obs, enum kr_step step)
{
	static const enum kr_step normal[] = {
	    KR_STEP_BASELINE, KR_STEP_GENERATE, KR_STEP_ACTIVATE, KR_STEP_DISTRIBUTE,
	    KR_STEP_ROLLOUT,  KR_STEP_VALIDATE, KR_STEP_REVOKE,	  KR_STEP_VERIFY,
	    KR_STEP_FINISH,   KR_STEP_NONE};
	static const enum kr_step emergency[] = {
	    KR_STEP_GENERATE, KR_STEP_ACTIVATE, KR_STEP_DISTRIBUTE, KR_STEP_REVOKE,
	    KR_STEP_VERIFY,   KR_STEP_ROLLOUT,	KR_STEP_FINISH,	    KR_STEP_NONE};
	static const enum kr_step bootstrap[] = {KR_STEP_GENERATE,   KR_STEP_ACTIVATE,
						 KR_STEP_DISTRIBUTE, KR_STEP_ROLLOUT,
						 KR_STEP_FINISH,     KR_STEP_NONE};
	enum kr_trigger t = obs->status.rotation.trigger;
	const enum kr_step *flow = t == KR_TRIGGER_EMERGENCY   ? emergency
				   : t == KR_TRIGGER_BOOTSTRAP ? bootstrap
							       : normal;
	size_t i = 0;

	while (flow[i] != KR_STEP_NONE && flow[i] != step)
		i++;
	for (i = flow[i] == KR_STEP_NONE ? 0 : i + 1; flow[i] != KR_STEP_NONE; i++) {
		if (flow[i] == KR_STEP_BASELINE && !kr_analysis_on(obs))
			continue;
		if (flow[i] == KR_STEP_VERIFY && !obs->spec->verify_url)
			continue;
		return flow[i];
	}
	return KR_STEP_FINISH;
}

static void reset_window(struct kr_rotation_progress *r)
{
	r->stage_started_at = 0;
	r->window_started_at = 0;
	r->last_measured_at = 0;
	r->failures = 0;
	r->errors = 0;
	r->promoted = false;
}

void kr_enter_next(const struct kr_observed *obs, struct kr_action *out, enum kr_step step)
{
	struct kr_rotation_progress *r = &out->status.rotation;
	enum kr_step next = kr_next_step(obs, step);

	kr_set_step(obs, out, next);
	reset_window(r);
	if (next == KR_STEP_ROLLOUT)
		r->stage_index = 0;
	if (next == KR_STEP_VALIDATE)
		r->window_started_at = obs->now;
}

/* ---- Idle and Failed ------------------------------------------------------------- */

static void begin(const struct kr_observed *obs, struct kr_action *out, enum kr_trigger trigger,
		  const char *request, const char *why)
{
	struct kr_rotation_status *st = &out->status;

	memset(&st->rotation, 0, sizeof(st->rotation));
	memset(&st->pending_key, 0, sizeof(st->pending_key));
	memset(&st->previous_key, 0, sizeof(st->previous_key));
	st->rotation.trigger = trigger;
	st->rotation.started_at = obs->now;
	st->rotation.stage_index = -1;
	if (request && obs->emergency_request == request)
		snprintf(st->last_handled_emergency, KR_ROT_REQUEST_MAX, "%s", request);
	else if (request)
		snprintf(st->last_handled_request, KR_ROT_REQUEST_MAX, "%s", request);
	out->status.rotation.trigger = trigger;
	kr_set_step(obs, out,
		    obs->spec->analysis.source != KR_ANALYSIS_NONE &&
			    trigger != KR_TRIGGER_EMERGENCY && trigger != KR_TRIGGER_BOOTSTRAP
			? KR_STEP_BASELINE
			: KR_STEP_GENERATE);
	kr_act(out, KR_ACTION_BEGIN, "begin %s rotation: %s", kr_trigger_name(trigger), why);
	kr_event(out, trigger == KR_TRIGGER_EMERGENCY, "RotationStarted", "%s rotation started: %s",
		 kr_trigger_name(trigger), why);
}

/* Every workload must exist before a rotation starts. */
static bool refuse_missing_workloads(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_spec *spec = obs->spec;

	for (size_t i = 0; i < spec->n_stages; i++)
		for (size_t j = 0; j < spec->stages[i].n_workloads; j++) {
			const struct kr_workload_ref *ref = &spec->stages[i].workloads[j];
			const struct kr_observed_workload *wl = kr_wl(obs, i, j);
			char msg[KR_ROT_MSG_MAX];

			if (wl->exists && wl->kind_supported)
				continue;
			kr_workload_rollout(ref->kind, ref->name, wl, NULL, msg, sizeof(msg));
			kr_act(out, KR_ACTION_REFUSE, "spec.stages[%zu].workloads[%zu]: %s", i, j,
			       msg);
			out->requeue_after_ms = KR_BACKOFF_MS;
			kr_cond(out, KR_COND_READY, KR_COND_FALSE, "WorkloadMissing", "%s",
				out->reason);
			kr_event(out, true, "WorkloadMissing", "%s; the rotation waits",
				 out->reason);
			return true;
		}
	return false;
}

/* Housekeeping with no rotation in flight: stale rotation Secret, adopting the Secret's key. */
static bool idle_housekeeping(const struct kr_observed *obs, struct kr_action *out)
{
	if (obs->rsecret.exists) {
		kr_act(out, KR_ACTION_CLEANUP,
		       "clear the stale Secret %s-rotation: no rotation is "
		       "in flight",
		       obs->name ? obs->name : "");
		kr_event(out, true, "StaleRotationSecret", "%s", out->reason);
		return true;
	}
	if (obs->consumer.has_key && strcmp(obs->consumer.key_id, obs->status.current_key.id)) {
		snprintf(out->status.current_key.id, KR_ROT_ID_SIZE, "%s", obs->consumer.key_id);
		out->status.current_key.created_at = 0;
		out->status_changed = true;
		kr_act(out, KR_ACTION_UPDATE_STATUS, "adopt key %s found in Secret %s",
		       obs->consumer.key_id, obs->spec->secret_name);
		kr_event(out, false, "KeyAdopted", "%s", out->reason);
		return true;
	}
	return false;
}

static void decide_idle(const struct kr_observed *obs, struct kr_action *out)
{
	const char *request = NULL;
	char why[KR_ROT_MSG_MAX];
	enum kr_trigger trigger;
	time_t next;

	if (idle_housekeeping(obs, out))
		return;
	trigger = kr_due_trigger(obs, &request, why, sizeof(why));
	if (request && strlen(request) >= KR_ROT_REQUEST_MAX) {
		kr_act(out, KR_ACTION_REFUSE,
		       "annotation value is %zu bytes; at most %d are acted on", strlen(request),
		       KR_ROT_REQUEST_MAX - 1);
		kr_cond(out, KR_COND_READY, KR_COND_FALSE, "RequestTooLong", "%s", out->reason);
		return;
	}
	if (trigger != KR_TRIGGER_NONE && obs->spec->suspend) {
		kr_act(out, KR_ACTION_NONE, "suspended: %s waits", why);
		trigger = KR_TRIGGER_NONE;
	} else if (trigger != KR_TRIGGER_NONE && !refuse_missing_workloads(obs, out)) {
		begin(obs, out, trigger, request, why);
		return;
	} else if (trigger != KR_TRIGGER_NONE) {
		return;
	}
	next = kr_rotation_next_time(obs->spec, &obs->status, obs->created_at);
	if (next != obs->status.next_rotation_time) {
		out->status.next_rotation_time = next;
		out->status_changed = true;
	}
	if (next)
		out->requeue_after_ms = kr_until_ms(obs->now, next);
}

/* ---- the forward steps ----------------------------------------------------------- */

static void step_baseline(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	int64_t interval = obs->spec->analysis.interval_ms;

	if (obs->measurement.kind != KR_MEASUREMENT_NONE) {
		kr_record_measurement(obs, out);
		return;
	}
	if (r->last_measured_at && (int64_t)(obs->now - r->last_measured_at) * 1000 < interval) {
		kr_act(out, KR_ACTION_WAIT, "waiting to measure the baseline 401 rate again");
		out->requeue_after_ms = interval - (int64_t)(obs->now - r->last_measured_at) * 1000;
		return;
	}
	kr_act(out, KR_ACTION_MEASURE, "measure the baseline 401 rate");
	out->measure_for = KR_STEP_BASELINE;
}

/* The rotation Secret's pending key belongs to this rotation: its previous is our old key. */
static bool rsecret_consistent(const struct kr_observed *obs)
{
	if (obs->status.rotation.trigger == KR_TRIGGER_BOOTSTRAP && !obs->consumer.has_key)
		return true;
	return obs->rsecret.has_previous &&
	       strcmp(obs->rsecret.previous_id, obs->consumer.key_id) == 0;
}

static void activate(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_rotation_status *st = &out->status;

	if (strcmp(st->pending_key.id, obs->rsecret.pending_id) != 0) {
		snprintf(st->pending_key.id, KR_ROT_ID_SIZE, "%s", obs->rsecret.pending_id);
		st->pending_key.created_at = obs->now;
	}
	if (obs->rsecret.has_previous) {
		snprintf(st->previous_key.id, KR_ROT_ID_SIZE, "%s", obs->rsecret.previous_id);
		st->previous_key.created_at = st->current_key.created_at;
	}
	kr_enter_next(obs, out, KR_STEP_ACTIVATE);
	snprintf(out->key_id, sizeof(out->key_id), "%s", obs->rsecret.pending_id);
	kr_act(out, KR_ACTION_ACTIVATE, "activate key %s in %s", out->key_id,
	       obs->spec->store_active_set);
}

/* Generate, and Activate: GENERATE only when the rotation Secret holds no pending key. */
static void step_generate(const struct kr_observed *obs, struct kr_action *out)
{
	if (!obs->rsecret.has_pending) {
		if (obs->status.pending_key.id[0] && obs->consumer.has_key &&
		    strcmp(obs->consumer.key_id, obs->status.pending_key.id) == 0) {
			kr_act(out, KR_ACTION_REFUSE,
			       "Secret %s-rotation lost its pending key "
			       "after it was handed out; restore it",
			       obs->name ? obs->name : "");
			return;
		}
		kr_set_step(obs, out, KR_STEP_ACTIVATE);
		kr_act(out, KR_ACTION_GENERATE, "generate a new key into Secret %s-rotation",
		       obs->name ? obs->name : "");
		return;
	}
	if (!rsecret_consistent(obs)) {
		kr_act(out, KR_ACTION_REFUSE,
		       "Secret %s-rotation holds a pending key whose previous (%s) is not the key "
		       "in Secret %s (%s); delete %s-rotation to start over",
		       obs->name ? obs->name : "", obs->rsecret.previous_id, obs->spec->secret_name,
		       obs->consumer.key_id, obs->name ? obs->name : "");
		out->requeue_after_ms = KR_BACKOFF_MS;
		return;
	}
	activate(obs, out);
}

static void step_distribute(const struct kr_observed *obs, struct kr_action *out)
{
	kr_enter_next(obs, out, KR_STEP_DISTRIBUTE);
	snprintf(out->key_id, sizeof(out->key_id), "%s", kr_new_id(obs));
	kr_act(out, KR_ACTION_DISTRIBUTE, "write key %s into Secret %s key %s", out->key_id,
	       obs->spec->secret_name, obs->spec->secret_key);
}

/* The consumers' Secret must hold the new key from RollOut on; rewrite it if not. */
bool kr_ensure_distributed(const struct kr_observed *obs, struct kr_action *out)
{
	if (strcmp(obs->consumer.key_id, kr_new_id(obs)) == 0)
		return false;
	snprintf(out->key_id, sizeof(out->key_id), "%s", kr_new_id(obs));
	kr_act(out, KR_ACTION_DISTRIBUTE, "Secret %s does not hold key %s; write it again",
	       obs->spec->secret_name, out->key_id);
	return true;
}

/* Workloads of `stage` (existing ones) whose pod template lacks key-id `id`. */
uint64_t kr_stale_mask(const struct kr_observed *obs, size_t stage, const char *id)
{
	uint64_t mask = 0;

	for (size_t j = 0; j < obs->spec->stages[stage].n_workloads; j++) {
		const struct kr_observed_workload *wl = kr_wl(obs, stage, j);

		if (wl->exists && wl->kind_supported && strcmp(wl->key_id, id) != 0)
			mask |= UINT64_C(1) << j;
	}
	return mask;
}

void kr_restart_stage(const struct kr_observed *obs, struct kr_action *out, size_t stage,
		      uint64_t mask)
{
	out->stage = (int)stage;
	out->workload_mask = mask;
	snprintf(out->key_id, sizeof(out->key_id), "%s", kr_new_id(obs));
	kr_act(out, KR_ACTION_RESTART_STAGE, "roll out stage %s with key-id %s",
	       obs->spec->stages[stage].name, out->key_id);
}

/*
 * The stage's rollout: COMPLETE, or a reason to wait (PROGRESSING/BLOCKED) or fail (FAILED,
 * or MISSING past the timeout). `msg` names the first workload that is not complete.
 */
enum kr_rollout_state kr_stage_rollout(const struct kr_observed *obs, size_t stage, const char *id,
				       char *msg, size_t size)
{
	const struct kr_stage_spec *st = &obs->spec->stages[stage];
	enum kr_rollout_state worst = KR_ROLLOUT_COMPLETE;

	for (size_t j = 0; j < st->n_workloads; j++) {
		char m[KR_ROT_MSG_MAX];
		enum kr_rollout_state s =
		    kr_workload_rollout(st->workloads[j].kind, st->workloads[j].name,
					kr_wl(obs, stage, j), id, m, sizeof(m));

		if (s != KR_ROLLOUT_COMPLETE &&
		    (worst == KR_ROLLOUT_COMPLETE || s == KR_ROLLOUT_FAILED)) {
			worst = s;
			snprintf(msg, size, "%s", m);
		}
	}
	return worst;
}

/* A stage that cannot complete: roll back, or (emergency, bootstrap: no way back) go on. */
static void stage_failed(const struct kr_observed *obs, struct kr_action *out, size_t stage,
			 const char *msg)
{
	char reason[KR_ROT_REASON_MAX];

	snprintf(reason, sizeof(reason), "stage %s failed: %s", obs->spec->stages[stage].name, msg);
	if (!obs->status.rotation.old_revoked &&
	    obs->status.rotation.trigger != KR_TRIGGER_BOOTSTRAP &&
	    obs->status.rotation.trigger != KR_TRIGGER_EMERGENCY) {
		kr_begin_rollback(obs, out, reason);
		return;
	}
	out->status.rotation.outcome = KR_OUTCOME_FAILED;
	snprintf(out->status.rotation.reason, KR_ROT_REASON_MAX, "%s", reason);
	if (stage + 1 < obs->spec->n_stages) {
		out->status.rotation.stage_index = (int)stage + 1;
		reset_window(&out->status.rotation);
		out->status_changed = true;
	} else {
		kr_enter_next(obs, out, KR_STEP_ROLLOUT);
	}
	kr_act(out, KR_ACTION_ADVANCE_STAGE, "%s; no way back, going on", reason);
	kr_event(out, true, "StageFailed", "%s", out->reason);
}

static void advance_stage(const struct kr_observed *obs, struct kr_action *out, size_t stage)
{
	if (stage + 1 < obs->spec->n_stages) {
		out->status.rotation.stage_index = (int)stage + 1;
		reset_window(&out->status.rotation);
		out->status_changed = true;
	} else {
		kr_enter_next(obs, out, KR_STEP_ROLLOUT);
	}
	kr_act(out, KR_ACTION_ADVANCE_STAGE, "stage %s done", obs->spec->stages[stage].name);
}

/* After a complete rollout: the analysis window of at least one interval. */
static void stage_analysis(const struct kr_observed *obs, struct kr_action *out, size_t stage)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	int64_t interval = obs->spec->analysis.interval_ms;
	int64_t since_last = (int64_t)(obs->now - r->last_measured_at) * 1000;

	if (obs->measurement.kind != KR_MEASUREMENT_NONE) {
		kr_record_measurement(obs, out);
		return;
	}
	if (r->window_started_at && r->failures == 0 && r->errors == 0 &&
	    (int64_t)(r->last_measured_at - r->window_started_at) * 1000 >= interval) {
		advance_stage(obs, out, stage);
		return;
	}
	if (r->last_measured_at && since_last < interval) {
		kr_act(out, KR_ACTION_WAIT, "analysing stage %s", obs->spec->stages[stage].name);
		out->requeue_after_ms = interval - since_last;
		return;
	}
	kr_act(out, KR_ACTION_MEASURE, "measure the 401 rate after stage %s",
	       obs->spec->stages[stage].name);
	out->measure_for = KR_STEP_ROLLOUT;
}

static void step_rollout(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	size_t stage = r->stage_index < 0 ? 0 : (size_t)r->stage_index;
	char msg[KR_ROT_MSG_MAX] = "";
	enum kr_rollout_state s;
	uint64_t mask;
	time_t deadline;

	if (stage >= obs->spec->n_stages)
		stage = obs->spec->n_stages - 1;
	if (kr_ensure_distributed(obs, out))
		return;
	if (!r->stage_started_at && kr_gate_closed(obs, obs->spec->stages[stage].pause)) {
		char what[KR_ROT_MSG_MAX];

		snprintf(what, sizeof(what), "stage %s", obs->spec->stages[stage].name);
		out->status.rotation.stage_index = (int)stage;
		kr_gate_hold(obs, out, what, KR_STEP_ROLLOUT);
		return;
	}
	mask = kr_stale_mask(obs, stage, kr_new_id(obs));
	if (mask || !r->stage_started_at || r->stage_index < 0) {
		out->status.rotation.stage_index = (int)stage;
		if (!r->stage_started_at || r->stage_index < 0)
			out->status.rotation.stage_started_at = obs->now;
		out->status_changed = true;
		kr_restart_stage(obs, out, stage, mask);
		return;
	}
	s = kr_stage_rollout(obs, stage, kr_new_id(obs), msg, sizeof(msg));
	deadline = r->stage_started_at + (time_t)(obs->spec->stages[stage].timeout_ms / 1000);
	if (s == KR_ROLLOUT_FAILED || (s != KR_ROLLOUT_COMPLETE && obs->now > deadline)) {
		if (s != KR_ROLLOUT_FAILED)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " (timeout %llds)",
				 (long long)(obs->spec->stages[stage].timeout_ms / 1000));
		stage_failed(obs, out, stage, msg);
		return;
	}
	if (s != KR_ROLLOUT_COMPLETE) {
		kr_act(out, KR_ACTION_WAIT, "waiting for rollout: %s", msg);
		out->requeue_after_ms = kr_until_ms(obs->now, deadline + 1);
		if (out->requeue_after_ms > KR_POLL_MS)
			out->requeue_after_ms = KR_POLL_MS;
		if (s != KR_ROLLOUT_PROGRESSING)
			kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "RolloutBlocked", "%s", msg);
		return;
	}
	if (kr_analysis_on(obs))
		stage_analysis(obs, out, stage);
	else
		advance_stage(obs, out, stage);
}

/* An emergency request during a normal rotation: revoke the old key now. */
static bool escalate(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	const char *req = obs->emergency_request;

	if (!req || !req[0] || strcmp(req, obs->status.last_handled_emergency) == 0 ||
	    strlen(req) >= KR_ROT_REQUEST_MAX || r->trigger == KR_TRIGGER_EMERGENCY ||
	    r->trigger == KR_TRIGGER_BOOTSTRAP || r->old_revoked ||
	    obs->status.phase == KR_PHASE_ROLLING_BACK)
		return false;
	snprintf(out->status.last_handled_emergency, KR_ROT_REQUEST_MAX, "%s", req);
	out->status.rotation.trigger = KR_TRIGGER_EMERGENCY;
	if (r->step == KR_STEP_BASELINE)
		kr_set_step(obs, out, KR_STEP_GENERATE);
	else if (r->step == KR_STEP_ROLLOUT || r->step == KR_STEP_VALIDATE)
		kr_set_step(obs, out, KR_STEP_REVOKE);
	out->status_changed = true;
	kr_act(out, KR_ACTION_ESCALATE, "emergency request \"%s\": the rotation turns emergency",
	       req);
	kr_event(out, true, "EmergencyEscalation", "%s", out->reason);
	return true;
}

static void decide_forward(const struct kr_observed *obs, struct kr_action *out)
{
	switch (obs->status.rotation.step) {
	case KR_STEP_BASELINE:
		step_baseline(obs, out);
		break;
	case KR_STEP_GENERATE:
	case KR_STEP_ACTIVATE:
		step_generate(obs, out);
		break;
	case KR_STEP_DISTRIBUTE:
		step_distribute(obs, out);
		break;
	case KR_STEP_ROLLOUT:
		step_rollout(obs, out);
		break;
	case KR_STEP_VALIDATE:
		kr_step_validate(obs, out);
		break;
	case KR_STEP_REVOKE:
		kr_step_revoke(obs, out);
		break;
	case KR_STEP_VERIFY:
		kr_step_verify(obs, out);
		break;
	case KR_STEP_FINISH:
		kr_step_finish(obs, out);
		break;
	default:
		kr_decide_rollback(obs, out);
		break;
	}
}

/* ---- conditions ------------------------------------------------------------------ */

static void fill_conditions(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_status *st = &out->status;
	struct kr_condition *c = out->conditions;
	bool flight = in_flight(st->phase);

	if (!c[KR_COND_ROTATING].reason[0])
		kr_cond(out, KR_COND_ROTATING, flight ? KR_COND_TRUE : KR_COND_FALSE,
			flight ? kr_step_name(st->rotation.step) : "Idle", "%s",
			flight ? out->reason : "no rotation in flight");
	if (!c[KR_COND_DEGRADED].reason[0] && st->phase == KR_PHASE_FAILED)
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE,
			st->rotation.outcome == KR_OUTCOME_FAILED ? "RotationFailed" : "RolledBack",
			"%s", st->rotation.reason);
	if (!c[KR_COND_DEGRADED].reason[0] && out->type == KR_ACTION_REFUSE)
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "Refused", "%s", out->reason);
	if (flight)
		kr_hold_condition(out);
	if (!c[KR_COND_DEGRADED].reason[0])
		kr_cond(out, KR_COND_DEGRADED, KR_COND_FALSE, "AsExpected", "%s",
			"nothing needs attention");
	if (!c[KR_COND_READY].reason[0]) {
		bool ok = st->phase == KR_PHASE_IDLE && out->type != KR_ACTION_REFUSE &&
			  c[KR_COND_DEGRADED].status != KR_COND_TRUE;

		kr_cond(out, KR_COND_READY, ok ? KR_COND_TRUE : KR_COND_FALSE,
			ok	 ? "KeyCurrent"
			: flight ? "Rotating"
				 : kr_phase_name(st->phase),
			ok ? "key %s is current" : "%s", ok ? st->current_key.id : out->reason);
	}
	/*
	 * After a repair the condition keeps saying what was repaired while the store stays in
	 * sync (an empty reason keeps the old condition): turning it into InSync on the next
	 * reconcile would be one more status write for every repair, and on a first install
	 * for every KeyRotation.
	 */
	if (!c[KR_COND_KEYSTORE_IN_SYNC].reason[0] &&
	    !(obs->store.reachable && obs->store_repaired))
		kr_cond(out, KR_COND_KEYSTORE_IN_SYNC,
			obs->store.reachable ? KR_COND_TRUE : KR_COND_UNKNOWN,
			obs->store.reachable ? "InSync" : "Unreachable", "%s",
			obs->store.reachable ? "the key store holds every key in use"
					     : obs->store.error);
}

/* ---- the entry ------------------------------------------------------------------- */

static void action_init(const struct kr_observed *obs, struct kr_action *out)
{
	memset(out, 0, sizeof(*out));
	out->stage = -1;
	out->status = obs->status;
	if (out->status.observed_generation != obs->generation) {
		out->status.observed_generation = obs->generation;
		out->status_changed = true;
	}
	if (obs->store.reachable && out->status.unknown_members != obs->store.unknown_members) {
		out->status.unknown_members = obs->store.unknown_members;
		out->status_changed = true;
	}
}

/* Refusals that hold everything: a bad spec, a Secret claimed twice, no key store. */
static bool decide_blockers(const struct kr_observed *obs, struct kr_action *out)
{
	if (!obs->spec) {
		kr_act(out, KR_ACTION_REFUSE, "%s", obs->spec_error ? obs->spec_error : "no spec");
		kr_cond(out, KR_COND_READY, KR_COND_FALSE, "InvalidSpec", "%s", out->reason);
		kr_event(out, true, "InvalidSpec", "%s", out->reason);
		return true;
	}
	if (obs->secret_conflict) {
		kr_act(out, KR_ACTION_REFUSE, "Secret %s is already managed by KeyRotation %s",
		       obs->spec->secret_name, obs->conflict_owner);
		kr_cond(out, KR_COND_READY, KR_COND_FALSE, "SecretConflict", "%s", out->reason);
		kr_event(out, true, "SecretConflict", "%s", out->reason);
		return true;
	}
	if (obs->refusal_reason[0]) {
		kr_act(out, KR_ACTION_REFUSE, "%s", obs->refusal);
		/* No watch sees a Secret opt in: look again (the status is written on change). */
		out->requeue_after_ms = KR_BACKOFF_MS;
		kr_cond(out, KR_COND_READY, KR_COND_FALSE, obs->refusal_reason, "%s", out->reason);
		kr_event(out, true, obs->refusal_reason, "%s", out->reason);
		return true;
	}
	if (obs->spec->dry_run) {
		kr_act(out, in_flight(obs->status.phase) ? KR_ACTION_WAIT : KR_ACTION_PLAN, "%s",
		       in_flight(obs->status.phase) ? "dryRun: the rotation in flight is held"
						    : "dryRun: plan only");
		return true;
	}
	if (!obs->store.reachable) {
		kr_act(out, KR_ACTION_WAIT, "key store unreachable: %s", obs->store.error);
		out->requeue_after_ms = KR_STORE_RETRY_MS;
		kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "KeyStoreUnreachable", "%s",
			obs->store.error);
		return true;
	}
	return false;
}

void kr_rotation_decide(const struct kr_observed *obs, struct kr_action *out)
{
	action_init(obs, out);
	if (decide_blockers(obs, out) || kr_decide_repair(obs, out) ||
	    kr_decide_requests(obs, out) || kr_decide_unlisted(obs, out))
		goto done;
	if (!in_flight(obs->status.phase))
		decide_idle(obs, out);
	else if (!escalate(obs, out))
		decide_forward(obs, out);
done:
	fill_conditions(obs, out);
}
