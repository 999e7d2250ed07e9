/* reader.c - typed reads of a cJSON tree that name the field path in their errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "json/json.h"

/* ---- lookups ---- */

const cJSON *kr_json_at(const cJSON *obj, const char *const *path)
{
	for (; obj && *path; path++)
		obj = cJSON_GetObjectItemCaseSensitive(obj, *path);
	return obj;
}

const char *kr_json_str(const cJSON *obj, const char *const *path)
{
	const cJSON *v = kr_json_at(obj, path);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

double kr_json_num(const cJSON *obj, const char *const *path, double dflt)
{
	const cJSON *v = kr_json_at(obj, path);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

void kr_json_sanitize(cJSON *obj)
{
	for (cJSON *it = obj; it; it = it->next) {
		if (it->string)
			kr_text_sanitize(it->string);
		if (cJSON_IsString(it) && it->valuestring)
			kr_text_sanitize(it->valuestring);
		if (it->child)
			kr_json_sanitize(it->child);
	}
}

/* ---- rules ---- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ over [s, s+n) */
static bool dns_label_n(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool kr_jr_check_dns_label(const char *s)
{
	return dns_label_n(s, strlen(s));
}

bool kr_jr_check_dns_subdomain(const char *s)
{
	const char *dot;

	while ((dot = strchr(s, '.')) != NULL) {
		if (!dns_label_n(s, (size_t)(dot - s)))
			return false;
		s = dot + 1;
	}
	return dns_label_n(s, strlen(s));
}

static bool check_data_key(const char *s)
{
	for (; *s; s++)
		if (!is_alnum(*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

/* ^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):[0-9]{1,5}$ */
static bool check_address(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t hn, pn;

	if (!colon)
		return false;
	hn = (size_t)(colon - s);
	pn = strlen(colon + 1);
	if (pn < 1 || pn > 5 || strspn(colon + 1, "0123456789") != pn || hn == 0)
		return false;
	if (s[0] == '[')
		return hn > 2 && s[hn - 1] == ']' &&
		       strspn(s + 1, "0123456789abcdefABCDEF:.") == hn - 2;
	if (!is_alnum(s[0]) || !is_alnum(s[hn - 1]))
		return false;
	for (size_t i = 0; i < hn; i++)
		if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

const struct kr_jr_rule KR_JR_SUBDOMAIN = {1, 253, kr_jr_check_dns_subdomain,
					   "a DNS subdomain ([a-z0-9] and '-', dot-separated)"};
const struct kr_jr_rule KR_JR_LABEL = {1, 63, kr_jr_check_dns_label,
				       "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"};
const struct kr_jr_rule KR_JR_DATA_KEY = {1, 253, check_data_key, "^[-._a-zA-Z0-9]+$"};
const struct kr_jr_rule KR_JR_ADDRESS = {3, 261, check_address, "host:port"};
const struct kr_jr_rule KR_JR_ANY253 = {1, 253, NULL, NULL};

/* ---- getters ---- */

char *kr_jr_path(char *buf, size_t size, const char *path, const char *field)
{
	snprintf(buf, size, "%s.%s", path, field);
	return buf;
}

const cJSON *kr_jr_member(const cJSON *obj, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	return cJSON_IsNull(v) ? NULL : v;
}

enum kr_status kr_jr_require(const cJSON *obj, const char *path, const char *field,
			     struct kr_error *err)
{
	if (!kr_jr_member(obj, field))
		return kr_error_set(err, KR_EINVAL, "%s.%s: required", path, field);
	return KR_OK;
}

enum kr_status kr_jr_object(const cJSON *obj, const char *path, const char *field,
			    const cJSON **out, struct kr_error *err)
{
	*out = kr_jr_member(obj, field);
	if (*out && !cJSON_IsObject(*out))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an object", path, field);
	return KR_OK;
}

enum kr_status kr_jr_array(const cJSON *obj, const char *path, const char *field, size_t max_items,
			   const cJSON **out, struct kr_error *err)
{
	size_t n;

	*out = kr_jr_member(obj, field);
	if (!*out)
		return KR_OK;
	if (!cJSON_IsArray(*out))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be a list", path, field);
	n = (size_t)cJSON_GetArraySize(*out);
	if (n > max_items)
		return kr_error_set(err, KR_EINVAL, "%s.%s: %zu items, at most %zu allowed", path,
				    field, n, max_items);
	return KR_OK;
}

enum kr_status kr_jr_str(const cJSON *obj, const char *path, const char *field, const char *def,
			 const struct kr_jr_rule *rule, char **out, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);
	const char *s;
	size_t n;

	*out = NULL;
	if (!v && !def)
		return KR_OK;
	if (v && !cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be a string", path, field);
	s = v ? v->valuestring : def;
	n = strlen(s);
	if (v && (n < rule->min || n > rule->max))
		return kr_error_set(err, KR_EINVAL, "%s.%s: length %zu is outside %zu..%zu", path,
				    field, n, rule->min, rule->max);
	if (v && rule->check && !rule->check(s))
		return kr_error_set(err, KR_EINVAL, "%s.%s: \"%.64s\" does not match %s", path,
				    field, s, rule->pattern);
	*out = malloc(n + 1);
	if (!*out)
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	memcpy(*out, s, n + 1);
	return KR_OK;
}

enum kr_status kr_jr_int(const cJSON *obj, const char *path, const char *field, int def, int min,
			 int max, int *out, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);

	*out = def;
	if (!v)
		return KR_OK;
	if (!cJSON_IsNumber(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an integer", path, field);
	if (v->valuedouble < min || v->valuedouble > max)
		return kr_error_set(err, KR_EINVAL, "%s.%s: %g is outside %d..%d", path, field,
				    v->valuedouble, min, max);
	if (v->valuedouble != (double)(int)v->valuedouble)
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be an integer", path, field);
	*out = (int)v->valuedouble;
	return KR_OK;
}

enum kr_status kr_jr_bool(const cJSON *obj, const char *path, const char *field, bool *out,
			  struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);

	*out = false;
	if (!v)
		return KR_OK;
	if (!cJSON_IsBool(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be true or false", path, field);
	*out = cJSON_IsTrue(v);
	return KR_OK;
}

enum kr_status kr_jr_enum(const cJSON *obj, const char *path, const char *field,
			  const char *const *names, int def, int *out, struct kr_error *err)
{
	const cJSON *v = kr_jr_member(obj, field);
	char list[256] = "";
	size_t used = 0;

	*out = def;
	if (!v)
		return KR_OK;
	if (!cJSON_IsString(v))
		return kr_error_set(err, KR_EINVAL, "%s.%s: must be a string", path, field);
	for (int i = 0; names[i]; i++) {
		if (strcmp(v->valuestring, names[i]) == 0) {
			*out = i;
			return KR_OK;
		}
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", names[i]);
	}
	return kr_error_set(err, KR_EINVAL, "%s.%s: \"%.32s\" is not one of %s", path, field,
			    v->valuestring, list);
}
