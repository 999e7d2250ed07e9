/* fuzz_rfc3339.c - RFC3339 timestamps (spec.rotateNow and status times written by others). */
#include "fuzz.h"
#include "rotation/schedule.h"

/*
 * A timestamp that parses formats (in UTC, whole seconds) when its year is in range,
 * and the formatted text reads back to the same second; the calendar round trip
 * kr_time_to_utc / kr_time_from_utc holds for it.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = kr_fuzz_cstr(data, size);
	char buf[KR_RFC3339_BUFSZ];
	struct kr_error err;
	struct kr_utc u;
	time_t t = 0, again = 0;

	if (!text)
		return 0;
	kr_error_clear(&err);
	if (kr_time_parse_rfc3339(text, &t, &err) != KR_OK) {
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
		free(text);
		return 0;
	}
	kr_time_to_utc(t, &u);
	KR_FUZZ_ASSERT(kr_time_from_utc(&u) == t);
	if (kr_time_format_rfc3339(t, buf, sizeof(buf)) == KR_OK) {
		KR_FUZZ_ASSERT(kr_time_parse_rfc3339(buf, &again, &err) == KR_OK && again == t);
	} else {
		/* only an offset can carry a year-0000/9999 time out of range */
		KR_FUZZ_ASSERT(u.year < 0 || u.year > 9999);
	}
	free(text);
	return 0;
}
