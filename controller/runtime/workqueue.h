/* workqueue.h - the controller's work queue: string keys, client-go semantics, rate limits. */
#ifndef KR_WORKQUEUE_H
#define KR_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/*
 * A queue of string keys ("namespace/name") with the guarantees of client-go's
 * workqueue (util/workqueue: queue.go, delaying_queue.go, rate_limiting_queue.go):
 *
 *  - Stingy: a key added several times before a worker takes it is handed out once.
 *  - Exclusive: a key handed out by kr_workqueue_get() is not handed out again until
 *    kr_workqueue_done(); so two workers never reconcile the same key at once.
 *  - Re-add while in flight: a key added while a worker holds it is queued again when
 *    that worker calls kr_workqueue_done(), and so runs once more.
 *  - Fair: ready keys are handed out in the order they became ready.
 *  - Delayed adds (kr_workqueue_add_after) for timers; per key, the earliest pending
 *    deadline wins.
 *  - Rate-limited adds for retries: delay = max(per-key exponential backoff,
 *    overall token bucket), as client-go's DefaultControllerRateLimiter.
 *
 * Keys are copied in; the queue never keeps a caller's pointer. Keys must be non-NULL,
 * NUL-terminated strings (the empty string is a valid key).
 *
 * Thread safety: every function except kr_workqueue_free() may be called from any
 * number of threads at once. kr_workqueue_free() needs every other user gone (workers
 * joined).
 */

/* The default for `--workers N`: how many threads call kr_workqueue_get(). */
#define KR_WORKQUEUE_DEFAULT_WORKERS 4

#define KR_WORKQUEUE_DEFAULT_BASE_DELAY_MS 5
#define KR_WORKQUEUE_DEFAULT_MAX_DELAY_MS  (1000 * 1000)
#define KR_WORKQUEUE_DEFAULT_QPS	   10.0
#define KR_WORKQUEUE_DEFAULT_BURST	   100

/*
 * A monotonic clock in nanoseconds. Tests inject a fake one; after moving it forward
 * they call kr_workqueue_wake() so blocked getters look at it again. Must be callable
 * from any thread; it is called with the queue's lock held, so it must not call back
 * into the queue.
 */
typedef int64_t kr_workqueue_clock_fn(void *arg);

/* Options; a zero field means the default. */
struct kr_workqueue_opts {
	int64_t base_delay_ms;	      /* first retry delay (5 ms); must not be negative */
	int64_t max_delay_ms;	      /* retry delay cap (1000 s); must not be < base */
	double qps;		      /* overall retry rate (10/s), >= 0.001; negative: no bucket */
	int burst;		      /* bucket size (100), at most 1000000 */
	kr_workqueue_clock_fn *clock; /* NULL: CLOCK_MONOTONIC */
	void *clock_arg;	      /* passed to clock; borrowed, must outlive the queue */
};

/* Counters for the metrics registry; a snapshot taken under the queue's lock. */
struct kr_workqueue_stats {
	size_t depth;		 /* ready keys waiting for a worker (== kr_workqueue_len) */
	size_t delayed;		 /* keys scheduled by add_after / add_rate_limited, not yet due */
	size_t in_flight;	 /* keys handed out by get and not yet done */
	uint64_t adds_total;	 /* adds that queued a key (collapsed duplicates not counted) */
	uint64_t retries_total;	 /* kr_workqueue_add_rate_limited() calls */
	int64_t oldest_ready_ms; /* how long the head of the ready queue has waited; 0 if empty */
};

struct kr_workqueue;

/*
 * A new, empty queue. `opts` is borrowed (copied); NULL means all defaults.
 * Returns NULL only when out of memory. Options outside the documented ranges (negative
 * delays, max < base, ...) are a programmer mistake (KR_BUG). Free with kr_workqueue_free().
 */
struct kr_workqueue *kr_workqueue_new(const struct kr_workqueue_opts *opts);

/* Frees the queue and every key in it. NULL is a no-op. No other thread may use `q`. */
void kr_workqueue_free(struct kr_workqueue *q);

/*
 * Queue `key` now (copied). A key already queued is not queued twice; a key in flight
 * is queued again once its worker calls done. Returns KR_OK, KR_ENOMEM, or
 * KR_ECANCELED after shutdown (the add is dropped; callers may ignore that).
 */
enum kr_status kr_workqueue_add(struct kr_workqueue *q, const char *key);

/*
 * Queue `key` once `delay_ms` has passed (<= 0: now, as kr_workqueue_add). If the key
 * already waits for a later deadline, the earlier one replaces it; a later deadline
 * than the one pending is dropped. A delayed key does not count in kr_workqueue_len.
 * Returns as kr_workqueue_add; after shutdown delayed keys are dropped.
 */
enum kr_status kr_workqueue_add_after(struct kr_workqueue *q, const char *key, int64_t delay_ms);

/*
 * Retry `key` later: delay = max(base * 2^n capped at max, where n is the number of
 * rate-limited adds since the last forget; the token bucket's wait). Every call takes a
 * token and bumps n. Counts in stats.retries_total. Returns as kr_workqueue_add.
 */
enum kr_status kr_workqueue_add_rate_limited(struct kr_workqueue *q, const char *key);

/*
 * Reset `key`'s backoff (call after a successful reconcile). Does not unqueue the key
 * or touch the token bucket. Unknown keys are fine.
 */
void kr_workqueue_forget(struct kr_workqueue *q, const char *key);

/* How many rate-limited adds `key` has had since its last forget. */
unsigned kr_workqueue_num_requeues(struct kr_workqueue *q, const char *key);

/*
 * Blocks until a key is ready, then hands it out: *key_out is a copy the caller frees
 * with free(), after calling kr_workqueue_done(q, *key_out). Returns KR_OK, KR_ENOMEM
 * (nothing handed out; the key stays queued), or KR_ECANCELED once the queue is shut
 * down (*key_out = NULL).
 */
enum kr_status kr_workqueue_get(struct kr_workqueue *q, char **key_out);

/*
 * The worker holding `key` (from get) is finished with it. If the key was added again
 * meanwhile it is queued again now. Calling done for a key not in flight is a
 * programmer mistake (KR_BUG). Works after shutdown too.
 */
void kr_workqueue_done(struct kr_workqueue *q, const char *key);

/*
 * Shut down without draining: every blocked and future get returns KR_ECANCELED at
 * once, ready and delayed keys are dropped, adds are refused. Keys in flight stay in
 * flight until their workers call done (join the workers to wait for them). Unlike
 * client-go's ShutDown, queued keys are not handed out first: the controller is level
 * triggered and the next leader re-lists everything. Calling it twice is fine.
 */
void kr_workqueue_shutdown(struct kr_workqueue *q);

/* Wake blocked getters so they re-read the clock (tests with a fake clock). */
void kr_workqueue_wake(struct kr_workqueue *q);

/* Number of ready keys (delayed and in-flight keys are not counted). */
size_t kr_workqueue_len(struct kr_workqueue *q);

/* Fill `out` with a snapshot of the counters. */
void kr_workqueue_stats(struct kr_workqueue *q, struct kr_workqueue_stats *out);

#endif
