/* analysis.h - the 401 watch: Prometheus queries, direct scrapes, counter rates, the gate. */
#ifndef KR_ANALYSIS_H
#define KR_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/secret.h"

/*
 * Four parts, each usable alone:
 *   promtext.c  the Prometheus text exposition format (0.0.4), parsed line by line
 *   promjson.c  a /api/v1/query response, decoded into one measurement
 *   rate.c      matching counter series in a scrape, and the rate between two scrapes
 *   gate.c      the pure decision: pass, fail, inconclusive, roll back
 *   fetch.c     the HTTP side (libcurl): instant queries and scrapes
 *   verify.c    spec.verify's request
 * Nothing here keeps global state; every function may be called from any thread as long
 * as the objects passed are not shared between threads.
 *
 * Messages never quote what a server sent (a body, a Prometheus error text, a header, a
 * label value, a banner): a KeyRotation's author picks the URL, and status and Events must
 * not become a way to read endpoints the author cannot reach. They say what was wrong
 * instead (HTTP status, "not JSON", the line number and the rule broken, a timeout). The
 * one exception is a short identifier such as Prometheus's errorType (kr_text_token).
 */

/* ---- measurements ---------------------------------------------------------------- */

/*
 * One measurement of the 401 rate, or the reason there is none. A measurement that is
 * not ok is "inconclusive": it decides nothing (DESIGN.md §2). Embedded by value.
 */
struct kr_measurement {
	int ok;			/* 1: `value` holds the measurement; 0: inconclusive */
	double value;		/* requests per second (or whatever the query yields) */
	double at;		/* unix seconds the value is for; 0 when unknown */
	struct kr_error reason; /* when !ok: code and a message naming the server */
};

