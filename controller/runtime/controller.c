/* controller.c - informers wake KeyRotation keys; workers reconcile them, one key at a time. */
#include "runtime/controller.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/clock.h"
#include "runtime/memory.h"

struct kr_ctl_worker {
	struct kr_controller *c;
	int index;
	pthread_t thread;
	struct kr_kube_client *client;
	atomic_int running;
	/* The reconcile in hand, for the stuck check (alive, ready): guarded by busy_lock. */
	pthread_mutex_t busy_lock;
	bool busy;
	bool stuck_logged;     /* this reconcile was logged as stuck already */
	int64_t busy_since_ms; /* kr_mono_ms() when it started */
	char busy_key[512];    /* its KeyRotation, "namespace/name" */
	char busy_id[20];      /* its reconcileID */
};

/* What an informer's change handler needs: the controller and the source it watches. */
struct kr_ctl_source {
	struct kr_controller *c;
	const struct kr_controller_source *s;
};

struct kr_controller {
	struct kr_controller_opts o;
	char *ns;
	struct kr_metrics *metrics;
	struct kr_runtime_metrics fam;
	struct kr_workqueue *queue;
	struct kr_events *events;
	struct kr_refindex *index;
	struct kr_refindex *users; /* ref -> "Kind/ns/name" of other sources' objects naming it */
	struct kr_informer *inf[KR_CONTROLLER_MAX_SOURCES];
	struct kr_ctl_source src[KR_CONTROLLER_MAX_SOURCES];
	int nsrc;
	struct kr_ctl_worker *workers;
	int nworkers, started, stopped;
	int64_t stuck_ms;     /* a reconcile longer than this is stuck */
	pthread_mutex_t lock; /* guards leading/stopping waits, and the queue-metric marks */
	pthread_cond_t cond;
	atomic_int leading, stopping, synced;
	atomic_int workers_up;	    /* every worker thread was created: alive() may check them */
	struct kr_trimmer trim;	    /* memory.h: the heap given back after bursts */
	uint64_t seen_adds, seen_retries;
};

/* ---- keys and references ---- */

const char *kr_controller_split_key(const char *key, char *ns, size_t size)
{
	const char *slash = strchr(key, '/');

	ns[0] = '\0';
	if (!slash || (size_t)(slash - key) >= size)
		return key;
	memcpy(ns, key, (size_t)(slash - key));
	ns[slash - key] = '\0';
	return slash + 1;
}

char *kr_controller_workload_ref(char *buf, size_t size, const char *kind, const char *ns,
				 const char *name)
{
	snprintf(buf, size, "%s/%s/%s", kind, ns, name);
	return buf;
}

/* ---- queue and metrics ---- */

static void kr_ctl_sync_queue_metrics(struct kr_controller *c)
{
	struct kr_workqueue_stats st;

	pthread_mutex_lock(&c->lock);
	kr_workqueue_stats(c->queue, &st);
	kr_gauge_set(c->fam.workqueue_depth, NULL, (double)st.depth);
	if (st.adds_total > c->seen_adds)
		kr_counter_add(c->fam.workqueue_adds_total, NULL,
			       (double)(st.adds_total - c->seen_adds));
	if (st.retries_total > c->seen_retries)
		kr_counter_add(c->fam.workqueue_retries_total, NULL,
			       (double)(st.retries_total - c->seen_retries));
	c->seen_adds = st.adds_total;
	c->seen_retries = st.retries_total;
	pthread_mutex_unlock(&c->lock);
}

static void kr_ctl_enqueue(void *arg, const char *key)
{
	struct kr_controller *c = arg;

	kr_workqueue_add(c->queue, key);
	kr_ctl_sync_queue_metrics(c);
}

/* ---- informer handlers ---- */

static void kr_ctl_index_ref(struct kr_controller *c, const char *ref, const char *owner, int add)
{
	if (add)
		kr_refindex_add(c->index, ref, owner);
	else
		kr_refindex_remove(c->index, ref, owner);
}

