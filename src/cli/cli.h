/*
 * noetlctl: the command-line client. This header is what a command module
 * (src/cli/cmd_<module>.c) needs.
 *
 * Commands are rows of a dispatch table, Redis style. A module defines
 *
 *     const struct cli_command cli_queue_commands[] = {
 *         {.name = "queue", .summary = "inspect and manage queues",
 *          .subcommands = queue_subs},
 *         {0},
 *     };
 *
 * and registers it with ONE line, X(queue), in CLI_MODULES in commands.c
 * (plus its file in src/cli/meson.build). A row is either a leaf with a run
 * function or a group with sub-commands ("queue stats", "dlq list"); groups
 * nest to any depth.
 *
 * The dispatcher handles what every command shares: -h/--help at any level,
 * the command's own flags (a config_option table, parsed like the global
 * flags: --limit 5, --limit=5, operands and flags in any order), and exit
 * codes: run returns CLI_OK (0), CLI_FAIL (1: the request failed) or
 * CLI_USAGE (2: the command line is wrong). run gets only the operands:
 * argv[0] is the first operand, not the command name.
 *
 * Options and settings: a command's options (--lines, --follow) say what
 * this one invocation does, so they are flags only; an environment variable
 * NOETL_LINES would change every later command of the shell. A command's
 * settings say where things are (the address of a change stream), like the
 * global options, and are read the same way: flag > NOETL_* variable >
 * noetlctl.yaml > default. main.c loads every command's settings with the
 * global options at start-up (aliases aside, which only the command's own
 * flags know: watch's --stream is control.stream, recorder's is
 * recorder.stream). Commands that declare the same setting key share its
 * dest.
 *
 * Output: commands build their result as jansson JSON and hand it to
 * cli_output, which prints it as a table, JSON or YAML as -o asks; tables
 * show the columns the command names. Errors go to stderr through cli_fail,
 * cli_usage or cli_call, which turn a service's status into words and say
 * what to do.
 */
#ifndef NOETL_CLI_H
#define NOETL_CLI_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct rpc_client;

enum {
	CLI_OK = 0,
	CLI_FAIL = 1,
	CLI_USAGE = 2,
};

/* The services noetlctl talks to. */
enum cli_service {
	CLI_CONTROL,
	CLI_REPOSITORY,
	CLI_QUEUE,
	CLI_RECORDER,
	CLI_LISTENER, /* HTTP: webhooks and health, no RPC API */
	CLI_SERVICES,
};

enum cli_format {
	CLI_TABLE,
	CLI_JSON,
	CLI_YAML,
};

/* The invocation: global options and shared connections. */
struct cli {
	const char *prog;                         /* "noetlctl" */
	char *urls[CLI_SERVICES];                 /* by enum cli_service */
	char *token;                              /* credentials, or NULL */
	char *tenant;                             /* default tenant, or NULL */
	char *output;                             /* "table", "json" or "yaml" */
	enum cli_format format;                   /* parsed output */
	int64_t timeout_ms;                       /* per call */
	FILE *out;                                /* results: stdout */
	FILE *err;                                /* errors: stderr */
	struct rpc_client *clients[CLI_SERVICES]; /* created on first use */
};

struct cli_command {
	const char *name;    /* "status", "queue"; NULL ends a table */
	const char *args;    /* operands for usage: "<tenant> [<queue>]" */
	const char *summary; /* one line, lowercase, no period */
	/* Leaf: runs the command with its operands; returns CLI_OK/FAIL/USAGE. */
	int (*run)(struct cli *cli, int argc, char **argv);
	const struct cli_command *subcommands; /* group: its table; run is NULL */
	const struct config_option *options;   /* the command's flags, or NULL */
	const struct config_option *settings;  /* its settings (see above), or NULL */
	const char *help;                      /* more paragraphs for --help, or NULL */
};

/* All registered command tables (commands.c), NULL-terminated. */
extern const struct cli_command *const cli_modules[];

/* "control", "repository", ... */
const char *cli_service_name(enum cli_service s);

/*
 * The RPC client of a service, created on first use with the CLI's timeout
 * and token; owned by cli (freed at exit). Prints an error and returns
 * CLI_FAIL for a bad URL, CLI_USAGE for the listener (no RPC API).
 */
int cli_client(struct cli *cli, enum cli_service s, struct rpc_client **out);

/*
 * Calls method on service s and, on success, stores the reply in *out (free
 * with protobuf_c_message_free_unpacked; out NULL: the reply is dropped, for
 * actions whose reply says nothing more than OK). On failure prints what
 * went wrong in words, with what to do, and returns CLI_FAIL. Metadata: --token and
 * --tenant; tenant overrides --tenant when not NULL.
 */
int cli_call(struct cli *cli, enum cli_service s, const ProtobufCServiceDescriptor *svc,
             const char *method, const ProtobufCMessage *in, const char *tenant,
             ProtobufCMessage **out);

/* Prints "noetlctl: <service error in words>" for a failed call. */
void cli_print_call_error(struct cli *cli, enum cli_service s, const char *method, int status,
                          const char *msg);

/*
 * Reads the whole file at path (any kind: a pipe or /dev/stdin too) into
 * *buf, malloc'ed and NUL-terminated, *len bytes without the NUL. A file
 * over max bytes is refused with "'path' is over max bytes; <limit_hint>".
 * On failure prints why (cannot open, cannot read, too large) and returns
 * CLI_FAIL. Defined in input.c.
 */
int cli_read_file(struct cli *cli, const char *path, size_t max, const char *limit_hint, char **buf,
                  size_t *len);

/* Prints "noetlctl: <message>" to stderr; returns CLI_FAIL. */
int cli_fail(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "noetlctl: <message>" and a pointer to --help; returns CLI_USAGE. */
int cli_usage(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- output -------------------------------------------------------------- */

/* How a table cell shows a value (JSON and YAML always show it raw). */
enum cli_cell {
	CLI_CELL_TEXT,     /* strings as is, numbers, true/false as yes/no */
	CLI_CELL_DURATION, /* milliseconds as "1h2m3s", "250ms" */
	CLI_CELL_TIME,     /* Unix milliseconds as "2026-11-23 09:00:00" (UTC) */
	CLI_CELL_BYTES,    /* bytes as "1.5 MiB" */
};

struct cli_column {
	const char *title; /* "SERVICE"; NULL ends the list */
	const char *key;   /* the row's member */
	enum cli_cell cell;
};

/*
 * Prints data (borrowed): a JSON array of objects (one table row each) or
 * one object (shown as KEY VALUE lines in a table). cols picks and orders
 * the table's columns; NULL shows every member. JSON and YAML print data
 * whole. Returns CLI_OK, or CLI_FAIL if writing failed.
 */
int cli_output(struct cli *cli, json_t *data, const struct cli_column *cols);

/* Prints data as JSON / YAML to out. 0 or -EIO. */
int cli_print_json(FILE *out, json_t *data);
int cli_print_yaml(FILE *out, json_t *data);

/* Prints rows as an aligned table with a header line. */
void cli_print_table(FILE *out, json_t *rows, const struct cli_column *cols);

/* Formats one cell into buf; returns buf. */
const char *cli_format_cell(json_t *v, enum cli_cell cell, char *buf, size_t cap);

#endif
