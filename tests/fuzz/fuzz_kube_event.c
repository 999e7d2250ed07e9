/* fuzz_kube_event.c - one watch event line: decoding, and an ERROR event's Status as the reflector
 * reads it. */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "kube/kube.h"

/*
 * The input is one line of a watch body. A decoded event owns a JSON object; an ERROR
 * event's object goes through kr_kube_status_error, which must map it to a failure
 * with a message.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum kr_kube_event_type type;
	cJSON *object = NULL;
	struct kr_error err;
	enum kr_status rc;

	kr_error_clear(&err);
	rc = kr_kube_event_decode((const char *)data, size, &type, &object, &err);
	if (rc != KR_OK) {
		KR_FUZZ_ASSERT(object == NULL);
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
		return 0;
	}
	KR_FUZZ_ASSERT(cJSON_IsObject(object));
	if (type == KR_KUBE_ERROR) {
		kr_error_clear(&err);
		rc = kr_kube_status_error(0, object, &err);
		KR_FUZZ_ASSERT(rc != KR_OK && rc < KR_LAST && err.msg[0] != '\0');
	}
	cJSON_Delete(object);
	return 0;
}
