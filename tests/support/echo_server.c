/* echo_server URL: serves noetl.Echo on URL until killed (for tests that
 * kill and restart a server process). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "echo.h"
#include "log.h"
#include "rpc.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: echo_server URL\n");
		return 2;
	}
	log_setup("echo", LOG_LEVEL_WARN, false);
	struct echo e;
	echo_init(&e);
	struct rpc_server *s;
	struct rpc_server_options o = {.name = "echo", .workers = 4};
	if (rpc_server_create(&o, &s) != 0 || rpc_server_add(s, &e.svc.base) != 0 ||
	    rpc_server_listen(s, argv[1]) != 0 || rpc_server_start(s) != 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
