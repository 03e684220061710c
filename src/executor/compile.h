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

/* What the cache directory holds, as of the last compile_prune. */
struct compile_cache_stats {
	uint64_t bytes;   /* size of the compiled objects */
	uint64_t entries; /* compiled objects (of any toolchain) */
	uint64_t evicted; /* objects removed by compile_prune, ever */
};

/*
 * Bounds the cache: while its objects (of any toolchain) take more than
 * max_bytes, removes the least recently used one, where use is the later of
 * the file's mtime (compiled) and atime (touched on every cache hit and
 * runner start, see compile_touch). Never removes the objects of keep[0..n)
 * (content hashes of modules loaded in this process, current toolchain) or
 * one used within the last COMPILE_PRUNE_GRACE_S seconds: a module loaded
 * by another process sharing the cache (an engine touches its loaded
 * modules' objects every COMPILE_TOUCH_EVERY_S) or a compile that is not
 * loaded yet. Updates the statistics. Returns 0 or -errno when the
 * directory cannot be read. Thread-safe.
 */
#define COMPILE_TOUCH_EVERY_S 3600
#define COMPILE_PRUNE_GRACE_S (2 * COMPILE_TOUCH_EVERY_S)
int compile_prune(struct compile *c, uint64_t max_bytes, const char (*keep)[65], size_t nkeep);

/* Marks a cached object as used now (its atime), for compile_prune. */
void compile_touch(const char *path);

/* The statistics of the last compile_prune (zeros before the first). */
void compile_cache_stats(struct compile *c, struct compile_cache_stats *out);

/* The toolchain fingerprint that is part of every cache file name. */
const char *compile_toolchain_id(const struct compile *c);

#endif
