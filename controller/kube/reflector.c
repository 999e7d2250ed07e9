/* reflector.c - list, then watch forever: deliver every change of the selected objects, in order.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "json/json.h"
#include "kube/internal.h"
#include "kube/objset.h"

#define KR_REFLECTOR_POLL_MS	    60000 /* the longest wait of a quiet watch (stop wakes it) */
#define KR_REFLECTOR_HEALTHY_MS	    1000  /* a watch this long, or with events, resets backoff */
#define KR_REFLECTOR_CONNECT_MS	    10000L
#define KR_REFLECTOR_MAX_ERROR_BODY 65536
#define KR_REFLECTOR_MAX_KEY	    512
#define KR_REFLECTOR_MARGIN_MIN_S   5  /* silence allowed past timeoutSeconds: a tenth, */
#define KR_REFLECTOR_MARGIN_MAX_S   60 /* within these bounds */

/*
 * The state machine: LIST (need_list) -> WATCH -> WATCH ... A watch that ends cleanly
 * resumes from `rv` (the last event or bookmark); a 410 goes back to LIST; any other
 * failure is reported, waits the backoff and retries the same step.
 */
struct kr_kube_reflector {
	struct kr_kube_config *cfg;
	struct kr_kube_watch_opts opts; /* defaults filled in */
	struct kr_kube_watch_handler h;
	char api_version[128];	       /* "group/version" or "v1", for tombstones */
	struct kr_kube_client *client; /* the lists */
	CURLM *multi;		       /* the watches, polled together with stop_pipe */
	int stop_pipe[2];	       /* stop() writes a byte; every wait polls the read end */
	atomic_int stopping;
	struct kr_objset known; /* what the handler has been told exists */
	char rv[64];		/* where the next watch starts */
	long backoff_ms;	/* the next failure's wait, before jitter */
	uint64_t rng;
	pthread_mutex_t lock; /* guards stats */
	struct kr_kube_reflector_stats stats;
};

/* One watch request in flight. */
struct kr_watch_call {
	struct kr_kube_reflector *r;
	CURL *curl;
	struct kr_kube_stream stream;
	long http;		  /* response code, known from the first byte of body */
	struct kr_buf error_body; /* the body of a non-200 response */
	enum kr_status rc;	  /* why an event stopped the transfer; detail in err */
	struct kr_error *err;
	unsigned long events;	 /* object events and bookmarks */
	unsigned long bookmarks; /* of which bookmarks */
	long timeout_s;		 /* the timeoutSeconds asked for */
	int64_t last_byte_ms;
};

/* ---- small helpers ---- */

static int kr_reflector_stopped(struct kr_kube_reflector *r)
{
	return atomic_load(&r->stopping);
}

/* xorshift64*: timeouts and jitter only, nothing secret. */
static long kr_reflector_random(struct kr_kube_reflector *r, long lo, long hi)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return lo + (long)((r->rng * 2685821657736338717ull) % (uint64_t)(hi - lo + 1));
}

/* Sleep up to `ms`, waking at once on stop. 1 when stopped. */
static int kr_reflector_sleep(struct kr_kube_reflector *r, long ms)
{
	int64_t deadline = kr_mono_ms() + ms;
	struct pollfd p = {.fd = r->stop_pipe[0], .events = POLLIN};

	while (!kr_reflector_stopped(r)) {
		int64_t left = deadline - kr_mono_ms();

		if (left <= 0)
			return 0;
		poll(&p, 1, (int)left);
	}
	return 1;
}

/* Wait half to all of the current backoff, then double it (up to the maximum). */
static void kr_reflector_backoff(struct kr_kube_reflector *r)
{
	long d = r->backoff_ms;

	r->backoff_ms = d > r->opts.backoff_max_ms / 2 ? r->opts.backoff_max_ms : d * 2;
	kr_reflector_sleep(r, kr_reflector_random(r, d / 2, d));
}

