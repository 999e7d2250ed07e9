/* observe.c - one reconcile's view of the world: the API, the informer caches, the key store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"
#include "rotation/schedule.h"

void kr_carry_clear(struct kr_carry *c)
{
	for (int i = 0; i < KR_CARRY_N; i++) {
		kr_json_wipe_delete(c->obj[i]);
		c->obj[i] = NULL;
		c->known[i] = false;
	}
	cJSON_Delete(c->ns_labels);
	c->ns_labels = NULL;
}

/* Take the carried object of `slot` into *out: true when the carry knew it. */
static bool from_carry(struct kr_world *w, enum kr_carry_slot slot, cJSON **out)
{
	if (!w->carry || !w->carry->known[slot])
		return false;
	*out = w->carry->obj[slot];
	w->carry->obj[slot] = NULL;
	w->carry->known[slot] = false;
	return true;
}

/* ---- the KeyRotation: from the informer cache when it is current ---- */

static void known_rv_drop(void *v)
{
	free(v);
}

bool kr_known_rv_settled(struct kr_reconciler *r, const char *key, const char *rv)
{
	struct kr_smap_entry *e;
	bool settled = true;

	pthread_mutex_lock(&r->lock);
	e = kr_smap_find(&r->known_rv, key);
	if (e && (!rv || strcmp(e->val, rv) != 0))
		settled = false;
	else if (e)
		free(kr_smap_take(&r->known_rv, key));
	pthread_mutex_unlock(&r->lock);
	return settled;
}

/* The API answered KeyRotation `key` at `rv`: the newest this replica knows. */
static void known_rv_set(struct kr_reconciler *r, const char *key, const char *rv)
{
	struct kr_smap_entry *e;
	char *copy;

	if (!r->ctl || !rv || !(copy = strdup(rv)))
		return;
	pthread_mutex_lock(&r->lock);
	r->known_rv.drop = known_rv_drop;
	e = kr_smap_upsert(&r->known_rv, key);
	if (e) {
		free(e->val);
		e->val = copy;
	} else {
		free(copy); /* out of memory: the next reconcile may read a stale cache, and 409 */
	}
	pthread_mutex_unlock(&r->lock);
}

void kr_known_rv_free_all(struct kr_reconciler *r)
{
	r->known_rv.drop = known_rv_drop;
	kr_smap_release(&r->known_rv);
}

static const char *rv_of(const cJSON *obj)
{
	return kr_json_str(obj, (const char *[]){"metadata", "resourceVersion", NULL});
}

/*
 * The KeyRotation as the informer cache holds it (the projection's "object"), when that is
 * as new as anything this replica has seen from the API: no GET. Writes stay safe on a
 * stale cache anyway: each is conditional on the resourceVersion, and a 409 reads afresh.
 */
