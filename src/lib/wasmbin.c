/*
 * wasmbin: a reader of the WebAssembly binary format. See wasmbin.h.
 *
 * The reader walks the bytes once with a cursor that knows the end of the
 * current section; every read checks that cursor, so no input can make it
 * look outside the buffer. The first problem found stops the walk and is
 * reported with its byte offset.
 */
#include "wasmbin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits that keep a hostile file from making us allocate a lot: far above
 * anything a real toolchain emits. */
#define MAX_TYPES   100000
#define MAX_PARAMS  1000
#define MAX_IMPORTS 100000
#define MAX_FUNCS   1000000
#define MAX_EXPORTS 100000
#define MAX_PAGES   65536u

struct rd {
	const uint8_t *p;  /* the whole file */
	size_t end;        /* end of the current section (or of the file) */
	size_t pos;        /* cursor */
	const char *where; /* the section being read, for messages */
	char *err;         /* first error, malloc'ed */
	bool nomem;        /* an allocation failed */
};

static bool failf(struct rd *r, size_t off, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static bool failf(struct rd *r, size_t off, const char *fmt, ...)
{
	if (r->err != NULL || r->nomem)
		return false;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&r->err, "wasm: offset 0x%zx, %s: %s", off, r->where, msg) < 0) {
		r->err = NULL;
		r->nomem = true;
	}
	return false;
}

static bool u8(struct rd *r, uint8_t *out)
{
	if (r->pos >= r->end)
		return failf(r, r->pos, "unexpected end of %s", r->end == 0 ? "file" : "section");
	*out = r->p[r->pos++];
	return true;
}

/* An unsigned LEB128 number of at most 32 bits: at most 5 bytes, and the
 * unused high bits of the fifth byte must be zero. */
static bool u32(struct rd *r, uint32_t *out)
{
	size_t start = r->pos;
	uint64_t v = 0;
	for (int i = 0; i < 5; i++) {
		uint8_t b;
		if (r->pos >= r->end)
			return failf(r, start, "LEB128 number runs past the end of the section");
		b = r->p[r->pos++];
		if (i == 4 && (b & 0xf0) != 0)
			return failf(r, start, "LEB128 number does not fit in 32 bits");
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*out = (uint32_t)v;
			return true;
		}
	}
	return failf(r, start, "LEB128 number is longer than 5 bytes");
}

/* A count of items that each take at least min_size bytes: refuses counts the
 * rest of the section cannot hold, so allocations stay bounded by the input. */
static bool count(struct rd *r, uint32_t *out, size_t min_size, uint32_t max, const char *what)
{
	size_t at = r->pos;
	if (!u32(r, out))
		return false;
	if (*out > max)
		return failf(r, at, "%u %s is more than the limit of %u", *out, what, max);
	if ((size_t)*out * min_size > r->end - r->pos)
		return failf(r, at, "%u %s cannot fit in the %zu bytes left", *out, what,
		             r->end - r->pos);
	return true;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k) /* fewer than k continuation bytes left */
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* A name: length, then that many bytes of UTF-8. Copied NUL-terminated into
 * *out if out is not NULL. A name holding a NUL byte is refused, since the
 * host treats names as C strings. */
static bool name(struct rd *r, char **out)
{
	size_t at = r->pos;
	uint32_t n;
	if (!u32(r, &n))
		return false;
	if (n > r->end - r->pos)
		return failf(r, at, "name of %u bytes runs past the end of the section", n);
	const uint8_t *s = r->p + r->pos;
	if (!valid_utf8(s, n))
		return failf(r, at, "name is not valid UTF-8");
	if (memchr(s, 0, n) != NULL)
		return failf(r, at, "name holds a NUL byte");
	if (out != NULL) {
		char *c = malloc((size_t)n + 1);
		if (c == NULL) {
			r->nomem = true;
			return false;
		}
		memcpy(c, s, n);
		c[n] = 0;
		*out = c;
	}
	r->pos += n;
	return true;
}

static bool valtype(uint8_t t)
{
	return t == WASMBIN_I32 || t == WASMBIN_I64 || t == WASMBIN_F32 || t == WASMBIN_F64 ||
	       t == WASMBIN_V128 || t == WASMBIN_FUNCREF || t == WASMBIN_EXTERNREF;
}

