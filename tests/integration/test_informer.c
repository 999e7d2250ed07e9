/* test_informer.c - informer caches and the controller's wake-ups against the local API server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/reconciler.h"
#include "runtime/controller.h"
#include "runtime/informer.h"
#include "testlib.h"

#define WAIT_MS 15000

struct fixture {
	struct kr_test_kubeapi api;
	struct kr_kube_config cfg;
	struct kr_kube_client *client;
	struct kr_informer *inf;
	struct kr_controller *ctl;
	pthread_mutex_t lock;
	char woken[64][128]; /* keys reconciled, in order */
	int nwoken;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kr_error err;

	assert_non_null(f);
	pthread_mutex_init(&f->lock, NULL);
	/* Every CRD: the controller also watches KeyStores and ClusterKeyStores. */
	assert_int_equal(kr_test_kubeapi_start_crds(&f->api, 0, NULL), 0);
	kr_kube_config_init(&f->cfg);
	assert_int_equal(kr_kube_config_load(&f->cfg, f->api.kubeconfig, NULL, &err), KR_OK);
	f->client = kr_kube_client_new(&f->cfg, &err);
	assert_non_null(f->client);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kr_controller_free(f->ctl);
	kr_informer_free(f->inf);
	kr_kube_client_free(f->client);
	kr_kube_config_release(&f->cfg);
	kr_test_kubeapi_stop(&f->api);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

/* ---- objects ---- */

static void deploy_create(struct fixture *f, const char *name, int replicas, const char *note)
{
	char *text = malloc(256 * 1024);
	cJSON *body;
	struct kr_error err;

	assert_non_null(text);
	snprintf(text, 256 * 1024,
		 "{\"apiVersion\":\"apps/"
		 "v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\",\"annotations\":{"
		 "\"note\":\"%s\"}},"
		 "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
		 "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":"
		 "{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}}}}",
		 name, note ? note : "", replicas, name, name);
	body = cJSON_Parse(text);
	assert_non_null(body);
	if (kr_kube_create(f->client, &kr_kube_deployments, "default", body, NULL, &err) != KR_OK)
		fail_msg("create deployment %s: %s", name, err.msg);
	cJSON_Delete(body);
	free(text);
}

static void deploy_scale(struct fixture *f, const char *name, int replicas)
{
	char patch[128];
	struct kr_error err;

	snprintf(patch, sizeof(patch), "{\"spec\":{\"replicas\":%d}}", replicas);
	if (kr_kube_patch(f->client, &kr_kube_deployments, "default", name, NULL,
			  KR_KUBE_PATCH_MERGE, patch, NULL, &err) != KR_OK)
		fail_msg("patch deployment %s: %s", name, err.msg);
}

static void deploy_delete(struct fixture *f, const char *name)
{
	struct kr_error err;

	if (kr_kube_delete(f->client, &kr_kube_deployments, "default", name, &err) != KR_OK)
		fail_msg("delete deployment %s: %s", name, err.msg);
}

/* KeyRotation `name`: its one stage restarts Deployment `deploy`; it names KeyStore `store`. */
static void keyrotation_create(struct fixture *f, const char *name, const char *deploy,
			       const char *store)
{
	char text[1024];
	cJSON *body;
	struct kr_error err;

	snprintf(text, sizeof(text),
		 "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\","
		 "\"metadata\":{\"name\":\"%s\"},\"spec\":{"
		 "\"secretRef\":{\"name\":\"%s-key\",\"key\":\"API_KEY\"},"
		 "\"keyStoreRef\":{\"kind\":\"KeyStore\",\"name\":\"%s\"},"
		 "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\","
		 "\"name\":\"%s\"}]}]}}",
		 name, name, store, deploy);
	body = cJSON_Parse(text);
	assert_non_null(body);
	if (kr_kube_create(f->client, &kr_kube_keyrotations, "default", body, NULL, &err) != KR_OK)
		fail_msg("create keyrotation %s: %s", name, err.msg);
	cJSON_Delete(body);
}

static void admin(struct fixture *f, const char *op)
{
	int code = kr_test_kubeapi_admin(&f->api, op, "{}", NULL);

	assert_true(code == 200 || code == 201);
}

