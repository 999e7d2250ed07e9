/* http.c - /healthz, /readyz and /metrics served by libmicrohttpd on a thread of its own. */
#include "runtime/http.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/buf.h"
#include "base/log.h"

#define HTTP_CONNECTION_LIMIT 64
#define HTTP_IDLE_TIMEOUT_S   10
#define HTTP_REASON_MAX	      256
#define TEXT_PLAIN	      "text/plain; charset=utf-8"

struct kr_http_server {
	struct MHD_Daemon *daemon;
	struct kr_http_handlers h;
	int port;
	pthread_mutex_t lock; /* guards starting and last_err */
	int starting;
	char last_err[256]; /* libmicrohttpd's last complaint while starting */
};

/* ---- address ---- */

static enum kr_status bad_addr(struct kr_error *err, const char *addr, const char *why)
{
	return kr_error_set(err, KR_EINVAL,
			    "listen address \"%s\": %s (want host:port, e.g. :8080)", addr, why);
}

static enum kr_status parse_port(const char *text, const char *addr, int *port,
				 struct kr_error *err)
{
	long v = 0;

	if (*text == '\0')
		return bad_addr(err, addr, "missing port");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - text >= 5)
			return bad_addr(err, addr, "port is not a number from 0 to 65535");
		v = v * 10 + (*p - '0');
	}
	if (v > 65535)
		return bad_addr(err, addr, "port is not a number from 0 to 65535");
	*port = (int)v;
	return KR_OK;
}

enum kr_status kr_http_addr_parse(const char *addr, char *host, size_t host_size, int *port,
				  struct kr_error *err)
{
	const char *colon, *hstart = addr;
	size_t hlen;

