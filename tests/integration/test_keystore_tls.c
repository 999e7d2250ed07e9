/* test_keystore_tls.c - the key store over TLS against a TLS-only redis-server (no plaintext
 * port): verification against a CA, the server name, mutual TLS, and the bounds of issue 18
 * (reply size, one deadline per round trip) on the TLS transport too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "keystore/internal.h"
#include "keystore/keystore.h"
#include "testlib.h"

static const char *g_certs;
static struct kr_test_redis g_tls;  /* tls-auth-clients no */
static struct kr_test_redis g_mtls; /* tls-auth-clients yes */

/* A PEM file of the test's certificates as a secret (caller frees). */
static struct kr_secret *pem(const char *name)
{
	char path[700];
	char *text;
	struct kr_secret *s;

	snprintf(path, sizeof(path), "%s/%s", g_certs, name);
	text = kr_test_read_file(path);
	assert_non_null(text);
	s = kr_secret_new(text, strlen(text));
	free(text);
	return s;
}

struct tls_case {
	const char *ca;		 /* file name, NULL: the system bundle */
	const char *server_name; /* NULL: the host */
	int client_cert;
};

static enum kr_status ks_open(int port, const struct tls_case *tc, struct kr_keystore **ks,
			      struct kr_error *err)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_secret *ca = tc->ca ? pem(tc->ca) : NULL;
	struct kr_secret *cert = tc->client_cert ? pem("client.crt") : NULL;
	struct kr_secret *key = tc->client_cert ? pem("client.key") : NULL;
	enum kr_status rc;

	kr_keystore_opts_init(&o);
	o.port = port;
	o.connect_timeout_ms = 3000;
	o.command_timeout_ms = 3000;
	o.tls.enabled = 1;
	o.tls.ca = ca;
	o.tls.server_name = tc->server_name;
	o.tls.client_cert = cert;
	o.tls.client_key = key;
	kr_keystore_layout_init_defaults(&l);
	rc = kr_keystore_new(&o, &l, ks, err);
	kr_secret_free(ca);
	kr_secret_free(cert);
	kr_secret_free(key);
	return rc;
}

static struct kr_keystore *ks_ok(int port, const struct tls_case *tc)
{
	struct kr_keystore *ks = NULL;
	struct kr_error err = {0};

	assert_int_equal(ks_open(port, tc, &ks, &err), KR_OK);
	return ks;
}

