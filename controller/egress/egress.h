/* egress.h - where analysis, scrape and verify requests may go (`run --allowed-endpoints`). */
#ifndef KR_EGRESS_H
#define KR_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/error.h"
#include "base/text.h" /* kr_text_sanitize, kr_text_token */

/*
 * A KeyRotation's author chooses the URLs the controller fetches (spec.analysis,
 * spec.verify). So that this is no way around RBAC or the network policy of the
 * author's own pods, the controller's operator limits them:
 *
 *   --allowed-endpoints "10.0.0.0/8,fd00::/8,*.monitoring.svc,prom.example:9090"
 *
 * Each entry is a CIDR (a bare address is a /32 or /128) or a host[:port] pattern: an
 * exact host, or "*." and a domain for any name below it; without a port, any port.
 * A URL is allowed when
 *   - no list is given, or its host[:port] as written matches a host pattern, or the
 *     address it connects to is inside a listed CIDR;
 *   - and that address is not link-local or a cloud metadata address (169.254.0.0/16,
 *     fe80::/10, fd00:ec2::254, 100.100.100.200, 0.0.0.0/8, ::, and the same inside
 *     IPv4-mapped or NAT64 IPv6), unless a listed CIDR contains it. A host pattern never
 *     makes such an address acceptable.
 * The address is checked when the socket is opened (kr_egress_curl), for every address
 * curl tries, so a name that resolves to something else later (DNS rebinding) is still
 * refused; the host check comes before the request.
 *
 * Refusals are KR_EAUTH with http_status 0 (a server's own 401/403 carries its status);
 * kr_egress_refused tells them apart. Messages name the host or address and what to
 * list, never anything a server sent.
 *
 * A struct kr_egress is immutable once parsed: share it between threads freely.
 * A NULL struct kr_egress * everywhere means "no list".
 */
struct kr_egress;

/*
 * Parse `list` (comma-separated entries, blanks around entries ignored) into *out.
 * KR_EINVAL with a message naming the entry and what is wrong:
 *   entry "10.0.0.0/33": prefix length must be 0..32 for IPv4
 * KR_ENOMEM. Caller frees *out with kr_egress_free.
 */
enum kr_status kr_egress_parse(const char *list, struct kr_egress **out, struct kr_error *err);
/* NULL-safe. */
void kr_egress_free(struct kr_egress *e);
/* Entries parsed: CIDRs and host patterns. 0 for NULL. */
size_t kr_egress_count(const struct kr_egress *e);

/*
 * The check before a request: KR_OK when `url` (http or https) may be fetched as far as
 * its host[:port] tells: it matches a host pattern, or the list has CIDRs (the address
 * decides at connect time), or there is no list. A host written as an IP address is
 * checked fully here. KR_EAUTH (refused) or KR_EINVAL (not an http(s) URL with a host)
 * with the reason in `err`, without the URL's credentials, e.g.
 *   host evil.example.com:6379 is not in --allowed-endpoints
 *   169.254.169.254 is a link-local or cloud metadata address, refused (list it in
 *   --allowed-endpoints to allow)
 */
enum kr_status kr_egress_check_url(const struct kr_egress *e, const char *url,
				   struct kr_error *err);

/*
 * The address-level rule alone, as for a URL whose host matches no host pattern: true
 * when `sa` (AF_INET or AF_INET6; anything else is refused) may be connected to.
 */
bool kr_egress_allows_addr(const struct kr_egress *e, const struct sockaddr *sa);

/*
 * What one transfer needs for the connect-time check. Embedded by value; filled by
 * kr_egress_curl and read by its socket callback; must outlive the transfer.
 */
struct kr_egress_guard {
	const struct kr_egress *egress; /* borrowed */
	bool host_listed;		/* the URL's host[:port] matched a host pattern */
	bool is_name;			/* the URL names a host, not an address */
	char host[280];			/* "name:port" for messages */
	bool refused;			/* a connection was refused */
	struct kr_error why;		/* the latest refusal (KR_EAUTH) */
};

/*
 * Check `url` (kr_egress_check_url) and arm `h` for it: an open-socket callback that
 * refuses any address the rules do not allow (CURL_SOCKET_BAD, the reason kept in `g`),
 * no redirects, and no proxy (through a proxy the address checked would be the proxy's).
 * Set the same `url` as CURLOPT_URL. Errors as kr_egress_check_url, and KR_EINVAL when
 * libcurl refuses an option.
 */
enum kr_status kr_egress_curl(const struct kr_egress *e, CURL *h, const char *url,
			      struct kr_egress_guard *g, struct kr_error *err);

/* true when `err` is a refusal by these rules (see above). */
bool kr_egress_refused(const struct kr_error *err);

#endif
