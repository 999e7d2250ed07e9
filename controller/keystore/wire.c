/* wire.c - one key store connection: TCP (and TLS) with a deadline per round trip, RESP framing. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/sds.h>
#include <openssl/err.h>

#include "base/clock.h"
#include "keystore/internal.h"

/*
 * hiredis's read buffer is pre-sized for our usual replies; a larger one (up to
 * KR_KS_REPLY_MAX_BYTES) grows it through kr_ks_reader_reserve, which wipes the old copy.
 */
#define KR_KS_READER_ROOM 65536

void kr_ks_net_init(struct kr_ks_net *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
}

/* Wipe what hiredis's reader holds; `all` also when unread data remains (closing). */
static void kr_ks_reader_wipe(redisReader *r, int all)
{
	if (!r || !r->buf || (!all && r->pos < r->len))
		return;
	explicit_bzero(r->buf, sdsalloc(r->buf));
	sdssetlen(r->buf, 0);
	r->pos = 0;
	r->len = 0;
}

void kr_ks_net_close(struct kr_ks_net *n)
{
	if (n->ssl) {
		SSL_free(n->ssl); /* no close_notify: the peer may be gone, and we do not wait */
		n->ssl = NULL;
	}
	if (n->fd >= 0)
		close(n->fd);
	if (n->reader) {
		kr_ks_reader_wipe(n->reader, 1);
		redisReaderFree(n->reader);
	}
	kr_ks_net_init(n);
}

/* ---- waiting, with one deadline ---- */

static enum kr_status kr_ks_timed_out(const char *who, int timeout_ms, const char *doing,
				      struct kr_error *err)
{
	return kr_error_set(err, KR_ETIMEOUT, "%s: timed out after %d ms %s", who, timeout_ms,
			    doing);
}

/*
 * Wait until the socket is ready for `events` or the deadline passes. Each send and recv
 * then takes what is there (non-blocking): a server that drips a byte at a time cannot
 * stretch the round trip past its deadline, as SO_RCVTIMEO alone would let it.
 */
static enum kr_status kr_ks_wait(int fd, short events, int64_t deadline, const char *who,
				 int timeout_ms, const char *doing, struct kr_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		int64_t left = deadline - kr_mono_ms();
		int n;

		if (left <= 0)
			return kr_ks_timed_out(who, timeout_ms, doing, err);
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return KR_OK; /* readable, writable, or an error recv/send will report */
		if (n < 0 && errno != EINTR)
			return kr_error_set(err, KR_EIO, "%s: poll failed %s: %s", who, doing,
					    strerror(errno));
	}
}

/* ---- connecting ---- */

static enum kr_status kr_ks_tcp_one(const struct addrinfo *ai, int64_t deadline, int *fd_out,
				    int *errnum)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	int one = 1, soerr = 0;
	socklen_t len = sizeof(soerr);

	if (fd < 0) {
		*errnum = errno;
		return KR_EIO;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int n = -1;

		if (errno != EINPROGRESS) {
			*errnum = errno;
			close(fd);
			return KR_EIO;
		}
		while (n < 0) {
			int64_t left = deadline - kr_mono_ms();

			if (left <= 0) {
				close(fd);
				return KR_ETIMEOUT;
			}
			n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
			if (n < 0 && errno != EINTR) {
				*errnum = errno;
				close(fd);
				return KR_EIO;
			}
			if (n == 0)
				n = -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
			*errnum = soerr ? soerr : errno;
			close(fd);
			return KR_EIO;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	*fd_out = fd;
	return KR_OK;
}

static enum kr_status kr_ks_tcp_connect(const char *host, int port, int64_t deadline,
					int timeout_ms, const char *who, int *fd,
					struct kr_error *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	char service[16];
	enum kr_status rc = KR_EIO;
	int errnum = ECONNREFUSED, gai;

	snprintf(service, sizeof(service), "%d", port);
	gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0)
		return kr_error_set(err, KR_EIO, "%s: cannot connect: %s", who, gai_strerror(gai));
	for (const struct addrinfo *ai = res; ai && rc != KR_OK; ai = ai->ai_next) {
		rc = kr_ks_tcp_one(ai, deadline, fd, &errnum);
		if (rc == KR_ETIMEOUT)
			break;
	}
	freeaddrinfo(res);
	if (rc == KR_ETIMEOUT)
		return kr_error_set(err, rc, "%s: cannot connect: timed out after %d ms", who,
				    timeout_ms);
	if (rc != KR_OK)
		return kr_error_set(err, rc, "%s: cannot connect: %s", who, strerror(errnum));
	return KR_OK;
}

