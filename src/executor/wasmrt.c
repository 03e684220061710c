/*
 * wasmrt: the runtime that wasm2c-generated code links against, written for
 * this project against wabt 1.0.32's <wasm-rt.h> (wabt's own
 * wasm-rt-impl.c is not used). It is linked into noetl-runner, which
 * exports its symbols to the modules it loads.
 *
 * Traps. Generated code calls wasm_rt_trap(code) on a trap; we siglongjmp
 * to the innermost rt_call, which returns the code. rt_call saves and
 * restores the call-depth counter the generated prologues maintain, so a
 * trap deep in recursion leaves the counter right for the next call. Host
 * functions trap the same way with a reason (rt_trap_host), and proc_exit
 * unwinds with RT_TRAP_EXIT. There is no signal handler: memory accesses are
 * checked in the generated code (rtconfig.h), so a SIGSEGV is a real crash
 * and costs the runner, as it should.
 *
 * Memory. A linear memory reserves its whole limit (the smaller of the
 * runner's cap and the module's declared maximum) as PROT_NONE address
 * space up front and makes pages readable and writable as it grows, so
 * `data` never moves and growing never copies. memory.grow past the limit,
 * or an mprotect the kernel refuses (RLIMIT_AS), returns -1 to the guest
 * (the spec's answer) and is remembered, so the host can call a trap that
 * follows an out-of-memory condition what it is.
 *
 * State is global because the generated code's is: one WebAssembly thread
 * per process.
 */
#include "rt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

uint32_t wasm_rt_call_stack_depth;

struct functype {
	uint32_t nparams;      /* parameter count */
	uint32_t nresults;     /* result count */
	wasm_rt_type_t *types; /* params then results */
};

static struct functype *g_types; /* the registry; index + 1 is a type id */
static uint32_t g_ntypes;
static bool g_initialized;                  /* wasm_rt_init was called */
static sigjmp_buf *g_target;                /* innermost rt_call */
static WASM_RT_UNWIND_TARGET *g_unwind;     /* innermost exception handler */
static uint32_t g_cap_pages = RT_MAX_PAGES; /* rt_set_memory_cap */
static char g_reason[512];                  /* last host trap's reason */
static uint32_t g_exit_code;                /* last proc_exit code */
static char g_grow[256];                    /* last refused memory.grow, or "" */

#define MAX_EXCEPTION_SIZE 65536u
static uint32_t g_tag_count;
static uint32_t g_exc_tag;
static uint32_t g_exc_size;
static uint8_t g_exc[MAX_EXCEPTION_SIZE];

/* What each memory reserved, to unmap it and to explain refusals. A module
 * has at most one memory (wasmbin refuses more), so this stays tiny. */
struct reservation {
	uint8_t *data;     /* start of the mapping */
	size_t bytes;      /* reserved bytes */
	uint32_t declared; /* the module's declared maximum pages */
};
static struct reservation g_res[4];

void rt_set_memory_cap(uint32_t pages)
{
	g_cap_pages = pages > RT_MAX_PAGES ? RT_MAX_PAGES : pages;
}

void wasm_rt_trap(wasm_rt_trap_t code)
{
	if (g_target == NULL) {
		static const char msg[] = "noetl-runner: wasm trap outside rt_call\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		abort();
	}
	siglongjmp(*g_target, (int)code);
}

int rt_call(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	sigjmp_buf *saved = g_target;
	WASM_RT_UNWIND_TARGET *saved_unwind = g_unwind;
	uint32_t depth = wasm_rt_call_stack_depth;
	int code = sigsetjmp(jb, 0);
	if (code == 0) {
		g_target = &jb;
		g_unwind = NULL;
		fn(arg);
	}
	g_target = saved;
	g_unwind = saved_unwind;
	wasm_rt_call_stack_depth = depth;
	return code;
}

void rt_trap_host(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_reason, sizeof(g_reason), fmt, ap);
	va_end(ap);
	wasm_rt_trap((wasm_rt_trap_t)code);
	__builtin_unreachable();
}

void rt_exit(uint32_t code)
{
	g_exit_code = code;
	snprintf(g_reason, sizeof(g_reason), "proc_exit(%u)", code);
	wasm_rt_trap((wasm_rt_trap_t)RT_TRAP_EXIT);
	__builtin_unreachable();
}

