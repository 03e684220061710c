/*
 * svcmain: the start-up and stop of a service process; see svcmain.h.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "svcmain.h"

bool svcmain_configure(const struct config_spec *spec, const struct svcmain_common *c,
                       const char *log_name, int argc, char **argv, int *status)
{
	int next;
	bool help = false;
	char *err = NULL;
	if (config_load(spec, argc, argv, &next, &help, &err) != 0) {
		*status = svcmain_refuse(spec, "%s", err != NULL ? err : "bad configuration");
		free(err);
		return false;
	}
	if (help) {
		config_usage(spec, stdout);
		config_free(spec->options);
		*status = 0;
		return false;
	}
	if (next < argc) {
		*status = svcmain_refuse(spec, "unexpected argument '%s'; see --help", argv[next]);
		return false;
	}
	enum log_level lvl = LOG_LEVEL_INFO;
	log_level_parse(c->log_level, &lvl);
	log_setup(log_name, lvl, c->log_json);
	return true;
}

int svcmain_refuse(const struct config_spec *spec, const char *why, ...)
{
	va_list ap;
	va_start(ap, why);
	fprintf(stderr, "%s: ", spec->program);
	vfprintf(stderr, why, ap);
	fputc('\n', stderr);
	va_end(ap);
	config_free(spec->options);
	return 2;
}

void svcmain_block_signals(sigset_t *set, bool usr, bool ignore_sigpipe)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	if (usr) {
		sigaddset(set, SIGUSR1);
		sigaddset(set, SIGUSR2);
	}
	pthread_sigmask(SIG_BLOCK, set, NULL);
	if (ignore_sigpipe)
		signal(SIGPIPE, SIG_IGN);
}

int svcmain_wait(const sigset_t *set)
{
	int sig = 0;
	/* sigwait fails only for a bad set, which svcmain_block_signals does
	 * not make; a 0 then still means "stop" to the caller */
	if (sigwait(set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGUSR2))
		return sig;
	log_info("stopping on signal %d", sig);
	return sig;
}

int svcmain_serve(const struct rpc_server_options *so, ProtobufCService *svc,
                  const struct config_list *urls, struct rpc_server **out)
{
	struct rpc_server *s;
	int rc = rpc_server_create(so, &s);
	if (rc != 0)
		return rc;
	if ((rc = rpc_server_add(s, svc)) != 0)
		goto fail;
	for (size_t i = 0; i < urls->count; i++)
		if ((rc = rpc_server_listen(s, urls->items[i])) != 0)
			goto fail;
	if ((rc = rpc_server_start(s)) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	rpc_server_destroy(s);
	return rc;
}

int svcmain_http(const char *url, const struct httpd_options *ho, struct httpd **out)
{
	struct httpd *h = NULL;
	if (url == NULL || url[0] == '\0') {
		*out = NULL;
		return 0;
	}
	int rc = httpd_create(url, ho, &h);
	if (rc == 0)
		rc = httpd_start(h);
	if (rc != 0) {
		log_error("cannot serve HTTP on '%s': %s; pick another --http address", url,
		          strerror(-rc));
		httpd_destroy(h);
		return rc;
	}
	*out = h;
	return 0;
}

int svcmain_server_start(struct svcmain_server *s, const struct rpc_server_options *so,
                         ProtobufCService *svc, const struct config_list *urls,
                         const char *http_url, const struct httpd_options *ho)
{
	int rc = svcmain_serve(so, svc, urls, &s->rpc);
	if (rc != 0)
		return rc;
	struct httpd_options o = *ho;
	o.metrics = s->metrics;
	return svcmain_http(http_url, &o, &s->http);
}

void svcmain_server_stop(struct svcmain_server *s)
{
	httpd_destroy(s->http);
	s->http = NULL;
	rpc_server_destroy(s->rpc);
	s->rpc = NULL;
}
