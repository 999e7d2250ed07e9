/* test_kubeconfig.c - kubeconfig loading and merging, in-cluster config, token cache, paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kube.h"
#include "testlib.h"

/* base64 of small PEM blocks; "KEYs3cr3t" is inside the key so leaks are detectable. */
#define CA_PEM "-----BEGIN CERTIFICATE-----\nQ0FDRVJU\n-----END CERTIFICATE-----\n"
#define CA_B64                                                                                     \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRkRSVkpVCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nQ0xJRU5U\n-----END CERTIFICATE-----\n"
#define CERT_B64                                                                                   \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEweEpSVTVVCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nS0VZczNjcjN0\n-----END PRIVATE KEY-----\n"
#define KEY_B64                                                                                    \
	"LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tClMwVlpjek5qY2pOMAotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0t" \
	"Cg=="
#define NOTPEM_B64 "bm90IHBlbSBhdCBhbGw="

/* A minimal valid single-file kubeconfig, in pieces for the malformed-input table. */
#define CUR	   "current-context: c\n"
#define CTX	   "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
#define CLU	   "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
#define USR	   "users: [{name: u, user: {token: s3cr3t}}]\n"
#define CLUX(body) "clusters: [{name: k, cluster: {" body "}}]\n"
#define USRX(body) "users: [{name: u, user: {" body "}}]\n"

static char dir[512];

/* A fresh temp dir per test, and an environment that points nowhere. */
static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s", kr_test_tmpdir("kubeconfig"));
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("POD_NAMESPACE");
	setenv("HOME", dir, 1);
	return 0;
}

/* Replace every "{D}" in `in` with the temp dir. Caller frees. */
static char *subst(const char *in)
{
	struct kr_buf b;

	kr_buf_init(&b);
	for (const char *p = in; *p;) {
		if (!strncmp(p, "{D}", 3)) {
			assert_int_equal(kr_buf_adds(&b, dir), KR_OK);
			p += 3;
		} else {
			assert_int_equal(kr_buf_addch(&b, *p++), KR_OK);
		}
	}
	return kr_buf_detach(&b, NULL);
}

