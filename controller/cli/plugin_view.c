/* plugin_view.c - `kubectl keyrotation status|history`: a KeyRotation's status, readable. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/plugin_view.h"
#include "rotation/rotation.h"
#include "rotation/schedule.h"
#include "json/json.h"
#include "rotation/status_json.h"

#define KR_TABLE_MAX_COLS 8

/* Rows of text cells printed with aligned columns, as kubectl's tables are. */
struct kr_table {
	size_t ncols;
	char **cells; /* nrows * ncols, owned */
	size_t nrows;
	size_t cap; /* rows */
	bool failed;
};

static void kr_table_init(struct kr_table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

static void kr_table_release(struct kr_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	kr_table_init(t, t->ncols);
}

/* Copy one row of t->ncols cells (NULL = ""); failure is remembered in t->failed. */
static void kr_table_add(struct kr_table *t, const char *const *row)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));

		if (!cells) {
			t->failed = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	for (size_t j = 0; j < t->ncols; j++) {
		char *c = strdup(row[j] ? row[j] : "");

		if (!c)
			t->failed = true;
		t->cells[t->nrows * t->ncols + j] = c;
	}
	t->nrows++;
}

static void kr_table_print(FILE *out, const struct kr_table *t, const char *indent)
{
	size_t width[KR_TABLE_MAX_COLS] = {0};

	for (size_t i = 0; i < t->nrows * t->ncols; i++) {
		size_t n = t->cells[i] ? strlen(t->cells[i]) : 0;

		if (n > width[i % t->ncols])
			width[i % t->ncols] = n;
	}
	for (size_t r = 0; r < t->nrows; r++) {
		char *const *row = &t->cells[r * t->ncols];
		size_t last = t->ncols;

		while (last > 1 && !(row[last - 1] && row[last - 1][0]))
			last--; /* no trailing blanks */
		fputs(indent, out);
		for (size_t j = 0; j + 1 < last; j++)
			fprintf(out, "%-*s   ", (int)width[j], row[j] ? row[j] : "");
		fprintf(out, "%s\n", row[last - 1] ? row[last - 1] : "");
	}
}

/* "45s", "12m", "5h", "90d": how long a duration of `secs` is, as kubectl's AGE shows it. */
static void kr_view_age(long long secs, char *buf, size_t size)
{
	if (secs < 120)
		snprintf(buf, size, "%llds", secs);
	else if (secs < 120 * 60)
		snprintf(buf, size, "%lldm", secs / 60);
	else if (secs < 48 * 3600)
		snprintf(buf, size, "%lldh", secs / 3600);
	else
		snprintf(buf, size, "%lldd", secs / 86400);
}

/* "2026-01-01T03:00:00Z" (with_age: " (5m ago)" / " (in 3d)"), or "-" for 0. */
static void kr_view_time(time_t t, bool with_age, char *buf, size_t size)
{
	char age[32];
	time_t now = time(NULL);

	if (!t || kr_time_format_rfc3339(t, buf, size) != KR_OK) {
		snprintf(buf, size, "-");
		return;
	}
	if (!with_age)
		return;
	kr_view_age(t <= now ? (long long)(now - t) : (long long)(t - now), age, sizeof(age));
	snprintf(buf + strlen(buf), size - strlen(buf), t <= now ? " (%s ago)" : " (in %s)", age);
}

/* The string member `field` of obj, or "". */
static const char *kr_view_str(const cJSON *obj, const char *field)
{
	const char *v = kr_json_str(obj, (const char *[]){field, NULL});

	return v ? v : "";
}

static void kr_view_conditions(FILE *out, const struct kr_status_doc *doc)
{
	struct kr_table t;
	char age[32];
	time_t now = time(NULL);

	kr_table_init(&t, 5);
	kr_table_add(&t, (const char *const[]){"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"});
	for (int i = 0; i < KR_COND_COUNT; i++) {
		const struct kr_status_condition *c = &doc->conditions[i];

		if (!c->set)
			continue;
		if (c->last_transition && c->last_transition <= now)
			kr_view_age((long long)(now - c->last_transition), age, sizeof(age));
		else
			snprintf(age, sizeof(age), "-");
		kr_table_add(&t, (const char *const[]){kr_cond_type_name((enum kr_cond_type)i),
						       kr_cond_status_name(c->status), c->reason,
						       age, c->message});
	}
	if (t.nrows > 1) {
		fprintf(out, "Conditions:\n");
		kr_table_print(out, &t, "  ");
	} else {
		fprintf(out, "Conditions:         <none>\n");
	}
	kr_table_release(&t);
}

