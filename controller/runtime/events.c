/* events.c - the Event recorder: a bounded queue, client-go's aggregation, one sender thread. */
#include "runtime/events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/map.h"

#define KR_EV_COMBINED "(combined from similar events): "

/* One Event waiting in the queue: every emit of it since it was queued. */
struct kr_ev_item {
	char *api_version, *kind, *ns, *name, *uid, *reason, *message;
	bool warning;
	unsigned count;
	time_t first, last;
	char *key; /* what counts it up: object, type, reason, message (or "combined") */
	struct kr_ev_item *next;
};

/* An Event written, to count up when it comes again (the sender's own). One allocation,
 * the name inline: up to 4,096 of these stay (KR_EVENTS_CACHE_MAX). */
struct kr_ev_sent {
	unsigned count;
	int64_t used_ms;
	char name[];
};

/* Messages seen for one object, type and reason in the current window. */
struct kr_ev_similar {
	time_t since;
	size_t n;
	uint64_t hashes[KR_EVENTS_SIMILAR_MAX];
};

struct kr_events {
	struct kr_events_opts o;
	char *component, *instance;
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct kr_ev_item *head, *tail;
	size_t n;
	struct kr_smap queued;	/* key -> struct kr_ev_item * (borrowed from the list) */
	struct kr_smap similar; /* aggregate key -> struct kr_ev_similar * */
	struct kr_smap sent;	/* key -> struct kr_ev_sent * (sender thread only) */
	struct kr_events_stats st;
	bool started, stopping, stopped, busy;
	int64_t drain_until_ms;
	pthread_t thread;
	unsigned seq;
};

static void kr_ev_item_free(struct kr_ev_item *it)
{
	if (!it)
		return;
	free(it->api_version);
	free(it->kind);
	free(it->ns);
	free(it->name);
	free(it->uid);
	free(it->reason);
	free(it->message);
	free(it->key);
	free(it);
}

static char *kr_ev_dup(const char *s)
{
	return strdup(s ? s : "");
}

static time_t kr_ev_now(const struct kr_events *ev)
{
	return ev->o.now ? ev->o.now(ev->o.now_arg) : time(NULL);
}

static void kr_ev_rfc3339(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "1970-01-01T00:00:00Z");
}

/* A name no other Event of this object has: the wall clock in ns and a counter. */
static void kr_ev_name(struct kr_events *ev, const char *object, char *buf, size_t size)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, size, "%.240s.%llx%04x", object,
		 (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec,
		 __atomic_fetch_add(&ev->seq, 1, __ATOMIC_RELAXED) & 0xffff);
}

struct kr_events *kr_events_new(const struct kr_events_opts *o, struct kr_error *err)
{
	struct kr_events *ev = calloc(1, sizeof(*ev));

	if (!ev || !(ev->component = kr_ev_dup(o->component ? o->component : "controller")) ||
	    !(ev->instance = kr_ev_dup(o->instance))) {
		if (ev) {
			free(ev->component);
			free(ev);
		}
		kr_error_set(err, KR_ENOMEM, "events: out of memory");
		return NULL;
	}
	ev->o = *o;
	ev->o.component = ev->component;
	ev->o.instance = ev->instance;
	if (!ev->o.queue_max)
		ev->o.queue_max = KR_EVENTS_QUEUE_DEFAULT;
	ev->similar.drop = free;
	ev->sent.drop = free;
	pthread_mutex_init(&ev->lock, NULL);
	kr_mono_cond_init(&ev->wake);
	kr_mono_cond_init(&ev->idle);
	return ev;
}

/* FNV-1a, for telling messages apart in the similar-Events window. */
static uint64_t kr_ev_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * Has `agg` (object, type, reason) had KR_EVENTS_SIMILAR_MAX other messages in the window?
 * Then this one is combined with them. Lock held.
 */
static bool kr_ev_combine(struct kr_events *ev, const char *agg, const char *message, time_t now)
{
	struct kr_smap_entry *e;
	struct kr_ev_similar *s;
	uint64_t h = kr_ev_hash(message);

	/* Bounded: past the limit the windows start over (some combining comes later). */
	if (ev->similar.count >= KR_EVENTS_CACHE_MAX && !kr_smap_find(&ev->similar, agg))
		kr_smap_release(&ev->similar);
	e = kr_smap_upsert(&ev->similar, agg);
	if (!e)
		return false;
	if (!e->val && !(e->val = calloc(1, sizeof(struct kr_ev_similar))))
		return false;
	s = e->val;
	if (now - s->since > KR_EVENTS_SIMILAR_WINDOW_S) {
		s->since = now;
		s->n = 0;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->hashes[i] == h)
			return false;
	if (s->n < KR_EVENTS_SIMILAR_MAX) {
		s->hashes[s->n++] = h;
		return false;
	}
	return true;
}

