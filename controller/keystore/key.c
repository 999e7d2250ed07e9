/* key.c - API key format: generation, base62 body, CRC-32 checksum, id; no I/O but getrandom. */
#include "keystore/keystore.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

static const char kr_base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* log2(62) * 1e9, rounded up; for 16..64 bytes no quotient lies near an integer. */
#define KR_LOG2_62_E9 5954196311ULL

size_t kr_key_body_len(int bytes)
{
	unsigned long long bits;

	if (bytes < KR_KEY_MIN_BYTES || bytes > KR_KEY_MAX_BYTES)
		return 0;
	bits = (unsigned long long)bytes * 8ULL * 1000000000ULL;
	return (size_t)((bits + KR_LOG2_62_E9 - 1) / KR_LOG2_62_E9);
}

static int kr_is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int kr_is_prefix_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_';
}

enum kr_status kr_key_prefix_check(const char *prefix, struct kr_error *err)
{
	size_t len = prefix ? strlen(prefix) : 0;

	if (len > KR_KEY_MAX_PREFIX)
		return kr_error_set(err, KR_EINVAL, "key prefix has %zu characters; at most %d",
				    len, KR_KEY_MAX_PREFIX);
	for (size_t i = 0; i < len; i++)
		if (!kr_is_prefix_char(prefix[i]))
			return kr_error_set(err, KR_EINVAL,
					    "key prefix \"%s\": character %zu is not a-z, 0-9 or _",
					    prefix, i + 1);
	return KR_OK;
}

uint32_t kr_key_crc32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return crc ^ 0xffffffffu;
}

void kr_key_checksum(const char *text, size_t len, char out[KR_KEY_CHECKSUM_LEN + 1])
{
	uint32_t crc = kr_key_crc32(text, len);

	for (int i = KR_KEY_CHECKSUM_LEN - 1; i >= 0; i--) {
		out[i] = kr_base62[crc % 62];
		crc /= 62;
	}
	out[KR_KEY_CHECKSUM_LEN] = '\0';
}

/*
 * Write `n` bytes (a big-endian number) as exactly `digits` base62 digits into out.
 * Destroys num (the caller wipes it); schoolbook division, O(digits * n).
 */
static void kr_base62_encode(unsigned char *num, size_t n, char *out, size_t digits)
{
	for (size_t d = digits; d > 0; d--) {
		unsigned rem = 0;

		for (size_t i = 0; i < n; i++) {
			unsigned cur = (rem << 8) | num[i];

			num[i] = (unsigned char)(cur / 62);
			rem = cur % 62;
		}
		out[d - 1] = kr_base62[rem];
	}
}

static enum kr_status kr_key_random(unsigned char *buf, size_t n, struct kr_error *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kr_error_set(err, KR_EIO, "getrandom: %s", strerror(errno));
		got += (size_t)r;
	}
	return KR_OK;
}

enum kr_status kr_key_from_bytes(const char *prefix, const unsigned char *random, int bytes,
				 struct kr_secret **out, struct kr_error *err)
{
	unsigned char num[KR_KEY_MAX_BYTES];
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t blen = kr_key_body_len(bytes);
	struct kr_secret *key;
	enum kr_status rc;
	char *p;

	*out = NULL;
	rc = kr_key_prefix_check(prefix, err);
	if (rc != KR_OK)
		return rc;
	if (!blen)
		return kr_error_set(err, KR_EINVAL, "key bytes %d out of range %d..%d", bytes,
				    KR_KEY_MIN_BYTES, KR_KEY_MAX_BYTES);
	key = kr_secret_alloc(plen + blen + KR_KEY_CHECKSUM_LEN);
	if (!key)
		return kr_error_set(err, KR_ENOMEM, "out of memory generating a key");
	memcpy(num, random, (size_t)bytes);
	p = kr_secret_mut(key);
	if (plen)
		memcpy(p, prefix, plen);
	kr_base62_encode(num, (size_t)bytes, p + plen, blen);
	kr_key_checksum(p, plen + blen, p + plen + blen);
	explicit_bzero(num, sizeof(num));
	*out = key;
	return KR_OK;
}

enum kr_status kr_key_generate(const char *prefix, int bytes, struct kr_secret **out,
			       struct kr_error *err)
{
	unsigned char rnd[KR_KEY_MAX_BYTES];
	enum kr_status rc;

	*out = NULL;
	if (!kr_key_body_len(bytes))
		return kr_error_set(err, KR_EINVAL, "key bytes %d out of range %d..%d", bytes,
				    KR_KEY_MIN_BYTES, KR_KEY_MAX_BYTES);
	rc = kr_key_random(rnd, (size_t)bytes, err);
	if (rc == KR_OK)
		rc = kr_key_from_bytes(prefix, rnd, bytes, out, err);
	explicit_bzero(rnd, sizeof(rnd));
	return rc;
}