/* Write `len` raw bytes to dir/rel, creating one level of sub-directory. Caller frees. */
static char *write_file(const char *rel, const char *body, size_t len)
{
	char *path, *slash;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
	slash = strrchr(path, '/');
	*slash = '\0';
	mkdir(path, 0700);
	*slash = '/';
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Write `content` with {D} expanded. Caller frees the path. */
static char *write_text(const char *rel, const char *content)
{
	char *body = subst(content);
	char *path = write_file(rel, body, strlen(body));

	free(body);
	return path;
}

static void assert_str_or_null(const char *got, const char *want_tmpl)
{
	char *want;

	if (!want_tmpl) {
		assert_null(got);
		return;
	}
	want = subst(want_tmpl);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
}

static void assert_token(struct kr_kube_config *cfg, const char *want)
{
	struct kr_secret *tok = NULL;
	struct kr_error err;

	assert_int_equal(kr_kube_config_token(cfg, &tok, &err), KR_OK);
	if (!want) {
		assert_null(tok);
		return;
	}
	assert_non_null(tok);
	assert_int_equal(kr_secret_len(tok), strlen(want));
	assert_memory_equal(kr_secret_data(tok), want, strlen(want));
	kr_secret_free(tok);
}

/* ---- every field ---- */

struct field_case {
	const char *file; /* written as {D}/<file> */
	const char *yaml;
	const char *server, *ns, *ca_file, *ca_data, *tls_name;
	int insecure;
	const char *cert_file, *key_file, *cert_data, *key_data, *token, *token_file, *token_now;
};

static const struct field_case field_cases[] = {
    {"config",
     "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
     "clusters:\n- name: c1\n  cluster:\n    server: https://api.example.com:6443/\n"
     "    certificate-authority-data: " CA_B64 "\n    tls-server-name: api.internal\n"
     "users:\n- name: u1\n  user:\n    token: s3cr3t-token\n"
     "    client-certificate-data: " CERT_B64 "\n    client-key-data: " KEY_B64 "\n"
     "contexts:\n- name: main\n  context:\n    cluster: c1\n    user: u1\n"
     "    namespace: team-a\n",
     "https://api.example.com:6443", "team-a", NULL, CA_PEM, "api.internal", 0, NULL, NULL,
     CERT_PEM, KEY_PEM, "s3cr3t-token", NULL, "s3cr3t-token"},
    /* relative paths resolve against the kubeconfig's directory, absolute ones stay */
    {"sub/config",
     "current-context: files\n"
     "clusters:\n- name: c\n  cluster: {server: 'api.local:8443', insecure-skip-tls-verify: "
     "true}\n"
     "users:\n- name: u\n  user:\n    tokenFile: tok\n"
     "    client-certificate: ../certs/client.crt\n    client-key: {D}/certs/client.key\n"
     "contexts:\n- {name: files, context: {cluster: c, user: u}}\n",
     "https://api.local:8443", "default", NULL, NULL, NULL, 1, "{D}/sub/../certs/client.crt",
     "{D}/certs/client.key", NULL, NULL, NULL, "{D}/sub/tok", "file-token"},
    /* certificate-authority file, http, no user, null values are "not set" */
    {"config",
     "current-context: plain\n"
     "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:8080', certificate-authority: "
     "ca.crt, tls-server-name: ~, insecure-skip-tls-verify: false}}]\n"
     "users: []\n"
     "contexts: [{name: plain, context: {cluster: c, namespace: null}}]\n",
     "http://127.0.0.1:8080", "default", "{D}/ca.crt", NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL},
    /* base64: one and two '=' of padding, wrapped lines (LF from a block scalar, CRLF) */
    {"config",
     "current-context: b64\n"
     "clusters:\n- name: c\n  cluster:\n    server: https://b64.example\n"
     "    certificate-authority-data: |\n"
     "      LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkEK\n"
     "      LS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=\n"
     "users:\n- name: u\n  user:\n"
     "    client-certificate-data: "
     "\"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFC\\r\\nCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K\"\n"
     "    client-key-data: "
     "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFCQwotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==\n"
     "contexts:\n- {name: b64, context: {cluster: c, user: u, namespace: \"quoted-ns\"}}\n",
     "https://b64.example", "quoted-ns", NULL,
     "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n", NULL, 0, NULL, NULL,
     "-----BEGIN CERTIFICATE-----\nAB\n-----END CERTIFICATE-----\n",
     "-----BEGIN CERTIFICATE-----\nABC\n-----END CERTIFICATE-----\n", NULL, NULL, NULL},
    /* kubectl: token takes precedence over tokenFile (which need not even exist) */
    {"config",
     "current-context: c\n" CTX CLU
     "users: [{name: u, user: {token: the-token, tokenFile: /nonexistent/tok}}]\n",
     "https://x", "default", NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, "the-token", NULL,
     "the-token"},
};

static void check_fields(const struct field_case *c, struct kr_kube_config *cfg)
{
	assert_str_or_null(cfg->server, c->server);
	assert_str_or_null(cfg->namespace_, c->ns);
	assert_str_or_null(cfg->ca_file, c->ca_file);
	assert_string_equal(cfg->ca_data.data, c->ca_data ? c->ca_data : "");
	assert_str_or_null(cfg->tls_server_name, c->tls_name);
	assert_int_equal(cfg->insecure_skip_tls_verify, c->insecure);
	assert_str_or_null(cfg->client_cert_file, c->cert_file);
	assert_str_or_null(cfg->client_key_file, c->key_file);
	assert_string_equal(cfg->client_cert_data.data, c->cert_data ? c->cert_data : "");
	if (c->key_data)
		assert_string_equal(kr_secret_data(cfg->client_key_data), c->key_data);
	else
		assert_null(cfg->client_key_data);
	if (c->token)
		assert_string_equal(kr_secret_data(cfg->token), c->token);
	else
		assert_null(cfg->token);
	assert_str_or_null(cfg->token_file, c->token_file);
	assert_token(cfg, c->token_now);
}

static void test_every_field(void **state)
{
	(void)state;
	free(write_text("sub/tok", "file-token\n"));
	free(write_text("certs/client.crt", CERT_PEM));
	free(write_text("certs/client.key", KEY_PEM));
	free(write_text("ca.crt", CA_PEM));
	for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		char *path = write_text(field_cases[i].file, field_cases[i].yaml);
		char *source;

		kr_kube_config_init(&cfg);
		kr_error_clear(&err);
		if (kr_kube_config_load(&cfg, path, NULL, &err) != KR_OK)
			fail_msg("case %zu: %s", i, err.msg);
		check_fields(&field_cases[i], &cfg);
		assert_true(asprintf(&source, "kubeconfig %s (context ", path) > 0);
		assert_memory_equal(cfg.source, source, strlen(source));
		free(source);
		kr_kube_config_release(&cfg);
		free(path);
	}
}

/* ---- $KUBECONFIG merging ---- */

#define MERGE_A                                                                                    \
	"current-context: one\n"                                                                   \
	"clusters: [{name: shared, cluster: {server: 'https://from-a'}}]\n"                        \
	"users: [{name: ua, user: {token: token-a}}]\n"
#define MERGE_B "current-context: two\n" MERGE_B_BODY
#define MERGE_B_BODY                                                                               \
	"clusters:\n- {name: shared, cluster: {server: 'https://from-b'}}\n"                       \
	"- {name: only-b, cluster: {server: 'https://only-b'}}\n"                                  \
	"users: [{name: ua, user: {token: token-b}}, {name: ub, user: {token: token-ub}}]\n"       \
	"contexts:\n- {name: one, context: {cluster: shared, user: ua, namespace: ns-one}}\n"      \
	"- {name: two, context: {cluster: only-b, user: ub}}\n"

