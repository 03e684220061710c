/*
 * stream: change streams over nng pub/sub with resync. See stream.h and
 * docs/rpc.md for the protocol.
 */
#include "stream.h"

#include <errno.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* --- publisher ------------------------------------------------------------ */

struct stream_pub {
	nng_socket sock;        /* pub0 */
	nng_tls_config *tls[4]; /* per listener, for their lifetime */
	int ntls;
	struct rpc_tls tlsopt; /* copied pointers, borrowed strings */
	bool has_tls;
	pthread_t hb;       /* heartbeat thread */
	pthread_mutex_t mu; /* protects head, stop */
	pthread_cond_t cv;  /* wakes the heartbeat thread to stop */
	bool stop;
	uint64_t head; /* revision carried by heartbeats */
	int heartbeat_ms;
	atomic_uint drop_every; /* test hook */
	atomic_uint sent;       /* messages offered, for drop_every */
};

static void send_change(struct stream_pub *p, const Noetl__Change *chg)
{
	const char *topic = chg->topic != NULL ? chg->topic : "";
	size_t tlen = strlen(topic);
	size_t n = noetl__change__get_packed_size(chg);
	nng_msg *msg;
	if (nng_msg_alloc(&msg, tlen + 1 + n) != 0) {
		log_warn("stream: out of memory publishing revision %llu",
		         (unsigned long long)chg->revision);
		return;
	}
	uint8_t *body = nng_msg_body(msg);
	memcpy(body, topic, tlen);
	body[tlen] = '\0';
	noetl__change__pack(chg, body + tlen + 1);
	int rv = nng_sendmsg(p->sock, msg, 0);
	if (rv != 0) {
		nng_msg_free(msg);
		log_warn("stream: publishing revision %llu failed: %s",
		         (unsigned long long)chg->revision, nng_strerror(rv));
	}
}

