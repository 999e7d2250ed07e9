/* internal.h - what client.c and reflector.c share; not part of the module's face. */
#ifndef KR_KUBE_INTERNAL_H
#define KR_KUBE_INTERNAL_H

#include <curl/curl.h>

#include "kube/kube.h"

/*
 * Apply `cfg` to a curl easy handle: server TLS (CA file or PEM blob, insecure-skip,
 * tls-server-name), client certificate (file or blob), and build the request headers
 * (Authorization: Bearer <token> when the config has one, Accept: application/json,
 * User-Agent: keyrotator/<version>) into *headers, which the caller frees with
 * curl_slist_free_all after the transfer. Sets no timeouts and no URL.
 */
enum kr_status kr_kube_curl_configure(CURL *curl, struct kr_kube_config *cfg,
				      struct curl_slist **headers, struct kr_error *err);

/* Map a failed transfer to KR_EIO / KR_ETIMEOUT with a message naming the server. */
enum kr_status kr_kube_curl_error(CURLcode code, const char *server, const char *errbuf,
				  struct kr_error *err);

/*
 * Free headers built by kr_kube_curl_configure after wiping every entry, so the bearer
 * token does not linger in freed heap memory. Prefer it to curl_slist_free_all.
 * NULL does nothing.
 */
void kr_kube_curl_headers_free(struct curl_slist *headers);

/*
 * kr_kube_status_error for an error body that is not JSON (a proxy's HTML page, plain
 * text): maps `http_status` the same way, and err->msg carries the code and a printable
 * snippet of `body` (len bytes, may be NULL).
 */
enum kr_status kr_kube_status_error_raw(int http_status, const char *body, size_t len,
					struct kr_error *err);

/*
 * New connections the client's handle has opened so far (CURLINFO_NUM_CONNECTS summed
 * over its requests): 1 after many requests means the connection was reused.
 */
struct kr_kube_client;
unsigned long kr_kube_client_connects(const struct kr_kube_client *c);

/*
 * Append "&key=<escaped value>" to a URL path (the first parameter with '?'); a NULL or
 * empty value adds nothing. Shared by lists (client.c) and watches (reflector.c).
 */
enum kr_status kr_kube_query_add(CURL *curl, struct kr_buf *path, const char *key,
				 const char *value);

#endif
