/* test_kube_client.c - the REST client against the local API server, over HTTP and HTTPS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kube/internal.h"
#include "testlib.h"

static struct kr_test_kubeapi plain, tls;

/* ---- helpers ---- */

static const char *write_file(const char *dir, const char *name, const char *text)
{
	static char paths[16][700];
	static int next;
	char *path = paths[next++ % 16];
	FILE *f;

	snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/*
 * A kubeconfig for `server` with extra lines under cluster: and user: (each line
 * indented by four spaces by the caller). Returns its path.
 */
static const char *kubeconfig(const char *name, const char *server, const char *cluster,
			      const char *user)
{
	const char *dir = kr_test_tmpdir("kubeclient");
	char text[4096];

	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		 "    server: %s\n%scontexts:\n- name: x\n  context:\n    cluster: c\n"
		 "    user: u\n    namespace: default\ncurrent-context: x\n"
		 "users:\n- name: u\n  user:%s\n",
		 server, cluster ? cluster : "", user ? user : " {}");
	return write_file(dir, name, text);
}

static void load(struct kr_kube_config *cfg, const char *path)
{
	struct kr_error err;

	kr_kube_config_init(cfg);
	kr_error_clear(&err);
	if (kr_kube_config_load(cfg, path, NULL, &err) != KR_OK)
		fail_msg("loading %s: %s", path, err.msg);
}

struct conn {
	struct kr_kube_config cfg;
	struct kr_kube_client *c;
};

static void conn_open(struct conn *k, const char *kubeconfig_path)
{
	struct kr_error err;

	load(&k->cfg, kubeconfig_path);
	k->c = kr_kube_client_new(&k->cfg, &err);
	assert_non_null(k->c);
}

static void conn_close(struct conn *k)
{
	kr_kube_client_free(k->c);
	kr_kube_config_release(&k->cfg);
}