static void kr_view_keys(FILE *out, const struct kr_status_doc *doc)
{
	const struct kr_key_ref *keys[] = {&doc->status.current_key, &doc->status.pending_key,
					   &doc->status.previous_key};
	const char *labels[] = {doc->current_label, doc->pending_label, doc->previous_label};
	const char *names[] = {"current", "pending", "previous"};
	char when[64];
	struct kr_table t;

	kr_table_init(&t, 4);
	for (int i = 0; i < 3; i++) {
		if (!keys[i]->id[0])
			continue;
		kr_view_time(keys[i]->created_at, true, when, sizeof(when));
		kr_table_add(&t, (const char *const[]){names[i], keys[i]->id, when, labels[i]});
	}
	fprintf(out, "Keys:%s\n", t.nrows ? "" : "               <none>");
	kr_table_print(out, &t, "  ");
	kr_table_release(&t);
}

static void kr_view_rotation(FILE *out, const struct kr_status_doc *doc, const cJSON *status,
			     size_t n_stages)
{
	const struct kr_rotation_progress *r = &doc->status.rotation;
	const cJSON *raw = cJSON_GetObjectItemCaseSensitive(status, "rotation");
	const char *stage = kr_view_str(raw, "stage");
	char when[64];

	if (r->trigger == KR_TRIGGER_NONE && r->step == KR_STEP_NONE)
		return;
	kr_view_time(r->started_at, true, when, sizeof(when));
	fprintf(out, "Rotation:\n  Trigger:          %s\n  Started:          %s\n",
		kr_trigger_name(r->trigger), when);
	if (r->step != KR_STEP_NONE)
		fprintf(out, "  Step:             %s\n", kr_step_name(r->step));
	if (r->stage_index >= 0 && n_stages)
		fprintf(out, "  Stage:            %s (%d of %zu)\n", stage[0] ? stage : "?",
			r->stage_index + 1, n_stages);
	else if (r->stage_index >= 0 || stage[0])
		fprintf(out, "  Stage:            %s\n", stage[0] ? stage : "?");
	if (r->has_baseline)
		fprintf(out, "  Baseline:         %g/s\n", r->baseline);
	if (r->failures || r->errors)
		fprintf(out, "  In a row:         %d failed, %d inconclusive measurements\n",
			r->failures, r->errors);
	if (r->outcome != KR_OUTCOME_NONE)
		fprintf(out, "  Outcome:          %s\n", kr_outcome_name(r->outcome));
	if (r->reason[0])
		fprintf(out, "  Reason:           %s\n", r->reason);
}

/* The key id a workload runs, marked new/old against the rotation's keys. */
static void kr_view_key_cell(const struct kr_rotation_status *st, const char *id, char *buf,
			     size_t size)
{
	const char *mark = "";

	if (!id[0])
		id = "-";
	else if (st->pending_key.id[0] && !strcmp(id, st->pending_key.id))
		mark = " (new)";
	else if (st->pending_key.id[0] && !strcmp(id, st->current_key.id))
		mark = " (old)";
	else if (!strcmp(id, st->current_key.id))
		mark = " (current)";
	snprintf(buf, size, "%s%s", id, mark);
}