void kr_measurement_set_value(struct kr_measurement *m, double value, double at);
/* Mark inconclusive with a printf-formatted reason. Returns `code`. */
enum kr_status kr_measurement_set_inconclusive(struct kr_measurement *m, enum kr_status code,
					       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A size for a message: "64 KiB", "16 MiB", "10 bytes" (whole units only). */
void kr_analysis_size_text(size_t bytes, char out[24]);

/* ---- the text exposition format (promtext.c) -------------------------------------- */

enum kr_prom_type {
	KR_PROM_UNTYPED = 0,
	KR_PROM_COUNTER,
	KR_PROM_GAUGE,
	KR_PROM_HISTOGRAM,
	KR_PROM_SUMMARY
};

/* "counter", "gauge", ...; never NULL. */
const char *kr_prom_type_name(enum kr_prom_type type);

struct kr_prom_label {
	const char *name;
	const char *value; /* unescaped */
};

/*
 * One sample line. Every pointer is borrowed from the parser and valid only during
 * the callback that receives it.
 */
struct kr_prom_sample {
	const char *name;	/* as written: "x_bucket", "x_count", "http_requests_total" */
	const char *family;	/* the HELP/TYPE family it belongs to ("x"), else `name` */
	enum kr_prom_type type; /* the family's TYPE; untyped without one */
	const struct kr_prom_label *labels;
	size_t nlabels;
	double value; /* may be NaN or +-Inf */
	int has_timestamp;
	int64_t timestamp_ms;
	size_t line; /* 1-based */
};

/*
 * Called once per sample. Return KR_OK to go on; anything else stops the parse, and
 * the parser returns that status with `err` as the callback left it.
 */
typedef enum kr_status (*kr_promtext_fn)(void *arg, const struct kr_prom_sample *sample,
					 struct kr_error *err);

/*
 * Caps on what one exposition may cost; 0 in a field means its default (issue 18). The
 * parser holds one line at a time, so memory is the longest line plus what the callback
 * keeps (kr_counter_match_sample: the matching series only, at most
 * KR_COUNTER_MAX_SERIES). The byte and sample caps bound the time spent on a target that
 * exposes far more than the one counter wanted; an application's /metrics is usually tens
 * of KiB to a few MiB.
 */
#define KR_PROMTEXT_MAX_BYTES	(16u * 1024 * 1024)
#define KR_PROMTEXT_MAX_LINE	(64u * 1024)
#define KR_PROMTEXT_MAX_SAMPLES 100000u

struct kr_promtext_limits {
	size_t max_bytes;   /* whole exposition; default KR_PROMTEXT_MAX_BYTES (16 MiB) */
	size_t max_line;    /* one line; default KR_PROMTEXT_MAX_LINE (64 KiB) */
	size_t max_samples; /* sample lines; default KR_PROMTEXT_MAX_SAMPLES (100000) */
};

/*
 * A streaming parser: feed it bytes in chunks of any size (a line may span chunks),
 * then finish. Embedded by value: kr_promtext_init / kr_promtext_release.
 * Errors are KR_EPROTO (malformed: "line 7: label 2: value must be a quoted string") or
 * KR_ETOOBIG (a cap); after one, the parser refuses more input.
 */
struct kr_promtext {
	struct kr_promtext_limits limits;
	kr_promtext_fn fn;
	void *arg;
	struct kr_buf line;    /* the partial line carried between chunks */
	struct kr_buf scratch; /* unescaped names and values of the current line */
	struct kr_buf family;  /* the family named by the last HELP/TYPE line */
	enum kr_prom_type family_type;
	int family_has_samples;
	struct kr_prom_label *labels; /* handed to the callback */
	size_t labels_cap;
	size_t *offsets; /* name/value offsets into scratch, per label */
	size_t offsets_cap;
	size_t lineno, bytes, samples;
	enum kr_status failed;
};

/* `limits` may be NULL (defaults); `fn` is required; `arg` is passed through. */
void kr_promtext_init(struct kr_promtext *p, const struct kr_promtext_limits *limits,
		      kr_promtext_fn fn, void *arg);
void kr_promtext_release(struct kr_promtext *p);
enum kr_status kr_promtext_feed(struct kr_promtext *p, const char *data, size_t len,
				struct kr_error *err);
/* End of input: parses a last line that lacks its "\n". */
enum kr_status kr_promtext_finish(struct kr_promtext *p, struct kr_error *err);
/* init + feed + finish + release, for a whole exposition in memory. */
enum kr_status kr_promtext_parse(const char *text, size_t len,
				 const struct kr_promtext_limits *limits, kr_promtext_fn fn,
				 void *arg, struct kr_error *err);

/* ---- /api/v1/query responses (promjson.c) ----------------------------------------- */

/*
 * Bounds on an answer (issue 18). An instant query's answer is a few hundred bytes: one
 * sample, a few labels. The body is refused while it is read once it passes
 * KR_PROMJSON_MAX_BYTES (fetch.c: "answer larger than 64 KiB"), and before cJSON sees it
 * a pass over the bytes refuses nesting deeper than KR_PROMJSON_MAX_DEPTH and more than
 * KR_PROMJSON_MAX_VALUES values, so decoding costs at most a few hundred KiB of heap.
 */
#define KR_PROMJSON_MAX_BYTES  (64u * 1024)
#define KR_PROMJSON_MAX_DEPTH  32
#define KR_PROMJSON_MAX_VALUES 4096

/*
 * Decode an instant-query response body (`len` bytes, need not be NUL-terminated) that
 * came with HTTP status `http_status`. A vector of exactly one sample, or a scalar, whose
 * value is a finite number: KR_OK and m->ok = 1, m->at the evaluation time Prometheus
 * reported. Anything else is inconclusive: the status (KR_ENOTFOUND for an empty result,
 * KR_EPROTO for a malformed body, an unusable result or nesting deeper than
 * KR_PROMJSON_MAX_DEPTH, KR_ETOOBIG for more than KR_PROMJSON_MAX_VALUES values, KR_EHTTP
 * for a Prometheus error or any of these with a status other than 200)
 * is returned, and m->reason says why ("query returned 2 series, want 1: aggregate with
 * sum()", "query failed (HTTP 400): bad_data: the query or its parameters are not valid"),
 * without naming the server and without quoting the body.
 */
enum kr_status kr_promjson_decode(const char *body, size_t len, long http_status,
				  struct kr_measurement *m);

/* ---- counters in a scrape, and their rate (rate.c) -------------------------------- */

struct kr_counter_series {
	char *key; /* canonical label set: name="value" pairs sorted by name, ","-joined */
	double value;
};

/*
 * The series of one metric that match a label selector, from one scrape.
 * Embedded by value: kr_counter_snapshot_init / kr_counter_snapshot_release.
 */
struct kr_counter_snapshot {
	struct kr_counter_series *series; /* owned; sorted by key once complete */
	size_t n, cap;
	double sum;		/* sum of the matching series' values */
	double at;		/* unix seconds of the scrape */
	size_t metric_seen;	/* samples named `metric` with any labels */
	enum kr_prom_type type; /* the TYPE of the metric's family, when seen */
};

void kr_counter_snapshot_init(struct kr_counter_snapshot *s);
void kr_counter_snapshot_release(struct kr_counter_snapshot *s);

/*
 * What to collect: samples named `metric` whose labels include every pair in
 * `labels` (others may be present). All pointers borrowed for the collection.
 */
struct kr_counter_match {
	const char *metric;
	const struct kr_prom_label *labels;
	size_t nlabels;
	struct kr_counter_snapshot *snap;
};

/*
 * Matching series kept from one scrape at most (issue 18): the 401 counter of one
 * service has a series per handler or method, tens to hundreds; past this the scrape is
 * KR_ETOOBIG, so a target with a million matching series costs a few MiB, not hundreds.
 */
#define KR_COUNTER_MAX_SERIES 10000u

/* A kr_promtext_fn: pass a struct kr_counter_match * as `arg`. */
enum kr_status kr_counter_match_sample(void *arg, const struct kr_prom_sample *sample,
				       struct kr_error *err);
/*
 * After the parse: sort the series, and refuse what cannot be a counter reading. No
 * sample named `metric` at all is KR_ENOTFOUND (a wrong name would otherwise read as a
 * rate of zero forever); a gauge family is KR_EINVAL; NaN, infinite or negative values
 * are KR_EPROTO. Matching nothing while the metric exists is fine: sum 0, as when the
 * code="401" series has not been created yet.
 */
enum kr_status kr_counter_snapshot_finish(struct kr_counter_snapshot *s, const char *metric,
					  struct kr_error *err);
/* Parse a whole exposition into `s` (init'ed by the caller); `at` is the scrape time. */
enum kr_status kr_counter_snapshot_parse(struct kr_counter_snapshot *s, const char *text,
					 size_t len, const struct kr_counter_match *match,
					 double at, struct kr_error *err);

/*
 * Per-second increase from `prev` to `cur`, as Prometheus's rate() counts it: a series
 * whose value went down was reset, and its new value is the increase since the reset; a
 * series new in `cur` counts from zero (client libraries create a code="401" child at its
 * first 401); a series gone from `cur` adds nothing. No time between the scrapes is
 * inconclusive. m->at = cur->at.
 */
void kr_counter_rate(const struct kr_counter_snapshot *prev, const struct kr_counter_snapshot *cur,
		     struct kr_measurement *m);

/* ---- the gate (gate.c) ------------------------------------------------------------ */

/* From spec.analysis. Limits below 1 count as 1. */
struct kr_analysis_limits {
	double threshold; /* allowed above the baseline */
	int failure_limit;
	int error_limit;
};

enum kr_gate_verdict {
	KR_GATE_PASS = 0,     /* at or under baseline + threshold (or: baseline taken) */
	KR_GATE_FAIL,	      /* over, but fewer than failureLimit in a row: hold */
	KR_GATE_INCONCLUSIVE, /* no value, fewer than errorLimit in a row: hold */
	KR_GATE_ROLLBACK      /* a limit was reached: roll back (before step 2: abort) */
};

/* "Pass", "Fail", "Inconclusive", "Rollback"; never NULL. */
const char *kr_gate_verdict_name(enum kr_gate_verdict v);

/*
 * What the gate remembers between measurements. Zeroed (= {0}) at the start of a
 * rotation; the controller may persist it. Plain data, no pointers.
 */
struct kr_analysis_state {
	int consecutive_failures;
	int consecutive_errors;
	int has_baseline;
	double baseline;
	int has_last;
	double last_value; /* the last conclusive value */
	double last_at;	   /* when the last measurement (any outcome) was taken */
	enum kr_gate_verdict last_verdict;
};

struct kr_gate_decision {
	enum kr_gate_verdict verdict;
	char reason[KR_ERROR_MSG_MAX]; /* for status and events; "" on a plain pass */
};

/*
 * The decision for one measurement taken after a rollout. Pure: reads `in`, writes the
 * next state to `out` (which may be `in`) and the verdict to `d`.
 *   value > baseline + threshold  -> a failure; failureLimit in a row -> ROLLBACK
 *   inconclusive                  -> an error;  errorLimit in a row   -> ROLLBACK
 *   otherwise                     -> PASS
 * A pass clears both runs. A failure is conclusive, so it clears the run of errors; an
 * inconclusive result decides nothing, so it leaves the run of failures as it was.
 * Without a baseline the baseline is 0.
 */
void kr_analysis_gate(const struct kr_analysis_limits *lim, const struct kr_analysis_state *in,
		      const struct kr_measurement *m, struct kr_analysis_state *out,
		      struct kr_gate_decision *d);

/*
 * The pre-rotation baseline (taken before step 2). A value becomes the baseline: PASS.
 * Inconclusive counts against errorLimit like any other: INCONCLUSIVE, then ROLLBACK,
 * which here means "do not start". Pure, like kr_analysis_gate.
 */
void kr_analysis_gate_baseline(const struct kr_analysis_limits *lim,
			       const struct kr_analysis_state *in, const struct kr_measurement *m,
			       struct kr_analysis_state *out, struct kr_gate_decision *d);

/*
 * 1 when a stage whose rollout completed at `rollout_done_at` may move on at `now`: at
 * least `interval` seconds have passed, the last measurement was taken after the
 * rollout completed, and it passed.
 */
int kr_analysis_stage_passed(const struct kr_analysis_state *s, double rollout_done_at, double now,
			     double interval);

/* ---- HTTP (fetch.c) --------------------------------------------------------------- */

struct kr_egress;

/* How to reach a server. Everything borrowed for the duration of one call. */
struct kr_analysis_http_opts {
	long timeout_ms;    /* whole request, connect included; 0: 10 s */
	const char *ca_pem; /* CA bundle (caSecretRef) as PEM; NULL: the system bundle */
	size_t ca_pem_len;
	const struct kr_secret *bearer_token; /* Authorization: Bearer; may be NULL */
	const char *basic_user;		      /* with basic_password: Basic auth */
	const struct kr_secret *basic_password;
	size_t max_body; /* query answer cap; 0: KR_PROMJSON_MAX_BYTES (64 KiB) */
	const struct kr_promtext_limits *scrape_limits; /* NULL: the KR_PROMTEXT_MAX_* */
	/*
	 * --allowed-endpoints (egress/egress.h); NULL: no list, so anything but link-local
	 * and cloud metadata addresses. Checked before the request (host) and for every
	 * address connected to; redirects are not followed and no proxy is used.
	 */
	const struct kr_egress *egress;
};

/*
 * An instant query (GET <url>/api/v1/query?query=...&timeout=...). KR_OK with m->ok
 * when one finite value came back; m->at is then the local clock at the response, on
 * success and failure alike. Otherwise the status (KR_EIO unreachable, KR_ETIMEOUT,
 * KR_EAUTH 401/403 or refused by opts->egress (kr_egress_refused tells which; nothing was
 * sent then), KR_EHTTP (an error status or a redirect), KR_ENOTFOUND empty, KR_EPROTO,
 * KR_ETOOBIG "answer larger than 64 KiB" (refused as it is read, or from its
 * Content-Length), KR_ENOMEM) with m->reason set and `err` a copy of it; the message names the
 * server without credentials: "prometheus http://x:9090: query returned 2 series, want 1:
 * aggregate with sum()". `err` may be NULL.
 */
enum kr_status kr_analysis_query_prometheus(const char *url, const char *query,
					    const struct kr_analysis_http_opts *opts,
					    struct kr_measurement *m, struct kr_error *err);

/*
 * GET `url` (a /metrics endpoint), parse it as it streams in, and collect the series
 * named `metric` that carry every label in `labels` into `snap` (init'ed by the caller,
 * emptied first), with snap->at the time of the response. Nothing but the current line
 * and the matching series is held, so a target exposing a million series costs little.
 * Errors as above, named "scrape http://x:8080/metrics: ...", plus KR_ETOOBIG for the
 * opts->scrape_limits caps ("exposition larger than 16 MiB") and KR_COUNTER_MAX_SERIES,
 * and those of kr_counter_snapshot_finish. Both calls end by opts->timeout_ms, however
 * slowly the server sends.
 */
enum kr_status kr_analysis_scrape(const char *url, const struct kr_analysis_http_opts *opts,
				  const char *metric, const struct kr_prom_label *labels,
				  size_t nlabels, struct kr_counter_snapshot *snap,
				  struct kr_error *err);

/*
 * spec.verify: GET `url` with the header "`header`: <key>" and report the HTTP status in
 * *http_status (the body is discarded). KR_OK when a response came back, whatever its
 * status (a redirect is not followed: its 3xx is the status); KR_EIO / KR_ETIMEOUT (message
 * names the redacted URL, never the key) when not; KR_EAUTH when opts->egress refused the
 * URL or the address (kr_egress_refused), before the key was sent.
 * The header line is built and released in wiped memory.
 */
enum kr_status kr_analysis_verify_key(const char *url, const char *header,
				      const struct kr_secret *key,
				      const struct kr_analysis_http_opts *opts, long *http_status,
				      struct kr_error *err);

/*
 * `url` as it may appear in a message: userinfo (user:password@), query and fragment
 * removed. Writes at most `size` bytes, always NUL-terminated.
 */
void kr_analysis_redact_url(const char *url, char *out, size_t size);

#endif
