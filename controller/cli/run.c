/* run.c - `keyrotator run`: the controller process (flags, signals, HTTP, leader election). */
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

static const char kr_run_intro[] =
    "Usage: keyrotator run [options]\n\n"
    "Run the controller: watch KeyRotations and the workloads they name, and reconcile\n"
    "them. Logs are JSON, one object per line, on stderr. SIGTERM or SIGINT stops intake,\n"
    "finishes the reconciles in hand, releases the lease and exits 0.\n\n";

static const char kr_run_outro[] =
    "\n/readyz answers 200 once every cache has synced (a standby is ready too) and no\n"
    "worker is stuck; /healthz, while every thread runs and no worker is stuck.\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT, 1 start-up failed or leadership was lost,\n"
    "2 bad flags.\n";

/* --allowed-endpoints as given (for the start-up log) and parsed (kr_egress_free). */
struct kr_run_egress {
	const char *text;
	struct kr_egress *parsed;
};

struct kr_run_opts {
	const char *kubeconfig, *context, *namespace_;
	bool leader_elect;
	const char *lease_ns, *lease_id, *metrics_addr, *health_addr;
	long workers;
	int log_level;
	const char *instance, *clock_skew_file;
	long keystore_timeout_ms, keystore_check_ms, resync_period_ms, stuck_worker_ms;
	struct kr_run_egress egress;
	bool allow_inline_key_stores;
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

static enum kr_status kr_run_parse_level(const char *v, void *dst, struct kr_error *err)
{
	int level = kr_log_parse_level(v);

	if (level < 0)
		return kr_error_set(err, KR_EINVAL, "\"%s\" is not debug, info, warn or error", v);
	*(int *)dst = level;
	return KR_OK;
}

/* --allowed-endpoints: parsed now, so a bad entry is a usage error naming it. */
static enum kr_status kr_run_parse_egress(const char *v, void *dst, struct kr_error *err)
{
	struct kr_run_egress *e = dst;
	struct kr_egress *parsed = NULL;
	enum kr_status rc = kr_egress_parse(v, &parsed, err);

