/*
 * content: validation of uploaded files. See content.h for what is checked.
 *
 * The wasm check is wasmbin's structural validation (wasmbin.h): header,
 * every section's id, size and order, the contents of the type, import,
 * function, table, memory, export and start sections and the function
 * bodies' sizes, with the byte offset of the first problem. Code is
 * type-checked when the executor compiles the module. Schemas are compiled
 * (jsonschema.h), following "$ref"s to the tenant's other uploaded files.
 */
#include "content.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema.h"
#include "util.h"
#include "wasmbin.h"

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

static int check_wasm(const char *name, const void *data, size_t len, char **why)
{
	char *err = NULL;
	int rv = wasm_validate(data, len, &err);
	if (rv == -EINVAL)
		rv = problem(why,
		             "wasm file '%s' is not a valid WebAssembly module: %s; upload the "
		             "compiled .wasm file",
		             name, err != NULL ? err : "it does not parse");
	free(err);
	return rv;
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
