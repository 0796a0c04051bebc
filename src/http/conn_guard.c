/*
 * conn_guard.c - guards against clients that are slow, too many or
 * malformed: the connection limit, the idle/slow-sender limit and the strict
 * request framing check (loop thread only).
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/sse.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* Connection guard                                                    */
/* ------------------------------------------------------------------ */

/*
 * libevent 2.1's evhttp has no connection limit and no limit on how long a
 * client may take to send a request: a slowloris client trickling one
 * header line every few seconds keeps resetting the read timeout.  The one
 * public hook on new connections is the bufferevent factory
 * (evhttp_set_bevcb), so the guard creates each connection's bufferevent
 * itself and keeps a reference to it.  Once a second it walks its table:
 *   - a bufferevent whose callbacks libevent cleared has been freed by
 *     evhttp: drop our reference (this closes the socket) and forget it;
 *   - a connection over MAX_CONNECTIONS is shut down at once (from a
 *     one-shot event of its own: activating the persistent once-a-second
 *     timer by hand would push its next run a whole period later, so a
 *     stream of connections over the limit would stop the guard from
 *     ever releasing or cutting anything);
 *   - a connection that has not completed a request within
 *     CONN_IDLE_TIMEOUT_SECONDS of opening or of its previous answer (an
 *     idle keep-alive connection, or a slow sender) is shut down.
 * Shutting the socket down makes evhttp see EOF and free the connection in
 * its normal way.  Before a new connection is counted against the limit,
 * the connections evhttp has already freed are released, so the limit never
 * counts connections that are gone but not yet swept by the tick.
 */

/* ------------------------------------------------------------------ */
/* Request framing                                                     */
/* ------------------------------------------------------------------ */

/*
 * evhttp frames requests leniently (http_framing.h), so every byte a client
 * sends also goes through our own strict framer, from a callback on the
 * connection's input buffer: it runs as the bytes arrive, before evhttp's
 * read callback parses them.  At the first violation the connection is
 * lost for good (RFC 9112 6.3: answer 400, then close):
 *   - when nothing earlier on the connection is still unanswered, the 400
 *     is written at once, the buffered input is discarded (so evhttp never
 *     completes the request, nor anything behind it) and the socket is shut
 *     for writing; the guard closes it shortly after;
 *   - otherwise the earlier requests are answered as usual and on_request
 *     answers the broken one (and anything after it) 400 with
 *     "Connection: close", without running it.
 * A framing evhttp itself cannot parse also ends in evhttp's own 400 and a
 * closed connection; either way the bytes behind it never run.
 */
#define FRAMING_LINGER_MS 2000

static void framing_answer(struct guard_entry *g)
{
	evutil_socket_t fd = bufferevent_getfd(g->bev);
	char msg[160], head[256];
	json_t *e;
	char *body;
	int hn;

	if (fd < 0)
		return;
	snprintf(msg, sizeof(msg), "malformed request framing: %s", g->fr.error);
	e = json_pack("{s:{s:s, s:s}}", "error", "code", err_code_name(NC_EBADREQ), "message", msg);
	body = e ? json_dumps(e, JSON_COMPACT) : NULL;
	json_decref(e);
	if (body == NULL)
		fatal("out of memory (framing error body)");
	hn = snprintf(head, sizeof(head),
		      "HTTP/1.1 400 Bad Request\r\n"
		      "Content-Type: application/json; charset=utf-8\r\n"
		      "Content-Length: %zu\r\n"
		      "Connection: close\r\n"
		      "X-Content-Type-Options: nosniff\r\n"
		      "Cache-Control: no-store\r\n\r\n",
		      strlen(body));
	/* A few hundred bytes into an idle socket: one send, nothing queued. */
	if (hn > 0 && send(fd, head, (size_t)hn, MSG_NOSIGNAL | MSG_DONTWAIT) == hn)
		(void)!send(fd, body, strlen(body), MSG_NOSIGNAL | MSG_DONTWAIT);
	free(body);
	shutdown(fd, SHUT_WR);
}

