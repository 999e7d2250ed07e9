/*
 * test_hostile_kube.c - list pages larger than the client's response cap (issue 18): an API
 * server whose objects are so large that a page of `list_page_size` exceeds 64 MiB. The
 * reflector halves its page size and lists again until a page fits, and keeps the smaller
 * size, instead of failing the list forever.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"
#include "kube/kube.h"

#define OBJECTS 4
#define PAD_MIB 17 /* 4 x 17 MiB > 64 MiB; 2 x 17 MiB fits */

/* ---- the API server: lists of huge Deployments, then a watch that stays quiet ---- */

static long query_long(const char *req, const char *key)
{
	const char *p = strstr(req, key);

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void api_server(struct hostile_conn *c)
{
	static char mib[1 << 20];
	char req[4096], head[512], cont[64];
	ssize_t n = recv(c->fd, req, sizeof(req) - 1, 0);
	long limit, from;
	FILE *log;

	if (n <= 0)
		return;
	req[n] = '\0';
	req[strcspn(req, "\r\n")] = '\0'; /* the request line */
	log = fopen(c->arg, "a");
	if (log) {
		fprintf(log, "%s\n", req);
		fclose(log);
	}
	if (strstr(req, "watch=")) {
		hostile_writes(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				  "Connection: close\r\n\r\n");
		hostile_hold(c);
		return;
	}
	limit = query_long(req, "limit=");
	from = query_long(req, "continue=");
	if (limit <= 0)
		limit = OBJECTS;
	if (from < 0)
		from = 0;
	memset(mib, 'x', sizeof(mib));
	if (hostile_writes(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			      "Connection: close\r\n\r\n") != 0)
		return;
	cont[0] = '\0';
	if (from + limit < OBJECTS)
		snprintf(cont, sizeof(cont), ",\"continue\":\"%ld\"", from + limit);
	snprintf(head, sizeof(head),
		 "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{"
		 "\"resourceVersion\":\"100\"%s},\"items\":[",
		 cont);
	if (hostile_writes(c, head) != 0)
		return;
	for (long i = from; i < from + limit && i < OBJECTS; i++) {
		snprintf(head, sizeof(head),
			 "%s{\"metadata\":{\"name\":\"d%ld\",\"namespace\":\"ns\","
			 "\"resourceVersion\":\"%ld\",\"annotations\":{\"pad\":\"",
			 i > from ? "," : "", i, 10 + i);
		if (hostile_writes(c, head) != 0)
			return;
		for (int k = 0; k < PAD_MIB; k++)
			if (hostile_write(c, mib, sizeof(mib)) != 0)
				return;
		if (hostile_writes(c, "\"}}}") != 0)
			return;
	}
	hostile_writes(c, "]}");
}

/* ---- the reflector, on a thread ---- */

struct seen {
	atomic_int added, synced, errors;
};

static void on_event(void *arg, enum kr_kube_event_type type, const cJSON *object)
{
	struct seen *s = arg;

	(void)object;
	if (type == KR_KUBE_ADDED)
		atomic_fetch_add(&s->added, 1);
}

static void on_synced(void *arg, const char *rv)
{
	struct seen *s = arg;

	(void)rv;
	atomic_fetch_add(&s->synced, 1);
}

static void on_error(void *arg, const struct kr_error *err)
{
	struct seen *s = arg;

	print_message("  reflector error: %s\n", err->msg);
	atomic_fetch_add(&s->errors, 1);
}

static void *run(void *arg)
{
	kr_kube_reflector_run(arg);
	return NULL;
}

static void test_list_page_over_the_cap_is_halved(void **state)
{
	hostile_fn fns[1] = {api_server};
	struct kr_kube_watch_opts o = {.res = &kr_kube_deployments, .list_page_size = OBJECTS};
	struct seen seen = {0};
	struct kr_kube_watch_handler h = {on_event, on_synced, on_error, &seen};
	struct hostile_server s;
	struct kr_kube_config cfg;
	struct kr_kube_reflector *r;
	struct kr_error err;
	char kubeconfig[] = "/tmp/kr_hostile_kubeconfig_XXXXXX";
	char log_path[64];
	char *requests;
	pthread_t thread;
	FILE *f;
	int fd;

	(void)state;
	snprintf(log_path, sizeof(log_path), "/tmp/kr_hostile_kube_requests_%d", (int)getpid());
	unlink(log_path);
	hostile_start(&s, fns, 1, log_path);
	fd = mkstemp(kubeconfig);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f,
		"apiVersion: v1\nkind: Config\ncurrent-context: c\n"
		"clusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:%d\n"
		"users:\n- name: u\n  user:\n    token: t\n"
		"contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n",
		s.port);
	fclose(f);
	kr_kube_config_init(&cfg);
	assert_int_equal(kr_kube_config_load(&cfg, kubeconfig, NULL, &err), KR_OK);
	r = kr_kube_reflector_new(&cfg, &o, &h, &err);
	assert_non_null(r);
	assert_int_equal(pthread_create(&thread, NULL, run, r), 0);
	for (int i = 0; i < 300 && !atomic_load(&seen.synced); i++)
		usleep(100000);
	kr_kube_reflector_stop(r);
	pthread_join(thread, NULL);
	kr_kube_reflector_free(r);
	kr_kube_config_release(&cfg);
	hostile_stop(&s);
	unlink(kubeconfig);

	requests = NULL;
	f = fopen(log_path, "r");
	if (f) {
		static char text[8192];
		size_t n = fread(text, 1, sizeof(text) - 1, f);

		text[n] = '\0';
		fclose(f);
		requests = text;
	}
	unlink(log_path);
	assert_non_null(requests);
	print_message("%s", requests);
	assert_int_equal(atomic_load(&seen.synced), 1);
	assert_int_equal(atomic_load(&seen.added), OBJECTS);
	assert_int_equal(atomic_load(&seen.errors), 0); /* the halving is no failure */
	/* limit=4 refused at the cap, then pages of 2: the first, and the one it continues to */
	assert_non_null(strstr(requests, "limit=4"));
	assert_non_null(strstr(requests, "limit=2"));
	assert_non_null(strstr(requests, "continue=2"));
	assert_null(strstr(requests, "limit=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_page_over_the_cap_is_halved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
