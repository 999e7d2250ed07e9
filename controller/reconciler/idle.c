/* idle.c - the idle watch: quiet KeyRotations' key stores checked in batches, without the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconciler/internal.h"
#include "runtime/memory.h"

/*
 * What a full reconcile leaves behind when it settles. Until the object or one of its
 * workloads changes in the caches, a wake-up before `due_ms` (the watch event of our own
 * status write, say) costs nothing; and for an idle KeyRotation the periodic key store
 * check (DESIGN.md §2: reconciliation on every reconcile, and Valkey can lose its data at
 * any time) is the sweeper's: one thread that, every keystore_check_ms, asks each Valkey
 * server about all the idle KeyRotations it serves in one pipelined round trip (three
 * commands each) and hands only those that drifted to the workqueue. No API request, no
 * wake-up of a worker per KeyRotation.
 */
struct kr_idle_memo {
	char *key; /* "ns/name" */
	char rv[64];
	char workloads[65];   /* SHA-256 of the workloads' cached projections */
	int64_t full_ms;      /* monotonic time of the full reconcile */
	int64_t due_ms;	      /* monotonic time of its requeue; 0 = none */
	bool idle;	      /* phase Idle and in sync: the key store check applies */
	int64_t check_ms;     /* monotonic time of its next key store check (idle only) */
	time_t next_rotation; /* status.nextRotationTime; 0 = none */
	char current_id[KR_ROT_ID_SIZE];
	struct kr_secret *current;	    /* the consumers' key (wiped on free); idle only */
	struct kr_idle_store *store;	    /* the key store's server, shared; idle only */
	struct kr_keystore_layout *layout; /* where its keys are in that store; idle only */
};

/*
 * A key store's connection settings (server, credentials, TLS, sentinels:
 * kr_keystore_server_fingerprint), shared by every idle memo that has them, never connected
 * (the pool connects); each memo keeps only its own layout. Most KeyRotations of a cluster
 * use one or two stores: 10,000 of them keep a handful of copies, not 10,000 of a kilobyte
 * each. r->idle_stores holds them; a memo counts itself in `refs` while it holds one, and
 * the sweeper drops those nobody holds.
 */
struct kr_idle_store {
	struct kr_keystore *ks;
	long refs; /* atomic */
};

static void store_drop(void *val)
{
	struct kr_idle_store *st = val;

	if (st)
		kr_keystore_free(st->ks);
	free(st);
}

/* The shared copy of `*ks`'s connection settings, counted for the caller; *ks is taken (and
 * freed when a copy exists already). NULL on ENOMEM (*ks is then freed too). */
static struct kr_idle_store *store_share(struct kr_reconciler *r, struct kr_keystore **ks)
{
	struct kr_idle_store *st = NULL;
	struct kr_smap_entry *e;
	char fp[65];

	kr_keystore_server_fingerprint(*ks, fp);
	pthread_mutex_lock(&r->lock);
	e = kr_smap_upsert(&r->idle_stores, fp);
	if (e && !e->val && (st = calloc(1, sizeof(*st)))) {
		st->ks = *ks;
		*ks = NULL;
		e->val = st;
	}
	if (e && (st = e->val))
		__atomic_add_fetch(&st->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&r->lock);
	kr_keystore_free(*ks);
	*ks = NULL;
	return st;
}

static void store_unref(struct kr_idle_store *st)
{
	if (st)
		__atomic_sub_fetch(&st->refs, 1, __ATOMIC_RELAXED);
}

static void store_collect_unused(void *arg, const char *key, void *val)
{
	struct kr_idle_store *st = val;
	struct kr_buf *unused = arg;

	if (!st || __atomic_load_n(&st->refs, __ATOMIC_RELAXED) <= 0)
		kr_buf_add(unused, key, strlen(key) + 1);
}

/* Drop the settings no memo holds (lock held: a count goes up only under it). */
static void store_prune_locked(struct kr_reconciler *r)
{
	struct kr_buf unused;

	kr_buf_init(&unused);
	kr_smap_each(&r->idle_stores, store_collect_unused, &unused);
	for (size_t at = 0; at < unused.len; at += strlen(unused.data + at) + 1)
		store_drop(kr_smap_take(&r->idle_stores, unused.data + at));
	kr_buf_release(&unused);
}

static void memo_free(struct kr_idle_memo *m)
{
	if (!m)
		return;
	store_unref(m->store);
	free(m->layout);
	kr_secret_free(m->current);
	free(m->key);
	free(m);
}

static void memo_drop(void *m)
{
	memo_free(m);
}

