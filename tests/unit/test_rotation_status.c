/* test_rotation_status.c - the .status JSON codec: round trips, hand-written status, errors,
 * schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/rotation.h"
#include "rotation/status_json.h"
#include "yaml/yaml.h"

#define T0 1767225600 /* 2026-01-01T00:00:00Z */

/* ---- fixtures -------------------------------------------------------------------- */

static void set_conditions(struct kr_status_doc *d, bool ready)
{
	for (int t = 0; t < KR_COND_COUNT; t++) {
		struct kr_status_condition *c = &d->conditions[t];

		c->set = true;
		c->status = KR_COND_FALSE;
		c->observed_generation = 3;
		c->last_transition = T0 + 60 * t;
		snprintf(c->reason, sizeof(c->reason), "Reason%d", t);
	}
	d->conditions[KR_COND_READY].status = ready ? KR_COND_TRUE : KR_COND_FALSE;
	snprintf(d->conditions[KR_COND_READY].message, KR_ROT_MSG_MAX, "3f9a0c1d2e4b");
	d->conditions[KR_COND_KEYSTORE_IN_SYNC].status = KR_COND_UNKNOWN;
}

static void add_history(struct kr_status_doc *d, const char *id, enum kr_outcome outcome)
{
	struct kr_history_entry *h = &d->history[d->n_history++];

	snprintf(h->key_id, sizeof(h->key_id), "%s", id);
	h->trigger = KR_TRIGGER_SCHEDULE;
	h->activated_at = T0 - 86400 * (time_t)(10 - d->n_history);
	h->revoked_at = outcome == KR_OUTCOME_SUCCEEDED ? h->activated_at + 3600 : 0;
	h->outcome = outcome;
	if (outcome != KR_OUTCOME_SUCCEEDED)
		snprintf(h->reason, sizeof(h->reason), "401 rate 0.9/s over baseline 0");
}

/* Idle after two rotations: the steady state. */
static void fx_idle(struct kr_status_doc *d)
{
	struct kr_rotation_status *st = &d->status;

	st->observed_generation = 3;
	st->phase = KR_PHASE_IDLE;
	snprintf(st->current_key.id, KR_ROT_ID_SIZE, "3f9a0c1d2e4b");
	st->current_key.created_at = T0 - 3600;
	snprintf(d->current_label, sizeof(d->current_label), "sirius-2026-01");
	st->last_rotation_time = T0 - 1800;
	st->next_rotation_time = T0 + 86400 * 90;
	snprintf(st->last_handled_request, KR_ROT_REQUEST_MAX, "2026-01-01T00:00:00Z");
	st->has_rate = true;
	st->unauthorized_rate = 0.02;
	st->unknown_members = 2;
	set_conditions(d, true);
	add_history(d, "aaaaaaaaaaaa", KR_OUTCOME_SUCCEEDED);
	add_history(d, "bbbbbbbbbbbb", KR_OUTCOME_ROLLED_BACK);
}

/* Mid-rotation: stage 1 rolling out, analysis window open, one failure counted. */
static void fx_rollout(struct kr_status_doc *d)
{
	struct kr_rotation_progress *p = &d->status.rotation;

	fx_idle(d);
	d->status.phase = KR_PHASE_ROTATING;
	snprintf(d->status.pending_key.id, KR_ROT_ID_SIZE, "7c1e00aa11bb");
	d->status.pending_key.created_at = T0 + 10;
	snprintf(d->status.previous_key.id, KR_ROT_ID_SIZE, "3f9a0c1d2e4b");
	d->status.previous_key.created_at = T0 - 3600;
	p->trigger = KR_TRIGGER_MANUAL;
	p->started_at = T0;
	p->step = KR_STEP_ROLLOUT;
	p->stage_index = 1;
	p->stage_started_at = T0 + 30;
	p->window_started_at = T0 + 90;
	p->last_measured_at = T0 + 105;
	p->has_baseline = true;
	p->baseline = 0.1 + 0.2; /* not short in decimal: the rate text must still round trip */
	p->failures = 1;
	p->errors = 2;
	p->promoted = true; /* a gate before stage 1 was promoted */
	snprintf(d->status.last_handled_abort, KR_ROT_REQUEST_MAX, "an earlier abort");
	snprintf(d->status.last_handled_promote, KR_ROT_REQUEST_MAX, "2026-01-01T00:01:00Z");
	snprintf(d->status.unlisted[0].kind, sizeof(d->status.unlisted[0].kind), "CronJob");
	snprintf(d->status.unlisted[0].name, sizeof(d->status.unlisted[0].name), "nightly");
	snprintf(d->status.unlisted[1].kind, sizeof(d->status.unlisted[1].kind), "Deployment");
	snprintf(d->status.unlisted[1].name, sizeof(d->status.unlisted[1].name), "legacy");
	d->status.n_unlisted = 2;
	d->stages = cJSON_Parse(
	    "[{\"name\":\"api\",\"state\":\"Done\",\"workloads\":[{\"kind\":\"Deployment\","
	    "\"name\":\"sirius-api\",\"keyId\":\"7c1e00aa11bb\",\"ready\":\"3/3\"}]},"
	    "{\"name\":\"workers\",\"state\":\"RollingOut\",\"workloads\":[{\"kind\":"
	    "\"StatefulSet\",\"name\":\"w\",\"keyId\":\"3f9a0c1d2e4b\",\"ready\":\"1/3\","
	    "\"message\":\"1 of 3 updated\"}]}]");
}

