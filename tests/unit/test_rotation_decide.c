/* test_rotation_decide.c - the pure rotation decision over a fake world: steps, triggers,
 * crash points, rollback, emergency, repair, and simulated rotations with random crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/rotation.h"

#define N(a)	  (sizeof(a) / sizeof((a)[0]))
#define T0	  ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define OLD_ID	  "0000000000a1"
#define MAX_WL	  8
#define MAX_STEPS 4000

/* ---- the spec under test --------------------------------------------------------- */

static const char *SPEC_BASE =
    "{\"secretRef\":{\"name\":\"api-key\",\"key\":\"API_KEY\"},"
    "\"keyStore\":{\"address\":\"valkey:6379\"},"
    "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"api\"}],"
    "\"timeout\":\"5m\"},"
    "{\"name\":\"ui\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"ui\"},"
    "{\"kind\":\"DaemonSet\",\"name\":\"agent\"}]},"
    "{\"name\":\"engine\",\"workloads\":[{\"kind\":\"StatefulSet\",\"name\":\"scanner\"}]}]";

static void make_spec(struct kr_rotation_spec *spec, const char *extra)
{
	char text[4096];
	struct kr_error err;
	cJSON *j;

	snprintf(text, sizeof(text), "%s%s}", SPEC_BASE, extra ? extra : "");
	j = cJSON_Parse(text);
	assert_non_null(j);
	if (kr_rotation_spec_decode(j, spec, &err) != KR_OK)
		fail_msg("spec: %s", err.msg);
	cJSON_Delete(j);
}

#define ANALYSIS                                                                                   \
	",\"analysis\":{\"prometheus\":{\"url\":\"http://prom:9090\",\"query\":\"q\"},"            \
	"\"interval\":\"15s\",\"threshold\":0.5}"
#define FULL ANALYSIS ",\"validationPeriod\":\"2m\",\"verify\":{\"url\":\"http://api/ping\"}"

/* ---- the fake world -------------------------------------------------------------- */

struct fwl {
	struct kr_observed_workload o;
	enum kr_workload_kind kind;
	int progress;		      /* pods on the template, 0..replicas */
	char run_old[KR_ROT_ID_SIZE]; /* key of pods not yet replaced */
	char run_new[KR_ROT_ID_SIZE]; /* key of replaced pods */
	bool stuck;		      /* never progresses on a new-key template */
	bool broken;		      /* 401s when it runs a key other than OLD_ID */
};

struct world {
	struct kr_rotation_spec spec;
	time_t now, created;
	struct kr_rotation_status st;
	struct kr_observed_secret consumer;
	struct kr_observed_rotation_secret rs;
	struct fwl wl[MAX_WL];
	char active[16][KR_ROT_ID_SIZE];
	size_t n_active;
	char marker[KR_ROT_ID_SIZE];
	bool reachable;
	const char *rotate, *emergency;
	const char *abort_req, *promote_req;		  /* keyrotator.io/abort, /promote */
	struct kr_unlisted unlisted[KR_ROT_UNLISTED_MAX]; /* obs.unlisted */
	size_t n_unlisted;
	struct kr_observed_measurement meas;
	struct kr_observed_verify verify;
	bool verify_fails;
	double inconclusive_p;
	time_t last_used;
	bool store_repaired;		      /* the status's KeyStoreInSync says Repaired */
	const char *refusal_reason, *refusal; /* obs.refusal*: access refused (NULL: none) */
	int next_key;
	/* what happened */
	int generated;	  /* GENERATE effects in the current rotation */
	bool old_revoked; /* REVOKE_OLD effect in the current rotation */
	char revoked[16][KR_ROT_ID_SIZE];
	size_t n_revoked;
	int n_actions[KR_ACTION_FAIL_FINISH + 1];
};

static void wl_sync(struct fwl *w)
{
	struct kr_observed_workload *o = &w->o;
	int r = o->replicas;

	o->observed_generation = o->generation;
	o->updated = w->progress;
	o->available = w->progress;
	o->ready = r;
	o->status_replicas = w->progress < r ? r + 1 : r;
	o->desired_scheduled = r;
	o->updated_scheduled = w->progress;
	o->number_available = w->progress < r ? r - 1 : r;
	snprintf(o->current_revision, sizeof(o->current_revision), "%s",
		 w->progress < r ? "rev-old" : o->update_revision);
	if (w->progress >= r)
		snprintf(w->run_old, sizeof(w->run_old), "%s", w->run_new);
}

static void world_init(struct world *w, const char *extra)
{
	static const enum kr_workload_kind kinds[] = {KR_WORKLOAD_DEPLOYMENT,
						      KR_WORKLOAD_DEPLOYMENT, KR_WORKLOAD_DAEMONSET,
						      KR_WORKLOAD_STATEFULSET};

	memset(w, 0, sizeof(*w));
	make_spec(&w->spec, extra);
	assert_int_equal(w->spec.n_workloads, 4);
	w->now = T0;
	w->created = T0 - 86400;
	w->reachable = true;
	w->next_key = 0xb00;
	kr_rotation_status_init(&w->st);
	snprintf(w->st.current_key.id, KR_ROT_ID_SIZE, OLD_ID);
	w->st.current_key.created_at = T0 - 86400;
	w->consumer.exists = w->consumer.has_key = true;
	snprintf(w->consumer.key_id, KR_ROT_ID_SIZE, OLD_ID);
	snprintf(w->active[w->n_active++], KR_ROT_ID_SIZE, OLD_ID);
	snprintf(w->marker, KR_ROT_ID_SIZE, OLD_ID);
	for (size_t i = 0; i < 4; i++) {
		struct fwl *f = &w->wl[i];

		f->kind = kinds[i];
		f->o.exists = f->o.kind_supported = true;
		f->o.generation = 1;
		f->o.replicas = 2;
		f->progress = 2;
		snprintf(f->o.key_id, KR_ROT_ID_SIZE, OLD_ID);
		snprintf(f->o.update_revision, sizeof(f->o.update_revision), "rev-1");
		snprintf(f->run_old, KR_ROT_ID_SIZE, OLD_ID);
		snprintf(f->run_new, KR_ROT_ID_SIZE, OLD_ID);
		wl_sync(f);
	}
}

static void world_release(struct world *w)
{
	kr_rotation_spec_release(&w->spec);
}

static bool is_active(const struct world *w, const char *id)
{
	for (size_t i = 0; i < w->n_active; i++)
		if (strcmp(w->active[i], id) == 0)
			return true;
	return false;
}

static void activate_id(struct world *w, const char *id)
{
	if (!is_active(w, id) && w->n_active < N(w->active))
		snprintf(w->active[w->n_active++], KR_ROT_ID_SIZE, "%s", id);
}

static void revoke_id(struct world *w, const char *id)
{
	for (size_t i = 0; i < w->n_active; i++)
		if (strcmp(w->active[i], id) == 0)
			memmove(w->active[i], w->active[--w->n_active], KR_ROT_ID_SIZE);
	if (w->n_revoked < N(w->revoked))
		snprintf(w->revoked[w->n_revoked++], KR_ROT_ID_SIZE, "%s", id);
}

static void store_key(struct kr_observed *obs, const struct world *w, const char *id)
{
	struct kr_observed_keystore *s = &obs->store;

	if (!id[0] || s->n_keys >= KR_OBSERVED_STORE_KEYS)
		return;
	for (size_t i = 0; i < s->n_keys; i++)
		if (strcmp(s->keys[i].id, id) == 0)
			return;
	snprintf(s->keys[s->n_keys].id, KR_ROT_ID_SIZE, "%s", id);
	s->keys[s->n_keys].active = s->keys[s->n_keys].has_meta = is_active(w, id);
	s->n_keys++;
}

/* What the reconciler would observe; `wls` holds the workloads for the call. */
static void observe(const struct world *w, struct kr_observed *obs,
		    struct kr_observed_workload *wls)
{
	memset(obs, 0, sizeof(*obs));
	obs->now = w->now;
	obs->spec = &w->spec;
	obs->ns = "ns";
	obs->name = "kr";
	obs->generation = 1;
	obs->created_at = w->created;
	obs->rotate_request = w->rotate;
	obs->emergency_request = w->emergency;
	obs->abort_request = w->abort_req;
	obs->promote_request = w->promote_req;
	memcpy(obs->unlisted, w->unlisted, sizeof(obs->unlisted));
	obs->n_unlisted = w->n_unlisted;
	obs->status = w->st;
	obs->consumer = w->consumer;
	obs->rsecret = w->rs;
	for (size_t i = 0; i < w->spec.n_workloads; i++)
		wls[i] = w->wl[i].o;
	obs->workloads = wls;
	obs->store.reachable = w->reachable;
	snprintf(obs->store.error, sizeof(obs->store.error), "%s", w->reachable ? "" : "refused");
	store_key(obs, w, w->st.current_key.id);
	store_key(obs, w, w->st.pending_key.id);
	store_key(obs, w, w->st.previous_key.id);
	store_key(obs, w, w->consumer.key_id);
	store_key(obs, w, w->rs.pending_id);
	store_key(obs, w, w->rs.previous_id);
	obs->store.has_marker = w->marker[0] != '\0';
	obs->store_repaired = w->store_repaired;
	snprintf(obs->store.marker, KR_ROT_ID_SIZE, "%s", w->marker);
	obs->measurement = w->meas;
	obs->verify = w->verify;
	obs->old_key_usage_known = w->last_used != 0;
	obs->old_key_last_used_at = w->last_used;
	if (w->refusal_reason) {
		snprintf(obs->refusal_reason, sizeof(obs->refusal_reason), "%s", w->refusal_reason);
		snprintf(obs->refusal, sizeof(obs->refusal), "%s", w->refusal);
	}
}

static void decide(const struct world *w, struct kr_action *a)
{
	struct kr_observed obs;
	struct kr_observed_workload wls[MAX_WL];

	observe(w, &obs, wls);
	kr_rotation_decide(&obs, a);
}

static void restart(struct world *w, const struct kr_action *a)
{
	const struct kr_stage_spec *st = &w->spec.stages[a->stage];

	for (size_t j = 0; j < st->n_workloads; j++) {
		struct fwl *f = &w->wl[st->first + j];

		if (!(a->workload_mask & (UINT64_C(1) << j)) || strcmp(f->o.key_id, a->key_id) == 0)
			continue;
		snprintf(f->o.key_id, KR_ROT_ID_SIZE, "%s", a->key_id);
		f->o.generation++;
		snprintf(f->o.update_revision, sizeof(f->o.update_revision), "rev-%lld",
			 (long long)f->o.generation);
		f->progress = 0;
		snprintf(f->run_new, KR_ROT_ID_SIZE, "%s", w->consumer.key_id);
		wl_sync(f);
	}
}

/* The I/O of an action, as the reconciler would do it. */
static void effect(struct world *w, const struct kr_action *a)
{
	switch (a->type) {
	case KR_ACTION_GENERATE:
		w->rs.exists = w->rs.has_pending = true;
		snprintf(w->rs.pending_id, KR_ROT_ID_SIZE, "%012x", w->next_key++);
		w->rs.has_previous = w->consumer.has_key;
		snprintf(w->rs.previous_id, KR_ROT_ID_SIZE, "%s", w->consumer.key_id);
		w->generated++;
		break;
	case KR_ACTION_ACTIVATE:
		activate_id(w, a->key_id);
		break;
	case KR_ACTION_DISTRIBUTE:
	case KR_ACTION_ROLLBACK_SECRET:
		w->consumer.exists = w->consumer.has_key = true;
		snprintf(w->consumer.key_id, KR_ROT_ID_SIZE, "%s", a->key_id);
		break;
	case KR_ACTION_RESTART_STAGE:
	case KR_ACTION_ROLLBACK_RESTART_STAGE:
		restart(w, a);
		break;
	case KR_ACTION_REVOKE_OLD:
		w->old_revoked = true;
		revoke_id(w, a->key_id);
		if (a->repair.set_marker)
			snprintf(w->marker, KR_ROT_ID_SIZE, "%s", a->repair.marker);
		break;
	case KR_ACTION_REVOKE_NEW:
		revoke_id(w, a->key_id);
		break;
	case KR_ACTION_FINISH:
		if (a->repair.set_marker)
			snprintf(w->marker, KR_ROT_ID_SIZE, "%s", a->repair.marker);
		memset(&w->rs, 0, sizeof(w->rs));
		break;
	case KR_ACTION_FAIL_FINISH:
	case KR_ACTION_CLEANUP:
		memset(&w->rs, 0, sizeof(w->rs));
		break;
	case KR_ACTION_REPAIR_KEYSTORE:
		for (size_t i = 0; i < a->repair.n_add; i++)
			activate_id(w, a->repair.add[i].id);
		if (a->repair.set_marker)
			snprintf(w->marker, KR_ROT_ID_SIZE, "%s", a->repair.marker);
		break;
	default:
		break;
	}
}

