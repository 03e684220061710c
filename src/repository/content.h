/*
 * content: what the File Repository accepts as a file of each type.
 * Private to src/repository/.
 *
 *   wasm         a well-formed WebAssembly binary module: magic, version 1,
 *                and a section list that parses (known ids in the order the
 *                specification requires, sizes inside the file, custom
 *                section names inside their section, as many function bodies
 *                as declared functions).
 *   json-schema  a JSON document (object or boolean, as a schema must be),
 *                without duplicate keys, that compiles as a JSON Schema
 *                (draft 4, 6 or 7; jsonschema.h): unknown drafts, keywords
 *                of the wrong type, bad patterns and dangling "#/..."
 *                references are refused. References to other documents are
 *                not followed at upload.
 */
#ifndef NOETL_REPOSITORY_CONTENT_H
#define NOETL_REPOSITORY_CONTENT_H

#include <stddef.h>

#include "repository.pb-c.h"

/*
 * Checks that data[0..len) is a valid file of type; name is used in the
 * message. Returns 0, or -EINVAL with *why (malloc'ed; the caller frees it)
 * saying what is wrong and where (byte offset for wasm, line:column for
 * JSON), or -ENOMEM.
 */
int content_check(Noetl__FileType type, const char *name, const void *data, size_t len, char **why);

#endif
