/* informer.h - list+watch caches of projected objects, and a reverse index of references. */
#ifndef KR_INFORMER_H
#define KR_INFORMER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "kube/kube.h"
#include "runtime/pack.h"

/*
 * An informer is a reflector (kube.h) on a thread of its own plus a thread-safe cache
 * keyed by "namespace/name". The cache does NOT keep whole objects: for each object it
 * stores only what the caller's `project` function extracts (a small cJSON tree, kept
 * as compact JSON text), so memory grows with what the controller reads, not with the
 * size of the objects.
 *
 * Secrets and the informers: the controller runs no Secret informer at all (RBAC gives
 * it no list/watch on Secrets); the reconciler GETs the two Secrets it needs. The label
 * below marks the Secrets keyrotator creates, so people and tools can find them.
 *
 * Ownership: `project` returns a tree the informer takes ownership of (NULL: store the
 * key only; the tree is printed and freed). Projections handed to `on_change` are borrowed and
 * valid only during the call. kr_informer_get returns a copy the caller frees with cJSON_Delete.
 */

/* Label on the Secrets keyrotator creates or manages. */
#define KR_INFORMER_MANAGED_LABEL    "app.kubernetes.io/managed-by"
#define KR_INFORMER_MANAGED_SELECTOR "app.kubernetes.io/managed-by=keyrotator"

/* Extract what the cache keeps from `object` (borrowed). Return an owned tree or NULL. */
typedef cJSON *(*kr_informer_project_fn)(void *arg, const cJSON *object);

/*
 * A change in the cache, called on the informer's thread after the cache is updated:
 * ADDED (old NULL), MODIFIED, DELETED (new NULL). `old_proj`/`new_proj` are borrowed
 * projections (NULL also when project returned NULL). Not called when an ADDED or MODIFIED
 * object's projection is the one already cached: a change to what `project` leaves out (the
 * controller's own status writes to a KeyStore, say) wakes nobody. Must not block for long.
 */
typedef void (*kr_informer_change_fn)(void *arg, enum kr_kube_event_type type, const char *ns,
				      const char *name, const cJSON *old_proj,
				      const cJSON *new_proj);

struct kr_informer_opts {
	struct kr_kube_watch_opts watch; /* copied; its strings borrowed (must outlive) */
	kr_informer_project_fn project;	 /* NULL: keep keys only */
	void *project_arg;
	/* The projections' usual words, to pack them with (pack.h); NULL: none. Borrowed. */
	const struct kr_pack_dict *pack_dict;
	kr_informer_change_fn on_change; /* may be NULL */
	/* A list/watch failure the reflector retries after backoff; may be NULL. */
	void (*on_error)(void *arg, const struct kr_error *err);
	/* After each full list is in the cache (the first one: has_synced); may be NULL. */
	void (*on_synced)(void *arg);
	void *change_arg; /* for on_change, on_error and on_synced */
};

struct kr_informer;

/* A stopped informer. `cfg` is borrowed and must outlive it. Free with kr_informer_free. */
struct kr_informer *kr_informer_new(struct kr_kube_config *cfg, const struct kr_informer_opts *o,
				    struct kr_error *err);
/* Stop (if running) and free. kr_informer_free(NULL) does nothing. */
void kr_informer_free(struct kr_informer *inf);
/* Start the list+watch thread. KR_ESTATE when already started. */
enum kr_status kr_informer_start(struct kr_informer *inf, struct kr_error *err);
/* Stop the reflector and join its thread (prompt: ~100 ms). Idempotent. */
void kr_informer_stop(struct kr_informer *inf);

/* 1 once the first list has been delivered into the cache. Thread-safe. */
int kr_informer_has_synced(struct kr_informer *inf);
/* 1 while the thread runs (or before start); 0 if it ended without being stopped. */
int kr_informer_alive(struct kr_informer *inf);
/* The resource's plural, for messages ("deployments"). */
const char *kr_informer_name(const struct kr_informer *inf);

/*
 * A copy of the projection stored for ns/name (`ns` NULL or "" for cluster-scoped):
 * KR_OK with *out (caller frees with cJSON_Delete; NULL when the projection is empty),
 * or KR_ENOTFOUND. `out` NULL: only whether it is cached. Thread-safe.
 */
enum kr_status kr_informer_get(struct kr_informer *inf, const char *ns, const char *name,
			       cJSON **out);
/* The same as the cache holds it, compact JSON text (caller frees; NULL when empty). */
enum kr_status kr_informer_get_text(struct kr_informer *inf, const char *ns, const char *name,
				    char **out);
/*
 * A copy of every cached key ("ns/name", "/name" cluster-scoped) and projection text, as a
 * JSON object {key: text or null} the caller frees (cJSON_Delete); NULL when out of memory.
 * For small caches (key stores): it copies the whole cache under the lock.
 */
cJSON *kr_informer_snapshot(struct kr_informer *inf);
/* Number of cached objects. */
size_t kr_informer_len(struct kr_informer *inf);
/* The reflector's counters (lists, watches, 410s, errors, last RV). */
void kr_informer_stats(struct kr_informer *inf, struct kr_kube_reflector_stats *out);

/*
 * A reverse index: reference ("Deployment/ns/name") -> the owners ("ns/name" of a
 * KeyRotation) that name it. Strings are copied. Thread-safe. The same (ref, owner)
 * pair added twice is counted, so removing it once per add keeps a pair that two
 * stages name.
 */
struct kr_refindex;

struct kr_refindex *kr_refindex_new(void);
void kr_refindex_free(struct kr_refindex *idx);
enum kr_status kr_refindex_add(struct kr_refindex *idx, const char *ref, const char *owner);
void kr_refindex_remove(struct kr_refindex *idx, const char *ref, const char *owner);
/* Call fn(arg, owner) for each owner of `ref`, under the index lock; returns how many. */
size_t kr_refindex_lookup(struct kr_refindex *idx, const char *ref,
			  void (*fn)(void *arg, const char *owner), void *arg);

#endif
