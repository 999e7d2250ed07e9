/* kube.h - the Kubernetes client: configuration, REST verbs, and list+watch. */
#ifndef KR_KUBE_H
#define KR_KUBE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/secret.h"

/*
 * Ownership, stated once for the whole API:
 *   - every `const cJSON *` argument is borrowed; the function never keeps it;
 *   - every `cJSON **out` result belongs to the caller, who frees it with cJSON_Delete;
 *     on error *out is NULL;
 *   - objects passed to watch handlers are borrowed and valid only during the call.
 * Errors: every call takes a `struct kr_error *err` (may be NULL) and returns its code.
 * Kubernetes `Status` failures map to codes as: 401/403 KR_EAUTH, 404 KR_ENOTFOUND,
 * 409 AlreadyExists KR_EEXIST, 409 Conflict KR_ECONFLICT, 410 KR_EGONE, 422/400
 * KR_EINVAL, 413 KR_ETOOBIG, other >= 400 KR_EHTTP; err->http_status carries the code
 * and err->msg reads "<Reason>: <message>".
 */

/* ---- configuration (kubeconfig.c, incluster.c) ---- */

/*
 * Where and how to reach the API server. Filled by kr_kube_config_load; embedded
 * by value, released with kr_kube_config_release. Read-only once loaded, except
 * for the token cache, which kr_kube_config_token guards with its own lock, so a
 * config may be shared by clients on several threads.
 */
struct kr_kube_config {
	char *server;                 /* "https://host:port", no trailing slash */
	char *namespace_;             /* context/service-account namespace; "default" if unset */
	char *source;                 /* human text for messages: "kubeconfig /p (context c)" */
	char *ca_file;                /* certificate-authority path, or NULL */
	struct kr_buf ca_data;        /* certificate-authority-data, PEM (decoded), len 0 if none */
	int insecure_skip_tls_verify;
	char *tls_server_name;        /* tls-server-name, or NULL */
	char *client_cert_file;       /* client-certificate path, or NULL */
	char *client_key_file;        /* client-key path, or NULL */
	struct kr_buf client_cert_data;   /* client-certificate-data, PEM, len 0 if none */
	struct kr_secret *client_key_data; /* client-key-data, PEM, or NULL */
	struct kr_secret *token;      /* static bearer token, or NULL */
	char *token_file;             /* tokenFile / service-account token path, or NULL */
	/* token_file cache, guarded by token_lock */
	pthread_mutex_t token_lock;
	struct kr_secret *file_token;
	struct timespec file_token_mtime;
	time_t file_token_checked;
};

/* Zero the struct and initialise the lock; always safe to _release afterwards. */
void kr_kube_config_init(struct kr_kube_config *cfg);
void kr_kube_config_release(struct kr_kube_config *cfg);

/*
 * Resolve configuration the way kubectl does: `path` (the --kubeconfig flag) when not
 * NULL; else $KUBECONFIG (several files joined by ':', merged, the first file to set a
 * value wins); else ~/.kube/config when it exists; else in-cluster. `context` selects a
 * context other than current-context (may be NULL). On error err->msg names the file,
 * the field and the problem.
 */
enum kr_status kr_kube_config_load(struct kr_kube_config *cfg, const char *path,
				   const char *context, struct kr_error *err);

/*
 * In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service-account
 * directory `sa_dir` (NULL = /var/run/secrets/kubernetes.io/serviceaccount): token
 * (re-read when it changes), ca.crt, namespace.
 */
enum kr_status kr_kube_config_in_cluster(struct kr_kube_config *cfg, const char *sa_dir,
					 struct kr_error *err);

/*
 * The bearer token to send now, or *out = NULL when the config has none. A tokenFile
 * is re-read when its mtime changes (checked at most once a second). Caller frees
 * *out with kr_secret_free. Thread-safe.
 */
enum kr_status kr_kube_config_token(struct kr_kube_config *cfg, struct kr_secret **out,
				    struct kr_error *err);

/* ---- resources ---- */

/* A resource type; all strings static. group "" is the core group (/api/v1). */
struct kr_kube_resource {
	const char *group;
	const char *version;
	const char *plural;
	const char *kind;
	int namespaced;
};

extern const struct kr_kube_resource kr_kube_secrets;
extern const struct kr_kube_resource kr_kube_events;
extern const struct kr_kube_resource kr_kube_deployments;
extern const struct kr_kube_resource kr_kube_statefulsets;
extern const struct kr_kube_resource kr_kube_daemonsets;
extern const struct kr_kube_resource kr_kube_cronjobs; /* batch/v1 */
extern const struct kr_kube_resource kr_kube_leases;
extern const struct kr_kube_resource kr_kube_keyrotations;
extern const struct kr_kube_resource kr_kube_keystores;	       /* namespaced */
extern const struct kr_kube_resource kr_kube_clusterkeystores; /* cluster-scoped */
extern const struct kr_kube_resource kr_kube_namespaces;	       /* cluster-scoped */