/* ---- the informer under test ---- */

static void start_informer(struct fixture *f, int idle_timeout_s)
{
	struct kr_informer_opts o = {
	    .watch = {.res = &kr_kube_deployments,
		      .ns = "default",
		      .idle_timeout_s = idle_timeout_s,
		      .backoff_initial_ms = 50,
		      .backoff_max_ms = 500},
	    .project = kr_reconciler_project_workload,
	};
	struct kr_error err;

	f->inf = kr_informer_new(&f->cfg, &o, &err);
	assert_non_null(f->inf);
	assert_int_equal(kr_informer_start(f->inf, &err), KR_OK);
}

struct expect {
	struct fixture *f;
	const char *name;
	int replicas; /* -1: absent */
	size_t len;   /* (size_t)-1: any */
};

static int cond_cache(void *arg)
{
	struct expect *e = arg;
	cJSON *proj = NULL;
	enum kr_status rc;
	const cJSON *r;
	int ok;

	if (!kr_informer_has_synced(e->f->inf))
		return 0;
	if (e->len != (size_t)-1 && kr_informer_len(e->f->inf) != e->len)
		return 0;
	if (!e->name)
		return 1;
	rc = kr_informer_get(e->f->inf, "default", e->name, &proj);
	if (e->replicas < 0)
		return rc == KR_ENOTFOUND;
	r = cJSON_GetObjectItemCaseSensitive(proj, "replicas");
	ok = rc == KR_OK && cJSON_IsNumber(r) && r->valueint == e->replicas;
	cJSON_Delete(proj);
	return ok;
}

static void wait_cache(struct fixture *f, const char *name, int replicas, size_t len)
{
	struct expect e = {f, name, replicas, len};

	if (!kr_test_wait_for(cond_cache, &e, WAIT_MS))
		fail_msg("cache never showed %s replicas=%d len=%zu (len now %zu)",
			 name ? name : "-", replicas, len, kr_informer_len(f->inf));
}

/* The cache holds exactly the server's deployments with the server's replicas. */
static void assert_cache_equals_server(struct fixture *f)
{
	cJSON *list = NULL, *proj;
	const cJSON *item;
	struct kr_error err;
	size_t n = 0;

	assert_int_equal(
	    kr_kube_list_all(f->client, &kr_kube_deployments, "default", NULL, &list, &err), KR_OK);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(list, "items"))
	{
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(item, "metadata");
		const char *name = cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring;
		const cJSON *spec = cJSON_GetObjectItemCaseSensitive(item, "spec");
		int want = cJSON_GetObjectItemCaseSensitive(spec, "replicas")->valueint;

		n++;
		proj = NULL;
		if (kr_informer_get(f->inf, "default", name, &proj) != KR_OK)
			fail_msg("cache misses %s", name);
		assert_int_equal(cJSON_GetObjectItemCaseSensitive(proj, "replicas")->valueint,
				 want);
		cJSON_Delete(proj);
	}
	assert_int_equal(kr_informer_len(f->inf), n);
	cJSON_Delete(list);
}

/* ---- tests ---- */

static void test_cache_add_modify_delete(void **state)
{
	struct fixture *f = *state;

	deploy_create(f, "before", 1, NULL);
	start_informer(f, 0);
	wait_cache(f, "before", 1, 1);
	deploy_create(f, "web", 2, NULL);
	wait_cache(f, "web", 2, 2);
	deploy_scale(f, "web", 5);
	wait_cache(f, "web", 5, 2);
	deploy_delete(f, "web");
	wait_cache(f, "web", -1, 1);
	assert_cache_equals_server(f);
}

static void test_410_mid_watch_loses_no_change(void **state)
{
	struct fixture *f = *state;
	struct kr_kube_reflector_stats st;
	char name[32];

	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		deploy_create(f, name, 1, NULL);
	}
	start_informer(f, 60);
	wait_cache(f, NULL, 0, 5);
	/* Disconnected in effect: the watch is silent while the world changes. */
	admin(f, "watches/stall");
	deploy_scale(f, "d0", 3);
	deploy_delete(f, "d1");
	deploy_create(f, "d5", 4, NULL);
	deploy_scale(f, "d2", 7);
	admin(f, "compact");
	admin(f, "watches/drop");
	admin(f, "watches/resume");
	wait_cache(f, "d5", 4, 5);
	wait_cache(f, "d1", -1, 5);
	assert_cache_equals_server(f);
	kr_informer_stats(f->inf, &st);
	assert_true(st.expired >= 1);
	assert_true(st.lists >= 2);
}