/* 1 when some byte count gives a body of exactly `len` digits. */
static int kr_body_len_possible(size_t len)
{
	for (int b = KR_KEY_MIN_BYTES; b <= KR_KEY_MAX_BYTES; b++)
		if (kr_key_body_len(b) == len)
			return 1;
	return 0;
}

/* 1 when text[0..p) is a valid prefix and text[p..end) a base62 body of a valid length. */
static int kr_key_split_ok(const char *text, size_t p, size_t end)
{
	for (size_t i = 0; i < p; i++)
		if (!kr_is_prefix_char(text[i]))
			return 0;
	for (size_t i = p; i < end; i++)
		if (!kr_is_base62(text[i]))
			return 0;
	return kr_body_len_possible(end - p);
}

/* Length, alphabet and checksum: what every check shares. */
static enum kr_status kr_key_check_common(const char *text, size_t len, struct kr_error *err)
{
	char sum[KR_KEY_CHECKSUM_LEN + 1];
	size_t body_end;

	if (len < KR_KEY_MIN_LEN || len > KR_KEY_MAX_LEN)
		return kr_error_set(err, KR_EINVAL,
				    "key has %zu characters; a keyrotator key has %d to %d", len,
				    KR_KEY_MIN_LEN, KR_KEY_MAX_LEN);
	for (size_t i = 0; i < len; i++)
		if (!kr_is_base62(text[i]) && text[i] != '_')
			return kr_error_set(err, KR_EINVAL,
					    "key character %zu is not A-Z, a-z, 0-9 or _", i + 1);
	body_end = len - KR_KEY_CHECKSUM_LEN;
	for (size_t i = body_end; i < len; i++)
		if (!kr_is_base62(text[i]))
			return kr_error_set(err, KR_EINVAL,
					    "key checksum (last %d characters) is not base62",
					    KR_KEY_CHECKSUM_LEN);
	kr_key_checksum(text, body_end, sum);
	if (!kr_secret_memeq(sum, text + body_end, KR_KEY_CHECKSUM_LEN))
		return kr_error_set(err, KR_EINVAL,
				    "key checksum mismatch: the key is mistyped, truncated, or "
				    "not a keyrotator key");
	return KR_OK;
}

enum kr_status kr_key_check(const char *text, size_t len, struct kr_error *err)
{
	enum kr_status rc = kr_key_check_common(text, len, err);
	size_t body_end = len - KR_KEY_CHECKSUM_LEN;

	if (rc != KR_OK)
		return rc;
	for (size_t p = 0; p <= KR_KEY_MAX_PREFIX && p <= body_end; p++)
		if (kr_key_split_ok(text, p, body_end))
			return KR_OK;
	return kr_error_set(err, KR_EINVAL,
			    "key does not split into a prefix [a-z0-9_]{0,16} and a base62 body "
			    "of a valid length");
}

enum kr_status kr_key_check_for(const char *text, size_t len, const char *prefix, int bytes,
				struct kr_error *err)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t blen = kr_key_body_len(bytes);
	enum kr_status rc = kr_key_check_common(text, len, err);

	if (rc != KR_OK)
		return rc;
	if (!blen)
		return kr_error_set(err, KR_EINVAL, "key bytes %d out of range %d..%d", bytes,
				    KR_KEY_MIN_BYTES, KR_KEY_MAX_BYTES);
	if (len != plen + blen + KR_KEY_CHECKSUM_LEN)
		return kr_error_set(err, KR_EINVAL,
				    "key has %zu characters; with prefix \"%s\" and %d bytes it "
				    "has %zu",
				    len, prefix ? prefix : "", bytes,
				    plen + blen + KR_KEY_CHECKSUM_LEN);
	if (plen && memcmp(text, prefix, plen) != 0)
		return kr_error_set(err, KR_EINVAL, "key does not start with prefix \"%s\"",
				    prefix);
	if (!kr_key_split_ok(text, plen, len - KR_KEY_CHECKSUM_LEN))
		return kr_error_set(err, KR_EINVAL, "key body is not base62");
	return KR_OK;
}

void kr_key_hash_hex_bytes(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		KR_BUG("EVP_Digest(sha256) failed");
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

void kr_key_hash_hex(const struct kr_secret *key, char out[65])
{
	kr_key_hash_hex_bytes(kr_secret_data(key), kr_secret_len(key), out);
}

void kr_key_id(const struct kr_secret *key, char out[KR_KEY_ID_LEN + 1])
{
	char hex[65];

	kr_key_hash_hex(key, hex);
	memcpy(out, hex, KR_KEY_ID_LEN);
	out[KR_KEY_ID_LEN] = '\0';
}

int kr_key_id_valid(const char *text)
{
	size_t i;

	if (!text)
		return 0;
	for (i = 0; text[i]; i++)
		if (i >= KR_KEY_ID_LEN ||
		    !((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
			return 0;
	return i == KR_KEY_ID_LEN;
}
