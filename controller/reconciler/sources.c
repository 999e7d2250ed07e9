/* sources.c - what keyrotator's informers keep and what a KeyRotation refers to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

/*
 * A KeyRotation as the reconciler reads it, without what it never reads: managedFields and
 * kubectl's last-applied-configuration annotation (a second copy of the spec). A KeyRotation
 * is small (the CRD bounds its lists and strings), so the cache holds it whole: a reconcile
 * reads it from there, not with a GET (observe.c).
 */
static void object_copy(cJSON *proj, const cJSON *object)
{
	cJSON *o = cJSON_Duplicate(object, 1);
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata");

	if (!o)
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
	cJSON_DeleteItemFromObjectCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(meta, "annotations"),
	    "kubectl.kubernetes.io/last-applied-configuration");
	cJSON_AddItemToObject(proj, "object", o);
}

static void add_ref(cJSON *refs, const char *kind, const char *ns, const char *name)
{
	char ref[600];

	if (!kind || !name || !name[0])
		return;
	kr_controller_workload_ref(ref, sizeof(ref), kind, ns, name);
	cJSON_AddItemToArray(refs, cJSON_CreateString(ref));
}

static void copy(cJSON *to, const char *as, const cJSON *from, const char *const *path)
{
	const cJSON *v = kr_json_at(from, path);

	if (v)
		cJSON_AddItemToObject(to, as, cJSON_Duplicate(v, 1));
}

cJSON *kr_reconciler_project_keyrotation(void *arg, const cJSON *object)
{
	const char *ns = kr_json_str(object, (const char *[]){"metadata", "namespace", NULL});
	const char *name = kr_json_str(object, (const char *[]){"metadata", "name", NULL});
	const cJSON *stages = kr_json_at(object, (const char *[]){"spec", "stages", NULL});
	const cJSON *stage, *wl;
	cJSON *proj = cJSON_CreateObject(), *refs = cJSON_AddArrayToObject(proj, "refs");

	(void)arg;
	if (!refs || !ns || !name)
		return proj;
	/* For the "two KeyRotations name one Secret" check: which Secret, and who came first. */
	copy(proj, "secret", object, (const char *[]){"spec", "secretRef", "name", NULL});
	copy(proj, "created", object,
		    (const char *[]){"metadata", "creationTimestamp", NULL});
	/* Lets the reconciler tell "nothing changed since the last full reconcile". */
	copy(proj, "rv", object, (const char *[]){"metadata", "resourceVersion", NULL});
	/* The object itself, for the reconciler to read instead of a GET. */
	object_copy(proj, object);
	cJSON_ArrayForEach(stage, stages)
	{
		cJSON_ArrayForEach(wl, cJSON_GetObjectItemCaseSensitive(stage, "workloads"))
		    add_ref(refs, kr_json_str(wl, (const char *[]){"kind", NULL}), ns,
				   kr_json_str(wl, (const char *[]){"name", NULL}));
	}
	/* The key store it names, last: "KeyStore/ns/name" or "ClusterKeyStore//name". */
	if (kr_json_at(object, (const char *[]){"spec", "keyStoreRef", NULL})) {
		const char *kind =
		    kr_json_str(object, (const char *[]){"spec", "keyStoreRef", "kind", NULL});
		bool cluster = kind && !strcmp(kind, "ClusterKeyStore");

		add_ref(
		    refs, cluster ? "ClusterKeyStore" : "KeyStore", cluster ? "" : ns,
		    kr_json_str(object, (const char *[]){"spec", "keyStoreRef", "name", NULL}));
	}
	return proj;
}

/*
 * Only the status fields rollout completion reads (kubectl rollout status), and whether
 * the Deployment's progress deadline passed: not the conditions' texts and times.
 */
