/* fuzz_key.c - presented API keys (format + checksum), key ids, prefixes and store addresses. */
#include "fuzz.h"
#include "keystore/keystore.h"

/* 1 when the message quotes `len` bytes of `text` (a key must never appear in one). */
static int quotes(const char *msg, const uint8_t *text, size_t len)
{
	return len >= 8 && memmem(msg, strlen(msg), text, len) != NULL;
}

/* Every check on the input as a whole: none may crash, none may echo a key back. */
static void checks(const uint8_t *data, size_t size, const char *cstr)
{
	char host[256];
	enum kr_store_as as;
	struct kr_error err;
	int port;

	kr_error_clear(&err);
	if (kr_key_check((const char *)data, size, &err) != KR_OK)
		KR_FUZZ_ASSERT(err.msg[0] && !quotes(err.msg, data, size));
	kr_error_clear(&err);
	if (kr_key_check_for((const char *)data, size, "sk_", 32, &err) != KR_OK)
		KR_FUZZ_ASSERT(err.msg[0] && !quotes(err.msg, data, size));
	(void)kr_key_prefix_check(cstr, &err);
	(void)kr_key_id_valid(cstr);
	(void)kr_store_as_parse(cstr, &as, &err);
	if (kr_keystore_parse_address(cstr, host, sizeof(host), &port, &err) == KR_OK)
		KR_FUZZ_ASSERT(port > 0 && port < 65536 && strlen(host) < sizeof(host));
}

/*
 * A key built from input bytes (byte 0: size, the next up to 16 lowercase letters up to a
 * '.': prefix, the rest: the random bytes) passes both checks, and changing any one
 * character of it (position and value from the input) makes kr_key_check fail.
 */
static void round_trip(const uint8_t *data, size_t size)
{
	unsigned char rnd[KR_KEY_MAX_BYTES] = {0};
	char prefix[KR_KEY_MAX_PREFIX + 1] = "", *text;
	struct kr_secret *key = NULL;
	size_t i = 1, n = 0, len;
	int bytes;
	uint8_t pos, ch;

	if (size < 3)
		return;
	bytes = KR_KEY_MIN_BYTES + data[0] % (KR_KEY_MAX_BYTES - KR_KEY_MIN_BYTES + 1);
	pos = data[size - 2];
	ch = data[size - 1];
	for (; i < size - 2 && n < KR_KEY_MAX_PREFIX && data[i] != '.'; i++)
		prefix[n++] = (char)('a' + data[i] % 26);
	for (n = 0; i < size - 2 && n < sizeof(rnd); i++)
		rnd[n++] = data[i];
	KR_FUZZ_ASSERT(kr_key_from_bytes(prefix, rnd, bytes, &key, NULL) == KR_OK);
	len = kr_secret_len(key);
	KR_FUZZ_ASSERT(kr_key_check(kr_secret_data(key), len, NULL) == KR_OK);
	KR_FUZZ_ASSERT(kr_key_check_for(kr_secret_data(key), len, prefix, bytes, NULL) == KR_OK);
	text = kr_secret_mut(key);
	if (text[pos % len] != (char)ch) {
		text[pos % len] = (char)ch;
		KR_FUZZ_ASSERT(kr_key_check(text, len, NULL) != KR_OK);
	}
	kr_secret_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *cstr = kr_fuzz_cstr(data, size);

	if (!cstr)
		return 0;
	checks(data, size, cstr);
	round_trip(data, size);
	free(cstr);
	return 0;
}
