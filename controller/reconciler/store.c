/* store.c - the key store of one reconcile: its settings, a pooled connection, what it holds. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "reconciler/internal.h"
#include "reconciler/store_conn.h"

/*
 * metadata.labels of Namespace `ns` (a copy, caller frees), or NULL when it cannot tell.
 * Read once per reconcile: the carry keeps them for the next steps.
 */
static cJSON *namespace_labels(struct kr_world *w)
{
	cJSON *obj = NULL, *labels = NULL;
	struct kr_error e = {0};

	if (w->carry && w->carry->ns_labels)
		return cJSON_Duplicate(w->carry->ns_labels, 1);
	if (kr_kube_get(w->client, &kr_kube_namespaces, NULL, w->ns, &obj, &e) != KR_OK) {
		kr_log_warn(w->log, "namespace %s: labels unknown: %s", w->ns, e.msg);
		return NULL;
	}
	labels = cJSON_Duplicate(kr_json_at(obj, (const char *[]){"metadata", "labels", NULL}), 1);
	if (!labels) /* none: an empty set, which {} and NotIn match */
		labels = cJSON_CreateObject();
	cJSON_Delete(obj);
	if (w->carry && labels)
		w->carry->ns_labels = cJSON_Duplicate(labels, 1);
	return labels;
}

void kr_world_resolve_store(struct kr_world *w)
{
	struct kr_rotation_spec *sp = &w->spec;
	bool cluster = sp->store_ref_kind == KR_STORE_REF_CLUSTER;
	const char *kind = kr_store_ref_kind_name(sp->store_ref_kind);
	cJSON *store = NULL, *labels = NULL;
	struct kr_error e = {0};
	char reason[64];

	if (sp->store_ref_kind == KR_STORE_INLINE) {
		if (!w->r->o.allow_inline_key_stores)
			kr_refuse(
			    &w->obs, "InlineKeyStoreNotAllowed",
			    "spec.keyStore: this controller does not honour inline key stores "
			    "(keyrotator run --allow-inline-key-stores): name an admin-written "
			    "KeyStore or ClusterKeyStore in spec.keyStoreRef");
		return;
	}
	kr_controller_workload_ref(w->store_ref, sizeof(w->store_ref), kind, cluster ? "" : w->ns,
				   sp->store_ref_name);
	if (w->r->ctl)
		kr_informer_get_text(kr_controller_informer(w->r->ctl, cluster
									   ? KR_SRC_CLUSTERKEYSTORES
									   : KR_SRC_KEYSTORES),
				     cluster ? "" : w->ns, sp->store_ref_name, &w->store_text);
	store = w->store_text ? cJSON_Parse(w->store_text) : NULL;
	if (!store) {
		kr_refuse(
		    &w->obs, "KeyStoreNotFound",
		    "spec.keyStoreRef: %s %s%s%s not found (an administrator creates it, with "
		    "role keyrotator-keystore-admin)",
		    kind, cluster ? "" : w->ns, cluster ? "" : "/", sp->store_ref_name);
		return;
	}
	if (cluster && kr_keystore_object_needs_labels(store, w->ns))
		labels = namespace_labels(w);
	if (kr_keystore_object_apply(sp, store, w->ns, w->name, labels,
				     w->r->o.controller_namespace, reason, &e) != KR_OK)
		kr_refuse(&w->obs, reason[0] ? reason : "KeyStoreInvalid", "spec.keyStoreRef: %s",
			  e.msg);
	cJSON_Delete(labels);
	cJSON_Delete(store);
}

/* kr_store_secret_fn for a KeyRotation: the author's Secrets opt in, an admin's need not. */
static enum kr_status store_secret(void *arg, const char *field, const char *ns,
				   const char *name, const char *key, size_t max_text,
				   struct kr_secret **out, struct kr_error *err)
{
	struct kr_world *w = arg;

	if (w->spec.store_ref_kind == KR_STORE_INLINE) /* the author named it: it must opt in */
		return kr_world_secret_ref(w, field, name, key, max_text, out, err);
	/* an admin named it in the KeyStore */
	return kr_world_secret_ref_admin(w, field, ns, name, key, max_text, out, err);
}

