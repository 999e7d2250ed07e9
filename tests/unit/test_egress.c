/*
 * test_egress.c - --allowed-endpoints: parsing, CIDRs, host patterns, link-local and metadata
 * refusals, message sanitising; and, with a listener on 127.0.0.1, that a refused address
 * gets no connection at all (fetch.c and verify.c through kr_egress_curl).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "analysis/analysis.h"
#include "base/secret.h"
#include "egress/egress.h"

/* ---- parsing ------------------------------------------------------------------------- */

struct parse_case {
	const char *list;
	size_t count;	 /* entries when valid */
	const char *msg; /* substring of the error when not (NULL: valid) */
};

static void test_parse_table(void **state)
{
	static const struct parse_case cases[] = {
	    {"10.0.0.0/8", 1, NULL},
	    {"10.0.0.0/8,fd00::/8,127.0.0.1/32", 3, NULL},
	    {" 10.0.0.0/8 , *.monitoring.svc ", 2, NULL},
	    {"prometheus.monitoring.svc.cluster.local:9090", 1, NULL},
	    {"*.monitoring.svc,*.monitoring.svc:9090,Prometheus.Example.", 3, NULL},
	    {"127.0.0.1", 1, NULL},
	    {"fd00::1", 1, NULL},
	    {"[fd00::1]", 1, NULL},
	    {"[fd00::1]:9090,10.1.2.3:9090", 2, NULL},
	    {"0.0.0.0/0,::/0", 2, NULL},
	    {"::ffff:169.254.169.254/128", 1, NULL},
	    {"my_host.svc", 1, NULL},
	    {"", 0, "entry 1 is empty"},
	    {"10.0.0.0/8,", 0, "entry 2 is empty"},
	    {"10.0.0.0/8,,a.b", 0, "entry 2 is empty"},
	    {"10.0.0.0/33", 0, "entry \"10.0.0.0/33\": the prefix length must be 0..32 for IPv4"},
	    {"fd00::/129", 0, "the prefix length must be a number 0..128"},
	    {"10.0.0.0/x", 0, "entry \"10.0.0.0/x\": the prefix length must be a number"},
	    {"10.0.0.0/", 0, "the prefix length must be a number"},
	    {"10.0.0.1/8", 0,
	     "the address has bits set after the first 8 (did you mean 10.0.0.0/8?)"},
	    {"10.0.0.300/8", 0, "entry \"10.0.0.300/8\": 10.0.0.300 is not an IP address"},
	    {"host/8", 0, "host is not an IP address"},
	    {"http://prometheus:9090", 0, "not a URL"},
	    {"*", 0, "\"*\" alone is not a pattern"},
	    {"a.*.b", 0, "'*' is allowed only as a leading \"*.\""},
	    {"*x.b", 0, "'*' is allowed only as a leading \"*.\""},
	    {"a..b", 0, "is not a host name"},
	    {"a!b", 0, "is not a host name"},
	    {"host:0", 0, "the port must be a number 1..65535"},
	    {"host:65536", 0, "the port must be a number 1..65535"},
	    {"host:", 0, "the port must be a number 1..65535"},
	    {"host:1:2", 0, "not an IP address, a CIDR or host[:port]"},
	    {"[fd00::1", 0, "want [IPv6 address]:port"},
	    {"[nothost]:80", 0, "is not an IPv6 address"},
	    {"a b", 0, "entry 1: contains a blank"},
	    {"::ffff:1.2.3.4/64", 0, "an IPv4-mapped prefix must be /96 or longer"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_egress *e = (struct kr_egress *)&e; /* set to NULL on failure */
		struct kr_error err;
		enum kr_status rc;

		kr_error_clear(&err);
		rc = kr_egress_parse(cases[i].list, &e, &err);
		if (!cases[i].msg) {
			if (rc != KR_OK)
				fail_msg("case %zu \"%s\": %s", i, cases[i].list, err.msg);
			assert_int_equal(kr_egress_count(e), cases[i].count);
			kr_egress_free(e);
			continue;
		}
		if (rc != KR_EINVAL)
			fail_msg("case %zu \"%s\": rc %d, want KR_EINVAL", i, cases[i].list, rc);
		assert_null(e);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu \"%s\": \"%s\", want \"%s\"", i, cases[i].list, err.msg,
				 cases[i].msg);
	}
	kr_egress_free(NULL);
	assert_int_equal(kr_egress_count(NULL), 0);
}

