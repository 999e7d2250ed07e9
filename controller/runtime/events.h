/* events.h - Kubernetes Events sent off the reconcile path: queued, aggregated, one thread. */
#ifndef KR_EVENTS_H
#define KR_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/error.h"
#include "kube/kube.h"
#include "runtime/metrics.h"

/*
 * An Event recorder as client-go's (tools/record): kr_events_emit only queues and returns,
 * so a reconcile never waits on an Event's round trip; one sender thread, with its own API
 * client, writes them. Like client-go's EventCorrelator it aggregates:
 *   - the same Event again (object, type, reason, message) PATCHes the Event written before
 *     (count + 1, lastTimestamp) instead of creating another; one still waiting in the queue
 *     only counts up, so a burst of the same Event costs one write;
 *   - more than KR_EVENTS_SIMILAR_MAX Events of one object, type and reason with different
 *     messages within KR_EVENTS_SIMILAR_WINDOW_S become one Event, its message prefixed
 *     "(combined from similar events): ", counted up as above.
 * The queue is bounded: an Event that finds it full is dropped and counted (`dropped`, the
 * metric <prefix>_events_dropped_total). Events are best effort, as in client-go: a write
 * that fails is logged and dropped, never retried for long.
 */

#define KR_EVENTS_QUEUE_DEFAULT	  1024
#define KR_EVENTS_CACHE_MAX	  4096 /* Events remembered for counting up (client-go: 4096) */
#define KR_EVENTS_SIMILAR_MAX	  10
#define KR_EVENTS_SIMILAR_WINDOW_S 600
#define KR_EVENTS_MESSAGE_MAX	  1024 /* longer messages are cut (the API allows 1 KiB more) */

/* The object an Event is about (its involvedObject); strings borrowed for the call. */
struct kr_event_object {
	const char *api_version, *kind, *ns, *name, *uid;
};

struct kr_events_opts {
	struct kr_kube_config *cfg; /* borrowed, must outlive the recorder */
	const char *component;	    /* source.component and reportingComponent */
	const char *instance;	    /* reportingInstance (the pod) */
	size_t queue_max;	    /* 0: KR_EVENTS_QUEUE_DEFAULT */
	struct kr_metric *dropped;  /* a counter without labels, or NULL */
	/* The clock for the Events' timestamps (tests skew it); NULL: time(NULL). */
	time_t (*now)(void *arg);
	void *now_arg;
};

struct kr_events_stats {
	uint64_t emitted;  /* kr_events_emit calls */
	uint64_t coalesced; /* counted into an Event still queued */
	uint64_t created;  /* POSTs that succeeded */
	uint64_t patched;  /* PATCHes (count + 1) that succeeded */
	uint64_t dropped;  /* the queue was full */
	uint64_t failed;   /* writes the API refused */
};

struct kr_events;

/* A stopped recorder; strings in `o` are copied. Free with kr_events_free. */
struct kr_events *kr_events_new(const struct kr_events_opts *o, struct kr_error *err);
/* Start the sender thread. */
enum kr_status kr_events_start(struct kr_events *ev, struct kr_error *err);
/*
 * Queue an Event; never blocks on the API. Thread-safe. Before kr_events_start the Events
 * wait in the queue; after kr_events_stop they are dropped.
 */
void kr_events_emit(struct kr_events *ev, const struct kr_event_object *obj, bool warning,
		    const char *reason, const char *message);
/* Wait until the queue is empty and the sender idle, at most `timeout_ms`: 1 when it is. */
int kr_events_flush(struct kr_events *ev, long timeout_ms);
/* Send what is queued for at most `drain_ms`, then stop the thread. Idempotent. */
void kr_events_stop(struct kr_events *ev, long drain_ms);
/* Stop (drain 0) and free; NULL-safe. */
void kr_events_free(struct kr_events *ev);
void kr_events_stats(struct kr_events *ev, struct kr_events_stats *out);

#endif