static void test_dropped_watch_resumes_without_relist(void **state)
{
	struct fixture *f = *state;
	struct kr_kube_reflector_stats st;

	deploy_create(f, "a", 1, NULL);
	start_informer(f, 60);
	wait_cache(f, "a", 1, 1);
	admin(f, "watches/stall");
	deploy_scale(f, "a", 2);
	deploy_create(f, "b", 3, NULL);
	admin(f, "watches/drop");
	admin(f, "watches/resume");
	wait_cache(f, "b", 3, 2);
	wait_cache(f, "a", 2, 2);
	kr_informer_stats(f->inf, &st);
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.expired, 0);
	assert_true(st.watches >= 2);
	assert_cache_equals_server(f);
}

static void test_cache_stores_projection_only(void **state)
{
	struct fixture *f = *state;
	char *big = malloc(100 * 1024);
	cJSON *proj = NULL;
	char *text;

	assert_non_null(big);
	memset(big, 'x', 100 * 1024 - 1);
	big[100 * 1024 - 1] = '\0';
	deploy_create(f, "fat", 2, big);
	free(big);
	start_informer(f, 0);
	wait_cache(f, "fat", 2, 1);
	assert_int_equal(kr_informer_get(f->inf, "default", "fat", &proj), KR_OK);
	text = cJSON_PrintUnformatted(proj);
	assert_non_null(text);
	assert_null(strstr(text, "xxxx"));
	assert_null(cJSON_GetObjectItemCaseSensitive(proj, "metadata"));
	assert_true(strlen(text) < 1024);
	free(text);
	cJSON_Delete(proj);
}

/* ---- the controller's wake-ups ---- */

static enum kr_status record(void *arg, struct kr_kube_client *client, const char *ns,
			     const char *name, struct kr_reconcile_result *res)
{
	struct fixture *f = arg;

	(void)client, (void)res;
	pthread_mutex_lock(&f->lock);
	if (f->nwoken < 64)
		snprintf(f->woken[f->nwoken++], sizeof(f->woken[0]), "%s/%s", ns, name);
	pthread_mutex_unlock(&f->lock);
	return KR_OK;
}

struct woke {
	struct fixture *f;
	const char *key;
	int from;
};