/* Unlink and return the memo of `key`, or NULL. */
static struct kr_idle_memo *memo_take(struct kr_reconciler *r, const char *key)
{
	struct kr_idle_memo *m;

	pthread_mutex_lock(&r->lock);
	m = kr_smap_take(&r->idle, key);
	pthread_mutex_unlock(&r->lock);
	return m;
}

/* Store `m` under its key (lock held). A newer memo of that key wins when `keep_newer`. */
static void memo_put_locked(struct kr_reconciler *r, struct kr_idle_memo *m, bool keep_newer)
{
	struct kr_smap_entry *e = kr_smap_upsert(&r->idle, m->key);

	if (!e || (keep_newer && e->val)) {
		memo_free(m); /* out of memory costs only a full reconcile */
		return;
	}
	memo_free(e->val);
	e->val = m;
}

static void memo_put(struct kr_reconciler *r, struct kr_idle_memo *m)
{
	pthread_mutex_lock(&r->lock);
	memo_put_locked(r, m, false);
	pthread_mutex_unlock(&r->lock);
}

void kr_idle_free_all(struct kr_reconciler *r)
{
	r->idle.drop = memo_drop;
	kr_smap_release(&r->idle);
	r->idle_stores.drop = store_drop;
	kr_smap_release(&r->idle_stores);
}

void kr_workloads_hash_add(struct kr_buf *all, const char *ref, const char *text)
{
	kr_buf_addf(all, "%s=%s;", ref, text ? text : "-");
}

/* SHA-256 over the cached projections of every workload and key store `refs` names (from the
 * KeyRotation cache), in the order observe.c hashes them. */
