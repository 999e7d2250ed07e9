/* rotation.h - the KeyRotation model and the pure rotation decision (DESIGN.md §1-§2). */
#ifndef KR_ROTATION_H
#define KR_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "rotation/schedule.h"

/*
 * Everything in this module is pure: no I/O, no clock, no randomness, no global state.
 * The reconciler observes the world (the KeyRotation, its Secrets, the workloads, the
 * key store, a measurement), fills a struct kr_observed, calls kr_rotation_decide, and
 * carries out exactly the one action it gets back. Raw keys never enter this module:
 * only key ids (first 12 hex digits of SHA-256) do.
 */

#define KR_ROT_ID_SIZE	    13	/* a key id (12 hex digits) + NUL; "" = none */
#define KR_ROT_REQUEST_MAX  256 /* annotation values acted on; longer ones are refused */
#define KR_ROT_REASON_MAX   256
#define KR_ROT_MSG_MAX	    512
#define KR_ROT_REVISION_MAX 128 /* StatefulSet controller revision names */

#define KR_ANNOTATION_ROTATE	  "keyrotator.io/rotate"
#define KR_ANNOTATION_EMERGENCY	  "keyrotator.io/emergency"
#define KR_ANNOTATION_KEY_ID	  "keyrotator.io/key-id"
#define KR_ANNOTATION_KEYROTATION "keyrotator.io/keyrotation" /* a Secret opts in (§1b) */
#define KR_ANNOTATION_ABORT	  "keyrotator.io/abort"	      /* a new value: roll back (§1c) */
#define KR_ANNOTATION_PROMOTE	  "keyrotator.io/promote"     /* a new value: pass the gate */

/* ---- the spec (spec.c) ------------------------------------------------------------ */

enum kr_workload_kind {
	KR_WORKLOAD_DEPLOYMENT = 0,
	KR_WORKLOAD_STATEFULSET,
	KR_WORKLOAD_DAEMONSET,
};

/* "Deployment", "StatefulSet", "DaemonSet". */
const char *kr_workload_kind_name(enum kr_workload_kind kind);

enum kr_rot_store_as {
	KR_ROT_STORE_SHA256 = 0, /* same values as keystore.h's enum kr_store_as */
	KR_ROT_STORE_PLAINTEXT,
};

struct kr_workload_ref {
	enum kr_workload_kind kind;
	char *name;
};

struct kr_stage_spec {
	char *name;
	struct kr_workload_ref *workloads;
	size_t n_workloads; /* 1..64 */
	size_t first;	    /* index of workloads[0] in the flat list of all workloads */
	int64_t timeout_ms; /* default 10m */
	bool pause;	    /* hold before this stage until keyrotator.io/promote (§1c) */
};

/* spec.unlistedConsumers: what a workload that reads the Secret but no stage lists does. */
enum kr_unlisted_policy {
	KR_UNLISTED_HOLD_REVOKE = 0, /* HoldRevoke (default): the revoke waits while one exists */
	KR_UNLISTED_IGNORE,	     /* Ignore: reported only */
};

#define KR_ROT_UNLISTED_MAX 8	/* unlisted consumers reported (status.unlistedConsumers) */
#define KR_ROT_NAME_SIZE    254 /* a workload name (DNS subdomain) + NUL */

/* A workload in the namespace that reads the consumers' Secret; no stage lists it. */
struct kr_unlisted {
	char kind[16]; /* Deployment, StatefulSet, DaemonSet, CronJob */
	char name[KR_ROT_NAME_SIZE];
	/* A CronJob with a Job running now (status.active): that Job read the Secret when it
	 * started and may still hold the old key. Not kept in status. */
	bool running;
};

struct kr_label_match {
	char *name;
	char *value;
};

enum kr_analysis_source {
	KR_ANALYSIS_NONE = 0, /* no spec.analysis: no 401 watch */
	KR_ANALYSIS_PROMETHEUS,
	KR_ANALYSIS_SCRAPE,
};

/* A key of a Secret in the KeyRotation's namespace; `name` NULL when the ref is not set. */
struct kr_secret_key_ref {
	char *name;
	char *key;
};

struct kr_analysis_spec {
	enum kr_analysis_source source;
	char *url;		       /* prometheus.url or scrape.url */
	char *query;		       /* prometheus only */
	char *metric;		       /* scrape only */
	struct kr_label_match *labels; /* scrape only */
	size_t n_labels;
	struct kr_secret_key_ref ca;		 /* prometheus.caSecretRef or scrape.caSecretRef */
	struct kr_secret_key_ref bearer_token;	 /* prometheus.bearerTokenSecretRef */
	char *basic_username;			 /* prometheus.basicAuth.username, or NULL */
	struct kr_secret_key_ref basic_password; /* prometheus.basicAuth.passwordSecretRef */
	int64_t interval_ms;			 /* default 15s, > 0 */
	double threshold;			 /* default 0.5 */
	int failure_limit;			 /* default 2 */
	int error_limit;			 /* default 4 */
};

