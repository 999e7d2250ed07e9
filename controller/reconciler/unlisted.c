/* unlisted.c - the workloads that read the consumers' Secret but that no stage lists
 * (design.md §1c), found through the runtime's index of what workloads refer to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

struct unlisted_walk {
	struct kr_world *w;
	struct kr_unlisted found[KR_ROT_UNLISTED_MAX];
	size_t n;
};

static bool listed(const struct kr_rotation_spec *spec, const char *kind, const char *name)
{
	for (size_t i = 0; i < spec->n_stages; i++)
		for (size_t j = 0; j < spec->stages[i].n_workloads; j++) {
			const struct kr_workload_ref *r = &spec->stages[i].workloads[j];

			if (!strcmp(kr_workload_kind_name(r->kind), kind) && !strcmp(r->name, name))
				return true;
		}
	return false;
}

/* One user "Kind/ns/name" of the Secret: kept when it is not in a stage. */
static void unlisted_one(void *arg, const char *user)
{
	struct unlisted_walk *u = arg;
	const char *ns = strchr(user, '/'), *name = ns ? strchr(ns + 1, '/') : NULL;
	struct kr_unlisted *out = &u->found[u->n];
	size_t kind_len = ns ? (size_t)(ns - user) : 0;

	if (!name || u->n >= KR_ROT_UNLISTED_MAX || kind_len >= sizeof(out->kind) ||
	    strlen(name + 1) >= sizeof(out->name))
		return;
	memcpy(out->kind, user, kind_len);
	out->kind[kind_len] = '\0';
	snprintf(out->name, sizeof(out->name), "%s", name + 1);
	if (!listed(&u->w->spec, out->kind, out->name))
		u->n++;
}

static int unlisted_cmp(const void *a, const void *b)
{
	const struct kr_unlisted *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	return c ? c : strcmp(x->name, y->name);
}

void kr_world_observe_unlisted(struct kr_world *w)
{
	struct unlisted_walk u = {.w = w};
	char ref[600];

	kr_controller_workload_ref(ref, sizeof(ref), "Secret", w->ns, w->spec.secret_name);
	kr_refindex_lookup(kr_controller_users(w->r->ctl), ref, unlisted_one, &u);
	qsort(u.found, u.n, sizeof(u.found[0]), unlisted_cmp);
	for (size_t i = 0; i < u.n; i++) { /* after the walk: not under the index's lock */
		cJSON *proj = NULL;

		if (strcmp(u.found[i].kind, "CronJob") != 0 ||
		    kr_informer_get(kr_controller_informer(w->r->ctl, KR_SRC_CRONJOBS), w->ns,
				    u.found[i].name, &proj) != KR_OK)
			continue;
		u.found[i].running = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(proj, "running"));
		cJSON_Delete(proj);
	}
	memcpy(w->obs.unlisted, u.found, sizeof(u.found));
	w->obs.n_unlisted = u.n;
}