static cJSON *keyrotation_cached(struct kr_world *w, const char *key)
{
	struct kr_informer *inf;
	cJSON *proj = NULL, *obj;

	if (!w->r->ctl || (w->carry && w->carry->fresh))
		return NULL;
	inf = kr_controller_informer(w->r->ctl, KR_SRC_KEYROTATIONS);
	if (!inf || kr_informer_get(inf, w->ns, w->name, &proj) != KR_OK)
		return NULL; /* not cached (gone?): the API says */
	obj = cJSON_DetachItemFromObjectCaseSensitive(proj, "object");
	cJSON_Delete(proj);
	if (obj && !kr_known_rv_settled(w->r, key, rv_of(obj))) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

static enum kr_status observe_keyrotation(struct kr_world *w, struct kr_error *err)
{
	char key[600];
	enum kr_status rc;

	if (from_carry(w, KR_CARRY_KR, &w->kr) && w->kr)
		return KR_OK;
	snprintf(key, sizeof(key), "%s/%s", w->ns, w->name);
	if ((w->kr = keyrotation_cached(w, key)))
		return KR_OK;
	rc = kr_kube_get(w->client, &kr_kube_keyrotations, w->ns, w->name, &w->kr, err);
	if (rc == KR_OK)
		known_rv_set(w->r, key, rv_of(w->kr));
	return rc;
}

/* Our write's answer: the newest version of the KeyRotation (kr_world_release). */
static void observe_written(struct kr_world *w)
{
	char key[600];

	snprintf(key, sizeof(key), "%s/%s", w->ns, w->name);
	known_rv_set(w->r, key, rv_of(w->written[KR_CARRY_KR]));
}

/* GET that treats NotFound as "absent": KR_OK with *out NULL. */
static enum kr_status get_optional(struct kr_world *w, const struct kr_kube_resource *res,
				   const char *name, cJSON **out, struct kr_error *err)
{
	enum kr_status rc = kr_kube_get(w->client, res, w->ns, name, out, err);

	if (rc == KR_ENOTFOUND) {
		*out = NULL;
		kr_error_clear(err);
		return KR_OK;
	}
	return rc;
}

static void observe_meta(struct kr_world *w)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(w->kr, "metadata");
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(meta, "generation");
	const char *created = kr_json_str(meta, (const char *[]){"creationTimestamp", NULL});
	const char *uid = kr_json_str(meta, (const char *[]){"uid", NULL});
	time_t t;

	w->obs.ns = w->ns;
	w->obs.name = w->name;
	w->obs.generation = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;
	if (created && kr_time_parse_rfc3339(created, &t, NULL) == KR_OK)
		w->obs.created_at = t;
	snprintf(w->uid, sizeof(w->uid), "%s", uid ? uid : "");
	w->obs.rotate_request =
	    kr_json_str(meta, (const char *[]){"annotations", KR_ANNOTATION_ROTATE, NULL});
	w->obs.emergency_request =
	    kr_json_str(meta, (const char *[]){"annotations", KR_ANNOTATION_EMERGENCY, NULL});
	w->obs.abort_request =
	    kr_json_str(meta, (const char *[]){"annotations", KR_ANNOTATION_ABORT, NULL});
	w->obs.promote_request =
	    kr_json_str(meta, (const char *[]){"annotations", KR_ANNOTATION_PROMOTE, NULL});
}

static void key_id_of(const struct kr_secret *key, char out[KR_ROT_ID_SIZE])
{
	out[0] = '\0';
	if (key)
		kr_key_id(key, out);
}

/* ---- the two Secrets: used only when this KeyRotation may (design.md §1b) ---- */

/* Secret `name` of our namespace into *out (NULL: absent), from the carry or the API. */
static enum kr_status secret_get(struct kr_world *w, enum kr_carry_slot slot, const char *name,
				 cJSON **out, struct kr_error *err)
{
	enum kr_status rc =
	    from_carry(w, slot, out) ? KR_OK : get_optional(w, &kr_kube_secrets, name, out, err);

	if (rc != KR_OK)
		return kr_error_prefix(err, "Secret %s/%s: ", w->ns, name);
	return KR_OK;
}

/* A rotation in flight: its keys are in `<name>-rotation`. */
static bool rotation_in_flight(const struct kr_world *w)
{
	enum kr_phase p = w->doc.status.phase;

	return (p != KR_PHASE_IDLE && p != KR_PHASE_FAILED) || w->doc.status.pending_key.id[0];
}

static bool rsecret_wanted(const struct kr_world *w)
{
	return rotation_in_flight(w) ||
	       (w->carry && (w->carry->want_rsecret || w->carry->known[KR_CARRY_RSECRET]));
}

bool kr_world_needs_rsecret(const struct kr_world *w, enum kr_action_type type)
{
	if (!w->rsecret_unread)
		return false;
	switch (type) {
	case KR_ACTION_NONE:
	case KR_ACTION_WAIT:
	case KR_ACTION_REFUSE:
	case KR_ACTION_PLAN:
	case KR_ACTION_UPDATE_STATUS:	/* adopting the Secret's key, nextRotationTime */
	case KR_ACTION_REPAIR_KEYSTORE: /* idle: from the consumers' Secret only */
		return false;
	default:
		return true;
	}
}

/*
 * Both Secrets, checked (kr_secrets_usable) before any of their data is decoded. When
 * this KeyRotation may not use them, they are wiped and dropped: the decision refuses.
 */
static enum kr_status observe_secrets(struct kr_world *w, struct kr_error *err)
{
	enum kr_status rc;

