/* store.c - the key-store operations: activate, revoke, is-active, bootstrap marker, reconcile. */
#include "base/text.h"
#include "keystore/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: activeSet, metaKey. ARGV: member, id, created_at, label, rotation. */
static const char kr_lua_activate[] = KR_LUA_CHECK_SET("KEYS[1]") KR_LUA_CHECK_HASH(
    "KEYS[2]",
    "ARGV[2]") "local added = redis.call('SADD', KEYS[1], ARGV[1])\n"
	       "local react = 0\n"
	       "if redis.call('HGET', KEYS[2], 'status') == 'revoked' then react = 1 end\n"
	       "redis.call('HSETNX', KEYS[2], 'created_at', ARGV[3])\n"
	       "redis.call('HSET', KEYS[2], 'id', ARGV[2], 'status', 'active')\n"
	       "if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'label', ARGV[4]) end\n"
	       "if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'rotation', ARGV[5]) end\n"
	       "redis.call('HDEL', KEYS[2], 'revoked_at')\n"
	       "return {added, react}\n";

/* KEYS: activeSet, metaKey. ARGV: member, id, now. Returns 1 done, 2 already, 0 absent. */
static const char kr_lua_revoke[] = KR_LUA_CHECK_SET("KEYS[1]") KR_LUA_CHECK_HASH(
    "KEYS[2]",
    "ARGV[2]") "local removed = redis.call('SREM', KEYS[1], ARGV[1])\n"
	       "if removed == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end\n"
	       "redis.call('HSET', KEYS[2], 'id', ARGV[2], 'status', 'revoked')\n"
	       "redis.call('HSETNX', KEYS[2], 'revoked_at', ARGV[3])\n"
	       "if removed == 1 then return 1 end\n"
	       "return 2\n";

/* KEYS: bootstrapKey. ARGV: id. Returns 1 when it changed. */
static const char kr_lua_bootstrap[] =
    KR_LUA_CHECK_STRING("KEYS[1]") "if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end\n"
				   "redis.call('SET', KEYS[1], ARGV[1])\n"
				   "return 1\n";

/* An integer element of an array reply, or -1. */
static long long kr_ks_int_at(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[i]->integer;
}

static enum kr_status kr_ks_bad_reply(struct kr_keystore *ks, const char *what,
				      struct kr_error *err)
{
	return kr_error_set(err, KR_EPROTO, "%s: %s: unexpected reply", ks->server, what);
}

/* The member, its metadata key and id for a key. */
struct kr_ks_target {
	struct kr_secret *member;
	struct kr_secret *meta_key;
	char id[KR_KEY_ID_LEN + 1];
};

static void kr_ks_target_release(struct kr_ks_target *t)
{
	kr_secret_free(t->member);
	kr_secret_free(t->meta_key);
	t->member = t->meta_key = NULL;
}

/* Takes ownership of `member`. */
static enum kr_status kr_ks_target_init(struct kr_keystore *ks, struct kr_secret *member,
					struct kr_ks_target *t, struct kr_error *err)
{
	t->member = member;
	t->meta_key = NULL;
	kr_ks_member_id(&ks->layout, kr_secret_data(member), kr_secret_len(member), t->id);
	return kr_ks_meta_key(&ks->layout, kr_secret_data(member), kr_secret_len(member),
			      &t->meta_key, err);
}

static enum kr_status kr_ks_target_for_key(struct kr_keystore *ks, const struct kr_secret *key,
					   struct kr_ks_target *t, struct kr_error *err)
{
	struct kr_secret *member = NULL;
	enum kr_status rc;

	t->member = t->meta_key = NULL;
	if (!key || kr_secret_len(key) == 0)
		return kr_error_set(err, KR_EINVAL, "empty key");
	rc = kr_ks_member(&ks->layout, key, &member, err);
	if (rc != KR_OK)
		return rc;
	rc = kr_ks_target_init(ks, member, t, err);
	/* the id is always SHA-256 of the key itself */
	kr_key_id(key, t->id);
	return rc;
}

enum kr_status kr_keystore_activate(struct kr_keystore *ks, const struct kr_secret *key,
				    const struct kr_key_meta *meta,
				    struct kr_activate_result *result, struct kr_error *err)
{
	struct kr_ks_target t;
	char now[21], what[64];
	redisReply *reply = NULL;
	enum kr_status rc;

	rc = kr_ks_target_for_key(ks, key, &t, err);
	if (rc != KR_OK)
		goto out;
	kr_keystore_now(now);
	snprintf(what, sizeof(what), "activating key %s", t.id);
	struct kr_ks_arg args[] = {
	    kr_ks_str("EVAL"),
	    kr_ks_str(kr_lua_activate),
	    kr_ks_str("2"),
	    kr_ks_str(ks->active_set),
	    kr_ks_sec(t.meta_key),
	    kr_ks_sec(t.member),
	    kr_ks_str(t.id),
	    kr_ks_str(meta && meta->created_at && *meta->created_at ? meta->created_at : now),
	    kr_ks_str(meta && meta->label ? meta->label : ""),
	    kr_ks_str(meta && meta->rotation ? meta->rotation : ""),
	};
	struct kr_ks_cmd cmd = {sizeof(args) / sizeof(args[0]), args, what};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		goto out;
	if (kr_ks_int_at(reply, 0) < 0 || kr_ks_int_at(reply, 1) < 0) {
		rc = kr_ks_bad_reply(ks, what, err);
		goto out;
	}
	if (result) {
		result->added = kr_ks_int_at(reply, 0) == 1;
		result->reactivated = kr_ks_int_at(reply, 1) == 1;
	}
	rc = kr_ks_replicated(ks, what, err);
out:
	kr_ks_reply_free(reply);
	kr_ks_target_release(&t);
	return rc;
}

