/*
 * log: one line per event, to stderr.
 *
 * Every line carries the time, the level, the service name and the message,
 * either as text ("2026-11-23T09:00:00.123Z info queue: ...") or, when JSON
 * output is selected, as one JSON object per line for log shippers. Logging
 * is thread-safe; a line is written with one write(2) so lines from several
 * threads never interleave.
 */
#ifndef NOETL_LOG_H
#define NOETL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_OFF = 4,
};

/* Sets the process-wide minimum level, service name (copied, at most 31
 * bytes) and format. Call once at start-up, before other threads log. */
void log_setup(const char *service, enum log_level level, bool json);

/* Parses "debug", "info", "warn", "error" or "off"; returns false if none. */
bool log_level_parse(const char *name, enum log_level *out);

/* The current minimum level. */
enum log_level log_level_get(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