static void record(struct world *w, const struct kr_action *a)
{
	if (a->type == KR_ACTION_BEGIN) {
		w->generated = 0;
		w->old_revoked = false;
	}
	if (a->status_changed)
		w->st = a->status;
}

/* Does the world's 401 rate rise? Broken consumers that run a new key fail. */
static void measure(struct world *w, unsigned *seed)
{
	w->meas.kind = KR_MEASUREMENT_VALUE;
	w->meas.rate = 0.01;
	if (w->inconclusive_p > 0 && (double)rand_r(seed) / RAND_MAX < w->inconclusive_p) {
		w->meas.kind = KR_MEASUREMENT_INCONCLUSIVE;
		snprintf(w->meas.error, sizeof(w->meas.error), "prometheus: timeout");
		return;
	}
	for (size_t i = 0; i < w->spec.n_workloads; i++)
		if (w->wl[i].broken && (strcmp(w->wl[i].run_new, OLD_ID) != 0 ||
					strcmp(w->wl[i].run_old, OLD_ID) != 0))
			w->meas.rate = 3.0;
}

static void tick(struct world *w, unsigned *seed)
{
	for (size_t i = 0; i < w->spec.n_workloads; i++) {
		struct fwl *f = &w->wl[i];

		if (f->progress >= f->o.replicas || (f->stuck && strcmp(f->o.key_id, OLD_ID) != 0))
			continue;
		if (rand_r(seed) % 2)
			f->progress++;
		wl_sync(f);
	}
}

/* ---- invariants -------------------------------------------------------------------- */

static bool wl_complete_on(const struct fwl *f, const char *id)
{
	return strcmp(f->o.key_id, id) == 0 && f->progress >= f->o.replicas &&
	       strcmp(f->run_old, id) == 0 && strcmp(f->run_new, id) == 0;
}

static bool was_revoked(const struct world *w, const char *id)
{
	for (size_t i = 0; i < w->n_revoked; i++)
		if (strcmp(w->revoked[i], id) == 0)
			return true;
	return false;
}

/* Checked before an action's effect is applied: the safety properties of DESIGN.md §2. */
static void check_action(const struct world *w, const struct kr_action *a)
{
	const char *new_id = w->rs.pending_id;

	if (a->type == KR_ACTION_GENERATE)
		assert_false(w->rs.has_pending); /* never a second new key */
	if (a->type == KR_ACTION_REVOKE_OLD) {
		assert_string_equal(a->key_id, w->rs.previous_id);
		assert_string_not_equal(a->key_id, w->consumer.key_id);
		assert_true(w->st.phase != KR_PHASE_ROLLING_BACK);
		for (size_t i = 0;
		     w->st.rotation.trigger != KR_TRIGGER_EMERGENCY && i < w->spec.n_workloads; i++)
			if (!wl_complete_on(&w->wl[i], new_id))
				fail_msg(
				    "old key revoked while workload %zu runs %s/%s (template %s)",
				    i, w->wl[i].run_old, w->wl[i].run_new, w->wl[i].o.key_id);
	}
	if (a->type == KR_ACTION_REVOKE_NEW) {
		assert_false(w->old_revoked);
		assert_string_equal(a->key_id, new_id);
		for (size_t i = 0; i < w->spec.n_workloads; i++) {
			assert_string_not_equal(w->wl[i].run_old, new_id);
			assert_string_not_equal(w->wl[i].run_new, new_id);
		}
	}
	if (a->type == KR_ACTION_ROLLBACK_BEGIN || a->type == KR_ACTION_ROLLBACK_SECRET)
		assert_false(w->old_revoked);
	if (a->type == KR_ACTION_ACTIVATE)
		assert_false(was_revoked(w, a->key_id));
	for (size_t i = 0; a->type == KR_ACTION_REPAIR_KEYSTORE && i < a->repair.n_add; i++)
		if (was_revoked(w, a->repair.add[i].id))
			fail_msg("repair re-adds revoked key %s", a->repair.add[i].id);
}

/* Checked after every step: nobody locked out (emergency rotations excepted, by design). */
static void check_world(const struct world *w)
{
	if (w->st.rotation.trigger == KR_TRIGGER_EMERGENCY && w->st.phase != KR_PHASE_IDLE)
		return;
	for (size_t i = 0; i < w->spec.n_workloads; i++) {
		const struct fwl *f = &w->wl[i];

		if ((f->run_old[0] && !is_active(w, f->run_old)) ||
		    (f->run_new[0] && !is_active(w, f->run_new)))
			fail_msg("workload %zu runs %s/%s, not active (phase %s step %s)", i,
				 f->run_old, f->run_new, kr_phase_name(w->st.phase),
				 kr_step_name(w->st.rotation.step));
	}
	/* no lost key: the old key's raw value is held until the rotation ends */
	if (w->st.phase != KR_PHASE_IDLE && w->st.phase != KR_PHASE_FAILED &&
	    !w->st.rotation.old_revoked && w->st.current_key.id[0] &&
	    w->st.rotation.trigger != KR_TRIGGER_BOOTSTRAP) /* bootstrap: already lost */
		if (strcmp(w->consumer.key_id, w->st.current_key.id) != 0 &&
		    strcmp(w->rs.previous_id, w->st.current_key.id) != 0)
			fail_msg("old key %s lost: Secret %s, rotation Secret %s/%s, step %s",
				 w->st.current_key.id, w->consumer.key_id, w->rs.pending_id,
				 w->rs.previous_id, kr_step_name(w->st.rotation.step));
}

enum fate { FATE_OK, FATE_CRASH_AFTER_IO, FATE_IO_FAILED };

/*
 * One reconcile: decide, check, then carry out the action with the given fate. MEASURE
 * and VERIFY feed their result into the next decision, as the reconciler does.
 */
static void step(struct world *w, struct kr_action *a, enum fate fate, unsigned *seed)
{
	decide(w, a);
	memset(&w->meas, 0, sizeof(w->meas));
	memset(&w->verify, 0, sizeof(w->verify));
	w->n_actions[a->type]++;
	check_action(w, a);
	if (a->type == KR_ACTION_MEASURE && fate != FATE_IO_FAILED) {
		measure(w, seed);
		return;
	}
	if (a->type == KR_ACTION_VERIFY && fate != FATE_IO_FAILED) {
		w->verify.result = w->verify_fails ? KR_VERIFY_FAILED : KR_VERIFY_PASSED;
		snprintf(w->verify.message, sizeof(w->verify.message), "%s",
			 w->verify_fails ? "old key accepted" : "ok");
		return;
	}
	if (fate == FATE_IO_FAILED)
		return;
	effect(w, a);
	if (fate == FATE_OK)
		record(w, a);
}

static bool settled(const struct world *w, const struct kr_action *a)
{
	return (w->st.phase == KR_PHASE_IDLE || w->st.phase == KR_PHASE_FAILED) &&
	       a->type == KR_ACTION_NONE;
}

/* Run to the end: random workload progress, time, and (crash_p) crashes and I/O errors. */
static int simulate(struct world *w, unsigned seed, int crash_p)
{
	struct kr_action a;
	int steps = 0;

	for (; steps < MAX_STEPS; steps++) {
		int r = (int)(rand_r(&seed) % 100);
		enum fate fate = r < crash_p	   ? FATE_CRASH_AFTER_IO
				 : r < 2 * crash_p ? FATE_IO_FAILED
						   : FATE_OK;

		step(w, &a, fate, &seed);
		check_world(w);
		if (settled(w, &a))
			break;
		assert_int_not_equal(a.type, KR_ACTION_REFUSE);
		if (a.type == KR_ACTION_WAIT || a.type == KR_ACTION_NONE) {
			int64_t ms = a.requeue_after_ms > 0 ? a.requeue_after_ms : 5000;

			w->now += (time_t)(ms / 1000) + (time_t)(rand_r(&seed) % 3);
		} else {
			w->now += (time_t)(rand_r(&seed) % 2);
		}
		tick(w, &seed);
	}
	assert_true(steps < MAX_STEPS);
	assert_true(w->generated <= 1);
	return steps;
}

/* ---- whole rotations --------------------------------------------------------------- */

static void expect_succeeded(const struct world *w, const char *old_id)
{
	const char *cur = w->st.current_key.id;

	assert_int_equal(w->st.phase, KR_PHASE_IDLE);
	assert_string_not_equal(cur, old_id);
	assert_string_equal(w->consumer.key_id, cur);
	assert_true(is_active(w, cur));
	assert_false(is_active(w, old_id));
	assert_string_equal(w->marker, cur);
	assert_false(w->rs.exists);
	assert_int_equal(w->generated, 1);
	for (size_t i = 0; i < w->spec.n_workloads; i++)
		assert_true(wl_complete_on(&w->wl[i], cur));
}

static void expect_rolled_back(const struct world *w)
{
	assert_int_equal(w->st.phase, KR_PHASE_FAILED);
	assert_int_equal(w->st.rotation.outcome, KR_OUTCOME_ROLLED_BACK);
	assert_string_equal(w->st.current_key.id, OLD_ID);
	assert_string_equal(w->consumer.key_id, OLD_ID);
	assert_true(is_active(w, OLD_ID));
	assert_false(w->old_revoked);
	assert_int_equal(w->n_active, 1); /* the new key is revoked */
	assert_false(w->rs.exists);
	for (size_t i = 0; i < w->spec.n_workloads; i++) {
		assert_string_equal(w->wl[i].run_old, OLD_ID);
		assert_string_equal(w->wl[i].run_new, OLD_ID);
	}
}

/* The milestones of a rotation, waits and measurements left out. */
static size_t milestones(struct world *w, enum kr_action_type *seq, size_t max)
{
	struct kr_action a;
	unsigned seed = 7;
	size_t n = 0;

	for (int i = 0; i < MAX_STEPS; i++) {
		step(w, &a, FATE_OK, &seed);
		check_world(w);
		if (a.type != KR_ACTION_WAIT && a.type != KR_ACTION_MEASURE &&
		    a.type != KR_ACTION_RECORD_MEASUREMENT && n < max)
			seq[n++] = a.type;
		if (settled(w, &a))
			return n;
		w->now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) : 1;
		for (int k = 0; k < 4; k++)
			tick(w, &seed);
	}
	fail_msg("no end");
	return 0;
}

static void expect_seq(const enum kr_action_type *got, size_t n, const enum kr_action_type *want,
		       size_t m)
{
	for (size_t i = 0; i < n || i < m; i++)
		if (i >= n || i >= m || got[i] != want[i])
			fail_msg("milestone %zu: got %s, want %s", i,
				 i < n ? kr_action_name(got[i]) : "(end)",
				 i < m ? kr_action_name(want[i]) : "(end)");
}

static void test_normal_rotation_steps(void **state)
{
	static const enum kr_action_type want[] = {
	    KR_ACTION_BEGIN,	     KR_ACTION_GENERATE,      KR_ACTION_ACTIVATE,
	    KR_ACTION_DISTRIBUTE,    KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE,
	    KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE, KR_ACTION_RESTART_STAGE,
	    KR_ACTION_ADVANCE_STAGE, KR_ACTION_START_REVOKE,  KR_ACTION_REVOKE_OLD,
	    KR_ACTION_VERIFY,	     KR_ACTION_RECORD_VERIFY, KR_ACTION_FINISH,
	    KR_ACTION_NONE,
	};
	enum kr_action_type seq[64];
	struct world w;
	size_t n;

	(void)state;
	world_init(&w, FULL);
	w.rotate = "2026-01-01";
	n = milestones(&w, seq, N(seq));
	expect_seq(seq, n, want, N(want));
	expect_succeeded(&w, OLD_ID);
	assert_string_equal(w.st.last_handled_request, "2026-01-01");
	assert_true(w.st.last_rotation_time > T0);
	/* baseline + 2 per stage + validation: at least 1 + 3 * 2 + 2 measurements */
	assert_true(w.n_actions[KR_ACTION_MEASURE] >= 9);
	world_release(&w);
}

