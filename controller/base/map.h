/* map.h - a string-keyed chained hash map (FNV-1a), values owned through `drop`. */
#ifndef KR_MAP_H
#define KR_MAP_H

#include <stddef.h>

#include "error.h"

/*
 * Embedded by value and zero-initialised ({0}, or set `drop` only): the first insert
 * allocates. Keys are copied; values are the caller's, dropped by `drop` (when not NULL)
 * on kr_smap_release. Not thread-safe: the owner locks. Iterate with kr_smap_each or
 * over slots[0 .. nslots) and each entry's `next`.
 */
struct kr_smap_entry {
	void *val;
	struct kr_smap_entry *next;
	char key[]; /* inline: an entry is one allocation */
};

struct kr_smap {
	struct kr_smap_entry **slots;
	size_t nslots, count;
	void (*drop)(void *val);
};

/* Drop every value, free the entries; the map is empty and reusable (drop kept). */
void kr_smap_release(struct kr_smap *m);
/* The entry for `key`, or NULL. */
struct kr_smap_entry *kr_smap_find(struct kr_smap *m, const char *key);
/* The entry for `key`, created with val NULL when absent. NULL on ENOMEM. */
struct kr_smap_entry *kr_smap_upsert(struct kr_smap *m, const char *key);
/* Unlink `key`; returns its value (now the caller's) or NULL. */
void *kr_smap_take(struct kr_smap *m, const char *key);
/* Call fn for every entry, in no particular order; fn must not change the map. */
void kr_smap_each(struct kr_smap *m, void (*fn)(void *arg, const char *key, void *val), void *arg);

#endif
