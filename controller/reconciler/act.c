/* act.c - carry out the one action the decision chose: Secrets, key store, workloads, HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

static const struct kr_kube_resource *workload_resource(enum kr_workload_kind kind)
{
	switch (kind) {
	case KR_WORKLOAD_STATEFULSET:
		return &kr_kube_statefulsets;
	case KR_WORKLOAD_DAEMONSET:
		return &kr_kube_daemonsets;
	default:
		return &kr_kube_deployments;
	}
}

enum kr_status kr_world_fenced(struct kr_world *w, struct kr_error *err)
{
	if (w->r->ctl && !kr_controller_may_write(w->r->ctl))
		return kr_error_set(err, KR_ESTATE, "not the leader any more: no write");
	return KR_OK;
}

/* ---- Secrets ---- */

/*
 * A new Secret object ns/name with keyrotator's labels. `owned`: `<name>-rotation`, whose
 * owner is the KeyRotation (observe uses it only with that owner reference). Else the
 * consumers' Secret, which gets the opt-in annotation naming this KeyRotation: observe
 * uses it only with that (design.md §1b). `<name>-rotation` never gets the annotation, so
 * it can never pass as an opted-in credential Secret.
 */
static cJSON *secret_new(struct kr_world *w, const char *name, bool owned)
{
	cJSON *s = cJSON_CreateObject(), *meta, *labels, *notes, *refs, *ref;

	cJSON_AddStringToObject(s, "apiVersion", "v1");
	cJSON_AddStringToObject(s, "kind", "Secret");
	meta = cJSON_AddObjectToObject(s, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	cJSON_AddStringToObject(meta, "namespace", w->ns);
	labels = cJSON_AddObjectToObject(meta, "labels");
	cJSON_AddStringToObject(labels, KR_INFORMER_MANAGED_LABEL, "keyrotator");
	cJSON_AddStringToObject(labels, KR_ANNOTATION_KEYROTATION, w->name); /* a label too */
	if (!owned) {
		notes = cJSON_AddObjectToObject(meta, "annotations");
		cJSON_AddStringToObject(notes, KR_ANNOTATION_KEYROTATION, w->name);
	}
	cJSON_AddStringToObject(s, "type", "Opaque");
	if (owned) {
		refs = cJSON_AddArrayToObject(meta, "ownerReferences");
		ref = cJSON_CreateObject();
		cJSON_AddItemToArray(refs, ref);
		cJSON_AddStringToObject(ref, "apiVersion", "keyrotator.io/v1alpha1");
		cJSON_AddStringToObject(ref, "kind", "KeyRotation");
		cJSON_AddStringToObject(ref, "name", w->name);
		cJSON_AddStringToObject(ref, "uid", w->uid);
		cJSON_AddTrueToObject(ref, "controller");
	}
	return s;
}

/* Create `body`, or PUT it when `existing` (conditional on its resourceVersion). */
static enum kr_status secret_write(struct kr_world *w, const char *name, cJSON *body, bool existing,
				   struct kr_error *err)
{
	enum kr_carry_slot slot =
	    strcmp(name, w->rsecret_name) == 0 ? KR_CARRY_RSECRET : KR_CARRY_CONSUMER;
	cJSON *out = NULL;
	enum kr_status rc = kr_world_fenced(w, err);

	if (rc == KR_OK && existing)
		rc = kr_kube_update(w->client, &kr_kube_secrets, w->ns, name, body, &out, err);
	else if (rc == KR_OK)
		rc = kr_kube_create(w->client, &kr_kube_secrets, w->ns, body, &out, err);
	kr_json_wipe_delete(body);
	if (rc == KR_OK && out) { /* the Secret as written: the next step reads it from here */
		kr_json_wipe_delete(w->written[slot]);
		w->written[slot] = out;
		w->wrote[slot] = true;
	} else {
		kr_json_wipe_delete(out);
	}
	if (rc != KR_OK)
		kr_error_prefix(err, "write Secret %s/%s: ", w->ns, name);
	return rc;
}

static enum kr_status act_generate(struct kr_world *w, struct kr_error *err)
{
	cJSON *body;
	struct kr_secret *key = NULL;
	enum kr_status rc;

	if (!w->rsecret && !w->uid[0]) /* it could not be ours: observe would refuse it */
		return kr_error_set(err, KR_ESTATE, "KeyRotation %s/%s has no uid to own Secret %s",
				    w->ns, w->name, w->rsecret_name);
	body = w->rsecret ? cJSON_Duplicate(w->rsecret, 1) : secret_new(w, w->rsecret_name, true);
	rc = body ? KR_OK : KR_ENOMEM;

	if (rc == KR_OK)
		rc = kr_key_generate(w->spec.key_prefix, w->spec.key_bytes, &key, err);
	if (rc == KR_OK)
		rc = kr_secret_data_set(body, "pending", key);
	if (rc == KR_OK && w->consumer_key)
		rc = kr_secret_data_set(body, "previous", w->consumer_key);
	kr_secret_free(key);
	if (rc != KR_OK) {
		kr_json_wipe_delete(body);
		return rc == KR_ENOMEM ? kr_error_set(err, rc, "out of memory") : rc;
	}
	return secret_write(w, w->rsecret_name, body, w->rsecret != NULL, err);
}

/*
 * The consumers' Secret := `key` (created if absent; other data keys kept). An existing
 * Secret keeps its metadata as read: no label or annotation of ours is added to it.
 */
static enum kr_status act_distribute(struct kr_world *w, const struct kr_secret *key,
				     const char *what, struct kr_error *err)
{
	cJSON *body;

	if (!key)
		return kr_error_set(err, KR_ESTATE, "Secret %s/%s holds no %s key", w->ns,
				    w->rsecret_name, what);
	body = w->consumer ? cJSON_Duplicate(w->consumer, 1)
			   : secret_new(w, w->spec.secret_name, false);
	if (!body || kr_secret_data_set(body, w->spec.secret_key, key) != KR_OK) {
		kr_json_wipe_delete(body);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(body, "stringData");
	return secret_write(w, w->spec.secret_name, body, w->consumer != NULL, err);
}

/*
 * Clear `<name>-rotation`: its data goes, the (empty) object stays. RBAC then needs no
 * delete on Secrets; the owner reference lets the garbage collector remove it with the
 * KeyRotation.
 */
static enum kr_status clear_rsecret(struct kr_world *w, struct kr_error *err)
{
	cJSON *body;

	if (!w->rsecret || (!w->pending && !w->previous))
		return KR_OK;
	body = cJSON_Duplicate(w->rsecret, 1);
	if (!body)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "data");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "stringData");
	cJSON_AddObjectToObject(body, "data");
	return secret_write(w, w->rsecret_name, body, true, err);
}