/* Rolling back: the new key revoked, outcome decided. */
static void fx_rollback(struct kr_status_doc *d)
{
	struct kr_rotation_progress *p = &d->status.rotation;

	fx_rollout(d);
	d->status.phase = KR_PHASE_ROLLING_BACK;
	p->step = KR_STEP_ROLLBACK_STAGES;
	p->stage_index = 0;
	p->new_revoked = true;
	p->outcome = KR_OUTCOME_ROLLED_BACK;
	snprintf(p->reason, sizeof(p->reason), "stage workers: 401 rate 0.9/s over baseline");
	set_conditions(d, false);
}

/* Emergency after the revoke: old key gone, no analysis (no baseline), unknown stage. */
static void fx_emergency(struct kr_status_doc *d)
{
	struct kr_rotation_progress *p = &d->status.rotation;

	fx_rollout(d);
	snprintf(d->status.last_handled_emergency, KR_ROT_REQUEST_MAX, "leaked in CI log");
	p->trigger = KR_TRIGGER_EMERGENCY;
	p->step = KR_STEP_ROLLOUT;
	p->stage_index = 7; /* beyond the spec: stage name omitted, index kept */
	p->has_baseline = false;
	p->baseline = 0;
	p->old_revoked = true;
	d->status.has_rate = false;
	d->status.unauthorized_rate = 0;
}

/* Failed, with a dry-run plan. */
static void fx_failed(struct kr_status_doc *d)
{
	fx_rollback(d);
	d->status.phase = KR_PHASE_FAILED;
	d->status.rotation.step = KR_STEP_FAIL_FINISH;
	d->status.rotation.outcome = KR_OUTCOME_FAILED;
	d->status.pending_key = (struct kr_key_ref){{0}, 0};
	d->plan = cJSON_Parse("[\"generate key\",\"activate key <new id>\"]");
}

static void fx_empty(struct kr_status_doc *d)
{
	(void)d;
}

static void fx_history_full(struct kr_status_doc *d)
{
	fx_idle(d);
	d->n_history = 0;
	for (int i = 0; i < KR_STATUS_HISTORY_MAX; i++)
		add_history(d, i % 2 ? "cccccccccccc" : "dddddddddddd", KR_OUTCOME_SUCCEEDED);
}

static const struct fixture {
	const char *name;
	void (*build)(struct kr_status_doc *d);
} fixtures[] = {
    {"empty", fx_empty},
    {"idle", fx_idle},
    {"rollout", fx_rollout},
    {"rollback", fx_rollback},
    {"emergency", fx_emergency},
    {"failed", fx_failed},
    {"history_full", fx_history_full},
};

#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* A spec with two stages, enough to name rotation.stage. */
static struct kr_stage_spec spec_stages[2] = {{.name = "api"}, {.name = "workers"}};
static const struct kr_rotation_spec spec = {.stages = spec_stages, .n_stages = 2};

static void build(const struct fixture *f, struct kr_status_doc *d)
{
	kr_status_doc_init(d);
	f->build(d);
}

static char *encode_text(const struct kr_status_doc *d)
{
	struct kr_error err = {0};
	cJSON *json = NULL;
	char *text;

	assert_int_equal(kr_status_doc_encode(d, &spec, &json, &err), KR_OK);
	text = cJSON_PrintUnformatted(json);
	cJSON_Delete(json);
	assert_non_null(text);
	return text;
}

/* ---- comparing docs field by field ----------------------------------------------- */

static void assert_key_equal(const struct kr_key_ref *a, const struct kr_key_ref *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->created_at, b->created_at);
}

static void assert_progress_equal(const struct kr_rotation_progress *a,
				  const struct kr_rotation_progress *b)
{
	assert_int_equal(a->trigger, b->trigger);
	assert_int_equal(a->started_at, b->started_at);
	assert_int_equal(a->step, b->step);
	assert_int_equal(a->stage_index, b->stage_index);
	assert_int_equal(a->stage_started_at, b->stage_started_at);
	assert_int_equal(a->window_started_at, b->window_started_at);
	assert_int_equal(a->last_measured_at, b->last_measured_at);
	assert_int_equal(a->has_baseline, b->has_baseline);
	assert_true(a->baseline == b->baseline);
	assert_int_equal(a->failures, b->failures);
	assert_int_equal(a->errors, b->errors);
	assert_int_equal(a->old_revoked, b->old_revoked);
	assert_int_equal(a->new_revoked, b->new_revoked);
	assert_int_equal(a->promoted, b->promoted);
	assert_int_equal(a->outcome, b->outcome);
	assert_string_equal(a->reason, b->reason);
}

