/* spec.c - decode and validate a KeyRotation spec (cJSON) with the CRD's defaults applied. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "rotation/internal.h"

#define PATH_MAX_LEN 128
/*
 * The minimum interval between rotations: maxKeyAge and the gap between two runs of the
 * schedule. Each rotation restarts every workload, so "maxKeyAge: 1s" was a restart loop.
 * Tests that need rotations sooner move the clock (run --clock-skew-file).
 */
#define KR_SPEC_MIN_INTERVAL_MS (3600 * 1000)
/*
 * Size bounds, the CRD's too (crds/keyrotator.io_keyrotations.yaml works out what they
 * make the largest KeyRotation): 32 stages of 64 workloads were 2,048 workload names, a
 * 0.6 MB spec and as much status; 64 in all keep a KeyRotation to a few hundred KB.
 */
#define KR_SPEC_MAX_STAGES	    32
#define KR_SPEC_MAX_STAGE_WORKLOADS 64
#define KR_SPEC_MAX_WORKLOADS	    64 /* in all stages together */
#define KR_SPEC_MAX_DURATION_LEN    64
#define KR_SPEC_MAX_LABELS	    16
#define KR_SPEC_MAX_LABEL_NAME	    128
#define KR_SPEC_MAX_LABEL_VALUE	    256

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool check_prefix(const char *s)
{
	return strlen(s) <= 16 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

static bool check_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static bool check_metric(const char *s)
{
	if (!(is_alnum(s[0]) && !(s[0] >= '0' && s[0] <= '9')) && s[0] != '_' && s[0] != ':')
		return false;
	for (; *s; s++)
		if (!is_alnum(*s) && *s != '_' && *s != ':')
			return false;
	return true;
}

static bool check_header(const char *s)
{
	for (; *s; s++)
		if (!is_alnum(*s) && *s != '-')
			return false;
	return true;
}

static bool check_meta_key(const char *s)
{
	const char *p = strstr(s, "{id}");

	return p && !strstr(p + 4, "{id}");
}

/* A Go duration; `def` NULL and absent gives -1. `positive`: 0 is refused. */
static enum kr_status get_duration(const cJSON *obj, const char *path, const char *field,
				   const char *def, bool positive, int64_t *ms,
				   struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);
	const char *s;
	struct kr_error derr;

	*ms = -1;
	if (!v && !def)
		return KR_OK;
	if (v && !cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL,
				    "%s.%s: must be a string (a duration such as 10m)", path,
				    field);
	s = v ? v->valuestring : def;
	if (strlen(s) > KR_SPEC_MAX_DURATION_LEN)
		return kr_error_set(err, KR_EINVAL, "%s.%s: longer than %d characters", path, field,
				    KR_SPEC_MAX_DURATION_LEN);
	kr_error_clear(&derr);
	if (kr_duration_parse(s, ms, &derr) != KR_OK)
		return kr_error_set(err, KR_EINVAL, "%s.%s: \"%.64s\" is not a duration: %s", path,
				    field, s, derr.msg);
	if (positive && *ms <= 0)
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be more than 0", path, field);
	return KR_OK;
}

static const struct kr_jr_rule R_USER = {0, 128, NULL, NULL};
static const struct kr_jr_rule R_STORE_KEY = {1, 512, NULL, NULL};
static const struct kr_jr_rule R_META_KEY = {4, 512, check_meta_key, "a pattern holding {id} once"};
static const struct kr_jr_rule R_PREFIX = {0, 16, check_prefix, "^[a-z0-9_]{0,16}$"};
static const struct kr_jr_rule R_URL = {8, 2048, check_url, "^https?://"};
static const struct kr_jr_rule R_TEXT = {1, 4096, NULL, NULL};
static const struct kr_jr_rule R_METRIC = {1, 256, check_metric, "^[a-zA-Z_:][a-zA-Z0-9_:]*$"};
static const struct kr_jr_rule R_HEADER = {1, 256, check_header, "^[A-Za-z0-9-]+$"};
static const struct kr_jr_rule R_KIND = {1, 32, NULL, NULL};
static const struct kr_jr_rule R_SCHEDULE = {1, 128, NULL, NULL};

