/* expect.c - pod-template patches the informer cache has not shown yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

/* Unlink and return the expectation of `ref`, or NULL. Under r->lock. */
static struct kr_expect *expect_take(struct kr_reconciler *r, const char *ref)
{
	struct kr_expect **pp, *e;

	for (pp = &r->expects; (e = *pp); pp = &e->next)
		if (strcmp(e->ref, ref) == 0) {
			*pp = e->next;
			return e;
		}
	return NULL;
}

static void expect_free(struct kr_expect *e)
{
	if (e)
		free(e->ref);
	free(e);
}

void kr_expect_set(struct kr_reconciler *r, const char *ref, const char *key_id, int64_t generation)
{
	struct kr_expect *e;

	pthread_mutex_lock(&r->lock);
	e = expect_take(r, ref);
	if (!e && (e = calloc(1, sizeof(*e))) && !(e->ref = strdup(ref))) {
		free(e);
		e = NULL;
	}
	if (e) {
		snprintf(e->key_id, sizeof(e->key_id), "%s", key_id);
		e->generation = generation;
		e->next = r->expects;
		r->expects = e;
	}
	pthread_mutex_unlock(&r->lock);
}

void kr_expect_apply(struct kr_reconciler *r, const char *ref, struct kr_observed_workload *wl)
{
	struct kr_expect *e, *gone = NULL;

	pthread_mutex_lock(&r->lock);
	e = expect_take(r, ref);
	if (e && wl->exists && wl->generation < e->generation) {
		/* The cache is behind our own patch: see the workload as the patch left it. */
		snprintf(wl->key_id, sizeof(wl->key_id), "%s", e->key_id);
		wl->generation = e->generation;
		e->next = r->expects;
		r->expects = e;
	} else {
		gone = e; /* the cache caught up (or the workload went): forget it */
	}
	pthread_mutex_unlock(&r->lock);
	expect_free(gone);
}

void kr_expect_free_all(struct kr_reconciler *r)
{
	while (r->expects) {
		struct kr_expect *e = r->expects;

		r->expects = e->next;
		expect_free(e);
	}
}