static cJSON *json(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

static const char *str_at(const cJSON *obj, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void admin(struct kr_test_kubeapi *k, const char *op, const char *body)
{
	int code = kr_test_kubeapi_admin(k, op, body, NULL);

	if (code < 200 || code >= 300)
		fail_msg("admin %s %s: HTTP %d", op, body ? body : "", code);
}

/* Expect `rc` with code `want`, HTTP status `http`, and `needle` in the message. */
static void expect_err(enum kr_status rc, const struct kr_error *err, enum kr_status want, int http,
		       const char *needle)
{
	if (rc != want || err->code != want || err->http_status != http ||
	    (needle && !strstr(err->msg, needle)))
		fail_msg("got %s (HTTP %d) \"%s\"; want %s (HTTP %d) containing \"%s\"",
			 kr_strerror(rc), err->http_status, err->msg, kr_strerror(want), http,
			 needle ? needle : "");
}

static const struct kr_kube_resource widgets = {
    "test.keyrotator.io", "v1alpha1", "widgets", "Widget", 1,
};

static const char widget_crd[] =
    "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
    "\"metadata\":{\"name\":\"widgets.test.keyrotator.io\"},\"spec\":{\"group\":"
    "\"test.keyrotator.io\",\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\","
    "\"singular\":\"widget\",\"kind\":\"Widget\"},\"versions\":[{\"name\":\"v1alpha1\","
    "\"served\":true,\"storage\":true,\"subresources\":{\"status\":{}},\"schema\":"
    "{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":"
    "\"object\",\"required\":[\"size\"],\"properties\":{\"size\":{\"type\":\"integer\","
    "\"minimum\":1}}},\"status\":{\"type\":\"object\","
    "\"x-kubernetes-preserve-unknown-fields\":true}}}}}]}}";

static const char deployment[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"api\","
    "\"labels\":{\"app\":\"api\"}},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"
    "{\"app\":\"api\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"api\"}},"
    "\"spec\":{\"containers\":[{\"name\":\"api\",\"image\":\"nginx\"}]}}}}";

/* ---- setup ---- */

static int start_servers(void **state)
{
	(void)state;
	if (kr_test_kubeapi_start(&plain, 0, NULL) != 0)
		return -1;
	if (kr_test_kubeapi_start(&tls, 1, NULL) != 0)
		return -1;
	return 0;
}

static int stop_servers(void **state)
{
	(void)state;
	kr_test_kubeapi_stop(&plain);
	kr_test_kubeapi_stop(&tls);
	return 0;
}

/* ---- verbs ---- */

/* Every verb on Secrets, with the error codes a controller branches on. */
static void secret_verbs(struct kr_test_kubeapi *k)
{
	struct conn n;
	struct kr_error err;
	cJSON *body, *out = NULL;
	char rv[32];
	enum kr_status rc;

	conn_open(&n, k->kubeconfig);
	body =
	    json("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"svc-key\"},"
		 "\"data\":{\"KEY\":\"c2stb2xk\"}}");
	assert_int_equal(kr_kube_create(n.c, &kr_kube_secrets, "default", body, &out, &err), KR_OK);
	assert_string_equal(str_at(out, "metadata", "name"), "svc-key");
	snprintf(rv, sizeof(rv), "%s", str_at(out, "metadata", "resourceVersion"));
	cJSON_Delete(out);

	rc = kr_kube_create(n.c, &kr_kube_secrets, "default", body, &out, &err);
	assert_null(out);
	expect_err(rc, &err, KR_EEXIST, 409, "AlreadyExists: secrets \"svc-key\" already exists");

	assert_int_equal(kr_kube_get(n.c, &kr_kube_secrets, "default", "svc-key", &out, &err),
			 KR_OK);
	assert_string_equal(str_at(out, "data", "KEY"), "c2stb2xk");
	cJSON_Delete(out);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "missing", &out, &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "NotFound: secrets \"missing\" not found");

	/* PUT with the current resourceVersion succeeds, the same one again is stale. */
	cJSON_AddStringToObject(cJSON_GetObjectItem(body, "metadata"), "resourceVersion", rv);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(body, "data"), "KEY",
				  cJSON_CreateString("c2stbmV3"));
	assert_int_equal(
	    kr_kube_update(n.c, &kr_kube_secrets, "default", "svc-key", body, &out, &err), KR_OK);
	assert_string_not_equal(str_at(out, "metadata", "resourceVersion"), rv);
	cJSON_Delete(out);
	rc = kr_kube_update(n.c, &kr_kube_secrets, "default", "svc-key", body, &out, &err);
	expect_err(rc, &err, KR_ECONFLICT, 409, "Conflict: Operation cannot be fulfilled");

	/* The three patch types each reach the server with their content type. */
	assert_int_equal(
	    kr_kube_patch(n.c, &kr_kube_secrets, "default", "svc-key", NULL, KR_KUBE_PATCH_MERGE,
			  "{\"metadata\":{\"annotations\":{\"a\":\"merge\"}}}", &out, &err),
	    KR_OK);
	assert_string_equal(str_at(cJSON_GetObjectItem(out, "metadata"), "annotations", "a"),
			    "merge");
	cJSON_Delete(out);
	assert_int_equal(kr_kube_patch(n.c, &kr_kube_secrets, "default", "svc-key", NULL,
				       KR_KUBE_PATCH_STRATEGIC,
				       "{\"metadata\":{\"labels\":{\"l\":\"strategic\"}}}", NULL,
				       &err),
			 KR_OK);
	assert_int_equal(kr_kube_patch(n.c, &kr_kube_secrets, "default", "svc-key", NULL,
				       KR_KUBE_PATCH_JSON,
				       "[{\"op\":\"replace\",\"path\":\"/data/KEY\",\"value\":"
				       "\"eHl6\"}]",
				       &out, &err),
			 KR_OK);
	assert_string_equal(str_at(out, "data", "KEY"), "eHl6");
	assert_string_equal(str_at(cJSON_GetObjectItem(out, "metadata"), "labels", "l"),
			    "strategic");
	cJSON_Delete(out);

	assert_int_equal(kr_kube_delete(n.c, &kr_kube_secrets, "default", "svc-key", &err), KR_OK);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "svc-key", &out, &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "not found");
	rc = kr_kube_delete(n.c, &kr_kube_secrets, "default", "svc-key", &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "not found");
	cJSON_Delete(body);
	conn_close(&n);
}

static void test_secret_verbs_http(void **state)
{
	(void)state;
	secret_verbs(&plain);
}

static void test_secret_verbs_https(void **state)
{
	(void)state;
	secret_verbs(&tls);
}

