/* hostile.c - fake servers for the hostile tests (hostile.h). */
#include "hostile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t hostile_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long hostile_hwm_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long hostile_hwm_budget_kib(void)
{
	return 16 * 1024;
}

int hostile_write(struct hostile_conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int hostile_writes(struct hostile_conn *c, const char *s)
{
	return hostile_write(c, s, strlen(s));
}

static int hostile_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) > 0;
}

void hostile_read_request(struct hostile_conn *c)
{
	char buf[4096];
	size_t have = 0;
	int64_t end = hostile_now_ms() + 2000;

	while (hostile_now_ms() < end && hostile_readable(c->fd, 100)) {
		ssize_t n = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);

		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n") || have >= sizeof(buf) - 1)
			return;
	}
}

void hostile_read_some(struct hostile_conn *c)
{
	char buf[4096];

	if (hostile_readable(c->fd, 2000))
		(void)!recv(c->fd, buf, sizeof(buf), 0);
	while (hostile_readable(c->fd, 200))
		if (recv(c->fd, buf, sizeof(buf), 0) <= 0)
			return;
}

void hostile_hold(struct hostile_conn *c)
{
	(void)c;
	sleep(60);
}

void hostile_drip(struct hostile_conn *c, const char *s, int ms)
{
	for (; *s; s++) {
		if (hostile_write(c, s, 1) != 0)
			return;
		usleep((useconds_t)ms * 1000);
	}
}

static void hostile_serve(int lfd, const hostile_fn *behaviours, size_t n, const void *arg)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN); /* connection processes reap themselves */
	for (size_t k = 0;; k++) {
		int fd = accept(lfd, NULL, NULL);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		pid = fork();
		if (pid == 0) {
			struct hostile_conn c = {fd, arg};

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(lfd);
			behaviours[k < n ? k : n - 1](&c);
			shutdown(fd, SHUT_WR);
			close(fd);
			_exit(0);
		}
		close(fd);
	}
}

void hostile_start(struct hostile_server *s, const hostile_fn *behaviours, size_t n,
		   const void *arg)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
		perror("hostile_start");
		abort();
	}
	s->port = ntohs(a.sin_port);
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		abort();
	}
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		hostile_serve(lfd, behaviours, n, arg);
		_exit(0);
	}
	close(lfd);
}

void hostile_stop(struct hostile_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	s->pid = 0;
}
