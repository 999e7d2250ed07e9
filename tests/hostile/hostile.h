/* hostile.h - fake servers that misbehave on purpose, and the measures the tests take of us. */
#ifndef KR_HOSTILE_H
#define KR_HOSTILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * One fake server: a listening socket on 127.0.0.1 and a child process that accepts on
 * it. Connection k (0-based) is served by behaviours[k] (the last one for the rest) in a
 * process of its own, so a server that holds or drips one connection still accepts the
 * next. The servers' memory is theirs, never the test process's.
 */
struct hostile_conn {
	int fd;
	const void *arg;
};
typedef void (*hostile_fn)(struct hostile_conn *c);

struct hostile_server {
	int port;
	pid_t pid;
};

/* Start serving; `arg` is passed to every behaviour. Aborts the test on failure. */
void hostile_start(struct hostile_server *s, const hostile_fn *behaviours, size_t n,
		   const void *arg);
/* SIGKILL the server (its connection processes die with it) and reap it. */
void hostile_stop(struct hostile_server *s);

/* Helpers for behaviours. Writes ignore a peer that went away (the test's point). */
void hostile_read_request(struct hostile_conn *c); /* up to "\r\n\r\n" or 2 s */
void hostile_read_some(struct hostile_conn *c);	   /* whatever arrives within 200 ms */
int hostile_write(struct hostile_conn *c, const void *data, size_t len); /* -1: peer gone */
int hostile_writes(struct hostile_conn *c, const char *s);
void hostile_hold(struct hostile_conn *c); /* keep the connection, send nothing, ~60 s */
/* Send `s` one byte every `ms` milliseconds. */
void hostile_drip(struct hostile_conn *c, const char *s, int ms);

/* Milliseconds on the monotonic clock. */
int64_t hostile_now_ms(void);
/* VmHWM (peak RSS) of this process in KiB. */
long hostile_hwm_kib(void);
/*
 * How much the peak RSS may grow while one hostile answer is refused: 16 MiB. Measured
 * growth is under 2 MiB in a release build and under 3 MiB with AddressSanitizer.
 */
long hostile_hwm_budget_kib(void);

#endif
