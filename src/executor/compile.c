/*
 * compile: WebAssembly bytes to a shared object the runner can load.
 *
 * Pipeline, in a fresh temporary directory inside the cache directory:
 *   module.wasm  --wasm2c -n m-->  m.c, m.h
 *   shim.c       (shimgen: the fixed-interface glue, see shimabi.h)
 *   cc -O2 -fPIC -shared -fno-optimize-sibling-calls -frounding-math
 *      -fsignaling-nans RTCONFIG_CFLAGS m.c shim.c -lm  -->  m.so
 * then m.so is renamed to its final name, which is atomic within one file
 * system, so a reader sees no file or a whole one, never a partial one.
 * The floating-point flags keep the C compiler from folding or reordering
 * what wasm requires bit-exact (NaN payloads, rounding); no sibling-call
 * optimization keeps the call-depth counter honest.
 *
 * Cache key: <cache>/<sha256 of the bytes>-<toolchain id>.so, where the
 * toolchain id hashes `wasm2c --version`, `cc --version`, the flags and the
 * runtime ABI (rtconfig.h, shimabi.h). A new compiler or runtime thus
 * misses the cache instead of loading something built for another one, and a
 * restart with the same toolchain compiles nothing.
 *
 * The cache is bounded (compile_prune): least recently used objects go
 * first, "use" being the later of the mtime (written) and the atime, which
 * compile_touch sets explicitly on every cache hit and runner start (so
 * noatime mounts do not matter, and the mtime stays the build time). Objects
 * of loaded modules and objects used in the last two hours stay, whatever
 * the bound: the first are what runners load; the second are what other
 * processes sharing the cache have loaded (each engine touches its loaded
 * modules' objects every hour, so they never look older than that) or a
 * compile that is about to be loaded.
 *
 * Tools run with a time limit in their own process group (so the compiler's
 * children die with it) and their output goes to a file, of which a bounded
 * part becomes the error message.
 */
#include "compile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostabi.h"
#include "log.h"
#include "rtconfig.h"
#include "shimabi.h"
#include "shimgen.h"
#include "util.h"

extern char **environ;

#define WASM2C_VERSION  "1.0.32"
#define TOOL_OUTPUT_MAX 2000 /* bytes of a tool's output kept in an error */

static const char *const cc_flags[] = {
        "-O2",
        "-fPIC",
        "-shared",
        "-fno-optimize-sibling-calls",
        "-frounding-math",
        "-fsignaling-nans",
        "-fvisibility=hidden",
        "-g0",
        "-w",
        "-Wl,-z,noexecstack",
        RTCONFIG_CFLAGS,
};

struct compile {
	char *dir;    /* the cache directory */
	char *cc;     /* C compiler */
	char *wasm2c; /* wasm2c */
	uint32_t timeout_ms;
	char toolchain[17]; /* hex fingerprint of the toolchain */
	pthread_mutex_t mu; /* serializes compile_prune; guards stats */
	struct compile_cache_stats stats;
};

static int errf(char **err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int errf(char **err, int rc, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(err, fmt, ap) < 0)
			*err = NULL;
		va_end(ap);
	}
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void rmtree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads up to cap - 1 bytes of a file, NUL-terminated, trailing space cut. */
static void read_head(const char *path, char *buf, size_t cap)
{
	buf[0] = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
}

/*
 * Runs argv with stdin from /dev/null and stdout+stderr into logpath, in its
 * own process group, for at most timeout_ms. Returns 0 on exit status 0;
 * otherwise -EIO with *err naming the tool, how it ended and its output.
 */
