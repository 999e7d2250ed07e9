/* memory.c - the allocator's tuning and heap trimming. */
#include "runtime/memory.h"

#include <malloc.h>
#include <stdlib.h>

#include "base/clock.h"

static int64_t kr_memory_trimmed_ms; /* kr_mono_ms() of the last trim (atomic) */

void kr_memory_tune(void)
{
	/*
	 * Four malloc arenas for all threads, not glibc's eight per core: an arena per thread
	 * kept ~7 MiB more resident at 1,000 KeyRotations (tests/bench), and one arena made
	 * the workers and informers queue on its lock (perf: a 10,000-KeyRotation cold start
	 * spent a fifth of its CPU in futex waits and wake-ups under malloc and free; with
	 * four, 14 s of CPU became 10-11 s, for 3.7 MiB more at 10,000 and none at 1,000).
	 * Blocks of 64 KiB and more (list pages, Valkey read buffers, a sweep's probes) are
	 * mapped on their own and unmapped when freed, instead of glibc's moving threshold,
	 * which after the first big free keeps such blocks in the heap.
	 * No fastbins: a parsed list page or response is thousands of small blocks freed at
	 * once, and with fastbins each later larger request consolidated them all again
	 * (perf: a quarter of a 10,000-KeyRotation cold start in malloc_consolidate,
	 * _int_malloc and unlink_chunk); freed blocks now coalesce as they are freed, and
	 * the per-thread tcache still serves the common small sizes.
	 */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 4);
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	if (!getenv("GLIBC_TUNABLES"))
		mallopt(M_MXFAST, 0);
}

/* The wait before a trim is allowed, in ms (0: now). */
static int64_t kr_memory_wait(int64_t now)
{
	int64_t last = __atomic_load_n(&kr_memory_trimmed_ms, __ATOMIC_RELAXED);
	int64_t wait = last ? KR_MEMORY_TRIM_GAP_MS - (now - last) : 0;

	return wait > 0 ? wait : 0;
}

void kr_memory_trim(void)
{
	int64_t now = kr_mono_ms();

	/* A trim walks the whole heap under the allocator's lock: not twice in a gap. */
	if (kr_memory_wait(now) > 0)
		return;
	__atomic_store_n(&kr_memory_trimmed_ms, now, __ATOMIC_RELAXED);
	malloc_trim(0);
}

/*
 * After a burst (a cold start, many rotations at once) the queue drains and the heap is
 * mostly free but resident: give it back, so steady-state RSS is what the caches hold,
 * not the burst's high-water mark. Quiet times trim nothing. During a burst, where the
 * queue empties and refills many times, at most once per gap: trimming after every 64
 * reconciles cost a cold start of 10,000 KeyRotations a tenth of its CPU.
 */
void kr_memory_trim_after(struct kr_trimmer *t, long queue_len, bool deferred, long *defer_ms)
{
	int64_t wait;

	*defer_ms = 0;
	if (!deferred &&
	    __atomic_add_fetch(&t->since, 1, __ATOMIC_RELAXED) < KR_MEMORY_TRIM_AFTER)
		return;
	if (queue_len != 0)
		return;
	wait = kr_memory_wait(kr_mono_ms());
	if (wait > 0) { /* too soon: once the gap is over, unless the burst goes on */
		*defer_ms = (long)wait;
		return;
	}
	if (deferred && __atomic_load_n(&t->since, __ATOMIC_RELAXED) < KR_MEMORY_TRIM_AFTER)
		return;
	__atomic_store_n(&t->since, 0, __ATOMIC_RELAXED);
	kr_memory_trim();
}