static void kr_reflector_count(struct kr_kube_reflector *r, unsigned long *counter)
{
	pthread_mutex_lock(&r->lock);
	(*counter)++;
	pthread_mutex_unlock(&r->lock);
}

static enum kr_status kr_reflector_set_rv(struct kr_kube_reflector *r, const char *rv,
					  struct kr_error *err)
{
	if (!rv || !rv[0] || strlen(rv) >= sizeof(r->stats.last_resource_version))
		return kr_error_set(err, KR_EPROTO, "watch %s: bad metadata.resourceVersion",
				    r->opts.res->plural);
	snprintf(r->rv, sizeof(r->rv), "%s", rv);
	pthread_mutex_lock(&r->lock);
	snprintf(r->stats.last_resource_version, sizeof(r->stats.last_resource_version), "%s", rv);
	pthread_mutex_unlock(&r->lock);
	return KR_OK;
}

/* "namespace/name" into key, and the object's resourceVersion. */
static enum kr_status kr_reflector_identity(struct kr_kube_reflector *r, const cJSON *obj,
					    char *key, const char **rv, struct kr_error *err)
{
	const char *ns = kr_json_str(obj, (const char *[]){"metadata", "namespace", NULL});
	const char *name = kr_json_str(obj, (const char *[]){"metadata", "name", NULL});
	int n;

	*rv = kr_json_str(obj, (const char *[]){"metadata", "resourceVersion", NULL});
	if (!name || !name[0] || !*rv)
		return kr_error_set(err, KR_EPROTO,
				    "%s: an object without metadata.name or resourceVersion",
				    r->opts.res->plural);
	n = snprintf(key, KR_REFLECTOR_MAX_KEY, "%s/%s", ns ? ns : "", name);
	if (n < 0 || n >= KR_REFLECTOR_MAX_KEY)
		return kr_error_set(err, KR_EPROTO, "%s: object name too long",
				    r->opts.res->plural);
	return KR_OK;
}

/* ---- delivery: the known set keeps the handler's view consistent ---- */

/*
 * ADDED when the handler has not seen the object, MODIFIED when its resourceVersion
 * moved, nothing when it did not (a relist or a replay repeating what was delivered).
 */
static enum kr_status kr_reflector_upsert(struct kr_kube_reflector *r, const cJSON *obj,
					  struct kr_error *err)
{
	char key[KR_REFLECTOR_MAX_KEY];
	struct kr_objset_entry *e;
	const char *rv;
	enum kr_status rc;

	rc = kr_reflector_identity(r, obj, key, &rv, err);
	if (rc != KR_OK)
		return rc;
	e = kr_objset_find(&r->known, key);
	if (e && strcmp(e->rv, rv) == 0) {
		kr_objset_touch(e, &r->known);
		return KR_OK;
	}
	if (kr_objset_put(&r->known, key, rv) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "reflector: out of memory");
	r->h.on_event(r->h.arg, e ? KR_KUBE_MODIFIED : KR_KUBE_ADDED, obj);
	return KR_OK;
}

/* DELETED, for objects the handler knows; a deletion it never heard of is dropped. */
static enum kr_status kr_reflector_remove(struct kr_kube_reflector *r, const cJSON *obj,
					  struct kr_error *err)
{
	char key[KR_REFLECTOR_MAX_KEY];
	const char *rv;
	enum kr_status rc;

	rc = kr_reflector_identity(r, obj, key, &rv, err);
	if (rc != KR_OK)
		return rc;
	if (!kr_objset_find(&r->known, key))
		return KR_OK;
	kr_objset_remove(&r->known, key);
	r->h.on_event(r->h.arg, KR_KUBE_DELETED, obj);
	return KR_OK;
}

/* List items carry no kind/apiVersion; give them the ones watch objects have. */
static void kr_reflector_fill_type(struct kr_kube_reflector *r, cJSON *obj)
{
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", r->opts.res->kind);
	if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
		cJSON_AddStringToObject(obj, "apiVersion", r->api_version);
}

