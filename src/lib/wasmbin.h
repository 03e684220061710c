/*
 * wasmbin: a small reader of the WebAssembly binary format (version 1).
 *
 * It does two jobs. The file repository calls wasm_validate() on every
 * upload so that a file that is not a WebAssembly module is refused at the
 * door with a message that says where it is broken. The executor calls
 * wasmbin_parse() before compiling a module to learn its imports (to refuse
 * a module that needs something the host does not provide), its exports with
 * their function types (to generate the glue that calls them) and its memory.
 *
 * The check is structural: the header, every section's id, size and order,
 * every LEB128 number's encoding and bounds, and the full contents of the
 * type, import, function, table, memory, export and start sections, plus
 * the number and sizes of the function bodies. It does not type-check code;
 * wasm2c does that when the module is compiled.
 */
#ifndef NOETL_WASMBIN_H
#define NOETL_WASMBIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value types, as encoded in the binary. */
enum wasmbin_valtype {
	WASMBIN_I32 = 0x7f,
	WASMBIN_I64 = 0x7e,
	WASMBIN_F32 = 0x7d,
	WASMBIN_F64 = 0x7c,
	WASMBIN_V128 = 0x7b,
	WASMBIN_FUNCREF = 0x70,
	WASMBIN_EXTERNREF = 0x6f,
};

/* Kinds of imports and exports, as encoded in the binary. */
enum wasmbin_kind {
	WASMBIN_FUNC = 0,
	WASMBIN_TABLE = 1,
	WASMBIN_MEMORY = 2,
	WASMBIN_GLOBAL = 3,
	WASMBIN_TAG = 4,
};

struct wasmbin_functype {
	uint32_t nparams;  /* number of parameters */
	uint32_t nresults; /* number of results */
	uint8_t *params;   /* nparams value types (enum wasmbin_valtype) */
	uint8_t *results;  /* nresults value types */
};

struct wasmbin_import {
	char *module;  /* NUL-terminated module name, e.g. "env" */
	char *name;    /* NUL-terminated field name, e.g. "log" */
	uint8_t kind;  /* enum wasmbin_kind */
	uint32_t type; /* for a function: index into types */
};

struct wasmbin_export {
	char *name;     /* NUL-terminated export name */
	uint8_t kind;   /* enum wasmbin_kind */
	uint32_t index; /* index in the kind's index space (imports first) */
};

struct wasmbin {
	struct wasmbin_functype *types; /* the type section */
	uint32_t ntypes;
	struct wasmbin_import *imports; /* the import section, in order */
	uint32_t nimports;
	uint32_t nimported_funcs;       /* imports of kind WASMBIN_FUNC */
	uint32_t *func_types;           /* type index of every function, imports first */
	uint32_t nfuncs;                /* imported + defined functions */
	struct wasmbin_export *exports; /* the export section, in order */
	uint32_t nexports;
	uint32_t nmemories;   /* imported + defined memories */
	bool memory_imported; /* memory 0 is an import */
	uint32_t memory_min;  /* memory 0's initial pages (if nmemories > 0) */
	uint32_t memory_max;  /* memory 0's maximum pages, if memory_has_max */
	bool memory_has_max;
	bool has_start; /* a start section names a function */
};

/*
 * Checks that bytes[0..len) is a structurally valid WebAssembly module (see
 * the file comment for what is checked). Returns 0, or -EINVAL with *err set
 * to a malloc'ed, NUL-terminated message that names the byte offset and the
 * section ("wasm: offset 0x1c, export section: ..."); the caller frees it.
 * err may be NULL. Returns -ENOMEM (and no message) if memory runs out.
 * Thread-safe; bytes are borrowed for the call.
 */
int wasm_validate(const void *bytes, size_t len, char **err);

/*
 * Parses and validates like wasm_validate and, on success, writes a new
 * description of the module to *out (free it with wasmbin_destroy). On
 * failure *out is untouched and *err is as for wasm_validate.
 */
int wasmbin_parse(const void *bytes, size_t len, struct wasmbin **out, char **err);

/* Frees a module description; accepts NULL. */
void wasmbin_destroy(struct wasmbin *m);

/* The type of function index fn (imports first), or NULL if out of range. */
const struct wasmbin_functype *wasmbin_func_type(const struct wasmbin *m, uint32_t fn);

/* The exported function called name, or NULL. */
const struct wasmbin_export *wasmbin_find_export(const struct wasmbin *m, const char *name,
                                                 uint8_t kind);

/* True if type t has exactly the given parameter and result types, each a
 * string of letters i (i32), I (i64), f (f32), F (f64): e.g. "iii", "". */
bool wasmbin_type_is(const struct wasmbin_functype *t, const char *params, const char *results);

/* Writes t as text, e.g. "(i32, i32) -> i64", into buf (always terminated). */
void wasmbin_type_string(const struct wasmbin_functype *t, char *buf, size_t cap);

/* Name of a value type ("i32", ...) or "?". */
const char *wasmbin_valtype_name(uint8_t t);

#endif
