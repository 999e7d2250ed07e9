/* egress.c - the --allowed-endpoints rules: parsing, matching URLs and addresses, curl's hook. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "egress/egress.h"

#define EG_ENTRY_MAX 260 /* a host name is at most 253 characters, plus ":65535" */

/* An address, IPv4-mapped IPv6 already turned into IPv4. */
struct eg_addr {
	int family; /* AF_INET (b[0..3]) or AF_INET6 */
	unsigned char b[16];
};

struct eg_net {
	int family;
	unsigned char b[16];
	unsigned bits;
};

struct eg_host {
	char *name;    /* lower case, no trailing dot, no "*."; an IP in inet_ntop form */
	bool wildcard; /* "*.name": any name below `name` */
	unsigned port; /* 0: any */
};

struct kr_egress {
	struct eg_net *nets;
	size_t nnets;
	struct eg_host *hosts;
	size_t nhosts;
};

/* What a URL names, for the checks and the messages. */
struct eg_url {
	char host[256]; /* as eg_host.name */
	unsigned port;
	bool is_ip;
	struct eg_addr addr; /* when is_ip */
	char hostport[280];  /* "name:port", "[v6]:port" */
};

/* Link-local and cloud metadata blocks, refused unless a CIDR as narrow lists them. */
static const struct eg_net eg_forbidden_v4[] = {
    {AF_INET, {169, 254}, 16},		 /* link-local; AWS, GCP, Azure, OCI metadata */
    {AF_INET, {0}, 8},			 /* "this network": 0.0.0.0 reaches the host */
    {AF_INET, {100, 100, 100, 200}, 32}, /* Alibaba Cloud metadata */
};
static const struct eg_net eg_forbidden_v6[] = {
    {AF_INET6, {0xfe, 0x80}, 10}, /* link-local */
    {AF_INET6, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}, 128},
    {AF_INET6, {0}, 128}, /* ::, like 0.0.0.0 */
};
/* IPv6 prefixes (/96) that carry an IPv4 address in the last four bytes. */
static const unsigned char eg_embeds_v4[][12] = {
    {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}, /* NAT64 64:ff9b::/96 */
    {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0},	      /* IPv4-translated ::ffff:0:0:0/96 */
};
static const unsigned char eg_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- addresses ---------------------------------------------------------------------- */

static void eg_addr_norm(struct eg_addr *a)
{
	if (a->family == AF_INET6 && memcmp(a->b, eg_mapped, 12) == 0) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		a->family = AF_INET;
	}
}

static bool eg_addr_from_sockaddr(const struct sockaddr *sa, struct eg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		a->family = AF_INET;
		memcpy(a->b, &in.sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		a->family = AF_INET6;
		memcpy(a->b, &in6.sin6_addr, 16);
	} else {
		return false;
	}
	eg_addr_norm(a);
	return true;
}

/* An IPv4 or IPv6 literal (no brackets) into *a; false when `s` is neither. */
static bool eg_addr_parse(const char *s, struct eg_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->b) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, s, a->b) == 1)
		a->family = AF_INET6;
	else
		return false;
	eg_addr_norm(a);
	return true;
}

static void eg_addr_text(const struct eg_addr *a, char *out, size_t size)
{
	if (!inet_ntop(a->family, a->b, out, (socklen_t)size))
		snprintf(out, size, "(address)");
}

static bool eg_net_has(const struct eg_net *n, const unsigned char *b, int family)
{
	unsigned full = n->bits / 8, rem = n->bits % 8;
	unsigned char mask;

	if (n->family != family || memcmp(n->b, b, full) != 0)
		return false;
	if (!rem)
		return true;
	mask = (unsigned char)(0xffu << (8 - rem));
	return (n->b[full] & mask) == (b[full] & mask);
}

