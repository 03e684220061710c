/*
 * compile: WebAssembly to native code ahead of time, with an on-disk cache.
 * See compile.c for the pipeline and the cache layout.
 */
#ifndef NOETL_COMPILE_H
#define NOETL_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasmbin.h"

struct compile;

/*
 * Checks the toolchain and prepares the cache directory (created if
 * missing; temporary directories left by a crashed compile are removed).
 * cc and wasm2c are program names or paths (NULL: "cc", "wasm2c"); wasm2c
 * must be wabt 1.0.32. timeout_ms bounds each tool run. Returns 0 or -errno
 * with *err malloc'ed (caller frees). Strings are copied.
 */
int compile_create(const char *cache_dir, const char *cc, const char *wasm2c, uint32_t timeout_ms,
                   struct compile **out, char **err);

/* Frees the compiler; accepts NULL. Never deletes the cache. */
void compile_destroy(struct compile *c);

/*
 * Checks that a module asks only for what the host provides (hostabi.h),
 * with the right types, and has what the Jobicolet ABI needs: an exported
 * memory, malloc (i32) -> i32 and free (i32) -> () or (i32, i32) -> ().
 * Returns 0 or -EINVAL with *err malloc'ed, naming every refused import
 * (up to a few) as 'module.name'. Thread-safe.
 */
int compile_check(const struct wasmbin *info, char **err);

/*
 * Makes sure the shared object for the module with content hash sha (hex)
 * exists in the cache, compiling wasm[0..len) if it does not, and writes its
 * malloc'ed path to *path and whether the compiler ran to *compiled. Run
 * compile_check first. The file appears atomically (temp + rename), so
 * concurrent compiles of the same module, in this process or another
 * sharing the cache, are harmless. Returns 0, -EIO when a tool fails or
 * times out (*err holds its stderr, bounded), or -errno. Thread-safe.
 */
int compile_module(struct compile *c, const struct wasmbin *info, const void *wasm, size_t len,
                   const char *sha, char **path, bool *compiled, char **err);

/* Removes the cached object of sha (e.g. when it failed to load) so the next
 * compile_module rebuilds it. Returns 0 or -errno. */
int compile_evict(struct compile *c, const char *sha);

/* The toolchain fingerprint that is part of every cache file name. */
const char *compile_toolchain_id(const struct compile *c);

#endif