static void test_kubeconfig_env_merge(void **state)
{
	static const struct {
		const char *env, *context, *server, *token, *ns, *source_file;
	} cases[] = {
	    /* a's current-context and a's entries win; the context itself lives in b */
	    {"{D}/a::{D}/missing:{D}/b", NULL, "https://from-a", "token-a", "ns-one", "b"},
	    {"{D}/a:{D}/b", "two", "https://only-b", "token-ub", "default", "b"},
	    /* reversed: b's current-context (two) and b's user */
	    {"{D}/b:{D}/a", NULL, "https://only-b", "token-ub", "default", "b"},
	    {"{D}/b:{D}/a", "one", "https://from-b", "token-b", "ns-one", "b"},
	    /* a file listed twice counts once */
	    {"{D}/b:{D}/b:{D}/a", NULL, "https://only-b", "token-ub", "default", "b"},
	};
	(void)state;
	free(write_text("a", MERGE_A));
	free(write_text("b", MERGE_B));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		char *env = subst(cases[i].env), *source;

		setenv("KUBECONFIG", env, 1);
		kr_kube_config_init(&cfg);
		if (kr_kube_config_load(&cfg, NULL, cases[i].context, &err) != KR_OK)
			fail_msg("case %zu: %s", i, err.msg);
		assert_string_equal(cfg.server, cases[i].server);
		assert_string_equal(kr_secret_data(cfg.token), cases[i].token);
		assert_string_equal(cfg.namespace_, cases[i].ns);
		assert_true(
		    asprintf(&source, "kubeconfig %s/%s (context ", dir, cases[i].source_file) > 0);
		assert_memory_equal(cfg.source, source, strlen(source));
		free(source);
		kr_kube_config_release(&cfg);
		free(env);
	}
}

/* The error names the file that set current-context; ~/.kube/config is not read. */
static void test_kubeconfig_env_errors(void **state)
{
	struct kr_kube_config cfg;
	struct kr_error err;
	char *a = write_text("a", "current-context: nope\n" CLU USR);
	char *b = write_text("b", CUR CTX CLU USR);
	char *env, *want;

	(void)state;
	free(write_text(".kube/config", CUR CTX CLU USR));
	assert_true(asprintf(&env, "%s:%s", a, b) > 0);
	setenv("KUBECONFIG", env, 1);
	kr_kube_config_init(&cfg);
	assert_int_equal(kr_kube_config_load(&cfg, NULL, NULL, &err), KR_EINVAL);
	assert_true(asprintf(&want, "kubeconfig %s: current-context \"nope\" not found in contexts",
			     a) > 0);
	assert_string_equal(err.msg, want);
	free(want);
	assert_null(cfg.server);

	/* none of the listed files exists: in-cluster, not ~/.kube/config */
	setenv("KUBECONFIG", "/nonexistent/x:/nonexistent/y", 1);
	assert_int_equal(kr_kube_config_load(&cfg, NULL, NULL, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "KUBERNETES_SERVICE_HOST is not set"));
	assert_non_null(strstr(err.msg, "$KUBECONFIG=/nonexistent/x:/nonexistent/y"));
	kr_kube_config_release(&cfg);
	free(env);
	free(a);
	free(b);
}

/* ---- where the config comes from ---- */

static void test_load_order(void **state)
{
	struct kr_kube_config cfg;
	struct kr_error err;
	char *home_cfg;

	(void)state;
	kr_kube_config_init(&cfg);
	/* nothing at all */
	assert_int_equal(kr_kube_config_load(&cfg, NULL, NULL, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "no kubeconfig ("));
	assert_non_null(strstr(err.msg, "in-cluster: KUBERNETES_SERVICE_HOST is not set"));
	assert_int_equal(kr_kube_config_load(&cfg, NULL, "prod", &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "context \"prod\" was given but there is no kubeconfig"));
	/* ~/.kube/config */
	home_cfg = write_text(".kube/config", CUR CTX CLU USR);
	assert_int_equal(kr_kube_config_load(&cfg, NULL, NULL, &err), KR_OK);
	assert_string_equal(cfg.server, "https://x");
	assert_non_null(strstr(cfg.source, home_cfg));
	/* an explicit path must exist */
	assert_int_equal(kr_kube_config_load(&cfg, "/nonexistent/kc", NULL, &err), KR_EINVAL);
	assert_string_equal(err.msg, "kubeconfig /nonexistent/kc: cannot read: No such file or "
				     "directory");
	assert_null(cfg.server);
	assert_int_equal(kr_kube_config_load(&cfg, dir, NULL, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, ": not a regular file"));
	/* a relative --kubeconfig resolves relative paths against its absolute directory */
	free(write_text("rel/config", CUR CTX CLUX("server: 'https://x', certificate-authority: "
						   "ca.crt") USR));
	free(write_text("rel/ca.crt", CA_PEM));
	{
		char old[4096], *want;

		assert_non_null(getcwd(old, sizeof(old)));
		assert_int_equal(chdir(dir), 0);
		assert_int_equal(kr_kube_config_load(&cfg, "rel/config", NULL, &err), KR_OK);
		assert_int_equal(chdir(old), 0);
		assert_true(asprintf(&want, "%s/rel/ca.crt", dir) > 0);
		assert_string_equal(cfg.ca_file, want);
		free(want);
	}
	kr_kube_config_release(&cfg);
	free(home_cfg);
}