static enum kr_status decode_secret_ref(const cJSON *spec, struct kr_rotation_spec *out,
					struct kr_error *err)
{
	const cJSON *ref;
	enum kr_status rc;

	rc = kr_jr_require(spec, "spec", "secretRef", err);
	if (rc == KR_OK)
		rc = kr_jr_object(spec, "spec", "secretRef", &ref, err);
	if (rc == KR_OK)
		rc = kr_jr_require(ref, "spec.secretRef", "name", err);
	if (rc == KR_OK)
		rc = kr_jr_require(ref, "spec.secretRef", "key", err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, "spec.secretRef", "name", NULL, &KR_JR_SUBDOMAIN,
			       &out->secret_name, err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, "spec.secretRef", "key", NULL, &KR_JR_DATA_KEY,
			       &out->secret_key, err);
	return rc;
}

/* An optional {name, key} Secret reference `field` of `obj` at `path`. */
static enum kr_status decode_ref(const cJSON *obj, const char *path, const char *field, char **name,
				 char **key, struct kr_error *err)
{
	char rpath[PATH_MAX_LEN];
	const cJSON *ref;
	enum kr_status rc;

	rc = kr_jr_object(obj, path, field, &ref, err);
	if (rc != KR_OK || !ref)
		return rc;
	snprintf(rpath, sizeof(rpath), "%s.%s", path, field);
	rc = kr_jr_require(ref, rpath, "name", err);
	if (rc == KR_OK)
		rc = kr_jr_require(ref, rpath, "key", err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, rpath, "name", NULL, &KR_JR_ANY253, name, err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, rpath, "key", NULL, &KR_JR_ANY253, key, err);
	return rc;
}

static enum kr_status decode_secret_key_ref(const cJSON *obj, const char *path, const char *field,
					    struct kr_secret_key_ref *ref, struct kr_error *err)
{
	return decode_ref(obj, path, field, &ref->name, &ref->key, err);
}

static enum kr_status check_store_names(const struct kr_rotation_spec *out, const char *path,
					struct kr_error *err)
{
	if (strcmp(out->store_active_set, out->store_bootstrap_key) == 0)
		return kr_error_set(err, KR_EINVAL,
				    "%s.bootstrapKey: \"%.64s\" is also the activeSet", path,
				    out->store_bootstrap_key);
	if (strcmp(out->store_meta_key, out->store_active_set) == 0 ||
	    strcmp(out->store_meta_key, out->store_bootstrap_key) == 0)
		return kr_error_set(err, KR_EINVAL,
				    "%s.metaKey: collides with activeSet or bootstrapKey", path);
	return KR_OK;
}

enum kr_status kr_spec_decode_store(const cJSON *conn, const char *p, const cJSON *layout,
				    const char *lp, bool password_ns, struct kr_rotation_spec *out,
				    struct kr_error *err)
{
	static const char *const store_as[] = {"sha256", "plaintext", NULL};
	char rpath[PATH_MAX_LEN];
	const cJSON *pw = NULL;
	int as = KR_ROT_STORE_SHA256;
	enum kr_status rc;

	rc = kr_jr_str(conn, p, "address", NULL, &KR_JR_ADDRESS, &out->store_address, err);
	if (rc == KR_OK) /* tls, sentinel; address or sentinel */
		rc = kr_spec_decode_store_conn(conn, p, password_ns, out, err);
	if (rc == KR_OK)
		rc = kr_jr_int(conn, p, "database", 0, 0, 1023, &out->store_database, err);
	if (rc == KR_OK)
		rc = kr_jr_str(conn, p, "username", NULL, &R_USER, &out->store_username, err);
	if (rc == KR_OK && out->store_username && !out->store_username[0]) {
		free(out->store_username);
		out->store_username = NULL;
	}
	if (rc == KR_OK)
		rc = decode_ref(conn, p, "passwordSecretRef", &out->store_password_name,
				&out->store_password_key, err);
	if (rc == KR_OK)
		rc = kr_jr_object(conn, p, "passwordSecretRef", &pw, err);
	if (rc == KR_OK && pw && password_ns)
		rc = kr_jr_str(pw, kr_jr_path(rpath, sizeof(rpath), p, "passwordSecretRef"),
			       "namespace", NULL, &KR_JR_LABEL, &out->store_password_ns, err);
	if (rc == KR_OK)
		rc = kr_jr_str(layout, lp, "activeSet", "api_keys:active", &R_STORE_KEY,
			       &out->store_active_set, err);
	if (rc == KR_OK)
		rc = kr_jr_str(layout, lp, "metaKey", "api_key:{id}:meta", &R_META_KEY,
			       &out->store_meta_key, err);
	if (rc == KR_OK)
		rc = kr_jr_str(layout, lp, "bootstrapKey", "api_keys:bootstrap", &R_STORE_KEY,
			       &out->store_bootstrap_key, err);
	if (rc == KR_OK)
		rc = kr_jr_enum(layout, lp, "storeAs", store_as, KR_ROT_STORE_SHA256, &as, err);
	out->store_as = (enum kr_rot_store_as)as;
	if (rc == KR_OK)
		rc = check_store_names(out, lp, err);
	return rc;
}