static void test_emergency_rotation_steps(void **state)
{
	static const enum kr_action_type want[] = {
	    KR_ACTION_BEGIN,	     KR_ACTION_GENERATE,      KR_ACTION_ACTIVATE,
	    KR_ACTION_DISTRIBUTE,    KR_ACTION_REVOKE_OLD,    KR_ACTION_VERIFY,
	    KR_ACTION_RECORD_VERIFY, KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE,
	    KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE, KR_ACTION_RESTART_STAGE,
	    KR_ACTION_ADVANCE_STAGE, KR_ACTION_FINISH,	      KR_ACTION_NONE,
	};
	enum kr_action_type seq[64];
	struct world w;
	size_t n;

	(void)state;
	world_init(&w, FULL ",\"revokeWhenUnusedFor\":\"1h\"");
	w.emergency = "leaked in CI logs";
	w.last_used = T0; /* emergency does not wait for the old key to go unused */
	n = milestones(&w, seq, N(seq));
	expect_seq(seq, n, want, N(want));
	expect_succeeded(&w, OLD_ID);
	assert_int_equal(w.n_actions[KR_ACTION_MEASURE], 0); /* no analysis gates */
	assert_string_equal(w.st.last_handled_emergency, "leaked in CI logs");
	world_release(&w);
}

static void test_bootstrap_steps(void **state)
{
	static const enum kr_action_type want[] = {
	    KR_ACTION_BEGIN,	     KR_ACTION_GENERATE,      KR_ACTION_ACTIVATE,
	    KR_ACTION_DISTRIBUTE,    KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE,
	    KR_ACTION_RESTART_STAGE, KR_ACTION_ADVANCE_STAGE, KR_ACTION_RESTART_STAGE,
	    KR_ACTION_ADVANCE_STAGE, KR_ACTION_FINISH,	      KR_ACTION_NONE,
	};
	enum kr_action_type seq[64];
	struct world w;
	size_t n;

	(void)state;
	world_init(&w, FULL);
	memset(&w.consumer, 0, sizeof(w.consumer));
	kr_rotation_status_init(&w.st);
	w.n_active = 0;
	w.marker[0] = '\0';
	for (size_t i = 0; i < w.spec.n_workloads; i++) {
		w.wl[i].o.key_id[0] = w.wl[i].run_old[0] = w.wl[i].run_new[0] = '\0';
	}
	n = milestones(&w, seq, N(seq));
	expect_seq(seq, n, want, N(want));
	assert_int_equal(w.st.phase, KR_PHASE_IDLE);
	assert_true(w.consumer.has_key);
	assert_true(is_active(&w, w.consumer.key_id));
	assert_string_equal(w.marker, w.consumer.key_id);
	assert_string_equal(w.st.current_key.id, w.consumer.key_id);
	world_release(&w);
}

static void test_rollback_on_401s(void **state)
{
	static const enum kr_action_type want[] = {
	    KR_ACTION_BEGIN,
	    KR_ACTION_GENERATE,
	    KR_ACTION_ACTIVATE,
	    KR_ACTION_DISTRIBUTE,
	    KR_ACTION_RESTART_STAGE,
	    KR_ACTION_ADVANCE_STAGE,
	    KR_ACTION_RESTART_STAGE,
	    KR_ACTION_ROLLBACK_SECRET,
	    KR_ACTION_ROLLBACK_RESTART_STAGE,
	    KR_ACTION_ROLLBACK_RESTART_STAGE,
	    KR_ACTION_REVOKE_NEW,
	    KR_ACTION_FAIL_FINISH,
	    KR_ACTION_NONE,
	};
	enum kr_action_type seq[64];
	struct world w;
	size_t n;

	(void)state;
	world_init(&w, FULL);
	w.wl[2].broken = true; /* the DaemonSet of stage ui does not take the new key */
	w.rotate = "r1";
	n = milestones(&w, seq, N(seq));
	expect_seq(seq, n, want, N(want));
	expect_rolled_back(&w);
	assert_non_null(strstr(w.st.rotation.reason, "401 rate"));
	world_release(&w);
}

static void test_rollback_on_stage_timeout(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "");
	w.wl[3].stuck = true; /* the StatefulSet never becomes ready */
	w.rotate = "r1";
	simulate(&w, 3, 0);
	expect_rolled_back(&w);
	assert_non_null(strstr(w.st.rotation.reason, "timeout"));
	world_release(&w);
}

/* ---- crash after every action ---------------------------------------------------- */

/*
 * Walk a rotation; before each action, fork the world, carry the action's I/O out without
 * recording its status (the controller died in between), re-decide, check the decision
 * picks up without repeating a non-idempotent effect, and run the fork to its end.
 */
static void crash_walk(const char *extra, int broken, const char *emergency)
{
	struct world w;
	struct kr_action a, again;
	unsigned seed = 11;
	int crashes = 0;

	world_init(&w, extra);
	if (broken >= 0)
		w.wl[broken].broken = true;
	w.rotate = emergency ? NULL : "r1";
	w.emergency = emergency;
	for (int i = 0; i < MAX_STEPS; i++) {
		struct world fork = w;
		unsigned fseed = seed;

		decide(&w, &a);
		if (!kr_action_is_status_only(a.type) && a.type != KR_ACTION_MEASURE &&
		    a.type != KR_ACTION_VERIFY) {
			step(&fork, &again, FATE_CRASH_AFTER_IO, &fseed);
			assert_int_equal(again.type, a.type);
			decide(&fork, &again);
			if (a.type == KR_ACTION_GENERATE)
				assert_int_equal(again.type, KR_ACTION_ACTIVATE);
			else if (a.type == KR_ACTION_RESTART_STAGE)
				assert_true(again.type != KR_ACTION_RESTART_STAGE ||
					    again.workload_mask == 0);
			else if (a.type == KR_ACTION_ROLLBACK_RESTART_STAGE)
				assert_true(again.type != a.type || again.stage != a.stage);
			else if (a.type != KR_ACTION_REPAIR_KEYSTORE)
				assert_string_equal(kr_action_name(again.type),
						    kr_action_name(a.type));
			simulate(&fork, fseed, 0);
			if (broken >= 0)
				expect_rolled_back(&fork);
			else
				expect_succeeded(&fork, OLD_ID);
			crashes++;
		}
		step(&w, &a, FATE_OK, &seed);
		if (settled(&w, &a))
			break;
		w.now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) : 1;
		tick(&w, &seed);
	}
	assert_true(crashes >= 8);
	if (broken >= 0)
		expect_rolled_back(&w);
	else
		expect_succeeded(&w, OLD_ID);
	world_release(&w);
}

static void test_crash_after_each_action_normal(void **state)
{
	(void)state;
	crash_walk(FULL, -1, NULL);
}

static void test_crash_after_each_action_rollback(void **state)
{
	(void)state;
	crash_walk(FULL, 3, NULL);
}

static void test_crash_after_each_action_emergency(void **state)
{
	(void)state;
	crash_walk(FULL, -1, "leak");
}

/* ---- property: many random rotations with random crashes ------------------------- */

struct scenario {
	const char *name;
	const char *extra;
	int broken, stuck;
	double inconclusive_p;
	bool emergency, bootstrap;
	enum kr_phase end;
};

static const struct scenario scenarios[] = {
    {"healthy", FULL, -1, -1, 0, false, false, KR_PHASE_IDLE},
    {"healthy, no analysis", "", -1, -1, 0, false, false, KR_PHASE_IDLE},
    {"flaky queries", FULL, -1, -1, 0.2, false, false, KR_PHASE_IDLE},
    {"broken consumer", FULL, 1, -1, 0, false, false, KR_PHASE_FAILED},
    {"broken last stage", FULL, 3, -1, 0.1, false, false, KR_PHASE_FAILED},
    {"stuck rollout", ANALYSIS, -1, 2, 0, false, false, KR_PHASE_FAILED},
    {"dead prometheus", FULL, -1, -1, 1.0, false, false, KR_PHASE_FAILED},
    {"emergency", FULL, -1, -1, 0, true, false, KR_PHASE_IDLE},
    {"bootstrap", FULL, -1, -1, 0, false, true, KR_PHASE_IDLE},
};

static void run_scenario(const struct scenario *sc, unsigned seed)
{
	struct world w;

	world_init(&w, sc->extra);
	if (sc->broken >= 0)
		w.wl[sc->broken].broken = true;
	if (sc->stuck >= 0)
		w.wl[sc->stuck].stuck = true;
	w.inconclusive_p = sc->inconclusive_p;
	if (sc->emergency)
		w.emergency = "e1";
	else
		w.rotate = "r1";
	if (sc->bootstrap) {
		memset(&w.consumer, 0, sizeof(w.consumer));
		w.n_active = 0;
		w.marker[0] = '\0';
		for (size_t i = 0; i < w.spec.n_workloads; i++)
			w.wl[i].o.key_id[0] = w.wl[i].run_old[0] = w.wl[i].run_new[0] = '\0';
	}
	simulate(&w, seed, 10);
	if (w.st.phase != sc->end)
		fail_msg("%s, seed %u: ended %s (%s)", sc->name, seed, kr_phase_name(w.st.phase),
			 w.st.rotation.reason);
	if (sc->end == KR_PHASE_FAILED && sc->inconclusive_p < 1.0)
		expect_rolled_back(&w);
	else if (sc->end == KR_PHASE_FAILED)
		assert_true(is_active(&w, OLD_ID) && !w.old_revoked);
	else if (!sc->bootstrap)
		expect_succeeded(&w, OLD_ID);
	world_release(&w);
}

static void test_random_rotations_keep_invariants(void **state)
{
	(void)state;
	for (size_t s = 0; s < N(scenarios); s++)
		for (unsigned seed = 1; seed <= 60; seed++)
			run_scenario(&scenarios[s], seed * 7919 + (unsigned)s);
}

/* ---- triggers, refusals, holds: one observed state, one expected action ---------- */

static void set_failed(struct world *w)
{
	w->st.phase = KR_PHASE_FAILED;
	w->st.rotation.trigger = KR_TRIGGER_MANUAL;
	w->st.rotation.started_at = T0 - 60;
	w->st.rotation.outcome = KR_OUTCOME_ROLLED_BACK;
	snprintf(w->st.last_handled_request, KR_ROT_REQUEST_MAX, "r1");
	w->rotate = "r1";
}

static void s_none(struct world *w)
{
	(void)w;
}
static void s_rotate(struct world *w)
{
	w->rotate = "2026-01-01T00:00:00Z";
}
static void s_rotate_handled(struct world *w)
{
	w->rotate = "r1";
	snprintf(w->st.last_handled_request, KR_ROT_REQUEST_MAX, "r1");
}
static void s_emergency(struct world *w)
{
	w->emergency = "leak";
	w->rotate = "r2";
}
static void s_emergency_handled(struct world *w)
{
	w->emergency = "leak";
	snprintf(w->st.last_handled_emergency, KR_ROT_REQUEST_MAX, "leak");
}
static void s_no_key(struct world *w)
{
	memset(&w->consumer, 0, sizeof(w->consumer));
}
static void s_schedule_due(struct world *w)
{
	w->created = T0 - 40 * 86400;
	w->st.last_rotation_time = T0 - 35 * 86400;
}
static void s_max_age(struct world *w)
{
	w->st.current_key.created_at = T0 - 31 * 86400;
}
static void s_suspended(struct world *w)
{
	w->spec.suspend = true;
	w->rotate = "r9";
}
static void s_failed_no_retry(struct world *w)
{
	set_failed(w);
	w->st.current_key.created_at = T0 - 400 * 86400; /* maxKeyAge long passed */
}
static void s_failed_new_request(struct world *w)
{
	set_failed(w);
	w->rotate = "r2";
}
static void s_failed_no_key(struct world *w)
{
	set_failed(w);
	memset(&w->consumer, 0, sizeof(w->consumer));
}
static void s_conflict(struct world *w)
{
	w->rotate = "r1";
	w->n_actions[0] = -1; /* marker for the observer below */
}
static void s_missing_wl(struct world *w)
{
	w->rotate = "r1";
	w->wl[1].o.exists = false;
}
static void s_unreachable(struct world *w)
{
	w->rotate = "r1";
	w->reachable = false;
}
static void s_dry_run(struct world *w)
{
	w->rotate = "r1";
	w->spec.dry_run = true;
}
static void s_adopt(struct world *w)
{
	snprintf(w->consumer.key_id, KR_ROT_ID_SIZE, "0000000000c3");
	snprintf(w->active[0], KR_ROT_ID_SIZE, "0000000000c3");
	snprintf(w->marker, KR_ROT_ID_SIZE, "0000000000c3");
}
static void s_data_loss(struct world *w)
{
	w->n_active = 0;
	w->marker[0] = '\0';
}
static void s_stale_rsecret(struct world *w)
{
	w->rs.exists = w->rs.has_pending = w->rs.has_previous = true;
	snprintf(w->rs.pending_id, KR_ROT_ID_SIZE, "0000000000d4");
	snprintf(w->rs.previous_id, KR_ROT_ID_SIZE, OLD_ID);
}
static void s_long_request(struct world *w)
{
	static char big[400];

	memset(big, 'x', sizeof(big) - 1);
	w->rotate = big;
}