static void test_context_override(void **state)
{
	static const struct {
		const char *context;
		enum kr_status rc;
		const char *server_or_msg;
	} cases[] = {
	    {NULL, KR_OK, "https://from-b"},
	    {"", KR_OK, "https://from-b"},
	    {"one", KR_OK, "https://from-b"},
	    {"two", KR_OK, "https://only-b"},
	    {"three", KR_EINVAL, "context \"three\" not found in contexts"},
	};
	char *b = write_text("b", "current-context: one\n" MERGE_B_BODY);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		enum kr_status rc;

		kr_kube_config_init(&cfg);
		rc = kr_kube_config_load(&cfg, b, cases[i].context, &err);
		assert_int_equal(rc, cases[i].rc);
		if (rc == KR_OK)
			assert_string_equal(cfg.server, cases[i].server_or_msg);
		else
			assert_non_null(strstr(err.msg, cases[i].server_or_msg));
		kr_kube_config_release(&cfg);
	}
	free(b);
}

/* ---- malformed input ---- */

static const struct {
	const char *yaml, *want;
} bad_cases[] = {
    {"", ": file is empty"},
    {"# only a comment\n\n", ": file is empty"},
    {"a: [\n", ": line 2 column 1: YAML syntax error: "},
    {"a: b\n  c: d\n", ": line 2 column 4: YAML syntax error: mapping values are not allowed"},
    {"a: \"unterminated\n", "YAML syntax error"},
    {"a: \xc3\x28\n", ": byte offset 4: not UTF-8 text"},
    {"- a\n- b\n", ": expected a mapping at the top level, got a list"},
    {"just text\n", ": expected a mapping at the top level, got a string"},
    {"clusters: {a: b}\n", ": clusters: expected a list, got a mapping"},
    {"users: [x]\n", ": users[0]: expected a mapping, got a string"},
    {"clusters: [{cluster: {server: 'https://x'}}]\n", ": clusters[0].name: missing"},
    {"contexts: [{name: [a]}]\n", ": contexts[0].name: expected a string"},
    {"clusters: [{name: k}, {name: j}, {name: k}]\n",
     ": clusters[2].name: duplicate name \"k\" (also clusters[0])"},
    {"users: [{name: u, user: s3cr3t}]\n", ": users[0].user: expected a mapping, got a string"},
    {"current-context: prod\n" CLU USR, ": current-context \"prod\" not found in contexts"},
    {CTX CLU USR, ": current-context is not set and no context was given"},
    {"current-context: [c]\n" CTX CLU USR, ": current-context: expected a string"},
    {CUR "contexts: [{name: c, context: {user: u}}]\n" CLU USR,
     ": contexts[0].context.cluster: missing"},
    {CUR "contexts: [{name: c}]\n" CLU USR, ": contexts[0].context.cluster: missing"},
    {CUR CTX USR, ": contexts[0].context.cluster: cluster \"k\" not found in clusters"},
    {CUR CTX CLU, ": contexts[0].context.user: user \"u\" not found in users"},
    {CUR "contexts: [{name: c, context: {cluster: k, namespace: [x]}}]\n" CLU,
     ": contexts[0].context.namespace: expected a string, got a list"},
    {CUR CTX CLUX("insecure-skip-tls-verify: true") USR, ": clusters[0].cluster.server: missing"},
    {CUR CTX "clusters: [{name: k}]\n" USR, ": clusters[0].cluster.server: missing"},
    {CUR CTX "clusters: [{name: k, cluster: [a]}]\n" USR,
     ": clusters[0].cluster: expected a mapping, got a list"},
    {CUR CTX CLUX("server: [a]") USR,
     ": clusters[0].cluster.server: expected a string, got a list"},
    {CUR CTX CLUX("server: 'ftp://x'") USR, ": clusters[0].cluster.server: unsupported scheme"},
    {CUR CTX CLUX("server: 'https://'") USR, ": clusters[0].cluster.server: not a URL"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority-data: '!!!!'") USR,
     ": clusters[0].cluster.certificate-authority-data: invalid base64"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority-data: 'bm90IHBlbSBhdCBhbGw'") USR,
     ": clusters[0].cluster.certificate-authority-data: invalid base64"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority-data: 'bm90=IHBl'") USR,
     ": clusters[0].cluster.certificate-authority-data: invalid base64"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority-data: " NOTPEM_B64) USR,
     ": clusters[0].cluster.certificate-authority-data: decoded value is not PEM"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority: missing.crt") USR,
     ": clusters[0].cluster.certificate-authority: cannot read {D}/missing.crt: No such file"},
    {CUR CTX CLUX("server: 'https://x', certificate-authority: ca.crt, "
		  "certificate-authority-data: " CA_B64) USR,
     ": clusters[0].cluster.certificate-authority-data: certificate-authority is also set"},
    {CUR CTX CLUX("server: 'https://x', insecure-skip-tls-verify: true, "
		  "certificate-authority-data: " CA_B64) USR,
     ": clusters[0].cluster.insecure-skip-tls-verify: cannot be combined with a certificate "
     "authority"},
    {CUR CTX CLUX("server: 'https://x', insecure-skip-tls-verify: maybe") USR,
     ": clusters[0].cluster.insecure-skip-tls-verify: expected true or false, got \"maybe\""},
    {CUR CTX CLU USRX("client-certificate-data: " CERT_B64 ", client-key-data: 's3cr3t!!'"),
     ": users[0].user.client-key-data: invalid base64"},
    {CUR CTX CLU USRX("client-certificate-data: " CERT_B64 ", client-key-data: " NOTPEM_B64),
     ": users[0].user.client-key-data: decoded value is not PEM"},
    {CUR CTX CLU USRX("client-certificate-data: 'x', client-key-data: " KEY_B64),
     ": users[0].user.client-certificate-data: invalid base64"},
    {CUR CTX CLU USRX("client-certificate-data: " CERT_B64), ": users[0].user.client-key: missing"},
    {CUR CTX CLU USRX("client-key-data: " KEY_B64), ": users[0].user.client-certificate: missing"},
    {CUR CTX CLU USRX("client-certificate: ca.crt, client-certificate-data: " CERT_B64
		      ", client-key-data: " KEY_B64),
     ": users[0].user.client-certificate-data: client-certificate is also set"},
    {CUR CTX CLU USRX("client-certificate-data: " CERT_B64 ", client-key: ca.crt, "
		      "client-key-data: " KEY_B64),
     ": users[0].user.client-key-data: client-key is also set"},
    {CUR CTX CLU USRX("client-certificate: nope.crt, client-key: ca.crt"),
     ": users[0].user.client-certificate: cannot read {D}/nope.crt"},
    {CUR CTX CLU USRX("tokenFile: missing-token"),
     ": users[0].user.tokenFile: cannot read {D}/missing-token: No such file"},
    {CUR CTX CLU USRX("tokenFile: empty-token"),
     ": users[0].user.tokenFile: token file {D}/empty-token: file is empty"},
    {CUR CTX CLU USRX("token: [s3cr3t]"), ": users[0].user.token: expected a string, got a list"},
    {CUR CTX CLU USRX("token: \"s3c\\0r3t\""), ": users[0].user.token: contains a NUL character"},
    {CUR CTX CLU USRX("exec: {command: get-token}"), ": users[0].user.exec: not supported"},
    {CUR CTX CLU USRX("username: admin, password: s3cr3t"),
     ": users[0].user.username: not supported"},
    {CUR CTX CLU "users: [{name: x, user: {token: s3cr3t}}, {name: u, user: {client-key-data: "
		 "'s3cr3t**', client-certificate-data: " CERT_B64 "}}]\n",
     ": users[1].user.client-key-data: invalid base64"},
};