/* spec.keyStoreRef (admin-written KeyStore/ClusterKeyStore) or the inline spec.keyStore. */
static enum kr_status decode_key_store(const cJSON *spec, struct kr_rotation_spec *out,
				       struct kr_error *err)
{
	static const char *const kinds[] = {"KeyStore", "ClusterKeyStore", NULL};
	static const char *p = "spec.keyStore";
	const cJSON *ks, *ref;
	int kind = 0;
	enum kr_status rc;

	rc = kr_jr_object(spec, "spec", "keyStore", &ks, err);
	if (rc == KR_OK)
		rc = kr_jr_object(spec, "spec", "keyStoreRef", &ref, err);
	if (rc != KR_OK)
		return rc;
	if (ks && ref)
		return kr_error_set(err, KR_EINVAL,
				    "spec: set exactly one of spec.keyStoreRef and spec.keyStore");
	if (!ks && !ref)
		return kr_error_set(err, KR_EINVAL,
				    "spec.keyStoreRef: required (the KeyStore or ClusterKeyStore "
				    "an admin wrote for this namespace)");
	if (ks) {
		out->store_ref_kind = KR_STORE_INLINE;
		rc = kr_spec_decode_store(ks, p, ks, p, false, out, err);
		if (rc == KR_OK && out->store_sentinel.n_addresses) /* as the CRD: not inline */
			rc = kr_error_set(
			    err, KR_EINVAL,
			    "spec.keyStore.sentinel: not in the inline form; an "
			    "administrator's KeyStore or ClusterKeyStore may name sentinels");
		return rc;
	}
	rc = kr_jr_enum(ref, "spec.keyStoreRef", "kind", kinds, 0, &kind, err);
	if (rc == KR_OK)
		rc = kr_jr_require(ref, "spec.keyStoreRef", "name", err);
	if (rc == KR_OK)
		rc = kr_jr_str(ref, "spec.keyStoreRef", "name", NULL, &KR_JR_SUBDOMAIN,
			       &out->store_ref_name, err);
	out->store_ref_kind = kind == 1 ? KR_STORE_REF_CLUSTER : KR_STORE_REF_KEYSTORE;
	return rc;
}

static enum kr_status decode_key(const cJSON *spec, struct kr_rotation_spec *out,
				 struct kr_error *err)
{
	const cJSON *key;
	enum kr_status rc;

	rc = kr_jr_object(spec, "spec", "key", &key, err);
	if (rc == KR_OK)
		rc = kr_jr_str(key, "spec.key", "prefix", "", &R_PREFIX, &out->key_prefix, err);
	if (rc == KR_OK)
		rc = kr_jr_int(key, "spec.key", "bytes", 32, 16, 64, &out->key_bytes, err);
	return rc;
}

static enum kr_status decode_kind(const cJSON *wl, const char *path, enum kr_workload_kind *kind,
				  struct kr_error *err)
{
	static const enum kr_workload_kind kinds[] = {
	    KR_WORKLOAD_DEPLOYMENT, KR_WORKLOAD_STATEFULSET, KR_WORKLOAD_DAEMONSET};
	char *s = NULL;
	enum kr_status rc;

