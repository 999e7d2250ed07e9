/* informer.c - a reflector thread feeding a cache of projections; the reference index. */
#include "runtime/informer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "runtime/pack.h"

/* ---- the informer ---- */

struct kr_informer {
	struct kr_kube_config *cfg;
	struct kr_informer_opts o;
	struct kr_kube_reflector *r;
	pthread_t thread;
	int started, stopped;
	atomic_int synced, running;
	pthread_mutex_t lock; /* guards cache */
	/*
	 * "ns/name" -> the projection printed as compact JSON and packed (pack.h; NULL:
	 * empty). Text costs a tenth of a cJSON tree (a node of 64 bytes plus its own key
	 * string per field), packed text a third of that again, and every reader gets its
	 * own copy anyway.
	 */
	struct kr_smap cache;
};

/* The cached projection back as text; NULL for NULL (or out of memory). */
static char *kr_informer_unpack(const struct kr_informer *inf, const char *pack)
{
	return pack ? kr_unpack(pack, inf->o.pack_dict) : NULL;
}

/* The cached projection back as a tree; NULL for NULL (or out of memory). */
static cJSON *kr_informer_parse(const struct kr_informer *inf, const char *pack)
{
	char *text = kr_informer_unpack(inf, pack);
	cJSON *tree = text ? cJSON_Parse(text) : NULL;

	free(text);
	return tree;
}

static const char *kr_informer_meta(const cJSON *obj, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), field);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void kr_informer_key(char *key, size_t size, const char *ns, const char *name)
{
	snprintf(key, size, "%s/%s", ns ? ns : "", name);
}

static void kr_informer_on_event(void *arg, enum kr_kube_event_type type, const cJSON *obj)
{
	struct kr_informer *inf = arg;
	const char *ns = kr_informer_meta(obj, "namespace"), *name = kr_informer_meta(obj, "name");
	cJSON *proj = NULL, *old = NULL;
	char *printed = NULL, *text = NULL, *old_text = NULL;
	struct kr_smap_entry *e = NULL;
	bool same = false;
	char key[512];

	if (!name[0])
		return;
	kr_informer_key(key, sizeof(key), ns, name);
	if (type != KR_KUBE_DELETED && inf->o.project)
		proj = inf->o.project(inf->o.project_arg, obj);
	if (proj && (!(printed = cJSON_PrintUnformatted(proj)) ||
		     !(text = kr_pack(printed, inf->o.pack_dict)))) {
		cJSON_Delete(proj); /* out of memory: handled as a miss below */
		proj = NULL;
	}
	free(printed);
	pthread_mutex_lock(&inf->lock);
	if (type == KR_KUBE_DELETED) {
		old_text = kr_smap_take(&inf->cache, key);
	} else {
		e = kr_smap_upsert(&inf->cache, key);
		if (e) {
			old_text = e->val;
			e->val = text;
			text = NULL;
			/* What the caller keeps did not change (a status it leaves out, say). */
			same = type != KR_KUBE_DELETED && old_text && e->val &&
			       kr_pack_equal(old_text, e->val);
		}
	}
	pthread_mutex_unlock(&inf->lock);
	/* Out of memory: the cache misses this object; the handler still hears of it. */
	if (inf->o.on_change && !same) {
		old = kr_informer_parse(inf, old_text);
		inf->o.on_change(inf->o.change_arg, type, ns, name, old, e ? proj : NULL);
	}
	cJSON_Delete(proj);
	cJSON_Delete(old);
	free(text);
	free(old_text);
}

static void kr_informer_on_synced(void *arg, const char *rv)
{
	struct kr_informer *inf = arg;

	(void)rv;
	atomic_store(&inf->synced, 1);
	if (inf->o.on_synced)
		inf->o.on_synced(inf->o.change_arg);
}

static void kr_informer_on_error(void *arg, const struct kr_error *err)
{
	struct kr_informer *inf = arg;

	if (inf->o.on_error)
		inf->o.on_error(inf->o.change_arg, err);
}

struct kr_informer *kr_informer_new(struct kr_kube_config *cfg, const struct kr_informer_opts *o,
				    struct kr_error *err)
{
	struct kr_informer *inf = calloc(1, sizeof(*inf));
	struct kr_kube_watch_handler h = {kr_informer_on_event, kr_informer_on_synced,
					  kr_informer_on_error, inf};