/* ---- addresses ----------------------------------------------------------------------- */

struct addr_case {
	const char *list; /* NULL: no list */
	const char *addr;
	bool allowed;
};

static bool allows(const struct kr_egress *e, const char *text)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	if (inet_pton(AF_INET, text, &in.sin_addr) == 1)
		return kr_egress_allows_addr(e, (struct sockaddr *)&in);
	assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
	return kr_egress_allows_addr(e, (struct sockaddr *)&in6);
}

static void test_addresses_table(void **state)
{
	static const struct addr_case cases[] = {
	    /* no list: anything but link-local and metadata */
	    {NULL, "10.1.2.3", true},
	    {NULL, "127.0.0.1", true},
	    {NULL, "::1", true},
	    {NULL, "2001:db8::1", true},
	    {NULL, "169.254.169.254", false},
	    {NULL, "169.254.0.1", false},
	    {NULL, "169.254.170.2", false},
	    {NULL, "100.100.100.200", false},
	    {NULL, "100.100.100.201", true},
	    {NULL, "0.0.0.0", false},
	    {NULL, "0.1.2.3", false},
	    {NULL, "fe80::1", false},
	    {NULL, "febf::1", false},
	    {NULL, "fec0::1", true},
	    {NULL, "fd00:ec2::254", false},
	    {NULL, "fd00:ec2::253", true},
	    {NULL, "::", false},
	    /* IPv4 inside IPv6 */
	    {NULL, "::ffff:169.254.169.254", false},
	    {NULL, "::ffff:100.100.100.200", false},
	    {NULL, "::ffff:0.0.0.0", false},
	    {NULL, "::ffff:10.1.2.3", true},
	    {NULL, "64:ff9b::169.254.169.254", false},
	    {NULL, "::ffff:0:169.254.169.254", false},
	    {NULL, "64:ff9b::10.0.0.1", true},
	    /* CIDR matches, v4 and v6 */
	    {"10.0.0.0/8", "10.255.255.255", true},
	    {"10.0.0.0/8", "11.0.0.0", false},
	    {"10.0.0.0/8", "9.255.255.255", false},
	    {"10.0.0.0/8", "::ffff:10.1.1.1", true},
	    {"10.0.0.0/8", "::1", false},
	    {"192.168.4.0/22", "192.168.7.255", true},
	    {"192.168.4.0/22", "192.168.8.0", false},
	    {"127.0.0.1/32", "127.0.0.1", true},
	    {"127.0.0.1/32", "127.0.0.2", false},
	    {"127.0.0.1", "127.0.0.1", true},
	    {"fd00::/8", "fd12:3456::1", true},
	    {"fd00::/8", "fe00::1", false},
	    {"2001:db8::/33", "2001:db8:7fff::1", true},
	    {"2001:db8::/33", "2001:db8:8000::1", false},
	    {"::ffff:10.0.0.0/104", "10.9.9.9", true},
	    {"*.monitoring.svc", "10.1.2.3", false}, /* no CIDR: only host patterns let through */
	    /* link-local and metadata: only a CIDR as narrow as their block lists them */
	    {"10.0.0.0/8", "169.254.169.254", false},
	    {"0.0.0.0/0", "169.254.169.254", false},
	    {"0.0.0.0/0", "0.0.0.0", false},
	    {"0.0.0.0/0", "8.8.8.8", true},
	    {"::/0", "fe80::1", false},
	    {"::/0", "::ffff:169.254.169.254", false},
	    {"169.254.169.254/32", "169.254.169.254", true},
	    {"169.254.169.254", "169.254.169.254", true},
	    {"169.254.169.254/32", "169.254.169.253", false},
	    {"169.254.0.0/16", "169.254.1.2", true},
	    {"169.254.169.254/32", "::ffff:169.254.169.254", true},
	    {"100.100.100.200/32", "100.100.100.200", true},
	    {"100.100.0.0/16", "100.100.100.200", false},
	    {"fe80::/10", "fe80::1", true},
	    {"fd00:ec2::254/128", "fd00:ec2::254", true},
	    {"fd00::/8", "fd00:ec2::254", false},
	    {"64:ff9b::/96", "64:ff9b::169.254.169.254", false},
	    {"64:ff9b::a9fe:a9fe/128", "64:ff9b::169.254.169.254", true},
	    {"169.254.169.254:80", "169.254.169.254", false}, /* a host pattern: never */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_egress *e = NULL;
		struct kr_error err;

		if (cases[i].list && kr_egress_parse(cases[i].list, &e, &err) != KR_OK)
			fail_msg("case %zu: %s", i, err.msg);
		if (allows(e, cases[i].addr) != cases[i].allowed)
			fail_msg("case %zu: list \"%s\", %s: want %s", i,
				 cases[i].list ? cases[i].list : "(none)", cases[i].addr,
				 cases[i].allowed ? "allowed" : "refused");
		kr_egress_free(e);
	}
	{
		struct sockaddr_un_like {
			sa_family_t family;
			char path[20];
		} un = {AF_UNIX, "/tmp/x"};

		assert_false(kr_egress_allows_addr(NULL, (struct sockaddr *)&un));
		assert_false(kr_egress_allows_addr(NULL, NULL));
	}
}

