/* idle.c - the idle watch: a quiet KeyRotation's key store checked without asking the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconciler/internal.h"

/*
 * What a full reconcile leaves behind when it settles. Until the object or one of its
 * workloads changes in the caches, a wake-up before `due_ms` (the watch event of our own
 * status write, say) costs nothing; and for an idle KeyRotation the periodic key store
 * check (DESIGN.md §2: reconciliation on every reconcile, and Valkey can lose its data at
 * any time) costs two Valkey commands and no API request.
 */
struct kr_idle_memo {
	char *key; /* "ns/name" */
	char rv[64];
	char workloads[65];   /* SHA-256 of the workloads' cached projections */
	int64_t full_ms;      /* monotonic time of the full reconcile */
	int64_t due_ms;	      /* monotonic time of its requeue; 0 = none */
	bool idle;	      /* phase Idle and in sync: the key store check applies */
	time_t next_rotation; /* status.nextRotationTime; 0 = none */
	char current_id[KR_ROT_ID_SIZE];
	struct kr_secret *current; /* the consumers' key (wiped on free); idle only */
	struct kr_keystore *ks;	   /* settings; connected only during a check; idle only */
	struct kr_idle_memo *next;
};

int64_t kr_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void memo_free(struct kr_idle_memo *m)
{
	if (!m)
		return;
	kr_keystore_free(m->ks);
	kr_secret_free(m->current);
	free(m->key);
	free(m);
}

/* Unlink and return the memo of `key`, or NULL. */
static struct kr_idle_memo *memo_take(struct kr_reconciler *r, const char *key)
{
	struct kr_idle_memo **pp, *m;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->idle; (m = *pp); pp = &m->next)
		if (strcmp(m->key, key) == 0) {
			*pp = m->next;
			m->next = NULL;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return m;
}

static void memo_put(struct kr_reconciler *r, struct kr_idle_memo *m)
{
	memo_free(memo_take(r, m->key));
	pthread_mutex_lock(&r->lock);
	m->next = r->idle;
	r->idle = m;
	pthread_mutex_unlock(&r->lock);
}

void kr_idle_free_all(struct kr_reconciler *r)
{
	while (r->idle) {
		struct kr_idle_memo *m = r->idle;

		r->idle = m->next;
		memo_free(m);
	}
}

void kr_workloads_hash_add(struct kr_buf *all, const char *ref, const cJSON *proj)
{
	char *printed = proj ? cJSON_PrintUnformatted(proj) : NULL;

	kr_buf_addf(all, "%s=%s;", ref, printed ? printed : "-");
	cJSON_free(printed);
}

/* SHA-256 over the cached projections of every workload `refs` names (from the KR cache). */
static void workloads_hash(struct kr_reconciler *r, const char *ns, const cJSON *refs, char out[65])
{
	static const struct {
		const char *kind;
		enum kr_controller_kind inf;
	} kinds[] = {{"Deployment", KR_CTL_DEPLOYMENTS},
		     {"StatefulSet", KR_CTL_STATEFULSETS},
		     {"DaemonSet", KR_CTL_DAEMONSETS}};
	struct kr_buf all;
	const cJSON *ref;

	kr_buf_init(&all);
	cJSON_ArrayForEach(ref, refs)
	{
		const char *text = cJSON_IsString(ref) ? ref->valuestring : "";
		const char *name = strrchr(text, '/');
		cJSON *proj = NULL;

		for (size_t k = 0; name && k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (!strncmp(text, kinds[k].kind, strlen(kinds[k].kind)) &&
			    text[strlen(kinds[k].kind)] == '/')
				kr_informer_get(kr_controller_informer(r->ctl, kinds[k].inf), ns,
						name + 1, &proj);
		kr_workloads_hash_add(&all, text, proj);
		cJSON_Delete(proj);
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
			m->ks = w->ks; /* the memo keeps the store's settings */
			w->ks = NULL;
			w->conn = NULL;
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
	if (kr_informer_get(kr_controller_informer(r->ctl, KR_CTL_KEYROTATIONS), ns, name, &proj) !=
	    KR_OK)
		return false;
	rv = kr_json_str(proj, (const char *[]){"rv", NULL});
	same = rv && strcmp(rv, m->rv) == 0;
	if (same) {
		workloads_hash(r, ns, cJSON_GetObjectItemCaseSensitive(proj, "refs"), hash);
		same = strcmp(hash, m->workloads) == 0;
	}
	cJSON_Delete(proj);
	return same;
}

/* The store still holds the current key and the marker points at it: one round trip. */
static bool store_ok(struct kr_idle_memo *m, const struct kr_log_ctx *log)
{
	const struct kr_secret *keys[] = {m->current};
	struct kr_key_state st = {0};
	struct kr_store_state store = {0};
	struct kr_error e = {0};
	bool ok;

	ok = kr_keystore_inspect(kr_pool_get(m->ks), keys, 1, &st, &store, &e) == KR_OK &&
	     st.active && st.meta_active && strncmp(store.marker, m->current_id, 12) == 0 &&
	     strlen(store.marker) == 12;
	if (!ok)
		kr_log_info(log, "key store check: %s; reconciling",
			    e.code != KR_OK   ? e.msg
			    : !st.active      ? "the current key is not active"
			    : !st.meta_active ? "the current key's metadata is not active"
					      : "the bootstrap marker moved");
	return ok;
}

bool kr_idle_check(struct kr_reconciler *r, const char *ns, const char *name,
		   const struct kr_log_ctx *log, long *requeue_ms)
{
	int64_t now_ms = kr_mono_ms();
	time_t now = kr_reconciler_now(r);
	struct kr_idle_memo *m;
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	m = memo_take(r, key);
	if (!m)
		return false;
	if (!memo_current(r, m, ns, name, now_ms) || (m->next_rotation && now >= m->next_rotation))
		goto full;
	if (!m->due_ms || now_ms + 5 < m->due_ms) {
		/* Nothing changed but our own write, and nothing is due: the timer stays. */
		*requeue_ms = m->due_ms ? (long)(m->due_ms - now_ms) : 0;
		memo_put(r, m);
		return true;
	}
	if (!m->idle || !store_ok(m, log))
		goto full;
	*requeue_ms = kr_idle_requeue(r, m->next_rotation, now, 0);
	m->due_ms = now_ms + *requeue_ms;
	memo_put(r, m);
	return true;
full:
	memo_free(m);
	return false;
}

long kr_idle_requeue(const struct kr_reconciler *r, time_t next_rotation, time_t now,
		     long requeue_ms)
{
	long ms = min_pos(requeue_ms, r->o.keystore_check_ms);

	if (next_rotation > now)
		ms = min_pos(ms, (long)(next_rotation - now) * 1000);
	return ms > 0 ? ms : 1000;
}