/*
 * An object that vanished while the watch was down: all we know is its identity and
 * the last resourceVersion delivered, so that is what the DELETED object holds.
 */
static void kr_reflector_tombstone(void *arg, const char *key, const char *rv)
{
	struct kr_kube_reflector *r = arg;
	const char *slash = strchr(key, '/');
	cJSON *obj = cJSON_CreateObject();
	cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");

	kr_reflector_fill_type(r, obj);
	cJSON_AddStringToObject(meta, "name", slash + 1);
	if (slash != key) {
		char ns[KR_REFLECTOR_MAX_KEY];

		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		cJSON_AddStringToObject(meta, "namespace", ns);
	}
	cJSON_AddStringToObject(meta, "resourceVersion", rv);
	r->h.on_event(r->h.arg, KR_KUBE_DELETED, obj);
	cJSON_Delete(obj);
}

/* ---- LIST ---- */

/*
 * One page of the list: the first sets the resourceVersion the watch starts from and
 * starts marking; every page's items are delivered as they come, so memory holds one
 * page, not the whole list. Objects gone since are swept after the last page.
 */
static enum kr_status kr_reflector_list_page(void *arg, cJSON *page, int first,
					     struct kr_error *err)
{
	struct kr_kube_reflector *r = arg;
	cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
	cJSON *item;
	enum kr_status rc = KR_OK;

	if (first) {
		rc = kr_reflector_set_rv(
		    r, kr_json_str(page, (const char *[]){"metadata", "resourceVersion", NULL}),
		    err);
		kr_objset_begin_mark(&r->known);
	}
	if (rc == KR_OK && items && !cJSON_IsNull(items) && !cJSON_IsArray(items))
		rc = kr_error_set(err, KR_EPROTO, "list %s: \"items\" is not an array",
				  r->opts.res->plural);
	if (rc == KR_OK) {
		cJSON_ArrayForEach(item, items)
		{
			kr_reflector_fill_type(r, item);
			rc = kr_reflector_upsert(r, item, err);
			if (rc != KR_OK)
				break;
		}
	}
	cJSON_Delete(page);
	return rc;
}

/*
 * List every page; the watch then starts from the list's resourceVersion.
 *
 * A page must fit the client's response cap (64 MiB, kr_kube_client_set_max_response).
 * Usual objects are small: a Deployment with its managedFields 5-20 KiB, a KeyRotation
 * or KeyStore a few KiB, so a page of 500 is 1-10 MiB. But an object may be as large as
 * etcd stores one (1.5 MiB by default, and more once a built-in type is turned from
 * protobuf into JSON; metadata is not bounded by any CRD schema), and 500 x 1.5 MiB is
 * 750 MiB: no fixed page size fits every cluster. So a page refused as too large is
 * listed again from the start with half as many objects per page, down to 1 (one object,
 * at most a few MiB, always fits), and later lists keep the smaller size. Pages already
 * delivered are delivered again, as after an expired continue token: upserts of what is
 * known change nothing.
 */
static enum kr_status kr_reflector_list(struct kr_kube_reflector *r, struct kr_error *err)
{
	struct kr_kube_list_opts lo = {
	    .label_selector = r->opts.label_selector,
	    .field_selector = r->opts.field_selector,
	};
	enum kr_status rc;

	for (;;) {
		lo.limit = r->opts.list_page_size;
		rc = kr_kube_list_each(r->client, r->opts.res, r->opts.ns, &lo,
				       kr_reflector_list_page, r, err);
		if (rc != KR_ETOOBIG || lo.limit <= 1 || kr_reflector_stopped(r))
			break;
		r->opts.list_page_size = lo.limit / 2;
	}
	if (rc != KR_OK)
		return rc;
	kr_objset_sweep(&r->known, kr_reflector_tombstone, r);
	kr_reflector_count(r, &r->stats.lists);
	if (r->h.on_synced)
		r->h.on_synced(r->h.arg, r->rv);
	return KR_OK;
}

/* ---- WATCH: events ---- */

