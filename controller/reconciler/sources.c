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

/*
 * The words the cached projections are made of, for packing them (runtime/pack.h): a
 * KeyRotation's projection as keyrotator writes it (spec with three stages, the status of
 * an idle one), the rarer fields first; a workload's. With it a cached KeyRotation takes
 * about a tenth of its text, without it a third (tests/unit/test_pack.c).
 */
static const char kr_keyrotation_words[] =
    "\"pendingKey\":{\"id\":\"\",\"createdAt\":\"\",\"label\":\"\"},\"previousKey\":{\"id"
    "\":\"\",\"createdAt\":\"\",\"rotation\":{\"trigger\":\"Schedule\",\"startedAt\":\"\""
    ",\"step\":\"\",\"stage\":\"\",\"stageIndex\":0,\"stageStartedAt\":\"\",\"windowStart"
    "edAt\":\"\",\"lastMeasurementTime\":\"\",\"baseline\":\"\",\"consecutiveFailures\":0"
    ",\"consecutiveErrors\":0,\"oldKeyRevoked\":false,\"newKeyRevoked\":false,\"promoted\""
    ":false,\"outcome\":\"\",\"reason\":\"\"},\"unlistedConsumers\":[{\"kind\":\"Stateful"
    "Set\",\"name\":\"\"},{\"kind\":\"DaemonSet\",\"name\":\"\"},{\"kind\":\"CronJob\",\""
    "name\":\"\"}],\"lastHandledRequest\":\"\",\"lastHandledEmergency\":\"\",\"lastHandle"
    "dAbort\":\"\",\"lastHandledPromote\":\"\",\"unauthorizedRate\":\"\",\"unknownMembers"
    "\":0,\"RollingOut\",\"Analyzing\",\"Pending\",\"Paused\",\"Failed\",\"RolledBack\",\""
    "Validating\",\"Revoking\",\"RollingBack\",\"Manual\",\"MaxAge\",\"Emergency\",\"anal"
    "ysis\":{\"prometheus\":{\"address\":\"http://prometheus\",\"query\":\"sum(rate(http_"
    "requests_total{code=\\\"401\\\"}[1m]))\"},\"maxUnauthorizedRate\":\"\",\"interval\":"
    "\"\",\"failureLimit\":\"schedule\":\"\",\"maxKeyAge\":\"\",\"revokeWhenUnusedFor\":\""
    "\",\"label\":\"\",\"keyStore\":{\"address\":\"\",\"passwordSecretRef\":{\"name\":\"\""
    ",\"key\":\"\"},\"layout\":{\"activeSet\":\"api_keys:active\",\"metaKey\":\"api_key:{"
    "id}:meta\",\"bootstrapKey\":\"api_keys:bootstrap\",\"storeAs\":\"sha256\"}},\"annota"
    "tions\":{\"keyrotator.io/rotate\":\"\",\"keyrotator.io/abort\":\"\",\"keyrotator.io/"
    "promote\":\"\"},\"labels\":{},\"finalizers\":[\"keyrotator.io/cleanup\"],\"deletionT"
    "imestamp\":\"\",{\"refs\":[\"Deployment/\",\"StatefulSet/\",\"DaemonSet/\",\"KeyStor"
    "e/\",\"ClusterKeyStore//\"],\"secret\":\"\",\"created\":\"2026-01-01T00:00:00Z\",\"r"
    "v\":\"\",\"object\":{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotatio"
    "n\",\"metadata\":{\"creationTimestamp\":\"2026-01-01T00:00:00Z\",\"generation\":1,\""
    "name\":\"\",\"namespace\":\"\",\"resourceVersion\":\"\",\"uid\":\"\"},\"spec\":{\"dr"
    "yRun\":false,\"historyLimit\":10,\"key\":{\"bytes\":32,\"prefix\":\"sk_\"},\"keyStor"
    "eRef\":{\"kind\":\"KeyStore\",\"name\":\"\"},\"pauseBeforeRevoke\":false,\"secretRef"
    "\":{\"key\":\"API_KEY\",\"name\":\"\"},\"stages\":[{\"name\":\"api\",\"pause\":false"
    ",\"timeout\":\"10m\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"\"}]},{\"nam"
    "e\":\"ui\",\"pause\":false,\"timeout\":\"10m\",\"workloads\":[{\"kind\":\"Deployment"
    "\",\"name\":\"\"}]},{\"name\":\"engine\",\"pause\":false,\"timeout\":\"10m\",\"workl"
    "oads\":[{\"kind\":\"Deployment\",\"name\":\"\"}]}],\"suspend\":false,\"unlistedConsu"
    "mers\":\"HoldRevoke\",\"validationPeriod\":\"0s\"},\"status\":{\"observedGeneration\""
    ":1,\"phase\":\"Idle\",\"currentKey\":{\"id\":\"\",\"createdAt\":\"2026-01-01T00:00:0"
    "0Z\",\"label\":\"bootstrap\"},\"lastRotationTime\":\"2026-01-01T00:00:00Z\",\"nextRo"
    "tationTime\":\"2026-01-01T00:00:00Z\",\"conditions\":[{\"type\":\"Ready\",\"status\""
    ":\"True\",\"observedGeneration\":1,\"lastTransitionTime\":\"2026-01-01T00:00:00Z\",\""
    "reason\":\"KeyCurrent\",\"message\":\"key  is current\"},{\"type\":\"Rotating\",\"st"
    "atus\":\"False\",\"observedGeneration\":1,\"lastTransitionTime\":\"2026-01-01T00:00:"
    "00Z\",\"reason\":\"Idle\",\"message\":\"no rotation in flight\"},{\"type\":\"Degrade"
    "d\",\"status\":\"False\",\"observedGeneration\":1,\"lastTransitionTime\":\"2026-01-0"
    "1T00:00:00Z\",\"reason\":\"AsExpected\",\"message\":\"nothing needs attention\"},{\""
    "type\":\"KeyStoreInSync\",\"status\":\"True\",\"observedGeneration\":1,\"lastTransit"
    "ionTime\":\"2026-01-01T00:00:00Z\",\"reason\":\"InSync\",\"message\":\"the key store"
    " holds every key in use\"}],\"history\":[{\"keyId\":\"\",\"trigger\":\"Bootstrap\",\""
    "activatedAt\":\"2026-01-01T00:00:00Z\",\"revokedAt\":\"2026-01-01T00:00:00Z\",\"outc"
    "ome\":\"Succeeded\"}],\"stages\":[{\"name\":\"api\",\"state\":\"Done\",\"workloads\""
    ":[{\"kind\":\"Deployment\",\"name\":\"\",\"keyId\":\"\",\"ready\":\"1/1\"}]},{\"name"
    "\":\"ui\",\"state\":\"Done\",\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"\",\""
    "keyId\":\"\",\"ready\":\"1/1\"}]},{\"name\":\"engine\",\"state\":\"Done\",\"workload"
    "s\":[{\"kind\":\"Deployment\",\"name\":\"\",\"keyId\":\"\",\"ready\":\"1/1\"}]}]}}}";

