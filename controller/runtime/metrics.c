/* metrics.c - a small thread-safe Prometheus registry rendered in text format 0.0.4. */
#include "runtime/metrics.h"

#include "base/clock.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One label combination. Histogram buckets are per-bucket counts, made cumulative on output. */
struct kr_series {
	char *values[KR_METRIC_MAX_LABELS];
	double value;	  /* counter, gauge; a growing gauge's value at `since_ms` */
	int64_t since_ms; /* a growing gauge: when `value` was set (registry clock); else 0 */
	bool growing;
	double sum; /* histogram */
	uint64_t count;
	uint64_t buckets[]; /* nbounds entries; the +Inf bucket is `count` */
};

struct kr_metric {
	struct kr_metrics *reg;
	enum kr_metric_type type;
	char *name;
	char *help;
	size_t nlabels;
	char *labels[KR_METRIC_MAX_LABELS];
	double *bounds;
	size_t nbounds;
	struct kr_series **series; /* sorted by label values */
	size_t nseries;
	size_t cap;
};

/* One lock for everything: updates are a few instructions and scrapes are rare. */
struct kr_metrics {
	pthread_mutex_t lock;
	struct kr_metric **families; /* sorted by name */
	size_t n;
	size_t cap;
	int64_t (*now_ms)(void *arg); /* growing gauges' clock; NULL: kr_mono_ms */
	void *now_arg;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct kr_metrics *kr_metrics_new(void)
{
	struct kr_metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

void kr_metrics_set_clock(struct kr_metrics *m, int64_t (*now_ms)(void *arg), void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->now_ms = now_ms;
	m->now_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

/* The registry's clock (lock held). */
static int64_t registry_now_ms(const struct kr_metrics *m)
{
	return m->now_ms ? m->now_ms(m->now_arg) : kr_mono_ms();
}

/* What a counter or gauge series reads at `now_ms`: a growing gauge adds its whole seconds. */
static double series_value(const struct kr_series *s, int64_t now_ms)
{
	if (!s->growing || now_ms <= s->since_ms)
		return s->value;
	return s->value + (double)((now_ms - s->since_ms) / 1000);
}

static void series_free(struct kr_series *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < KR_METRIC_MAX_LABELS; i++)
		free(s->values[i]);
	free(s);
}

static void family_free(struct kr_metric *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->nseries; i++)
		series_free(f->series[i]);
	free(f->series);
	for (size_t i = 0; i < KR_METRIC_MAX_LABELS; i++)
		free(f->labels[i]);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

void kr_metrics_free(struct kr_metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		family_free(m->families[i]);
	free(m->families);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* ---- series lookup (lock held) ---- */

static int series_cmp(const struct kr_metric *f, const struct kr_series *s,
		      const char *const *values)
{
	for (size_t i = 0; i < f->nlabels; i++) {
		int c = strcmp(s->values[i], values[i]);

		if (c != 0)
			return c;
	}
	return 0;
}

/* Index of the series equal to `values`, or where it would be inserted; *found says which. */
static size_t series_search(const struct kr_metric *f, const char *const *values, int *found)
{
	size_t lo = 0, hi = f->nseries;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = series_cmp(f, f->series[mid], values);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct kr_series *series_new(const struct kr_metric *f, const char *const *values)
{
	struct kr_series *s = calloc(1, sizeof(*s) + f->nbounds * sizeof(s->buckets[0]));

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < f->nlabels; i++) {
		s->values[i] = strdup(values[i]);
		if (s->values[i] == NULL) {
			series_free(s);
			return NULL;
		}
	}
	return s;
}

static enum kr_status series_get(struct kr_metric *f, const char *const *values,
				 struct kr_series **out)
{
	int found;
	size_t at = series_search(f, values, &found);
	struct kr_series *s;

	if (found) {
		*out = f->series[at];
		return KR_OK;
	}
	if (f->nseries >= KR_METRICS_MAX_SERIES)
		return KR_ETOOBIG;
	if (f->nseries == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct kr_series **grown = realloc(f->series, cap * sizeof(*grown));

		if (grown == NULL)
			return KR_ENOMEM;
		f->series = grown;
		f->cap = cap;
	}
	s = series_new(f, values);
	if (s == NULL)
		return KR_ENOMEM;
	memmove(&f->series[at + 1], &f->series[at], (f->nseries - at) * sizeof(f->series[0]));
	f->series[at] = s;
	f->nseries++;
	*out = s;
	return KR_OK;
}

static void series_remove_at(struct kr_metric *f, size_t at)
{
	series_free(f->series[at]);
	memmove(&f->series[at], &f->series[at + 1], (f->nseries - at - 1) * sizeof(f->series[0]));
	f->nseries--;
}

/* ---- registration ---- */

static int valid_name(const char *s, int colon_ok)
{
	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s != '\0'; s++) {
		int ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			 (*s >= '0' && *s <= '9') || *s == '_' || (colon_ok && *s == ':');

		if (!ok)
			return 0;
	}
	return 1;
}

static enum kr_status check_desc(const struct kr_metric_desc *d, size_t *nlabels,
				 struct kr_error *err)
{
	size_t n = 0;

	if (!valid_name(d->name, 1))
		return kr_error_set(err, KR_EINVAL, "metric name \"%s\" is not a valid name",
				    d->name ? d->name : "(null)");
	if ((unsigned)d->type > KR_METRIC_HISTOGRAM)
		return kr_error_set(err, KR_EINVAL, "metric %s: unknown type", d->name);
	while (n < KR_METRIC_MAX_LABELS && d->labels[n] != NULL) {
		const char *l = d->labels[n];

		if (!valid_name(l, 0) || strncmp(l, "__", 2) == 0)
			return kr_error_set(err, KR_EINVAL, "metric %s: label \"%s\" is not valid",
					    d->name, l);
		if (d->type == KR_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
			return kr_error_set(err, KR_EINVAL, "metric %s: histograms reserve \"le\"",
					    d->name);
		for (size_t j = 0; j < n; j++)
			if (strcmp(d->labels[j], l) == 0)
				return kr_error_set(err, KR_EINVAL, "metric %s: label %s twice",
						    d->name, l);
		n++;
	}
	for (size_t i = n; i < KR_METRIC_MAX_LABELS; i++)
		if (d->labels[i] != NULL)
			return kr_error_set(err, KR_EINVAL, "metric %s: label after a NULL slot",
					    d->name);
	if (d->type == KR_METRIC_HISTOGRAM && (d->nbuckets == 0 || d->buckets == NULL))
		return kr_error_set(err, KR_EINVAL, "metric %s: histogram needs buckets", d->name);
	for (size_t i = 0; d->type == KR_METRIC_HISTOGRAM && i < d->nbuckets; i++)
		if (!isfinite(d->buckets[i]) || (i > 0 && d->buckets[i] <= d->buckets[i - 1]))
			return kr_error_set(err, KR_EINVAL,
					    "metric %s: buckets must be finite and increasing",
					    d->name);
	*nlabels = n;
	return KR_OK;
}

static struct kr_metric *family_new(const struct kr_metric_desc *d, size_t nlabels)
{
	struct kr_metric *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->type = d->type;
	f->nlabels = nlabels;
	f->name = strdup(d->name);
	f->help = strdup(d->help ? d->help : "");
	if (f->name == NULL || f->help == NULL)
		goto fail;
	for (size_t i = 0; i < nlabels; i++) {
		f->labels[i] = strdup(d->labels[i]);
		if (f->labels[i] == NULL)
			goto fail;
	}
	if (d->type == KR_METRIC_HISTOGRAM) {
		f->bounds = malloc(d->nbuckets * sizeof(*f->bounds));
		if (f->bounds == NULL)
			goto fail;
		memcpy(f->bounds, d->buckets, d->nbuckets * sizeof(*f->bounds));
		f->nbounds = d->nbuckets;
	}
	return f;
fail:
	family_free(f);
	return NULL;
}

/* Insert `f` in name order; KR_EEXIST when the name is taken. Lock held. */
static enum kr_status registry_insert(struct kr_metrics *m, struct kr_metric *f)
{
	size_t at = 0;

	while (at < m->n && strcmp(m->families[at]->name, f->name) < 0)
		at++;
	if (at < m->n && strcmp(m->families[at]->name, f->name) == 0)
		return KR_EEXIST;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct kr_metric **grown = realloc(m->families, cap * sizeof(*grown));

		if (grown == NULL)
			return KR_ENOMEM;
		m->families = grown;
		m->cap = cap;
	}
	memmove(&m->families[at + 1], &m->families[at], (m->n - at) * sizeof(m->families[0]));
	m->families[at] = f;
	m->n++;
	return KR_OK;
}

enum kr_status kr_metrics_register(struct kr_metrics *m, const struct kr_metric_desc *d,
				   struct kr_metric **out, struct kr_error *err)
{
	struct kr_metric *f = NULL;
	struct kr_series *s;
	size_t nlabels = 0;
	enum kr_status rc;

	rc = check_desc(d, &nlabels, err);
	if (rc != KR_OK)
		return rc;
	f = family_new(d, nlabels);
	if (f == NULL)
		return kr_error_set(err, KR_ENOMEM, "metric %s: out of memory", d->name);
	f->reg = m;
	/* A label-less family has its one series from the start, so it renders as 0. */
	if (nlabels == 0) {
		rc = series_get(f, NULL, &s);
		if (rc != KR_OK) {
			family_free(f);
			return kr_error_set(err, rc, "metric %s: out of memory", d->name);
		}
	}
	pthread_mutex_lock(&m->lock);
	rc = registry_insert(m, f);
	pthread_mutex_unlock(&m->lock);
	if (rc != KR_OK) {
		family_free(f);
		return kr_error_set(err, rc, "metric %s: %s", d->name,
				    rc == KR_EEXIST ? "already registered" : "out of memory");
	}
	*out = f;
	return KR_OK;
}

/* ---- updates ---- */

enum update_op { OP_ADD, OP_SET, OP_SET_GROWING, OP_OBSERVE };

static void check_values(const struct kr_metric *f, const char *const *values)
{
	if (f == NULL)
		KR_BUG("metric call on a NULL family");
	if (f->nlabels == 0 && values != NULL)
		KR_BUG("metric %s has no labels but got label values", f->name);
	for (size_t i = 0; i < f->nlabels; i++)
		if (values == NULL || values[i] == NULL)
			KR_BUG("metric %s needs %zu label values", f->name, f->nlabels);
}

static void check_call(const struct kr_metric *f, enum kr_metric_type want,
		       const char *const *values)
{
	check_values(f, values);
	if (f->type != want)
		KR_BUG("metric %s is a %s, not a %s", f->name, type_names[f->type],
		       type_names[want]);
}

static void observe(const struct kr_metric *f, struct kr_series *s, double v)
{
	for (size_t i = 0; i < f->nbounds; i++) {
		if (v <= f->bounds[i]) {
			s->buckets[i]++;
			break;
		}
	}
	s->count++;
	s->sum += v;
}

static enum kr_status update(struct kr_metric *f, enum kr_metric_type want,
			     const char *const *values, enum update_op op, double v)
{
	struct kr_series *s;
	enum kr_status rc;

	check_call(f, want, values);
	if (isnan(v) || (want == KR_METRIC_COUNTER && v < 0))
		return KR_EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	rc = series_get(f, values, &s);
	if (rc == KR_OK) {
		if (op == OP_ADD) {
			s->value += v;
		} else if (op == OP_SET || op == OP_SET_GROWING) {
			s->value = v;
			s->growing = op == OP_SET_GROWING;
			s->since_ms = s->growing ? registry_now_ms(f->reg) : 0;
		} else {
			observe(f, s, v);
		}
	}
	pthread_mutex_unlock(&f->reg->lock);
	return rc;
}

enum kr_status kr_counter_inc(struct kr_metric *f, const char *const *values)
{
	return update(f, KR_METRIC_COUNTER, values, OP_ADD, 1);
}

enum kr_status kr_counter_add(struct kr_metric *f, const char *const *values, double v)
{
	return update(f, KR_METRIC_COUNTER, values, OP_ADD, v);
}

enum kr_status kr_gauge_set(struct kr_metric *f, const char *const *values, double v)
{
	return update(f, KR_METRIC_GAUGE, values, OP_SET, v);
}

enum kr_status kr_gauge_set_growing(struct kr_metric *f, const char *const *values, double v)
{
	return update(f, KR_METRIC_GAUGE, values, OP_SET_GROWING, v);
}

enum kr_status kr_gauge_add(struct kr_metric *f, const char *const *values, double v)
{
	return update(f, KR_METRIC_GAUGE, values, OP_ADD, v);
}

enum kr_status kr_gauge_inc(struct kr_metric *f, const char *const *values)
{
	return update(f, KR_METRIC_GAUGE, values, OP_ADD, 1);
}

enum kr_status kr_gauge_dec(struct kr_metric *f, const char *const *values)
{
	return update(f, KR_METRIC_GAUGE, values, OP_ADD, -1);
}

enum kr_status kr_histogram_observe(struct kr_metric *f, const char *const *values, double v)
{
	return update(f, KR_METRIC_HISTOGRAM, values, OP_OBSERVE, v);
}

enum kr_status kr_metric_get(struct kr_metric *f, const char *const *values, double *value,
			     double *sum)
{
	enum kr_status rc = KR_ENOTFOUND;
	int found;
	size_t at;

	check_values(f, values);
	pthread_mutex_lock(&f->reg->lock);
	at = series_search(f, values, &found);
	if (found) {
		const struct kr_series *s = f->series[at];

		*value = f->type == KR_METRIC_HISTOGRAM ? (double)s->count
							: series_value(s, registry_now_ms(f->reg));
		if (sum != NULL)
			*sum = s->sum;
		rc = KR_OK;
	}
	pthread_mutex_unlock(&f->reg->lock);
	return rc;
}

enum kr_status kr_metric_delete(struct kr_metric *f, const char *const *values)
{
	enum kr_status rc = KR_ENOTFOUND;
	int found;
	size_t at;

	check_values(f, values);
	pthread_mutex_lock(&f->reg->lock);
	at = series_search(f, values, &found);
	if (found) {
		series_remove_at(f, at);
		rc = KR_OK;
	}
	pthread_mutex_unlock(&f->reg->lock);
	return rc;
}

static int label_index(const struct kr_metric *f, const char *label)
{
	for (size_t i = 0; i < f->nlabels; i++)
		if (strcmp(f->labels[i], label) == 0)
			return (int)i;
	return -1;
}

size_t kr_metrics_delete_object(struct kr_metrics *m, const char *namespace_, const char *name)
{
	size_t gone = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++) {
		struct kr_metric *f = m->families[i];
		int ns = label_index(f, "namespace"), nm = label_index(f, "name");

		if (ns < 0 || nm < 0)
			continue;
		for (size_t j = f->nseries; j-- > 0;) {
			const struct kr_series *s = f->series[j];

			if (strcmp(s->values[ns], namespace_) == 0 &&
			    strcmp(s->values[nm], name) == 0) {
				series_remove_at(f, j);
				gone++;
			}
		}
	}
	pthread_mutex_unlock(&m->lock);
	return gone;
}

/* ---- rendering (lock held) ---- */

/* Shortest text that parses back to the same double; Go/Prometheus spellings of specials. */
static void format_double(char out[40], double v)
{
	if (isnan(v)) {
		strcpy(out, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers as digits (3600, not 3.6e+03) while exact in a double. */
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, 40, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, 40, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* `quote`: also escape '"' (label values); HELP text escapes only '\\' and newline. */
static enum kr_status add_escaped(struct kr_buf *b, const char *s, int quote)
{
	enum kr_status rc = KR_OK;

	while (*s != '\0' && rc == KR_OK) {
		/* Runs without anything to escape go in at once (a scrape of 10,000
		 * KeyRotations is mostly label values). */
		size_t run = strcspn(s, quote ? "\\\n\"" : "\\\n");

		if (run) {
			rc = kr_buf_add(b, s, run);
			s += run;
			continue;
		}
		if (*s == '\\')
			rc = kr_buf_adds(b, "\\\\");
		else if (*s == '\n')
			rc = kr_buf_adds(b, "\\n");
		else
			rc = kr_buf_adds(b, "\\\"");
		s++;
	}
	return rc;
}

/* `{a="x",b="y"}` with an optional trailing le="..."; nothing at all when empty. */
static enum kr_status add_labels(struct kr_buf *b, const struct kr_metric *f,
				 const struct kr_series *s, const char *le)
{
	enum kr_status rc = KR_OK;

	if (f->nlabels == 0 && le == NULL)
		return KR_OK;
	rc = kr_buf_addch(b, '{');
	for (size_t i = 0; i < f->nlabels && rc == KR_OK; i++) {
		rc = kr_buf_addf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (rc == KR_OK)
			rc = add_escaped(b, s->values[i], 1);
		if (rc == KR_OK)
			rc = kr_buf_addch(b, '"');
	}
	if (rc == KR_OK && le != NULL)
		rc = kr_buf_addf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	if (rc == KR_OK)
		rc = kr_buf_addch(b, '}');
	return rc;
}

static enum kr_status add_sample(struct kr_buf *b, const struct kr_metric *f,
				 const struct kr_series *s, const char *suffix, const char *le,
				 const char *value)
{
	enum kr_status rc;

	rc = kr_buf_addf(b, "%s%s", f->name, suffix);
	if (rc == KR_OK)
		rc = add_labels(b, f, s, le);
	if (rc == KR_OK)
		rc = kr_buf_addf(b, " %s\n", value);
	return rc;
}

static enum kr_status render_histogram(struct kr_buf *b, const struct kr_metric *f,
				       const struct kr_series *s)
{
	enum kr_status rc = KR_OK;
	uint64_t cum = 0;
	char le[40], val[40];

	for (size_t i = 0; i < f->nbounds && rc == KR_OK; i++) {
		cum += s->buckets[i];
		format_double(le, f->bounds[i]);
		snprintf(val, sizeof(val), "%" PRIu64, cum);
		rc = add_sample(b, f, s, "_bucket", le, val);
	}
	snprintf(val, sizeof(val), "%" PRIu64, s->count);
	if (rc == KR_OK)
		rc = add_sample(b, f, s, "_bucket", "+Inf", val);
	format_double(le, s->sum);
	if (rc == KR_OK)
		rc = add_sample(b, f, s, "_sum", NULL, le);
	if (rc == KR_OK)
		rc = add_sample(b, f, s, "_count", NULL, val);
	return rc;
}

static enum kr_status render_family(struct kr_buf *b, const struct kr_metric *f, int64_t now_ms)
{
	enum kr_status rc;
	char val[40];

	rc = kr_buf_addf(b, "# HELP %s ", f->name);
	if (rc == KR_OK)
		rc = add_escaped(b, f->help, 0);
	if (rc == KR_OK)
		rc = kr_buf_addf(b, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	for (size_t i = 0; i < f->nseries && rc == KR_OK; i++) {
		const struct kr_series *s = f->series[i];

		if (f->type == KR_METRIC_HISTOGRAM) {
			rc = render_histogram(b, f, s);
		} else {
			format_double(val, series_value(s, now_ms));
			rc = add_sample(b, f, s, "", NULL, val);
		}
	}
	return rc;
}

static bool named(const char *name, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return n == 0;
}

enum kr_status kr_metrics_render_only(struct kr_metrics *m, const char *const *names, size_t n,
				      struct kr_buf *out)
{
	enum kr_status rc = KR_OK;
	int64_t now_ms;

	pthread_mutex_lock(&m->lock);
	now_ms = registry_now_ms(m); /* one instant for the whole scrape */
	for (size_t i = 0; i < m->n && rc == KR_OK; i++)
		if (m->families[i]->nseries > 0 && named(m->families[i]->name, names, n))
			rc = render_family(out, m->families[i], now_ms);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

enum kr_status kr_metrics_render(struct kr_metrics *m, struct kr_buf *out)
{
	return kr_metrics_render_only(m, NULL, 0, out);
}

/* ---- keyrotator's families ---- */

/* clang-format off */
static const double reconcile_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					   0.5,	  1,	2.5,   5,    10};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum kr_status kr_metrics_register_table(struct kr_metrics *m, const char *prefix,
					 const struct kr_metric_row *rows, size_t n,
					 struct kr_error *err)
{
	for (size_t i = 0; i < n; i++) {
		struct kr_metric_desc d = rows[i].desc;
		char name[256];
		enum kr_status rc;

		snprintf(name, sizeof(name), "%s%s%s", prefix ? prefix : "",
			 prefix && prefix[0] ? "_" : "", d.name);
		d.name = name;
		rc = kr_metrics_register(m, &d, rows[i].slot, err);
		if (rc != KR_OK)
			return rc;
		for (const char *const *v = rows[i].zero_values; v && *v; v++)
			if ((rc = kr_counter_add(*rows[i].slot, KR_LV(*v), 0)) != KR_OK)
				return kr_error_set(err, rc, "metric %s: %s", name,
						    kr_strerror(rc));
	}
	return KR_OK;
}

enum kr_status kr_metrics_register_runtime(struct kr_metrics *m, const char *prefix,
					   const char *version, struct kr_runtime_metrics *out,
					   struct kr_error *err)
{
	static const char *const results[] = KR_RECONCILE_RESULTS;
	static const char *const results0[] = {results[0], results[1], results[2], NULL};
	/* clang-format off */
	const struct kr_metric_row rows[] = {
		{{KR_METRIC_COUNTER, "reconcile_total",
		  "Reconciles, by result (success, error, requeue).", {"result"}, NULL, 0},
		 &out->reconcile_total, results0},
		{{KR_METRIC_HISTOGRAM, "reconcile_duration_seconds", "Time spent in one reconcile.",
		  {NULL}, reconcile_buckets, ARRAY_LEN(reconcile_buckets)},
		 &out->reconcile_duration_seconds, NULL},
		{{KR_METRIC_GAUGE, "workqueue_depth", "Items waiting in the work queue.", {NULL},
		  NULL, 0}, &out->workqueue_depth, NULL},
		{{KR_METRIC_COUNTER, "workqueue_adds_total", "Items added to the work queue.",
		  {NULL}, NULL, 0}, &out->workqueue_adds_total, NULL},
		{{KR_METRIC_COUNTER, "workqueue_retries_total",
		  "Items re-added to the work queue after a failure, with backoff.", {NULL}, NULL,
		  0}, &out->workqueue_retries_total, NULL},
		{{KR_METRIC_GAUGE, "leader", "1 while this replica holds the leader lease, else 0.",
		  {NULL}, NULL, 0}, &out->leader, NULL},
		{{KR_METRIC_GAUGE, "build_info",
		  "Always 1; the version label says which build is running.", {"version"}, NULL,
		  0}, &out->build_info, NULL},
		{{KR_METRIC_COUNTER, "events_dropped_total",
		  "Events not sent: the queue to the API server was full.", {NULL}, NULL, 0},
		 &out->events_dropped_total, NULL},
	};
	/* clang-format on */
	enum kr_status rc = kr_metrics_register_table(m, prefix, rows, ARRAY_LEN(rows), err);

	if (rc != KR_OK)
		return rc;
	/* The counters without labels are series from the start, too. */
	kr_counter_add(out->workqueue_adds_total, NULL, 0);
	kr_counter_add(out->workqueue_retries_total, NULL, 0);
	kr_counter_add(out->events_dropped_total, NULL, 0);
	rc = kr_gauge_set(out->build_info, KR_LV(version ? version : "unknown"), 1);
	if (rc != KR_OK)
		return kr_error_set(err, rc, "metric build_info: %s", kr_strerror(rc));
	return KR_OK;
}