/* ---- the key store ---- */

static enum kr_status act_activate(struct kr_world *w, struct kr_error *err)
{
	char label[320], rotation[320];
	struct kr_key_meta meta = {.label = label, .rotation = rotation};
	struct kr_activate_result res;
	enum kr_status rc = kr_world_fenced(w, err);

	if (rc != KR_OK)
		return rc;
	if (!w->pending)
		return kr_error_set(err, KR_ESTATE, "Secret %s/%s holds no pending key", w->ns,
				    w->rsecret_name);
	snprintf(label, sizeof(label), "%s", w->name);
	snprintf(rotation, sizeof(rotation), "%s/%s", w->ns, w->name);
	return kr_keystore_activate(w->conn, w->pending, &meta, &res, err);
}

/* Revoke `key`, or (without the raw key) the stored member whose id is `id`. */
static enum kr_status revoke(struct kr_world *w, const struct kr_secret *key, const char *id,
			     struct kr_error *err)
{
	struct kr_secret *member = NULL;
	enum kr_status rc = kr_world_fenced(w, err);

	if (rc != KR_OK)
		return rc;
	if (key) {
		char kid[KR_ROT_ID_SIZE];

		kr_key_id(key, kid);
		if (!id[0] || strcmp(kid, id) == 0)
			return kr_keystore_revoke_key(w->conn, key, NULL, err);
	}
	rc = kr_keystore_find_member(w->conn, id, &member, err);
	if (rc == KR_ENOTFOUND) {
		kr_error_clear(err);
		return KR_OK; /* nothing holds it: nothing to revoke */
	}
	if (rc == KR_OK)
		rc = kr_keystore_revoke_member(w->conn, member, NULL, err);
	kr_secret_free(member);
	return rc;
}

static enum kr_status set_marker(struct kr_world *w, const struct kr_action *a,
				 struct kr_error *err)
{
	if (!a->repair.set_marker || !a->repair.marker[0])
		return KR_OK;
	return kr_keystore_set_bootstrap(w->conn, a->repair.marker, NULL, err);
}

static const struct kr_secret *source_key(struct kr_world *w, enum kr_key_source src)
{
	switch (src) {
	case KR_SOURCE_ROTATION_PENDING:
		return w->pending;
	case KR_SOURCE_ROTATION_PREVIOUS:
		return w->previous;
	default:
		return w->consumer_key;
	}
}

static enum kr_status act_repair(struct kr_world *w, const struct kr_action *a,
				 struct kr_error *err)
{
	const struct kr_secret *keys[3];
	struct kr_keystore_repair rep;
	char rotation[320];
	size_t n = 0, changes;
	enum kr_status rc = kr_world_fenced(w, err);