	rc = kr_jr_str(wl, path, "kind", NULL, &R_KIND, &s, err);
	if (rc != KR_OK)
		return rc;
	rc = kr_error_set(err, KR_EINVAL,
			  "%s.kind: \"%.32s\" is not one of Deployment, StatefulSet, DaemonSet",
			  path, s);
	for (size_t i = 0; i < 3; i++) {
		if (strcmp(s, kr_workload_kind_name(kinds[i])) == 0) {
			*kind = kinds[i];
			kr_error_clear(err);
			rc = KR_OK;
		}
	}
	free(s);
	return rc;
}

static enum kr_status decode_workloads(const cJSON *stage, const char *path,
				       struct kr_stage_spec *st, struct kr_error *err)
{
	const cJSON *arr = kr_jr_member(stage, "workloads");
	char wpath[PATH_MAX_LEN];
	enum kr_status rc = KR_OK;
	int n;

	if (!arr)
		return kr_error_set(err, KR_EINVAL, "%s.workloads: required", path);
	n = cJSON_GetArraySize(arr);
	if (!cJSON_IsArray(arr) || n < 1 || n > KR_SPEC_MAX_STAGE_WORKLOADS)
		return kr_error_set(err, KR_EINVAL,
				    "%s.workloads: must be a list of 1 to %d workloads", path,
				    KR_SPEC_MAX_STAGE_WORKLOADS);
	st->workloads = calloc((size_t)n, sizeof(*st->workloads));
	if (!st->workloads)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	st->n_workloads = (size_t)n;
	for (int i = 0; i < n && rc == KR_OK; i++) {
		const cJSON *wl = cJSON_GetArrayItem(arr, i);

		snprintf(wpath, sizeof(wpath), "%s.workloads[%d]", path, i);
		if (!cJSON_IsObject(wl))
			return kr_error_set(err, KR_EINVAL, "%s: must be an object", wpath);
		rc = kr_jr_require(wl, wpath, "kind", err);
		if (rc == KR_OK)
			rc = kr_jr_require(wl, wpath, "name", err);
		if (rc == KR_OK)
			rc = decode_kind(wl, wpath, &st->workloads[i].kind, err);
		if (rc == KR_OK)
			rc = kr_jr_str(wl, wpath, "name", NULL, &KR_JR_SUBDOMAIN,
				       &st->workloads[i].name, err);
	}
	return rc;
}

static enum kr_status decode_stage(const cJSON *stage, const char *path, struct kr_stage_spec *st,
				   struct kr_error *err)
{
	enum kr_status rc;

	if (!cJSON_IsObject(stage))
		return kr_error_set(err, KR_EINVAL, "%s: must be an object", path);
	rc = kr_jr_require(stage, path, "name", err);
	if (rc == KR_OK)
		rc = kr_jr_str(stage, path, "name", NULL, &KR_JR_LABEL, &st->name, err);
	if (rc == KR_OK)
		rc = decode_workloads(stage, path, st, err);
	if (rc == KR_OK)
		rc = get_duration(stage, path, "timeout", "10m", true, &st->timeout_ms, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(stage, path, "pause", &st->pause, err);
	return rc;
}

/* Stage names unique; a workload (kind, name) in one stage only. */
static enum kr_status check_stages_unique(const struct kr_rotation_spec *out, struct kr_error *err)
{
	for (size_t i = 0; i < out->n_stages; i++) {
		const struct kr_stage_spec *a = &out->stages[i];

		for (size_t j = 0; j < i; j++)
			if (strcmp(out->stages[j].name, a->name) == 0)
				return kr_error_set(
				    err, KR_EINVAL,
				    "spec.stages[%zu].name: \"%s\" is also the name "
				    "of spec.stages[%zu]",
				    i, a->name, j);
	}
	for (size_t i = 0; i < out->n_stages; i++)
		for (size_t w = 0; w < out->stages[i].n_workloads; w++) {
			const struct kr_workload_ref *x = &out->stages[i].workloads[w];

			for (size_t j = 0; j <= i; j++)
				for (size_t v = 0; v < (j == i ? w : out->stages[j].n_workloads);
				     v++) {
					const struct kr_workload_ref *y =
					    &out->stages[j].workloads[v];

					if (x->kind == y->kind && strcmp(x->name, y->name) == 0)
						return kr_error_set(
						    err, KR_EINVAL,
						    "spec.stages[%zu].workloads[%zu]: %s/%s is "
						    "listed twice",
						    i, w, kr_workload_kind_name(x->kind), x->name);
				}
		}
	return KR_OK;
}

static enum kr_status decode_stages(const cJSON *spec, struct kr_rotation_spec *out,
				    struct kr_error *err)
{
	const cJSON *arr = kr_jr_member(spec, "stages");
	char path[PATH_MAX_LEN];
	enum kr_status rc = KR_OK;
	int n;

