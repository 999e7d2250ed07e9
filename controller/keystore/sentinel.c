/* sentinel.c - the master of a Sentinel-managed store: asked for, connected to, checked with ROLE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "keystore/internal.h"

/* "host:port" or "[v6]:port" -> host, port (sentinel addresses were checked when set). */
static enum kr_status kr_sentinel_addr(const char *address, char *host, size_t size, int *port,
				       struct kr_error *err)
{
	*port = 0;
	return kr_keystore_parse_address(address, host, size, port, err);
}

/*
 * Ask the sentinel at `address`: SENTINEL get-master-addr-by-name, after AUTH when the
 * store has sentinel credentials. On success host/port hold the master it names.
 */
static enum kr_status kr_sentinel_ask(struct kr_keystore *ks, const char *address, char *host,
				      size_t host_size, int *port, struct kr_error *err)
{
	struct kr_ks_net net;
	struct kr_ks_arg args[3];
	struct kr_ks_cmd cmd = {0, args, NULL};
	redisReply *reply = NULL;
	char shost[256], who[300], what[300];
	int sport;
	enum kr_status rc;

	rc = kr_sentinel_addr(address, shost, sizeof(shost), &sport, err);
	if (rc != KR_OK)
		return kr_error_prefix(err, "sentinel.addresses: ");
	kr_ks_server_text(who, sizeof(who), "sentinel", shost, sport ? sport : 26379);
	rc = kr_ks_net_open(&net, shost, sport ? sport : 26379, ks->tls, ks->tls_server_name,
			    ks->connect_timeout_ms, who, err);
	if (rc != KR_OK)
		return rc;
	if (ks->sentinel_password) {
		args[cmd.argc++] = kr_ks_str("AUTH");
		if (ks->sentinel_user)
			args[cmd.argc++] = kr_ks_str(ks->sentinel_user);
		args[cmd.argc++] = kr_ks_sec(ks->sentinel_password);
		cmd.what = "AUTH to the sentinel refused";
		rc = kr_ks_net_call(&net, &cmd, ks->command_timeout_ms, who, &reply, err);
		if (rc == KR_ESTORE && err)
			err->code = rc = KR_EAUTH;
		kr_ks_reply_free(reply);
		reply = NULL;
	}
	if (rc == KR_OK) {
		args[0] = kr_ks_str("SENTINEL");
		args[1] = kr_ks_str("get-master-addr-by-name");
		args[2] = kr_ks_str(ks->master_name);
		cmd.argc = 3;
		snprintf(what, sizeof(what), "SENTINEL get-master-addr-by-name %.200s",
			 ks->master_name);
		cmd.what = what;
		rc = kr_ks_net_call(&net, &cmd, ks->command_timeout_ms, who, &reply, err);
	}
	kr_ks_net_close(&net);
	if (rc != KR_OK)
		return rc;
	if (reply->type == REDIS_REPLY_NIL) {
		rc = kr_error_set(err, KR_ENOTFOUND, "%s: knows no master named \"%.200s\"", who,
				  ks->master_name);
	} else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		   reply->element[0]->type != REDIS_REPLY_STRING ||
		   reply->element[1]->type != REDIS_REPLY_STRING || reply->element[0]->len == 0 ||
		   reply->element[0]->len >= host_size ||
		   (*port = atoi(reply->element[1]->str)) <= 0 || *port > 65535) {
		rc = kr_error_set(err, KR_EPROTO, "%s: %s: not a host and a port", who, what);
	} else {
		memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
		kr_text_sanitize(host);
	}
	kr_ks_reply_free(reply);
	return rc;
}

/* ROLE on the fresh connection: KR_OK when it says master. */
static enum kr_status kr_sentinel_check_role(struct kr_keystore *ks, struct kr_error *err)
{
	struct kr_ks_arg arg = kr_ks_str("ROLE");
	struct kr_ks_cmd cmd = {1, &arg, "ROLE"};
	redisReply *reply = NULL;
	enum kr_status rc =
	    kr_ks_net_call(&ks->net, &cmd, ks->command_timeout_ms, ks->server, &reply, err);

