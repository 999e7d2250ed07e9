/* status.c - decode Kubernetes Status failures into a kr_status and a readable message. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"
#include "kube/internal.h"

/* How many bytes of a non-Status error body go into the message. */
#define KR_KUBE_BODY_SNIPPET 160

/* Reasons the API server uses for codes when a body does not say (metav1.StatusReason). */
static const struct {
	int code;
	const char *reason;
} kr_kube_reasons[] = {
    {400, "BadRequest"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "NotFound"},
    {405, "MethodNotAllowed"},
    {406, "NotAcceptable"},
    {409, "Conflict"},
    {410, "Gone"},
    {413, "RequestEntityTooLarge"},
    {415, "UnsupportedMediaType"},
    {422, "Invalid"},
    {429, "TooManyRequests"},
    {500, "InternalError"},
    {502, "BadGateway"},
    {503, "ServiceUnavailable"},
    {504, "Timeout"},
};

static const char *kr_kube_http_reason(int code)
{
	for (size_t i = 0; i < sizeof(kr_kube_reasons) / sizeof(kr_kube_reasons[0]); i++)
		if (kr_kube_reasons[i].code == code)
			return kr_kube_reasons[i].reason;
	return "Failure";
}

static enum kr_status kr_kube_map_code(int code, const char *reason)
{
	switch (code) {
	case 400:
	case 422:
		return KR_EINVAL;
	case 401:
	case 403:
		return KR_EAUTH;
	case 404:
		return KR_ENOTFOUND;
	case 409:
		return reason && !strcmp(reason, "AlreadyExists") ? KR_EEXIST : KR_ECONFLICT;
	case 410:
		return KR_EGONE;
	case 413:
		return KR_ETOOBIG;
	default:
		return KR_EHTTP;
	}
}

/* The non-empty string member `key` of obj, or NULL. */
static const char *kr_kube_json_str(const cJSON *obj, const char *key)
{
	const char *v = kr_json_str(obj, (const char *[]){key, NULL});

	return v && v[0] ? v : NULL;
}

/* 1 when `body` looks like a metav1.Status object. */
static int kr_kube_is_status(const cJSON *body)
{
	const char *kind = kr_kube_json_str(body, "kind");

	return cJSON_IsObject(body) && kind && !strcmp(kind, "Status");
}

/* " (retry after 5s)" from details.retryAfterSeconds, as 429 and 503 Status carry. */
static void kr_kube_retry_hint(const cJSON *body, char *out, size_t size)
{
	const cJSON *details = cJSON_GetObjectItemCaseSensitive(body, "details");
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(details, "retryAfterSeconds");

	out[0] = '\0';
	if (cJSON_IsNumber(ra) && ra->valuedouble > 0)
		snprintf(out, size, " (retry after %ds)", ra->valueint);
}

enum kr_status kr_kube_status_error(int http_status, const cJSON *body, struct kr_error *err)
{
	const char *reason = NULL, *message = NULL;
	const cJSON *code_item;
	char hint[48] = "";
	int code = http_status;
	enum kr_status rc;

	if (kr_kube_is_status(body)) {
		reason = kr_kube_json_str(body, "reason");
		message = kr_kube_json_str(body, "message");
		code_item = cJSON_GetObjectItemCaseSensitive(body, "code");
		/* An in-stream ERROR event carries no HTTP status: the Status code is it. */
		if (code <= 0 && cJSON_IsNumber(code_item))
			code = code_item->valueint;
		kr_kube_retry_hint(body, hint, sizeof(hint));
	}
	if (!reason)
		reason = kr_kube_http_reason(code);
	rc = kr_kube_map_code(code, reason);
	if (message)
		kr_error_set(err, rc, "%s: %s%s", reason, message, hint);
	else
		kr_error_set(err, rc, "%s: HTTP %d%s", reason, code, hint);
	if (err)
		err->http_status = code;
	return rc;
}

enum kr_status kr_kube_status_error_raw(int http_status, const char *body, size_t len,
					struct kr_error *err)
{
	char snippet[KR_KUBE_BODY_SNIPPET + 4];
	size_t n = 0;
	enum kr_status rc;

	for (size_t i = 0; body && i < len && n < KR_KUBE_BODY_SNIPPET; i++) {
		unsigned char ch = (unsigned char)body[i];

		if (isspace(ch)) {
			if (n && snippet[n - 1] != ' ')
				snippet[n++] = ' ';
		} else {
			snippet[n++] = isprint(ch) ? (char)ch : '?';
		}
	}
	while (n && snippet[n - 1] == ' ')
		n--;
	if (len > KR_KUBE_BODY_SNIPPET && n == KR_KUBE_BODY_SNIPPET) {
		memcpy(snippet + n, "...", 3);
		n += 3;
	}
	snippet[n] = '\0';
	rc = kr_kube_map_code(http_status, NULL);
	if (n)
		kr_error_set(err, rc, "%s: HTTP %d: %s", kr_kube_http_reason(http_status),
			     http_status, snippet);
	else
		kr_error_set(err, rc, "%s: HTTP %d with an empty body",
			     kr_kube_http_reason(http_status), http_status);
	if (err)
		err->http_status = http_status;
	return rc;
}
