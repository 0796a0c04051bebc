/*
 * server.c - the HTTP server: evhttp on the loop thread, handlers on a
 * worker pool (pool.c).
 *
 * Life of a request:
 *   loop:   intake.c copies it into a struct req, matches the route (404,
 *           405, 413 ... are answered there) and queues it as a job;
 *   worker: dispatch.c authenticates, runs the handler, and the pool puts
 *           the finished job on the done list and wakes the loop;
 *   loop:   intake.c turns the response into an evhttp reply and frees req.
 *
 * SIGTERM/SIGINT: stop accepting, let queued and running requests (and
 * periodic runs) finish, then leave the loop (bounded by a drain timeout)
 * and join the workers.
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "http/sse.h"
#include "http/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>


/*
 * The last replies were only queued by evhttp_send_reply: their bytes go
 * out when the loop next sees the sockets writable.  Leaving the loop at
 * once dropped them (the client saw the connection close with no answer),
 * so the loop runs on this long after the last request finished.
 */
#define DRAIN_FLUSH_MS 200

void server_maybe_finish_drain(struct http_server *srv)
{
	struct timeval tv = {0, DRAIN_FLUSH_MS * 1000};

	if (srv->draining && srv->inflight == 0)
		event_base_loopexit(srv->base, &tv);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	log_warn("drain timeout: %ld request(s) still running; exiting", srv->inflight);
	event_base_loopexit(srv->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct http_server *srv = arg;
	struct timeval tv = {DRAIN_TIMEOUT_S, 0};

	(void)what;
	if (srv->draining)
		return;
	log_info("signal %d: draining %ld in-flight request(s)", (int)sig, srv->inflight);
	srv->draining = true;
	if (srv->bound != NULL) {
		evhttp_del_accept_socket(srv->http, srv->bound);
		srv->bound = NULL;
	}
	if (srv->mbound != NULL) {
		evhttp_del_accept_socket(srv->mhttp, srv->mbound);
		srv->mbound = NULL;
	}
	periodic_stop(srv);
	sse_hub_shutdown(srv->hub);
	srv->ev_drain = evtimer_new(srv->base, on_drain_timeout, srv);
	if (srv->ev_drain != NULL)
		evtimer_add(srv->ev_drain, &tv);
	server_maybe_finish_drain(srv);
}

/* ------------------------------------------------------------------ */
/* Set-up and tear-down                                                */
/* ------------------------------------------------------------------ */

struct http_server *http_server_new(const struct nc_config *cfg, const struct route *routes)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));

	srv->cfg = cfg;
	srv->routes = routes;
	pthread_mutex_init(&srv->q_mu, NULL);
	pthread_cond_init(&srv->q_cv, NULL);
	pthread_mutex_init(&srv->d_mu, NULL);
	return srv;
}

static int split_listen(const char *addr, char *host, size_t hostlen, ev_uint16_t *port)
{
	const char *colon = strrchr(addr, ':');
	long p;
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - addr);
	if (hl >= hostlen || parse_long(colon + 1, 0, 65535, &p) != 0)
		return -1;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (host[0] == '\0')
		snprintf(host, hostlen, "0.0.0.0");
	*port = (ev_uint16_t)p;
	return 0;
}

