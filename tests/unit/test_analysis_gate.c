/* test_analysis_gate.c - the gate over sequences of measurements: limits, baseline, resets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

/*
 * A sequence is a list of steps "[b]<value|x><verdict>": "b" takes the step as the
 * pre-rotation baseline, "x" is an inconclusive result, the letter is the expected
 * verdict (P pass, F fail, I inconclusive, R rollback). E.g. "b0.1P 0.9F xI 0.9R".
 */
struct gate_case {
	const char *name;
	double threshold;
	int failure_limit, error_limit;
	const char *steps;
	int end_failures, end_errors;
};

static const struct gate_case gate_cases[] = {
    {"at the bound passes, above fails", 0.5, 2, 2, "b0.1P 0.6P 0.61F 0.1P 0.7F 0.7R", 2, 0},
    {"a pass clears the run of failures", 0.5, 2, 2, "b0P 0.9F 0.2P 0.9F 0.1P", 0, 0},
    {"errorLimit inconclusive in a row roll back", 0.5, 2, 3, "b0P xI xI 0.1P xI xI xR", 0, 3},
    {"an inconclusive result leaves the failure run as it was", 0.5, 2, 4, "b0P 0.9F xI 0.9R", 2,
     0},
    {"a failure is conclusive: it clears the error run", 0.5, 3, 2, "b0P xI 0.9F xI 0.1P xI xR", 0,
     2},
    {"failureLimit 1: the first failure rolls back", 0.5, 1, 1, "b0P 0.9R", 1, 0},
    {"limits below 1 count as 1", 0.5, 0, -3, "b0P xR", 0, 1},
    {"limits below 1 count as 1 (failures)", 0.5, 0, 0, "b0P 0.9R", 1, 0},
    {"no baseline: the bound is the threshold", 0.5, 2, 2, "0.5P 0.51F", 1, 0},
    {"threshold 0: any rise fails", 0, 3, 3, "b2P 2P 2.001F 1P", 0, 0},
    {"a high baseline raises the bound", 1, 2, 2, "b10P 11P 11.5F 11.5R", 2, 0},
    {"baseline inconclusive counts toward errorLimit", 0.5, 2, 2, "bxI bxR", 0, 2},
    {"baseline taken after an inconclusive try clears the errors", 0.5, 2, 2, "bxI b0.2P xI 0.3P",
     0, 0},
    {"long healthy run", 0.5, 2, 2, "b0P 0P 0.1P 0.2P 0.3P 0.4P 0.5P 0P", 0, 0},
};

static struct kr_measurement step_measurement(const char *tok, double at)
{
	struct kr_measurement m;

	memset(&m, 0, sizeof(m));
	if (tok[0] == 'x')
		kr_measurement_set_inconclusive(&m, KR_EIO, "prometheus http://p:9090: refused");
	else
		kr_measurement_set_value(&m, strtod(tok, NULL), at);
	m.at = at;
	return m;
}

static void test_gate_sequences(void **state)
{
	static const char letters[] = {'P', 'F', 'I', 'R'};

	(void)state;
	for (size_t i = 0; i < sizeof(gate_cases) / sizeof(gate_cases[0]); i++) {
		const struct gate_case *c = &gate_cases[i];
		struct kr_analysis_limits lim = {c->threshold, c->failure_limit, c->error_limit};
		struct kr_analysis_state st = {0};
		char buf[256], *save = NULL;
		double at = 1000;

		snprintf(buf, sizeof(buf), "%s", c->steps);
		for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int baseline = tok[0] == 'b';
			char want = tok[strlen(tok) - 1];
			struct kr_measurement m;
			struct kr_gate_decision d;

			tok[strlen(tok) - 1] = '\0';
			m = step_measurement(tok + baseline, at += 15);
			if (baseline)
				kr_analysis_gate_baseline(&lim, &st, &m, &st, &d);
			else
				kr_analysis_gate(&lim, &st, &m, &st, &d);
			if (letters[d.verdict] != want)
				fail_msg("%s: step %s: got %s (%s), want %c", c->name, tok,
					 kr_gate_verdict_name(d.verdict), d.reason, want);
			assert_int_equal(st.last_verdict, d.verdict);
			assert_true(st.last_at == at);
		}
		if (st.consecutive_failures != c->end_failures ||
		    st.consecutive_errors != c->end_errors)
			fail_msg("%s: ends with %d failures, %d errors; want %d, %d", c->name,
				 st.consecutive_failures, st.consecutive_errors, c->end_failures,
				 c->end_errors);
	}
}

/*
 * Every sequence of up to 7 outcomes (pass, fail, inconclusive) under every pair of
 * limits 1..3, against a model written the other way round: count back from the end.
 */
static int model_run(const int *seq, int n, int kind, int *stop_kinds)
{
	int run = 0;

	for (int k = n - 1; k >= 0; k--) {
		if (seq[k] == kind)
			run++;
		else if (stop_kinds[seq[k]])
			break;
	}
	return run;
}