static void framing_refused(struct guard_entry *g, struct evbuffer *in)
{
	struct http_server *srv = g->srv;
	char peer[64] = "?";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(g->bev);

	g->frame_bad = true;
	g->bad_req = g->fr.requests > 0 ? g->fr.requests - 1 : 0;
	metrics_inc(M_BAD_FRAMING);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof(peer));
	}
	log_warn("request framing refused from %s (%s): 400, connection closed", peer, g->fr.error);
	if (g->busy == 0 && g->n_req == g->bad_req &&
	    evbuffer_get_length(bufferevent_get_output(g->bev)) == 0) {
		framing_answer(g);
		g->frame_answered = true;
		evbuffer_drain(in, evbuffer_get_length(in));
		/* let the client read the answer, then the guard closes the socket */
		g->since_ms = now_ms() - (int64_t)srv->cfg->conn_idle_timeout_s * 1000 + FRAMING_LINGER_MS;
	}
}

static void on_conn_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
	struct guard_entry *g = arg;
	size_t len = evbuffer_get_length(in), left = info->n_added;
	struct evbuffer_ptr pos;

	if (left == 0)
		return;
	if (g->frame_answered) {
		evbuffer_drain(in, len);
		return;
	}
	if (g->frame_bad || left > len)
		return;
	if (evbuffer_ptr_set(in, &pos, len - left, EVBUFFER_PTR_SET) != 0)
		return;
	while (left > 0) {
		struct evbuffer_iovec v[8];
		int n = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, 8);
		size_t done = 0;

		if (n <= 0)
			return;
		for (int i = 0; i < n && i < 8 && done < left; i++) {
			size_t take = v[i].iov_len < left - done ? v[i].iov_len : left - done;

			if (http_framer_feed(&g->fr, v[i].iov_base, take) != 0) {
				framing_refused(g, in);
				return;
			}
			done += take;
		}
		if (done == 0)
			return;
		left -= done;
		if (left > 0 && evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_ADD) != 0)
			return;
	}
}

static unsigned guard_hash(const void *p)
{
	return (unsigned)(((uintptr_t)p >> 4) % GUARD_BUCKETS);
}

static struct guard_entry *guard_find(struct http_server *srv, const struct bufferevent *bev)
{
	for (struct guard_entry *g = srv->guard[guard_hash(bev)]; g != NULL; g = g->next)
		if (g->bev == bev)
			return g;
	return NULL;
}

/* Forget *pp (evhttp has freed its connection): drop our hold, which closes the socket. */
static void guard_release(struct http_server *srv, struct guard_entry **pp)
{
	struct guard_entry *g = *pp;

	*pp = g->next;
	evbuffer_remove_cb_entry(bufferevent_get_input(g->bev), g->in_cb);
	bufferevent_decref(g->bev);
	free(g);
	srv->n_conns--;
}

static bool guard_freed_by_evhttp(const struct guard_entry *g)
{
	bufferevent_event_cb ecb = NULL;

	/* bufferevent_free (evhttp_connection_free) clears the callbacks */
	bufferevent_getcb(g->bev, NULL, NULL, &ecb, NULL);
	return ecb == NULL;
}