/* An in-stream ERROR: its Status says what failed (410 Expired sends us back to LIST). */
static enum kr_status kr_watch_status(struct kr_watch_call *w, const cJSON *status,
				      struct kr_error *err)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(status, "code");
	int http = cJSON_IsNumber(code) ? code->valueint : 500;
	enum kr_status rc = kr_kube_status_error(http, status, err);

	if (rc == KR_OK)
		rc = kr_error_set(err, KR_EPROTO, "an ERROR event with code %d", http);
	return kr_error_prefix(err, "watch %s: ", w->r->opts.res->plural);
}

static enum kr_status kr_watch_event(void *arg, enum kr_kube_event_type type, const cJSON *obj,
				     struct kr_error *err)
{
	struct kr_watch_call *w = arg;
	struct kr_kube_reflector *r = w->r;
	enum kr_status rc = KR_OK;

	if (kr_reflector_stopped(r))
		return kr_error_set(err, KR_ECANCELED, "reflector stopped");
	switch (type) {
	case KR_KUBE_ERROR:
		return kr_watch_status(w, obj, err);
	case KR_KUBE_BOOKMARK:
		/* Liveness and a resume point only: nothing to deliver. */
		w->bookmarks++;
		break;
	case KR_KUBE_ADDED:
	case KR_KUBE_MODIFIED:
		rc = kr_reflector_upsert(r, obj, err);
		break;
	case KR_KUBE_DELETED:
		rc = kr_reflector_remove(r, obj, err);
		break;
	}
	if (rc != KR_OK)
		return rc;
	w->events++;
	return kr_reflector_set_rv(
	    r, kr_json_str(obj, (const char *[]){"metadata", "resourceVersion", NULL}), err);
}

static size_t kr_watch_write(char *data, size_t size, size_t n, void *arg)
{
	struct kr_watch_call *w = arg;
	size_t len = size * n;

	w->last_byte_ms = kr_mono_ms();
	if (w->http == 0)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->http);
	if (w->http != 200) {
		if (w->error_body.len + len <= KR_REFLECTOR_MAX_ERROR_BODY)
			kr_buf_add(&w->error_body, data, len);
		return len;
	}
	w->rc = kr_kube_stream_feed(&w->stream, data, len, kr_watch_event, w, w->err);
	return w->rc == KR_OK ? len : 0;
}

static size_t kr_watch_header(char *data, size_t size, size_t n, void *arg)
{
	struct kr_watch_call *w = arg;

	(void)data;
	w->last_byte_ms = kr_mono_ms();
	return size * n;
}

/* ---- WATCH: the request ---- */

static enum kr_status kr_watch_url(struct kr_watch_call *w, struct kr_buf *url,
				   struct kr_error *err)
{
	struct kr_kube_reflector *r = w->r;
	long timeout_s = kr_reflector_random(r, r->opts.timeout_min_s, r->opts.timeout_max_s);
	enum kr_status rc;

	w->timeout_s = timeout_s;

	rc = kr_buf_adds(url, r->cfg->server);
	if (rc == KR_OK)
		rc = kr_kube_path(url, r->opts.res, r->opts.ns, NULL, NULL);
	if (rc == KR_OK)
		rc = kr_buf_addf(url, "?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld",
				 timeout_s);
	if (rc == KR_OK)
		rc = kr_kube_query_add(w->curl, url, "resourceVersion", r->rv);
	if (rc == KR_OK)
		rc = kr_kube_query_add(w->curl, url, "labelSelector", r->opts.label_selector);
	if (rc == KR_OK)
		rc = kr_kube_query_add(w->curl, url, "fieldSelector", r->opts.field_selector);
	if (rc != KR_OK)
		return kr_error_set(err, rc, "watch %s: cannot build the URL (%s)",
				    r->opts.res->plural, kr_strerror(rc));
	return KR_OK;
}

static void kr_watch_setopts(struct kr_watch_call *w, const char *url, struct curl_slist *headers,
			     char *errbuf)
{
	CURL *c = w->curl;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, KR_REFLECTOR_CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kr_watch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kr_watch_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, w);
}