struct kr_ctl_index_arg {
	struct kr_controller *c;
	const char *owner;
	int add;
};

static void kr_ctl_index_one(void *arg, const char *ref)
{
	struct kr_ctl_index_arg *a = arg;

	kr_ctl_index_ref(a->c, ref, a->owner, a->add);
}

/* What a primary object's projection refers to, into (add) or out of the reverse index. */
static void kr_ctl_index_refs(struct kr_ctl_source *s, const cJSON *proj, const char *ns,
			      const char *owner, int add)
{
	struct kr_ctl_index_arg a = {s->c, owner, add};

	if (proj && s->s->refs)
		s->s->refs(proj, ns, kr_ctl_index_one, &a);
}

static void kr_ctl_on_primary(void *arg, enum kr_kube_event_type type, const char *ns,
			      const char *name, const cJSON *old_proj, const cJSON *new_proj)
{
	struct kr_ctl_source *s = arg;
	char key[512];

	(void)type;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	kr_ctl_index_refs(s, new_proj, ns, key, 1);
	kr_ctl_index_refs(s, old_proj, ns, key, 0);
	kr_ctl_enqueue(s->c, key);
}

struct kr_ctl_user_arg {
	struct kr_controller *c;
	const char *user;
	int add;
};

/* A reference of another source's object: into or out of `users`; wakes who names it. */
static void kr_ctl_user_ref(void *arg, const char *ref)
{
	struct kr_ctl_user_arg *a = arg;

	if (a->add)
		kr_refindex_add(a->c->users, ref, a->user);
	else
		kr_refindex_remove(a->c->users, ref, a->user);
	kr_refindex_lookup(a->c->index, ref, kr_ctl_enqueue, a->c);
}

static void kr_ctl_on_reference(void *arg, enum kr_kube_event_type type, const char *ns,
				const char *name, const cJSON *old_proj, const cJSON *new_proj)
{
	struct kr_ctl_source *s = arg;
	char ref[600];
	struct kr_ctl_user_arg add = {s->c, ref, 1}, del = {s->c, ref, 0};

	(void)type;
	kr_controller_workload_ref(ref, sizeof(ref), s->s->res->kind, ns ? ns : "", name);
	kr_refindex_lookup(s->c->index, ref, kr_ctl_enqueue, s->c);
	if (!s->s->refs)
		return;
	if (new_proj)
		s->s->refs(new_proj, ns ? ns : "", kr_ctl_user_ref, &add);
	if (old_proj)
		s->s->refs(old_proj, ns ? ns : "", kr_ctl_user_ref, &del);
}

static void kr_ctl_on_error(void *arg, const struct kr_error *err)
{
	struct kr_ctl_source *s = arg;

	kr_log_warn(NULL, "watching %s (will retry): %s", s->s->res->plural, err->msg);
}

/* A cache finished its list: workers waiting for every cache may start. */
static void kr_ctl_on_synced(void *arg)
{
	struct kr_ctl_source *s = arg;

	pthread_mutex_lock(&s->c->lock);
	pthread_cond_broadcast(&s->c->cond);
	pthread_mutex_unlock(&s->c->lock);
}

static enum kr_status kr_ctl_make_informer(struct kr_controller *c, int k, struct kr_error *err)
{
	const struct kr_controller_source *src = &c->o.sources[k];
	struct kr_informer_opts io = {
	    .watch = {.res = src->res,
		      .ns = src->res->namespaced ? c->ns : NULL,
		      .idle_timeout_s = c->o.watch_idle_timeout_s},
	    .project = src->project,
	    .pack_dict = src->pack_dict,
	    .on_change = src->primary ? kr_ctl_on_primary : kr_ctl_on_reference,
	    .on_error = kr_ctl_on_error,
	    .on_synced = kr_ctl_on_synced,
	    .change_arg = &c->src[k],
	};