/* Deployments: strategic patch of the template, 422 from validation, the status subresource. */
static void test_deployment_verbs(void **state)
{
	cJSON *body = json(deployment), *out = NULL, *list = NULL;
	struct kr_kube_list_opts opts = {.label_selector = "app=api"};
	struct kr_error err;
	enum kr_status rc;
	struct conn n;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	assert_int_equal(kr_kube_create(n.c, &kr_kube_deployments, "default", body, &out, &err),
			 KR_OK);
	cJSON_Delete(out);
	assert_int_equal(kr_kube_patch(n.c, &kr_kube_deployments, "default", "api", NULL,
				       KR_KUBE_PATCH_STRATEGIC,
				       "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
				       "{\"keyrotator.io/key-id\":\"abc\"}}}}}",
				       &out, &err),
			 KR_OK);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(out, "metadata"), "generation")->valueint, 2);
	cJSON_Delete(out);
	rc = kr_kube_patch(n.c, &kr_kube_deployments, "default", "api", NULL, KR_KUBE_PATCH_JSON,
			   "[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":-1}]", &out,
			   &err);
	assert_null(out);
	expect_err(rc, &err, KR_EINVAL, 422, "spec.replicas");

	/* status: PATCH /status, then PUT /status with what GET returned. */
	assert_int_equal(kr_kube_patch(n.c, &kr_kube_deployments, "default", "api", "status",
				       KR_KUBE_PATCH_MERGE,
				       "{\"status\":{\"observedGeneration\":2,\"replicas\":2}}",
				       &out, &err),
			 KR_OK);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(out, "status"), "observedGeneration")->valueint,
	    2);
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(out, "status"), "readyReplicas");
	cJSON_AddNumberToObject(cJSON_GetObjectItem(out, "status"), "readyReplicas", 2);
	cJSON_Delete(body);
	body = out;
	assert_int_equal(
	    kr_kube_update_status(n.c, &kr_kube_deployments, "default", "api", body, &out, &err),
	    KR_OK);
	assert_int_equal(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(out, "status"), "readyReplicas")->valueint, 2);
	cJSON_Delete(out);

	assert_int_equal(kr_kube_list(n.c, &kr_kube_deployments, "default", &opts, &list, &err),
			 KR_OK);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")), 1);
	cJSON_Delete(list);
	assert_int_equal(kr_kube_delete(n.c, &kr_kube_deployments, "default", "api", &err), KR_OK);
	cJSON_Delete(body);
	conn_close(&n);
}

