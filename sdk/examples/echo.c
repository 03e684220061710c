/* echo: answers every event with its own payload, code 0. */
#include <noetl.h>

static uint64_t echo(const char *data, size_t len, noetl_result *res)
{
	if (noetl_result_set(res, data, len) != 0)
		return 2; /* out of memory */
	return 0;
}

NOETL_EVENT(echo)
