/*
 * promjson.c - decode a Prometheus /api/v1/query response into one measurement.
 * Reasons say what is wrong with a response and never quote it (analysis.h).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "egress/egress.h"

/* Prometheus's errorType values, and what they mean, in keyrotator's words. */
static const struct {
	const char *type, *meaning;
} pj_error_types[] = {
    {"bad_data", "the query or its parameters are not valid"},
    {"timeout", "the query timed out in Prometheus"},
    {"canceled", "the query was canceled"},
    {"execution", "the query failed while it ran"},
    {"internal", "Prometheus had an internal error"},
    {"unavailable", "Prometheus is not available"},
    {"not_found", "not found"},
    {"not_acceptable", "the request is not acceptable"},
};

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
		return kr_measurement_set_inconclusive(m, KR_EPROTO,
						       "malformed sample value: not a number");
	if (isnan(v))
		return kr_measurement_set_inconclusive(m, KR_EPROTO, "query returned NaN");
	if (isinf(v))
		return kr_measurement_set_inconclusive(m, KR_EPROTO, "query returned %s",
						       v > 0 ? "+Inf" : "-Inf");
	kr_measurement_set_value(m, v, ts->valuedouble);
	return KR_OK;
}

/* The series' labels are not quoted: a query can put any text into a label value. */
static enum kr_status pj_vector(const cJSON *result, struct kr_measurement *m)
{
	int n = cJSON_GetArraySize(result);

	if (n == 0)
		return kr_measurement_set_inconclusive(
		    m, KR_ENOTFOUND,
		    "query returned no series (append \"or vector(0)\" if no series means zero)");
	if (n > 1)
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO, "query returned %d series, want 1: aggregate with sum()", n);
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
	if (kr_text_token(type))
		return kr_measurement_set_inconclusive(
		    m, KR_EPROTO, "query returned a %s, want a vector or a scalar", type);
	return kr_measurement_set_inconclusive(
	    m, KR_EPROTO, "query returned a result of an unknown type, want a vector or a scalar");
}

/* status "error": the HTTP status and errorType (when it is a plain identifier), no text. */
static enum kr_status pj_error(const cJSON *root, long http_status, struct kr_measurement *m)
{
	const char *etype = kr_text_token(pj_string(root, "errorType"));

	if (!etype)
		return kr_measurement_set_inconclusive(
		    m, KR_EHTTP, "query failed (HTTP %ld): Prometheus reported an error",
		    http_status);
	for (size_t i = 0; i < sizeof(pj_error_types) / sizeof(pj_error_types[0]); i++)
		if (strcmp(etype, pj_error_types[i].type) == 0)
			return kr_measurement_set_inconclusive(
			    m, KR_EHTTP,
			    "query failed (HTTP %ld): %s: %s (run it in Prometheus for the "
			    "details)",
			    http_status, etype, pj_error_types[i].meaning);
	return kr_measurement_set_inconclusive(m, KR_EHTTP, "query failed (HTTP %ld): %s",
					       http_status, etype);
}

/*
 * What cJSON would build, bounded before it builds it: one pass over the bytes counting
 * bracket depth and values outside strings. A query answer is a few objects deep and has
 * a handful of values; cJSON's own nesting limit (1000) would let a 64 KiB body of "["
 * recurse 1000 deep, and "[0,0,...]" costs cJSON ~40 bytes of heap per input byte.
 * Upper bound on values: every '[', '{' and ',' may start one, plus the first.
 */
static enum kr_status pj_prescan(const char *body, size_t len, struct kr_measurement *m)
{
	size_t depth = 0, values = 1;
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		char c = body[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > KR_PROMJSON_MAX_DEPTH)
				return kr_measurement_set_inconclusive(
				    m, KR_EPROTO, "answer nested deeper than %d levels",
				    KR_PROMJSON_MAX_DEPTH);
			values++;
		} else if (c == ']' || c == '}') {
			if (depth > 0)
				depth--;
		} else if (c == ',') {
			values++;
		}
		if (values > KR_PROMJSON_MAX_VALUES)
			return kr_measurement_set_inconclusive(
			    m, KR_ETOOBIG, "answer has more than %d JSON values",
			    KR_PROMJSON_MAX_VALUES);
	}
	return KR_OK;
}

enum kr_status kr_promjson_decode(const char *body, size_t len, long http_status,
				  struct kr_measurement *m)
{
	cJSON *root = NULL;
	const char *status;
	enum kr_status rc;

	rc = pj_prescan(body ? body : "", body ? len : 0, m);
	if (rc != KR_OK && http_status != 200)
		rc = kr_measurement_set_inconclusive(
		    m, KR_EHTTP, "HTTP %ld, and the response is not a Prometheus answer",
		    http_status);
	if (rc != KR_OK) {
		m->reason.http_status = (int)http_status;
		return rc;
	}
	root = cJSON_ParseWithLength(body ? body : "", body ? len : 0);
	if (!root || !cJSON_IsObject(root)) {
		const char *what = root ? "a JSON object" : "JSON";

		cJSON_Delete(root);
		if (http_status != 200)
			rc = kr_measurement_set_inconclusive(
			    m, KR_EHTTP, "HTTP %ld, and the response is not a Prometheus answer",
			    http_status);
		else
			rc = kr_measurement_set_inconclusive(m, KR_EPROTO, "response is not %s",
							     what);
		m->reason.http_status = (int)http_status;
		return rc;
	}
	status = pj_string(root, "status");
	if (status && strcmp(status, "error") == 0) {
		rc = pj_error(root, http_status, m);
	} else if (!status || strcmp(status, "success") != 0) {
		rc = kr_text_token(status)
			 ? kr_measurement_set_inconclusive(
			       m, KR_EPROTO, "response has status \"%s\", want success", status)
			 : kr_measurement_set_inconclusive(m, KR_EPROTO,
							   "response has no status \"success\"");
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