static void assert_status_equal(const struct kr_rotation_status *a,
				const struct kr_rotation_status *b)
{
	assert_int_equal(a->observed_generation, b->observed_generation);
	assert_int_equal(a->phase, b->phase);
	assert_key_equal(&a->current_key, &b->current_key);
	assert_key_equal(&a->pending_key, &b->pending_key);
	assert_key_equal(&a->previous_key, &b->previous_key);
	assert_progress_equal(&a->rotation, &b->rotation);
	assert_int_equal(a->last_rotation_time, b->last_rotation_time);
	assert_int_equal(a->next_rotation_time, b->next_rotation_time);
	assert_string_equal(a->last_handled_request, b->last_handled_request);
	assert_string_equal(a->last_handled_emergency, b->last_handled_emergency);
	assert_string_equal(a->last_handled_abort, b->last_handled_abort);
	assert_string_equal(a->last_handled_promote, b->last_handled_promote);
	assert_int_equal(a->n_unlisted, b->n_unlisted);
	for (size_t i = 0; i < a->n_unlisted; i++) {
		assert_string_equal(a->unlisted[i].kind, b->unlisted[i].kind);
		assert_string_equal(a->unlisted[i].name, b->unlisted[i].name);
	}
	assert_int_equal(a->has_rate, b->has_rate);
	assert_true(a->unauthorized_rate == b->unauthorized_rate);
	assert_int_equal(a->unknown_members, b->unknown_members);
}

static void assert_doc_equal(const struct kr_status_doc *a, const struct kr_status_doc *b)
{
	assert_status_equal(&a->status, &b->status);
	assert_string_equal(a->current_label, b->current_label);
	assert_string_equal(a->pending_label, b->pending_label);
	assert_string_equal(a->previous_label, b->previous_label);
	for (int t = 0; t < KR_COND_COUNT; t++) {
		const struct kr_status_condition *x = &a->conditions[t], *y = &b->conditions[t];

		assert_int_equal(x->set, y->set);
		assert_int_equal(x->status, y->status);
		assert_int_equal(x->observed_generation, y->observed_generation);
		assert_int_equal(x->last_transition, y->last_transition);
		assert_string_equal(x->reason, y->reason);
		assert_string_equal(x->message, y->message);
	}
	assert_int_equal(a->n_history, b->n_history);
	for (size_t i = 0; i < a->n_history; i++) {
		const struct kr_history_entry *x = &a->history[i], *y = &b->history[i];

		assert_string_equal(x->key_id, y->key_id);
		assert_int_equal(x->trigger, y->trigger);
		assert_int_equal(x->activated_at, y->activated_at);
		assert_int_equal(x->revoked_at, y->revoked_at);
		assert_int_equal(x->outcome, y->outcome);
		assert_string_equal(x->reason, y->reason);
	}
	assert_true(kr_status_json_same(a->stages, b->stages));
	assert_true(kr_status_json_same(a->plan, b->plan));
}

/* ---- round trips ----------------------------------------------------------------- */

/* decode(encode(x)) == x, and encode(decode(encode(x))) is byte-identical. */
static void test_round_trip(void **state)
{
	static struct kr_status_doc x, y;
	(void)state;

	for (size_t i = 0; i < N_FIXTURES; i++) {
		struct kr_error err = {0};
		char *text1, *text2;
		cJSON *json;

		build(&fixtures[i], &x);
		text1 = encode_text(&x);
		json = cJSON_Parse(text1);
		assert_non_null(json);
		if (kr_status_doc_decode(json, &y, &err) != KR_OK)
			fail_msg("%s: %s", fixtures[i].name, err.msg);
		assert_doc_equal(&x, &y);
		text2 = encode_text(&y);
		assert_string_equal(text1, text2);
		cJSON_Delete(json);
		cJSON_free(text1);
		cJSON_free(text2);
		kr_status_doc_release(&x);
		kr_status_doc_release(&y);
	}
}

/* The core-only pair agrees with the doc pair on the kr_rotation_status part. */
static void test_round_trip_core(void **state)
{
	static struct kr_status_doc x;
	(void)state;

	for (size_t i = 0; i < N_FIXTURES; i++) {
		struct kr_rotation_status st;
		struct kr_error err = {0};
		cJSON *json = NULL;

		build(&fixtures[i], &x);
		assert_int_equal(kr_rotation_status_encode(&x.status, NULL, &json, &err), KR_OK);
		assert_int_equal(kr_rotation_status_decode(json, &st, &err), KR_OK);
		assert_status_equal(&x.status, &st);
		assert_null(cJSON_GetObjectItem(json, "conditions"));
		cJSON_Delete(json);
		kr_status_doc_release(&x);
	}
}