static int run_tool(uint32_t timeout_ms, char *const argv[], const char *logpath, char **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	pid_t pid;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                      POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0)
		return errf(err, rc == ENOENT ? -ENOENT : -EIO, "cannot run '%s': %s", argv[0],
		            strerror(rc));
	int64_t deadline = util_mono_ms() + timeout_ms;
	int status = 0;
	int64_t nap = 1;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return errf(err, -EIO, "waiting for '%s': %s", argv[0], strerror(errno));
		if (util_mono_ms() >= deadline) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return errf(err, -EIO, "'%s' did not finish within %u ms and was killed",
			            argv[0], timeout_ms);
		}
		util_sleep_ms(nap);
		nap = nap < 20 ? nap * 2 : 20;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char out[TOOL_OUTPUT_MAX + 1];
	read_head(logpath, out, sizeof(out));
	if (WIFSIGNALED(status))
		return errf(err, -EIO, "'%s' was killed by signal %d: %s", argv[0],
		            WTERMSIG(status), out);
	return errf(err, -EIO, "'%s' failed with exit status %d: %s", argv[0], WEXITSTATUS(status),
	            out);
}

#define VERSION_TIMEOUT_MS 10000

/* Runs `tool --version` into buf. */
static int tool_version(const struct compile *c, const char *tool, const char *tmp, char *buf,
                        size_t cap, char **err)
{
	char log[4096];
	snprintf(log, sizeof(log), "%s/version.txt", tmp);
	char *argv[] = {(char *)tool, "--version", NULL};
	/* not the compile limit, which may be tight: a version is asked for once,
	 * at start, where a loaded machine must not make the executor fail */
	uint32_t limit = c->timeout_ms > VERSION_TIMEOUT_MS ? c->timeout_ms : VERSION_TIMEOUT_MS;
	int rc = run_tool(limit, argv, log, err);
	if (rc == 0)
		read_head(log, buf, cap);
	return rc;
}

/* Removes temporary directories older than a compile could take. */
static void clean_stale(const struct compile *c)
{
	static const char prefix[] = ".tmp-";
	DIR *d = opendir(c->dir);
	if (d == NULL)
		return;
	struct dirent *e;
	time_t now = time(NULL);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) != 0)
			continue;
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", c->dir, e->d_name);
		if (stat(path, &st) == 0 &&
		    now - st.st_mtime > (time_t)(c->timeout_ms / 1000) * 2 + 60)
			rmtree(path);
	}
	closedir(d);
}

int compile_create(const char *cache_dir, const char *cc, const char *wasm2c, uint32_t timeout_ms,
                   struct compile **out, char **err)
{
	if (cache_dir == NULL || cache_dir[0] == 0)
		return errf(err, -EINVAL, "no compile cache directory given");
	struct compile *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->dir = strdup(cache_dir);
	c->cc = strdup(cc ? cc : "cc");
	c->wasm2c = strdup(wasm2c ? wasm2c : "wasm2c");
	c->timeout_ms = timeout_ms ? timeout_ms : 300000;
	pthread_mutex_init(&c->mu, NULL);
	char tmp[4096] = "";
	int rc = -ENOMEM;
	if (c->dir == NULL || c->cc == NULL || c->wasm2c == NULL)
		goto fail;
	if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
		rc = errf(err, -errno, "cannot create the compile cache '%s': %s", c->dir,
		          strerror(errno));
		goto fail;
	}
	clean_stale(c);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", c->dir);
	if (mkdtemp(tmp) == NULL) {
		rc = errf(err, -errno, "cannot write in the compile cache '%s': %s", c->dir,
		          strerror(errno));
		tmp[0] = 0;
		goto fail;
	}
	char wv[256], ccv[1024];
	if ((rc = tool_version(c, c->wasm2c, tmp, wv, sizeof(wv), err)) != 0)
		goto fail;
	if (strcmp(wv, WASM2C_VERSION) != 0) {
		rc = errf(err, -EINVAL,
		          "'%s' is wabt %s; the runtime implements wabt " WASM2C_VERSION
		          "'s wasm-rt.h, install that version",
		          c->wasm2c, wv);
		goto fail;
	}
	if ((rc = tool_version(c, c->cc, tmp, ccv, sizeof(ccv), err)) != 0)
		goto fail;
	char *id = NULL;
	if (asprintf(&id, "%s\n%u\n%s\n%s\n", RTCONFIG_ABI, SHIMABI_VERSION, wv, ccv) < 0)
		goto fail;
	size_t idlen = strlen(id);
	for (size_t i = 0; i < sizeof(cc_flags) / sizeof(cc_flags[0]); i++) {
		size_t fl = strlen(cc_flags[i]);
		char *grown = realloc(id, idlen + fl + 2);
		if (grown == NULL) {
			free(id);
			goto fail;
		}
		id = grown;
		memcpy(id + idlen, cc_flags[i], fl);
		id[idlen + fl] = '\n';
		idlen += fl + 1;
		id[idlen] = 0;
	}
	char hex[65];
	util_sha256_hex(id, idlen, hex);
	free(id);
	memcpy(c->toolchain, hex, 16);
	c->toolchain[16] = 0;
	rmtree(tmp);
	*out = c;
	return 0;
