/* test_security_endpoints.c - /metrics, /healthz, /readyz leak no credential and only read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "testlib.h"

#define WAIT_MS 20000

/*
 * The controller runs with credentials it must never show: a bearer token (kubeconfig),
 * the Valkey password (the Secret its KeyStore names, and in its environment), and
 * the consumers' current key (a Secret). The scanner (scan_keys.py) then reads what the
 * endpoints served and the controller's log, for those and for anything shaped like a key.
 */
#define TOKEN	 "kr-sec-token-6f1c0e9a4b7d2853e1f0a9c4b6d7e8f1"
#define PASSWORD "kr-sec-valkey-pass-Zq81Lw02Xy7c"
#define KEY	 "sk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3WINfG"

struct fixture {
	struct kr_test_kubeapi api;
	struct kr_test_redis redis;
	const char *dir;
	char kubeconfig[700], log[700];
	int metrics_port, health_port;
	pid_t pid;
};

static void api_create(struct fixture *f, const char *path, const char *json)
{
	char url[512];
	struct kr_buf out;
	long code;

	kr_buf_init(&out);
	snprintf(url, sizeof(url), "%s%s", f->api.url, path);
	code = kr_test_http("POST", url, TOKEN, json, &out, NULL);
	if (code != 201)
		fail_msg("POST %s: HTTP %ld %s", path, code, out.data ? out.data : "");
	kr_buf_release(&out);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The API server knows TOKEN; the kubeconfig carries it. */
static void kubeconfig_write(struct fixture *f)
{
	char text[1024];
	int n;

	assert_int_equal(kr_test_kubeapi_admin(&f->api, "tokens",
					       "{\"token\":\"" TOKEN "\",\"user\":\"controller\"}",
					       NULL),
			 200);
	n = snprintf(text, sizeof(text),
		     "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		     "clusters:\n- name: k\n  cluster:\n    server: %s\n"
		     "users:\n- name: u\n  user:\n    token: %s\n"
		     "contexts:\n- name: c\n  context: {cluster: k, user: u, namespace: default}\n",
		     f->api.url, TOKEN);
	snprintf(f->kubeconfig, sizeof(f->kubeconfig), "%s/kubeconfig", f->dir);
	write_file(f->kubeconfig, text, (size_t)n);
}

/*
 * An administrator's KeyStore names the Valkey server and its password Secret (which needs no
 * opt-in); the consumers' Secret holds the current key and opts in to KeyRotation "app",
 * which names the KeyStore.
 */
static void objects_create(struct fixture *f)
{
	char address[64];

	assert_int_equal(
	    kr_test_secret_create(&f->api, "default", "valkey-auth", NULL, "password", PASSWORD),
	    0);
	assert_int_equal(
	    kr_test_secret_create(&f->api, "default", "app-key", "app", "API_KEY", KEY), 0);
	snprintf(address, sizeof(address), "127.0.0.1:%d", f->redis.port);
	assert_int_equal(
	    kr_test_keystore_create(
		&f->api, "default", "valkey", address,
		"\"passwordSecretRef\":{\"name\":\"valkey-auth\",\"key\":\"password\"}"),
	    0);
	api_create(f, "/apis/keyrotator.io/v1alpha1/namespaces/default/keyrotations",
		   "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\","
		   "\"metadata\":{\"name\":\"app\"},\"spec\":{"
		   "\"secretRef\":{\"name\":\"app-key\",\"key\":\"API_KEY\"},"
		   "\"keyStoreRef\":{\"kind\":\"KeyStore\",\"name\":\"valkey\"},"
		   "\"key\":{\"prefix\":\"sk_\"},"
		   "\"stages\":[{\"name\":\"api\",\"workloads\":[{\"kind\":\"Deployment\","
		   "\"name\":\"app\"}]}]}}");
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(kr_test_redis_start(&f->redis, "requirepass " PASSWORD "\n"), 0);
	assert_int_equal(kr_test_kubeapi_start_crds(&f->api, 0, NULL), 0);
	f->dir = kr_test_tmpdir("sec-endpoints");
	kubeconfig_write(f);
	objects_create(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->pid > 0)
		kr_test_stop(f->pid, SIGKILL);
	kr_test_kubeapi_stop(&f->api);
	kr_test_redis_stop(&f->redis);
	free(f);
	return 0;
}

static long get_local(int port, const char *method, const char *path, struct kr_buf *body,
		      struct kr_buf *headers)
{
	char url[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return kr_test_http(method, url, NULL, NULL, body, headers);
}

static int cond_reconciled(void *arg)
{
	struct fixture *f = arg;
	struct kr_buf b;
	int yes;

	kr_buf_init(&b);
	yes = get_local(f->metrics_port, "GET", "/metrics", &b, NULL) == 200 &&
	      get_local(f->health_port, "GET", "/readyz", NULL, NULL) == 200 &&
	      strstr(b.data, "\nkeyrotator_reconcile_total{");
	kr_buf_release(&b);
	return yes;
}

static void start_run(struct fixture *f)
{
	char maddr[64], haddr[64];
	const char *bin = getenv("KR_BINARY");
	char *argv[] = {
	    (char *)bin, "run",		  "--kubeconfig", f->kubeconfig, "--metrics-addr",
	    maddr,	 "--health-addr", haddr,	  "--log-level", "debug",
	    NULL};

	assert_non_null(bin);
	f->metrics_port = kr_test_free_port();
	f->health_port = kr_test_free_port();
	snprintf(maddr, sizeof(maddr), "127.0.0.1:%d", f->metrics_port);
	snprintf(haddr, sizeof(haddr), "127.0.0.1:%d", f->health_port);
	snprintf(f->log, sizeof(f->log), "%s/controller.log", f->dir);
	setenv("KEYROTATOR_VALKEY_PASSWORD", PASSWORD, 1);
	f->pid = kr_test_spawn(argv, f->log);
	unsetenv("KEYROTATOR_VALKEY_PASSWORD");
	assert_true(f->pid > 0);
	assert_true(kr_test_wait_port(f->health_port, WAIT_MS));
	assert_true(kr_test_wait_for(cond_reconciled, f, WAIT_MS));
}

/* Run scan_keys.py over `path` (a file or dir) for our credentials and any key shape. */
static int scan(struct fixture *f, const char *path)
{
	char keys[700], cmd[2400];

	snprintf(keys, sizeof(keys), "%s/credentials", f->dir);
	write_file(keys, TOKEN "\n" PASSWORD "\n" KEY "\n", strlen(TOKEN PASSWORD KEY) + 3);
	snprintf(cmd, sizeof(cmd), "%s %s/security/scan_keys.py --keys-file %s %s >&2",
		 kr_test_python(), kr_test_tests_dir(), keys, path);
	return system(cmd);
}

static const struct {
	int metrics; /* on the metrics port (else the health port) */
	const char *path;
} endpoints[] = {{1, "/metrics"}, {0, "/healthz"}, {0, "/readyz"}};

/* The controller used the credentials: it logged in to Valkey and put the key there. */
static int cond_store_written(void *arg)
{
	struct fixture *f = arg;

	return kr_test_redis_dbsize(&f->redis, PASSWORD) > 0;
}

static void test_endpoints_serve_no_credentials(void **state)
{
	struct fixture *f = *state;
	char dir[800], path[900];

	start_run(f);
	assert_true(kr_test_wait_for(cond_store_written, f, WAIT_MS));
	snprintf(dir, sizeof(dir), "%s/served", f->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		int port = endpoints[i].metrics ? f->metrics_port : f->health_port;
		/* A query string with the token must not come back either. */
		const char *queries[] = {"", "?token=" TOKEN};

		for (int q = 0; q < 2; q++) {
			struct kr_buf body, headers;
			char url[256];

			kr_buf_init(&body);
			kr_buf_init(&headers);
			snprintf(url, sizeof(url), "%s%s", endpoints[i].path, queries[q]);
			assert_int_equal(get_local(port, "GET", url, &body, &headers), 200);
			snprintf(path, sizeof(path), "%s/%s%d.txt", dir, endpoints[i].path + 1, q);
			kr_buf_add(&headers, body.data ? body.data : "", body.len);
			write_file(path, headers.data, headers.len);
			kr_buf_release(&body);
			kr_buf_release(&headers);
		}
	}
	assert_int_equal(scan(f, dir), 0);
	/* The scan sees what it looks for (a control file with the token in it). */
	snprintf(path, sizeof(path), "%s/control.txt", f->dir);
	write_file(path, "x " TOKEN "\n", strlen(TOKEN) + 3);
	assert_int_not_equal(scan(f, path), 0);
	kr_test_stop(f->pid, SIGTERM);
	f->pid = 0;
	/* The controller's whole log, start to stop, at debug level. */
	assert_int_equal(scan(f, f->log), 0);
}

static void test_endpoints_only_read(void **state)
{
	struct fixture *f = *state;
	static const char *const writes[] = {"POST", "PUT", "DELETE", "PATCH"};

	start_run(f);
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		int port = endpoints[i].metrics ? f->metrics_port : f->health_port;
		struct kr_buf headers;

		kr_buf_init(&headers);
		assert_int_equal(get_local(port, "HEAD", endpoints[i].path, NULL, &headers), 200);
		kr_buf_release(&headers);
		for (size_t w = 0; w < sizeof(writes) / sizeof(writes[0]); w++) {
			kr_buf_init(&headers);
			if (get_local(port, writes[w], endpoints[i].path, NULL, &headers) != 405)
				fail_msg("%s %s: want 405", writes[w], endpoints[i].path);
			assert_non_null(strstr(headers.data, "\nAllow: GET, HEAD"));
			kr_buf_release(&headers);
		}
	}
	kr_test_stop(f->pid, SIGTERM);
	f->pid = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_endpoints_serve_no_credentials, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_endpoints_only_read, setup, teardown),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