/* The same steady state encodes to the same JSON, and kr_status_json_same says so
 * regardless of key order; a real change (a condition flips) is seen. */
static void test_steady_state_stable(void **state)
{
	static struct kr_status_doc a, b;
	struct kr_error err = {0};
	cJSON *ja = NULL, *jb = NULL, *reordered;
	(void)state;

	build(&fixtures[1], &a);
	build(&fixtures[1], &b);
	assert_int_equal(kr_status_doc_encode(&a, &spec, &ja, &err), KR_OK);
	assert_int_equal(kr_status_doc_encode(&b, &spec, &jb, &err), KR_OK);
	assert_true(kr_status_json_same(ja, jb));
	/* as the API server might hand it back: same members, another order */
	reordered = cJSON_Parse("{}");
	for (cJSON *it = jb->child; it; it = it->next)
		cJSON_AddItemReferenceToObject(reordered, it->string, it);
	cJSON_AddItemToObject(reordered, "phase", cJSON_DetachItemFromObject(reordered, "phase"));
	assert_true(kr_status_json_same(reordered, ja));
	cJSON_Delete(reordered);
	cJSON_Delete(jb);
	b.conditions[KR_COND_READY].status = KR_COND_FALSE;
	assert_int_equal(kr_status_doc_encode(&b, &spec, &jb, &err), KR_OK);
	assert_false(kr_status_json_same(ja, jb));
	assert_false(kr_status_json_same(NULL, jb));
	assert_true(kr_status_json_same(NULL, NULL));
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	kr_status_doc_release(&a);
	kr_status_doc_release(&b);
}

/* An empty status omits everything optional: only the phase is written. */
static void test_empty_encodes_minimal(void **state)
{
	static struct kr_status_doc d;
	char *text;
	(void)state;

	kr_status_doc_init(&d);
	text = encode_text(&d);
	assert_string_equal(text, "{\"phase\":\"Idle\"}");
	cJSON_free(text);
}

/* rotation.stage comes from the spec by stageIndex. */
static void test_stage_named_from_spec(void **state)
{
	static struct kr_status_doc d;
	char *text;
	(void)state;

	build(&fixtures[2], &d);
	text = encode_text(&d);
	assert_non_null(strstr(text, "\"stage\":\"workers\",\"stageIndex\":1"));
	assert_non_null(strstr(text, "\"baseline\":\"0.30000000000000004\""));
	assert_non_null(strstr(text, "\"unauthorizedRate\":\"0.02\""));
	cJSON_free(text);
	kr_status_doc_release(&d);
}

/* ---- hand-written status --------------------------------------------------------- */

static const char hand_written[] =
    "{\"observedGeneration\": 5, \"phase\": \"Validating\", \"somethingNew\": {\"x\": 1},"
    " \"currentKey\": {\"id\": \"3f9a0c1d2e4b\", \"createdAt\": \"2026-01-01T00:00:00Z\","
    "   \"label\": \"first\"},"
    " \"pendingKey\": {\"id\": \"7c1e00aa11bb\", \"createdAt\": \"2026-01-02T00:00:00.5+01:00\"},"
    " \"rotation\": {\"trigger\": \"MaxAge\", \"startedAt\": \"2026-01-02T00:00:00Z\","
    "   \"step\": \"Validate\", \"stage\": \"api\", \"windowStartedAt\": \"2026-01-02T00:10:00Z\","
    "   \"baseline\": \"0\", \"consecutiveErrors\": 1, \"oldKeyRevoked\": false},"
    " \"unauthorizedRate\": \"1e-3\", \"unknownMembers\": 4, \"lastHandledRequest\": \"r1\","
    " \"conditions\": [{\"type\": \"Ready\", \"status\": \"False\", \"reason\": \"Rotating\","
    "   \"message\": \"validating\", \"lastTransitionTime\": \"2026-01-02T00:00:00Z\","
    "   \"observedGeneration\": 5},"
    "  {\"type\": \"SomeoneElses\", \"status\": \"True\", \"reason\": \"X\", \"message\": \"\","
    "   \"lastTransitionTime\": \"2026-01-02T00:00:00Z\"}],"
    " \"history\": [{\"keyId\": \"3f9a0c1d2e4b\", \"activatedAt\": \"2026-01-01T00:00:00Z\","
    "   \"outcome\": \"Succeeded\"}]}";