fail:
	if (tmp[0])
		rmtree(tmp);
	compile_destroy(c);
	return rc;
}

void compile_destroy(struct compile *c)
{
	if (c == NULL)
		return;
	free(c->dir);
	free(c->cc);
	free(c->wasm2c);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

const char *compile_toolchain_id(const struct compile *c)
{
	return c->toolchain;
}

static const struct {
	const char *module;
	const char *name;
	const char *sig;
} host_funcs[] = {
#define X(m, n, s) {m, n, s},
        HOSTABI_FUNCS(X)
#undef X
};

static const char *kind_name(uint8_t k)
{
	static const char *names[] = {"function", "table", "memory", "global", "tag"};
	return k < 5 ? names[k] : "item";
}

int compile_check(const struct wasmbin *m, char **err)
{
	char buf[1024];
	size_t at = 0;
	unsigned bad = 0;
	for (uint32_t i = 0; i < m->nimports; i++) {
		const struct wasmbin_import *im = &m->imports[i];
		const char *why = "which the host does not provide";
		char have[256] = "", want[256] = "";
		if (im->kind == WASMBIN_FUNC) {
			char sig[2100];
			shimgen_sig(&m->types[im->type], sig, sizeof(sig));
			size_t k;
			for (k = 0; k < sizeof(host_funcs) / sizeof(host_funcs[0]); k++)
				if (strcmp(host_funcs[k].module, im->module) == 0 &&
				    strcmp(host_funcs[k].name, im->name) == 0)
					break;
			if (k < sizeof(host_funcs) / sizeof(host_funcs[0]) &&
			    strcmp(host_funcs[k].sig, sig) == 0)
				continue;
			wasmbin_type_string(&m->types[im->type], have, sizeof(have));
			if (k < sizeof(host_funcs) / sizeof(host_funcs[0])) {
				snprintf(want, sizeof(want), "but the host's has a different type");
				why = want;
			}
		}
		if (bad++ < 4 && at < sizeof(buf))
			at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s'%s.%s' (%s%s%s), %s",
			                       bad > 1 ? "; " : "", im->module, im->name,
			                       kind_name(im->kind), have[0] ? " " : "", have, why);
	}
	if (bad > 0)
		return errf(err, -EINVAL,
		            "the module imports %s%s; a Jobicolet may import only env.log and "
		            "wasi_snapshot_preview1 functions",
		            buf, bad > 4 ? " and more" : "");
	if (m->nmemories == 0 || wasmbin_find_export(m, "memory", WASMBIN_MEMORY) == NULL) {
		bool any = false;
		for (uint32_t i = 0; i < m->nexports; i++)
			any |= m->exports[i].kind == WASMBIN_MEMORY;
		if (!any)
			return errf(err, -EINVAL,
			            "the module does not export a memory; a Jobicolet exports its "
			            "memory as \"memory\"");
	}
	const struct wasmbin_export *x = wasmbin_find_export(m, "malloc", WASMBIN_FUNC);
	if (x == NULL || !wasmbin_type_is(wasmbin_func_type(m, x->index), "i", "i"))
		return errf(err, -EINVAL,
		            "the module does not export malloc (i32) -> i32, which the Jobicolet "
		            "ABI needs to pass the event payload");
	x = wasmbin_find_export(m, "free", WASMBIN_FUNC);
	if (x == NULL || !(wasmbin_type_is(wasmbin_func_type(m, x->index), "i", "") ||
	                   wasmbin_type_is(wasmbin_func_type(m, x->index), "ii", "")))
		return errf(err, -EINVAL,
		            "the module does not export free (i32) -> () or (i32, i32) -> (), "
		            "which the Jobicolet ABI needs");
	return 0;
}