	if (rc != KR_OK)
		return rc;
	for (size_t i = 0; i < a->repair.n_add && i < 3; i++)
		if (source_key(w, a->repair.add[i].source))
			keys[n++] = source_key(w, a->repair.add[i].source);
	snprintf(rotation, sizeof(rotation), "%s/%s", w->ns, w->name);
	kr_keystore_repair_init(&rep);
	rc = kr_keystore_reconcile(w->conn, keys, n, a->repair.set_marker ? a->repair.marker : NULL,
				   rotation, &rep, err);
	changes = kr_keystore_repair_count(&rep);
	if (rc == KR_OK && changes > 0) {
		struct kr_buf what;

		kr_buf_init(&what);
		rep.unknown_members = 0; /* counted in status.unknownMembers, not a repair */
		kr_keystore_repair_describe(&rep, w->spec.store_active_set, &what);
		/* Only drift is a repair; a first install's set-up is not (the decision says). */
		KR_LOG(a->repair.drift ? KR_LOG_WARN : KR_LOG_INFO, w->log, "key store %s: %s",
		       a->repair.drift ? "repaired" : "set up", what.data ? what.data : "");
		if (a->repair.drift)
			kr_counter_add(w->r->fam.keystore_repairs_total, NULL, (double)changes);
		kr_buf_release(&what);
	}
	kr_keystore_repair_release(&rep);
	return rc;
}

/* ---- workloads ---- */

static enum kr_status act_restart(struct kr_world *w, const struct kr_action *a,
				  struct kr_error *err)
{
	const struct kr_stage_spec *st;
	char patch[256];
	enum kr_status rc = KR_OK;

	if (a->stage < 0 || (size_t)a->stage >= w->spec.n_stages)
		return kr_error_set(err, KR_ESTATE, "no stage %d", a->stage);
	st = &w->spec.stages[a->stage];
	snprintf(patch, sizeof(patch),
		 "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"%s\":\"%s\"}}}}}",
		 KR_ANNOTATION_KEY_ID, a->key_id);
	for (size_t j = 0; j < st->n_workloads && rc == KR_OK; j++) {
		const struct kr_workload_ref *wl = &st->workloads[j];

		if (!(a->workload_mask & (UINT64_C(1) << j)))
			continue;
		cJSON *out = NULL;
		char ref[600];

		rc = kr_world_fenced(w, err);
		if (rc == KR_OK)
			rc = kr_kube_patch(w->client, workload_resource(wl->kind), w->ns, wl->name,
					   NULL, KR_KUBE_PATCH_STRATEGIC, patch, &out, err);
		if (rc == KR_OK) {
			const cJSON *gen =
			    kr_json_at(out, (const char *[]){"metadata", "generation", NULL});

			kr_controller_workload_ref(
			    ref, sizeof(ref), kr_workload_kind_name(wl->kind), w->ns, wl->name);
			if (cJSON_IsNumber(gen))
				kr_expect_set(w->r, ref, a->key_id, (int64_t)gen->valuedouble);
		}
		cJSON_Delete(out);
		if (rc != KR_OK)
			kr_error_prefix(err, "%s %s/%s: ", kr_workload_kind_name(wl->kind), w->ns,
					wl->name);
		else
			kr_log_info(w->log, "stage %s: %s/%s pod template keyrotator.io/key-id=%s",
				    st->name, kr_workload_kind_name(wl->kind), wl->name, a->key_id);
	}
	return rc;
}

/* ---- the dispatch ---- */

enum kr_status kr_world_act(struct kr_world *w, const struct kr_action *a, struct kr_error *err)
{
	enum kr_status rc;

	/* The decision refuses then; this only makes sure nothing is written anyway. */
	if (w->obs.refusal_reason[0] && !kr_action_is_status_only(a->type))
		return kr_error_set(err, KR_EAUTH, "%s refused: %s", kr_action_name(a->type),
				    w->obs.refusal);
	switch (a->type) {
	case KR_ACTION_GENERATE:
		return act_generate(w, err);
	case KR_ACTION_ACTIVATE:
		return act_activate(w, err);
	case KR_ACTION_DISTRIBUTE:
		return act_distribute(w, w->pending, "pending", err);
	case KR_ACTION_ROLLBACK_SECRET:
		return act_distribute(w, w->previous, "previous", err);
	case KR_ACTION_RESTART_STAGE:
	case KR_ACTION_ROLLBACK_RESTART_STAGE:
		return act_restart(w, a, err);
	case KR_ACTION_REVOKE_OLD:
		rc = revoke(w, w->previous, a->key_id, err);
		return rc == KR_OK ? set_marker(w, a, err) : rc;
	case KR_ACTION_REVOKE_NEW:
		return revoke(w, w->pending, a->key_id, err);
	case KR_ACTION_REPAIR_KEYSTORE:
		return act_repair(w, a, err);
	case KR_ACTION_CLEANUP:
	case KR_ACTION_FAIL_FINISH:
		return clear_rsecret(w, err);
	case KR_ACTION_FINISH:
		rc = w->conn ? set_marker(w, a, err) : KR_OK;
		return rc == KR_OK ? clear_rsecret(w, err) : rc;
	default:
		return KR_OK; /* status only, or nothing */
	}
}