static void test_decode_hand_written(void **state)
{
	static struct kr_status_doc d;
	const struct kr_rotation_status *st = &d.status;
	struct kr_error err = {0};
	cJSON *json = cJSON_Parse(hand_written);
	(void)state;

	assert_non_null(json);
	assert_int_equal(kr_status_doc_decode(json, &d, &err), KR_OK);
	assert_int_equal(st->observed_generation, 5);
	assert_int_equal(st->phase, KR_PHASE_VALIDATING);
	assert_string_equal(st->current_key.id, "3f9a0c1d2e4b");
	assert_int_equal(st->current_key.created_at, T0);
	assert_string_equal(d.current_label, "first");
	assert_int_equal(st->pending_key.created_at, T0 + 86400 - 3600);
	assert_string_equal(st->previous_key.id, "");
	assert_int_equal(st->rotation.trigger, KR_TRIGGER_MAX_AGE);
	assert_int_equal(st->rotation.step, KR_STEP_VALIDATE);
	assert_int_equal(st->rotation.stage_index, -1); /* absent: none */
	assert_int_equal(st->rotation.window_started_at, T0 + 86400 + 600);
	assert_true(st->rotation.has_baseline);
	assert_true(st->rotation.baseline == 0.0);
	assert_int_equal(st->rotation.errors, 1);
	assert_false(st->rotation.old_revoked);
	assert_true(st->has_rate);
	assert_true(st->unauthorized_rate == 0.001);
	assert_int_equal(st->unknown_members, 4);
	assert_string_equal(st->last_handled_request, "r1");
	assert_true(d.conditions[KR_COND_READY].set);
	assert_int_equal(d.conditions[KR_COND_READY].status, KR_COND_FALSE);
	assert_int_equal(d.conditions[KR_COND_READY].observed_generation, 5);
	assert_false(d.conditions[KR_COND_ROTATING].set);
	assert_int_equal(d.n_history, 1);
	assert_int_equal(d.history[0].outcome, KR_OUTCOME_SUCCEEDED);
	assert_int_equal(d.history[0].revoked_at, 0);
	cJSON_Delete(json);
	kr_status_doc_release(&d);
}

/* No status, null status, {} : all the empty status. */
static void test_decode_missing(void **state)
{
	const char *inputs[] = {NULL, "null", "{}"};
	struct kr_rotation_status st;
	struct kr_error err = {0};
	(void)state;

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		cJSON *json = inputs[i] ? cJSON_Parse(inputs[i]) : NULL;

		memset(&st, 0x5a, sizeof(st));
		assert_int_equal(kr_rotation_status_decode(json, &st, &err), KR_OK);
		assert_int_equal(st.phase, KR_PHASE_IDLE);
		assert_int_equal(st.rotation.stage_index, -1);
		assert_string_equal(st.current_key.id, "");
		assert_false(st.has_rate);
		cJSON_Delete(json);
	}
}

/* ---- wrong types name the field -------------------------------------------------- */

