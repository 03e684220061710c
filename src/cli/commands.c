/*
 * commands: the registry of command modules. Adding a module is one line
 * in CLI_MODULES below, "X(<module>) \", for the table
 * cli_<module>_commands[] that its cmd_<module>.c defines, plus the file in
 * src/cli/meson.build. --help lists the commands in this order.
 */
#include "cli.h"

/* clang-format off */
#define CLI_MODULES(X) \
	X(status) \
	X(queue) \
	X(control) \
	X(repo) \
	X(recorder) \
	X(events) \
	X(retention) \
	X(schema) \
	/* one line per module above this one */
/* clang-format on */

#define DECLARE(m) extern const struct cli_command cli_##m##_commands[];
#define ENTRY(m)   cli_##m##_commands,

CLI_MODULES(DECLARE)

const struct cli_command *const cli_modules[] = {CLI_MODULES(ENTRY) NULL};