struct trigger_case {
	const char *name;
	void (*setup)(struct world *);
	enum kr_action_type type;
	enum kr_trigger trigger; /* for BEGIN */
	const char *reason_has;
};

static const struct trigger_case trigger_cases[] = {
    {"nothing due", s_none, KR_ACTION_NONE, 0, ""},
    {"rotate annotation", s_rotate, KR_ACTION_BEGIN, KR_TRIGGER_MANUAL, "keyrotator.io/rotate"},
    {"same annotation twice", s_rotate_handled, KR_ACTION_NONE, 0, ""},
    {"emergency first", s_emergency, KR_ACTION_BEGIN, KR_TRIGGER_EMERGENCY, "leak"},
    {"emergency handled", s_emergency_handled, KR_ACTION_NONE, 0, ""},
    {"bootstrap", s_no_key, KR_ACTION_BEGIN, KR_TRIGGER_BOOTSTRAP, "has no key"},
    {"schedule due", s_schedule_due, KR_ACTION_BEGIN, KR_TRIGGER_SCHEDULE, "schedule"},
    {"max age", s_max_age, KR_ACTION_BEGIN, KR_TRIGGER_MAX_AGE, "maxKeyAge"},
    {"suspended", s_suspended, KR_ACTION_NONE, 0, "suspended"},
    {"failed: no retry", s_failed_no_retry, KR_ACTION_NONE, 0, ""},
    {"failed: next request", s_failed_new_request, KR_ACTION_BEGIN, KR_TRIGGER_MANUAL, "r2"},
    {"failed: no bootstrap retry", s_failed_no_key, KR_ACTION_NONE, 0, ""},
    {"secret conflict", s_conflict, KR_ACTION_REFUSE, 0, "already managed by KeyRotation"},
    {"missing workload", s_missing_wl, KR_ACTION_REFUSE, 0, "Deployment/ui: not found"},
    {"store unreachable", s_unreachable, KR_ACTION_WAIT, 0, "unreachable"},
    {"dry run", s_dry_run, KR_ACTION_PLAN, 0, "dryRun"},
    {"adopt the Secret's key", s_adopt, KR_ACTION_UPDATE_STATUS, 0, "adopt key 0000000000c3"},
    {"valkey data loss", s_data_loss, KR_ACTION_REPAIR_KEYSTORE, 0, "re-add key " OLD_ID},
    {"stale rotation secret", s_stale_rsecret, KR_ACTION_CLEANUP, 0, "stale"},
    {"annotation too long", s_long_request, KR_ACTION_REFUSE, 0, "bytes"},
};

static void test_triggers_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(trigger_cases); i++) {
		const struct trigger_case *c = &trigger_cases[i];
		struct kr_observed obs;
		struct kr_observed_workload wls[MAX_WL];
		struct kr_action a;
		struct world w;

		world_init(&w, ",\"schedule\":\"0 3 1 * *\",\"maxKeyAge\":\"720h\"");
		c->setup(&w);
		observe(&w, &obs, wls);
		if (w.n_actions[0] == -1) {
			obs.secret_conflict = true;
			snprintf(obs.conflict_owner, sizeof(obs.conflict_owner), "ns/older");
		}
		kr_rotation_decide(&obs, &a);
		if (a.type != c->type || (c->trigger && a.status.rotation.trigger != c->trigger) ||
		    !strstr(a.reason, c->reason_has))
			fail_msg("%s: got %s (%s) \"%s\"", c->name, kr_action_name(a.type),
				 kr_trigger_name(a.status.rotation.trigger), a.reason);
		if (a.type == KR_ACTION_REFUSE) {
			assert_int_equal(a.conditions[KR_COND_READY].status, KR_COND_FALSE);
			assert_false(a.status_changed && strcmp(a.status.last_handled_request,
								w.st.last_handled_request));
		}
		world_release(&w);
	}
}

static void test_invalid_spec_refused(void **state)
{
	struct kr_observed obs;
	struct kr_action a;

	(void)state;
	memset(&obs, 0, sizeof(obs));
	obs.spec_error = "spec.stages[1].timeout: \"10x\" is not a duration";
	kr_rotation_decide(&obs, &a);
	assert_int_equal(a.type, KR_ACTION_REFUSE);
	assert_string_equal(a.conditions[KR_COND_READY].reason, "InvalidSpec");
	assert_non_null(strstr(a.conditions[KR_COND_READY].message, "spec.stages[1].timeout"));
	assert_true(a.event.set && a.event.warning);
}

/* ---- access refused (obs.refusal): hold everything, touch nothing ------------------ */

#define REFUSAL_MSG                                                                                \
	"Secret ns/api-key is not managed by this KeyRotation: add the annotation "                \
	"keyrotator.io/keyrotation: kr to it (someone who may edit that Secret must opt it in)"

struct refusal_case {
	const char *reason;
	const char *message;
};

/* The reasons the reconciler refuses with (observe.c, secrets.c, store.c). */
static const struct refusal_case refusals[] = {
    {"SecretNotOptedIn", REFUSAL_MSG},
    {"RotationSecretNotOwned",
     "Secret ns/kr-rotation is not owned by this KeyRotation (no ownerReference to "
     "KeyRotation kr with uid 0000): delete or rename that Secret, or rename the KeyRotation"},
    {"CredentialSecretNotOptedIn",
     "spec.verify.caSecretRef: Secret ns/ca does not exist or is not opted in for this "
     "KeyRotation: create it with the annotation keyrotator.io/keyrotation: kr (someone who "
     "may read that Secret must opt it in)"},
    {"InvalidSecretRef", "spec.secretRef.name: Secret ns/kr-rotation is this KeyRotation's own "
			 "rotation Secret, which holds the keys in flight; name the consumers' "
			 "Secret"},
};

/*
 * A refused decision: REFUSE (no I/O of its own), Ready=False and a Warning event with the
 * refusal's reason and message, and the status as it was: no step taken, no key adopted,
 * nothing rolled back or revoked, no history.
 */
static void expect_refused(const struct world *w, const struct kr_action *a,
			   const struct refusal_case *r, const char *where)
{
	const struct kr_rotation_status *st = &a->status;

	if (a->type != KR_ACTION_REFUSE)
		fail_msg("%s, %s: got %s \"%s\"", where, r->reason, kr_action_name(a->type),
			 a->reason);
	assert_true(kr_action_is_status_only(a->type));
	assert_string_equal(a->reason, r->message);
	assert_int_equal(a->conditions[KR_COND_READY].status, KR_COND_FALSE);
	assert_string_equal(a->conditions[KR_COND_READY].reason, r->reason);
	assert_string_equal(a->conditions[KR_COND_READY].message, r->message);
	assert_true(a->event.set);
	assert_true(a->event.warning);
	assert_string_equal(a->event.reason, r->reason);
	assert_string_equal(a->event.message, r->message);
	assert_false(a->has_history);
	assert_true(a->requeue_after_ms > 0); /* no watch sees a Secret opt in */
	assert_int_equal(a->workload_mask, 0);
	assert_string_equal(a->key_id, "");
	assert_int_equal(a->repair.n_add, 0);
	assert_false(a->repair.set_marker);
	assert_int_equal(st->phase, w->st.phase);
	assert_memory_equal(&st->rotation, &w->st.rotation, sizeof(st->rotation));
	assert_memory_equal(&st->current_key, &w->st.current_key, sizeof(st->current_key));
	assert_memory_equal(&st->pending_key, &w->st.pending_key, sizeof(st->pending_key));
	assert_memory_equal(&st->previous_key, &w->st.previous_key, sizeof(st->previous_key));
	assert_string_equal(st->last_handled_request, w->st.last_handled_request);
	assert_string_equal(st->last_handled_emergency, w->st.last_handled_emergency);
}

struct idle_refusal_case {
	const char *name;
	void (*setup)(struct world *);
	enum kr_action_type unrefused; /* what the same world gets without the refusal */
};

/* Idle or Failed: no rotation starts, nothing is adopted, cleaned, repaired or planned. */
static const struct idle_refusal_case idle_refusal_cases[] = {
    {"nothing due", s_none, KR_ACTION_NONE},
    {"rotate annotation", s_rotate, KR_ACTION_BEGIN},
    {"emergency annotation", s_emergency, KR_ACTION_BEGIN},
    {"bootstrap", s_no_key, KR_ACTION_BEGIN},
    {"schedule due", s_schedule_due, KR_ACTION_BEGIN},
    {"adopt the Secret's key", s_adopt, KR_ACTION_UPDATE_STATUS},
    {"valkey data loss", s_data_loss, KR_ACTION_REPAIR_KEYSTORE},
    {"stale rotation secret", s_stale_rsecret, KR_ACTION_CLEANUP},
    {"store unreachable", s_unreachable, KR_ACTION_WAIT},
    {"dry run", s_dry_run, KR_ACTION_PLAN},
    {"failed: next request", s_failed_new_request, KR_ACTION_BEGIN},
};

static void test_refused_when_idle(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(idle_refusal_cases); i++) {
		const struct idle_refusal_case *c = &idle_refusal_cases[i];

		for (size_t r = 0; r < N(refusals); r++) {
			struct kr_action a;
			struct world w;

			world_init(&w, ",\"schedule\":\"0 3 1 * *\",\"maxKeyAge\":\"720h\"");
			c->setup(&w);
			decide(&w, &a);
			if (a.type != c->unrefused)
				fail_msg("%s: without a refusal got %s", c->name,
					 kr_action_name(a.type));
			w.refusal_reason = refusals[r].reason;
			w.refusal = refusals[r].message;
			decide(&w, &a);
			expect_refused(&w, &a, &refusals[r], c->name);
			world_release(&w);
		}
	}
}

/*
 * A rotation (manual, requested at T0; `stuck`: stage api never rolls out, so it rolls
 * back) run until its next action would be `next`.
 */
static void run_until(struct world *w, enum kr_action_type next, bool stuck)
{
	struct kr_action a;
	unsigned seed = 3;

	world_init(w, "");
	w->rotate = "r1";
	w->wl[0].stuck = stuck;
	for (int i = 0; i < MAX_STEPS; i++) {
		decide(w, &a);
		if (a.type == next && w->st.phase != KR_PHASE_IDLE &&
		    w->st.phase != KR_PHASE_FAILED)
			return;
		step(w, &a, FATE_OK, &seed);
		w->now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) : 1;
		for (int k = 0; k < 4; k++)
			tick(w, &seed);
	}
	fail_msg("%s never came", kr_action_name(next));
}

static void also_emergency(struct world *w)
{
	w->emergency = "leak";
}
static void also_unreachable(struct world *w)
{
	w->reachable = false;
}
static void also_data_loss(struct world *w)
{
	w->n_active = 0;
	w->marker[0] = '\0';
}

