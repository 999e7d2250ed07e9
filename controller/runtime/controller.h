/* controller.h - the controller runtime: informers, the workqueue and the worker threads. */
#ifndef KR_CONTROLLER_H
#define KR_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "base/log.h"
#include "kube/kube.h"
#include "runtime/events.h"
#include "runtime/informer.h"
#include "runtime/metrics.h"
#include "runtime/workqueue.h"

/*
 * A kr_controller owns: one informer per source the caller describes (scoped to one
 * namespace or all); the workqueue of primary object keys "namespace/name"; N worker
 * threads, each with its own kr_kube_client; the metrics registry with the runtime's
 * families (reconciles, workqueue, leader, build info, named after `metrics_prefix`).
 * It knows no schema: what each cache keeps and what a primary object refers to come
 * from the sources (reconciler/sources.c describes keyrotator's).
 *
 * What wakes a primary object: any change to it; a change to an object of another source
 * that its projection refers to ("Kind/ns/name" via a reverse index).
 *
 * With leader election the informers run from the start (a standby is warm) but the
 * workers reconcile only between kr_controller_set_leading(c, 1) and (c, 0).
 */

/* Called by a source's `refs` for each reference of a primary object's projection. */
typedef void (*kr_controller_ref_fn)(void *arg, const char *ref);

/* One informer of the controller. */
struct kr_controller_source {
	const struct kr_kube_resource *res;
	kr_informer_project_fn project; /* what its cache keeps; NULL: keys only */
	/*
	 * Exactly one source is primary: a change enqueues the object's own key, and `refs`
	 * (may be NULL) lists what its projection names, for the reverse index. A change to
	 * an object of any other source enqueues the primary objects that name
	 * "Kind/ns/name" (Kind: res->kind; ns "" when cluster-scoped). Another source's
	 * `refs` (may be NULL) lists what its object names: the change also enqueues the
	 * primary objects that name one of those (before or after the change), and the
	 * object is kept in kr_controller_users under each ("Kind/ns/name").
	 */
	bool primary;
	void (*refs)(const cJSON *proj, const char *ns, kr_controller_ref_fn add, void *arg);
	const struct kr_pack_dict *pack_dict; /* the projections' usual words (pack.h); NULL */
};

/* What one reconcile asks of the loop. */
struct kr_reconcile_result {
	long requeue_after_ms;	      /* > 0: reconcile again after this long (on success) */
	struct kr_error err;	      /* set when the reconcile returns an error */
	const struct kr_log_ctx *log; /* in: namespace/name/reconcileID for log lines */
};

/*
 * Reconcile the KeyRotation ns/name. Called on a worker thread with that worker's own
 * client (not shared, valid for the call). Return KR_OK (the key's backoff is reset;
 * res->requeue_after_ms schedules the next run) or an error (detail in res->err; the
 * key is retried with rate-limited backoff). KR_ENOTFOUND means the object is gone and
 * is not retried. Must be thread-safe across keys: two workers never get the same key.
 */
typedef enum kr_status (*kr_reconcile_fn)(void *arg, struct kr_kube_client *client, const char *ns,
					  const char *name, struct kr_reconcile_result *res);

struct kr_controller_opts {
	struct kr_kube_config *cfg; /* borrowed, must outlive the controller */
	/* The informers (borrowed, must outlive the controller); kr_controller_informer(c, i)
	 * is sources[i]'s. */
	const struct kr_controller_source *sources;
	int n_sources;
	const char *metrics_prefix; /* "keyrotator": keyrotator_reconcile_total, ...; borrowed */
	/* Events (kr_controller_events): reportingInstance (NULL: none), and the clock of
	 * their timestamps (NULL: time(NULL)); the component is metrics_prefix. */
	const char *event_instance;
	time_t (*clock)(void *arg);
	void *clock_arg;
	const char *namespace_;	    /* NULL or "": every namespace; borrowed */
	int workers;		    /* 0: KR_WORKQUEUE_DEFAULT_WORKERS */
	int leader_elect;	    /* 1: reconcile only while set_leading(1) */
	kr_reconcile_fn reconcile;  /* required */
	void *reconcile_arg;
	const char *version;		       /* for build_info; borrowed */
	const struct kr_workqueue_opts *queue; /* NULL: defaults; copied */
	int watch_idle_timeout_s;	       /* 0: reflector default (tests shorten it) */
	/* The leader fence (kr_leader_is_leader), checked before each reconcile; may be NULL. */
	int (*fence)(void *arg);
	void *fence_arg;
	/*
	 * A worker in one reconcile for longer than this is stuck (a dependency that never
	 * answers): kr_controller_alive and kr_controller_ready fail, naming it, so the
	 * liveness probe restarts the pod. 0: KR_CONTROLLER_STUCK_DEFAULT_MS.
	 */
	long stuck_worker_timeout_ms;
};

