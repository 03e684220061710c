#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_LEVEL_INFO;
static char service_name[32] = "noetl";
static bool as_json;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_setup(const char *service, enum log_level level, bool json)
{
	if (service != NULL)
		snprintf(service_name, sizeof(service_name), "%s", service);
	min_level = level;
	as_json = json;
}

bool log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_LEVEL_OFF; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

enum log_level log_level_get(void)
{
	return min_level;
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t len, const char *s)
{
	for (; *s != '\0' && len + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20) {
			len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
		} else {
			buf[len++] = (char)c;
		}
	}
	return len;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level < min_level || level >= LOG_LEVEL_OFF)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);

	char line[4096];
	size_t len;
	if (as_json) {
		len = (size_t)snprintf(line, sizeof(line),
		                       "{\"time\":\"%s\",\"level\":\"%s\",\"service\":\"", when,
		                       level_names[level]);
		len = json_escape(line, sizeof(line), len, service_name);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
		len = json_escape(line, sizeof(line), len, msg);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}\n");
	} else {
		len = (size_t)snprintf(line, sizeof(line), "%s %-5s %s: %s\n", when,
		                       level_names[level], service_name, msg);
	}
	if (len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