struct flight_refusal_case {
	enum kr_action_type next; /* what the rotation is about to do */
	bool rollback;		  /* in a rotation that rolls back */
	void (*also)(struct world *);
	enum kr_action_type also_next; /* what it is about to do after `also` */
};

/* Mid-rotation the rotation holds where it is: no step, no rollback, no revoke. */
static const struct flight_refusal_case flight_refusal_cases[] = {
    {KR_ACTION_GENERATE, false, NULL, 0},
    {KR_ACTION_ACTIVATE, false, NULL, 0},
    {KR_ACTION_DISTRIBUTE, false, NULL, 0},
    {KR_ACTION_RESTART_STAGE, false, NULL, 0},
    {KR_ACTION_RESTART_STAGE, false, also_emergency, KR_ACTION_ESCALATE},
    {KR_ACTION_RESTART_STAGE, false, also_unreachable, KR_ACTION_WAIT},
    {KR_ACTION_RESTART_STAGE, false, also_data_loss, KR_ACTION_REPAIR_KEYSTORE},
    {KR_ACTION_ADVANCE_STAGE, false, NULL, 0},
    {KR_ACTION_START_REVOKE, false, NULL, 0},
    {KR_ACTION_START_REVOKE, false, also_emergency, KR_ACTION_ESCALATE},
    {KR_ACTION_REVOKE_OLD, false, NULL, 0},
    {KR_ACTION_FINISH, false, NULL, 0},
    {KR_ACTION_ROLLBACK_BEGIN, true, NULL, 0},
    {KR_ACTION_ROLLBACK_SECRET, true, NULL, 0},
    {KR_ACTION_ROLLBACK_RESTART_STAGE, true, NULL, 0},
    {KR_ACTION_REVOKE_NEW, true, NULL, 0},
    {KR_ACTION_FAIL_FINISH, true, NULL, 0},
};

static void test_refused_mid_rotation(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(flight_refusal_cases); i++) {
		const struct flight_refusal_case *c = &flight_refusal_cases[i];

		for (size_t r = 0; r < N(refusals); r++) {
			struct kr_action a;
			struct world w;
			char where[64];

			snprintf(where, sizeof(where), "about to %s%s", kr_action_name(c->next),
				 c->also ? " (and more)" : "");
			run_until(&w, c->next, c->rollback);
			if (c->also) {
				c->also(&w);
				decide(&w, &a);
				if (a.type != c->also_next)
					fail_msg("%s: got %s", where, kr_action_name(a.type));
			}
			w.refusal_reason = refusals[r].reason;
			w.refusal = refusals[r].message;
			decide(&w, &a);
			expect_refused(&w, &a, &refusals[r], where);
			/* Still refused a day later: it holds; no stage timeout rolls it back. */
			w.now += 86400;
			decide(&w, &a);
			expect_refused(&w, &a, &refusals[r], where);
			/* Opted in again: the rotation goes on from where it was. */
			w.refusal_reason = w.refusal = NULL;
			decide(&w, &a);
			assert_int_not_equal(a.type, KR_ACTION_REFUSE);
			world_release(&w);
		}
	}
}

/* Observed state of a rotation at step RollOut, stage 0 restarted at T0. */
static void at_rollout(struct world *w, const char *extra)
{
	struct kr_action a;
	unsigned seed = 1;

	world_init(w, extra);
	w->rotate = "r1";
	for (int i = 0; i < 50 && w->st.rotation.step != KR_STEP_ROLLOUT; i++)
		step(w, &a, FATE_OK, &seed);
	step(w, &a, FATE_OK, &seed);
	assert_int_equal(a.type, KR_ACTION_RESTART_STAGE);
	assert_int_equal(w->st.rotation.stage_started_at, w->now);
}

static void test_rollout_holds_and_failures(void **state)
{
	struct world w;
	struct kr_action a;

	(void)state;
	/* paused: reported as Degraded, waited on only until the stage timeout */
	at_rollout(&w, "");
	w.wl[0].o.paused = true;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_string_equal(a.conditions[KR_COND_DEGRADED].reason, "RolloutBlocked");
	assert_non_null(strstr(a.reason, "paused"));
	w.now += 301;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_ROLLBACK_BEGIN);
	assert_int_equal(a.status.phase, KR_PHASE_ROLLING_BACK);
	assert_non_null(strstr(a.status.rotation.reason, "stage api failed"));
	world_release(&w);
	/* ProgressDeadlineExceeded: rollback at once */
	at_rollout(&w, "");
	w.wl[0].o.progress_deadline_exceeded = true;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_ROLLBACK_BEGIN);
	assert_non_null(strstr(a.status.rotation.reason, "ProgressDeadlineExceeded"));
	world_release(&w);
	/* a workload deleted mid-rotation: wait, then time out */
	at_rollout(&w, "");
	w.wl[0].o.exists = false;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_non_null(strstr(a.reason, "not found"));
	world_release(&w);
	/* the same annotation again restarts nothing */
	at_rollout(&w, "");
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	world_release(&w);
}

static void test_revoke_waits_for_unused_old_key(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 5;
	char used[32];

	(void)state;
	world_init(&w, ",\"validationPeriod\":\"0s\",\"revokeWhenUnusedFor\":\"5m\"");
	w.rotate = "r1";
	for (int i = 0; i < 400 && w.st.rotation.step != KR_STEP_REVOKE; i++) {
		step(&w, &a, FATE_OK, &seed);
		w.now += 1;
		for (int k = 0; k < 4; k++)
			tick(&w, &seed);
	}
	assert_int_equal(w.st.phase, KR_PHASE_REVOKING);
	w.last_used = w.now - 60; /* a forgotten consumer used the old key a minute ago */
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_string_equal(a.conditions[KR_COND_DEGRADED].reason, "OldKeyInUse");
	kr_time_format_rfc3339(w.last_used, used, sizeof(used));
	assert_non_null(strstr(a.conditions[KR_COND_DEGRADED].message, used)); /* the last use */
	assert_non_null(strstr(a.conditions[KR_COND_DEGRADED].message, "unused for 300s"));
	assert_int_equal(a.requeue_after_ms, 240000);
	w.now += 240;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_REVOKE_OLD);
	world_release(&w);
}

/* The validation period is never cut short by the clock's whole seconds. */
static void test_validation_period_is_never_short(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 9;
	time_t began;

	(void)state;
	world_init(&w, ",\"validationPeriod\":\"1s\"");
	w.rotate = "r1";
	for (int i = 0; i < 400 && w.st.rotation.step != KR_STEP_VALIDATE; i++) {
		step(&w, &a, FATE_OK, &seed);
		for (int k = 0; k < 4; k++)
			tick(&w, &seed);
	}
	assert_int_equal(w.st.rotation.step, KR_STEP_VALIDATE);
	began = w.st.rotation.window_started_at;
	/*
	 * The window may have begun at the very end of second `began`: one second later less
	 * than a second may have passed, so the rotation still validates.
	 */
	w.now = began + 1;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_true(a.requeue_after_ms > 0 && a.requeue_after_ms <= 2000);
	w.now = began + 2;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_START_REVOKE);
	world_release(&w);
}

/*
 * A pod the last rollout replaced may keep serving with the old key for its
 * terminationGracePeriodSeconds (terminating pods are not counted in status): the revoke
 * waits that long after the last stage completed when it is longer than validationPeriod.
 */
static void test_revoke_waits_for_the_longest_grace_period(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 9;
	time_t began;

	(void)state;
	world_init(&w, ",\"validationPeriod\":\"1s\"");
	w.wl[1].o.termination_grace_s = 90;
	w.wl[2].o.termination_grace_s = 30;
	w.rotate = "r1";
	for (int i = 0; i < 400 && w.st.rotation.step != KR_STEP_VALIDATE; i++) {
		step(&w, &a, FATE_OK, &seed);
		for (int k = 0; k < 4; k++)
			tick(&w, &seed);
	}
	assert_int_equal(w.st.rotation.step, KR_STEP_VALIDATE);
	began = w.st.rotation.window_started_at;
	w.now = began + 2; /* the validation period is over, the longest grace is not */
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_non_null(strstr(a.reason, "terminationGracePeriodSeconds"));
	assert_true(a.requeue_after_ms > 80000 && a.requeue_after_ms <= 90000);
	w.now = began + 90;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	w.now = began + 91;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_START_REVOKE);
	world_release(&w);
}

static void test_verify_failure_finishes_failed(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, FULL);
	w.verify_fails = true;
	w.rotate = "r1";
	simulate(&w, 9, 0);
	assert_int_equal(w.st.phase, KR_PHASE_FAILED);
	assert_int_equal(w.st.rotation.outcome, KR_OUTCOME_FAILED);
	assert_string_not_equal(w.st.current_key.id, OLD_ID); /* the new key is in use */
	assert_non_null(strstr(w.st.rotation.reason, "verify failed"));
	world_release(&w);
}

static void test_inconclusive_holds_then_rolls_back(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 3;

	(void)state;
	at_rollout(&w, FULL);
	for (int i = 0; i < 20; i++)
		tick(&w, &seed);
	w.inconclusive_p = 1.0;
	for (int n = 1; n <= 4; n++) {
		step(&w, &a, FATE_OK, &seed); /* MEASURE */
		assert_int_equal(a.type, KR_ACTION_MEASURE);
		step(&w, &a, FATE_OK, &seed); /* RECORD_MEASUREMENT */
		assert_int_equal(a.type, KR_ACTION_RECORD_MEASUREMENT);
		if (n < 4) {
			assert_string_equal(a.conditions[KR_COND_DEGRADED].reason,
					    "AnalysisInconclusive");
			assert_int_equal(w.st.phase, KR_PHASE_ROTATING);
		}
		w.now += 15;
	}
	assert_int_equal(w.st.phase, KR_PHASE_ROLLING_BACK);
	assert_non_null(strstr(w.st.rotation.reason, "4 inconclusive"));
	world_release(&w);
}

/*
 * Between measurements the rotation holds, and Degraded keeps saying why (not only in the
 * status written with the measurement); a passing measurement clears it, and the reason does
 * not end up in the history of a rotation that then succeeds.
 */
static void test_hold_keeps_degraded_until_a_pass(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 3;

	(void)state;
	at_rollout(&w, FULL);
	for (int i = 0; i < 20; i++)
		tick(&w, &seed);
	w.inconclusive_p = 1.0;
	for (int n = 1; n <= 2; n++) {
		step(&w, &a, FATE_OK, &seed); /* MEASURE */
		step(&w, &a, FATE_OK, &seed); /* RECORD_MEASUREMENT */
		w.now += 5;
		decide(&w, &a); /* waiting for the next interval */
		assert_int_equal(a.type, KR_ACTION_WAIT);
		assert_int_equal(a.conditions[KR_COND_DEGRADED].status, KR_COND_TRUE);
		assert_string_equal(a.conditions[KR_COND_DEGRADED].reason, "AnalysisInconclusive");
		assert_non_null(
		    strstr(a.conditions[KR_COND_DEGRADED].message, "prometheus: timeout"));
		w.now += 10;
	}
	w.inconclusive_p = 0;
	step(&w, &a, FATE_OK, &seed); /* MEASURE */
	step(&w, &a, FATE_OK, &seed); /* RECORD_MEASUREMENT: a pass */
	assert_int_equal(a.conditions[KR_COND_DEGRADED].status, KR_COND_FALSE);
	assert_string_equal(w.st.rotation.reason, "");
	w.now += 5;
	decide(&w, &a);
	assert_int_equal(a.conditions[KR_COND_DEGRADED].status, KR_COND_FALSE);
	simulate(&w, seed, 0);
	assert_int_equal(w.st.phase, KR_PHASE_IDLE);
	assert_null(strstr(w.st.rotation.reason, "inconclusive"));
	world_release(&w);
}

static void test_emergency_escalates_rotation_in_flight(void **state)
{
	struct world w;
	struct kr_action a;

	(void)state;
	at_rollout(&w, FULL);
	w.emergency = "leak";
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_ESCALATE);
	assert_int_equal(a.status.rotation.trigger, KR_TRIGGER_EMERGENCY);
	assert_int_equal(a.status.rotation.step, KR_STEP_REVOKE);
	record(&w, &a);
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_REVOKE_OLD);
	world_release(&w);
}

/* ---- manual controls: abort, pause and promote (DESIGN.md §1c) -------------------- */