static const struct bad_case {
	const char *json;
	const char *prefix; /* the error message starts with this */
} bad_cases[] = {
    {"[]", "status: must be an object"},
    {"{\"phase\": 3}", "status.phase: must be a string"},
    {"{\"observedGeneration\": \"3\"}", "status.observedGeneration: must be an integer"},
    {"{\"observedGeneration\": 1.5}", "status.observedGeneration: must be an integer"},
    {"{\"currentKey\": \"abc\"}", "status.currentKey: must be an object"},
    {"{\"currentKey\": {\"id\": 12}}", "status.currentKey.id: must be a string"},
    {"{\"currentKey\": {\"id\": \"0123456789abc\"}}", "status.currentKey.id: longer than 12"},
    {"{\"pendingKey\": {\"createdAt\": \"yesterday\"}}", "status.pendingKey.createdAt: "},
    {"{\"previousKey\": {\"createdAt\": 5}}", "status.previousKey.createdAt: must be"},
    {"{\"previousKey\": {\"label\": true}}", "status.previousKey.label: must be a string"},
    {"{\"rotation\": []}", "status.rotation: must be an object"},
    {"{\"rotation\": {\"trigger\": 1}}", "status.rotation.trigger: must be a string"},
    {"{\"rotation\": {\"stage\": 1}}", "status.rotation.stage: must be a string"},
    {"{\"rotation\": {\"stageIndex\": \"1\"}}", "status.rotation.stageIndex: must be an integer"},
    {"{\"rotation\": {\"stageIndex\": 1e12}}", "status.rotation.stageIndex: "},
    {"{\"rotation\": {\"startedAt\": \"2026-13-01T00:00:00Z\"}}", "status.rotation.startedAt: "},
    {"{\"rotation\": {\"stageStartedAt\": 0}}", "status.rotation.stageStartedAt: must be"},
    {"{\"rotation\": {\"windowStartedAt\": 0}}", "status.rotation.windowStartedAt: must be"},
    {"{\"rotation\": {\"lastMeasurementTime\": 0}}", "status.rotation.lastMeasurementTime: "},
    {"{\"rotation\": {\"baseline\": 0.1}}", "status.rotation.baseline: must be a string"},
    {"{\"rotation\": {\"baseline\": \"low\"}}", "status.rotation.baseline: \"low\" is not a"},
    {"{\"rotation\": {\"consecutiveFailures\": true}}", "status.rotation.consecutiveFailures: "},
    {"{\"rotation\": {\"consecutiveErrors\": \"2\"}}", "status.rotation.consecutiveErrors: "},
    {"{\"rotation\": {\"oldKeyRevoked\": \"yes\"}}", "status.rotation.oldKeyRevoked: must be"},
    {"{\"rotation\": {\"newKeyRevoked\": 1}}", "status.rotation.newKeyRevoked: must be"},
    {"{\"rotation\": {\"outcome\": []}}", "status.rotation.outcome: must be a string"},
    {"{\"rotation\": {\"reason\": {}}}", "status.rotation.reason: must be a string"},
    {"{\"lastRotationTime\": \"\"}", "status.lastRotationTime: "},
    {"{\"nextRotationTime\": 1}", "status.nextRotationTime: must be"},
    {"{\"lastHandledRequest\": 1}", "status.lastHandledRequest: must be a string"},
    {"{\"lastHandledEmergency\": false}", "status.lastHandledEmergency: must be a string"},
    {"{\"unauthorizedRate\": 0.5}", "status.unauthorizedRate: must be a string"},
    {"{\"unauthorizedRate\": \"NaN\"}", "status.unauthorizedRate: \"NaN\" is not a number"},
    {"{\"unknownMembers\": \"2\"}", "status.unknownMembers: must be an integer"},
    {"{\"conditions\": {}}", "status.conditions: must be an array"},
    {"{\"conditions\": [1]}", "status.conditions[0]: must be an object"},
    {"{\"conditions\": [{\"type\": \"Ready\"}, {\"type\": 2}]}",
     "status.conditions[1].type: must be a string"},
    {"{\"conditions\": [{\"lastTransitionTime\": \"x\"}]}",
     "status.conditions[0].lastTransitionTime: "},
    {"{\"history\": \"none\"}", "status.history: must be an array"},
    {"{\"history\": [{}, {\"keyId\": 1}]}", "status.history[1].keyId: must be a string"},
    {"{\"history\": [{\"revokedAt\": \"soon\"}]}", "status.history[0].revokedAt: "},
    {"{\"stages\": {}}", "status.stages: must be an array"},
    {"{\"stages\": [\"api\"]}", "status.stages[0]: must be an object"},
    {"{\"plan\": \"do it\"}", "status.plan: must be an array"},
    {"{\"plan\": [\"a\", 2]}", "status.plan[1]: must be a string"},
};

static void test_wrong_types_name_the_field(void **state)
{
	static struct kr_status_doc d;
	(void)state;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct kr_error err = {0};
		cJSON *json = cJSON_Parse(bad_cases[i].json);

		assert_non_null(json);
		if (kr_status_doc_decode(json, &d, &err) != KR_EINVAL)
			fail_msg("%s: accepted", bad_cases[i].json);
		if (strncmp(err.msg, bad_cases[i].prefix, strlen(bad_cases[i].prefix)) != 0)
			fail_msg("%s: got \"%s\"", bad_cases[i].json, err.msg);
		assert_null(d.stages); /* released on error */
		cJSON_Delete(json);
	}
}

/* ---- the CRD schema: every key we emit exists there ------------------------------ */

static cJSON *load_crd(void)
{
	struct kr_error err = {0};
	char path[1024];
	cJSON *docs = NULL;

	snprintf(path, sizeof(path), "%s/../crds/keyrotator.io_keyrotations.yaml", KR_TESTS_DIR);
	if (kr_yaml_parse_file(path, &docs, &err) != KR_OK)
		fail_msg("%s", err.msg);
	return docs;
}

static const cJSON *status_schema(const cJSON *docs)
{
	const cJSON *v = cJSON_GetArrayItem(docs, 0);
	const char *walk[] = {"spec",	    "versions", NULL, "schema", "openAPIV3Schema",
			      "properties", "status"};

	for (size_t i = 0; v && i < sizeof(walk) / sizeof(walk[0]); i++)
		v = walk[i] ? cJSON_GetObjectItemCaseSensitive(v, walk[i])
			    : cJSON_GetArrayItem(v, 0);
	assert_non_null(v);
	return v;
}

