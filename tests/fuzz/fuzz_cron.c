/* fuzz_cron.c - 5-field cron expressions (spec.schedule), parsed and then searched forward. */
#include "fuzz.h"
#include "rotation/schedule.h"

/*
 * A parsed expression keeps Sunday as 0 and 7 together, and kr_cron_next gives a whole
 * minute strictly after its start that kr_cron_matches, from a few starts: the epoch,
 * 2026, the last day of year 9999 and one derived from the input.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	time_t starts[] = {0, 1767225600, 253402214400, 0};
	char *expr = kr_fuzz_cstr(data, size);
	struct kr_cron cron;
	struct kr_error err;
	uint64_t h = 1469598103934665603ull;

	if (!expr)
		return 0;
	kr_error_clear(&err);
	if (kr_cron_parse(expr, &cron, &err) != KR_OK) {
		KR_FUZZ_ASSERT(err.msg[0] != '\0');
		free(expr);
		return 0;
	}
	KR_FUZZ_ASSERT(((cron.dow & 1) != 0) == ((cron.dow & 0x80) != 0));
	KR_FUZZ_ASSERT(cron.minute && cron.hour && cron.dom && cron.month && cron.dow);
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211ull;
	starts[3] = (time_t)(h % 253402300799ull);
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		time_t next = 0;

		if (kr_cron_next(&cron, starts[i], &next, &err) != KR_OK)
			continue;
		KR_FUZZ_ASSERT(next > starts[i] && next % 60 == 0);
		KR_FUZZ_ASSERT(kr_cron_matches(&cron, next));
		/* the first such minute: the one before it, if also after the start, does not match
		 */
		KR_FUZZ_ASSERT(next - 60 <= starts[i] || !kr_cron_matches(&cron, next - 60));
	}
	free(expr);
	return 0;
}