static const char kr_workload_words[] =
    "{\"generation\":1,\"replicas\":1,\"paused\":true,\"keyId\":\"\",\"grace\":30,\"updat"
    "eStrategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"partition\":0,\"maxUnav"
    "ailable\":1}},\"status\":{\"observedGeneration\":1,\"replicas\":1,\"updatedReplicas\""
    ":1,\"readyReplicas\":1,\"availableReplicas\":1,\"updateRevision\":\"\",\"currentRevi"
    "sion\":\"\",\"desiredNumberScheduled\":1,\"updatedNumberScheduled\":1,\"numberAvaila"
    "ble\":1,\"progressDeadlineExceeded\":true},\"secrets\":[\"\",\"\"]}";

static const struct kr_pack_dict kr_keyrotation_dict = {kr_keyrotation_words,
							 sizeof(kr_keyrotation_words) - 1};
static const struct kr_pack_dict kr_workload_dict = {kr_workload_words,
						     sizeof(kr_workload_words) - 1};

/* In enum kr_source's order. */
static const struct kr_controller_source kr_sources[KR_SRC_N] = {
    [KR_SRC_KEYROTATIONS] = {&kr_kube_keyrotations, kr_reconciler_project_keyrotation, true,
			     keyrotation_refs, &kr_keyrotation_dict},
    [KR_SRC_DEPLOYMENTS] = {&kr_kube_deployments, kr_reconciler_project_workload, false,
			    workload_refs, &kr_workload_dict},
    [KR_SRC_STATEFULSETS] = {&kr_kube_statefulsets, kr_reconciler_project_workload, false,
			     workload_refs, &kr_workload_dict},
    [KR_SRC_DAEMONSETS] = {&kr_kube_daemonsets, kr_reconciler_project_workload, false,
			   workload_refs, &kr_workload_dict},
    [KR_SRC_KEYSTORES] = {&kr_kube_keystores, kr_reconciler_project_store, false, NULL},
    [KR_SRC_CLUSTERKEYSTORES] = {&kr_kube_clusterkeystores, kr_reconciler_project_store, false,
				 NULL},
    [KR_SRC_CRONJOBS] = {&kr_kube_cronjobs, kr_reconciler_project_cronjob, false, workload_refs},
};

const struct kr_controller_source *kr_reconciler_sources(void)
{
	return kr_sources;
}
