/* test_kube_status.c - Status failures from a real API server (goldens) to codes and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/internal.h"

static char *read_golden(const char *name)
{
	char path[1024];
	char *text = NULL;
	long len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", KR_WIRE_DIR, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open golden %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

/* One golden error body per line: the status the client sees and what it must report. */
static const struct {
	const char *file;
	int http;
	enum kr_status code;
	const char *msg; /* exact err->msg */
} golden_cases[] = {
    {"02-secret-create-again-409-alreadyexists.body", 409, KR_EEXIST,
     "AlreadyExists: secrets \"svc-api-key\" already exists"},
    {"03-secret-get-404-notfound.body", 404, KR_ENOTFOUND,
     "NotFound: secrets \"missing\" not found"},
    {"05-secret-update-stale-rv-409-conflict.body", 409, KR_ECONFLICT,
     "Conflict: Operation cannot be fulfilled on secrets \"svc-api-key\": the object has "
     "been modified; please apply your changes to the latest version and try again"},
    {"07-secret-get-no-token-403-anonymous.body", 403, KR_EAUTH,
     "Forbidden: secrets \"svc-api-key\" is forbidden: User \"system:anonymous\" cannot get "
     "resource \"secrets\" in API group \"\" in the namespace \"NAMESPACE\""},
    {"08-secret-get-403-forbidden.body", 403, KR_EAUTH,
     "Forbidden: secrets \"svc-api-key\" is forbidden: User \"lab-user\" cannot get "
     "resource \"secrets\" in API group \"\" in the namespace \"NAMESPACE\""},
    {"17-deployment-json-patch-422-invalid.body", 422, KR_EINVAL,
     "Invalid: Deployment.apps \"api\" is invalid: spec.replicas: Invalid value: -1: must "
     "be greater than or equal to 0"},
    {"19-cr-strategic-patch-415.body", 415, KR_EHTTP,
     "UnsupportedMediaType: the body of the request was in an unknown format - accepted "
     "media types include: application/json-patch+json, application/merge-patch+json, "
     "application/apply-patch+yaml"},
    {"23-cr-create-422-schema.body", 422, KR_EINVAL,
     "Invalid: WireThing.wire.example.com \"w2\" is invalid: spec.size: Invalid value: 0: "
     "spec.size in body should be greater than or equal to 1"},
    {"24-cr-create-422-cel.body", 422, KR_EINVAL,
     "Invalid: WireThing.wire.example.com \"w3\" is invalid: spec: Invalid value: "
     "\"object\": size must be below 100"},
    {"25-cr-create-422-duplicate-list-map-key.body", 422, KR_EINVAL,
     "Invalid: WireThing.wire.example.com \"w4\" is invalid: spec.stages[1]: Duplicate "
     "value: map[string]interface {}{\"name\":\"a\"}"},
    {"26-cr-create-422-missing-required.body", 422, KR_EINVAL,
     "Invalid: WireThing.wire.example.com \"w5\" is invalid: [spec.size: Required value, "
     "<nil>: Invalid value: \"null\": some validation rules were not checked because the "
     "object was invalid; correct the existing errors to complete validation]"},
    {"30-secret-get-bad-token-401.body", 401, KR_EAUTH, "Unauthorized: Unauthorized"},
};

static void test_golden_status_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(golden_cases) / sizeof(golden_cases[0]); i++) {
		char *text = read_golden(golden_cases[i].file);
		cJSON *body = cJSON_Parse(text);
		struct kr_error err;

		assert_non_null(body);
		kr_error_clear(&err);
		assert_int_equal(kr_kube_status_error(golden_cases[i].http, body, &err),
				 golden_cases[i].code);
		assert_int_equal(err.code, golden_cases[i].code);
		assert_int_equal(err.http_status, golden_cases[i].http);
		assert_string_equal(err.msg, golden_cases[i].msg);
		cJSON_Delete(body);
		free(text);
	}
}