/* A custom resource, registered by POSTing its CRD: 415 on strategic patch, 422 on schema. */
static void test_custom_resource_verbs(void **state)
{
	cJSON *out = NULL, *body, *list = NULL;
	struct kr_error err;
	enum kr_status rc;
	struct conn n;

	(void)state;
	conn_open(&n, tls.kubeconfig);
	rc = kr_kube_request(n.c, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
			     "application/json", widget_crd, NULL, &err);
	if (rc != KR_OK)
		fail_msg("creating the CRD: %s", err.msg);
	body = json("{\"apiVersion\":\"test.keyrotator.io/v1alpha1\",\"kind\":\"Widget\","
		    "\"metadata\":{\"name\":\"w1\"},\"spec\":{\"size\":3}}");
	assert_int_equal(kr_kube_create(n.c, &widgets, "default", body, &out, &err), KR_OK);
	cJSON_Delete(out);
	assert_int_equal(kr_kube_get(n.c, &widgets, "default", "w1", &out, &err), KR_OK);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "spec"), "size")->valueint,
			 3);
	cJSON_Delete(body);
	body = out;

	rc = kr_kube_patch(n.c, &widgets, "default", "w1", NULL, KR_KUBE_PATCH_STRATEGIC,
			   "{\"spec\":{\"size\":4}}", &out, &err);
	expect_err(rc, &err, KR_EHTTP, 415, "UnsupportedMediaType: ");
	assert_int_equal(kr_kube_patch(n.c, &widgets, "default", "w1", NULL, KR_KUBE_PATCH_MERGE,
				       "{\"spec\":{\"size\":4}}", NULL, &err),
			 KR_OK);
	rc =
	    kr_kube_patch(n.c, &widgets, "default", "w1", NULL, KR_KUBE_PATCH_JSON,
			  "[{\"op\":\"replace\",\"path\":\"/spec/size\",\"value\":0}]", NULL, &err);
	expect_err(rc, &err, KR_EINVAL, 422, "spec.size");
	assert_int_equal(kr_kube_patch(n.c, &widgets, "default", "w1", "status",
				       KR_KUBE_PATCH_MERGE, "{\"status\":{\"phase\":\"Idle\"}}",
				       &out, &err),
			 KR_OK);
	assert_string_equal(str_at(out, "status", "phase"), "Idle");
	cJSON_Delete(body);
	body = out;
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(body, "status"), "phase",
				  cJSON_CreateString("Rotating"));
	assert_int_equal(kr_kube_update_status(n.c, &widgets, "default", "w1", body, &out, &err),
			 KR_OK);
	assert_string_equal(str_at(out, "status", "phase"), "Rotating");
	cJSON_Delete(body);
	body = out;
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(body, "spec"), "size", cJSON_CreateNumber(9));
	assert_int_equal(kr_kube_update(n.c, &widgets, "default", "w1", body, &out, &err), KR_OK);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(out, "spec"), "size")->valueint,
			 9);
	cJSON_Delete(out);
	rc = kr_kube_update(n.c, &widgets, "default", "w1", body, &out, &err);
	expect_err(rc, &err, KR_ECONFLICT, 409, "Conflict: ");
	cJSON_Delete(body);

	body = json("{\"apiVersion\":\"test.keyrotator.io/v1alpha1\",\"kind\":\"Widget\","
		    "\"metadata\":{\"name\":\"w2\"},\"spec\":{}}");
	rc = kr_kube_create(n.c, &widgets, "default", body, &out, &err);
	expect_err(rc, &err, KR_EINVAL, 422, "spec.size: Required value");
	cJSON_Delete(body);
	assert_int_equal(kr_kube_list(n.c, &widgets, NULL, NULL, &list, &err), KR_OK);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "items")), 1);
	cJSON_Delete(list);
	assert_int_equal(kr_kube_delete(n.c, &widgets, "default", "w1", &err), KR_OK);
	conn_close(&n);
}

/* ---- lists ---- */

static void make_paging_secrets(struct conn *n)
{
	struct kr_error err;
	char text[256];

	admin(&plain, "namespaces", "{\"name\":\"paging\"}");
	for (int i = 0; i < 7; i++) {
		cJSON *body;

		snprintf(
		    text, sizeof(text),
		    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"p-%d\","
		    "\"labels\":{\"tier\":\"%s\"}}}",
		    i, i % 2 ? "odd" : "even");
		body = json(text);
		assert_int_equal(kr_kube_create(n->c, &kr_kube_secrets, "paging", body, NULL, &err),
				 KR_OK);
		cJSON_Delete(body);
	}
}

/* Names in `list`'s items, each seen once, as a bit set of p-<i>. */
static unsigned seen_items(const cJSON *list)
{
	const cJSON *item;
	unsigned seen = 0;

	cJSON_ArrayForEach(item, cJSON_GetObjectItem(list, "items"))
	{
		int i = atoi(str_at(item, "metadata", "name") + 2);

		assert_false(seen & (1u << i));
		seen |= 1u << i;
	}
	return seen;
}

static void test_list_pages_with_continue(void **state)
{
	struct kr_kube_list_opts opts = {.limit = 3};
	unsigned seen = 0;
	char token[512] = "", rv[32] = "";
	struct kr_error err;
	int pages = 0;
	struct conn n;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	make_paging_secrets(&n);
	do {
		cJSON *page = NULL;
		const char *next;
		unsigned got;

		opts.continue_token = token[0] ? token : NULL;
		assert_int_equal(kr_kube_list(n.c, &kr_kube_secrets, "paging", &opts, &page, &err),
				 KR_OK);
		assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(page, "items")) <= 3);
		got = seen_items(page);
		assert_int_equal(seen & got, 0);
		seen |= got;
		if (!rv[0])
			snprintf(rv, sizeof(rv), "%s", str_at(page, "metadata", "resourceVersion"));
		assert_string_equal(str_at(page, "metadata", "resourceVersion"), rv);
		next = str_at(page, "metadata", "continue");
		snprintf(token, sizeof(token), "%s", next ? next : "");
		cJSON_Delete(page);
		pages++;
	} while (token[0]);
	assert_int_equal(pages, 3);
	assert_int_equal(seen, 0x7f);
	conn_close(&n);
}