static void project_status(cJSON *proj, const cJSON *status)
{
	static const char *const fields[] = {"observedGeneration",
					     "replicas",
					     "updatedReplicas",
					     "readyReplicas",
					     "availableReplicas",
					     "updateRevision",
					     "currentRevision",
					     "desiredNumberScheduled",
					     "updatedNumberScheduled",
					     "numberAvailable",
					     NULL};
	cJSON *out = cJSON_AddObjectToObject(proj, "status");
	const cJSON *c;

	if (!out || !status)
		return;
	for (size_t i = 0; fields[i]; i++)
		copy(out, fields[i], status, (const char *[]){fields[i], NULL});
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
	{
		const char *type = kr_json_str(c, (const char *[]){"type", NULL});
		const char *reason = kr_json_str(c, (const char *[]){"reason", NULL});

		if (type && reason && !strcmp(type, "Progressing") &&
		    !strcmp(reason, "ProgressDeadlineExceeded"))
			cJSON_AddTrueToObject(out, "progressDeadlineExceeded");
	}
}

/* ---- the Secrets a pod template reads (for unlisted consumers) ---- */

/* Append `name` to the list of strings, once (sorted later: sort_secrets). */
static void add_secret(cJSON *list, const char *name)
{
	const cJSON *it;

	if (!name || !name[0])
		return;
	cJSON_ArrayForEach(it, list)
	{
		if (!strcmp(it->valuestring, name))
			return;
	}
	cJSON_AddItemToArray(list, cJSON_CreateString(name));
}

static int secret_cmp(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->valuestring, (*(cJSON *const *)b)->valuestring);
}

/*
 * The list in name order, so that the same template projects to the same JSON. Items are
 * moved, not inserted in the middle: cJSON 1.7.15's cJSON_InsertItemInArray refuses that.
 */
static void sort_secrets(cJSON *list)
{
	int n = cJSON_GetArraySize(list);
	cJSON **items = n > 1 ? malloc(sizeof(*items) * (size_t)n) : NULL;

	if (!items)
		return; /* 0 or 1: sorted; out of memory: left as found */
	for (int i = 0; i < n; i++)
		items[i] = cJSON_DetachItemFromArray(list, 0);
	qsort(items, (size_t)n, sizeof(*items), secret_cmp);
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(list, items[i]);
	free(items);
}

static void container_secrets(cJSON *list, const cJSON *containers)
{
	const cJSON *c, *e;

	cJSON_ArrayForEach(c, containers)
	{
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "env"))
		    add_secret(list, kr_json_str(e, (const char *[]){"valueFrom", "secretKeyRef",
								     "name", NULL}));
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "envFrom"))
		    add_secret(list, kr_json_str(e, (const char *[]){"secretRef", "name", NULL}));
	}
}

/* "secrets": every Secret the pod template (spec of a pod) reads; omitted when none. */
static void project_secrets(cJSON *proj, const cJSON *pod_spec)
{
	static const char *const kinds[] = {"containers", "initContainers", "ephemeralContainers",
					    NULL};
	cJSON *list = cJSON_CreateArray();
	const cJSON *v, *src;

	if (!list)
		return;
	for (size_t i = 0; kinds[i]; i++)
		container_secrets(list, cJSON_GetObjectItemCaseSensitive(pod_spec, kinds[i]));
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(pod_spec, "volumes"))
	{
		add_secret(list, kr_json_str(v, (const char *[]){"secret", "secretName", NULL}));
		cJSON_ArrayForEach(src, kr_json_at(v, (const char *[]){"projected", "sources", NULL}))
		    add_secret(list, kr_json_str(src, (const char *[]){"secret", "name", NULL}));
	}
	sort_secrets(list);
	if (cJSON_GetArraySize(list) > 0)
		cJSON_AddItemToObject(proj, "secrets", list);
	else
		cJSON_Delete(list);
}

cJSON *kr_reconciler_project_cronjob(void *arg, const cJSON *object)
{
	cJSON *proj = cJSON_CreateObject();

	(void)arg;
	if (!proj)
		return NULL;
	project_secrets(proj, kr_json_at(object, (const char *[]){"spec", "jobTemplate", "spec",
								  "template", "spec", NULL}));
	/* Jobs running now: one may hold the old key until it ends. */
	if (cJSON_GetArraySize(kr_json_at(object, (const char *[]){"status", "active", NULL})) > 0)
		cJSON_AddTrueToObject(proj, "running");
	return proj;
}