	if (!inf) {
		kr_error_set(err, KR_ENOMEM, "informer: out of memory");
		return NULL;
	}
	inf->cfg = cfg;
	inf->o = *o;
	inf->cache.drop = free;
	pthread_mutex_init(&inf->lock, NULL);
	atomic_init(&inf->synced, 0);
	atomic_init(&inf->running, 0);
	inf->r = kr_kube_reflector_new(cfg, &inf->o.watch, &h, err);
	if (!inf->r) {
		kr_error_prefix(err, "informer %s: ", o->watch.res ? o->watch.res->plural : "?");
		pthread_mutex_destroy(&inf->lock);
		free(inf);
		return NULL;
	}
	return inf;
}

static void *kr_informer_main(void *arg)
{
	struct kr_informer *inf = arg;

	kr_kube_reflector_run(inf->r);
	atomic_store(&inf->running, 0);
	return NULL;
}

enum kr_status kr_informer_start(struct kr_informer *inf, struct kr_error *err)
{
	if (inf->started)
		return kr_error_set(err, KR_ESTATE, "informer %s: already started",
				    kr_informer_name(inf));
	atomic_store(&inf->running, 1);
	if (pthread_create(&inf->thread, NULL, kr_informer_main, inf) != 0) {
		atomic_store(&inf->running, 0);
		return kr_error_set(err, KR_ENOMEM, "informer %s: cannot start a thread",
				    kr_informer_name(inf));
	}
	inf->started = 1;
	return KR_OK;
}

void kr_informer_stop(struct kr_informer *inf)
{
	if (!inf || !inf->started || inf->stopped)
		return;
	inf->stopped = 1;
	kr_kube_reflector_stop(inf->r);
	pthread_join(inf->thread, NULL);
}

void kr_informer_free(struct kr_informer *inf)
{
	if (!inf)
		return;
	kr_informer_stop(inf);
	kr_kube_reflector_free(inf->r);
	kr_smap_release(&inf->cache);
	pthread_mutex_destroy(&inf->lock);
	free(inf);
}

int kr_informer_has_synced(struct kr_informer *inf)
{
	return atomic_load(&inf->synced);
}

int kr_informer_alive(struct kr_informer *inf)
{
	return !inf->started || inf->stopped || atomic_load(&inf->running);
}

const char *kr_informer_name(const struct kr_informer *inf)
{
	return inf->o.watch.res ? inf->o.watch.res->plural : "?";
}

enum kr_status kr_informer_get_text(struct kr_informer *inf, const char *ns, const char *name,
				    char **out)
{
	struct kr_smap_entry *e;
	enum kr_status rc = KR_OK;
	char key[512], *pack = NULL;

	if (out)
		*out = NULL;
	kr_informer_key(key, sizeof(key), ns, name);
	pthread_mutex_lock(&inf->lock);
	e = kr_smap_find(&inf->cache, key);
	if (!e)
		rc = KR_ENOTFOUND;
	else if (out && e->val && (pack = malloc(kr_pack_size(e->val))))
		memcpy(pack, e->val, kr_pack_size(e->val));
	else if (out && e->val)
		rc = KR_ENOMEM;
	pthread_mutex_unlock(&inf->lock);
	/* unpacked outside the lock: the other readers do not wait for it */
	if (pack && !(*out = kr_informer_unpack(inf, pack)))
		rc = KR_ENOMEM;
	free(pack);
	return rc;
}

enum kr_status kr_informer_get(struct kr_informer *inf, const char *ns, const char *name,
			       cJSON **out)
{
	char *text = NULL;
	enum kr_status rc = kr_informer_get_text(inf, ns, name, out ? &text : NULL);

	if (out)
		*out = NULL;
	if (rc == KR_OK && text && !(*out = cJSON_Parse(text)))
		rc = KR_ENOMEM;
	free(text);
	return rc;
}

struct kr_informer_snap {
	const struct kr_informer *inf;
	cJSON *out;
};

static void kr_informer_snap_one(void *arg, const char *key, void *val)
{
	struct kr_informer_snap *s = arg;
	char *text = kr_informer_unpack(s->inf, val);

	cJSON_AddItemToObject(s->out, key, text ? cJSON_CreateString(text) : cJSON_CreateNull());
	free(text);
}

