/* rate.c - counter series matched in a scrape, and the per-second rate between two scrapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

void kr_counter_snapshot_init(struct kr_counter_snapshot *s)
{
	memset(s, 0, sizeof(*s));
}

void kr_counter_snapshot_release(struct kr_counter_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->series[i].key);
	free(s->series);
	kr_counter_snapshot_init(s);
}

static int rate_label_cmp(const void *a, const void *b)
{
	const struct kr_prom_label *x = *(const struct kr_prom_label *const *)a;
	const struct kr_prom_label *y = *(const struct kr_prom_label *const *)b;

	return strcmp(x->name, y->name);
}

/* name="value" pairs sorted by name, values escaped as in the exposition format. */
static enum kr_status rate_key(const struct kr_prom_sample *smp, struct kr_buf *key)
{
	const struct kr_prom_label *sorted[64];
	const struct kr_prom_label **order = sorted;
	enum kr_status rc = KR_OK;

	if (smp->nlabels > sizeof(sorted) / sizeof(sorted[0])) {
		order = malloc(smp->nlabels * sizeof(*order));
		if (!order)
			return KR_ENOMEM;
	}
	for (size_t i = 0; i < smp->nlabels; i++)
		order[i] = &smp->labels[i];
	qsort(order, smp->nlabels, sizeof(*order), rate_label_cmp);
	for (size_t i = 0; i < smp->nlabels && rc == KR_OK; i++) {
		rc = kr_buf_addf(key, "%s%s=\"", i ? "," : "", order[i]->name);
		for (const char *v = order[i]->value; *v && rc == KR_OK; v++) {
			if (*v == '\n')
				rc = kr_buf_adds(key, "\\n");
			else if (*v == '"' || *v == '\\')
				rc = kr_buf_addf(key, "\\%c", *v);
			else
				rc = kr_buf_addch(key, *v);
		}
		if (rc == KR_OK)
			rc = kr_buf_addch(key, '"');
	}
	if (order != sorted)
		free(order);
	return rc;
}

static int rate_matches(const struct kr_counter_match *mt, const struct kr_prom_sample *smp)
{
	for (size_t i = 0; i < mt->nlabels; i++) {
		size_t k;

		for (k = 0; k < smp->nlabels; k++)
			if (strcmp(smp->labels[k].name, mt->labels[i].name) == 0)
				break;
		/* An absent label reads as "", as in PromQL selectors. */
		if (strcmp(k < smp->nlabels ? smp->labels[k].value : "", mt->labels[i].value) != 0)
			return 0;
	}
	return 1;
}

static enum kr_status rate_add(struct kr_counter_snapshot *s, char *key, double value)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct kr_counter_series *n = realloc(s->series, cap * sizeof(*n));

		if (!n)
			return KR_ENOMEM;
		s->series = n;
		s->cap = cap;
	}
	s->series[s->n].key = key;
	s->series[s->n].value = value;
	s->n++;
	s->sum += value;
	return KR_OK;
}

enum kr_status kr_counter_match_sample(void *arg, const struct kr_prom_sample *smp,
				       struct kr_error *err)
{
	struct kr_counter_match *mt = arg;
	struct kr_buf key;
	enum kr_status rc;
	char *owned;

	if (strcmp(smp->name, mt->metric) != 0)
		return KR_OK;
	if (!mt->snap->metric_seen++)
		mt->snap->type = smp->type;
	if (!rate_matches(mt, smp))
		return KR_OK;
	if (mt->snap->n >= KR_COUNTER_MAX_SERIES)
		return kr_error_set(err, KR_ETOOBIG,
				    "line %zu: more than %u series of %s match: add labels that "
				    "pick fewer",
				    smp->line, KR_COUNTER_MAX_SERIES, mt->metric);
	kr_buf_init(&key);
	rc = rate_key(smp, &key);
	owned = rc == KR_OK ? kr_buf_detach(&key, NULL) : NULL;
	kr_buf_release(&key);
	rc = owned ? rate_add(mt->snap, owned, smp->value) : KR_ENOMEM;
	if (rc != KR_OK) {
		free(owned);
		return kr_error_set(err, rc, "out of memory at line %zu", smp->line);
	}
	return KR_OK;
}

static int rate_series_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kr_counter_series *)a)->key,
		      ((const struct kr_counter_series *)b)->key);
}

enum kr_status kr_counter_snapshot_finish(struct kr_counter_snapshot *s, const char *metric,
					  struct kr_error *err)
{
	if (!s->metric_seen)
		return kr_error_set(err, KR_ENOTFOUND, "no series named %s", metric);
	if (s->type == KR_PROM_GAUGE)
		return kr_error_set(err, KR_EINVAL, "%s is a gauge, not a counter", metric);
	/* The series are not named: their label values are the scraped server's text. */
	for (size_t i = 0; i < s->n; i++) {
		double v = s->series[i].value;
		const char *what = isnan(v) ? "NaN" : v < 0 ? "negative" : "infinite";

		if (isnan(v) || isinf(v) || v < 0)
			return kr_error_set(err, KR_EPROTO,
					    "%s: a matching series is %s, not a counter value",
					    metric, what);
	}
	if (s->n > 1)
		qsort(s->series, s->n, sizeof(*s->series), rate_series_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->series[i - 1].key, s->series[i].key) == 0)
			return kr_error_set(err, KR_EPROTO,
					    "%s: two matching series have the same labels", metric);
	}
	return KR_OK;
}

enum kr_status kr_counter_snapshot_parse(struct kr_counter_snapshot *s, const char *text,
					 size_t len, const struct kr_counter_match *match,
					 double at, struct kr_error *err)
{
	struct kr_counter_match mt = *match;
	enum kr_status rc;

	mt.snap = s;
	s->at = at;
	rc = kr_promtext_parse(text, len, NULL, kr_counter_match_sample, &mt, err);
	if (rc != KR_OK)
		return rc;
	return kr_counter_snapshot_finish(s, match->metric, err);
}

static const struct kr_counter_series *rate_find(const struct kr_counter_snapshot *s,
						 const char *key)
{
	struct kr_counter_series probe = {.key = (char *)key};

	if (!s->n)
		return NULL;
	return bsearch(&probe, s->series, s->n, sizeof(*s->series), rate_series_cmp);
}

void kr_counter_rate(const struct kr_counter_snapshot *prev, const struct kr_counter_snapshot *cur,
		     struct kr_measurement *m)
{
	double dt = cur->at - prev->at, increase = 0;

	if (!(dt > 0)) {
		kr_measurement_set_inconclusive(m, KR_ESTATE,
						"no time between the two scrapes (%.3f s)", dt);
		return;
	}
	for (size_t i = 0; i < cur->n; i++) {
		const struct kr_counter_series *old = rate_find(prev, cur->series[i].key);
		double now = cur->series[i].value;

		if (old && now >= old->value)
			increase += now - old->value;
		else
			increase += now; /* reset, or a series born since the last scrape */
	}
	kr_measurement_set_value(m, increase / dt, cur->at);
}
