/* sleeper: never returns (the host's deadline ends it). */
#include <noetl.h>

static volatile uint64_t spins;

static uint64_t sleeper(const char *data, size_t len, noetl_result *res)
{
	(void)data, (void)len, (void)res;
	noetl_log(NOETL_INFO, "sleeping");
	for (;;)
		spins++;
	return 0;
}

NOETL_EVENT(sleeper)
