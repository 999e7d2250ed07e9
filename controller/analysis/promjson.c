/* promjson.c - decode a Prometheus /api/v1/query response into one measurement. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"

/* A printable, bounded copy of a non-JSON body for a message. */
static void pj_snippet(const char *body, size_t len, char *out, size_t size)
{
	size_t k = 0;

	for (size_t i = 0; i < len && k + 1 < size && k < 120; i++)
		out[k++] = isprint((unsigned char)body[i]) ? body[i] : ' ';
	out[k] = '\0';
}

static const char *pj_string(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* [ <unix seconds>, "<value>" ], the shape of a sample and of a scalar. */
static enum kr_status pj_sample_value(const cJSON *pair, struct kr_measurement *m)
{
	const cJSON *ts = cJSON_GetArrayItem(pair, 0), *val = cJSON_GetArrayItem(pair, 1);
	char *end = NULL;
	double v;

	if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsNumber(ts) ||
	    !cJSON_IsString(val))
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO, "malformed sample: want [<time>, \"<value>\"]");
	v = strtod(val->valuestring, &end);
	if (end == val->valuestring || *end != '\0')
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO, "malformed sample value \"%.40s\"", val->valuestring);
	if (isnan(v))
		return kr_measurement_set_inconclusive(m, KR_EPROTO, "query returned NaN");
	if (isinf(v))
		return kr_measurement_set_inconclusive(m, KR_EPROTO, "query returned %s",
						       v > 0 ? "+Inf" : "-Inf");
	kr_measurement_set_value(m, v, ts->valuedouble);
	return KR_OK;
}

/* The labels of a vector element, as {a="b",...}, for "which series" messages. */
static void pj_labels(const cJSON *elem, char *out, size_t size)
{
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(elem, "metric");
	const cJSON *l;
	size_t k = 0;

	k += (size_t)snprintf(out, size, "{");
	cJSON_ArrayForEach(l, metric)
	{
		if (k < size && cJSON_IsString(l))
			k += (size_t)snprintf(out + k, size - k, "%s%s=\"%s\"", k > 1 ? "," : "",
					      l->string, l->valuestring);
	}
	if (k < size)
		snprintf(out + k, size - k, "}");
}

static enum kr_status pj_vector(const cJSON *result, struct kr_measurement *m)
{
	int n = cJSON_GetArraySize(result);
	char a[160], b[160];

	if (n == 0)
		return kr_measurement_set_inconclusive(
		    m, KR_ENOTFOUND,
		    "query returned no series (append \"or vector(0)\" if no series means zero)");
	if (n > 1) {
		pj_labels(cJSON_GetArrayItem(result, 0), a, sizeof(a));
		pj_labels(cJSON_GetArrayItem(result, 1), b, sizeof(b));
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO,
		    "query returned %d series, want 1 (%s, %s, ...): aggregate with sum()", n, a,
		    b);
	}
	return pj_sample_value(
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(result, 0), "value"), m);
}

static enum kr_status pj_data(const cJSON *root, struct kr_measurement *m)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
	const char *type = pj_string(data, "resultType");

	if (!type || !result)
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO, "response has no data.resultType and data.result");
	if (strcmp(type, "scalar") == 0)
		return pj_sample_value(result, m);
	if (strcmp(type, "vector") == 0 && cJSON_IsArray(result))
		return pj_vector(result, m);
	if (strcmp(type, "matrix") == 0)
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO,
		    "query returned a range vector (matrix), want an instant vector or a scalar");
	return kr_measurement_set_inconclusive(
	    m, KR_EPROTO, "query returned a %.32s, want a vector or a scalar", type);
}

enum kr_status kr_promjson_decode(const char *body, size_t len, long http_status,
				  struct kr_measurement *m)
{
	cJSON *root = cJSON_ParseWithLength(body ? body : "", len);
	const char *status, *etype, *emsg;
	enum kr_status rc;
	char snip[128];

	if (!root || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		pj_snippet(body ? body : "", len, snip, sizeof(snip));
		if (http_status != 200)
			return kr_measurement_set_inconclusive(m, KR_EHTTP, "HTTP %ld: %s",
							       http_status, snip);
		return kr_measurement_set_inconclusive(m, KR_EPROTO, "response is not JSON: \"%s\"",
						       snip);
	}
	status = pj_string(root, "status");
	if (status && strcmp(status, "error") == 0) {
		etype = pj_string(root, "errorType");
		emsg = pj_string(root, "error");
		rc = kr_measurement_set_inconclusive(m, KR_EHTTP, "query failed (HTTP %ld): %s: %s",
						     http_status, etype ? etype : "error",
						     emsg ? emsg : "no message");
	} else if (!status || strcmp(status, "success") != 0) {
		rc = kr_measurement_set_inconclusive(m, KR_EPROTO,
						     "response has status \"%.32s\", want success",
						     status ? status : "");
	} else if (http_status != 200) {
		rc = kr_measurement_set_inconclusive(m, KR_EHTTP, "HTTP %ld with status success",
						     http_status);
	} else {
		rc = pj_data(root, m);
	}
	if (rc != KR_OK)
		m->reason.http_status = (int)http_status;
	cJSON_Delete(root);
	return rc;
}
