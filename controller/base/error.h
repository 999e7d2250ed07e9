/* error.h - the one status enum and the error-detail carrier every module returns. */
#ifndef KR_ERROR_H
#define KR_ERROR_H

#include <stddef.h>

/*
 * Status codes. Values never renumber: add new ones before KR_LAST only.
 * Modules return one of these; human detail goes into a struct kr_error.
 */
enum kr_status {
	KR_OK = 0,
	KR_ENOMEM,     /* allocation failed */
	KR_EINVAL,     /* bad input: a file, a flag, a field (the user's fault) */
	KR_EIO,        /* transport failed: connect, TLS, read/write, refused */
	KR_ETIMEOUT,   /* a deadline passed */
	KR_EPROTO,     /* the peer sent something malformed or unexpected */
	KR_EAUTH,      /* authentication or authorisation refused (401/403, NOAUTH) */
	KR_ENOTFOUND,  /* the object does not exist (404) */
	KR_EEXIST,     /* the object already exists (409 AlreadyExists) */
	KR_ECONFLICT,  /* optimistic concurrency lost (409 Conflict) */
	KR_EGONE,      /* resourceVersion too old (410 Expired/Gone) */
	KR_EHTTP,      /* any other HTTP error status from a server */
	KR_ESTORE,     /* the key store answered with an error (WRONGTYPE, ...) */
	KR_ETOOBIG,    /* input exceeds a configured limit */
	KR_ESTATE,     /* the operation is not valid in the current state */
	KR_ECANCELED,  /* stopped on request (shutdown) */
	KR_LAST
};

/* Short fixed text for a status ("conflict", "not found"); never NULL. */
const char *kr_strerror(enum kr_status status);

#define KR_ERROR_MSG_MAX 512

/*
 * Error detail. Embedded by value; no heap. `msg` is always NUL-terminated.
 * Never put key material into msg: it ends up in logs, events and status.
 */
struct kr_error {
	enum kr_status code;
	int http_status;        /* HTTP status when the error came from a server, else 0 */
	char msg[KR_ERROR_MSG_MAX];
};

/* Reset to KR_OK with an empty message. `err` may be NULL. */
void kr_error_clear(struct kr_error *err);

/*
 * The one safe setter: records `code` and a printf-formatted message, truncating
 * silently. `err` may be NULL (the message is dropped). Returns `code` so callers
 * can write `return kr_error_set(err, KR_EINVAL, "...")`.
 */
enum kr_status kr_error_set(struct kr_error *err, enum kr_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prefix the existing message with context ("kubeconfig /x: " + old msg).
 * Keeps err->code and returns it; with err == NULL it returns KR_OK, so callers whose
 * err may be NULL keep their own status: `kr_error_prefix(err, ...); return rc;`.
 */
enum kr_status kr_error_prefix(struct kr_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Programmer mistake: print and abort. Never for anything the world can cause. */
#define KR_BUG(...) kr_bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void kr_bug(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