/* Whether `a` is link-local or metadata; *bits: the prefix length of its block. */
static bool eg_forbidden(const struct eg_addr *a, unsigned *bits)
{
	size_t i;

	if (a->family == AF_INET) {
		for (i = 0; i < sizeof(eg_forbidden_v4) / sizeof(eg_forbidden_v4[0]); i++)
			if (eg_net_has(&eg_forbidden_v4[i], a->b, AF_INET)) {
				*bits = eg_forbidden_v4[i].bits;
				return true;
			}
		return false;
	}
	for (i = 0; i < sizeof(eg_forbidden_v6) / sizeof(eg_forbidden_v6[0]); i++)
		if (eg_net_has(&eg_forbidden_v6[i], a->b, AF_INET6)) {
			*bits = eg_forbidden_v6[i].bits;
			return true;
		}
	for (i = 0; i < sizeof(eg_embeds_v4) / sizeof(eg_embeds_v4[0]); i++) {
		struct eg_addr v4 = {.family = AF_INET};

		if (memcmp(a->b, eg_embeds_v4[i], 12) != 0)
			continue;
		memcpy(v4.b, a->b + 12, 4);
		if (eg_forbidden(&v4, bits)) {
			*bits += 96;
			return true;
		}
	}
	return false;
}

/*
 * The address rule. `host_listed`: the URL's host matched a host pattern. For the message:
 * `host` is the URL's "host:port" ("" without a URL), `named` whether it is a name.
 */
static bool eg_decide(const struct kr_egress *e, const struct eg_addr *a, bool host_listed,
		      const char *host, bool named, struct kr_error *why)
{
	unsigned block = 0;
	bool forbidden = eg_forbidden(a, &block), in_net = false, unlocked = false;
	char text[INET6_ADDRSTRLEN];

	for (size_t i = 0; e && i < e->nnets; i++) {
		if (!eg_net_has(&e->nets[i], a->b, a->family))
			continue;
		in_net = true;
		if (e->nets[i].bits >= block)
			unlocked = true;
	}
	if (forbidden ? unlocked : (!e || host_listed || in_net))
		return true;
	eg_addr_text(a, text, sizeof(text));
	if (forbidden && named)
		kr_error_set(why, KR_EAUTH,
			     "host %s resolves to %s, a link-local or cloud metadata address, "
			     "refused (list it in --allowed-endpoints to allow)",
			     host, text);
	else if (forbidden)
		kr_error_set(why, KR_EAUTH,
			     "%s is a link-local or cloud metadata address, refused (list it in "
			     "--allowed-endpoints to allow)",
			     text);
	else if (named)
		kr_error_set(why, KR_EAUTH, "host %s (%s) is not in --allowed-endpoints", host,
			     text);
	else if (host[0])
		kr_error_set(why, KR_EAUTH, "host %s is not in --allowed-endpoints", host);
	else
		kr_error_set(why, KR_EAUTH, "%s is not in --allowed-endpoints", text);
	return false;
}

bool kr_egress_allows_addr(const struct kr_egress *e, const struct sockaddr *sa)
{
	struct eg_addr a;

	if (!eg_addr_from_sockaddr(sa, &a))
		return false;
	return eg_decide(e, &a, false, "", false, NULL);
}

/* ---- parsing ------------------------------------------------------------------------- */

static enum kr_status eg_add_net(struct kr_egress *e, const struct eg_net *n)
{
	struct eg_net *more = realloc(e->nets, (e->nnets + 1) * sizeof(*more));

	if (!more)
		return KR_ENOMEM;
	e->nets = more;
	e->nets[e->nnets++] = *n;
	return KR_OK;
}

static enum kr_status eg_add_host(struct kr_egress *e, const char *name, bool wildcard,
				  unsigned port)
{
	struct eg_host *more = realloc(e->hosts, (e->nhosts + 1) * sizeof(*more));
	char *copy = strdup(name);

	if (more)
		e->hosts = more;
	if (!more || !copy) {
		free(copy);
		return KR_ENOMEM;
	}
	e->hosts[e->nhosts++] = (struct eg_host){copy, wildcard, port};
	return KR_OK;
}