/*
 * Append the URL path for `res` to `out`: /api/v1/namespaces/NS/secrets/NAME/SUB.
 * `ns` NULL or "" lists across namespaces; `name`, `subresource` may be NULL.
 * Path segments are percent-escaped.
 */
enum kr_status kr_kube_path(struct kr_buf *out, const struct kr_kube_resource *res,
			    const char *ns, const char *name, const char *subresource);

/* ---- the REST client (client.c, status.c) ---- */

/*
 * A connection to one API server. Reuses its connection (one libcurl easy handle);
 * like a hiredis context it is NOT thread-safe: use one client per thread.
 * kr_kube_client_free(NULL) does nothing. The config is borrowed and must outlive it.
 */
struct kr_kube_client;

struct kr_kube_client *kr_kube_client_new(struct kr_kube_config *cfg, struct kr_error *err);
void kr_kube_client_free(struct kr_kube_client *c);
/* Defaults: connect 5 s, whole request 30 s. 0 keeps the current value. */
void kr_kube_client_set_timeouts(struct kr_kube_client *c, long connect_ms, long request_ms);
/* Responses larger than this fail with KR_ETOOBIG (default 64 MiB). */
void kr_kube_client_set_max_response(struct kr_kube_client *c, size_t bytes);
/* Requests sent by this client so far (for tests and benchmarks). */
unsigned long kr_kube_client_requests(const struct kr_kube_client *c);

enum kr_kube_patch_type {
	KR_KUBE_PATCH_MERGE,     /* application/merge-patch+json */
	KR_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in types) */
	KR_KUBE_PATCH_JSON,      /* application/json-patch+json */
};

struct kr_kube_list_opts {
	const char *label_selector;    /* NULL for none */
	const char *field_selector;    /* NULL for none */
	long limit;                    /* 0 for no limit */
	const char *continue_token;    /* NULL for the first page */
	const char *resource_version;  /* NULL for a consistent read */
};

enum kr_status kr_kube_get(struct kr_kube_client *c, const struct kr_kube_resource *res,
			   const char *ns, const char *name, cJSON **out, struct kr_error *err);
/* One page. The list object's metadata.continue is set when more pages exist. */
enum kr_status kr_kube_list(struct kr_kube_client *c, const struct kr_kube_resource *res,
			    const char *ns, const struct kr_kube_list_opts *opts, cJSON **out,
			    struct kr_error *err);
/*
 * Every page, following metadata.continue, each handed to fn as it arrives (fn owns the
 * page; `first` is 1 for the first page, which carries the snapshot's resourceVersion).
 * On a 410 Expired continue token the list starts over once, with first = 1 again.
 * fn's error stops the list. opts->limit is the page size (0 = 500).
 */
typedef enum kr_status (*kr_kube_page_fn)(void *arg, cJSON *page, int first,
					  struct kr_error *err);
enum kr_status kr_kube_list_each(struct kr_kube_client *c, const struct kr_kube_resource *res,
				 const char *ns, const struct kr_kube_list_opts *opts,
				 kr_kube_page_fn fn, void *arg, struct kr_error *err);
/*
 * Every page, following metadata.continue, into one list object whose
 * metadata.resourceVersion is the snapshot's (the first page's). opts->limit is the
 * page size (0 = 500).
 */
enum kr_status kr_kube_list_all(struct kr_kube_client *c, const struct kr_kube_resource *res,
				const char *ns, const struct kr_kube_list_opts *opts,
				cJSON **out, struct kr_error *err);
enum kr_status kr_kube_create(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const cJSON *body, cJSON **out,
			      struct kr_error *err);
/* PUT. With metadata.resourceVersion set, a stale version fails with KR_ECONFLICT. */
enum kr_status kr_kube_update(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const char *name, const cJSON *body, cJSON **out,
			      struct kr_error *err);
/* PUT to the /status subresource. */
enum kr_status kr_kube_update_status(struct kr_kube_client *c,
				     const struct kr_kube_resource *res, const char *ns,
				     const char *name, const cJSON *body, cJSON **out,
				     struct kr_error *err);
/* PATCH; `subresource` NULL or "status". `patch` is the JSON text. `out` may be NULL. */
enum kr_status kr_kube_patch(struct kr_kube_client *c, const struct kr_kube_resource *res,
			     const char *ns, const char *name, const char *subresource,
			     enum kr_kube_patch_type type, const char *patch, cJSON **out,
			     struct kr_error *err);
enum kr_status kr_kube_delete(struct kr_kube_client *c, const struct kr_kube_resource *res,
			      const char *ns, const char *name, struct kr_error *err);
/*
 * Any request: `path` absolute with its query ("/api/v1/..."), `body` may be NULL.
 * `out` (may be NULL) receives the parsed JSON response when there is one.
 */
