/* yaml.c - libyaml event stream to cJSON, with core-schema scalar resolution. */
#include "yaml/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define KR_YAML_MAX_NODES 1000000
#define KR_YAML_MAX_DEPTH 256
#define KR_YAML_MAX_FILE (16u << 20)

struct kr_yaml_anchor {
	char *name;
	cJSON *node; /* a private copy */
	struct kr_yaml_anchor *next;
};

struct kr_yaml_ctx {
	yaml_parser_t parser;
	const char *source;
	struct kr_error *err;
	struct kr_yaml_anchor *anchors;
	long nodes;
};

static enum kr_status kr_yaml_fail(struct kr_yaml_ctx *y, enum kr_status code, const yaml_mark_t *m,
				   const char *what)
{
	return kr_error_set(y->err, code, "%s%sline %zu column %zu: %s", y->source ? y->source : "",
			    y->source ? ": " : "", m->line + 1, m->column + 1, what);
}

static int kr_yaml_is(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

/* YAML 1.2 core schema for plain scalars. */
static cJSON *kr_yaml_resolve_plain(const char *s)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	char *end;

	if (kr_yaml_is(s, nulls))
		return cJSON_CreateNull();
	if (kr_yaml_is(s, trues))
		return cJSON_CreateTrue();
	if (kr_yaml_is(s, falses))
		return cJSON_CreateFalse();
	if (strspn(s, "+-0123456789") == strlen(s) && strpbrk(s, "0123456789")) {
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (!*end && !errno)
			return cJSON_CreateNumber((double)v);
	}
	if (strspn(s, "+-0123456789.eE") == strlen(s) && strpbrk(s, "0123456789") &&
	    (s[0] != '.' || s[1])) {
		double d = strtod(s, &end);
		if (!*end && isfinite(d))
			return cJSON_CreateNumber(d);
	}
	return cJSON_CreateString(s);
}

static cJSON *kr_yaml_scalar(const yaml_event_t *ev)
{
	const char *value = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;

	if (tag && !strcmp(tag, YAML_STR_TAG))
		return cJSON_CreateString(value);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return cJSON_CreateString(value);
	return kr_yaml_resolve_plain(value);
}

static enum kr_status kr_yaml_remember(struct kr_yaml_ctx *y, const yaml_char_t *anchor,
				       const cJSON *node)
{
	struct kr_yaml_anchor *a;

	if (!anchor)
		return KR_OK;
	a = calloc(1, sizeof(*a));
	if (!a)
		return KR_ENOMEM;
	a->name = strdup((const char *)anchor);
	a->node = cJSON_Duplicate(node, 1);
	a->next = y->anchors;
	y->anchors = a;
	return a->name && a->node ? KR_OK : KR_ENOMEM;
}

static long kr_yaml_count(const cJSON *n)
{
	long c = 1;

	for (const cJSON *k = n->child; k; k = k->next)
		c += kr_yaml_count(k);
	return c;
}

static enum kr_status kr_yaml_alias(struct kr_yaml_ctx *y, const yaml_event_t *ev, cJSON **out)
{
	const char *name = (const char *)ev->data.alias.anchor;

	for (struct kr_yaml_anchor *a = y->anchors; a; a = a->next) {
		if (strcmp(a->name, name))
			continue;
		y->nodes += kr_yaml_count(a->node);
		if (y->nodes > KR_YAML_MAX_NODES)
			return kr_yaml_fail(y, KR_ETOOBIG, &ev->start_mark,
					    "too many nodes after expanding aliases");
		*out = cJSON_Duplicate(a->node, 1);
		return *out ? KR_OK : KR_ENOMEM;
	}
	return kr_yaml_fail(y, KR_EINVAL, &ev->start_mark, "unknown alias");
}

static enum kr_status kr_yaml_node(struct kr_yaml_ctx *y, yaml_event_t *ev, int depth, cJSON **out);

static enum kr_status kr_yaml_next(struct kr_yaml_ctx *y, yaml_event_t *ev)
{
	if (yaml_parser_parse(&y->parser, ev))
		return KR_OK;
	return kr_error_set(y->err, KR_EINVAL, "%s%sline %zu column %zu: YAML syntax error: %s",
			    y->source ? y->source : "", y->source ? ": " : "",
			    y->parser.problem_mark.line + 1, y->parser.problem_mark.column + 1,
			    y->parser.problem ? y->parser.problem : "unknown");
}

/* Children of a sequence or mapping until its end event. */
static enum kr_status kr_yaml_children(struct kr_yaml_ctx *y, cJSON *parent, int is_map, int depth)
{
	yaml_event_t ev;
	enum kr_status rc;
	yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

	for (;;) {
		cJSON *key = NULL, *value = NULL;

		rc = kr_yaml_next(y, &ev);
		if (rc != KR_OK)
			return rc;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return KR_OK;
		}
		rc = kr_yaml_node(y, &ev, depth + 1, is_map ? &key : &value);
		if (rc == KR_OK && is_map && !cJSON_IsString(key)) {
			char num[64];
			if (cJSON_IsNumber(key) || cJSON_IsBool(key) || cJSON_IsNull(key)) {
				/* Kubernetes keys are strings; render scalar keys as text. */
				char *txt = cJSON_PrintUnformatted(key);
				snprintf(num, sizeof(num), "%s", txt ? txt : "");
				free(txt);
				cJSON_Delete(key);
				key = cJSON_CreateString(num);
			} else {
				rc = kr_yaml_fail(y, KR_EINVAL, &ev.start_mark,
						  "mapping keys must be scalars");
			}
		}
		if (rc == KR_OK && is_map) {
			yaml_event_t vev;
			rc = kr_yaml_next(y, &vev);
			if (rc == KR_OK) {
				rc = kr_yaml_node(y, &vev, depth + 1, &value);
				yaml_event_delete(&vev);
			}
		}
		if (rc == KR_OK && is_map) {
			cJSON_DeleteItemFromObjectCaseSensitive(parent, key->valuestring);
			cJSON_AddItemToObject(parent, key->valuestring, value);
			value = NULL;
		} else if (rc == KR_OK) {
			cJSON_AddItemToArray(parent, value);
			value = NULL;
		}
		cJSON_Delete(key);
		cJSON_Delete(value);
		yaml_event_delete(&ev);
		if (rc != KR_OK)
			return rc;
	}
}

