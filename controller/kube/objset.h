/* objset.h - the reflector's memory of delivered objects: "namespace/name" -> resourceVersion. */
#ifndef KR_KUBE_OBJSET_H
#define KR_KUBE_OBJSET_H

#include <stddef.h>

#include "base/error.h"

/*
 * A hash set of the objects a reflector has told its handler about, with the
 * resourceVersion it last delivered for each. A relist marks what it sees and then
 * sweeps the rest (they were deleted while the watch was down). Embedded: _init /
 * _release. Not thread-safe. Keys and versions are copied.
 */
struct kr_objset_entry {
	struct kr_objset_entry *next;
	char *rv;	    /* points at rv_inline unless the version is longer */
	char rv_inline[24]; /* resourceVersions are short: one allocation per entry */
	unsigned mark;
	char key[]; /* "namespace/name" ("/name" when cluster-scoped) */
};

struct kr_objset {
	struct kr_objset_entry **slots;
	size_t nslots, count;
	unsigned mark; /* the current relist's mark */
};

void kr_objset_init(struct kr_objset *s);
void kr_objset_release(struct kr_objset *s);
/* The entry for `key`, or NULL. Borrowed, valid until the next change. */
struct kr_objset_entry *kr_objset_find(struct kr_objset *s, const char *key);
/* Insert or update; the entry gets the current mark. KR_ENOMEM on allocation failure. */
enum kr_status kr_objset_put(struct kr_objset *s, const char *key, const char *rv);
void kr_objset_remove(struct kr_objset *s, const char *key);
/* Start a relist: entries put (or touched) from now on carry a fresh mark. */
void kr_objset_begin_mark(struct kr_objset *s);
/* Mark an existing entry as seen by the current relist. */
void kr_objset_touch(struct kr_objset_entry *e, const struct kr_objset *s);
/*
 * Remove every entry not seen since kr_objset_begin_mark, calling fn(arg, key, rv) for
 * each just before it goes (both borrowed for the call). fn must not change the set.
 */
void kr_objset_sweep(struct kr_objset *s, void (*fn)(void *arg, const char *key, const char *rv),
		     void *arg);

#endif