/* status.stages: one row per workload, then how many of them run the target key. */
static void kr_view_stages(FILE *out, const struct kr_status_doc *doc)
{
	const struct kr_rotation_status *st = &doc->status;
	const char *target = st->pending_key.id[0] ? st->pending_key.id : st->current_key.id;
	const cJSON *stage, *wl;
	char what[300], key[64];
	int total = 0, adopted = 0;
	struct kr_table t;

	kr_table_init(&t, 6);
	kr_table_add(
	    &t, (const char *const[]){"STAGE", "STATE", "WORKLOAD", "KEY ID", "READY", "MESSAGE"});
	cJSON_ArrayForEach(stage, doc->stages)
	{
		const char *name = kr_view_str(stage, "name"), *state = kr_view_str(stage, "state");
		const cJSON *wls = cJSON_GetObjectItemCaseSensitive(stage, "workloads");

		if (!cJSON_GetArraySize(wls))
			kr_table_add(&t, (const char *const[]){name, state, "-", "", "", ""});
		cJSON_ArrayForEach(wl, wls)
		{
			const char *id = kr_view_str(wl, "keyId");

			snprintf(what, sizeof(what), "%s/%s", kr_view_str(wl, "kind"),
				 kr_view_str(wl, "name"));
			kr_view_key_cell(st, id, key, sizeof(key));
			kr_table_add(&t, (const char *const[]){name, state, what, key,
							       kr_view_str(wl, "ready"),
							       kr_view_str(wl, "message")});
			name = state = ""; /* once per stage */
			total++;
			adopted += target[0] && !strcmp(id, target);
		}
	}
	if (t.nrows > 1) {
		fprintf(out, "Stages:\n");
		kr_table_print(out, &t, "  ");
		if (target[0])
			fprintf(out, "Adoption:           %d of %d workloads run key %s%s\n",
				adopted, total, target, st->pending_key.id[0] ? " (new)" : "");
	} else {
		fprintf(out, "Stages:             <none>\n");
	}
	kr_table_release(&t);
}

static void kr_view_times(FILE *out, const struct kr_status_doc *doc)
{
	const struct kr_rotation_status *st = &doc->status;
	char when[64];

	if (st->has_rate)
		fprintf(out, "Unauthorized rate:  %g/s\n", st->unauthorized_rate);
	else
		fprintf(out, "Unauthorized rate:  -\n");
	kr_view_time(st->last_rotation_time, true, when, sizeof(when));
	fprintf(out, "Last rotation:      %s\n", when);
	kr_view_time(st->next_rotation_time, true, when, sizeof(when));
	fprintf(out, "Next rotation:      %s\n", when);
	if (st->unknown_members)
		fprintf(out,
			"Unknown members:    %d in the active set (other tenants; never removed)\n",
			st->unknown_members);
	for (size_t i = 0; i < st->n_unlisted; i++)
		fprintf(out, "%s%s/%s (reads the Secret; no stage lists it)\n",
			i ? "                    " : "Unlisted consumers: ", st->unlisted[i].kind,
			st->unlisted[i].name);
}

static const char *kr_view_meta(const cJSON *obj, const char *field)
{
	return kr_view_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), field);
}

/* Decode .status; prints the error. */
static int kr_view_decode(const cJSON *obj, struct kr_status_doc *doc)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	struct kr_error err;

	kr_error_clear(&err);
	if (kr_status_doc_decode(status, doc, &err) != KR_OK) {
		fprintf(stderr, "error: keyrotation.keyrotator.io/%s: %s\n",
			kr_view_meta(obj, "name"), err.msg);
		return KR_EXIT_FAIL;
	}
	return KR_EXIT_OK;
}

static int kr_view_json(FILE *out, const cJSON *item, const char *empty)
{
	char *text = item ? cJSON_Print(item) : NULL;

	fprintf(out, "%s\n", text ? text : empty);
	free(text);
	return KR_EXIT_OK;
}

/* The key store the spec names: "KeyStore ns/name", "ClusterKeyStore name", or inline. */
static void kr_view_store(FILE *out, const cJSON *obj)
{
	const char *kind = kr_json_str(obj, (const char *[]){"spec", "keyStoreRef", "kind", NULL});
	const char *name = kr_json_str(obj, (const char *[]){"spec", "keyStoreRef", "name", NULL});
	const char *addr = kr_json_str(obj, (const char *[]){"spec", "keyStore", "address", NULL});

	if (name && kind && !strcmp(kind, "ClusterKeyStore"))
		fprintf(out, "Key store:          ClusterKeyStore %s\n", name);
	else if (name)
		fprintf(out, "Key store:          KeyStore %s/%s\n", kr_view_meta(obj, "namespace"),
			name);
	else if (addr)
		fprintf(out,
			"Key store:          inline spec.keyStore %s (honoured only with "
			"--allow-inline-key-stores)\n",
			addr);
}

