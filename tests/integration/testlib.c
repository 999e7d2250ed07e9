/* testlib.c - integration-test helpers: free ports, temp dirs, child processes, servers. */
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KR_TEST_MAX_CHILDREN 64
#define KR_TEST_MAX_DIRS 64

static pid_t kr_test_children[KR_TEST_MAX_CHILDREN];
static char *kr_test_dirs[KR_TEST_MAX_DIRS];
static int kr_test_registered;

static int kr_test_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void kr_test_cleanup(void)
{
	for (int i = 0; i < KR_TEST_MAX_CHILDREN; i++) {
		if (kr_test_children[i] > 0) {
			kill(kr_test_children[i], SIGKILL);
			waitpid(kr_test_children[i], NULL, 0);
			kr_test_children[i] = 0;
		}
	}
	if (getenv("KR_TEST_KEEP"))
		return;
	for (int i = 0; i < KR_TEST_MAX_DIRS; i++) {
		if (kr_test_dirs[i]) {
			nftw(kr_test_dirs[i], kr_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
			free(kr_test_dirs[i]);
			kr_test_dirs[i] = NULL;
		}
	}
}

static void kr_test_register(void)
{
	if (kr_test_registered)
		return;
	kr_test_registered = 1;
	atexit(kr_test_cleanup);
	signal(SIGPIPE, SIG_IGN);
}

int kr_test_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

const char *kr_test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];

	kr_test_register();
	snprintf(tmpl, sizeof(tmpl), "%s/kr-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(tmpl))
		return NULL;
	for (int i = 0; i < KR_TEST_MAX_DIRS; i++) {
		if (!kr_test_dirs[i]) {
			kr_test_dirs[i] = strdup(tmpl);
			return kr_test_dirs[i];
		}
	}
	return NULL;
}

pid_t kr_test_spawn(char *const argv[], const char *log_path)
{
	pid_t parent = getpid();
	pid_t pid;

	kr_test_register();
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (log_path) {
			int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < KR_TEST_MAX_CHILDREN; i++) {
		if (kr_test_children[i] == 0) {
			kr_test_children[i] = pid;
			break;
		}
	}
	return pid;
}

int kr_test_stop(pid_t pid, int sig)
{
	int status = -1;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < KR_TEST_MAX_CHILDREN; i++)
		if (kr_test_children[i] == pid)
			kr_test_children[i] = 0;
	return status;
}

static long kr_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int kr_test_wait_for(int (*cond)(void *arg), void *arg, int timeout_ms)
{
	long deadline = kr_test_now_ms() + timeout_ms;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	for (;;) {
		if (cond(arg))
			return 1;
		if (kr_test_now_ms() >= deadline)
			return 0;
		nanosleep(&tick, NULL);
	}
}

