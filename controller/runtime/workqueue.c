/* workqueue.c - string-keyed work queue: dirty/processing sets, FIFO, delay heap, rate limits. */
#include "runtime/workqueue.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

#define NS_PER_MS   INT64_C(1000000)
#define NS_PER_SEC  INT64_C(1000000000)
#define NOT_WAITING SIZE_MAX
/* Delays are clamped to ~146 years so deadlines never overflow int64 nanoseconds. */
#define MAX_DELAY_NS (INT64_MAX / 2)

/*
 * One record per distinct key the queue knows about. It exists while the key is
 * dirty (queued or re-added while in flight), processing, waiting in the delay heap,
 * or has a backoff to remember; otherwise it is freed.
 */
struct wq_item {
	uint64_t hash;
	int64_t ready_at;  /* delay heap: when the key is due (ns) */
	int64_t queued_at; /* ready FIFO: when the key entered it (ns) */
	uint64_t seq;	   /* delay heap: FIFO order among equal deadlines */
	size_t heap_idx;   /* index in the delay heap, or NOT_WAITING */
	unsigned failures; /* rate-limited adds since the last forget */
	bool dirty;	   /* wants a worker: queued, or re-added while processing */
	bool processing;   /* handed out by get, done not called yet */
	char key[];
};

/* Open addressing, linear probing, backward-shift deletion; cap is a power of two. */
struct wq_table {
	struct wq_item **slots;
	size_t cap, count;
};

/* Ring buffer of ready items. Each item is in it at most once (it is dirty). */
struct wq_fifo {
	struct wq_item **buf;
	size_t cap, head, len;
};

/* Binary min-heap on (ready_at, seq). */
struct wq_heap {
	struct wq_item **a;
	size_t len, cap;
};

struct kr_workqueue {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* getters wait here; CLOCK_MONOTONIC for timed waits */
	struct wq_table items;
	struct wq_fifo ready;
	struct wq_heap waiting;
	size_t in_flight;
	bool shutting_down;

	int64_t base_ns, max_ns;
	int64_t token_ns; /* time per bucket token; 0: no bucket */
	int64_t burst;
	int64_t bucket_base; /* GCRA marker: tokens(now) = min(burst, (now - base) / token) */
	bool bucket_used;

	uint64_t seq, adds, retries;
	kr_workqueue_clock_fn *clock;
	void *clock_arg;
};

static int64_t monotonic_ns(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int64_t wq_now(struct kr_workqueue *q)
{
	return q->clock(q->clock_arg);
}

static uint64_t hash_key(const char *key)
{
	uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= UINT64_C(1099511628211);
	}
	return h ^ (h >> 29); /* spread high bits into the low ones the mask keeps */
}

/* ---- hash table ---------------------------------------------------------------- */

static size_t table_slot(const struct wq_table *t, uint64_t hash, const char *key)
{
	size_t mask = t->cap - 1;
	size_t i = hash & mask;

	while (t->slots[i] && (t->slots[i]->hash != hash || strcmp(t->slots[i]->key, key) != 0))
		i = (i + 1) & mask;
	return i;
}

static struct wq_item *table_find(const struct wq_table *t, const char *key)
{
	if (t->count == 0)
		return NULL;
	return t->slots[table_slot(t, hash_key(key), key)];
}

/* Make room for one more item, keeping the load factor at most 1/2. */
static enum kr_status table_reserve(struct wq_table *t)
{
	struct wq_item **old = t->slots;
	size_t old_cap = t->cap;
	size_t cap = old_cap ? old_cap : 16;

	while ((t->count + 1) * 2 > cap)
		cap *= 2;
	if (cap == old_cap)
		return KR_OK;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return KR_ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i])
			t->slots[table_slot(t, old[i]->hash, old[i]->key)] = old[i];
	}
	free(old);
	return KR_OK;
}

