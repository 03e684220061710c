/*
 * noetl.h: write noetl event handlers (Jobicolets) in C.
 *
 * A Jobicolet is a WebAssembly module that follows the Jobico module ABI:
 * it exports `malloc`, `free`, optional `ver` and `init`, and an event
 * handler (by default `event`) that the host calls once per event with the
 * event's payload and that answers with a code (0 for success) and result
 * bytes. This header does the ABI for you:
 *
 *     #include <noetl.h>
 *
 *     static uint64_t handle(const char *data, size_t len, noetl_result *res)
 *     {
 *             noetl_log(NOETL_INFO, "got %zu bytes", len);
 *             noetl_result_set(res, data, len);
 *             return 0;
 *     }
 *     NOETL_EVENT(handle)
 *
 * Build it with clang as a WASI reactor (no main):
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/include \
 *           -o handler.wasm handler.c
 *
 * The standard C library (wasi-libc) works: printf to stdout and stderr
 * becomes log lines, time() and clock_gettime() tell the time, getentropy()
 * gives random bytes. Files, sockets, arguments and environment variables
 * do not exist in the sandbox: fopen() fails with ENOTCAPABLE.
 *
 * Everything here is header-only. NOETL_EVENT (or NOETL_MODULE) must appear
 * exactly once in a program. See docs/jobicolets.md for the ABI, the limits
 * and what each failure looks like.
 */
#ifndef NOETL_SDK_H
#define NOETL_SDK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm__)
#error "noetl.h is for WebAssembly: compile with clang --target=wasm32-wasi"
#endif

/* Log levels, as Jobico numbers them. */
enum noetl_level {
	NOETL_DEBUG = 0,
	NOETL_INFO = 1,
	NOETL_WARN = 2,
	NOETL_ERROR = 3,
	NOETL_FATAL = 4,
	NOETL_PANIC = 5,
};

/* What a handler answers besides its code: bytes the host copies out after
 * the handler returns. data must come from malloc (the host frees it with
 * the module's free); the helpers below take care of that. */
typedef struct noetl_result {
	char *data;   /* malloc'ed result bytes, or NULL */
	uint32_t len; /* their length */
} noetl_result;

/* A handler: the payload is data[0..len) (not NUL-terminated; it stays
 * valid until the handler returns). Returns the code: 0 for success. */
typedef uint64_t (*noetl_handler)(const char *data, size_t len, noetl_result *res);

/* The host's log function: env.log(level, pointer, length). */
__attribute__((import_module("env"), import_name("log"))) void
noetl_host_log(uint32_t level, const char *text, uint32_t len);

/* Logs len bytes of text at level. */
static inline void noetl_log_text(enum noetl_level level, const char *text, size_t len)
{
	noetl_host_log((uint32_t)level, text, (uint32_t)len);
}

/* Logs a printf-style message at level. */
static inline void noetl_vlog(enum noetl_level level, const char *fmt, va_list ap)
{
	char buf[512];
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0) {
		va_end(again);
		return;
	}
	if ((size_t)n < sizeof(buf)) {
		noetl_log_text(level, buf, (size_t)n);
	} else {
		char *big = (char *)malloc((size_t)n + 1);
		if (big != NULL) {
			vsnprintf(big, (size_t)n + 1, fmt, again);
			noetl_log_text(level, big, (size_t)n);
			free(big);
		}
	}
	va_end(again);
}

static inline void noetl_log(enum noetl_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static inline void noetl_log(enum noetl_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	noetl_vlog(level, fmt, ap);
	va_end(ap);
}

/* Sets the result to a copy of data[0..len). Returns 0, or -1 if memory ran
 * out (the result is then empty). */
static inline int noetl_result_set(noetl_result *r, const void *data, size_t len)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
	if (len == 0)
		return 0;
	r->data = (char *)malloc(len);
	if (r->data == NULL)
		return -1;
	memcpy(r->data, data, len);
	r->len = (uint32_t)len;
	return 0;
}

/* Sets the result to a NUL-terminated string (without the NUL). */
static inline int noetl_result_str(noetl_result *r, const char *s)
{
	return noetl_result_set(r, s, strlen(s));
}

/* Sets the result to a printf-style message. Returns 0 or -1. */
static inline int noetl_result_printf(noetl_result *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static inline int noetl_result_printf(noetl_result *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	char *s = (char *)malloc((size_t)n + 1);
	if (s == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	free(r->data);
	r->data = s;
	r->len = (uint32_t)n;
	return 0;
}

/* --- A tiny JSON reader, enough to pick a string out of an object. --- */

static inline const char *noetl_json__ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p at '"': returns the position after the closing quote, or NULL. */
static inline const char *noetl_json__skip_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static inline const char *noetl_json__skip_value(const char *p, const char *e, int depth)
{
	p = noetl_json__ws(p, e);
	if (p >= e || depth > 64)
		return NULL;
	if (*p == '"')
		return noetl_json__skip_string(p, e);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = noetl_json__ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = noetl_json__ws(p, e);
				if (p >= e || *p != '"' || !(p = noetl_json__skip_string(p, e)))
					return NULL;
				p = noetl_json__ws(p, e);
				if (p >= e || *p != ':')
					return NULL;
				p++;
			}
			if (!(p = noetl_json__skip_value(p, e, depth + 1)))
				return NULL;
			p = noetl_json__ws(p, e);
			if (p >= e)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p++;
		}
	}
	const char *s = p;
	while (p < e && !strchr(",}] \t\r\n", *p))
		p++;
	return p > s ? p : NULL;
}

