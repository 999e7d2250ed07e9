/* fuzz_promtext.c - the Prometheus text exposition format, as a direct scrape reads it. */
#include <math.h>
#include <stdio.h>

#include "analysis/analysis.h"
#include "fuzz.h"

/*
 * The input is an exposition. It is parsed twice, whole and in chunks of 1-64 bytes
 * (sizes from a hash of the input), with the default caps or small ones: both runs must
 * see the same samples and end with the same status and message (a scrape arrives in
 * arbitrary pieces). Then it is read as the 401 counter the analysis watches.
 */

static enum kr_status on_sample(void *arg, const struct kr_prom_sample *s, struct kr_error *err)
{
	struct kr_buf *trace = arg;

	(void)err;
	KR_FUZZ_ASSERT(s->name && s->name[0] && s->family && s->line > 0);
	KR_FUZZ_ASSERT(s->nlabels == 0 || s->labels);
	(void)kr_buf_addf(trace, "%zu %s %s %d %a %d %lld", s->line, s->name, s->family,
			  (int)s->type, s->value, s->has_timestamp, (long long)s->timestamp_ms);
	for (size_t i = 0; i < s->nlabels; i++) {
		KR_FUZZ_ASSERT(s->labels[i].name && s->labels[i].name[0] && s->labels[i].value);
		(void)kr_buf_addf(trace, " %s=%s", s->labels[i].name, s->labels[i].value);
	}
	return kr_buf_addch(trace, '\n');
}

static uint32_t hash(const uint8_t *data, size_t size)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

static enum kr_status parse(const uint8_t *data, size_t size, const struct kr_promtext_limits *lim,
			    uint32_t seed, int chunked, struct kr_buf *trace, struct kr_error *err)
{
	struct kr_promtext p;
	enum kr_status rc = KR_OK;
	size_t off = 0;

	kr_promtext_init(&p, lim, on_sample, trace);
	while (off < size && rc == KR_OK) {
		size_t n = size - off;

		if (chunked) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 64;
			if (n > size - off)
				n = size - off;
		}
		rc = kr_promtext_feed(&p, (const char *)data + off, n, err);
		off += n;
	}
	if (rc == KR_OK)
		rc = kr_promtext_finish(&p, err);
	kr_promtext_release(&p);
	return rc;
}

/* The watched counter: http_requests_total{code="401"}, scraped twice with no change. */
static void counter(const uint8_t *data, size_t size)
{
	static const struct kr_prom_label code = {"code", "401"};
	struct kr_counter_snapshot a, b;
	struct kr_counter_match match = {"http_requests_total", &code, 1, NULL};
	struct kr_measurement m = {0};
	struct kr_error err;

	kr_counter_snapshot_init(&a);
	kr_counter_snapshot_init(&b);
	match.snap = &a;
	if (kr_counter_snapshot_parse(&a, (const char *)data, size, &match, 10, &err) == KR_OK) {
		match.snap = &b;
		KR_FUZZ_ASSERT(kr_counter_snapshot_parse(&b, (const char *)data, size, &match, 20,
							 &err) == KR_OK);
		KR_FUZZ_ASSERT(a.sum >= 0 && isfinite(a.sum));
		kr_counter_rate(&a, &b, &m);
		KR_FUZZ_ASSERT(m.ok && m.value == 0);
	}
	kr_counter_snapshot_release(&a);
	kr_counter_snapshot_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kr_promtext_limits small = {0, 40, 5};
	uint32_t h = hash(data, size);
	const struct kr_promtext_limits *lim = h % 4 == 0 ? &small : NULL;
	struct kr_buf t1, t2;
	struct kr_error e1, e2;
	enum kr_status r1, r2;

	kr_buf_init(&t1);
	kr_buf_init(&t2);
	kr_error_clear(&e1);
	kr_error_clear(&e2);
	r1 = parse(data, size, lim, h, 0, &t1, &e1);
	r2 = parse(data, size, lim, h, 1, &t2, &e2);
	if (r1 != KR_ENOMEM && r2 != KR_ENOMEM) {
		KR_FUZZ_ASSERT(r1 == r2 && t1.len == t2.len);
		KR_FUZZ_ASSERT(t1.len == 0 || memcmp(t1.data, t2.data, t1.len) == 0);
		KR_FUZZ_ASSERT(r1 == KR_OK || (e1.msg[0] && !strcmp(e1.msg, e2.msg)));
	}
	kr_buf_release(&t1);
	kr_buf_release(&t2);
	counter(data, size);
	return 0;
}
