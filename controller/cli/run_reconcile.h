/* run_reconcile.h - the reconcile function `keyrotator run` plugs into the controller loop. */
#ifndef KR_RUN_RECONCILE_H
#define KR_RUN_RECONCILE_H

#include "runtime/controller.h"

/*
 * The reconcile callback `keyrotator run` uses (kr_reconcile_fn). Until the rotation
 * module lands it only observes: it GETs the KeyRotation and logs what it saw at debug
 * level. It writes nothing (no status), so a steady state makes zero API writes.
 * `arg` is the struct kr_controller (borrowed).
 */
enum kr_status kr_run_reconcile(void *arg, struct kr_kube_client *client, const char *ns,
				const char *name, struct kr_reconcile_result *res);

#endif
