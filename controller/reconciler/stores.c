/* stores.c - the status of KeyStores and ClusterKeyStores: valid, answering, how many use them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"
#include "reconciler/store_conn.h"
#include "rotation/schedule.h"

/*
 * One pass over the cached stores, run by a worker as the queue key KR_STORES_KEY (so only
 * the leader writes, with a worker's client, and no extra thread): for each store, is its
 * spec valid, does its server answer (a PING without credentials: NOAUTH is an answer; the
 * password is the KeyRotations' to use; the Secrets of its TLS settings and sentinels are
 * read, as the connection needs them; with sentinels `master` says which server they name),
 * how many KeyRotations
 * name it (the reverse index). Its /status is patched only when that changed since the
 * last write (kept in r->store_memo), so a quiet cluster costs no API request. A store the
 * memo does not know yet (the first pass after a start, a new store) or whose status
 * changed is read first: a stored status that says the same already is not written again
 * (a restarted controller writes nothing), and a Ready condition that keeps its status
 * keeps its lastTransitionTime.
 */

static void count_owner(void *arg, const char *owner)
{
	(void)owner;
	(*(long *)arg)++;
}

/* kr_store_secret_fn for the probe: the Secrets an administrator's store names. */
static enum kr_status probe_secret(void *arg, const char *field, const char *ns, const char *name,
				   const char *key, size_t max_text, struct kr_secret **out,
				   struct kr_error *err)
{
	cJSON *sec = NULL;
	enum kr_status rc;

	*out = NULL;
	if (!name)
		return KR_OK;
	rc = kr_kube_get(arg, &kr_kube_secrets, ns, name, &sec, err); /* before `sec` is passed */
	return kr_secret_ref_value(rc, sec, field, ns, name, key, max_text, out, err);
}

/*
 * Does the store's server answer? "" when yes, else why not (into `why`). With sentinels,
 * `master` gets the master they name ("" when none answered).
 */
static void probe(struct kr_reconciler *r, struct kr_kube_client *client,
		  const struct kr_rotation_spec *spec, char *why, size_t size, char *master,
		  size_t msize)
{
	struct kr_keystore_opts ko;
	struct kr_keystore_layout lay;
	struct kr_keystore *ks = NULL;
	struct kr_store_creds creds;
	struct kr_error e = {0};
	enum kr_status rc;

	why[0] = master[0] = '\0';
	kr_keystore_opts_init(&ko);
	kr_keystore_layout_init_defaults(&lay);
	rc = kr_store_opts_fill(spec, "spec", false, probe_secret, client, &ko, &creds, &e);
	if (r->o.keystore_timeout_ms > 0)
		ko.connect_timeout_ms = ko.command_timeout_ms = (int)r->o.keystore_timeout_ms;
	if (rc == KR_OK)
		rc = kr_keystore_new(&ko, &lay, &ks, &e);
	kr_store_creds_release(&creds);
	if (rc == KR_OK)
		rc = kr_keystore_ping(ks, &e);
	if (ks)
		snprintf(master, msize, "%s", kr_keystore_master(ks));
	kr_keystore_free(ks);
	if (rc != KR_OK && rc != KR_EAUTH) /* NOAUTH: it answered, it wants a password */
		snprintf(why, size, "%s", e.msg);
}

/* The status the store should have, without times (what the memo compares). */
static cJSON *store_status(struct kr_reconciler *r, struct kr_kube_client *client, const char *ns,
			   const char *ref, const cJSON *proj, bool cluster)
{
	cJSON *st = cJSON_CreateObject(), *conds, *c;
	struct kr_rotation_spec spec;
	struct kr_error e = {0};
	char why[KR_ERROR_MSG_MAX] = "", master[300] = "";
	long users = 0;
	const char *reason = "Ready";

	if (kr_keystore_object_decode(proj, cluster, ns, r->o.controller_namespace, &spec, &e) !=
	    KR_OK) {
		reason = "Invalid";
		snprintf(why, sizeof(why), "%s", e.msg);
	} else {
		probe(r, client, &spec, why, sizeof(why), master, sizeof(master));
		if (why[0])
			reason = "Unreachable";
		kr_rotation_spec_release(&spec);
	}
	kr_refindex_lookup(kr_controller_refindex(r->ctl), ref, count_owner, &users);
	cJSON_AddNumberToObject(st, "observedGeneration",
				kr_json_num(proj, (const char *[]){"generation", NULL}, 0));
	cJSON_AddNumberToObject(st, "keyRotations", (double)users);
	if (master[0])
		cJSON_AddStringToObject(st, "master", master);
	conds = cJSON_AddArrayToObject(st, "conditions");
	c = cJSON_CreateObject();
	cJSON_AddItemToArray(conds, c);
	cJSON_AddStringToObject(c, "type", "Ready");
	cJSON_AddStringToObject(c, "status", why[0] ? "False" : "True");
	cJSON_AddStringToObject(c, "reason", reason);
	cJSON_AddStringToObject(c, "message",
				why[0] ? why : "the spec is valid and the server answers");
	return st;
}