static void *heartbeat(void *arg)
{
	struct stream_pub *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (int64_t)(p->heartbeat_ms % 1000) * 1000000;
		ts.tv_sec += p->heartbeat_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (p->stop)
			break;
		Noetl__Change hb = NOETL__CHANGE__INIT;
		hb.heartbeat = true;
		hb.revision = p->head;
		hb.topic = "";
		hb.time_ms = util_now_ms();
		pthread_mutex_unlock(&p->mu);
		send_change(p, &hb);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int stream_pub_listen(struct stream_pub *p, const char *url)
{
	nng_listener l;
	int rv = nng_listener_create(&l, p->sock, url);
	if (rv == 0 && strncmp(url, "tls+", 4) == 0) {
		if (p->ntls == 4)
			return -ENOSPC;
		nng_tls_config *cfg;
		int err = rpc_tls_config(p->has_tls ? &p->tlsopt : NULL, true, url, &cfg);
		if (err != 0) {
			nng_listener_close(l);
			return err;
		}
		p->tls[p->ntls++] = cfg;
		nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
	}
	if (rv == 0)
		rv = nng_listener_start(l, 0);
	if (rv != 0) {
		log_error("stream: cannot publish on '%s': %s", url, nng_strerror(rv));
		return rpc_nng_errno(rv);
	}
	return 0;
}

int stream_pub_create(const char *url, int heartbeat_ms, const struct rpc_tls *tls,
                      struct stream_pub **out)
{
	struct stream_pub *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 1000;
	if (tls != NULL) {
		p->tlsopt = *tls;
		p->has_tls = true;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	int rv = nng_pub0_open(&p->sock);
	if (rv != 0) {
		free(p);
		return rpc_nng_errno(rv);
	}
	/* Subscribers that fall behind lose messages (and resync); give
	 * them some slack first. */
	nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 1024);
	int err = url != NULL ? stream_pub_listen(p, url) : 0;
	if (err == 0 && pthread_create(&p->hb, NULL, heartbeat, p) != 0)
		err = -EAGAIN;
	if (err != 0) {
		rpc_nng_close(p->sock);
		for (int i = 0; i < p->ntls; i++)
			nng_tls_config_free(p->tls[i]);
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

void stream_pub_publish(struct stream_pub *p, const Noetl__Change *chg)
{
	pthread_mutex_lock(&p->mu);
	if (chg->revision > p->head)
		p->head = chg->revision;
	pthread_mutex_unlock(&p->mu);
	unsigned every = atomic_load(&p->drop_every);
	unsigned n = atomic_fetch_add(&p->sent, 1) + 1;
	if (every > 0 && n % every == 0)
		return; /* test hook: a dropped message */
	send_change(p, chg);
}

void stream_pub_set_head(struct stream_pub *p, uint64_t head)
{
	pthread_mutex_lock(&p->mu);
	p->head = head;
	pthread_mutex_unlock(&p->mu);
}

void stream_pub_drop_every(struct stream_pub *p, unsigned n)
{
	atomic_store(&p->drop_every, n);
}

void stream_pub_destroy(struct stream_pub *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->hb, NULL);
	rpc_nng_close(p->sock);
	for (int i = 0; i < p->ntls; i++)
		nng_tls_config_free(p->tls[i]);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* --- subscriber ----------------------------------------------------------- */

struct stream_sub {
	nng_socket sock;                       /* sub0 */
	nng_tls_config *tls;                   /* for a tls+tcp pub_url */
	struct rpc_client *client;             /* borrowed */
	const ProtobufCServiceDescriptor *svc; /* borrowed */
	stream_apply_fn fn;
	void *arg;
	char *topic; /* "" for all */
	char *token;
	char name[64];
	uint32_t page;
	int hb_timeout_ms;
	int call_timeout_ms;
	pthread_t thread;
	pthread_mutex_t mu; /* protects last, stop */
	pthread_cond_t cv;  /* signalled when last advances */
	uint64_t last;      /* revision of the last change applied */
	uint64_t covered;   /* every change of our topic up to here is applied */
	atomic_bool stop;
	atomic_ullong resyncs;
};

static void set_last(struct stream_sub *s, uint64_t rev)
{
	pthread_mutex_lock(&s->mu);
	s->last = rev;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Delivers one change; false if the application refused it. */
static bool apply(struct stream_sub *s, const Noetl__Change *chg)
{
	int rc = s->fn(s->arg, chg);
	if (rc != 0) {
		log_warn("%s: applying revision %llu failed (%d); it will be delivered again",
		         s->name, (unsigned long long)chg->revision, rc);
		return false;
	}
	set_last(s, chg->revision);
	if (chg->revision > s->covered)
		s->covered = chg->revision;
	return true;
}

/* Fetches and applies everything after s->last. 0, or -EAGAIN to retry. */
static int resync(struct stream_sub *s)
{
	atomic_fetch_add(&s->resyncs, 1);
	for (;;) {
		if (atomic_load(&s->stop))
			return 0;
		Noetl__ChangesRequest req = NOETL__CHANGES_REQUEST__INIT;
		req.since = s->last;
		req.topic = s->topic;
		req.limit = s->page;
		struct rpc_call_options o = {.timeout_ms = s->call_timeout_ms, .token = s->token};
		ProtobufCMessage *out = NULL;
		char *err = NULL;
		int st = rpc_call(s->client, s->svc, "Changes", &req.base, &o, &out, &err);
		if (st != NOETL__STATUS__OK) {
			log_debug("%s: resync since %llu failed: %s", s->name,
			          (unsigned long long)s->last, err != NULL ? err : "");
			free(err);
			return -EAGAIN;
		}
		Noetl__ChangesReply *r = (Noetl__ChangesReply *)out;
		bool ok = true;
		for (size_t i = 0; i < r->n_changes && ok; i++) {
			if (r->changes[i]->revision <= s->last)
				continue;
			ok = apply(s, r->changes[i]);
		}
		bool more = r->more;
		if (ok && !more && r->head > s->covered)
			s->covered = r->head;
		protobuf_c_message_free_unpacked(out, NULL);
		if (!ok)
			return -EAGAIN;
		if (!more)
			return 0;
	}
}

static void *sub_thread(void *arg)
{
	struct stream_sub *s = arg;
	bool need = true;
	int backoff = 50;
	int64_t last_msg = util_mono_ms();
	while (!atomic_load(&s->stop)) {
		if (need) {
			if (resync(s) == 0) {
				need = false;
				backoff = 50;
				last_msg = util_mono_ms();
			} else {
				util_sleep_ms(backoff);
				backoff = backoff < 1000 ? backoff * 2 : 1000;
				continue;
			}
		}
		nng_msg *msg;
		int rv = nng_recvmsg(s->sock, &msg, 0);
		if (rv == NNG_ETIMEDOUT) {
			if (util_mono_ms() - last_msg > s->hb_timeout_ms)
				need = true; /* publisher silent: gone, or we lost it */
			continue;
		}
		if (rv != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		last_msg = util_mono_ms();
		const uint8_t *body = nng_msg_body(msg);
		size_t len = nng_msg_len(msg);
		const uint8_t *nul = memchr(body, '\0', len);
		Noetl__Change *chg = NULL;
		if (nul != NULL)
			chg = noetl__change__unpack(NULL, len - (size_t)(nul + 1 - body), nul + 1);
		nng_msg_free(msg);
		if (chg == NULL) {
			log_warn("%s: a stream message does not decode; resyncing", s->name);
			need = true;
			continue;
		}
		if (chg->heartbeat) {
			if (chg->revision > s->covered)
				need = true;
		} else if (chg->revision > s->last) {
			uint64_t prev =
			        s->topic[0] != '\0' ? chg->prev_topic_revision : chg->prev_revision;
			if (prev == s->last)
				need = !apply(s, chg);
			else
				need = true; /* a gap: something was dropped */
		}
		noetl__change__free_unpacked(chg, NULL);
	}
	return NULL;
}

int stream_sub_create(struct rpc_client *client, const ProtobufCServiceDescriptor *svc,
                      const char *pub_url, const struct stream_sub_options *opt, stream_apply_fn fn,
                      void *arg, struct stream_sub **out)
{
	struct stream_sub_options o = {0};
	if (opt != NULL)
		o = *opt;
	struct stream_sub *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->client = client;
	s->svc = svc;
	s->fn = fn;
	s->arg = arg;
	s->topic = util_xstrdup(o.topic != NULL ? o.topic : "");
	s->token = util_xstrdup(o.token != NULL ? o.token : "");
	snprintf(s->name, sizeof(s->name), "%s", o.name != NULL ? o.name : "stream");
	s->page = o.page > 0 ? o.page : 500;
	s->hb_timeout_ms = o.heartbeat_timeout_ms > 0 ? o.heartbeat_timeout_ms : 3000;
	s->call_timeout_ms = o.call_timeout_ms > 0 ? o.call_timeout_ms : 5000;
	s->last = o.since;
	s->covered = o.since;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);

	nng_dialer d;
	int rv = nng_sub0_open(&s->sock);
	if (rv != 0)
		goto fail;
	nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 1024);
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 100);
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 2 * RPC_DEFAULT_MAX_MSG);
	if (s->topic[0] != '\0') {
		/* our tenant's changes ("tenant\0...") and heartbeats ("\0...") */
		char prefix[160];
		size_t tl = strlen(s->topic);
		if (tl + 1 > sizeof(prefix)) {
			rv = NNG_EINVAL;
			goto fail;
		}
		memcpy(prefix, s->topic, tl + 1);
		if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, prefix, tl + 1)) != 0 ||
		    (rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 1)) != 0)
			goto fail;
	} else if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0) {
		goto fail;
	}
	if ((rv = nng_dialer_create(&d, s->sock, pub_url)) != 0)
		goto fail;
	if (strncmp(pub_url, "tls+", 4) == 0) {
		int err = rpc_tls_config(o.tls, false, pub_url, &s->tls);
		if (err != 0) {
			stream_sub_destroy(s);
			return err;
		}
		nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, s->tls);
	}
	if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0)
		goto fail;
	if (pthread_create(&s->thread, NULL, sub_thread, s) != 0) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	log_error("%s: cannot subscribe to '%s': %s", s->name, pub_url, nng_strerror(rv));
	rpc_nng_close(s->sock);
	s->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
	stream_sub_destroy(s);
	return rpc_nng_errno(rv);
}

uint64_t stream_sub_revision(struct stream_sub *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t r = s->last;
	pthread_mutex_unlock(&s->mu);
	return r;
}

uint64_t stream_sub_resyncs(struct stream_sub *s)
{
	return atomic_load(&s->resyncs);
}

bool stream_sub_wait(struct stream_sub *s, uint64_t rev, int timeout_ms)
{
	int64_t deadline = util_mono_ms() + timeout_ms;
	pthread_mutex_lock(&s->mu);
	while (s->last < rev) {
		int64_t left = deadline - util_mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (left > 50 ? 50 : left) * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	bool ok = s->last >= rev;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void stream_sub_destroy(struct stream_sub *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stop, true);
	if (s->thread != 0)
		pthread_join(s->thread, NULL);
	/* closes the dialer too; closing it first races an arriving message
	 * like the socket's own close (see rpc_nng_close) */
	rpc_nng_close(s->sock);
	if (s->tls != NULL)
		nng_tls_config_free(s->tls);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->topic);
	free(s->token);
	free(s);
}