/* ---- URLs (the check before the request) --------------------------------------------- */

struct url_case {
	const char *list;
	const char *url;
	enum kr_status rc;
	const char *msg; /* substring of the refusal */
};

static void test_urls_table(void **state)
{
	static const struct url_case cases[] = {
	    {NULL, "http://prometheus.monitoring:9090", KR_OK, NULL},
	    {NULL, "https://10.0.0.1/metrics", KR_OK, NULL},
	    {NULL, "http://169.254.169.254/latest/meta-data/", KR_EAUTH,
	     "169.254.169.254 is a link-local or cloud metadata address, refused (list it in "
	     "--allowed-endpoints to allow)"},
	    {NULL, "http://[fd00:ec2::254]/", KR_EAUTH, "fd00:ec2::254 is a link-local"},
	    {NULL, "http://[::ffff:169.254.169.254]/", KR_EAUTH,
	     "169.254.169.254 is a link-local or cloud metadata address"},
	    {NULL, "http://[fe80::1%25eth0]:80/", KR_EAUTH, "fe80::1 is a link-local"},
	    {NULL, "http://0.0.0.0:6379/", KR_EAUTH, "0.0.0.0 is a link-local"},
	    {NULL, "http://100.100.100.200/", KR_EAUTH, "100.100.100.200 is a link-local"},
	    {NULL, "http://user:pw@169.254.169.254/", KR_EAUTH, "169.254.169.254 is"},
	    /* other spellings of it: libcurl's parser, which the check uses, normalises them */
	    {NULL, "http://0xA9FEA9FE/", KR_EAUTH, "169.254.169.254 is a link-local"},
	    {NULL, "http://169.254.43518/", KR_EAUTH, "169.254.169.254 is a link-local"},
	    {NULL, "http://0251.0376.0251.0376/", KR_EAUTH, "169.254.169.254 is a link-local"},
	    {NULL, "http://2852039166/", KR_EAUTH, "169.254.169.254 is a link-local"},
	    {"127.0.0.1/32,169.0.0.0/8", "http://169.254.169.254/", KR_EAUTH,
	     "169.254.169.254 is a link-local"},
	    {"127.0.0.1/32,169.0.0.0/8", "http://127.0.0.2:8080/", KR_EAUTH,
	     "host 127.0.0.2:8080 is not in --allowed-endpoints"},
	    {NULL, "ftp://prometheus/", KR_EINVAL, "only http and https URLs are allowed"},
	    {NULL, "file:///etc/passwd", KR_EINVAL, ""},
	    {NULL, "not a url", KR_EINVAL, "not a valid URL with a host"},
	    {NULL, "", KR_EINVAL, "not a valid URL"},
	    /* host patterns */
	    {"prometheus.monitoring.svc.cluster.local:9090",
	     "http://prometheus.monitoring.svc.cluster.local:9090/", KR_OK, NULL},
	    {"prometheus.monitoring.svc.cluster.local:9090",
	     "http://PROMETHEUS.monitoring.svc.cluster.local.:9090/", KR_OK, NULL},
	    {"prometheus.monitoring.svc.cluster.local:9090",
	     "http://prometheus.monitoring.svc.cluster.local:9091/", KR_EAUTH,
	     "host prometheus.monitoring.svc.cluster.local:9091 is not in --allowed-endpoints"},
	    {"prometheus.monitoring.svc.cluster.local:9090",
	     "http://prometheus.monitoring.svc.cluster.local/", KR_EAUTH, ":80 is not in"},
	    {"prometheus.example", "https://prometheus.example/", KR_OK, NULL},
	    {"prometheus.example", "http://prometheus.example:9090/", KR_OK, NULL},
	    {"prometheus.example:443", "https://prometheus.example/", KR_OK, NULL},
	    {"prometheus.example:443", "http://prometheus.example/", KR_EAUTH, "is not in"},
	    {"*.monitoring.svc", "http://prometheus.monitoring.svc:9090/", KR_OK, NULL},
	    {"*.monitoring.svc", "http://a.b.monitoring.svc/", KR_OK, NULL},
	    {"*.monitoring.svc", "http://monitoring.svc/", KR_EAUTH, "host monitoring.svc:80"},
	    {"*.monitoring.svc", "http://xmonitoring.svc/", KR_EAUTH, "is not in"},
	    {"*.monitoring.svc", "http://prometheus.monitoring.svc.evil.com/", KR_EAUTH,
	     "is not in"},
	    {"*.monitoring.svc:9090", "http://prometheus.monitoring.svc:9091/", KR_EAUTH,
	     "is not in"},
	    {"*.monitoring.svc", "http://evil.example.com:6379/", KR_EAUTH,
	     "host evil.example.com:6379 is not in --allowed-endpoints"},
	    {"10.1.2.3:9090", "http://10.1.2.3:9090/", KR_OK, NULL},
	    {"10.1.2.3:9090", "http://10.1.2.3:9091/", KR_EAUTH, "host 10.1.2.3:9091 is not in"},
	    {"[fd00::1]:9090", "http://[fd00:0::1]:9090/", KR_OK, NULL},
	    /* with a CIDR the address decides at connect time; literals at once */
	    {"10.0.0.0/8", "http://anything.example/", KR_OK, NULL},
	    {"10.0.0.0/8", "http://10.9.8.7:1234/", KR_OK, NULL},
	    {"10.0.0.0/8", "http://11.0.0.1/", KR_EAUTH,
	     "host 11.0.0.1:80 is not in --allowed-endpoints"},
	    {"10.0.0.0/8", "http://169.254.169.254/", KR_EAUTH, "link-local or cloud metadata"},
	    {"169.254.169.254/32", "http://169.254.169.254/", KR_OK, NULL},
	    /* a host pattern never unlocks a metadata address */
	    {"169.254.169.254:80", "http://169.254.169.254/", KR_EAUTH, "link-local or cloud"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_egress *e = NULL;
		struct kr_error err;
		enum kr_status rc;

		if (cases[i].list && kr_egress_parse(cases[i].list, &e, &err) != KR_OK)
			fail_msg("case %zu: %s", i, err.msg);
		kr_error_clear(&err);
		rc = kr_egress_check_url(e, cases[i].url, &err);
		if (rc != cases[i].rc)
			fail_msg("case %zu %s: rc %d, want %d (%s)", i, cases[i].url, rc,
				 cases[i].rc, err.msg);
		if (cases[i].msg && !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu %s: \"%s\", want \"%s\"", i, cases[i].url, err.msg,
				 cases[i].msg);
		assert_null(strstr(err.msg, "pw@"));
		assert_true(kr_egress_refused(&err) == (rc == KR_EAUTH));
		kr_egress_free(e);
	}
}

/* ---- text ------------------------------------------------------------------------------ */

static void test_sanitize_table(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain text: HTTP 502", "plain text: HTTP 502"},
	    {"a\nb\rc\td", "a?b?c?d"},
	    {"bell\a del\x7f nul-free", "bell? del? nul-free"},
	    {"red \x1b[31mALERT\x1b[0m done", "red ?ALERT? done"},
	    {"title \x1b]0;pwned\x07 after", "title ? after"},
	    {"osc \x1b]8;;http://x\x1b\\link", "osc ?link"},
	    {"two \033c reset", "two ? reset"},
	    {"esc at end \x1b", "esc at end ?"},
	    {"csi cut \x1b[12", "csi cut ?"},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
	     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91"},
	    {"c1 \302\23331m", "c1 ?31m"},
	    {"bad \xff\xfe utf8 \xc3", "bad ?? utf8 ?"},
	    {"overlong \xc0\xaf", "overlong ??"},
	    {"surrogate \xed\xa0\x80", "surrogate ???"},
	    {"bidi \342\200\256txt \342\201\246", "bidi ?txt ?"},
	    {"line\xe2\x80\xa8sep", "line?sep"},
	    {"", ""},
	};
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		kr_text_sanitize(buf);
		if (strcmp(buf, cases[i].out) != 0)
			fail_msg("case %zu: \"%s\", want \"%s\"", i, buf, cases[i].out);
	}
	kr_text_sanitize(NULL);
}