uint32_t rt_exit_code(void)
{
	return g_exit_code;
}

const char *rt_trap_reason(int code)
{
	if (code >= RT_TRAP_HOST)
		return g_reason;
	return wasm_rt_strerror((wasm_rt_trap_t)code);
}

const char *rt_grow_refusal(void)
{
	return g_grow[0] ? g_grow : NULL;
}

void rt_clear_grow_refusal(void)
{
	g_grow[0] = 0;
}

void wasm_rt_init(void)
{
	g_initialized = true;
}

bool wasm_rt_is_initialized(void)
{
	return g_initialized;
}

void rt_shutdown(void)
{
	for (uint32_t i = 0; i < g_ntypes; i++)
		free(g_types[i].types);
	free(g_types);
	g_types = NULL;
	g_ntypes = 0;
}

void wasm_rt_free(void)
{
	rt_shutdown();
	g_initialized = false;
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
	uint32_t n = params + results;
	wasm_rt_type_t *t = malloc((n ? n : 1) * sizeof(*t));
	if (t == NULL)
		rt_trap_host(RT_TRAP_OOM, "out of memory registering a function type");
	va_list ap;
	va_start(ap, results);
	for (uint32_t i = 0; i < n; i++)
		t[i] = (wasm_rt_type_t)va_arg(ap, int);
	va_end(ap);
	for (uint32_t i = 0; i < g_ntypes; i++) {
		if (g_types[i].nparams == params && g_types[i].nresults == results &&
		    memcmp(g_types[i].types, t, n * sizeof(*t)) == 0) {
			free(t);
			return i + 1;
		}
	}
	struct functype *grown = realloc(g_types, (g_ntypes + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(t);
		rt_trap_host(RT_TRAP_OOM, "out of memory registering a function type");
	}
	g_types = grown;
	g_types[g_ntypes] = (struct functype){params, results, t};
	return ++g_ntypes;
}

uint32_t wasm_rt_register_tag(uint32_t size)
{
	if (size > MAX_EXCEPTION_SIZE)
		wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
	return g_tag_count++;
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
	if (size > MAX_EXCEPTION_SIZE)
		wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
	g_exc_tag = tag;
	g_exc_size = size;
	if (size > 0)
		memcpy(g_exc, values, size);
}

void wasm_rt_throw(void)
{
	if (g_unwind == NULL)
		wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
	longjmp(*g_unwind, WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
	return g_unwind;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
	g_unwind = target;
}

uint32_t wasm_rt_exception_tag(void)
{
	return g_exc_tag;
}

uint32_t wasm_rt_exception_size(void)
{
	return g_exc_size;
}

void *wasm_rt_exception(void)
{
	return g_exc;
}

static struct reservation *find_reservation(const uint8_t *data)
{
	for (size_t i = 0; i < sizeof(g_res) / sizeof(g_res[0]); i++)
		if (g_res[i].data == data)
			return &g_res[i];
	return NULL;
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial, uint32_t max)
{
	uint32_t limit = max < g_cap_pages ? max : g_cap_pages;
	if (initial > limit)
		rt_trap_host(RT_TRAP_OOM,
		             "the module needs %u pages (%u KiB) of memory to start, more than its "
		             "limit of %u pages",
		             initial, initial * 64u, limit);
	struct reservation *r = find_reservation(NULL);
	if (r == NULL)
		rt_trap_host(RT_TRAP_OOM, "too many linear memories");
	size_t bytes = (size_t)(limit ? limit : 1) * RT_PAGE_SIZE;
	void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		rt_trap_host(RT_TRAP_OOM, "cannot reserve %zu MiB of address space for memory",
		             bytes >> 20);
	if (initial > 0 && mprotect(p, (size_t)initial * RT_PAGE_SIZE, PROT_READ | PROT_WRITE)) {
		munmap(p, bytes);
		rt_trap_host(RT_TRAP_OOM, "cannot commit %u pages of initial memory", initial);
	}
	*r = (struct reservation){p, bytes, max};
	memory->data = p;
	memory->pages = initial;
	memory->max_pages = limit;
	memory->size = initial * RT_PAGE_SIZE;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta)
{
	uint32_t old = memory->pages;
	uint64_t want = (uint64_t)old + delta;
	if (delta == 0)
		return old;
	struct reservation *r = find_reservation(memory->data);
	if (want > memory->max_pages || r == NULL) {
		uint32_t declared = r != NULL ? r->declared : 0;
		if (declared < g_cap_pages && declared == memory->max_pages)
			snprintf(g_grow, sizeof(g_grow),
			         "memory.grow by %u pages refused at %u pages: the module's "
			         "declared "
			         "maximum is %u pages",
			         delta, old, declared);
		else
			snprintf(g_grow, sizeof(g_grow),
			         "memory.grow by %u pages refused at %u pages: the memory limit is "
			         "%u pages (%u MiB)",
			         delta, old, memory->max_pages, memory->max_pages / 16u);
		return UINT32_MAX;
	}
	if (mprotect(memory->data + (size_t)old * RT_PAGE_SIZE, (size_t)delta * RT_PAGE_SIZE,
	             PROT_READ | PROT_WRITE) != 0) {
		snprintf(g_grow, sizeof(g_grow),
		         "memory.grow by %u pages refused at %u pages: the host could not "
		         "commit the memory",
		         delta, old);
		return UINT32_MAX;
	}
	memory->pages = (uint32_t)want;
	memory->size = (uint32_t)want * RT_PAGE_SIZE;
	return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory)
{
	struct reservation *r = find_reservation(memory->data);
	if (r == NULL || memory->data == NULL)
		return;
	munmap(r->data, r->bytes);
	*r = (struct reservation){0};
	memory->data = NULL;
	memory->size = 0;
	memory->pages = 0;
}

/* Tables are small; plain heap arrays that grow with realloc. */
#define DEFINE_TABLE(type)                                                                         \
	void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *table, uint32_t elements,   \
	                                     uint32_t max_elements)                                \
	{                                                                                          \
		table->data = calloc(elements ? elements : 1, sizeof(*table->data));               \
		if (table->data == NULL)                                                           \
			rt_trap_host(RT_TRAP_OOM, "cannot allocate a table of %u elements",        \
			             elements);                                                    \
		table->size = elements;                                                            \
		table->max_size = max_elements;                                                    \
	}                                                                                          \
	void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t *table)                          \
	{                                                                                          \
		free(table->data);                                                                 \
		table->data = NULL;                                                                \
		table->size = 0;                                                                   \
	}                                                                                          \
	uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t *table, uint32_t delta,      \
	                                     wasm_rt_##type##_t init)                              \
	{                                                                                          \
		uint32_t old = table->size;                                                        \
		uint64_t want = (uint64_t)old + delta;                                             \
		if (delta == 0)                                                                    \
			return old;                                                                \
		if (want > table->max_size || want > (1u << 24))                                   \
			return UINT32_MAX;                                                         \
		void *p = realloc(table->data, (size_t)want * sizeof(*table->data));               \
		if (p == NULL)                                                                     \
			return UINT32_MAX;                                                         \
		table->data = p;                                                                   \
		for (uint64_t i = old; i < want; i++)                                              \
			table->data[i] = init;                                                     \
		table->size = (uint32_t)want;                                                      \
		return old;                                                                        \
	}

DEFINE_TABLE(funcref)
DEFINE_TABLE(externref)

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
	switch (trap) {
	case WASM_RT_TRAP_NONE:
		return "no trap";
	case WASM_RT_TRAP_OOB:
		return "out-of-bounds access to linear memory or a table";
	case WASM_RT_TRAP_INT_OVERFLOW:
		return "integer overflow on division or truncation";
	case WASM_RT_TRAP_DIV_BY_ZERO:
		return "integer division by zero";
	case WASM_RT_TRAP_INVALID_CONVERSION:
		return "conversion of NaN to an integer";
	case WASM_RT_TRAP_UNREACHABLE:
		return "unreachable instruction executed";
	case WASM_RT_TRAP_CALL_INDIRECT:
		return "invalid indirect call (null, out of range or wrong type)";
	case WASM_RT_TRAP_UNCAUGHT_EXCEPTION:
		return "uncaught exception";
	case WASM_RT_TRAP_EXHAUSTION:
		return "call stack exhausted";
	}
	return "unknown trap";
}