static void kr_view_header(FILE *out, const cJSON *obj, const struct kr_status_doc *doc,
			   const cJSON *status)
{
	const cJSON *gen = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "generation");
	int64_t observed = doc->status.observed_generation;

	fprintf(out, "Name:               %s\nNamespace:          %s\nPhase:              %s\n",
		kr_view_meta(obj, "name"), kr_view_meta(obj, "namespace"),
		kr_phase_name(doc->status.phase));
	if (doc->status.phase == KR_PHASE_PAUSED)
		fprintf(out,
			"                    (%s: `kubectl keyrotation promote %s` goes on, "
			"`kubectl keyrotation abort %s` rolls back)\n",
			doc->conditions[KR_COND_ROTATING].message, kr_view_meta(obj, "name"),
			kr_view_meta(obj, "name"));
	kr_view_store(out, obj);
	if (!cJSON_IsObject(status) || !status->child)
		fprintf(out, "                    (no status yet: has the controller seen this "
			     "object? is keyrotator running?)\n");
	else if (cJSON_IsNumber(gen) && observed && observed < (int64_t)gen->valuedouble)
		fprintf(out,
			"                    (status is for generation %lld; the spec is at "
			"generation %lld)\n",
			(long long)observed, (long long)gen->valuedouble);
}

int kr_plugin_view_status(FILE *out, const cJSON *obj, bool json)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	struct kr_rotation_spec spec;
	struct kr_status_doc doc;
	size_t n_stages = 0;

	if (json)
		return kr_view_json(out, status, "{}");
	if (kr_view_decode(obj, &doc) != KR_EXIT_OK)
		return KR_EXIT_FAIL;
	/* The spec only adds the stage count; a spec the controller would refuse shows anyway. */
	if (kr_rotation_spec_decode(obj, &spec, NULL) == KR_OK) {
		n_stages = spec.n_stages;
		kr_rotation_spec_release(&spec);
	}
	kr_view_header(out, obj, &doc, status);
	kr_view_conditions(out, &doc);
	kr_view_keys(out, &doc);
	kr_view_rotation(out, &doc, status, n_stages);
	kr_view_stages(out, &doc);
	kr_view_times(out, &doc);
	kr_status_doc_release(&doc);
	return ferror(out) ? KR_EXIT_FAIL : KR_EXIT_OK;
}

int kr_plugin_view_history(FILE *out, const cJSON *obj, bool json)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
	char activated[KR_RFC3339_BUFSZ + 8], revoked[KR_RFC3339_BUFSZ + 8];
	struct kr_status_doc doc;
	struct kr_table t;
	int code = KR_EXIT_OK;

	if (json)
		return kr_view_json(out, cJSON_GetObjectItemCaseSensitive(status, "history"), "[]");
	if (kr_view_decode(obj, &doc) != KR_EXIT_OK)
		return KR_EXIT_FAIL;
	if (doc.n_history == 0) {
		fprintf(out, "No rotations recorded for keyrotation.keyrotator.io/%s.\n",
			kr_view_meta(obj, "name"));
		kr_status_doc_release(&doc);
		return KR_EXIT_OK;
	}
	kr_table_init(&t, 6);
	kr_table_add(&t, (const char *const[]){"KEY ID", "TRIGGER", "ACTIVATED", "REVOKED",
					       "OUTCOME", "REASON"});
	for (size_t i = 0; i < doc.n_history; i++) {
		const struct kr_history_entry *h = &doc.history[i];

		kr_view_time(h->activated_at, false, activated, sizeof(activated));
		kr_view_time(h->revoked_at, false, revoked, sizeof(revoked));
		kr_table_add(&t,
			     (const char *const[]){
				 h->key_id[0] ? h->key_id : "-",
				 h->trigger ? kr_trigger_name(h->trigger) : "-", activated, revoked,
				 h->outcome ? kr_outcome_name(h->outcome) : "-", h->reason});
	}
	if (t.failed) {
		fprintf(stderr, "error: out of memory\n");
		code = KR_EXIT_FAIL;
	} else {
		kr_table_print(out, &t, "");
	}
	kr_table_release(&t);
	kr_status_doc_release(&doc);
	return code == KR_EXIT_OK && ferror(out) ? KR_EXIT_FAIL : code;
}