	if (rc != KR_OK)
		return rc;
	kr_egress_free(e->parsed); /* given twice: the last wins */
	e->parsed = parsed;
	e->text = v;
	return KR_OK;
}

#define RUN(kind, f) KR_FLAG_##kind##_AT(struct kr_run_opts, f)

/* Every flag of `keyrotator run`, each also read from its KEYROTATOR_* variable. */
static const struct kr_flag kr_run_flags[] = {
    {.help = "Options (each also read from the environment variable shown; a flag wins):"},
    {.name = "kubeconfig",
     RUN(STRING, kubeconfig),
     .metavar = "PATH",
     .env = "KEYROTATOR_KUBECONFIG",
     .help = "kubeconfig (default $KUBECONFIG, ~/.kube/config, then in-cluster service "
	     "account)"},
    {.name = "context",
     RUN(STRING, context),
     .metavar = "NAME",
     .env = "KEYROTATOR_CONTEXT",
     .help = "kubeconfig context"},
    {.name = "namespace",
     RUN(STRING, namespace_),
     .metavar = "NS",
     .env = "KEYROTATOR_NAMESPACE",
     .help = "watch only this namespace (default all)"},
    {.name = "leader-elect",
     RUN(BOOL, leader_elect),
     .env = "KEYROTATOR_LEADER_ELECT",
     .def = "false",
     .help = "elect a leader on a Lease before reconciling"},
    {.name = "leader-election-namespace",
     RUN(STRING, lease_ns),
     .metavar = "NS",
     .env = "KEYROTATOR_LEADER_ELECTION_NAMESPACE",
     .help = "the Lease's namespace (default the config's)"},
    {.name = "leader-election-id",
     RUN(STRING, lease_id),
     .metavar = "NAME",
     .env = "KEYROTATOR_LEADER_ELECTION_ID",
     .def = "keyrotator",
     .help = "the Lease's name"},
    {.name = "metrics-addr",
     RUN(STRING, metrics_addr),
     .metavar = "ADDR",
     .env = "KEYROTATOR_METRICS_ADDR",
     .def = ":8080",
     .help = "/metrics listen address"},
    {.name = "health-addr",
     RUN(STRING, health_addr),
     .metavar = "ADDR",
     .env = "KEYROTATOR_HEALTH_ADDR",
     .def = ":8081",
     .help = "/healthz and /readyz"},
    {.name = "workers",
     RUN(INT, workers),
     .metavar = "N",
     .min = 1,
     .max = 64,
     .env = "KEYROTATOR_WORKERS",
     .def = "4",
     .help = "concurrent reconciles"},
    {.name = "log-level",
     RUN(CUSTOM, log_level),
     .parse = kr_run_parse_level,
     .metavar = "LEVEL",
     .env = "KEYROTATOR_LOG_LEVEL",
     .def = "info",
     .help = "debug|info|warn|error"},
    {.name = "instance",
     RUN(STRING, instance),
     .metavar = "NAME",
     .env = "KEYROTATOR_INSTANCE",
     .help = "this replica's name in Events (default $POD_NAME, then the hostname)"},
    {.name = "keystore-timeout",
     RUN(DURATION, keystore_timeout_ms),
     .metavar = "DUR",
     .min = 100,
     .max = 600000,
     .env = "KEYROTATOR_KEYSTORE_TIMEOUT",
     .def = "5s",
     .help = "Valkey connect and command timeout"},
    {.name = "keystore-check-interval",
     RUN(DURATION, keystore_check_ms),
     .metavar = "DUR",
     .min = 1000,
     .max = 86400000,
     .env = "KEYROTATOR_KEYSTORE_CHECK_INTERVAL",
     .def = "30s",
     .help = "how often idle KeyRotations' key stores are checked (one pipelined round "
	     "trip per Valkey server for all of them, no API request; drift starts a full "
	     "reconcile that repairs it)"},
    {.name = "resync-period",
     RUN(DURATION, resync_period_ms),
     .metavar = "DUR",
     .min = 10000,
     .max = 7 * 86400000L,
     .env = "KEYROTATOR_RESYNC_PERIOD",
     .def = "1h",
     .help = "full reconcile of an idle KeyRotation at least this often (its Secrets are "
	     "read then; they are not watched)"},
    {.name = "stuck-worker-timeout",
     RUN(DURATION, stuck_worker_ms),
     .metavar = "DUR",
     .min = 1000,
     .max = 86400000L,
     .env = "KEYROTATOR_STUCK_WORKER_TIMEOUT",
     .def = "5m",
     .help = "a worker in one reconcile for longer than this is stuck: /healthz and /readyz "
	     "answer 503 naming it and its KeyRotation, so the liveness probe restarts the "
	     "pod"},
    {.name = "clock-skew-file",
     RUN(STRING, clock_skew_file),
     .metavar = "PATH",
     .env = "KEYROTATOR_CLOCK_SKEW_FILE",
     .help = "testing aid: a file holding seconds added to the clock, re-read at every "
	     "reconcile"},
    {.name = "allowed-endpoints",
     RUN(CUSTOM, egress),
     .parse = kr_run_parse_egress,
     .metavar = "LIST",
     .env = "KEYROTATOR_ALLOWED_ENDPOINTS",
     .help = "where analysis, scrape and verify requests may go: comma-separated CIDRs "
	     "(10.0.0.0/8, fd00::/8, 127.0.0.1/32) and host[:port] patterns "
	     "(prometheus.monitoring.svc:9090, *.monitoring.svc; no port: any). A URL passes "
	     "when its host[:port] matches a pattern or the address it connects to is in a "
	     "CIDR (default any host). Link-local and cloud metadata addresses "
	     "(169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200, 0.0.0.0/8) are "
	     "refused unless a CIDR as narrow as their block lists them. No redirects are "
	     "followed, no proxy used"},
    {.name = "allow-inline-key-stores",
     RUN(BOOL, allow_inline_key_stores),
     .env = "KEYROTATOR_ALLOW_INLINE_KEY_STORES",
     .def = "false",
     .help = "honour a KeyRotation's inline spec.keyStore (false: only KeyStore / "
	     "ClusterKeyStore references)"},
    {.name = "controller-namespace",
     RUN(STRING, controller_namespace),
     .metavar = "NS",
     .env = "KEYROTATOR_CONTROLLER_NAMESPACE",
     .help = "the namespace the controller runs in (default $POD_NAMESPACE, then the "
	     "service account's namespace file)"},
    {0},
};

static void kr_run_help(void)
{
	fputs(kr_run_intro, stdout);
	kr_flags_help(stdout, kr_run_flags, 0);
	fputs(kr_run_outro, stdout);
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
	int rc, nargs = 0;

	memset(o, 0, sizeof(*o));
	rc = kr_cli_flags("run", kr_run_flags, 0, o, argc, argv, &nargs);
	if (rc != KR_EXIT_OK)
		return rc;
	if (nargs > 0)
		return kr_cli_usage_error("run", "unexpected argument '%s'", argv[1]);
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
					.egress = o->egress.parsed};
	struct kr_controller_opts co = {.cfg = cfg,
					.namespace_ = o->namespace_,
					.workers = (int)o->workers,
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
		kr_run_help();
		return KR_EXIT_OK;
	}
	code = kr_run_parse(argc, argv, &o);
	if (code != KR_EXIT_OK) {
		kr_egress_free(o.egress.parsed);
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
		    KR_VERSION, cfg.server, o.namespace_ ? o.namespace_ : "(all)", (int)o.workers,
		    o.leader_elect ? "on" : "off", o.metrics_addr, o.health_addr);
	kr_log_info(
	    NULL, "access: allowed endpoints %s; inline key stores %s; controller namespace %s",
	    o.egress.text ? o.egress.text : "any host (not link-local or cloud metadata addresses)",
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
	kr_egress_free(o.egress.parsed); /* after the reconciler, which borrowed it */
	return code;
}
