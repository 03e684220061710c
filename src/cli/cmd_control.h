/*
 * cmd_control: what the files of noetlctl's Control commands share
 * (cmd_control.c holds the table; cmd_token.c and cmd_watch.c some of the
 * commands). Nobody else includes it.
 */
#ifndef NOETL_CLI_CMD_CONTROL_H
#define NOETL_CLI_CMD_CONTROL_H

#include <jansson.h>
#include <stdint.h>

#include "cli.h"

/* token create|list|revoke, secret set|clear (cmd_token.c) */
extern const struct cli_command cli_token_subcommands[];
extern const struct cli_command cli_secret_subcommands[];

/* watch (cmd_watch.c) */
int cli_watch_run(struct cli *cli, int argc, char **argv);
extern const struct config_option cli_watch_options[];
extern const struct config_option cli_watch_settings[];

/*
 * Finishes an action: in table format prints msg (a sentence) and drops
 * obj; in JSON or YAML prints obj. Takes obj's reference. Returns CLI_OK or
 * CLI_FAIL (output failed).
 */
int cli_done(struct cli *cli, json_t *obj, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* cli_call on Control. */
int cli_control_call(struct cli *cli, const char *method, const ProtobufCMessage *in,
                     const char *tenant, ProtobufCMessage **out);

/* Parses a revision or other unsigned number; false if s is not one. */
bool cli_parse_u64(const char *s, uint64_t *out);

/* Checks the operand count: between min and max; else prints usage and
 * returns false. */
bool cli_operands(struct cli *cli, int argc, int min, int max, const char *usage);

#endif
