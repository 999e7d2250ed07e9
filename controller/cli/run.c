/* run.c - `keyrotator run`: the controller process (flags, signals, HTTP, leader election). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "egress/egress.h"
#include "reconciler/reconciler.h"
#include "rotation/schedule.h"
#include "runtime/controller.h"
#include "runtime/http.h"
#include "runtime/leader.h"
#include "runtime/memory.h"
#include "version.h"

static const char kr_run_usage[] =
    "Usage: keyrotator run [options]\n\n"
    "Run the controller: watch KeyRotations and the workloads they name, and reconcile\n"
    "them. Logs are JSON, one object per line, on stderr. SIGTERM or SIGINT stops intake,\n"
    "finishes the reconciles in hand, releases the lease and exits 0.\n\n"
    "Options (each also read from the environment variable shown; a flag wins):\n"
    "  --kubeconfig PATH        kubeconfig (KEYROTATOR_KUBECONFIG; default $KUBECONFIG,\n"
    "                           ~/.kube/config, then in-cluster service account)\n"
    "  --context NAME           kubeconfig context (KEYROTATOR_CONTEXT)\n"
    "  --namespace NS           watch only this namespace (KEYROTATOR_NAMESPACE; default all)\n"
    "  --leader-elect           elect a leader on a Lease before reconciling\n"
    "                           (KEYROTATOR_LEADER_ELECT=true|false; default false)\n"
    "  --leader-election-namespace NS  the Lease's namespace\n"
    "                           (KEYROTATOR_LEADER_ELECTION_NAMESPACE; default the config's)\n"
    "  --leader-election-id NAME       the Lease's name\n"
    "                           (KEYROTATOR_LEADER_ELECTION_ID; default keyrotator)\n"
    "  --metrics-addr ADDR      /metrics listen address (KEYROTATOR_METRICS_ADDR; :8080)\n"
    "  --health-addr ADDR       /healthz and /readyz (KEYROTATOR_HEALTH_ADDR; :8081)\n"
    "  --workers N              concurrent reconciles, 1..64 (KEYROTATOR_WORKERS; 4)\n"
    "  --log-level LEVEL        debug|info|warn|error (KEYROTATOR_LOG_LEVEL; info)\n"
    "  --instance NAME          this replica's name in Events (KEYROTATOR_INSTANCE;\n"
    "                           default $POD_NAME, then the hostname)\n"
    "  --keystore-timeout DUR   Valkey connect and command timeout\n"
    "                           (KEYROTATOR_KEYSTORE_TIMEOUT; 5s)\n"
    "  --keystore-check-interval DUR  how often idle KeyRotations' key stores are checked\n"
    "                           (one pipelined round trip per Valkey server for all of\n"
    "                           them, no API request; drift starts a full reconcile that\n"
    "                           repairs it) (KEYROTATOR_KEYSTORE_CHECK_INTERVAL; 30s)\n"
    "  --resync-period DUR      full reconcile of an idle KeyRotation at least this often\n"
    "                           (its Secrets are read then; they are not watched)\n"
    "                           (KEYROTATOR_RESYNC_PERIOD; 1h)\n"
    "  --stuck-worker-timeout DUR  a worker in one reconcile for longer than this is stuck:\n"
    "                           /healthz and /readyz answer 503 naming it and its\n"
    "                           KeyRotation, so the liveness probe restarts the pod\n"
    "                           (KEYROTATOR_STUCK_WORKER_TIMEOUT; 5m; 1s..24h)\n"
    "  --clock-skew-file PATH   testing aid: a file holding seconds added to the clock,\n"
    "                           re-read at every reconcile (KEYROTATOR_CLOCK_SKEW_FILE)\n"
    "  --allowed-endpoints LIST where analysis, scrape and verify requests may go: comma-\n"
    "                           separated CIDRs (10.0.0.0/8, fd00::/8, 127.0.0.1/32) and\n"
    "                           host[:port] patterns (prometheus.monitoring.svc:9090,\n"
    "                           *.monitoring.svc; no port: any). A URL passes when its\n"
    "                           host[:port] matches a pattern or the address it connects\n"
    "                           to is in a CIDR (KEYROTATOR_ALLOWED_ENDPOINTS; default any\n"
    "                           host). Link-local and cloud metadata addresses\n"
    "                           (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200,\n"
    "                           0.0.0.0/8) are refused unless a CIDR as narrow as their\n"
    "                           block lists them. No redirects are followed, no proxy used\n"
    "  --allow-inline-key-stores  honour a KeyRotation's inline spec.keyStore\n"
    "                           (KEYROTATOR_ALLOW_INLINE_KEY_STORES=true|false; default\n"
    "                           false: only KeyStore / ClusterKeyStore references)\n"
    "  --controller-namespace NS  the namespace the controller runs in\n"
    "                           (KEYROTATOR_CONTROLLER_NAMESPACE; default $POD_NAMESPACE,\n"
    "                           then the service account's namespace file)\n\n"
    "/readyz answers 200 once every cache has synced (a standby is ready too) and no\n"
    "worker is stuck; /healthz, while every thread runs and no worker is stuck.\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 start-up failed or leadership was lost,\n"
    "2 bad flags.\n";

struct kr_run_opts {
	const char *kubeconfig, *context, *namespace_;
	int leader_elect;
	const char *lease_ns, *lease_id, *metrics_addr, *health_addr;
	int workers;
	int log_level;
	const char *instance, *clock_skew_file;
	long keystore_timeout_ms, keystore_check_ms, resync_period_ms, stuck_worker_ms;
	const char *allowed_endpoints; /* as given, for the start-up log */
	struct kr_egress *egress;      /* parsed from it; kr_egress_free */
	int allow_inline_key_stores;
	const char *controller_namespace;
	char namespace_file[256]; /* the service account's namespace, when read */
};

