/* inspect.c - what the store says about a few keys: one pipelined round trip, no scan. */
#include "base/text.h"
#include "keystore/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Commands per key: SISMEMBER activeSet member; HMGET meta status last_used_at. */
#define KR_INSPECT_PER_KEY 2
#define KR_INSPECT_MAX	   8

static void kr_ks_copy_str(const redisReply *r, char *out, size_t size)
{
	out[0] = '\0';
	if (r && r->type == REDIS_REPLY_STRING)
		snprintf(out, size, "%.*s", (int)r->len, r->str);
	kr_text_sanitize(out); /* the server's text may reach a message */
}

/* Fill states[i] from the replies of key i; KR_OK or the error reply's status. */
static enum kr_status kr_ks_inspect_key(struct kr_keystore *ks, redisReply **rep, const char *what,
					struct kr_key_state *st, struct kr_error *err)
{
	enum kr_status rc = kr_ks_reply_check(ks, rep[0], what, err);
	const redisReply *h = rep[1];
	char status[32];

	if (rc == KR_OK)
		rc = kr_ks_reply_check(ks, rep[1], what, err);
	if (rc != KR_OK)
		return rc;
	if (rep[0]->type != REDIS_REPLY_INTEGER || h->type != REDIS_REPLY_ARRAY || h->elements != 2)
		return kr_error_set(err, KR_EPROTO, "%s: %s: unexpected reply", ks->server, what);
	st->active = rep[0]->integer == 1;
	kr_ks_copy_str(h->element[0], status, sizeof(status));
	st->has_meta = status[0] != '\0';
	st->meta_active = strcmp(status, "active") == 0;
	kr_ks_copy_str(h->element[1], st->last_used_at, sizeof(st->last_used_at));
	return KR_OK;
}

/*
 * The two commands about `key` in layout `l` (SISMEMBER activeSet member; HMGET
 * metadata status last_used_at) into cmds[0..2), their arguments in args; *member and
 * *meta hold the bytes they point at (the caller frees them, wiped, after the pipeline).
 */
static enum kr_status kr_ks_key_cmds(const struct kr_keystore_layout *l,
				     const struct kr_secret *key, const char *what, struct kr_secret **member,
				     struct kr_secret **meta, struct kr_ks_arg args[2][4],
				     struct kr_ks_cmd cmds[2], struct kr_error *err)
{
	enum kr_status rc = kr_ks_member(l, key, member, err);

	if (rc == KR_OK)
		rc = kr_ks_meta_key(l, kr_secret_data(*member), kr_secret_len(*member),
				    meta, err);
	if (rc != KR_OK)
		return rc;
	args[0][0] = kr_ks_str("SISMEMBER");
	args[0][1] = kr_ks_str(l->active_set);
	args[0][2] = kr_ks_sec(*member);
	cmds[0] = (struct kr_ks_cmd){3, args[0], what};
	args[1][0] = kr_ks_str("HMGET");
	args[1][1] = kr_ks_sec(*meta);
	args[1][2] = kr_ks_str("status");
	args[1][3] = kr_ks_str("last_used_at");
	cmds[1] = (struct kr_ks_cmd){4, args[1], what};
	return KR_OK;
}

enum kr_status kr_keystore_inspect(struct kr_keystore *ks, const struct kr_secret *const *keys,
				   size_t n, struct kr_key_state *states,
				   struct kr_store_state *store, struct kr_error *err)
{
	struct kr_secret *members[KR_INSPECT_MAX] = {0}, *metas[KR_INSPECT_MAX] = {0};
	struct kr_ks_arg args[KR_INSPECT_MAX][KR_INSPECT_PER_KEY][4], tail[2][2];
	struct kr_ks_cmd cmds[KR_INSPECT_MAX * KR_INSPECT_PER_KEY + 2];
	redisReply *rep[KR_INSPECT_MAX * KR_INSPECT_PER_KEY + 2] = {0};
	size_t nc = 0;
	char what[320];
	enum kr_status rc = KR_OK;

