/* list.c - listing the keys a store knows, and finding a member by key id. */
#include "keystore/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KR_LIST_BATCH 64

/* Members found in activeSet or through metadata key names; wiped on release. */
struct kr_ks_members {
	struct kr_secret **v;
	int *active;
	size_t n, cap;
};

static void kr_ks_members_release(struct kr_ks_members *m)
{
	for (size_t i = 0; i < m->n; i++)
		kr_secret_free(m->v[i]);
	free(m->v);
	free(m->active);
	memset(m, 0, sizeof(*m));
}

static enum kr_status kr_ks_members_add(struct kr_ks_members *m, const char *data, size_t len,
					int active)
{
	for (size_t i = 0; i < m->n; i++) {
		if (kr_secret_len(m->v[i]) == len && !memcmp(kr_secret_data(m->v[i]), data, len)) {
			m->active[i] |= active;
			return KR_OK;
		}
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct kr_secret **v = realloc(m->v, cap * sizeof(*v));
		int *a;

		if (!v)
			return KR_ENOMEM;
		m->v = v;
		a = realloc(m->active, cap * sizeof(*a));
		if (!a)
			return KR_ENOMEM;
		m->active = a;
		m->cap = cap;
	}
	m->v[m->n] = kr_secret_new(data, len);
	if (!m->v[m->n])
		return KR_ENOMEM;
	m->active[m->n++] = active;
	return KR_OK;
}

/* Add the names of one SSCAN/SCAN page; for SCAN, names are metadata keys. */
static enum kr_status kr_ks_members_page(struct kr_keystore *ks, const redisReply *names,
					 int from_set, struct kr_ks_members *m)
{
	enum kr_status rc = KR_OK;

	for (size_t i = 0; i < names->elements && rc == KR_OK; i++) {
		const redisReply *e = names->element[i];
		size_t off, len;

		if (e->type != REDIS_REPLY_STRING)
			continue;
		if (from_set)
			rc = kr_ks_members_add(m, e->str, e->len, 1);
		else if (kr_ks_meta_key_member(&ks->layout, e->str, e->len, &off, &len))
			rc = kr_ks_members_add(m, e->str + off, len, 0);
	}
	return rc;
}

/* Walk activeSet (SSCAN) or the metadata keys (SCAN MATCH) page by page. */
static enum kr_status kr_ks_scan(struct kr_keystore *ks, int from_set, struct kr_ks_members *m,
				 struct kr_error *err)
{
	char cursor[32] = "0", what[320];
	struct kr_buf pattern;
	enum kr_status rc;

	kr_buf_init(&pattern);
	rc = kr_ks_meta_pattern(&ks->layout, &pattern);
	if (from_set)
		snprintf(what, sizeof(what), "SSCAN activeSet \"%s\"", ks->active_set);
	else
		snprintf(what, sizeof(what), "SCAN MATCH \"%s\"", pattern.data);
	do {
		struct kr_ks_arg sargs[] = {kr_ks_str("SSCAN"), kr_ks_str(ks->active_set),
					    kr_ks_str(cursor), kr_ks_str("COUNT"),
					    kr_ks_str("200")};
		struct kr_ks_arg kargs[] = {kr_ks_str("SCAN"),	kr_ks_str(cursor),
					    kr_ks_str("MATCH"), kr_ks_str(pattern.data),
					    kr_ks_str("COUNT"), kr_ks_str("500")};
		struct kr_ks_cmd cmd = {from_set ? 5 : 6, from_set ? sargs : kargs, what};
		redisReply *reply = NULL;

		if (rc == KR_OK)
			rc = kr_ks_call(ks, &cmd, &reply, err);
		if (rc != KR_OK)
			break;
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
		    reply->element[0]->type != REDIS_REPLY_STRING ||
		    reply->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = kr_error_set(err, KR_EPROTO, "%s: %s: unexpected reply", ks->server,
					  what);
		} else {
			snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
			rc = kr_ks_members_page(ks, reply->element[1], from_set, m);
			if (rc != KR_OK)
				kr_error_set(err, rc, "out of memory");
		}
		kr_ks_reply_free(reply);
	} while (rc == KR_OK && strcmp(cursor, "0") != 0);
	kr_buf_release(&pattern);
	return rc;
}

static enum kr_status kr_ks_collect(struct kr_keystore *ks, struct kr_ks_members *m,
				    struct kr_error *err)
{
	enum kr_status rc = kr_ks_scan(ks, 1, m, err);

	if (rc == KR_OK)
		rc = kr_ks_scan(ks, 0, m, err);
	return rc;
}

static void kr_key_info_release(struct kr_key_info *info)
{
	free(info->status);
	free(info->label);
	free(info->rotation);
	free(info->created_at);
	free(info->revoked_at);
	free(info->last_used_at);
}

void kr_key_info_free_array(struct kr_key_info *infos, size_t n)
{
	if (!infos)
		return;
	for (size_t i = 0; i < n; i++)
		kr_key_info_release(&infos[i]);
	free(infos);
}