static CURLcode kr_watch_result(CURLM *multi)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			return msg->data.result;
	return CURLE_OK;
}

/*
 * How long this watch may stay silent. The server ends a watch at its timeoutSeconds,
 * even a quiet one that sent no bookmark, so by default the limit is that plus a margin
 * (a tenth, 5..60 s): only a connection that died without a word (a NAT or proxy that
 * dropped it) stays silent longer. A fixed limit shorter than the timeout would abort
 * every quiet watch of a healthy server.
 */
static int64_t kr_watch_idle_limit_ms(const struct kr_watch_call *w)
{
	long margin = w->timeout_s / 10;

	if (w->r->opts.idle_timeout_s > 0)
		return (int64_t)w->r->opts.idle_timeout_s * 1000;
	if (margin < KR_REFLECTOR_MARGIN_MIN_S)
		margin = KR_REFLECTOR_MARGIN_MIN_S;
	if (margin > KR_REFLECTOR_MARGIN_MAX_S)
		margin = KR_REFLECTOR_MARGIN_MAX_S;
	return (int64_t)(w->timeout_s + margin) * 1000;
}

/*
 * Drive the transfer, waking every POLL_MS (or at once on stop) to check the stop
 * flag and the idle clock: a watch silent for longer than its idle limit is aborted.
 */
static enum kr_status kr_watch_transfer(struct kr_watch_call *w, CURLcode *result,
					struct kr_error *err)
{
	struct kr_kube_reflector *r = w->r;
	struct curl_waitfd stop = {.fd = r->stop_pipe[0], .events = CURL_WAIT_POLLIN};
	int64_t idle_ms = kr_watch_idle_limit_ms(w);
	enum kr_status rc = KR_OK;
	int running = 1;

	pthread_mutex_lock(&r->lock);
	r->stats.idle_limit_ms = idle_ms;
	pthread_mutex_unlock(&r->lock);

	*result = CURLE_OK;
	if (curl_multi_add_handle(r->multi, w->curl) != CURLM_OK)
		return kr_error_set(err, KR_ENOMEM, "watch %s: cannot start the transfer",
				    r->opts.res->plural);
	w->last_byte_ms = kr_mono_ms();
	for (;;) {
		if (curl_multi_perform(r->multi, &running) != CURLM_OK) {
			rc = kr_error_set(err, KR_EIO, "watch %s: transfer failed",
					  r->opts.res->plural);
			break;
		}
		if (!running) {
			*result = kr_watch_result(r->multi);
			break;
		}
		if (kr_reflector_stopped(r)) {
			rc = kr_error_set(err, KR_ECANCELED, "reflector stopped");
			break;
		}
		if (kr_mono_ms() - w->last_byte_ms > idle_ms) {
			rc = kr_error_set(err, KR_ETIMEOUT,
					  "watch %s: no data from %s for %lld s (the server "
					  "should have ended the watch after %ld s)",
					  r->opts.res->plural, r->cfg->server,
					  (long long)(idle_ms / 1000), w->timeout_s);
			break;
		}
		/* Sleep until data, stop() (the pipe), curl's own timers, or the idle limit. */
		long wait_ms = idle_ms - (kr_mono_ms() - w->last_byte_ms) + 1;
		curl_multi_poll(r->multi, &stop, 1,
				(int)(wait_ms < 1		       ? 1
				      : wait_ms > KR_REFLECTOR_POLL_MS ? KR_REFLECTOR_POLL_MS
								       : wait_ms),
				NULL);
	}
	curl_multi_remove_handle(r->multi, w->curl);
	return rc;
}

static enum kr_status kr_watch_http_error(struct kr_watch_call *w, struct kr_error *err)
{
	cJSON *body = cJSON_ParseWithLength(w->error_body.data, w->error_body.len);

