/* leader.c - leader election on a coordination.k8s.io/v1 Lease (client-go leaderelection). */
#include "runtime/leader.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/clock.h"
#include "kube/kube.h"

struct kr_leader {
	struct kr_kube_client *client; /* elector thread only */
	char *ns, *name, *identity;
	long lease_ms, renew_ms, retry_ms;
	struct kr_leader_callbacks cb;
	pthread_mutex_t lock; /* guards stopping, ran; cond signals stop */
	pthread_cond_t cond;
	int stopping, ran;
	/* The fence: monotonic ms until which we lead; 0 when not leading. */
	_Atomic int64_t leading_until;
	/* Elector-thread state: the last record seen and when we saw it change. */
	cJSON *lease; /* last Lease object read or written (carries the resourceVersion) */
	struct kr_leader_record observed;
	char observed_rv[64];
	int64_t observed_ms;
	char reported[256]; /* holder last passed to on_new_leader */
	int have_reported;
	unsigned int seed;
};

void kr_leader_opts_defaults(struct kr_leader_opts *opts)
{
	if (opts->lease_duration_ms == 0)
		opts->lease_duration_ms = KR_LEADER_DEFAULT_LEASE_DURATION_MS;
	if (opts->renew_deadline_ms == 0)
		opts->renew_deadline_ms = KR_LEADER_DEFAULT_RENEW_DEADLINE_MS;
	if (opts->retry_period_ms == 0)
		opts->retry_period_ms = KR_LEADER_DEFAULT_RETRY_PERIOD_MS;
}

enum kr_status kr_leader_opts_validate(const struct kr_leader_opts *in, struct kr_error *err)
{
	struct kr_leader_opts o = *in;

	kr_leader_opts_defaults(&o);
	if (!o.namespace_ || !*o.namespace_)
		return kr_error_set(err, KR_EINVAL, "leader election: namespace is required");
	if (!o.name || !*o.name)
		return kr_error_set(err, KR_EINVAL, "leader election: lease name is required");
	if (o.lease_duration_ms < 0 || o.renew_deadline_ms < 0 || o.retry_period_ms < 0)
		return kr_error_set(err, KR_EINVAL,
				    "leader election: lease duration, renew deadline and retry "
				    "period must be greater than zero");
	if (o.lease_duration_ms % 1000 != 0)
		return kr_error_set(err, KR_EINVAL,
				    "leader election: lease duration %ld ms must be a whole number "
				    "of seconds (Lease spec.leaseDurationSeconds is an integer)",
				    o.lease_duration_ms);
	if (o.lease_duration_ms <= o.renew_deadline_ms)
		return kr_error_set(err, KR_EINVAL,
				    "leader election: lease duration (%ld ms) must be greater than "
				    "the renew deadline (%ld ms)",
				    o.lease_duration_ms, o.renew_deadline_ms);
	if ((double)o.renew_deadline_ms <= KR_LEADER_JITTER_FACTOR * (double)o.retry_period_ms)
		return kr_error_set(err, KR_EINVAL,
				    "leader election: renew deadline (%ld ms) must be greater than "
				    "%.1f x the retry period (%ld ms)",
				    o.renew_deadline_ms, KR_LEADER_JITTER_FACTOR,
				    o.retry_period_ms);
	return KR_OK;
}

int kr_leader_may_acquire(const struct kr_leader_record *rec, const char *identity,
			  int64_t observed_ms, int64_t now_ms)
{
	if (rec->holder[0] == '\0' || strcmp(rec->holder, identity) == 0)
		return 1;
	return now_ms - observed_ms >= (int64_t)rec->lease_duration_s * 1000;
}

/* hostname + "_" + 16 random hex digits, as client-go users typically build it. */
static char *default_identity(void)
{
	char host[256] = "keyrotator";
	unsigned char rnd[8] = {0};
	char *out;
	size_t n;

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "keyrotator");
	host[sizeof(host) - 1] = '\0';
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return NULL;
	n = strlen(host) + 1 + 2 * sizeof(rnd) + 1;
	out = malloc(n);
	if (!out)
		return NULL;
	snprintf(out, n, "%s_%02x%02x%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	return out;
}

