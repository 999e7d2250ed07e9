/* reconciler.c - one reconcile: observe, decide, act, record; again until there is nothing to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reconciler/internal.h"

struct kr_reconciler *kr_reconciler_new(const struct kr_reconciler_opts *o, struct kr_error *err)
{
	struct kr_reconciler *r = calloc(1, sizeof(*r));
	char host[256] = "keyrotator";

	if (!r) {
		kr_error_set(err, KR_ENOMEM, "reconciler: out of memory");
		return NULL;
	}
	r->o = *o;
	if (r->o.keystore_check_ms <= 0)
		r->o.keystore_check_ms = 30000;
	if (r->o.resync_period_ms <= 0)
		r->o.resync_period_ms = 3600000;
	if (!o->instance || !o->instance[0])
		gethostname(host, sizeof(host) - 1);
	r->instance = strdup(o->instance && o->instance[0] ? o->instance : host);
	r->clock_skew_file = o->clock_skew_file ? strdup(o->clock_skew_file) : NULL;
	pthread_mutex_init(&r->lock, NULL);
	if (!r->instance || (o->clock_skew_file && !r->clock_skew_file)) {
		kr_reconciler_free(r);
		kr_error_set(err, KR_ENOMEM, "reconciler: out of memory");
		return NULL;
	}
	r->o.instance = r->instance;
	r->o.clock_skew_file = r->clock_skew_file;
	return r;
}

void kr_reconciler_free(struct kr_reconciler *r)
{
	if (!r)
		return;
	while (r->scrapes) {
		struct kr_scrape_memo *m = r->scrapes;

		r->scrapes = m->next;
		kr_counter_snapshot_release(&m->snap);
		free(m->key);
		free(m);
	}
	kr_idle_stop(r);
	kr_idle_free_all(r);
	kr_expect_free_all(r);
	kr_smap_release(&r->store_memo);
	kr_known_rv_free_all(r);
	pthread_mutex_destroy(&r->lock);
	free(r->instance);
	free(r->clock_skew_file);
	free(r);
}

enum kr_status kr_reconciler_attach(struct kr_reconciler *r, struct kr_controller *ctl,
				    struct kr_error *err)
{
	enum kr_status rc;

	r->ctl = ctl;
	if (ctl && (rc = kr_metrics_register_keyrotator(kr_controller_metrics(ctl), &r->fam,
							 err)) != KR_OK)
		return rc;
	if (ctl) /* the key stores' status pass: the first worker free after the caches list */
		kr_workqueue_add(kr_controller_queue(ctl), KR_STORES_KEY);
	if (ctl && !r->sweeping && kr_idle_start(r) != KR_OK)
		kr_log_warn(NULL, "no key store sweeper thread: idle KeyRotations are checked "
				  "only at their resync");
	return KR_OK;
}

const char *kr_reconciler_instance(const struct kr_reconciler *r)
{
	return r->instance;
}

time_t kr_reconciler_clock(void *r)
{
	return kr_reconciler_now(r);
}

time_t kr_reconciler_now(const struct kr_reconciler *r)
{
	time_t now = time(NULL);
	long long skew = 0;
	FILE *f;

	if (!r->clock_skew_file)
		return now;
	f = fopen(r->clock_skew_file, "re");
	if (f) {
		if (fscanf(f, "%lld", &skew) != 1)
			skew = 0;
		fclose(f);
	}
	return now + (time_t)skew;
}

/* Actions after which this reconcile stops: nothing more can happen until time or a watch. */
static bool settles(enum kr_action_type t)
{
	return t == KR_ACTION_NONE || t == KR_ACTION_WAIT || t == KR_ACTION_REFUSE ||
	       t == KR_ACTION_PLAN;
}

/*
 * Decide; a measurement or a verify is taken here and decided on again at once, at the time
 * it ended: a request that took up to its whole deadline is recorded as taken then, so the
 * next one waits a full interval (and the worker is free meanwhile) instead of following at
 * once, one deadline after another, for the rest of the reconcile's steps.
 */
static bool decide(struct kr_world *w, struct kr_action *a)
{
	kr_rotation_decide(&w->obs, a);
	if (a->type == KR_ACTION_MEASURE) {
		if (!kr_world_measure(w))
			return false;
		w->obs.now = kr_reconciler_now(w->r);
		kr_rotation_decide(&w->obs, a);
	} else if (a->type == KR_ACTION_VERIFY) {
		kr_world_verify(w);
		w->obs.now = kr_reconciler_now(w->r);
		kr_rotation_decide(&w->obs, a);
	}
	return true;
}