	if (n > KR_INSPECT_MAX)
		return kr_error_set(err, KR_EINVAL, "inspect: at most %d keys", KR_INSPECT_MAX);
	memset(states, 0, n * sizeof(*states));
	memset(store, 0, sizeof(*store));
	snprintf(what, sizeof(what), "inspecting activeSet \"%s\" and its metadata",
		 ks->active_set);
	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		rc = kr_ks_key_cmds(&ks->layout, keys[i], what, &members[i], &metas[i], args[i], &cmds[nc],
				    err);
		if (rc == KR_OK)
			nc += KR_INSPECT_PER_KEY;
	}
	tail[0][0] = kr_ks_str("SCARD");
	tail[0][1] = kr_ks_str(ks->active_set);
	cmds[nc++] = (struct kr_ks_cmd){2, tail[0], what};
	tail[1][0] = kr_ks_str("GET");
	tail[1][1] = kr_ks_str(ks->bootstrap_key);
	cmds[nc++] = (struct kr_ks_cmd){2, tail[1], "GET bootstrapKey"};
	if (rc == KR_OK)
		rc = kr_ks_pipeline(ks, cmds, nc, rep, err);
	for (size_t i = 0; rc == KR_OK && i < n; i++)
		rc = kr_ks_inspect_key(ks, &rep[i * KR_INSPECT_PER_KEY], what, &states[i], err);
	if (rc == KR_OK)
		rc = kr_ks_reply_check(ks, rep[nc - 2], what, err);
	if (rc == KR_OK)
		rc = kr_ks_reply_check(ks, rep[nc - 1], "GET bootstrapKey", err);
	if (rc == KR_OK) {
		store->active_members =
		    rep[nc - 2]->type == REDIS_REPLY_INTEGER ? rep[nc - 2]->integer : 0;
		kr_ks_copy_str(rep[nc - 1], store->marker, sizeof(store->marker));
	}
	for (size_t i = 0; i < nc; i++)
		kr_ks_reply_free(rep[i]);
	for (size_t i = 0; i < n; i++) {
		kr_secret_free(members[i]);
		kr_secret_free(metas[i]);
	}
	return rc;
}

#define KR_PROBE_WHAT "inspecting activeSet and its metadata"

/* Probe i's verdict from its three replies (SISMEMBER, HMGET status, GET bootstrapKey). */
static void kr_ks_probe_judge(struct kr_keystore *ks, struct kr_keystore_probe *p, redisReply **rep)
{
	struct kr_key_state st = {0};
	struct kr_error e = {0};
	char marker[64];

	if (kr_ks_inspect_key(ks, rep, KR_PROBE_WHAT, &st, &e) != KR_OK ||
	    kr_ks_reply_check(ks, rep[2], "GET bootstrapKey", &e) != KR_OK) {
		snprintf(p->why, sizeof(p->why), "%s", e.msg);
		return;
	}
	kr_ks_copy_str(rep[2], marker, sizeof(marker));
	p->ok = st.active && st.meta_active && strcmp(marker, p->key_id) == 0;
	snprintf(p->why, sizeof(p->why), "%s",
		 p->ok		   ? ""
		 : !st.active	   ? "the current key is not active"
		 : !st.meta_active ? "the current key's metadata is not active"
				   : "the bootstrap marker moved");
}

/* At most KR_PROBE_CHUNK probes in one round trip. */
static enum kr_status kr_ks_probe_chunk(struct kr_keystore *ks, struct kr_keystore_probe *p,
					size_t n, struct kr_error *err)
{
	struct kr_secret *members[KR_PROBE_CHUNK] = {0}, *metas[KR_PROBE_CHUNK] = {0};
	struct kr_ks_arg args[KR_PROBE_CHUNK][KR_INSPECT_PER_KEY][4], get[KR_PROBE_CHUNK][2];
	struct kr_ks_cmd cmds[KR_PROBE_CHUNK * 3];
	redisReply *rep[KR_PROBE_CHUNK * 3] = {0};
	enum kr_status rc = KR_OK;
	size_t nc = 0;

	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		rc = kr_ks_key_cmds(p[i].layout, p[i].key, KR_PROBE_WHAT, &members[i], &metas[i],
				    args[i], &cmds[nc], err);
		if (rc != KR_OK)
			break;
		nc += KR_INSPECT_PER_KEY;
		get[i][0] = kr_ks_str("GET");
		get[i][1] = kr_ks_str(p[i].layout->bootstrap_key);
		cmds[nc++] = (struct kr_ks_cmd){2, get[i], "GET bootstrapKey"};
	}
	if (rc == KR_OK)
		rc = kr_ks_pipeline(ks, cmds, nc, rep, err);
	for (size_t i = 0; rc == KR_OK && i < n; i++)
		kr_ks_probe_judge(ks, &p[i], &rep[i * 3]);
	for (size_t i = 0; i < nc; i++)
		kr_ks_reply_free(rep[i]);
	for (size_t i = 0; i < n; i++) {
		kr_secret_free(members[i]);
		kr_secret_free(metas[i]);
	}
	return rc;
}

enum kr_status kr_keystore_probe(struct kr_keystore *ks, struct kr_keystore_probe *p, size_t n,
				 struct kr_error *err)
{
	enum kr_status rc = KR_OK;
	size_t done = 0;

	for (size_t i = 0; i < n; i++) {
		p[i].ok = 0;
		p[i].why[0] = '\0';
	}
	for (; done < n && rc == KR_OK; done += KR_PROBE_CHUNK)
		rc = kr_ks_probe_chunk(ks, p + done,
				       n - done < KR_PROBE_CHUNK ? n - done : KR_PROBE_CHUNK, err);
	for (size_t i = 0; rc != KR_OK && i < n; i++)
		if (!p[i].ok && !p[i].why[0])
			snprintf(p[i].why, sizeof(p[i].why), "%s", err ? err->msg : "");
	return rc;
}