/* Build the node that starts with `ev` (consumed by the caller). */
static enum kr_status kr_yaml_node(struct kr_yaml_ctx *y, yaml_event_t *ev, int depth, cJSON **out)
{
	enum kr_status rc = KR_OK;
	const yaml_char_t *anchor = NULL;

	*out = NULL;
	if (depth > KR_YAML_MAX_DEPTH)
		return kr_yaml_fail(y, KR_ETOOBIG, &ev->start_mark, "nesting too deep");
	if (++y->nodes > KR_YAML_MAX_NODES)
		return kr_yaml_fail(y, KR_ETOOBIG, &ev->start_mark, "too many nodes");
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		*out = kr_yaml_scalar(ev);
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_ALIAS_EVENT:
		return kr_yaml_alias(y, ev, out);
	case YAML_SEQUENCE_START_EVENT:
		*out = cJSON_CreateArray();
		anchor = ev->data.sequence_start.anchor;
		if (*out)
			rc = kr_yaml_children(y, *out, 0, depth);
		break;
	case YAML_MAPPING_START_EVENT:
		*out = cJSON_CreateObject();
		anchor = ev->data.mapping_start.anchor;
		if (*out)
			rc = kr_yaml_children(y, *out, 1, depth);
		break;
	default:
		return kr_yaml_fail(y, KR_EINVAL, &ev->start_mark, "unexpected YAML event");
	}
	if (!*out)
		return KR_ENOMEM;
	if (rc == KR_OK)
		rc = kr_yaml_remember(y, anchor, *out);
	if (rc != KR_OK) {
		cJSON_Delete(*out);
		*out = NULL;
	}
	return rc;
}

/* One document's body: the node after DOCUMENT-START, then DOCUMENT-END. */
static enum kr_status kr_yaml_document(struct kr_yaml_ctx *y, cJSON *docs)
{
	yaml_event_t ev;
	cJSON *node = NULL;
	enum kr_status rc = kr_yaml_next(y, &ev);

	if (rc != KR_OK)
		return rc;
	if (ev.type != YAML_DOCUMENT_END_EVENT) {
		rc = kr_yaml_node(y, &ev, 0, &node);
		yaml_event_delete(&ev);
		if (rc == KR_OK)
			rc = kr_yaml_next(y, &ev);
		if (rc != KR_OK) {
			cJSON_Delete(node);
			return rc;
		}
	}
	yaml_event_delete(&ev);
	if (node && !cJSON_IsNull(node))
		cJSON_AddItemToArray(docs, node);
	else
		cJSON_Delete(node);
	return KR_OK;
}

static void kr_yaml_ctx_release(struct kr_yaml_ctx *y)
{
	while (y->anchors) {
		struct kr_yaml_anchor *a = y->anchors;
		y->anchors = a->next;
		free(a->name);
		cJSON_Delete(a->node);
		free(a);
	}
	yaml_parser_delete(&y->parser);
}

enum kr_status kr_yaml_parse(const char *text, size_t len, const char *source, cJSON **out,
			     struct kr_error *err)
{
	struct kr_yaml_ctx y = { .source = source, .err = err };
	cJSON *docs = cJSON_CreateArray();
	enum kr_status rc = KR_OK;
	int done = 0;

	*out = NULL;
	if (!docs || !yaml_parser_initialize(&y.parser)) {
		cJSON_Delete(docs);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
	while (rc == KR_OK && !done) {
		yaml_event_t ev;

		rc = kr_yaml_next(&y, &ev);
		if (rc != KR_OK)
			break;
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			rc = kr_yaml_document(&y, docs);
		else if (ev.type == YAML_STREAM_END_EVENT)
			done = 1;
		yaml_event_delete(&ev);
	}
	kr_yaml_ctx_release(&y);
	if (rc != KR_OK) {
		cJSON_Delete(docs);
		return rc;
	}
	*out = docs;
	return KR_OK;
}

enum kr_status kr_yaml_parse_file(const char *path, cJSON **out, struct kr_error *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t n = 0;
	enum kr_status rc;

	*out = NULL;
	if (!f)
		return kr_error_set(err, KR_EINVAL, "%s: cannot open: %s", path, strerror(errno));
	text = malloc(KR_YAML_MAX_FILE + 1);
	if (!text) {
		fclose(f);
		return kr_error_set(err, KR_ENOMEM, "out of memory");
	}
	n = fread(text, 1, KR_YAML_MAX_FILE + 1, f);
	rc = ferror(f) ? kr_error_set(err, KR_EINVAL, "%s: read error", path) : KR_OK;
	fclose(f);
	if (rc == KR_OK && n > KR_YAML_MAX_FILE)
		rc = kr_error_set(err, KR_ETOOBIG, "%s: larger than 16 MiB", path);
	if (rc == KR_OK)
		rc = kr_yaml_parse(text, n, path, out, err);
	free(text);
	return rc;
}
