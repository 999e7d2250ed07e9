/* client.c - the REST client: one reused curl handle, verbs, pagination, error mapping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kube/internal.h"

#define KR_KUBE_DEFAULT_CONNECT_MS   5000L
#define KR_KUBE_DEFAULT_REQUEST_MS   30000L
#define KR_KUBE_DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
#define KR_KUBE_DEFAULT_PAGE	     500L

struct kr_kube_client {
	struct kr_kube_config *cfg; /* borrowed */
	CURL *curl;		    /* one handle, so its connection is reused */
	long connect_ms, request_ms;
	size_t max_response;
	unsigned long requests;
	unsigned long connects; /* CURLINFO_NUM_CONNECTS summed */
	struct kr_buf resp;	/* body of the current response; wiped after use */
	int too_big;		/* the write callback hit max_response */
	char retry_after[32];	/* Retry-After header of the current response */
	char errbuf[CURL_ERROR_SIZE];
};

struct kr_kube_client *kr_kube_client_new(struct kr_kube_config *cfg, struct kr_error *err)
{
	struct kr_kube_client *c;

	if (!cfg || !cfg->server || !cfg->server[0]) {
		kr_error_set(err, KR_EINVAL, "kube client: the configuration names no server");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		kr_error_set(err, KR_ENOMEM, "kube client: out of memory");
		return NULL;
	}
	c->cfg = cfg;
	c->connect_ms = KR_KUBE_DEFAULT_CONNECT_MS;
	c->request_ms = KR_KUBE_DEFAULT_REQUEST_MS;
	c->max_response = KR_KUBE_DEFAULT_MAX_RESPONSE;
	kr_buf_init(&c->resp);
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		kr_error_set(err, KR_ENOMEM, "kube client for %s: cannot create a curl handle",
			     cfg->server);
		return NULL;
	}
	return c;
}

void kr_kube_client_free(struct kr_kube_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	kr_buf_release_wipe(&c->resp);
	free(c);
}

void kr_kube_client_set_timeouts(struct kr_kube_client *c, long connect_ms, long request_ms)
{
	if (connect_ms > 0)
		c->connect_ms = connect_ms;
	if (request_ms > 0)
		c->request_ms = request_ms;
}

void kr_kube_client_set_max_response(struct kr_kube_client *c, size_t bytes)
{
	if (bytes > 0)
		c->max_response = bytes;
}

unsigned long kr_kube_client_requests(const struct kr_kube_client *c)
{
	return c->requests;
}

unsigned long kr_kube_client_connects(const struct kr_kube_client *c)
{
	return c->connects;
}

static size_t kr_kube_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct kr_kube_client *c = arg;
	size_t len = size * n;

	if (len > c->max_response - c->resp.len) {
		c->too_big = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (kr_buf_add(&c->resp, data, len) != KR_OK)
		return 0;
	return len;
}

