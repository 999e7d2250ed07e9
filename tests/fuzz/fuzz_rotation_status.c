/* fuzz_rotation_status.c - a KeyRotation's .status (JSON, as the API server sends it), decoding. */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "rotation/status_json.h"

/* decode -> encode; fails the target when the encoder refuses what the decoder accepted. */
static cJSON *kr_fuzz_status_round(const cJSON *status, struct kr_status_doc *doc)
{
	struct kr_error err;
	cJSON *enc = NULL;

	kr_error_clear(&err);
	if (kr_status_doc_decode(status, doc, &err) != KR_OK) {
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
		return NULL;
	}
	KR_FUZZ_ASSERT(kr_status_doc_encode(doc, NULL, &enc, &err) == KR_OK && enc);
	return enc;
}

/*
 * The two encodings print the same. (Not kr_status_json_same: stages/plan are carried
 * verbatim, and an object with a duplicate key, which cJSON keeps, is not "the same" as
 * itself there; the API server never sends one.)
 */
static void kr_fuzz_assert_same_text(const cJSON *a, const cJSON *b)
{
	char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);

	if (ta && tb)
		KR_FUZZ_ASSERT(strcmp(ta, tb) == 0);
	cJSON_free(ta);
	cJSON_free(tb);
}

/*
 * Input that is not JSON is skipped (the API server only sends JSON). The input is a
 * whole KeyRotation (its "status" is decoded) or the status object itself. A refused
 * status has a message; an accepted one is also accepted by kr_rotation_status_decode,
 * encodes, and its encoding is a fixed point: decode(encode(d)) encodes to the same JSON.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)data, size), *enc1, *enc2;
	const cJSON *status;
	struct kr_status_doc doc;
	struct kr_rotation_status st;
	struct kr_error err;

	if (!obj)
		return 0;
	status = cJSON_IsObject(obj) && cJSON_HasObjectItem(obj, "status")
		     ? cJSON_GetObjectItemCaseSensitive(obj, "status")
		     : obj;
	memset(&doc, 0xa5, sizeof(doc)); /* "need not be initialised" */
	enc1 = kr_fuzz_status_round(status, &doc);
	kr_status_doc_release(&doc);
	if (enc1) {
		kr_error_clear(&err);
		KR_FUZZ_ASSERT(kr_rotation_status_decode(status, &st, &err) == KR_OK);
		enc2 = kr_fuzz_status_round(enc1, &doc);
		KR_FUZZ_ASSERT(enc2);
		kr_fuzz_assert_same_text(enc1, enc2);
		kr_status_doc_release(&doc);
		cJSON_Delete(enc2);
		cJSON_Delete(enc1);
	}
	kr_status_doc_release(&doc); /* safe on a released doc */
	cJSON_Delete(obj);
	return 0;
}
