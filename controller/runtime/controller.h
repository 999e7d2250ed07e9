/* controller.h - the controller runtime: informers, the workqueue and the worker threads. */
#ifndef KR_CONTROLLER_H
#define KR_CONTROLLER_H

#include <stddef.h>

#include "base/error.h"
#include "base/log.h"
#include "kube/kube.h"
#include "runtime/informer.h"
#include "runtime/metrics.h"
#include "runtime/workqueue.h"

/*
 * A kr_controller owns: informers for KeyRotations, Deployments, StatefulSets and
 * DaemonSets (scoped to one namespace or all); the workqueue of KeyRotation keys
 * "namespace/name"; N worker threads, each with its own kr_kube_client; and the metrics
 * registry with keyrotator's families.
 *
 * Secrets are never listed or watched: RBAC grants get/create/update/patch on Secrets
 * only, so memory never holds unrelated Secrets and a compromised controller cannot
 * enumerate them. The reconciler GETs the two Secrets it needs and uses requeue-after
 * timers where it waits on them.
 *
 * What wakes a KeyRotation: any change to it; a change to a workload its
 * spec.stages[].workloads[] names (kind/namespace/name via a reverse index).
 *
 * With leader election the informers run from the start (a standby is warm) but the
 * workers reconcile only between kr_controller_set_leading(c, 1) and (c, 0).
 */

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

/* The informers a controller owns (kr_controller_informer). */
enum kr_controller_kind {
	KR_CTL_KEYROTATIONS,
	KR_CTL_DEPLOYMENTS,
	KR_CTL_STATEFULSETS,
	KR_CTL_DAEMONSETS,
	KR_CTL_KEYSTORES,	 /* whole objects (small; an admin writes a few) */
	KR_CTL_CLUSTERKEYSTORES, /* cluster-scoped: watched across namespaces */
	KR_CTL_NKINDS
};

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

/* Borrowed handles, valid until kr_controller_free. */
struct kr_metrics *kr_controller_metrics(struct kr_controller *c);
const struct kr_keyrotator_metrics *kr_controller_families(struct kr_controller *c);
struct kr_informer *kr_controller_informer(struct kr_controller *c, enum kr_controller_kind k);
struct kr_workqueue *kr_controller_queue(struct kr_controller *c);
/*
 * Reverse index: "Deployment/ns/name" (or StatefulSet/DaemonSet) -> KeyRotation "ns/name";
 * also "Secret/ns/name" -> the KeyRotations whose spec.secretRef names it.
 */
struct kr_refindex *kr_controller_refindex(struct kr_controller *c);

/*
 * A queue key "ns/name": copies the namespace into ns (at most size - 1 characters) and
 * returns the name. Without a '/' (or with a namespace too long) ns is "" and the name the
 * whole key.
 */
const char *kr_controller_split_key(const char *key, char *ns, size_t size);

/*
 * The reference of a workload as the reverse index and the KeyRotation projection hold it:
 * "Deployment/ns/name" (`kind` as spec.stages[].workloads[].kind spells it). Truncated to
 * `size`; returns `buf`.
 */
char *kr_controller_workload_ref(char *buf, size_t size, const char *kind, const char *ns,
				 const char *name);

/*
 * The projection stored for a KeyRotation: {"refs": ["Deployment/ns/name", ...], one
 * per workload of its stages; "secret": spec.secretRef.name; "created": its
 * creationTimestamp; "rv": its resourceVersion}. Exposed for tests.
 * Returns an owned tree (cJSON_Delete) or NULL.
 */
cJSON *kr_controller_project_keyrotation(void *arg, const cJSON *object);
/*
 * The projection stored for a KeyStore or ClusterKeyStore: {"generation", "spec"} (the
 * whole spec: a store is small and the reconciler resolves keyStoreRef from it; status is
 * left out so the controller's own status writes wake no KeyRotation).
 */
cJSON *kr_controller_project_store(void *arg, const cJSON *object);
/*
 * The projection stored for a workload: generation, replicas, paused, keyId (the
 * keyrotator.io/key-id pod-template annotation), updateStrategy, and of status only the
 * counts and revisions rollout completion reads plus progressDeadlineExceeded (true when
 * the Progressing condition says ProgressDeadlineExceeded).
 */
cJSON *kr_controller_project_workload(void *arg, const cJSON *object);

#endif