	c->src[k] = (struct kr_ctl_source){c, src};
	c->inf[k] = kr_informer_new(c->o.cfg, &io, err);
	return c->inf[k] ? KR_OK : err ? err->code : KR_ENOMEM;
}

/* ---- lifecycle ---- */

struct kr_controller *kr_controller_new(const struct kr_controller_opts *o, struct kr_error *err)
{
	struct kr_controller *c = calloc(1, sizeof(*c));
	enum kr_status rc = KR_ENOMEM;

	if (!c)
		goto out;
	c->o = *o;
	c->o.queue = NULL;
	c->nworkers = o->workers > 0 ? o->workers : KR_WORKQUEUE_DEFAULT_WORKERS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->ns = o->namespace_ && o->namespace_[0] ? strdup(o->namespace_) : NULL;
	c->metrics = kr_metrics_new();
	c->queue = kr_workqueue_new(o->queue);
	c->index = kr_refindex_new();
	c->users = kr_refindex_new();
	c->workers = calloc((size_t)c->nworkers, sizeof(*c->workers));
	for (int i = 0; c->workers && i < c->nworkers; i++)
		pthread_mutex_init(&c->workers[i].busy_lock, NULL);
	c->stuck_ms = o->stuck_worker_timeout_ms > 0 ? o->stuck_worker_timeout_ms
						     : KR_CONTROLLER_STUCK_DEFAULT_MS;
	if (!c->metrics || !c->queue || !c->index || !c->users || !c->workers ||
	    (o->namespace_ && o->namespace_[0] && !c->ns))
		goto out;
	rc = kr_metrics_register_runtime(c->metrics,
					 o->metrics_prefix ? o->metrics_prefix : "controller",
					 o->version ? o->version : "unknown", &c->fam, err);
	if (rc != KR_OK)
		goto out;
	kr_gauge_set(c->fam.leader, NULL, o->leader_elect ? 0 : 1);
	c->events = kr_events_new(
	    &(struct kr_events_opts){.cfg = o->cfg,
				     .component = o->metrics_prefix,
				     .instance = o->event_instance,
				     .dropped = c->fam.events_dropped_total,
				     .now = o->clock,
				     .now_arg = o->clock_arg},
	    err);
	if (!c->events) {
		rc = err ? err->code : KR_ENOMEM;
		goto out;
	}
	c->nsrc = o->n_sources;
	if (c->nsrc < 0 || c->nsrc > KR_CONTROLLER_MAX_SOURCES || (c->nsrc && !o->sources)) {
		rc = kr_error_set(err, KR_EINVAL, "controller: %d sources (at most %d)", c->nsrc,
				  KR_CONTROLLER_MAX_SOURCES);
		goto out;
	}
	for (int k = 0; k < c->nsrc && rc == KR_OK; k++)
		rc = kr_ctl_make_informer(c, k, err);
out:
	if (rc == KR_ENOMEM)
		kr_error_set(err, rc, "controller: out of memory");
	if (rc != KR_OK) {
		kr_controller_free(c);
		return NULL;
	}
	return c;
}

void kr_controller_free(struct kr_controller *c)
{
	if (!c)
		return;
	kr_controller_stop(c);
	for (int k = 0; k < c->nsrc; k++)
		kr_informer_free(c->inf[k]);
	for (int i = 0; c->workers && i < c->nworkers; i++) {
		kr_kube_client_free(c->workers[i].client);
		pthread_mutex_destroy(&c->workers[i].busy_lock);
	}
	free(c->workers);
	kr_events_free(c->events);
	kr_workqueue_free(c->queue);
	kr_refindex_free(c->index);
	kr_refindex_free(c->users);
	kr_metrics_free(c->metrics);
	free(c->ns);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- the worker loop ---- */

static int kr_ctl_synced(struct kr_controller *c);

/*
 * Block until this replica leads (with leader election) and every cache has listed, as
 * client-go's WaitForCacheSync, or the controller stops; 1 when work may go on. A worker
 * that took keys before would only put them back, and on a large cold start that churned
 * the queue while the lists were still coming in.
 */
static int kr_ctl_wait_leading(struct kr_controller *c)
{
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->stopping) &&
	       ((c->o.leader_elect && !atomic_load(&c->leading)) || !kr_ctl_synced(c)))
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return !atomic_load(&c->stopping);
}

