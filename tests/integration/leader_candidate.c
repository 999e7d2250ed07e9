/* leader_candidate.c - one leader-election candidate process, for test_leader_election. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube/kube.h"
#include "runtime/leader.h"

/*
 * usage: leader_candidate KUBECONFIG IDENTITY OUTFILE LEASE_MS RENEW_MS RETRY_MS
 *
 * Appends to OUTFILE, one line each, with CLOCK_MONOTONIC milliseconds (shared by every
 * process on the machine, so two candidates' lines can be compared):
 *   LEADER <identity> <ms>    on_started_leading
 *   WRITE <identity> <ms>     every 20 ms while kr_leader_is_leader() (a fenced "write")
 *   STOPPED <identity> <ms>   on_stopped_leading
 *   NEW <identity> <holder> <ms>  on_new_leader
 *   EXIT <identity> <status> <ms> when kr_leader_run returns
 * SIGTERM/SIGINT stop the elector (releasing the lease); exit status 0 after a clean
 * stop, 3 after losing leadership, 2 on a usage or setup error.
 */

static int out_fd = -1;
static const char *ident;
static struct kr_leader *leader;
static atomic_int done;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(const char *what, const char *extra)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s %s%s%s %lld\n", what, ident, extra ? " " : "",
			 extra ? extra : "", (long long)now_ms());

	if (n > 0 && write(out_fd, line, (size_t)n) != n)
		_exit(4);
}

static void on_started(void *arg)
{
	(void)arg;
	emit("LEADER", NULL);
}

static void on_stopped(void *arg)
{
	(void)arg;
	emit("STOPPED", NULL);
}

static void on_new(void *arg, const char *holder)
{
	(void)arg;
	emit("NEW", holder[0] ? holder : "-");
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	sigwait(set, &sig);
	kr_leader_stop(leader);
	return NULL;
}

static void *writer_thread(void *arg)
{
	struct timespec tick = {0, 20 * 1000000};

	(void)arg;
	while (!atomic_load(&done)) {
		if (kr_leader_is_leader(leader))
			emit("WRITE", NULL);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct kr_leader_callbacks cb = {on_started, on_stopped, on_new, NULL};
	struct kr_leader_opts o = {.namespace_ = "default", .name = "keyrotator"};
	struct kr_kube_config cfg;
	struct kr_error err;
	pthread_t sig_t, wr_t;
	sigset_t set;
	enum kr_status rc;
	char status[16];

	if (argc != 7) {
		fprintf(stderr,
			"usage: %s KUBECONFIG IDENTITY OUTFILE LEASE_MS RENEW_MS RETRY_MS\n",
			argv[0]);
		return 2;
	}
	ident = o.identity = argv[2];
	o.lease_duration_ms = atol(argv[4]);
	o.renew_deadline_ms = atol(argv[5]);
	o.retry_period_ms = atol(argv[6]);
	out_fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	kr_error_clear(&err);
	kr_kube_config_init(&cfg);
	if (out_fd < 0 || kr_kube_config_load(&cfg, argv[1], NULL, &err) != KR_OK) {
		fprintf(stderr, "leader_candidate: setup failed: %s\n", err.msg);
		return 2;
	}
	cb.arg = NULL;
	leader = kr_leader_new(&cfg, &o, &cb, &err);
	if (!leader) {
		fprintf(stderr, "leader_candidate: %s\n", err.msg);
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_create(&sig_t, NULL, signal_thread, &set);
	pthread_detach(sig_t);
	pthread_create(&wr_t, NULL, writer_thread, NULL);
	rc = kr_leader_run(leader, &err);
	atomic_store(&done, 1);
	pthread_join(wr_t, NULL);
	snprintf(status, sizeof(status), "%d", rc);
	emit("EXIT", status);
	if (rc != KR_OK || err.code != KR_OK)
		fprintf(stderr, "leader_candidate %s: %s\n", ident, err.msg);
	/* The signal thread may still be in sigwait: leave the elector to process exit. */
	kr_kube_config_release(&cfg);
	return rc == KR_OK ? 0 : 3;
}
