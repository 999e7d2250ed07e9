/* test_kube_stream.c - the watch-stream line splitter and event decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube.h"

#define MAX_EVENTS 16

/* What the callback saw: one summary string per event, "TYPE name rv" or "ERROR code". */
struct seen {
	int n;
	char ev[MAX_EVENTS][128];
	int fail_at; /* return KR_EGONE on this event (1-based); 0 = never */
};

static const char *type_name(enum kr_kube_event_type t)
{
	static const char *names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
	return names[t];
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsString(x) ? x->valuestring : "-";
}

static enum kr_status record(void *arg, enum kr_kube_event_type type, const cJSON *object,
			     struct kr_error *err)
{
	struct seen *s = arg;
	char *out = s->ev[s->n];

	assert_true(s->n < MAX_EVENTS);
	if (type == KR_KUBE_ERROR) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
		snprintf(out, sizeof(s->ev[0]), "ERROR %d %s", code ? code->valueint : 0,
			 str_at(object, "reason", NULL));
	} else {
		snprintf(out, sizeof(s->ev[0]), "%s %s %s", type_name(type),
			 str_at(object, "metadata", "name"),
			 str_at(object, "metadata", "resourceVersion"));
	}
	s->n++;
	if (s->n == s->fail_at)
		return kr_error_set(err, KR_EGONE, "stop here");
	return KR_OK;
}

static char *read_golden(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *data;
	long n;

	snprintf(path, sizeof(path), "%s/%s", KR_WIRE_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	data = malloc((size_t)n);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return data;
}

static void assert_seen(const struct seen *s, const char *const *want)
{
	int n = 0;

	while (want[n])
		n++;
	assert_int_equal(s->n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(s->ev[i], want[i]);
}

static const char *const golden31[] = {"ADDED w1 11773", "MODIFIED w1 11787", "DELETED w1 11789",
				       "BOOKMARK - 11789", NULL};
static const char *const golden32[] = {"ERROR 410 Expired", NULL};

static const struct {
	const char *file;
	const char *const *want;
} goldens[] = {
    {"31-secret-watch-bookmarks-stream.body", golden31},
    {"32-secret-watch-too-old-rv-410-in-stream.body", golden32},
};

/* Split each golden body in two at every byte offset: the same events come out. */
static void test_golden_split_at_every_offset(void **state)
{
	(void)state;
	for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
		size_t len;
		char *body = read_golden(goldens[g].file, &len);

		for (size_t cut = 0; cut <= len; cut++) {
			struct kr_kube_stream st;
			struct seen s = {0};
			struct kr_error err;

			kr_kube_stream_init(&st, 0);
			assert_int_equal(kr_kube_stream_feed(&st, body, cut, record, &s, &err),
					 KR_OK);
			assert_int_equal(
			    kr_kube_stream_feed(&st, body + cut, len - cut, record, &s, &err),
			    KR_OK);
			assert_seen(&s, goldens[g].want);
			assert_int_equal(st.pending.len, 0);
			kr_kube_stream_release(&st);
		}
		free(body);
	}
}

/* One byte at a time, and all at once. */
static void test_golden_byte_by_byte(void **state)
{
	(void)state;
	for (size_t g = 0; g < sizeof(goldens) / sizeof(goldens[0]); g++) {
		size_t len;
		char *body = read_golden(goldens[g].file, &len);
		struct kr_kube_stream st;
		struct seen s = {0};

		kr_kube_stream_init(&st, 0);
		for (size_t i = 0; i < len; i++)
			assert_int_equal(kr_kube_stream_feed(&st, body + i, 1, record, &s, NULL),
					 KR_OK);
		assert_seen(&s, goldens[g].want);
		kr_kube_stream_release(&st);
		free(body);
	}
}

#define EV_A                                                                                       \
	"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"}}" \
	"}"
#define EV_B                                                                                       \
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":"     \
	"\"2\"}}}"
#define EV_BM "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}"