/* A decimal number within [min, max], digits only. */
static bool eg_number(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* "10.0.0.0/8", "fd00::/8"; a bare address is one address. */
static enum kr_status eg_parse_cidr(struct kr_egress *e, char *s, struct kr_error *err)
{
	char *slash = strchr(s, '/'), text[INET6_ADDRSTRLEN];
	struct eg_addr a;
	struct eg_net n = {0};
	unsigned max, bits;

	if (slash)
		*slash = '\0';
	if (!eg_addr_parse(s, &a))
		return kr_error_set(err, KR_EINVAL, "entry \"%s%s%s\": %s is not an IP address", s,
				    slash ? "/" : "", slash ? slash + 1 : "", s);
	max = a.family == AF_INET ? 32 : 128;
	bits = max;
	if (slash && !eg_number(slash + 1, 0, 128, &bits))
		return kr_error_set(err, KR_EINVAL,
				    "entry \"%s/%s\": the prefix length must be a number 0..%u", s,
				    slash + 1, max);
	/* ::ffff:a.b.c.d/104 and the like are written for IPv4 addresses. */
	if (slash && a.family == AF_INET && strchr(s, ':')) {
		if (bits < 96)
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s/%s\": an IPv4-mapped prefix must be /96 or "
					    "longer",
					    s, slash + 1);
		bits -= 96;
	}
	if (bits > max)
		return kr_error_set(err, KR_EINVAL,
				    "entry \"%s/%s\": the prefix length must be 0..%u for IPv%d", s,
				    slash + 1, max, a.family == AF_INET ? 4 : 6);
	n.family = a.family;
	n.bits = bits;
	memcpy(n.b, a.b, 16);
	for (unsigned i = bits; i < max; i++)
		n.b[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	if (memcmp(n.b, a.b, 16) != 0) {
		struct eg_addr net = {.family = n.family};

		memcpy(net.b, n.b, 16);
		eg_addr_text(&net, text, sizeof(text));
		return kr_error_set(err, KR_EINVAL,
				    "entry \"%s/%s\": the address has bits set after the first %u "
				    "(did you mean %s/%u?)",
				    s, slash + 1, bits, text, bits);
	}
	return eg_add_net(e, &n) == KR_OK ? KR_OK : kr_error_set(err, KR_ENOMEM, "out of memory");
}

/* A DNS name: labels of letters, digits, '-' and '_', 1..63 each, 253 in all. */
static bool eg_dns_name(const char *s)
{
	size_t label = 0, n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Lower case and without a trailing dot, in place. */
static void eg_host_norm(char *s)
{
	size_t n = strlen(s);

	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
}

/* "host", "host:port", "*.domain[:port]", "[v6]:port", "a.b.c.d:port". */
static enum kr_status eg_parse_host(struct kr_egress *e, char *s, struct kr_error *err)
{
	char entry[EG_ENTRY_MAX + 1], *colon, *host = s, text[INET6_ADDRSTRLEN];
	unsigned port = 0;
	bool wildcard = false;
	struct eg_addr a;

	snprintf(entry, sizeof(entry), "%s", s);
	if (s[0] == '[') {
		char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s\": want [IPv6 address]:port", entry);
		*close = '\0';
		host = s + 1;
		colon = close[1] ? close + 1 : NULL;
		if (!eg_addr_parse(host, &a))
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s\": %s is not an IPv6 address", entry, host);
		if (!colon)
			return eg_parse_cidr(e, host, err);
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return kr_error_set(
			    err, KR_EINVAL,
			    "entry \"%s\": not an IP address, a CIDR or host[:port] "
			    "(write an IPv6 address with a port as [address]:port)",
			    entry);
	}
	if (colon) {
		*colon = '\0';
		if (!eg_number(colon + 1, 1, 65535, &port))
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s\": the port must be a number 1..65535",
					    entry);
	}
	if (eg_addr_parse(host, &a)) {
		eg_addr_text(&a, text, sizeof(text));
		host = text;
	} else {
		if (strcmp(host, "*") == 0)
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s\": \"*\" alone is not a pattern (leave "
					    "--allowed-endpoints unset to allow any host)",
					    entry);
		if (strncmp(host, "*.", 2) == 0) {
			wildcard = true;
			host += 2;
		}
		if (strchr(host, '*'))
			return kr_error_set(err, KR_EINVAL,
					    "entry \"%s\": '*' is allowed only as a leading \"*.\"",
					    entry);
		eg_host_norm(host);
		if (!eg_dns_name(host))
			return kr_error_set(
			    err, KR_EINVAL,
			    "entry \"%s\": \"%s\" is not a host name (letters, digits, "
			    "'-', '_' and dots)",
			    entry, host);
	}
	return eg_add_host(e, host, wildcard, port) == KR_OK
		   ? KR_OK
		   : kr_error_set(err, KR_ENOMEM, "out of memory");
}

