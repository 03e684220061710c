/* error: fails every event with code 1 and says why in the result. */
#include <noetl.h>

static uint64_t fail(const char *data, size_t len, noetl_result *res)
{
	noetl_log(NOETL_ERROR, "refusing an event of %zu bytes", len);
	noetl_result_printf(res, "cannot handle '%.*s'", (int)(len > 64 ? 64 : len), data);
	return 1;
}

NOETL_EVENT(fail)