cJSON *kr_informer_snapshot(struct kr_informer *inf)
{
	cJSON *out = cJSON_CreateObject();

	if (!out)
		return NULL;
	pthread_mutex_lock(&inf->lock);
	kr_smap_each(&inf->cache, kr_informer_snap_one, &(struct kr_informer_snap){inf, out});
	pthread_mutex_unlock(&inf->lock);
	return out;
}

size_t kr_informer_len(struct kr_informer *inf)
{
	size_t n;

	pthread_mutex_lock(&inf->lock);
	n = inf->cache.count;
	pthread_mutex_unlock(&inf->lock);
	return n;
}

void kr_informer_stats(struct kr_informer *inf, struct kr_kube_reflector_stats *out)
{
	kr_kube_reflector_stats(inf->r, out);
}

/* ---- the reference index: ref -> a list of owners, each with a count ---- */

/*
 * A ref almost always has one owner (a Deployment names one KeyRotation), so a short list
 * costs one allocation per owner where a map of owners cost five.
 */
struct kr_ref_owner {
	struct kr_ref_owner *next;
	size_t count; /* how many times the owner names the ref */
	char owner[];
};

struct kr_refindex {
	pthread_mutex_t lock;
	struct kr_smap refs; /* ref -> struct kr_ref_owner * (a list) */
};

static void kr_refindex_drop(void *val)
{
	for (struct kr_ref_owner *o = val, *next; o; o = next) {
		next = o->next;
		free(o);
	}
}

struct kr_refindex *kr_refindex_new(void)
{
	struct kr_refindex *idx = calloc(1, sizeof(*idx));

	if (!idx)
		return NULL;
	pthread_mutex_init(&idx->lock, NULL);
	idx->refs.drop = kr_refindex_drop;
	return idx;
}

void kr_refindex_free(struct kr_refindex *idx)
{
	if (!idx)
		return;
	kr_smap_release(&idx->refs);
	pthread_mutex_destroy(&idx->lock);
	free(idx);
}

/* The owner's node in the list `head` (an smap value), or NULL; *prev is the node before it. */
static struct kr_ref_owner *kr_ref_owner_find(void *head, const char *owner,
					      struct kr_ref_owner **prev)
{
	struct kr_ref_owner *o = head;

	*prev = NULL;
	for (; o && strcmp(o->owner, owner) != 0; o = o->next)
		*prev = o;
	return o;
}

enum kr_status kr_refindex_add(struct kr_refindex *idx, const char *ref, const char *owner)
{
	struct kr_smap_entry *r;
	struct kr_ref_owner *o = NULL, *prev;
	size_t len = strlen(owner);

	pthread_mutex_lock(&idx->lock);
	r = kr_smap_upsert(&idx->refs, ref);
	if (r && !(o = kr_ref_owner_find(r->val, owner, &prev)) &&
	    (o = malloc(sizeof(*o) + len + 1))) {
		o->next = r->val;
		o->count = 0;
		memcpy(o->owner, owner, len + 1);
		r->val = o;
	}
	if (o)
		o->count++;
	else if (r && !r->val)
		kr_smap_take(&idx->refs, ref); /* no owner: no ref */
	pthread_mutex_unlock(&idx->lock);
	return o ? KR_OK : KR_ENOMEM;
}

void kr_refindex_remove(struct kr_refindex *idx, const char *ref, const char *owner)
{
	struct kr_smap_entry *r;
	struct kr_ref_owner *o = NULL, *prev = NULL;

	pthread_mutex_lock(&idx->lock);
	r = kr_smap_find(&idx->refs, ref);
	if (r)
		o = kr_ref_owner_find(r->val, owner, &prev);
	if (o && o->count > 1) {
		o->count--;
	} else if (o) {
		if (prev)
			prev->next = o->next;
		else
			r->val = o->next;
		free(o);
		if (!r->val)
			kr_smap_take(&idx->refs, ref);
	}
	pthread_mutex_unlock(&idx->lock);
}

size_t kr_refindex_lookup(struct kr_refindex *idx, const char *ref,
			  void (*fn)(void *arg, const char *owner), void *arg)
{
	struct kr_smap_entry *r;
	size_t n = 0;

	pthread_mutex_lock(&idx->lock);
	r = kr_smap_find(&idx->refs, ref);
	for (struct kr_ref_owner *o = r ? r->val : NULL; o; o = o->next, n++)
		fn(arg, o->owner);
	pthread_mutex_unlock(&idx->lock);
	return n;
}