static void test_list_all_and_selectors(void **state)
{
	struct kr_kube_list_opts opts = {.limit = 2};
	cJSON *all = NULL, *first = NULL;
	unsigned long before;
	struct kr_error err;
	struct conn n;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	opts.limit = 1;
	assert_int_equal(kr_kube_list(n.c, &kr_kube_secrets, "paging", &opts, &first, &err), KR_OK);
	opts.limit = 2;
	before = kr_kube_client_requests(n.c);
	assert_int_equal(kr_kube_list_all(n.c, &kr_kube_secrets, "paging", &opts, &all, &err),
			 KR_OK);
	assert_int_equal(kr_kube_client_requests(n.c) - before, 4); /* 2+2+2+1 */
	assert_int_equal(seen_items(all), 0x7f);
	assert_null(str_at(all, "metadata", "continue"));
	assert_null(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(all, "metadata"), "remainingItemCount"));
	assert_string_equal(str_at(all, "metadata", "resourceVersion"),
			    str_at(first, "metadata", "resourceVersion"));
	cJSON_Delete(all);
	cJSON_Delete(first);

	/* Selectors with spaces, parentheses, commas, '!' and '=' travel escaped. */
	opts = (struct kr_kube_list_opts){.label_selector = "tier in (odd, other),tier!=even"};
	assert_int_equal(kr_kube_list_all(n.c, &kr_kube_secrets, "paging", &opts, &all, &err),
			 KR_OK);
	assert_int_equal(seen_items(all), 0x2a); /* p-1, p-3, p-5 */
	cJSON_Delete(all);
	opts = (struct kr_kube_list_opts){.field_selector = "metadata.name=p-4"};
	assert_int_equal(kr_kube_list(n.c, &kr_kube_secrets, "paging", &opts, &all, &err), KR_OK);
	assert_int_equal(seen_items(all), 0x10);
	cJSON_Delete(all);
	conn_close(&n);
}

/* A continue token that expires mid-list: list_all starts over once, not twice. */
static void test_list_all_restarts_once_on_expired(void **state)
{
	static const char fault[] =
	    "{\"path\":\"continue=\",\"status\":410,\"reason\":\"Expired\",\"count\":%d,"
	    "\"message\":\"The provided continue parameter is too old to display a "
	    "consistent list result. You can start a new list without the continue "
	    "parameter.\"}";
	struct kr_kube_list_opts opts = {.limit = 3};
	char text[512];
	unsigned long before;
	struct kr_error err;
	cJSON *all = NULL;
	enum kr_status rc;
	struct conn n;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	snprintf(text, sizeof(text), fault, 1);
	admin(&plain, "faults", text);
	before = kr_kube_client_requests(n.c);
	assert_int_equal(kr_kube_list_all(n.c, &kr_kube_secrets, "paging", &opts, &all, &err),
			 KR_OK);
	assert_int_equal(kr_kube_client_requests(n.c) - before, 2 + 3);
	assert_int_equal(seen_items(all), 0x7f);
	cJSON_Delete(all);

	snprintf(text, sizeof(text), fault, 2);
	admin(&plain, "faults", text);
	before = kr_kube_client_requests(n.c);
	rc = kr_kube_list_all(n.c, &kr_kube_secrets, "paging", &opts, &all, &err);
	assert_null(all);
	expect_err(rc, &err, KR_EGONE, 410, "Expired: The provided continue parameter");
	assert_int_equal(kr_kube_client_requests(n.c) - before, 4);
	conn_close(&n);
}

/* ---- authentication ---- */

