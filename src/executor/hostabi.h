/*
 * hostabi: the functions the host provides to modules, with their wasm
 * types. The compiler refuses a module that imports anything else, or one of
 * these with another type, before it is compiled (wasm2c 1.0.32 does not put
 * types in symbol names, so a wrong type would otherwise link and then pass
 * arguments wrongly). The runner defines each as the C function wasm2c
 * calls: Z_<module>Z_<name> (see wasi.c). Types are written params '>'
 * results with i = i32, I = i64.
 *
 * The WASI set is all of wasi_snapshot_preview1 as wasi-libc declares it
 * (/usr/lib/wasm32-wasi/libc.imports lists what it may import), so any
 * program built with wasi-libc, TinyGo or Rust's wasm32-wasi links.
 */
#ifndef NOETL_HOSTABI_H
#define NOETL_HOSTABI_H

#define HOSTABI_WASI "wasi_snapshot_preview1"

/* X(module, name, type) */
#define HOSTABI_FUNCS(X)                                                                           \
	X("env", "log", "iii>")                                                                    \
	X(HOSTABI_WASI, "args_get", "ii>i")                                                        \
	X(HOSTABI_WASI, "args_sizes_get", "ii>i")                                                  \
	X(HOSTABI_WASI, "environ_get", "ii>i")                                                     \
	X(HOSTABI_WASI, "environ_sizes_get", "ii>i")                                               \
	X(HOSTABI_WASI, "clock_res_get", "ii>i")                                                   \
	X(HOSTABI_WASI, "clock_time_get", "iIi>i")                                                 \
	X(HOSTABI_WASI, "fd_advise", "iIIi>i")                                                     \
	X(HOSTABI_WASI, "fd_allocate", "iII>i")                                                    \
	X(HOSTABI_WASI, "fd_close", "i>i")                                                         \
	X(HOSTABI_WASI, "fd_datasync", "i>i")                                                      \
	X(HOSTABI_WASI, "fd_fdstat_get", "ii>i")                                                   \
	X(HOSTABI_WASI, "fd_fdstat_set_flags", "ii>i")                                             \
	X(HOSTABI_WASI, "fd_fdstat_set_rights", "iII>i")                                           \
	X(HOSTABI_WASI, "fd_filestat_get", "ii>i")                                                 \
	X(HOSTABI_WASI, "fd_filestat_set_size", "iI>i")                                            \
	X(HOSTABI_WASI, "fd_filestat_set_times", "iIIi>i")                                         \
	X(HOSTABI_WASI, "fd_pread", "iiiIi>i")                                                     \
	X(HOSTABI_WASI, "fd_prestat_dir_name", "iii>i")                                            \
	X(HOSTABI_WASI, "fd_prestat_get", "ii>i")                                                  \
	X(HOSTABI_WASI, "fd_pwrite", "iiiIi>i")                                                    \
	X(HOSTABI_WASI, "fd_read", "iiii>i")                                                       \
	X(HOSTABI_WASI, "fd_readdir", "iiiIi>i")                                                   \
	X(HOSTABI_WASI, "fd_renumber", "ii>i")                                                     \
	X(HOSTABI_WASI, "fd_seek", "iIii>i")                                                       \
	X(HOSTABI_WASI, "fd_sync", "i>i")                                                          \
	X(HOSTABI_WASI, "fd_tell", "ii>i")                                                         \
	X(HOSTABI_WASI, "fd_write", "iiii>i")                                                      \
	X(HOSTABI_WASI, "path_create_directory", "iii>i")                                          \
	X(HOSTABI_WASI, "path_filestat_get", "iiiii>i")                                            \
	X(HOSTABI_WASI, "path_filestat_set_times", "iiiiIIi>i")                                    \
	X(HOSTABI_WASI, "path_link", "iiiiiii>i")                                                  \
	X(HOSTABI_WASI, "path_open", "iiiiiIIii>i")                                                \
	X(HOSTABI_WASI, "path_readlink", "iiiiii>i")                                               \
	X(HOSTABI_WASI, "path_remove_directory", "iii>i")                                          \
	X(HOSTABI_WASI, "path_rename", "iiiiii>i")                                                 \
	X(HOSTABI_WASI, "path_symlink", "iiiii>i")                                                 \
	X(HOSTABI_WASI, "path_unlink_file", "iii>i")                                               \
	X(HOSTABI_WASI, "poll_oneoff", "iiii>i")                                                   \
	X(HOSTABI_WASI, "proc_exit", "i>")                                                         \
	X(HOSTABI_WASI, "proc_raise", "i>i")                                                       \
	X(HOSTABI_WASI, "random_get", "ii>i")                                                      \
	X(HOSTABI_WASI, "sched_yield", ">i")                                                       \
	X(HOSTABI_WASI, "sock_accept", "iii>i")                                                    \
	X(HOSTABI_WASI, "sock_recv", "iiiiii>i")                                                   \
	X(HOSTABI_WASI, "sock_send", "iiiii>i")                                                    \
	X(HOSTABI_WASI, "sock_shutdown", "ii>i")

#endif