/* The TLS handshake, within the connect deadline. */
static enum kr_status kr_ks_tls_handshake(struct kr_ks_net *n, int64_t deadline, int timeout_ms,
					  const char *who, struct kr_error *err)
{
	char why[300];

	for (;;) {
		int r, e;
		enum kr_status rc;

		ERR_clear_error();
		r = SSL_do_handshake(n->ssl);
		if (r == 1)
			return KR_OK;
		e = SSL_get_error(n->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			rc = kr_ks_wait(n->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
					deadline, who, timeout_ms, "in the TLS handshake", err);
			if (rc != KR_OK)
				return rc;
			continue;
		}
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			snprintf(why, sizeof(why), "%s",
				 r == 0 || errno == 0 ? "the server closed the connection (does it "
							"speak TLS on this port?)"
						      : strerror(errno));
		else
			kr_ks_tls_handshake_error(n->ssl, why, sizeof(why));
		ERR_clear_error();
		return kr_error_set(err, KR_EIO, "%s: TLS handshake failed: %s", who, why);
	}
}

enum kr_status kr_ks_net_open(struct kr_ks_net *n, const char *host, int port, SSL_CTX *tls,
			      const char *server_name, int timeout_ms, const char *who,
			      struct kr_error *err)
{
	int64_t deadline = kr_mono_ms() + timeout_ms;
	enum kr_status rc;

	kr_ks_net_init(n);
	rc = kr_ks_tcp_connect(host, port, deadline, timeout_ms, who, &n->fd, err);
	if (rc != KR_OK)
		return rc;
	n->reader = redisReaderCreate();
	if (n->reader) {
		n->reader->maxbuf = 0; /* never let hiredis free (unwiped) a grown buffer */
		n->reader->buf = sdsMakeRoomFor(n->reader->buf, KR_KS_READER_ROOM);
	}
	if (!n->reader || !n->reader->buf) {
		kr_ks_net_close(n);
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", who);
	}
	kr_ks_resp_guard_init(&n->guard);
	if (tls) {
		rc = kr_ks_tls_session(tls, n->fd, host, server_name, &n->ssl, err);
		if (rc == KR_OK)
			rc = kr_ks_tls_handshake(n, deadline, timeout_ms, who, err);
		else
			kr_error_prefix(err, "%s: ", who);
	}
	if (rc != KR_OK)
		kr_ks_net_close(n);
	return rc;
}

/* ---- sending and receiving ---- */

static enum kr_status kr_ks_io_error(const char *who, int errnum, const char *doing, int *dropped,
				     struct kr_error *err)
{
	if (errnum == EPIPE || errnum == ECONNRESET || errnum == ENOTCONN)
		*dropped = 1;
	return kr_error_set(err, KR_EIO, "%s: connection lost %s: %s", who, doing,
			    strerror(errnum));
}

/*
 * After the connection failed under TLS: an alert the server sent before it closed (a
 * TLS 1.3 server refuses a client certificate only after the handshake, then closes) may
 * still wait in the socket's buffer. Its reason into `why`; 0 when there is none.
 */
static int kr_ks_tls_alert(SSL *ssl, char *why, size_t size)
{
	char buf[256];
	int r;

	ERR_clear_error();
	r = SSL_read(ssl, buf, sizeof(buf));
	explicit_bzero(buf, sizeof(buf));
	if (r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_SSL)
		return 0;
	snprintf(why, size, "%s", kr_ks_tls_reason("protocol error"));
	ERR_clear_error();
	return 1;
}

/* An SSL_read/SSL_write result that is not data: wait (1), or an error. */
static int kr_ks_tls_io(SSL *ssl, int r, short *events, const char *who, const char *doing,
			int *dropped, enum kr_status *rc, struct kr_error *err)
{
	int e = SSL_get_error(ssl, r), errnum = errno;
	char why[200];

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 1;
	}
	if (e == SSL_ERROR_SSL &&
	    ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		/* the peer closed without close_notify: a server that went away (RESP's own
		 * framing tells a cut-off reply, so nothing is taken for complete) */
		*dropped = 1;
		*rc = kr_error_set(err, KR_EIO, "%s: connection closed by the server", who);
	} else if (e == SSL_ERROR_SSL) {
		/* e.g. "tlsv13 alert certificate required": the server refused us after all */
		*rc = kr_error_set(err, KR_EIO, "%s: TLS error %s: %s", who, doing,
				   kr_ks_tls_reason("protocol error"));
	} else if (kr_ks_tls_alert(ssl, why, sizeof(why))) {
		*rc = kr_error_set(err, KR_EIO, "%s: TLS error %s: %s", who, doing, why);
	} else if (e == SSL_ERROR_ZERO_RETURN || errnum == 0 || r == 0) {
		*dropped = 1;
		*rc = kr_error_set(err, KR_EIO, "%s: connection closed by the server", who);
	} else {
		*rc = kr_ks_io_error(who, errnum, doing, dropped, err);
	}
	ERR_clear_error();
	return 0;
}