/* Where the key store's settings come from. */
enum kr_store_ref_kind {
	KR_STORE_INLINE = 0,   /* spec.keyStore (only with `run --allow-inline-key-stores`) */
	KR_STORE_REF_KEYSTORE, /* spec.keyStoreRef: a KeyStore in the KeyRotation's namespace */
	KR_STORE_REF_CLUSTER,  /* spec.keyStoreRef: a ClusterKeyStore */
};

/* "KeyStore", "ClusterKeyStore"; "" for INLINE. */
const char *kr_store_ref_kind_name(enum kr_store_ref_kind kind);

/* The key store's tls: every string owned, NULL when absent. */
struct kr_store_tls_spec {
	bool enabled;	   /* tls is set (tls: {} = the system bundle, no client certificate) */
	char *ca_name;	   /* caSecretRef; NULL: the system's trust store */
	char *ca_key;	   /* default "ca.crt" */
	char *ca_ns;	   /* ClusterKeyStore: namespace; resolved as the password's */
	char *cert_name;   /* clientCertSecretRef (a kubernetes.io/tls Secret), or NULL */
	char *cert_ns;	   /* as ca_ns */
	char *server_name; /* the name the certificate must carry; NULL: the host */
};

/* The key store's sentinel: every string owned. n_addresses 0: no sentinel. */
struct kr_store_sentinel_spec {
	char **addresses; /* "host:port", 1..16 */
	size_t n_addresses;
	char *master_name;
	char *username;	     /* NULL when absent or "" */
	char *password_name; /* passwordSecretRef, or NULL */
	char *password_key;
	char *password_ns; /* as the store's password */
};

/*
 * A decoded, validated KeyRotation spec with every CRD default applied. Every string
 * is owned by the struct (NULL when the optional field is absent) and freed by
 * kr_rotation_spec_release. Durations are milliseconds; -1 means "not set".
 */
struct kr_rotation_spec {
	char *secret_name;
	char *secret_key;

	/*
	 * The key store. With spec.keyStore (inline) the store_* fields are decoded from it.
	 * With spec.keyStoreRef they are NULL after decode and filled by
	 * kr_keystore_object_apply from the KeyStore/ClusterKeyStore it names.
	 */
	enum kr_store_ref_kind store_ref_kind;
	char *store_ref_name;	       /* keyStoreRef.name */
	char *store_address;	       /* NULL until resolved (keyStoreRef) */
	int store_database;	       /* default 0 */
	char *store_username;	       /* NULL when absent or "" */
	char *store_password_name;     /* passwordSecretRef.name, or NULL */
	char *store_password_key;      /* passwordSecretRef.key */
	char *store_password_ns;       /* ClusterKeyStore: its namespace; NULL: see
					  kr_keystore_object_apply */
	char *store_active_set;	       /* default "api_keys:active" */
	char *store_meta_key;	       /* default "api_key:{id}:meta" */
	char *store_bootstrap_key;     /* default "api_keys:bootstrap" */
	enum kr_rot_store_as store_as; /* default sha256 */
	struct kr_store_tls_spec store_tls;
	struct kr_store_sentinel_spec store_sentinel;

	char *key_prefix; /* default "" (never NULL after decode) */
	int key_bytes;	  /* default 32 */

	struct kr_stage_spec *stages;
	size_t n_stages;    /* 1..32 */
	size_t n_workloads; /* over all stages */

	struct kr_analysis_spec analysis;

	int64_t validation_period_ms;  /* default 10m */
	int64_t revoke_when_unused_ms; /* -1 when not set */
	bool pause_before_revoke;      /* hold before the revoke until keyrotator.io/promote */
	enum kr_unlisted_policy unlisted_policy; /* spec.unlistedConsumers */
	bool dry_run;
	char *schedule; /* NULL when not set */
	struct kr_cron cron;
	int64_t max_key_age_ms; /* -1 when not set */
	bool suspend;
	char *verify_url;		    /* NULL when no spec.verify */
	char *verify_header;		    /* default "X-API-Key" */
	struct kr_secret_key_ref verify_ca; /* verify.caSecretRef */
	int history_limit;		    /* default 10 */
};