	if (!arr)
		return kr_error_set(err, KR_EINVAL, "spec.stages: required");
	n = cJSON_GetArraySize(arr);
	if (!cJSON_IsArray(arr) || n < 1 || n > KR_SPEC_MAX_STAGES)
		return kr_error_set(err, KR_EINVAL, "spec.stages: must be a list of 1 to %d stages",
				    KR_SPEC_MAX_STAGES);
	out->stages = calloc((size_t)n, sizeof(*out->stages));
	if (!out->stages)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	out->n_stages = (size_t)n;
	for (int i = 0; i < n && rc == KR_OK; i++) {
		snprintf(path, sizeof(path), "spec.stages[%d]", i);
		rc = decode_stage(cJSON_GetArrayItem(arr, i), path, &out->stages[i], err);
		out->stages[i].first = out->n_workloads;
		out->n_workloads += out->stages[i].n_workloads;
	}
	if (rc == KR_OK && out->n_workloads > KR_SPEC_MAX_WORKLOADS)
		return kr_error_set(err, KR_EINVAL,
				    "spec.stages: %zu workloads in all stages together; at most %d",
				    out->n_workloads, KR_SPEC_MAX_WORKLOADS);
	return rc == KR_OK ? check_stages_unique(out, err) : rc;
}

/* A Prometheus label name, [a-zA-Z_][a-zA-Z0-9_]*, as the scrape parser reads them. */
static bool check_label_name(const char *s)
{
	if (!(is_alnum(s[0]) && !(s[0] >= '0' && s[0] <= '9')) && s[0] != '_')
		return false;
	for (; *s; s++)
		if (!is_alnum(*s) && *s != '_')
			return false;
	return true;
}

static enum kr_status check_label(const cJSON *it, struct kr_error *err)
{
	static const char *p = "spec.analysis.scrape.labels";

	if (strlen(it->string) > KR_SPEC_MAX_LABEL_NAME || !check_label_name(it->string))
		return kr_error_set(err, KR_EINVAL,
				    "%s: \"%.64s\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, "
				    "at most %d characters)",
				    p, it->string, KR_SPEC_MAX_LABEL_NAME);
	if (!cJSON_IsString(it))
		return kr_error_set(err, KR_EINVAL, "%s.%.64s: must be a string", p, it->string);
	if (strlen(it->valuestring) > KR_SPEC_MAX_LABEL_VALUE)
		return kr_error_set(err, KR_EINVAL, "%s.%.64s: longer than %d characters", p,
				    it->string, KR_SPEC_MAX_LABEL_VALUE);
	return KR_OK;
}

static enum kr_status decode_labels(const cJSON *scrape, struct kr_analysis_spec *a,
				    struct kr_error *err)
{
	const cJSON *labels, *it;
	enum kr_status rc;
	size_t i = 0;

	rc = kr_jr_object(scrape, "spec.analysis.scrape", "labels", &labels, err);
	if (rc != KR_OK || !labels)
		return rc;
	if (cJSON_GetArraySize(labels) > KR_SPEC_MAX_LABELS)
		return kr_error_set(err, KR_EINVAL,
				    "spec.analysis.scrape.labels: %d labels; at most %d",
				    cJSON_GetArraySize(labels), KR_SPEC_MAX_LABELS);
	a->n_labels = (size_t)cJSON_GetArraySize(labels);
	a->labels = calloc(a->n_labels ? a->n_labels : 1, sizeof(*a->labels));
	if (!a->labels)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, labels)
	{
		rc = check_label(it, err);
		if (rc != KR_OK)
			return rc;
		a->labels[i].name = dup_str(it->string);
		a->labels[i].value = dup_str(it->valuestring);
		if (!a->labels[i].name || !a->labels[i].value)
			return kr_error_set(err, KR_ENOMEM, "out of memory");
		i++;
	}
	return KR_OK;
}