static inline int noetl_json__hex4(const char *p, const char *e, uint32_t *v)
{
	*v = 0;
	if (e - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

/* The character a one-letter escape stands for, or -1. */
static inline int noetl_json__escape(char c)
{
	switch (c) {
	case '"':
		return '"';
	case '\\':
		return '\\';
	case '/':
		return '/';
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return -1;
	}
}

/* Encodes code point cp as UTF-8 into u; returns the byte count. */
static inline size_t noetl_json__utf8(uint32_t cp, char u[4])
{
	if (cp < 0x80) {
		u[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | cp >> 18);
	u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the string at p ('"') into out; returns its length, -1 if it is
 * not a valid string, -2 if it does not fit (cap includes the NUL). */
static inline int noetl_json__decode(const char *p, const char *e, char *out, size_t cap)
{
	size_t n = 0;
	for (p++; p < e; p++) {
		uint32_t cp = (unsigned char)*p;
		if (cp == '"') {
			if (n >= cap)
				return -2;
			out[n] = 0;
			return (int)n;
		}
		if (cp < 0x20)
			return -1;
		if (cp == '\\') {
			if (++p >= e)
				return -1;
			if (*p != 'u') {
				int c = noetl_json__escape(*p);
				if (c < 0)
					return -1;
				cp = (uint32_t)c;
			} else {
				if (noetl_json__hex4(p + 1, e, &cp))
					return -1;
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
					uint32_t lo;
					if (e - p < 7 || p[1] != '\\' || p[2] != 'u' ||
					    noetl_json__hex4(p + 3, e, &lo) || lo < 0xdc00 ||
					    lo > 0xdfff)
						return -1;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					return -1;
				}
			}
			char u[4];
			size_t k = noetl_json__utf8(cp, u);
			if (n + k >= cap)
				return -2;
			memcpy(out + n, u, k);
			n += k;
			continue;
		}
		if (n + 1 >= cap)
			return -2;
		out[n++] = (char)cp;
	}
	return -1;
}

/*
 * Finds the member key of the JSON object json[0..len) and, if its value is
 * a string, decodes it (escapes resolved, UTF-8) into out (cap bytes with the
 * NUL). Returns the string's length; -1 if json is not an object, has no such
 * member, or its value is not a string; -2 if the string does not fit.
 * Only the top level is searched.
 */
static inline int noetl_json_string(const char *json, size_t len, const char *key, char *out,
                                    size_t cap)
{
	const char *p = json, *e = json + len;
	p = noetl_json__ws(p, e);
	if (p >= e || *p != '{')
		return -1;
	p = noetl_json__ws(p + 1, e);
	if (p < e && *p == '}')
		return -1;
	for (;;) {
		char name[128];
		p = noetl_json__ws(p, e);
		if (p >= e || *p != '"')
			return -1;
		int kn = noetl_json__decode(p, e, name, sizeof(name));
		if (kn == -1 || !(p = noetl_json__skip_string(p, e)))
			return -1;
		p = noetl_json__ws(p, e);
		if (p >= e || *p != ':')
			return -1;
		p = noetl_json__ws(p + 1, e);
		if (kn >= 0 && strcmp(name, key) == 0)
			return p < e && *p == '"' ? noetl_json__decode(p, e, out, cap) : -1;
		if (!(p = noetl_json__skip_value(p, e, 0)))
			return -1;
		p = noetl_json__ws(p, e);
		if (p >= e || *p != ',')
			return -1;
		p++;
	}
}

/* --- The exports. --- */

#define NOETL_EXPORT(name) __attribute__((export_name(name)))

/* The ABI's memory exports: malloc, free(ptr) and ver() = 0. Once per
 * program (NOETL_EVENT includes it). */
#define NOETL_MODULE                                                                               \
	NOETL_EXPORT("malloc") void *noetl_abi_malloc(size_t n)                                    \
	{                                                                                          \
		return malloc(n);                                                                  \
	}                                                                                          \
	NOETL_EXPORT("free") void noetl_abi_free(void *p)                                          \
	{                                                                                          \
		free(p);                                                                           \
	}                                                                                          \
	NOETL_EXPORT("ver") uint32_t noetl_abi_ver(void)                                           \
	{                                                                                          \
		return 0;                                                                          \
	}

/* Exports handler under the name export (a job's runtime names it with
 * mainfuncname). The host calls it as (result_ptr, data_ptr, data_len) and
 * reads {u64 code; u64 ptr << 32 | len} at result_ptr. */
#define NOETL_HANDLER(export, handler)                                                             \
	NOETL_EXPORT(export)                                                                       \
	void noetl_abi_##handler(uint64_t *out, const char *data, uint32_t len)                    \
	{                                                                                          \
		noetl_result r = {NULL, 0};                                                        \
		uint64_t code = handler(data, len, &r);                                            \
		out[0] = code;                                                                     \
		out[1] = (uint64_t)(uintptr_t)r.data << 32 | r.len;                                \
	}

/* The usual module: the ABI exports and handler as `event`. */
#define NOETL_EVENT(handler) NOETL_MODULE NOETL_HANDLER("event", handler)

/* Exports fn as `init`, which the host calls once after loading the module
 * (and again whenever it starts the module afresh after a failure). */
#define NOETL_INIT(fn)                                                                             \
	NOETL_EXPORT("init") void noetl_abi_init(void)                                             \
	{                                                                                          \
		fn();                                                                              \
	}

#endif