/* Limits: flags 0 (min) or 1 (min, max), plus bit 1 for shared memories. */
static bool limits(struct rd *r, uint32_t *min, uint32_t *max, bool *has_max, uint32_t bound,
                   const char *what)
{
	size_t at = r->pos;
	uint8_t flags = 0;
	if (!u8(r, &flags))
		return false;
	if (flags > 3)
		return failf(r, at, "%s limits have unknown flags 0x%02x", what, flags);
	if (!u32(r, min))
		return false;
	*has_max = (flags & 1) != 0;
	*max = 0;
	if (*has_max && !u32(r, max))
		return false;
	if (*min > bound || (*has_max && *max > bound))
		return failf(r, at, "%s limits exceed %u", what, bound);
	if (*has_max && *min > *max)
		return failf(r, at, "%s minimum %u is above its maximum %u", what, *min, *max);
	return true;
}

static bool sec_type(struct rd *r, struct wasmbin *m)
{
	if (!count(r, &m->ntypes, 3, MAX_TYPES, "types"))
		return false;
	m->types = calloc(m->ntypes ? m->ntypes : 1, sizeof(*m->types));
	if (m->types == NULL)
		return !(r->nomem = true);
	for (uint32_t i = 0; i < m->ntypes; i++) {
		struct wasmbin_functype *t = &m->types[i];
		size_t at = r->pos;
		uint8_t form = 0;
		if (!u8(r, &form))
			return false;
		if (form != 0x60)
			return failf(r, at, "type %u has form 0x%02x, expected 0x60 (func)", i,
			             form);
		for (int pass = 0; pass < 2; pass++) {
			uint32_t n;
			if (!count(r, &n, 1, MAX_PARAMS, pass == 0 ? "parameters" : "results"))
				return false;
			uint8_t *v = malloc(n ? n : 1);
			if (v == NULL)
				return !(r->nomem = true);
			if (pass == 0) {
				t->params = v;
				t->nparams = n;
			} else {
				t->results = v;
				t->nresults = n;
			}
			for (uint32_t k = 0; k < n; k++) {
				at = r->pos;
				if (!u8(r, &v[k]))
					return false;
				if (!valtype(v[k]))
					return failf(r, at, "type %u has unknown value type 0x%02x",
					             i, v[k]);
			}
		}
	}
	return true;
}

static bool globaltype(struct rd *r)
{
	size_t at = r->pos;
	uint8_t t = 0, mut = 0;
	if (!u8(r, &t) || !u8(r, &mut))
		return false;
	if (!valtype(t))
		return failf(r, at, "global has unknown value type 0x%02x", t);
	if (mut > 1)
		return failf(r, at + 1, "global mutability 0x%02x is neither 0 nor 1", mut);
	return true;
}

static bool grow_funcs(struct rd *r, struct wasmbin *m, uint32_t more)
{
	if (more > MAX_FUNCS - m->nfuncs)
		return failf(r, r->pos, "more than %u functions", MAX_FUNCS);
	uint32_t *f = realloc(m->func_types, ((size_t)m->nfuncs + more + 1) * sizeof(*f));
	if (f == NULL)
		return !(r->nomem = true);
	m->func_types = f;
	return true;
}

static bool sec_import(struct rd *r, struct wasmbin *m)
{
	if (!count(r, &m->nimports, 4, MAX_IMPORTS, "imports"))
		return false;
	m->imports = calloc(m->nimports ? m->nimports : 1, sizeof(*m->imports));
	if (m->imports == NULL)
		return !(r->nomem = true);
	if (!grow_funcs(r, m, m->nimports))
		return false;
	for (uint32_t i = 0; i < m->nimports; i++) {
		struct wasmbin_import *im = &m->imports[i];
		if (!name(r, &im->module) || !name(r, &im->name))
			return false;
		size_t at = r->pos;
		if (!u8(r, &im->kind))
			return false;
		uint32_t min, max;
		bool has_max;
		uint8_t et = 0;
		switch (im->kind) {
		case WASMBIN_FUNC:
			if (!u32(r, &im->type))
				return false;
			if (im->type >= m->ntypes)
				return failf(r, at, "import '%s.%s' uses type %u of %u", im->module,
				             im->name, im->type, m->ntypes);
			m->func_types[m->nfuncs++] = im->type;
			m->nimported_funcs++;
			break;
		case WASMBIN_TABLE:
			if (!u8(r, &et))
				return false;
			if (et != WASMBIN_FUNCREF && et != WASMBIN_EXTERNREF)
				return failf(r, at + 1, "table element type 0x%02x is unknown", et);
			if (!limits(r, &min, &max, &has_max, UINT32_MAX, "table"))
				return false;
			break;
		case WASMBIN_MEMORY:
			if (!limits(r, &min, &max, &has_max, MAX_PAGES, "memory"))
				return false;
			if (m->nmemories++ == 0) {
				m->memory_imported = true;
				m->memory_min = min;
				m->memory_max = max;
				m->memory_has_max = has_max;
			}
			break;
		case WASMBIN_GLOBAL:
			if (!globaltype(r))
				return false;
			break;
		case WASMBIN_TAG:
			if (!u8(r, &et) || !u32(r, &min))
				return false;
			break;
		default:
			return failf(r, at, "import '%s.%s' has unknown kind %u", im->module,
			             im->name, im->kind);
		}
	}
	return true;
}

