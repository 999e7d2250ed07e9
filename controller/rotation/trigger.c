/* trigger.c - what starts a rotation (annotations, bootstrap, schedule, maxKeyAge), and when. */
#include <stdio.h>
#include <string.h>

#include "rotation/internal.h"

/* The schedule counts from the last rotation, the last attempt (after a failure), or creation. */
static time_t schedule_base(const struct kr_rotation_status *st, time_t created_at)
{
	time_t base = created_at;

	if (st->last_rotation_time > base)
		base = st->last_rotation_time;
	if (st->phase == KR_PHASE_FAILED && st->rotation.started_at > base)
		base = st->rotation.started_at;
	return base;
}

static time_t schedule_next(const struct kr_rotation_spec *spec,
			    const struct kr_rotation_status *st, time_t created_at)
{
	time_t next = 0;

	if (!spec->schedule)
		return 0;
	if (kr_cron_next(&spec->cron, schedule_base(st, created_at), &next, NULL) != KR_OK)
		return 0;
	return next;
}

time_t kr_rotation_key_born(const struct kr_rotation_status *st, time_t created_at)
{
	if (st->current_key.created_at)
		return st->current_key.created_at;
	return st->last_rotation_time ? st->last_rotation_time : created_at;
}

/* maxKeyAge counts from the key's creation; a failed rotation waits for another trigger. */
static time_t max_age_next(const struct kr_rotation_spec *spec, const struct kr_rotation_status *st,
			   time_t created_at)
{
	if (spec->max_key_age_ms < 0 || st->phase == KR_PHASE_FAILED)
		return 0;
	return kr_rotation_key_born(st, created_at) + (time_t)(spec->max_key_age_ms / 1000);
}

time_t kr_rotation_next_time(const struct kr_rotation_spec *spec,
			     const struct kr_rotation_status *st, time_t created_at)
{
	time_t a = schedule_next(spec, st, created_at), b = max_age_next(spec, st, created_at);

	if (!a || (b && b < a))
		return b;
	return a;
}

static bool new_request(const char *value, const char *handled)
{
	return value && value[0] && strcmp(value, handled) != 0;
}

enum kr_trigger kr_due_trigger(const struct kr_observed *obs, const char **request, char *why,
			       size_t why_size)
{
	const struct kr_rotation_status *st = &obs->status;
	bool failed = st->phase == KR_PHASE_FAILED, has_key = obs->consumer.has_key;
	time_t t;

	*request = NULL;
	if (new_request(obs->emergency_request, st->last_handled_emergency)) {
		*request = obs->emergency_request;
		snprintf(why, why_size, "%s \"%.128s\"", KR_ANNOTATION_EMERGENCY, *request);
		return has_key ? KR_TRIGGER_EMERGENCY : KR_TRIGGER_BOOTSTRAP;
	}
	if (new_request(obs->rotate_request, st->last_handled_request)) {
		*request = obs->rotate_request;
		snprintf(why, why_size, "%s \"%.128s\"", KR_ANNOTATION_ROTATE, *request);
		return has_key ? KR_TRIGGER_MANUAL : KR_TRIGGER_BOOTSTRAP;
	}
	if (!has_key && !failed) {
		snprintf(why, why_size, "Secret %s has no key %s", obs->spec->secret_name,
			 obs->spec->secret_key);
		return KR_TRIGGER_BOOTSTRAP;
	}
	if (!has_key)
		return KR_TRIGGER_NONE;
	t = schedule_next(obs->spec, st, obs->created_at);
	if (t && t <= obs->now) {
		snprintf(why, why_size, "schedule \"%s\" was due", obs->spec->schedule);
		return KR_TRIGGER_SCHEDULE;
	}
	t = max_age_next(obs->spec, st, obs->created_at);
	if (t && t <= obs->now) {
		snprintf(why, why_size, "key %s is older than maxKeyAge", st->current_key.id);
		return KR_TRIGGER_MAX_AGE;
	}
	return KR_TRIGGER_NONE;
}