static void test_malformed(void **state)
{
	(void)state;
	free(write_text("ca.crt", CA_PEM));
	free(write_text("empty-token", " \n"));
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		char *path = write_text("config", bad_cases[i].yaml);
		char *want = subst(bad_cases[i].want);
		enum kr_status rc;

		kr_kube_config_init(&cfg);
		kr_error_clear(&err);
		rc = kr_kube_config_load(&cfg, path, NULL, &err);
		if (rc != KR_EINVAL || !strstr(err.msg, want) ||
		    strncmp(err.msg, "kubeconfig ", 11) || !strstr(err.msg, path))
			fail_msg("case %zu: rc %d, got \"%s\", want \"%s\"", i, rc, err.msg, want);
		/* no token or key text ever reaches a message */
		assert_null(strstr(err.msg, "s3cr3t"));
		assert_null(cfg.server);
		assert_null(cfg.token);
		kr_kube_config_release(&cfg);
		kr_kube_config_release(&cfg);
		free(want);
		free(path);
	}
}

/* Random bytes, YAML-ish noise and every truncation of a valid file: an error, never a crash. */
static void test_garbage(void **state)
{
	static const char alphabet[] = "{}[]:-, \n\t\"'&*!|>#?%@`abcname:cluster\\";
	const char *valid = field_cases[0].yaml;
	size_t vlen = strlen(valid);
	char buf[600];
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 600; i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		size_t len;
		char *path;
		enum kr_status rc;

		if (i < 200) {
			len = (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t j = 0; j < len; j++)
				buf[j] = (char)rand_r(&seed);
		} else if (i < 400) {
			len = (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t j = 0; j < len; j++)
				buf[j] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
		} else {
			len = vlen < sizeof(buf) ? vlen : sizeof(buf);
			memcpy(buf, valid, len);
			for (int k = 0; k < 3; k++)
				buf[(size_t)rand_r(&seed) % len] = (char)rand_r(&seed);
		}
		path = write_file("garbage", buf, len);
		kr_kube_config_init(&cfg);
		rc = kr_kube_config_load(&cfg, path, NULL, &err);
		assert_true(rc == KR_OK || rc == KR_EINVAL);
		if (rc != KR_OK)
			assert_true(err.msg[0] != '\0');
		kr_kube_config_release(&cfg);
		free(path);
	}
	/* every prefix of the valid file */
	for (size_t len = 0; len <= vlen; len++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		char *path = write_file("prefix", valid, len);
		enum kr_status rc;

		kr_kube_config_init(&cfg);
		rc = kr_kube_config_load(&cfg, path, NULL, &err);
		assert_true(rc == KR_OK || rc == KR_EINVAL);
		kr_kube_config_release(&cfg);
		free(path);
	}
}

