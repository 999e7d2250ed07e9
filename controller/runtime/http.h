/* http.h - the controller's HTTP endpoints /healthz, /readyz and /metrics (libmicrohttpd). */
#ifndef KR_HTTP_H
#define KR_HTTP_H

#include <stddef.h>

#include "base/error.h"
#include "runtime/metrics.h"

/*
 * A health check. Return non-zero when healthy; otherwise write a short reason (no key
 * material: it is served unauthenticated) into reason[0..size) and return 0. Called on
 * the server's own thread, concurrently with everything else in the controller, so it
 * must be thread-safe and quick (read an atomic, not a network round trip).
 */
typedef int (*kr_http_check_fn)(void *ctx, char *reason, size_t size);

/*
 * What the server serves. A route whose handler is NULL answers 404, so one struct
 * describes both the metrics server (--metrics-addr) and the health server
 * (--health-addr), or a single server for both when the addresses are the same.
 * Everything is borrowed and must outlive the server.
 */
struct kr_http_handlers {
	kr_http_check_fn liveness; /* GET /healthz: 200 "ok" or 503 + reason */
	void *liveness_ctx;
	kr_http_check_fn readiness; /* GET /readyz: 200 "ok" or 503 + reason */
	void *readiness_ctx;
	struct kr_metrics *metrics; /* GET /metrics: the registry in text format 0.0.4 */
};

/*
 * A running server: one internal libmicrohttpd thread that polls all connections.
 * Anything but GET or HEAD answers 405 (with Allow), any other path 404.
 */
struct kr_http_server;

/*
 * Split a listen address "host:port" (":8080", "127.0.0.1:0", "[::1]:9090",
 * "localhost:8081"). An empty host means every interface. `host` gets the host
 * without brackets. KR_EINVAL with a message naming `addr` when it is malformed.
 */
enum kr_status kr_http_addr_parse(const char *addr, char *host, size_t host_size, int *port,
				  struct kr_error *err);

/*
 * Listen on `addr` (as above; port 0 picks a free port, see kr_http_server_port) and
 * start serving `h` on a thread of the server's own. An empty host listens on every
 * interface (IPv6 dual stack where available, else IPv4); a host name that resolves to
 * several addresses listens on the first one that works. `h` is copied; what it points to is
 * borrowed. Caller frees *out with kr_http_server_free. Errors: KR_EINVAL (malformed
 * address or unknown host, message names `addr`), KR_EIO (cannot listen, e.g. the port
 * is in use; the message says why), KR_ENOMEM.
 */
enum kr_status kr_http_server_new(const char *addr, const struct kr_http_handlers *h,
				  struct kr_http_server **out, struct kr_error *err);

/* The TCP port the server listens on (the chosen one when 0 was asked). */
int kr_http_server_port(const struct kr_http_server *s);

/*
 * Stop: close the listening socket and all connections, join the thread, free. No
 * callback runs after this returns. kr_http_server_free(NULL) does nothing.
 */
void kr_http_server_free(struct kr_http_server *s);

#endif