static int setup(void **state)
{
	(void)state;
	g_certs = kr_test_make_certs();
	if (!g_certs) {
		fprintf(stderr, "cannot make certificates (openssl CLI)\n");
		return -1;
	}
	if (kr_test_redis_start_tls(&g_tls, g_certs, 0, NULL) != 0 ||
	    kr_test_redis_start_tls(&g_mtls, g_certs, 1, NULL) != 0) {
		fprintf(stderr, "cannot start redis-server with TLS\n");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kr_test_redis_stop(&g_tls);
	kr_test_redis_stop(&g_mtls);
	return 0;
}

/* ---- what works ---- */

static void test_operations_over_tls(void **state)
{
	static const struct tls_case cases[] = {
	    {"ca.crt", NULL, 0},	  /* 127.0.0.1 against the IP SAN */
	    {"ca.crt", "valkey.test", 0}, /* a DNS SAN by serverName */
	    {"ca.crt", "localhost", 1},	  /* a client certificate the server does not need */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_keystore *ks = ks_ok(g_tls.port, &cases[i]);
		struct kr_secret *key = NULL;
		struct kr_error err = {0};
		struct kr_keystore_repair rep;
		const struct kr_secret *keys[1];
		char id[KR_KEY_ID_LEN + 1], marker[64];
		int active = 0;

		assert_int_equal(kr_key_generate("sk_", 32, &key, NULL), KR_OK);
		kr_key_id(key, id);
		assert_int_equal(kr_keystore_activate(ks, key, NULL, NULL, &err), KR_OK);
		assert_int_equal(kr_keystore_is_active(ks, key, &active, &err), KR_OK);
		assert_int_equal(active, 1);
		assert_int_equal(kr_keystore_set_bootstrap(ks, id, NULL, &err), KR_OK);
		assert_int_equal(kr_keystore_get_bootstrap(ks, marker, sizeof(marker), &err),
				 KR_OK);
		assert_string_equal(marker, id);
		keys[0] = key;
		kr_keystore_repair_init(&rep);
		assert_int_equal(kr_keystore_reconcile(ks, keys, 1, id, NULL, &rep, &err), KR_OK);
		assert_int_equal(kr_keystore_repair_count(&rep), 0);
		kr_keystore_repair_release(&rep);
		assert_int_equal(kr_keystore_revoke_key(ks, key, NULL, &err), KR_OK);
		assert_int_equal(kr_keystore_is_active(ks, key, &active, &err), KR_OK);
		assert_int_equal(active, 0);
		kr_secret_free(key);
		kr_keystore_free(ks);
	}
}

static void test_mutual_tls_with_client_certificate(void **state)
{
	struct tls_case tc = {"ca.crt", NULL, 1};
	struct kr_keystore *ks = ks_ok(g_mtls.port, &tc);
	struct kr_error err = {0};

	(void)state;
	assert_int_equal(kr_keystore_ping(ks, &err), KR_OK);
	kr_keystore_free(ks);
}

/* ---- what is refused: a condition naming the server and the TLS error ---- */

static void expect_refused(int port, const struct tls_case *tc, const char *why)
{
	struct kr_keystore *ks = ks_ok(port, tc);
	struct kr_error err = {0};
	char server[64];

	snprintf(server, sizeof(server), "valkey 127.0.0.1:%d: ", port);
	assert_int_equal(kr_keystore_ping(ks, &err), KR_EIO);
	print_message("  refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, server));
	assert_non_null(strstr(err.msg, why));
	kr_keystore_free(ks);
}

static void test_wrong_ca_refused(void **state)
{
	struct tls_case tc = {"other-ca.crt", NULL, 0};

	(void)state;
	expect_refused(g_tls.port, &tc, "TLS handshake failed: certificate verify failed: ");
}

static void test_system_bundle_does_not_know_a_private_ca(void **state)
{
	struct tls_case tc = {NULL, NULL, 0};

	(void)state;
	expect_refused(g_tls.port, &tc, "certificate verify failed");
}

static void test_wrong_server_name_refused(void **state)
{
	struct tls_case tc = {"ca.crt", "valkey.elsewhere.test", 0};

	(void)state;
	expect_refused(g_tls.port, &tc, "certificate verify failed: hostname mismatch");
}

static void test_missing_client_certificate_refused(void **state)
{
	struct tls_case tc = {"ca.crt", NULL, 0};

	(void)state;
	/* TLS 1.3: the server refuses after the handshake, with an alert on the first read */
	expect_refused(g_mtls.port, &tc, "certificate required");
}

static void test_plaintext_client_gets_nothing_from_a_tls_port(void **state)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;
	struct kr_error err = {0};

	(void)state;
	kr_keystore_opts_init(&o);
	o.port = g_tls.port;
	o.connect_timeout_ms = o.command_timeout_ms = 2000;
	kr_keystore_layout_init_defaults(&l);
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_OK);
	assert_int_not_equal(kr_keystore_ping(ks, &err), KR_OK);
	print_message("  plaintext to the TLS port: %s\n", err.msg);
	kr_keystore_free(ks);
}

static void test_bad_pem_named_before_connecting(void **state)
{
	struct kr_keystore_opts o;
	struct kr_keystore_layout l;
	struct kr_keystore *ks = NULL;
	struct kr_error err = {0};
	struct kr_secret *junk = kr_secret_new("not a certificate\n", 18);
	struct kr_secret *cert = pem("client.crt"), *other_key = pem("other-ca.key");

	(void)state;
	kr_keystore_opts_init(&o);
	kr_keystore_layout_init_defaults(&l);
	o.tls.enabled = 1;
	o.tls.ca = junk;
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "tls.caSecretRef"));
	assert_null(ks);
	o.tls.ca = NULL;
	o.tls.client_cert = cert;
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "both"));
	o.tls.client_key = other_key;
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "tls.key does not match tls.crt"));
	o.tls.client_key = junk;
	assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "tls.clientCertSecretRef"));
	kr_secret_free(junk);
	kr_secret_free(cert);
	kr_secret_free(other_key);
}