	if (w->obs.refusal_reason[0] ||
	    !kr_secrets_usable(&w->obs, w->uid, w->spec.secret_name, w->rsecret_name, NULL, NULL))
		return KR_OK; /* refused already, or by the names alone: read nothing */
	rc = secret_get(w, KR_CARRY_CONSUMER, w->spec.secret_name, &w->consumer, err);
	if (rc == KR_OK && rsecret_wanted(w))
		rc = secret_get(w, KR_CARRY_RSECRET, w->rsecret_name, &w->rsecret, err);
	else
		w->rsecret_unread = true;
	if (rc != KR_OK)
		return rc;
	if (!kr_secrets_usable(&w->obs, w->uid, w->spec.secret_name, w->rsecret_name, w->consumer,
			       w->rsecret)) {
		kr_json_wipe_delete(w->consumer);
		kr_json_wipe_delete(w->rsecret);
		w->consumer = w->rsecret = NULL;
		return KR_OK;
	}
	w->consumer_key = kr_secret_data_get(w->consumer, w->spec.secret_key);
	w->obs.consumer.exists = w->consumer != NULL;
	w->obs.consumer.has_key = w->consumer_key != NULL;
	key_id_of(w->consumer_key, w->obs.consumer.key_id);

	w->pending = kr_secret_data_get(w->rsecret, "pending");
	w->previous = kr_secret_data_get(w->rsecret, "previous");
	/* Cleared (no data) counts as absent: FINISH empties it rather than deleting it. */
	w->obs.rsecret.exists = w->pending || w->previous;
	w->obs.rsecret.has_pending = w->pending != NULL;
	w->obs.rsecret.has_previous = w->previous != NULL;
	key_id_of(w->pending, w->obs.rsecret.pending_id);
	key_id_of(w->previous, w->obs.rsecret.previous_id);
	return KR_OK;
}

/* ---- workloads, from the informer caches ---- */

