/* fuzz_rotation_spec.c - a KeyRotation object (JSON, as the API server sends it), spec decoding. */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "rotation/rotation.h"

/*
 * Input that is not JSON is skipped (the API server only sends JSON; YAML manifests
 * reach the decoder through fuzz_yaml's parser, tested there). A decoded spec has the
 * CRD's required fields and defaults; a refused one a message; release frees both.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *obj = cJSON_ParseWithLength((const char *)data, size);
	struct kr_rotation_spec spec;
	struct kr_error err;

	if (!obj)
		return 0;
	kr_error_clear(&err);
	memset(&spec, 0xa5, sizeof(spec)); /* "need not be initialised" */
	if (kr_rotation_spec_decode(obj, &spec, &err) == KR_OK) {
		KR_FUZZ_ASSERT(spec.secret_name && spec.secret_key && spec.key_prefix);
		/* inline: the store is in the spec; a keyStoreRef: only its name until resolved */
		if (spec.store_ref_kind == KR_STORE_INLINE)
			KR_FUZZ_ASSERT(spec.store_address && spec.store_active_set &&
				       spec.store_meta_key);
		else
			KR_FUZZ_ASSERT(spec.store_ref_name && !spec.store_address);
		KR_FUZZ_ASSERT(spec.n_stages >= 1 && spec.n_stages <= 32 && spec.stages);
		KR_FUZZ_ASSERT(spec.key_bytes >= 16 && spec.key_bytes <= 64);
		kr_rotation_spec_release(&spec);
	} else {
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
	}
	kr_rotation_spec_release(&spec); /* safe on a released struct */
	cJSON_Delete(obj);
	return 0;
}
