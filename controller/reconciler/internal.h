/* internal.h - what the reconciler's files share: the observed world of one reconcile. */
#ifndef KR_RECONCILER_INTERNAL_H
#define KR_RECONCILER_INTERNAL_H

#include <pthread.h>

#include <cjson/cJSON.h>

#include "analysis/analysis.h"
#include "base/clock.h"
#include "base/map.h"
#include "base/log.h"
#include "base/secret.h"
#include "json/json.h"
#include "keystore/keystore.h"
#include "reconciler/reconciler.h"
#include "rotation/rotation.h"
#include "rotation/status_json.h"

/* The last scrape of a KeyRotation's analysis.scrape endpoint, for the next rate. */
struct kr_scrape_memo {
	char *key; /* "ns/name" */
	struct kr_counter_snapshot snap;
	struct kr_scrape_memo *next;
};

struct kr_idle_memo;

/*
 * A pod-template patch the informer cache has not shown yet ("expectations", as
 * client-go's controllers keep them): until the cached generation reaches `generation`,
 * observe sees the workload as patched, so a reconcile woken by an earlier event of that
 * workload does not patch it again.
 */
struct kr_expect {
	char *ref; /* "Kind/ns/name" */
	char key_id[KR_ROT_ID_SIZE];
	int64_t generation;
	struct kr_expect *next;
};

struct kr_reconciler {
	struct kr_reconciler_opts o; /* with the defaults applied */
	char *instance;
	char *clock_skew_file;
	struct kr_controller *ctl;
	struct kr_keyrotator_metrics fam; /* registered in ctl's registry at attach */
	pthread_mutex_t lock; /* scrapes, idle, stopping */
	struct kr_scrape_memo *scrapes;
	struct kr_smap idle; /* "ns/name" -> struct kr_idle_memo * */
	struct kr_smap idle_stores; /* idle.c: kr_keystore_fingerprint -> struct kr_idle_store * */
	pthread_t sweeper;   /* idle.c: the batched key store check */
	pthread_cond_t wake; /* CLOCK_MONOTONIC */
	bool sweeping, have_wake, stopping;
	struct kr_expect *expects;
	struct kr_smap store_memo; /* stores.c: "Kind/ns/name" -> the status last written */
	/*
	 * observe.c: "ns/name" -> the newest resourceVersion of that KeyRotation this replica
	 * has seen from the API itself (a write's answer, a GET), until the cache shows it.
	 */
	struct kr_smap known_rv;
};

/*
 * Objects carried from one step of a reconcile to the next, so a step does not GET what
 * the previous one just read or wrote (the write's response is the new object). A slot
 * is "known" when it holds the answer, absence (NULL) included. Dropped on a 409.
 */
enum kr_carry_slot { KR_CARRY_KR, KR_CARRY_CONSUMER, KR_CARRY_RSECRET, KR_CARRY_N };

struct kr_carry {
	cJSON *obj[KR_CARRY_N];
	bool known[KR_CARRY_N];
	bool fresh; /* after a 409: the KeyRotation from the API, not from the cache */
	bool want_rsecret; /* read `<name>-rotation` even with no rotation in flight */
	cJSON *ns_labels;  /* the namespace's labels, once read (a ClusterKeyStore's selector) */
};

/* Drop (and wipe) everything carried. */
void kr_carry_clear(struct kr_carry *c);


/*
 * One reconcile's view. Everything owned here is released by kr_world_release; raw
 * keys (consumer_key, pending, previous) are wiped then.
 */
struct kr_world {
	struct kr_reconciler *r;
	struct kr_kube_client *client;
	const char *ns, *name;
	const struct kr_log_ctx *log;
	struct kr_carry *carry;	    /* in: from the step before; out: for the next one */
	cJSON *written[KR_CARRY_N]; /* objects as this step's writes returned them */
	bool wrote[KR_CARRY_N];

