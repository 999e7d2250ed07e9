/* reconcile.c - make the store match the keys that must be active (the runbooks' restart repair).
 */
#include "keystore/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * KEYS: activeSet, bootstrapKey, metaKey per key. ARGV: now, current id ('' = leave the
 * marker), rotation ('' = none), then member, id per key.
 * Returns {marker_fixed, unknown_members, added_1, fields_1, added_2, fields_2, ...}.
 */
static const char kr_lua_reconcile[] =
    KR_LUA_CHECK_SET("KEYS[1]") "if ARGV[2] ~= '' then\n" KR_LUA_CHECK_STRING(
	"KEYS[2]") "end\n"
		   "local n = #KEYS - 2\n"
		   "for i = 1, n do\n" KR_LUA_CHECK_HASH(
		       "KEYS[i + 2]",
		       "ARGV[3 + 2 * i]") "end\n"
					  "local out = {0, 0}\n"
					  "for i = 1, n do\n"
					  "  local mk, id = KEYS[i + 2], ARGV[3 + 2 * i]\n"
					  "  local added = redis.call('SADD', KEYS[1], ARGV[2 + 2 "
					  "* i])\n"
					  "  local h = redis.call('HMGET', mk, 'id', 'created_at', "
					  "'status', 'revoked_at', "
					  "'rotation')\n"
					  "  local f = 0\n"
					  "  if h[1] ~= id then redis.call('HSET', mk, 'id', id); "
					  "f = f + 1 end\n"
					  "  if not h[2] then redis.call('HSET', mk, 'created_at', "
					  "ARGV[1]); f = f + 2 end\n"
					  "  if h[3] ~= 'active' then redis.call('HSET', mk, "
					  "'status', 'active'); f = f + 4 end\n"
					  "  if h[4] then redis.call('HDEL', mk, 'revoked_at'); f "
					  "= f + 8 end\n"
					  "  if not h[5] and ARGV[3] ~= '' then\n"
					  "    redis.call('HSET', mk, 'rotation', ARGV[3]); f = f "
					  "+ 16\n"
					  "  end\n"
					  "  out[#out + 1] = added\n"
					  "  out[#out + 1] = f\n"
					  "end\n"
					  "if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= "
					  "ARGV[2] then\n"
					  "  redis.call('SET', KEYS[2], ARGV[2]); out[1] = 1\n"
					  "end\n"
					  "out[2] = redis.call('SCARD', KEYS[1]) - n\n"
					  "return out\n";

struct kr_rc_state {
	struct kr_secret **members;
	struct kr_secret **meta_keys;
	char (*ids)[KR_KEY_ID_LEN + 1];
	size_t m; /* distinct keys */
	struct kr_ks_arg *args;
	size_t argc;
	char numkeys[24];
};

static void kr_rc_state_release(struct kr_rc_state *s)
{
	for (size_t i = 0; i < s->m; i++) {
		kr_secret_free(s->members[i]);
		kr_secret_free(s->meta_keys[i]);
	}
	free(s->members);
	free(s->meta_keys);
	free(s->ids);
	free(s->args);
}

static int kr_rc_seen(const struct kr_rc_state *s, const struct kr_secret *member)
{
	for (size_t i = 0; i < s->m; i++)
		if (kr_secret_equal(s->members[i], member))
			return 1;
	return 0;
}

/* Members, metadata keys and ids of the distinct keys given. */
static enum kr_status kr_rc_targets(struct kr_keystore *ks, const struct kr_secret *const *keys,
				    size_t n, struct kr_rc_state *s, struct kr_error *err)
{
	enum kr_status rc = KR_OK;

	s->members = calloc(n + 1, sizeof(*s->members));
	s->meta_keys = calloc(n + 1, sizeof(*s->meta_keys));
	s->ids = calloc(n + 1, sizeof(*s->ids));
	if (!s->members || !s->meta_keys || !s->ids)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		struct kr_secret *member = NULL, *meta = NULL;

		if (!keys[i] || !kr_secret_len(keys[i]))
			return kr_error_set(err, KR_EINVAL, "reconcile: key %zu is empty", i + 1);
		rc = kr_ks_member(&ks->layout, keys[i], &member, err);
		if (rc != KR_OK)
			break;
		if (kr_rc_seen(s, member)) {
			kr_secret_free(member);
			continue;
		}
		rc = kr_ks_meta_key(&ks->layout, kr_secret_data(member), kr_secret_len(member),
				    &meta, err);
		s->members[s->m] = member;
		s->meta_keys[s->m] = meta;
		kr_key_id(keys[i], s->ids[s->m]);
		s->m++;
	}
	return rc;
}