	if (addr == NULL || *addr == '\0')
		return bad_addr(err, addr ? addr : "", "empty");
	if (*addr == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return bad_addr(err, addr, "IPv6 host needs the form [::1]:port");
		hstart = addr + 1;
		hlen = (size_t)(close - hstart);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return bad_addr(err, addr, "missing port");
		hlen = (size_t)(colon - addr);
		if (memchr(addr, ':', hlen) != NULL)
			return bad_addr(err, addr, "IPv6 host must be in brackets");
	}
	if (hlen >= host_size)
		return bad_addr(err, addr, "host name too long");
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	return parse_port(colon + 1, addr, port, err);
}

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A constant text body; the cast is safe because PERSISTENT bodies are never written. */
static enum MHD_Result reply_const(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return reply(c, status, TEXT_PLAIN, (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result reply_check(struct MHD_Connection *c, kr_http_check_fn check, void *ctx,
				   const char *fallback)
{
	char reason[HTTP_REASON_MAX] = "";

	if (check(ctx, reason, sizeof(reason)))
		return reply_const(c, MHD_HTTP_OK, "ok");
	reason[sizeof(reason) - 1] = '\0';
	if (reason[0] == '\0')
		snprintf(reason, sizeof(reason), "%s", fallback);
	return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT_PLAIN, reason, strlen(reason),
		     MHD_RESPMEM_MUST_COPY);
}

/* `?name=F` (repeatable): the families asked for. */
#define HTTP_METRICS_NAMES_MAX 16

struct metrics_names {
	const char *v[HTTP_METRICS_NAMES_MAX];
	size_t n;
	bool too_many;
};

static enum MHD_Result collect_name(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct metrics_names *names = cls;

	(void)kind;
	if (strcmp(key, "name") != 0)
		return MHD_YES;
	if (names->n == HTTP_METRICS_NAMES_MAX) {
		names->too_many = true;
		return MHD_NO;
	}
	names->v[names->n++] = value ? value : "";
	return MHD_YES;
}

static enum MHD_Result reply_metrics(struct MHD_Connection *c, struct kr_metrics *m)
{
	struct metrics_names names = {0};
	struct kr_buf b;
	size_t len;
	char *body;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_name, &names);
	if (names.too_many)
		return reply_const(c, MHD_HTTP_BAD_REQUEST, "name: at most 16 metric families");
	kr_buf_init(&b);
	if (kr_metrics_render_only(m, names.v, names.n, &b) != KR_OK) {
		kr_buf_release(&b);
		return reply_const(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	body = kr_buf_detach(&b, &len);
	return reply(c, MHD_HTTP_OK, KR_METRICS_CONTENT_TYPE, body, len, MHD_RESPMEM_MUST_FREE);
}

/* Called once per request, with the headers read; we answer at once (no request bodies). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	const struct kr_http_server *s = cls;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_const(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
	if (strcmp(url, "/healthz") == 0 && s->h.liveness != NULL)
		return reply_check(c, s->h.liveness, s->h.liveness_ctx, "not alive");
	if (strcmp(url, "/readyz") == 0 && s->h.readiness != NULL)
		return reply_check(c, s->h.readiness, s->h.readiness_ctx, "not ready");
	if (strcmp(url, "/metrics") == 0 && s->h.metrics != NULL)
		return reply_metrics(c, s->h.metrics);
	return reply_const(c, MHD_HTTP_NOT_FOUND, "not found");
}

/* ---- server ---- */

/* libmicrohttpd's complaints: kept while starting (for the error), then debug-logged. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct kr_http_server *s = cls;
	char line[256];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	pthread_mutex_lock(&s->lock);
	if (s->starting)
		snprintf(s->last_err, sizeof(s->last_err), "%s", line);
	pthread_mutex_unlock(&s->lock);
	kr_log_debug(NULL, "http server: %s", line);
}

static struct MHD_Daemon *start_on(struct kr_http_server *s, const struct addrinfo *ai,
				   int wildcard)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

	if (ai->ai_family == AF_INET6)
		flags |= wildcard ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	/* The logger first: libmicrohttpd logs while it parses the options that follow, and
	 * complains (to stderr, at debug level) when the logger is not the first one. */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
				on_mhd_log, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_IDLE_TIMEOUT_S,
				MHD_OPTION_END);
}

/* Try each resolved address in turn (for ":port", IPv6 dual stack first if available). */
static enum kr_status listen_any(struct kr_http_server *s, const char *addr, const char *host,
				 int port, struct kr_error *err)
{
	struct addrinfo hints = {0}, *res = NULL;
	char service[8];
	int gai, wildcard = host[0] == '\0';

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	gai = getaddrinfo(wildcard ? NULL : host, service, &hints, &res);
	if (gai != 0)
		return kr_error_set(err, KR_EINVAL,
				    "listen address \"%s\": cannot resolve \"%s\": %s", addr, host,
				    gai_strerror(gai));
	errno = 0;
	for (const struct addrinfo *ai = res; ai != NULL && s->daemon == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			s->daemon = start_on(s, ai, wildcard);
	freeaddrinfo(res);
	if (s->daemon != NULL)
		return KR_OK;
	pthread_mutex_lock(&s->lock);
	if (s->last_err[0] == '\0')
		snprintf(s->last_err, sizeof(s->last_err), "%s",
			 errno ? strerror(errno) : "cannot start the server");
	pthread_mutex_unlock(&s->lock);
	return kr_error_set(err, KR_EIO, "listen on \"%s\": %s", addr, s->last_err);
}

static int bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return info != NULL ? (int)info->port : -1;
}

enum kr_status kr_http_server_new(const char *addr, const struct kr_http_handlers *h,
				  struct kr_http_server **out, struct kr_error *err)
{
	struct kr_http_server *s = NULL;
	char host[256];
	enum kr_status rc;
	int port;

	rc = kr_http_addr_parse(addr, host, sizeof(host), &port, err);
	if (rc != KR_OK)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return kr_error_set(err, KR_ENOMEM, "http server: out of memory");
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return kr_error_set(err, KR_ENOMEM, "http server: cannot create a mutex");
	}
	s->h = *h;
	s->starting = 1;
	rc = listen_any(s, addr, host, port, err);
	if (rc != KR_OK)
		goto out;
	pthread_mutex_lock(&s->lock);
	s->starting = 0;
	pthread_mutex_unlock(&s->lock);
	s->port = bound_port(s->daemon);
	if (s->port <= 0)
		rc = kr_error_set(err, KR_EIO, "listen on \"%s\": cannot learn the bound port",
				  addr);
out:
	if (rc != KR_OK) {
		kr_http_server_free(s);
		return rc;
	}
	*out = s;
	return KR_OK;
}

int kr_http_server_port(const struct kr_http_server *s)
{
	return s->port;
}

void kr_http_server_free(struct kr_http_server *s)
{
	if (s == NULL)
		return;
	if (s->daemon != NULL)
		MHD_stop_daemon(s->daemon);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