/* The store's status as stored now (a copy, caller frees), or NULL when it has none or it
 * cannot be read (then it is written). */
static cJSON *stored_status(struct kr_kube_client *client, bool cluster, const char *ns,
			    const char *name)
{
	cJSON *obj = NULL, *st;
	struct kr_error e = {0};
	enum kr_status rc;

	/* Each resource named where it is used (tests/security/test_rbac_needs.py reads them). */
	rc = cluster ? kr_kube_get(client, &kr_kube_clusterkeystores, NULL, name, &obj, &e)
		     : kr_kube_get(client, &kr_kube_keystores, ns, name, &obj, &e);
	if (rc != KR_OK)
		return NULL;
	st = cJSON_DetachItemFromObjectCaseSensitive(obj, "status");
	cJSON_Delete(obj);
	return st;
}

/* Does `stored` say what `st` says (the same members, times aside)? */
static bool status_same(const cJSON *stored, const cJSON *st)
{
	cJSON *cmp = cJSON_CreateObject(), *c;
	const cJSON *it;
	bool same;

	cJSON_ArrayForEach(it, st)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, it->string);

		if (v)
			cJSON_AddItemToObject(cmp, it->string, cJSON_Duplicate(v, 1));
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cmp, "conditions"))
	    cJSON_DeleteItemFromObjectCaseSensitive(c, "lastTransitionTime");
	same = cJSON_Compare(cmp, st, true);
	cJSON_Delete(cmp);
	return same;
}

/* When condition `type` last changed status: `stored`'s time when its status is `status`
 * there too, else NULL (it changes now). */
static const char *transition_time(const cJSON *stored, const char *type, const char *status)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(stored, "conditions"))
	{
		const char *t = kr_json_str(c, (const char *[]){"type", NULL});
		const char *s = kr_json_str(c, (const char *[]){"status", NULL});

		if (t && s && !strcmp(t, type) && !strcmp(s, status))
			return kr_json_str(c, (const char *[]){"lastTransitionTime", NULL});
	}
	return NULL;
}

/* Patch /status with `st` plus the times (`stored`: the status it replaces, may be NULL);
 * KR_OK or why not. */
static enum kr_status write_status(struct kr_kube_client *client, bool cluster, const char *ns,
				   const char *name, cJSON *st, const cJSON *stored, time_t now,
				   struct kr_error *err)
{
	char ts[KR_RFC3339_BUFSZ];
	cJSON *body = cJSON_CreateObject(), *c;
	char *text;
	enum kr_status rc;

	kr_time_format_rfc3339(now, ts, sizeof(ts));
	cJSON_AddItemToObject(body, "status", cJSON_Duplicate(st, 1));
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(body, "status"), "lastCheckTime",
				ts);
	cJSON_ArrayForEach(c, kr_json_at(body, (const char *[]){"status", "conditions", NULL}))
	{
		const char *type = kr_json_str(c, (const char *[]){"type", NULL});
		const char *status = kr_json_str(c, (const char *[]){"status", NULL});
		const char *since = type && status ? transition_time(stored, type, status) : NULL;

		cJSON_AddStringToObject(c, "lastTransitionTime", since ? since : ts);
	}
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!text)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	/* Each resource named where it is used (tests/security/test_rbac_needs.py reads them). */
	rc = cluster ? kr_kube_patch(client, &kr_kube_clusterkeystores, NULL, name, "status",
				     KR_KUBE_PATCH_MERGE, text, NULL, err)
		     : kr_kube_patch(client, &kr_kube_keystores, ns, name, "status",
				     KR_KUBE_PATCH_MERGE, text, NULL, err);
	free(text);
	return rc;
}

/* Owners are queue keys ("ns/name"): a full reconcile, not a skip on an unchanged cache. */
static void enqueue_owner(void *arg, const char *owner)
{
	struct kr_reconciler *r = arg;

	kr_idle_forget(r, owner);
	kr_workqueue_add(kr_controller_queue(r->ctl), owner);
}

/*
 * A store whose sentinels name another master than at the last pass has failed over: its
 * KeyRotations are reconciled now, so that keys the failover lost are re-seeded at once
 * rather than at their next key store check.
 */
static void failover_wake(struct kr_reconciler *r, const char *ref, const char *before,
			  const cJSON *st, const struct kr_log_ctx *log)
{
	cJSON *old = before ? cJSON_Parse(before) : NULL;
	const char *was = kr_json_str(old, (const char *[]){"master", NULL});
	const char *now = kr_json_str(st, (const char *[]){"master", NULL});

	if (was && now && strcmp(was, now) != 0) {
		kr_log_info(log, "%s: the sentinels name master %s (was %s): reconciling its users",
			    ref, now, was);
		kr_refindex_lookup(kr_controller_refindex(r->ctl), ref, enqueue_owner, r);
	}
	cJSON_Delete(old);
}