static void test_token(void **state)
{
	(void)state;
	assert_string_equal(kr_text_token("bad_data"), "bad_data");
	assert_string_equal(kr_text_token("timeout"), "timeout");
	assert_non_null(kr_text_token("abcdefghijklmnopqrstuvwxyz_abcde")); /* 32 */
	assert_null(kr_text_token("abcdefghijklmnopqrstuvwxyz_abcdef"));    /* 33 */
	assert_null(kr_text_token(""));
	assert_null(kr_text_token(NULL));
	assert_null(kr_text_token("Bad_data"));
	assert_null(kr_text_token("bad data"));
	assert_null(kr_text_token("bad-data"));
	assert_null(kr_text_token("secret=hunter2"));
}

/* ---- a listener on 127.0.0.1 ------------------------------------------------------------ */

struct listener {
	int fd, port;
	pthread_t thread;
	atomic_int conns;
	atomic_int stop;
	const char *response;
	char request[2048]; /* the last request's head */
};

/*
 * One listener at a time, in static storage: a failed assertion leaves the test function
 * early, and the thread must not be left reading a dead stack frame.
 */
static struct listener lsn;

static void *listener_run(void *arg)
{
	struct listener *l = arg;

	while (!atomic_load(&l->stop)) {
		struct pollfd p = {l->fd, POLLIN, 0};
		size_t n = 0;
		int c;

		if (poll(&p, 1, 20) <= 0)
			continue;
		c = accept(l->fd, NULL, NULL);
		if (c < 0)
			continue;
		atomic_fetch_add(&l->conns, 1);
		while (n + 1 < sizeof(l->request)) {
			ssize_t r = read(c, l->request + n, sizeof(l->request) - 1 - n);

			if (r <= 0)
				break;
			n += (size_t)r;
			l->request[n] = '\0';
			if (strstr(l->request, "\r\n\r\n"))
				break;
		}
		if (write(c, l->response, strlen(l->response)) < 0)
			n = 0;
		close(c);
	}
	return NULL;
}

