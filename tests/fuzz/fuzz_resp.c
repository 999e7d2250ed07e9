/*
 * fuzz_resp.c - a Valkey reply stream, measured by the keystore's RESP scanner
 * (kr_ks_resp_guard_feed) and parsed by hiredis's reader, as conn.c does it.
 *
 * The first byte picks the chunk size (1-64 bytes, or everything at once); the rest is
 * what the server sent. The scanner must say the same whichever way the bytes are cut.
 * When it accepts every byte, hiredis must accept them too (the scanner is the stricter)
 * and find exactly as many complete replies, each within the bounds: no string longer
 * than KR_KS_REPLY_MAX_BYTES, no more than KR_KS_REPLY_MAX_ELEMENTS elements, no more
 * than KR_KS_REPLY_MAX_DEPTH arrays deep.
 */
#include "fuzz.h"
#include "keystore/internal.h"

static size_t fz_elements(const redisReply *r, size_t depth, size_t *max_depth)
{
	size_t n = 0;

	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
	    r->type == REDIS_REPLY_ERROR)
		KR_FUZZ_ASSERT(r->len <= KR_KS_REPLY_MAX_BYTES);
	if (r->type != REDIS_REPLY_ARRAY)
		return 0;
	if (depth + 1 > *max_depth)
		*max_depth = depth + 1;
	for (size_t i = 0; i < r->elements; i++)
		n += 1 + fz_elements(r->element[i], depth + 1, max_depth);
	return n;
}

static enum kr_status fz_scan(const uint8_t *data, size_t size, size_t step, size_t *replies,
			      struct kr_error *err)
{
	struct kr_ks_resp_guard g;
	enum kr_status rc = KR_OK;

	kr_ks_resp_guard_init(&g);
	for (size_t off = 0; off < size && rc == KR_OK; off += step)
		rc = kr_ks_resp_guard_feed(&g, (const char *)data + off,
					   size - off < step ? size - off : step, err);
	*replies = g.replies;
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kr_error e1, e2;
	size_t step, r1, r2, found = 0;
	enum kr_status rc1, rc2;
	redisReader *reader;
	void *reply = NULL;

	if (size < 1)
		return 0;
	step = data[0] % 65 ? data[0] % 65 : size;
	data++;
	size--;
	memset(&e1, 0, sizeof(e1));
	memset(&e2, 0, sizeof(e2));
	rc1 = fz_scan(data, size, size ? size : 1, &r1, &e1);
	rc2 = fz_scan(data, size, step, &r2, &e2);
	KR_FUZZ_ASSERT(rc1 == rc2);
	KR_FUZZ_ASSERT(strcmp(e1.msg, e2.msg) == 0);
	if (rc1 != KR_OK) {
		KR_FUZZ_ASSERT(rc1 == KR_ETOOBIG || rc1 == KR_EPROTO);
		KR_FUZZ_ASSERT(e1.msg[0] != '\0');
		return 0;
	}
	KR_FUZZ_ASSERT(r1 == r2);
	reader = redisReaderCreate();
	if (!reader)
		return 0;
	KR_FUZZ_ASSERT(size == 0 || redisReaderFeed(reader, (const char *)data, size) == REDIS_OK);
	for (;;) {
		size_t depth = 0;

		KR_FUZZ_ASSERT(redisReaderGetReply(reader, &reply) == REDIS_OK);
		if (!reply)
			break;
		found++;
		KR_FUZZ_ASSERT(fz_elements(reply, 0, &depth) <= KR_KS_REPLY_MAX_ELEMENTS);
		KR_FUZZ_ASSERT(depth <= KR_KS_REPLY_MAX_DEPTH);
		freeReplyObject(reply);
	}
	KR_FUZZ_ASSERT(found == r1);
	redisReaderFree(reader);
	return 0;
}