#define KR_RUN_SA_NAMESPACE "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

/* What the main thread waits for: a signal, or the elector ending on its own. */
struct kr_run_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int signo;	  /* the signal that asked us to stop, or 0 */
	int leader_ended; /* kr_leader_run returned */
	enum kr_status leader_rc;
	struct kr_error leader_err;
	struct kr_controller *ctl;
	struct kr_reconciler *reconciler;
	struct kr_leader *leader;
	sigset_t sigs;
};

static int kr_run_bool(const char *text, int *out)
{
	if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes"))
		*out = 1;
	else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* A Go duration within [min_ms, max_ms] into *out; 2 (usage) when not. */
static int kr_run_duration(const char *v, const char *from, long min_ms, long max_ms, long *out)
{
	int64_t ms;

	if (kr_duration_parse(v, &ms, NULL) != KR_OK || ms < min_ms || ms > max_ms)
		return kr_cli_usage_error("run", "%s: '%s' is not a duration from %ldms to %ldms",
					  from, v, min_ms, max_ms);
	*out = (long)ms;
	return KR_EXIT_OK;
}

/* --allowed-endpoints: parsed now, so a bad entry is a usage error naming it. */
static int kr_run_egress(struct kr_run_opts *o, const char *v, const char *from)
{
	struct kr_egress *e = NULL;
	struct kr_error err;

	kr_error_clear(&err);
	if (kr_egress_parse(v, &e, &err) != KR_OK)
		return kr_cli_usage_error("run", "%s: %s", from, err.msg);
	kr_egress_free(o->egress); /* the flag wins over the environment */
	o->egress = e;
	o->allowed_endpoints = v;
	return KR_EXIT_OK;
}

/* Set one option from its text; 2 (usage) on a bad value. `from` names flag or variable. */
static int kr_run_set(struct kr_run_opts *o, int id, const char *v, const char *from)
{
	char *end;
	long n;

	switch (id) {
	case 'k':
		o->kubeconfig = v;
		break;
	case 'c':
		o->context = v;
		break;
	case 'n':
		o->namespace_ = v;
		break;
	case 'N':
		o->lease_ns = v;
		break;
	case 'I':
		o->lease_id = v;
		break;
	case 'm':
		o->metrics_addr = v;
		break;
	case 'h':
		o->health_addr = v;
		break;
	case 'L':
		if (kr_run_bool(v, &o->leader_elect) != 0)
			return kr_cli_usage_error("run", "%s: '%s' is not true or false", from, v);
		break;
	case 'w':
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 1 || n > 64)
			return kr_cli_usage_error("run", "%s: '%s' is not a number 1..64", from, v);
		o->workers = (int)n;
		break;
	case 'i':
		o->instance = v;
		break;
	case 'C':
		o->clock_skew_file = v;
		break;
	case 't':
		return kr_run_duration(v, from, 100, 600000, &o->keystore_timeout_ms);
	case 'K':
		return kr_run_duration(v, from, 1000, 86400000, &o->keystore_check_ms);
	case 'R':
		return kr_run_duration(v, from, 10000, 7 * 86400000L, &o->resync_period_ms);
	case 'T':
		return kr_run_duration(v, from, 1000, 86400000L, &o->stuck_worker_ms);
	case 'l':
		o->log_level = kr_log_parse_level(v);
		if (o->log_level < 0)
			return kr_cli_usage_error("run", "%s: unknown level '%s'", from, v);
		break;
	case 'E':
		return kr_run_egress(o, v, from);
	case 'A':
		if (kr_run_bool(v, &o->allow_inline_key_stores) != 0)
			return kr_cli_usage_error("run", "%s: '%s' is not true or false", from, v);
		break;
	case 'S':
		o->controller_namespace = v;
		break;
	}
	return KR_EXIT_OK;
}

