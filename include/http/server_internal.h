/*
 * server_internal.h - what the files of the HTTP server share (private to
 * src/http/; nothing outside that folder includes it).
 *
 *   server.c      set-up, the listeners, signals and draining, tear-down
 *   intake.c      loop side of a request: evhttp request -> struct req,
 *                 answers that need no worker, and the reply
 *   dispatch.c    worker side of a request: auth, rate limit, prologue,
 *                 the handler
 *   pool.c        the worker pool (a queue of jobs) and periodic jobs
 *   conn_guard.c  connection limit, idle/slow clients, strict framing
 *   request.c     the req_* and resp_* accessors
 *
 * Threads: everything here runs on the loop thread except the job
 * functions (pool.c, dispatch.c), which run on workers; the queue and the
 * done list are the only state both touch, under their mutexes.
 */
#ifndef NC_SERVER_INTERNAL_H
#define NC_SERVER_INTERNAL_H

#include "http/http.h"
#include "http/http_framing.h"
#include "http/req_private.h"

#include <event2/util.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define HARD_BODY_LIMIT (1024 * 1024)  /* libevent closes above this; we answer 413 above max_body_bytes */
#define MAX_HEADERS_SIZE (16 * 1024)
#define DRAIN_TIMEOUT_S 25
#define MAX_PERIODIC 8
#define GUARD_BUCKETS 4096

/*
 * Every method reaches on_request, so that the ones no route serves get a
 * JSON 501 rather than evhttp's HTML page.  libevent 2.1 gives a method it
 * does not know the type EVHTTP_REQ_UNKNOWN_ (1 << 15, http-internal.h) and
 * lets it through only when that bit is among the allowed methods.
 */
#if defined(LIBEVENT_VERSION_NUMBER) && LIBEVENT_VERSION_NUMBER >= 0x02020000
#define NC_EVHTTP_REQ_UNKNOWN 0
#else
#define NC_EVHTTP_REQ_UNKNOWN (1 << 15)
#endif
#define ALLOWED_METHODS                                                                        \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | \
	 EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |            \
	 NC_EVHTTP_REQ_UNKNOWN)

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct bufferevent;
struct evbuffer_cb_entry;
struct sse_hub;

/* A job the server runs every interval_s seconds (http_server_add_periodic). */
struct periodic {
	struct http_server *srv;
	struct event *ev;
	int interval_s;
	nc_job_fn fn;
	void *arg;
	const char *name;
	bool running;             /* queued or running: one run at a time per instance */
	struct job job;
};

/* One client connection, as seen through the bufferevent libevent gives it. */
struct guard_entry {
	struct http_server *srv;
	struct bufferevent *bev;  /* we hold a reference until libevent is done with it */
	int64_t since_ms;         /* opened, or last request answered */
	int busy;                 /* requests being handled (or 1 for an event stream) */
	bool stream;              /* an event stream: exempt from the idle limit */
	bool doomed;              /* over the connection limit: close on the next tick */
	/* Framing check of every byte received (see conn_guard.c). */
	struct evbuffer_cb_entry *in_cb;
	struct http_framer fr;
	unsigned n_req;           /* requests evhttp has handed to on_request */
	unsigned bad_req;         /* with frame_bad: this request and later ones never run */
	bool frame_bad;
	bool frame_answered;      /* the 400 went out directly; later input is discarded */
	struct guard_entry *next;
};

struct http_server {
	const struct nc_config *cfg;
	const struct route *routes;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evhttp *mhttp;                /* METRICS_ADDR listener, or NULL */
	struct evhttp_bound_socket *mbound;

	/* Job queue: loop -> workers. */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct job *q_head, *q_tail;
	size_t q_len;
	bool q_closed;

	/* Done list: workers -> loop. */
	pthread_mutex_t d_mu;
	struct job *d_head, *d_tail;
	struct event *d_ev;

	struct nc_worker *workers;
	int n_workers;

	long inflight;            /* requests and periodic runs not yet done; loop thread only */
	bool draining;
	struct event *ev_term, *ev_int, *ev_drain;
	struct periodic periodic[MAX_PERIODIC];
	int n_periodic;
	struct sse_hub *hub;      /* event streams, loop thread only */
	atomic_int busy_workers;  /* workers running a job = DB/Redis connections in use */

	/* Connection guard (loop thread only): see conn_guard.c. */
	struct guard_entry *guard[GUARD_BUCKETS];
	size_t n_conns;
	struct event *ev_guard;
	struct event *ev_doom;               /* one-shot: close connections over the limit */
};

static inline int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* server.c: leave the loop once draining and nothing is in flight. */
void server_maybe_finish_drain(struct http_server *srv);

/* intake.c: evhttp callbacks of the two listeners; send r's reply and free it. */
void intake_on_request(struct evhttp_request *evreq, void *arg);
void intake_on_metrics_request(struct evhttp_request *evreq, void *arg);
void intake_finish(struct http_server *srv, struct req *r);

/* dispatch.c: the job of a request (worker side); a handler run as is (loop side). */
void dispatch_job(struct nc_worker *w, void *arg);
void dispatch_run_handler(struct req *r);

/* request.c */
void req_free(struct req *r);
void req_clear_out_headers(struct req *r);

/*
 * pool.c: queue j for a worker (false when the queue is full or closed);
 * start and stop the workers; the done list's event callback; periodic
 * timers.
 */
bool pool_submit(struct http_server *srv, struct job *j);
void pool_start(struct http_server *srv);
void pool_stop(struct http_server *srv);
void pool_on_done(evutil_socket_t fd, short what, void *arg);
void periodic_start(struct http_server *srv);
void periodic_stop(struct http_server *srv);
void periodic_free(struct http_server *srv);

/* conn_guard.c */
struct bufferevent *guard_new_bev(struct event_base *base, void *arg);
struct guard_entry *guard_of(struct http_server *srv, struct evhttp_request *evreq);
void guard_mark(struct http_server *srv, struct evhttp_request *evreq, int delta, bool stream);
void guard_on_tick(evutil_socket_t fd, short what, void *arg);
void guard_on_doom(evutil_socket_t fd, short what, void *arg);
void guard_free(struct http_server *srv);

#endif
