/*
 * guest: one module, loaded and called through the Jobicolet ABI (the
 * module ABI of Jobico, unchanged).
 *
 * Start-up: dlopen the compiled module, register its types, instantiate it
 * (memory capped by the runner's limit), then call `_initialize` (reactor
 * modules, e.g. clang -mexec-model=reactor) or else `_start` (command
 * modules, e.g. TinyGo; a proc_exit(0) there is a normal end), then `init`.
 *
 * One event, as Jobico's host does it:
 *   p  = malloc(len)            the payload's home in guest memory
 *   copy the payload to p
 *   rp = malloc(16)             where the handler writes its result
 *   event(rp, p, len)           or, for a multi-value export,
 *                               (code, packed) = event(p, len)
 *   code = u64 at rp, packed = u64 at rp + 8 (little-endian)
 *   result = memory[packed >> 32 .. + (packed & 0xffffffff)], copied out
 *   free(p), free(rp), free(result pointer)   each as free(ptr) or, if the
 *                               module's free takes two parameters (ver() 1),
 *                               free(ptr, size)
 * Every pointer and length that comes from the guest is checked against
 * its memory before use; a bad one fails the event (RT_TRAP_ABI), it never
 * reaches host memory.
 */
#include "guest.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "guest_impl.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct noetl_shim_export *find_export(const struct guest *g, const char *name)
{
	for (unsigned i = 0; i < g->shim->nexports; i++)
		if (strcmp(g->shim->exports[i].name, name) == 0)
			return &g->shim->exports[i];
	return NULL;
}

/* "iii>" as "(i32, i32, i32) -> ()", for messages. */
static void sig_text(const char *sig, char *buf, size_t cap)
{
	size_t at = 0;
	bool first = true;
	buf[0] = 0;
	at += (size_t)snprintf(buf, cap, "(");
	for (const char *s = sig; *s && at < cap; s++) {
		const char *t;
		switch (*s) {
		case '>':
			at += (size_t)snprintf(buf + at, cap - at, ") -> (");
			first = true;
			continue;
		case 'i':
			t = "i32";
			break;
		case 'I':
			t = "i64";
			break;
		case 'f':
			t = "f32";
			break;
		case 'F':
			t = "f64";
			break;
		case 'v':
			t = "v128";
			break;
		default:
			t = "ref";
			break;
		}
		at += (size_t)snprintf(buf + at, cap - at, "%s%s", first ? "" : ", ", t);
		first = false;
	}
	if (at < cap)
		snprintf(buf + at, cap - at, ")");
}

/* Looks up an optional export that must have type want; *fn stays NULL if
 * it is absent. Returns false (with a message) if it has another type. */
static bool bind(struct guest *g, const char *name, const char *want, bool required,
                 void (**fn)(void), char *err, size_t cap)
{
	const struct noetl_shim_export *x = find_export(g, name);
	*fn = NULL;
	if (x == NULL) {
		if (required)
			snprintf(
			        err, cap,
			        "the module does not export the function '%s', which the Jobicolet "
			        "ABI requires",
			        name);
		return !required;
	}
	if (strcmp(x->sig, want) != 0 || x->fn == NULL) {
		char have[128], need[128];
		sig_text(x->sig, have, sizeof(have));
		sig_text(want, need, sizeof(need));
		snprintf(err, cap, "the module's export '%s' has type %s; the ABI needs %s", name,
		         have, need);
		return false;
	}
	*fn = x->fn;
	return true;
}

static void do_init_module(void *arg)
{
	const struct noetl_shim *shim = arg;
	shim->init_module();
}

static void do_instantiate(void *arg)
{
	struct guest *g = arg;
	g->shim->instantiate(g->instance, g);
}

struct call0 {
	struct guest *g;
	void (*fn)(void *);
};

static void do_call0(void *arg)
{
	struct call0 *c = arg;
	c->fn(c->g->instance);
}

static void do_ver(void *arg)
{
	struct guest *g = arg;
	(void)g->ver_fn(g->instance);
}

