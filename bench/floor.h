/*
 * floor: the HTTP floor bench_ingest and bench_e2e measure noetl against:
 * an nng HTTP server whose POST /events... handler takes the body and
 * answers 202 with a fixed JSON body, doing nothing else.
 */
#ifndef NOETL_BENCH_FLOOR_H
#define NOETL_BENCH_FLOOR_H

struct floor_server;

/* Starts it on 127.0.0.1 on a port of the kernel's choosing, written to
 * *port. 0, or -1 if it cannot start. */
int floor_start(struct floor_server **out, int *port);

/* Stops and frees it. NULL is fine. */
void floor_stop(struct floor_server *f);

#endif