/*
 * Decode `obj` - a whole KeyRotation object (with "spec") or the spec object alone - into
 * *spec (which need not be initialised). `obj` is borrowed. Validates everything the CRD
 * validates, and more: the cron expression parses, durations parse, exactly one of
 * analysis.prometheus/scrape, stage names unique, metaKey holds "{id}" once, activeSet/
 * metaKey/bootstrapKey do not collide, workload names unique per kind. On error KR_EINVAL
 * (KR_ENOMEM) with a message that starts with the field path, e.g.
 *   spec.stages[1].timeout: "10x" is not a duration: invalid duration "10x": ...
 * and *spec is released. On success release with kr_rotation_spec_release.
 */
enum kr_status kr_rotation_spec_decode(const cJSON *obj, struct kr_rotation_spec *spec,
				       struct kr_error *err);
/* Free everything and zero the struct. Safe on a zeroed or released struct. */
void kr_rotation_spec_release(struct kr_rotation_spec *spec);
/* Free the key store's tls and sentinel parts and zero them (store_conn.c). */
void kr_store_conn_spec_release(struct kr_rotation_spec *spec);

/* ---- key store objects (keystore_ref.c) ------------------------------------------- */

/*
 * Fill spec->store_* from `store`, the KeyStore or ClusterKeyStore object (as the API
 * serves it; borrowed) that spec.keyStoreRef names, for the KeyRotation ns/name:
 * - a ClusterKeyStore must allow `ns` (spec.allowedNamespaces: `names`, or `selector`
 *   over `ns_labels`, the namespace's metadata.labels; NULL: unknown, no selector match);
 * - {namespace} and {name} in the layout names become the KeyRotation's;
 * - the password Secret's namespace: a KeyStore's own (`ns`); a ClusterKeyStore's
 *   passwordSecretRef.namespace, else `controller_ns` (NULL: "keyrotator-system").
 * Errors: KR_EAUTH "not allowed" (reason "KeyStoreNotAllowed"), KR_EINVAL an invalid
 * store (reason "KeyStoreInvalid"), the message naming the store and the field. `reason`
 * gets the condition reason ("" on success or KR_ENOMEM). Pure.
 */
enum kr_status kr_keystore_object_apply(struct kr_rotation_spec *spec, const cJSON *store,
					const char *ns, const char *name, const cJSON *ns_labels,
					const char *controller_ns, char reason[64],
					struct kr_error *err);
/*
 * Validate a KeyStore (`cluster` false) or ClusterKeyStore object alone; on success
 * *address gets a copy of spec.address (caller frees). KR_EINVAL names the field. Pure.
 */
enum kr_status kr_keystore_object_check(const cJSON *store, bool cluster, char **address,
					struct kr_error *err);
/*
 * The connection settings of a KeyStore (in namespace `ns`) or ClusterKeyStore (its Secrets
 * default to `controller_ns`, NULL: "keyrotator-system") into *spec (store_* fields only;
 * layout placeholders left as written). Release with kr_rotation_spec_release. Pure.
 */
enum kr_status kr_keystore_object_decode(const cJSON *store, bool cluster, const char *ns,
					 const char *controller_ns, struct kr_rotation_spec *spec,
					 struct kr_error *err);
/* A ClusterKeyStore's allowedNamespaces lets `ns` (labels `ns_labels`) use it. */
bool kr_keystore_object_allows(const cJSON *store, const char *ns, const cJSON *ns_labels);
/* Whether allowing `ns` depends on its labels (not listed by name; a selector is set). */
bool kr_keystore_object_needs_labels(const cJSON *store, const char *ns);
/*
 * For plans made without the controller's view (plan -f, the plugin): a ClusterKeyStore
 * whose namespace selector decides for `ns` is taken to allow it (added to its names),
 * since the Namespace's labels are not read there. `store` is changed. KR_ENOMEM only.
 */
void kr_keystore_object_assume_selector(cJSON *store, const char *ns);
/* A metav1.LabelSelector (matchLabels, matchExpressions) over labels; {} matches all. */
bool kr_label_selector_matches(const cJSON *selector, const cJSON *labels);

/* ---- status, as recorded in .status (plain data) ---------------------------------- */

enum kr_phase {
	KR_PHASE_IDLE = 0, /* also an empty status */
	KR_PHASE_ROTATING,
	KR_PHASE_VALIDATING,
	KR_PHASE_REVOKING,
	KR_PHASE_ROLLING_BACK,
	KR_PHASE_FAILED,
	KR_PHASE_PAUSED, /* held at a manual gate (stages[].pause, pauseBeforeRevoke) */
};