/* Step a rotation until `done` holds (bounded), time moving as in milestones(). */
static void step_until(struct world *w, bool (*done)(const struct world *), unsigned *seed)
{
	struct kr_action a;

	for (int i = 0; i < MAX_STEPS; i++) {
		if (done(w))
			return;
		step(w, &a, FATE_OK, seed);
		check_world(w);
		w->now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) + 1 : 1;
		tick(w, seed);
	}
	fail_msg("condition never reached (phase %s step %s)", kr_phase_name(w->st.phase),
		 kr_step_name(w->st.rotation.step));
}

static bool is_paused(const struct world *w)
{
	return w->st.phase == KR_PHASE_PAUSED;
}

/* An abort at every point of a rotation: rolled back before the revoke, refused after it. */
static void test_abort_at_every_step(void **state)
{
	bool refused_seen = false, rolled_seen = false;

	(void)state;
	for (int k = 1; k < 400; k++) {
		struct world w;
		struct kr_action a;
		unsigned seed = (unsigned)k;
		int i;

		world_init(&w, FULL);
		w.rotate = "r1";
		for (i = 0; i < k; i++) {
			step(&w, &a, FATE_OK, &seed);
			w.now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) : 1;
			tick(&w, &seed);
			if (settled(&w, &a))
				break;
		}
		if (settled(&w, &a)) {
			world_release(&w);
			break;
		}
		w.abort_req = "bad canary";
		decide(&w, &a);
		assert_string_equal(a.status.last_handled_abort, "bad canary");
		if (w.st.phase == KR_PHASE_ROLLING_BACK) {
			assert_string_equal(a.event.reason, "AbortIgnored");
		} else if (w.st.rotation.old_revoked) {
			assert_int_equal(a.type, KR_ACTION_UPDATE_STATUS);
			assert_string_equal(a.event.reason, "AbortRefused");
			assert_true(a.event.warning);
			assert_non_null(strstr(a.event.message, "already revoked"));
			refused_seen = true;
		} else {
			assert_int_equal(a.type, KR_ACTION_ROLLBACK_BEGIN);
			assert_string_equal(a.event.reason, "RollingBack");
			assert_non_null(strstr(a.status.rotation.reason, "bad canary"));
		}
		/* the rest, with crashes and failed I/O: the abort is acted on once */
		simulate(&w, (unsigned)k, 10);
		if (w.old_revoked) {
			expect_succeeded(&w, OLD_ID);
		} else if (w.generated) {
			rolled_seen = true;
			expect_rolled_back(&w);
			assert_non_null(strstr(w.st.rotation.reason, "keyrotator.io/abort"));
		} else { /* aborted before a key was made: nothing to undo */
			assert_int_equal(w.st.phase, KR_PHASE_FAILED);
			assert_string_equal(w.consumer.key_id, OLD_ID);
			assert_int_equal(w.n_active, 1);
		}
		assert_string_equal(w.st.last_handled_abort, "bad canary");
		world_release(&w);
	}
	assert_true(refused_seen);
	assert_true(rolled_seen);
}

static bool is_validating(const struct world *w)
{
	return w->st.rotation.step == KR_STEP_VALIDATE;
}

static bool rollback_waits(const struct world *w)
{
	return w->st.rotation.step == KR_STEP_ROLLBACK_STAGES && w->st.rotation.window_started_at;
}

/*
 * A pod of the new key that the rollback replaced keeps serving with it for up to its
 * terminationGracePeriodSeconds: the new key is revoked that long after the last stage had
 * rolled back, not as soon as the rollouts are complete (nor from the validation window).
 */
static void test_rollback_waits_for_the_longest_grace_period(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 5;
	time_t aborted, began;

	(void)state;
	world_init(&w, FULL);
	w.wl[0].o.termination_grace_s = 60;
	w.wl[2].o.termination_grace_s = 20;
	w.rotate = "r1";
	step_until(&w, is_validating, &seed);
	aborted = w.now;
	w.abort_req = "bad canary";
	step_until(&w, rollback_waits, &seed);
	began = w.st.rotation.window_started_at;
	assert_true(began >= aborted);
	for (size_t i = 0; i < w.spec.n_workloads; i++)
		assert_true(wl_complete_on(&w.wl[i], OLD_ID));
	w.now = began + 60;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_WAIT);
	assert_non_null(strstr(a.reason, "terminationGracePeriodSeconds"));
	assert_string_equal(a.conditions[KR_COND_DEGRADED].reason, "RollingBack");
	assert_int_equal(a.requeue_after_ms, 1000);
	w.now = began + 61;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_REVOKE_NEW);
	world_release(&w);
}

static void test_abort_and_promote_without_rotation(void **state)
{
	static const struct {
		const char *abort_req, *promote_req, *event;
		bool bootstrap;
	} cases[] = {
	    {"stop", NULL, "AbortIgnored", false},
	    {NULL, "go", "PromoteIgnored", false},
	    {"stop", NULL, "AbortRefused", true},
	};

	(void)state;
	for (size_t c = 0; c < N(cases); c++) {
		struct world w;
		struct kr_action a;

		world_init(&w, ANALYSIS);
		if (cases[c].bootstrap) { /* a Bootstrap rotation has no old key to go back to */
			unsigned seed = 3;

			w.consumer.has_key = false;
			w.consumer.key_id[0] = '\0';
			step(&w, &a, FATE_OK, &seed);
			assert_int_equal(w.st.rotation.trigger, KR_TRIGGER_BOOTSTRAP);
		}
		w.abort_req = cases[c].abort_req;
		w.promote_req = cases[c].promote_req;
		decide(&w, &a);
		assert_int_equal(a.type, KR_ACTION_UPDATE_STATUS);
		assert_string_equal(a.event.reason, cases[c].event);
		record(&w, &a);
		decide(&w, &a); /* acted on once */
		assert_true(a.event.reason[0] == '\0' ||
			    strcmp(a.event.reason, cases[c].event) != 0);
		world_release(&w);
	}
}

static void test_request_too_long_refused(void **state)
{
	char big[KR_ROT_REQUEST_MAX + 8];
	struct world w;
	struct kr_action a;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	at_rollout(&w, "");
	w.abort_req = big;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_REFUSE);
	assert_string_equal(a.conditions[KR_COND_READY].reason, "RequestTooLong");
	assert_non_null(strstr(a.reason, "keyrotator.io/abort"));
	world_release(&w);
}

/* spec.stages[1].pause: held before stage ui, measuring, until a new promote value. */
static void test_pause_before_stage_until_promote(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 5;
	int measured;

	(void)state;
	world_init(&w, FULL);
	w.spec.stages[1].pause = true;
	w.rotate = "r1";
	step_until(&w, is_paused, &seed);
	assert_int_equal(w.st.rotation.step, KR_STEP_ROLLOUT);
	assert_int_equal(w.st.rotation.stage_index, 1);
	assert_string_not_equal(w.wl[0].o.key_id, OLD_ID); /* stage api rolled */
	assert_string_equal(w.wl[1].o.key_id, OLD_ID);	   /* stage ui not */
	decide(&w, &a);
	assert_string_equal(a.conditions[KR_COND_ROTATING].reason, "Paused");
	assert_non_null(strstr(a.conditions[KR_COND_ROTATING].message, "stage ui"));
	assert_int_equal(a.conditions[KR_COND_READY].status, KR_COND_FALSE);
	/* an hour later: still paused, still measuring */
	measured = w.n_actions[KR_ACTION_MEASURE];
	for (time_t end = w.now + 3600; w.now < end;) {
		step(&w, &a, FATE_OK, &seed);
		assert_int_equal(w.st.phase, KR_PHASE_PAUSED);
		assert_true(a.type == KR_ACTION_WAIT || a.type == KR_ACTION_MEASURE ||
			    a.type == KR_ACTION_RECORD_MEASUREMENT);
		w.now += a.type == KR_ACTION_WAIT ? (time_t)(a.requeue_after_ms / 1000) : 1;
	}
	assert_true(w.n_actions[KR_ACTION_MEASURE] - measured >= 3600 / 20); /* every ~15s */
	assert_string_equal(w.wl[1].o.key_id, OLD_ID);
	w.promote_req = "p1";
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_UPDATE_STATUS);
	assert_string_equal(a.event.reason, "Promoted");
	assert_int_equal(a.status.phase, KR_PHASE_ROTATING);
	assert_true(a.status.rotation.promoted);
	record(&w, &a);
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_RESTART_STAGE);
	assert_int_equal(a.stage, 1);
	simulate(&w, 9, 0);
	expect_succeeded(&w, OLD_ID);
	assert_false(w.st.rotation.promoted);
	world_release(&w);
}

/* A paused rotation whose analysis fails rolls back; an abort while paused does too. */
static void test_pause_failed_analysis_or_abort_rolls_back(void **state)
{
	(void)state;
	for (int c = 0; c < 2; c++) {
		struct world w;
		unsigned seed = 11;

		world_init(&w, FULL);
		w.spec.stages[2].pause = true;
		w.rotate = "r1";
		step_until(&w, is_paused, &seed);
		if (c == 0)
			w.wl[0].broken = true; /* stage api starts failing while paused */
		else
			w.abort_req = "changed my mind";
		simulate(&w, 12, 0);
		expect_rolled_back(&w);
		assert_non_null(strstr(w.st.rotation.reason, c == 0 ? "401 rate" : "abort"));
		world_release(&w);
	}
}

/* spec.pauseBeforeRevoke: every stage done, both keys valid, until promoted. */
static void test_pause_before_revoke(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 13;

	(void)state;
	world_init(&w, FULL);
	w.spec.pause_before_revoke = true;
	w.rotate = "r1";
	/* a promote before anything is paused is noted and does not open a later gate */
	step_until(&w, is_paused, &seed);
	assert_int_equal(w.st.rotation.step, KR_STEP_REVOKE);
	assert_false(w.old_revoked);
	assert_true(is_active(&w, OLD_ID));
	decide(&w, &a);
	assert_non_null(strstr(a.conditions[KR_COND_ROTATING].message, "the revoke"));
	w.promote_req = "p1";
	simulate(&w, 14, 0);
	expect_succeeded(&w, OLD_ID);
	world_release(&w);
}

static bool in_rollout(const struct world *w)
{
	return w->st.rotation.step == KR_STEP_ROLLOUT && w->st.rotation.stage_index == 0;
}

/* A promote that came while nothing was paused does not open a gate later. */
static void test_early_promote_ignored(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 15;

	(void)state;
	world_init(&w, FULL);
	w.spec.stages[1].pause = true;
	w.rotate = "r1";
	step_until(&w, in_rollout, &seed);
	w.promote_req = "early";
	decide(&w, &a);
	assert_string_equal(a.event.reason, "PromoteIgnored");
	record(&w, &a);
	step_until(&w, is_paused, &seed);
	assert_int_equal(w.st.rotation.stage_index, 1);
	world_release(&w);
}

/* Emergency and Bootstrap rotations have no manual gates. */
static void test_gates_skipped_in_emergency(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, FULL);
	w.spec.stages[0].pause = w.spec.stages[2].pause = true;
	w.spec.pause_before_revoke = true;
	w.emergency = "leak";
	simulate(&w, 17, 0);
	assert_int_equal(w.st.phase, KR_PHASE_IDLE);
	assert_string_not_equal(w.st.current_key.id, OLD_ID);
	world_release(&w);
}

/* ---- unlisted consumers (design.md §1c) ------------------------------------------ */

static bool at_revoke(const struct world *w)
{
	return w->st.rotation.step == KR_STEP_REVOKE;
}

static void set_unlisted(struct world *w, const char *kind, const char *name)
{
	w->n_unlisted = 0;
	if (!kind)
		return;
	snprintf(w->unlisted[0].kind, sizeof(w->unlisted[0].kind), "%s", kind);
	snprintf(w->unlisted[0].name, sizeof(w->unlisted[0].name), "%s", name);
	w->n_unlisted = 1;
}

