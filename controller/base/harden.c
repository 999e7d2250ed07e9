/* harden.c - no core dumps, and allocator hooks that wipe what cJSON and libcurl free. */
#include "harden.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

void kr_harden_free(void *p)
{
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void *kr_harden_realloc(void *p, size_t n)
{
	size_t have;
	void *q;

	if (!p)
		return malloc(n);
	have = malloc_usable_size(p);
	if (n <= have)
		return p;
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, have);
	kr_harden_free(p);
	return q;
}

enum kr_status kr_process_harden(struct kr_error *err)
{
	static const struct rlimit no_core = {0, 0};
	cJSON_Hooks hooks = {.malloc_fn = malloc, .free_fn = kr_harden_free};

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return kr_error_set(err, KR_EIO, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
	if (setrlimit(RLIMIT_CORE, &no_core) != 0)
		return kr_error_set(err, KR_EIO, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
	cJSON_InitHooks(&hooks);
	return KR_OK;
}