enum kr_trigger {
	KR_TRIGGER_NONE = 0,
	KR_TRIGGER_SCHEDULE,
	KR_TRIGGER_MAX_AGE,
	KR_TRIGGER_MANUAL,
	KR_TRIGGER_EMERGENCY,
	KR_TRIGGER_BOOTSTRAP,
};

/*
 * status.rotation.step: the step in hand (not yet done, or done but not yet recorded).
 * Normal:    Baseline (with analysis) Generate Activate Distribute RollOut(stage 0..n-1)
 *            Validate Revoke [Verify] Finish
 * Emergency: Generate Activate Distribute Revoke [Verify] RollOut(0..n-1) Finish
 * Bootstrap: Generate Activate Distribute RollOut(0..n-1) Finish (no old key to revoke)
 * Rollback:  RollBack RollBackStages RevokeNew FailFinish
 */
enum kr_step {
	KR_STEP_NONE = 0,
	KR_STEP_BASELINE,
	KR_STEP_GENERATE,
	KR_STEP_ACTIVATE,
	KR_STEP_DISTRIBUTE,
	KR_STEP_ROLLOUT,
	KR_STEP_VALIDATE,
	KR_STEP_REVOKE,
	KR_STEP_VERIFY,
	KR_STEP_FINISH,
	KR_STEP_ROLLBACK,
	KR_STEP_ROLLBACK_STAGES,
	KR_STEP_REVOKE_NEW,
	KR_STEP_FAIL_FINISH,
};

enum kr_outcome {
	KR_OUTCOME_NONE = 0,
	KR_OUTCOME_SUCCEEDED,
	KR_OUTCOME_ROLLED_BACK,
	KR_OUTCOME_FAILED,
};

/* Text as in the CRD ("Rotating", "MaxAge", "RollOut", "RolledBack"); "" for NONE. */
const char *kr_phase_name(enum kr_phase phase);
const char *kr_trigger_name(enum kr_trigger trigger);
const char *kr_step_name(enum kr_step step);
const char *kr_outcome_name(enum kr_outcome outcome);
/* The inverse; unknown or NULL text gives the NONE/IDLE value. */
enum kr_phase kr_phase_parse(const char *text);
enum kr_trigger kr_trigger_parse(const char *text);
enum kr_step kr_step_parse(const char *text);
enum kr_outcome kr_outcome_parse(const char *text);

struct kr_key_ref {
	char id[KR_ROT_ID_SIZE]; /* "" = none */
	time_t created_at;	 /* 0 = unknown */
};

/*
 * status.rotation: the rotation in flight (kept after a failure, for the record). Beyond
 * the CRD's trigger/startedAt/step/stage/stageIndex, the decision needs its progress
 * persisted so a restarted controller continues where it was; those fields go into
 * status.rotation too (see the JSON names in the comments).
 */
struct kr_rotation_progress {
	enum kr_trigger trigger;
	time_t started_at;
	enum kr_step step;
	int stage_index;	  /* stageIndex; -1 = none (stage name derives from the spec) */
	time_t stage_started_at;  /* stageStartedAt: first restart of the stage (its timeout) */
	time_t window_started_at; /* windowStartedAt: analysis window of a stage, or validation */
	time_t last_measured_at;  /* lastMeasurementTime */
	bool has_baseline;	  /* baseline present */
	double baseline;	  /* baseline: the 401 rate before the rotation */
	int failures;		  /* consecutiveFailures */
	int errors;		  /* consecutiveErrors (inconclusive measurements, verify errors) */
	bool old_revoked;	  /* oldKeyRevoked: step 7 done; never re-add the old key */
	bool new_revoked;	  /* newKeyRevoked: rollback revoked the new key */
	bool promoted;		  /* promoted: the gate in hand was promoted (reset per step) */
	enum kr_outcome outcome;  /* outcome: decided so far (verify failure, stage failure) */
	char reason[KR_ROT_REASON_MAX]; /* reason: why it rolls back / failed */
};

struct kr_rotation_status {
	int64_t observed_generation;
	enum kr_phase phase;
	struct kr_key_ref current_key;
	struct kr_key_ref pending_key;
	struct kr_key_ref previous_key;
	struct kr_rotation_progress rotation;
	time_t last_rotation_time; /* 0 = never */
	time_t next_rotation_time; /* 0 = none */
	char last_handled_request[KR_ROT_REQUEST_MAX];
	char last_handled_emergency[KR_ROT_REQUEST_MAX];
	char last_handled_abort[KR_ROT_REQUEST_MAX];   /* keyrotator.io/abort last acted on */
	char last_handled_promote[KR_ROT_REQUEST_MAX]; /* keyrotator.io/promote last acted on */
	bool has_rate;
	double unauthorized_rate; /* last measurement */
	int unknown_members;
	struct kr_unlisted unlisted[KR_ROT_UNLISTED_MAX]; /* unlistedConsumers, sorted */
	size_t n_unlisted;
};