/* Every member of `value` is declared in `schema`, recursively, with the schema's type. */
static void assert_in_schema(const cJSON *value, const cJSON *schema, const char *path)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
	const char *t = cJSON_IsString(type) ? type->valuestring : "";
	char sub[256];
	const cJSON *it;
	size_t i = 0;

	if ((strcmp(t, "object") == 0 && !cJSON_IsObject(value)) ||
	    (strcmp(t, "array") == 0 && !cJSON_IsArray(value)) ||
	    (strcmp(t, "string") == 0 && !cJSON_IsString(value)) ||
	    (strcmp(t, "integer") == 0 && !cJSON_IsNumber(value)) ||
	    (strcmp(t, "boolean") == 0 && !cJSON_IsBool(value)))
		fail_msg("%s: is not of the schema's type %s", path, t);
	if (cJSON_IsObject(value)) {
		cJSON_ArrayForEach(it, value)
		{
			const cJSON *p = cJSON_GetObjectItemCaseSensitive(props, it->string);

			snprintf(sub, sizeof(sub), "%s.%s", path, it->string);
			if (!p)
				fail_msg("%s: emitted but not in the CRD's status schema", sub);
			assert_in_schema(it, p, sub);
		}
	} else if (cJSON_IsArray(value)) {
		cJSON_ArrayForEach(it, value)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i++);
			assert_in_schema(it, items, sub);
		}
	}
}

static void test_encoded_fields_in_crd(void **state)
{
	static struct kr_status_doc d;
	cJSON *docs = load_crd();
	const cJSON *schema = status_schema(docs);
	(void)state;

	for (size_t i = 0; i < N_FIXTURES; i++) {
		struct kr_error err = {0};
		cJSON *json = NULL;

		build(&fixtures[i], &d);
		assert_int_equal(kr_status_doc_encode(&d, &spec, &json, &err), KR_OK);
		assert_in_schema(json, schema, "status");
		cJSON_Delete(json);
		kr_status_doc_release(&d);
	}
	cJSON_Delete(docs);
}

/* ---- conditions merge ------------------------------------------------------------ */

static void test_conditions_merge(void **state)
{
	struct kr_status_condition old[KR_COND_COUNT], out[KR_COND_COUNT];
	struct kr_condition next[KR_COND_COUNT];
	(void)state;

	memset(old, 0, sizeof(old));
	memset(next, 0, sizeof(next));
	old[KR_COND_READY] = (struct kr_status_condition){
	    .set = true, .status = KR_COND_TRUE, .last_transition = T0, .reason = "KeyCurrent"};
	old[KR_COND_ROTATING] = (struct kr_status_condition){
	    .set = true, .status = KR_COND_FALSE, .last_transition = T0, .reason = "Idle"};
	old[KR_COND_DEGRADED] = (struct kr_status_condition){
	    .set = true, .status = KR_COND_FALSE, .last_transition = T0, .reason = "AsExpected"};
	/* Ready: same status, new message -> time kept */
	next[KR_COND_READY] = (struct kr_condition){KR_COND_TRUE, "KeyCurrent", "7c1e00aa11bb"};
	/* Rotating flips -> time moves */
	next[KR_COND_ROTATING] = (struct kr_condition){KR_COND_TRUE, "Generate", "rotating"};
	/* Degraded: not decided -> kept as it was */
	/* KeyStoreInSync: new -> time now */
	next[KR_COND_KEYSTORE_IN_SYNC] = (struct kr_condition){KR_COND_TRUE, "InSync", ""};

	kr_conditions_merge(old, next, 9, T0 + 500, out);
	assert_int_equal(out[KR_COND_READY].last_transition, T0);
	assert_string_equal(out[KR_COND_READY].message, "7c1e00aa11bb");
	assert_int_equal(out[KR_COND_READY].observed_generation, 9);
	assert_int_equal(out[KR_COND_ROTATING].last_transition, T0 + 500);
	assert_int_equal(out[KR_COND_ROTATING].status, KR_COND_TRUE);
	assert_string_equal(out[KR_COND_ROTATING].reason, "Generate");
	assert_int_equal(out[KR_COND_DEGRADED].last_transition, T0);
	assert_int_equal(out[KR_COND_DEGRADED].observed_generation, 0);
	assert_true(out[KR_COND_KEYSTORE_IN_SYNC].set);
	assert_int_equal(out[KR_COND_KEYSTORE_IN_SYNC].last_transition, T0 + 500);

	/* in place, same decision again later: nothing moves */
	kr_conditions_merge(out, next, 9, T0 + 900, out);
	assert_int_equal(out[KR_COND_ROTATING].last_transition, T0 + 500);
	assert_int_equal(out[KR_COND_READY].last_transition, T0);
}

/* The same decided conditions merged at two later times: the same JSON both times. */
static void test_merged_conditions_steady(void **state)
{
	static struct kr_status_doc d;
	struct kr_condition next[KR_COND_COUNT];
	char *t1, *t2;
	(void)state;

	build(&fixtures[1], &d);
	memset(next, 0, sizeof(next));
	for (int t = 0; t < KR_COND_COUNT; t++) {
		snprintf(next[t].reason, sizeof(next[t].reason), "R%d", t);
		next[t].status = KR_COND_TRUE;
	}
	kr_conditions_merge(d.conditions, next, 3, T0 + 10, d.conditions);
	t1 = encode_text(&d);
	kr_conditions_merge(d.conditions, next, 3, T0 + 20, d.conditions);
	t2 = encode_text(&d);
	assert_string_equal(t1, t2);
	cJSON_free(t1);
	cJSON_free(t2);
	kr_status_doc_release(&d);
}