static const struct option kr_run_flags[] = {
    {"kubeconfig", required_argument, NULL, 'k'},
    {"context", required_argument, NULL, 'c'},
    {"namespace", required_argument, NULL, 'n'},
    {"leader-elect", optional_argument, NULL, 'L'},
    {"leader-election-namespace", required_argument, NULL, 'N'},
    {"leader-election-id", required_argument, NULL, 'I'},
    {"metrics-addr", required_argument, NULL, 'm'},
    {"health-addr", required_argument, NULL, 'h'},
    {"workers", required_argument, NULL, 'w'},
    {"log-level", required_argument, NULL, 'l'},
    {"instance", required_argument, NULL, 'i'},
    {"keystore-timeout", required_argument, NULL, 't'},
    {"keystore-check-interval", required_argument, NULL, 'K'},
    {"resync-period", required_argument, NULL, 'R'},
    {"stuck-worker-timeout", required_argument, NULL, 'T'},
    {"clock-skew-file", required_argument, NULL, 'C'},
    {"allowed-endpoints", required_argument, NULL, 'E'},
    {"allow-inline-key-stores", optional_argument, NULL, 'A'},
    {"controller-namespace", required_argument, NULL, 'S'},
    {NULL, 0, NULL, 0},
};

/* KEYROTATOR_<FLAG> for every flag: "leader-election-id" -> KEYROTATOR_LEADER_ELECTION_ID. */
static int kr_run_env(struct kr_run_opts *o)
{
	for (const struct option *f = kr_run_flags; f->name; f++) {
		char var[64] = "KEYROTATOR_";
		size_t n = strlen(var);
		const char *v;
		int rc;

		for (const char *p = f->name; *p && n + 1 < sizeof(var); p++)
			var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		var[n] = '\0';
		v = getenv(var);
		if (!v || !v[0])
			continue;
		rc = kr_run_set(o, f->val, v, var);
		if (rc != KR_EXIT_OK)
			return rc;
	}
	return KR_EXIT_OK;
}

/* --controller-namespace unset: $POD_NAMESPACE, then the service account's file, else NULL. */
static void kr_run_default_namespace(struct kr_run_opts *o)
{
	const char *env = getenv("POD_NAMESPACE");
	FILE *f;
	size_t n;

	if (o->controller_namespace)
		return;
	if (env && env[0]) {
		o->controller_namespace = env;
		return;
	}
	f = fopen(KR_RUN_SA_NAMESPACE, "re");
	if (!f)
		return;
	n = fread(o->namespace_file, 1, sizeof(o->namespace_file) - 1, f);
	fclose(f);
	o->namespace_file[n] = '\0';
	n = strcspn(o->namespace_file, " \t\r\n");
	o->namespace_file[n] = '\0';
	if (n > 0)
		o->controller_namespace = o->namespace_file;
}