	cJSON *kr;	 /* the KeyRotation as read */
	cJSON *consumer; /* the consumers' Secret, NULL when absent */
	cJSON *rsecret;	 /* `<name>-rotation`, NULL when absent (or not read) */
	bool rsecret_unread; /* no rotation in flight: `<name>-rotation` was not read */
	char rsecret_name[320];
	struct kr_secret *consumer_key;
	struct kr_secret *pending;
	struct kr_secret *previous;

	bool have_spec;
	struct kr_rotation_spec spec;
	struct kr_error spec_err;
	struct kr_status_doc doc; /* .status as read */
	struct kr_observed_workload *wls;
	char workloads_hash[65];  /* of the cached projections read (idle.c compares it) */
	struct kr_keystore *ks;	  /* the store's settings (unconnected); NULL: not asked */
	struct kr_keystore *conn; /* a connection for them (pool.c), borrowed */
	struct kr_observed obs;
	char uid[64];
	/* spec.keyStoreRef as the KeyRotation projection names it ("KeyStore/ns/name") and the
	 * store's cached projection text (NULL: none); hashed with the workloads. */
	char store_ref[600];
	char *store_text;
};

/*
 * With no rotation in flight `<name>-rotation` is not read (FINISH and FAIL_FINISH empty it
 * before the status leaves the rotation): the decision is made without it. When that
 * decision would act on keys, the Secret matters (a stale one is cleared first, one this
 * KeyRotation does not own refuses): true, and the reconcile reads it and decides again.
 */
bool kr_world_needs_rsecret(const struct kr_world *w, enum kr_action_type type);

/*
 * observe.c: the value of key `key` of Secret `name` (same namespace), which the spec field
 * `field` names, into *out (wiped on free; at most `max_text` characters of base64).
 * `name` NULL: not set, KR_OK with *out NULL. A missing Secret or key is an error naming
 * the field.
 * The KeyRotation's author names this Secret, so it is read only when it opted in: its
 * annotation keyrotator.io/keyrotation lists this KeyRotation (kr_secret_opted_in), and it
 * is neither the consumers' Secret nor `<name>-rotation`. Otherwise nothing of its data is
 * read: KR_EAUTH naming the field, the Secret and the annotation to add, and the same
 * message as w->obs.refusal (reason "CredentialSecretNotOptedIn"; an earlier refusal stays).
 */
enum kr_status kr_world_secret_ref(struct kr_world *w, const char *field, const char *name,
				   const char *key, size_t max_text, struct kr_secret **out,
				   struct kr_error *err);
/*
 * observe.c: the same for a Secret that an administrator's KeyStore or ClusterKeyStore
 * names: no opt-in needed, and it may be in namespace `ns` (NULL: the KeyRotation's).
 */
enum kr_status kr_world_secret_ref_admin(struct kr_world *w, const char *field, const char *ns,
					 const char *name, const char *key, size_t max_text,
					 struct kr_secret **out, struct kr_error *err);
/*
 * secrets.c: the value of `key` in Secret ns/name, once GET returned `rc` and `sec` (taken:
 * wiped and freed here), at most `max_text` bytes of base64; errors name `field`, the Secret
 * and the key (never the value): "Secret ns/name: <the GET's error>", "has no key".
 */
enum kr_status kr_secret_ref_value(enum kr_status rc, cJSON *sec, const char *field,
				   const char *ns, const char *name, const char *key,
				   size_t max_text, struct kr_secret **out, struct kr_error *err);
/*
 * secrets.c: who may use a Secret (`secret` borrowed, NULL-safe; pure).
 * kr_secret_opted_in: metadata.annotations["keyrotator.io/keyrotation"] is a comma-separated
 *   list (blanks around a name ignored) that holds `kr_name` exactly.
 * kr_secret_created_for: both labels keyrotator put on the Secrets it created before the
 *   opt-in existed: app.kubernetes.io/managed-by=keyrotator, keyrotator.io/keyrotation=kr_name.
 * kr_secret_owned_by: an ownerReference of kind KeyRotation has uid `uid` (non-empty).
 */
