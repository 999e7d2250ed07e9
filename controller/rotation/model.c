/* model.c - names of phases, triggers, steps, outcomes, actions and conditions; status init. */
#include <string.h>

#include "rotation/rotation.h"

static const char *const phase_names[] = {
    [KR_PHASE_IDLE] = "Idle",
    [KR_PHASE_ROTATING] = "Rotating",
    [KR_PHASE_VALIDATING] = "Validating",
    [KR_PHASE_REVOKING] = "Revoking",
    [KR_PHASE_ROLLING_BACK] = "RollingBack",
    [KR_PHASE_FAILED] = "Failed",
    [KR_PHASE_PAUSED] = "Paused",
};

static const char *const trigger_names[] = {
    [KR_TRIGGER_NONE] = "",
    [KR_TRIGGER_SCHEDULE] = "Schedule",
    [KR_TRIGGER_MAX_AGE] = "MaxAge",
    [KR_TRIGGER_MANUAL] = "Manual",
    [KR_TRIGGER_EMERGENCY] = "Emergency",
    [KR_TRIGGER_BOOTSTRAP] = "Bootstrap",
};

static const char *const step_names[] = {
    [KR_STEP_NONE] = "",
    [KR_STEP_BASELINE] = "Baseline",
    [KR_STEP_GENERATE] = "Generate",
    [KR_STEP_ACTIVATE] = "Activate",
    [KR_STEP_DISTRIBUTE] = "Distribute",
    [KR_STEP_ROLLOUT] = "RollOut",
    [KR_STEP_VALIDATE] = "Validate",
    [KR_STEP_REVOKE] = "Revoke",
    [KR_STEP_VERIFY] = "Verify",
    [KR_STEP_FINISH] = "Finish",
    [KR_STEP_ROLLBACK] = "RollBack",
    [KR_STEP_ROLLBACK_STAGES] = "RollBackStages",
    [KR_STEP_REVOKE_NEW] = "RevokeNew",
    [KR_STEP_FAIL_FINISH] = "FailFinish",
};

static const char *const outcome_names[] = {
    [KR_OUTCOME_NONE] = "",
    [KR_OUTCOME_SUCCEEDED] = "Succeeded",
    [KR_OUTCOME_ROLLED_BACK] = "RolledBack",
    [KR_OUTCOME_FAILED] = "Failed",
};

static const char *const action_names[] = {
    [KR_ACTION_NONE] = "NONE",
    [KR_ACTION_WAIT] = "WAIT",
    [KR_ACTION_REFUSE] = "REFUSE",
    [KR_ACTION_PLAN] = "PLAN",
    [KR_ACTION_UPDATE_STATUS] = "UPDATE_STATUS",
    [KR_ACTION_REPAIR_KEYSTORE] = "REPAIR_KEYSTORE",
    [KR_ACTION_CLEANUP] = "CLEANUP",
    [KR_ACTION_BEGIN] = "BEGIN",
    [KR_ACTION_ESCALATE] = "ESCALATE",
    [KR_ACTION_MEASURE] = "MEASURE",
    [KR_ACTION_RECORD_MEASUREMENT] = "RECORD_MEASUREMENT",
    [KR_ACTION_GENERATE] = "GENERATE",
    [KR_ACTION_ACTIVATE] = "ACTIVATE",
    [KR_ACTION_DISTRIBUTE] = "DISTRIBUTE",
    [KR_ACTION_RESTART_STAGE] = "RESTART_STAGE",
    [KR_ACTION_ADVANCE_STAGE] = "ADVANCE_STAGE",
    [KR_ACTION_START_REVOKE] = "START_REVOKE",
    [KR_ACTION_REVOKE_OLD] = "REVOKE_OLD",
    [KR_ACTION_VERIFY] = "VERIFY",
    [KR_ACTION_RECORD_VERIFY] = "RECORD_VERIFY",
    [KR_ACTION_FINISH] = "FINISH",
    [KR_ACTION_ROLLBACK_BEGIN] = "ROLLBACK_BEGIN",
    [KR_ACTION_ROLLBACK_SECRET] = "ROLLBACK_SECRET",
    [KR_ACTION_ROLLBACK_RESTART_STAGE] = "ROLLBACK_RESTART_STAGE",
    [KR_ACTION_REVOKE_NEW] = "REVOKE_NEW",
    [KR_ACTION_FAIL_FINISH] = "FAIL_FINISH",
};

#define NAME_OF(table, v)                                                                          \
	(((size_t)(v) < sizeof(table) / sizeof(table[0]) && table[v]) ? table[v] : "")

const char *kr_phase_name(enum kr_phase phase)
{
	return NAME_OF(phase_names, phase);
}

const char *kr_trigger_name(enum kr_trigger trigger)
{
	return NAME_OF(trigger_names, trigger);
}

const char *kr_step_name(enum kr_step step)
{
	return NAME_OF(step_names, step);
}

const char *kr_outcome_name(enum kr_outcome outcome)
{
	return NAME_OF(outcome_names, outcome);
}

const char *kr_action_name(enum kr_action_type type)
{
	return NAME_OF(action_names, type);
}

static int parse_in(const char *const *table, size_t n, const char *text)
{
	for (size_t i = 0; text && text[0] && i < n; i++)
		if (table[i] && strcmp(table[i], text) == 0)
			return (int)i;
	return 0;
}

#define PARSE_IN(table, text) parse_in(table, sizeof(table) / sizeof(table[0]), text)

enum kr_phase kr_phase_parse(const char *text)
{
	return (enum kr_phase)PARSE_IN(phase_names, text);
}

enum kr_trigger kr_trigger_parse(const char *text)
{
	return (enum kr_trigger)PARSE_IN(trigger_names, text);
}

enum kr_step kr_step_parse(const char *text)
{
	return (enum kr_step)PARSE_IN(step_names, text);
}

enum kr_outcome kr_outcome_parse(const char *text)
{
	return (enum kr_outcome)PARSE_IN(outcome_names, text);
}

bool kr_action_is_status_only(enum kr_action_type type)
{
	switch (type) {
	case KR_ACTION_NONE:
	case KR_ACTION_WAIT:
	case KR_ACTION_REFUSE:
	case KR_ACTION_UPDATE_STATUS:
	case KR_ACTION_BEGIN:
	case KR_ACTION_ESCALATE:
	case KR_ACTION_RECORD_MEASUREMENT:
	case KR_ACTION_ADVANCE_STAGE:
	case KR_ACTION_START_REVOKE:
	case KR_ACTION_RECORD_VERIFY:
	case KR_ACTION_ROLLBACK_BEGIN:
		return true;
	default:
		return false;
	}
}

const char *kr_cond_type_name(enum kr_cond_type type)
{
	static const char *const names[] = {"Ready", "Rotating", "Degraded", "KeyStoreInSync"};

	return NAME_OF(names, type);
}

const char *kr_cond_status_name(enum kr_cond_status status)
{
	static const char *const names[] = {"Unknown", "True", "False"};

	return NAME_OF(names, status);
}

void kr_rotation_status_init(struct kr_rotation_status *st)
{
	memset(st, 0, sizeof(*st));
	st->rotation.stage_index = -1;
}