static int bound_port(struct evhttp_bound_socket *b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(b);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/*
 * GET /metrics on its own listener (METRICS_ADDR, loopback by default), so
 * that the public port does not serve it (metrics.c decides who may read).
 * Same loop, same connection guard and framing check; no other route.
 */
static int metrics_listen(struct http_server *srv)
{
	const char *addr = srv->cfg->metrics_addr;
	char host[256];
	ev_uint16_t port;

	if (addr == NULL || *addr == '\0' || strcasecmp(addr, "off") == 0)
		return 0;
	if (split_listen(addr, host, sizeof(host), &port) != 0) {
		log_error("config: METRICS_ADDR must be host:port or off");
		return -1;
	}
	srv->mhttp = evhttp_new(srv->base);
	if (srv->mhttp == NULL)
		return -1;
	evhttp_set_max_body_size(srv->mhttp, 4096);
	evhttp_set_max_headers_size(srv->mhttp, MAX_HEADERS_SIZE);
	evhttp_set_timeout(srv->mhttp, srv->cfg->request_timeout_s);
	evhttp_set_allowed_methods(srv->mhttp, ALLOWED_METHODS);
	evhttp_set_gencb(srv->mhttp, intake_on_metrics_request, srv);
	evhttp_set_bevcb(srv->mhttp, guard_new_bev, srv);
	srv->mbound = evhttp_bind_socket_with_handle(srv->mhttp, host, port);
	if (srv->mbound == NULL) {
		log_error("cannot listen on METRICS_ADDR %s: %s", addr, strerror(errno));
		return -1;
	}
	log_info("metrics on %s:%d (GET /metrics%s)", host, bound_port(srv->mbound),
		 srv->cfg->metrics_token && *srv->cfg->metrics_token ? ", bearer token required" : "");
	return 0;
}

int http_server_run(struct http_server *srv)
{
	char host[256];
	ev_uint16_t port;
	int rc = -1;

	if (evthread_use_pthreads() != 0) {
		log_error("libevent: no pthreads support");
		return -1;
	}
	if (split_listen(srv->cfg->listen_addr, host, sizeof(host), &port) != 0) {
		log_error("config: LISTEN_ADDR must be host:port");
		return -1;
	}
	srv->base = event_base_new();
	if (srv->base == NULL)
		return -1;
	srv->http = evhttp_new(srv->base);
	srv->d_ev = event_new(srv->base, -1, EV_PERSIST | EV_READ, pool_on_done, srv);
	srv->ev_term = evsignal_new(srv->base, SIGTERM, on_signal, srv);
	srv->ev_int = evsignal_new(srv->base, SIGINT, on_signal, srv);
	if (srv->http == NULL || srv->d_ev == NULL || srv->ev_term == NULL || srv->ev_int == NULL ||
	    event_add(srv->d_ev, NULL) != 0 || evsignal_add(srv->ev_term, NULL) != 0 ||
	    evsignal_add(srv->ev_int, NULL) != 0) {
		log_error("libevent: set-up failed");
		return -1;
	}
	evhttp_set_max_body_size(srv->http, HARD_BODY_LIMIT);
	evhttp_set_max_headers_size(srv->http, MAX_HEADERS_SIZE);
	evhttp_set_timeout(srv->http, srv->cfg->request_timeout_s);
	evhttp_set_allowed_methods(srv->http, ALLOWED_METHODS);
	evhttp_set_gencb(srv->http, intake_on_request, srv);
	evhttp_set_bevcb(srv->http, guard_new_bev, srv);
	srv->ev_guard = event_new(srv->base, -1, EV_PERSIST, guard_on_tick, srv);
	srv->ev_doom = event_new(srv->base, -1, 0, guard_on_doom, srv);
	{
		struct timeval one = {1, 0};
		if (srv->ev_guard == NULL || srv->ev_doom == NULL ||
		    event_add(srv->ev_guard, &one) != 0) {
			log_error("libevent: cannot add the connection guard timer");
			return -1;
		}
	}
	srv->hub = sse_hub_new(srv->base, srv->cfg);
	srv->bound = evhttp_bind_socket_with_handle(srv->http, host, port);
	if (srv->bound == NULL) {
		log_error("cannot listen on %s: %s", srv->cfg->listen_addr, strerror(errno));
		return -1;
	}
	if (metrics_listen(srv) != 0)
		return -1;

	pool_start(srv);
	periodic_start(srv);
	guard_on_tick(-1, 0, srv); /* first sample of the loop-side gauges */
	log_info("listening on %s:%d with %d workers", host, bound_port(srv->bound), srv->n_workers);

	if (event_base_dispatch(srv->base) == 0)
		rc = 0;

	/* Stop the workers: they finish what is queued, then exit. */
	pool_stop(srv);
	log_info("stopped");
	return rc;
}

void http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	periodic_free(srv);
	if (srv->ev_drain != NULL)
		event_free(srv->ev_drain);
	sse_hub_free(srv->hub);
	if (srv->ev_term != NULL)
		event_free(srv->ev_term);
	if (srv->ev_int != NULL)
		event_free(srv->ev_int);
	if (srv->d_ev != NULL)
		event_free(srv->d_ev);
	if (srv->http != NULL)
		evhttp_free(srv->http);
	if (srv->mhttp != NULL)
		evhttp_free(srv->mhttp);
	guard_free(srv);
	if (srv->ev_guard != NULL)
		event_free(srv->ev_guard);
	if (srv->ev_doom != NULL)
		event_free(srv->ev_doom);
	if (srv->base != NULL)
		event_base_free(srv->base);
	free(srv->workers);
	pthread_mutex_destroy(&srv->q_mu);
	pthread_cond_destroy(&srv->q_cv);
	pthread_mutex_destroy(&srv->d_mu);
	free(srv);
}