enum kr_status kr_kube_request(struct kr_kube_client *c, const char *method, const char *path,
			       const char *content_type, const char *body, cJSON **out,
			       struct kr_error *err);

/*
 * Decode a Kubernetes Status failure (`body` may be NULL or not a Status) for
 * `http_status` into err and return the mapped code (see the table at the top).
 */
enum kr_status kr_kube_status_error(int http_status, const cJSON *body, struct kr_error *err);

/* ---- watch (stream.c, reflector.c) ---- */

enum kr_kube_event_type {
	KR_KUBE_ADDED,
	KR_KUBE_MODIFIED,
	KR_KUBE_DELETED,
	KR_KUBE_BOOKMARK,
	KR_KUBE_ERROR,
};

/*
 * Incremental splitter for a watch response body: feed bytes as they arrive, it calls
 * `fn` once per complete JSON line with the decoded event. A line longer than
 * `max_line` bytes, or one that is not a watch event, fails with KR_ETOOBIG or
 * KR_EPROTO (the watch must then be restarted). Embedded: _init / _release.
 */
typedef enum kr_status (*kr_kube_event_fn)(void *arg, enum kr_kube_event_type type,
					   const cJSON *object, struct kr_error *err);

struct kr_kube_stream {
	struct kr_buf pending;
	size_t max_line;
};

void kr_kube_stream_init(struct kr_kube_stream *s, size_t max_line);
void kr_kube_stream_release(struct kr_kube_stream *s);
enum kr_status kr_kube_stream_feed(struct kr_kube_stream *s, const char *data, size_t len,
				   kr_kube_event_fn fn, void *arg, struct kr_error *err);
/* Decode one event line. *object is owned by the caller (cJSON_Delete). */
enum kr_status kr_kube_event_decode(const char *line, size_t len, enum kr_kube_event_type *type,
				    cJSON **object, struct kr_error *err);

/*
 * A reflector: list, then watch from the list's metadata.resourceVersion, forever,
 * delivering every change of the selected objects in order. It sends
 * allowWatchBookmarks=true and a timeoutSeconds drawn from [min,max]; resumes from
 * the last seen resourceVersion (bookmarks included) after a clean close, which is
 * routine (a debug log line, no on_error); backs off (initial → max, doubled, with
 * jitter) on errors; aborts a watch silent for longer than its idle limit (reported
 * through on_error); relists on 410 (HTTP or in-stream ERROR), delivering objects
 * missing from the relist as KR_KUBE_DELETED. A BOOKMARK is liveness and a resume
 * point: it moves the resourceVersion and delivers nothing.
 */
struct kr_kube_watch_opts {
	const struct kr_kube_resource *res;
	const char *ns;                /* NULL = all namespaces */
	const char *label_selector;    /* NULL = none */
	const char *field_selector;    /* NULL = none, e.g. "metadata.name=x" */
	int timeout_min_s;             /* default 300 */
	int timeout_max_s;             /* default 600 */
	int idle_timeout_s;            /* 0 (default): the watch's timeoutSeconds plus a tenth
	                                  (5..60 s); no byte for this long aborts the watch */
	long backoff_initial_ms;       /* default 800 */
	long backoff_max_ms;           /* default 30000 */
	long list_page_size;           /* default 500 */
};

/* What the reflector reports besides object events. */
struct kr_kube_watch_handler {
	/* ADDED / MODIFIED / DELETED for one object; borrowed object. Required. */
	void (*on_event)(void *arg, enum kr_kube_event_type type, const cJSON *object);
	/* After each (re)list has been fully delivered. May be NULL. */
	void (*on_synced)(void *arg, const char *resource_version);
	/* A failure that the reflector will retry after backoff. May be NULL. */
	void (*on_error)(void *arg, const struct kr_error *err);
	void *arg;
};

struct kr_kube_reflector;

/* Config and opts strings are borrowed and must outlive the reflector. */
struct kr_kube_reflector *kr_kube_reflector_new(struct kr_kube_config *cfg,
						const struct kr_kube_watch_opts *opts,
						const struct kr_kube_watch_handler *handler,
						struct kr_error *err);
void kr_kube_reflector_free(struct kr_kube_reflector *r);
/* Run until kr_kube_reflector_stop; returns KR_OK then. Call from one thread. */
enum kr_status kr_kube_reflector_run(struct kr_kube_reflector *r);
/* From any thread (or a signal-safe flag check): interrupts the run within ~100 ms. */
void kr_kube_reflector_stop(struct kr_kube_reflector *r);
/* Counters for tests: lists done, watches started, 410s seen; the silence limit of the
 * current (or last) watch. */
struct kr_kube_reflector_stats {
	unsigned long lists, watches, expired, errors;
	long long idle_limit_ms;
	char last_resource_version[32];
};
void kr_kube_reflector_stats(struct kr_kube_reflector *r, struct kr_kube_reflector_stats *out);

#endif
