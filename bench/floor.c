/*
 * floor: an empty nng HTTP handler. See floor.h.
 */
#include "floor.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <stdlib.h>

struct floor_server {
	nng_url *url;
	nng_http_server *server;
};

static void empty_handler(nng_aio *aio)
{
	static const char body[] = "{\"accepted\":1,\"ids\":[\"01M83WPN5AVQ98GKD3WAYDV55R\"]}";
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, 202);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	nng_http_res_copy_data(res, body, sizeof(body) - 1);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int floor_start(struct floor_server **out, int *port)
{
	struct floor_server *f = calloc(1, sizeof(*f));
	nng_http_handler *h = NULL;
	if (f == NULL)
		return -1;
	if (nng_url_parse(&f->url, "http://127.0.0.1:0") != 0 ||
	    nng_http_server_hold(&f->server, f->url) != 0 ||
	    nng_http_handler_alloc(&h, "/events", empty_handler) != 0 ||
	    nng_http_handler_set_method(h, "POST") != 0 || nng_http_handler_set_tree(h) != 0 ||
	    nng_http_handler_collect_body(h, true, 1 << 20) != 0 ||
	    nng_http_server_add_handler(f->server, h) != 0) {
		if (h != NULL)
			nng_http_handler_free(h);
		floor_stop(f);
		return -1;
	}
	if (nng_http_server_start(f->server) != 0) {
		floor_stop(f);
		return -1;
	}
	nng_sockaddr sa;
	nng_http_server_get_addr(f->server, &sa);
	*port = ntohs(sa.s_in.sa_port);
	*out = f;
	return 0;
}

void floor_stop(struct floor_server *f)
{
	if (f == NULL)
		return;
	if (f->server != NULL) {
		nng_http_server_stop(f->server);
		nng_http_server_release(f->server);
	}
	if (f->url != NULL)
		nng_url_free(f->url);
	free(f);
}