/* ---- the next status (status_next.c) ---------------------------------------------- */

/* History: appended oldest first, trimmed to historyLimit; revokedAt marks only that key. */
static void test_history_trim_and_revoked_at(void **state)
{
	struct kr_status_doc d;
	struct kr_history_entry h;

	(void)state;
	kr_status_doc_init(&d);
	for (int i = 0; i < 5; i++) {
		memset(&h, 0, sizeof(h));
		snprintf(h.key_id, sizeof(h.key_id), "00000000000%d", i);
		h.outcome = KR_OUTCOME_SUCCEEDED;
		kr_status_doc_add_history(&d, &h, 3);
	}
	assert_int_equal(d.n_history, 3);
	assert_string_equal(d.history[0].key_id, "000000000002");
	assert_string_equal(d.history[2].key_id, "000000000004");
	kr_status_doc_mark_revoked(&d, "000000000003", T0);
	kr_status_doc_mark_revoked(&d, "000000000003", T0 + 60); /* the first time stays */
	assert_int_equal(d.history[1].revoked_at, T0);
	assert_int_equal(d.history[0].revoked_at, 0);
	assert_int_equal(d.history[2].revoked_at, 0);
	kr_status_doc_release(&d);
}

/* status.stages: Done before the stage in hand, Paused at a held gate, Pending after it. */
static void test_stage_states(void **state)
{
	const char *text =
	    "{\"secretRef\":{\"name\":\"k\",\"key\":\"K\"},\"keyStore\":{\"address\":\"v:6379\"},"
	    "\"stages\":[{\"name\":\"a\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"d\"}]},"
	    "{\"name\":\"b\",\"pause\":true,\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"e\"}"
	    "]},"
	    "{\"name\":\"c\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"f\"}]}]}";
	static const char *const want[][3] = {
	    {"Done", "Paused", "Pending"},     /* paused before stage b */
	    {"Done", "RollingOut", "Pending"}, /* promoted: b rolls out */
	};
	struct kr_observed_workload wls[3];
	struct kr_rotation_status st;
	struct kr_rotation_spec sp;
	struct kr_error err;
	cJSON *j = cJSON_Parse(text), *stages;

	(void)state;
	assert_non_null(j);
	if (kr_rotation_spec_decode(j, &sp, &err) != KR_OK)
		fail_msg("%s", err.msg);
	cJSON_Delete(j);
	memset(wls, 0, sizeof(wls));
	for (int i = 0; i < 3; i++) {
		wls[i].exists = wls[i].kind_supported = true;
		wls[i].generation = wls[i].observed_generation = 1;
		wls[i].replicas = wls[i].status_replicas = wls[i].updated = wls[i].ready =
		    wls[i].available = 1;
		snprintf(wls[i].key_id, KR_ROT_ID_SIZE, "%s",
			 i == 0 ? "00000000000b" : "00000000000a");
	}
	kr_rotation_status_init(&st);
	snprintf(st.current_key.id, KR_ROT_ID_SIZE, "00000000000a");
	snprintf(st.pending_key.id, KR_ROT_ID_SIZE, "00000000000b");
	st.rotation.step = KR_STEP_ROLLOUT;
	st.rotation.stage_index = 1;
	for (int c = 0; c < 2; c++) {
		st.phase = c == 0 ? KR_PHASE_PAUSED : KR_PHASE_ROTATING;
		stages = kr_status_stages(&sp, wls, &st);
		assert_non_null(stages);
		for (int i = 0; i < 3; i++)
			assert_string_equal(
			    cJSON_GetObjectItem(cJSON_GetArrayItem(stages, i), "state")
				->valuestring,
			    want[c][i]);
		cJSON_Delete(stages);
	}
	kr_rotation_spec_release(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_round_trip_core),
	    cmocka_unit_test(test_steady_state_stable),
	    cmocka_unit_test(test_empty_encodes_minimal),
	    cmocka_unit_test(test_stage_named_from_spec),
	    cmocka_unit_test(test_decode_hand_written),
	    cmocka_unit_test(test_decode_missing),
	    cmocka_unit_test(test_wrong_types_name_the_field),
	    cmocka_unit_test(test_encoded_fields_in_crd),
	    cmocka_unit_test(test_conditions_merge),
	    cmocka_unit_test(test_merged_conditions_steady),
	    cmocka_unit_test(test_history_trim_and_revoked_at),
	    cmocka_unit_test(test_stage_states),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
