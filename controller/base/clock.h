/* clock.h - the monotonic clock: timers and ages, never the (skewable) wall clock. */
#ifndef KR_CLOCK_H
#define KR_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t kr_mono_ms(void);
/*
 * The CLOCK_MONOTONIC time `ms` from now (negative: now), for pthread_cond_timedwait on a
 * condition variable created with pthread_condattr_setclock(CLOCK_MONOTONIC).
 */
struct timespec kr_mono_deadline(int64_t ms);

#endif
