/* metrics.h - a small thread-safe Prometheus registry: counters, gauges, histograms. */
#ifndef KR_METRICS_H
#define KR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

/*
 * A registry holds metric families; a family holds series, one per combination of
 * label values. Families are registered once (name, HELP, TYPE, 0..3 label names);
 * a series is created the first time it is used with its label values. Label-less
 * families have their one series from registration on, so they render as 0 at once.
 *
 * THE LABEL RULE: a label value must come from a closed set of words ("success",
 * "error") or be a Kubernetes object's namespace or name. Never key material, never
 * a key id, never anything read from a key store, a Secret or an error message:
 * /metrics is unauthenticated and scraped into long-lived storage, and every distinct
 * value is a new series forever (until deleted). Each family holds at most
 * KR_METRICS_MAX_SERIES series; beyond that updates fail with KR_ETOOBIG.
 *
 * Thread safety: every function here may be called from any thread at any time,
 * except kr_metrics_free, which must come after all other use has stopped.
 */

#define KR_METRIC_MAX_LABELS  3
#define KR_METRICS_MAX_SERIES 10000

enum kr_metric_type { KR_METRIC_COUNTER, KR_METRIC_GAUGE, KR_METRIC_HISTOGRAM };

struct kr_metrics;
/* A family handle. Owned by its registry; valid until kr_metrics_free. */
struct kr_metric;

struct kr_metric_desc {
	enum kr_metric_type type;
	const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total */
	const char *help; /* one line of text; escaped on output */
	/* Label names, [a-zA-Z_][a-zA-Z0-9_]*, not "__*"; unused slots NULL. */
	const char *labels[KR_METRIC_MAX_LABELS];
	/* Histograms only: upper bounds, finite and strictly increasing; +Inf is implied. */
	const double *buckets;
	size_t nbuckets;
};

/* Label values for one series, in the family's label order: KR_LV("ns", "name"). */
#define KR_LV(...) ((const char *const[]){__VA_ARGS__})

/* Caller frees with kr_metrics_free. NULL on ENOMEM. */
struct kr_metrics *kr_metrics_new(void);
/* Frees the registry, its families and series. kr_metrics_free(NULL) does nothing. */
void kr_metrics_free(struct kr_metrics *m);

/*
 * Register a family; `d` and everything it points to is copied. On success *out is
 * the family handle. KR_EINVAL for a bad name, label or bucket list, KR_EEXIST when
 * the name is taken, KR_ENOMEM.
 */
enum kr_status kr_metrics_register(struct kr_metrics *m, const struct kr_metric_desc *d,
				   struct kr_metric **out, struct kr_error *err);

/*
 * Updates. `values` holds exactly as many non-NULL strings as the family has label
 * names (NULL for a label-less family); it is borrowed. Using a function of the wrong
 * type or the wrong number of values is a programmer mistake (KR_BUG). Return KR_OK,
 * KR_ENOMEM or KR_ETOOBIG (series limit), or KR_EINVAL for a negative counter add or a
 * NaN; on error nothing changes. Callers may ignore the result: a metric is never worth
 * failing a reconcile for.
 */
enum kr_status kr_counter_inc(struct kr_metric *f, const char *const *values);
enum kr_status kr_counter_add(struct kr_metric *f, const char *const *values, double v);
enum kr_status kr_gauge_set(struct kr_metric *f, const char *const *values, double v);
enum kr_status kr_gauge_add(struct kr_metric *f, const char *const *values, double v);
enum kr_status kr_gauge_inc(struct kr_metric *f, const char *const *values);
enum kr_status kr_gauge_dec(struct kr_metric *f, const char *const *values);
enum kr_status kr_histogram_observe(struct kr_metric *f, const char *const *values, double v);

/*
 * A gauge that grows with time, for an age: the series reads `v` now and one more for
 * every whole second after (the registry's clock, CLOCK_MONOTONIC), at every render and
 * kr_metric_get, until the next set. An age set once from a stored start time is then
 * true at every scrape without its owner updating it. kr_gauge_add/inc/dec move a growing
 * series and keep it growing; kr_gauge_set makes it a plain gauge again.
 */