static void test_token_errors(void **state)
{
	const char *bad =
	    kubeconfig("bad.kubeconfig", plain.url, NULL, "\n    token: not-a-token-s3cr3t");
	const char *none = kubeconfig("none.kubeconfig", plain.url, NULL, NULL);
	const char *lab =
	    kubeconfig("lab.kubeconfig", plain.url, NULL, "\n    token: lab-user-token-s3cr3t");
	struct kr_error err;
	cJSON *out = NULL;
	enum kr_status rc;
	struct conn n;

	(void)state;
	conn_open(&n, bad);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "x", &out, &err);
	expect_err(rc, &err, KR_EAUTH, 401, "Unauthorized: Unauthorized");
	assert_null(strstr(err.msg, "s3cr3t"));
	conn_close(&n);

	conn_open(&n, none);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "x", &out, &err);
	expect_err(rc, &err, KR_EAUTH, 403, "User \"system:anonymous\" cannot get");
	conn_close(&n);

	admin(&plain, "tokens",
	      "{\"token\":\"lab-user-token-s3cr3t\",\"user\":\"lab-user\","
	      "\"forbidden\":true}");
	conn_open(&n, lab);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "x", &out, &err);
	expect_err(rc, &err, KR_EAUTH, 403,
		   "Forbidden: secrets \"x\" is forbidden: User "
		   "\"lab-user\"");
	assert_null(strstr(err.msg, "s3cr3t"));
	conn_close(&n);
}

static int get_ok(void *arg)
{
	struct conn *n = arg;
	struct kr_error err;
	cJSON *out = NULL;
	int ok = kr_kube_get(n->c, &kr_kube_secrets, "default", "none", &out, &err) == KR_ENOTFOUND;

	cJSON_Delete(out);
	return ok;
}

/* A rotated tokenFile (projected service-account tokens) is picked up without a restart. */
static void test_token_file_is_reread(void **state)
{
	const char *dir = kr_test_tmpdir("tokenfile");
	const char *file = write_file(dir, "token", "file-token-one\n");
	char user[800];
	struct timespec times[2];
	struct conn n;

	(void)state;
	snprintf(user, sizeof(user), "\n    tokenFile: %s", file);
	admin(&plain, "tokens", "{\"token\":\"file-token-one\"}");
	conn_open(&n, kubeconfig("tokenfile.kubeconfig", plain.url, NULL, user));
	assert_true(get_ok(&n));

	/* Rotate: the old token is now forbidden, the new one valid. */
	admin(&plain, "tokens", "{\"token\":\"file-token-one\",\"forbidden\":true}");
	admin(&plain, "tokens", "{\"token\":\"file-token-two\"}");
	write_file(dir, "token", "file-token-two\n");
	clock_gettime(CLOCK_REALTIME, &times[0]);
	times[0].tv_sec += 5; /* a distinct mtime, whatever the file system's resolution */
	times[1] = times[0];
	assert_int_equal(utimensat(AT_FDCWD, file, times, 0), 0);
	/* The old token is refused now, so success proves the file was read again. */
	assert_true(kr_test_wait_for(get_ok, &n, 5000));
	conn_close(&n);
}

/* ---- TLS ---- */

static enum kr_status version_via(const char *path, struct kr_error *err)
{
	struct conn n;
	enum kr_status rc;

	conn_open(&n, path);
	rc = kr_kube_request(n.c, "GET", "/version", NULL, NULL, NULL, err);
	conn_close(&n);
	return rc;
}

static void test_tls_verification(void **state)
{
	char cluster[1400], ca[700], wrong_ca[700];
	struct kr_error err;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.crt", tls.tls_dir);
	snprintf(wrong_ca, sizeof(wrong_ca), "%s/client-ca.crt", tls.tls_dir);
	/* The CA from the kubeconfig the server wrote (certificate-authority-data). */
	assert_int_equal(version_via(tls.kubeconfig, &err), KR_OK);

	snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", ca);
	assert_int_equal(version_via(kubeconfig("ca.kc", tls.url, cluster, NULL), &err), KR_OK);

	snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", wrong_ca);
	assert_int_equal(version_via(kubeconfig("wrong.kc", tls.url, cluster, NULL), &err), KR_EIO);
	assert_non_null(strstr(err.msg, tls.url));
	assert_non_null(strstr(err.msg, "TLS"));

	/* No CA at all: the system store does not know the test CA. */
	assert_int_equal(version_via(kubeconfig("noca.kc", tls.url, NULL, NULL), &err), KR_EIO);
	assert_non_null(strstr(err.msg, tls.url));

	assert_int_equal(version_via(kubeconfig("insecure.kc", tls.url,
						"    insecure-skip-tls-verify: true\n", NULL),
				     &err),
			 KR_OK);

	/* tls-server-name: the certificate names localhost and 127.0.0.1, not other.example. */
	snprintf(cluster, sizeof(cluster),
		 "    certificate-authority: %s\n    tls-server-name: localhost\n", ca);
	assert_int_equal(version_via(kubeconfig("sni.kc", tls.url, cluster, NULL), &err), KR_OK);
	snprintf(cluster, sizeof(cluster),
		 "    certificate-authority: %s\n    tls-server-name: other.example\n", ca);
	assert_int_equal(version_via(kubeconfig("sni-bad.kc", tls.url, cluster, NULL), &err),
			 KR_EIO);
	assert_non_null(strstr(err.msg, tls.url));
}

