/* internal.h - helpers shared by the decision's files (decide*.c, trigger.c); not a public face. */
#ifndef KR_ROTATION_INTERNAL_H
#define KR_ROTATION_INTERNAL_H

#include "rotation/rotation.h"

#define KR_POLL_MS	 10000 /* re-check a rollout at least this often */
#define KR_BACKOFF_MS	 30000 /* retry after a refusal */
#define KR_STORE_RETRY_MS 5000 /* ask an unreachable key store again (a connect is cheap) */
#define KR_VERIFY_ERRORS 4     /* verify errors in a row that end the wait, without analysis */

/*
 * spec.c: the key store fields shared by the inline spec.keyStore and the KeyStore kinds:
 * address, database, username, passwordSecretRef (with `namespace` when password_ns) from
 * `conn` at path `p`, and the layout names from `layout` at `lp` (the same object inline).
 */
enum kr_status kr_spec_decode_store(const cJSON *conn, const char *p, const cJSON *layout,
				    const char *lp, bool password_ns, struct kr_rotation_spec *out,
				    struct kr_error *err);

/*
 * store_conn.c: the key store's tls and sentinel from `conn` at path `p` (namespace fields
 * of the Secret references when with_ns), and the rule: address or sentinel, not both.
 * kr_store_conn_default_ns: every Secret reference without a namespace gets `ns`.
 */
enum kr_status kr_spec_decode_store_conn(const cJSON *conn, const char *p, bool with_ns,
					 struct kr_rotation_spec *out, struct kr_error *err);
enum kr_status kr_store_conn_default_ns(struct kr_rotation_spec *spec, const char *ns);

/* Start `out` as type with a message; keeps status/conditions as they are. */
void kr_act(struct kr_action *out, enum kr_action_type type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A condition on `out`. */
void kr_cond(struct kr_action *out, enum kr_cond_type type, enum kr_cond_status status,
	     const char *reason, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* An event on `out`. */
void kr_event(struct kr_action *out, bool warning, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Set the step in out->status (and the phase that goes with it). */
void kr_set_step(const struct kr_observed *obs, struct kr_action *out, enum kr_step step);
/* The step after `step` in this rotation's flow (normal, emergency, bootstrap). */
enum kr_step kr_next_step(const struct kr_observed *obs, enum kr_step step);
/* Move out->status to the step after `step`, initialising what that step needs. */
void kr_enter_next(const struct kr_observed *obs, struct kr_action *out, enum kr_step step);

/* The old key (being rotated out) and the new key ids of the rotation in flight. */
const char *kr_old_id(const struct kr_observed *obs);
const char *kr_new_id(const struct kr_observed *obs);
/* 1 when the key store lists `id` as active. */
bool kr_store_has(const struct kr_observed *obs, const char *id);
/* Workload j of stage i, as observed. */
const struct kr_observed_workload *kr_wl(const struct kr_observed *obs, size_t stage, size_t j);
/* Analysis gates apply (analysis configured, trigger neither emergency nor bootstrap). */
bool kr_analysis_on(const struct kr_observed *obs);

/* Idle/Failed: the trigger that is due now (NONE if none); `why` gets the reason. */
enum kr_trigger kr_due_trigger(const struct kr_observed *obs, const char **request, char *why,
			       size_t why_size);

/* Shared by the forward steps (decide.c). */
int64_t kr_until_ms(time_t now, time_t when);
bool kr_ensure_distributed(const struct kr_observed *obs, struct kr_action *out);
uint64_t kr_stale_mask(const struct kr_observed *obs, size_t stage, const char *id);
void kr_restart_stage(const struct kr_observed *obs, struct kr_action *out, size_t stage,
		      uint64_t mask);
enum kr_rollout_state kr_stage_rollout(const struct kr_observed *obs, size_t stage, const char *id,
				       char *msg, size_t size);

/* Validate, Revoke, Verify, Finish (decide_revoke.c). */
void kr_step_validate(const struct kr_observed *obs, struct kr_action *out);
void kr_step_revoke(const struct kr_observed *obs, struct kr_action *out);
void kr_step_verify(const struct kr_observed *obs, struct kr_action *out);
void kr_step_finish(const struct kr_observed *obs, struct kr_action *out);
/* The longest terminationGracePeriodSeconds of the stages' existing workloads (0: none). */
int64_t kr_longest_grace(const struct kr_observed *obs);

/* Rollback, key store repair (decide_rollback.c). */
void kr_decide_rollback(const struct kr_observed *obs, struct kr_action *out);
bool kr_rollback_stages_done(const struct kr_observed *obs);
/* Emits REPAIR_KEYSTORE and returns true when the store needs it; sets KeyStoreInSync. */
bool kr_decide_repair(const struct kr_observed *obs, struct kr_action *out);
/* Record a fresh measurement (obs->measurement) for the step in hand. */
void kr_record_measurement(const struct kr_observed *obs, struct kr_action *out);
/* While the analysis gate holds (failures or errors in a row), Degraded says why. */
void kr_hold_condition(struct kr_action *out);
/* Move into rollback (status only) with a reason. */
void kr_begin_rollback(const struct kr_observed *obs, struct kr_action *out, const char *reason);

/* Manual controls (decide_control.c). */
/* A new keyrotator.io/abort or /promote value: acts on it (status, Event) and returns true. */
bool kr_decide_requests(const struct kr_observed *obs, struct kr_action *out);
/* The manual gate `gate` (stages[].pause, pauseBeforeRevoke) holds: set, not yet promoted,
 * and the rotation is neither Emergency nor Bootstrap. */
bool kr_gate_closed(const struct kr_observed *obs, bool gate);
/* Hold at a closed gate before `what` ("stage ui", "the revoke"): phase Paused, measuring on
 * (MEASURE for `measure_for`); a failed measurement rolls back. */
void kr_gate_hold(const struct kr_observed *obs, struct kr_action *out, const char *what,
		  enum kr_step measure_for);
/* The unlisted consumers observed differ from status: record them (status, Event). */
bool kr_decide_unlisted(const struct kr_observed *obs, struct kr_action *out);
/* spec.unlistedConsumers HoldRevoke and one (not a CronJob) exists: WAIT, Degraded says it. */
bool kr_hold_for_unlisted(const struct kr_observed *obs, struct kr_action *out);

#endif