/* ---- the bounds of issue 18, on TLS ---- */

static enum kr_status raw_call(struct kr_keystore *ks, const char *const *argv, size_t argc,
			       const size_t *lens, struct kr_error *err)
{
	struct kr_ks_arg args[4];
	struct kr_ks_cmd cmd = {argc, args, "test command"};
	redisReply *reply = NULL;
	enum kr_status rc;

	for (size_t i = 0; i < argc; i++)
		args[i] = (struct kr_ks_arg){argv[i], lens && lens[i] ? lens[i] : strlen(argv[i])};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	kr_ks_reply_free(reply);
	return rc;
}

static void test_reply_cap_and_deadline_over_tls(void **state)
{
	struct tls_case tc = {"ca.crt", NULL, 0};
	struct kr_keystore *ks = ks_ok(g_tls.port, &tc);
	struct kr_error err = {0};
	size_t big = KR_KS_REPLY_MAX_BYTES + 4096;
	char *value = malloc(big);
	const char *set[] = {"SET", "kr:big", value};
	const size_t set_lens[] = {0, 0, big};
	const char *get[] = {"GET", "kr:big"};
	const char *sleep[] = {"DEBUG", "SLEEP", "2"};
	int64_t t0;

	(void)state;
	assert_non_null(value);
	memset(value, 'x', big);
	assert_int_equal(raw_call(ks, set, 3, set_lens, &err), KR_OK);
	assert_int_equal(raw_call(ks, get, 2, NULL, &err), KR_ETOOBIG);
	assert_non_null(strstr(err.msg, "larger than 1 MiB"));
	assert_int_equal(kr_keystore_ping(ks, &err), KR_OK); /* a fresh connection */
	kr_keystore_free(ks);
	free(value);

	/* one deadline per round trip: a server that sleeps is left after command_timeout_ms */
	ks = NULL;
	{
		struct kr_keystore_opts o;
		struct kr_keystore_layout l;
		struct kr_secret *ca = pem("ca.crt");

		kr_keystore_opts_init(&o);
		o.port = g_tls.port;
		o.connect_timeout_ms = 2000;
		o.command_timeout_ms = 300;
		o.tls.enabled = 1;
		o.tls.ca = ca;
		kr_keystore_layout_init_defaults(&l);
		assert_int_equal(kr_keystore_new(&o, &l, &ks, &err), KR_OK);
		kr_secret_free(ca);
	}
	assert_int_equal(kr_keystore_ping(ks, &err), KR_OK);
	t0 = kr_mono_ms();
	assert_int_equal(raw_call(ks, sleep, 3, NULL, &err), KR_ETIMEOUT);
	assert_true(kr_mono_ms() - t0 < 1500);
	assert_non_null(strstr(err.msg, "timed out after 300 ms"));
	kr_keystore_free(ks);
}

static void test_reconnects_after_server_restart(void **state)
{
	struct tls_case tc = {"ca.crt", NULL, 0};
	struct kr_keystore *ks = ks_ok(g_tls.port, &tc);
	struct kr_error err = {0};
	enum kr_status rc;

	(void)state;
	assert_int_equal(kr_keystore_ping(ks, &err), KR_OK);
	assert_int_equal(kr_test_redis_restart(&g_tls), 0);
	rc = kr_keystore_ping(ks, &err); /* dropped: reconnect once */
	print_message("  after the restart: %s\n", rc == KR_OK ? "ok" : err.msg);
	assert_int_equal(rc, KR_OK);
	kr_keystore_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_operations_over_tls),
	    cmocka_unit_test(test_mutual_tls_with_client_certificate),
	    cmocka_unit_test(test_wrong_ca_refused),
	    cmocka_unit_test(test_system_bundle_does_not_know_a_private_ca),
	    cmocka_unit_test(test_wrong_server_name_refused),
	    cmocka_unit_test(test_missing_client_certificate_refused),
	    cmocka_unit_test(test_plaintext_client_gets_nothing_from_a_tls_port),
	    cmocka_unit_test(test_bad_pem_named_before_connecting),
	    cmocka_unit_test(test_reply_cap_and_deadline_over_tls),
	    cmocka_unit_test(test_reconnects_after_server_restart),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