static enum kr_status kr_rc_args(struct kr_keystore *ks, struct kr_rc_state *s, const char *now,
				 const char *current_id, const char *rotation, struct kr_error *err)
{
	size_t k = 0;

	s->args = calloc(8 + 3 * s->m, sizeof(*s->args));
	if (!s->args)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	snprintf(s->numkeys, sizeof(s->numkeys), "%zu", s->m + 2);
	s->args[k++] = kr_ks_str("EVAL");
	s->args[k++] = kr_ks_str(kr_lua_reconcile);
	s->args[k++] = kr_ks_str(s->numkeys);
	s->args[k++] = kr_ks_str(ks->active_set);
	s->args[k++] = kr_ks_str(ks->bootstrap_key);
	for (size_t i = 0; i < s->m; i++)
		s->args[k++] = kr_ks_sec(s->meta_keys[i]);
	s->args[k++] = kr_ks_str(now);
	s->args[k++] = kr_ks_str(current_id ? current_id : "");
	s->args[k++] = kr_ks_str(rotation ? rotation : "");
	for (size_t i = 0; i < s->m; i++) {
		s->args[k++] = kr_ks_sec(s->members[i]);
		s->args[k++] = kr_ks_str(s->ids[i]);
	}
	s->argc = k;
	return KR_OK;
}

static enum kr_status kr_rc_report(struct kr_keystore *ks, const struct kr_rc_state *s,
				   const redisReply *reply, struct kr_keystore_repair *report,
				   struct kr_error *err)
{
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 + 2 * s->m)
		return kr_error_set(err, KR_EPROTO, "%s: reconcile: unexpected reply", ks->server);
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type != REDIS_REPLY_INTEGER)
			return kr_error_set(err, KR_EPROTO, "%s: reconcile: unexpected reply",
					    ks->server);
	kr_keystore_repair_release(report);
	report->items = calloc(s->m + 1, sizeof(*report->items));
	if (!report->items)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	report->n = s->m;
	report->marker_fixed = reply->element[0]->integer == 1;
	report->unknown_members = reply->element[1]->integer;
	for (size_t i = 0; i < s->m; i++) {
		memcpy(report->items[i].id, s->ids[i], sizeof(report->items[i].id));
		report->items[i].readded = reply->element[2 + 2 * i]->integer == 1;
		report->items[i].fields = (unsigned)reply->element[3 + 2 * i]->integer;
	}
	return KR_OK;
}

enum kr_status kr_keystore_reconcile(struct kr_keystore *ks, const struct kr_secret *const *keys,
				     size_t n, const char *current_id, const char *rotation,
				     struct kr_keystore_repair *report, struct kr_error *err)
{
	struct kr_rc_state s = {0};
	redisReply *reply = NULL;
	char now[21];
	enum kr_status rc;

	if (current_id && !kr_key_id_valid(current_id))
		return kr_error_set(err, KR_EINVAL, "reconcile: current id \"%s\" is not a key id",
				    current_id);
	kr_keystore_now(now);
	rc = kr_rc_targets(ks, keys, n, &s, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_rc_args(ks, &s, now, current_id, rotation, err);
	if (rc != KR_OK)
		goto out;
	struct kr_ks_cmd cmd = {s.argc, s.args, "reconciling the key store"};
	rc = kr_ks_call(ks, &cmd, &reply, err);
	if (rc != KR_OK)
		goto out;
	rc = kr_rc_report(ks, &s, reply, report, err);
	if (rc == KR_OK && kr_keystore_repair_count(report) > 0)
		rc = kr_ks_replicated(ks, "reconciling the key store", err);
out:
	kr_ks_reply_free(reply);
	kr_rc_state_release(&s);
	return rc;
}