/* Release every connection evhttp has freed (not while one is being set up). */
static void guard_reap(struct http_server *srv)
{
	for (unsigned h = 0; h < GUARD_BUCKETS; h++) {
		struct guard_entry **pp = &srv->guard[h];

		while (*pp != NULL) {
			if (guard_freed_by_evhttp(*pp))
				guard_release(srv, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

struct bufferevent *guard_new_bev(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct guard_entry *g;
	unsigned h;

	if (bev == NULL)
		return NULL;
	/* at the limit: first forget the connections that are already gone */
	if (srv->n_conns >= (size_t)srv->cfg->max_connections)
		guard_reap(srv);
	g = xcalloc(1, sizeof(*g));
	g->srv = srv;
	g->bev = bev;
	g->since_ms = now_ms();
	http_framer_init(&g->fr);
	g->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_conn_input, g);
	if (g->in_cb == NULL)
		fatal("out of memory (evbuffer_add_cb)");
	bufferevent_incref(bev);
	h = guard_hash(bev);
	g->next = srv->guard[h];
	srv->guard[h] = g;
	srv->n_conns++;
	if (srv->n_conns > (size_t)srv->cfg->max_connections) {
		g->doomed = true;
		event_active(srv->ev_doom, EV_TIMEOUT, 0); /* close it right after accept */
	}
	return bev;
}

static void guard_close(struct guard_entry *g)
{
	evutil_socket_t fd = bufferevent_getfd(g->bev);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

struct guard_entry *guard_of(struct http_server *srv, struct evhttp_request *evreq)
{
	struct evhttp_connection *con = evreq ? evhttp_request_get_connection(evreq) : NULL;

	return con ? guard_find(srv, evhttp_connection_get_bufferevent(con)) : NULL;
}

void guard_mark(struct http_server *srv, struct evhttp_request *evreq, int delta, bool stream)
{
	struct guard_entry *g = guard_of(srv, evreq);

	if (g == NULL)
		return;
	g->busy += delta;
	if (g->busy < 0)
		g->busy = 0;
	g->stream |= stream;
	g->since_ms = now_ms();
}

static void guard_close_doomed(struct http_server *srv, struct guard_entry *g, int64_t now)
{
	log_warn("connection limit (%d) reached: closing a new connection",
		 srv->cfg->max_connections);
	g->doomed = false;
	guard_close(g);
	g->since_ms = now; /* give evhttp a moment to notice */
}

/* The one-shot event guard_new_bev activates: close the connections over the limit. */
void guard_on_doom(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	int64_t now = now_ms();

	(void)fd;
	(void)what;
	for (unsigned h = 0; h < GUARD_BUCKETS; h++)
		for (struct guard_entry *g = srv->guard[h]; g != NULL; g = g->next)
			if (g->doomed)
				guard_close_doomed(srv, g, now);
}

void guard_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	int64_t now = now_ms(), idle_ms = (int64_t)srv->cfg->conn_idle_timeout_s * 1000;

	(void)fd;
	(void)what;
	/* Loop-side gauges, sampled once a second. */
	metrics_set_gauge("nchat_connections_open", (double)srv->n_conns);
	metrics_set_gauge("nchat_sse_connections", (double)sse_hub_count(srv->hub));
	metrics_set_gauge("nchat_requests_in_flight", (double)srv->inflight);
	pthread_mutex_lock(&srv->q_mu);
	metrics_set_gauge("nchat_worker_queue_length", (double)srv->q_len);
	pthread_mutex_unlock(&srv->q_mu);
	metrics_set_gauge("nchat_workers", (double)srv->n_workers);
	/* Each worker owns one Postgres and one Redis connection: busy workers = pool use. */
	metrics_set_gauge("nchat_workers_busy", (double)atomic_load(&srv->busy_workers));
	for (unsigned h = 0; h < GUARD_BUCKETS; h++) {
		struct guard_entry **pp = &srv->guard[h];

		while (*pp != NULL) {
			struct guard_entry *g = *pp;

			if (guard_freed_by_evhttp(g) && now - g->since_ms > 100) {
				/* evhttp freed the connection: release our hold. */
				guard_release(srv, pp);
				continue;
			}
			if (g->doomed) {
				guard_close_doomed(srv, g, now);
			} else if (!g->stream && g->busy == 0 && now - g->since_ms > idle_ms) {
				metrics_inc(M_CONN_CLOSED_IDLE);
				guard_close(g);
				g->since_ms = now; /* give evhttp a moment to notice */
			}
			pp = &g->next;
		}
	}
}

void guard_free(struct http_server *srv)
{
	for (unsigned h = 0; h < GUARD_BUCKETS; h++) {
		while (srv->guard[h] != NULL) {
			struct guard_entry *g = srv->guard[h];
			srv->guard[h] = g->next;
			evbuffer_remove_cb_entry(bufferevent_get_input(g->bev), g->in_cb);
			bufferevent_decref(g->bev);
			free(g);
		}
	}
	srv->n_conns = 0;
}
