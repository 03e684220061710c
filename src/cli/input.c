/*
 * input: the files noetlctl's commands are given (definitions, modules,
 * schemas, data), read one way for all of them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_read_file(struct cli *cli, const char *path, size_t max, const char *limit_hint, char **buf,
                  size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return cli_fail(cli, "cannot open '%s': %s", path, strerror(errno));
	/* Read until EOF or one byte past max, whatever the file is (a pipe
	 * or /dev/stdin has no size to ask for). */
	char *b = NULL;
	size_t n = 0, cap = 0;
	bool bad = false;
	for (;;) {
		if (n == cap) {
			if (cap > max)
				break;
			size_t nc = cap == 0 ? 64u << 10 : cap * 2;
			if (nc > max + 1)
				nc = max + 1;
			char *nb = realloc(b, nc + 1);
			if (nb == NULL) {
				bad = true;
				break;
			}
			b = nb;
			cap = nc;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			bad = ferror(f) != 0;
			break;
		}
	}
	fclose(f);
	if (bad) {
		free(b);
		return cli_fail(cli, "cannot read '%s'", path);
	}
	if (n > max) {
		free(b);
		return cli_fail(cli, "'%s' is over %zu bytes; %s", path, max, limit_hint);
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return CLI_OK;
}
