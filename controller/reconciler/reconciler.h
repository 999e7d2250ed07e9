/* reconciler.h - the I/O around the pure rotation decision: observe, decide, act, record. */
#ifndef KR_RECONCILER_H
#define KR_RECONCILER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/error.h"
#include "runtime/controller.h"
#include "runtime/metrics.h"

/*
 * One reconcile of a KeyRotation is a short loop:
 *
 *   observe   GET the KeyRotation, its consumers' Secret and its `<name>-rotation` Secret;
 *             read the workloads from the informer caches; ask the key store (one
 *             connection per reconcile) what it holds;
 *   decide    kr_rotation_decide (rotation.h), pure;
 *   act       carry out the one action (Secret writes, key store calls, a pod-template
 *             patch, a measurement, a verify request);
 *   record    only after the action succeeded: status via /status (skipped when the JSON
 *             would not change), an Event, metrics.
 *
 * and again, until the decision says wait, nothing, or refuse, or a pod-template patch
 * was sent (the informer cache must show it before the next decision; its watch event
 * wakes the KeyRotation) (at most
 * KR_RECONCILER_MAX_STEPS actions per reconcile, so one object cannot hold a worker).
 * Every write is conditional on the resourceVersion just read, or an idempotent patch;
 * a 409 re-observes and decides again. Raw keys live only in struct kr_secret buffers
 * read from the two Secrets and are wiped when the reconcile ends.
 */

#define KR_RECONCILER_MAX_STEPS 24
/* After patching pod templates: wait for the watch to show it, at most this long. */
#define KR_RECONCILER_PATCH_SETTLE_MS 2000
#define KR_ROTATION_SECRET_SUFFIX     "-rotation"

struct kr_reconciler_opts {
	/* Name of this replica in Events' reportingInstance (pod name); NULL: hostname. */
	const char *instance;
	/*
	 * A file holding a number of seconds added to the wall clock, re-read at every
	 * reconcile; NULL for none. For tests of schedules and maxKeyAge (`run
	 * --clock-skew-file`), never needed in production.
	 */
	const char *clock_skew_file;
	long keystore_timeout_ms; /* connect and command timeout; 0: 5000 */
	/*
	 * Idle KeyRotations' key stores are checked this often (the current key active, the
	 * bootstrap marker right) by one sweeper thread, in one pipelined round trip per
	 * Valkey server for all of them, no API request; drift starts a full reconcile, which
	 * repairs it. 0: 30000.
	 */
	long keystore_check_ms;
	/* A full reconcile of an idle KeyRotation at least this often (Secrets are not
	 * watched), spread over the period's last tenth. 0: 3600000 (an hour). */
	long resync_period_ms;
	long http_timeout_ms; /* analysis and verify requests; 0: 10000 */
	/*
	 * Honour the inline spec.keyStore (`run --allow-inline-key-stores`). Off: a
	 * KeyRotation must name an admin-written KeyStore or ClusterKeyStore (keyStoreRef).
	 */
	bool allow_inline_key_stores;
	/*
	 * The namespace the controller runs in (`run --controller-namespace`, $POD_NAMESPACE,
	 * or the service account's): where a ClusterKeyStore's password Secret is read when
	 * it names no namespace. NULL: "keyrotator-system".
	 */
	const char *controller_namespace;
	/* Where analysis, scrape and verify requests may go (`run --allowed-endpoints`);
	 * borrowed; NULL: anywhere but link-local and cloud metadata addresses. */
	const struct kr_egress *egress;
};

struct kr_reconciler;
struct kr_egress;

/* Options are copied. Caller frees with kr_reconciler_free (NULL-safe). */
struct kr_reconciler *kr_reconciler_new(const struct kr_reconciler_opts *o, struct kr_error *err);
void kr_reconciler_free(struct kr_reconciler *r);

/*
 * The controller this reconciler works for (made with kr_reconciler_sources(); its
 * informers, write fence, metrics and queue). Set once, before kr_controller_start:
 * registers keyrotator's metric families in its registry and starts the key store
 * sweeper thread. Borrowed: free the reconciler (which joins the sweeper) before the
 * controller. Fails only when the families cannot be registered.
 */
enum kr_status kr_reconciler_attach(struct kr_reconciler *r, struct kr_controller *ctl,
				    struct kr_error *err);

/* A kr_reconcile_fn (runtime/controller.h); `arg` is the struct kr_reconciler *. */
enum kr_status kr_reconciler_reconcile(void *arg, struct kr_kube_client *client, const char *ns,
				       const char *name, struct kr_reconcile_result *res);

/* The reconciler's clock: time(NULL) plus the skew file's seconds. */
time_t kr_reconciler_now(const struct kr_reconciler *r);
/* The same for kr_controller_opts.clock (Events' timestamps); `r` a struct kr_reconciler *. */
time_t kr_reconciler_clock(void *r);
/* The Events' reportingInstance: opts.instance, or the host name. */
const char *kr_reconciler_instance(const struct kr_reconciler *r);

