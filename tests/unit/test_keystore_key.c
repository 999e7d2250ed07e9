/* test_keystore_key.c - key format, checksum, id, generation and rejection of malformed keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/keystore.h"

static int only_key_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_'))
			return 0;
	return 1;
}

static void test_crc32_and_checksum_known_answers(void **state)
{
	static const struct {
		const char *text;
		uint32_t crc;
		const char *sum;
	} cases[] = {
	    {"", 0x00000000u, "000000"},
	    {"123456789", 0xcbf43926u, "3jZRME"}, /* the CRC-32 check value */
	    {"abc", 0x352441c2u, "0yKviM"},
	    {"sk_0000000000000000000000000000000000000000000", 0xed490eeau, "4LPos6"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sum[KR_KEY_CHECKSUM_LEN + 1];

		assert_int_equal(kr_key_crc32(cases[i].text, strlen(cases[i].text)), cases[i].crc);
		kr_key_checksum(cases[i].text, strlen(cases[i].text), sum);
		assert_string_equal(sum, cases[i].sum);
	}
}

static void test_body_length_formula(void **state)
{
	/* smallest n with 62^n >= 256^bytes, computed exactly with big integers */
	static const struct {
		int bytes;
		size_t len;
	} cases[] = {
	    {15, 0},  {16, 22}, {17, 23}, {18, 25}, {32, 43},
	    {35, 48}, {38, 52}, {63, 85}, {64, 86}, {65, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(kr_key_body_len(cases[i].bytes), cases[i].len);
}

/* Keys from fixed bytes, as computed by an independent Python implementation. */
static void test_key_from_bytes_known_answers(void **state)
{
	unsigned char seq[32], ones[64], zeros[16];
	static const char *const want[] = {
	    "sk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3WINfG",
	    "abcdefghijklmnopxR9fAlrdKvCIINsqEkJZSfvkAt8lzmSSSSwEFE05v06EBY3r5dlozuRxnvOf5LFQW"
	    "8jES7aPVEzqA5lO3MW8I34W2y0d",
	    "00000000000000000000002tfPFA",
	};
	struct kr_secret *k[3] = {0};
	char id[KR_KEY_ID_LEN + 1];

	(void)state;
	for (int i = 0; i < 32; i++)
		seq[i] = (unsigned char)i;
	memset(ones, 0xff, sizeof(ones));
	memset(zeros, 0, sizeof(zeros));
	assert_int_equal(kr_key_from_bytes("sk_", seq, 32, &k[0], NULL), KR_OK);
	assert_int_equal(kr_key_from_bytes("abcdefghijklmnop", ones, 64, &k[1], NULL), KR_OK);
	assert_int_equal(kr_key_from_bytes(NULL, zeros, 16, &k[2], NULL), KR_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kr_secret_len(k[i]), strlen(want[i]));
		assert_memory_equal(kr_secret_data(k[i]), want[i], strlen(want[i]));
		assert_int_equal(kr_key_check(kr_secret_data(k[i]), kr_secret_len(k[i]), NULL),
				 KR_OK);
	}
	assert_int_equal(kr_secret_len(k[1]), KR_KEY_MAX_LEN);
	assert_int_equal(kr_secret_len(k[2]), KR_KEY_MIN_LEN);
	kr_key_id(k[0], id);
	assert_string_equal(id, "dcc60bfaa155");
	for (int i = 0; i < 3; i++)
		kr_secret_free(k[i]);
}

static void test_generate_shapes(void **state)
{
	static const struct {
		const char *prefix;
		int bytes;
	} cases[] = {
	    {"sk_", 32}, {"", 16}, {NULL, 64}, {"svc_live_", 24}, {"abcdefghijklmnop", 64},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = cases[i].prefix ? cases[i].prefix : "";
		struct kr_secret *a = NULL, *b = NULL;
		struct kr_error err;

		assert_int_equal(kr_key_generate(cases[i].prefix, cases[i].bytes, &a, &err), KR_OK);
		assert_int_equal(kr_key_generate(cases[i].prefix, cases[i].bytes, &b, &err), KR_OK);
		assert_int_equal(kr_secret_len(a),
				 strlen(p) + kr_key_body_len(cases[i].bytes) + KR_KEY_CHECKSUM_LEN);
		assert_memory_equal(kr_secret_data(a), p, strlen(p));
		assert_true(only_key_chars(kr_secret_data(a), kr_secret_len(a)));
		assert_false(kr_secret_equal(a, b)); /* 128+ random bits */
		assert_int_equal(kr_key_check(kr_secret_data(a), kr_secret_len(a), &err), KR_OK);
		assert_int_equal(kr_key_check_for(kr_secret_data(a), kr_secret_len(a),
						  cases[i].prefix, cases[i].bytes, &err),
				 KR_OK);
		kr_secret_free(a);
		kr_secret_free(b);
	}
}

static void test_generate_rejects_bad_spec(void **state)
{
	static const struct {
		const char *prefix;
		int bytes;
		const char *msg;
	} cases[] = {
	    {"sk_", 15, "out of range"},
	    {"sk_", 65, "out of range"},
	    {"SK_", 32, "not a-z, 0-9 or _"},
	    {"sk-", 32, "not a-z, 0-9 or _"},
	    {"abcdefghijklmnopq", 32, "at most 16"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_secret *k = (struct kr_secret *)&k;
		struct kr_error err;

		assert_int_equal(kr_key_generate(cases[i].prefix, cases[i].bytes, &k, &err),
				 KR_EINVAL);
		assert_null(k);
		assert_non_null(strstr(err.msg, cases[i].msg));
	}
}

/* Take a valid key and break it in one way; the message must say how, never echo it. */
static void test_check_rejects_malformed(void **state)
{
	static const char good[] = "sk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3WINfG";
	static const struct {
		const char *name;
		int edit; /* 0 truncate to pos, 1 set char at pos, 2 append c, 3 pos x 'a' */
		size_t pos;
		char c;
		const char *msg;
	} cases[] = {
	    {"empty", 0, 0, 0, "0 characters"},
	    {"truncated", 0, 27, 0, "27 characters"},
	    {"one char short", 0, sizeof(good) - 2, 0, "checksum mismatch"},
	    {"typo in body", 1, 10, 'x', "checksum mismatch"},
	    {"typo in checksum", 1, sizeof(good) - 2, 'Z', "checksum mismatch"},
	    {"dash", 1, 5, '-', "character 6 is not"},
	    {"space", 1, 0, ' ', "character 1 is not"},
	    {"newline at end", 2, 0, '\n', "is not A-Z"},
	    {"underscore in checksum", 1, sizeof(good) - 3, '_', "not base62"},
	    {"too long", 3, 109, 0, "109 characters"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t len = strlen(good);
		struct kr_error err;

		memcpy(buf, good, sizeof(good));
		if (cases[i].edit == 0)
			len = cases[i].pos;
		else if (cases[i].edit == 1)
			buf[cases[i].pos] = cases[i].c;
		else if (cases[i].edit == 2)
			buf[len++] = cases[i].c;
		else {
			len = cases[i].pos;
			memset(buf, 'a', len);
		}
		assert_int_equal(kr_key_check(buf, len, &err), KR_EINVAL);
		assert_non_null(strstr(err.msg, cases[i].msg));
		assert_null(strstr(err.msg, "3aUlTJC7")); /* never echoes the key */
	}
}

static void test_check_rejects_bad_split(void **state)
{
	/* 22..86 digits are valid body lengths, 24 is not reachable without a prefix */
	char body[64], sum[KR_KEY_CHECKSUM_LEN + 1];
	struct kr_error err;

	(void)state;
	/* "A" x 24 has no lowercase prefix and 24 is not a body length: 22,23,25,... */
	memset(body, 'A', 24);
	kr_key_checksum(body, 24, sum);
	memcpy(body + 24, sum, KR_KEY_CHECKSUM_LEN);
	assert_int_equal(kr_key_check(body, 24 + KR_KEY_CHECKSUM_LEN, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "does not split"));
	/* with a lowercase first letter the prefix "a" + 23-digit body is fine */
	body[0] = 'a';
	kr_key_checksum(body, 24, sum);
	memcpy(body + 24, sum, KR_KEY_CHECKSUM_LEN);
	assert_int_equal(kr_key_check(body, 24 + KR_KEY_CHECKSUM_LEN, &err), KR_OK);
}

static void test_check_for_spec(void **state)
{
	static const char good[] = "sk_003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf3WINfG";
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_key_check_for(good, strlen(good), "sk_", 32, &err), KR_OK);
	assert_int_equal(kr_key_check_for(good, strlen(good), "sk_", 31, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "with prefix \"sk_\" and 31 bytes"));
	assert_int_equal(kr_key_check_for(good, strlen(good), "pk_", 32, &err), KR_EINVAL);
	assert_non_null(strstr(err.msg, "does not start with prefix"));
	assert_int_equal(kr_key_check_for(good, strlen(good), "sk_", 99, &err), KR_EINVAL);
}

static void test_ids(void **state)
{
	struct kr_secret *k = kr_secret_new("abc", 3);
	char hex[65], id[KR_KEY_ID_LEN + 1];
	static const struct {
		const char *text;
		int valid;
	} ids[] = {
	    {"ba7816bf8f01", 1},  {"BA7816BF8F01", 0}, {"ba7816bf8f0", 0},
	    {"ba7816bf8f01a", 0}, {"ba7816bf8f0g", 0}, {"", 0},
	};

	(void)state;
	kr_key_hash_hex(k, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	kr_key_id(k, id);
	assert_string_equal(id, "ba7816bf8f01");
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_int_equal(kr_key_id_valid(ids[i].text), ids[i].valid);
	assert_false(kr_key_id_valid(NULL));
	kr_secret_free(k);
}

static void test_parse_address(void **state)
{
	static const struct {
		const char *in;
		enum kr_status rc;
		const char *host;
		int port;
	} cases[] = {
	    {"valkey.sirius.svc:6379", KR_OK, "valkey.sirius.svc", 6379},
	    {"127.0.0.1:7000", KR_OK, "127.0.0.1", 7000},
	    {"redis", KR_OK, "redis", 6379},
	    {"[::1]:6380", KR_OK, "::1", 6380},
	    {"[fe80::1]", KR_OK, "fe80::1", 6379},
	    {"", KR_EINVAL, NULL, 0},
	    {":6379", KR_EINVAL, NULL, 0},
	    {"host:", KR_EINVAL, NULL, 0},
	    {"host:0", KR_EINVAL, NULL, 0},
	    {"host:65536", KR_EINVAL, NULL, 0},
	    {"host:12ab", KR_EINVAL, NULL, 0},
	    {"::1:6379", KR_EINVAL, NULL, 0},
	    {"[::1", KR_EINVAL, NULL, 0},
	    {"[::1]x", KR_EINVAL, NULL, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64];
		int port = 0;
		struct kr_error err;

		assert_int_equal(
		    kr_keystore_parse_address(cases[i].in, host, sizeof(host), &port, &err),
		    cases[i].rc);
		if (cases[i].rc != KR_OK) {
			assert_non_null(strstr(err.msg, "address"));
			continue;
		}
		assert_string_equal(host, cases[i].host);
		assert_int_equal(port, cases[i].port);
	}
}

static void test_layout_check(void **state)
{
	static const struct {
		const char *set, *meta, *boot;
		const char *msg; /* NULL: valid */
	} cases[] = {
	    {"api_keys:active", "api_key:{id}:meta", "api_keys:bootstrap", NULL},
	    {"s", "{id}", "b", NULL},
	    {"", "api_key:{id}:meta", "b", "activeSet is empty"},
	    {"s", "api_key:meta", "b", "has no {id}"},
	    {"s", "{id}:{id}", "b", "{id} twice"},
	    {"s", "{id}", "", "bootstrapKey is empty"},
	    {"same", "{id}", "same", "are both"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_keystore_layout l;
		struct kr_error err;

		kr_keystore_layout_init_defaults(&l);
		l.active_set = cases[i].set;
		l.meta_key = cases[i].meta;
		l.bootstrap_key = cases[i].boot;
		if (!cases[i].msg) {
			assert_int_equal(kr_keystore_layout_check(&l, &err), KR_OK);
			continue;
		}
		assert_int_equal(kr_keystore_layout_check(&l, &err), KR_EINVAL);
		assert_non_null(strstr(err.msg, cases[i].msg));
	}
}

static void test_store_as_names(void **state)
{
	enum kr_store_as s = KR_STORE_SHA256;
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_store_as_parse("plaintext", &s, &err), KR_OK);
	assert_int_equal(s, KR_STORE_PLAINTEXT);
	assert_string_equal(kr_store_as_name(s), "plaintext");
	assert_int_equal(kr_store_as_parse("sha256", &s, &err), KR_OK);
	assert_string_equal(kr_store_as_name(s), "sha256");
	assert_int_equal(kr_store_as_parse("SHA256", &s, &err), KR_EINVAL);
	assert_int_equal(kr_store_as_parse(NULL, &s, &err), KR_EINVAL);
}

static void test_repair_describe(void **state)
{
	struct kr_keystore_repair_item items[2] = {
	    {"3f9a0c1d2e4b", 1, KR_META_CREATED_AT | KR_META_STATUS},
	    {"7c1e00000000", 0, 0},
	};
	struct kr_keystore_repair r;
	struct kr_buf b;

	(void)state;
	kr_keystore_repair_init(&r);
	kr_buf_init(&b);
	assert_int_equal(kr_keystore_repair_describe(&r, "api_keys:active", &b), KR_OK);
	assert_string_equal(b.data, "in sync");
	r.items = items;
	r.n = 2;
	r.marker_fixed = 1;
	r.unknown_members = 2;
	kr_buf_reset(&b);
	assert_int_equal(kr_keystore_repair_describe(&r, "api_keys:active", &b), KR_OK);
	assert_string_equal(b.data, "re-added key 3f9a0c1d2e4b; repaired metadata of key "
				    "3f9a0c1d2e4b (created_at, status); set bootstrap marker; 2 "
				    "members of api_keys:active not known here (left in place)");
	assert_int_equal(kr_keystore_repair_count(&r), 3);
	kr_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32_and_checksum_known_answers),
	    cmocka_unit_test(test_body_length_formula),
	    cmocka_unit_test(test_key_from_bytes_known_answers),
	    cmocka_unit_test(test_generate_shapes),
	    cmocka_unit_test(test_generate_rejects_bad_spec),
	    cmocka_unit_test(test_check_rejects_malformed),
	    cmocka_unit_test(test_check_rejects_bad_split),
	    cmocka_unit_test(test_check_for_spec),
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_parse_address),
	    cmocka_unit_test(test_layout_check),
	    cmocka_unit_test(test_store_as_names),
	    cmocka_unit_test(test_repair_describe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
