/* test_controller_stuck.c - a worker held by one reconcile fails /healthz and /readyz. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "reconciler/reconciler.h"
#include "runtime/controller.h"
#include "testlib.h"

#define WAIT_MS 15000

/* The local API server, and a reconcile that blocks on "stuck/..." keys until released. */
struct fixture {
	struct kr_test_kubeapi api;
	struct kr_kube_config cfg;
	struct kr_kube_client *client;
	struct kr_controller *ctl;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool release;	    /* let blocked reconciles return */
	int blocked;	    /* reconciles blocked now */
	int64_t blocked_at; /* kr_mono_ms() when the last one blocked */
	int reconciled;	    /* reconciles of "quick" that returned */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kr_error err;

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	assert_int_equal(kr_test_kubeapi_start_crds(&f->api, 0, NULL), 0);
	kr_kube_config_init(&f->cfg);
	assert_int_equal(kr_kube_config_load(&f->cfg, f->api.kubeconfig, NULL, &err), KR_OK);
	f->client = kr_kube_client_new(&f->cfg, &err);
	assert_non_null(f->client);
	*state = f;
	return 0;
}

static void release_all(struct fixture *f)
{
	pthread_mutex_lock(&f->lock);
	f->release = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	release_all(f); /* a failed assert must not leave kr_controller_free joining forever */
	kr_controller_free(f->ctl);
	kr_kube_client_free(f->client);
	kr_kube_config_release(&f->cfg);
	kr_test_kubeapi_stop(&f->api);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

static enum kr_status hold(void *arg, struct kr_kube_client *client, const char *ns,
			   const char *name, struct kr_reconcile_result *res)
{
	struct fixture *f = arg;

	(void)client, (void)ns, (void)res;
	pthread_mutex_lock(&f->lock);
	if (strcmp(name, "stuck") == 0) {
		f->blocked++;
		f->blocked_at = kr_mono_ms();
		while (!f->release)
			pthread_cond_wait(&f->cond, &f->lock);
		f->blocked--;
	} else {
		f->reconciled++;
	}
	pthread_mutex_unlock(&f->lock);
	return KR_OK;
}

static void keyrotation_create(struct fixture *f, const char *name)
{
	char text[1024];
	cJSON *body;
	struct kr_error err;

	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\","
		 "\"metadata\":{\"name\":\"%s\"},\"spec\":{"
		 "\"secretRef\":{\"name\":\"%s-key\",\"key\":\"API_KEY\"},"
		 "\"keyStoreRef\":{\"name\":\"valkey\"},"
		 "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\","
		 "\"name\":\"%s\"}]}]}}",
		 name, name, name);
	body = cJSON_Parse(text);
	assert_non_null(body);
	if (kr_kube_create(f->client, &kr_kube_keyrotations, "default", body, NULL, &err) != KR_OK)
		fail_msg("create keyrotation %s: %s", name, err.msg);
	cJSON_Delete(body);
}

static int cond_blocked(void *arg)
{
	struct fixture *f = arg;
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->blocked;
	pthread_mutex_unlock(&f->lock);
	return n > 0;
}

static int cond_quick_done(void *arg)
{
	struct fixture *f = arg;
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->reconciled;
	pthread_mutex_unlock(&f->lock);
	return n > 0;
}

static int cond_not_alive(void *arg)
{
	char reason[256];

	return !kr_controller_alive(arg, reason, sizeof(reason));
}

static int cond_alive_and_ready(void *arg)
{
	char reason[256];

	return kr_controller_alive(arg, reason, sizeof(reason)) &&
	       kr_controller_ready(arg, reason, sizeof(reason));
}

static void start(struct fixture *f, long stuck_ms)
{
	struct kr_controller_opts o = {.cfg = &f->cfg,
				       .sources = kr_reconciler_sources(),
				       .n_sources = KR_SRC_N,
				       .metrics_prefix = KR_METRICS_PREFIX,
				       .namespace_ = "default",
				       .workers = 2,
				       .reconcile = hold,
				       .reconcile_arg = f,
				       .version = "test",
				       .stuck_worker_timeout_ms = stuck_ms};
	struct kr_error err;

	f->ctl = kr_controller_new(&o, &err);
	assert_non_null(f->ctl);
	assert_int_equal(kr_controller_start(f->ctl, &err), KR_OK);
}

/*
 * One worker blocks in the reconcile of default/stuck; the other goes on. Within the bound
 * both checks pass; past it both fail, naming the worker and the KeyRotation; once the
 * reconcile returns, both pass again.
 */
static void test_stuck_worker_fails_alive_and_ready(void **state)
{
	struct fixture *f = *state;
	char reason[256];

	keyrotation_create(f, "stuck");
	start(f, 1000);
	assert_true(kr_test_wait_for(cond_blocked, f, WAIT_MS));
	/* The other worker still reconciles. */
	keyrotation_create(f, "quick");
	assert_true(kr_test_wait_for(cond_quick_done, f, WAIT_MS));
	if (kr_mono_ms() - f->blocked_at < 800) /* well within the bound: not stuck yet */
		assert_true(kr_controller_alive(f->ctl, reason, sizeof(reason)));

	assert_true(kr_test_wait_for(cond_not_alive, f->ctl, WAIT_MS));
	/* Not before the bound (the worker marked itself busy just before hold() began). */
	assert_true(kr_mono_ms() - f->blocked_at >= 990);
	assert_int_equal(kr_controller_alive(f->ctl, reason, sizeof(reason)), 0);
	assert_non_null(strstr(reason, "stuck for "));
	assert_non_null(strstr(reason, "(bound 1s)"));
	assert_non_null(strstr(reason, "reconciling KeyRotation default/stuck"));
	assert_true(strncmp(reason, "worker 0 ", 9) == 0 || strncmp(reason, "worker 1 ", 9) == 0);
	memset(reason, 0, sizeof(reason));
	assert_int_equal(kr_controller_ready(f->ctl, reason, sizeof(reason)), 0);
	assert_non_null(strstr(reason, "reconciling KeyRotation default/stuck"));

	release_all(f);
	assert_true(kr_test_wait_for(cond_alive_and_ready, f->ctl, WAIT_MS));
	kr_controller_stop(f->ctl);
}

/* Without a bound given, the default (5 minutes) applies: a short block is not stuck. */
static void test_default_bound_is_five_minutes(void **state)
{
	struct fixture *f = *state;
	char reason[256];

	keyrotation_create(f, "stuck");
	start(f, 0);
	assert_true(kr_test_wait_for(cond_blocked, f, WAIT_MS));
	assert_true(kr_test_wait_for(cond_alive_and_ready, f->ctl, WAIT_MS));
	/* Not yet stuck well past a second; KR_CONTROLLER_STUCK_DEFAULT_MS is 300 s. */
	assert_int_equal(kr_test_wait_for(cond_not_alive, f->ctl, 1500), 0);
	assert_true(kr_controller_ready(f->ctl, reason, sizeof(reason)));
	assert_int_equal(KR_CONTROLLER_STUCK_DEFAULT_MS, 300000);
	release_all(f);
	kr_controller_stop(f->ctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stuck_worker_fails_alive_and_ready, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_default_bound_is_five_minutes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