bool kr_secret_opted_in(const cJSON *secret, const char *kr_name);
bool kr_secret_created_for(const cJSON *secret, const char *kr_name);
bool kr_secret_owned_by(const cJSON *secret, const char *uid);
/*
 * secrets.c: refuse the KeyRotation: obs->refusal_reason and obs->refusal (rotation.h),
 * unless a refusal is set already (the first one stays).
 */
void kr_refuse(struct kr_observed *obs, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * secrets.c: may the KeyRotation obs->ns/obs->name (metadata.uid `uid`) use its consumers'
 * Secret `consumer` (spec.secretRef.name `secret_name`) and `rsecret` (`rsecret_name`,
 * `<name>-rotation`)? NULL: absent (the controller creates it). Pass both NULL to check
 * the names alone, before reading. true; or false with a kr_refuse: reason
 * "InvalidSecretRef" (secretRef names `<name>-rotation`), "SecretNotOptedIn" (the consumers'
 * Secret neither opted in nor carries both labels of one created for this KeyRotation) or
 * "RotationSecretNotOwned" (no owner reference to `uid`). Pure; the objects are borrowed.
 */
bool kr_secrets_usable(struct kr_observed *obs, const char *uid, const char *secret_name,
		       const char *rsecret_name, const cJSON *consumer, const cJSON *rsecret);

/*
 * store.c: resolve spec.keyStoreRef from the KeyStore/ClusterKeyStore cache into the spec's
 * store_* fields, or refuse (w->obs.refusal): the store is missing, does not allow this
 * namespace, is invalid, or the spec uses an inline keyStore this controller does not
 * honour. The ClusterKeyStore's namespace selector may cost a GET of the Namespace.
 */
void kr_world_resolve_store(struct kr_world *w);
/* obs.unlisted: the workloads that read spec.secretRef's Secret and no stage lists
 * (unlisted.c; from the runtime's kr_controller_users index, no request). */
void kr_world_observe_unlisted(struct kr_world *w);
/*
 * store.c: open the key store the spec names (settings, password, a pooled connection) and
 * ask it about the keys this KeyRotation holds into w->obs.store (unreachable: the error).
 */
void kr_world_observe_store(struct kr_world *w);

/* observe.c: fill `w` (zeroed by the caller) from the API, the caches and the store. */
enum kr_status kr_world_observe(struct kr_world *w, struct kr_error *err);
/* Hand what the next step may reuse to w->carry, then free the rest. */
void kr_world_release(struct kr_world *w);

/* act.c: KR_OK while this replica may write (kr_controller_may_write); else KR_ESTATE. */
enum kr_status kr_world_fenced(struct kr_world *w, struct kr_error *err);
/* act.c: carry out `a` (not the status-only part). KR_OK or why not. */
enum kr_status kr_world_act(struct kr_world *w, const struct kr_action *a, struct kr_error *err);
/*
 * measure.c: take a measurement into w->obs.measurement (a failure is inconclusive, never
 * an error). false when there is none yet: a scrape's first counter reading only primes
 * the rate. kr_world_verify runs spec.verify into w->obs.verify.
 */
bool kr_world_measure(struct kr_world *w);
void kr_world_verify(struct kr_world *w);
/*
 * measure.c: check the URLs of spec.analysis and spec.verify against --allowed-endpoints
 * (host level; the address is checked again at connect time) before any request. false
 * with a refusal (reason "EndpointNotAllowed", the message naming the field) when one is
 * not allowed, or when w->obs already holds a refusal; true otherwise.
 */
bool kr_world_check_endpoints(struct kr_world *w);
/* measure.c: drop the scrape memo of ns/name. */
void kr_world_forget(struct kr_reconciler *r, const char *ns, const char *name);

/*
 * observe.c: the cache shows KeyRotation `key` at `rv`: true when that is at least as new as
 * anything this replica saw of it from the API (and then forgets what it saw). A reconcile
 * reads the KeyRotation from the cache only then; otherwise (the watch event of our own
 * write is still on its way) it GETs it.
 */
bool kr_known_rv_settled(struct kr_reconciler *r, const char *key, const char *rv);
/* Free the map (kr_reconciler_free). */
void kr_known_rv_free_all(struct kr_reconciler *r);

/* record.c: write status (when it changed), history, Event, metrics after `a` succeeded. */
enum kr_status kr_world_record(struct kr_world *w, const struct kr_action *a, bool acted,
			       struct kr_error *err);
/* record.c: an Event about the KeyRotation (best effort; a failure is only logged). */
void kr_world_event(struct kr_world *w, bool warning, const char *reason, const char *message);
/* record.c: the failure of an action as a condition (Degraded) and a Warning event. */
void kr_world_record_failure(struct kr_world *w, const struct kr_action *a,
			     const struct kr_error *why);

/*
 * idle.c: what a settled reconcile leaves behind (the resourceVersion it saw or wrote,
 * a hash of its workloads' cached state, when it wants to run again).
 * kr_idle_check: true when a reconcile can be skipped: nothing changed in the caches
 * since (the wake-up was our own status write, or an unrelated event) and nothing is
 * due. *requeue_ms is when to look again. false: do a full reconcile.
 * kr_idle_remember: after a full reconcile settled, with its requeue (may take w->ks).
 * A memo lives only between reconciles of its key: kr_idle_check takes it at the start.
 * kr_idle_start: the sweeper thread, which checks the key store of every idle memo every
 * keystore_check_ms, batched per server, and enqueues the KeyRotations that drifted.
 * kr_idle_stop joins it (before the controller goes); then kr_idle_free_all.
 */
bool kr_idle_check(struct kr_reconciler *r, const char *ns, const char *name, long *requeue_ms);
void kr_idle_remember(struct kr_world *w, long requeue_ms);
enum kr_status kr_idle_start(struct kr_reconciler *r);
void kr_idle_stop(struct kr_reconciler *r);
void kr_idle_free_all(struct kr_reconciler *r);
void kr_idle_forget(struct kr_reconciler *r, const char *key); /* its next reconcile is full */
/* Add one workload ("Kind/ns/name" and its cached projection's text, NULL if absent) to a
 * hash input. */
void kr_workloads_hash_add(struct kr_buf *all, const char *ref, const char *text);
/* The requeue of an idle KeyRotation: the resync (spread), bounded by the schedule. */
long kr_idle_requeue(const struct kr_reconciler *r, time_t next_rotation, time_t now,
		     long requeue_ms);

/*
 * stores.c: the queue key of the key stores' status pass (no KeyRotation has it: ':' is not
 * in a Kubernetes name), and the pass itself (one worker; requeues itself every
 * keystore_check_ms).
 */
#define KR_STORES_KEY ":keystores"
bool kr_stores_is_key(const char *ns, const char *name);
void kr_stores_pass(struct kr_reconciler *r, struct kr_kube_client *client,
		    struct kr_reconcile_result *res);

/* expect.c: remember a patch (from its response), overlay it on a stale cached workload. */
void kr_expect_set(struct kr_reconciler *r, const char *ref, const char *key_id,
		   int64_t generation);
void kr_expect_apply(struct kr_reconciler *r, const char *ref, struct kr_observed_workload *wl);
void kr_expect_free_all(struct kr_reconciler *r);

/* secrets.c: Secret data helpers. */
/* Base64 text of a Secret value holding a key or a password (a CA bundle is longer). */
#define KR_SECRET_TEXT_MAX 4096
/*
 * data[key] base64-decoded into a new kr_secret; NULL when absent, empty, not base64 or
 * longer than `max_text` characters of base64. kr_secret_data_get: KR_SECRET_TEXT_MAX.
 */
struct kr_secret *kr_secret_data_get_max(const cJSON *secret, const char *key, size_t max_text);
struct kr_secret *kr_secret_data_get(const cJSON *secret, const char *key);
/* Set data[key] = base64(value) in `secret` (a Secret object). KR_ENOMEM. */
enum kr_status kr_secret_data_set(cJSON *secret, const char *key, const struct kr_secret *value);

/* Zero every string in `obj` (it may hold Secret data), then cJSON_Delete. NULL-safe. */
void kr_json_wipe_delete(cJSON *obj);

#endif
