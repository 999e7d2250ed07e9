/* metrics.c - keyrotator's own metric families (the runtime registers its own). */
#include "reconciler/reconciler.h"

static const double rotation_buckets[] = {1,   5,	15,   30,   60,	  120,	300,
					  600, 900, 1800, 3600, 7200, 10800};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum kr_status kr_metrics_register_keyrotator(struct kr_metrics *m,
					      struct kr_keyrotator_metrics *out,
					      struct kr_error *err)
{
	/* Every outcome is a series from the start: alerts on rate() see the first one. */
	static const char *const outcomes[] = {"succeeded", "rolled_back", "failed", NULL};
	/* clang-format off */
	const struct kr_metric_row rows[] = {
		{{KR_METRIC_COUNTER, "rotations_total",
		  "Rotations finished, by outcome (succeeded, rolled_back, failed).", {"outcome"},
		  NULL, 0}, &out->rotations_total, outcomes},
		{{KR_METRIC_HISTOGRAM, "rotation_duration_seconds",
		  "Time from the start of a rotation to its end.", {NULL}, rotation_buckets,
		  ARRAY_LEN(rotation_buckets)}, &out->rotation_duration_seconds, NULL},
		{{KR_METRIC_GAUGE, "unauthorized_rate",
		  "Last measured 401 responses per second during a rotation.",
		  {"namespace", "name"}, NULL, 0}, &out->unauthorized_rate, NULL},
		{{KR_METRIC_GAUGE, "key_age_seconds", "Age of the current key of a KeyRotation.",
		  {"namespace", "name"}, NULL, 0}, &out->key_age_seconds, NULL},
		{{KR_METRIC_COUNTER, "keystore_repairs_total",
		  "Key store entries repaired by reconcile (drift fixed).", {NULL}, NULL, 0},
		 &out->keystore_repairs_total, NULL},
		{{KR_METRIC_GAUGE, "ready", "1 while the KeyRotation's Ready condition is True.",
		  {"namespace", "name"}, NULL, 0}, &out->ready, NULL},
		{{KR_METRIC_GAUGE, "phase", "1 for the KeyRotation's phase (status.phase).",
		  {"namespace", "name", "phase"}, NULL, 0}, &out->phase, NULL},
		{{KR_METRIC_GAUGE, "keystore_in_sync",
		  "1 while the KeyRotation's KeyStoreInSync condition is True.",
		  {"namespace", "name"}, NULL, 0}, &out->keystore_in_sync, NULL},
		{{KR_METRIC_GAUGE, "max_key_age_seconds", "spec.maxKeyAge of the KeyRotation.",
		  {"namespace", "name"}, NULL, 0}, &out->max_key_age_seconds, NULL},
		{{KR_METRIC_GAUGE, "stage_deadline_timestamp_seconds",
		  "Unix time by which the stage rolling out must be done (its start plus "
		  "spec.stages[].timeout).", {"namespace", "name"}, NULL, 0},
		 &out->stage_deadline_timestamp_seconds, NULL},
		{{KR_METRIC_GAUGE, "keystore_up",
		  "1 while the KeyStore or ClusterKeyStore is Ready (valid, and its server answers).",
		  {"kind", "namespace", "keystore"}, NULL, 0}, &out->keystore_up, NULL},
	};
	/* clang-format on */
	enum kr_status rc =
	    kr_metrics_register_table(m, KR_METRICS_PREFIX, rows, ARRAY_LEN(rows), err);

	if (rc == KR_OK)
		kr_counter_add(out->keystore_repairs_total, NULL, 0);
	return rc;
}