static enum kr_status leader_init(struct kr_leader *l, struct kr_kube_config *cfg,
				  const struct kr_leader_opts *o, struct kr_error *err)
{

	l->ns = strdup(o->namespace_);
	l->name = strdup(o->name);
	l->identity = o->identity && *o->identity ? strdup(o->identity) : default_identity();
	if (!l->ns || !l->name || !l->identity)
		return kr_error_set(err, KR_ENOMEM, "leader election: out of memory");
	if (strlen(l->identity) >= sizeof(l->observed.holder))
		return kr_error_set(err, KR_EINVAL,
				    "leader election: identity longer than %zu bytes",
				    sizeof(l->observed.holder) - 1);
	l->lease_ms = o->lease_duration_ms;
	l->renew_ms = o->renew_deadline_ms;
	l->retry_ms = o->retry_period_ms;
	l->seed = (unsigned int)kr_mono_ms() ^ (unsigned int)getpid();
	pthread_mutex_init(&l->lock, NULL);
	kr_mono_cond_init(&l->cond);
	l->client = kr_kube_client_new(cfg, err);
	return l->client ? KR_OK : err ? err->code : KR_EIO;
}

struct kr_leader *kr_leader_new(struct kr_kube_config *cfg, const struct kr_leader_opts *opts,
				const struct kr_leader_callbacks *cb, struct kr_error *err)
{
	struct kr_leader_opts o = *opts;
	struct kr_leader *l;
	enum kr_status rc;

	rc = kr_leader_opts_validate(&o, err);
	if (rc != KR_OK)
		return NULL;
	kr_leader_opts_defaults(&o);
	l = calloc(1, sizeof(*l));
	if (!l) {
		kr_error_set(err, KR_ENOMEM, "leader election: out of memory");
		return NULL;
	}
	if (cb)
		l->cb = *cb;
	atomic_init(&l->leading_until, 0);
	rc = leader_init(l, cfg, &o, err);
	if (rc != KR_OK) {
		kr_leader_free(l);
		return NULL;
	}
	return l;
}

void kr_leader_free(struct kr_leader *l)
{
	if (!l)
		return;
	if (l->client) {
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
	}
	kr_kube_client_free(l->client);
	cJSON_Delete(l->lease);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}

