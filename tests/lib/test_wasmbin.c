#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "wasmbin.h"

/* A module with a type, import, function, memory, export and code section:
 * (import "env" "log" (func (param i32 i32 i32)))
 * (func (export "f") (param i32) (result i32) local.get 0)
 * (memory (export "memory") 1 2) */
static const uint8_t mini[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,            /* header */
        0x01, 0x0c, 0x02, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00,      /* type */
        0x60, 0x01, 0x7f, 0x01, 0x7f,                              /* */
        0x02, 0x0b, 0x01, 0x03, 'e',  'n',  'v',  0x03, 'l',  'o', /* import */
        'g',  0x00, 0x00,                                          /* */
        0x03, 0x02, 0x01, 0x01,                                    /* function */
        0x05, 0x04, 0x01, 0x01, 0x01, 0x02,                        /* memory */
        0x07, 0x0e, 0x02, 0x06, 'm',  'e',  'm',  'o',  'r',  'y', /* export */
        0x02, 0x00, 0x01, 'f',  0x00, 0x01,                        /* */
        0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x00, 0x0b,            /* code */
};

/* Validates a copy of mini with one byte changed (or the length cut) and
 * returns the error message, which the caller frees. */
static char *refusal(const uint8_t *bytes, size_t len)
{
	char *err = NULL;
	int rc = wasm_validate(bytes, len, &err);
	cr_assert_eq(rc, -EINVAL, "expected the module to be refused");
	cr_assert_not_null(err);
	return err;
}

static char *refusal_with(size_t at, uint8_t value)
{
	uint8_t copy[sizeof(mini)];
	memcpy(copy, mini, sizeof(mini));
	copy[at] = value;
	return refusal(copy, sizeof(copy));
}

Test(wasmbin, accepts_a_well_formed_module_and_the_empty_module)
{
	char *err = NULL;
	cr_assert_eq(wasm_validate(mini, sizeof(mini), &err), 0, "%s", err ? err : "");
	cr_assert_eq(wasm_validate(mini, 8, &err), 0);
	cr_assert_null(err);
}

Test(wasmbin, parse_reports_imports_exports_types_and_memory)
{
	struct wasmbin *m = NULL;
	cr_assert_eq(wasmbin_parse(mini, sizeof(mini), &m, NULL), 0);
	cr_assert_eq(m->nimports, 1);
	cr_assert_str_eq(m->imports[0].module, "env");
	cr_assert_str_eq(m->imports[0].name, "log");
	cr_assert(wasmbin_type_is(&m->types[m->imports[0].type], "iii", ""));
	cr_assert_eq(m->nfuncs, 2);
	const struct wasmbin_export *f = wasmbin_find_export(m, "f", WASMBIN_FUNC);
	cr_assert_not_null(f);
	cr_assert(wasmbin_type_is(wasmbin_func_type(m, f->index), "i", "i"));
	cr_assert_not(wasmbin_type_is(wasmbin_func_type(m, f->index), "i", ""));
	cr_assert_not_null(wasmbin_find_export(m, "memory", WASMBIN_MEMORY));
	cr_assert_null(wasmbin_find_export(m, "memory", WASMBIN_FUNC));
	cr_assert_eq(m->nmemories, 1);
	cr_assert_eq(m->memory_min, 1);
	cr_assert(m->memory_has_max);
	cr_assert_eq(m->memory_max, 2);
	char buf[64];
	wasmbin_type_string(&m->types[0], buf, sizeof(buf));
	cr_assert_str_eq(buf, "(i32, i32, i32) -> ()");
	wasmbin_type_string(&m->types[1], buf, 8);
	cr_assert_str_eq(buf, "(i32) -");
	wasmbin_destroy(m);
}

Test(wasmbin, refuses_a_file_without_the_magic_number_or_with_another_version)
{
	char *err = refusal((const uint8_t *)"hello world", 11);
	cr_assert(strstr(err, "not a WebAssembly module") != NULL, "%s", err);
	free(err);
	err = refusal_with(4, 2);
	cr_assert(strstr(err, "version 2") != NULL, "%s", err);
	free(err);
	err = refusal(mini, 5);
	cr_assert(strstr(err, "too short") != NULL, "%s", err);
	free(err);
	cr_assert_eq(wasm_validate(NULL, 0, NULL), -EINVAL);
}