static bool sec_function(struct rd *r, struct wasmbin *m, uint32_t *ndefined)
{
	if (!count(r, ndefined, 1, MAX_FUNCS, "functions") || !grow_funcs(r, m, *ndefined))
		return false;
	for (uint32_t i = 0; i < *ndefined; i++) {
		size_t at = r->pos;
		uint32_t t;
		if (!u32(r, &t))
			return false;
		if (t >= m->ntypes)
			return failf(r, at, "function %u uses type %u of %u", m->nfuncs, t,
			             m->ntypes);
		m->func_types[m->nfuncs++] = t;
	}
	return true;
}

static bool sec_table(struct rd *r, uint32_t *ntables)
{
	uint32_t n;
	if (!count(r, &n, 2, MAX_IMPORTS, "tables")) /* same bound as imports */
		return false;
	for (uint32_t i = 0; i < n; i++) {
		size_t at = r->pos;
		uint8_t et = 0;
		uint32_t min, max;
		bool has_max;
		if (!u8(r, &et))
			return false;
		if (et != WASMBIN_FUNCREF && et != WASMBIN_EXTERNREF)
			return failf(r, at, "table element type 0x%02x is unknown", et);
		if (!limits(r, &min, &max, &has_max, UINT32_MAX, "table"))
			return false;
	}
	*ntables += n;
	return true;
}

static bool sec_memory(struct rd *r, struct wasmbin *m)
{
	uint32_t n;
	if (!count(r, &n, 2, 100, "memories"))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t min, max;
		bool has_max;
		if (!limits(r, &min, &max, &has_max, MAX_PAGES, "memory"))
			return false;
		if (m->nmemories++ == 0) {
			m->memory_min = min;
			m->memory_max = max;
			m->memory_has_max = has_max;
		}
	}
	return true;
}

static bool sec_export(struct rd *r, struct wasmbin *m, uint32_t ntables, uint32_t nglobals)
{
	if (!count(r, &m->nexports, 3, MAX_EXPORTS, "exports"))
		return false;
	m->exports = calloc(m->nexports ? m->nexports : 1, sizeof(*m->exports));
	if (m->exports == NULL)
		return !(r->nomem = true);
	for (uint32_t i = 0; i < m->nexports; i++) {
		struct wasmbin_export *e = &m->exports[i];
		size_t at = r->pos;
		if (!name(r, &e->name))
			return false;
		for (uint32_t k = 0; k < i; k++)
			if (strcmp(m->exports[k].name, e->name) == 0)
				return failf(r, at, "export '%s' is defined twice", e->name);
		size_t kat = r->pos;
		if (!u8(r, &e->kind) || !u32(r, &e->index))
			return false;
		uint32_t limit;
		switch (e->kind) {
		case WASMBIN_FUNC:
			limit = m->nfuncs;
			break;
		case WASMBIN_TABLE:
			limit = ntables;
			break;
		case WASMBIN_MEMORY:
			limit = m->nmemories;
			break;
		case WASMBIN_GLOBAL:
			limit = nglobals;
			break;
		case WASMBIN_TAG:
			limit = UINT32_MAX;
			break;
		default:
			return failf(r, kat, "export '%s' has unknown kind %u", e->name, e->kind);
		}
		if (e->index >= limit)
			return failf(r, kat, "export '%s' refers to index %u of %u", e->name,
			             e->index, limit);
	}
	return true;
}

/* The code section: a body per defined function, each a size and that many
 * bytes; the bodies themselves are wasm2c's to check. */