static void kr_ctl_reconcile_id(char *out, size_t size)
{
	static atomic_ulong fallback;
	unsigned char b[8];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		snprintf(out, size, "%016lx", atomic_fetch_add(&fallback, 1) + 1);
		return;
	}
	snprintf(out, size, "%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
		 b[6], b[7]);
}

static double kr_ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record the outcome in the queue, the metrics and the log. */
static void kr_ctl_outcome(struct kr_controller *c, const char *key, enum kr_status rc,
			   const struct kr_reconcile_result *res, double seconds)
{
	const char *result = "success";

	if (rc != KR_OK && rc != KR_ENOTFOUND) {
		result = "error";
		kr_workqueue_add_rate_limited(c->queue, key);
		kr_log_error(res->log, "reconcile failed (retrying with backoff): %s: %s",
			     kr_strerror(rc), res->err.msg);
	} else {
		kr_workqueue_forget(c->queue, key);
		if (rc == KR_OK && res->requeue_after_ms > 0) {
			result = "requeue";
			kr_workqueue_add_after(c->queue, key, res->requeue_after_ms);
		}
		kr_log_debug(res->log, "reconciled in %.3fs (%s)", seconds,
			     rc == KR_ENOTFOUND ? "gone" : result);
	}
	kr_counter_inc(c->fam.reconcile_total, KR_LV(result));
	kr_histogram_observe(c->fam.reconcile_duration_seconds, NULL, seconds);
	kr_ctl_sync_queue_metrics(c);
}

/* Mark worker `w` in a reconcile of `key` (reconcileID `id`), or idle when key is NULL. */
static void kr_ctl_busy(struct kr_ctl_worker *w, const char *key, const char *id)
{
	pthread_mutex_lock(&w->busy_lock);
	w->busy = key != NULL;
	w->stuck_logged = false;
	w->busy_since_ms = kr_mono_ms();
	snprintf(w->busy_key, sizeof(w->busy_key), "%s", key ? key : "");
	snprintf(w->busy_id, sizeof(w->busy_id), "%s", id ? id : "");
	pthread_mutex_unlock(&w->busy_lock);
}

static void kr_ctl_process(struct kr_ctl_worker *w, const char *key)
{
	struct kr_controller *c = w->c;
	struct kr_reconcile_result res;
	struct kr_log_ctx ctx;
	char ns[256], id[20];
	const char *name = kr_controller_split_key(key, ns, sizeof(ns));
	enum kr_status rc;
	double t0;

	kr_ctl_reconcile_id(id, sizeof(id));
	ctx = (struct kr_log_ctx){ns, name, id};
	memset(&res, 0, sizeof(res));
	res.log = &ctx;
	t0 = kr_ctl_now();
	kr_ctl_busy(w, key, id);
	rc = c->o.reconcile(c->o.reconcile_arg, w->client, ns, name, &res);
	kr_ctl_busy(w, NULL, NULL);
	if (rc != KR_OK && res.err.code == KR_OK)
		kr_error_set(&res.err, rc, "%s", kr_strerror(rc));
	kr_ctl_outcome(c, key, rc, &res, kr_ctl_now() - t0);
}

/*
 * Every cache has its first list (as client-go's WaitForCacheSync): a reconcile before that
 * would read a workload that exists as missing. Sticky once true.
 */
static int kr_ctl_synced(struct kr_controller *c)
{
	if (atomic_load(&c->synced))
		return 1;
	for (int k = 0; k < c->nsrc; k++)
		if (!kr_informer_has_synced(c->inf[k]))
			return 0;
	atomic_store(&c->synced, 1);
	return 1;
}