/* Remove `it` (present) by shifting later members of its probe run back. */
static void table_remove(struct wq_table *t, struct wq_item *it)
{
	size_t mask = t->cap - 1;
	size_t i = table_slot(t, it->hash, it->key);
	size_t j = i;

	for (;;) {
		j = (j + 1) & mask;
		if (!t->slots[j])
			break;
		size_t home = t->slots[j]->hash & mask;
		/* Leave slots[j] if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	t->slots[i] = NULL;
	t->count--;
}

/* ---- ready FIFO ---------------------------------------------------------------- */

static enum kr_status fifo_reserve(struct wq_fifo *f, size_t want)
{
	struct wq_item **buf;
	size_t cap = f->cap ? f->cap : 16;

	while (cap < want)
		cap *= 2;
	if (cap == f->cap)
		return KR_OK;
	buf = malloc(cap * sizeof(*buf));
	if (!buf)
		return KR_ENOMEM;
	for (size_t i = 0; i < f->len; i++)
		buf[i] = f->buf[(f->head + i) % f->cap];
	free(f->buf);
	f->buf = buf;
	f->cap = cap;
	f->head = 0;
	return KR_OK;
}

/* Room was reserved when the item was created. */
static void fifo_push(struct wq_fifo *f, struct wq_item *it)
{
	f->buf[(f->head + f->len) % f->cap] = it;
	f->len++;
}

static struct wq_item *fifo_pop(struct wq_fifo *f)
{
	struct wq_item *it = f->buf[f->head];

	f->head = (f->head + 1) % f->cap;
	f->len--;
	return it;
}

/* ---- delay heap ---------------------------------------------------------------- */

static bool heap_less(const struct wq_item *a, const struct wq_item *b)
{
	return a->ready_at < b->ready_at || (a->ready_at == b->ready_at && a->seq < b->seq);
}

static void heap_set(struct wq_heap *h, size_t i, struct wq_item *it)
{
	h->a[i] = it;
	it->heap_idx = i;
}

static void heap_up(struct wq_heap *h, size_t i)
{
	struct wq_item *it = h->a[i];

	while (i > 0 && heap_less(it, h->a[(i - 1) / 2])) {
		heap_set(h, i, h->a[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(h, i, it);
}

static void heap_down(struct wq_heap *h, size_t i)
{
	struct wq_item *it = h->a[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len && heap_less(h->a[c + 1], h->a[c]))
			c++;
		if (!heap_less(h->a[c], it))
			break;
		heap_set(h, i, h->a[c]);
		i = c;
	}
	heap_set(h, i, it);
}

static enum kr_status heap_reserve(struct wq_heap *h, size_t want)
{
	struct wq_item **a;
	size_t cap = h->cap ? h->cap : 16;

	while (cap < want)
		cap *= 2;
	if (cap == h->cap)
		return KR_OK;
	a = realloc(h->a, cap * sizeof(*a));
	if (!a)
		return KR_ENOMEM;
	h->a = a;
	h->cap = cap;
	return KR_OK;
}

/* Room was reserved when the item was created. */
static void heap_push(struct wq_heap *h, struct wq_item *it)
{
	h->len++;
	heap_set(h, h->len - 1, it);
	heap_up(h, h->len - 1);
}

static struct wq_item *heap_pop(struct wq_heap *h)
{
	struct wq_item *top = h->a[0];

	h->len--;
	if (h->len > 0) {
		heap_set(h, 0, h->a[h->len]);
		heap_down(h, 0);
	}
	top->heap_idx = NOT_WAITING;
	return top;
}

/* ---- items ------------------------------------------------------------------------ */

/*
 * The item for `key`, created if new. Creation reserves room in the table, the FIFO
 * and the heap for it, so later pushes cannot fail.
 */
static enum kr_status item_get(struct kr_workqueue *q, const char *key, struct wq_item **out)
{
	struct wq_item *it = table_find(&q->items, key);
	size_t len = strlen(key);
	enum kr_status rc;

	*out = it;
	if (it)
		return KR_OK;
	rc = table_reserve(&q->items);
	if (rc == KR_OK)
		rc = fifo_reserve(&q->ready, q->items.count + 1);
	if (rc == KR_OK)
		rc = heap_reserve(&q->waiting, q->items.count + 1);
	if (rc != KR_OK)
		return rc;
	it = calloc(1, sizeof(*it) + len + 1);
	if (!it)
		return KR_ENOMEM;
	memcpy(it->key, key, len + 1);
	it->hash = hash_key(key);
	it->heap_idx = NOT_WAITING;
	q->items.slots[table_slot(&q->items, it->hash, key)] = it;
	q->items.count++;
	*out = it;
	return KR_OK;
}

/* Free `it` once nothing refers to it any more. */
static void item_release_if_idle(struct kr_workqueue *q, struct wq_item *it)
{
	if (it->dirty || it->processing || it->heap_idx != NOT_WAITING || it->failures > 0)
		return;
	table_remove(&q->items, it);
	free(it);
}

/* client-go's Add on a known item: collapse duplicates, defer keys in flight. */
static void item_enqueue(struct kr_workqueue *q, struct wq_item *it, int64_t now)
{
	if (it->dirty)
		return;
	it->dirty = true;
	q->adds++;
	if (it->processing)
		return; /* done() queues it */
	it->queued_at = now;
	fifo_push(&q->ready, it);
	pthread_cond_signal(&q->cond);
}

/* Queue `it` after `delay_ns`; an earlier pending deadline wins. */
static void item_schedule(struct kr_workqueue *q, struct wq_item *it, int64_t now, int64_t delay_ns)
{
	int64_t ready_at;

	if (delay_ns <= 0) {
		item_enqueue(q, it, now);
		return;
	}
	ready_at = now + (delay_ns < MAX_DELAY_NS ? delay_ns : MAX_DELAY_NS);
	if (it->heap_idx != NOT_WAITING) {
		if (ready_at >= it->ready_at)
			return;
		it->ready_at = ready_at;
		heap_up(&q->waiting, it->heap_idx);
	} else {
		it->ready_at = ready_at;
		it->seq = q->seq++;
		heap_push(&q->waiting, it);
	}
	if (it->heap_idx == 0)
		pthread_cond_broadcast(&q->cond); /* getters recompute their timeout */
}

/* Move every delayed item that is due to the ready FIFO, earliest first. */
static void promote_due(struct kr_workqueue *q, int64_t now)
{
	while (q->waiting.len > 0 && q->waiting.a[0]->ready_at <= now)
		item_enqueue(q, heap_pop(&q->waiting), now);
}

/* ---- rate limits ---------------------------------------------------------------- */

/* base * 2^failures, capped at max; bumps the failure count. */
static int64_t item_backoff(struct kr_workqueue *q, struct wq_item *it)
{
	unsigned n = it->failures;

	if (it->failures < UINT_MAX)
		it->failures++;
	if (n >= 62 || q->base_ns > (q->max_ns >> n))
		return q->max_ns;
	return q->base_ns << n;
}

/*
 * Take one token; returns how long until it is really available (0 if at once).
 * Tokens may go negative, like golang.org/x/time/rate's Reserve().Delay().
 */
static int64_t bucket_reserve(struct kr_workqueue *q, int64_t now)
{
	int64_t full = now - q->burst * q->token_ns;

	if (q->token_ns == 0)
		return 0;
	if (!q->bucket_used || q->bucket_base < full)
		q->bucket_base = full;
	q->bucket_used = true;
	q->bucket_base += q->token_ns;
	return q->bucket_base > now ? q->bucket_base - now : 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static void apply_opts(struct kr_workqueue *q, const struct kr_workqueue_opts *o)
{
	int64_t base_ms = o->base_delay_ms ? o->base_delay_ms : KR_WORKQUEUE_DEFAULT_BASE_DELAY_MS;
	int64_t max_ms = o->max_delay_ms ? o->max_delay_ms : KR_WORKQUEUE_DEFAULT_MAX_DELAY_MS;
	double qps = o->qps != 0 ? o->qps : KR_WORKQUEUE_DEFAULT_QPS;
	int burst = o->burst ? o->burst : KR_WORKQUEUE_DEFAULT_BURST;

	if (base_ms < 0 || max_ms < base_ms || max_ms > MAX_DELAY_NS / NS_PER_MS)
		KR_BUG("workqueue: bad delays base=%lld max=%lld ms", (long long)base_ms,
		       (long long)max_ms);
	/* Bounds keep burst * token_ns far from overflow. */
	if (burst < 0 || burst > 1000000 || (qps > 0 && qps < 0.001) || !isfinite(qps))
		KR_BUG("workqueue: bad token bucket qps=%g burst=%d", qps, burst);
	q->base_ns = base_ms * NS_PER_MS;
	q->max_ns = max_ms * NS_PER_MS;
	q->token_ns = qps > 0 ? llround(1e9 / qps) : 0;
	if (qps > 0 && q->token_ns == 0)
		q->token_ns = 1;
	q->burst = burst;
	q->clock = o->clock ? o->clock : monotonic_ns;
	q->clock_arg = o->clock_arg;
}

static int init_sync(struct kr_workqueue *q)
{
	int rc;

	rc = pthread_mutex_init(&q->mu, NULL);
	if (rc != 0)
		return rc;
	rc = kr_mono_cond_init(&q->cond);
	if (rc != 0)
		pthread_mutex_destroy(&q->mu);
	return rc;
}

struct kr_workqueue *kr_workqueue_new(const struct kr_workqueue_opts *opts)
{
	static const struct kr_workqueue_opts defaults;
	struct kr_workqueue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	apply_opts(q, opts ? opts : &defaults);
	if (init_sync(q) != 0) {
		free(q);
		return NULL;
	}
	return q;
}

void kr_workqueue_free(struct kr_workqueue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->items.cap; i++)
		free(q->items.slots[i]);
	free(q->items.slots);
	free(q->ready.buf);
	free(q->waiting.a);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* ---- adds ----------------------------------------------------------------------- */

enum kr_workqueue_add_kind { ADD_AFTER, ADD_RATE_LIMITED };

static enum kr_status add_locked(struct kr_workqueue *q, const char *key,
				 enum kr_workqueue_add_kind kind, int64_t delay_ns)
{
	struct wq_item *it;
	enum kr_status rc;
	int64_t now;

	if (!key)
		KR_BUG("workqueue: NULL key");
	if (q->shutting_down)
		return KR_ECANCELED;
	rc = item_get(q, key, &it);
	if (rc != KR_OK)
		return rc;
	now = wq_now(q);
	if (kind == ADD_RATE_LIMITED) {
		int64_t backoff = item_backoff(q, it);
		int64_t bucket = bucket_reserve(q, now);

		delay_ns = backoff > bucket ? backoff : bucket;
		q->retries++;
	}
	item_schedule(q, it, now, delay_ns);
	return KR_OK;
}

static enum kr_status add_common(struct kr_workqueue *q, const char *key,
				 enum kr_workqueue_add_kind kind, int64_t delay_ns)
{
	enum kr_status rc;

	pthread_mutex_lock(&q->mu);
	rc = add_locked(q, key, kind, delay_ns);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

enum kr_status kr_workqueue_add(struct kr_workqueue *q, const char *key)
{
	return add_common(q, key, ADD_AFTER, 0);
}

enum kr_status kr_workqueue_add_after(struct kr_workqueue *q, const char *key, int64_t delay_ms)
{
	int64_t delay_ns = 0;

	if (delay_ms > MAX_DELAY_NS / NS_PER_MS)
		delay_ns = MAX_DELAY_NS;
	else if (delay_ms > 0)
		delay_ns = delay_ms * NS_PER_MS;
	return add_common(q, key, ADD_AFTER, delay_ns);
}

enum kr_status kr_workqueue_add_rate_limited(struct kr_workqueue *q, const char *key)
{
	return add_common(q, key, ADD_RATE_LIMITED, 0);
}

void kr_workqueue_forget(struct kr_workqueue *q, const char *key)
{
	struct wq_item *it;

	pthread_mutex_lock(&q->mu);
	it = table_find(&q->items, key);
	if (it) {
		it->failures = 0;
		item_release_if_idle(q, it);
	}
	pthread_mutex_unlock(&q->mu);
}

unsigned kr_workqueue_num_requeues(struct kr_workqueue *q, const char *key)
{
	struct wq_item *it;
	unsigned n;

	pthread_mutex_lock(&q->mu);
	it = table_find(&q->items, key);
	n = it ? it->failures : 0;
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* ---- workers -------------------------------------------------------------------- */

/* Block until woken, or until the earliest delayed item is due. */
static void wait_for_work(struct kr_workqueue *q, int64_t now)
{
	struct timespec ts;
	int64_t deadline;

	if (q->waiting.len == 0) {
		pthread_cond_wait(&q->cond, &q->mu);
		return;
	}
	/* The injected clock may be fake: turn its distance into a real deadline. */
	deadline = monotonic_ns(NULL) + (q->waiting.a[0]->ready_at - now);
	ts.tv_sec = (time_t)(deadline / NS_PER_SEC);
	ts.tv_nsec = (long)(deadline % NS_PER_SEC);
	pthread_cond_timedwait(&q->cond, &q->mu, &ts);
}

/* Hand out the FIFO's head; the copy is made first so ENOMEM loses nothing. */
static enum kr_status take_head(struct kr_workqueue *q, char **key_out)
{
	struct wq_item *it = q->ready.buf[q->ready.head];
	char *copy = strdup(it->key);

	if (!copy)
		return KR_ENOMEM;
	fifo_pop(&q->ready);
	it->dirty = false;
	it->processing = true;
	q->in_flight++;
	*key_out = copy;
	return KR_OK;
}

enum kr_status kr_workqueue_get(struct kr_workqueue *q, char **key_out)
{
	enum kr_status rc;

	*key_out = NULL;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		int64_t now;

		if (q->shutting_down) {
			rc = KR_ECANCELED;
			break;
		}
		now = wq_now(q);
		promote_due(q, now);
		if (q->ready.len > 0) {
			rc = take_head(q, key_out);
			break;
		}
		wait_for_work(q, now);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void kr_workqueue_done(struct kr_workqueue *q, const char *key)
{
	struct wq_item *it;

	pthread_mutex_lock(&q->mu);
	it = table_find(&q->items, key);
	if (!it || !it->processing)
		KR_BUG("workqueue: done for a key that is not in flight");
	it->processing = false;
	q->in_flight--;
	if (it->dirty && q->shutting_down) {
		it->dirty = false;
	} else if (it->dirty) {
		it->queued_at = wq_now(q);
		fifo_push(&q->ready, it);
		pthread_cond_signal(&q->cond);
	}
	item_release_if_idle(q, it);
	pthread_mutex_unlock(&q->mu);
}

void kr_workqueue_shutdown(struct kr_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutting_down = true;
	while (q->ready.len > 0) {
		struct wq_item *it = fifo_pop(&q->ready);

		it->dirty = false;
		item_release_if_idle(q, it);
	}
	while (q->waiting.len > 0)
		item_release_if_idle(q, heap_pop(&q->waiting));
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

void kr_workqueue_wake(struct kr_workqueue *q)
{
	pthread_mutex_lock(&q->mu);
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

size_t kr_workqueue_len(struct kr_workqueue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	if (!q->shutting_down)
		promote_due(q, wq_now(q));
	n = q->ready.len;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void kr_workqueue_stats(struct kr_workqueue *q, struct kr_workqueue_stats *out)
{
	int64_t now;

	pthread_mutex_lock(&q->mu);
	now = wq_now(q);
	if (!q->shutting_down)
		promote_due(q, now);
	out->depth = q->ready.len;
	out->delayed = q->waiting.len;
	out->in_flight = q->in_flight;
	out->adds_total = q->adds;
	out->retries_total = q->retries;
	out->oldest_ready_ms = 0;
	if (q->ready.len > 0)
		out->oldest_ready_ms = (now - q->ready.buf[q->ready.head]->queued_at) / NS_PER_MS;
	pthread_mutex_unlock(&q->mu);
}
