/* objset.c - a small chained hash set of "namespace/name" -> resourceVersion for the reflector. */
#include <stdlib.h>
#include <string.h>

#include "kube/objset.h"

#define KR_OBJSET_MIN_SLOTS 64

void kr_objset_init(struct kr_objset *s)
{
	memset(s, 0, sizeof(*s));
}

static void kr_objset_entry_free(struct kr_objset_entry *e)
{
	if (e->rv != e->rv_inline)
		free(e->rv);
	free(e);
}

void kr_objset_release(struct kr_objset *s)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct kr_objset_entry *e = s->slots[i];

		while (e) {
			struct kr_objset_entry *next = e->next;

			kr_objset_entry_free(e);
			e = next;
		}
	}
	free(s->slots);
	kr_objset_init(s);
}

/* FNV-1a. */
static size_t kr_objset_hash(const char *key)
{
	size_t h = (size_t)14695981039346656037ull;

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= (size_t)1099511628211ull;
	}
	return h;
}

struct kr_objset_entry *kr_objset_find(struct kr_objset *s, const char *key)
{
	struct kr_objset_entry *e;

	if (s->nslots == 0)
		return NULL;
	for (e = s->slots[kr_objset_hash(key) % s->nslots]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* Keep the load factor under 1. */
static enum kr_status kr_objset_grow(struct kr_objset *s)
{
	size_t n = s->nslots ? s->nslots * 2 : KR_OBJSET_MIN_SLOTS;
	struct kr_objset_entry **slots;

	if (s->count < s->nslots)
		return KR_OK;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return KR_ENOMEM;
	for (size_t i = 0; i < s->nslots; i++) {
		struct kr_objset_entry *e = s->slots[i];

		while (e) {
			struct kr_objset_entry *next = e->next;
			size_t at = kr_objset_hash(e->key) % n;

			e->next = slots[at];
			slots[at] = e;
			e = next;
		}
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	return KR_OK;
}

static enum kr_status kr_objset_set_rv(struct kr_objset_entry *e, const char *rv)
{
	size_t len = strlen(rv);
	char *copy = len < sizeof(e->rv_inline) ? e->rv_inline : malloc(len + 1);

	if (!copy)
		return KR_ENOMEM;
	if (e->rv && e->rv != e->rv_inline)
		free(e->rv);
	memcpy(copy, rv, len + 1);
	e->rv = copy;
	return KR_OK;
}

enum kr_status kr_objset_put(struct kr_objset *s, const char *key, const char *rv)
{
	struct kr_objset_entry *e = kr_objset_find(s, key);
	size_t at;

	if (e) {
		e->mark = s->mark;
		return kr_objset_set_rv(e, rv);
	}
	if (kr_objset_grow(s) != KR_OK)
		return KR_ENOMEM;
	e = calloc(1, sizeof(*e) + strlen(key) + 1);
	if (!e)
		return KR_ENOMEM;
	strcpy(e->key, key);
	if (kr_objset_set_rv(e, rv) != KR_OK) {
		free(e);
		return KR_ENOMEM;
	}
	e->mark = s->mark;
	at = kr_objset_hash(key) % s->nslots;
	e->next = s->slots[at];
	s->slots[at] = e;
	s->count++;
	return KR_OK;
}

void kr_objset_remove(struct kr_objset *s, const char *key)
{
	struct kr_objset_entry **pp;

	if (s->nslots == 0)
		return;
	for (pp = &s->slots[kr_objset_hash(key) % s->nslots]; *pp; pp = &(*pp)->next) {
		struct kr_objset_entry *e = *pp;

		if (strcmp(e->key, key) == 0) {
			*pp = e->next;
			kr_objset_entry_free(e);
			s->count--;
			return;
		}
	}
}

void kr_objset_begin_mark(struct kr_objset *s)
{
	s->mark++;
}

void kr_objset_touch(struct kr_objset_entry *e, const struct kr_objset *s)
{
	e->mark = s->mark;
}

void kr_objset_sweep(struct kr_objset *s, void (*fn)(void *arg, const char *key, const char *rv),
		     void *arg)
{
	for (size_t i = 0; i < s->nslots; i++) {
		struct kr_objset_entry **pp = &s->slots[i];

		while (*pp) {
			struct kr_objset_entry *e = *pp;

			if (e->mark == s->mark) {
				pp = &e->next;
				continue;
			}
			fn(arg, e->key, e->rv);
			*pp = e->next;
			kr_objset_entry_free(e);
			s->count--;
		}
	}
}