/* An empty status: phase Idle, stage_index -1. */
void kr_rotation_status_init(struct kr_rotation_status *st);

/* ---- the observed world ---------------------------------------------------------- */

/* The consumers' Secret (spec.secretRef). */
struct kr_observed_secret {
	bool exists;
	bool has_key;		     /* data[spec.secretRef.key] present and non-empty */
	char key_id[KR_ROT_ID_SIZE]; /* id of that key */
};

/* The controller-owned `<name>-rotation` Secret (data keys pending, previous). */
struct kr_observed_rotation_secret {
	bool exists;
	bool has_pending;
	char pending_id[KR_ROT_ID_SIZE];
	bool has_previous;
	char previous_id[KR_ROT_ID_SIZE];
};

/* One workload of spec.stages, in spec order (index = stage.first + j). */
struct kr_observed_workload {
	bool exists;
	bool kind_supported; /* the API server serves this kind (apps/v1) */
	int64_t generation;
	int64_t observed_generation;
	char key_id[KR_ROT_ID_SIZE]; /* keyrotator.io/key-id on the pod template; "" none */
	/* Deployment and StatefulSet */
	int32_t replicas;		 /* spec.replicas (desired) */
	int32_t status_replicas;	 /* status.replicas: all pods, old ones included */
	int32_t updated;		 /* status.updatedReplicas */
	int32_t ready;			 /* status.readyReplicas */
	int32_t available;		 /* status.availableReplicas */
	bool paused;			 /* Deployment spec.paused */
	bool on_delete;			 /* StatefulSet/DaemonSet updateStrategy OnDelete */
	bool progress_deadline_exceeded; /* Deployment Progressing=False ProgressDeadlineExceeded */
	/*
	 * The pod template's terminationGracePeriodSeconds: a pod replaced by the rollout may
	 * run with the old key this long after status says the rollout is complete
	 * (terminating pods are not counted). The revoke waits for it.
	 */
	int64_t termination_grace_s;
	/* StatefulSet */
	char update_revision[KR_ROT_REVISION_MAX];
	char current_revision[KR_ROT_REVISION_MAX];
	int32_t partition;
	/* DaemonSet */
	int32_t desired_scheduled; /* desiredNumberScheduled */
	int32_t updated_scheduled; /* updatedNumberScheduled */
	int32_t number_available;  /* numberAvailable */
};

/* One key id looked up in the key store. */
struct kr_observed_store_key {
	char id[KR_ROT_ID_SIZE];
	bool active;   /* member of activeSet */
	bool has_meta; /* metadata hash present with status=active */
};

#define KR_OBSERVED_STORE_KEYS 6

/*
 * The key store. The reconciler looks up every non-empty, distinct id among
 * status.current_key/pending_key/previous_key, consumer.key_id, rsecret.pending_id and
 * rsecret.previous_id; an id not listed counts as not active.
 */
struct kr_observed_keystore {
	bool reachable;
	char error[KR_ROT_MSG_MAX]; /* why not, when !reachable */
	struct kr_observed_store_key keys[KR_OBSERVED_STORE_KEYS];
	size_t n_keys;
	bool has_marker;
	char marker[KR_ROT_ID_SIZE]; /* value of bootstrapKey (first 12 chars) */
	int unknown_members;
};

enum kr_measurement_kind {
	KR_MEASUREMENT_NONE = 0,     /* none taken in this reconcile */
	KR_MEASUREMENT_VALUE,	     /* a 401 rate */
	KR_MEASUREMENT_INCONCLUSIVE, /* failed, timed out, NaN, empty */
};

/* The result of a MEASURE action, fed back into the next decision. */
struct kr_observed_measurement {
	enum kr_measurement_kind kind;
	double rate;
	char error[KR_ROT_MSG_MAX]; /* why inconclusive */
};

enum kr_verify_result {
	KR_VERIFY_NONE = 0, /* not run in this reconcile */
	KR_VERIFY_PASSED,   /* old key 401, new key 2xx */
	KR_VERIFY_FAILED,   /* a definite wrong answer (old key accepted, new key refused) */
	KR_VERIFY_ERROR,    /* could not tell (unreachable, 5xx, timeout) */
};

struct kr_observed_verify {
	enum kr_verify_result result;
	char message[KR_ROT_MSG_MAX];
};