enum kr_status kr_gauge_set_growing(struct kr_metric *f, const char *const *values, double v);

/*
 * The clock growing gauges read, in milliseconds: `now_ms(arg)`; NULL restores the
 * default (kr_mono_ms). For tests; call it before any growing gauge is set.
 */
void kr_metrics_set_clock(struct kr_metrics *m, int64_t (*now_ms)(void *arg), void *arg);

/*
 * Read a series without creating it: the value of a counter or gauge, the count of a
 * histogram (its sum in *sum when sum != NULL). KR_ENOTFOUND when the series does not
 * exist. For tests and for code that reports what it counted.
 */
enum kr_status kr_metric_get(struct kr_metric *f, const char *const *values, double *value,
			     double *sum);

/* Delete one series. KR_OK, or KR_ENOTFOUND when it did not exist. */
enum kr_status kr_metric_delete(struct kr_metric *f, const char *const *values);

/*
 * Delete, in every family that has both a "namespace" and a "name" label, the series
 * whose labels equal `namespace_` and `name` (all other labels any value). Call it when
 * a KeyRotation is deleted. Returns how many series went.
 */
size_t kr_metrics_delete_object(struct kr_metrics *m, const char *namespace_, const char *name);

/*
 * Append the registry to `out` in the Prometheus text format 0.0.4: families sorted by
 * name, series by label values (byte order), histogram buckets cumulative with le="+Inf",
 * then _sum and _count. Families with no series are left out. KR_OK or KR_ENOMEM.
 */
enum kr_status kr_metrics_render(struct kr_metrics *m, struct kr_buf *out);
/*
 * The same, only the families named in names[0..n) (n 0: every family). What
 * `GET /metrics?name=F` serves: one counter read by a script or a benchmark without
 * rendering a series per KeyRotation (at 10,000 KeyRotations, 50,000 lines).
 */
enum kr_status kr_metrics_render_only(struct kr_metrics *m, const char *const *names, size_t n,
				      struct kr_buf *out);

/* The Content-Type to serve kr_metrics_render's output with. */
#define KR_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * The runtime's own families, named `prefix` + "_" + the field name (keyrotator_...):
 *   reconcile_total{result}           "success", "error", "requeue" (all three from the start)
 *   reconcile_duration_seconds        histogram, 5ms..10s
 *   workqueue_depth                   gauge
 *   workqueue_adds_total              counter
 *   workqueue_retries_total           counter (rate-limited re-adds)
 *   leader                            gauge, 1 while this replica holds the lease
 *   build_info{version}               gauge, always 1
 *   events_dropped_total              counter, Events dropped on a full queue (events.h)
 * A controller's domain families are its own (reconciler.h: keyrotator's). Handles are
 * owned by the registry.
 */
struct kr_runtime_metrics {
	struct kr_metric *reconcile_total;
	struct kr_metric *reconcile_duration_seconds;
	struct kr_metric *workqueue_depth;
	struct kr_metric *workqueue_adds_total;
	struct kr_metric *workqueue_retries_total;
	struct kr_metric *leader;
	struct kr_metric *build_info;
	struct kr_metric *events_dropped_total;
};

/* The reconcile results reconcile_total counts, each a series from the start. */
#define KR_RECONCILE_RESULTS {"success", "error", "requeue"}

/*
 * Register the above in `m` with names "<prefix>_..." and set build_info{version} to 1.
 * `prefix` and `version` are borrowed. Fails like kr_metrics_register.
 */
enum kr_status kr_metrics_register_runtime(struct kr_metrics *m, const char *prefix,
					   const char *version, struct kr_runtime_metrics *out,
					   struct kr_error *err);

/*
 * One row of a table of families: `desc` registered into `*slot`; a counter with one label
 * and `zero_values` (NULL-terminated) starts with those series at 0, so rate() and alerts
 * see them before the first event. kr_metrics_register_table registers `n` rows.
 */
struct kr_metric_row {
	struct kr_metric_desc desc;
	struct kr_metric **slot;
	const char *const *zero_values;
};

enum kr_status kr_metrics_register_table(struct kr_metrics *m, const char *prefix,
					 const struct kr_metric_row *rows, size_t n,
					 struct kr_error *err);

#endif