static enum kr_status kr_ks_revoke_target(struct kr_keystore *ks, const struct kr_ks_target *t,
					  enum kr_revoke_outcome *outcome, struct kr_error *err)
{
	char now[21], what[64];
	redisReply *reply = NULL;
	enum kr_status rc;

	kr_keystore_now(now);
	snprintf(what, sizeof(what), "revoking key %s", t->id);
	struct kr_ks_arg args[] = {
	    kr_ks_str("EVAL"),	       kr_ks_str(kr_lua_revoke), kr_ks_str("2"),
	    kr_ks_str(ks->active_set), kr_ks_sec(t->meta_key),	 kr_ks_sec(t->member),
	    kr_ks_str(t->id),	       kr_ks_str(now),
	};
	struct kr_ks_cmd cmd = {sizeof(args) / sizeof(args[0]), args, what};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		return rc;
	if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0 || reply->integer > 2)
		rc = kr_ks_bad_reply(ks, what, err);
	else if (outcome)
		*outcome = reply->integer == 1	 ? KR_REVOKE_DONE
			   : reply->integer == 2 ? KR_REVOKE_ALREADY
						 : KR_REVOKE_ABSENT;
	kr_ks_reply_free(reply);
	if (rc == KR_OK)
		rc = kr_ks_replicated(ks, what, err);
	return rc;
}

enum kr_status kr_keystore_revoke_key(struct kr_keystore *ks, const struct kr_secret *key,
				      enum kr_revoke_outcome *outcome, struct kr_error *err)
{
	struct kr_ks_target t;
	enum kr_status rc = kr_ks_target_for_key(ks, key, &t, err);

	if (rc == KR_OK)
		rc = kr_ks_revoke_target(ks, &t, outcome, err);
	kr_ks_target_release(&t);
	return rc;
}

enum kr_status kr_keystore_revoke_member(struct kr_keystore *ks, const struct kr_secret *member,
					 enum kr_revoke_outcome *outcome, struct kr_error *err)
{
	struct kr_ks_target t = {0};
	struct kr_secret *copy;
	enum kr_status rc;

	if (!member || kr_secret_len(member) == 0)
		return kr_error_set(err, KR_EINVAL, "empty member");
	copy = kr_secret_new(kr_secret_data(member), kr_secret_len(member));
	if (!copy)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	rc = kr_ks_target_init(ks, copy, &t, err);
	if (rc == KR_OK)
		rc = kr_ks_revoke_target(ks, &t, outcome, err);
	kr_ks_target_release(&t);
	return rc;
}

enum kr_status kr_keystore_is_active(struct kr_keystore *ks, const struct kr_secret *key,
				     int *active, struct kr_error *err)
{
	struct kr_ks_target t;
	char what[300];
	redisReply *reply = NULL;
	enum kr_status rc;

	*active = 0;
	rc = kr_ks_target_for_key(ks, key, &t, err);
	if (rc != KR_OK)
		goto out;
	snprintf(what, sizeof(what), "SISMEMBER activeSet \"%s\"", ks->active_set);
	struct kr_ks_arg args[] = {kr_ks_str("SISMEMBER"), kr_ks_str(ks->active_set),
				   kr_ks_sec(t.member)};
	struct kr_ks_cmd cmd = {3, args, what};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		goto out;
	if (reply->type != REDIS_REPLY_INTEGER)
		rc = kr_ks_bad_reply(ks, what, err);
	else
		*active = reply->integer == 1;
out:
	kr_ks_reply_free(reply);
	kr_ks_target_release(&t);
	return rc;
}

enum kr_status kr_keystore_set_bootstrap(struct kr_keystore *ks, const char *id, int *changed,
					 struct kr_error *err)
{
	char what[320];
	redisReply *reply = NULL;
	enum kr_status rc;

	if (!kr_key_id_valid(id))
		return kr_error_set(err, KR_EINVAL,
				    "bootstrap marker: \"%s\" is not a key id "
				    "(12 hex digits)",
				    id ? id : "");
	snprintf(what, sizeof(what), "setting bootstrapKey \"%s\"", ks->bootstrap_key);
	struct kr_ks_arg args[] = {kr_ks_str("EVAL"), kr_ks_str(kr_lua_bootstrap), kr_ks_str("1"),
				   kr_ks_str(ks->bootstrap_key), kr_ks_str(id)};
	struct kr_ks_cmd cmd = {5, args, what};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		return rc;
	if (reply->type != REDIS_REPLY_INTEGER)
		rc = kr_ks_bad_reply(ks, what, err);
	else if (changed)
		*changed = reply->integer == 1;
	kr_ks_reply_free(reply);
	if (rc == KR_OK)
		rc = kr_ks_replicated(ks, what, err);
	return rc;
}

enum kr_status kr_keystore_get_bootstrap(struct kr_keystore *ks, char *out, size_t size,
					 struct kr_error *err)
{
	char what[320];
	redisReply *reply = NULL;
	enum kr_status rc;

	if (size)
		out[0] = '\0';
	snprintf(what, sizeof(what), "GET bootstrapKey \"%s\"", ks->bootstrap_key);
	struct kr_ks_arg args[] = {kr_ks_str("GET"), kr_ks_str(ks->bootstrap_key)};
	struct kr_ks_cmd cmd = {2, args, what};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		return rc;
	if (reply->type == REDIS_REPLY_STRING && size) {
		snprintf(out, size, "%.*s", (int)reply->len, reply->str);
		kr_text_sanitize(out); /* the server's text may reach a message */
	} else if (reply->type != REDIS_REPLY_NIL)
		rc = kr_ks_bad_reply(ks, what, err);
	kr_ks_reply_free(reply);
	return rc;
}