static int kr_run_parse(int argc, char **argv, struct kr_run_opts *o)
{
	char from[64];
	int id, rc, idx = 0;

	*o = (struct kr_run_opts){.lease_id = "keyrotator",
				  .metrics_addr = ":8080",
				  .health_addr = ":8081",
				  .workers = KR_WORKQUEUE_DEFAULT_WORKERS,
				  .stuck_worker_ms = KR_CONTROLLER_STUCK_DEFAULT_MS,
				  .log_level = KR_LOG_INFO};
	rc = kr_run_env(o);
	if (rc != KR_EXIT_OK)
		return rc;
	optind = 1;
	opterr = 0;
	while ((id = getopt_long(argc, argv, "", kr_run_flags, &idx)) != -1) {
		if (id == '?')
			return kr_cli_usage_error("run", "unknown or incomplete option '%s'",
						  argv[optind - 1]);
		snprintf(from, sizeof(from), "--%s", kr_run_flags[idx].name);
		if (id == 'L' && !optarg)
			o->leader_elect = 1;
		else if (id == 'A' && !optarg)
			o->allow_inline_key_stores = 1;
		else if (!optarg[0])
			return kr_cli_usage_error("run", "%s needs a non-empty value", from);
		else if ((rc = kr_run_set(o, id, optarg, from)) != KR_EXIT_OK)
			return rc;
	}
	if (optind < argc)
		return kr_cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
	kr_run_default_namespace(o);
	return KR_EXIT_OK;
}

/* ---- health ---- */

static int kr_run_live(void *ctx, char *reason, size_t size)
{
	return kr_controller_alive(ctx, reason, size);
}

static int kr_run_ready(void *ctx, char *reason, size_t size)
{
	return kr_controller_ready(ctx, reason, size);
}

static enum kr_status kr_run_http(const struct kr_run_opts *o, struct kr_controller *ctl,
				  struct kr_http_server **metrics, struct kr_http_server **health,
				  struct kr_error *err)
{
	struct kr_http_handlers h = {kr_run_live, ctl, kr_run_ready, ctl,
				     kr_controller_metrics(ctl)};
	struct kr_http_handlers m = {.metrics = kr_controller_metrics(ctl)};
	enum kr_status rc;

	if (!strcmp(o->metrics_addr, o->health_addr))
		return kr_http_server_new(o->health_addr, &h, health, err);
	rc = kr_http_server_new(o->metrics_addr, &m, metrics, err);
	if (rc == KR_OK)
		rc = kr_http_server_new(
		    o->health_addr,
		    &(struct kr_http_handlers){kr_run_live, ctl, kr_run_ready, ctl, NULL}, health,
		    err);
	return rc;
}

/* ---- threads: signals and the elector ---- */