cJSON *kr_reconciler_project_workload(void *arg, const cJSON *object)
{
	cJSON *proj = cJSON_CreateObject();

	(void)arg;
	if (!proj)
		return NULL;
	copy(proj, "generation", object, (const char *[]){"metadata", "generation", NULL});
	copy(proj, "replicas", object, (const char *[]){"spec", "replicas", NULL});
	copy(proj, "paused", object, (const char *[]){"spec", "paused", NULL});
	copy(proj, "keyId", object,
		    (const char *[]){"spec", "template", "metadata", "annotations",
				     KR_ANNOTATION_KEY_ID, NULL});
	/* How long an old pod may still run with the old key once the rollout looks done. */
	copy(proj, "grace", object,
	     (const char *[]){"spec", "template", "spec", "terminationGracePeriodSeconds", NULL});
	copy(proj, "updateStrategy", object,
		    (const char *[]){"spec", "updateStrategy", NULL});
	project_status(proj, cJSON_GetObjectItemCaseSensitive(object, "status"));
	project_secrets(proj, kr_json_at(object, (const char *[]){"spec", "template", "spec", NULL}));
	return proj;
}

cJSON *kr_reconciler_project_store(void *arg, const cJSON *object)
{
	cJSON *proj = cJSON_CreateObject();

	(void)arg;
	if (!proj)
		return NULL;
	copy(proj, "generation", object, (const char *[]){"metadata", "generation", NULL});
	copy(proj, "spec", object, (const char *[]){"spec", NULL});
	return proj;
}


/* A KeyRotation's references: its projection's "refs", and "Secret/ns/<secretRef.name>". */
static void keyrotation_refs(const cJSON *proj, const char *ns, kr_controller_ref_fn add,
			     void *arg)
{
	const cJSON *ref, *secret = cJSON_GetObjectItemCaseSensitive(proj, "secret");
	char sref[600];

	cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(proj, "refs"))
	{
		if (cJSON_IsString(ref))
			add(arg, ref->valuestring);
	}
	if (!cJSON_IsString(secret))
		return;
	kr_controller_workload_ref(sref, sizeof(sref), "Secret", ns, secret->valuestring);
	add(arg, sref);
}

/* A workload's references: "Secret/ns/name" for each Secret its pod template reads. */
static void workload_refs(const cJSON *proj, const char *ns, kr_controller_ref_fn add, void *arg)
{
	const cJSON *name;
	char ref[600];

	cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(proj, "secrets"))
	{
		if (!cJSON_IsString(name))
			continue;
		kr_controller_workload_ref(ref, sizeof(ref), "Secret", ns, name->valuestring);
		add(arg, ref);
	}
}

/* In enum kr_source's order. */
static const struct kr_controller_source kr_sources[KR_SRC_N] = {
    [KR_SRC_KEYROTATIONS] = {&kr_kube_keyrotations, kr_reconciler_project_keyrotation, true,
			     keyrotation_refs},
    [KR_SRC_DEPLOYMENTS] = {&kr_kube_deployments, kr_reconciler_project_workload, false,
			    workload_refs},
    [KR_SRC_STATEFULSETS] = {&kr_kube_statefulsets, kr_reconciler_project_workload, false,
			     workload_refs},
    [KR_SRC_DAEMONSETS] = {&kr_kube_daemonsets, kr_reconciler_project_workload, false,
			   workload_refs},
    [KR_SRC_KEYSTORES] = {&kr_kube_keystores, kr_reconciler_project_store, false, NULL},
    [KR_SRC_CLUSTERKEYSTORES] = {&kr_kube_clusterkeystores, kr_reconciler_project_store, false,
				 NULL},
    [KR_SRC_CRONJOBS] = {&kr_kube_cronjobs, kr_reconciler_project_cronjob, false, workload_refs},
};

const struct kr_controller_source *kr_reconciler_sources(void)
{
	return kr_sources;
}
