/* incluster.c - in-cluster (service-account) configuration and the token-file cache. */
#include "kube/kube.h"
#include "kube/config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KR_SA_DIR    "/var/run/secrets/kubernetes.io/serviceaccount"
#define KR_TOKEN_MAX (1u << 20)
#define KR_SMALL_MAX (64u << 10)

static enum kr_status read_fd(int fd, size_t max, struct kr_buf *out, struct kr_error *err)
{
	enum kr_status rc;
	ssize_t n;

	for (;;) {
		rc = kr_buf_grow(out, 4096);
		if (rc != KR_OK)
			return kr_error_set(err, rc, "out of memory");
		n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kr_error_set(err, KR_EINVAL, "cannot read: %s", strerror(errno));
		if (n == 0)
			return KR_OK;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
		if (out->len > max)
			return kr_error_set(err, KR_ETOOBIG, "larger than %zu bytes", max);
	}
}

enum kr_status kr_kube_read_file(const char *path, size_t max, struct kr_buf *out, struct stat *st,
				 struct kr_error *err)
{
	struct stat sb;
	enum kr_status rc;
	int fd;

	kr_buf_reset(out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kr_error_set(err, KR_EINVAL, "cannot read: %s", strerror(errno));
	if (fstat(fd, &sb) != 0) {
		rc = kr_error_set(err, KR_EINVAL, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = kr_error_set(err, KR_EINVAL, "not a regular file");
		goto out;
	}
	rc = read_fd(fd, max, out, err);
	if (rc == KR_OK && st)
		*st = sb;
out:
	close(fd);
	if (rc != KR_OK)
		kr_buf_release_wipe(out);
	return rc;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Read a token file, trimmed of surrounding white space as client-go does. */
static enum kr_status read_token(const char *path, struct kr_secret **out, struct timespec *mtime,
				 struct kr_error *err)
{
	struct kr_buf b;
	struct stat st;
	enum kr_status rc;
	size_t start = 0, end;

	kr_buf_init(&b);
	rc = kr_kube_read_file(path, KR_TOKEN_MAX, &b, &st, err);
	if (rc != KR_OK)
		goto out;
	end = b.len;
	while (start < end && is_space(b.data[start]))
		start++;
	while (end > start && is_space(b.data[end - 1]))
		end--;
	if (start == end) {
		rc = kr_error_set(err, KR_EINVAL, "file is empty");
		goto out;
	}
	*out = kr_secret_new(b.data + start, end - start);
	if (!*out) {
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
		goto out;
	}
	*mtime = st.st_mtim;
out:
	kr_buf_release_wipe(&b);
	return rc;
}

static time_t now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * With token_lock held: make file_token current. The file is stat'ed at most once per
 * second (file_token_checked, monotonic seconds; 0 forces a check) and re-read when its
 * mtime changed. A failed re-read keeps the previous token, as client-go does, so a
 * kubelet mid-way through swapping the projected volume does not fail requests.
 */
static enum kr_status token_refresh(struct kr_kube_config *cfg, struct kr_error *err)
{
	struct kr_secret *fresh = NULL;
	struct timespec mtime;
	struct stat st;
	enum kr_status rc;
	time_t now = now_seconds();

	if (cfg->file_token && cfg->file_token_checked != 0 && now - cfg->file_token_checked < 1)
		return KR_OK;
	cfg->file_token_checked = now;
	if (cfg->file_token && stat(cfg->token_file, &st) == 0 &&
	    st.st_mtim.tv_sec == cfg->file_token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == cfg->file_token_mtime.tv_nsec)
		return KR_OK;
	rc = read_token(cfg->token_file, &fresh, &mtime, err);
	if (rc != KR_OK) {
		if (cfg->file_token && rc != KR_ENOMEM) {
			kr_error_clear(err);
			return KR_OK;
		}
		kr_error_prefix(err, "token file %s: ", cfg->token_file);
		return rc;
	}
	kr_secret_free(cfg->file_token);
	cfg->file_token = fresh;
	cfg->file_token_mtime = mtime;
	return KR_OK;
}

static enum kr_status copy_secret(const struct kr_secret *src, struct kr_secret **out,
				  struct kr_error *err)
{
	*out = kr_secret_new(kr_secret_data(src), kr_secret_len(src));
	return *out ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

enum kr_status kr_kube_config_token(struct kr_kube_config *cfg, struct kr_secret **out,
				    struct kr_error *err)
{
	enum kr_status rc;

	*out = NULL;
	if (cfg->token)
		return copy_secret(cfg->token, out, err);
	if (!cfg->token_file)
		return KR_OK;
	pthread_mutex_lock(&cfg->token_lock);
	rc = token_refresh(cfg, err);
	if (rc == KR_OK)
		rc = copy_secret(cfg->file_token, out, err);
	pthread_mutex_unlock(&cfg->token_lock);
	return rc;
}

static enum kr_status env_required(const char *name, const char **out, struct kr_error *err)
{
	*out = getenv(name);
	if (!*out || !**out)
		return kr_error_set(err, KR_EINVAL, "in-cluster: %s is not set", name);
	return KR_OK;
}

static enum kr_status check_port(const char *port, struct kr_error *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(port, &end, 10);
	if (errno != 0 || *end != '\0' || end == port || v < 1 || v > 65535 || port[0] == '+' ||
	    port[0] == '-')
		return kr_error_set(
		    err, KR_EINVAL,
		    "in-cluster: KUBERNETES_SERVICE_PORT: not a port number: \"%.40s\"", port);
	return KR_OK;
}

static enum kr_status in_cluster_server(struct kr_kube_config *cfg, struct kr_error *err)
{
	const char *host, *port;
	struct kr_buf b;
	enum kr_status rc;
	int bracket;

	rc = env_required("KUBERNETES_SERVICE_HOST", &host, err);
	if (rc == KR_OK)
		rc = env_required("KUBERNETES_SERVICE_PORT", &port, err);
	if (rc == KR_OK)
		rc = check_port(port, err);
	if (rc != KR_OK)
		return rc;
	if (strpbrk(host, "/?#@ \t\r\n"))
		return kr_error_set(
		    err, KR_EINVAL,
		    "in-cluster: KUBERNETES_SERVICE_HOST: not a host name: \"%.80s\"", host);
	/* net.JoinHostPort: an IPv6 literal gets brackets. */
	bracket = strchr(host, ':') && host[0] != '[';
	kr_buf_init(&b);
	rc = kr_buf_addf(&b, "https://%s%s%s:%s", bracket ? "[" : "", host, bracket ? "]" : "",
			 port);
	if (rc != KR_OK)
		return kr_error_set(err, rc, "out of memory");
	cfg->server = kr_buf_detach(&b, NULL);
	return cfg->server ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

static char *path_join(const char *dir, const char *name)
{
	struct kr_buf b;

	kr_buf_init(&b);
	if (kr_buf_addf(&b, "%s/%s", dir, name) != KR_OK) {
		kr_buf_release(&b);
		return NULL;
	}
	return kr_buf_detach(&b, NULL);
}

/* POD_NAMESPACE, else the namespace file, else "default" (client-go's order). */
static enum kr_status in_cluster_namespace(struct kr_kube_config *cfg, const char *sa_dir,
					   struct kr_error *err)
{
	const char *env = getenv("POD_NAMESPACE");
	char *path = NULL;
	struct kr_buf b;
	size_t start = 0, end;

	kr_buf_init(&b);
	if (env && *env) {
		cfg->namespace_ = strdup(env);
		goto out;
	}
	path = path_join(sa_dir, "namespace");
	if (path && kr_kube_read_file(path, KR_SMALL_MAX, &b, NULL, NULL) == KR_OK) {
		end = b.len;
		while (start < end && is_space(b.data[start]))
			start++;
		while (end > start && is_space(b.data[end - 1]))
			end--;
		if (end > start)
			cfg->namespace_ = strndup(b.data + start, end - start);
	}
	if (path && !cfg->namespace_)
		cfg->namespace_ = strdup("default");
out:
	free(path);
	kr_buf_release(&b);
	return cfg->namespace_ ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

static enum kr_status in_cluster_files(struct kr_kube_config *cfg, const char *sa_dir,
				       struct kr_error *err)
{
	struct kr_secret *probe = NULL;
	char *ca;
	enum kr_status rc;

	cfg->token_file = path_join(sa_dir, "token");
	ca = path_join(sa_dir, "ca.crt");
	if (!cfg->token_file || !ca) {
		free(ca);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	/* client-go goes on without ca.crt (system roots); so do we. */
	if (access(ca, R_OK) == 0)
		cfg->ca_file = ca;
	else
		free(ca);
	/* Read the token now so a missing one is reported at start-up, not per request. */
	rc = kr_kube_config_token(cfg, &probe, err);
	kr_secret_free(probe);
	if (rc != KR_OK)
		kr_error_prefix(err, "in-cluster: ");
	return rc;
}

enum kr_status kr_kube_config_in_cluster(struct kr_kube_config *cfg, const char *sa_dir,
					 struct kr_error *err)
{
	struct kr_buf src;
	enum kr_status rc;

	kr_kube_config_release(cfg);
	if (!sa_dir)
		sa_dir = KR_SA_DIR;
	kr_buf_init(&src);
	rc = in_cluster_server(cfg, err);
	if (rc != KR_OK)
		goto out;
	rc = in_cluster_files(cfg, sa_dir, err);
	if (rc != KR_OK)
		goto out;
	rc = in_cluster_namespace(cfg, sa_dir, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_buf_addf(&src, "in-cluster (%s)", sa_dir);
	if (rc != KR_OK) {
		rc = kr_error_set(err, rc, "out of memory");
		goto out;
	}
	cfg->source = kr_buf_detach(&src, NULL);
	if (!cfg->source)
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
out:
	kr_buf_release(&src);
	if (rc != KR_OK)
		kr_kube_config_release(cfg);
	return rc;
}