static void listener_start(struct listener *l, const char *response)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(l, 0, sizeof(*l));
	l->response = response;
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l->fd, 8), 0);
	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &len), 0);
	l->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&l->thread, NULL, listener_run, l), 0);
}

/* Stop the listener; returns the connections it accepted (after a last look for stragglers). */
static int listener_stop(struct listener *l)
{
	usleep(100 * 1000);
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	close(l->fd);
	return atomic_load(&l->conns);
}

#define METRICS_200                                                                                \
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 34\r\n"     \
	"Connection: close\r\n\r\nhttp_requests_total{code=\"401\"} 3\n"

static struct kr_egress *egress(const char *list)
{
	struct kr_egress *e = NULL;
	struct kr_error err;

	if (kr_egress_parse(list, &e, &err) != KR_OK)
		fail_msg("%s: %s", list, err.msg);
	return e;
}

static enum kr_status scrape(const char *host, int port, const struct kr_egress *e,
			     struct kr_error *err)
{
	struct kr_analysis_http_opts o = {.timeout_ms = 3000, .egress = e};
	struct kr_counter_snapshot snap;
	char url[128];
	enum kr_status rc;

	snprintf(url, sizeof(url), "http://%s:%d/metrics", host, port);
	kr_counter_snapshot_init(&snap);
	kr_error_clear(err);
	rc = kr_analysis_scrape(url, &o, "http_requests_total", NULL, 0, &snap, err);
	if (rc == KR_OK)
		assert_true(snap.sum == 3);
	kr_counter_snapshot_release(&snap);
	return rc;
}

/*
 * "localhost" matches no host pattern, so with "10.0.0.0/8" its address decides when the
 * socket would open: 127.0.0.1 (or ::1) is outside, and no connection is made.
 */
static void test_fetch_refused_at_connect_time(void **state)
{
	struct kr_egress *ten = egress("10.0.0.0/8"), *lo = egress("127.0.0.1/32");
	struct kr_error err;

	(void)state;
	listener_start(&lsn, METRICS_200);
	assert_int_equal(scrape("localhost", lsn.port, ten, &err), KR_EAUTH);
	assert_true(kr_egress_refused(&err));
	assert_non_null(strstr(err.msg, "scrape http://localhost:"));
	assert_non_null(strstr(err.msg, "is not in --allowed-endpoints"));
	assert_true(strstr(err.msg, "(127.0.0.1)") || strstr(err.msg, "(::1)"));
	/* an address literal is refused before the request */
	assert_int_equal(scrape("127.0.0.1", lsn.port, ten, &err), KR_EAUTH);
	assert_non_null(strstr(err.msg, "host 127.0.0.1:"));
	assert_int_equal(listener_stop(&lsn), 0);

	listener_start(&lsn, METRICS_200);
	if (scrape("localhost", lsn.port, lo, &err) != KR_OK)
		fail_msg("localhost: %s", err.msg);
	assert_int_equal(scrape("127.0.0.1", lsn.port, lo, &err), KR_OK);
	assert_int_equal(scrape("127.0.0.1", lsn.port, NULL, &err), KR_OK); /* no list */
	assert_int_equal(listener_stop(&lsn), 3);
	kr_egress_free(ten);
	kr_egress_free(lo);
}

/*
 * The address is checked for every connection curl makes, whatever a host pattern said:
 * a listed name that resolves to a metadata address (DNS rebinding) is still refused.
 * CURLOPT_RESOLVE plays the resolver.
 */
static void test_resolved_address_is_what_counts(void **state)
{
	struct kr_egress *named = egress("metadata.test,rebind.test");
	struct {
		const struct kr_egress *e;
		const char *resolve, *url;
		const char *msg;
	} cases[] = {
	    {named, "metadata.test:80:169.254.169.254", "http://metadata.test/",
	     "host metadata.test:80 resolves to 169.254.169.254, a link-local or cloud metadata "
	     "address, refused (list it in --allowed-endpoints to allow)"},
	    {NULL, "metadata.test:80:169.254.169.254", "http://metadata.test/", "resolves to"},
	    {named, "rebind.test:80:0.0.0.0", "http://rebind.test/", "resolves to 0.0.0.0"},
	    {NULL, "v6.test:80:[::ffff:169.254.169.254]", "http://v6.test/",
	     "resolves to 169.254.169.254"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct curl_slist *resolve = curl_slist_append(NULL, cases[i].resolve);
		struct kr_egress_guard g;
		struct kr_error err;
		CURL *h = curl_easy_init();
		CURLcode code;

		kr_error_clear(&err);
		assert_int_equal(kr_egress_curl(cases[i].e, h, cases[i].url, &g, &err), KR_OK);
		curl_easy_setopt(h, CURLOPT_URL, cases[i].url);
		curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
		code = curl_easy_perform(h);
		assert_int_not_equal(code, CURLE_OK);
		assert_true(g.refused);
		if (!strstr(g.why.msg, cases[i].msg))
			fail_msg("case %zu: \"%s\", want \"%s\"", i, g.why.msg, cases[i].msg);
		assert_true(kr_egress_refused(&g.why));
		curl_easy_cleanup(h);
		curl_slist_free_all(resolve);
	}
	kr_egress_free(named);
}

/* spec.verify: the key is never sent to a refused address; redirects are not followed. */
static void test_verify_refused_before_the_key_leaves(void **state)
{
	struct kr_egress *ten = egress("10.0.0.0/8");
	struct kr_secret *key = kr_secret_new("sk_live_not_for_you", 19);
	struct kr_analysis_http_opts o = {.timeout_ms = 3000, .egress = ten};
	struct kr_error err;
	long status = -1;
	char url[128];

	(void)state;
	listener_start(&lsn, "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	snprintf(url, sizeof(url), "http://localhost:%d/ping", lsn.port);
	kr_error_clear(&err);
	assert_int_equal(kr_analysis_verify_key(url, "X-API-Key", key, &o, &status, &err),
			 KR_EAUTH);
	assert_true(kr_egress_refused(&err));
	assert_non_null(strstr(err.msg, "verify http://localhost:"));
	assert_int_equal(status, 0);
	assert_int_equal(listener_stop(&lsn), 0);

	/* allowed: the redirect is a status, not a second request */
	listener_start(&lsn, "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ping", lsn.port);
	o.egress = NULL;
	assert_int_equal(kr_analysis_verify_key(url, "X-API-Key", key, &o, &status, &err), KR_OK);
	assert_int_equal(status, 302);
	assert_int_equal(listener_stop(&lsn), 1);
	assert_non_null(strstr(lsn.request, "X-API-Key: sk_live_not_for_you"));
	kr_secret_free(key);
	kr_egress_free(ten);
}

/* An HTTP/1.1 response with `body` and a Content-Length that fits it. */
static const char *response(char *buf, size_t size, const char *status, const char *body)
{
	snprintf(buf, size,
		 "HTTP/1.1 %s\r\nServer: SecretBanner/1.0 hunter2hunter2\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 status, strlen(body), body);
	return buf;
}

static bool leaks(const char *msg)
{
	return strstr(msg, "hunter2") || strstr(msg, "SecretBanner") || strchr(msg, '\x1b');
}

/* What a server sends never reaches a message: bodies, Prometheus error texts, banners. */
static void test_messages_carry_no_server_text(void **state)
{
	static const struct {
		const char *status, *body, *want;
	} scrapes[] = {
	    {"500 Internal Server Error", "AWS_SECRET_ACCESS_KEY=hunter2hunter2\n", "HTTP 500"},
	    {"404 Not Found", "<html>SecretBanner</html>", "HTTP 404"},
	    {"200 OK", "token hunter2hunter2\x1b[31m\n", "line 1: invalid value (not a number)"},
	    {"200 OK", "http_requests_total{hunter2hunter2=b} 1\n",
	     "line 1: label 1: value must be a quoted string"},
	    {"200 OK", "# TYPE http_requests_total hunter2hunter2\n",
	     "line 1: unknown metric type"},
	    {"200 OK", "http_requests_total{code=\"hunter2hunter2\"} -3\n",
	     "http_requests_total: a matching series is negative"},
	    {"301 Moved Permanently\r\nLocation: http://hunter2hunter2.example/", "",
	     "HTTP 301: a redirect, which is not followed"},
	};
	static const struct {
		const char *status, *body, *want;
	} queries[] = {
	    {"400 Bad Request",
	     "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error near "
	     "hunter2hunter2 \\u001b[2J\"}",
	     "query failed (HTTP 400): bad_data: the query or its parameters are not valid"},
	    {"422 Unprocessable Entity",
	     "{\"status\":\"error\",\"errorType\":\"hunter2hunter2 Bad\",\"error\":\"x\"}",
	     "query failed (HTTP 422): Prometheus reported an error"},
	    {"502 Bad Gateway", "<html>SecretBanner hunter2hunter2</html>",
	     "HTTP 502, and the response is not a Prometheus answer"},
	    {"200 OK", "password=hunter2hunter2", "response is not JSON"},
	    {"200 OK",
	     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
	     "{\"metric\":{\"a\":\"hunter2hunter2\"},\"value\":[1,\"1\"]},"
	     "{\"metric\":{\"a\":\"x\"},\"value\":[1,\"hunter2hunter2\"]}]}}",
	     "query returned 2 series, want 1: aggregate with sum()"},
	    {"200 OK",
	     "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
	     "{\"metric\":{},\"value\":[1,\"hunter2hunter2\"]}]}}",
	     "malformed sample value: not a number"},
	};
	char buf[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(scrapes) / sizeof(scrapes[0]); i++) {
		struct kr_error err;

		listener_start(&lsn,
			       response(buf, sizeof(buf), scrapes[i].status, scrapes[i].body));
		assert_int_not_equal(scrape("127.0.0.1", lsn.port, NULL, &err), KR_OK);
		listener_stop(&lsn);
		if (!strstr(err.msg, scrapes[i].want) || leaks(err.msg))
			fail_msg("scrape %zu: \"%s\", want \"%s\"", i, err.msg, scrapes[i].want);
	}
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct kr_analysis_http_opts o = {.timeout_ms = 3000};
		struct kr_measurement m;
		struct kr_error err;
		char url[64];

		listener_start(&lsn,
			       response(buf, sizeof(buf), queries[i].status, queries[i].body));
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", lsn.port);
		assert_int_not_equal(kr_analysis_query_prometheus(url, "up", &o, &m, &err), KR_OK);
		listener_stop(&lsn);
		if (!strstr(m.reason.msg, queries[i].want) || leaks(m.reason.msg) || leaks(err.msg))
			fail_msg("query %zu: \"%s\", want \"%s\"", i, m.reason.msg,
				 queries[i].want);
	}
	{ /* not HTTP at all: a banner */
		struct kr_error err;

		listener_start(&lsn, "SSH-2.0-SecretBanner hunter2hunter2\r\n");
		assert_int_not_equal(scrape("127.0.0.1", lsn.port, NULL, &err), KR_OK);
		listener_stop(&lsn);
		if (leaks(err.msg))
			fail_msg("banner: \"%s\"", err.msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_addresses_table),
	    cmocka_unit_test(test_urls_table),
	    cmocka_unit_test(test_sanitize_table),
	    cmocka_unit_test(test_token),
	    cmocka_unit_test(test_fetch_refused_at_connect_time),
	    cmocka_unit_test(test_resolved_address_is_what_counts),
	    cmocka_unit_test(test_verify_refused_before_the_key_leaves),
	    cmocka_unit_test(test_messages_carry_no_server_text),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