static char *base64_file(const char *path)
{
	char cmd[800], *out = calloc(1, 16384);
	size_t n;
	FILE *p;

	assert_non_null(out);
	snprintf(cmd, sizeof(cmd), "base64 -w0 '%s'", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, 16383, p);
	assert_int_equal(pclose(p), 0);
	assert_true(n > 0);
	return out;
}

/* Client-certificate auth, from files and from inline data, with no token. */
static void test_client_certificate(void **state)
{
	char ca[700], cert[700], key[700], cluster[1000], user[16384];
	char *cert64, *key64;
	struct kr_error err;
	cJSON *out = NULL;
	enum kr_status rc;
	struct conn n;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.crt", tls.tls_dir);
	snprintf(cert, sizeof(cert), "%s/client.crt", tls.tls_dir);
	snprintf(key, sizeof(key), "%s/client.key", tls.tls_dir);
	snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", ca);

	/* Without a certificate (and no token) the request is anonymous: 403. */
	conn_open(&n, kubeconfig("anon.kc", tls.url, cluster, NULL));
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "none", &out, &err);
	expect_err(rc, &err, KR_EAUTH, 403, "system:anonymous");
	conn_close(&n);

	snprintf(user, sizeof(user), "\n    client-certificate: %s\n    client-key: %s", cert, key);
	conn_open(&n, kubeconfig("cert.kc", tls.url, cluster, user));
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "none", &out, &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "not found");
	conn_close(&n);

	cert64 = base64_file(cert);
	key64 = base64_file(key);
	snprintf(user, sizeof(user), "\n    client-certificate-data: %s\n    client-key-data: %s",
		 cert64, key64);
	conn_open(&n, kubeconfig("certdata.kc", tls.url, cluster, user));
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "none", &out, &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "not found");
	conn_close(&n);
	free(cert64);
	free(key64);
}

/* ---- server errors and transport failures ---- */

static void test_injected_server_errors(void **state)
{
	static const struct {
		const char *fault;
		const char *name;
		int http;
		const char *needle;
	} cases[] = {
	    {"{\"path\":\"/secrets/f500$\",\"status\":500}", "f500", 500,
	     "InternalError: Internal error occurred: injected fault"},
	    {"{\"path\":\"/secrets/f503$\",\"status\":503,\"retryAfter\":3}", "f503", 503,
	     "(retry after 3s)"},
	    {"{\"path\":\"/secrets/f429$\",\"status\":429,\"retryAfter\":2}", "f429", 429,
	     "TooManyRequests: Too many requests, please try again later. (retry after 2s)"},
	    {"{\"path\":\"/secrets/f504$\",\"status\":504}", "f504", 504, "Timeout: "},
	};
	struct kr_error err;
	cJSON *out = NULL;
	enum kr_status rc;
	struct conn n;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		admin(&plain, "faults", cases[i].fault);
		rc = kr_kube_get(n.c, &kr_kube_secrets, "default", cases[i].name, &out, &err);
		assert_null(out);
		expect_err(rc, &err, KR_EHTTP, cases[i].http, cases[i].needle);
	}
	/* A non-JSON error page keeps the code and says who answered. */
	rc = kr_kube_request(n.c, "GET", "/no/such/path", NULL, NULL, &out, &err);
	expect_err(rc, &err, KR_ENOTFOUND, 404, "NotFound: HTTP 404: 404 page not found");
	assert_non_null(strstr(err.msg, plain.url));
	conn_close(&n);
}

