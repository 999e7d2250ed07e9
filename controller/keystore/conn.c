/* conn.c - the key store's connection: connect (directly or through the sentinels), AUTH, SELECT,
 * pipelines with one reconnect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "keystore/internal.h"

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

enum kr_status kr_ks_reply_check_who(const char *who, const redisReply *reply, const char *what,
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
	return kr_error_set(err, code, "%s: %s: %s", who, what, text);
}

enum kr_status kr_ks_reply_check(struct kr_keystore *ks, const redisReply *reply, const char *what,
				 struct kr_error *err)
{
	return kr_ks_reply_check_who(ks->server, reply, what, err);
}

void kr_ks_disconnect(struct kr_keystore *ks)
{
	kr_ks_net_close(&ks->net);
}

void kr_keystore_close(struct kr_keystore *ks)
{
	if (ks)
		kr_ks_disconnect(ks);
}

/* AUTH / SELECT right after connecting: one command, no retry. */
static enum kr_status kr_ks_handshake_one(struct kr_keystore *ks, const struct kr_ks_cmd *cmd,
					  struct kr_error *err)
{
	redisReply *reply = NULL;
	enum kr_status rc =
	    kr_ks_net_call(&ks->net, cmd, ks->command_timeout_ms, ks->server, &reply, err);

	kr_ks_reply_free(reply);
	return rc;
}

enum kr_status kr_ks_handshake(struct kr_keystore *ks, struct kr_error *err)
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
	enum kr_status rc;

	if (ks->n_sentinels)
		return kr_ks_sentinel_connect(ks, err);
	rc = kr_ks_net_open(&ks->net, ks->host, ks->port, ks->tls, ks->tls_server_name,
			    ks->connect_timeout_ms, ks->server, err);
	if (rc == KR_OK)
		rc = kr_ks_handshake(ks, err);
	if (rc != KR_OK)
		kr_ks_disconnect(ks);
	return rc;
}

/*
 * A write refused because the server is a replica now: with sentinels, a failover
 * happened (or is under way), so the master is asked for again.
 */
static int kr_ks_readonly(const struct kr_keystore *ks, redisReply **replies, size_t n)
{
	for (size_t i = 0; ks->n_sentinels && i < n; i++)
		if (replies[i] && replies[i]->type == REDIS_REPLY_ERROR && replies[i]->str &&
		    (strncmp(replies[i]->str, "READONLY", 8) == 0 ||
		     strstr(replies[i]->str, "-READONLY") || strstr(replies[i]->str, " READONLY ")))
			return 1;
	return 0;
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
		int fresh = ks->net.fd < 0, dropped = 0;

		if (fresh) {
			rc = kr_ks_connect(ks, err);
			if (rc != KR_OK)
				break;
		}
		rc = kr_ks_net_exchange(&ks->net, &wire, n, replies, ks->command_timeout_ms,
					ks->server, &dropped, err);
		if (rc == KR_OK && kr_ks_readonly(ks, replies, n) && attempt == 0) {
			/* demoted under us: every reply is dropped, the master asked for again */
			for (size_t i = 0; i < n; i++) {
				kr_ks_reply_free(replies[i]);
				replies[i] = NULL;
			}
			kr_ks_disconnect(ks);
			continue;
		}
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
