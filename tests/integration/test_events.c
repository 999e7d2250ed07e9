/* test_events.c - the Event recorder against the local API server: queued, counted up, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runtime/events.h"
#include "runtime/metrics.h"
#include "testlib.h"

#define WAIT_MS 15000

struct fixture {
	struct kr_test_kubeapi api;
	struct kr_kube_config cfg;
	struct kr_kube_client *client;
	struct kr_metrics *metrics;
	struct kr_metric *dropped;
	struct kr_events *ev;
};

static const struct kr_event_object OBJ = {"keyrotator.io/v1alpha1", "KeyRotation", "default",
					   "api-key", "0b0e7c1e-0000-4000-8000-000000000001"};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kr_metric_desc d = {KR_METRIC_COUNTER, "events_dropped_total", "h", {NULL}, NULL, 0};
	struct kr_error err;

	assert_non_null(f);
	assert_int_equal(kr_test_kubeapi_start(&f->api, 0, NULL), 0);
	kr_kube_config_init(&f->cfg);
	assert_int_equal(kr_kube_config_load(&f->cfg, f->api.kubeconfig, NULL, &err), KR_OK);
	f->client = kr_kube_client_new(&f->cfg, &err);
	assert_non_null(f->client);
	f->metrics = kr_metrics_new();
	assert_int_equal(kr_metrics_register(f->metrics, &d, &f->dropped, &err), KR_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kr_events_free(f->ev);
	kr_metrics_free(f->metrics);
	kr_kube_client_free(f->client);
	kr_kube_config_release(&f->cfg);
	kr_test_kubeapi_stop(&f->api);
	free(f);
	return 0;
}

static struct kr_events *recorder(struct fixture *f, size_t queue_max)
{
	struct kr_events_opts o = {.cfg = &f->cfg,
				   .component = "keyrotator",
				   .instance = "test-pod",
				   .queue_max = queue_max,
				   .dropped = f->dropped};
	struct kr_error err;

	f->ev = kr_events_new(&o, &err);
	assert_non_null(f->ev);
	return f->ev;
}

/* The Events of namespace default, as the API lists them (caller frees). */
static cJSON *events(struct fixture *f)
{
	cJSON *list = NULL;
	struct kr_error err;

	assert_int_equal(kr_kube_list(f->client, &kr_kube_events, "default", NULL, &list, &err),
			 KR_OK);
	return list;
}

static int count_events(struct fixture *f)
{
	cJSON *list = events(f);
	int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "items"));

	cJSON_Delete(list);
	return n;
}

static void start(struct fixture *f)
{
	struct kr_error err;

	assert_int_equal(kr_events_start(f->ev, &err), KR_OK);
}

/* One Event is written with everything `kubectl describe` shows. */
static void test_event_written_off_the_caller(void **state)
{
	struct fixture *f = *state;
	struct kr_events_stats st;
	cJSON *list, *e;

	recorder(f, 0);
	/* Not started: emit only queues, nothing reaches the API. */
	kr_events_emit(f->ev, &OBJ, true, "StageFailed", "stage api: 401 rate 3.2/s");
	assert_int_equal(count_events(f), 0);
	start(f);
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	list = events(f);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "items")), 1);
	e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "items"), 0);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "reason")->valuestring,
			    "StageFailed");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring, "Warning");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring,
			    "stage api: 401 rate 3.2/s");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "reportingInstance")->valuestring,
			    "test-pod");
	assert_string_equal(
	    cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(e, "involvedObject"), "uid")
		->valuestring,
	    OBJ.uid);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "count")->valueint, 1);
	cJSON_Delete(list);
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.created, 1);
}

/* The same Event again: one Event whose count says how often, not one Event each time. */
static void test_repeats_count_up_one_event(void **state)
{
	struct fixture *f = *state;
	struct kr_events_stats st;
	cJSON *list, *e;

	recorder(f, 0);
	for (int i = 0; i < 5; i++) /* queued before the sender runs: folded into one write */
		kr_events_emit(f->ev, &OBJ, false, "KeyAdopted", "adopt key 1a2b3c4d5e6f");
	start(f);
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	kr_events_emit(f->ev, &OBJ, false, "KeyAdopted", "adopt key 1a2b3c4d5e6f");
	assert_true(kr_events_flush(f->ev, WAIT_MS)); /* written: counted up by a PATCH */
	list = events(f);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "items")), 1);
	e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "items"), 0);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "count")->valueint, 6);
	cJSON_Delete(list);
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.created, 1);
	assert_int_equal(st.patched, 1);
	assert_int_equal(st.coalesced, 4);
}

