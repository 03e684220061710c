/*
 * shimabi: the one symbol every compiled module exports to its runner.
 *
 * wasm2c names everything after the module and its exports and sizes the
 * instance struct per module, so the host cannot call a module directly.
 * compile.c therefore generates a small C file (the shim) next to wasm2c's
 * output that wraps each callable export in a function with a fixed C type
 * taking the instance as void *, and publishes them in `noetl_shim`. The
 * struct is declared once, here, and its text is pasted into the generated
 * file (SHIMABI_TEXT) so both sides agree byte for byte.
 */
#ifndef NOETL_SHIMABI_H
#define NOETL_SHIMABI_H

#include "rtconfig.h"

/* Bumped with any change to the declarations below. */
#define SHIMABI_VERSION 1u

#define SHIMABI_DECL                                                                               \
	struct noetl_shim_export {                                                                 \
		const char *name; /* the export's name */                                          \
		const char *sig;  /* params '>' results, letters i I f F: "iii>" */                \
		void (*fn)(void); /* wrapper taking (void *instance, params...) */                 \
	};                                                                                         \
	struct noetl_shim {                                                                        \
		unsigned abi;                /* SHIMABI_VERSION */                                 \
		unsigned long instance_size; /* bytes of the module's instance struct */           \
		unsigned nexports;           /* callable function exports */                       \
		const struct noetl_shim_export *exports;                                           \
		void (*init_module)(void); /* once per process */                                  \
		void (*instantiate)(void *instance, void *host);                                   \
		void (*free_instance)(void *instance);                                             \
		wasm_rt_memory_t *(*memory)(void *instance); /* the exported memory */             \
	};

#define SHIMABI_TEXT RTCONFIG_STR(SHIMABI_DECL)

/* The symbol's name in the shared object. */
#define SHIMABI_SYMBOL "noetl_shim"

#endif