enum step_result { STEP_AGAIN, STEP_SETTLED, STEP_FAILED, STEP_GONE };

static enum step_result step(struct kr_world *w, long *requeue_ms, struct kr_error *err,
			     bool *conflict)
{
	struct kr_action a;
	enum kr_status rc;
	bool acted;

	rc = kr_world_observe(w, err);
	if (rc == KR_ENOTFOUND)
		return STEP_GONE;
	if (rc != KR_OK)
		return STEP_FAILED;
	if (!decide(w, &a)) {
		*requeue_ms = 1000; /* the rate needs a second counter reading */
		return STEP_SETTLED;
	}
	if (kr_world_needs_rsecret(w, a.type) && w->carry) {
		/* It acts on keys: look at `<name>-rotation` too, and decide again. */
		kr_log_debug(w->log, "%s: reading %s first", kr_action_name(a.type),
			     w->rsecret_name);
		w->carry->want_rsecret = true;
		return STEP_AGAIN;
	}
	acted = !settles(a.type) && !kr_action_is_status_only(a.type);
	KR_LOG(settles(a.type) ? KR_LOG_DEBUG : KR_LOG_INFO, w->log, "%s: %s",
	       kr_action_name(a.type), a.reason);
	rc = kr_world_act(w, &a, err);
	if (rc == KR_OK)
		rc = kr_world_record(w, &a, acted, err);
	*conflict = rc == KR_ECONFLICT;
	if (rc == KR_ECONFLICT)
		return STEP_AGAIN; /* someone wrote first: look again */
	if (rc != KR_OK) {
		kr_world_record_failure(w, &a, err);
		return STEP_FAILED;
	}
	*requeue_ms = (long)a.requeue_after_ms;
	if (a.type == KR_ACTION_RESTART_STAGE || a.type == KR_ACTION_ROLLBACK_RESTART_STAGE) {
		/*
		 * The next decision reads the workloads from the informer cache, which has not
		 * seen this patch yet: deciding now would patch again. The watch event of the
		 * patch wakes this KeyRotation; the requeue is only a safety net.
		 */
		*requeue_ms = KR_RECONCILER_PATCH_SETTLE_MS;
	} else if (!settles(a.type)) {
		return STEP_AGAIN;
	} else if (a.type == KR_ACTION_NONE && w->doc.status.phase == KR_PHASE_IDLE) {
		*requeue_ms = kr_idle_requeue(w->r, w->doc.status.next_rotation_time, w->obs.now,
					      *requeue_ms);
	}
	kr_idle_remember(w, *requeue_ms);
	return STEP_SETTLED;
}

enum kr_status kr_reconciler_reconcile(void *arg, struct kr_kube_client *client, const char *ns,
				       const char *name, struct kr_reconcile_result *res)
{
	struct kr_reconciler *r = arg;
	enum step_result sr = STEP_AGAIN;
	struct kr_carry carry = {0};
	bool conflict = false;
	long requeue = 0;

	if (kr_stores_is_key(ns, name)) {
		kr_stores_pass(r, client, res);
		return KR_OK;
	}
	if (kr_idle_check(r, ns, name, &requeue)) {
		res->requeue_after_ms = requeue;
		return KR_OK;
	}
	for (int i = 0; i < KR_RECONCILER_MAX_STEPS && sr == STEP_AGAIN; i++) {
		struct kr_world w = {.r = r,
				     .client = client,
				     .ns = ns,
				     .name = name,
				     .log = res->log,
				     .carry = &carry};

		requeue = 0;
		sr = step(&w, &requeue, &res->err, &conflict);
		kr_world_release(&w);
		if (conflict) { /* someone else wrote: read everything afresh, from the API */
			kr_carry_clear(&carry);
			carry.fresh = true;
		}
	}
	kr_carry_clear(&carry);
	switch (sr) {
	case STEP_GONE:
		kr_world_forget(r, ns, name);
		if (r->ctl)
			kr_metrics_delete_object(kr_controller_metrics(r->ctl), ns, name);
		kr_log_debug(res->log, "KeyRotation is gone");
		return KR_ENOTFOUND;
	case STEP_FAILED:
		return res->err.code != KR_OK ? res->err.code : KR_EIO;
	case STEP_AGAIN: /* the step budget ran out: continue soon, let other keys run */
		res->requeue_after_ms = 100;
		return KR_OK;
	default:
		res->requeue_after_ms = requeue;
		return KR_OK;
	}
}