/*
 * Everything the decision looks at. Plain data; pointers are borrowed for the call.
 * `spec` is NULL when decoding failed, and `spec_error` then says why.
 */
struct kr_observed {
	time_t now;
	const struct kr_rotation_spec *spec;
	const char *spec_error;
	const char *ns;	  /* metadata.namespace, for messages */
	const char *name; /* metadata.name */
	int64_t generation;
	time_t created_at;	       /* metadata.creationTimestamp */
	const char *rotate_request;    /* keyrotator.io/rotate annotation, NULL when absent */
	const char *emergency_request; /* keyrotator.io/emergency, NULL when absent */
	const char *abort_request;     /* keyrotator.io/abort, NULL when absent */
	const char *promote_request;   /* keyrotator.io/promote, NULL when absent */
	struct kr_rotation_status status;
	struct kr_observed_secret consumer;
	struct kr_observed_rotation_secret rsecret;
	const struct kr_observed_workload *workloads; /* spec->n_workloads entries */
	struct kr_observed_keystore store;
	struct kr_observed_measurement measurement;
	struct kr_observed_verify verify;
	bool old_key_usage_known;
	time_t old_key_last_used_at; /* last_used_at of the old key's metadata */
	bool store_repaired;  /* status says KeyStoreInSync=True Repaired: kept while in sync */
	bool secret_conflict; /* another KeyRotation (older) names the same Secret */
	char conflict_owner[KR_ROT_REASON_MAX]; /* "ns/name" of that KeyRotation */
	/*
	 * Access refused: the KeyRotation names something its author may not use through the
	 * controller (a key store it is not allowed, a Secret that did not opt in, an endpoint
	 * outside the allowlist). `refusal_reason` is the condition reason and Event reason
	 * ("SecretNotOptedIn", "KeyStoreNotAllowed", ...), `refusal` the message naming what
	 * to add; "" when nothing is refused. Nothing is read or written while refused.
	 */
	char refusal_reason[64];
	char refusal[KR_ROT_MSG_MAX];
	/*
	 * Workloads of the namespace whose pod template reads spec.secretRef.name but that no
	 * stage lists, sorted by kind then name (at most KR_ROT_UNLISTED_MAX).
	 */
	struct kr_unlisted unlisted[KR_ROT_UNLISTED_MAX];
	size_t n_unlisted;
};

/* ---- workload rollout (rollout.c) ------------------------------------------------ */

enum kr_rollout_state {
	KR_ROLLOUT_COMPLETE = 0,
	KR_ROLLOUT_PROGRESSING,
	KR_ROLLOUT_BLOCKED, /* paused, OnDelete, held by a partition: needs a person */
	KR_ROLLOUT_FAILED,  /* ProgressDeadlineExceeded */
	KR_ROLLOUT_MISSING, /* the workload does not exist or its kind is not served */
};

/*
 * `kubectl rollout status` for one workload of `kind`, plus the key: a workload whose
 * pod template does not carry `key_id` is not complete (PROGRESSING). `key_id` NULL:
 * don't check the annotation. `msg` (may be NULL) gets e.g.
 * "Deployment/sirius-api: 1 of 3 updated replicas are available".
 */
enum kr_rollout_state kr_workload_rollout(enum kr_workload_kind kind, const char *name,
					  const struct kr_observed_workload *wl, const char *key_id,
					  char *msg, size_t msg_size);

/* "updated/desired" as status.stages[].workloads[].ready shows it, e.g. "2/3". */
void kr_workload_ready_text(enum kr_workload_kind kind, const struct kr_observed_workload *wl,
			    char *buf, size_t size);

/* ---- the decision (decide.c) ----------------------------------------------------- */