	if (body)
		kr_kube_status_error((int)w->http, body, err);
	else
		kr_kube_status_error_raw((int)w->http, w->error_body.data, w->error_body.len, err);
	cJSON_Delete(body);
	return kr_error_prefix(err, "watch %s: ", w->r->opts.res->plural);
}

/* What a finished transfer means: an event's verdict first, then transport, then HTTP. */
static enum kr_status kr_watch_outcome(struct kr_watch_call *w, CURLcode code, const char *errbuf,
				       struct kr_error *err)
{
	if (w->rc != KR_OK)
		return w->rc; /* err already filled by the event */
	if (code != CURLE_OK) {
		kr_kube_curl_error(code, w->r->cfg->server, errbuf, err);
		return kr_error_prefix(err, "watch %s: ", w->r->opts.res->plural);
	}
	if (w->http == 0)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->http);
	if (w->http != 200)
		return kr_watch_http_error(w, err);
	return KR_OK;
}

/* One watch from r->rv until the server closes it or something fails. */
static enum kr_status kr_reflector_watch(struct kr_kube_reflector *r, int *healthy,
					 struct kr_error *err)
{
	struct kr_watch_call w = {.r = r, .err = err};
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int64_t started = kr_mono_ms();
	struct kr_buf url;
	CURLcode code;
	enum kr_status rc;

	kr_buf_init(&url);
	kr_buf_init(&w.error_body);
	kr_kube_stream_init(&w.stream, 0);
	w.curl = curl_easy_init();
	if (!w.curl) {
		rc = kr_error_set(err, KR_ENOMEM, "watch: cannot create a curl handle");
		goto out;
	}
	rc = kr_kube_curl_configure(w.curl, r->cfg, &headers, err);
	if (rc == KR_OK)
		rc = kr_watch_url(&w, &url, err);
	if (rc != KR_OK)
		goto out;
	kr_watch_setopts(&w, url.data, headers, errbuf);
	kr_reflector_count(r, &r->stats.watches);
	rc = kr_watch_transfer(&w, &code, err);
	if (rc == KR_OK)
		rc = kr_watch_outcome(&w, code, errbuf, err);
	if (rc == KR_OK) /* routine: the server ended it, at its timeout or its own restart */
		kr_log_debug(NULL,
			     "watch %s: the server ended it after %lld ms (timeoutSeconds=%ld, "
			     "%lu events, %lu bookmarks); reopening at resourceVersion %s",
			     r->opts.res->plural, (long long)(kr_mono_ms() - started), w.timeout_s,
			     w.events - w.bookmarks, w.bookmarks, r->rv);
out:
	*healthy =
	    w.http == 200 && (w.events > 0 || kr_mono_ms() - started >= KR_REFLECTOR_HEALTHY_MS);
	kr_kube_curl_headers_free(headers);
	curl_easy_cleanup(w.curl);
	kr_kube_stream_release(&w.stream);
	kr_buf_release(&w.error_body);
	kr_buf_release(&url);
	return rc;
}

/* ---- the state machine ---- */

/* One step: LIST when we must, else WATCH; then decide what comes next. */
static void kr_reflector_step(struct kr_kube_reflector *r, int *need_list)
{
	struct kr_error err;
	int healthy = 0, listing = *need_list;
	enum kr_status rc;

	kr_error_clear(&err);
	rc = listing ? kr_reflector_list(r, &err) : kr_reflector_watch(r, &healthy, &err);
	if (healthy)
		r->backoff_ms = r->opts.backoff_initial_ms;
	if (kr_reflector_stopped(r) || rc == KR_ECANCELED)
		return;
	if (rc == KR_OK) {
		*need_list = 0;
		if (!listing && !healthy) /* closed at once: do not spin on the server */
			kr_reflector_backoff(r);
		return;
	}
	if (rc == KR_EGONE) {
		kr_reflector_count(r, &r->stats.expired);
		*need_list = 1;
		if (!healthy) /* 410 right after a list: do not relist in a tight loop */
			kr_reflector_backoff(r);
		return;
	}
	kr_reflector_count(r, &r->stats.errors);
	if (r->h.on_error)
		r->h.on_error(r->h.arg, &err);
	kr_reflector_backoff(r);
}