Test(wasmbin, refuses_a_section_whose_size_runs_past_the_end)
{
	char *err = refusal(mini, sizeof(mini) - 3);
	cr_assert(strstr(err, "code section") != NULL, "%s", err);
	cr_assert(strstr(err, "runs past the end of the file") != NULL, "%s", err);
	free(err);
}

Test(wasmbin, refuses_an_overlong_or_oversized_leb128)
{
	/* A type section whose size is encoded in 6 bytes. */
	const uint8_t longleb[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	                           0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
	char *err = refusal(longleb, sizeof(longleb));
	cr_assert(strstr(err, "does not fit in 32 bits") != NULL, "%s", err);
	free(err);
	const uint8_t cut[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x80};
	err = refusal(cut, sizeof(cut));
	cr_assert(strstr(err, "LEB128") != NULL, "%s", err);
	free(err);
}

Test(wasmbin, refuses_sections_out_of_order_or_unknown)
{
	/* Turn the memory section (5) into a second function section (3). */
	char *err = refusal_with(39, 0x03);
	cr_assert(strstr(err, "out of order or repeated") != NULL, "%s", err);
	cr_assert(strstr(err, "offset 0x27") != NULL, "%s", err);
	free(err);
	err = refusal_with(39, 0x0e);
	cr_assert(strstr(err, "unknown section id 14") != NULL, "%s", err);
	free(err);
}

Test(wasmbin, refuses_bad_references_inside_sections)
{
	/* import of type 7 when there are two types */
	char *err = refusal_with(34, 0x07);
	cr_assert(strstr(err, "import 'env.log' uses type 7 of 2") != NULL, "%s", err);
	free(err);
	/* export "f" of function 9 */
	err = refusal_with(60, 0x09);
	cr_assert(strstr(err, "export 'f' refers to index 9 of 2") != NULL, "%s", err);
	free(err);
	/* the export section rewritten to export "f", "f" and "gg" (14 bytes) */
	uint8_t copy[sizeof(mini)];
	memcpy(copy, mini, sizeof(mini));
	static const uint8_t twice[14] = {3, 1, 'f', 0, 1, 1, 'f', 0, 1, 2, 'g', 'g', 0, 1};
	memcpy(copy + 47, twice, sizeof(twice));
	err = refusal(copy, sizeof(copy));
	cr_assert(strstr(err, "export 'f' is defined twice") != NULL, "%s", err);
	free(err);
	/* memory minimum above its maximum */
	err = refusal_with(43, 0x05);
	cr_assert(strstr(err, "minimum 5 is above its maximum 2") != NULL, "%s", err);
	free(err);
}

Test(wasmbin, refuses_names_that_are_not_utf8_and_a_missing_code_section)
{
	char *err = refusal_with(26, 0xff);
	cr_assert(strstr(err, "not valid UTF-8") != NULL, "%s", err);
	free(err);
	err = refusal(mini, sizeof(mini) - 8);
	cr_assert(strstr(err, "code section is missing") != NULL, "%s", err);
	free(err);
}

Test(wasmbin, accepts_the_sdk_example_built_by_clang)
{
	char path[4096];
	testutil_build_path("sdk/examples/echo.wasm", path, sizeof(path));
	size_t len;
	char *bytes = testutil_read_file(path, &len);
	cr_assert_not_null(bytes, "cannot read %s", path);
	char *err = NULL;
	struct wasmbin *m;
	cr_assert_eq(wasmbin_parse(bytes, len, &m, &err), 0, "%s", err ? err : "");
	cr_assert_not_null(wasmbin_find_export(m, "event", WASMBIN_FUNC));
	cr_assert_not_null(wasmbin_find_export(m, "malloc", WASMBIN_FUNC));
	wasmbin_destroy(m);
	/* every truncation of a real module is refused, never read past */
	for (size_t cut = 0; cut < len; cut += 1 + cut / 64) {
		if (wasm_validate(bytes, cut, &err) == 0)
			continue; /* a cut at a section boundary is a valid module */
		free(err);
		err = NULL;
	}
	free(bytes);
}
