/* measurement.c - one 401-rate measurement, or the reason there is none. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "analysis/analysis.h"

void kr_measurement_set_value(struct kr_measurement *m, double value, double at)
{
	m->ok = 1;
	m->value = value;
	m->at = at;
	kr_error_clear(&m->reason);
}

enum kr_status kr_measurement_set_inconclusive(struct kr_measurement *m, enum kr_status code,
					       const char *fmt, ...)
{
	va_list ap;

	m->ok = 0;
	m->value = 0;
	m->reason.code = code;
	m->reason.http_status = 0;
	va_start(ap, fmt);
	vsnprintf(m->reason.msg, sizeof(m->reason.msg), fmt, ap);
	va_end(ap);
	return code;
}

void kr_analysis_size_text(size_t bytes, char out[24])
{
	if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
		snprintf(out, 24, "%zu MiB", bytes / (1024 * 1024));
	else if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(out, 24, "%zu KiB", bytes / 1024);
	else
		snprintf(out, 24, "%zu bytes", bytes);
}