static enum kr_status decode_basic_auth(const cJSON *prom, struct kr_analysis_spec *a,
					struct kr_error *err)
{
	static const char *p = "spec.analysis.prometheus.basicAuth";
	const cJSON *basic;
	enum kr_status rc;

	rc = kr_jr_object(prom, "spec.analysis.prometheus", "basicAuth", &basic, err);
	if (rc != KR_OK || !basic)
		return rc;
	if (kr_jr_member(prom, "bearerTokenSecretRef"))
		return kr_error_set(err, KR_EINVAL,
				    "spec.analysis.prometheus: at most one of bearerTokenSecretRef "
				    "and basicAuth may be set");
	rc = kr_jr_require(basic, p, "username", err);
	if (rc == KR_OK)
		rc = kr_jr_require(basic, p, "passwordSecretRef", err);
	if (rc == KR_OK)
		rc = kr_jr_str(basic, p, "username", NULL, &KR_JR_ANY253, &a->basic_username, err);
	if (rc == KR_OK)
		rc = decode_secret_key_ref(basic, p, "passwordSecretRef", &a->basic_password, err);
	return rc;
}

static enum kr_status decode_prometheus(const cJSON *prom, struct kr_analysis_spec *a,
					struct kr_error *err)
{
	static const char *p = "spec.analysis.prometheus";
	enum kr_status rc;

	a->source = KR_ANALYSIS_PROMETHEUS;
	rc = kr_jr_require(prom, p, "url", err);
	if (rc == KR_OK)
		rc = kr_jr_require(prom, p, "query", err);
	if (rc == KR_OK)
		rc = kr_jr_str(prom, p, "url", NULL, &R_URL, &a->url, err);
	if (rc == KR_OK)
		rc = kr_jr_str(prom, p, "query", NULL, &R_TEXT, &a->query, err);
	if (rc == KR_OK)
		rc = decode_secret_key_ref(prom, p, "caSecretRef", &a->ca, err);
	if (rc == KR_OK)
		rc = decode_secret_key_ref(prom, p, "bearerTokenSecretRef", &a->bearer_token, err);
	if (rc == KR_OK)
		rc = decode_basic_auth(prom, a, err);
	return rc;
}

static enum kr_status decode_scrape(const cJSON *scrape, struct kr_analysis_spec *a,
				    struct kr_error *err)
{
	static const char *p = "spec.analysis.scrape";
	enum kr_status rc;

	a->source = KR_ANALYSIS_SCRAPE;
	rc = kr_jr_require(scrape, p, "url", err);
	if (rc == KR_OK)
		rc = kr_jr_require(scrape, p, "metric", err);
	if (rc == KR_OK)
		rc = kr_jr_str(scrape, p, "url", NULL, &R_URL, &a->url, err);
	if (rc == KR_OK)
		rc = kr_jr_str(scrape, p, "metric", NULL, &R_METRIC, &a->metric, err);
	if (rc == KR_OK)
		rc = decode_labels(scrape, a, err);
	if (rc == KR_OK)
		rc = decode_secret_key_ref(scrape, p, "caSecretRef", &a->ca, err);
	return rc;
}

static enum kr_status decode_source(const cJSON *an, struct kr_analysis_spec *a,
				    struct kr_error *err)
{
	const cJSON *prom, *scrape;
	enum kr_status rc;

	rc = kr_jr_object(an, "spec.analysis", "prometheus", &prom, err);
	if (rc == KR_OK)
		rc = kr_jr_object(an, "spec.analysis", "scrape", &scrape, err);
	if (rc != KR_OK)
		return rc;
	if (!prom == !scrape)
		return kr_error_set(err, KR_EINVAL,
				    "spec.analysis: exactly one of "
				    "analysis.prometheus and analysis.scrape must be set");
	return prom ? decode_prometheus(prom, a, err) : decode_scrape(scrape, a, err);
}

static enum kr_status decode_analysis(const cJSON *spec, struct kr_rotation_spec *out,
				      struct kr_error *err)
{
	static const char *p = "spec.analysis";
	struct kr_analysis_spec *a = &out->analysis;
	const cJSON *an, *thr;
	enum kr_status rc;

