/*
 * content: validation of uploaded files. See content.h for what is checked.
 *
 * The wasm check is structural: it walks the section list the way a loader
 * does before decoding the sections' bodies, which catches truncated,
 * concatenated or mislabelled files (the common upload mistakes) with the
 * byte offset of the problem. The full decode happens when the executor
 * compiles the module.
 */
#include "content.h"

#include "jsonschema.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int problem(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(char **why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(why, fmt, ap) < 0) {
		*why = NULL;
		va_end(ap);
		return -ENOMEM;
	}
	va_end(ap);
	return -EINVAL;
}

/* A bounded reader over the module bytes. */
struct reader {
	const uint8_t *p; /* the module */
	size_t pos;       /* next byte */
	size_t end;       /* one past the last byte this reader may read */
};

/* Reads an unsigned LEB128 of at most 32 bits; false if malformed or past
 * the end. */
static bool read_u32(struct reader *r, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 5; i++) {
		if (r->pos >= r->end)
			return false;
		uint8_t b = r->p[r->pos++];
		if (i == 4 && (b & 0xf0) != 0)
			return false; /* more than 32 bits, or a continuation bit */
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*out = v;
			return true;
		}
	}
	return false;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t len = c < 0x80             ? 1
		             : (c & 0xe0) == 0xc0 ? 2
		             : (c & 0xf0) == 0xe0 ? 3
		             : (c & 0xf8) == 0xf0 ? 4
		                                  : 0;
		if (len == 0 || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
			return false;
		for (size_t j = 1; j < len; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

/* Position of a section id in the order the specification requires; 0 for
 * an unknown id. Tag (13, exception handling) sits between memory and
 * global; data count (12) between element and code. */
static int section_rank(uint8_t id)
{
	static const int rank[] = {
	        [1] = 1, [2] = 2, [3] = 3,  [4] = 4,   [5] = 5,   [13] = 6,  [6] = 7,
	        [7] = 8, [8] = 9, [9] = 10, [12] = 11, [10] = 12, [11] = 13,
	};
	return id < sizeof(rank) / sizeof(rank[0]) ? rank[id] : 0;
}

/* Walks the code section: a vector of size-prefixed bodies that must fill
 * the section exactly. */
static int check_code(struct reader *sec, const char *name, uint32_t *count, char **why)
{
	if (!read_u32(sec, count))
		return problem(why, "wasm file '%s': malformed function body count at byte %zu",
		               name, sec->pos);
	for (uint32_t i = 0; i < *count; i++) {
		size_t at = sec->pos;
		uint32_t size;
		if (!read_u32(sec, &size) || size > sec->end - sec->pos)
			return problem(why,
			               "wasm file '%s': function body %u at byte %zu runs past the "
			               "end of the code section",
			               name, i, at);
		sec->pos += size;
	}
	if (sec->pos != sec->end)
		return problem(why,
		               "wasm file '%s': %zu stray bytes after the last function body at "
		               "byte %zu",
		               name, sec->end - sec->pos, sec->pos);
	return 0;
}

static int check_wasm(const char *name, const uint8_t *p, size_t len, char **why)
{
	static const uint8_t magic[4] = {0x00, 'a', 's', 'm'};
	if (len < 8 || memcmp(p, magic, 4) != 0)
		return problem(why,
		               "wasm file '%s' is not a WebAssembly binary (it does not start "
		               "with \\0asm); upload the compiled .wasm, not the source",
		               name);
	uint32_t version =
	        (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
	if (version != 1)
		return problem(why,
		               "wasm file '%s' has binary format version %u; only version 1 "
		               "modules are supported",
		               name, version);

	struct reader r = {p, 8, len};
	int last_rank = 0;
	uint32_t functions = 0, bodies = 0;
	bool have_functions = false, have_code = false;
	while (r.pos < r.end) {
		size_t at = r.pos;
		uint8_t id = p[r.pos++];
		uint32_t size;
		if (!read_u32(&r, &size))
			return problem(why, "wasm file '%s': malformed section size at byte %zu",
			               name, r.pos);
		if (size > r.end - r.pos)
			return problem(why,
			               "wasm file '%s': section %u at byte %zu is %u bytes but "
			               "only %zu remain (truncated upload?)",
			               name, id, at, size, r.end - r.pos);
		struct reader sec = {p, r.pos, r.pos + size};
		r.pos += size;
		if (id == 0) {
			uint32_t nlen;
			if (!read_u32(&sec, &nlen) || nlen > sec.end - sec.pos ||
			    !valid_utf8(p + sec.pos, nlen))
				return problem(why,
				               "wasm file '%s': custom section at byte %zu has a "
				               "malformed name",
				               name, at);
			continue;
		}
		int rank = section_rank(id);
		if (rank == 0)
			return problem(why, "wasm file '%s': unknown section id %u at byte %zu",
			               name, id, at);
		if (rank <= last_rank)
			return problem(why,
			               "wasm file '%s': section %u at byte %zu is out of order or "
			               "repeated",
			               name, id, at);
		last_rank = rank;
		if (id == 3) {
			have_functions = true;
			if (!read_u32(&sec, &functions))
				return problem(
				        why, "wasm file '%s': malformed function count at byte %zu",
				        name, sec.pos);
		} else if (id == 10) {
			have_code = true;
			int rv = check_code(&sec, name, &bodies, why);
			if (rv != 0)
				return rv;
		}
	}
	if ((have_functions ? functions : 0) != (have_code ? bodies : 0))
		return problem(why,
		               "wasm file '%s' declares %u functions but has %u function bodies",
		               name, functions, bodies);
	return 0;
}

/* The message a reference that cannot be checked yet fails the compile
 * with, so check_schema can tell it from a real error. */
#define UNRESOLVED "noetl: reference left for the listener"

struct resolve {
	content_load_fn load; /* the tenant's files; NULL = none */
	void *arg;            /* for load */
};

/* A "$ref" to another document: one of the tenant's files is loaded and
 * checked with the rest; anything else (a file not uploaded yet, a URL)
 * cannot be checked now. */
static int resolve_ref(void *arg, const char *uri, json_t **out, char **err)
{
	const struct resolve *r = arg;
	int rv = -ENOENT;
	if (r->load != NULL && util_valid_name(uri, 128))
		rv = r->load(r->arg, uri, out);
	if (rv == -ENOENT)
		*err = strdup(UNRESOLVED);
	return rv;
}

static int check_schema(const char *name, const void *data, size_t len, const struct resolve *r,
                        char **why)
{
	json_t *doc = NULL;
	char *err = NULL;
	int rv = jsonschema_parse(data, len, &doc, &err);
	if (rv == -ENOMEM)
		return rv;
	if (rv != 0) {
		rv = problem(why, "schema '%s' is not valid JSON: %s", name,
		             err != NULL ? err : "unreadable");
		free(err);
		return rv;
	}
	if (!json_is_object(doc) && !json_is_boolean(doc)) {
		json_decref(doc);
		return problem(why,
		               "schema '%s' must be a JSON object (or true/false), as every "
		               "JSON Schema is",
		               name);
	}
	struct jsonschema_options opt = {.resolver = resolve_ref, .resolver_arg = (void *)r};
	struct jsonschema *js = NULL;
	rv = jsonschema_compile_json(doc, &opt, &js, &err);
	json_decref(doc);
	jsonschema_destroy(js);
	if (rv == -ENOMEM) {
		free(err);
		return rv;
	}
	if (rv != 0 && err != NULL && strstr(err, UNRESOLVED) != NULL) {
		/* It refers to a document that is not here (yet): the listener
		 * checks the whole when it loads the schema. */
		free(err);
		return 0;
	}
	if (rv != 0) {
		rv = problem(why,
		             "schema '%s' is not a valid JSON Schema: %s; fix it and upload again",
		             name, err != NULL ? err : "it does not compile");
		free(err);
	}
	return rv;
}

int content_check(Noetl__FileType type, const char *name, const void *data, size_t len,
                  content_load_fn load, void *load_arg, char **why)
{
	struct resolve r = {load, load_arg};
	switch (type) {
	case NOETL__FILE_TYPE__FILE_WASM:
		return check_wasm(name, data, len, why);
	case NOETL__FILE_TYPE__FILE_JSON_SCHEMA:
		return check_schema(name, data, len, &r, why);
	default:
		return problem(why, "file '%s' has unknown type %d; use wasm or json-schema", name,
		               (int)type);
	}
}