static size_t kr_kube_on_header(char *data, size_t size, size_t n, void *arg)
{
	static const char name[] = "retry-after:";
	struct kr_kube_client *c = arg;
	size_t len = size * n, i = sizeof(name) - 1, j = 0;

	if (len > i && !strncasecmp(data, name, i)) {
		while (i < len && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (i < len && data[i] != '\r' && data[i] != '\n' &&
		       j < sizeof(c->retry_after) - 1)
			c->retry_after[j++] = data[i++];
		c->retry_after[j] = '\0';
	}
	return len;
}

/* Empty the response buffer; it may have held Secret data. */
static void kr_kube_client_wipe(struct kr_kube_client *c)
{
	if (c->resp.cap)
		explicit_bzero(c->resp.data, c->resp.len);
	kr_buf_reset(&c->resp);
	/* Keep a buffer for the next GET of one object, drop a list page's. */
	if (c->resp.cap > ((size_t)64 << 10))
		kr_buf_release(&c->resp);
}

#define KR_KUBE_SET(opt, val)                                                                      \
	do {                                                                                       \
		if (curl_easy_setopt(c->curl, (opt), (val)) != CURLE_OK)                           \
			goto setopt_failed;                                                        \
	} while (0)

static enum kr_status kr_kube_client_setup(struct kr_kube_client *c, const char *method,
					   const char *url, const char *body,
					   struct curl_slist *headers, struct kr_error *err)
{
	KR_KUBE_SET(CURLOPT_URL, url);
	KR_KUBE_SET(CURLOPT_NOSIGNAL, 1L);
	KR_KUBE_SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	KR_KUBE_SET(CURLOPT_TIMEOUT_MS, c->request_ms);
	KR_KUBE_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
	KR_KUBE_SET(CURLOPT_ERRORBUFFER, c->errbuf);
	KR_KUBE_SET(CURLOPT_WRITEFUNCTION, kr_kube_on_body);
	KR_KUBE_SET(CURLOPT_WRITEDATA, c);
	KR_KUBE_SET(CURLOPT_HEADERFUNCTION, kr_kube_on_header);
	KR_KUBE_SET(CURLOPT_HEADERDATA, c);
	KR_KUBE_SET(CURLOPT_HTTPHEADER, headers);
	KR_KUBE_SET(CURLOPT_PROTOCOLS_STR, "http,https");
	if (body) {
		KR_KUBE_SET(CURLOPT_POSTFIELDS, body);
		KR_KUBE_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	if (strcmp(method, "GET") != 0 && !(body && !strcmp(method, "POST")))
		KR_KUBE_SET(CURLOPT_CUSTOMREQUEST, method);
	return KR_OK;
setopt_failed:
	return kr_error_set(err, KR_EINVAL, "request %s %s: libcurl refused an option", method,
			    url);
}

/* Add the fixed headers of a request with a body (curl's default would be a form type). */
static enum kr_status kr_kube_client_headers(struct kr_kube_client *c, const char *content_type,
					     int has_body, struct curl_slist **headers,
					     struct kr_error *err)
{
	struct curl_slist *next;
	struct kr_buf line;

	if (!has_body)
		return KR_OK;
	kr_buf_init(&line);
	if (kr_buf_addf(&line, "Content-Type: %s",
			content_type ? content_type : "application/json") != KR_OK)
		goto oom;
	next = curl_slist_append(*headers, line.data);
	if (!next)
		goto oom;
	*headers = next;
	/* No "Expect: 100-continue" round trip for large bodies. */
	next = curl_slist_append(*headers, "Expect:");
	if (!next)
		goto oom;
	*headers = next;
	kr_buf_release(&line);
	return KR_OK;
oom:
	kr_buf_release(&line);
	return kr_error_set(err, KR_ENOMEM, "request to %s: out of memory", c->cfg->server);
}

/* Turn an HTTP error response into err, keeping Retry-After when the server sent one. */
static enum kr_status kr_kube_client_http_error(struct kr_kube_client *c, long code,
						const char *method, const char *path,
						struct kr_error *err)
{
	cJSON *status = cJSON_ParseWithLength(c->resp.data, c->resp.len);
	struct kr_error local;
	enum kr_status rc;

	if (!err)
		err = &local;
	if (status && cJSON_IsObject(status)) {
		rc = kr_kube_status_error((int)code, status, err);
	} else {
		rc = kr_kube_status_error_raw((int)code, c->resp.data, c->resp.len, err);
		kr_error_prefix(err, "%s %s%s: ", method, c->cfg->server, path);
	}
	cJSON_Delete(status);
	if (c->retry_after[0] && !strstr(err->msg, "retry after")) {
		/* Retry-After is delay-seconds or an HTTP-date. */
		int secs = strspn(c->retry_after, "0123456789") == strlen(c->retry_after);
		size_t len = strlen(err->msg);

		snprintf(err->msg + len, sizeof(err->msg) - len, " (retry after %s%s)",
			 c->retry_after, secs ? "s" : "");
	}
	return rc;
}

static enum kr_status kr_kube_client_result(struct kr_kube_client *c, const char *method,
					    const char *path, cJSON **out, struct kr_error *err)
{
	long code = 0;

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code >= 300)
		return kr_kube_client_http_error(c, code, method, path, err);
	if (!out || c->resp.len == 0)
		return KR_OK;
	*out = cJSON_ParseWithLength(c->resp.data, c->resp.len);
	if (!*out)
		return kr_error_set(err, KR_EPROTO, "%s %s%s: the response (HTTP %ld) is not JSON",
				    method, c->cfg->server, path, code);
	return KR_OK;
}

static enum kr_status kr_kube_client_perform(struct kr_kube_client *c, const char *method,
					     const char *path, struct kr_error *err)
{
	long connects = 0;
	CURLcode cc;

	c->too_big = 0;
	c->retry_after[0] = '\0';
	c->errbuf[0] = '\0';
	c->requests++;
	cc = curl_easy_perform(c->curl);
	if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
	    connects > 0)
		c->connects += (unsigned long)connects;
	if (cc == CURLE_OK)
		return KR_OK;
	if (c->too_big || cc == CURLE_FILESIZE_EXCEEDED)
		return kr_error_set(err, KR_ETOOBIG, "%s %s%s: the response exceeds %zu bytes",
				    method, c->cfg->server, path, c->max_response);
	return kr_kube_curl_error(cc, c->cfg->server, c->errbuf, err);
}

