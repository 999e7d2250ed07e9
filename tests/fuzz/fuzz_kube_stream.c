/* fuzz_kube_stream.c - the watch stream splitter: any chunking of a body gives the same events. */
#include <cjson/cJSON.h>

#include "base/buf.h"
#include "fuzz.h"
#include "kube/kube.h"

/*
 * The input is a watch response body. It is fed twice: whole, and in chunks whose sizes
 * come from a hash of the input (1 byte up to 64), with a max_line picked the same way.
 * Both runs must deliver the same events, in the same order, and end with the same
 * status: the splitter's contract is "feed bytes as they arrive".
 */

struct trace {
	struct kr_buf text; /* "<type> <object JSON>\n" per event */
};

static enum kr_status on_event(void *arg, enum kr_kube_event_type type, const cJSON *object,
			       struct kr_error *err)
{
	struct trace *t = arg;
	char *json;

	(void)err;
	KR_FUZZ_ASSERT(cJSON_IsObject(object));
	KR_FUZZ_ASSERT(type >= KR_KUBE_ADDED && type <= KR_KUBE_ERROR);
	json = cJSON_PrintUnformatted(object);
	if (!json)
		return KR_ENOMEM;
	(void)kr_buf_addf(&t->text, "%d %s\n", (int)type, json);
	free(json);
	return KR_OK;
}

static uint32_t hash(const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

/* Feed `data` in chunks (chunk 0 = whole); the status of the first failure, or KR_OK. */
static enum kr_status run(const uint8_t *data, size_t size, size_t max_line, uint32_t seed,
			  int chunked, struct trace *t, struct kr_error *err)
{
	struct kr_kube_stream s;
	enum kr_status rc = KR_OK;
	size_t off = 0;

	kr_kube_stream_init(&s, max_line);
	while (off < size && rc == KR_OK) {
		size_t n = size - off;

		if (chunked) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 64;
			if (n > size - off)
				n = size - off;
		}
		rc = kr_kube_stream_feed(&s, (const char *)data + off, n, on_event, t, err);
		off += n;
	}
	kr_kube_stream_release(&s);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_lines[] = {1, 16, 128, 1024, 1 << 20};
	uint32_t h = hash(data, size);
	size_t max_line = max_lines[h % 5];
	struct trace whole, parts;
	struct kr_error e1, e2;
	enum kr_status r1, r2;

	kr_buf_init(&whole.text);
	kr_buf_init(&parts.text);
	kr_error_clear(&e1);
	kr_error_clear(&e2);
	r1 = run(data, size, max_line, h, 0, &whole, &e1);
	r2 = run(data, size, max_line, h, 1, &parts, &e2);
	if (r1 != KR_ENOMEM && r2 != KR_ENOMEM) {
		KR_FUZZ_ASSERT(r1 == r2);
		KR_FUZZ_ASSERT(whole.text.len == parts.text.len);
		KR_FUZZ_ASSERT(whole.text.len == 0 ||
			       memcmp(whole.text.data, parts.text.data, whole.text.len) == 0);
		KR_FUZZ_ASSERT(r1 == KR_OK || e1.msg[0] != '\0');
	}
	kr_buf_release(&whole.text);
	kr_buf_release(&parts.text);
	return 0;
}