	a->interval_ms = 15000;
	a->threshold = 0.5;
	a->failure_limit = 2;
	a->error_limit = 4;
	rc = kr_jr_object(spec, "spec", "analysis", &an, err);
	if (rc != KR_OK || !an)
		return rc;
	rc = decode_source(an, a, err);
	if (rc == KR_OK)
		rc = get_duration(an, p, "interval", "15s", true, &a->interval_ms, err);
	if (rc == KR_OK)
		rc = kr_jr_int(an, p, "failureLimit", 2, 1, 100, &a->failure_limit, err);
	if (rc == KR_OK)
		rc = kr_jr_int(an, p, "errorLimit", 4, 1, 100, &a->error_limit, err);
	if (rc != KR_OK)
		return rc;
	thr = kr_jr_member(an, "threshold");
	if (thr && (!cJSON_IsNumber(thr) || !isfinite(thr->valuedouble) || thr->valuedouble < 0))
		return kr_error_set(err, KR_EINVAL, "%s.threshold: must be a number >= 0", p);
	if (thr)
		a->threshold = thr->valuedouble;
	return KR_OK;
}

static enum kr_status decode_schedule(const cJSON *spec, struct kr_rotation_spec *out,
				      struct kr_error *err)
{
	struct kr_error cerr;
	enum kr_status rc;
	int64_t gap_s;
	bool uniform;

	rc = kr_jr_str(spec, "spec", "schedule", NULL, &R_SCHEDULE, &out->schedule, err);
	if (rc != KR_OK || !out->schedule)
		return rc;
	kr_error_clear(&cerr);
	if (kr_cron_parse(out->schedule, &out->cron, &cerr) != KR_OK ||
	    kr_cron_min_gap(&out->cron, &gap_s, &uniform, &cerr) != KR_OK)
		return kr_error_set(err, KR_EINVAL, "spec.schedule: \"%.128s\": %s", out->schedule,
				    cerr.msg);
	if (gap_s < KR_SPEC_MIN_INTERVAL_MS / 1000) /* a multiple of 60 s, under an hour */
		return kr_error_set(err, KR_EINVAL,
				    "spec.schedule: \"%.128s\" fires %s%lldm; at most once an hour "
				    "(the minimum interval between rotations)",
				    out->schedule, uniform ? "every " : "as often as every ",
				    (long long)(gap_s / 60));
	return KR_OK;
}

static enum kr_status decode_verify(const cJSON *spec, struct kr_rotation_spec *out,
				    struct kr_error *err)
{
	const cJSON *v;
	enum kr_status rc;

	rc = kr_jr_object(spec, "spec", "verify", &v, err);
	if (rc != KR_OK || !v)
		return rc;
	rc = kr_jr_require(v, "spec.verify", "url", err);
	if (rc == KR_OK)
		rc = kr_jr_str(v, "spec.verify", "url", NULL, &R_URL, &out->verify_url, err);
	if (rc == KR_OK)
		rc = kr_jr_str(v, "spec.verify", "header", "X-API-Key", &R_HEADER,
			       &out->verify_header, err);
	if (rc == KR_OK)
		rc = decode_secret_key_ref(v, "spec.verify", "caSecretRef", &out->verify_ca, err);
	return rc;
}

static enum kr_status decode_unlisted_policy(const cJSON *spec, struct kr_rotation_spec *out,
					     struct kr_error *err)
{
	static const char *const names[] = {"HoldRevoke", "Ignore", NULL};
	enum kr_status rc;
	int v = 0;

	rc = kr_jr_enum(spec, "spec", "unlistedConsumers", names, KR_UNLISTED_HOLD_REVOKE, &v, err);
	out->unlisted_policy = (enum kr_unlisted_policy)v;
	return rc;
}

static enum kr_status decode_rest(const cJSON *spec, struct kr_rotation_spec *out,
				  struct kr_error *err)
{
	enum kr_status rc;