static enum kr_status eg_parse_entry(struct kr_egress *e, const char *s, size_t n, size_t index,
				     struct kr_error *err)
{
	char entry[EG_ENTRY_MAX + 1];
	struct eg_addr a;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		return kr_error_set(err, KR_EINVAL, "entry %zu is empty", index);
	if (n > EG_ENTRY_MAX)
		return kr_error_set(err, KR_EINVAL,
				    "entry %zu (\"%.40s...\") is longer than %d "
				    "characters",
				    index, s, EG_ENTRY_MAX);
	memcpy(entry, s, n);
	entry[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)entry[i]))
			return kr_error_set(err, KR_EINVAL,
					    "entry %zu: contains a blank or a control character",
					    index);
	if (strstr(entry, "://"))
		return kr_error_set(err, KR_EINVAL,
				    "entry \"%s\": write a CIDR or host[:port], not a URL", entry);
	if (strchr(entry, '/') || eg_addr_parse(entry, &a))
		return eg_parse_cidr(e, entry, err);
	return eg_parse_host(e, entry, err);
}

enum kr_status kr_egress_parse(const char *list, struct kr_egress **out, struct kr_error *err)
{
	struct kr_egress *e = calloc(1, sizeof(*e));
	const char *p = list ? list : "";
	size_t index = 1;
	enum kr_status rc = KR_OK;

	*out = NULL;
	if (!e)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	for (;;) {
		size_t n = strcspn(p, ",");

		rc = eg_parse_entry(e, p, n, index++, err);
		if (rc != KR_OK || !p[n])
			break;
		p += n + 1;
	}
	if (rc != KR_OK) {
		kr_egress_free(e);
		return rc;
	}
	*out = e;
	return KR_OK;
}

void kr_egress_free(struct kr_egress *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nhosts; i++)
		free(e->hosts[i].name);
	free(e->hosts);
	free(e->nets);
	free(e);
}

size_t kr_egress_count(const struct kr_egress *e)
{
	return e ? e->nnets + e->nhosts : 0;
}

/* ---- URLs ---------------------------------------------------------------------------- */

static bool eg_host_listed(const struct kr_egress *e, const struct eg_url *u)
{
	size_t hl = strlen(u->host);

	for (size_t i = 0; e && i < e->nhosts; i++) {
		const struct eg_host *h = &e->hosts[i];
		size_t nl = strlen(h->name);

		if (h->port && h->port != u->port)
			continue;
		if (!h->wildcard && strcmp(h->name, u->host) == 0)
			return true;
		if (h->wildcard && !u->is_ip && hl > nl + 1 && u->host[hl - nl - 1] == '.' &&
		    strcmp(u->host + hl - nl, h->name) == 0)
			return true;
	}
	return false;
}

