/* test_pack.c - packed texts (runtime/pack.h): what goes in comes out, equal texts pack
 * equal, a text deflate cannot shrink is kept as it is, and a pack is never unpacked past
 * the length its header gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/pack.h"

static const char kr_text[] =
    "{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\",\"metadata\":"
    "{\"name\":\"sirius\",\"namespace\":\"sirius\"},\"spec\":{\"stages\":[{\"name\":\"api\","
    "\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"sirius-api\"}]},{\"name\":\"ui\","
    "\"workloads\":[{\"kind\":\"Deployment\",\"name\":\"sirius-ui\"}]}]}}";

static void round_trip(const char *text, const struct kr_pack_dict *dict)
{
	char *p = kr_pack(text, dict), *back;

	assert_non_null(p);
	back = kr_unpack(p, dict);
	assert_non_null(back);
	assert_string_equal(back, text);
	free(back);
	free(p);
}

static void test_round_trip(void **state)
{
	static const char words[] = "\"workloads\":[{\"kind\":\"Deployment\"";
	static const struct kr_pack_dict dict = {words, sizeof(words) - 1};

	(void)state;
	round_trip("", NULL);
	round_trip("x", NULL);
	round_trip(kr_text, NULL);
	round_trip(kr_text, &dict);
	round_trip("", &dict);
}

/* The same text packs to the same bytes; another text does not. */
static void test_equal(void **state)
{
	char *a = kr_pack(kr_text, NULL), *b = kr_pack(kr_text, NULL), *c = kr_pack("{}", NULL);

	(void)state;
	assert_true(kr_pack_equal(a, b));
	assert_false(kr_pack_equal(a, c));
	assert_false(kr_pack_equal(a, NULL));
	assert_true(kr_pack_equal(NULL, NULL));
	assert_true(kr_pack_size(a) < sizeof(kr_text)); /* it shrank */
	free(a);
	free(b);
	free(c);
}

/* Never larger than the text and the 9-byte header: text deflate cannot shrink (one letter;
 * random letters barely) is kept as it is. */
static void test_incompressible_kept(void **state)
{
	char text[200], *p, *back;
	uint32_t x = 2463534242u;

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(text); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		text[i] = (char)(' ' + x % 95);
	}
	text[sizeof(text) - 1] = '\0';
	p = kr_pack(text, NULL);
	assert_non_null(p);
	assert_true(kr_pack_size(p) <= strlen(text) + 9);
	back = kr_unpack(p, NULL);
	assert_string_equal(back, text);
	free(back);
	free(p);
	p = kr_pack("x", NULL); /* deflated, one letter takes three bytes */
	assert_int_equal(kr_pack_size(p), 1 + 9);
	assert_int_equal(p[8], 0);
	back = kr_unpack(p, NULL);
	assert_string_equal(back, "x");
	free(back);
	free(p);
}

/* A header that says less than the stream holds: refused, nothing written past it. */
static void test_short_header_refused(void **state)
{
	char *p = kr_pack(kr_text, NULL);
	uint32_t len;

	(void)state;
	assert_non_null(p);
	assert_int_equal(p[8], 1); /* deflated */
	memcpy(&len, p, 4);
	assert_int_equal(len, strlen(kr_text));
	len -= 10;
	memcpy(p, &len, 4);
	assert_null(kr_unpack(p, NULL)); /* under ASan a write past `len` + 1 would fail here */
	free(p);
	assert_null(kr_unpack(NULL, NULL));
}

/* Unpacked with another dictionary than it was packed with: refused or another text,
 * never the bytes of memory: packing and unpacking must agree on the dictionary. */
static void test_dictionary_matters(void **state)
{
	static const struct kr_pack_dict dict = {kr_text, sizeof(kr_text) - 1};
	char *p = kr_pack(kr_text, &dict), *other;

	(void)state;
	assert_non_null(p);
	assert_true(kr_pack_size(p) < 40); /* the whole text is in the dictionary */
	other = kr_unpack(p, NULL);
	if (other)
		assert_string_not_equal(other, kr_text);
	free(other);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_incompressible_kept),
	    cmocka_unit_test(test_short_header_refused),
	    cmocka_unit_test(test_dictionary_matters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