static bool sec_code(struct rd *r, uint32_t ndefined)
{
	size_t at = r->pos;
	uint32_t n;
	if (!count(r, &n, 1, MAX_FUNCS, "function bodies"))
		return false;
	if (n != ndefined)
		return failf(r, at, "%u function bodies for %u declared functions", n, ndefined);
	for (uint32_t i = 0; i < n; i++) {
		size_t bat = r->pos;
		uint32_t size;
		if (!u32(r, &size))
			return false;
		if (size == 0 || size > r->end - r->pos)
			return failf(r, bat, "body %u of %u bytes does not fit in the section", i,
			             size);
		r->pos += size;
	}
	return true;
}

/* Sections other than custom ones must come in this order, each at most
 * once. The tag section (13) sits between memory and global; data count (12)
 * between element and code. */
static int section_rank(uint8_t id)
{
	static const int rank[] = {
	        [1] = 1, [2] = 2, [3] = 3,  [4] = 4,   [5] = 5,   [13] = 6,  [6] = 7,
	        [7] = 8, [8] = 9, [9] = 10, [12] = 11, [10] = 12, [11] = 13,
	};
	return id < sizeof(rank) / sizeof(rank[0]) ? rank[id] : 0;
}

static const char *section_name(uint8_t id)
{
	static const char *names[] = {"custom section",     "type section",   "import section",
	                              "function section",   "table section",  "memory section",
	                              "global section",     "export section", "start section",
	                              "element section",    "code section",   "data section",
	                              "data count section", "tag section"};
	return id < sizeof(names) / sizeof(names[0]) ? names[id] : "unknown section";
}

static bool read_module(struct rd *r, struct wasmbin *m)
{
	static const uint8_t magic[4] = {0, 'a', 's', 'm'};
	r->where = "header";
	if (r->end < 8)
		return failf(r, 0, "file of %zu bytes is too short for a WebAssembly module",
		             r->end);
	if (memcmp(r->p, magic, 4) != 0)
		return failf(r, 0, "missing the \\0asm magic number: not a WebAssembly module");
	if (r->p[4] != 1 || r->p[5] != 0 || r->p[6] != 0 || r->p[7] != 0)
		return failf(r, 4, "unsupported binary version %u (only version 1 is supported)",
		             r->p[4] | r->p[5] << 8 | r->p[6] << 16 | (unsigned)r->p[7] << 24);
	r->pos = 8;
	size_t file_end = r->end;
	int last_rank = 0;
	uint32_t ndefined = 0, ntables = 0, nglobals = 0;
	bool saw_code = false;
	while (r->pos < file_end) {
		size_t at = r->pos;
		uint8_t id;
		uint32_t size;
		r->where = "section header";
		r->end = file_end;
		if (!u8(r, &id))
			return false;
		if (id > 13)
			return failf(r, at, "unknown section id %u", id);
		r->where = section_name(id);
		if (!u32(r, &size))
			return false;
		if (size > file_end - r->pos)
			return failf(r, at,
			             "size %u runs past the end of the file (%zu bytes left)", size,
			             file_end - r->pos);
		r->end = r->pos + size;
		if (id != 0) {
			int rank = section_rank(id);
			if (rank <= last_rank)
				return failf(r, at, "out of order or repeated");
			last_rank = rank;
		}
		bool ok = true;
		uint32_t n;
		switch (id) {
		case 0:
			ok = name(r, NULL);
			r->pos = r->end; /* the payload is the custom section's own business */
			break;
		case 1:
			ok = sec_type(r, m);
			break;
		case 2:
			ok = sec_import(r, m);
			for (uint32_t i = 0; ok && i < m->nimports; i++) {
				ntables += m->imports[i].kind == WASMBIN_TABLE;
				nglobals += m->imports[i].kind == WASMBIN_GLOBAL;
			}
			break;
		case 3:
			ok = sec_function(r, m, &ndefined);
			break;
		case 4:
			ok = sec_table(r, &ntables);
			break;
		case 5:
			ok = sec_memory(r, m);
			break;
		case 6:
			ok = count(r, &n, 2, MAX_FUNCS, "globals");
			nglobals += n;
			r->pos = r->end;
			break;
		case 7:
			ok = sec_export(r, m, ntables, nglobals);
			break;
		case 8:
			ok = u32(r, &n);
			if (ok && n >= m->nfuncs)
				ok = failf(r, at, "start function %u of %u", n, m->nfuncs);
			m->has_start = true;
			break;
		case 10:
			ok = sec_code(r, ndefined);
			saw_code = true;
			break;
		default: /* element, data, data count, tag: counted, not parsed */
			ok = u32(r, &n);
			r->pos = r->end;
			break;
		}
		if (!ok)
			return false;
		if (r->pos != r->end)
			return failf(r, r->pos, "%zu unread bytes at the end of the section",
			             r->end - r->pos);
	}
	r->end = file_end;
	r->where = "module";
	if (ndefined > 0 && !saw_code)
		return failf(r, file_end, "%u functions declared but the code section is missing",
		             ndefined);
	if (m->nmemories > 1)
		return failf(r, file_end, "%u memories: only one is supported", m->nmemories);
	return true;
}

