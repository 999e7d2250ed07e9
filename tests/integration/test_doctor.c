/* test_doctor.c - `keyrotator doctor` against the local API server: each check, exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testlib.h"

/* No CRD; every CRD in crds/; only the KeyRotation CRD (installed before KeyStores were). */
static struct kr_test_kubeapi nocrd, withcrd, oldcrd;

/* Run `keyrotator doctor ARGS`; returns the exit code, stdout+stderr in out. */
static int doctor(const char *args, char *out, size_t size)
{
	const char *bin = getenv("KR_BINARY");
	char cmd[2048];
	size_t n;
	FILE *p;
	int status;

	if (!bin)
		fail_msg("KR_BINARY is not set (run through ctest)");
	/* KUBECONFIG points nowhere, so only the flags decide. */
	snprintf(cmd, sizeof(cmd), "KUBECONFIG=/nonexistent '%s' doctor %s 2>&1", bin, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_line(const char *out, const char *needle)
{
	if (!strstr(out, needle))
		fail_msg("doctor output lacks \"%s\":\n%s", needle, out);
}

/* A kubeconfig for `server` with `user` lines (or none); returns its path. */
static const char *kubeconfig(const char *server, const char *user)
{
	static char path[700];
	const char *dir = kr_test_tmpdir("doctor");
	FILE *f;

	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
		"    server: %s\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
		"    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:%s\n",
		server, user ? user : " {}");
	fclose(f);
	return path;
}

static int start_servers(void **state)
{
	char crd[700];
	const char *const extra[] = {"--crd", crd, NULL};

	(void)state;
	snprintf(crd, sizeof(crd), "%s/../crds/keyrotator.io_keyrotations.yaml",
		 kr_test_tests_dir());
	if (kr_test_kubeapi_start(&nocrd, 1, NULL) != 0 ||
	    kr_test_kubeapi_start(&oldcrd, 0, extra) != 0)
		return -1;
	return kr_test_kubeapi_start_crds(&withcrd, 0, NULL);
}

static int stop_servers(void **state)
{
	(void)state;
	kr_test_kubeapi_stop(&nocrd);
	kr_test_kubeapi_stop(&withcrd);
	kr_test_kubeapi_stop(&oldcrd);
	return 0;
}

/* No CRD on the server: that check fails with the fix, the others pass; exit 1. */
static void test_missing_crd(void **state)
{
	char args[1024], out[8192];

	(void)state;
	snprintf(args, sizeof(args), "--kubeconfig %s", nocrd.kubeconfig);
	assert_int_equal(doctor(args, out, sizeof(out)), 1);
	expect_line(out, "ok configuration: kubeconfig ");
	expect_line(out, "ok API server https://127.0.0.1:");
	expect_line(out, "FAIL CRD keyrotations.keyrotator.io: CRD not installed: kubectl apply "
			 "-f crds/\n");
	expect_line(out, "ok Secrets in namespace default can be read\n");
}

static void test_all_good(void **state)
{
	char args[1024], out[8192];

	(void)state;
	snprintf(args, sizeof(args), "--kubeconfig=%s --context kubeapi-local", withcrd.kubeconfig);
	assert_int_equal(doctor(args, out, sizeof(out)), 0);
	expect_line(out, "(context kubeapi-local), server http://127.0.0.1:");
	expect_line(out, ", namespace default\n");
	expect_line(out, "ok API server http://127.0.0.1:");
	expect_line(out, "ok CRD keyrotations.keyrotator.io is served");
	expect_line(out, "ok CRD keystores.keyrotator.io is served");
	expect_line(out, "ok CRD clusterkeystores.keyrotator.io is served");
	expect_line(out, "ok Secrets in namespace default can be read");
	assert_null(strstr(out, "FAIL"));
}

/* Only the KeyRotation CRD (crds/ applied before KeyStores came): the two missing kinds
 * fail with the fix, the rest pass; exit 1. */
static void test_keystore_crds_missing(void **state)
{
	char args[1024], out[8192];

	(void)state;
	snprintf(args, sizeof(args), "--kubeconfig %s", oldcrd.kubeconfig);
	assert_int_equal(doctor(args, out, sizeof(out)), 1);
	expect_line(out, "ok CRD keyrotations.keyrotator.io is served");
	expect_line(out, "FAIL CRD keystores.keyrotator.io: keyrotator.io/v1alpha1 is served but "
			 "has no keystores resource: kubectl apply -f crds/\n");
	expect_line(out, "FAIL CRD clusterkeystores.keyrotator.io: keyrotator.io/v1alpha1 is "
			 "served but has no clusterkeystores resource: kubectl apply -f crds/\n");
	expect_line(out, "ok Secrets in namespace default can be read\n");
}

/* Credentials that may not read Secrets: the 403 message is shown, the token is not. */
static void test_forbidden_secrets(void **state)
{
	char args[1024], out[8192];

	(void)state;
	assert_int_equal(
	    kr_test_kubeapi_admin(&withcrd, "tokens",
				  "{\"token\":\"doctor-lab-token\",\"forbidden\":true}", NULL),
	    200);
	snprintf(args, sizeof(args), "--kubeconfig %s",
		 kubeconfig(withcrd.url, "\n    token: doctor-lab-token"));
	assert_int_equal(doctor(args, out, sizeof(out)), 1);
	expect_line(out, "FAIL Secrets in namespace default: the credentials may not get them: "
			 "Forbidden: secrets \"keyrotator-doctor-probe\" is forbidden: User \"");
	assert_null(strstr(out, "doctor-lab-token"));
}

static void test_unreachable(void **state)
{
	char args[1024], out[8192], url[64];

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", kr_test_free_port());
	snprintf(args, sizeof(args), "--kubeconfig %s", kubeconfig(url, NULL));
	assert_int_equal(doctor(args, out, sizeof(out)), 1);
	expect_line(out, "FAIL API server ");
	expect_line(out, "cannot connect to http://127.0.0.1:");
	assert_null(strstr(out, "FAIL CRD")); /* later checks are skipped */
}

static void test_bad_config_and_usage(void **state)
{
	char out[8192];

	(void)state;
	assert_int_equal(doctor("--kubeconfig /nonexistent/kubeconfig", out, sizeof(out)), 1);
	expect_line(out, "FAIL configuration: ");
	expect_line(out, "/nonexistent/kubeconfig");
	assert_int_equal(doctor("--bogus", out, sizeof(out)), 2);
	assert_int_equal(doctor("--kubeconfig", out, sizeof(out)), 2);
	assert_int_equal(doctor("--context=", out, sizeof(out)), 2);
	assert_int_equal(doctor("--help", out, sizeof(out)), 0);
	expect_line(out, "Usage: keyrotator doctor");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_crd),
	    cmocka_unit_test(test_all_good),
	    cmocka_unit_test(test_keystore_crds_missing),
	    cmocka_unit_test(test_forbidden_secrets),
	    cmocka_unit_test(test_unreachable),
	    cmocka_unit_test(test_bad_config_and_usage),
	};
	return cmocka_run_group_tests(tests, start_servers, stop_servers);
}