static int kr_test_port_open(void *arg)
{
	int port = *(int *)arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int ok;

	if (fd < 0)
		return 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int kr_test_wait_port(int port, int timeout_ms)
{
	return kr_test_wait_for(kr_test_port_open, &port, timeout_ms);
}

char *kr_test_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

const char *kr_test_tests_dir(void)
{
	const char *d = getenv("KR_TESTS_DIR");
	return d && *d ? d : "tests";
}

const char *kr_test_python(void)
{
	const char *p = getenv("KR_PYTHON");
	return p && *p ? p : "python3";
}

/* ---- redis-server ---- */

static int kr_test_redis_spawn(struct kr_test_redis *r)
{
	char conf[600], log[600];
	char *argv[] = { "redis-server", conf, NULL };

	snprintf(conf, sizeof(conf), "%s/redis.conf", r->dir);
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	r->pid = kr_test_spawn(argv, log);
	if (r->pid < 0 || !kr_test_wait_port(r->port, 10000))
		return -1;
	return 0;
}

/* `extra` after the common lines; `tls`: the plaintext port is 0 and r->port is the TLS one. */
static int kr_test_redis_start_conf(struct kr_test_redis *r, const char *extra, int tls)
{
	const char *dir = kr_test_tmpdir("redis");
	char conf[600];
	FILE *f;

	memset(r, 0, sizeof(*r));
	if (!dir)
		return -1;
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	r->port = kr_test_free_port();
	snprintf(conf, sizeof(conf), "%s/redis.conf", r->dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "bind 127.0.0.1\nport %d\ndir %s\nsave \"\"\nappendonly no\n"
		   "daemonize no\nprotected-mode no\nenable-debug-command yes\n%s",
		tls ? 0 : r->port, r->dir, extra ? extra : "");
	if (tls)
		fprintf(f, "\ntls-port %d\n", r->port);
	fclose(f);
	return kr_test_redis_spawn(r);
}

int kr_test_redis_start(struct kr_test_redis *r, const char *extra)
{
	return kr_test_redis_start_conf(r, extra, 0);
}

int kr_test_redis_start_tls(struct kr_test_redis *r, const char *certs, int auth_clients,
			    const char *extra)
{
	char conf[2048];
	int n;

	n = snprintf(conf, sizeof(conf),
		     "tls-cert-file %s/server.crt\ntls-key-file %s/server.key\n"
		     "tls-ca-cert-file %s/ca.crt\ntls-auth-clients %s\n%s",
		     certs, certs, certs, auth_clients ? "yes" : "no", extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(conf))
		return -1;
	return kr_test_redis_start_conf(r, conf, 1);
}

const char *kr_test_make_certs(void)
{
	const char *dir = kr_test_tmpdir("certs");
	char script[600];
	char *argv[] = {"sh", script, (char *)dir, NULL};
	pid_t pid;

	if (!dir)
		return NULL;
	snprintf(script, sizeof(script), "%s/tools/make_tls_certs.sh", kr_test_tests_dir());
	pid = kr_test_spawn(argv, NULL);
	if (pid < 0)
		return NULL;
	return kr_test_stop(pid, 0) == 0 ? dir : NULL;
}

int kr_test_redis_restart(struct kr_test_redis *r)
{
	if (r->pid > 0)
		kr_test_stop(r->pid, SIGKILL);
	r->pid = 0;
	return kr_test_redis_spawn(r);
}

void kr_test_redis_stop(struct kr_test_redis *r)
{
	if (r->pid > 0)
		kr_test_stop(r->pid, SIGKILL);
	r->pid = 0;
}

long kr_test_redis_dbsize(const struct kr_test_redis *r, const char *password)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r->port) };
	struct timeval tv = { 3, 0 };
	char cmd[512], reply[256];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;
	long size = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = password ? snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n",
				strlen(password), password)
		     : 0;
	n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, "*1\r\n$6\r\nDBSIZE\r\n");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    write(fd, cmd, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	/* One reply line per command: "+OK" (AUTH), then ":<keys>" (DBSIZE). */
	for (int lines = 0; lines < (password ? 2 : 1) && got < sizeof(reply) - 1;) {
		ssize_t k = read(fd, reply + got, sizeof(reply) - 1 - got);

		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			lines += reply[got + (size_t)i] == '\n';
		got += (size_t)k;
		reply[got] = '\0';
		if (lines == (password ? 2 : 1)) {
			char *last = password ? strchr(reply, '\n') + 1 : reply;

			if (last[0] == ':' && (!password || reply[0] == '+'))
				size = atol(last + 1);
		}
	}
	close(fd);
	return size;
}

/* ---- the local API server ---- */

static int kr_test_file_exists(void *arg)
{
	return access((const char *)arg, R_OK) == 0;
}

int kr_test_kubeapi_start(struct kr_test_kubeapi *k, int tls, const char *const *extra_args)
{
	const char *dir = kr_test_tmpdir("kubeapi");
	char script[600], ready[600], log[600];
	const char *argv[48];
	int n = 0;
	char *text;

	memset(k, 0, sizeof(*k));
	if (!dir)
		return -1;
	snprintf(k->dir, sizeof(k->dir), "%s", dir);
	snprintf(k->token, sizeof(k->token), "test-token-%d", (int)getpid());
	snprintf(script, sizeof(script), "%s/kubeapi/kubeapi.py", kr_test_tests_dir());
	snprintf(ready, sizeof(ready), "%s/ready", k->dir);
	snprintf(log, sizeof(log), "%s/kubeapi.log", k->dir);
	snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", k->dir);
	snprintf(k->tls_dir, sizeof(k->tls_dir), "%s/tls", k->dir);
	k->tls = tls;

	argv[n++] = kr_test_python();
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--token";
	argv[n++] = k->token;
	argv[n++] = "--ready-file";
	argv[n++] = ready;
	argv[n++] = "--kubeconfig-out";
	argv[n++] = k->kubeconfig;
	if (tls) {
		argv[n++] = "--tls-dir";
		argv[n++] = k->tls_dir;
	}
	for (int i = 0; extra_args && extra_args[i] && n < 46; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;

	k->pid = kr_test_spawn((char *const *)argv, log);
	if (k->pid < 0 || !kr_test_wait_for(kr_test_file_exists, ready, 30000))
		return -1;
	text = kr_test_read_file(ready);
	if (!text)
		return -1;
	/* The ready file holds the port first (digits), or JSON {"port": N, ...}. */
	{
		const char *p = strstr(text, "\"port\"");

		k->port = p ? atoi(p + strcspn(p, "0123456789")) : atoi(text);
	}
	free(text);
	snprintf(k->url, sizeof(k->url), "%s://127.0.0.1:%d", tls ? "https" : "http", k->port);
	return k->port > 0 ? 0 : -1;
}

int kr_test_kubeapi_start_crds(struct kr_test_kubeapi *k, int tls, const char *const *extra_args)
{
	const char *args[32];
	char pattern[600];
	glob_t g;
	size_t n = 0;
	int rc;

	snprintf(pattern, sizeof(pattern), "%s/../crds/*.yaml", kr_test_tests_dir());
	if (glob(pattern, 0, NULL, &g) != 0) /* sorted; none found is an error too */
		return -1;
	for (size_t i = 0; i < g.gl_pathc && n + 2 < 24; i++) {
		args[n++] = "--crd";
		args[n++] = g.gl_pathv[i];
	}
	for (size_t i = 0; extra_args && extra_args[i] && n + 1 < 32; i++)
		args[n++] = extra_args[i];
	args[n] = NULL;
	rc = kr_test_kubeapi_start(k, tls, args);
	globfree(&g);
	return rc;
}

void kr_test_kubeapi_stop(struct kr_test_kubeapi *k)
{
	if (k->pid > 0)
		kr_test_stop(k->pid, SIGKILL);
	k->pid = 0;
}

static size_t kr_test_sink(char *p, size_t size, size_t n, void *arg)
{
	FILE *f = arg;
	return fwrite(p, size, n, f);
}

int kr_test_kubeapi_admin(struct kr_test_kubeapi *k, const char *op, const char *json,
			  char **out)
{
	CURL *curl = curl_easy_init();
	char url[512], auth[128], ca[700];
	struct curl_slist *hdr = NULL;
	char *body = NULL;
	size_t body_len = 0;
	FILE *mem = open_memstream(&body, &body_len);
	long code = -1;

	if (!curl || !mem) {
		if (mem)
			fclose(mem);
		free(body);
		curl_easy_cleanup(curl);
		return -1;
	}
	snprintf(url, sizeof(url), "%s/_kubeapi/%s", k->url, op);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", k->token);
	hdr = curl_slist_append(hdr, auth);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json ? json : "{}");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, kr_test_sink);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, mem);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	if (k->tls) {
		snprintf(ca, sizeof(ca), "%s/ca.crt", k->tls_dir);
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	fclose(mem);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	if (out)
		*out = body;
	else
		free(body);
	return (int)code;
}