static int32_t num(const cJSON *obj, const char *const *path, int32_t dflt)
{
	const cJSON *v = kr_json_at(obj, path);

	return cJSON_IsNumber(v) ? (int32_t)v->valuedouble : dflt;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void observe_workload(const cJSON *p, enum kr_workload_kind kind,
			     struct kr_observed_workload *wl)
{
	const char *strategy = kr_json_str(p, (const char *[]){"updateStrategy", "type", NULL});
	const cJSON *paused = cJSON_GetObjectItemCaseSensitive(p, "paused");

	wl->exists = true;
	wl->kind_supported = true;
	wl->generation = num(p, (const char *[]){"generation", NULL}, 0);
	wl->observed_generation = num(p, (const char *[]){"status", "observedGeneration", NULL}, 0);
	copy_str(wl->key_id, sizeof(wl->key_id), kr_json_str(p, (const char *[]){"keyId", NULL}));
	wl->replicas = num(p, (const char *[]){"replicas", NULL}, 1);
	wl->status_replicas = num(p, (const char *[]){"status", "replicas", NULL}, 0);
	wl->updated = num(p, (const char *[]){"status", "updatedReplicas", NULL}, 0);
	wl->ready = num(p, (const char *[]){"status", "readyReplicas", NULL}, 0);
	wl->available = num(p, (const char *[]){"status", "availableReplicas", NULL}, 0);
	wl->paused = cJSON_IsTrue(paused);
	wl->on_delete = kind != KR_WORKLOAD_DEPLOYMENT && strategy && !strcmp(strategy, "OnDelete");
	/* Kubernetes defaults it to 30 s when the template leaves it out. */
	wl->termination_grace_s = num(p, (const char *[]){"grace", NULL}, 30);
	wl->progress_deadline_exceeded = cJSON_IsTrue(
	    kr_json_at(p, (const char *[]){"status", "progressDeadlineExceeded", NULL}));
	copy_str(wl->update_revision, sizeof(wl->update_revision),
		 kr_json_str(p, (const char *[]){"status", "updateRevision", NULL}));
	copy_str(wl->current_revision, sizeof(wl->current_revision),
		 kr_json_str(p, (const char *[]){"status", "currentRevision", NULL}));
	wl->partition =
	    num(p, (const char *[]){"updateStrategy", "rollingUpdate", "partition", NULL}, 0);
	wl->desired_scheduled =
	    num(p, (const char *[]){"status", "desiredNumberScheduled", NULL}, 0);
	wl->updated_scheduled =
	    num(p, (const char *[]){"status", "updatedNumberScheduled", NULL}, 0);
	wl->number_available = num(p, (const char *[]){"status", "numberAvailable", NULL}, 0);
}

static enum kr_status observe_workloads(struct kr_world *w)
{
	static const enum kr_source inf_of[] = {
	    [KR_WORKLOAD_DEPLOYMENT] = KR_SRC_DEPLOYMENTS,
	    [KR_WORKLOAD_STATEFULSET] = KR_SRC_STATEFULSETS,
	    [KR_WORKLOAD_DAEMONSET] = KR_SRC_DAEMONSETS,
	};

	struct kr_buf all;

	w->wls = calloc(w->spec.n_workloads ? w->spec.n_workloads : 1, sizeof(*w->wls));
	if (!w->wls)
		return KR_ENOMEM;
	kr_buf_init(&all);
	for (size_t i = 0; i < w->spec.n_stages; i++) {
		const struct kr_stage_spec *st = &w->spec.stages[i];

		for (size_t j = 0; j < st->n_workloads; j++) {
			struct kr_observed_workload *wl = &w->wls[st->first + j];
			struct kr_informer *inf =
			    kr_controller_informer(w->r->ctl, inf_of[st->workloads[j].kind]);
			cJSON *proj = NULL;
			char ref[600], *text = NULL;

			wl->kind_supported = true;
			/* As the KeyRotation's projection names it (idle.c hashes those). */
			kr_controller_workload_ref(ref, sizeof(ref),
						   kr_workload_kind_name(st->workloads[j].kind),
						   w->ns, st->workloads[j].name);
			if (kr_informer_get_text(inf, w->ns, st->workloads[j].name, &text) ==
			    KR_OK) {
				proj = text ? cJSON_Parse(text) : NULL;
				observe_workload(proj, st->workloads[j].kind, wl);
			}
			kr_expect_apply(w->r, ref, wl);
			kr_workloads_hash_add(&all, ref, text);
			cJSON_Delete(proj);
			free(text);
		}
	}
	if (w->store_ref[0]) /* last, as the KeyRotation projection lists it */
		kr_workloads_hash_add(&all, w->store_ref, w->store_text);
	kr_key_hash_hex_bytes(all.data ? all.data : "", all.len, w->workloads_hash);
	kr_buf_release(&all);
	w->obs.workloads = w->wls;
	return KR_OK;
}

/* ---- two KeyRotations, one Secret ---- */

#define KR_CONFLICT_MAX 16 /* owners of one Secret looked at; more is a misconfiguration anyway */

struct conflict_owners {
	char *keys[KR_CONFLICT_MAX];
	size_t n;
};

/* Does `other` (created at oc, key ok) come before us? Earlier creation; ties by name. */
static bool comes_first(const char *oc, const char *ok, const char *mc, const char *mk)
{
	int c = strcmp(oc ? oc : "", mc ? mc : "");

	return c < 0 || (c == 0 && strcmp(ok, mk) < 0);
}

static void conflict_collect(void *arg, const char *owner)
{
	struct conflict_owners *o = arg;

	if (o->n < KR_CONFLICT_MAX && (o->keys[o->n] = strdup(owner)))
		o->n++;
}

/*
 * Another KeyRotation that names our Secret and came first owns it (the reverse index
 * finds them: no scan of every KeyRotation). Its creation time comes from the cache.
 */
static void observe_conflict(struct kr_world *w)
{
	struct kr_informer *inf = kr_controller_informer(w->r->ctl, KR_SRC_KEYROTATIONS);
	const char *created =
	    kr_json_str(w->kr, (const char *[]){"metadata", "creationTimestamp", NULL});
	struct conflict_owners o = {0};
	char key[600], ref[600], owner[600] = "", owner_created[64] = "";

	snprintf(key, sizeof(key), "%s/%s", w->ns, w->name);
	kr_controller_workload_ref(ref, sizeof(ref), "Secret", w->ns, w->spec.secret_name);
	kr_refindex_lookup(kr_controller_refindex(w->r->ctl), ref, conflict_collect, &o);
	for (size_t i = 0; i < o.n; i++) {
		char ns[300];
		const char *name = kr_controller_split_key(o.keys[i], ns, sizeof(ns));
		cJSON *proj = NULL;
		const char *oc, *secret;

		/*
		 * A Secret that exists and opted in is claimed only by the KeyRotations it
		 * names: one that names it without being named (refused: SecretNotOptedIn)
		 * cannot block the one its owner chose by coming first.
		 */
		if (!strcmp(o.keys[i], key) ||
		    (w->consumer && !kr_secret_opted_in(w->consumer, name) &&
		     !kr_secret_created_for(w->consumer, name)) ||
		    kr_informer_get(inf, ns, name, &proj) != KR_OK) {
			free(o.keys[i]);
			continue;
		}
		oc = kr_json_str(proj, (const char *[]){"created", NULL});
		secret = kr_json_str(proj, (const char *[]){"secret", NULL});
		if (secret && !strcmp(secret, w->spec.secret_name) &&
		    comes_first(oc, o.keys[i], created, key) &&
		    (!owner[0] || comes_first(oc, o.keys[i], owner_created, owner))) {
			snprintf(owner, sizeof(owner), "%s", o.keys[i]);
			snprintf(owner_created, sizeof(owner_created), "%s", oc ? oc : "");
		}
		cJSON_Delete(proj);
		free(o.keys[i]);
	}
	if (owner[0]) {
		w->obs.secret_conflict = true;
		snprintf(w->obs.conflict_owner, sizeof(w->obs.conflict_owner), "%s", owner);
	}
}

/* ---- Secrets that a spec field names ---- */

/* Is `name` one of the two Secrets that hold this KeyRotation's keys? */
static bool holds_our_keys(const struct kr_world *w, const char *name)
{
	return strcmp(name, w->rsecret_name) == 0 ||
	       (w->have_spec && w->spec.secret_name && strcmp(name, w->spec.secret_name) == 0);
}

/*
 * kr_world_secret_ref and kr_world_secret_ref_admin: `optin` when the KeyRotation's author
 * named the Secret (it must have opted in), not when an administrator's object did.
 */
static enum kr_status secret_ref(struct kr_world *w, const char *field, const char *ns,
				 const char *name, const char *key, size_t max_text, bool optin,
				 struct kr_secret **out, struct kr_error *err)
{
	cJSON *sec = NULL;
	enum kr_status rc;

	*out = NULL;
	if (!name)
		return KR_OK;
	if (!ns)
		ns = w->ns;
	if (w->obs.refusal_reason[0])
		return kr_error_set(err, KR_EAUTH, "%s: Secret %s/%s not read: %s", field, ns, name,
				    w->obs.refusal);
	if (optin && holds_our_keys(w, name)) {
		kr_refuse(&w->obs, "CredentialSecretNotOptedIn",
			  "%s: Secret %s/%s holds this KeyRotation's keys and never serves as a "
			  "credential; name another Secret",
			  field, ns, name);
		return kr_error_set(err, KR_EAUTH, "%s", w->obs.refusal);
	}
	rc = kr_kube_get(w->client, &kr_kube_secrets, ns, name, &sec, err);
	/*
	 * Missing and not opted in read the same to the author, who may not be able to read
	 * Secrets: the answer must not tell them whether a Secret of that name exists.
	 */
	if (optin && (rc == KR_ENOTFOUND || (rc == KR_OK && !kr_secret_opted_in(sec, w->name)))) {
		kr_json_wipe_delete(sec);
		kr_refuse(&w->obs, "CredentialSecretNotOptedIn",
			  "%s: Secret %s/%s does not exist or is not opted in for this "
			  "KeyRotation: create it with the annotation %s: %s (someone who may "
			  "read that Secret must opt it in)",
			  field, ns, name, KR_ANNOTATION_KEYROTATION, w->name);
		return kr_error_set(err, KR_EAUTH, "%s", w->obs.refusal);
	}
	return kr_secret_ref_value(rc, sec, field, ns, name, key, max_text, out, err);
}

enum kr_status kr_world_secret_ref(struct kr_world *w, const char *field, const char *name,
				   const char *key, size_t max_text, struct kr_secret **out,
				   struct kr_error *err)
{
	return secret_ref(w, field, NULL, name, key, max_text, true, out, err);
}

enum kr_status kr_world_secret_ref_admin(struct kr_world *w, const char *field, const char *ns,
					 const char *name, const char *key, size_t max_text,
					 struct kr_secret **out, struct kr_error *err)
{
	return secret_ref(w, field, ns, name, key, max_text, false, out, err);
}

/* ---- the whole view ---- */

static enum kr_status observe_status(struct kr_world *w)
{
	struct kr_error e = {0};

	if (kr_status_doc_decode(cJSON_GetObjectItemCaseSensitive(w->kr, "status"), &w->doc, &e) !=
	    KR_OK) {
		/* A status we cannot read is started over; the Secrets hold what matters. */
		kr_log_warn(w->log, "ignoring unreadable status: %s", e.msg);
		kr_status_doc_init(&w->doc);
	}
	w->obs.status = w->doc.status;
	w->obs.store_repaired =
	    w->doc.conditions[KR_COND_KEYSTORE_IN_SYNC].set &&
	    w->doc.conditions[KR_COND_KEYSTORE_IN_SYNC].status == KR_COND_TRUE &&
	    strcmp(w->doc.conditions[KR_COND_KEYSTORE_IN_SYNC].reason, "Repaired") == 0;
	return KR_OK;
}

enum kr_status kr_world_observe(struct kr_world *w, struct kr_error *err)
{
	enum kr_status rc;

	w->obs.now = kr_reconciler_now(w->r);
	kr_status_doc_init(&w->doc);
	rc = observe_keyrotation(w, err);
	if (rc != KR_OK)
		return rc;
	observe_meta(w);
	observe_status(w);
	snprintf(w->rsecret_name, sizeof(w->rsecret_name), "%s%s", w->name,
		 KR_ROTATION_SECRET_SUFFIX);
	if (kr_rotation_spec_decode(w->kr, &w->spec, &w->spec_err) != KR_OK) {
		w->obs.spec_error = w->spec_err.msg;
		return KR_OK;
	}
	w->have_spec = true;
	w->obs.spec = &w->spec;
	kr_world_resolve_store(w);
	kr_world_check_endpoints(w); /* before any request: the URLs against --allowed-endpoints */
	rc = w->obs.refusal_reason[0] ? KR_OK : observe_secrets(w, err);
	if (rc == KR_OK)
		rc = observe_workloads(w);
	if (rc != KR_OK)
		return rc;
	observe_conflict(w);
	kr_world_observe_unlisted(w);
	if (!w->obs.secret_conflict && !w->spec.dry_run && !w->obs.refusal_reason[0])
		kr_world_observe_store(w);
	return KR_OK;
}

void kr_world_release(struct kr_world *w)
{
	cJSON **read[KR_CARRY_N] = {&w->kr, &w->consumer, &w->rsecret};

	if (w->wrote[KR_CARRY_KR] && w->written[KR_CARRY_KR])
		observe_written(w);
	for (int i = 0; i < KR_CARRY_N; i++) {
		if (!w->carry) {
			kr_json_wipe_delete(w->written[i]);
			continue;
		}
		kr_json_wipe_delete(w->carry->obj[i]);
		w->carry->obj[i] = w->wrote[i] ? w->written[i] : *read[i];
		w->carry->known[i] = w->wrote[i] || i != KR_CARRY_KR || *read[i];
		if (!w->wrote[i])
			*read[i] = NULL;
	}
	if (w->carry && (!w->have_spec || w->obs.refusal_reason[0])) /* Secrets not read */
		w->carry->known[KR_CARRY_CONSUMER] = w->carry->known[KR_CARRY_RSECRET] = false;
	if (w->carry && w->rsecret_unread && !w->wrote[KR_CARRY_RSECRET])
		w->carry->known[KR_CARRY_RSECRET] = false;
	kr_keystore_free(w->ks);
	free(w->wls);
	if (w->have_spec)
		kr_rotation_spec_release(&w->spec);
	kr_status_doc_release(&w->doc);
	kr_secret_free(w->consumer_key);
	kr_secret_free(w->pending);
	kr_secret_free(w->previous);
	kr_json_wipe_delete(w->consumer);
	kr_json_wipe_delete(w->rsecret);
	cJSON_Delete(w->kr);
	free(w->store_text);
	memset(w, 0, sizeof(*w));
}
