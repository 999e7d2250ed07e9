/* json.h - typed reads of a cJSON tree that name the field path in their errors. */
#ifndef KR_JSON_H
#define KR_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/error.h"

/*
 * One reader for every object keyrotator decodes (KeyRotation spec and status, KeyStore,
 * ClusterKeyStore, projections). Two layers:
 *
 *   lookups   kr_json_at / kr_json_str / kr_json_num follow a NULL-terminated path and
 *             return NULL (or the default) when anything on the way is missing or of
 *             another type. For data the controller reads but does not validate.
 *   getters   kr_jr_* read member `field` of `obj`, whose path is `path` ("spec.keyStore"),
 *             validate it, and on error return KR_EINVAL with a message that starts with
 *             the field's whole path: `spec.keyStore.database: 2000 is outside 0..1023`.
 *             JSON null counts as absent, as the API server treats it.
 *
 * Everything borrows `obj`; strings handed out by kr_jr_str are owned by the caller.
 */

/* ---- lookups ---- */

const cJSON *kr_json_at(const cJSON *obj, const char *const *path);
/* The string at `path`, or NULL when absent or not a string. */
const char *kr_json_str(const cJSON *obj, const char *const *path);
/* The number at `path`, or `dflt`. */
double kr_json_num(const cJSON *obj, const char *const *path, double dflt);

/*
 * Every string value and member name of `obj` made safe to print (kr_text_sanitize: control
 * characters, escape sequences and invalid UTF-8 become '?'), in place. For objects shown on
 * a terminal whose text anyone with write access may have set. NULL-safe.
 */
void kr_json_sanitize(cJSON *obj);

/* ---- getters ---- */

/* Limits of a string field: length range and an optional pattern check. */
struct kr_jr_rule {
	size_t min, max;
	bool (*check)(const char *s);
	const char *pattern; /* how the error describes what `check` wants */
};

/* Rules shared by the kinds (the CRDs say the same). */
extern const struct kr_jr_rule KR_JR_SUBDOMAIN; /* a DNS subdomain, 1..253 */
extern const struct kr_jr_rule KR_JR_LABEL;	/* a DNS label, 1..63 */
extern const struct kr_jr_rule KR_JR_DATA_KEY;	/* a Secret data key */
extern const struct kr_jr_rule KR_JR_ADDRESS;	/* host:port, [v6]:port */
extern const struct kr_jr_rule KR_JR_ANY253;	/* any text, 1..253 */

bool kr_jr_check_dns_label(const char *s);
bool kr_jr_check_dns_subdomain(const char *s);

/* Member `field` of `obj`; NULL when absent or JSON null. */
const cJSON *kr_jr_member(const cJSON *obj, const char *field);

/* KR_EINVAL "<path>.<field>: required" when absent. */
enum kr_status kr_jr_require(const cJSON *obj, const char *path, const char *field,
			     struct kr_error *err);

/* *out = the member (NULL when absent); an error when it is not an object. */
enum kr_status kr_jr_object(const cJSON *obj, const char *path, const char *field,
			    const cJSON **out, struct kr_error *err);

/* *out = the member (NULL when absent); an error when it is not an array or is longer
 * than `max_items`. */
enum kr_status kr_jr_array(const cJSON *obj, const char *path, const char *field, size_t max_items,
			   const cJSON **out, struct kr_error *err);

/*
 * A string, checked against `rule`, copied into *out (caller frees). Absent: a copy of
 * `def`, or *out NULL when `def` is NULL. The default is not checked.
 */
enum kr_status kr_jr_str(const cJSON *obj, const char *path, const char *field, const char *def,
			 const struct kr_jr_rule *rule, char **out, struct kr_error *err);

/* An integer in min..max; absent: `def`. */
enum kr_status kr_jr_int(const cJSON *obj, const char *path, const char *field, int def, int min,
			 int max, int *out, struct kr_error *err);

/* A boolean; absent: false. */
enum kr_status kr_jr_bool(const cJSON *obj, const char *path, const char *field, bool *out,
			  struct kr_error *err);

/* One of `names` (NULL-terminated); *out = its index. Absent: `def` (an index). */
enum kr_status kr_jr_enum(const cJSON *obj, const char *path, const char *field,
			  const char *const *names, int def, int *out, struct kr_error *err);

/* "<path>.<field>" into buf (truncated to size); returns buf. For nested paths. */
char *kr_jr_path(char *buf, size_t size, const char *path, const char *field);

#endif