/* The in-stream ERROR of a watch (32) has no HTTP status: the Status code decides. */
static void test_in_stream_expired_uses_status_code(void **state)
{
	char *text = read_golden("32-secret-watch-too-old-rv-410-in-stream.body");
	cJSON *event = cJSON_Parse(text);
	struct kr_error err;

	(void)state;
	assert_non_null(event);
	assert_int_equal(kr_kube_status_error(0, cJSON_GetObjectItem(event, "object"), &err),
			 KR_EGONE);
	assert_int_equal(err.http_status, 410);
	assert_string_equal(err.msg, "Expired: too old resource version: 2 (8143)");
	cJSON_Delete(event);
	free(text);
}

/* Bodies that are not a full Status: the mapping still follows the HTTP code. */
static void test_codes_without_status_body(void **state)
{
	static const struct {
		int http;
		const char *json; /* NULL: no body */
		enum kr_status code;
		const char *msg;
	} cases[] = {
	    {400, NULL, KR_EINVAL, "BadRequest: HTTP 400"},
	    {409, "{\"kind\":\"Status\",\"code\":409}", KR_ECONFLICT, "Conflict: HTTP 409"},
	    {409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\"}", KR_EEXIST,
	     "AlreadyExists: HTTP 409"},
	    {410, "{\"kind\":\"Status\",\"reason\":\"Gone\",\"message\":\"gone\"}", KR_EGONE,
	     "Gone: gone"},
	    {413, NULL, KR_ETOOBIG, "RequestEntityTooLarge: HTTP 413"},
	    {429,
	     "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"message\":\"slow down\","
	     "\"details\":{\"retryAfterSeconds\":7},\"code\":429}",
	     KR_EHTTP, "TooManyRequests: slow down (retry after 7s)"},
	    {500, "{\"kind\":\"Status\",\"message\":\"boom\"}", KR_EHTTP, "InternalError: boom"},
	    {503, "{\"kind\":\"Secret\",\"message\":\"not a status\"}", KR_EHTTP,
	     "ServiceUnavailable: HTTP 503"},
	    {418, "[1,2]", KR_EHTTP, "Failure: HTTP 418"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *body = cases[i].json ? cJSON_Parse(cases[i].json) : NULL;
		struct kr_error err;

		assert_int_equal(kr_kube_status_error(cases[i].http, body, &err), cases[i].code);
		assert_int_equal(err.http_status, cases[i].http);
		assert_string_equal(err.msg, cases[i].msg);
		cJSON_Delete(body);
	}
	/* err may be NULL: the code is still returned. */
	assert_int_equal(kr_kube_status_error(404, NULL, NULL), KR_ENOTFOUND);
}

/* A proxy's HTML or text error page: code, reason, and a cleaned, bounded snippet. */
static void test_non_json_error_body(void **state)
{
	static const char html[] = "<html>\r\n<head><title>502 Bad Gateway</title></head>\n"
				   "<body>\t<center>nginx</center></body></html>\n";
	char big[2048];
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_kube_status_error_raw(502, html, strlen(html), &err), KR_EHTTP);
	assert_int_equal(err.http_status, 502);
	assert_string_equal(err.msg, "BadGateway: HTTP 502: <html> <head><title>502 Bad "
				     "Gateway</title></head> <body> <center>nginx</center>"
				     "</body></html>");
	assert_int_equal(kr_kube_status_error_raw(404, "404 page not found\n", 19, &err),
			 KR_ENOTFOUND);
	assert_string_equal(err.msg, "NotFound: HTTP 404: 404 page not found");
	assert_int_equal(kr_kube_status_error_raw(503, NULL, 0, &err), KR_EHTTP);
	assert_string_equal(err.msg, "ServiceUnavailable: HTTP 503 with an empty body");
	/* Control bytes become '?', and a long body is cut with "...". */
	memset(big, 'x', sizeof(big));
	big[0] = '\x01';
	assert_int_equal(kr_kube_status_error_raw(401, big, sizeof(big), &err), KR_EAUTH);
	assert_true(strncmp(err.msg, "Unauthorized: HTTP 401: ?xxx", 28) == 0);
	assert_true(strlen(err.msg) < 220);
	assert_string_equal(err.msg + strlen(err.msg) - 3, "...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden_status_bodies),
	    cmocka_unit_test(test_in_stream_expired_uses_status_code),
	    cmocka_unit_test(test_codes_without_status_body),
	    cmocka_unit_test(test_non_json_error_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
