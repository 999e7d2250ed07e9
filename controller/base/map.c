/* map.c - a string-keyed chained hash map (FNV-1a); see map.h. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t kr_smap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

void kr_smap_release(struct kr_smap *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct kr_smap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (m->drop)
				m->drop(e->val);
			free(e);
		}
	}
	free(m->slots);
	m->slots = NULL;
	m->nslots = m->count = 0;
}

static struct kr_smap_entry **kr_smap_slot(struct kr_smap *m, const char *key)
{
	struct kr_smap_entry **p = &m->slots[kr_smap_hash(key) % m->nslots];

	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

struct kr_smap_entry *kr_smap_find(struct kr_smap *m, const char *key)
{
	return m->nslots ? *kr_smap_slot(m, key) : NULL;
}

static enum kr_status kr_smap_grow(struct kr_smap *m)
{
	size_t n = m->nslots ? m->nslots * 2 : 4; /* most maps are one owner per ref */
	struct kr_smap_entry **slots = calloc(n, sizeof(*slots));

	if (!slots)
		return KR_ENOMEM;
	for (size_t i = 0; i < m->nslots; i++) {
		struct kr_smap_entry *e = m->slots[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = slots[kr_smap_hash(e->key) % n];
			slots[kr_smap_hash(e->key) % n] = e;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = n;
	return KR_OK;
}

struct kr_smap_entry *kr_smap_upsert(struct kr_smap *m, const char *key)
{
	struct kr_smap_entry **p, *e;
	size_t len;

	if (m->count >= m->nslots && kr_smap_grow(m) != KR_OK && !m->nslots)
		return NULL;
	p = kr_smap_slot(m, key);
	if (*p)
		return *p;
	len = strlen(key);
	e = malloc(sizeof(*e) + len + 1); /* one allocation: the key lives in the entry */
	if (!e)
		return NULL;
	e->val = NULL;
	e->next = NULL;
	memcpy(e->key, key, len + 1);
	*p = e;
	m->count++;
	return e;
}

void *kr_smap_take(struct kr_smap *m, const char *key)
{
	struct kr_smap_entry **p, *e;
	void *val;

	if (!m->nslots)
		return NULL;
	p = kr_smap_slot(m, key);
	e = *p;
	if (!e)
		return NULL;
	*p = e->next;
	val = e->val;
	free(e);
	m->count--;
	return val;
}

void kr_smap_each(struct kr_smap *m, void (*fn)(void *arg, const char *key, void *val), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct kr_smap_entry *e = m->slots[i]; e; e = e->next)
			fn(arg, e->key, e->val);
}