/* More than ten messages of one reason within ten minutes become one combined Event. */
static void test_similar_events_are_combined(void **state)
{
	struct fixture *f = *state;
	char msg[64];
	cJSON *list, *e;
	int combined = 0, total = 0;

	recorder(f, 0);
	start(f);
	for (int i = 0; i < 15; i++) {
		snprintf(msg, sizeof(msg), "measured 401 rate %d.0/s", i);
		kr_events_emit(f->ev, &OBJ, true, "UnauthorizedRate", msg);
	}
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	list = events(f);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(list, "items"))
	{
		const char *m = cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring;

		total++;
		if (strncmp(m, "(combined from similar events): ", 32) == 0) {
			combined++;
			assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "count")->valueint, 5);
			assert_string_equal(m, "(combined from similar events): measured 401 rate "
					       "14.0/s");
		}
	}
	assert_int_equal(total, 11);
	assert_int_equal(combined, 1);
	cJSON_Delete(list);
}

/* A full queue drops, and counts what it dropped; the caller never waits. */
/*
 * The Events written are remembered for counting up, at most KR_EVENTS_CACHE_MAX of them:
 * past that the least recently used go (in batches), the latest stay.
 */
static void test_remembered_events_bounded(void **state)
{
	struct fixture *f = *state;
	const int n = KR_EVENTS_CACHE_MAX + 100;
	struct kr_events_stats st;
	char reason[32];

	recorder(f, 0);
	start(f);
	for (int i = 0; i < n; i++) { /* distinct reasons: each its own Event */
		snprintf(reason, sizeof(reason), "Reason%d", i);
		kr_events_emit(f->ev, &OBJ, false, reason, "m");
		if (i % 256 == 255) /* under the queue's bound: nothing dropped */
			assert_true(kr_events_flush(f->ev, WAIT_MS));
	}
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.created, n);
	assert_int_equal(st.dropped, 0);
	snprintf(reason, sizeof(reason), "Reason%d", n - 1); /* the latest: counted up */
	kr_events_emit(f->ev, &OBJ, false, reason, "m");
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.patched, 1);
	kr_events_emit(f->ev, &OBJ, false, "Reason0", "m"); /* the first: forgotten, new */
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.created, n + 1);
	assert_int_equal(st.patched, 1);
}

static void test_full_queue_drops_and_counts(void **state)
{
	struct fixture *f = *state;
	struct kr_events_stats st;
	char reason[32];
	double v = 0;

	recorder(f, 3);
	for (int i = 0; i < 8; i++) { /* distinct reasons: nothing to fold */
		snprintf(reason, sizeof(reason), "Reason%d", i);
		kr_events_emit(f->ev, &OBJ, false, reason, "m");
	}
	kr_events_stats(f->ev, &st);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(kr_metric_get(f->dropped, NULL, &v, NULL), KR_OK);
	assert_true(v == 5);
	start(f);
	assert_true(kr_events_flush(f->ev, WAIT_MS));
	assert_int_equal(count_events(f), 3);
}

/* Stopping sends what is queued (within the drain bound); after that emits are dropped. */
static void test_stop_drains_the_queue(void **state)
{
	struct fixture *f = *state;

	recorder(f, 0);
	start(f);
	kr_events_emit(f->ev, &OBJ, false, "RotationFinished", "key 1a2b3c4d5e6f is current");
	kr_events_stop(f->ev, WAIT_MS);
	assert_int_equal(count_events(f), 1);
	kr_events_emit(f->ev, &OBJ, false, "Late", "after stop");
	kr_events_stop(f->ev, WAIT_MS); /* idempotent */
	assert_int_equal(count_events(f), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_event_written_off_the_caller, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repeats_count_up_one_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_similar_events_are_combined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remembered_events_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_queue_drops_and_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_drains_the_queue, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