enum kr_action_type {
	KR_ACTION_NONE = 0,	   /* nothing to do; requeue_after_ms may wake for the schedule */
	KR_ACTION_WAIT,		   /* hold where we are; `reason` says for what */
	KR_ACTION_REFUSE,	   /* do nothing: the conditions and a Warning event say why */
	KR_ACTION_PLAN,		   /* spec.dryRun: write status.plan (kr_rotation_plan) */
	KR_ACTION_UPDATE_STATUS,   /* status only (adopt the Secret's key, nextRotationTime) */
	KR_ACTION_REPAIR_KEYSTORE, /* re-seed keys from the Secrets, fix the marker: `repair` */
	KR_ACTION_CLEANUP,	   /* clear (empty the data of) a stale `<name>-rotation` Secret (no
				      rotation in flight) */
	KR_ACTION_BEGIN,	   /* status only: the rotation starts (trigger) */
	KR_ACTION_ESCALATE, /* status only: an emergency request turns the rotation emergency */
	KR_ACTION_MEASURE,  /* measure the 401 rate; decide again with obs.measurement */
	KR_ACTION_RECORD_MEASUREMENT, /* status only: the measurement and its consequence */
	KR_ACTION_GENERATE,	   /* rotation Secret: pending = new key, previous = current key */
	KR_ACTION_ACTIVATE,	   /* key store: activate `key_id` (rotation Secret's pending) */
	KR_ACTION_DISTRIBUTE,	   /* consumers' Secret := the pending key */
	KR_ACTION_RESTART_STAGE,   /* annotate `stage`'s workloads (mask) with key-id `key_id` */
	KR_ACTION_ADVANCE_STAGE,   /* status only: next stage, or the step after the stages */
	KR_ACTION_START_REVOKE,	   /* status only: validation done, phase Revoking */
	KR_ACTION_REVOKE_OLD,	   /* key store: revoke `key_id` (rotation Secret's previous) */
	KR_ACTION_VERIFY,	   /* spec.verify; decide again with obs.verify */
	KR_ACTION_RECORD_VERIFY,   /* status only: the verify result */
	KR_ACTION_FINISH,	   /* clear the rotation Secret; status: current <- pending, Idle */
	KR_ACTION_ROLLBACK_BEGIN,  /* status only: phase RollingBack, reason */
	KR_ACTION_ROLLBACK_SECRET, /* consumers' Secret := the old key (rotation Secret previous) */
	KR_ACTION_ROLLBACK_RESTART_STAGE, /* annotate `stage`'s workloads (mask) with old id */
	KR_ACTION_REVOKE_NEW,  /* key store: revoke `key_id` (rotation Secret's pending) */
	KR_ACTION_FAIL_FINISH, /* clear the rotation Secret; status: phase Failed */
};

/* "GENERATE", "RESTART_STAGE", ... for logs and tests. */
const char *kr_action_name(enum kr_action_type type);
/* 1 when the action has no I/O of its own: only its status/conditions are written. */
bool kr_action_is_status_only(enum kr_action_type type);

/* Where the raw key for a key store repair comes from. */
enum kr_key_source {
	KR_SOURCE_CONSUMER_SECRET = 0, /* spec.secretRef */
	KR_SOURCE_ROTATION_PENDING,    /* `<name>-rotation` data.pending */
	KR_SOURCE_ROTATION_PREVIOUS,   /* `<name>-rotation` data.previous */
};

struct kr_repair_item {
	char id[KR_ROT_ID_SIZE];
	enum kr_key_source source;
};

struct kr_repair {
	struct kr_repair_item add[3]; /* keys to (re-)activate with metadata */
	size_t n_add;
	bool set_marker;
	char marker[KR_ROT_ID_SIZE]; /* the id bootstrapKey must hold */
	/*
	 * REPAIR_KEYSTORE: it puts back something that was in place (drift: counted in
	 * keyrotator_keystore_repairs_total, a Warning KeyStoreRepaired), not a first install's
	 * set-up of the key store (kr_repair_is_drift).
	 */
	bool drift;
};

enum kr_cond_type {
	KR_COND_READY = 0,
	KR_COND_ROTATING,
	KR_COND_DEGRADED,
	KR_COND_KEYSTORE_IN_SYNC,
	KR_COND_COUNT,
};

enum kr_cond_status {
	KR_COND_UNKNOWN = 0,
	KR_COND_TRUE,
	KR_COND_FALSE,
};

/* "Ready", "Rotating", "Degraded", "KeyStoreInSync"; "True", "False", "Unknown". */
const char *kr_cond_type_name(enum kr_cond_type type);
const char *kr_cond_status_name(enum kr_cond_status status);

/* A metav1.Condition without its time: the reconciler keeps lastTransitionTime. */
struct kr_condition {
	enum kr_cond_status status;
	char reason[64];
	char message[KR_ROT_MSG_MAX];
};

struct kr_event {
	bool set;
	bool warning;
	char reason[64];
	char message[KR_ROT_MSG_MAX];
};

struct kr_history_entry {
	char key_id[KR_ROT_ID_SIZE];
	enum kr_trigger trigger;
	time_t activated_at;
	time_t revoked_at; /* 0 = not revoked */
	enum kr_outcome outcome;
	char reason[KR_ROT_REASON_MAX];
};

