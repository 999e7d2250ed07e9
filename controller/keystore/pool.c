/* pool.c - a few open key store connections per worker thread, reused across KeyRotations. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "keystore/keystore.h"

/*
 * Most KeyRotations of a cluster share one or two Valkey servers. Connecting for every
 * reconcile and every idle check would cost a TCP handshake (and AUTH) each time; a worker
 * thread keeps its last KR_POOL_SIZE connections open instead, one per server and
 * credentials (kr_keystore_server_fingerprint), lent to each KeyRotation with its own
 * layout (kr_keystore_adopt_layout), and closes the least recently used one beyond that. A
 * connection older than KR_POOL_MAX_AGE_MS is reopened: Valkey keeps an authenticated connection
 * working after a password change, and we want to notice. Per thread, so no locking: a worker uses
 * its connections only itself.
 */
#define KR_POOL_SIZE 4
/* A connection is reopened after this long, so a changed password or ACL shows up. */
#define KR_POOL_MAX_AGE_MS (300 * 1000)

struct kr_pool {
	struct {
		char fp[65];
		struct kr_keystore *ks;
		unsigned long used;
		int64_t opened; /* kr_mono_ms */
	} e[KR_POOL_SIZE];
	unsigned long tick;
};

static pthread_key_t kr_pool_key;
static pthread_once_t kr_pool_once = PTHREAD_ONCE_INIT;

static void kr_pool_destroy(void *arg)
{
	struct kr_pool *p = arg;

	for (int i = 0; i < KR_POOL_SIZE; i++)
		kr_keystore_free(p->e[i].ks);
	free(p);
}

static void kr_pool_init_key(void)
{
	pthread_key_create(&kr_pool_key, kr_pool_destroy);
}

static struct kr_pool *kr_pool_mine(void)
{
	struct kr_pool *p;

	pthread_once(&kr_pool_once, kr_pool_init_key);
	p = pthread_getspecific(kr_pool_key);
	if (!p && (p = calloc(1, sizeof(*p))) && pthread_setspecific(kr_pool_key, p) != 0) {
		free(p);
		p = NULL;
	}
	return p;
}

struct kr_keystore *kr_keystore_pool_get(struct kr_keystore *settings)
{
	struct kr_pool *p = kr_pool_mine();
	struct kr_keystore *conn = NULL;
	char fp[65];
	int slot = 0;

	if (!p)
		return settings; /* no pool: connect on the settings themselves */
	kr_keystore_server_fingerprint(settings, fp);
	for (int i = 0; i < KR_POOL_SIZE; i++) {
		if (p->e[i].ks && strcmp(p->e[i].fp, fp) == 0) {
			if (kr_keystore_adopt_layout(p->e[i].ks, settings, NULL) != KR_OK)
				return settings;
			if (kr_mono_ms() - p->e[i].opened >= KR_POOL_MAX_AGE_MS) {
				kr_keystore_close(p->e[i].ks); /* the next command reconnects */
				p->e[i].opened = kr_mono_ms();
			}
			p->e[i].used = ++p->tick;
			return p->e[i].ks;
		}
		if (p->e[i].used < p->e[slot].used)
			slot = i;
	}
	if (kr_keystore_dup(settings, &conn, NULL) != KR_OK)
		return settings;
	kr_keystore_free(p->e[slot].ks); /* the least recently used one goes */
	memcpy(p->e[slot].fp, fp, sizeof(fp));
	p->e[slot].ks = conn;
	p->e[slot].used = ++p->tick;
	p->e[slot].opened = kr_mono_ms();
	return conn;
}