void kr_leader_stop(struct kr_leader *l)
{
	pthread_mutex_lock(&l->lock);
	l->stopping = 1;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

int kr_leader_is_leader(const struct kr_leader *l)
{
	int64_t until = atomic_load(&((struct kr_leader *)l)->leading_until);

	return until != 0 && kr_mono_ms() < until;
}

const char *kr_leader_identity(const struct kr_leader *l)
{
	return l->identity;
}

/* Sleep up to ms, waking at once on stop. Returns 1 when stopping. */
static int wait_ms(struct kr_leader *l, int64_t ms)
{
	struct timespec ts = kr_mono_deadline(ms);
	int stopping;

	pthread_mutex_lock(&l->lock);
	while (!l->stopping) {
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
			break;
	}
	stopping = l->stopping;
	pthread_mutex_unlock(&l->lock);
	return stopping;
}

static int stopping(struct kr_leader *l)
{
	return wait_ms(l, 0);
}

/* metav1.MicroTime: RFC 3339 with microseconds, UTC. */
static void micro_time_now(char *out, size_t n)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

/* Read spec into rec; missing fields read as zero values, like client-go. */
static void record_from_lease(const cJSON *lease, struct kr_leader_record *rec)
{
	const char *holder = kr_json_str(lease, (const char *[]){"spec", "holderIdentity", NULL});

	memset(rec, 0, sizeof(*rec));
	snprintf(rec->holder, sizeof(rec->holder), "%s", holder ? holder : "");
	double d = kr_json_num(lease, (const char *[]){"spec", "leaseDurationSeconds", NULL}, 0);

	rec->lease_duration_s = d > 0 && d < 86400 * 365 ? (int)d : 0;
	rec->transitions =
	    (long)kr_json_num(lease, (const char *[]){"spec", "leaseTransitions", NULL}, 0);
}

static const char *lease_rv(const cJSON *lease)
{
	const char *rv = kr_json_str(lease, (const char *[]){"metadata", "resourceVersion", NULL});

	return rv ? rv : "";
}

/* Remember `lease` (taking ownership) as what we saw now; report a new holder. */
static void observe(struct kr_leader *l, cJSON *lease)
{
	const char *rv = lease_rv(lease);

	if (strcmp(rv, l->observed_rv) != 0 || l->observed_rv[0] == '\0') {
		record_from_lease(lease, &l->observed);
		snprintf(l->observed_rv, sizeof(l->observed_rv), "%s", rv);
		l->observed_ms = kr_mono_ms();
	}
	cJSON_Delete(l->lease);
	l->lease = lease;
	if (!l->have_reported || strcmp(l->reported, l->observed.holder) != 0) {
		snprintf(l->reported, sizeof(l->reported), "%s", l->observed.holder);
		l->have_reported = 1;
		if (l->cb.on_new_leader)
			l->cb.on_new_leader(l->cb.arg, l->reported);
	}
}

/*
 * A Lease spec. `acquire` NULL means now. holder "" with duration 1 is client-go's
 * release record.
 */
static cJSON *make_spec(const char *holder, int duration_s, const char *acquire, long transitions)
{
	char now[48];
	cJSON *spec = cJSON_CreateObject();

	micro_time_now(now, sizeof(now));
	if (!spec || !cJSON_AddStringToObject(spec, "holderIdentity", holder) ||
	    !cJSON_AddNumberToObject(spec, "leaseDurationSeconds", duration_s) ||
	    !cJSON_AddStringToObject(spec, "acquireTime", acquire ? acquire : now) ||
	    !cJSON_AddStringToObject(spec, "renewTime", now) ||
	    !cJSON_AddNumberToObject(spec, "leaseTransitions", (double)transitions)) {
		cJSON_Delete(spec);
		return NULL;
	}
	return spec;
}

/* The last-read Lease with `spec` (taken) in place of its spec. NULL on ENOMEM. */
static cJSON *lease_with_spec(const cJSON *lease, cJSON *spec)
{
	cJSON *body;

	if (!spec)
		return NULL;
	body = lease ? cJSON_Duplicate(lease, 1) : cJSON_CreateObject();
	if (!body) {
		cJSON_Delete(spec);
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(body, "spec");
	cJSON_AddItemToObject(body, "spec", spec);
	return body;
}

static cJSON *new_lease(struct kr_leader *l, cJSON *spec)
{
	cJSON *body = lease_with_spec(NULL, spec);
	cJSON *md;

	if (!body)
		return NULL;
	cJSON_AddStringToObject(body, "apiVersion", "coordination.k8s.io/v1");
	cJSON_AddStringToObject(body, "kind", "Lease");
	md = cJSON_AddObjectToObject(body, "metadata");
	if (!md || !cJSON_AddStringToObject(md, "name", l->name) ||
	    !cJSON_AddStringToObject(md, "namespace", l->ns)) {
		cJSON_Delete(body);
		return NULL;
	}
	return body;
}

/* Bound every request by `ms` (at least 1 ms; the client's 0 means "keep"). */
static void set_timeout(struct kr_leader *l, int64_t ms)
{
	if (ms < 1)
		ms = 1;
	kr_kube_client_set_timeouts(l->client, ms < 5000 ? (long)ms : 5000, (long)ms);
}

/* Create the Lease holding it ourselves. *sent_ms is when the request went out. */
static enum kr_status create_lease(struct kr_leader *l, int64_t *sent_ms, struct kr_error *err)
{
	cJSON *body = new_lease(l, make_spec(l->identity, (int)(l->lease_ms / 1000), NULL, 0));
	cJSON *out = NULL;
	enum kr_status rc;

	if (!body)
		return kr_error_set(err, KR_ENOMEM, "leader election: out of memory");
	*sent_ms = kr_mono_ms();
	rc = kr_kube_create(l->client, &kr_kube_leases, l->ns, body, &out, err);
	cJSON_Delete(body);
	if (rc == KR_OK)
		observe(l, out);
	return rc;
}

/*
 * One attempt (client-go tryAcquireOrRenew): read, decide, write with the read
 * resourceVersion. KR_OK when we hold the lease now; *sent_ms is when the winning
 * write was sent. KR_ESTATE when someone else holds it (and may still).
 */
static enum kr_status try_acquire_or_renew(struct kr_leader *l, int leading, int64_t *sent_ms,
					   struct kr_error *err)
{
	struct kr_leader_record rec;
	cJSON *got = NULL, *body, *out = NULL;
	const cJSON *acq;
	enum kr_status rc;
	int ours;

	rc = kr_kube_get(l->client, &kr_kube_leases, l->ns, l->name, &got, err);
	if (rc == KR_ENOTFOUND)
		return create_lease(l, sent_ms, err);
	if (rc != KR_OK)
		return rc;
	observe(l, got);
	rec = l->observed;
	ours = strcmp(rec.holder, l->identity) == 0;
	if (leading && !ours)
		return kr_error_set(err, KR_ESTATE, "leader election: lease %s/%s taken by %s",
				    l->ns, l->name, rec.holder);
	if (!kr_leader_may_acquire(&rec, l->identity, l->observed_ms, kr_mono_ms()))
		return kr_error_set(err, KR_ESTATE,
				    "leader election: lease %s/%s held by %s, not yet expired",
				    l->ns, l->name, rec.holder);
	acq = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(got, "spec"),
					       "acquireTime");
	body = lease_with_spec(got, make_spec(l->identity, (int)(l->lease_ms / 1000),
					      ours && cJSON_IsString(acq) ? acq->valuestring : NULL,
					      ours ? rec.transitions : rec.transitions + 1));
	if (!body)
		return kr_error_set(err, KR_ENOMEM, "leader election: out of memory");
	*sent_ms = kr_mono_ms();
	rc = kr_kube_update(l->client, &kr_kube_leases, l->ns, l->name, body, &out, err);
	cJSON_Delete(body);
	if (rc == KR_OK)
		observe(l, out);
	return rc;
}

/*
 * client-go release(): holder "", leaseDurationSeconds 1, renewTime now, so a standby
 * may take it at once. Only when we still hold it; a failure just lets it expire.
 */
static enum kr_status release_lease(struct kr_leader *l, struct kr_error *err)
{
	cJSON *body, *out = NULL;
	enum kr_status rc;

	body = lease_with_spec(l->lease, make_spec("", 1, NULL, l->observed.transitions));
	if (!body)
		return kr_error_set(err, KR_ENOMEM, "leader election: out of memory");
	set_timeout(l, l->renew_ms);
	rc = kr_kube_update(l->client, &kr_kube_leases, l->ns, l->name, body, &out, err);
	cJSON_Delete(body);
	if (rc == KR_OK)
		observe(l, out);
	else
		kr_error_prefix(err, "leader election: releasing lease %s/%s: ", l->ns, l->name);
	return rc;
}

/* Acquire loop: retry every retry_period + jitter until we hold it. 1 when stopping. */
static int acquire(struct kr_leader *l)
{
	struct kr_error e;
	int64_t sent;
	double jitter;

	for (;;) {
		if (stopping(l))
			return 1;
		set_timeout(l, l->renew_ms);
		if (try_acquire_or_renew(l, 0, &sent, &e) == KR_OK) {
			atomic_store(&l->leading_until, sent + l->renew_ms);
			return 0;
		}
		jitter = (double)rand_r(&l->seed) / RAND_MAX * KR_LEADER_JITTER_FACTOR;
		if (wait_ms(l, l->retry_ms + (int64_t)(jitter * (double)l->retry_ms)))
			return 1;
	}
}

/*
 * Renew every retry_period until stop (returns KR_OK) or until renew_deadline passes
 * since the last successful renewal was sent, or someone else holds the lease
 * (KR_ESTATE, message in e).
 */
static enum kr_status renew(struct kr_leader *l, struct kr_error *e)
{
	int64_t sent, until, now;
	enum kr_status rc;

	for (;;) {
		if (wait_ms(l, l->retry_ms))
			return KR_OK;
		for (;;) {
			until = atomic_load(&l->leading_until);
			now = kr_mono_ms();
			if (now >= until) {
				if (e->code == KR_OK)
					kr_error_set(e, KR_ESTATE, "no answer");
				kr_error_prefix(e,
						"leader election: lease %s/%s not renewed within "
						"%ld ms: ",
						l->ns, l->name, l->renew_ms);
				return e->code = KR_ESTATE;
			}
			set_timeout(l, until - now);
			rc = try_acquire_or_renew(l, 1, &sent, e);
			if (rc == KR_OK) {
				atomic_store(&l->leading_until, sent + l->renew_ms);
				kr_error_clear(e);
				break;
			}
			if (rc == KR_ESTATE)
				return rc;
			now = kr_mono_ms();
			if (wait_ms(l, until - now < l->retry_ms ? until - now : l->retry_ms))
				return KR_OK;
		}
	}
}

/* Leave leadership: fence first, so our writes stop before a standby can take over. */
static void stop_leading(struct kr_leader *l, enum kr_status rc, struct kr_error *e)
{
	int held = kr_leader_is_leader(l);

	atomic_store(&l->leading_until, 0);
	if (l->cb.on_stopped_leading)
		l->cb.on_stopped_leading(l->cb.arg);
	if (rc == KR_OK && held)
		release_lease(l, e);
}

enum kr_status kr_leader_run(struct kr_leader *l, struct kr_error *err)
{
	struct kr_error e;
	enum kr_status rc;
	int ran;

	kr_error_clear(&e);
	kr_error_clear(err);
	pthread_mutex_lock(&l->lock);
	ran = l->ran;
	l->ran = 1;
	pthread_mutex_unlock(&l->lock);
	if (ran)
		return kr_error_set(err, KR_EINVAL, "leader election: kr_leader_run called twice");
	if (acquire(l))
		return KR_OK;
	if (l->cb.on_started_leading)
		l->cb.on_started_leading(l->cb.arg);
	rc = renew(l, &e);
	stop_leading(l, rc, &e);
	if (err && e.code != KR_OK)
		*err = e;
	return rc;
}
