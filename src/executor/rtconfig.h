/*
 * rtconfig: how generated module code and this project's wasm-rt runtime
 * (wasmrt.c) are built. Both sides include wabt 1.0.32's <wasm-rt.h>, whose
 * layout depends on these macros, so they must agree: compile.c passes
 * RTCONFIG_CFLAGS to the C compiler for every module and wasmrt.c defines the
 * same macros before including the header. Changing anything here changes
 * the compile cache key (RTCONFIG_ABI), so old shared objects are not reused.
 *
 * Memory accesses are bounds-checked by the generated code itself (no
 * guard-page signal handler): a runner reserves only its memory limit, so
 * RLIMIT_AS stays meaningful, and the runtime needs no SIGSEGV games, which
 * also keeps it usable in-process under AddressSanitizer. Measured on the
 * bench kernel the explicit checks cost about as much as the 8 GiB guard
 * reservation saves. Call depth is counted (WASM_RT_USE_STACK_DEPTH_COUNT)
 * so unbounded recursion is a "call stack exhausted" trap, not a crash; the
 * runner raises its stack limit (RUNNER_STACK_BYTES) to leave room for this
 * many frames.
 */
#ifndef NOETL_RTCONFIG_H
#define NOETL_RTCONFIG_H

#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#define WASM_RT_USE_STACK_DEPTH_COUNT   1
#define WASM_RT_MAX_CALL_STACK_DEPTH    16384

/* Bumped whenever the runtime, the shim or these flags change meaning. */
#define RTCONFIG_ABI "noetl-wasm-rt-1"

#define RTCONFIG_STR_(...) #__VA_ARGS__
#define RTCONFIG_STR(...)  RTCONFIG_STR_(__VA_ARGS__)

#define RTCONFIG_CFLAGS                                                                            \
	"-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=" RTCONFIG_STR(WASM_RT_MEMCHECK_SIGNAL_HANDLER),        \
	        "-DWASM_RT_USE_STACK_DEPTH_COUNT=" RTCONFIG_STR(WASM_RT_USE_STACK_DEPTH_COUNT),    \
	        "-DWASM_RT_MAX_CALL_STACK_DEPTH=" RTCONFIG_STR(WASM_RT_MAX_CALL_STACK_DEPTH)

/* Wasm pages are 64 KiB; a memory limit is a number of pages. wasm2c 1.0.32
 * keeps the byte size in a uint32_t, so 65535 pages is the most it can hold. */
#define RT_PAGE_SIZE 65536u
#define RT_MAX_PAGES 65535u

#endif