/*
 * SSL_write writes to the socket with write(2), which raises SIGPIPE on a closed
 * connection; a library must not kill its caller, so SIGPIPE is held back meanwhile and a
 * pending one consumed (as libcurl does).
 */
static int kr_ks_ssl_write(SSL *ssl, const void *data, size_t len)
{
	sigset_t pipe, old;
	int r, was_pending;
	struct timespec zero = {0, 0};
	sigset_t pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	r = SSL_write(ssl, data, len > 1 << 30 ? 1 << 30 : (int)len);
	if (!was_pending) {
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static enum kr_status kr_ks_send(struct kr_ks_net *n, const struct kr_buf *wire, int64_t deadline,
				 int timeout_ms, const char *who, int *dropped,
				 struct kr_error *err)
{
	static const char doing[] = "sending a command";
	size_t off = 0;
	short events = POLLOUT;

	while (off < wire->len) {
		enum kr_status rc = KR_OK;
		ssize_t w;

		if (n->ssl) {
			int r;

			ERR_clear_error();
			r = kr_ks_ssl_write(n->ssl, wire->data + off, wire->len - off);
			if (r > 0) {
				off += (size_t)r;
				continue;
			}
			if (!kr_ks_tls_io(n->ssl, r, &events, who, doing, dropped, &rc, err))
				return rc;
		} else {
			w = send(n->fd, wire->data + off, wire->len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w >= 0) {
				off += (size_t)w;
				continue;
			}
			if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return kr_ks_io_error(who, errno, doing, dropped, err);
			events = POLLOUT;
		}
		rc = kr_ks_wait(n->fd, events, deadline, who, timeout_ms, doing, err);
		if (rc != KR_OK)
			return rc;
	}
	return KR_OK;
}

/*
 * Some bytes of the reply: *got > 0, within the deadline. TLS may hold decrypted bytes
 * already, so each read is tried before waiting.
 */
static enum kr_status kr_ks_recv(struct kr_ks_net *n, char *buf, size_t size, int64_t deadline,
				 int timeout_ms, const char *who, size_t *got, int *dropped,
				 struct kr_error *err)
{
	static const char doing[] = "waiting for a reply";
	short events = POLLIN;

	for (;;) {
		enum kr_status rc = KR_OK;

		if (n->ssl) {
			int r;

			ERR_clear_error();
			r = SSL_read(n->ssl, buf, (int)size);
			if (r > 0) {
				*got = (size_t)r;
				return KR_OK;
			}
			if (!kr_ks_tls_io(n->ssl, r, &events, who, doing, dropped, &rc, err))
				return rc;
		} else {
			ssize_t r = recv(n->fd, buf, size, MSG_DONTWAIT);

			if (r > 0) {
				*got = (size_t)r;
				return KR_OK;
			}
			if (r == 0) {
				*dropped = 1;
				return kr_error_set(err, KR_EIO,
						    "%s: connection closed by the server", who);
			}
			if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return kr_ks_io_error(who, errno, doing, dropped, err);
			events = POLLIN;
		}
		rc = kr_ks_wait(n->fd, events, deadline, who, timeout_ms,
				"waiting for a complete reply", err);
		if (rc != KR_OK)
			return rc;
	}
}

/*
 * Make room for `more` bytes in hiredis's read buffer without realloc, which would free
 * the old copy unwiped: a new buffer, the bytes copied, the old one wiped and freed.
 */
static int kr_ks_reader_reserve(redisReader *r, size_t more)
{
	size_t len = sdslen(r->buf), alloc = sdsalloc(r->buf), want;
	sds grown;

	if (alloc - len >= more)
		return 0;
	want = 2 * alloc > len + more ? 2 * alloc : len + more;
	grown = sdsnewlen(NULL, want);
	if (!grown)
		return -1;
	memcpy(grown, r->buf, len);
	sdssetlen(grown, len);
	explicit_bzero(r->buf, alloc);
	sdsfree(r->buf);
	r->buf = grown;
	return 0;
}

static enum kr_status kr_ks_read_reply(struct kr_ks_net *n, int64_t deadline, int timeout_ms,
				       const char *who, redisReply **out, int *dropped,
				       struct kr_error *err)
{
	redisReader *r = n->reader;
	enum kr_status rc = KR_OK;
	struct kr_error why;
	char buf[16384];
	void *reply = NULL;

	for (;;) {
		size_t got = 0;

		if (redisReaderGetReply(r, &reply) != REDIS_OK) {
			rc = kr_error_set(err, KR_EPROTO, "%s: bad reply: %s", who, r->errstr);
			break;
		}
		if (reply)
			break;
		rc = kr_ks_recv(n, buf, sizeof(buf), deadline, timeout_ms, who, &got, dropped, err);
		if (rc != KR_OK)
			break;
		/* Measured before hiredis holds any of it (internal.h: the bounds). */
		rc = kr_ks_resp_guard_feed(&n->guard, buf, got, &why);
		if (rc != KR_OK) {
			kr_error_set(err, rc, "%s: %s", who, why.msg);
			break;
		}
		if (kr_ks_reader_reserve(r, got) != 0) {
			rc = kr_error_set(err, KR_ENOMEM, "%s: out of memory reading a reply", who);
			break;
		}
		if (redisReaderFeed(r, buf, got) != REDIS_OK) {
			rc = kr_error_set(err, KR_EPROTO, "%s: bad reply: %s", who, r->errstr);
			break;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	*out = reply;
	return rc;
}

enum kr_status kr_ks_net_exchange(struct kr_ks_net *n, const struct kr_buf *wire, size_t count,
				  redisReply **replies, int timeout_ms, const char *who,
				  int *dropped, struct kr_error *err)
{
	int64_t deadline = kr_mono_ms() + timeout_ms; /* the whole round trip */
	enum kr_status rc = kr_ks_send(n, wire, deadline, timeout_ms, who, dropped, err);
	size_t i;

	for (i = 0; i < count; i++)
		replies[i] = NULL;
	for (i = 0; i < count && rc == KR_OK; i++)
		rc = kr_ks_read_reply(n, deadline, timeout_ms, who, &replies[i], dropped, err);
	kr_ks_reader_wipe(n->reader, 0);
	if (rc == KR_OK)
		return KR_OK;
	for (size_t j = 0; j < count; j++) {
		kr_ks_reply_free(replies[j]);
		replies[j] = NULL;
	}
	return rc;
}

enum kr_status kr_ks_format(const struct kr_ks_cmd *cmds, size_t n, struct kr_buf *out)
{
	size_t total = 0;
	enum kr_status rc;

	for (size_t i = 0; i < n; i++) {
		total += 32;
		for (size_t a = 0; a < cmds[i].argc; a++)
			total += 32 + cmds[i].argv[a].len;
	}
	rc = kr_buf_grow(out, total);
	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		rc = kr_buf_addf(out, "*%zu\r\n", cmds[i].argc);
		for (size_t a = 0; a < cmds[i].argc && rc == KR_OK; a++) {
			rc = kr_buf_addf(out, "$%zu\r\n", cmds[i].argv[a].len);
			if (rc == KR_OK)
				rc = kr_buf_add(out, cmds[i].argv[a].data, cmds[i].argv[a].len);
			if (rc == KR_OK)
				rc = kr_buf_add(out, "\r\n", 2);
		}
	}
	return rc;
}

enum kr_status kr_ks_net_call(struct kr_ks_net *net, const struct kr_ks_cmd *cmd, int timeout_ms,
			      const char *who, redisReply **reply, struct kr_error *err)
{
	struct kr_buf wire;
	int dropped = 0;
	enum kr_status rc;

	*reply = NULL;
	kr_buf_init(&wire);
	rc = kr_ks_format(cmd, 1, &wire);
	if (rc != KR_OK)
		rc = kr_error_set(err, rc, "out of memory");
	if (rc == KR_OK)
		rc = kr_ks_net_exchange(net, &wire, 1, reply, timeout_ms, who, &dropped, err);
	if (rc == KR_OK)
		rc = kr_ks_reply_check_who(who, *reply, cmd->what, err);
	if (rc != KR_OK) {
		kr_ks_reply_free(*reply);
		*reply = NULL;
	}
	kr_buf_release_wipe(&wire);
	return rc;
}
