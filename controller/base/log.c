/* log.c - JSON-lines writer; each line is written with one fwrite under the stream lock. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"

static enum kr_log_level kr_log_level_now = KR_LOG_INFO;
static FILE *kr_log_stream;

static const char *const kr_log_names[] = { "debug", "info", "warn", "error" };

void kr_log_set_level(enum kr_log_level level)
{
	kr_log_level_now = level;
}

enum kr_log_level kr_log_get_level(void)
{
	return kr_log_level_now;
}

void kr_log_set_stream(FILE *stream)
{
	kr_log_stream = stream;
}

int kr_log_parse_level(const char *text)
{
	if (!strcasecmp(text, "warning"))
		return KR_LOG_WARN;
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(text, kr_log_names[i]))
			return i;
	return -1;
}

static void kr_log_add_field(struct kr_buf *b, const char *key, const char *value)
{
	if (!value)
		return;
	kr_buf_addf(b, ",\"%s\":", key);
	kr_buf_add_json_string(b, value);
}

void kr_log_write(enum kr_log_level level, const struct kr_log_ctx *ctx, const char *fmt, ...)
{
	struct kr_buf line, msg;
	struct timespec ts;
	struct tm tm;
	char when[40];
	va_list ap;
	FILE *out = kr_log_stream ? kr_log_stream : stderr;

	if (level < KR_LOG_DEBUG || level > KR_LOG_ERROR)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	kr_buf_init(&line);
	kr_buf_init(&msg);
	va_start(ap, fmt);
	kr_buf_vaddf(&msg, fmt, ap);
	va_end(ap);

	kr_buf_addf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
		    ts.tv_nsec / 1000000, kr_log_names[level]);
	kr_buf_add_json_string(&line, msg.data);
	if (ctx) {
		kr_log_add_field(&line, "namespace", ctx->namespace_);
		kr_log_add_field(&line, "name", ctx->name);
		kr_log_add_field(&line, "reconcileID", ctx->reconcile_id);
	}
	kr_buf_adds(&line, "}\n");
	flockfile(out);
	fwrite(line.data, 1, line.len, out);
	fflush(out);
	funlockfile(out);
	kr_buf_release(&line);
	kr_buf_release(&msg);
}