/* HoldRevoke (default): reported with a Warning, the revoke held until it is gone. */
static void test_unlisted_consumer_holds_the_revoke(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 21;

	(void)state;
	world_init(&w, FULL);
	assert_int_equal(w.spec.unlisted_policy, KR_UNLISTED_HOLD_REVOKE);
	set_unlisted(&w, "Deployment", "legacy");
	decide(&w, &a); /* idle: reported at once */
	assert_int_equal(a.type, KR_ACTION_UPDATE_STATUS);
	assert_string_equal(a.event.reason, "UnlistedConsumers");
	assert_true(a.event.warning);
	assert_non_null(strstr(a.event.message, "Deployment/legacy"));
	assert_int_equal(a.status.n_unlisted, 1);
	record(&w, &a);
	decide(&w, &a); /* once */
	assert_int_equal(a.type, KR_ACTION_NONE);
	w.rotate = "r1";
	step_until(&w, at_revoke, &seed);
	for (int i = 0; i < 20; i++) {
		step(&w, &a, FATE_OK, &seed);
		assert_int_equal(a.type, KR_ACTION_WAIT);
		assert_string_equal(a.conditions[KR_COND_DEGRADED].reason, "UnlistedConsumers");
		assert_non_null(strstr(a.reason, "Deployment/legacy"));
		w.now += 10;
	}
	assert_false(w.old_revoked);
	assert_true(is_active(&w, OLD_ID));
	set_unlisted(&w, NULL, NULL); /* listed in a stage, or removed */
	decide(&w, &a);
	assert_string_equal(a.event.reason, "UnlistedConsumersGone");
	simulate(&w, 22, 0);
	expect_succeeded(&w, OLD_ID);
	world_release(&w);
}

/* Ignore: reported, never held; an idle CronJob never holds (each run reads the Secret anew). */
static void test_unlisted_ignored_or_cronjob(void **state)
{
	(void)state;
	for (int c = 0; c < 2; c++) {
		struct world w;

		world_init(&w, FULL);
		if (c == 0) {
			w.spec.unlisted_policy = KR_UNLISTED_IGNORE;
			set_unlisted(&w, "Deployment", "legacy");
		} else {
			set_unlisted(&w, "CronJob", "nightly");
		}
		w.rotate = "r1";
		simulate(&w, 23, 0);
		expect_succeeded(&w, OLD_ID);
		assert_int_equal(w.st.n_unlisted, 1);
		world_release(&w);
	}
}

/*
 * A CronJob holds the revoke while one of its Jobs runs (it read the Secret when it started,
 * perhaps the old key), and lets it through once none does.
 */
static void test_unlisted_cronjob_holds_while_a_job_runs(void **state)
{
	struct world w;
	struct kr_action a;
	unsigned seed = 24;

	(void)state;
	world_init(&w, FULL);
	set_unlisted(&w, "CronJob", "nightly");
	w.unlisted[0].running = true;
	decide(&w, &a); /* idle: reported at once */
	record(&w, &a);
	w.rotate = "r1";
	step_until(&w, at_revoke, &seed);
	for (int i = 0; i < 5; i++) {
		step(&w, &a, FATE_OK, &seed);
		assert_int_equal(a.type, KR_ACTION_WAIT);
		assert_non_null(strstr(a.reason, "CronJob/nightly (a Job runs)"));
		/* a stage cannot list it: the message says what ends the hold instead */
		assert_non_null(strstr(a.reason, "the revoke goes on once no Job of it runs"));
		assert_null(strstr(a.reason, "add it to a stage"));
		w.now += 10;
	}
	set_unlisted(&w, "CronJob", "nightly");
	w.unlisted[0].running = true;
	strcpy(w.unlisted[1].kind, "Deployment");
	strcpy(w.unlisted[1].name, "legacy");
	w.n_unlisted = 2;
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_UPDATE_STATUS); /* the new one reported */
	record(&w, &a);
	decide(&w, &a);
	assert_non_null(strstr(a.reason, "CronJob/nightly (a Job runs), Deployment/legacy read"));
	assert_non_null(strstr(a.reason, "add the others to a stage or remove them; a CronJob"));
	set_unlisted(&w, "CronJob", "nightly");
	w.unlisted[0].running = true;
	decide(&w, &a);
	record(&w, &a);
	assert_false(w.old_revoked);
	assert_true(is_active(&w, OLD_ID));
	w.unlisted[0].running = false; /* the Job ended */
	simulate(&w, 24, 0);
	expect_succeeded(&w, OLD_ID);
	world_release(&w);
}

static void test_repair_during_rotation(void **state)
{
	struct world w;
	struct kr_action a;

	(void)state;
	at_rollout(&w, "");
	w.n_active = 0; /* Valkey lost everything mid-rotation */
	decide(&w, &a);
	assert_int_equal(a.type, KR_ACTION_REPAIR_KEYSTORE);
	assert_int_equal(a.repair.n_add, 2);
	assert_string_equal(a.repair.add[0].id, OLD_ID);
	assert_int_equal(a.repair.add[0].source, KR_SOURCE_ROTATION_PREVIOUS);
	assert_string_equal(a.repair.add[1].id, w.rs.pending_id);
	assert_int_equal(a.repair.add[1].source, KR_SOURCE_CONSUMER_SECRET);
	assert_string_equal(a.conditions[KR_COND_KEYSTORE_IN_SYNC].reason, "Repaired");
	world_release(&w);
}

/*
 * A first install: status names no key yet. The repair that seeds the key store also adopts
 * the Secret's key, so one status write and one Event do both; the next decision is NONE.
 */
struct first_install_case {
	const char *name;
	bool in_store;	    /* the Secret's key is already active in Valkey (a runbook install) */
	bool stale_rsecret; /* a rotation Secret is left over: clean-up before adoption */
	enum kr_action_type then;
	const char *event;
	bool warning;
};

/* Setting up a key store that never held anything of this KeyRotation is not drift: Normal
 * Events, nothing counted as a repair (repair.drift false). */
static const struct first_install_case first_install_cases[] = {
    {"key store empty", false, false, KR_ACTION_NONE, "KeyAdopted", false},
    {"key already active, no marker", true, false, KR_ACTION_NONE, "KeyAdopted", false},
    {"stale rotation Secret", false, true, KR_ACTION_CLEANUP, "KeyStoreSetUp", false},
};

static void test_first_install_adopts_with_repair(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(first_install_cases); i++) {
		const struct first_install_case *c = &first_install_cases[i];
		struct world w;
		struct kr_action a;

		world_init(&w, "");
		kr_rotation_status_init(&w.st);
		w.marker[0] = '\0';
		w.n_active = c->in_store ? 1 : 0;
		if (c->stale_rsecret)
			s_stale_rsecret(&w);
		decide(&w, &a);
		assert_int_equal(a.type, KR_ACTION_REPAIR_KEYSTORE);
		assert_true(a.event.set);
		assert_string_equal(a.event.reason, c->event);
		assert_int_equal(a.event.warning, c->warning);
		assert_false(a.repair.drift);
		assert_non_null(strstr(a.reason, "set up the key store: "));
		assert_string_equal(a.status.current_key.id, c->stale_rsecret ? "" : OLD_ID);
		if (!c->stale_rsecret)
			assert_non_null(strstr(a.event.message, "adopt key " OLD_ID));
		effect(&w, &a);
		record(&w, &a);
		decide(&w, &a);
		if (a.type != c->then)
			fail_msg("%s: then %s, want %s", c->name, kr_action_name(a.type),
				 kr_action_name(c->then));
		if (!c->stale_rsecret) { /* "Repaired" stays while in sync: no status write */
			w.store_repaired = true;
			decide(&w, &a);
			assert_int_equal(a.type, KR_ACTION_NONE);
			assert_false(a.status_changed);
			assert_string_equal(a.conditions[KR_COND_KEYSTORE_IN_SYNC].reason, "");
			w.reachable = false; /* but not past an outage */
			decide(&w, &a);
			assert_string_equal(a.conditions[KR_COND_KEYSTORE_IN_SYNC].reason,
					    "Unreachable");
			w.reachable = true;
			w.n_active = 0; /* nor past another loss */
			decide(&w, &a);
			assert_int_equal(a.type, KR_ACTION_REPAIR_KEYSTORE);
			assert_string_equal(a.conditions[KR_COND_KEYSTORE_IN_SYNC].reason,
					    "Repaired");
			/* and that loss is drift: the key was there once */
			assert_true(a.repair.drift);
			assert_string_equal(a.event.reason, "KeyStoreRepaired");
			assert_true(a.event.warning);
		}
		world_release(&w);
	}
}

/*
 * Drift is putting back what was in place: a marker that is there (naming another key), or
 * anything missing once status names a key. A first install's set-up is not, however much
 * it writes. Each case: what status names and the key store holds, then the repair decided.
 */
struct drift_case {
	const char *name;
	const char *current, *pending; /* status.currentKey/pendingKey ids ("" none) */
	bool in_store;		       /* the Secret's key is active */
	const char *marker;	       /* bootstrapKey ("" absent) */
	bool drift;
	const char *event;
};

static const struct drift_case drift_cases[] = {
    {"first install, empty key store", "", "", false, "", false, "KeyAdopted"},
    {"first install, key there, no marker", "", "", true, "", false, "KeyAdopted"},
    {"first install, marker of another key", "", "", true, "0000000000aa", true,
     "KeyStoreRepaired"},
    {"Valkey flushed after the install", OLD_ID, "", false, "", true, "KeyStoreRepaired"},
    {"marker deleted after the install", OLD_ID, "", true, "", true, "KeyStoreRepaired"},
    {"marker moved after the install", OLD_ID, "", true, "0000000000aa", true, "KeyStoreRepaired"},
    {"key lost, marker right", OLD_ID, "", false, OLD_ID, true, "KeyStoreRepaired"},
};

static void test_repair_is_drift_only_for_what_was_in_place(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(drift_cases); i++) {
		const struct drift_case *c = &drift_cases[i];
		struct world w;
		struct kr_observed obs;
		struct kr_observed_workload wls[MAX_WL];
		struct kr_action a;

		world_init(&w, "");
		kr_rotation_status_init(&w.st);
		snprintf(w.st.current_key.id, KR_ROT_ID_SIZE, "%s", c->current);
		w.st.current_key.created_at = c->current[0] ? T0 - 86400 : 0;
		snprintf(w.marker, KR_ROT_ID_SIZE, "%s", c->marker);
		w.n_active = c->in_store ? 1 : 0;
		decide(&w, &a);
		if (a.type != KR_ACTION_REPAIR_KEYSTORE || a.repair.drift != c->drift ||
		    strcmp(a.event.reason, c->event) != 0 || a.event.warning != c->drift)
			fail_msg("%s: %s drift=%d %s%s, want REPAIR_KEYSTORE drift=%d %s", c->name,
				 kr_action_name(a.type), a.repair.drift, a.event.reason,
				 a.event.warning ? " (Warning)" : "", c->drift, c->event);
		observe(&w, &obs, wls);
		assert_int_equal(kr_repair_is_drift(&obs), c->drift);
		world_release(&w);
	}
	/* A key status names only as pending (mid-bootstrap, before FINISH) was activated. */
	{
		struct world w;
		struct kr_observed obs;
		struct kr_observed_workload wls[MAX_WL];

		world_init(&w, "");
		kr_rotation_status_init(&w.st);
		w.marker[0] = '\0';
		snprintf(w.st.pending_key.id, KR_ROT_ID_SIZE, "%s", "000000000b00");
		observe(&w, &obs, wls);
		assert_true(kr_repair_is_drift(&obs));
		world_release(&w);
	}
}

/* ---- rollout completion, as kubectl rollout status ---------------------------------- */

struct rollout_case {
	const char *name;
	enum kr_workload_kind kind;
	struct kr_observed_workload wl;
	enum kr_rollout_state want;
};

#define WL(...)                                                                                    \
	{                                                                                          \
		.exists = true, .kind_supported = true, .key_id = "0000000000b1", __VA_ARGS__      \
	}