/* Chunks fed in order; the expected status of the last feed and the events seen. */
static const struct {
	const char *what;
	size_t max_line;
	const char *chunks[4];
	enum kr_status rc;
	const char *want[4];
} cases[] = {
    {"two lines in one chunk", 0, {EV_A "\n" EV_B "\n"}, KR_OK, {"ADDED a 1", "MODIFIED b 2"}},
    {"partial line kept", 0, {EV_A "\n{\"type\":\"MOD"}, KR_OK, {"ADDED a 1"}},
    {"partial line completed",
     0,
     {"{\"type\":\"MOD", "IFIED\",\"object\":{}}\n"},
     KR_OK,
     {"MODIFIED - -"}},
    {"no newline yet", 0, {EV_A}, KR_OK, {NULL}},
    {"CRLF", 0, {EV_A "\r\n" EV_BM "\r", "\n"}, KR_OK, {"ADDED a 1", "BOOKMARK - 9"}},
    {"empty and blank lines", 0, {"\n\r\n  \n", EV_A "\n\n"}, KR_OK, {"ADDED a 1"}},
    {"line at max length", sizeof(EV_A) - 1, {EV_A "\r\n"}, KR_OK, {"ADDED a 1"}},
    {"line over max length", sizeof(EV_A) - 2, {EV_A "\n"}, KR_ETOOBIG, {NULL}},
    {"oversize across chunks", 16, {"{\"type\":\"ADD", "ED\",\"object\":{}}"}, KR_ETOOBIG, {NULL}},
    {"oversize after good line",
     sizeof(EV_BM) - 1,
     {EV_BM "\n", EV_A "\n"},
     KR_ETOOBIG,
     {"BOOKMARK - 9"}},
    {"garbage", 0, {EV_A "\nhello world\n"}, KR_EPROTO, {"ADDED a 1"}},
    {"truncated JSON", 0, {"{\"type\":\"ADDED\",\"object\":{\"metadata\":\n"}, KR_EPROTO, {NULL}},
    {"not an object", 0, {"[1,2]\n"}, KR_EPROTO, {NULL}},
    {"unknown type", 0, {"{\"type\":\"RESYNC\",\"object\":{}}\n"}, KR_EPROTO, {NULL}},
    {"type not a string", 0, {"{\"type\":1,\"object\":{}}\n"}, KR_EPROTO, {NULL}},
    {"missing object", 0, {"{\"type\":\"ADDED\"}\n"}, KR_EPROTO, {NULL}},
    {"object not an object", 0, {"{\"type\":\"ADDED\",\"object\":\"x\"}\n"}, KR_EPROTO, {NULL}},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_kube_stream st;
		struct seen s = {0};
		struct kr_error err;
		enum kr_status rc = KR_OK;

		print_message("case: %s\n", cases[i].what);
		kr_error_clear(&err);
		kr_kube_stream_init(&st, cases[i].max_line);
		for (int c = 0; c < 4 && cases[i].chunks[c] && rc == KR_OK; c++)
			rc = kr_kube_stream_feed(&st, cases[i].chunks[c],
						 strlen(cases[i].chunks[c]), record, &s, &err);
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(err.code, cases[i].rc);
		assert_seen(&s, cases[i].want);
		if (rc != KR_OK)
			assert_int_equal(st.pending.len, 0); /* ready for the restarted watch */
		kr_kube_stream_release(&st);
	}
}

/* Error text may reach logs: it must never quote the line (a Secret's data). */
static void test_errors_do_not_quote_the_line(void **state)
{
	static const char *const lines[] = {
	    "not json SECRETVALUE\n",
	    "{\"type\":\"SECRETVALUE\",\"object\":{}}\n",
	    "{\"type\":\"ADDED\",\"object\":\"SECRETVALUE\"}\n",
	    "{\"type\":\"ADDED\",\"object\":{\"data\":{\"k\":\"SECRETVALUE\"}\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct kr_kube_stream st;
		struct seen s = {0};
		struct kr_error err;

		kr_kube_stream_init(&st, 0);
		assert_int_equal(
		    kr_kube_stream_feed(&st, lines[i], strlen(lines[i]), record, &s, &err),
		    KR_EPROTO);
		assert_non_null(strstr(err.msg, "watch event"));
		assert_null(strstr(err.msg, "SECRETVALUE"));
		kr_kube_stream_release(&st);
	}
}

/* A callback failure stops the feed at that event; the rest is not delivered. */
static void test_callback_error_stops_feed(void **state)
{
	const char *body = EV_A "\n" EV_B "\n" EV_BM "\n";
	struct kr_kube_stream st;
	struct seen s = {.fail_at = 2};
	struct kr_error err;

	(void)state;
	kr_kube_stream_init(&st, 0);
	assert_int_equal(kr_kube_stream_feed(&st, body, strlen(body), record, &s, &err), KR_EGONE);
	assert_string_equal(err.msg, "stop here");
	assert_int_equal(s.n, 2);
	assert_int_equal(st.pending.len, 0);
	kr_kube_stream_release(&st);
}

/* ERROR events come out with their Status; the caller owns the object. */
static void test_decode_error_event(void **state)
{
	size_t len;
	char *body = read_golden("32-secret-watch-too-old-rv-410-in-stream.body", &len);
	enum kr_kube_event_type type;
	cJSON *obj = NULL;
	struct kr_error err;

	(void)state;
	assert_int_equal(kr_kube_event_decode(body, len, &type, &obj, &err), KR_OK);
	assert_int_equal(type, KR_KUBE_ERROR);
	assert_string_equal(str_at(obj, "kind", NULL), "Status");
	assert_string_equal(str_at(obj, "reason", NULL), "Expired");
	assert_string_equal(str_at(obj, "message", NULL), "too old resource version: 2 (8143)");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(obj, "code")->valueint, 410);
	cJSON_Delete(obj);
	free(body);

	obj = (cJSON *)1;
	assert_int_equal(kr_kube_event_decode("{}", 2, &type, &obj, &err), KR_EPROTO);
	assert_null(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden_split_at_every_offset),
	    cmocka_unit_test(test_golden_byte_by_byte),
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_errors_do_not_quote_the_line),
	    cmocka_unit_test(test_callback_error_stops_feed),
	    cmocka_unit_test(test_decode_error_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