/* Copy the fields we show out of an HGETALL reply. */
static enum kr_status kr_ks_info_fill(struct kr_key_info *info, const redisReply *h)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
	    {"status", offsetof(struct kr_key_info, status)},
	    {"label", offsetof(struct kr_key_info, label)},
	    {"rotation", offsetof(struct kr_key_info, rotation)},
	    {"created_at", offsetof(struct kr_key_info, created_at)},
	    {"revoked_at", offsetof(struct kr_key_info, revoked_at)},
	    {"last_used_at", offsetof(struct kr_key_info, last_used_at)},
	};

	if (h->type != REDIS_REPLY_ARRAY)
		return KR_OK; /* not a hash (someone else's key matching the pattern) */
	info->has_meta = h->elements > 0;
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		const redisReply *k = h->element[i], *v = h->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			char **slot = (char **)((char *)info + fields[f].off);

			if (strcmp(k->str, fields[f].name) || *slot)
				continue;
			*slot = strndup(v->str, v->len);
			if (!*slot)
				return KR_ENOMEM;
		}
	}
	return KR_OK;
}

/* HGETALL the metadata of members [from, to) in one pipeline. */
static enum kr_status kr_ks_list_batch(struct kr_keystore *ks, const struct kr_ks_members *m,
				       size_t from, size_t to, struct kr_key_info *infos,
				       struct kr_error *err)
{
	struct kr_secret *names[KR_LIST_BATCH] = {0};
	struct kr_ks_arg args[KR_LIST_BATCH][2];
	struct kr_ks_cmd cmds[KR_LIST_BATCH] = {0};
	redisReply *replies[KR_LIST_BATCH] = {0};
	size_t n = to - from;
	enum kr_status rc = KR_OK;

	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		const struct kr_secret *mem = m->v[from + i];

		rc = kr_ks_meta_key(&ks->layout, kr_secret_data(mem), kr_secret_len(mem), &names[i],
				    err);
		args[i][0] = kr_ks_str("HGETALL");
		args[i][1] = names[i] ? kr_ks_sec(names[i]) : kr_ks_str("");
		cmds[i] = (struct kr_ks_cmd){2, args[i], "HGETALL metadata"};
	}
	if (rc == KR_OK)
		rc = kr_ks_pipeline(ks, cmds, n, replies, err);
	for (size_t i = 0; i < n && rc == KR_OK; i++) {
		struct kr_key_info *info = &infos[from + i];
		const struct kr_secret *mem = m->v[from + i];

		kr_ks_member_id(&ks->layout, kr_secret_data(mem), kr_secret_len(mem), info->id);
		info->active = m->active[from + i];
		if (kr_ks_info_fill(info, replies[i]) != KR_OK)
			rc = kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		kr_ks_reply_free(replies[i]);
		kr_secret_free(names[i]);
	}
	return rc;
}

static int kr_key_info_cmp(const void *a, const void *b)
{
	const struct kr_key_info *x = a, *y = b;
	int c = strcmp(x->created_at ? x->created_at : "", y->created_at ? y->created_at : "");

	return c ? c : strcmp(x->id, y->id);
}

enum kr_status kr_keystore_list(struct kr_keystore *ks, struct kr_key_info **out, size_t *n,
				struct kr_error *err)
{
	struct kr_ks_members m = {0};
	struct kr_key_info *infos = NULL;
	enum kr_status rc;

	*out = NULL;
	*n = 0;
	rc = kr_ks_collect(ks, &m, err);
	if (rc != KR_OK || m.n == 0)
		goto out;
	infos = calloc(m.n, sizeof(*infos));
	if (!infos) {
		rc = kr_error_set(err, KR_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t from = 0; from < m.n && rc == KR_OK; from += KR_LIST_BATCH) {
		size_t to = from + KR_LIST_BATCH < m.n ? from + KR_LIST_BATCH : m.n;

		rc = kr_ks_list_batch(ks, &m, from, to, infos, err);
	}
	if (rc != KR_OK) {
		kr_key_info_free_array(infos, m.n);
		goto out;
	}
	qsort(infos, m.n, sizeof(*infos), kr_key_info_cmp);
	*out = infos;
	*n = m.n;
out:
	kr_ks_members_release(&m);
	return rc;
}

enum kr_status kr_keystore_find_member(struct kr_keystore *ks, const char *id,
				       struct kr_secret **member, struct kr_error *err)
{
	struct kr_ks_members m = {0};
	size_t found = 0, at = 0;
	enum kr_status rc;

	*member = NULL;
	if (!kr_key_id_valid(id))
		return kr_error_set(err, KR_EINVAL, "\"%s\" is not a key id (12 hex digits)",
				    id ? id : "");
	rc = kr_ks_collect(ks, &m, err);
	for (size_t i = 0; i < m.n && rc == KR_OK; i++) {
		char mid[KR_KEY_ID_LEN + 1];

		kr_ks_member_id(&ks->layout, kr_secret_data(m.v[i]), kr_secret_len(m.v[i]), mid);
		if (!strcmp(mid, id)) {
			found++;
			at = i;
		}
	}
	if (rc == KR_OK && found == 0)
		rc = kr_error_set(err, KR_ENOTFOUND,
				  "%s: no key with id %s in activeSet \"%s\" or "
				  "its metadata",
				  ks->server, id, ks->active_set);
	else if (rc == KR_OK && found > 1)
		rc = kr_error_set(err, KR_ECONFLICT, "%s: %zu keys have id %s; name the key itself",
				  ks->server, found, id);
	if (rc == KR_OK) {
		*member = m.v[at];
		m.v[at] = NULL;
	}
	kr_ks_members_release(&m);
	return rc;
}