/* Maps a trap code from rt_call to a status and a reason. */
static int trap_status(int code, const char *where, char *reason, size_t cap)
{
	const char *grow = rt_grow_refusal();
	if (code == RT_TRAP_OOM) {
		snprintf(reason, cap, "out of memory in '%s': %s", where, rt_trap_reason(code));
		return ENGINE_OOM;
	}
	if (code == RT_TRAP_EXIT) {
		snprintf(reason, cap, "'%s' called proc_exit(%u)", where, rt_exit_code());
		return rt_exit_code() == 0 ? ENGINE_OK : ENGINE_ERROR;
	}
	if (grow != NULL) {
		snprintf(reason, cap, "out of memory in '%s': %s, then trap: %s", where, grow,
		         rt_trap_reason(code));
		return ENGINE_OOM;
	}
	if (code == RT_TRAP_ABI)
		snprintf(reason, cap, "abi violation in '%s': %s", where, rt_trap_reason(code));
	else
		snprintf(reason, cap, "trap: %s in '%s'", rt_trap_reason(code), where);
	return ENGINE_TRAP;
}

/* Makes a fresh instance and runs the start-up exports. Returns an
 * engine_status; on failure reason says why. */
static int instantiate(struct guest *g, char *reason, size_t cap)
{
	if (g->instantiated) {
		g->shim->free_instance(g->instance);
		g->instantiated = false;
	}
	memset(g->instance, 0, g->shim->instance_size);
	g->mem = NULL;
	rt_set_memory_cap(g->lim.memory_pages);
	rt_clear_grow_refusal();
	g->instantiated = true;
	int code = rt_call(do_instantiate, g);
	if (code != 0)
		return trap_status(code, "instantiate", reason, cap);
	g->mem = g->shim->memory(g->instance);
	g->dirty = false;
	memset(g->closed, 0, sizeof(g->closed));
	struct {
		void (*fn)(void *);
		const char *name;
	} steps[] = {{g->start_fn, find_export(g, "_initialize") ? "_initialize" : "_start"},
	             {g->init_fn, "init"}};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].fn == NULL)
			continue;
		struct call0 c = {g, steps[i].fn};
		code = rt_call(do_call0, &c);
		if (code == RT_TRAP_EXIT && rt_exit_code() == 0)
			continue; /* a command module's _start ends with proc_exit(0) */
		if (code != 0) {
			g->dirty = true;
			int st = trap_status(code, steps[i].name, reason, cap);
			return st == ENGINE_OK ? ENGINE_ERROR : st;
		}
	}
	if (g->ver_fn != NULL && (code = rt_call(do_ver, g)) != 0) {
		g->dirty = true;
		return trap_status(code, "ver", reason, cap);
	}
	return ENGINE_OK;
}