/* A queue key no primary object can have (theirs are "namespace/name"): a deferred trim. */
#define KR_CTL_TRIM_KEY ":trim"

static void kr_ctl_trim(struct kr_controller *c, bool deferred)
{
	long defer_ms;

	kr_memory_trim_after(&c->trim, (long)kr_workqueue_len(c->queue), deferred, &defer_ms);
	if (defer_ms > 0)
		kr_workqueue_add_after(c->queue, KR_CTL_TRIM_KEY, defer_ms);
}

static void *kr_ctl_worker_main(void *arg)
{
	struct kr_ctl_worker *w = arg;
	struct kr_controller *c = w->c;
	char *key;

	while (kr_ctl_wait_leading(c)) {
		if (kr_workqueue_get(c->queue, &key) != KR_OK) {
			if (atomic_load(&c->stopping))
				break;
			continue;
		}
		if (strcmp(key, KR_CTL_TRIM_KEY) == 0) {
			kr_workqueue_done(c->queue, key);
			free(key);
			kr_ctl_trim(c, true);
			continue;
		}
		kr_ctl_sync_queue_metrics(c);
		if (kr_controller_may_write(c)) /* the caches have listed: wait_leading saw to it */
			kr_ctl_process(w, key);
		else
			kr_workqueue_add_after(c->queue, key, 1000); /* fence: not now */
		kr_workqueue_done(c->queue, key);
		free(key);
		kr_ctl_trim(c, false);
	}
	atomic_store(&w->running, 0);
	return NULL;
}

enum kr_status kr_controller_start(struct kr_controller *c, struct kr_error *err)
{
	enum kr_status rc = KR_OK;

	if (c->started)
		return kr_error_set(err, KR_ESTATE, "controller: already started");
	c->started = 1;
	for (int i = 0; i < c->nworkers; i++) {
		c->workers[i].client = kr_kube_client_new(c->o.cfg, err);
		if (!c->workers[i].client)
			return err ? err->code : KR_EIO;
	}
	rc = kr_events_start(c->events, err);
	for (int k = 0; k < c->nsrc && rc == KR_OK; k++)
		rc = kr_informer_start(c->inf[k], err);
	for (int i = 0; i < c->nworkers && rc == KR_OK; i++) {
		struct kr_ctl_worker *w = &c->workers[i];

		w->c = c;
		w->index = i;
		atomic_store(&w->running, 1);
		if (pthread_create(&w->thread, NULL, kr_ctl_worker_main, w) != 0) {
			atomic_store(&w->running, 0);
			rc = kr_error_set(err, KR_ENOMEM, "controller: cannot start worker %d", i);
		}
	}
	if (rc == KR_OK)
		atomic_store(&c->workers_up, 1);
	return rc;
}

void kr_controller_stop(struct kr_controller *c)
{
	if (!c || !c->started || c->stopped)
		return;
	c->stopped = 1;
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->stopping, 1);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	kr_workqueue_shutdown(c->queue);
	for (int i = 0; i < c->nworkers; i++)
		if (c->workers[i].c)
			pthread_join(c->workers[i].thread, NULL);
	kr_events_stop(c->events, KR_CONTROLLER_EVENTS_DRAIN_MS);
	for (int k = 0; k < c->nsrc; k++)
		kr_informer_stop(c->inf[k]);
}

void kr_controller_set_leading(struct kr_controller *c, int leading)
{
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->leading, leading ? 1 : 0);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	kr_gauge_set(c->fam.leader, NULL, leading ? 1 : 0);
}

int kr_controller_may_write(struct kr_controller *c)
{
	if (!c->o.leader_elect)
		return 1;
	if (!atomic_load(&c->leading))
		return 0;
	return c->o.fence ? c->o.fence(c->o.fence_arg) : 1;
}