static void test_release_is_safe(void **state)
{
	struct kr_kube_config cfg;
	struct kr_error err;
	char *path = write_text("config", CUR CTX CLU USR);

	(void)state;
	kr_kube_config_init(&cfg);
	kr_kube_config_release(&cfg);
	kr_kube_config_release(&cfg);
	assert_int_equal(kr_kube_config_load(&cfg, "/nonexistent", NULL, NULL), KR_EINVAL);
	kr_kube_config_release(&cfg);
	/* loading over a loaded config replaces it without leaking */
	assert_int_equal(kr_kube_config_load(&cfg, path, NULL, &err), KR_OK);
	assert_int_equal(kr_kube_config_load(&cfg, path, NULL, &err), KR_OK);
	assert_int_equal(kr_kube_config_in_cluster(&cfg, dir, NULL), KR_EINVAL);
	assert_null(cfg.server);
	kr_kube_config_release(&cfg);
	kr_kube_config_release(&cfg);
	free(path);
}

/* ---- in-cluster ---- */

static void write_sa(const char *token, const char *ns, int with_ca)
{
	if (token)
		free(write_text("sa/token", token));
	if (ns)
		free(write_text("sa/namespace", ns));
	if (with_ca)
		free(write_text("sa/ca.crt", CA_PEM));
}

static void test_in_cluster(void **state)
{
	static const struct {
		const char *host, *port, *pod_ns, *ns_file;
		int with_ca;
		enum kr_status rc;
		const char *server_or_msg, *ns;
	} cases[] = {
	    {"10.96.0.1", "443", NULL, "kube-apps\n", 1, KR_OK, "https://10.96.0.1:443",
	     "kube-apps"},
	    {"fd00:10:96::1", "443", NULL, NULL, 0, KR_OK, "https://[fd00:10:96::1]:443",
	     "default"},
	    {"kubernetes.default.svc", "6443", "from-env", "kube-apps", 1, KR_OK,
	     "https://kubernetes.default.svc:6443", "from-env"},
	    {NULL, "443", NULL, NULL, 1, KR_EINVAL,
	     "in-cluster: KUBERNETES_SERVICE_HOST is not set", NULL},
	    {"10.0.0.1", NULL, NULL, NULL, 1, KR_EINVAL,
	     "in-cluster: KUBERNETES_SERVICE_PORT is not set", NULL},
	    {"10.0.0.1", "https", NULL, NULL, 1, KR_EINVAL,
	     "in-cluster: KUBERNETES_SERVICE_PORT: not a port number: \"https\"", NULL},
	    {"10.0.0.1", "70000", NULL, NULL, 1, KR_EINVAL, "not a port number", NULL},
	    {"a/b", "443", NULL, NULL, 1, KR_EINVAL, "KUBERNETES_SERVICE_HOST: not a host name",
	     NULL},
	};
	char *sa;

	(void)state;
	assert_true(asprintf(&sa, "%s/sa", dir) > 0);
	write_sa("in-cluster-token\n", NULL, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_kube_config cfg;
		struct kr_error err;
		char ca[600], ns[600];
		enum kr_status rc;

		snprintf(ca, sizeof(ca), "%s/ca.crt", sa);
		snprintf(ns, sizeof(ns), "%s/namespace", sa);
		unlink(ca);
		unlink(ns);
		write_sa(NULL, cases[i].ns_file, cases[i].with_ca);
		cases[i].host ? setenv("KUBERNETES_SERVICE_HOST", cases[i].host, 1)
			      : unsetenv("KUBERNETES_SERVICE_HOST");
		cases[i].port ? setenv("KUBERNETES_SERVICE_PORT", cases[i].port, 1)
			      : unsetenv("KUBERNETES_SERVICE_PORT");
		cases[i].pod_ns ? setenv("POD_NAMESPACE", cases[i].pod_ns, 1)
				: unsetenv("POD_NAMESPACE");
		kr_kube_config_init(&cfg);
		rc = kr_kube_config_in_cluster(&cfg, sa, &err);
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d: %s", i, rc, err.msg);
		if (rc != KR_OK) {
			assert_non_null(strstr(err.msg, cases[i].server_or_msg));
			assert_null(cfg.server);
			kr_kube_config_release(&cfg);
			continue;
		}
		assert_string_equal(cfg.server, cases[i].server_or_msg);
		assert_string_equal(cfg.namespace_, cases[i].ns);
		assert_str_or_null(cfg.ca_file, cases[i].with_ca ? ca : NULL);
		assert_null(cfg.token);
		assert_token(&cfg, "in-cluster-token");
		assert_non_null(strstr(cfg.source, "in-cluster"));
		kr_kube_config_release(&cfg);
	}
	free(sa);
}

