/* fetch.c - the HTTP side of the 401 watch: Prometheus instant queries and direct scrapes. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analysis/analysis.h"
#include "egress/egress.h"
#include "version.h"

#define FT_DEFAULT_TIMEOUT_MS 10000L
#define FT_DEFAULT_MAX_BODY   KR_PROMJSON_MAX_BYTES
#define FT_REDIRECT	      ": a redirect, which is not followed (give the URL it points to)"

/* One request: a fresh easy handle (an analysis runs every `interval`, not in a loop). */
struct ft_req {
	CURL *curl;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char server[300]; /* "prometheus http://x:9090", credentials removed */
	long status;
	long timeout_ms;
	struct kr_buf body; /* queries (never quoted in a message: only its meaning is) */
	size_t max_body;
	char too_big[64]; /* "answer larger than 64 KiB": the body or its Content-Length */
	struct kr_promtext *parser;   /* scrapes: the 200 body streams into it */
	struct kr_error sink_err;     /* why the write callback stopped the transfer */
	struct kr_egress_guard guard; /* --allowed-endpoints, checked at connect time */
};

void kr_analysis_redact_url(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	size_t auth_len = strcspn(host, "/?#"), path_len;
	const char *at = memchr(host, '@', auth_len);

	if (at) {
		auth_len -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	path_len = strcspn(host + auth_len, "?#");
	snprintf(out, size, "%.*s%.*s%.*s", scheme ? (int)(scheme + 3 - url) : 0, url,
		 (int)auth_len, host, (int)path_len, host + auth_len);
}

static double ft_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char ft_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 of `in` into `out` (room for 4 * ceil(len / 3) + 1 bytes). */
static void ft_base64(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = ft_b64[(v >> 18) & 63];
		out[o++] = ft_b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? ft_b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? ft_b64[v & 63] : '=';
	}
	out[o] = '\0';
}

/* Append one header built in wiped memory; curl copies it (and ft_req_release wipes that). */
static enum kr_status ft_add_auth(struct ft_req *r, const char *prefix, const char *a, size_t alen,
				  const char *b, size_t blen, int basic)
{
	size_t plen = strlen(prefix), raw = alen + (basic ? 1 : 0) + blen;
	struct kr_secret *joined = kr_secret_alloc(raw + 1);
	struct kr_secret *line = kr_secret_alloc(plen + 4 * (raw / 3 + 1) + 1);
	struct curl_slist *next = NULL;

	if (joined && line) {
		memcpy(kr_secret_mut(joined), a, alen);
		if (basic)
			kr_secret_mut(joined)[alen] = ':';
		memcpy(kr_secret_mut(joined) + alen + (basic ? 1 : 0), b, blen);
		memcpy(kr_secret_mut(line), prefix, plen);
		if (basic)
			ft_base64((const unsigned char *)kr_secret_data(joined), raw,
				  kr_secret_mut(line) + plen);
		else
			memcpy(kr_secret_mut(line) + plen, kr_secret_data(joined), raw + 1);
		next = curl_slist_append(r->headers, kr_secret_data(line));
	}
	kr_secret_free(joined);
	kr_secret_free(line);
	if (!next)
		return KR_ENOMEM;
	r->headers = next;
	return KR_OK;
}

static enum kr_status ft_headers(struct ft_req *r, const struct kr_analysis_http_opts *o,
				 const char *accept)
{
	struct curl_slist *next;
	const char *user = o->basic_user;

	next = curl_slist_append(r->headers, accept);
	if (next)
		r->headers = next;
	next = next ? curl_slist_append(r->headers, "User-Agent: keyrotator/" KR_VERSION) : NULL;
	if (!next)
		return KR_ENOMEM;
	r->headers = next;
	if (o->bearer_token)
		return ft_add_auth(r, "Authorization: Bearer ", "", 0,
				   kr_secret_data(o->bearer_token), kr_secret_len(o->bearer_token),
				   0);
	if (user && o->basic_password)
		return ft_add_auth(r, "Authorization: Basic ", user, strlen(user),
				   kr_secret_data(o->basic_password),
				   kr_secret_len(o->basic_password), 1);
	return KR_OK;
}

static size_t ft_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct ft_req *r = arg;
	size_t len = size * nmemb;

	if (!r->status)
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->parser && r->status == 200) {
		if (kr_promtext_feed(r->parser, data, len, &r->sink_err) != KR_OK)
			return 0;
		return len;
	}
	if (r->parser) /* a scrape's error page: only its status is used */
		return len;
	/* Refused while it is read: nothing past the cap is ever buffered. */
	if (len > r->max_body - r->body.len) {
		if (r->status != 200)
			kr_error_set(&r->sink_err, KR_ETOOBIG, "HTTP %ld, and an %s", r->status,
				     r->too_big);
		else
			kr_error_set(&r->sink_err, KR_ETOOBIG, "%s", r->too_big);
		return 0;
	}
	if (kr_buf_add(&r->body, data, len) != KR_OK) {
		kr_error_set(&r->sink_err, KR_ENOMEM, "out of memory reading the response");
		return 0;
	}
	return size * nmemb;
}

