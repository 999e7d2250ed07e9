/* fuzz_duration.c - Go-style durations (spec.maxKeyAge, stage timeouts, intervals). */
#include "fuzz.h"
#include "rotation/schedule.h"

/*
 * A duration that parses is not negative, and formatting it reads back to the same
 * millisecond count (the round trip status and `keyrotator plan` rely on).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = kr_fuzz_cstr(data, size);
	char buf[KR_DURATION_BUFSZ];
	struct kr_error err;
	int64_t ms = -1, again = -1;

	if (!text)
		return 0;
	kr_error_clear(&err);
	if (kr_duration_parse(text, &ms, &err) != KR_OK) {
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
		free(text);
		return 0;
	}
	KR_FUZZ_ASSERT(ms >= 0);
	KR_FUZZ_ASSERT(kr_duration_format(ms, buf, sizeof(buf)) == KR_OK);
	KR_FUZZ_ASSERT(kr_duration_parse(buf, &again, &err) == KR_OK && again == ms);
	free(text);
	return 0;
}