/* keyrotator_keystore_up: 1 while the status computed now says Ready=True. */
static void store_up_metric(struct kr_reconciler *r, const char *kind, const char *ns,
			    const char *name, const cJSON *st)
{
	const cJSON *c;
	bool up = false;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "conditions"))
	{
		const char *t = kr_json_str(c, (const char *[]){"type", NULL});
		const char *v = kr_json_str(c, (const char *[]){"status", NULL});

		if (t && v && !strcmp(t, "Ready"))
			up = !strcmp(v, "True");
	}
	kr_gauge_set(r->fam.keystore_up, KR_LV(kind, ns, name), up ? 1 : 0);
}

/* A store gone since the last pass: its series goes too (memo keys are "Kind/ns/name"). */
static void store_gone(void *arg, const char *ref, void *val)
{
	struct kr_smap *seen = ((void **)arg)[0];
	struct kr_reconciler *r = ((void **)arg)[1];
	char kind[64], ns[256];
	const char *a = strchr(ref, '/'), *b = a ? strchr(a + 1, '/') : NULL;

	(void)val;
	if (!b || kr_smap_find(seen, ref) || (size_t)(a - ref) >= sizeof(kind) ||
	    (size_t)(b - a - 1) >= sizeof(ns))
		return;
	snprintf(kind, sizeof(kind), "%.*s", (int)(a - ref), ref);
	snprintf(ns, sizeof(ns), "%.*s", (int)(b - a - 1), a + 1);
	kr_metric_delete(r->fam.keystore_up, KR_LV(kind, ns, b + 1));
}

static void pass_kind(struct kr_reconciler *r, struct kr_kube_client *client,
		      enum kr_source k, struct kr_smap *seen, const struct kr_log_ctx *log)
{
	bool cluster = k == KR_SRC_CLUSTERKEYSTORES;
	const struct kr_kube_resource *res =
	    cluster ? &kr_kube_clusterkeystores : &kr_kube_keystores;
	cJSON *snap = kr_informer_snapshot(kr_controller_informer(r->ctl, k));
	const cJSON *it;

	cJSON_ArrayForEach(it, snap)
	{
		char ns[256], ref[600], *now_text;
		const char *name = kr_controller_split_key(it->string, ns, sizeof(ns));
		cJSON *proj = cJSON_IsString(it) ? cJSON_Parse(it->valuestring) : NULL;
		cJSON *st;
		struct kr_smap_entry *memo;
		struct kr_error e = {0};

		kr_controller_workload_ref(ref, sizeof(ref), res->kind, ns, name);
		st = store_status(r, client, ns, ref, proj, cluster);
		store_up_metric(r, res->kind, ns, name, st);
		now_text = cJSON_PrintUnformatted(st);
		memo = kr_smap_find(&r->store_memo, ref);
		if (memo)
			failover_wake(r, ref, memo->val, st, log);
		if (now_text && (!memo || !memo->val || strcmp(memo->val, now_text) != 0)) {
			cJSON *stored = stored_status(client, cluster, ns, name);

			/* Stored as it is already (by an earlier run): the memo just learns it. */
			if (!stored || !status_same(stored, st)) {
				if (write_status(client, cluster, ns, name, st, stored,
						 kr_reconciler_now(r), &e) == KR_OK)
					kr_log_info(log, "%s: status %s", ref, now_text);
				else if (e.code != KR_ENOTFOUND)
					kr_log_warn(log, "%s: status not written: %s", ref, e.msg);
			}
			cJSON_Delete(stored);
			if (e.code != KR_OK) { /* try again next pass */
				free(now_text);
				now_text = NULL;
			}
		} else if (memo) { /* unchanged: keep the memo's text */
			free(now_text);
			now_text = memo->val ? strdup(memo->val) : NULL;
		}
		if (now_text) {
			struct kr_smap_entry *en = kr_smap_upsert(seen, ref);

			if (en) {
				free(en->val);
				en->val = now_text;
			} else {
				free(now_text);
			}
		}
		cJSON_Delete(st);
		cJSON_Delete(proj);
	}
	cJSON_Delete(snap);
}

static void memo_free(void *val)
{
	free(val);
}

bool kr_stores_is_key(const char *ns, const char *name)
{
	return !ns[0] && strcmp(name, KR_STORES_KEY) == 0;
}

void kr_stores_pass(struct kr_reconciler *r, struct kr_kube_client *client,
		    struct kr_reconcile_result *res)
{
	struct kr_smap seen = {.drop = memo_free};

	pass_kind(r, client, KR_SRC_KEYSTORES, &seen, res->log);
	pass_kind(r, client, KR_SRC_CLUSTERKEYSTORES, &seen, res->log);
	r->store_memo.drop = memo_free;
	kr_smap_each(&r->store_memo, store_gone, (void *[]){&seen, r});
	kr_smap_release(&r->store_memo); /* stores gone since: forgotten */
	r->store_memo = seen;
	res->requeue_after_ms = r->o.keystore_check_ms;
}
