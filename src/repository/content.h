/*
 * content: what the File Repository accepts as a file of each type.
 * Private to src/repository/.
 *
 *   wasm         a well-formed WebAssembly binary module (wasm_validate):
 *                magic, version 1, sections in order and inside the file,
 *                the declarations parse, as many function bodies as
 *                declared functions.
 *   json-schema  a JSON document (object or boolean, as a schema must be),
 *                without duplicate keys, that compiles as a JSON Schema
 *                (draft 4, 6 or 7; jsonschema.h): unknown drafts, keywords
 *                of the wrong type, bad patterns and dangling "#/..."
 *                references are refused. A "$ref" to another of the
 *                tenant's files is checked against that file when it has
 *                been uploaded; a reference to a file not uploaded yet (or
 *                to any other URI) is left for the listener to resolve when
 *                it loads the schema, so files may be uploaded in any
 *                order.
 */
#ifndef NOETL_REPOSITORY_CONTENT_H
#define NOETL_REPOSITORY_CONTENT_H

#include <jansson.h>
#include <stddef.h>

#include "repository.pb-c.h"

/* Loads another json-schema file of the same tenant, for a "$ref" to it:
 * 0 and a new reference in *out, -ENOENT if there is no such file, or
 * another -errno. */
typedef int (*content_load_fn)(void *arg, const char *name, json_t **out);

/*
 * Checks that data[0..len) is a valid file of type; name is used in the
 * message. Returns 0, or -EINVAL with *why (malloc'ed; the caller frees it)
 * saying what is wrong and where (byte offset for wasm, line:column for
 * JSON), or -ENOMEM. load (may be NULL: no file is found) resolves
 * references to other files of the tenant.
 */
int content_check(Noetl__FileType type, const char *name, const void *data, size_t len,
                  content_load_fn load, void *load_arg, char **why);

#endif
