/* plan_print.h - printing a rotation plan: shared by `keyrotator plan` and the kubectl plugin. */
#ifndef KR_CLI_PLAN_PRINT_H
#define KR_CLI_PLAN_PRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "base/error.h"
#include "rotation/rotation.h"

/* Which rotation to plan; every pointer borrowed. new_id/old_id NULL or "" = not known. */
struct kr_plan_target {
	const struct kr_rotation_spec *spec;
	const char *ns;
	const char *name;
	const char *new_id;
	const char *old_id;
	bool emergency;
	const struct kr_unlisted *unlisted; /* status.unlistedConsumers (the plugin), or NULL */
	size_t n_unlisted;
};

/*
 * Print the plan of `t` to `out`. Text: a header "KeyRotation ns/name (trigger Manual)"
 * then one numbered step per line. JSON: one object per call on one line,
 * {"namespace","name","trigger","plan":[...]}. KR_ENOMEM, or KR_EIO when writing fails.
 */
enum kr_status kr_cli_plan_print(FILE *out, const struct kr_plan_target *t, bool json,
				 struct kr_error *err);

/*
 * 1 when `id` looks like a key id (1 to 12 lowercase hex digits: a prefix of the key's
 * SHA-256). Flags that take an id check it so a raw key given by mistake is refused
 * without being echoed.
 */
int kr_cli_is_key_id(const char *id);

#endif
