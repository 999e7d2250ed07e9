/* pack.c - text kept compressed in memory: zlib deflate with a preset dictionary. */
#include "runtime/pack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/*
 * Raw deflate (no zlib header or checksum: the block never leaves the process) with a
 * 4 KiB window, enough for a KeyRotation and the dictionary, and a small hash table:
 * deflate's state is then ~38 KiB, under the allocator's mmap threshold (memory.c), so a
 * pack costs no system call.
 */
#define KR_PACK_WBITS	 12
#define KR_PACK_MEMLEVEL 5
#define KR_PACK_HDR	 9 /* u32 text length, u32 stored length, u8 deflated */

static void kr_pack_hdr_put(char *p, uint32_t len, uint32_t stored, uint8_t deflated)
{
	memcpy(p, &len, 4);
	memcpy(p + 4, &stored, 4);
	p[8] = (char)deflated;
}

static void kr_pack_hdr_get(const char *p, uint32_t *len, uint32_t *stored, uint8_t *deflated)
{
	memcpy(len, p, 4);
	memcpy(stored, p + 4, 4);
	*deflated = (uint8_t)p[8];
}

static const Bytef *kr_pack_dict_bytes(const struct kr_pack_dict *d, uInt *len)
{
	size_t max = (size_t)1 << KR_PACK_WBITS;

	if (!d || !d->data || !d->len) {
		*len = 0;
		return NULL;
	}
	/* deflate keeps only the window's worth: the end of the dictionary */
	*len = (uInt)(d->len > max ? max : d->len);
	return (const Bytef *)d->data + (d->len - *len);
}

/* `text` kept as it is. */
static char *kr_pack_raw(const char *text, size_t len)
{
	char *p = malloc(KR_PACK_HDR + len);

	if (!p)
		return NULL;
	kr_pack_hdr_put(p, (uint32_t)len, (uint32_t)len, 0);
	memcpy(p + KR_PACK_HDR, text, len);
	return p;
}

char *kr_pack(const char *text, const struct kr_pack_dict *dict)
{
	size_t len = strlen(text);
	z_stream z = {0};
	const Bytef *d;
	uInt dlen;
	char *p, *shrunk;
	uLong bound;
	int rc;

	if (len > KR_PACK_MAX)
		return NULL;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -KR_PACK_WBITS, KR_PACK_MEMLEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	d = kr_pack_dict_bytes(dict, &dlen);
	if (d && deflateSetDictionary(&z, d, dlen) != Z_OK) {
		deflateEnd(&z);
		return NULL;
	}
	bound = deflateBound(&z, (uLong)len);
	p = malloc(KR_PACK_HDR + bound);
	if (!p) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)text;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)p + KR_PACK_HDR;
	z.avail_out = (uInt)bound;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END || z.total_out >= len) { /* no gain: keep the text */
		free(p);
		return kr_pack_raw(text, len);
	}
	kr_pack_hdr_put(p, (uint32_t)len, (uint32_t)z.total_out, 1);
	shrunk = realloc(p, KR_PACK_HDR + z.total_out);
	return shrunk ? shrunk : p;
}

char *kr_unpack(const char *pack, const struct kr_pack_dict *dict)
{
	uint32_t len, stored;
	uint8_t deflated;
	z_stream z = {0};
	const Bytef *d;
	uInt dlen;
	char *out;
	int rc;

	if (!pack)
		return NULL;
	kr_pack_hdr_get(pack, &len, &stored, &deflated);
	if (len > KR_PACK_MAX || !(out = malloc((size_t)len + 1)))
		return NULL;
	if (!deflated) {
		memcpy(out, pack + KR_PACK_HDR, len);
		out[len] = '\0';
		return out;
	}
	if (inflateInit2(&z, -KR_PACK_WBITS) != Z_OK) {
		free(out);
		return NULL;
	}
	d = kr_pack_dict_bytes(dict, &dlen);
	rc = d ? inflateSetDictionary(&z, d, dlen) : Z_OK;
	if (rc == Z_OK) {
		z.next_in = (Bytef *)(uintptr_t)(pack + KR_PACK_HDR);
		z.avail_in = stored;
		z.next_out = (Bytef *)out;
		z.avail_out = len; /* never more than the header says */
		rc = inflate(&z, Z_FINISH);
	}
	inflateEnd(&z);
	if (rc != Z_STREAM_END || z.total_out != len) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

size_t kr_pack_size(const char *pack)
{
	uint32_t len, stored;
	uint8_t deflated;

	if (!pack)
		return 0;
	kr_pack_hdr_get(pack, &len, &stored, &deflated);
	return KR_PACK_HDR + (size_t)stored;
}

bool kr_pack_equal(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return kr_pack_size(a) == kr_pack_size(b) && memcmp(a, b, kr_pack_size(a)) == 0;
}
