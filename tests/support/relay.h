/*
 * relay: a fault-injecting hop between an RPC client and a real service,
 * for the tests that need the service to misbehave in one precise way.
 *
 * Tests of a service talk to the real services (no fakes of our own
 * services); what a real service will not do on demand is lose a reply or
 * turn a caller away. The relay listens on a real nng rep socket and
 * forwards each request, unchanged, to the service over a real req socket,
 * and the reply back; told so, it
 *
 *   RELAY_LOSE_REPLY  forwards the request (the service acts on it) but
 *                     answers the caller UNAVAILABLE, as a connection cut
 *                     after the service's write looks to the caller;
 *   RELAY_REFUSE      answers UNAVAILABLE without forwarding, as a service
 *                     that is down does;
 *   RELAY_HOLD        keeps requests until the mode changes, as a stalled
 *                     service does.
 *
 * It serves one request at a time, in order, which is what the tests that
 * use it send. It reads the request envelope (proto/rpc.proto) only to count
 * requests by method.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef NOETL_TEST_RELAY_H
#define NOETL_TEST_RELAY_H

enum relay_mode {
	RELAY_PASS,       /* forward requests and replies */
	RELAY_LOSE_REPLY, /* forward the request, answer UNAVAILABLE */
	RELAY_REFUSE,     /* answer UNAVAILABLE, forward nothing */
	RELAY_HOLD,       /* keep requests until the mode changes */
};

struct relay;

/*
 * Listens on listen_url and forwards to target_url (the service need not be
 * up yet: the relay dials in the background). 0 with *out, or -errno.
 */
int relay_create(const char *listen_url, const char *target_url, struct relay **out);

/* Applies mode to the requests that arrive (or are held) from now on. */
void relay_set_mode(struct relay *r, enum relay_mode mode);

/* Requests for method ("Enqueue") received so far, whatever their fate. */
unsigned relay_requests(struct relay *r, const char *method);

/* Stops the relay; accepts NULL. A held request is answered UNAVAILABLE. */
void relay_destroy(struct relay *r);

#endif