static char *cache_path(const struct compile *c, const char *sha)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s-%s.so", c->dir, sha, c->toolchain) < 0)
		return NULL;
	return p;
}

static bool valid_sha(const char *sha)
{
	if (strlen(sha) != 64)
		return false;
	return strspn(sha, "0123456789abcdef") == 64;
}

int compile_evict(struct compile *c, const char *sha)
{
	if (!valid_sha(sha))
		return -EINVAL;
	char *p = cache_path(c, sha);
	if (p == NULL)
		return -ENOMEM;
	int rc = unlink(p) == 0 || errno == ENOENT ? 0 : -errno;
	free(p);
	return rc;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return -errno;
	size_t w = fwrite(data, 1, len, f);
	int rc = fclose(f);
	return w == len && rc == 0 ? 0 : -EIO;
}

int compile_module(struct compile *c, const struct wasmbin *info, const void *wasm, size_t len,
                   const char *sha, char **path, bool *compiled, char **err)
{
	if (!valid_sha(sha))
		return errf(err, -EINVAL, "'%s' is not a lowercase hex SHA-256", sha);
	char *final = cache_path(c, sha);
	if (final == NULL)
		return -ENOMEM;
	if (access(final, R_OK) == 0) {
		compile_touch(final);
		*compiled = false;
		*path = final;
		return 0;
	}
	char tmp[4096], f_wasm[4200], f_c[4200], f_shim[4200], f_so[4200], f_log[4200];
	snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", c->dir);
	int rc;
	if (mkdtemp(tmp) == NULL) {
		rc = errf(err, -errno, "cannot write in the compile cache '%s': %s", c->dir,
		          strerror(errno));
		free(final);
		return rc;
	}
	snprintf(f_wasm, sizeof(f_wasm), "%s/module.wasm", tmp);
	snprintf(f_c, sizeof(f_c), "%s/" SHIMGEN_MODULE ".c", tmp);
	snprintf(f_shim, sizeof(f_shim), "%s/shim.c", tmp);
	snprintf(f_so, sizeof(f_so), "%s/" SHIMGEN_MODULE ".so", tmp);
	snprintf(f_log, sizeof(f_log), "%s/tool.log", tmp);
	if ((rc = write_file(f_wasm, wasm, len)) != 0) {
		rc = errf(err, rc, "cannot write '%s': %s", f_wasm, strerror(-rc));
		goto out;
	}
	char *w2c[] = {c->wasm2c, f_wasm, "-n", SHIMGEN_MODULE, "-o", f_c, NULL};
	if ((rc = run_tool(c->timeout_ms, w2c, f_log, err)) != 0)
		goto out;
	FILE *f = fopen(f_shim, "w");
	if (f == NULL) {
		rc = errf(err, -errno, "cannot write '%s': %s", f_shim, strerror(errno));
		goto out;
	}
	char why[256];
	rc = shimgen_write(info, f, why, sizeof(why));
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc != 0) {
		rc = errf(err, rc, "%s", rc == -EINVAL ? why : "cannot write the module's glue");
		goto out;
	}
	enum { NFLAGS = sizeof(cc_flags) / sizeof(cc_flags[0]) };
	char *ccv[NFLAGS + 8];
	size_t k = 0;
	ccv[k++] = c->cc;
	for (size_t i = 0; i < NFLAGS; i++)
		ccv[k++] = (char *)cc_flags[i];
	ccv[k++] = "-o";
	ccv[k++] = f_so;
	ccv[k++] = f_c;
	ccv[k++] = f_shim;
	ccv[k++] = "-lm";
	ccv[k] = NULL;
	if ((rc = run_tool(c->timeout_ms, ccv, f_log, err)) != 0)
		goto out;
	if (rename(f_so, final) != 0) {
		rc = errf(err, -errno, "cannot move the compiled module to '%s': %s", final,
		          strerror(errno));
		goto out;
	}
	log_info("executor: compiled module %.12s into %s", sha, final);
	*compiled = true;
	*path = final;
	final = NULL;
