/* clock.h - the monotonic clock: timers and ages, never the (skewable) wall clock. */
#ifndef KR_CLOCK_H
#define KR_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t kr_mono_ms(void);
/*
 * The CLOCK_MONOTONIC time `ms` from now (negative: now), for pthread_cond_timedwait on a
 * condition variable created with pthread_condattr_setclock(CLOCK_MONOTONIC).
 */
struct timespec kr_mono_deadline(int64_t ms);
/* pthread_cond_init of a condition variable whose timed waits take kr_mono_deadline's
 * times (CLOCK_MONOTONIC). 0 or an errno value. */
int kr_mono_cond_init(pthread_cond_t *c);

#endif
