/*
 * rt: this project's implementation of wabt 1.0.32's wasm-rt.h runtime, plus
 * the few hooks the host needs around it. See wasmrt.c for the design.
 *
 * Threads: wasm2c 1.0.32 keeps the trap target, the call depth and the type
 * registry in globals, so a process runs WebAssembly on one thread only.
 * Every function here is for that thread.
 */
#ifndef NOETL_RT_H
#define NOETL_RT_H

#include "rtconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <wasm-rt.h>

/* Trap codes beyond wasm_rt_trap_t, raised by the host side. */
enum rt_trap_ext {
	RT_TRAP_HOST = 100, /* a host function refused the guest's arguments */
	RT_TRAP_EXIT = 101, /* the guest called proc_exit (see rt_exit_code) */
	RT_TRAP_OOM = 102,  /* memory could not be had within the limit */
	RT_TRAP_ABI = 103,  /* the guest broke the Jobicolet calling convention */
};

/* Sets the cap, in pages, for memories allocated from now on. Memories are
 * reserved up to the smaller of the cap and their declared maximum, and
 * memory.grow past it fails with -1 as the spec allows. */
void rt_set_memory_cap(uint32_t pages);

/* Runs fn(arg) with traps caught. Returns 0 if fn returned, or the trap code
 * (a wasm_rt_trap_t or an enum rt_trap_ext) after restoring the call depth.
 * Calls may nest (a trap returns to the innermost rt_call). */
int rt_call(void (*fn)(void *), void *arg);

/* Ends the innermost rt_call with code and a reason (printf-style, kept up
 * to 511 bytes), readable with rt_trap_reason. For host functions. */
_Noreturn void rt_trap_host(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends the innermost rt_call with RT_TRAP_EXIT and the exit code. */
_Noreturn void rt_exit(uint32_t code);
uint32_t rt_exit_code(void);

/* Text for a trap code: the reason given to rt_trap_host for host codes,
 * otherwise a fixed phrase ("unreachable instruction executed"). Valid
 * until the next trap. */
const char *rt_trap_reason(int code);

/* If a memory.grow was refused since the last rt_clear_grow_refusal,
 * returns a sentence saying so (limit and request); otherwise NULL. */
const char *rt_grow_refusal(void);
void rt_clear_grow_refusal(void);

/* Frees the type registry (call after freeing every instance). */
void rt_shutdown(void);

#endif
