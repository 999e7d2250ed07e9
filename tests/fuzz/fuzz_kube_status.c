/* fuzz_kube_status.c - an API server error response body, as the REST client decodes it. */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "kube/internal.h"

/*
 * The input is a response body; the HTTP status comes from its length (so one corpus
 * file is tried under different codes as the fuzzer grows or shrinks it). A body that
 * parses as JSON goes through kr_kube_status_error, anything else through the raw
 * variant, as the client does. Either way: a failure status and a message.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int codes[] = {0,	 400, 401, 403, 404, 405, 409, 410, 413,
				    415, 422, 429, 500, 503, 504, 302, -1};
	int http_status = codes[size % (sizeof(codes) / sizeof(codes[0]))];
	cJSON *body = cJSON_ParseWithLength((const char *)data, size);
	struct kr_error err;
	enum kr_status rc;

	kr_error_clear(&err);
	if (body)
		rc = kr_kube_status_error(http_status, body, &err);
	else
		rc = kr_kube_status_error_raw(http_status, (const char *)data, size, &err);
	KR_FUZZ_ASSERT(rc != KR_OK && rc < KR_LAST);
	KR_FUZZ_ASSERT(err.code == rc && err.msg[0] != '\0');
	cJSON_Delete(body);
	return 0;
}