int guest_open(const char *path, const struct guest_limits *lim, struct guest **out, int *status,
               char *err, size_t errcap)
{
	struct guest *g = calloc(1, sizeof(*g));
	*status = ENGINE_COMPILE;
	if (g == NULL) {
		snprintf(err, errcap, "out of memory");
		return -ENOMEM;
	}
	g->lim = *lim;
	g->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (g->dl == NULL) {
		snprintf(err, errcap, "cannot load the compiled module: %s", dlerror());
		goto fail;
	}
	g->shim = dlsym(g->dl, SHIMABI_SYMBOL);
	if (g->shim == NULL || g->shim->abi != SHIMABI_VERSION) {
		snprintf(err, errcap, "'%s' is not a module compiled for this runner (shim ABI)",
		         path);
		goto fail;
	}
	void (*fn)(void);
	if (!bind(g, "malloc", "i>i", true, &fn, err, errcap))
		goto fail;
	g->malloc_fn = (uint32_t(*)(void *, uint32_t))fn;
	const struct noetl_shim_export *fx = find_export(g, "free");
	if (!bind(g, "free", fx != NULL && strcmp(fx->sig, "ii>") == 0 ? "ii>" : "i>", true, &fn,
	          err, errcap))
		goto fail;
	if (strcmp(fx->sig, "ii>") == 0)
		g->free2 = (void (*)(void *, uint32_t, uint32_t))fn;
	else
		g->free1 = (void (*)(void *, uint32_t))fn;
	if (!bind(g, "init", ">", false, &fn, err, errcap))
		goto fail;
	g->init_fn = (void (*)(void *))fn;
	if (!bind(g, "ver", ">i", false, &fn, err, errcap))
		goto fail;
	g->ver_fn = (uint32_t(*)(void *))fn;
	if (!bind(g, find_export(g, "_initialize") ? "_initialize" : "_start", ">", false, &fn, err,
	          errcap))
		goto fail;
	g->start_fn = (void (*)(void *))fn;
	g->instance = aligned_alloc(64, (g->shim->instance_size + 63) / 64 * 64);
	if (g->instance == NULL) {
		snprintf(err, errcap, "out of memory");
		goto fail;
	}
	wasm_rt_init();
	int code = rt_call(do_init_module, (void *)g->shim);
	if (code != 0) {
		*status = trap_status(code, "init_module", err, errcap);
		goto fail;
	}
	*status = instantiate(g, err, errcap);
	if (*status != ENGINE_OK)
		goto fail;
	*out = g;
	return 0;
fail:
	if (*status == ENGINE_OK)
		*status = ENGINE_COMPILE;
	guest_close(g);
	return -EINVAL;
}

void guest_close(struct guest *g)
{
	if (g == NULL)
		return;
	if (g->instantiated)
		g->shim->free_instance(g->instance);
	free(g->instance);
	for (uint32_t i = 0; i < g->nlogs; i++)
		free(g->logs[i].text);
	free(g->logs);
	free(g->result);
	free(g->event_name);
	rt_shutdown();
	if (g->dl != NULL)
		dlclose(g->dl);
	free(g);
}

size_t guest_logs(const struct guest *g, const struct guest_log **logs)
{
	*logs = g->logs;
	return g->nlogs;
}

static void reset_event_state(struct guest *g)
{
	for (uint32_t i = 0; i < g->nlogs; i++)
		free(g->logs[i].text);
	g->nlogs = 0;
	g->log_bytes = 0;
	g->dropped_lines = 0;
	g->dropped_bytes = 0;
	g->out[0].len = 0;
	g->out[1].len = 0;
	free(g->result);
	g->result = NULL;
	g->result_len = 0;
	rt_clear_grow_refusal();
}

/* Binds the event function by name (cached across events). */
static bool bind_event(struct guest *g, const char *fn, char *err, size_t cap)
{
	if (g->event_name != NULL && strcmp(g->event_name, fn) == 0)
		return true;
	free(g->event_name);
	g->event_name = NULL;
	g->event3 = NULL;
	g->event_mv = NULL;
	const struct noetl_shim_export *x = find_export(g, fn);
	if (x == NULL || x->fn == NULL) {
		snprintf(err, cap, "the module does not export a callable function '%s'", fn);
		return false;
	}
	if (strcmp(x->sig, "iii>") == 0) {
		g->event3 = (void (*)(void *, uint32_t, uint32_t, uint32_t))x->fn;
	} else if (strcmp(x->sig, "ii>II") == 0) {
		g->event_mv = (void (*)(void *, uint32_t, uint32_t, uint64_t *))x->fn;
	} else {
		char have[128];
		sig_text(x->sig, have, sizeof(have));
		snprintf(err, cap,
		         "the module's export '%s' has type %s; an event handler needs (i32, i32, "
		         "i32) -> () or (i32, i32) -> (i64, i64)",
		         fn, have);
		return false;
	}
	g->event_name = strdup(fn);
	return g->event_name != NULL;
}

struct call {
	struct guest *g;
	const uint8_t *data;
	uint32_t len;
	uint64_t code;
	uint32_t too_big; /* result length over the limit, or 0 */
};