static void workloads_hash(struct kr_reconciler *r, const char *ns, const cJSON *refs, char out[65])
{
	static const struct {
		const char *kind;
		enum kr_source inf;
	} kinds[] = {{"Deployment", KR_SRC_DEPLOYMENTS},
		     {"StatefulSet", KR_SRC_STATEFULSETS},
		     {"DaemonSet", KR_SRC_DAEMONSETS},
		     {"KeyStore", KR_SRC_KEYSTORES},
		     {"ClusterKeyStore", KR_SRC_CLUSTERKEYSTORES}};
	struct kr_buf all;
	const cJSON *ref;

	kr_buf_init(&all);
	cJSON_ArrayForEach(ref, refs)
	{
		const char *text = cJSON_IsString(ref) ? ref->valuestring : "";
		const char *name = strrchr(text, '/');
		char *proj = NULL;

		for (size_t k = 0; name && k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (!strncmp(text, kinds[k].kind, strlen(kinds[k].kind)) &&
			    text[strlen(kinds[k].kind)] == '/')
				kr_informer_get_text(kr_controller_informer(r->ctl, kinds[k].inf),
						     kinds[k].inf == KR_SRC_CLUSTERKEYSTORES ? ""
											     : ns,
						     name + 1, &proj);
		kr_workloads_hash_add(&all, text, proj);
		free(proj);
	}
	kr_key_hash_hex_bytes(all.data ? all.data : "", all.len, out);
	kr_buf_release(&all);
}

/* Idle, in sync, holding the current key: the key store check can stand in for a reconcile. */
static bool checkable(const struct kr_world *w)
{
	return w->ks && w->consumer_key && w->obs.store.reachable &&
	       w->doc.status.phase == KR_PHASE_IDLE && !w->spec.dry_run &&
	       !w->obs.secret_conflict &&
	       strcmp(w->obs.consumer.key_id, w->doc.status.current_key.id) == 0;
}

void kr_idle_remember(struct kr_world *w, long requeue_ms)
{
	struct kr_reconciler *r = w->r;
	const cJSON *kr = w->wrote[KR_CARRY_KR] ? w->written[KR_CARRY_KR] : w->kr;
	const char *rv = kr_json_str(kr, (const char *[]){"metadata", "resourceVersion", NULL});
	struct kr_idle_memo *m;

	/* No memo of this key exists here: kr_idle_check took it when the reconcile began. */
	if (!r->ctl || !w->have_spec || !rv)
		return;
	m = calloc(1, sizeof(*m));
	if (m && (m->key = malloc(strlen(w->ns) + strlen(w->name) + 2))) {
		sprintf(m->key, "%s/%s", w->ns, w->name);
		snprintf(m->rv, sizeof(m->rv), "%s", rv);
		/* The workloads as the decision saw them, not as the cache has them now. */
		snprintf(m->workloads, sizeof(m->workloads), "%s", w->workloads_hash);
		m->full_ms = kr_mono_ms();
		m->due_ms = requeue_ms > 0 ? m->full_ms + requeue_ms : 0;
		m->next_rotation = w->doc.status.next_rotation_time;
		m->idle =
		    checkable(w) && (m->current = kr_secret_new(kr_secret_data(w->consumer_key),
								kr_secret_len(w->consumer_key)));
		if (m->idle) {
			snprintf(m->current_id, sizeof(m->current_id), "%s",
				 w->obs.consumer.key_id);
			w->conn = NULL;
			/* the memo keeps its layout, and the store's settings shared */
			m->idle = (m->layout = kr_keystore_layout_copy(w->ks)) &&
				  (m->store = store_share(r, &w->ks));
			m->check_ms = m->full_ms + w->r->o.keystore_check_ms;
		}
		memo_put(r, m);
	} else {
		memo_free(m);
	}
}

static long min_pos(long a, long b)
{
	return a <= 0 ? b : b <= 0 ? a : a < b ? a : b;
}

/* The memo still describes the world as the caches see it, and nothing is due. */
static bool memo_current(struct kr_reconciler *r, const struct kr_idle_memo *m, const char *ns,
			 const char *name, int64_t now_ms)
{
	cJSON *proj = NULL;
	const char *rv;
	char hash[65];
	bool same;

	if (now_ms - m->full_ms >= r->o.resync_period_ms)
		return false;
	if (kr_informer_get(kr_controller_informer(r->ctl, KR_SRC_KEYROTATIONS), ns, name, &proj) !=
	    KR_OK)
		return false;
	rv = kr_json_str(proj, (const char *[]){"rv", NULL});
	same = rv && strcmp(rv, m->rv) == 0;
	if (same) {
		char key[600];

		/* Our own write came back through the watch: the cache is current again. */
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		kr_known_rv_settled(r, key, rv);
		workloads_hash(r, ns, cJSON_GetObjectItemCaseSensitive(proj, "refs"), hash);
		same = strcmp(hash, m->workloads) == 0;
	}
	cJSON_Delete(proj);
	return same;
}

bool kr_idle_check(struct kr_reconciler *r, const char *ns, const char *name, long *requeue_ms)
{
	int64_t now_ms = kr_mono_ms();
	time_t now = kr_reconciler_now(r);
	struct kr_idle_memo *m;
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	m = memo_take(r, key);
	if (!m)
		return false;
	if (!memo_current(r, m, ns, name, now_ms) ||
	    (m->next_rotation && now >= m->next_rotation) ||
	    (m->due_ms && now_ms + 5 >= m->due_ms)) {
		memo_free(m); /* changed, or due (a requeue, the schedule, the resync): reconcile */
		return false;
	}
	/* Nothing changed but our own write, and nothing is due: the timer stays. */
	*requeue_ms = m->due_ms ? (long)(m->due_ms - now_ms) : 0;
	memo_put(r, m);
	return true;
}

void kr_idle_forget(struct kr_reconciler *r, const char *key)
{
	memo_free(memo_take(r, key));
}

long kr_idle_requeue(const struct kr_reconciler *r, time_t next_rotation, time_t now,
		     long requeue_ms)
{
	/* The resync, spread over its last tenth so a cold start's objects do not all come
	 * due in the same second (random() is thread-safe in glibc). */
	long spread = r->o.resync_period_ms / 10;
	long ms = min_pos(requeue_ms, r->o.resync_period_ms - (spread ? random() % spread : 0));

	if (next_rotation > now)
		ms = min_pos(ms, (long)(next_rotation - now) * 1000);
	return ms > 0 ? ms : 1000;
}

/* ---- the sweeper: the key store check of every idle KeyRotation, batched per server ---- */

struct sweep_item {
	struct kr_idle_memo *m;
	char server[65]; /* kr_keystore_server_fingerprint */
};

struct sweep {
	struct kr_reconciler *r;
	int64_t now, horizon, next;
	struct sweep_item *items;
	size_t n, cap;
};

/* Collect (under the lock) every idle memo whose check is due by the horizon. */
static void sweep_collect(void *arg, const char *key, void *val)
{
	struct sweep *s = arg;
	struct kr_idle_memo *m = val;

	(void)key;
	if (!m || !m->idle)
		return;
	if (m->check_ms > s->horizon) {
		s->next = m->check_ms < s->next ? m->check_ms : s->next;
		return;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct sweep_item *items = realloc(s->items, cap * sizeof(*items));

		if (!items)
			return; /* checked next time */
		s->items = items;
		s->cap = cap;
	}
	s->items[s->n++].m = m;
}

static int sweep_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sweep_item *)a)->server,
		      ((const struct sweep_item *)b)->server);
}

