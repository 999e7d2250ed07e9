/* conn.c - the key store handle and its wire: connect, AUTH, SELECT, pipelines, one reconnect. */
#include "base/text.h"
#include "keystore/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/sds.h>

#include "base/clock.h"

/*
 * hiredis's read buffer is pre-sized for our usual replies; a larger one (up to
 * KR_KS_REPLY_MAX_BYTES) grows it through kr_ks_reader_reserve, which wipes the old copy.
 */
#define KR_KS_READER_ROOM 65536

static char *kr_strdup_opt(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

enum kr_status kr_keystore_new(const struct kr_keystore_opts *opts,
			       const struct kr_keystore_layout *layout, struct kr_keystore **out,
			       struct kr_error *err)
{
	struct kr_keystore *ks;
	enum kr_status rc;

	*out = NULL;
	rc = kr_keystore_layout_check(layout, err);
	if (rc != KR_OK)
		return rc;
	if (!opts->host || !*opts->host)
		return kr_error_set(err, KR_EINVAL, "keyStore.address has no host");
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	ks->host = strdup(opts->host);
	ks->port = opts->port > 0 ? opts->port : 6379;
	ks->database = opts->database;
	ks->username = kr_strdup_opt(opts->username);
	if (opts->password)
		ks->password =
		    kr_secret_new(kr_secret_data(opts->password), kr_secret_len(opts->password));
	ks->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
	ks->command_timeout_ms = opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 5000;
	ks->active_set = strdup(layout->active_set);
	ks->meta_key = strdup(layout->meta_key);
	ks->bootstrap_key = strdup(layout->bootstrap_key);
	ks->layout.active_set = ks->active_set;
	ks->layout.meta_key = ks->meta_key;
	ks->layout.bootstrap_key = ks->bootstrap_key;
	ks->layout.store_as = layout->store_as;
	if (!ks->host || !ks->active_set || !ks->meta_key || !ks->bootstrap_key ||
	    (opts->username && *opts->username && !ks->username) ||
	    (opts->password && !ks->password)) {
		kr_keystore_free(ks);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	ks->server = malloc(strlen(ks->host) + 24);
	if (!ks->server) {
		kr_keystore_free(ks);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	sprintf(ks->server, strchr(ks->host, ':') ? "valkey [%s]:%d" : "valkey %s:%d", ks->host,
		ks->port);
	*out = ks;
	return KR_OK;
}

enum kr_status kr_keystore_dup(const struct kr_keystore *ks, struct kr_keystore **out,
			       struct kr_error *err)
{
	struct kr_keystore_opts o = {
	    .host = ks->host,
	    .port = ks->port,
	    .database = ks->database,
	    .username = ks->username,
	    .password = ks->password,
	    .connect_timeout_ms = ks->connect_timeout_ms,
	    .command_timeout_ms = ks->command_timeout_ms,
	};

	return kr_keystore_new(&o, &ks->layout, out, err);
}

/* Replace *field with a copy of `value` unless equal. */
static enum kr_status kr_ks_set_str(char **field, const char *value)
{
	char *copy;

	if (*field && !strcmp(*field, value))
		return KR_OK;
	copy = strdup(value);
	if (!copy)
		return KR_ENOMEM;
	free(*field);
	*field = copy;
	return KR_OK;
}

enum kr_status kr_keystore_adopt_layout(struct kr_keystore *conn,
					const struct kr_keystore *settings, struct kr_error *err)
{
	if (kr_ks_set_str(&conn->active_set, settings->active_set) != KR_OK ||
	    kr_ks_set_str(&conn->meta_key, settings->meta_key) != KR_OK ||
	    kr_ks_set_str(&conn->bootstrap_key, settings->bootstrap_key) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", conn->server);
	conn->layout.active_set = conn->active_set;
	conn->layout.meta_key = conn->meta_key;
	conn->layout.bootstrap_key = conn->bootstrap_key;
	conn->layout.store_as = settings->layout.store_as;
	return KR_OK;
}

/* SHA-256 (hex) over the connection settings, and the layout too when `layout` is set. */
static void kr_ks_fingerprint(const struct kr_keystore *ks, int layout, char out[65])
{
	struct kr_buf b;
	char pw[65] = "-";

	if (ks->password)
		kr_key_hash_hex_bytes(kr_secret_data(ks->password), kr_secret_len(ks->password),
				      pw);
	kr_buf_init(&b);
	kr_buf_addf(&b, "%s|%d|%d|%s|%s|%d|%d", ks->host, ks->port, ks->database,
		    ks->username ? ks->username : "", pw, ks->connect_timeout_ms,
		    ks->command_timeout_ms);
	if (layout)
		kr_buf_addf(&b, "|%s|%s|%s|%d", ks->active_set, ks->meta_key, ks->bootstrap_key,
			    (int)ks->layout.store_as);
	kr_key_hash_hex_bytes(b.data ? b.data : "", b.len, out);
	kr_buf_release(&b);
}

void kr_keystore_fingerprint(const struct kr_keystore *ks, char out[65])
{
	kr_ks_fingerprint(ks, 1, out);
}

void kr_keystore_server_fingerprint(const struct kr_keystore *ks, char out[65])
{
	kr_ks_fingerprint(ks, 0, out);
}

void kr_keystore_free(struct kr_keystore *ks)
{
	if (!ks)
		return;
	kr_ks_disconnect(ks);
	free(ks->server);
	free(ks->host);
	free(ks->username);
	kr_secret_free(ks->password);
	free(ks->active_set);
	free(ks->meta_key);
	free(ks->bootstrap_key);
	free(ks);
}

const char *kr_keystore_server(const struct kr_keystore *ks)
{
	return ks->server;
}

const struct kr_keystore_layout *kr_keystore_get_layout(const struct kr_keystore *ks)
{
	return &ks->layout;
}

/* ---- replies ---- */

static void kr_ks_reply_wipe(redisReply *r)
{
	if (r->str && r->len > 0)
		explicit_bzero(r->str, r->len);
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i])
			kr_ks_reply_wipe(r->element[i]);
}

void kr_ks_reply_free(redisReply *reply)
{
	if (!reply)
		return;
	kr_ks_reply_wipe(reply);
	freeReplyObject(reply);
}

static int kr_starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

enum kr_status kr_ks_reply_check(struct kr_keystore *ks, const redisReply *reply, const char *what,
				 struct kr_error *err)
{
	char text[240];
	const char *cut;
	enum kr_status code = KR_ESTORE;

	if (reply->type != REDIS_REPLY_ERROR)
		return KR_OK;
	snprintf(text, sizeof(text), "%.*s", (int)reply->len, reply->str ? reply->str : "");
	/* "unknown command ..., with args beginning with: ..." would echo arguments */
	cut = strstr(text, "with args beginning");
	if (cut)
		text[cut - text] = '\0';
	if (kr_starts(text, "NOAUTH") || kr_starts(text, "WRONGPASS") ||
	    kr_starts(text, "NOPERM") || strstr(text, "invalid password") ||
	    strstr(text, "without any password configured"))
		code = KR_EAUTH;
	kr_text_sanitize(text); /* a server's text: no control or escape sequences */
	return kr_error_set(err, code, "%s: %s: %s", ks->server, what, text);
}

/* ---- the bounds on a reply (internal.h) ---- */

enum { KR_G_TYPE = 0, KR_G_LINE, KR_G_BULK, KR_G_SPENT };

void kr_ks_resp_guard_init(struct kr_ks_resp_guard *g)
{
	memset(g, 0, sizeof(*g));
}

static enum kr_status kr_ks_guard_fail(struct kr_ks_resp_guard *g, enum kr_status code,
				       const char *msg, struct kr_error *err)
{
	g->state = KR_G_SPENT;
	return kr_error_set(err, code, "%s", msg);
}

/* A value is complete: it fills one slot of each array it closes, or ends the reply. */
static void kr_ks_guard_value(struct kr_ks_resp_guard *g)
{
	g->state = KR_G_TYPE;
	while (g->depth > 0) {
		if (--g->left[g->depth - 1] > 0)
			return;
		g->depth--;
	}
	g->replies++;
	g->bytes = 0;
	g->elements = 0;
}

/* A header line ended (its CRLF consumed). */
static enum kr_status kr_ks_guard_header(struct kr_ks_resp_guard *g, struct kr_error *err)
{
	if (g->type == ':' && (g->bad || !g->digits || (g->neg && g->num == 0)))
		return kr_ks_guard_fail(g, KR_EPROTO, "bad reply: malformed integer", err);
	if (g->type != '$' && g->type != '*') {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	/* Only "-1" is nil; hiredis reads other negatives its own way, so they are refused. */
	if (g->bad || !g->digits || (g->neg && g->num != 1))
		return kr_ks_guard_fail(g, KR_EPROTO, "bad reply: malformed length", err);
	if (g->neg) {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	if (g->type == '$') {
		if (g->num > KR_KS_REPLY_MAX_BYTES)
			return kr_ks_guard_fail(g, KR_ETOOBIG, "reply larger than 1 MiB", err);
		g->bulk_left = g->num + 2;
		g->state = KR_G_BULK;
		return KR_OK;
	}
	if (g->num > KR_KS_REPLY_MAX_ELEMENTS - g->elements)
		return kr_ks_guard_fail(g, KR_ETOOBIG, "reply of more than 10000 elements", err);
	if (g->depth == KR_KS_REPLY_MAX_DEPTH) /* an empty array counts: hiredis nests it too */
		return kr_ks_guard_fail(g, KR_EPROTO, "reply nested deeper than 7 levels", err);
	g->elements += (size_t)g->num;
	if (g->num == 0) {
		kr_ks_guard_value(g);
		return KR_OK;
	}
	g->left[g->depth++] = (long long)g->num;
	g->state = KR_G_TYPE;
	return KR_OK;
}

/*
 * One byte of a header line; a line ends at CRLF, as hiredis reads it. Numbers are read
 * at least as strictly as hiredis does (no sign but '-', no leading zero, integers of at
 * most 18 digits), so whatever passes here parses there.
 */
static enum kr_status kr_ks_guard_line(struct kr_ks_resp_guard *g, char c, struct kr_error *err)
{
	int numeric = g->type == '$' || g->type == '*' || g->type == ':';

	if (c == '\n' && g->cr)
		return kr_ks_guard_header(g, err);
	if (numeric && g->cr)
		g->bad = 1; /* a CR inside a length */
	g->cr = c == '\r';
	if (!numeric || g->cr)
		return KR_OK;
	if (c == '-' && !g->neg && !g->digits) {
		g->neg = 1;
	} else if (c >= '0' && c <= '9') {
		if ((g->digits > 0 && g->num == 0) || (g->type == ':' && g->digits >= 18))
			g->bad = 1; /* a leading zero; an integer hiredis might overflow on */
		if (g->num < 1000000000000ull) /* past every cap already: stop counting */
			g->num = 10 * g->num + (unsigned)(c - '0');
		g->digits++;
	} else {
		g->bad = 1;
	}
	return KR_OK;
}

enum kr_status kr_ks_resp_guard_feed(struct kr_ks_resp_guard *g, const char *data, size_t len,
				     struct kr_error *err)
{
	size_t i = 0;

	if (g->state == KR_G_SPENT)
		return kr_error_set(err, KR_EPROTO, "bad reply: the reply stream was refused");
	while (i < len) {
		enum kr_status rc = KR_OK;
		size_t take = 1;

		if (g->state == KR_G_BULK) /* a string's body: skipped whole, never looked at */
			take = g->bulk_left < len - i ? (size_t)g->bulk_left : len - i;
		if (take > KR_KS_REPLY_MAX_BYTES - g->bytes)
			return kr_ks_guard_fail(g, KR_ETOOBIG, "reply larger than 1 MiB", err);
		g->bytes += take;
		if (g->state == KR_G_BULK) {
			g->bulk_left -= take;
			if (g->bulk_left == 0)
				kr_ks_guard_value(g);
		} else if (g->state == KR_G_LINE) {
			rc = kr_ks_guard_line(g, data[i], err);
		} else if (strchr("+-:$*", data[i]) && data[i] != '\0') {
			g->state = KR_G_LINE;
			g->type = data[i];
			g->neg = g->digits = g->bad = g->cr = 0;
			g->num = 0;
		} else {
			rc = kr_ks_guard_fail(g, KR_EPROTO, "bad reply: unknown reply type", err);
		}
		if (rc != KR_OK)
			return rc;
		i += take;
	}
	return KR_OK;
}

/* ---- the wire ---- */

static struct timeval kr_ms_tv(int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	return tv;
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

void kr_ks_disconnect(struct kr_keystore *ks)
{
	if (!ks->ctx)
		return;
	kr_ks_reader_wipe(ks->ctx->reader, 1);
	redisFree(ks->ctx);
	ks->ctx = NULL;
}

void kr_keystore_close(struct kr_keystore *ks)
{
	if (ks)
		kr_ks_disconnect(ks);
}

static enum kr_status kr_ks_io_error(struct kr_keystore *ks, int errnum, const char *doing,
				     int *dropped, struct kr_error *err)
{
	if (errnum == EAGAIN || errnum == EWOULDBLOCK)
		return kr_error_set(err, KR_ETIMEOUT, "%s: timed out after %d ms %s", ks->server,
				    ks->command_timeout_ms, doing);
	if (errnum == EPIPE || errnum == ECONNRESET || errnum == ENOTCONN)
		*dropped = 1;
	return kr_error_set(err, KR_EIO, "%s: connection lost %s: %s", ks->server, doing,
			    strerror(errnum));
}

/* RESP for every command, into one buffer sized up front (it is wiped, never copied). */
static enum kr_status kr_ks_format(const struct kr_ks_cmd *cmds, size_t n, struct kr_buf *out)
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

/*
 * Wait until the socket is ready for `events` or the round trip's deadline passes. Each
 * send and recv then takes what is there (MSG_DONTWAIT): a server that drips a byte at a
 * time cannot stretch the round trip past its deadline, as SO_RCVTIMEO alone would let it.
 */
static enum kr_status kr_ks_wait(struct kr_keystore *ks, short events, int64_t deadline,
				 const char *doing, struct kr_error *err)
{
	struct pollfd pfd = {.fd = ks->ctx->fd, .events = events};

	for (;;) {
		int64_t left = deadline - kr_mono_ms();
		int n;

		if (left <= 0)
			return kr_error_set(err, KR_ETIMEOUT, "%s: timed out after %d ms %s",
					    ks->server, ks->command_timeout_ms, doing);
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return KR_OK; /* readable, writable, or an error recv/send will report */
		if (n < 0 && errno != EINTR)
			return kr_error_set(err, KR_EIO, "%s: poll failed %s: %s", ks->server,
					    doing, strerror(errno));
	}
}

static enum kr_status kr_ks_send(struct kr_keystore *ks, const struct kr_buf *wire,
				 int64_t deadline, int *dropped, struct kr_error *err)
{
	size_t off = 0;

	while (off < wire->len) {
		enum kr_status rc = kr_ks_wait(ks, POLLOUT, deadline, "sending a command", err);
		ssize_t w;

		if (rc != KR_OK)
			return rc;
		w = send(ks->ctx->fd, wire->data + off, wire->len - off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (w < 0)
			return kr_ks_io_error(ks, errno, "sending a command", dropped, err);
		off += (size_t)w;
	}
	return KR_OK;
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

static enum kr_status kr_ks_read_reply(struct kr_keystore *ks, int64_t deadline, redisReply **out,
				       int *dropped, struct kr_error *err)
{
	redisReader *r = ks->ctx->reader;
	enum kr_status rc = KR_OK;
	struct kr_error why;
	char buf[16384];
	void *reply = NULL;

	for (;;) {
		ssize_t got;

		if (redisReaderGetReply(r, &reply) != REDIS_OK) {
			rc = kr_error_set(err, KR_EPROTO, "%s: bad reply: %s", ks->server,
					  r->errstr);
			break;
		}
		if (reply)
			break;
		rc = kr_ks_wait(ks, POLLIN, deadline, "waiting for a complete reply", err);
		if (rc != KR_OK)
			break;
		got = recv(ks->ctx->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (got == 0) {
			*dropped = 1;
			rc = kr_error_set(err, KR_EIO, "%s: connection closed by the server",
					  ks->server);
			break;
		}
		if (got < 0) {
			rc = kr_ks_io_error(ks, errno, "waiting for a reply", dropped, err);
			break;
		}
		/* Measured before hiredis holds any of it (internal.h: the bounds). */
		rc = kr_ks_resp_guard_feed(&ks->guard, buf, (size_t)got, &why);
		if (rc != KR_OK) {
			kr_error_set(err, rc, "%s: %s", ks->server, why.msg);
			break;
		}
		if (kr_ks_reader_reserve(r, (size_t)got) != 0) {
			rc = kr_error_set(err, KR_ENOMEM, "%s: out of memory reading a reply",
					  ks->server);
			break;
		}
		if (redisReaderFeed(r, buf, (size_t)got) != REDIS_OK) {
			rc = kr_error_set(err, KR_EPROTO, "%s: bad reply: %s", ks->server,
					  r->errstr);
			break;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	*out = reply;
	return rc;
}

/* One attempt on the current connection. */
static enum kr_status kr_ks_exchange(struct kr_keystore *ks, const struct kr_buf *wire, size_t n,
				     redisReply **replies, int *dropped, struct kr_error *err)
{
	int64_t deadline = kr_mono_ms() + ks->command_timeout_ms; /* the whole round trip */
	enum kr_status rc = kr_ks_send(ks, wire, deadline, dropped, err);
	size_t i;

	for (i = 0; i < n && rc == KR_OK; i++)
		rc = kr_ks_read_reply(ks, deadline, &replies[i], dropped, err);
	kr_ks_reader_wipe(ks->ctx->reader, 0);
	if (rc == KR_OK)
		return KR_OK;
	for (size_t j = 0; j < n; j++) {
		kr_ks_reply_free(replies[j]);
		replies[j] = NULL;
	}
	return rc;
}

/* AUTH / SELECT right after connecting: one command, no retry. */
static enum kr_status kr_ks_handshake_one(struct kr_keystore *ks, const struct kr_ks_cmd *cmd,
					  struct kr_error *err)
{
	redisReply *reply = NULL;
	struct kr_buf wire;
	int dropped = 0;
	enum kr_status rc;

	kr_buf_init(&wire);
	rc = kr_ks_format(cmd, 1, &wire);
	if (rc != KR_OK) {
		rc = kr_error_set(err, rc, "out of memory");
		goto out;
	}
	rc = kr_ks_exchange(ks, &wire, 1, &reply, &dropped, err);
	if (rc == KR_OK)
		rc = kr_ks_reply_check(ks, reply, cmd->what, err);
out:
	kr_ks_reply_free(reply);
	kr_buf_release_wipe(&wire);
	return rc;
}

static enum kr_status kr_ks_handshake(struct kr_keystore *ks, struct kr_error *err)
{
	struct kr_ks_arg args[3];
	struct kr_ks_cmd cmd = {0, args, NULL};
	char what[160], db[16];
	enum kr_status rc = KR_OK;

	if (ks->password) {
		args[cmd.argc++] = kr_ks_str("AUTH");
		if (ks->username)
			args[cmd.argc++] = kr_ks_str(ks->username);
		args[cmd.argc++] = kr_ks_sec(ks->password);
		snprintf(what, sizeof(what), "AUTH as user \"%s\" refused",
			 ks->username ? ks->username : "default");
		cmd.what = what;
		rc = kr_ks_handshake_one(ks, &cmd, err);
		if (rc == KR_ESTORE) {
			rc = KR_EAUTH;
			if (err)
				err->code = rc;
		}
	}
	if (rc == KR_OK && ks->database > 0) {
		snprintf(db, sizeof(db), "%d", ks->database);
		args[0] = kr_ks_str("SELECT");
		args[1] = kr_ks_str(db);
		cmd.argc = 2;
		snprintf(what, sizeof(what), "SELECT database %d", ks->database);
		cmd.what = what;
		rc = kr_ks_handshake_one(ks, &cmd, err);
	}
	return rc;
}

static enum kr_status kr_ks_connect(struct kr_keystore *ks, struct kr_error *err)
{
	redisContext *c =
	    redisConnectWithTimeout(ks->host, ks->port, kr_ms_tv(ks->connect_timeout_ms));
	enum kr_status rc;

	if (!c)
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory connecting", ks->server);
	if (c->err) {
		rc = strstr(c->errstr, "timed out") ? KR_ETIMEOUT : KR_EIO;
		kr_error_set(err, rc, "%s: cannot connect: %s", ks->server, c->errstr);
		redisFree(c);
		return rc;
	}
	if (redisSetTimeout(c, kr_ms_tv(ks->command_timeout_ms)) != REDIS_OK) {
		kr_error_set(err, KR_EIO, "%s: cannot set timeouts: %s", ks->server, c->errstr);
		redisFree(c);
		return KR_EIO;
	}
	c->reader->maxbuf = 0; /* never let hiredis free (unwiped) a grown buffer */
	c->reader->buf = sdsMakeRoomFor(c->reader->buf, KR_KS_READER_ROOM);
	ks->ctx = c;
	kr_ks_resp_guard_init(&ks->guard);
	if (!c->reader->buf) {
		kr_ks_disconnect(ks);
		return kr_error_set(err, KR_ENOMEM, "%s: out of memory", ks->server);
	}
	rc = kr_ks_handshake(ks, err);
	if (rc != KR_OK)
		kr_ks_disconnect(ks);
	return rc;
}

enum kr_status kr_ks_pipeline(struct kr_keystore *ks, const struct kr_ks_cmd *cmds, size_t n,
			      redisReply **replies, struct kr_error *err)
{
	struct kr_buf wire;
	enum kr_status rc;

	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	kr_buf_init(&wire);
	rc = kr_ks_format(cmds, n, &wire);
	if (rc != KR_OK) {
		kr_buf_release_wipe(&wire);
		return kr_error_set(err, rc, "out of memory");
	}
	for (int attempt = 0;; attempt++) {
		int fresh = ks->ctx == NULL, dropped = 0;

		if (fresh) {
			rc = kr_ks_connect(ks, err);
			if (rc != KR_OK)
				break;
		}
		rc = kr_ks_exchange(ks, &wire, n, replies, &dropped, err);
		if (rc == KR_OK)
			break;
		kr_ks_disconnect(ks);
		/* a connection that was fine before and is gone now: reconnect once */
		if (!dropped || fresh || attempt > 0)
			break;
	}
	kr_buf_release_wipe(&wire);
	return rc;
}

enum kr_status kr_ks_call(struct kr_keystore *ks, const struct kr_ks_cmd *cmd, redisReply **reply,
			  struct kr_error *err)
{
	enum kr_status rc = kr_ks_pipeline(ks, cmd, 1, reply, err);

	if (rc != KR_OK)
		return rc;
	rc = kr_ks_reply_check(ks, *reply, cmd->what, err);
	if (rc != KR_OK) {
		kr_ks_reply_free(*reply);
		*reply = NULL;
	}
	return rc;
}

enum kr_status kr_keystore_ping(struct kr_keystore *ks, struct kr_error *err)
{
	struct kr_ks_arg arg = kr_ks_str("PING");
	struct kr_ks_cmd cmd = {1, &arg, "PING"};
	redisReply *reply = NULL;
	enum kr_status rc = kr_ks_call(ks, &cmd, &reply, err);

	kr_ks_reply_free(reply);
	return rc;
}