static uint32_t guest_malloc(struct guest *g, uint32_t size, const char *what)
{
	uint32_t p = g->malloc_fn(g->instance, size);
	if (p == 0)
		rt_trap_host(RT_TRAP_OOM, "the guest's malloc(%u) returned 0 for %s", size, what);
	if (!guest_in_bounds(g, p, size))
		rt_trap_host(RT_TRAP_ABI,
		             "malloc(%u) returned %u, outside the guest's %u bytes of memory", size,
		             p, g->mem->size);
	return p;
}

static void guest_free(struct guest *g, uint32_t p, uint32_t size)
{
	if (g->free2 != NULL)
		g->free2(g->instance, p, size);
	else
		g->free1(g->instance, p);
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void do_event(void *arg)
{
	struct call *c = arg;
	struct guest *g = c->g;
	uint32_t p = guest_malloc(g, c->len, "the event payload");
	if (c->len > 0)
		memcpy(g->mem->data + p, c->data, c->len);
	uint64_t code, packed;
	uint32_t rp = 0;
	if (g->event3 != NULL) {
		rp = guest_malloc(g, 16, "the result");
		memset(g->mem->data + rp, 0, 16);
		g->event3(g->instance, rp, p, c->len);
		/* memory only grows, so rp is still in bounds */
		code = load64(g->mem->data + rp);
		packed = load64(g->mem->data + rp + 8);
	} else {
		uint64_t mv[2];
		g->event_mv(g->instance, p, c->len, mv);
		code = mv[0];
		packed = mv[1];
	}
	uint32_t rptr = (uint32_t)(packed >> 32), rlen = (uint32_t)packed;
	if (rlen > g->lim.max_result_bytes) {
		c->too_big = rlen;
	} else if (rlen > 0) {
		if (!guest_in_bounds(g, rptr, rlen))
			rt_trap_host(RT_TRAP_ABI,
			             "the result (pointer %u, length %u) reaches outside the "
			             "guest's %u bytes of memory",
			             rptr, rlen, g->mem->size);
		g->result = malloc(rlen);
		if (g->result == NULL)
			rt_trap_host(RT_TRAP_OOM, "the host cannot hold a result of %u bytes",
			             rlen);
		memcpy(g->result, g->mem->data + rptr, rlen);
		g->result_len = rlen;
	}
	c->code = code;
	guest_free(g, p, c->len);
	if (rp != 0)
		guest_free(g, rp, 16);
	if (rptr != 0 && rptr != p && rptr != rp) /* an echo may hand back its input */
		guest_free(g, rptr, rlen);
}

int guest_event(struct guest *g, const char *fn, const uint8_t *data, uint32_t len,
                struct guest_result *res)
{
	memset(res, 0, sizeof(*res));
	reset_event_state(g);
	int64_t t0 = mono_ns();
	if (!bind_event(g, fn, res->reason, sizeof(res->reason))) {
		res->status = ENGINE_COMPILE;
		return 0;
	}
	if (g->dirty) {
		char why[sizeof(res->reason) - 100];
		int st = instantiate(g, why, sizeof(why));
		if (st != ENGINE_OK) {
			res->status = st;
			snprintf(res->reason, sizeof(res->reason),
			         "the module could not be started again after a failure: %s", why);
			guest_flush_stdio(g);
			return 0;
		}
	}
	struct call c = {.g = g, .data = data, .len = len};
	int code = rt_call(do_event, &c);
	res->duration_ns = mono_ns() - t0;
	guest_flush_stdio(g);
	if (code != 0) {
		g->dirty = true;
		res->status = trap_status(code, fn, res->reason, sizeof(res->reason));
		res->code = code == RT_TRAP_EXIT ? rt_exit_code() : 0;
		if (res->status == ENGINE_OK)
			res->reason[0] = 0; /* proc_exit(0) is a plain success */
		free(g->result);
		g->result = NULL;
		g->result_len = 0;
		return 0;
	}
	res->code = c.code;
	res->data = g->result;
	res->len = g->result_len;
	if (c.too_big) {
		res->status = ENGINE_ERROR;
		snprintf(res->reason, sizeof(res->reason),
		         "the result of %u bytes is larger than the limit of %u bytes", c.too_big,
		         g->lim.max_result_bytes);
	} else if (c.code != 0) {
		res->status = ENGINE_ERROR;
		snprintf(res->reason, sizeof(res->reason), "'%s' returned code %llu", fn,
		         (unsigned long long)c.code);
	} else {
		res->status = ENGINE_OK;
	}
	return 0;
}

/* Copies text, replacing bytes that are not valid UTF-8 (and NULs) by '?'. */
static char *clean_utf8(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	if (o == NULL)
		return NULL;
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80             ? 0
		           : (c & 0xe0) == 0xc0 ? 1
		           : (c & 0xf0) == 0xe0 ? 2
		           : (c & 0xf8) == 0xf0 ? 3
		                                : 9;
		bool ok = c != 0 && k != 9 && n - i > k && !(k == 1 && c < 0xc2);
		for (size_t j = 1; ok && j <= k; j++)
			ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
		if (!ok) {
			o[i++] = '?';
			continue;
		}
		memcpy(o + i, s + i, k + 1);
		i += k + 1;
	}
	o[n] = 0;
	return o;
}

