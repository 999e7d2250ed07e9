/* status_next.c - the parts of the next .status the reconciler used to work out itself
 * (status.stages, history trimming, revokedAt): pure functions of spec, observed workloads,
 * status and action, so they are tested without I/O. */
#include <stdio.h>
#include <string.h>

#include "rotation/status_json.h"

/* ---- status.stages: per stage, per workload adoption ---- */

static bool stage_on(const struct kr_rotation_spec *spec, const struct kr_observed_workload *wls,
		     size_t i, const char *id)
{
	const struct kr_stage_spec *st = &spec->stages[i];

	for (size_t j = 0; j < st->n_workloads; j++)
		if (!id[0] || strcmp(wls[st->first + j].key_id, id) != 0)
			return false;
	return true;
}

static const char *stage_state(const struct kr_rotation_spec *spec,
			       const struct kr_observed_workload *wls,
			       const struct kr_rotation_status *st, size_t i)
{
	const struct kr_rotation_progress *r = &st->rotation;
	bool rotating = st->phase != KR_PHASE_IDLE && st->phase != KR_PHASE_FAILED &&
			st->phase != KR_PHASE_ROLLING_BACK;
	const char *target = rotating ? st->pending_key.id : st->current_key.id;
	char msg[8];

	if (rotating && r->step == KR_STEP_ROLLOUT && r->stage_index >= 0) {
		if ((int)i < r->stage_index)
			return "Done";
		if ((int)i > r->stage_index)
			return "Pending";
		if (st->phase == KR_PHASE_PAUSED)
			return "Paused"; /* held before this stage (stages[].pause) */
		for (size_t j = 0; j < spec->stages[i].n_workloads; j++)
			if (kr_workload_rollout(spec->stages[i].workloads[j].kind,
						spec->stages[i].workloads[j].name,
						&wls[spec->stages[i].first + j], target, msg,
						sizeof(msg)) != KR_ROLLOUT_COMPLETE)
				return "RollingOut";
		return "Analyzing";
	}
	if (st->phase == KR_PHASE_FAILED && (int)i == r->stage_index)
		return "Failed";
	return stage_on(spec, wls, i, target) ? "Done" : "Pending";
}

cJSON *kr_status_stages(const struct kr_rotation_spec *spec, const struct kr_observed_workload *wls,
			const struct kr_rotation_status *st)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr && i < spec->n_stages; i++) {
		const struct kr_stage_spec *sp = &spec->stages[i];
		cJSON *s = cJSON_CreateObject(), *items;

		cJSON_AddItemToArray(arr, s);
		cJSON_AddStringToObject(s, "name", sp->name);
		cJSON_AddStringToObject(s, "state", stage_state(spec, wls, st, i));
		items = cJSON_AddArrayToObject(s, "workloads");
		for (size_t j = 0; j < sp->n_workloads; j++) {
			const struct kr_observed_workload *wl = &wls[sp->first + j];
			cJSON *o = cJSON_CreateObject();
			char ready[64], msg[KR_ROT_MSG_MAX];
			enum kr_rollout_state rs;

			cJSON_AddItemToArray(items, o);
			cJSON_AddStringToObject(o, "kind",
						kr_workload_kind_name(sp->workloads[j].kind));
			cJSON_AddStringToObject(o, "name", sp->workloads[j].name);
			if (wl->key_id[0])
				cJSON_AddStringToObject(o, "keyId", wl->key_id);
			kr_workload_ready_text(sp->workloads[j].kind, wl, ready, sizeof(ready));
			cJSON_AddStringToObject(o, "ready", ready);
			rs = kr_workload_rollout(sp->workloads[j].kind, sp->workloads[j].name, wl,
						 NULL, msg, sizeof(msg));
			if (rs == KR_ROLLOUT_BLOCKED || rs == KR_ROLLOUT_FAILED ||
			    rs == KR_ROLLOUT_MISSING)
				cJSON_AddStringToObject(o, "message", msg);
		}
	}
	return arr;
}

void kr_status_doc_add_history(struct kr_status_doc *d, const struct kr_history_entry *h,
			       int history_limit)
{
	size_t limit = history_limit > 0 ? (size_t)history_limit : 10;

	if (limit > KR_STATUS_HISTORY_MAX)
		limit = KR_STATUS_HISTORY_MAX;
	if (d->n_history >= KR_STATUS_HISTORY_MAX) {
		memmove(&d->history[0], &d->history[1], (d->n_history - 1) * sizeof(d->history[0]));
		d->n_history--;
	}
	d->history[d->n_history++] = *h;
	if (d->n_history > limit) {
		size_t drop = d->n_history - limit;

		memmove(&d->history[0], &d->history[drop], limit * sizeof(d->history[0]));
		d->n_history = limit;
	}
}

/* history[].revokedAt of the entries of key `id` not yet marked: it was just revoked. */
void kr_status_doc_mark_revoked(struct kr_status_doc *d, const char *id, time_t now)
{
	for (size_t i = 0; id[0] && i < d->n_history; i++)
		if (!strcmp(d->history[i].key_id, id) && !d->history[i].revoked_at)
			d->history[i].revoked_at = now;
}
