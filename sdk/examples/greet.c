/* greet: reads "name" (or "firstName") from a JSON payload such as
 * {"name": "Ada"} and answers "Hello, Ada". Without one it answers code 1. */
#include <noetl.h>

static int calls;

static void start(void)
{
	calls = 0;
}

static uint64_t greet(const char *data, size_t len, noetl_result *res)
{
	char name[256];
	int n = noetl_json_string(data, len, "name", name, sizeof(name));
	if (n < 0)
		n = noetl_json_string(data, len, "firstName", name, sizeof(name));
	if (n == -2) {
		noetl_result_str(res, "greet: the name is longer than 255 bytes");
		return 1;
	}
	if (n < 0) {
		noetl_result_str(res, "greet: the event has no \"name\" or \"firstName\" string");
		return 1;
	}
	calls++;
	noetl_log(NOETL_INFO, "greeting %s (call %d)", name, calls);
	noetl_result_printf(res, "Hello, %s", name);
	return 0;
}

NOETL_EVENT(greet)
NOETL_INIT(start)
