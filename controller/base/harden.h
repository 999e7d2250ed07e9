/* harden.h - process-wide hardening done once at start: no core dumps, freed JSON wiped. */
#ifndef KR_HARDEN_H
#define KR_HARDEN_H

#include <stddef.h>

#include "error.h"

/*
 * Call first thing in main, before any thread starts and before any cJSON call:
 *   - prctl(PR_SET_DUMPABLE, 0): no core dump, and no ptrace or /proc/PID/mem, environ or
 *     maps for other processes of the same user (the /proc/PID files become root's);
 *   - setrlimit(RLIMIT_CORE, 0/0): no core file even if something makes it dumpable again;
 *   - cJSON_InitHooks with kr_harden_free: Secret objects arrive as cJSON trees, so every
 *     block cJSON frees (strings, nodes, print buffers) is wiped first. cJSON then also
 *     stops using realloc (it only does with the plain malloc/free pair), so a growing
 *     print buffer is copied and the old one wiped, never left behind by realloc.
 * KR_EIO with the call that failed in err; nothing the outside world controls can make
 * these fail, so the caller should not start without them.
 */
enum kr_status kr_process_harden(struct kr_error *err);

/*
 * free() that first overwrites the whole usable block (malloc_usable_size) with zeros.
 * Only for blocks from malloc/calloc/realloc/strdup (or kr_harden_realloc). NULL: nothing.
 * Cost: one memset of the block; the hooks of cJSON and libcurl use it.
 */
void kr_harden_free(void *p);

/*
 * realloc() for buffers that may hold key material: a block that must grow is copied to
 * a new one and the old one wiped and freed (realloc could leave the old bytes behind);
 * a block big enough already is returned as is. NULL p: malloc(n). NULL on ENOMEM, with
 * p untouched, as realloc.
 */
void *kr_harden_realloc(void *p, size_t n);

#endif
