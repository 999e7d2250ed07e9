/* gate.c - the pure decision over analysis measurements: pass, fail, inconclusive, roll back. */
#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"

const char *kr_gate_verdict_name(enum kr_gate_verdict v)
{
	switch (v) {
	case KR_GATE_PASS:
		return "Pass";
	case KR_GATE_FAIL:
		return "Fail";
	case KR_GATE_INCONCLUSIVE:
		return "Inconclusive";
	case KR_GATE_ROLLBACK:
		return "Rollback";
	}
	return "Unknown";
}

static int gate_limit(int limit)
{
	return limit < 1 ? 1 : limit;
}

/* An inconclusive measurement: one more error in a row; the run of failures stands. */
static void gate_error(const struct kr_analysis_limits *lim, struct kr_analysis_state *s,
		       const struct kr_measurement *m, struct kr_gate_decision *d)
{
	int limit = gate_limit(lim->error_limit);

	s->consecutive_errors++;
	if (s->consecutive_errors >= limit) {
		d->verdict = KR_GATE_ROLLBACK;
		snprintf(d->reason, sizeof(d->reason),
			 "analysis inconclusive %d times in a row (errorLimit %d): %.400s",
			 s->consecutive_errors, limit, m->reason.msg);
	} else {
		d->verdict = KR_GATE_INCONCLUSIVE;
		snprintf(d->reason, sizeof(d->reason), "analysis inconclusive (%d of %d): %.400s",
			 s->consecutive_errors, limit, m->reason.msg);
	}
}

static void gate_value(const struct kr_analysis_limits *lim, struct kr_analysis_state *s,
		       const struct kr_measurement *m, struct kr_gate_decision *d)
{
	double baseline = s->has_baseline ? s->baseline : 0, bound = baseline + lim->threshold;
	int limit = gate_limit(lim->failure_limit);

	s->has_last = 1;
	s->last_value = m->value;
	s->consecutive_errors = 0;
	if (!(m->value > bound)) {
		s->consecutive_failures = 0;
		d->verdict = KR_GATE_PASS;
		return;
	}
	s->consecutive_failures++;
	d->verdict = s->consecutive_failures >= limit ? KR_GATE_ROLLBACK : KR_GATE_FAIL;
	snprintf(d->reason, sizeof(d->reason),
		 "401 rate %g/s is above baseline %g/s + threshold %g/s (%d of %d in a row%s)",
		 m->value, baseline, lim->threshold, s->consecutive_failures, limit,
		 d->verdict == KR_GATE_ROLLBACK ? ": failureLimit reached" : "");
}

void kr_analysis_gate(const struct kr_analysis_limits *lim, const struct kr_analysis_state *in,
		      const struct kr_measurement *m, struct kr_analysis_state *out,
		      struct kr_gate_decision *d)
{
	struct kr_analysis_state s = *in;

	memset(d, 0, sizeof(*d));
	s.last_at = m->at;
	if (m->ok)
		gate_value(lim, &s, m, d);
	else
		gate_error(lim, &s, m, d);
	s.last_verdict = d->verdict;
	*out = s;
}

void kr_analysis_gate_baseline(const struct kr_analysis_limits *lim,
			       const struct kr_analysis_state *in, const struct kr_measurement *m,
			       struct kr_analysis_state *out, struct kr_gate_decision *d)
{
	struct kr_analysis_state s = *in;

	memset(d, 0, sizeof(*d));
	s.last_at = m->at;
	if (m->ok) {
		s.has_baseline = 1;
		s.baseline = m->value;
		s.has_last = 1;
		s.last_value = m->value;
		s.consecutive_errors = 0;
		s.consecutive_failures = 0;
		d->verdict = KR_GATE_PASS;
		snprintf(d->reason, sizeof(d->reason), "baseline 401 rate %g/s", m->value);
	} else {
		gate_error(lim, &s, m, d);
	}
	s.last_verdict = d->verdict;
	*out = s;
}

int kr_analysis_stage_passed(const struct kr_analysis_state *s, double rollout_done_at, double now,
			     double interval)
{
	return now - rollout_done_at >= interval && s->last_at >= rollout_done_at &&
	       s->last_verdict == KR_GATE_PASS;
}
