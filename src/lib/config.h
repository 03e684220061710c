/*
 * config: one declarative table of options per program, filled from a YAML
 * file, NOETL_* environment variables and command-line flags.
 *
 * A program describes each setting once, in a table of struct config_option:
 * its dotted key ("rpc.listen"), its type, where the value goes, a default
 * and a line of help. From that one table come
 *
 *   - the file: a YAML mapping; nested mappings spell dotted keys, so
 *         rpc:
 *           listen: tcp://0.0.0.0:7403
 *     sets "rpc.listen" (writing "rpc.listen: ..." at the top level works too);
 *   - the environment: NOETL_ + the key in upper case with '.' and '-' turned
 *     into '_': NOETL_RPC_LISTEN;
 *   - the flags: --rpc.listen=X, --rpc.listen X, --rpc-listen=X or
 *     --rpc-listen X ('.', '-' and '_' are the same letter in a flag name);
 *     a boolean takes no argument (--debug, --no-debug, --debug=false);
 *     an option may add an alias, "o" for -o or "control" for --control;
 *   - --help text: config_usage().
 *
 * Precedence is flag > environment > file > default: config_load applies the
 * four layers in the opposite order, each overwriting the one before. The
 * file is the one named by --config FILE (or -c), else by NOETL_CONFIG, else
 * the program's default file if that exists; a file named explicitly must
 * exist.
 *
 * Strictness is the point: an unknown key in the file, a value of the wrong
 * type, a duplicate key or an unknown flag is an error, never a warning, and
 * its message says where: "queue.yaml:3:5: unknown key 'rpc.lisen' (did you
 * mean 'rpc.listen'?)", "environment variable NOETL_RPC_WORKERS: ...",
 * "flag --timeout: ...". Environment variables that no option matches are
 * ignored, because one environment usually serves several programs.
 *
 * Values and types (the dest pointer's type in brackets):
 *   CONFIG_STRING   any text                               [char *]
 *   CONFIG_INT      decimal integer in int range           [int]
 *   CONFIG_BOOL     true/false, yes/no, on/off, 1/0        [bool]
 *   CONFIG_DURATION "250ms", "5s", "1m30s", "2h", "1d"; a bare
 *                   number is refused except 0              [int64_t, milliseconds]
 *   CONFIG_SIZE     "512", "64KiB", "16MiB", "1GiB" (K/M/G/T = KiB...;
 *                   KB/MB/GB/TB are powers of 1000)         [size_t, bytes]
 *   CONFIG_URL      "scheme://rest"                        [char *]
 *   CONFIG_URLS     a YAML sequence of URLs, or one comma-separated
 *                   string in the environment or a flag     [struct config_list]
 *   CONFIG_ENUM     one of the option's choices "a|b|c"    [char *]
 *
 * Ownership: strings and lists written to dest are malloc'ed and owned by
 * the table: config_free() releases them. Before the first load every
 * string dest must be NULL and every list zeroed (static storage or a zeroed
 * struct does it); a later layer frees the value it replaces.
 *
 * Threads: none of this is thread-safe; configure at start-up.
 */
#ifndef NOETL_CONFIG_H
#define NOETL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
	CONFIG_STRING,
	CONFIG_INT,
	CONFIG_BOOL,
	CONFIG_DURATION,
	CONFIG_SIZE,
	CONFIG_URL,
	CONFIG_URLS,
	CONFIG_ENUM,
};

/* The value of a CONFIG_URLS option. */
struct config_list {
	size_t count; /* number of items */
	char **items; /* count malloc'ed strings, owned by the table */
};

struct config_option {
	const char *key;       /* dotted key, e.g. "rpc.listen"; NULL ends a table */
	enum config_type type; /* how the text is parsed and what dest points to */
	void *dest;            /* where the value goes; see the list above */
	const char *def;       /* default, written as in the file; NULL = none (zero, NULL) */
	const char *help;      /* one line for --help */
	const char *flag;      /* optional alias: "o" is -o, "control" is --control */
	const char *choices;   /* CONFIG_ENUM only: "table|json|yaml" */
};

/* A program: its options and how --help presents them. */
struct config_spec {
	const char *program;                 /* "noetl-queue" */
	const char *usage;                   /* after the program name: "[options]" */
	const char *summary;                 /* one sentence on what the program does */
	const struct config_option *options; /* ends with an entry whose key is NULL */
	const char *default_file;            /* read if it exists and no file is named;
	                                        "~/" means $HOME; NULL = none */
	bool stop_at_operand;                /* stop at the first operand (a sub-command);
	                                        else operands may mix with flags */
};

/*
 * Loads the program's configuration: defaults, then the file, then the
 * environment, then the flags in argv[1..argc-1]. On success *next is the
 * index in argv of the first operand (argc if none): operands found among
 * flags are moved, in order, behind the flags, as GNU getopt does. *help is
 * set when -h or --help was given; the caller then prints config_usage() and
 * exits 0 (nothing else is checked after the flags were read).
 *
 * Returns 0, or -EINVAL (bad value, unknown key or flag), -ENOENT (a named
 * file is missing) or another -errno (file unreadable) with *err set to a
 * malloc'ed message that says where and what (free it). Values applied
 * before the error stay in the dests; config_free() frees them.
 */
int config_load(const struct config_spec *spec, int argc, char **argv, int *next, bool *help,
                char **err);

/* The individual layers, for programs and sub-commands that want fewer. */

/* Writes every option's default (NULL defaults zero the dest). */
int config_set_defaults(const struct config_option *opts, char **err);

/* Applies the YAML file at path. -ENOENT if it does not exist. */
int config_load_file(const struct config_option *opts, const char *path, char **err);

/* Applies YAML text as if read from a file called name (for tests). */
int config_load_string(const struct config_option *opts, const char *name, const char *text,
                       size_t len, char **err);

/* Applies the NOETL_* variables of the process environment. */
int config_load_env(const struct config_option *opts, char **err);

/*
 * Applies flags from argv[1..argc-1] as config_load does (same *next, *help
 * and operand ordering). --config is not special here: it is an unknown flag
 * unless the table has a "config" option.
 */
int config_parse_flags(const struct config_option *opts, int argc, char **argv,
                       bool stop_at_operand, int *next, bool *help, char **err);

/* Frees the strings and lists the table's dests own and resets them to
 * NULL/zero; other dests are left alone. Accepts NULL. */
void config_free(const struct config_option *opts);

/* Writes the --help text: usage line, summary, then one paragraph per
 * option with its flag, environment variable, default and help. */
void config_usage(const struct config_spec *spec, FILE *out);

/* Writes only the option list of config_usage; with_env false leaves the
 * environment variables out (for sub-command flags, which only
 * config_parse_flags reads). */
void config_usage_options(const struct config_option *opts, bool with_env, FILE *out);

/* The environment variable of key into buf ("rpc.listen" ->
 * "NOETL_RPC_LISTEN"); truncates to cap. */
void config_env_name(const char *key, char *buf, size_t cap);

/* Parsers used by the loader, public for programs with values of their own:
 * 0 or -EINVAL. */
int config_parse_duration(const char *text, int64_t *ms);
int config_parse_size(const char *text, size_t *bytes);
int config_parse_bool(const char *text, bool *out);

#endif
