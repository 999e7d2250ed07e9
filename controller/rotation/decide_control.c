/* decide_control.c - the decision's manual controls (DESIGN.md §1c): the abort and promote
 * annotations, and the gates that hold a rotation until it is promoted. */
#include <stdio.h>
#include <string.h>

#include "rotation/internal.h"

static bool new_request(const char *value, const char *handled)
{
	return value && value[0] && strcmp(value, handled) != 0;
}

static bool in_flight(enum kr_phase phase)
{
	return phase != KR_PHASE_IDLE && phase != KR_PHASE_FAILED;
}

/* A request acted on without changing the rotation: recorded, with an Event saying why. */
static void request_noted(struct kr_action *out, bool warning, const char *reason, const char *what)
{
	kr_act(out, KR_ACTION_UPDATE_STATUS, "%s", what);
	out->status_changed = true;
	kr_event(out, warning, reason, "%s", what);
}

static void decide_abort(const struct kr_observed *obs, struct kr_action *out, const char *req)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	char what[KR_ROT_MSG_MAX], reason[KR_ROT_REASON_MAX];

	snprintf(out->status.last_handled_abort, KR_ROT_REQUEST_MAX, "%s", req);
	out->status_changed = true;
	if (!in_flight(obs->status.phase)) {
		snprintf(what, sizeof(what), "abort \"%.128s\" ignored: no rotation is in flight",
			 req);
		request_noted(out, false, "AbortIgnored", what);
		return;
	}
	if (obs->status.phase == KR_PHASE_ROLLING_BACK) {
		snprintf(what, sizeof(what),
			 "abort \"%.128s\" ignored: the rotation is already "
			 "rolling back",
			 req);
		request_noted(out, false, "AbortIgnored", what);
		return;
	}
	if (r->old_revoked || r->trigger == KR_TRIGGER_BOOTSTRAP) {
		if (r->old_revoked)
			snprintf(what, sizeof(what),
				 "abort \"%.128s\" refused: the old key %s is already revoked, so "
				 "there is no key to go back to; the rotation goes on with key %s",
				 req, obs->rsecret.previous_id, kr_new_id(obs));
		else
			snprintf(what, sizeof(what),
				 "abort \"%.128s\" refused: a Bootstrap rotation has no old key to "
				 "go back to",
				 req);
		request_noted(out, true, "AbortRefused", what);
		return;
	}
	snprintf(reason, sizeof(reason), "aborted by %s \"%.128s\"", KR_ANNOTATION_ABORT, req);
	kr_begin_rollback(obs, out, reason);
	/* Nothing generated yet: nothing to roll back, the rotation just ends. */
	if (!obs->rsecret.has_pending && out->status.rotation.step == KR_STEP_ROLLBACK) {
		out->status.rotation.outcome = KR_OUTCOME_FAILED;
		kr_set_step(obs, out, KR_STEP_FAIL_FINISH);
	}
}

static void decide_promote(const struct kr_observed *obs, struct kr_action *out, const char *req)
{
	struct kr_rotation_progress *r = &out->status.rotation;
	char what[KR_ROT_MSG_MAX];

	snprintf(out->status.last_handled_promote, KR_ROT_REQUEST_MAX, "%s", req);
	out->status_changed = true;
	if (obs->status.phase != KR_PHASE_PAUSED) {
		snprintf(what, sizeof(what),
			 "promote \"%.128s\" ignored: nothing is paused (phase %s)", req,
			 kr_phase_name(obs->status.phase));
		request_noted(out, false, "PromoteIgnored", what);
		return;
	}
	/* The analysis of the stage ahead starts afresh once it has rolled out. */
	r->promoted = true;
	r->window_started_at = 0;
	r->last_measured_at = 0;
	kr_set_step(obs, out, r->step);
	snprintf(what, sizeof(what), "promoted by %s \"%.128s\": the rotation goes on",
		 KR_ANNOTATION_PROMOTE, req);
	request_noted(out, false, "Promoted", what);
}