static int count_woken(struct fixture *f, const char *key, int from)
{
	int n = 0;

	pthread_mutex_lock(&f->lock);
	for (int i = from; i < f->nwoken; i++)
		n += strcmp(f->woken[i], key) == 0;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static int cond_woke(void *arg)
{
	struct woke *w = arg;

	return count_woken(w->f, w->key, w->from) > 0;
}

static int cond_ready(void *arg)
{
	char reason[128];

	return kr_controller_ready(arg, reason, sizeof(reason));
}

static void test_deployment_change_wakes_its_keyrotation(void **state)
{
	struct fixture *f = *state;
	struct kr_controller_opts o = {.cfg = &f->cfg,
				       .sources = kr_reconciler_sources(),
				       .n_sources = KR_SRC_N,
				       .metrics_prefix = KR_METRICS_PREFIX,
				       .namespace_ = "default",
				       .workers = 2,
				       .reconcile = record,
				       .reconcile_arg = f,
				       .version = "test"};
	struct woke w1 = {f, "default/kr-one", 0}, w2 = {f, "default/kr-two", 0};
	struct kr_error err;
	char reason[128];
	int mark;

	deploy_create(f, "one", 1, NULL);
	deploy_create(f, "two", 1, NULL);
	assert_int_equal(
	    kr_test_keystore_create(&f->api, "default", "valkey", "127.0.0.1:6379", NULL), 0);
	keyrotation_create(f, "kr-one", "one", "valkey");
	keyrotation_create(f, "kr-two", "two", "valkey");
	f->ctl = kr_controller_new(&o, &err);
	assert_non_null(f->ctl);
	assert_int_equal(kr_controller_ready(f->ctl, reason, sizeof(reason)), 0);
	assert_non_null(strstr(reason, "keyrotations"));
	assert_int_equal(kr_controller_start(f->ctl, &err), KR_OK);
	assert_true(kr_test_wait_for(cond_ready, f->ctl, WAIT_MS));
	assert_true(kr_test_wait_for(cond_woke, &w1, WAIT_MS));
	assert_true(kr_test_wait_for(cond_woke, &w2, WAIT_MS));
	assert_true(kr_controller_alive(f->ctl, reason, sizeof(reason)));

	pthread_mutex_lock(&f->lock);
	mark = f->nwoken;
	pthread_mutex_unlock(&f->lock);
	w1.from = w2.from = mark;
	deploy_scale(f, "two", 3);
	assert_true(kr_test_wait_for(cond_woke, &w2, WAIT_MS));
	/* Both events went through the same queue in order: kr-one was not woken. */
	kr_controller_stop(f->ctl);
	assert_int_equal(count_woken(f, "default/kr-one", mark), 0);
}

/* A KeyStore created or changed wakes the KeyRotations that name it, and only those. */
static void test_keystore_change_wakes_its_keyrotations(void **state)
{
	struct fixture *f = *state;
	struct kr_controller_opts o = {.cfg = &f->cfg,
				       .sources = kr_reconciler_sources(),
				       .n_sources = KR_SRC_N,
				       .metrics_prefix = KR_METRICS_PREFIX,
				       .namespace_ = "default",
				       .workers = 2,
				       .reconcile = record,
				       .reconcile_arg = f,
				       .version = "test"};
	struct woke w1 = {f, "default/kr-one", 0}, w2 = {f, "default/kr-two", 0};
	struct kr_error err;
	int mark;

	deploy_create(f, "one", 1, NULL);
	deploy_create(f, "two", 1, NULL);
	assert_int_equal(
	    kr_test_keystore_create(&f->api, "default", "store-a", "127.0.0.1:6379", NULL), 0);
	keyrotation_create(f, "kr-one", "one", "store-a");
	keyrotation_create(f, "kr-two", "two", "store-b"); /* not there yet */
	f->ctl = kr_controller_new(&o, &err);
	assert_non_null(f->ctl);
	assert_int_equal(kr_controller_start(f->ctl, &err), KR_OK);
	assert_true(kr_test_wait_for(cond_ready, f->ctl, WAIT_MS));
	assert_true(kr_test_wait_for(cond_woke, &w1, WAIT_MS));
	assert_true(kr_test_wait_for(cond_woke, &w2, WAIT_MS));

	/* An administrator creates the store kr-two is waiting for. */
	pthread_mutex_lock(&f->lock);
	w2.from = f->nwoken;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(
	    kr_test_keystore_create(&f->api, "default", "store-b", "127.0.0.1:6380", NULL), 0);
	assert_true(kr_test_wait_for(cond_woke, &w2, WAIT_MS));

	/* And changes kr-one's. */
	pthread_mutex_lock(&f->lock);
	mark = f->nwoken;
	pthread_mutex_unlock(&f->lock);
	w1.from = mark;
	if (kr_kube_patch(f->client, &kr_kube_keystores, "default", "store-a", NULL,
			  KR_KUBE_PATCH_MERGE, "{\"spec\":{\"database\":1}}", NULL, &err) != KR_OK)
		fail_msg("patch keystore store-a: %s", err.msg);
	assert_true(kr_test_wait_for(cond_woke, &w1, WAIT_MS));
	/* Both events went through the same queue in order: kr-two was not woken. */
	kr_controller_stop(f->ctl);
	assert_int_equal(count_woken(f, "default/kr-two", mark), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_cache_add_modify_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_410_mid_watch_loses_no_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dropped_watch_resumes_without_relist, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_cache_stores_projection_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deployment_change_wakes_its_keyrotation, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_keystore_change_wakes_its_keyrotations, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