static void test_gate_exhaustive(void **state)
{
	/* outcome 0 pass, 1 fail, 2 inconclusive */
	int fail_stops[3] = {1, 0, 0}, error_stops[3] = {1, 1, 0};
	long checked = 0;

	(void)state;
	for (int fl = 1; fl <= 3; fl++)
		for (int el = 1; el <= 3; el++)
			for (int len = 1; len <= 7; len++) {
				int total = 1;

				for (int k = 0; k < len; k++)
					total *= 3;
				for (int code = 0; code < total; code++) {
					struct kr_analysis_limits lim = {0.5, fl, el};
					struct kr_analysis_state st = {.has_baseline = 1};
					struct kr_gate_decision d;
					int seq[7], c = code;

					for (int k = 0; k < len; k++, c /= 3)
						seq[k] = c % 3;
					for (int k = 0; k < len; k++) {
						struct kr_measurement m =
						    step_measurement(seq[k] == 2 ? "x"
								     : seq[k]	 ? "0.9"
										 : "0.1",
								     k);

						kr_analysis_gate(&lim, &st, &m, &st, &d);
					}
					int fails = model_run(seq, len, 1, fail_stops);
					int errs = model_run(seq, len, 2, error_stops);
					enum kr_gate_verdict want =
					    seq[len - 1] == 0 ? KR_GATE_PASS
					    : seq[len - 1] == 1
						? (fails >= fl ? KR_GATE_ROLLBACK : KR_GATE_FAIL)
						: (errs >= el ? KR_GATE_ROLLBACK
							      : KR_GATE_INCONCLUSIVE);

					assert_int_equal(st.consecutive_failures, fails);
					assert_int_equal(st.consecutive_errors, errs);
					assert_int_equal(d.verdict, want);
					checked++;
				}
			}
	assert_true(checked > 20000);
}

static void test_gate_reasons(void **state)
{
	struct kr_analysis_limits lim = {0.5, 2, 2};
	struct kr_analysis_state st = {0}, before;
	struct kr_measurement m;
	struct kr_gate_decision d;

	(void)state;
	m = step_measurement("0.25", 1);
	kr_analysis_gate_baseline(&lim, &st, &m, &st, &d);
	assert_string_equal(d.reason, "baseline 401 rate 0.25/s");
	assert_true(st.has_baseline && st.baseline == 0.25);
	m = step_measurement("0.5", 2);
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_string_equal(d.reason, "");
	assert_true(st.has_last && st.last_value == 0.5);
	m = step_measurement("3", 3);
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_string_equal(d.reason, "401 rate 3/s is above baseline 0.25/s + threshold 0.5/s "
				      "(1 of 2 in a row)");
	m = step_measurement("x", 4);
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_string_equal(d.reason,
			    "analysis inconclusive (1 of 2): prometheus http://p:9090: refused");
	assert_true(st.last_value == 3); /* the last conclusive value stays */
	before = st;
	m = step_measurement("x", 5);
	kr_analysis_gate(&lim, &before, &m, &st, &d);
	assert_int_equal(d.verdict, KR_GATE_ROLLBACK);
	assert_string_equal(d.reason, "analysis inconclusive 2 times in a row (errorLimit 2): "
				      "prometheus http://p:9090: refused");
	assert_int_equal(before.consecutive_errors, 1); /* pure: `in` is untouched */
	m = step_measurement("3", 6);
	kr_analysis_gate(&lim, &st, &m, &st, &d);
	assert_int_equal(d.verdict, KR_GATE_ROLLBACK);
	assert_non_null(strstr(d.reason, "(2 of 2 in a row: failureLimit reached)"));
	assert_string_equal(kr_gate_verdict_name(KR_GATE_INCONCLUSIVE), "Inconclusive");
}

static void test_stage_passed(void **state)
{
	struct kr_analysis_state s = {0};

	(void)state;
	s.last_verdict = KR_GATE_PASS;
	s.last_at = 130;
	assert_true(kr_analysis_stage_passed(&s, 100, 130, 15));
	assert_false(kr_analysis_stage_passed(&s, 100, 110, 15)); /* interval not over */
	s.last_at = 90;
	assert_false(kr_analysis_stage_passed(&s, 100, 130, 15)); /* measured before rollout */
	s.last_at = 130;
	s.last_verdict = KR_GATE_FAIL;
	assert_false(kr_analysis_stage_passed(&s, 100, 130, 15)); /* holds */
	s.last_verdict = KR_GATE_INCONCLUSIVE;
	assert_false(kr_analysis_stage_passed(&s, 100, 130, 15));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gate_sequences),
	    cmocka_unit_test(test_gate_exhaustive),
	    cmocka_unit_test(test_gate_reasons),
	    cmocka_unit_test(test_stage_passed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