enum kr_status kr_kube_request(struct kr_kube_client *c, const char *method, const char *path,
			       const char *content_type, const char *body, cJSON **out,
			       struct kr_error *err)
{
	struct curl_slist *headers = NULL;
	struct kr_buf url;
	enum kr_status rc;

	if (out)
		*out = NULL;
	kr_buf_init(&url);
	/* Reset drops the previous request's options but keeps the live connection. */
	curl_easy_reset(c->curl);
	rc = kr_buf_addf(&url, "%s%s", c->cfg->server, path);
	if (rc != KR_OK) {
		rc = kr_error_set(err, rc, "request to %s: out of memory", c->cfg->server);
		goto out;
	}
	rc = kr_kube_curl_configure(c->curl, c->cfg, &headers, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_kube_client_headers(c, content_type, body != NULL, &headers, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_kube_client_setup(c, method, url.data, body, headers, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_kube_client_perform(c, method, path, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_kube_client_result(c, method, path, out, err);
out:
	/* The handle keeps pointers to headers and url: drop them before freeing. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	kr_kube_curl_headers_free(headers);
	kr_buf_release(&url);
	kr_kube_client_wipe(c);
	return rc;
}

/* ---- verbs ---- */

static enum kr_status kr_kube_build_path(struct kr_buf *path, const struct kr_kube_resource *res,
					 const char *ns, const char *name, const char *sub,
					 struct kr_error *err)
{
	enum kr_status rc = kr_kube_path(path, res, ns, name, sub);

	if (rc != KR_OK)
		return kr_error_set(err, rc, "cannot build the path of %s %s: %s", res->plural,
				    name ? name : "", kr_strerror(rc));
	return KR_OK;
}

/* Send `body` (serialised, wiped after: it may hold Secret data) with `method`. */
static enum kr_status kr_kube_send(struct kr_kube_client *c, const char *method,
				   const struct kr_kube_resource *res, const char *ns,
				   const char *name, const char *sub, const char *content_type,
				   const char *body, cJSON **out, struct kr_error *err)
{
	struct kr_buf path;
	enum kr_status rc;

	if (out)
		*out = NULL;
	kr_buf_init(&path);
	rc = kr_kube_build_path(&path, res, ns, name, sub, err);
	if (rc == KR_OK)
		rc = kr_kube_request(c, method, path.data, content_type, body, out, err);
	kr_buf_release(&path);
	return rc;
}

static enum kr_status kr_kube_send_json(struct kr_kube_client *c, const char *method,
					const struct kr_kube_resource *res, const char *ns,
					const char *name, const char *sub, const cJSON *body,
					cJSON **out, struct kr_error *err)
{
	char *text = cJSON_PrintUnformatted(body);
	enum kr_status rc;

	if (out)
		*out = NULL;
	if (!text)
		return kr_error_set(err, KR_ENOMEM, "cannot serialise the %s body", res->kind);
	rc = kr_kube_send(c, method, res, ns, name, sub, "application/json", text, out, err);
	explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

enum kr_status kr_kube_get(struct kr_kube_client *c, const struct kr_kube_resource *res,
			   const char *ns, const char *name, cJSON **out, struct kr_error *err)
{
	return kr_kube_send(c, "GET", res, ns, name, NULL, NULL, NULL, out, err);
}

enum kr_status kr_kube_create(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const cJSON *body, cJSON **out, struct kr_error *err)
{
	return kr_kube_send_json(c, "POST", res, ns, NULL, NULL, body, out, err);
}

enum kr_status kr_kube_update(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const char *name, const cJSON *body, cJSON **out,
			      struct kr_error *err)
{
	return kr_kube_send_json(c, "PUT", res, ns, name, NULL, body, out, err);
}

enum kr_status kr_kube_update_status(struct kr_kube_client *c, const struct kr_kube_resource *res,
				     const char *ns, const char *name, const cJSON *body,
				     cJSON **out, struct kr_error *err)
{
	return kr_kube_send_json(c, "PUT", res, ns, name, "status", body, out, err);
}

static const char *kr_kube_patch_content_type(enum kr_kube_patch_type type)
{
	switch (type) {
	case KR_KUBE_PATCH_STRATEGIC:
		return "application/strategic-merge-patch+json";
	case KR_KUBE_PATCH_JSON:
		return "application/json-patch+json";
	case KR_KUBE_PATCH_MERGE:
	default:
		return "application/merge-patch+json";
	}
}

enum kr_status kr_kube_patch(struct kr_kube_client *c, const struct kr_kube_resource *res,
			     const char *ns, const char *name, const char *subresource,
			     enum kr_kube_patch_type type, const char *patch, cJSON **out,
			     struct kr_error *err)
{
	return kr_kube_send(c, "PATCH", res, ns, name, subresource,
			    kr_kube_patch_content_type(type), patch ? patch : "{}", out, err);
}

enum kr_status kr_kube_delete(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const char *name, struct kr_error *err)
{
	return kr_kube_send(c, "DELETE", res, ns, name, NULL, NULL, NULL, NULL, err);
}

/* ---- lists ---- */

enum kr_status kr_kube_query_add(CURL *curl, struct kr_buf *path, const char *key,
				 const char *value)
{
	char *escaped;
	enum kr_status rc;

	if (!value || !value[0])
		return KR_OK;
	escaped = curl_easy_escape(curl, value, 0);
	if (!escaped)
		return KR_ENOMEM;
	rc = kr_buf_addf(path, "%c%s=%s", strchr(path->data, '?') ? '&' : '?', key, escaped);
	curl_free(escaped);
	return rc;
}

static enum kr_status kr_kube_list_path(struct kr_kube_client *c, struct kr_buf *path,
					const struct kr_kube_resource *res, const char *ns,
					const struct kr_kube_list_opts *opts, struct kr_error *err)
{
	char limit[24];
	enum kr_status rc;

	rc = kr_kube_build_path(path, res, ns, NULL, NULL, err);
	if (rc != KR_OK || !opts)
		return rc;
	snprintf(limit, sizeof(limit), "%ld", opts->limit);
	rc = kr_kube_query_add(c->curl, path, "labelSelector", opts->label_selector);
	if (rc == KR_OK)
		rc = kr_kube_query_add(c->curl, path, "fieldSelector", opts->field_selector);
	if (rc == KR_OK && opts->limit > 0)
		rc = kr_kube_query_add(c->curl, path, "limit", limit);
	if (rc == KR_OK)
		rc = kr_kube_query_add(c->curl, path, "continue", opts->continue_token);
	if (rc == KR_OK)
		rc = kr_kube_query_add(c->curl, path, "resourceVersion", opts->resource_version);
	if (rc != KR_OK)
		return kr_error_set(err, rc, "list %s: out of memory building the query",
				    res->plural);
	return KR_OK;
}

enum kr_status kr_kube_list(struct kr_kube_client *c, const struct kr_kube_resource *res,
			    const char *ns, const struct kr_kube_list_opts *opts, cJSON **out,
			    struct kr_error *err)
{
	struct kr_buf path;
	enum kr_status rc;

	*out = NULL;
	kr_buf_init(&path);
	rc = kr_kube_list_path(c, &path, res, ns, opts, err);
	if (rc == KR_OK)
		rc = kr_kube_request(c, "GET", path.data, NULL, NULL, out, err);
	kr_buf_release(&path);
	if (rc == KR_OK &&
	    (!*out || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*out, "items")))) {
		cJSON_Delete(*out);
		*out = NULL;
		rc = kr_error_set(err, KR_EPROTO, "list %s from %s: the response has no items",
				  res->plural, c->cfg->server);
	}
	return rc;
}

/* metadata.continue of a list page, or NULL on the last page. */
static const char *kr_kube_list_continue(const cJSON *list)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(list, "metadata");
	const cJSON *cont = cJSON_GetObjectItemCaseSensitive(meta, "continue");

	return cJSON_IsString(cont) && cont->valuestring[0] ? cont->valuestring : NULL;
}

/* Move the items of `page` to the end of `all`'s items. */
static void kr_kube_list_take_items(cJSON *all, cJSON *page)
{
	cJSON *into = cJSON_GetObjectItemCaseSensitive(all, "items");
	cJSON *from = cJSON_GetObjectItemCaseSensitive(page, "items");
	cJSON *item;

	while ((item = cJSON_DetachItemFromArray(from, 0)) != NULL)
		cJSON_AddItemToArray(into, item);
}

/* The last page is in: drop the paging fields from the merged list. */
static void kr_kube_list_finish(cJSON *all)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(all, "metadata");

	cJSON_DeleteItemFromObjectCaseSensitive(meta, "continue");
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "remainingItemCount");
}

/* Copy the continue token of `page` into *token (NULL on the last page). */
static enum kr_status kr_kube_list_next(const cJSON *page, char **token)
{
	const char *next = kr_kube_list_continue(page);