void kr_events_emit(struct kr_events *ev, const struct kr_event_object *obj, bool warning,
		    const char *reason, const char *message)
{
	char agg[1400], key[2600], msg[KR_EVENTS_MESSAGE_MAX + sizeof(KR_EV_COMBINED)];
	time_t now = kr_ev_now(ev);
	struct kr_smap_entry *e;
	struct kr_ev_item *it;
	bool combined;

	snprintf(agg, sizeof(agg), "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", obj->api_version,
		 obj->kind, obj->ns ? obj->ns : "", obj->name, obj->uid ? obj->uid : "",
		 warning ? "Warning" : "Normal", reason);
	pthread_mutex_lock(&ev->lock);
	ev->st.emitted++;
	if (ev->stopped) {
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	combined = kr_ev_combine(ev, agg, message, now);
	snprintf(msg, sizeof(msg), "%s%.*s", combined ? KR_EV_COMBINED : "",
		 KR_EVENTS_MESSAGE_MAX, message);
	snprintf(key, sizeof(key), "%s\x1f%s", agg, combined ? "\x1e" : msg);
	e = kr_smap_find(&ev->queued, key);
	if (e) { /* the same Event is still waiting: it counts up, one write for all */
		it = e->val;
		it->count++;
		it->last = now;
		if (combined && strcmp(it->message, msg) != 0) {
			char *m = strdup(msg);

			if (m) {
				free(it->message);
				it->message = m;
			}
		}
		ev->st.coalesced++;
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	if (ev->n >= ev->o.queue_max || !(it = calloc(1, sizeof(*it)))) {
		ev->st.dropped++;
		pthread_mutex_unlock(&ev->lock);
		if (ev->o.dropped)
			kr_counter_inc(ev->o.dropped, NULL);
		return;
	}
	it->api_version = kr_ev_dup(obj->api_version);
	it->kind = kr_ev_dup(obj->kind);
	it->ns = kr_ev_dup(obj->ns);
	it->name = kr_ev_dup(obj->name);
	it->uid = kr_ev_dup(obj->uid);
	it->reason = kr_ev_dup(reason);
	it->message = kr_ev_dup(msg);
	it->key = kr_ev_dup(key);
	it->warning = warning;
	it->count = 1;
	it->first = it->last = now;
	if (!it->api_version || !it->kind || !it->ns || !it->name || !it->uid || !it->reason ||
	    !it->message || !it->key || !(e = kr_smap_upsert(&ev->queued, key))) {
		kr_ev_item_free(it);
		ev->st.dropped++;
		pthread_mutex_unlock(&ev->lock);
		if (ev->o.dropped)
			kr_counter_inc(ev->o.dropped, NULL);
		return;
	}
	e->val = it;
	if (ev->tail)
		ev->tail->next = it;
	else
		ev->head = it;
	ev->tail = it;
	ev->n++;
	pthread_cond_signal(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
}

/* ---- the sender ---- */

static cJSON *kr_ev_body(struct kr_events *ev, const struct kr_ev_item *it, const char *name,
			 const char *first, const char *last)
{
	cJSON *b = cJSON_CreateObject(), *meta, *io, *src;

	if (!b)
		return NULL;
	cJSON_AddStringToObject(b, "apiVersion", "v1");
	cJSON_AddStringToObject(b, "kind", "Event");
	meta = cJSON_AddObjectToObject(b, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	cJSON_AddStringToObject(meta, "namespace", it->ns);
	io = cJSON_AddObjectToObject(b, "involvedObject");
	cJSON_AddStringToObject(io, "apiVersion", it->api_version);
	cJSON_AddStringToObject(io, "kind", it->kind);
	cJSON_AddStringToObject(io, "namespace", it->ns);
	cJSON_AddStringToObject(io, "name", it->name);
	if (it->uid[0])
		cJSON_AddStringToObject(io, "uid", it->uid);
	cJSON_AddStringToObject(b, "reason", it->reason);
	cJSON_AddStringToObject(b, "message", it->message);
	cJSON_AddStringToObject(b, "type", it->warning ? "Warning" : "Normal");
	src = cJSON_AddObjectToObject(b, "source");
	cJSON_AddStringToObject(src, "component", ev->component);
	cJSON_AddStringToObject(b, "firstTimestamp", first);
	cJSON_AddStringToObject(b, "lastTimestamp", last);
	cJSON_AddNumberToObject(b, "count", it->count);
	cJSON_AddStringToObject(b, "reportingComponent", ev->component);
	cJSON_AddStringToObject(b, "reportingInstance", ev->instance);
	return b;
}

static int kr_ev_cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Once KR_EVENTS_CACHE_MAX Events are remembered, forget the least recently used eighth:
 * one walk per 512 Events written, not one per Event (a cold start of 10,000 KeyRotations
 * writes 10,000 Events; a walk of 4,096 entries for each cost 4% of that start's CPU).
 */
static void kr_ev_evict(struct kr_events *ev)
{
	size_t n = 0;
	int64_t *ms, cut;

	if (ev->sent.count < KR_EVENTS_CACHE_MAX)
		return;
	ms = malloc(ev->sent.count * sizeof(*ms));
	if (!ms) { /* out of memory: forget them all (the next ones are created, not counted) */
		kr_smap_release(&ev->sent);
		return;
	}
	for (size_t i = 0; i < ev->sent.nslots; i++)
		for (struct kr_smap_entry *e = ev->sent.slots[i]; e; e = e->next)
			ms[n++] = ((struct kr_ev_sent *)e->val)->used_ms;
	qsort(ms, n, sizeof(*ms), kr_ev_cmp_ms);
	cut = ms[KR_EVENTS_CACHE_MAX / 8 - 1];
	free(ms);
	for (size_t i = 0; i < ev->sent.nslots; i++)
		for (struct kr_smap_entry *e = ev->sent.slots[i], *next; e; e = next) {
			next = e->next;
			if (((struct kr_ev_sent *)e->val)->used_ms <= cut)
				free(kr_smap_take(&ev->sent, e->key));
		}
}

/* Write one Event: count up the one written before, or create it. Sender thread. */
static void kr_ev_send(struct kr_events *ev, struct kr_kube_client *client, struct kr_ev_item *it)
{
	struct kr_smap_entry *e = kr_smap_find(&ev->sent, it->key);
	struct kr_ev_sent *s = e ? e->val : NULL;
	char first[32], last[32], name[320];
	struct kr_error err = {0};
	enum kr_status rc;
	cJSON *body;

	kr_ev_rfc3339(it->first, first, sizeof(first));
	kr_ev_rfc3339(it->last, last, sizeof(last));
	if (s) {
		cJSON *patch = cJSON_CreateObject();
		char *text;

		cJSON_AddNumberToObject(patch, "count", (double)s->count + it->count);
		cJSON_AddStringToObject(patch, "lastTimestamp", last);
		cJSON_AddStringToObject(patch, "message", it->message);
		text = cJSON_PrintUnformatted(patch);
		cJSON_Delete(patch);
		rc = text ? kr_kube_patch(client, &kr_kube_events, it->ns, s->name, NULL,
					  KR_KUBE_PATCH_MERGE, text, NULL, &err)
			  : KR_ENOMEM;
		free(text);
		if (rc == KR_OK) {
			s->count += it->count;
			s->used_ms = kr_mono_ms();
			pthread_mutex_lock(&ev->lock);
			ev->st.patched++;
			pthread_mutex_unlock(&ev->lock);
			return;
		}
		/* Gone (Events expire after an hour) or refused: write a new one. */
		free(kr_smap_take(&ev->sent, it->key));
		s = NULL;
		kr_error_clear(&err);
	}
	kr_ev_name(ev, it->name, name, sizeof(name));
	body = kr_ev_body(ev, it, name, first, last);
	rc = body ? kr_kube_create(client, &kr_kube_events, it->ns, body, NULL, &err) : KR_ENOMEM;
	cJSON_Delete(body);
	pthread_mutex_lock(&ev->lock);
	if (rc == KR_OK)
		ev->st.created++;
	else
		ev->st.failed++;
	pthread_mutex_unlock(&ev->lock);
	if (rc != KR_OK) {
		kr_log_warn(NULL, "event %s of %s %s/%s not recorded: %s", it->reason, it->kind,
			    it->ns, it->name, err.msg);
		return;
	}
	kr_ev_evict(ev);
	e = kr_smap_upsert(&ev->sent, it->key);
	if (!e)
		return; /* out of memory: the next one is created, not counted up */
	s = realloc(e->val, sizeof(*s) + strlen(name) + 1);
	if (!s) {
		free(kr_smap_take(&ev->sent, it->key));
		return;
	}
	strcpy(s->name, name);
	s->count = it->count;
	s->used_ms = kr_mono_ms();
	e->val = s;
}

static void *kr_ev_main(void *arg)
{
	struct kr_events *ev = arg;
	struct kr_error err = {0};
	struct kr_kube_client *client = kr_kube_client_new(ev->o.cfg, &err);

	if (!client)
		kr_log_error(NULL, "events: no API client, Events are dropped: %s", err.msg);
	pthread_mutex_lock(&ev->lock);
	for (;;) {
		struct kr_ev_item *it;

		while (!ev->head && !ev->stopping)
			pthread_cond_wait(&ev->wake, &ev->lock);
		if (!ev->head || (ev->stopping && kr_mono_ms() >= ev->drain_until_ms))
			break;
		it = ev->head;
		ev->head = it->next;
		if (!ev->head)
			ev->tail = NULL;
		ev->n--;
		kr_smap_take(&ev->queued, it->key);
		ev->busy = true;
		pthread_mutex_unlock(&ev->lock);
		if (client)
			kr_ev_send(ev, client, it);
		kr_ev_item_free(it);
		pthread_mutex_lock(&ev->lock);
		ev->busy = false;
		pthread_cond_broadcast(&ev->idle);
	}
	ev->busy = false;
	pthread_cond_broadcast(&ev->idle);
	pthread_mutex_unlock(&ev->lock);
	kr_kube_client_free(client);
	return NULL;
}

enum kr_status kr_events_start(struct kr_events *ev, struct kr_error *err)
{
	if (ev->started)
		return kr_error_set(err, KR_ESTATE, "events: already started");
	if (pthread_create(&ev->thread, NULL, kr_ev_main, ev) != 0)
		return kr_error_set(err, KR_ENOMEM, "events: cannot start the sender thread");
	ev->started = true;
	return KR_OK;
}

int kr_events_flush(struct kr_events *ev, long timeout_ms)
{
	struct timespec deadline = kr_mono_deadline(timeout_ms);
	int done;

	pthread_mutex_lock(&ev->lock);
	while ((ev->head || ev->busy) && ev->started && !ev->stopped)
		if (pthread_cond_timedwait(&ev->idle, &ev->lock, &deadline) != 0)
			break;
	done = !ev->head && !ev->busy;
	pthread_mutex_unlock(&ev->lock);
	return done;
}

void kr_events_stop(struct kr_events *ev, long drain_ms)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	if (ev->stopped) {
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	ev->stopping = true;
	ev->drain_until_ms = kr_mono_ms() + (drain_ms > 0 ? drain_ms : 0);
	pthread_cond_broadcast(&ev->wake);
	pthread_mutex_unlock(&ev->lock);
	if (ev->started)
		pthread_join(ev->thread, NULL);
	pthread_mutex_lock(&ev->lock);
	ev->stopped = true;
	pthread_mutex_unlock(&ev->lock);
}

void kr_events_free(struct kr_events *ev)
{
	if (!ev)
		return;
	kr_events_stop(ev, 0);
	while (ev->head) {
		struct kr_ev_item *it = ev->head;

		ev->head = it->next;
		kr_ev_item_free(it);
	}
	kr_smap_release(&ev->queued);
	kr_smap_release(&ev->similar);
	kr_smap_release(&ev->sent);
	pthread_cond_destroy(&ev->wake);
	pthread_cond_destroy(&ev->idle);
	pthread_mutex_destroy(&ev->lock);
	free(ev->component);
	free(ev->instance);
	free(ev);
}

void kr_events_stats(struct kr_events *ev, struct kr_events_stats *out)
{
	pthread_mutex_lock(&ev->lock);
	*out = ev->st;
	pthread_mutex_unlock(&ev->lock);
}