/* ---- what the controller runtime runs for keyrotator (sources.c, metrics.c) ---- */

/* keyrotator's informers, as indices of kr_reconciler_sources() and kr_controller_informer. */
enum kr_source {
	KR_SRC_KEYROTATIONS, /* primary: the KeyRotation whole (small), refs for the index */
	KR_SRC_DEPLOYMENTS,
	KR_SRC_STATEFULSETS,
	KR_SRC_DAEMONSETS,
	KR_SRC_KEYSTORES,	 /* whole spec (small; an admin writes a few) */
	KR_SRC_CLUSTERKEYSTORES, /* cluster-scoped: watched across namespaces */
	KR_SRC_CRONJOBS,	 /* only the Secrets its pod template reads (unlisted consumers) */
	KR_SRC_N
};

/* The KR_SRC_N sources, for kr_controller_opts.sources. */
const struct kr_controller_source *kr_reconciler_sources(void);

/*
 * The projection stored for a KeyRotation: {"refs": ["Deployment/ns/name", ...], one
 * per workload of its stages, then its key store "KeyStore/ns/name" or
 * "ClusterKeyStore//name"; "secret": spec.secretRef.name; "created": its
 * creationTimestamp; "rv": its resourceVersion; "object": the object without
 * managedFields and kubectl's last-applied-configuration}. Exposed for tests.
 * Returns an owned tree (cJSON_Delete) or NULL.
 */
cJSON *kr_reconciler_project_keyrotation(void *arg, const cJSON *object);
/*
 * The projection stored for a KeyStore or ClusterKeyStore: {"generation", "spec"} (the
 * whole spec: a store is small and the reconciler resolves keyStoreRef from it; status is
 * left out so the controller's own status writes wake no KeyRotation).
 */
cJSON *kr_reconciler_project_store(void *arg, const cJSON *object);
/*
 * The projection stored for a workload: generation, replicas, paused, keyId (the
 * keyrotator.io/key-id pod-template annotation), updateStrategy, and of status only the
 * counts and revisions rollout completion reads plus progressDeadlineExceeded (true when
 * the Progressing condition says ProgressDeadlineExceeded).
 */
cJSON *kr_reconciler_project_workload(void *arg, const cJSON *object);
/*
 * Both workload projections also keep "secrets": the names of the Secrets the pod template
 * reads (env secretKeyRef, envFrom secretRef, secret volumes, projected volume sources),
 * sorted, each once; a CronJob's (spec.jobTemplate.spec.template) holds only that. The
 * sources' refs name them "Secret/ns/name", so kr_controller_users finds the workloads
 * that read a Secret, and a change wakes the KeyRotations whose Secret it is.
 */
cJSON *kr_reconciler_project_cronjob(void *arg, const cJSON *object);

/*
 * keyrotator's own metric families (the runtime's are in metrics.h), each
 * "keyrotator_" + the field name:
 *   rotations_total{outcome}          "succeeded", "rolled_back", "failed" (all from the start)
 *   rotation_duration_seconds         histogram, 1s..3h, observed when a rotation ends
 *   unauthorized_rate{namespace,name} gauge, 401/s last measured during a rotation
 *   key_age_seconds{namespace,name}   gauge, age of the current key, true at each scrape
 *   keystore_repairs_total            counter
 *   ready{namespace,name}             gauge, 1 while the Ready condition is True, else 0
 *   phase{namespace,name,phase}       gauge, 1 for the KeyRotation's phase (one series)
 *   keystore_in_sync{namespace,name}  gauge, 1 while KeyStoreInSync is True, else 0
 *   max_key_age_seconds{namespace,name} gauge, spec.maxKeyAge (absent when not set)
 *   stage_deadline_timestamp_seconds{namespace,name} gauge, Unix time by which the stage
 *                                     rolling out must be done (its start + spec timeout);
 *                                     absent with no stage rolling out
 *   keystore_up{kind,namespace,keystore} gauge, 1 while a KeyStore/ClusterKeyStore is Ready (the
 *                                     spec is valid and the server answers), else 0
 */
struct kr_keyrotator_metrics {
	struct kr_metric *rotations_total;
	struct kr_metric *rotation_duration_seconds;
	struct kr_metric *unauthorized_rate;
	struct kr_metric *key_age_seconds;
	struct kr_metric *keystore_repairs_total;
	struct kr_metric *ready;
	struct kr_metric *phase;
	struct kr_metric *keystore_in_sync;
	struct kr_metric *max_key_age_seconds;
	struct kr_metric *stage_deadline_timestamp_seconds;
	struct kr_metric *keystore_up;
};

#define KR_METRICS_PREFIX "keyrotator"

/* Register the above in `m`. Fails like kr_metrics_register (KR_EEXIST if called twice). */
enum kr_status kr_metrics_register_keyrotator(struct kr_metrics *m,
					      struct kr_keyrotator_metrics *out,
					      struct kr_error *err);

#endif