out:
	rmtree(tmp);
	free(final);
	return rc;
}

void compile_touch(const char *path)
{
	const struct timespec t[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_OMIT}};
	utimensat(AT_FDCWD, path, t, 0); /* best effort: it only orders pruning */
}

struct entry {
	char sha[65];
	char toolchain[17];
	uint64_t size;
	time_t used; /* later of mtime and atime */
};

/* "<64 hex>-<16 hex>.so", a compiled object of any toolchain. */
static bool parse_entry(const char *name, struct entry *out)
{
	size_t n = strlen(name);
	if (n != 64 + 1 + 16 + 3 || name[64] != '-' || strcmp(name + 81, ".so") != 0 ||
	    strspn(name, "0123456789abcdef") != 64 || strspn(name + 65, "0123456789abcdef") != 16)
		return false;
	memcpy(out->sha, name, 64);
	out->sha[64] = 0;
	memcpy(out->toolchain, name + 65, 16);
	out->toolchain[16] = 0;
	return true;
}

static int by_use(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->used < y->used ? -1 : x->used > y->used;
}

static bool kept(const struct compile *c, const struct entry *en, const char (*keep)[65],
                 size_t nkeep)
{
	if (strcmp(en->toolchain, c->toolchain) != 0)
		return false;
	for (size_t i = 0; i < nkeep; i++)
		if (strcmp(keep[i], en->sha) == 0)
			return true;
	return false;
}

int compile_prune(struct compile *c, uint64_t max_bytes, const char (*keep)[65], size_t nkeep)
{
	pthread_mutex_lock(&c->mu);
	int rc = 0;
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0, evicted = 0, freed = 0;
	DIR *d = opendir(c->dir);
	if (d == NULL) {
		rc = -errno;
		log_warn("executor: cannot read the compile cache '%s': %s", c->dir,
		         strerror(errno));
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct entry en;
		struct stat st;
		if (!parse_entry(de->d_name, &en) || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		en.size = (uint64_t)st.st_size;
		en.used = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct entry *grown = realloc(v, ncap * sizeof(*v));
			if (grown == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			v = grown;
			cap = ncap;
		}
		v[n++] = en;
		total += en.size;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), by_use);
	time_t recent = time(NULL) - COMPILE_PRUNE_GRACE_S;
	size_t left = n;
	for (size_t i = 0; i < n && total > max_bytes; i++) {
		if (v[i].used >= recent || kept(c, &v[i], keep, nkeep))
			continue;
		char name[96];
		snprintf(name, sizeof(name), "%s-%s.so", v[i].sha, v[i].toolchain);
		if (unlinkat(dirfd(d), name, 0) != 0 && errno != ENOENT) {
			log_warn("executor: cannot remove '%s/%s' from the compile cache: %s",
			         c->dir, name, strerror(errno));
			continue;
		}
		total -= v[i].size;
		freed += v[i].size;
		evicted++;
		left--;
	}
	if (evicted > 0)
		log_info("executor: compile cache over %llu bytes: removed %llu least recently "
		         "used object(s), %llu bytes; %llu bytes in %zu left",
		         (unsigned long long)max_bytes, (unsigned long long)evicted,
		         (unsigned long long)freed, (unsigned long long)total, left);
	else if (total > max_bytes)
		log_warn("executor: the compile cache holds %llu bytes, over its bound of %llu, "
		         "all of it in use or recent",
		         (unsigned long long)total, (unsigned long long)max_bytes);
	c->stats.bytes = total;
	c->stats.entries = left;
	c->stats.evicted += evicted;
out:
	if (d != NULL)
		closedir(d);
	free(v);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void compile_cache_stats(struct compile *c, struct compile_cache_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	pthread_mutex_unlock(&c->mu);
}
