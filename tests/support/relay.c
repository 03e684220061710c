/*
 * relay: see relay.h. One thread takes a request from the rep socket,
 * decides its fate by the mode, and answers it before taking the next.
 */
#include "relay.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

#define METHODS_MAX  16
#define FORWARD_WAIT 10000 /* ms the service has to answer a forwarded request */

struct relay {
	nng_socket rep;       /* callers connect here */
	nng_socket req;       /* dialed to the service */
	pthread_t thread;     /* serve() */
	pthread_mutex_t mu;   /* guards what follows */
	pthread_cond_t cv;    /* signalled on a mode change and on stop */
	enum relay_mode mode; /* fate of the next request */
	bool stop;            /* relay_destroy was called */
	struct {
		char name[64];  /* method name */
		unsigned count; /* requests received */
	} methods[METHODS_MAX]; /* first-seen order; unused entries have name "" */
};

static void count(struct relay *r, nng_msg *m)
{
	Noetl__Request *env = noetl__request__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
	const char *name = env != NULL ? env->method : "(not an envelope)";
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < METHODS_MAX; i++) {
		if (r->methods[i].name[0] == '\0')
			snprintf(r->methods[i].name, sizeof(r->methods[i].name), "%s", name);
		if (strcmp(r->methods[i].name, name) == 0) {
			r->methods[i].count++;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (env != NULL)
		noetl__request__free_unpacked(env, NULL);
}

/* The mode for the request in hand: waits while it is RELAY_HOLD. */
static enum relay_mode fate(struct relay *r)
{
	pthread_mutex_lock(&r->mu);
	while (r->mode == RELAY_HOLD && !r->stop)
		pthread_cond_wait(&r->cv, &r->mu);
	enum relay_mode m = r->stop ? RELAY_REFUSE : r->mode;
	pthread_mutex_unlock(&r->mu);
	return m;
}

/* An UNAVAILABLE reply saying why; NULL without memory. */
static nng_msg *unavailable(const char *why)
{
	Noetl__Reply rep = NOETL__REPLY__INIT;
	rep.status = NOETL__STATUS__UNAVAILABLE;
	rep.message = (char *)why;
	nng_msg *m;
	if (nng_msg_alloc(&m, noetl__reply__get_packed_size(&rep)) != 0)
		return NULL;
	noetl__reply__pack(&rep, nng_msg_body(m));
	return m;
}

static void *serve(void *arg)
{
	struct relay *r = arg;
	for (;;) {
		nng_msg *req, *rep = NULL;
		if (nng_recvmsg(r->rep, &req, 0) != 0)
			break; /* closed */
		count(r, req);
		enum relay_mode m = fate(r);
		const char *why = "relay: refused (the test made the service unavailable)";
		if (m == RELAY_PASS || m == RELAY_LOSE_REPLY) {
			int rv = nng_sendmsg(r->req, req, 0);
			if (rv != 0)
				nng_msg_free(req);
			else
				rv = nng_recvmsg(r->req, &rep, 0);
			if (rv != 0)
				why = "relay: the service did not answer";
			else if (m == RELAY_LOSE_REPLY) {
				nng_msg_free(rep);
				rep = NULL;
				why = "relay: the reply was lost (the test dropped it)";
			}
		} else {
			nng_msg_free(req);
		}
		if (rep == NULL)
			rep = unavailable(why);
		if (rep != NULL && nng_sendmsg(r->rep, rep, 0) != 0)
			nng_msg_free(rep);
	}
	return NULL;
}

int relay_create(const char *listen_url, const char *target_url, struct relay **out)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	int rv;
	if ((rv = nng_rep0_open(&r->rep)) != 0)
		goto fail_mutex;
	if ((rv = nng_req0_open(&r->req)) != 0)
		goto fail_rep;
	nng_socket_set_ms(r->req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(r->req, NNG_OPT_RECVTIMEO, FORWARD_WAIT);
	nng_socket_set_size(r->rep, NNG_OPT_RECVMAXSZ, 0);
	nng_socket_set_size(r->req, NNG_OPT_RECVMAXSZ, 0);
	if ((rv = nng_listen(r->rep, listen_url, NULL, 0)) != 0 ||
	    (rv = nng_dial(r->req, target_url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		goto fail_req;
	if (pthread_create(&r->thread, NULL, serve, r) != 0) {
		rv = NNG_ENOMEM;
		goto fail_req;
	}
	*out = r;
	return 0;
fail_req:
	nng_close(r->req);
fail_rep:
	nng_close(r->rep);
fail_mutex:
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return rpc_nng_errno(rv);
}

void relay_set_mode(struct relay *r, enum relay_mode mode)
{
	pthread_mutex_lock(&r->mu);
	r->mode = mode;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

unsigned relay_requests(struct relay *r, const char *method)
{
	unsigned n = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < METHODS_MAX; i++)
		if (strcmp(r->methods[i].name, method) == 0)
			n = r->methods[i].count;
	pthread_mutex_unlock(&r->mu);
	return n;
}

void relay_destroy(struct relay *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	nng_close(r->rep);
	nng_close(r->req);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
