/* fuzz.h - what every fuzz target shares: the libFuzzer entry point and small input helpers. */
#ifndef KR_FUZZ_H
#define KR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * libFuzzer calls this once per input; tests/fuzz/replay.c calls it once per corpus
 * file in the normal build. Must return 0; a crash, sanitizer report, leak or abort()
 * is the finding.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (a finding) when a property that must hold does not. */
#define KR_FUZZ_ASSERT(cond)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* A NUL-terminated heap copy of the input (the parsers that take C strings); NULL on OOM. */
static inline char *kr_fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		if (size)
			memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