	if (rc == KR_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
			    reply->element[0]->type != REDIS_REPLY_STRING ||
			    strcmp(reply->element[0]->str, "master") != 0))
		rc = kr_error_set(err, KR_ESTATE,
				  "%s: the sentinels name it, but it is not a master (yet): a "
				  "failover is under way",
				  ks->server);
	kr_ks_reply_free(reply);
	return rc;
}

/* Open ks->net to host:port, log in, check the role. */
static enum kr_status kr_sentinel_open_master(struct kr_keystore *ks, const char *host, int port,
					      struct kr_error *err)
{
	enum kr_status rc;
	char addr[300];

	snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	snprintf(ks->server, sizeof(ks->server), "valkey %s (master %.100s)", addr,
		 ks->master_name);
	snprintf(ks->master, sizeof(ks->master), "%s", addr);
	rc = kr_ks_net_open(&ks->net, host, port, ks->tls, ks->tls_server_name,
			    ks->connect_timeout_ms, ks->server, err);
	if (rc == KR_OK)
		rc = kr_ks_handshake(ks, err);
	if (rc == KR_OK)
		rc = kr_sentinel_check_role(ks, err);
	if (rc != KR_OK)
		kr_ks_disconnect(ks);
	return rc;
}

enum kr_status kr_ks_sentinel_connect(struct kr_keystore *ks, struct kr_error *err)
{
	struct kr_error last = {0};
	enum kr_status rc = KR_EIO;

	for (size_t k = 0; k < ks->n_sentinels; k++) {
		size_t i = (ks->sentinel_next + k) % ks->n_sentinels;
		char host[256];
		int port = 0;

		rc = kr_sentinel_ask(ks, ks->sentinels[i], host, sizeof(host), &port, &last);
		if (rc == KR_OK)
			rc = kr_sentinel_open_master(ks, host, port, &last);
		if (rc == KR_OK) {
			ks->sentinel_next = i;
			return KR_OK;
		}
		/* A master that refuses our password is the answer, not a reason to ask on. */
		if (rc == KR_EAUTH && ks->master[0])
			break;
	}
	if (err)
		*err = last;
	return rc;
}

enum kr_status kr_ks_replicated(struct kr_keystore *ks, const char *what, struct kr_error *err)
{
	struct kr_ks_arg role = kr_ks_str("ROLE");
	struct kr_ks_cmd role_cmd = {1, &role, "ROLE"};
	char ms[16] = "";
	struct kr_ks_arg wait[3] = {kr_ks_str("WAIT"), kr_ks_str("1"), kr_ks_str("")};
	struct kr_ks_cmd wait_cmd = {3, wait, "WAIT"};
	redisReply *reply = NULL;
	size_t replicas = 0;
	enum kr_status rc;

	if (!ks->n_sentinels)
		return KR_OK;
	rc = kr_ks_call(ks, &role_cmd, &reply, err);
	if (rc != KR_OK)
		return rc;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 &&
	    reply->element[2]->type == REDIS_REPLY_ARRAY)
		replicas = reply->element[2]->elements;
	kr_ks_reply_free(reply);
	reply = NULL;
	if (replicas == 0) /* nothing to lose it to: a failover has nothing to promote */
		return KR_OK;
	/* half the round trip's deadline, so the server's answer comes back within it */
	snprintf(ms, sizeof(ms), "%d",
		 ks->command_timeout_ms / 2 > 0 ? ks->command_timeout_ms / 2 : 1);
	wait[2] = kr_ks_str(ms);
	rc = kr_ks_call(ks, &wait_cmd, &reply, err);
	if (rc == KR_OK && (reply->type != REDIS_REPLY_INTEGER || reply->integer < 1))
		rc = kr_error_set(
		    err, KR_ETIMEOUT,
		    "%s: %s: written, but no replica of the %zu acknowledged it within "
		    "%s ms (a failover now could lose it); it is done again",
		    ks->server, what, replicas, ms);
	kr_ks_reply_free(reply);
	return rc;
}