/* "300s" or "1500ms": a bound as it was given. */
static void kr_ctl_format_ms(char *buf, size_t size, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, size, "%lldms", (long long)ms);
}

/*
 * A worker held by one reconcile for longer than the bound (a dependency that never answers
 * and no timeout that catches it): 1 and a reason naming the worker and the KeyRotation.
 * The first time a reconcile is seen stuck, one error line says so, with its context.
 */
static int kr_ctl_stuck(struct kr_controller *c, char *reason, size_t size)
{
	int64_t now = kr_mono_ms();

	for (int i = 0; c->workers && i < c->nworkers; i++) {
		struct kr_ctl_worker *w = &c->workers[i];
		char key[sizeof(w->busy_key)], id[sizeof(w->busy_id)], ns[256], bound[32];
		struct kr_log_ctx ctx;
		int64_t age;
		bool first;

		pthread_mutex_lock(&w->busy_lock);
		age = w->busy ? now - w->busy_since_ms : 0;
		first = age > c->stuck_ms && !w->stuck_logged;
		if (age > c->stuck_ms) {
			w->stuck_logged = true;
			memcpy(key, w->busy_key, sizeof(key));
			memcpy(id, w->busy_id, sizeof(id));
		}
		pthread_mutex_unlock(&w->busy_lock);
		if (age <= c->stuck_ms)
			continue;
		kr_ctl_format_ms(bound, sizeof(bound), c->stuck_ms);
		snprintf(reason, size,
			 "worker %d stuck for %.1fs (bound %s) reconciling KeyRotation %s", i,
			 (double)age / 1000.0, bound, key);
		if (first) {
			ctx = (struct kr_log_ctx){ns, kr_controller_split_key(key, ns, sizeof(ns)),
						  id};
			kr_log_error(&ctx, "%s: /healthz and /readyz fail until it returns",
				     reason);
		}
		return 1;
	}
	return 0;
}

int kr_controller_ready(struct kr_controller *c, char *reason, size_t size)
{
	size_t used = 0;
	int ready = 1;

	if (kr_ctl_stuck(c, reason, size))
		return 0;

	for (int k = 0; k < c->nsrc; k++) {
		if (kr_informer_has_synced(c->inf[k]))
			continue;
		if (ready)
			used = (size_t)snprintf(reason, size, "caches not synced:");
		ready = 0;
		if (used < size)
			used += (size_t)snprintf(reason + used, size - used, " %s",
						 kr_informer_name(c->inf[k]));
	}
	return ready;
}

int kr_controller_alive(struct kr_controller *c, char *reason, size_t size)
{
	for (int k = 0; k < c->nsrc; k++) {
		if (!kr_informer_alive(c->inf[k])) {
			snprintf(reason, size, "informer %s stopped", kr_informer_name(c->inf[k]));
			return 0;
		}
	}
	for (int i = 0; atomic_load(&c->workers_up) && !c->stopped && i < c->nworkers; i++) {
		if (!atomic_load(&c->workers[i].running)) {
			snprintf(reason, size, "worker %d stopped", i);
			return 0;
		}
	}
	return !kr_ctl_stuck(c, reason, size);
}

struct kr_metrics *kr_controller_metrics(struct kr_controller *c)
{
	return c->metrics;
}

const struct kr_runtime_metrics *kr_controller_families(struct kr_controller *c)
{
	return &c->fam;
}

struct kr_informer *kr_controller_informer(struct kr_controller *c, int i)
{
	return i >= 0 && i < c->nsrc ? c->inf[i] : NULL;
}

struct kr_events *kr_controller_events(struct kr_controller *c)
{
	return c->events;
}

struct kr_workqueue *kr_controller_queue(struct kr_controller *c)
{
	return c->queue;
}

struct kr_refindex *kr_controller_refindex(struct kr_controller *c)
{
	return c->index;
}

struct kr_refindex *kr_controller_users(struct kr_controller *c)
{
	return c->users;
}