static enum kr_status store_open(struct kr_world *w, struct kr_error *err)
{
	struct kr_keystore_opts ko;
	struct kr_keystore_layout lay = {
	    .active_set = w->spec.store_active_set,
	    .meta_key = w->spec.store_meta_key,
	    .bootstrap_key = w->spec.store_bootstrap_key,
	    .store_as =
		w->spec.store_as == KR_ROT_STORE_PLAINTEXT ? KR_STORE_PLAINTEXT : KR_STORE_SHA256,
	};
	struct kr_store_creds creds;
	enum kr_status rc;

	kr_keystore_opts_init(&ko);
	/* field names as the author (spec.keyStore) or the admin (the KeyStore's spec) wrote */
	rc = kr_store_opts_fill(&w->spec, w->store_ref[0] ? "spec" : "spec.keyStore", true,
				store_secret, w, &ko, &creds, err);
	if (rc != KR_OK)
		return w->store_ref[0] ? kr_error_prefix(err, "%s: ", w->store_ref) : rc;
	if (w->r->o.keystore_timeout_ms > 0)
		ko.connect_timeout_ms = ko.command_timeout_ms = (int)w->r->o.keystore_timeout_ms;
	rc = kr_keystore_new(&ko, &lay, &w->ks, err);
	kr_store_creds_release(&creds);
	if (rc != KR_OK && w->store_ref[0])
		kr_error_prefix(err, "%s: ", w->store_ref);
	return rc;
}

/*
 * The key store, asked about the raw keys this KeyRotation holds (consumers' Secret,
 * rotation Secret): membership, metadata, last use; plus the marker and how many members
 * activeSet has. An id the decision knows only from status (no Secret holds its key) is
 * not listed, so it counts as not active (rotation.h: struct kr_observed_keystore).
 */
static void store_fill(struct kr_world *w, const struct kr_secret *const *keys, size_t n,
		       const struct kr_key_state *states, const struct kr_store_state *st)
{
	struct kr_observed_keystore *s = &w->obs.store;
	const char *old = w->obs.status.current_key.id[0] ? w->obs.status.current_key.id
							  : w->obs.rsecret.previous_id;
	long long ours = 0;

	for (size_t i = 0; i < n && s->n_keys < KR_OBSERVED_STORE_KEYS; i++) {
		struct kr_observed_store_key *k = &s->keys[s->n_keys++];

		kr_key_id(keys[i], k->id);
		k->active = states[i].active;
		k->has_meta = states[i].meta_active;
		ours += states[i].active;
		if (old[0] && !strcmp(k->id, old) && states[i].last_used_at[0] &&
		    kr_time_parse_rfc3339(states[i].last_used_at, &w->obs.old_key_last_used_at,
					  NULL) == KR_OK)
			w->obs.old_key_usage_known = true;
	}
	s->unknown_members = st->active_members > ours ? (int)(st->active_members - ours) : 0;
	snprintf(s->marker, sizeof(s->marker), "%s", st->marker);
	s->has_marker = s->marker[0] != '\0';
}

/* The distinct raw keys among the consumers' key, pending and previous. */
static size_t our_keys(const struct kr_world *w, const struct kr_secret *keys[3])
{
	const struct kr_secret *all[] = {w->consumer_key, w->pending, w->previous};
	size_t n = 0;

	for (size_t i = 0; i < 3; i++) {
		bool dup = !all[i];

		for (size_t k = 0; k < n && !dup; k++)
			dup = kr_secret_equal(keys[k], all[i]);
		if (!dup)
			keys[n++] = all[i];
	}
	return n;
}

void kr_world_observe_store(struct kr_world *w)
{
	struct kr_observed_keystore *s = &w->obs.store;
	const struct kr_secret *keys[3];
	struct kr_key_state states[3];
	struct kr_store_state st;
	struct kr_error e = {0};
	size_t n = our_keys(w, keys);
	enum kr_status rc;

	rc = store_open(w, &e);
	if (rc == KR_OK) {
		w->conn = kr_keystore_pool_get(w->ks);
		rc = kr_keystore_inspect(w->conn, keys, n, states, &st, &e);
	}
	if (rc != KR_OK) {
		s->reachable = false;
		snprintf(s->error, sizeof(s->error), "%s", e.msg);
		return;
	}
	s->reachable = true;
	store_fill(w, keys, n, states, &st);
}