void wasmbin_destroy(struct wasmbin *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->ntypes; i++) {
		free(m->types[i].params);
		free(m->types[i].results);
	}
	free(m->types);
	for (uint32_t i = 0; i < m->nimports; i++) {
		free(m->imports[i].module);
		free(m->imports[i].name);
	}
	free(m->imports);
	for (uint32_t i = 0; i < m->nexports; i++)
		free(m->exports[i].name);
	free(m->exports);
	free(m->func_types);
	free(m);
}

int wasmbin_parse(const void *bytes, size_t len, struct wasmbin **out, char **err)
{
	struct wasmbin *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	struct rd r = {.p = bytes, .end = len, .where = "header"};
	if (bytes == NULL)
		r.end = 0;
	if (!read_module(&r, m)) {
		wasmbin_destroy(m);
		if (r.nomem) {
			free(r.err);
			return -ENOMEM;
		}
		if (err != NULL)
			*err = r.err;
		else
			free(r.err);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

int wasm_validate(const void *bytes, size_t len, char **err)
{
	struct wasmbin *m;
	int rc = wasmbin_parse(bytes, len, &m, err);
	if (rc == 0)
		wasmbin_destroy(m);
	return rc;
}

const struct wasmbin_functype *wasmbin_func_type(const struct wasmbin *m, uint32_t fn)
{
	if (fn >= m->nfuncs)
		return NULL;
	return &m->types[m->func_types[fn]];
}

const struct wasmbin_export *wasmbin_find_export(const struct wasmbin *m, const char *name,
                                                 uint8_t kind)
{
	for (uint32_t i = 0; i < m->nexports; i++)
		if (m->exports[i].kind == kind && strcmp(m->exports[i].name, name) == 0)
			return &m->exports[i];
	return NULL;
}

static uint8_t letter_type(char c)
{
	switch (c) {
	case 'i':
		return WASMBIN_I32;
	case 'I':
		return WASMBIN_I64;
	case 'f':
		return WASMBIN_F32;
	case 'F':
		return WASMBIN_F64;
	default:
		return 0;
	}
}

static bool types_are(const uint8_t *v, uint32_t n, const char *want)
{
	if (strlen(want) != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (v[i] != letter_type(want[i]))
			return false;
	return true;
}

bool wasmbin_type_is(const struct wasmbin_functype *t, const char *params, const char *results)
{
	return t != NULL && types_are(t->params, t->nparams, params) &&
	       types_are(t->results, t->nresults, results);
}

const char *wasmbin_valtype_name(uint8_t t)
{
	switch (t) {
	case WASMBIN_I32:
		return "i32";
	case WASMBIN_I64:
		return "i64";
	case WASMBIN_F32:
		return "f32";
	case WASMBIN_F64:
		return "f64";
	case WASMBIN_V128:
		return "v128";
	case WASMBIN_FUNCREF:
		return "funcref";
	case WASMBIN_EXTERNREF:
		return "externref";
	default:
		return "?";
	}
}

static size_t put_list(char *buf, size_t cap, size_t at, const uint8_t *v, uint32_t n)
{
	at += (size_t)snprintf(buf + (at < cap ? at : cap), at < cap ? cap - at : 0, "(");
	for (uint32_t i = 0; i < n; i++)
		at += (size_t)snprintf(buf + (at < cap ? at : cap), at < cap ? cap - at : 0, "%s%s",
		                       i ? ", " : "", wasmbin_valtype_name(v[i]));
	at += (size_t)snprintf(buf + (at < cap ? at : cap), at < cap ? cap - at : 0, ")");
	return at;
}

void wasmbin_type_string(const struct wasmbin_functype *t, char *buf, size_t cap)
{
	if (cap == 0)
		return;
	buf[0] = 0;
	size_t at = put_list(buf, cap, 0, t->params, t->nparams);
	at += (size_t)snprintf(buf + (at < cap ? at : cap), at < cap ? cap - at : 0, " -> ");
	put_list(buf, cap, at, t->results, t->nresults);
	buf[cap - 1] = 0;
}
