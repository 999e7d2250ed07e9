/*
 * measure.c - the 401 rate for the analysis gate, and spec.verify, fed back to the decision;
 * and the check of their URLs against --allowed-endpoints before any request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress.h"
#include "reconciler/internal.h"

#define MEASURE_REFUSAL_REASON "EndpointNotAllowed"

#define MEASURE_SECRET_MAX (1024 * 1024) /* base64 text of one Secret value (a CA bundle) */

/*
 * What one request authenticates with, read from the Secrets the spec names (same
 * namespace). Every buffer is a kr_secret: wiped when released.
 */
struct measure_creds {
	struct kr_secret *ca;
	struct kr_secret *token;
	struct kr_secret *password;
	struct kr_analysis_http_opts ho; /* borrows the buffers above */
};

/* Messages reach status and Events: control characters from anywhere become '?'. */
static void inconclusive(struct kr_world *w, const char *msg)
{
	w->obs.measurement.kind = KR_MEASUREMENT_INCONCLUSIVE;
	snprintf(w->obs.measurement.error, sizeof(w->obs.measurement.error), "%s", msg);
	kr_text_sanitize(w->obs.measurement.error);
}

/* The KeyRotation names an endpoint --allowed-endpoints does not allow: refuse it. */
static void refuse(struct kr_world *w, const char *field, const char *msg)
{
	kr_refuse(&w->obs, MEASURE_REFUSAL_REASON, "%s: %s", field, msg);
	kr_text_sanitize(w->obs.refusal);
}

static const char *analysis_url_field(const struct kr_analysis_spec *an)
{
	return an->source == KR_ANALYSIS_PROMETHEUS ? "spec.analysis.prometheus.url"
						    : "spec.analysis.scrape.url";
}

/* A request failed: a refusal by the egress limits refuses the KeyRotation too. */
static void measure_failed(struct kr_world *w, const char *field, const struct kr_error *e,
			   const char *msg)
{
	if (kr_egress_refused(e))
		refuse(w, field, e->msg);
	inconclusive(w, msg);
}

bool kr_world_check_endpoints(struct kr_world *w)
{
	const struct kr_egress *eg = w->r->o.egress;
	const struct kr_analysis_spec *an = &w->spec.analysis;
	struct kr_error e = {0};

	if (w->obs.refusal_reason[0])
		return false;
	if (!w->have_spec)
		return true;
	if (an->source != KR_ANALYSIS_NONE && an->url &&
	    kr_egress_check_url(eg, an->url, &e) != KR_OK)
		refuse(w, analysis_url_field(an), e.msg);
	else if (w->spec.verify_url && kr_egress_check_url(eg, w->spec.verify_url, &e) != KR_OK)
		refuse(w, "spec.verify.url", e.msg);
	return !w->obs.refusal_reason[0];
}

static long http_timeout(const struct kr_world *w)
{
	return w->r->o.http_timeout_ms > 0 ? w->r->o.http_timeout_ms : 10000;
}

/* The Secret value `ref` names (`field` is its spec path, for messages); see kr_world_secret_ref.
 */
static enum kr_status ref_read(struct kr_world *w, const char *field,
			       const struct kr_secret_key_ref *ref, struct kr_secret **out,
			       struct kr_error *err)
{
	return kr_world_secret_ref(w, field, ref->name, ref->key, MEASURE_SECRET_MAX, out, err);
}

/*
 * Can `n` bytes go into a header line as they are? Not empty, and no CR or LF (they would
 * end the line and let the value add a header of its own), and no NUL (curl copies the
 * line as a C string: the value would be cut short without a word).
 */
static bool header_value_ok(const char *d, size_t n)
{
	return n > 0 && !memchr(d, '\n', n) && !memchr(d, '\r', n) && !memchr(d, '\0', n);
}

/*
 * A token or password goes into a header line: a trailing newline (a Secret made from a
 * file) is dropped, and one inside is refused, so nothing can add a header of its own.
 */
static enum kr_status trim_line(struct kr_secret **s, const char *field, struct kr_error *err)
{
	const char *d = kr_secret_data(*s);
	size_t n = kr_secret_len(*s);
	struct kr_secret *t;

	while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == '\r'))
		n--;
	if (!header_value_ok(d, n))
		return kr_error_set(err, KR_EINVAL,
				    "%s: the value is empty, spans lines or holds a NUL byte",
				    field);
	if (n == kr_secret_len(*s))
		return KR_OK;
	t = kr_secret_new(d, n);
	if (!t)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	kr_secret_free(*s);
	*s = t;
	return KR_OK;
}

static void creds_release(struct measure_creds *c)
{
	kr_secret_free(c->ca);
	kr_secret_free(c->token);
	kr_secret_free(c->password);
	memset(c, 0, sizeof(*c));
}

/* The CA bundle for a request, as fetch.c takes it. */
static void creds_set_ca(struct measure_creds *c)
{
	if (c->ca) {
		c->ho.ca_pem = kr_secret_data(c->ca);
		c->ho.ca_pem_len = kr_secret_len(c->ca);
	}
}

/* spec.analysis's CA bundle and Prometheus login, read into `c` (zeroed by the caller). */
static enum kr_status creds_analysis(struct kr_world *w, struct measure_creds *c,
				     struct kr_error *err)
{
	const struct kr_analysis_spec *an = &w->spec.analysis;
	bool prom = an->source == KR_ANALYSIS_PROMETHEUS;
	enum kr_status rc;

