/* status_json.h - a KeyRotation's .status as JSON: decode into the model, encode it back. */
#ifndef KR_STATUS_JSON_H
#define KR_STATUS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "rotation/rotation.h"

#define KR_STATUS_LABEL_MAX   256
#define KR_STATUS_HISTORY_MAX 100 /* the CRD's maximum spec.historyLimit */

/* A metav1.Condition, with its time. */
struct kr_status_condition {
	bool set; /* present in .status.conditions */
	enum kr_cond_status status;
	int64_t observed_generation; /* 0 = omitted */
	time_t last_transition;	     /* lastTransitionTime */
	char reason[64];
	char message[KR_ROT_MSG_MAX];
};

/*
 * The whole .status: the model the decision reads and writes, plus what the reconciler
 * keeps beside it (labels, conditions with their times, history, stages, plan).
 * `stages` and `plan` are owned cJSON arrays carried through verbatim (NULL = omitted;
 * the reconciler builds them); kr_status_doc_release frees them.
 * Initialise with kr_status_doc_init.
 */
struct kr_status_doc {
	struct kr_rotation_status status;
	char current_label[KR_STATUS_LABEL_MAX]; /* currentKey.label; "" = omitted */
	char pending_label[KR_STATUS_LABEL_MAX];
	char previous_label[KR_STATUS_LABEL_MAX];
	struct kr_status_condition conditions[KR_COND_COUNT];	/* indexed by enum kr_cond_type */
	struct kr_history_entry history[KR_STATUS_HISTORY_MAX]; /* oldest first */
	size_t n_history;
	cJSON *stages; /* owned: status.stages, an array of objects */
	cJSON *plan;   /* owned: status.plan, an array of strings */
};

/* An empty doc (kr_rotation_status_init'ed status, nothing else). */
void kr_status_doc_init(struct kr_status_doc *doc);
/* Free stages/plan and re-init. Safe on an initialised or released doc. */
void kr_status_doc_release(struct kr_status_doc *doc);

/*
 * Decode `status` (the object at .status; borrowed; NULL or JSON null = empty status)
 * into *out, which need not be initialised. Tolerant: missing fields take their defaults,
 * unknown fields and unknown condition types are ignored, unknown enum text gives the
 * NONE/IDLE value. A field of the wrong type, a time that is not RFC3339, a rate that is
 * not a number, a key id over 12 characters or a handled request over
 * KR_ROT_REQUEST_MAX - 1 bytes is KR_EINVAL with a message that starts with the path,
 * e.g. "status.rotation.stageIndex: must be an integer". Over-long free text (reasons,
 * messages, labels) is truncated. KR_ENOMEM. On error *out is released.
 */
enum kr_status kr_status_doc_decode(const cJSON *status, struct kr_status_doc *out,
				    struct kr_error *err);
/* Only the kr_rotation_status part of kr_status_doc_decode (same rules). */
enum kr_status kr_rotation_status_decode(const cJSON *status, struct kr_rotation_status *out,
					 struct kr_error *err);

/*
 * Encode `doc` in the CRD's status shape into *out (a new object, the caller's:
 * cJSON_Delete). Empty optional fields are omitted as Kubernetes' omitempty does (""
 * strings, 0 times and counts, false, stageIndex -1, NONE enums, empty key refs), so the
 * same doc always encodes to the same JSON. `spec` (borrowed, may be NULL) names
 * rotation.stage from rotation.stageIndex; without it `stage` is omitted. Only ids ever
 * appear, never key material: the model holds none. KR_EINVAL (a time outside years
 * 0000-9999), KR_ENOMEM.
 */
enum kr_status kr_status_doc_encode(const struct kr_status_doc *doc,
				    const struct kr_rotation_spec *spec, cJSON **out,
				    struct kr_error *err);
/* Only the kr_rotation_status part (no labels, conditions, history, stages, plan). */
enum kr_status kr_rotation_status_encode(const struct kr_rotation_status *st,
					 const struct kr_rotation_spec *spec, cJSON **out,
					 struct kr_error *err);

/*
 * How the reconciler skips no-op status writes: compare the encoded JSON, not the
 * structs. 1 when `current` (the object's .status as read, may be NULL) and `next` (an
 * encoded status, may be NULL) are the same JSON value; object key order does not
 * matter. Both borrowed.
 */
bool kr_status_json_same(const cJSON *current, const cJSON *next);

/*
 * The conditions to write: `next` (the decision's, kr_action.conditions; an entry with
 * an empty reason means "not decided": the old one is kept) over `old` (as decoded).
 * lastTransitionTime moves to `now` only when the status flips or the condition is new;
 * a changed reason or message alone keeps it. observedGeneration := `generation` on
 * every decided condition. `out` may alias `old`.
 */
void kr_conditions_merge(const struct kr_status_condition old[KR_COND_COUNT],
			 const struct kr_condition next[KR_COND_COUNT], int64_t generation,
			 time_t now, struct kr_status_condition out[KR_COND_COUNT]);

/* ---- the next status (status_next.c; pure) ------------------------------------------- */

/*
 * status.stages as the decision's status `st` sees them: per stage its state (Pending, Paused,
 * RollingOut, Analyzing, Done, Failed) and per workload (`wls`: spec->n_workloads entries,
 * as kr_observed.workloads) kind, name, keyId, ready and, when blocked, failed or missing, a
 * message. A new array the caller frees (cJSON_Delete); NULL when out of memory.
 */
cJSON *kr_status_stages(const struct kr_rotation_spec *spec, const struct kr_observed_workload *wls,
			const struct kr_rotation_status *st);
/* Append `h` to d->history, oldest dropped beyond `history_limit` (<= 0: 10; at most
 * KR_STATUS_HISTORY_MAX). */
void kr_status_doc_add_history(struct kr_status_doc *d, const struct kr_history_entry *h,
			       int history_limit);
/* revokedAt := now on the history entries of key `id` not yet marked (it was just revoked). */
void kr_status_doc_mark_revoked(struct kr_status_doc *d, const char *id, time_t now);

#endif
