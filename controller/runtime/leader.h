/* leader.h - leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics. */
#ifndef KR_LEADER_H
#define KR_LEADER_H

#include <stdint.h>

#include "base/error.h"

struct kr_kube_config;

/*
 * How it works (client-go tools/leaderelection, resourcelock/leaselock.go):
 *
 *  - The lock is the Lease `namespace/name`; its spec is the election record:
 *    holderIdentity, leaseDurationSeconds, acquireTime, renewTime, leaseTransitions.
 *  - Every attempt reads the Lease, then creates it (404) or PUTs it carrying the
 *    resourceVersion it read; a 409 means another candidate won the race.
 *  - A candidate takes a held Lease only when leaseDurationSeconds (the holder's value)
 *    has passed since the candidate ITSELF last saw the record change, on its own
 *    CLOCK_MONOTONIC. Remote timestamps (renewTime) are written for humans and never
 *    compared, so clock skew between machines does not matter; only clock rates do.
 *  - Candidates retry every retry_period (plus up to 1.2x jitter); the leader renews
 *    every retry_period.
 *  - A released Lease (holderIdentity "") may be taken at once.
 *
 * Fencing. kr_leader_is_leader() is true only until last_renew_start + renew_deadline,
 * where last_renew_start is the time the last SUCCESSFUL renewal request was SENT. It
 * reads the clock itself, so it turns false on time even if the election thread is
 * stuck in a request. Any other candidate saw that renewal no earlier than it was sent,
 * and waits lease_duration > renew_deadline after that, so as long as clocks run at
 * the same rate two processes are never leaders at the same instant. The controller
 * must check kr_leader_is_leader() right before every write (and stop writing when it
 * is false); on_stopped_leading is called once the deadline has passed.
 */

#define KR_LEADER_DEFAULT_LEASE_DURATION_MS 15000
#define KR_LEADER_DEFAULT_RENEW_DEADLINE_MS 10000
#define KR_LEADER_DEFAULT_RETRY_PERIOD_MS   2000
/* client-go's JitterFactor: validation needs renew_deadline > retry_period * 1.2. */
#define KR_LEADER_JITTER_FACTOR 1.2

/* Strings are borrowed for the call only: kr_leader_new copies them. */
struct kr_leader_opts {
	const char *namespace_; /* the Lease's namespace; required */
	const char *name;	/* the Lease's name, e.g. "keyrotator"; required */
	const char *identity;	/* NULL or "": hostname + "_" + 16 random hex digits */
	long lease_duration_ms; /* 0 = default 15000; a whole number of seconds */
	long renew_deadline_ms; /* 0 = default 10000 */
	long retry_period_ms;	/* 0 = default 2000 */
};

/* Fill in the defaults above (strings untouched). */
void kr_leader_opts_defaults(struct kr_leader_opts *opts);

/*
 * Check the options as they will be used (zeros stand for the defaults): namespace and
 * name set, all durations > 0, lease_duration a whole number of seconds (the Lease
 * field is integer seconds), lease_duration > renew_deadline > retry_period * 1.2.
 * KR_EINVAL with a message naming the field otherwise.
 */
enum kr_status kr_leader_opts_validate(const struct kr_leader_opts *opts, struct kr_error *err);

/*
 * Callbacks run on the elector's thread (the one in kr_leader_run); they must return
 * promptly. Every member may be NULL.
 */
struct kr_leader_callbacks {
	/* We became the leader: start reconciling. */
	void (*on_started_leading)(void *arg);
	/* We are no longer the leader (lost, or released on stop): stop all writes. */
	void (*on_stopped_leading)(void *arg);
	/* The holder changed to `identity` (borrowed; ours too). "" when released. */
	void (*on_new_leader)(void *arg, const char *identity);
	void *arg;
};

struct kr_leader;

/*
 * Validate opts and create an elector with its own REST client (a client is not
 * thread-safe; this one is used only by kr_leader_run/kr_leader_free). `cfg` is
 * borrowed and must outlive the elector; opts strings and callbacks are copied.
 */
struct kr_leader *kr_leader_new(struct kr_kube_config *cfg, const struct kr_leader_opts *opts,
				const struct kr_leader_callbacks *cb, struct kr_error *err);

/* Stops nothing by itself: call kr_leader_stop and wait for kr_leader_run first. NULL ok. */
void kr_leader_free(struct kr_leader *l);

/*
 * Run the election on the calling thread until kr_leader_stop() or until leadership is
 * lost. Returns:
 *   KR_OK        stopped on request; the Lease was released if we held it (release
 *                failures are reported in err but still return KR_OK: the lease
 *                simply expires);
 *   KR_ESTATE    we were the leader and failed to renew within renew_deadline; the
 *                caller must stop writing and exit non-zero;
 *   KR_EINVAL    the elector was already run.
 * Call once.
 */
enum kr_status kr_leader_run(struct kr_leader *l, struct kr_error *err);

/*
 * Ask kr_leader_run to stop, promptly: waits are interrupted at once; a request in
 * flight finishes first (bounded by the renew deadline). If we lead, run then closes the
 * fence (is_leader false, on_stopped_leading) BEFORE releasing the Lease, so a standby
 * can take over at once without overlap: finish the step in hand, then call this.
 * Any thread; not from a signal handler (use a sigwait thread or a flag).
 */
void kr_leader_stop(struct kr_leader *l);

/* The fence: 1 while we hold the lease and the renew deadline has not passed. Any thread. */
int kr_leader_is_leader(const struct kr_leader *l);

/* Our identity (borrowed, valid until kr_leader_free). */
const char *kr_leader_identity(const struct kr_leader *l);

/* ---- pure decision helpers (exposed for tests) ---- */

/* The election record as observed in a Lease's spec. */
struct kr_leader_record {
	char holder[256];     /* holderIdentity, "" if none */
	int lease_duration_s; /* leaseDurationSeconds */
	long transitions;     /* leaseTransitions */
};

/*
 * May `identity` try to write the Lease now? Yes when it is unheld (holder ""), when
 * we are the holder, or when `now_ms - observed_ms >= lease_duration_s * 1000`, where
 * observed_ms is when WE last saw the record change (our monotonic clock).
 */
int kr_leader_may_acquire(const struct kr_leader_record *rec, const char *identity,
			  int64_t observed_ms, int64_t now_ms);

#endif