/*
 * Check items[0..n) (one server) in one round trip per chunk. A memo that passed goes
 * back (unless a reconcile left a newer one, or the KeyRotation is gone meanwhile); one
 * that did not is dropped and its KeyRotation enqueued: the full reconcile repairs.
 */
static void sweep_server(struct sweep *s, struct sweep_item *items, size_t n)
{
	struct kr_reconciler *r = s->r;
	struct kr_keystore_probe *p = calloc(n, sizeof(*p));
	struct kr_error err = {0};

	for (size_t i = 0; p && i < n; i++)
		p[i] = (struct kr_keystore_probe){.layout = items[i].m->layout,
						  .key = items[i].m->current,
						  .key_id = items[i].m->current_id};
	if (p)
		kr_keystore_probe(kr_keystore_pool_get(items[0].m->store->ks), p, n, &err);
	for (size_t i = 0; i < n; i++) {
		struct kr_idle_memo *m = items[i].m;
		struct kr_log_ctx log = {0};
		char ns[300];

		log.name = kr_controller_split_key(m->key, ns, sizeof(ns));
		log.namespace_ = ns;
		if (p && p[i].ok) {
			if (r->ctl &&
			    kr_informer_get(kr_controller_informer(r->ctl, KR_SRC_KEYROTATIONS), ns,
					    log.name, NULL) != KR_OK) {
				memo_free(m); /* deleted while being checked */
				continue;
			}
			m->check_ms = kr_mono_ms() + r->o.keystore_check_ms;
			pthread_mutex_lock(&r->lock);
			memo_put_locked(r, m, true);
			pthread_mutex_unlock(&r->lock);
			continue;
		}
		kr_log_info(&log, "key store check: %s; reconciling",
			    p ? p[i].why : "out of memory");
		if (r->ctl)
			kr_workqueue_add(kr_controller_queue(r->ctl), m->key);
		memo_free(m);
	}
	free(p);
}

#define KR_SWEEP_TRIM_AFTER 64

/* One pass: take the due memos out of the map, check them per server, put them back. */
static void sweep_once(struct sweep *s)
{
	struct kr_reconciler *r = s->r;

	store_prune_locked(r);
	s->n = 0;
	s->now = kr_mono_ms();
	/* Checks due within half an interval go now: after a pass or two, one batch. */
	s->horizon = s->now + r->o.keystore_check_ms / 2;
	s->next = s->now + r->o.keystore_check_ms;
	kr_smap_each(&r->idle, sweep_collect, s);
	for (size_t i = 0; i < s->n; i++)
		kr_smap_take(&r->idle, s->items[i].m->key);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < s->n; i++)
		kr_keystore_server_fingerprint(s->items[i].m->store->ks, s->items[i].server);
	if (s->n)
		qsort(s->items, s->n, sizeof(*s->items), sweep_cmp);
	for (size_t i = 0, j; i < s->n; i = j) {
		for (j = i + 1; j < s->n && !strcmp(s->items[j].server, s->items[i].server); j++)
			;
		sweep_server(s, s->items + i, j - i);
	}
	/*
	 * A pass over many memos churns the heap (probe buffers, the list of items): give
	 * that back, as the workers do after a burst, or RSS creeps up a pass at a time.
	 */
	if (s->n >= KR_SWEEP_TRIM_AFTER) {
		free(s->items);
		s->items = NULL;
		s->cap = 0;
		kr_memory_trim();
	}
	pthread_mutex_lock(&r->lock);
}

static void *sweeper_main(void *arg)
{
	struct sweep s = {.r = arg};
	struct kr_reconciler *r = s.r;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		struct timespec ts;
		int64_t wait_ms;

		sweep_once(&s);
		if (r->stopping)
			break;
		wait_ms = s.next - kr_mono_ms();
		ts = kr_mono_deadline(wait_ms < 10 ? 10 : wait_ms);
		pthread_cond_timedwait(&r->wake, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	free(s.items);
	return NULL;
}

enum kr_status kr_idle_start(struct kr_reconciler *r)
{
	int rc;

	kr_mono_cond_init(&r->wake);
	r->have_wake = true;
	rc = pthread_create(&r->sweeper, NULL, sweeper_main, r);
	r->sweeping = rc == 0;
	return rc == 0 ? KR_OK : KR_ENOMEM;
}

void kr_idle_stop(struct kr_reconciler *r)
{
	if (r->sweeping) {
		pthread_mutex_lock(&r->lock);
		r->stopping = true;
		pthread_cond_signal(&r->wake);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->sweeper, NULL);
		r->sweeping = false;
	}
	if (r->have_wake)
		pthread_cond_destroy(&r->wake);
	r->have_wake = false;
}