	*token = NULL;
	if (!next)
		return KR_OK;
	*token = strdup(next);
	return *token ? KR_OK : KR_ENOMEM;
}

/*
 * One pass over every page, each handed to fn (which owns it). When a continue token
 * has expired (410 Expired), *expired is set.
 */
static enum kr_status kr_kube_list_pages(struct kr_kube_client *c,
					 const struct kr_kube_resource *res, const char *ns,
					 const struct kr_kube_list_opts *first, kr_kube_page_fn fn,
					 void *arg, int *expired, struct kr_error *err)
{
	struct kr_kube_list_opts opts = *first;
	char *token = NULL, *next = NULL;
	cJSON *page = NULL;
	enum kr_status rc;

	*expired = 0;
	rc = kr_kube_list(c, res, ns, &opts, &page, err);
	if (rc == KR_OK)
		rc = kr_kube_list_next(page, &token);
	if (rc == KR_OK)
		rc = fn(arg, page, 1, err);
	else
		cJSON_Delete(page);
	/* Later pages are read at the first page's snapshot, which the token names. */
	opts.resource_version = NULL;
	while (rc == KR_OK && token) {
		opts.continue_token = token;
		rc = kr_kube_list(c, res, ns, &opts, &page, err);
		if (rc == KR_EGONE)
			*expired = err && !strncmp(err->msg, "Expired", 7);
		if (rc != KR_OK)
			break;
		rc = kr_kube_list_next(page, &next);
		if (rc == KR_OK && next && !strcmp(next, token))
			rc = kr_error_set(err, KR_EPROTO,
					  "list %s from %s: the server repeated a "
					  "continue token",
					  res->plural, c->cfg->server);
		if (rc == KR_OK)
			rc = fn(arg, page, 0, err);
		else
			cJSON_Delete(page);
		free(token);
		token = next;
		next = NULL;
	}
	free(token);
	if (rc == KR_ENOMEM)
		kr_error_set(err, rc, "list %s: out of memory", res->plural);
	return rc;
}

enum kr_status kr_kube_list_each(struct kr_kube_client *c, const struct kr_kube_resource *res,
				 const char *ns, const struct kr_kube_list_opts *opts,
				 kr_kube_page_fn fn, void *arg, struct kr_error *err)
{
	struct kr_kube_list_opts first = {0};
	struct kr_error local;
	enum kr_status rc;
	int expired;

	if (opts)
		first = *opts;
	/* A whole list starts at the beginning; a caller's token would make it partial. */
	first.continue_token = NULL;
	if (first.limit <= 0)
		first.limit = KR_KUBE_DEFAULT_PAGE;
	if (!err)
		err = &local; /* the Expired test reads the reason */
	rc = kr_kube_list_pages(c, res, ns, &first, fn, arg, &expired, err);
	if (rc == KR_EGONE && expired) {
		/* The snapshot was compacted away mid-list: start over once, from scratch. */
		rc = kr_kube_list_pages(c, res, ns, &first, fn, arg, &expired, err);
	}
	return rc;
}

/* kr_kube_list_all's page function: the first page is the list, later ones add items. */
static enum kr_status kr_kube_list_gather(void *arg, cJSON *page, int first, struct kr_error *err)
{
	cJSON **all = arg;

	(void)err;
	if (first) {
		cJSON_Delete(*all); /* a restart after an expired token */
		*all = page;
		return KR_OK;
	}
	kr_kube_list_take_items(*all, page);
	cJSON_Delete(page);
	return KR_OK;
}

enum kr_status kr_kube_list_all(struct kr_kube_client *c, const struct kr_kube_resource *res,
				const char *ns, const struct kr_kube_list_opts *opts, cJSON **out,
				struct kr_error *err)
{
	enum kr_status rc;

	*out = NULL;
	rc = kr_kube_list_each(c, res, ns, opts, kr_kube_list_gather, out, err);
	if (rc != KR_OK) {
		cJSON_Delete(*out);
		*out = NULL;
		return rc;
	}
	kr_kube_list_finish(*out);
	return KR_OK;
}