static size_t kr_test_collect(char *data, size_t size, size_t n, void *arg)
{
	kr_buf_add(arg, data, size * n);
	return size * n;
}

long kr_test_http(const char *method, const char *url, const char *bearer, const char *json,
		  struct kr_buf *body, struct kr_buf *headers)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *h = NULL;
	struct kr_buf scratch;
	char line[256];
	long code = 0;

	kr_buf_init(&scratch);
	if (!body)
		body = &scratch;
	if (bearer) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
		h = curl_slist_append(h, line);
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, kr_test_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
	if (headers) {
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, kr_test_collect);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, headers);
	}
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET"))
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (json)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	kr_buf_release(&scratch);
	return code;
}

long kr_test_kubeapi_post(struct kr_test_kubeapi *k, const char *path, const char *json,
			  struct kr_buf *out)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", k->url, path);
	return kr_test_http("POST", url, k->token, json, out, NULL);
}

/* POST and expect 201 Created; else the answer on stderr and -1. */
static int kr_test_kubeapi_create(struct kr_test_kubeapi *k, const char *path, const char *json)
{
	struct kr_buf out;
	long code;

	kr_buf_init(&out);
	code = kr_test_kubeapi_post(k, path, json, &out);
	if (code != 201)
		fprintf(stderr, "POST %s: HTTP %ld %s\n", path, code, out.data ? out.data : "");
	kr_buf_release(&out);
	return code == 201 ? 0 : -1;
}

int kr_test_secret_create(struct kr_test_kubeapi *k, const char *ns, const char *name,
			  const char *keyrotation, const char *key, const char *value)
{
	char path[512];
	struct kr_buf json;
	int rc;

	kr_buf_init(&json);
	kr_buf_adds(&json, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":");
	kr_buf_add_json_string(&json, name);
	if (keyrotation) {
		kr_buf_adds(&json, ",\"annotations\":{\"" KR_TEST_OPTIN_ANNOTATION "\":");
		kr_buf_add_json_string(&json, keyrotation);
		kr_buf_adds(&json, "}");
	}
	kr_buf_adds(&json, "},\"stringData\":{");
	kr_buf_add_json_string(&json, key);
	kr_buf_adds(&json, ":");
	kr_buf_add_json_string(&json, value);
	kr_buf_adds(&json, "}}");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", ns);
	rc = kr_test_kubeapi_create(k, path, json.data);
	kr_buf_release_wipe(&json);
	return rc;
}

int kr_test_keystore_create(struct kr_test_kubeapi *k, const char *ns, const char *name,
			    const char *address, const char *spec_extra)
{
	char path[512];
	struct kr_buf json;
	int rc;

	kr_buf_init(&json);
	kr_buf_adds(&json, "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyStore\","
			   "\"metadata\":{\"name\":");
	kr_buf_add_json_string(&json, name);
	kr_buf_adds(&json, "},\"spec\":{\"address\":");
	kr_buf_add_json_string(&json, address);
	if (spec_extra)
		kr_buf_addf(&json, ",%s", spec_extra);
	kr_buf_adds(&json, "}}");
	snprintf(path, sizeof(path), "/apis/keyrotator.io/v1alpha1/namespaces/%s/keystores", ns);
	rc = kr_test_kubeapi_create(k, path, json.data);
	kr_buf_release(&json);
	return rc;
}
