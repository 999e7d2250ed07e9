/* stream.c - split a watch response body into JSON lines and decode each as a watch event. */
#include <string.h>

#include "kube/kube.h"

/* Used when the caller passes max_line 0: large enough for any object etcd will store. */
#define KR_KUBE_STREAM_DEFAULT_MAX_LINE (16u * 1024u * 1024u)

static const struct {
	const char *name;
	enum kr_kube_event_type type;
} kr_kube_event_names[] = {
    {"ADDED", KR_KUBE_ADDED},	    {"MODIFIED", KR_KUBE_MODIFIED}, {"DELETED", KR_KUBE_DELETED},
    {"BOOKMARK", KR_KUBE_BOOKMARK}, {"ERROR", KR_KUBE_ERROR},
};

void kr_kube_stream_init(struct kr_kube_stream *s, size_t max_line)
{
	kr_buf_init(&s->pending);
	s->max_line = max_line ? max_line : KR_KUBE_STREAM_DEFAULT_MAX_LINE;
}

void kr_kube_stream_release(struct kr_kube_stream *s)
{
	kr_buf_release(&s->pending);
}

static enum kr_status kr_kube_event_type_parse(const char *name, enum kr_kube_event_type *type)
{
	for (size_t i = 0; i < sizeof(kr_kube_event_names) / sizeof(kr_kube_event_names[0]); i++) {
		if (strcmp(name, kr_kube_event_names[i].name) == 0) {
			*type = kr_kube_event_names[i].type;
			return KR_OK;
		}
	}
	return KR_EPROTO;
}

/*
 * Messages never quote the line: a watch on Secrets carries key material, and these
 * messages end up in logs and events.
 */
enum kr_status kr_kube_event_decode(const char *line, size_t len, enum kr_kube_event_type *type,
				    cJSON **object, struct kr_error *err)
{
	cJSON *root = cJSON_ParseWithLength(line, len);
	const cJSON *jtype;
	enum kr_status rc;

	*object = NULL;
	if (!root || !cJSON_IsObject(root)) {
		rc =
		    kr_error_set(err, KR_EPROTO, "watch event: not a JSON object (%zu bytes)", len);
		goto out;
	}
	jtype = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!cJSON_IsString(jtype)) {
		rc = kr_error_set(err, KR_EPROTO, "watch event: missing \"type\"");
		goto out;
	}
	if (kr_kube_event_type_parse(jtype->valuestring, type) != KR_OK) {
		rc = kr_error_set(err, KR_EPROTO, "watch event: unknown type");
		goto out;
	}
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "object"))) {
		rc = kr_error_set(err, KR_EPROTO, "watch event: missing \"object\"");
		goto out;
	}
	*object = cJSON_DetachItemFromObjectCaseSensitive(root, "object");
	rc = KR_OK;
out:
	cJSON_Delete(root);
	return rc;
}

static enum kr_status kr_kube_stream_too_big(struct kr_kube_stream *s, struct kr_error *err)
{
	return kr_error_set(err, KR_ETOOBIG, "watch event: line longer than %zu bytes",
			    s->max_line);
}

/* One line without its LF. A CR before the LF is dropped; blank lines are skipped. */
static enum kr_status kr_kube_stream_line(struct kr_kube_stream *s, const char *line, size_t len,
					  kr_kube_event_fn fn, void *arg, struct kr_error *err)
{
	enum kr_kube_event_type type;
	cJSON *object;
	enum kr_status rc;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > s->max_line)
		return kr_kube_stream_too_big(s, err);
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return KR_OK;
	rc = kr_kube_event_decode(line, len, &type, &object, err);
	if (rc != KR_OK)
		return rc;
	rc = fn(arg, type, object, err);
	cJSON_Delete(object);
	return rc;
}

static enum kr_status kr_kube_stream_keep(struct kr_kube_stream *s, const char *data, size_t len,
					  struct kr_error *err)
{
	if (kr_buf_add(&s->pending, data, len) != KR_OK)
		return kr_error_set(err, KR_ENOMEM, "watch event: out of memory");
	return KR_OK;
}

/*
 * Each byte is looked at once: complete lines inside `data` are decoded in place, and
 * only a line split across calls is copied into `pending`. After an error the stream
 * is empty again (the caller restarts the watch).
 */
enum kr_status kr_kube_stream_feed(struct kr_kube_stream *s, const char *data, size_t len,
				   kr_kube_event_fn fn, void *arg, struct kr_error *err)
{
	enum kr_status rc = KR_OK;

	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;

		if (s->pending.len + take > s->max_line + 1) { /* +1: a CR may still go */
			rc = kr_kube_stream_too_big(s, err);
			goto out;
		}
		if (!nl) {
			rc = kr_kube_stream_keep(s, data, take, err);
			goto out;
		}
		if (s->pending.len == 0) {
			rc = kr_kube_stream_line(s, data, take, fn, arg, err);
		} else {
			rc = kr_kube_stream_keep(s, data, take, err);
			if (rc == KR_OK)
				rc = kr_kube_stream_line(s, s->pending.data, s->pending.len, fn,
							 arg, err);
			kr_buf_reset(&s->pending);
		}
		if (rc != KR_OK)
			goto out;
		data += take + 1;
		len -= take + 1;
	}
out:
	if (rc != KR_OK)
		kr_buf_reset(&s->pending);
	return rc;
}