/* The kubeconfig fallback reaches in-cluster, and a missing token is reported at load. */
static void test_in_cluster_errors(void **state)
{
	struct kr_kube_config cfg;
	struct kr_error err;
	char *sa, *want;

	(void)state;
	assert_true(asprintf(&sa, "%s/sa", dir) > 0);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	kr_kube_config_init(&cfg);
	assert_int_equal(kr_kube_config_in_cluster(&cfg, sa, &err), KR_EINVAL);
	assert_true(
	    asprintf(&want, "in-cluster: token file %s/token: cannot read: No such file", sa) > 0);
	assert_non_null(strstr(err.msg, want));
	free(want);
	write_sa("\n\n", NULL, 0);
	assert_int_equal(kr_kube_config_in_cluster(&cfg, sa, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "/sa/token: file is empty"));
	/* no kubeconfig anywhere: load() tries in-cluster (default sa dir, absent here) */
	assert_int_equal(kr_kube_config_load(&cfg, NULL, NULL, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "and in-cluster: token file "
					"/var/run/secrets/kubernetes.io/serviceaccount/token"));
	kr_kube_config_release(&cfg);
	free(sa);
}

static void set_mtime(const char *path, time_t sec)
{
	struct timespec ts[2] = {{sec, 0}, {sec, 0}};

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Rewrite the token without sleeping: mtimes are set explicitly. */
static void rewrite_token(const char *path, const char *token, time_t mtime)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(token, f);
	assert_int_equal(fclose(f), 0);
	set_mtime(path, mtime);
}

static void test_token_file_reread(void **state)
{
	struct kr_kube_config cfg;
	struct kr_error err;
	char *sa, *tok;

	(void)state;
	assert_true(asprintf(&sa, "%s/sa", dir) > 0);
	assert_true(asprintf(&tok, "%s/sa/token", dir) > 0);
	write_sa("first\n", NULL, 0);
	set_mtime(tok, 1000000);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	kr_kube_config_init(&cfg);
	assert_int_equal(kr_kube_config_in_cluster(&cfg, sa, &err), KR_OK);
	assert_token(&cfg, "first");

	/* same mtime: the cached token stays, even when the stat happens */
	rewrite_token(tok, "second", 1000000);
	cfg.file_token_checked = 0; /* 0 = check on the next call */
	assert_token(&cfg, "first");
	/* changed mtime, but checked less than a second ago: still cached */
	set_mtime(tok, 2000000);
	cfg.file_token_checked = (time_t)1 << 40; /* "just checked" (a monotonic time ahead) */
	assert_token(&cfg, "first");
	/* changed mtime, check due: re-read */
	cfg.file_token_checked = 0;
	assert_token(&cfg, "second");
	/* the file disappears (volume swap): the last good token is kept */
	assert_int_equal(unlink(tok), 0);
	cfg.file_token_checked = 0;
	assert_token(&cfg, "second");
	rewrite_token(tok, "  third \n", 3000000);
	cfg.file_token_checked = 0;
	assert_token(&cfg, "third");
	kr_kube_config_release(&cfg);
	free(tok);
	free(sa);
}

struct token_thread {
	struct kr_kube_config *cfg;
	int ok;
};

static void *token_worker(void *arg)
{
	struct token_thread *t = arg;

	for (int i = 0; i < 500; i++) {
		struct kr_secret *s = NULL;

		if (kr_kube_config_token(t->cfg, &s, NULL) != KR_OK || !s)
			return NULL;
		if (strcmp(kr_secret_data(s), "tok-a") && strcmp(kr_secret_data(s), "tok-b")) {
			kr_secret_free(s);
			return NULL;
		}
		kr_secret_free(s);
	}
	t->ok = 1;
	return NULL;
}

static void test_token_threads(void **state)
{
	struct kr_kube_config cfg;
	struct token_thread t[4];
	pthread_t th[4];
	char *sa, *tok;

	(void)state;
	assert_true(asprintf(&sa, "%s/sa", dir) > 0);
	assert_true(asprintf(&tok, "%s/sa/token", dir) > 0);
	write_sa("tok-a", NULL, 0);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	kr_kube_config_init(&cfg);
	assert_int_equal(kr_kube_config_in_cluster(&cfg, sa, NULL), KR_OK);
	for (int i = 0; i < 4; i++) {
		t[i].cfg = &cfg;
		t[i].ok = 0;
		assert_int_equal(pthread_create(&th[i], NULL, token_worker, &t[i]), 0);
	}
	for (int i = 0; i < 20; i++)
		rewrite_token(tok, i % 2 ? "tok-a" : "tok-b", 4000000 + i);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(t[i].ok);
	}
	kr_kube_config_release(&cfg);
	free(tok);
	free(sa);
}

/* ---- resources and paths ---- */