bool kr_decide_requests(const struct kr_observed *obs, struct kr_action *out)
{
	const struct kr_rotation_status *st = &obs->status;
	const char *req = NULL;

	if (new_request(obs->abort_request, st->last_handled_abort))
		req = obs->abort_request;
	else if (new_request(obs->promote_request, st->last_handled_promote))
		req = obs->promote_request;
	if (!req)
		return false;
	if (strlen(req) >= KR_ROT_REQUEST_MAX) {
		kr_act(out, KR_ACTION_REFUSE,
		       "annotation %s: the value is %zu bytes; at most %d are acted on",
		       req == obs->abort_request ? KR_ANNOTATION_ABORT : KR_ANNOTATION_PROMOTE,
		       strlen(req), KR_ROT_REQUEST_MAX - 1);
		out->requeue_after_ms = KR_BACKOFF_MS;
		kr_cond(out, KR_COND_READY, KR_COND_FALSE, "RequestTooLong", "%s", out->reason);
		kr_event(out, true, "RequestTooLong", "%s", out->reason);
		return true;
	}
	if (req == obs->abort_request)
		decide_abort(obs, out, req);
	else
		decide_promote(obs, out, req);
	return true;
}

bool kr_gate_closed(const struct kr_observed *obs, bool gate)
{
	enum kr_trigger t = obs->status.rotation.trigger;

	return gate && !obs->status.rotation.promoted && t != KR_TRIGGER_EMERGENCY &&
	       t != KR_TRIGGER_BOOTSTRAP;
}

void kr_gate_hold(const struct kr_observed *obs, struct kr_action *out, const char *what,
		  enum kr_step measure_for)
{
	const struct kr_rotation_progress *r = &obs->status.rotation;
	int64_t interval = obs->spec->analysis.interval_ms;

	if (obs->status.phase != KR_PHASE_PAUSED) {
		out->status.phase = KR_PHASE_PAUSED;
		out->status_changed = true;
		kr_event(out, false, "Paused",
			 "paused before %s: set %s to a new value to go on, or %s to roll back",
			 what, KR_ANNOTATION_PROMOTE, KR_ANNOTATION_ABORT);
	}
	/* A paused rotation keeps measuring; a failed analysis still rolls it back. */
	if (kr_analysis_on(obs) && obs->measurement.kind != KR_MEASUREMENT_NONE) {
		kr_record_measurement(obs, out);
	} else if (kr_analysis_on(obs) &&
		   (!r->last_measured_at ||
		    (int64_t)(obs->now - r->last_measured_at) * 1000 >= interval)) {
		kr_act(out, KR_ACTION_MEASURE, "measure the 401 rate (paused before %s)", what);
		out->measure_for = measure_for;
	} else {
		kr_act(out, KR_ACTION_WAIT, "paused before %s: waiting for %s", what,
		       KR_ANNOTATION_PROMOTE);
		if (kr_analysis_on(obs))
			out->requeue_after_ms =
			    interval - (int64_t)(obs->now - r->last_measured_at) * 1000;
	}
	if (out->status.phase != KR_PHASE_PAUSED)
		return; /* the measurement rolled it back */
	kr_cond(out, KR_COND_ROTATING, KR_COND_TRUE, "Paused",
		"paused before %s: waiting for a new value of %s", what, KR_ANNOTATION_PROMOTE);
	kr_cond(out, KR_COND_READY, KR_COND_FALSE, "Paused", "paused before %s", what);
}

/* ---- unlisted consumers ------------------------------------------------------------ */

static bool unlisted_same(const struct kr_observed *obs)
{
	const struct kr_rotation_status *st = &obs->status;

	if (st->n_unlisted != obs->n_unlisted)
		return false;
	for (size_t i = 0; i < obs->n_unlisted; i++)
		if (strcmp(st->unlisted[i].kind, obs->unlisted[i].kind) ||
		    strcmp(st->unlisted[i].name, obs->unlisted[i].name))
			return false;
	return true;
}

