/* fuzz_promjson.c - a Prometheus /api/v1/query response body, decoded into one measurement. */
#include <math.h>

#include "analysis/analysis.h"
#include "fuzz.h"

/*
 * The HTTP status comes from the input's length (200 most of the time). A conclusive
 * measurement is a finite number; an inconclusive one carries a failure status and a
 * reason.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long codes[] = {200, 200, 200, 200, 400, 422, 503, 0};
	struct kr_measurement m;
	enum kr_status rc;

	memset(&m, 0, sizeof(m));
	rc = kr_promjson_decode((const char *)data, size, codes[size % 8], &m);
	if (rc == KR_OK) {
		KR_FUZZ_ASSERT(m.ok && isfinite(m.value));
	} else {
		KR_FUZZ_ASSERT(!m.ok && m.reason.code == rc && m.reason.msg[0] != '\0');
	}
	return 0;
}