/* Host, port and whether the host is an address, by libcurl's own URL parser. */
static enum kr_status eg_url_parse(const char *url, struct eg_url *u, struct kr_error *err)
{
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	enum kr_status rc = KR_EINVAL;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!h)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	if (curl_url_set(h, CURLUPART_URL, url ? url : "", 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		kr_error_set(err, KR_EINVAL, "not a valid URL with a host");
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		kr_error_set(err, KR_EINVAL, "only http and https URLs are allowed");
		goto out;
	}
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		memmove(host, host + 1, n - 1);
	}
	if (!eg_number(port, 1, 65535, &u->port) || strlen(host) >= sizeof(u->host) || !host[0]) {
		kr_error_set(err, KR_EINVAL, "not a valid URL with a host");
		goto out;
	}
	snprintf(u->host, sizeof(u->host), "%s", host);
	u->is_ip = eg_addr_parse(u->host, &u->addr);
	if (u->is_ip)
		eg_addr_text(&u->addr, u->host, sizeof(u->host));
	else
		eg_host_norm(u->host);
	snprintf(u->hostport, sizeof(u->hostport), "%s%s%s:%u",
		 u->is_ip && u->addr.family == AF_INET6 ? "[" : "", u->host,
		 u->is_ip && u->addr.family == AF_INET6 ? "]" : "", u->port);
	rc = KR_OK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return rc;
}

/* The host-level check; *listed says whether a host pattern matched. */
static enum kr_status eg_check(const struct kr_egress *e, const struct eg_url *u, bool *listed,
			       struct kr_error *err)
{
	struct kr_error why;

	*listed = eg_host_listed(e, u);
	if (u->is_ip) {
		if (eg_decide(e, &u->addr, *listed, u->hostport, false, &why))
			return KR_OK;
		if (err)
			*err = why;
		return KR_EAUTH;
	}
	if (!e || *listed || e->nnets > 0)
		return KR_OK;
	return kr_error_set(err, KR_EAUTH, "host %s is not in --allowed-endpoints", u->hostport);
}

enum kr_status kr_egress_check_url(const struct kr_egress *e, const char *url, struct kr_error *err)
{
	struct eg_url u;
	bool listed;
	enum kr_status rc = eg_url_parse(url, &u, err);

	return rc == KR_OK ? eg_check(e, &u, &listed, err) : rc;
}

/* libcurl's open-socket hook: every address it is about to connect to passes here first. */
static curl_socket_t eg_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
	struct kr_egress_guard *g = arg;
	struct sockaddr_storage ss;
	struct eg_addr a;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, &address->addr, address->addrlen < sizeof(ss) ? address->addrlen : sizeof(ss));
	if (purpose != CURLSOCKTYPE_IPCXN || !eg_addr_from_sockaddr((struct sockaddr *)&ss, &a)) {
		g->refused = true;
		kr_error_set(&g->why, KR_EAUTH, "host %s: not an IP connection, refused", g->host);
		return CURL_SOCKET_BAD;
	}
	if (!eg_decide(g->egress, &a, g->host_listed, g->host, g->is_name, &g->why)) {
		g->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

enum kr_status kr_egress_curl(const struct kr_egress *e, CURL *h, const char *url,
			      struct kr_egress_guard *g, struct kr_error *err)
{
	struct eg_url u;
	enum kr_status rc;

	memset(g, 0, sizeof(*g));
	g->egress = e;
	rc = eg_url_parse(url, &u, err);
	if (rc == KR_OK)
		rc = eg_check(e, &u, &g->host_listed, err);
	if (rc != KR_OK)
		return rc;
	snprintf(g->host, sizeof(g->host), "%s", u.hostport);
	g->is_name = !u.is_ip;
	if (curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, eg_open_socket) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, g) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK)
		return kr_error_set(err, KR_EINVAL, "this libcurl cannot apply the egress limits");
	return KR_OK;
}

bool kr_egress_refused(const struct kr_error *err)
{
	return err && err->code == KR_EAUTH && err->http_status == 0;
}