/* "Deployment/a, CronJob/b (a Job runs)" of the first few, for messages. */
static void unlisted_text(const struct kr_unlisted *u, size_t n, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < n && strlen(buf) + 8 < size; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s/%.64s%s", i ? ", " : "",
			 u[i].kind, u[i].name, u[i].running ? " (a Job runs)" : "");
}

/*
 * A CronJob's Jobs read the Secret anew at each run: it needs no restart to take a key, and
 * holds the revoke only while one of its Jobs runs (it may have started with the old key).
 */
static bool unlisted_holds(const struct kr_unlisted *u)
{
	return strcmp(u->kind, "CronJob") != 0 || u->running;
}

bool kr_decide_unlisted(const struct kr_observed *obs, struct kr_action *out)
{
	char list[KR_ROT_MSG_MAX / 2];

	if (unlisted_same(obs))
		return false;
	memcpy(out->status.unlisted, obs->unlisted, sizeof(out->status.unlisted));
	out->status.n_unlisted = obs->n_unlisted;
	out->status_changed = true;
	unlisted_text(obs->unlisted, obs->n_unlisted, list, sizeof(list));
	if (!obs->n_unlisted) {
		kr_act(out, KR_ACTION_UPDATE_STATUS,
		       "no workload outside the stages reads Secret %s any more",
		       obs->spec->secret_name);
		kr_event(out, false, "UnlistedConsumersGone", "%s", out->reason);
		return true;
	}
	kr_act(out, KR_ACTION_UPDATE_STATUS, "%s read%s Secret %s but no stage lists %s: %s", list,
	       obs->n_unlisted == 1 ? "s" : "", obs->spec->secret_name,
	       obs->n_unlisted == 1 ? "it" : "them",
	       obs->spec->unlisted_policy == KR_UNLISTED_IGNORE
		   ? "unlistedConsumers is Ignore, so the revoke will lock them out"
		   : "the revoke waits until each is listed in a stage or removed (a CronJob "
		     "only while one of its Jobs runs: each run reads the Secret anew)");
	kr_event(out, true, "UnlistedConsumers", "%s", out->reason);
	return true;
}

bool kr_hold_for_unlisted(const struct kr_observed *obs, struct kr_action *out)
{
	struct kr_unlisted held[KR_ROT_UNLISTED_MAX];
	char list[KR_ROT_MSG_MAX / 2], todo[128];
	const char *them;
	size_t n = 0, jobs = 0;

	if (obs->spec->unlisted_policy != KR_UNLISTED_HOLD_REVOKE)
		return false;
	for (size_t i = 0; i < obs->n_unlisted && i < KR_ROT_UNLISTED_MAX; i++)
		if (unlisted_holds(&obs->unlisted[i])) {
			held[n++] = obs->unlisted[i];
			jobs += obs->unlisted[i].running;
		}
	if (!n)
		return false;
	unlisted_text(held, n, list, sizeof(list));
	them = n == 1 ? "it" : "them";
	/* A stage cannot list a CronJob: it holds only until its running Jobs end. */
	if (!jobs)
		snprintf(todo, sizeof(todo), "add %s to a stage or remove %s", them, them);
	else if (jobs == n)
		snprintf(todo, sizeof(todo), "the revoke goes on once no Job of %s runs", them);
	else
		snprintf(todo, sizeof(todo), "add the others to a stage or remove them; a CronJob "
					     "holds only until its running Jobs end");
	kr_act(out, KR_ACTION_WAIT,
	       "holding the revoke: %s read%s Secret %s but no stage lists %s; %s (or set "
	       "spec.unlistedConsumers: Ignore)",
	       list, n == 1 ? "s" : "", obs->spec->secret_name, them, todo);
	out->requeue_after_ms = KR_POLL_MS;
	kr_cond(out, KR_COND_DEGRADED, KR_COND_TRUE, "UnlistedConsumers", "%s", out->reason);
	return true;
}
