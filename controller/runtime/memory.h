/* memory.h - the allocator's tuning and heap trimming, in one place. */
#ifndef KR_MEMORY_H
#define KR_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * glibc's malloc as a long-running controller wants it (call once, before any thread
 * starts): four arenas, large blocks mapped on their own, no fastbins. The environment's
 * MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ and GLIBC_TUNABLES win. memory.c says why.
 */
void kr_memory_tune(void);

/*
 * Give a burst's freed heap back to the system (malloc_trim), at most once per
 * KR_MEMORY_TRIM_GAP_MS across the process. Thread-safe.
 */
void kr_memory_trim(void);

/*
 * After bursts of work: a worker calls kr_memory_trim_after(t, queue_len, deferred, &defer)
 * after each item. It trims when KR_MEMORY_TRIM_AFTER items ran since the last trim and
 * the queue is empty; when the last trim is too recent it sets *defer_ms (> 0) and the
 * caller asks again then (deferred = true), unless the burst went on meanwhile.
 */
#define KR_MEMORY_TRIM_AFTER  64
#define KR_MEMORY_TRIM_GAP_MS 1000

struct kr_trimmer {
	unsigned since; /* items since the last trim (atomic) */
};

void kr_memory_trim_after(struct kr_trimmer *t, long queue_len, bool deferred, long *defer_ms);

#endif
