/* measure.c - the 401 rate for the analysis gate, and spec.verify, fed back to the decision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

static void inconclusive(struct kr_world *w, const char *msg)
{
	w->obs.measurement.kind = KR_MEASUREMENT_INCONCLUSIVE;
	snprintf(w->obs.measurement.error, sizeof(w->obs.measurement.error), "%s", msg);
}

static long http_timeout(const struct kr_world *w)
{
	return w->r->o.http_timeout_ms > 0 ? w->r->o.http_timeout_ms : 10000;
}

/* The memo of the last scrape for this KeyRotation; created empty. Under r->lock. */
static struct kr_scrape_memo *memo_get(struct kr_reconciler *r, const char *key)
{
	struct kr_scrape_memo *m;

	for (m = r->scrapes; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->key = strdup(key))) {
		free(m);
		return NULL;
	}
	kr_counter_snapshot_init(&m->snap);
	m->next = r->scrapes;
	r->scrapes = m;
	return m;
}

/*
 * A scrape gives a counter; the rate needs two. The first scrape of a KeyRotation (or one
 * older than 10 intervals) only primes the memo: no measurement yet, the decision asks
 * again after a second.
 */
static bool measure_scrape(struct kr_world *w)
{
	const struct kr_analysis_spec *an = &w->spec.analysis;
	struct kr_analysis_http_opts ho = {.timeout_ms = http_timeout(w)};
	struct kr_prom_label labels[32];
	struct kr_counter_snapshot cur;
	struct kr_measurement m = {0};
	struct kr_scrape_memo *memo;
	struct kr_error e = {0};
	char key[600];
	bool primed = false;
	size_t n = an->n_labels < 32 ? an->n_labels : 32;

	for (size_t i = 0; i < n; i++)
		labels[i] = (struct kr_prom_label){an->labels[i].name, an->labels[i].value};
	kr_counter_snapshot_init(&cur);
	if (kr_analysis_scrape(an->url, &ho, an->metric, labels, n, &cur, &e) != KR_OK) {
		inconclusive(w, e.msg);
		kr_counter_snapshot_release(&cur);
		return true;
	}
	snprintf(key, sizeof(key), "%s/%s", w->ns, w->name);
	pthread_mutex_lock(&w->r->lock);
	memo = memo_get(w->r, key);
	if (memo && memo->snap.at > 0 && cur.at > memo->snap.at &&
	    (cur.at - memo->snap.at) * 1000.0 < 10.0 * (double)an->interval_ms + 1000.0) {
		kr_counter_rate(&memo->snap, &cur, &m);
		primed = true;
	}
	if (memo) {
		kr_counter_snapshot_release(&memo->snap);
		memo->snap = cur;
	} else {
		kr_counter_snapshot_release(&cur);
	}
	pthread_mutex_unlock(&w->r->lock);
	if (!primed)
		return false;
	if (m.ok) {
		w->obs.measurement.kind = KR_MEASUREMENT_VALUE;
		w->obs.measurement.rate = m.value;
	} else {
		inconclusive(w, m.reason.msg);
	}
	return true;
}

bool kr_world_measure(struct kr_world *w)
{
	const struct kr_analysis_spec *an = &w->spec.analysis;
	struct kr_analysis_http_opts ho = {.timeout_ms = http_timeout(w)};
	struct kr_measurement m = {0};
	struct kr_error e = {0};

	memset(&w->obs.measurement, 0, sizeof(w->obs.measurement));
	if (an->source == KR_ANALYSIS_SCRAPE)
		return measure_scrape(w);
	if (an->source != KR_ANALYSIS_PROMETHEUS) {
		inconclusive(w, "spec.analysis: no source");
		return true;
	}
	if (kr_analysis_query_prometheus(an->url, an->query, &ho, &m, &e) == KR_OK && m.ok) {
		w->obs.measurement.kind = KR_MEASUREMENT_VALUE;
		w->obs.measurement.rate = m.value;
	} else {
		inconclusive(w, m.reason.msg[0] ? m.reason.msg : e.msg);
	}
	return true;
}

/* Forget the scrape memo of a KeyRotation (deleted, or its rotation ended). */
void kr_world_forget(struct kr_reconciler *r, const char *ns, const char *name)
{
	struct kr_scrape_memo **pp, *m;
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	pthread_mutex_lock(&r->lock);
	for (pp = &r->scrapes; (m = *pp); pp = &m->next)
		if (strcmp(m->key, key) == 0) {
			*pp = m->next;
			kr_counter_snapshot_release(&m->snap);
			free(m->key);
			free(m);
			break;
		}
	pthread_mutex_unlock(&r->lock);
}

void kr_world_verify(struct kr_world *w)
{
	struct kr_analysis_http_opts ho = {.timeout_ms = http_timeout(w)};
	const char *hdr = w->spec.verify_header ? w->spec.verify_header : "X-API-Key";
	long old_status = 0, new_status = 0;
	struct kr_error e = {0};

	memset(&w->obs.verify, 0, sizeof(w->obs.verify));
	if (!w->previous || !w->pending) {
		w->obs.verify.result = KR_VERIFY_ERROR;
		snprintf(w->obs.verify.message, sizeof(w->obs.verify.message),
			 "Secret %s lacks the old or the new key to verify with", w->rsecret_name);
		return;
	}
	if (kr_analysis_verify_key(w->spec.verify_url, hdr, w->previous, &ho, &old_status, &e) !=
		KR_OK ||
	    kr_analysis_verify_key(w->spec.verify_url, hdr, w->pending, &ho, &new_status, &e) !=
		KR_OK) {
		w->obs.verify.result = KR_VERIFY_ERROR;
		snprintf(w->obs.verify.message, sizeof(w->obs.verify.message), "%s", e.msg);
		return;
	}
	if (old_status >= 500 || new_status >= 500)
		w->obs.verify.result = KR_VERIFY_ERROR;
	else if ((old_status != 401 && old_status != 403) || new_status < 200 || new_status > 299)
		w->obs.verify.result = KR_VERIFY_FAILED;
	else
		w->obs.verify.result = KR_VERIFY_PASSED;
	snprintf(w->obs.verify.message, sizeof(w->obs.verify.message),
		 "%s: the old key got HTTP %ld (want 401), the new key HTTP %ld (want 2xx)",
		 w->obs.verify.result == KR_VERIFY_PASSED ? "verified" : "verify failed",
		 old_status, new_status);
}