#define KR_CONTROLLER_STUCK_DEFAULT_MS 300000L /* 5 minutes */

#define KR_CONTROLLER_MAX_SOURCES 16

struct kr_controller;

/* A stopped controller. Caller frees with kr_controller_free. */
struct kr_controller *kr_controller_new(const struct kr_controller_opts *o, struct kr_error *err);
/* Stop (as kr_controller_stop) and free. kr_controller_free(NULL) does nothing. */
void kr_controller_free(struct kr_controller *c);

/* Start the informers and the workers. Fails when a client or a thread cannot be made. */
enum kr_status kr_controller_start(struct kr_controller *c, struct kr_error *err);

/*
 * Graceful stop: no new work is handed out (the queue shuts down), reconciles in flight
 * finish, workers are joined, then the informers stop. Blocks until done. Idempotent.
 * Releasing a lease is the caller's job, after this returns.
 */
void kr_controller_stop(struct kr_controller *c);

/* Leadership changed (from a leader elector's callbacks). Thread-safe. */
void kr_controller_set_leading(struct kr_controller *c, int leading);

/*
 * 1 while this replica may write: leader election off, or leading and the fence holds.
 * A reconciler checks it right before every write. Thread-safe.
 */
int kr_controller_may_write(struct kr_controller *c);

/*
 * 1 when every informer has synced and no worker is stuck; else 0 and a reason.
 * Thread-safe, quick.
 */
int kr_controller_ready(struct kr_controller *c, char *reason, size_t size);
/*
 * 1 when every worker and informer thread is running and no worker has been in one
 * reconcile for longer than stuck_worker_timeout_ms; else 0 and a reason, e.g.
 * "worker 1 stuck for 301s (bound 300s) reconciling KeyRotation team-a/api-key".
 * Thread-safe, quick (a lock per worker, held for a copy). The first time a worker is seen
 * stuck in a reconcile, one error line is logged for it.
 */
int kr_controller_alive(struct kr_controller *c, char *reason, size_t size);

/*
 * The Event recorder (events.h): started with the controller; kr_controller_stop sends
 * what is queued for up to KR_CONTROLLER_EVENTS_DRAIN_MS after the workers ended.
 */
#define KR_CONTROLLER_EVENTS_DRAIN_MS 2000
struct kr_events *kr_controller_events(struct kr_controller *c);

/* Borrowed handles, valid until kr_controller_free. */
struct kr_metrics *kr_controller_metrics(struct kr_controller *c);
const struct kr_runtime_metrics *kr_controller_families(struct kr_controller *c);
/* The informer of sources[i]. */
struct kr_informer *kr_controller_informer(struct kr_controller *c, int i);
struct kr_workqueue *kr_controller_queue(struct kr_controller *c);
/* Reverse index: "Kind/ns/name" -> the primary objects "ns/name" whose `refs` name it. */
struct kr_refindex *kr_controller_refindex(struct kr_controller *c);
/* Reverse index: a ref -> the non-primary objects "Kind/ns/name" whose `refs` name it. */
struct kr_refindex *kr_controller_users(struct kr_controller *c);

/*
 * A queue key "ns/name": copies the namespace into ns (at most size - 1 characters) and
 * returns the name. Without a '/' (or with a namespace too long) ns is "" and the name the
 * whole key.
 */
const char *kr_controller_split_key(const char *key, char *ns, size_t size);

/*
 * A reference as the reverse index holds it: "Kind/ns/name" (ns "" when cluster-scoped).
 * Truncated to `size`; returns `buf`.
 */
char *kr_controller_workload_ref(char *buf, size_t size, const char *kind, const char *ns,
				 const char *name);

#endif