/*
 * The one next action. Contract for the reconciler:
 *   1. carry out the I/O the type names (none for status-only types), using the target
 *      fields below;
 *   2. only if it succeeded: write `status` (whole; with the conditions) when
 *      status_changed, append `history` when has_history (trim to spec.historyLimit),
 *      emit `event` when set; then requeue after requeue_after_ms (0 = wait for a watch
 *      event; a status write wakes it anyway);
 *   3. if it failed: write nothing of `status`; set a condition from the error and retry
 *      with backoff. The decision over the re-observed world picks up from there.
 * Every status an action records is written after its I/O, so a crash between the two
 * re-decides the same step, which is idempotent or detects its own effect.
 */
struct kr_action {
	enum kr_action_type type;
	int64_t requeue_after_ms;
	char reason[KR_ROT_MSG_MAX]; /* what and why, for the log; never a key */

	int stage;		     /* RESTART_STAGE, ROLLBACK_RESTART_STAGE: spec.stages index */
	uint64_t workload_mask;	     /* bit j: stages[stage].workloads[j] needs the annotation */
	char key_id[KR_ROT_ID_SIZE]; /* the id to annotate / activate / revoke / distribute */
	enum kr_step measure_for;    /* MEASURE: BASELINE, ROLLOUT or VALIDATE */
	struct kr_repair repair;     /* REPAIR_KEYSTORE; REVOKE_OLD and FINISH also set the
				       marker (bootstrapKey) when repair.set_marker */

	bool status_changed;
	struct kr_rotation_status status; /* the whole next status */
	struct kr_condition conditions[KR_COND_COUNT];
	bool has_history;
	struct kr_history_entry history;
	struct kr_event event;
};

/*
 * THE decision: observed state in, exactly one next action out. Pure and total: every
 * input gives an action (a state it cannot make sense of gives REFUSE with the reason).
 * `obs` is borrowed; *out is overwritten.
 */
void kr_rotation_decide(const struct kr_observed *obs, struct kr_action *out);

/*
 * Is a key store repair over `obs` drift, putting back something that was in place? Yes when
 * bootstrapKey holds a marker (now the wrong one) or status names a key (current or pending:
 * it was adopted or activated, so the store held it). No for a first install's set-up:
 * status names no key yet and there is no marker, so nothing was ever in place. Pure.
 */
bool kr_repair_is_drift(const struct kr_observed *obs);

/*
 * When the schedule or maxKeyAge next triggers a rotation, given the status after the
 * last rotation (or the creation time). 0 when neither is set (or the schedule never
 * fires). Pure.
 */
time_t kr_rotation_next_time(const struct kr_rotation_spec *spec,
			     const struct kr_rotation_status *st, time_t created_at);
/*
 * When the current key's age starts, as maxKeyAge counts it: status.currentKey.createdAt,
 * or for a key whose creation is unknown (adopted) the last rotation, or else the
 * KeyRotation's creation (`created_at`). 0 when none is known. keyrotator_key_age_seconds
 * counts from the same time, so KeyRotatorKeyTooOld fires for an adopted key too. Pure.
 */
time_t kr_rotation_key_born(const struct kr_rotation_status *st, time_t created_at);

/* ---- the plan (plan.c) ----------------------------------------------------------- */

/*
 * The human plan of a rotation, as status.plan and `keyrotator plan` show it: one line
 * per step, e.g.
 *   "generate key (sk_ + 32 random bytes) into Secret ns/name-rotation"
 *   "activate key <new id> in api_keys:active at valkey.sirius.svc:6379"
 *   "write Secret sirius/sirius-api-key key SIRIUS_API_KEY"
 *   "roll out stage api: Deployment/sirius-api (timeout 10m0s)"
 *   "revoke key <old id>"
 * `new_id`/`old_id` may be NULL or "" (unknown yet: "<new id>", "<current id>").
 * `emergency` gives the emergency order. Never a raw key. *out is a cJSON array of
 * strings owned by the caller (cJSON_Delete). KR_ENOMEM only.
 */
enum kr_status kr_rotation_plan(const struct kr_rotation_spec *spec, const char *ns,
				const char *name, const char *new_id, const char *old_id,
				bool emergency, cJSON **out, struct kr_error *err);
/*
 * Add the unlisted consumers `u` (n of them; 0: nothing) to `plan`, a kr_rotation_plan of
 * the KeyRotation in namespace `ns` (borrowed, changed): one line, before the revoke, naming
 * them and what spec.unlistedConsumers does with them. KR_ENOMEM only.
 */
enum kr_status kr_rotation_plan_unlisted(const struct kr_rotation_spec *spec, const char *ns,
					 const struct kr_unlisted *u, size_t n, bool emergency,
					 cJSON *plan, struct kr_error *err);

#endif
