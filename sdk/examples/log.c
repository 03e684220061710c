/* log: writes one line at each level through env.log, one to stdout and
 * one to stderr (which the host turns into log lines too), and answers
 * "logged". */
#include <noetl.h>

static uint64_t logger(const char *data, size_t len, noetl_result *res)
{
	noetl_log(NOETL_DEBUG, "debug: %zu bytes", len);
	noetl_log(NOETL_INFO, "info: %.*s", (int)len, data);
	noetl_log(NOETL_WARN, "warn: careful");
	noetl_log(NOETL_ERROR, "error: not really");
	printf("stdout: hello\n");
	fprintf(stderr, "stderr: oops\n");
	noetl_result_str(res, "logged");
	return 0;
}

NOETL_EVENT(logger)
