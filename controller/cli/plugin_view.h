/* plugin_view.h - the kubectl plugin's readable views of a KeyRotation (status, history). */
#ifndef KR_CLI_PLUGIN_VIEW_H
#define KR_CLI_PLUGIN_VIEW_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/*
 * Print `obj` (a whole KeyRotation as read from the API server; borrowed) to `out`:
 * `status` as a readable view (phase, conditions, keys, the rotation in flight, per-stage
 * and per-workload adoption, 401 rate, last/next rotation), `history` as a table. With
 * `json`, the status object / the status.history array instead. A status that cannot
 * be decoded prints "error: ..." to stderr. Returns an exit code (enum kr_exit).
 */
int kr_plugin_view_status(FILE *out, const cJSON *obj, bool json);
int kr_plugin_view_history(FILE *out, const cJSON *obj, bool json);

#endif