#define FT_SET(curl, opt, val)                                                                     \
	do {                                                                                       \
		if (curl_easy_setopt((curl), (opt), (val)) != CURLE_OK)                            \
			goto setopt_failed;                                                        \
	} while (0)

/* Handle, timeouts, TLS, headers. `what` names the server in messages ("prometheus"). */
static enum kr_status ft_req_init(struct ft_req *r, const char *what, const char *base_url,
				  const char *url, const struct kr_analysis_http_opts *o,
				  const char *accept, struct kr_error *err)
{
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : FT_DEFAULT_TIMEOUT_MS;
	char redacted[256], size[24];
	struct curl_blob blob;
	enum kr_status rc;

	memset(r, 0, sizeof(*r));
	kr_buf_init(&r->body);
	r->timeout_ms = timeout;
	r->max_body = o->max_body ? o->max_body : FT_DEFAULT_MAX_BODY;
	kr_analysis_size_text(r->max_body, size);
	snprintf(r->too_big, sizeof(r->too_big), "answer larger than %s", size);
	kr_analysis_redact_url(base_url, redacted, sizeof(redacted));
	snprintf(r->server, sizeof(r->server), "%s %s", what, redacted);
	r->curl = curl_easy_init();
	if (!r->curl || ft_headers(r, o, accept) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", r->server);
	FT_SET(r->curl, CURLOPT_URL, url);
	FT_SET(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	FT_SET(r->curl, CURLOPT_NOSIGNAL, 1L);
	/*
	 * One deadline for the whole request: name resolution (this libcurl resolves in a
	 * thread, so it is bounded too), connect, TLS, headers and every byte of the body.
	 * A server that drips a byte a second is cut off by it, so no low-speed limit.
	 */
	FT_SET(r->curl, CURLOPT_TIMEOUT_MS, timeout);
	FT_SET(r->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	/* An announced Content-Length over the cap is refused before the body (scrapes: below). */
	FT_SET(r->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
	FT_SET(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
	FT_SET(r->curl, CURLOPT_HTTPHEADER, r->headers);
	FT_SET(r->curl, CURLOPT_ACCEPT_ENCODING, "");
	FT_SET(r->curl, CURLOPT_WRITEFUNCTION, ft_write);
	FT_SET(r->curl, CURLOPT_WRITEDATA, r);
	if (o->ca_pem && o->ca_pem_len) {
		blob = (struct curl_blob){(void *)o->ca_pem, o->ca_pem_len, CURL_BLOB_COPY};
		FT_SET(r->curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	/* The host check now, the address check at connect; no redirects, no proxy. */
	rc = kr_egress_curl(o->egress, r->curl, url, &r->guard, err);
	if (rc != KR_OK)
		kr_error_prefix(err, "%s: ", r->server);
	return rc;
setopt_failed:
	return kr_error_set(err, KR_EINVAL, "%s: this libcurl cannot apply the request settings",
			    r->server);
}

static void ft_req_release(struct ft_req *r)
{
	for (struct curl_slist *h = r->headers; h; h = h->next)
		if (h->data)
			explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(r->headers);
	curl_easy_cleanup(r->curl);
	kr_buf_release(&r->body);
}

/* An error that came with an HTTP status: the status, and what keyrotator makes of it. */
static enum kr_status ft_status_error(struct ft_req *r, enum kr_status code, const char *what,
				      struct kr_error *err)
{
	kr_error_set(err, code, "%s: HTTP %ld%s", r->server, r->status, what);
	if (err)
		err->http_status = (int)r->status;
	return code;
}

/*
 * Run the transfer; a transport failure, a refused login or a redirect becomes the error.
 * What a server sent never reaches a message: curl's error buffer is written by libcurl.
 */
static enum kr_status ft_perform(struct ft_req *r, struct kr_error *err)
{
	CURLcode code = curl_easy_perform(r->curl);
	const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);

	kr_text_sanitize(r->errbuf);
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (code != CURLE_OK && r->guard.refused)
		return kr_error_set(err, KR_EAUTH, "%s: %s", r->server, r->guard.why.msg);
	if (code == CURLE_WRITE_ERROR && r->sink_err.code != KR_OK)
		return kr_error_set(err, r->sink_err.code, "%s: %s", r->server, r->sink_err.msg);
	if (code == CURLE_FILESIZE_EXCEEDED)
		return kr_error_set(err, KR_ETOOBIG, "%s: %s", r->server, r->too_big);
	if (code == CURLE_OPERATION_TIMEDOUT)
		return kr_error_set(err, KR_ETIMEOUT, "%s: timed out after %gs", r->server,
				    (double)r->timeout_ms / 1000.0);
	if (code == CURLE_OUT_OF_MEMORY)
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", r->server);
	if (code != CURLE_OK)
		return kr_error_set(err, KR_EIO, "%s: %s (%s)", r->server, detail,
				    curl_easy_strerror(code));
	if (r->status == 401 || r->status == 403)
		return ft_status_error(r, KR_EAUTH, ": credentials refused", err);
	if (r->status >= 300 && r->status <= 399)
		return ft_status_error(r, KR_EHTTP, FT_REDIRECT, err);
	return KR_OK;
}

static enum kr_status ft_query_url(const char *base, const char *query, long timeout_ms,
				   struct kr_buf *url)
{
	char *esc = curl_easy_escape(NULL, query, 0);
	size_t blen = strlen(base);
	enum kr_status rc;

	if (!esc)
		return KR_ENOMEM;
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	rc = kr_buf_addf(url, "%.*s/api/v1/query?query=%s&timeout=%ldms", (int)blen, base, esc,
			 timeout_ms);
	curl_free(esc);
	return rc;
}

enum kr_status kr_analysis_query_prometheus(const char *url, const char *query,
					    const struct kr_analysis_http_opts *opts,
					    struct kr_measurement *m, struct kr_error *err)
{
	static const struct kr_analysis_http_opts none;
	const struct kr_analysis_http_opts *o = opts ? opts : &none;
	struct kr_error local;
	struct ft_req r;
	struct kr_buf full;
	enum kr_status rc;

	kr_buf_init(&full);
	memset(m, 0, sizeof(*m));
	kr_error_clear(&local);
	rc = ft_query_url(url, query, o->timeout_ms > 0 ? o->timeout_ms : FT_DEFAULT_TIMEOUT_MS,
			  &full);
	if (rc == KR_OK)
		rc = ft_req_init(&r, "prometheus", url, full.data, o, "Accept: application/json",
				 &local);
	else
		memset(&r, 0, sizeof(r));
	if (rc == KR_ENOMEM && !local.msg[0])
		kr_error_set(&local, KR_ENOMEM, "prometheus: out of memory");
	if (rc == KR_OK)
		rc = ft_perform(&r, &local);
	if (rc == KR_OK) {
		rc = kr_promjson_decode(r.body.data, r.body.len, r.status, m);
		if (rc != KR_OK)
			kr_error_set(&local, rc, "%s: %s", r.server, m->reason.msg);
	}
	kr_text_sanitize(local.msg);
	if (rc != KR_OK)
		m->reason = local;
	m->at = ft_now();
	if (err)
		*err = rc == KR_OK ? (struct kr_error){0} : local;
	ft_req_release(&r);
	kr_buf_release(&full);
	return rc;
}

enum kr_status kr_analysis_scrape(const char *url, const struct kr_analysis_http_opts *opts,
				  const char *metric, const struct kr_prom_label *labels,
				  size_t nlabels, struct kr_counter_snapshot *snap,
				  struct kr_error *err)
{
	static const struct kr_analysis_http_opts none;
	const struct kr_analysis_http_opts *o = opts ? opts : &none;
	struct kr_counter_match mt = {metric, labels, nlabels, snap};
	struct kr_promtext parser;
	struct ft_req r;
	char size[24];
	enum kr_status rc;

	kr_counter_snapshot_release(snap);
	kr_promtext_init(&parser, o->scrape_limits, kr_counter_match_sample, &mt);
	rc = ft_req_init(&r, "scrape", url, url, o,
			 "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1", err);
	r.parser = &parser;
	/* The body streams through the parser, which holds one line; its byte cap is ours. */
	r.max_body = parser.limits.max_bytes;
	kr_analysis_size_text(r.max_body, size);
	snprintf(r.too_big, sizeof(r.too_big), "exposition larger than %s", size);
	if (rc == KR_OK &&
	    curl_easy_setopt(r.curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r.max_body) != CURLE_OK)
		rc = kr_error_set(err, KR_EINVAL, "%s: this libcurl cannot cap the response",
				  r.server);
	if (rc == KR_OK)
		rc = ft_perform(&r, err);
	if (rc == KR_OK && r.status != 200)
		rc = ft_status_error(&r, KR_EHTTP, "", err);
	if (rc == KR_OK) {
		rc = kr_promtext_finish(&parser, err);
		if (rc == KR_OK)
			rc = kr_counter_snapshot_finish(snap, metric, err);
		if (rc != KR_OK)
			kr_error_prefix(err, "%s: ", r.server);
	}
	if (rc != KR_OK && err)
		kr_text_sanitize(err->msg);
	snap->at = ft_now();
	ft_req_release(&r);
	kr_promtext_release(&parser);
	return rc;
}