static void test_resources(void **state)
{
	static const struct {
		const struct kr_kube_resource *res;
		const char *group, *version, *plural, *kind;
	} cases[] = {
	    {&kr_kube_secrets, "", "v1", "secrets", "Secret"},
	    {&kr_kube_events, "", "v1", "events", "Event"},
	    {&kr_kube_deployments, "apps", "v1", "deployments", "Deployment"},
	    {&kr_kube_statefulsets, "apps", "v1", "statefulsets", "StatefulSet"},
	    {&kr_kube_daemonsets, "apps", "v1", "daemonsets", "DaemonSet"},
	    {&kr_kube_leases, "coordination.k8s.io", "v1", "leases", "Lease"},
	    {&kr_kube_keyrotations, "keyrotator.io", "v1alpha1", "keyrotations", "KeyRotation"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(cases[i].res->group, cases[i].group);
		assert_string_equal(cases[i].res->version, cases[i].version);
		assert_string_equal(cases[i].res->plural, cases[i].plural);
		assert_string_equal(cases[i].res->kind, cases[i].kind);
		assert_int_equal(cases[i].res->namespaced, 1);
	}
}

static void test_kube_path(void **state)
{
	static const struct kr_kube_resource namespaces = {"", "v1", "namespaces", "Namespace", 0};
	static const struct kr_kube_resource crds = {"apiextensions.k8s.io", "v1",
						     "customresourcedefinitions",
						     "CustomResourceDefinition", 0};
	static const struct {
		const struct kr_kube_resource *res;
		const char *ns, *name, *sub;
		enum kr_status rc;
		const char *want;
	} cases[] = {
	    {&kr_kube_secrets, "default", NULL, NULL, KR_OK, "/api/v1/namespaces/default/secrets"},
	    {&kr_kube_secrets, NULL, NULL, NULL, KR_OK, "/api/v1/secrets"},
	    {&kr_kube_secrets, "", NULL, NULL, KR_OK, "/api/v1/secrets"},
	    {&kr_kube_secrets, "ns", "s1", NULL, KR_OK, "/api/v1/namespaces/ns/secrets/s1"},
	    {&kr_kube_events, "ns", NULL, NULL, KR_OK, "/api/v1/namespaces/ns/events"},
	    {&kr_kube_deployments, "ns", "web", NULL, KR_OK,
	     "/apis/apps/v1/namespaces/ns/deployments/web"},
	    {&kr_kube_statefulsets, NULL, NULL, NULL, KR_OK, "/apis/apps/v1/statefulsets"},
	    {&kr_kube_leases, "kube-system", "keyrotator", NULL, KR_OK,
	     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/keyrotator"},
	    {&kr_kube_keyrotations, "ns", "kr", "status", KR_OK,
	     "/apis/keyrotator.io/v1alpha1/namespaces/ns/keyrotations/kr/status"},
	    {&kr_kube_deployments, "ns", "web", "scale", KR_OK,
	     "/apis/apps/v1/namespaces/ns/deployments/web/scale"},
	    /* cluster-scoped: the namespace is ignored */
	    {&namespaces, "ignored", "team-a", NULL, KR_OK, "/api/v1/namespaces/team-a"},
	    {&crds, NULL, "keyrotations.keyrotator.io", NULL, KR_OK,
	     "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
	     "keyrotations.keyrotator.io"},
	    /* escaping */
	    {&kr_kube_secrets, "n s", "a b/c%?#\xc3\xa9~_-.", NULL, KR_OK,
	     "/api/v1/namespaces/n%20s/secrets/a%20b%2Fc%25%3F%23%C3%A9~_-."},
	    {&kr_kube_secrets, "ns", "..", NULL, KR_EINVAL, ""},
	    {&kr_kube_secrets, "..", NULL, NULL, KR_EINVAL, ""},
	    {&kr_kube_secrets, "ns", NULL, "status", KR_EINVAL, ""},
	    {&kr_kube_secrets, NULL, "s1", NULL, KR_EINVAL, ""},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_buf b;

		kr_buf_init(&b);
		assert_int_equal(kr_buf_adds(&b, "X"), KR_OK);
		assert_int_equal(
		    kr_kube_path(&b, cases[i].res, cases[i].ns, cases[i].name, cases[i].sub),
		    cases[i].rc);
		/* appends; on error the buffer is left as it was */
		assert_int_equal(b.data[0], 'X');
		assert_string_equal(b.data + 1, cases[i].want);
		kr_buf_release(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_every_field, setup),
	    cmocka_unit_test_setup(test_kubeconfig_env_merge, setup),
	    cmocka_unit_test_setup(test_kubeconfig_env_errors, setup),
	    cmocka_unit_test_setup(test_load_order, setup),
	    cmocka_unit_test_setup(test_context_override, setup),
	    cmocka_unit_test_setup(test_malformed, setup),
	    cmocka_unit_test_setup(test_garbage, setup),
	    cmocka_unit_test_setup(test_release_is_safe, setup),
	    cmocka_unit_test_setup(test_in_cluster, setup),
	    cmocka_unit_test_setup(test_in_cluster_errors, setup),
	    cmocka_unit_test_setup(test_token_file_reread, setup),
	    cmocka_unit_test_setup(test_token_threads, setup),
	    cmocka_unit_test(test_resources),
	    cmocka_unit_test(test_kube_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