static const struct rollout_case rollout_cases[] = {
    {"deploy complete", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .status_replicas = 3,
	.updated = 3, .available = 3),
     KR_ROLLOUT_COMPLETE},
    {"deploy not observed", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 3, .observed_generation = 2, .replicas = 3, .status_replicas = 3,
	.updated = 3, .available = 3),
     KR_ROLLOUT_PROGRESSING},
    {"deploy old pods left", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .status_replicas = 4,
	.updated = 3, .available = 3),
     KR_ROLLOUT_PROGRESSING},
    {"deploy unavailable", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .status_replicas = 3,
	.updated = 3, .available = 2),
     KR_ROLLOUT_PROGRESSING},
    {"deploy deadline", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .status_replicas = 4,
	.updated = 1, .available = 3, .progress_deadline_exceeded = true),
     KR_ROLLOUT_FAILED},
    {"deploy paused", KR_WORKLOAD_DEPLOYMENT,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .status_replicas = 3,
	.updated = 0, .available = 3, .paused = true),
     KR_ROLLOUT_BLOCKED},
    {"deploy zero replicas", KR_WORKLOAD_DEPLOYMENT, WL(.generation = 2, .observed_generation = 2),
     KR_ROLLOUT_COMPLETE},
    {"wrong key id",
     KR_WORKLOAD_DEPLOYMENT,
     {.exists = true, .kind_supported = true, .key_id = "0000000000a1"},
     KR_ROLLOUT_PROGRESSING},
    {"missing", KR_WORKLOAD_DEPLOYMENT, {.exists = false}, KR_ROLLOUT_MISSING},
    {"kind not served", KR_WORKLOAD_STATEFULSET, {.exists = true}, KR_ROLLOUT_MISSING},
    {"sts complete", KR_WORKLOAD_STATEFULSET,
     WL(.generation = 2, .observed_generation = 2, .replicas = 2, .ready = 2, .updated = 2,
	.update_revision = "r2", .current_revision = "r2"),
     KR_ROLLOUT_COMPLETE},
    {"sts revisions differ", KR_WORKLOAD_STATEFULSET,
     WL(.generation = 2, .observed_generation = 2, .replicas = 2, .ready = 2, .updated = 1,
	.update_revision = "r2", .current_revision = "r1"),
     KR_ROLLOUT_PROGRESSING},
    {"sts not ready", KR_WORKLOAD_STATEFULSET,
     WL(.generation = 2, .observed_generation = 2, .replicas = 2, .ready = 1, .updated = 2,
	.update_revision = "r2", .current_revision = "r2"),
     KR_ROLLOUT_PROGRESSING},
    {"sts partition", KR_WORKLOAD_STATEFULSET,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .ready = 3, .updated = 1,
	.partition = 2, .update_revision = "r2", .current_revision = "r1"),
     KR_ROLLOUT_BLOCKED},
    {"sts on delete", KR_WORKLOAD_STATEFULSET,
     WL(.generation = 2, .observed_generation = 2, .replicas = 3, .ready = 3, .on_delete = true,
	.update_revision = "r2", .current_revision = "r1"),
     KR_ROLLOUT_BLOCKED},
    {"ds complete", KR_WORKLOAD_DAEMONSET,
     WL(.generation = 2, .observed_generation = 2, .desired_scheduled = 4, .updated_scheduled = 4,
	.number_available = 4),
     KR_ROLLOUT_COMPLETE},
    {"ds updating", KR_WORKLOAD_DAEMONSET,
     WL(.generation = 2, .observed_generation = 2, .desired_scheduled = 4, .updated_scheduled = 3,
	.number_available = 4),
     KR_ROLLOUT_PROGRESSING},
    {"ds unavailable", KR_WORKLOAD_DAEMONSET,
     WL(.generation = 2, .observed_generation = 2, .desired_scheduled = 4, .updated_scheduled = 4,
	.number_available = 3),
     KR_ROLLOUT_PROGRESSING},
};

static void test_rollout_completion_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rollout_cases); i++) {
		const struct rollout_case *c = &rollout_cases[i];
		char msg[KR_ROT_MSG_MAX];
		enum kr_rollout_state s =
		    kr_workload_rollout(c->kind, "x", &c->wl, "0000000000b1", msg, sizeof(msg));

		if (s != c->want)
			fail_msg("%s: got %d want %d (%s)", c->name, s, c->want, msg);
		if (s != KR_ROLLOUT_COMPLETE)
			assert_non_null(strstr(msg, "/x"));
	}
}

/* ---- next rotation time and the plan --------------------------------------------- */

static void test_next_rotation_time(void **state)
{
	struct world w;
	time_t t;

	(void)state;
	world_init(&w, ",\"schedule\":\"0 3 1 * *\",\"maxKeyAge\":\"2160h\"");
	w.st.last_rotation_time = T0 + 4 * 3600; /* 2026-01-01T04:00Z -> 2026-02-01T03:00Z */
	t = kr_rotation_next_time(&w.spec, &w.st, w.created);
	assert_int_equal(t, T0 + 31 * 86400 + 3 * 3600);
	w.st.current_key.created_at = T0 - 89 * 86400; /* maxKeyAge first: T0 + 1 day */
	t = kr_rotation_next_time(&w.spec, &w.st, w.created);
	assert_int_equal(t, T0 + 86400);
	w.st.phase = KR_PHASE_FAILED; /* after a failure: maxKeyAge waits for another trigger */
	w.st.rotation.started_at = T0 + 7200;
	t = kr_rotation_next_time(&w.spec, &w.st, w.created);
	assert_int_equal(t, T0 + 31 * 86400 + 3 * 3600);
	world_release(&w);
	world_init(&w, "");
	assert_int_equal(kr_rotation_next_time(&w.spec, &w.st, w.created), 0);
	world_release(&w);
}

/* Where a key's age starts (maxKeyAge, keyrotator_key_age_seconds): its creation, or for an
 * adopted key (creation unknown) the last rotation, or the KeyRotation's creation. */
static void test_key_born(void **state)
{
	struct kr_rotation_status st = {0};

	(void)state;
	assert_int_equal(kr_rotation_key_born(&st, 0), 0);
	assert_int_equal(kr_rotation_key_born(&st, T0), T0); /* adopted at the KR's creation */
	st.last_rotation_time = T0 + 60;
	assert_int_equal(kr_rotation_key_born(&st, T0), T0 + 60);
	st.current_key.created_at = T0 + 30;
	assert_int_equal(kr_rotation_key_born(&st, T0), T0 + 30);
}

static void test_plan_lines(void **state)
{
	struct world w;
	cJSON *plan = NULL, *it;
	struct kr_error err;
	char *all;
	size_t n = 0;

	(void)state;
	world_init(&w, FULL);
	assert_int_equal(
	    kr_rotation_plan(&w.spec, "sirius", "kr", NULL, OLD_ID, false, &plan, &err), KR_OK);
	cJSON_ArrayForEach(it, plan) n++;
	assert_true(n >= 10);
	all = cJSON_PrintUnformatted(plan);
	assert_non_null(strstr(all, "activate key <new id>"));
	assert_non_null(strstr(all, "write Secret sirius/api-key key API_KEY"));
	assert_non_null(strstr(all, "roll out stage api: Deployment/api"));
	assert_non_null(strstr(all, "roll out stage ui: Deployment/ui, DaemonSet/agent"));
	assert_non_null(strstr(all, "revoke key " OLD_ID));
	assert_true(strstr(all, "stage api") < strstr(all, "stage engine"));
	assert_true(strstr(all, "stage engine") < strstr(all, "revoke key"));
	free(all);
	cJSON_Delete(plan);
	/* emergency: revoke before the stages, no analysis */
	assert_int_equal(
	    kr_rotation_plan(&w.spec, "sirius", "kr", "0000000000b1", OLD_ID, true, &plan, &err),
	    KR_OK);
	all = cJSON_PrintUnformatted(plan);
	assert_true(strstr(all, "revoke key") < strstr(all, "stage api"));
	assert_null(strstr(all, "analyse"));
	free(all);
	cJSON_Delete(plan);
	/* the manual gates, where they hold; none in an emergency */
	w.spec.stages[1].pause = true;
	w.spec.pause_before_revoke = true;
	for (int emergency = 0; emergency < 2; emergency++) {
		assert_int_equal(
		    kr_rotation_plan(&w.spec, "sirius", "kr", NULL, OLD_ID, emergency, &plan, &err),
		    KR_OK);
		all = cJSON_PrintUnformatted(plan);
		if (emergency) {
			assert_null(strstr(all, "pause"));
		} else {
			assert_non_null(strstr(all, "pause before stage ui until "
						    "keyrotator.io/promote gets a new value"));
			assert_true(strstr(all, "stage api:") <
				    strstr(all, "pause before stage ui"));
			assert_true(strstr(all, "pause before stage ui") <
				    strstr(all, "stage ui:"));
			assert_true(strstr(all, "pause before the revoke") <
				    strstr(all, "revoke key"));
		}
		free(all);
		cJSON_Delete(plan);
	}
	/* unlisted consumers: one line before the revoke, saying what the policy does */
	set_unlisted(&w, "Deployment", "legacy");
	for (int policy = 0; policy < 2; policy++) {
		w.spec.unlisted_policy = (enum kr_unlisted_policy)policy;
		assert_int_equal(
		    kr_rotation_plan(&w.spec, "sirius", "kr", NULL, OLD_ID, false, &plan, &err),
		    KR_OK);
		assert_int_equal(kr_rotation_plan_unlisted(&w.spec, "sirius", w.unlisted,
							   w.n_unlisted, false, plan, &err),
				 KR_OK);
		all = cJSON_PrintUnformatted(plan);
		assert_non_null(strstr(all, policy
						? "the revoke locks out: Deployment/legacy reads "
						  "Secret sirius/api-key"
						: "hold the revoke while: Deployment/legacy reads "
						  "Secret sirius/api-key"));
		assert_true(strstr(all, "Deployment/legacy") <
			    strstr(all, "pause before the revoke"));
		free(all);
		cJSON_Delete(plan);
	}
	world_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normal_rotation_steps),
	    cmocka_unit_test(test_emergency_rotation_steps),
	    cmocka_unit_test(test_bootstrap_steps),
	    cmocka_unit_test(test_rollback_on_401s),
	    cmocka_unit_test(test_rollback_on_stage_timeout),
	    cmocka_unit_test(test_crash_after_each_action_normal),
	    cmocka_unit_test(test_crash_after_each_action_rollback),
	    cmocka_unit_test(test_crash_after_each_action_emergency),
	    cmocka_unit_test(test_random_rotations_keep_invariants),
	    cmocka_unit_test(test_triggers_table),
	    cmocka_unit_test(test_invalid_spec_refused),
	    cmocka_unit_test(test_refused_when_idle),
	    cmocka_unit_test(test_refused_mid_rotation),
	    cmocka_unit_test(test_rollout_holds_and_failures),
	    cmocka_unit_test(test_revoke_waits_for_unused_old_key),
	    cmocka_unit_test(test_validation_period_is_never_short),
	    cmocka_unit_test(test_revoke_waits_for_the_longest_grace_period),
	    cmocka_unit_test(test_verify_failure_finishes_failed),
	    cmocka_unit_test(test_inconclusive_holds_then_rolls_back),
	    cmocka_unit_test(test_hold_keeps_degraded_until_a_pass),
	    cmocka_unit_test(test_emergency_escalates_rotation_in_flight),
	    cmocka_unit_test(test_abort_at_every_step),
	    cmocka_unit_test(test_rollback_waits_for_the_longest_grace_period),
	    cmocka_unit_test(test_abort_and_promote_without_rotation),
	    cmocka_unit_test(test_request_too_long_refused),
	    cmocka_unit_test(test_pause_before_stage_until_promote),
	    cmocka_unit_test(test_pause_failed_analysis_or_abort_rolls_back),
	    cmocka_unit_test(test_pause_before_revoke),
	    cmocka_unit_test(test_early_promote_ignored),
	    cmocka_unit_test(test_gates_skipped_in_emergency),
	    cmocka_unit_test(test_unlisted_consumer_holds_the_revoke),
	    cmocka_unit_test(test_unlisted_ignored_or_cronjob),
	    cmocka_unit_test(test_unlisted_cronjob_holds_while_a_job_runs),
	    cmocka_unit_test(test_repair_during_rotation),
	    cmocka_unit_test(test_first_install_adopts_with_repair),
	    cmocka_unit_test(test_repair_is_drift_only_for_what_was_in_place),
	    cmocka_unit_test(test_rollout_completion_table),
	    cmocka_unit_test(test_next_rotation_time),
	    cmocka_unit_test(test_key_born),
	    cmocka_unit_test(test_plan_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