void guest_log_add(struct guest *g, unsigned level, const char *text, size_t len)
{
	if (len > GUEST_LINE_MAX)
		len = GUEST_LINE_MAX;
	if (g->nlogs >= GUEST_LINES_MAX || g->log_bytes + len > g->lim.max_log_bytes) {
		g->dropped_lines++;
		g->dropped_bytes += len;
		return;
	}
	if (g->nlogs == g->caplogs) {
		uint32_t cap = g->caplogs ? g->caplogs * 2 : 16;
		struct guest_log *l = realloc(g->logs, cap * sizeof(*l));
		if (l == NULL) {
			g->dropped_lines++;
			return;
		}
		g->logs = l;
		g->caplogs = cap;
	}
	char *t = clean_utf8(text, len);
	if (t == NULL) {
		g->dropped_lines++;
		return;
	}
	g->logs[g->nlogs++] = (struct guest_log){
	        .level = level > 255 ? 255 : (uint8_t)level,
	        .time_ms = wall_ms(),
	        .len = (uint32_t)len,
	        .text = t,
	};
	g->log_bytes += len;
}

void guest_write_stdio(struct guest *g, int fd, const uint8_t *p, size_t len)
{
	struct linebuf *lb = &g->out[fd == 2];
	unsigned level = fd == 2 ? GUEST_ERROR : GUEST_INFO;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n') {
			guest_log_add(g, level, lb->buf, lb->len);
			lb->len = 0;
			continue;
		}
		if (lb->len == sizeof(lb->buf)) {
			guest_log_add(g, level, lb->buf, lb->len);
			lb->len = 0;
		}
		lb->buf[lb->len++] = (char)p[i];
	}
}

void guest_flush_stdio(struct guest *g)
{
	for (int i = 0; i < 2; i++) {
		if (g->out[i].len > 0)
			guest_log_add(g, i ? GUEST_ERROR : GUEST_INFO, g->out[i].buf,
			              g->out[i].len);
		g->out[i].len = 0;
	}
	if (g->dropped_lines > 0) {
		char msg[160];
		int n = snprintf(
		        msg, sizeof(msg),
		        "log truncated: %llu lines (%llu bytes) over the limit of %u bytes "
		        "or %u lines were dropped",
		        (unsigned long long)g->dropped_lines, (unsigned long long)g->dropped_bytes,
		        g->lim.max_log_bytes, GUEST_LINES_MAX);
		uint32_t lim = g->lim.max_log_bytes;
		g->lim.max_log_bytes = UINT32_MAX; /* the notice itself always fits */
		g->dropped_lines = 0;
		if (g->nlogs >= GUEST_LINES_MAX) {
			/* make room: the notice replaces the last line */
			g->nlogs--;
			g->log_bytes -= g->logs[g->nlogs].len;
			free(g->logs[g->nlogs].text);
		}
		guest_log_add(g, GUEST_WARN, msg, (size_t)n);
		g->lim.max_log_bytes = lim;
	}
}
