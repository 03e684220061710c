/*
 * shimgen: writes the C glue compiled next to wasm2c's output (see
 * shimabi.h for what the glue is and why it exists).
 */
#ifndef NOETL_SHIMGEN_H
#define NOETL_SHIMGEN_H

#include <stddef.h>
#include <stdio.h>

#include "wasmbin.h"

/* The wasm2c module name the glue refers to (wasm2c -n). */
#define SHIMGEN_MODULE "m"

/*
 * Writes the glue for module m, whose wasm2c header is "m.h", to f.
 * Returns 0, or -EINVAL if the module exports no memory (with a message in
 * err), or -EIO if writing failed.
 */
int shimgen_write(const struct wasmbin *m, FILE *f, char *err, size_t errcap);

/* The export's signature as the glue spells it: params '>' results in the
 * letters i I f F (v for v128, r for references), e.g. "iii>". */
void shimgen_sig(const struct wasmbin_functype *t, char *buf, size_t cap);

/* wasm2c 1.0.32's name mangling of one name: "Z_" followed by the name with
 * every byte that is not a letter, digit or '_' (and every 'Z') written as
 * 'Z' and two upper-case hex digits. */
void shimgen_mangle(const char *name, char *buf, size_t cap);

#endif