	c->ho.timeout_ms = http_timeout(w);
	c->ho.egress = w->r->o.egress;
	rc = ref_read(
	    w, prom ? "spec.analysis.prometheus.caSecretRef" : "spec.analysis.scrape.caSecretRef",
	    &an->ca, &c->ca, err);
	if (rc == KR_OK && prom)
		rc = ref_read(w, "spec.analysis.prometheus.bearerTokenSecretRef", &an->bearer_token,
			      &c->token, err);
	if (rc == KR_OK && c->token)
		rc = trim_line(&c->token, "spec.analysis.prometheus.bearerTokenSecretRef", err);
	if (rc == KR_OK && prom && an->basic_username)
		rc = ref_read(w, "spec.analysis.prometheus.basicAuth.passwordSecretRef",
			      &an->basic_password, &c->password, err);
	if (rc == KR_OK && c->password)
		rc = trim_line(&c->password, "spec.analysis.prometheus.basicAuth.passwordSecretRef",
			       err);
	if (rc != KR_OK) {
		creds_release(c);
		return rc;
	}
	creds_set_ca(c);
	c->ho.bearer_token = c->token;
	if (c->password) {
		c->ho.basic_user = an->basic_username;
		c->ho.basic_password = c->password;
	}
	return KR_OK;
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
static bool measure_scrape(struct kr_world *w, const struct kr_analysis_http_opts *ho)
{
	const struct kr_analysis_spec *an = &w->spec.analysis;
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
	if (kr_analysis_scrape(an->url, ho, an->metric, labels, n, &cur, &e) != KR_OK) {
		measure_failed(w, analysis_url_field(an), &e, e.msg);
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
	struct kr_measurement m = {0};
	struct measure_creds c = {0};
	struct kr_error e = {0};
	bool taken = true;

	memset(&w->obs.measurement, 0, sizeof(w->obs.measurement));
	if (an->source != KR_ANALYSIS_PROMETHEUS && an->source != KR_ANALYSIS_SCRAPE) {
		inconclusive(w, "spec.analysis: no source");
		return true;
	}
	if (creds_analysis(w, &c, &e) != KR_OK) {
		inconclusive(w, e.msg);
		return true;
	}
	if (an->source == KR_ANALYSIS_SCRAPE) {
		taken = measure_scrape(w, &c.ho);
	} else if (kr_analysis_query_prometheus(an->url, an->query, &c.ho, &m, &e) == KR_OK &&
		   m.ok) {
		w->obs.measurement.kind = KR_MEASUREMENT_VALUE;
		w->obs.measurement.rate = m.value;
	} else {
		measure_failed(w, analysis_url_field(an), &e,
			       m.reason.msg[0] ? m.reason.msg : e.msg);
	}
	creds_release(&c);
	return taken;
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
	free(kr_smap_take(&r->known_rv, key));
	pthread_mutex_unlock(&r->lock);
}

static void verify_error(struct kr_world *w, const char *msg)
{
	w->obs.verify.result = KR_VERIFY_ERROR;
	snprintf(w->obs.verify.message, sizeof(w->obs.verify.message), "%s", msg);
	kr_text_sanitize(w->obs.verify.message);
}

void kr_world_verify(struct kr_world *w)
{
	const char *hdr = w->spec.verify_header ? w->spec.verify_header : "X-API-Key";
	long old_status = 0, new_status = 0;
	struct measure_creds c = {0};
	struct kr_error e = {0};

	memset(&w->obs.verify, 0, sizeof(w->obs.verify));
	if (!w->previous || !w->pending) {
		snprintf(e.msg, sizeof(e.msg),
			 "Secret %s lacks the old or the new key to verify with", w->rsecret_name);
		verify_error(w, e.msg);
		return;
	}
	/* Each key goes out as "<spec.verify.header>: <key>": one line, as a bearer token. */
	if (!header_value_ok(kr_secret_data(w->previous), kr_secret_len(w->previous)) ||
	    !header_value_ok(kr_secret_data(w->pending), kr_secret_len(w->pending))) {
		snprintf(e.msg, sizeof(e.msg),
			 "Secret %s: the old or the new key is empty, spans lines or holds a NUL "
			 "byte, so it cannot go in header %s",
			 w->rsecret_name, hdr);
		verify_error(w, e.msg);
		return;
	}
	c.ho.timeout_ms = http_timeout(w);
	c.ho.egress = w->r->o.egress;
	if (ref_read(w, "spec.verify.caSecretRef", &w->spec.verify_ca, &c.ca, &e) != KR_OK) {
		verify_error(w, e.msg);
		return;
	}
	creds_set_ca(&c);
	if (kr_analysis_verify_key(w->spec.verify_url, hdr, w->previous, &c.ho, &old_status, &e) !=
		KR_OK ||
	    kr_analysis_verify_key(w->spec.verify_url, hdr, w->pending, &c.ho, &new_status, &e) !=
		KR_OK) {
		creds_release(&c);
		if (kr_egress_refused(&e))
			refuse(w, "spec.verify.url", e.msg);
		verify_error(w, e.msg);
		return;
	}
	creds_release(&c);
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
