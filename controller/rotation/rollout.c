/* rollout.c - is a workload's rollout complete? `kubectl rollout status`, plus the key id. */
#include <stdio.h>
#include <string.h>

#include "rotation/rotation.h"

static bool deployment_complete(const struct kr_observed_workload *wl, char *msg, size_t size,
				const char *ref)
{
	if (wl->observed_generation < wl->generation)
		snprintf(msg, size, "%s: waiting for the new spec to be observed", ref);
	else if (wl->updated < wl->replicas)
		snprintf(msg, size, "%s: %d of %d replicas updated", ref, wl->updated,
			 wl->replicas);
	else if (wl->status_replicas > wl->updated)
		snprintf(msg, size, "%s: %d old replicas pending termination", ref,
			 wl->status_replicas - wl->updated);
	else if (wl->available < wl->replicas)
		snprintf(msg, size, "%s: %d of %d updated replicas are available", ref,
			 wl->available, wl->replicas);
	else
		return true;
	return false;
}

static bool statefulset_complete(const struct kr_observed_workload *wl, char *msg, size_t size,
				 const char *ref)
{
	if (wl->observed_generation < wl->generation)
		snprintf(msg, size, "%s: waiting for the new spec to be observed", ref);
	else if (wl->ready < wl->replicas)
		snprintf(msg, size, "%s: %d of %d replicas ready", ref, wl->ready, wl->replicas);
	else if (!wl->update_revision[0] || strcmp(wl->update_revision, wl->current_revision) != 0)
		snprintf(msg, size, "%s: %d of %d pods at the update revision", ref, wl->updated,
			 wl->replicas);
	else
		return true;
	return false;
}

static bool daemonset_complete(const struct kr_observed_workload *wl, char *msg, size_t size,
			       const char *ref)
{
	if (wl->observed_generation < wl->generation)
		snprintf(msg, size, "%s: waiting for the new spec to be observed", ref);
	else if (wl->updated_scheduled < wl->desired_scheduled)
		snprintf(msg, size, "%s: %d of %d pods updated", ref, wl->updated_scheduled,
			 wl->desired_scheduled);
	else if (wl->number_available < wl->desired_scheduled)
		snprintf(msg, size, "%s: %d of %d updated pods available", ref,
			 wl->number_available, wl->desired_scheduled);
	else
		return true;
	return false;
}

/* Why an incomplete rollout will not finish by itself, or NULL. */
static const char *blocked_cause(enum kr_workload_kind kind, const struct kr_observed_workload *wl)
{
	if (kind == KR_WORKLOAD_DEPLOYMENT && wl->paused)
		return "is paused (kubectl rollout resume)";
	if (kind != KR_WORKLOAD_DEPLOYMENT && wl->on_delete)
		return "has updateStrategy OnDelete: delete its pods to roll them";
	if (kind == KR_WORKLOAD_STATEFULSET && wl->partition > 0)
		return "has a rollingUpdate partition: pods below it keep the old key";
	return NULL;
}

enum kr_rollout_state kr_workload_rollout(enum kr_workload_kind kind, const char *name,
					  const struct kr_observed_workload *wl, const char *key_id,
					  char *msg, size_t msg_size)
{
	char ref[300], scratch[8];
	const char *cause;
	bool done;

	if (!msg || msg_size == 0) {
		msg = scratch;
		msg_size = sizeof(scratch);
	}
	msg[0] = '\0';
	snprintf(ref, sizeof(ref), "%s/%s", kr_workload_kind_name(kind), name);
	if (!wl->exists || !wl->kind_supported) {
		snprintf(msg, msg_size, "%s: %s", ref,
			 wl->exists ? "kind not served by the API server" : "not found");
		return KR_ROLLOUT_MISSING;
	}
	if (key_id && strcmp(wl->key_id, key_id) != 0) {
		snprintf(msg, msg_size, "%s: pod template has key-id \"%s\", not %s", ref,
			 wl->key_id, key_id);
		return KR_ROLLOUT_PROGRESSING;
	}
	if (kind == KR_WORKLOAD_DEPLOYMENT)
		done = deployment_complete(wl, msg, msg_size, ref);
	else if (kind == KR_WORKLOAD_STATEFULSET)
		done = statefulset_complete(wl, msg, msg_size, ref);
	else
		done = daemonset_complete(wl, msg, msg_size, ref);
	if (done)
		return KR_ROLLOUT_COMPLETE;
	if (kind == KR_WORKLOAD_DEPLOYMENT && wl->progress_deadline_exceeded) {
		snprintf(msg, msg_size, "%s: ProgressDeadlineExceeded", ref);
		return KR_ROLLOUT_FAILED;
	}
	cause = blocked_cause(kind, wl);
	if (cause) {
		snprintf(msg, msg_size, "%s %s", ref, cause);
		return KR_ROLLOUT_BLOCKED;
	}
	return KR_ROLLOUT_PROGRESSING;
}

void kr_workload_ready_text(enum kr_workload_kind kind, const struct kr_observed_workload *wl,
			    char *buf, size_t size)
{
	if (!wl->exists)
		snprintf(buf, size, "0/0");
	else if (kind == KR_WORKLOAD_DAEMONSET)
		snprintf(buf, size, "%d/%d",
			 wl->number_available < wl->updated_scheduled ? wl->number_available
								      : wl->updated_scheduled,
			 wl->desired_scheduled);
	else
		snprintf(buf, size, "%d/%d",
			 wl->available < wl->updated ? wl->available : wl->updated, wl->replicas);
}