enum kr_status kr_kube_reflector_run(struct kr_kube_reflector *r)
{
	int need_list = 1;

	while (!kr_reflector_stopped(r))
		kr_reflector_step(r, &need_list);
	return KR_OK;
}

void kr_kube_reflector_stop(struct kr_kube_reflector *r)
{
	/* Only an atomic store and write(2): safe from a signal handler too. */
	atomic_store(&r->stopping, 1);
	if (write(r->stop_pipe[1], "x", 1) < 0) {
		/* the pipe is full: a wake-up is already pending */
	}
}

void kr_kube_reflector_stats(struct kr_kube_reflector *r, struct kr_kube_reflector_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

/* ---- lifecycle ---- */

static void kr_reflector_defaults(struct kr_kube_watch_opts *o)
{
	if (o->timeout_min_s <= 0)
		o->timeout_min_s = 300;
	if (o->timeout_max_s <= 0)
		o->timeout_max_s = 600;
	if (o->timeout_max_s < o->timeout_min_s)
		o->timeout_max_s = o->timeout_min_s;
	if (o->idle_timeout_s < 0)
		o->idle_timeout_s = 0; /* the watch's timeoutSeconds plus a margin */
	if (o->backoff_initial_ms <= 0)
		o->backoff_initial_ms = 800;
	if (o->backoff_max_ms <= 0)
		o->backoff_max_ms = 30000;
	if (o->backoff_max_ms < o->backoff_initial_ms)
		o->backoff_max_ms = o->backoff_initial_ms;
	if (o->list_page_size <= 0)
		o->list_page_size = 500;
}

static void kr_reflector_seed(struct kr_kube_reflector *r)
{
	if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng))
		r->rng = (uint64_t)kr_mono_ms() ^ ((uint64_t)getpid() << 32);
	if (r->rng == 0)
		r->rng = 0x9e3779b97f4a7c15ull;
}

struct kr_kube_reflector *kr_kube_reflector_new(struct kr_kube_config *cfg,
						const struct kr_kube_watch_opts *opts,
						const struct kr_kube_watch_handler *handler,
						struct kr_error *err)
{
	struct kr_kube_reflector *r;
	const struct kr_kube_resource *res = opts ? opts->res : NULL;

	if (!cfg || !res || !handler || !handler->on_event) {
		kr_error_set(err, KR_EINVAL,
			     "reflector: a config, a resource and on_event are "
			     "required");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		kr_error_set(err, KR_ENOMEM, "reflector: out of memory");
		return NULL;
	}
	r->cfg = cfg;
	r->opts = *opts;
	r->h = *handler;
	r->stop_pipe[0] = r->stop_pipe[1] = -1;
	pthread_mutex_init(&r->lock, NULL);
	kr_objset_init(&r->known);
	kr_reflector_defaults(&r->opts);
	r->backoff_ms = r->opts.backoff_initial_ms;
	kr_reflector_seed(r);
	snprintf(r->api_version, sizeof(r->api_version), "%s%s%s", res->group,
		 res->group[0] ? "/" : "", res->version);
	r->client = kr_kube_client_new(cfg, err);
	if (!r->client)
		goto fail;
	r->multi = curl_multi_init();
	if (!r->multi || pipe2(r->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		kr_error_set(err, KR_ENOMEM, "reflector: cannot create its curl handle or pipe");
		goto fail;
	}
	return r;
fail:
	kr_kube_reflector_free(r);
	return NULL;
}

void kr_kube_reflector_free(struct kr_kube_reflector *r)
{
	if (!r)
		return;
	if (r->multi)
		curl_multi_cleanup(r->multi);
	for (int i = 0; i < 2; i++)
		if (r->stop_pipe[i] >= 0)
			close(r->stop_pipe[i]);
	kr_kube_client_free(r->client);
	kr_objset_release(&r->known);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
