/* test_security_tls.c - TLS verification is on by default: unknown CAs are refused, by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "kube/kube.h"
#include "testlib.h"

/*
 * The local API server serves HTTPS with a certificate from its own CA (tls/ca.crt).
 * A second CA, made here, signs nothing the server uses: a client that trusts only it,
 * or only the system bundle, must refuse the server and say which server it refused.
 */
struct fixture {
	struct kr_test_kubeapi api;
	const char *dir;
	char ca[700], other_ca[700], host[64];
};

static struct fixture fx;

static int group_setup(void **state)
{
	char cmd[2048];

	(void)state;
	if (kr_test_kubeapi_start(&fx.api, 1, NULL) != 0)
		return -1;
	fx.dir = kr_test_tmpdir("sec-tls");
	snprintf(fx.ca, sizeof(fx.ca), "%s/ca.crt", fx.api.tls_dir);
	snprintf(fx.other_ca, sizeof(fx.other_ca), "%s/other-ca.crt", fx.dir);
	snprintf(fx.host, sizeof(fx.host), "127.0.0.1:%d", fx.api.port);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout %s/other-ca.key -out %s -subj /CN=other-ca -days 2 "
		 "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
		 fx.dir, fx.other_ca);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	kr_test_kubeapi_stop(&fx.api);
	return 0;
}

/* A kubeconfig for the server with `tls_line` in its cluster (a CA, or nothing). */
static const char *kubeconfig(const char *name, const char *tls_line)
{
	static char path[800];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		"clusters:\n- name: k\n  cluster:\n    server: %s\n%s"
		"users:\n- name: u\n  user:\n    token: %s\n"
		"contexts:\n- name: c\n  context: {cluster: k, user: u}\n",
		fx.api.url, tls_line, fx.api.token);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* GET a Secret that does not exist: KR_ENOTFOUND means TLS and auth went through. */
static enum kr_status kube_get(const char *config_path, struct kr_error *err)
{
	struct kr_kube_config cfg;
	struct kr_kube_client *c;
	cJSON *obj = NULL;
	enum kr_status rc;

	kr_kube_config_init(&cfg);
	kr_error_clear(err);
	rc = kr_kube_config_load(&cfg, config_path, NULL, err);
	assert_int_equal(rc, KR_OK);
	c = kr_kube_client_new(&cfg, err);
	assert_non_null(c);
	rc = kr_kube_get(c, &kr_kube_secrets, "default", "absent", &obj, err);
	cJSON_Delete(obj);
	kr_kube_client_free(c);
	kr_kube_config_release(&cfg);
	return rc;
}

static void assert_refused(enum kr_status rc, const struct kr_error *err)
{
	if (rc != KR_EIO)
		fail_msg("want KR_EIO, got %d: %s", rc, err->msg);
	if (!strstr(err->msg, fx.host))
		fail_msg("message does not name the server %s: %s", fx.host, err->msg);
	if (!strstr(err->msg, "TLS") && !strstr(err->msg, "certificate") &&
	    !strstr(err->msg, "SSL"))
		fail_msg("message does not say it is about TLS: %s", err->msg);
	print_message("refused as it should be: %s\n", err->msg);
}

static void test_kube_client_trusts_only_the_kubeconfig_ca(void **state)
{
	char line[800];
	struct kr_error err;

	(void)state;
	snprintf(line, sizeof(line), "    certificate-authority: %s\n", fx.ca);
	assert_int_equal(kube_get(kubeconfig("right-ca", line), &err), KR_ENOTFOUND);

	snprintf(line, sizeof(line), "    certificate-authority: %s\n", fx.other_ca);
	assert_refused(kube_get(kubeconfig("other-ca", line), &err), &err);
	/* The right CA but another name: the certificate's names are checked too. */
	snprintf(line, sizeof(line),
		 "    certificate-authority: %s\n    tls-server-name: other.example\n", fx.ca);
	assert_refused(kube_get(kubeconfig("wrong-name", line), &err), &err);
	/* No CA in the kubeconfig: the system bundle, which does not know the server's CA. */
	assert_refused(kube_get(kubeconfig("no-ca", ""), &err), &err);
	/* Verification is off only when the kubeconfig says so, as with kubectl. */
	assert_int_equal(
	    kube_get(kubeconfig("insecure", "    insecure-skip-tls-verify: true\n"), &err),
	    KR_ENOTFOUND);
}

/* scrape and query against the HTTPS server with `ca_pem` (NULL: the system bundle). */
struct fetch {
	enum kr_status scrape, query;
	struct kr_error scrape_err, query_err;
};

static void analysis_fetch(const char *ca_pem, struct fetch *out)
{
	struct kr_analysis_http_opts opts = {.timeout_ms = 5000};
	struct kr_counter_snapshot snap;
	struct kr_measurement m;
	char url[256];

	opts.ca_pem = ca_pem;
	opts.ca_pem_len = ca_pem ? strlen(ca_pem) : 0;
	snprintf(url, sizeof(url), "%s/metrics", fx.api.url);
	kr_counter_snapshot_init(&snap);
	kr_error_clear(&out->scrape_err);
	out->scrape =
	    kr_analysis_scrape(url, &opts, "http_requests_total", NULL, 0, &snap, &out->scrape_err);
	kr_counter_snapshot_release(&snap);
	memset(&m, 0, sizeof(m));
	kr_error_clear(&out->query_err);
	out->query = kr_analysis_query_prometheus(fx.api.url, "up", &opts, &m, &out->query_err);
}

static void test_analysis_refuses_unknown_ca(void **state)
{
	char *ca = kr_test_read_file(fx.ca), *other = kr_test_read_file(fx.other_ca);
	const char *refused[] = {NULL /* no caSecretRef: the system bundle */, other};
	struct fetch r;

	(void)state;
	assert_non_null(ca);
	assert_non_null(other);
	for (int i = 0; i < 2; i++) {
		analysis_fetch(refused[i], &r);
		assert_refused(r.scrape, &r.scrape_err);
		assert_refused(r.query, &r.query_err);
	}
	/* The right CA: TLS goes through, and the server's HTTP answer decides. */
	analysis_fetch(ca, &r);
	if (r.scrape == KR_EIO || r.query == KR_EIO)
		fail_msg("with the right CA: %s / %s", r.scrape_err.msg, r.query_err.msg);
	free(ca);
	free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kube_client_trusts_only_the_kubeconfig_ca),
	    cmocka_unit_test(test_analysis_refuses_unknown_ca),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
