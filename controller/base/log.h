/* log.h - JSON-lines logging: one object per line, level checked before formatting. */
#ifndef KR_LOG_H
#define KR_LOG_H

#include <stdio.h>

enum kr_log_level { KR_LOG_DEBUG = 0, KR_LOG_INFO, KR_LOG_WARN, KR_LOG_ERROR, KR_LOG_OFF };

/*
 * Optional context carried into every line: {"namespace":..,"name":..,"reconcileID":..}.
 * All fields borrowed and may be NULL.
 */
struct kr_log_ctx {
	const char *namespace_;
	const char *name;
	const char *reconcile_id;
};

/* Process-wide settings; call before starting threads. Default: info, stderr. */
void kr_log_set_level(enum kr_log_level level);
enum kr_log_level kr_log_get_level(void);
void kr_log_set_stream(FILE *stream);
/* "debug", "info", "warn"/"warning", "error"; returns -1 when unknown. */
int kr_log_parse_level(const char *text);

/* Use the macros below; they skip formatting when the level is off. Thread-safe. */
void kr_log_write(enum kr_log_level level, const struct kr_log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * KR_LOG(level, ctx, fmt, ...). Never pass key material: keys are struct kr_secret,
 * which printf formats cannot take, and kr_secret_data() must not appear in a log call.
 */
#define KR_LOG(level, ctx, ...)                                   \
	do {                                                      \
		if ((level) >= kr_log_get_level())                \
			kr_log_write((level), (ctx), __VA_ARGS__); \
	} while (0)

#define kr_log_debug(ctx, ...) KR_LOG(KR_LOG_DEBUG, ctx, __VA_ARGS__)
#define kr_log_info(ctx, ...) KR_LOG(KR_LOG_INFO, ctx, __VA_ARGS__)
#define kr_log_warn(ctx, ...) KR_LOG(KR_LOG_WARN, ctx, __VA_ARGS__)
#define kr_log_error(ctx, ...) KR_LOG(KR_LOG_ERROR, ctx, __VA_ARGS__)

#endif
