/* testlib.h - helpers for integration tests: ports, temp dirs, child servers, deadlines. */
#ifndef KR_TESTLIB_H
#define KR_TESTLIB_H

#include "base/buf.h"

#include <sys/types.h>

/*
 * Everything started or created here is cleaned up at exit, even when a test fails:
 * child processes get SIGKILL (and PR_SET_PDEATHSIG kills them if the test crashes),
 * temp dirs are removed.
 */

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int kr_test_free_port(void);
/* mkdtemp under $TMPDIR (or /tmp), removed at exit. Caller must not free. */
const char *kr_test_tmpdir(const char *tag);
/* fork+exec argv with stdout/stderr to `log_path` (NULL: inherit). Killed at exit. */
pid_t kr_test_spawn(char *const argv[], const char *log_path);
/* Send `sig`, wait for exit; returns the wait status. */
int kr_test_stop(pid_t pid, int sig);
/* Poll cond(arg) every 10 ms until it returns non-zero or timeout_ms passes. 1 if met. */
int kr_test_wait_for(int (*cond)(void *arg), void *arg, int timeout_ms);
/* 1 once something accepts TCP connections on 127.0.0.1:port within timeout_ms. */
int kr_test_wait_port(int port, int timeout_ms);
/* Read a whole file into a malloc'd NUL-terminated string; NULL if absent. */
char *kr_test_read_file(const char *path);
/* Path under the repo's tests/ (from $KR_TESTS_DIR or the compile-time default). */
const char *kr_test_tests_dir(void);
const char *kr_test_python(void);

/* A Debian redis-server on a free loopback port, in its own temp dir. */
struct kr_test_redis {
	int port;
	pid_t pid;
	char dir[512];
};
/* `extra` is appended to the config file (e.g. "requirepass x\n"); may be NULL. */
int kr_test_redis_start(struct kr_test_redis *r, const char *extra);
/*
 * A TLS-only redis-server (`port 0`, `tls-port` on a free port, which r->port names): the
 * certificates of tests/tools/make_tls_certs.sh in `certs` (server.crt, server.key, ca.crt
 * to check clients), `auth_clients` 1: a client certificate is required. `extra` as above.
 * Started when its TLS port accepts connections.
 */
int kr_test_redis_start_tls(struct kr_test_redis *r, const char *certs, int auth_clients,
			    const char *extra);
/* Run tests/tools/make_tls_certs.sh into a new temp dir (removed at exit); NULL on failure. */
const char *kr_test_make_certs(void);
/* Same port and dir, after a kill: for "server restarted" tests. */
int kr_test_redis_restart(struct kr_test_redis *r);
void kr_test_redis_stop(struct kr_test_redis *r);
/* DBSIZE: how many keys it holds (AUTH first when `password` is not NULL); -1 on error. */
long kr_test_redis_dbsize(const struct kr_test_redis *r, const char *password);

/* The local API server (tests/kubeapi/kubeapi.py) on a free port. */
struct kr_test_kubeapi {
	int port;
	pid_t pid;
	int tls;
	char dir[512];
	char url[128];
	char token[64];
	char kubeconfig[600];  /* a normal kubeconfig pointing at it */
	char tls_dir[600];     /* ca.crt, client certs (when tls) */
};
/* `extra_args` NULL-terminated extra CLI arguments, may be NULL. */
int kr_test_kubeapi_start(struct kr_test_kubeapi *k, int tls, const char *const *extra_args);
/*
 * The same with every CRD of the product loaded (`--crd FILE` for each YAML file in crds/, by
 * name, before `extra_args`): `keyrotator run` and kr_controller watch KeyRotations,
 * KeyStores and ClusterKeyStores, and their workers wait until every cache has listed.
 */
int kr_test_kubeapi_start_crds(struct kr_test_kubeapi *k, int tls, const char *const *extra_args);
void kr_test_kubeapi_stop(struct kr_test_kubeapi *k);
/*
 * Call the server's admin API (POST /_kubeapi/<op>) with a JSON body; returns the
 * HTTP status, or -1. Response body (malloc'd) in *out when out != NULL.
 */
int kr_test_kubeapi_admin(struct kr_test_kubeapi *k, const char *op, const char *json,
			  char **out);

/*
 * One plain-HTTP request (the local API server without TLS, the controller's endpoints):
 * `method` GET, HEAD, POST, DELETE, ...; `bearer` (may be NULL) as "Authorization: Bearer";
 * `json` (may be NULL) as the body. The response body and headers are appended to `body`
 * and `headers` when not NULL. Returns the HTTP status, 0 when unreachable (3 s timeout).
 */
long kr_test_http(const char *method, const char *url, const char *bearer, const char *json,
		  struct kr_buf *body, struct kr_buf *headers);

/*
 * POST `json` to `path` (e.g. "/api/v1/namespaces/default/secrets") on the local API server
 * without TLS, with its token. Returns the HTTP status (0 when unreachable); the response
 * body is appended to `out` when not NULL.
 */
long kr_test_kubeapi_post(struct kr_test_kubeapi *k, const char *path, const char *json,
			  struct kr_buf *out);

/* The annotation by which a Secret opts in to a KeyRotation (docs/design.md section 1b). */
#define KR_TEST_OPTIN_ANNOTATION "keyrotator.io/keyrotation"

/*
 * Create Secret `name` in `ns` with stringData {`key`: `value`}. `keyrotation` non-NULL: it
 * carries the annotation keyrotator.io/keyrotation: <keyrotation>, so that KeyRotation may
 * adopt or read it; NULL: no annotation (a KeyStore's password Secret needs none).
 * 0 when created, else -1 with the API server's answer on stderr.
 */
int kr_test_secret_create(struct kr_test_kubeapi *k, const char *ns, const char *name,
			  const char *keyrotation, const char *key, const char *value);

/*
 * Create KeyStore `name` in `ns`, as an administrator would, for the KeyRotations there that
 * name it in spec.keyStoreRef {kind: KeyStore, name: <name>}: server `address` (host:port),
 * plus `spec_extra` (may be NULL), more members of its spec as JSON text, e.g.
 * "\"passwordSecretRef\":{\"name\":\"valkey-auth\",\"key\":\"password\"}" or a layout.
 * 0 when created, else -1 with the API server's answer on stderr.
 */
int kr_test_keystore_create(struct kr_test_kubeapi *k, const char *ns, const char *name,
			    const char *address, const char *spec_extra);

#endif