static void *kr_run_signals(void *arg)
{
	struct kr_run_state *st = arg;
	int sig = 0;

	sigwait(&st->sigs, &sig);
	pthread_mutex_lock(&st->lock);
	st->signo = sig;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static void kr_run_started_leading(void *arg)
{
	struct kr_run_state *st = arg;

	kr_log_info(NULL, "became the leader (%s)", kr_leader_identity(st->leader));
	kr_controller_set_leading(st->ctl, 1);
}

static void kr_run_stopped_leading(void *arg)
{
	struct kr_run_state *st = arg;

	kr_controller_set_leading(st->ctl, 0);
}

static void kr_run_new_leader(void *arg, const char *identity)
{
	(void)arg;
	kr_log_info(NULL, "leader is now \"%s\"", identity);
}

static int kr_run_fence(void *arg)
{
	struct kr_run_state *st = arg;

	return kr_leader_is_leader(st->leader);
}

static void *kr_run_elector(void *arg)
{
	struct kr_run_state *st = arg;
	enum kr_status rc;
	struct kr_error err;

	kr_error_clear(&err);
	rc = kr_leader_run(st->leader, &err);
	pthread_mutex_lock(&st->lock);
	st->leader_ended = 1;
	st->leader_rc = rc;
	st->leader_err = err;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* ---- the process ---- */

struct kr_run_threads {
	pthread_t signals, elector;
	int have_signals, have_elector;
};

static enum kr_status kr_run_build(const struct kr_run_opts *o, struct kr_kube_config *cfg,
				   struct kr_run_state *st, struct kr_error *err)
{
	struct kr_leader_opts lo = {.namespace_ = o->lease_ns ? o->lease_ns : cfg->namespace_,
				    .name = o->lease_id};
	struct kr_leader_callbacks cb = {kr_run_started_leading, kr_run_stopped_leading,
					 kr_run_new_leader, st};
	struct kr_reconciler_opts ro = {.instance = o->instance ? o->instance : getenv("POD_NAME"),
					.clock_skew_file = o->clock_skew_file,
					.keystore_timeout_ms = o->keystore_timeout_ms,
					.keystore_check_ms = o->keystore_check_ms,
					.resync_period_ms = o->resync_period_ms,
					.allow_inline_key_stores = o->allow_inline_key_stores != 0,
					.controller_namespace = o->controller_namespace,
					.egress = o->egress};
	struct kr_controller_opts co = {.cfg = cfg,
					.namespace_ = o->namespace_,
					.workers = o->workers,
					.leader_elect = o->leader_elect,
					.stuck_worker_timeout_ms = o->stuck_worker_ms,
					.sources = kr_reconciler_sources(),
					.n_sources = KR_SRC_N,
					.metrics_prefix = KR_METRICS_PREFIX,
					.reconcile = kr_reconciler_reconcile,
					.version = KR_VERSION};

	st->reconciler = kr_reconciler_new(&ro, err);
	if (!st->reconciler)
		return err->code;
	co.reconcile_arg = st->reconciler;
	co.event_instance = kr_reconciler_instance(st->reconciler);
	co.clock = kr_reconciler_clock;
	co.clock_arg = st->reconciler;
	if (o->leader_elect) {
		st->leader = kr_leader_new(cfg, &lo, &cb, err);
		if (!st->leader)
			return err->code;
		co.fence = kr_run_fence;
		co.fence_arg = st;
	}
	st->ctl = kr_controller_new(&co, err);
	if (!st->ctl)
		return err->code;
	return kr_reconciler_attach(st->reconciler, st->ctl, err);
}

static enum kr_status kr_run_start(struct kr_run_state *st, struct kr_run_threads *t,
				   struct kr_error *err)
{
	enum kr_status rc = kr_controller_start(st->ctl, err);

	if (rc != KR_OK)
		return rc;
	if (pthread_create(&t->signals, NULL, kr_run_signals, st) != 0)
		return kr_error_set(err, KR_ENOMEM, "cannot start the signal thread");
	t->have_signals = 1;
	if (st->leader) {
		if (pthread_create(&t->elector, NULL, kr_run_elector, st) != 0)
			return kr_error_set(err, KR_ENOMEM, "cannot start the elector thread");
		t->have_elector = 1;
	}
	return KR_OK;
}

/* Wait for a signal or the end of the election; returns the exit code. */
static int kr_run_wait(struct kr_run_state *st)
{
	int code;

	pthread_mutex_lock(&st->lock);
	while (!st->signo && !st->leader_ended)
		pthread_cond_wait(&st->cond, &st->lock);
	if (st->signo) {
		kr_log_info(NULL, "received %s: stopping (finishing reconciles in hand)",
			    st->signo == SIGINT ? "SIGINT" : "SIGTERM");
		code = KR_EXIT_OK;
	} else {
		kr_log_error(NULL, "leadership lost, exiting: %s",
			     st->leader_err.msg[0] ? st->leader_err.msg
						   : kr_strerror(st->leader_rc));
		code = KR_EXIT_FAIL;
	}
	pthread_mutex_unlock(&st->lock);
	return code;
}

/* Graceful stop: intake off, in-flight reconciles done, informers off, lease released. */
static void kr_run_shutdown(struct kr_run_state *st, struct kr_run_threads *t)
{
	kr_controller_stop(st->ctl);
	if (t->have_elector) {
		kr_leader_stop(st->leader);
		pthread_join(t->elector, NULL);
		if (st->leader_err.code != KR_OK && st->leader_rc == KR_OK)
			kr_log_warn(NULL, "releasing the lease: %s", st->leader_err.msg);
	}
	if (t->have_signals) {
		pthread_mutex_lock(&st->lock);
		if (!st->signo)
			pthread_kill(t->signals, SIGTERM); /* blocked: sigwait takes it */
		pthread_mutex_unlock(&st->lock);
		pthread_join(t->signals, NULL);
	}
}

int kr_cli_run(int argc, char **argv)
{
	struct kr_run_state st = {.lock = PTHREAD_MUTEX_INITIALIZER,
				  .cond = PTHREAD_COND_INITIALIZER};
	struct kr_http_server *metrics = NULL, *health = NULL;
	struct kr_run_threads t = {0};
	struct kr_kube_config cfg;
	struct kr_run_opts o;
	struct kr_error err;
	int code;

	if (kr_cli_wants_help(argc, argv)) {
		fputs(kr_run_usage, stdout);
		return KR_EXIT_OK;
	}
	code = kr_run_parse(argc, argv, &o);
	if (code != KR_EXIT_OK) {
		kr_egress_free(o.egress);
		return code;
	}
	kr_log_set_level((enum kr_log_level)o.log_level);
	/* Before any thread exists, so every thread inherits the mask; sigwait takes them. */
	sigemptyset(&st.sigs);
	sigaddset(&st.sigs, SIGTERM);
	sigaddset(&st.sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &st.sigs, NULL);
	kr_memory_tune(); /* the allocator, before any thread starts (memory.c says why) */
	signal(SIGPIPE, SIG_IGN);
	kr_error_clear(&err);
	kr_kube_config_init(&cfg);
	code = KR_EXIT_FAIL;
	if (kr_kube_config_load(&cfg, o.kubeconfig, o.context, &err) != KR_OK ||
	    kr_run_build(&o, &cfg, &st, &err) != KR_OK ||
	    kr_run_http(&o, st.ctl, &metrics, &health, &err) != KR_OK ||
	    kr_run_start(&st, &t, &err) != KR_OK) {
		kr_log_error(NULL, "start-up failed: %s", err.msg);
		if (t.have_signals || t.have_elector)
			kr_run_shutdown(&st, &t);
		goto out;
	}
	kr_log_info(NULL,
		    "started keyrotator %s: server %s, namespace %s, %d worker(s), leader "
		    "election %s, metrics %s, health %s",
		    KR_VERSION, cfg.server, o.namespace_ ? o.namespace_ : "(all)", o.workers,
		    o.leader_elect ? "on" : "off", o.metrics_addr, o.health_addr);
	kr_log_info(
	    NULL, "access: allowed endpoints %s; inline key stores %s; controller namespace %s",
	    o.allowed_endpoints ? o.allowed_endpoints
				: "any host (not link-local or cloud metadata addresses)",
	    o.allow_inline_key_stores ? "honoured" : "refused",
	    o.controller_namespace ? o.controller_namespace : "keyrotator-system (default)");
	code = kr_run_wait(&st);
	kr_run_shutdown(&st, &t);
	kr_log_info(NULL, "stopped");
out:
	kr_http_server_free(health);
	kr_http_server_free(metrics);
	kr_reconciler_free(st.reconciler); /* first: its sweeper uses the controller's queue */
	kr_controller_free(st.ctl);
	kr_leader_free(st.leader);
	kr_kube_config_release(&cfg);
	kr_egress_free(o.egress); /* after the reconciler, which borrowed it */
	return code;
}