	rc = get_duration(spec, "spec", "validationPeriod", "10m", false,
			  &out->validation_period_ms, err);
	if (rc == KR_OK)
		rc = get_duration(spec, "spec", "revokeWhenUnusedFor", NULL, false,
				  &out->revoke_when_unused_ms, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(spec, "spec", "pauseBeforeRevoke", &out->pause_before_revoke, err);
	if (rc == KR_OK)
		rc = decode_unlisted_policy(spec, out, err);
	if (rc == KR_OK)
		rc = kr_jr_bool(spec, "spec", "dryRun", &out->dry_run, err);
	if (rc == KR_OK)
		rc = decode_schedule(spec, out, err);
	if (rc == KR_OK)
		rc = get_duration(spec, "spec", "maxKeyAge", NULL, true, &out->max_key_age_ms, err);
	if (rc == KR_OK && out->max_key_age_ms >= 0 &&
	    out->max_key_age_ms < KR_SPEC_MIN_INTERVAL_MS)
		rc = kr_error_set(err, KR_EINVAL,
				  "spec.maxKeyAge: \"%.64s\" is less than 1h; at least 1h (the "
				  "minimum interval between rotations)",
				  kr_jr_member(spec, "maxKeyAge")->valuestring);
	if (rc == KR_OK)
		rc = kr_jr_bool(spec, "spec", "suspend", &out->suspend, err);
	if (rc == KR_OK)
		rc = decode_verify(spec, out, err);
	if (rc == KR_OK)
		rc = kr_jr_int(spec, "spec", "historyLimit", 10, 0, 100, &out->history_limit, err);
	return rc;
}

enum kr_status kr_rotation_spec_decode(const cJSON *obj, struct kr_rotation_spec *spec,
				       struct kr_error *err)
{
	const cJSON *s = obj;
	enum kr_status rc;

	memset(spec, 0, sizeof(*spec));
	if (cJSON_IsObject(obj) && cJSON_GetObjectItemCaseSensitive(obj, "spec"))
		s = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	if (!cJSON_IsObject(s))
		return kr_error_set(err, KR_EINVAL, "spec: must be an object");
	rc = decode_secret_ref(s, spec, err);
	if (rc == KR_OK)
		rc = decode_key_store(s, spec, err);
	if (rc == KR_OK)
		rc = decode_key(s, spec, err);
	if (rc == KR_OK)
		rc = decode_stages(s, spec, err);
	if (rc == KR_OK)
		rc = decode_analysis(s, spec, err);
	if (rc == KR_OK)
		rc = decode_rest(s, spec, err);
	if (rc != KR_OK)
		kr_rotation_spec_release(spec);
	return rc;
}

void kr_rotation_spec_release(struct kr_rotation_spec *spec)
{
	char **strs[] = {&spec->secret_name,
			 &spec->secret_key,
			 &spec->store_address,
			 &spec->store_username,
			 &spec->store_password_name,
			 &spec->store_password_key,
			 &spec->store_active_set,
			 &spec->store_meta_key,
			 &spec->store_bootstrap_key,
			 &spec->store_password_ns,
			 &spec->store_ref_name,
			 &spec->key_prefix,
			 &spec->analysis.url,
			 &spec->analysis.query,
			 &spec->analysis.metric,
			 &spec->schedule,
			 &spec->verify_url,
			 &spec->verify_header,
			 &spec->analysis.ca.name,
			 &spec->analysis.ca.key,
			 &spec->analysis.bearer_token.name,
			 &spec->analysis.bearer_token.key,
			 &spec->analysis.basic_username,
			 &spec->analysis.basic_password.name,
			 &spec->analysis.basic_password.key,
			 &spec->verify_ca.name,
			 &spec->verify_ca.key};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	kr_store_conn_spec_release(spec);
	for (size_t i = 0; spec->stages && i < spec->n_stages; i++) {
		for (size_t j = 0; spec->stages[i].workloads && j < spec->stages[i].n_workloads;
		     j++)
			free(spec->stages[i].workloads[j].name);
		free(spec->stages[i].workloads);
		free(spec->stages[i].name);
	}
	free(spec->stages);
	for (size_t i = 0; spec->analysis.labels && i < spec->analysis.n_labels; i++) {
		free(spec->analysis.labels[i].name);
		free(spec->analysis.labels[i].value);
	}
	free(spec->analysis.labels);
	memset(spec, 0, sizeof(*spec));
}

const char *kr_workload_kind_name(enum kr_workload_kind kind)
{
	switch (kind) {
	case KR_WORKLOAD_DEPLOYMENT:
		return "Deployment";
	case KR_WORKLOAD_STATEFULSET:
		return "StatefulSet";
	case KR_WORKLOAD_DAEMONSET:
		return "DaemonSet";
	}
	return "?";
}