static void test_request_timeout(void **state)
{
	struct timespec t0, t1;
	struct kr_error err;
	cJSON *out = NULL;
	enum kr_status rc;
	struct conn n;
	long ms;

	(void)state;
	conn_open(&n, plain.kubeconfig);
	kr_kube_client_set_timeouts(n.c, 0, 300);
	admin(&plain, "faults", "{\"path\":\"/secrets/slowpoke$\",\"delayMs\":3000}");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "slowpoke", &out, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_int_equal(rc, KR_ETIMEOUT);
	assert_non_null(strstr(err.msg, plain.url));
	assert_true(ms >= 250 && ms < 2500);
	/* The handle recovers: the next request goes through on a new connection. */
	assert_true(get_ok(&n));
	conn_close(&n);
}

static void test_unreachable_server(void **state)
{
	char url[64];
	struct kr_error err;
	enum kr_status rc;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", kr_test_free_port());
	rc = version_via(kubeconfig("closed.kc", url, NULL, NULL), &err);
	assert_int_equal(rc, KR_EIO);
	assert_non_null(strstr(err.msg, "cannot connect to"));
	assert_non_null(strstr(err.msg, url));
}

static void test_response_size_cap(void **state)
{
	char *text = malloc(20000);
	struct kr_error err;
	cJSON *body, *out = NULL;
	enum kr_status rc;
	struct conn n;
	int len;

	(void)state;
	assert_non_null(text);
	len = snprintf(text, 20000,
		       "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":"
		       "{\"name\":\"big\"},\"data\":{\"BLOB\":\"");
	memset(text + len, 'Q', 12000);
	strcpy(text + len + 12000, "\"}}");
	body = json(text);
	conn_open(&n, tls.kubeconfig);
	assert_int_equal(kr_kube_create(n.c, &kr_kube_secrets, "default", body, NULL, &err), KR_OK);
	kr_kube_client_set_max_response(n.c, 4096);
	rc = kr_kube_get(n.c, &kr_kube_secrets, "default", "big", &out, &err);
	assert_int_equal(rc, KR_ETOOBIG);
	assert_null(out);
	assert_non_null(strstr(err.msg, "exceeds 4096 bytes"));
	assert_non_null(strstr(err.msg, tls.url));
	kr_kube_client_set_max_response(n.c, 1 << 20);
	assert_int_equal(kr_kube_get(n.c, &kr_kube_secrets, "default", "big", &out, &err), KR_OK);
	cJSON_Delete(out);
	assert_int_equal(kr_kube_delete(n.c, &kr_kube_secrets, "default", "big", &err), KR_OK);
	cJSON_Delete(body);
	free(text);
	conn_close(&n);
}

/* One client, many requests, one TCP (and TLS) connection. */
static void connection_reuse(struct kr_test_kubeapi *k)
{
	struct kr_error err;
	struct conn n;

	conn_open(&n, k->kubeconfig);
	for (int i = 0; i < 20; i++)
		assert_true(get_ok(&n));
	assert_int_equal(kr_kube_request(n.c, "GET", "/version", NULL, NULL, NULL, &err), KR_OK);
	assert_int_equal(kr_kube_client_requests(n.c), 21);
	assert_int_equal(kr_kube_client_connects(n.c), 1);
	conn_close(&n);
}

static void test_connection_reuse_http(void **state)
{
	(void)state;
	connection_reuse(&plain);
}

static void test_connection_reuse_https(void **state)
{
	(void)state;
	connection_reuse(&tls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_verbs_http),
	    cmocka_unit_test(test_secret_verbs_https),
	    cmocka_unit_test(test_deployment_verbs),
	    cmocka_unit_test(test_custom_resource_verbs),
	    cmocka_unit_test(test_list_pages_with_continue),
	    cmocka_unit_test(test_list_all_and_selectors),
	    cmocka_unit_test(test_list_all_restarts_once_on_expired),
	    cmocka_unit_test(test_token_errors),
	    cmocka_unit_test(test_token_file_is_reread),
	    cmocka_unit_test(test_tls_verification),
	    cmocka_unit_test(test_client_certificate),
	    cmocka_unit_test(test_injected_server_errors),
	    cmocka_unit_test(test_request_timeout),
	    cmocka_unit_test(test_unreachable_server),
	    cmocka_unit_test(test_response_size_cap),
	    cmocka_unit_test(test_connection_reuse_http),
	    cmocka_unit_test(test_connection_reuse_https),
	};
	return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
