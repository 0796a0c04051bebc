/*
 * http_server.c - evhttp on the loop thread, handlers on a worker pool.
 *
 * Life of a request:
 *   loop:   on_request() copies method, path, query, headers and body into a
 *           struct req, matches the route (404/405/413 are answered here),
 *           and queues it;
 *   worker: worker_main() pops it, authenticates, runs the handler, pushes
 *           the finished req onto the done list and wakes the loop;
 *   loop:   on_done() turns the response into an evhttp reply and frees req.
 * Only the loop thread touches libevent objects.  If a client goes away while
 * a worker is busy, libevent detaches the request and frees it when we reply,
 * so every request is answered exactly once, even late.
 *
 * SIGTERM/SIGINT: stop accepting, let queued and running requests finish,
 * then leave the loop (bounded by a drain timeout) and join the workers.
 */
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "sse.h"
#include "worker.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HARD_BODY_LIMIT (1024 * 1024)  /* libevent closes above this; we answer 413 above max_body_bytes */
#define MAX_HEADERS_SIZE (16 * 1024)
#define DRAIN_TIMEOUT_S 25
#define MAX_PERIODIC 4
#define GUARD_BUCKETS 4096

struct periodic {
	struct http_server *srv;
	struct event *ev;
	int interval_s;
	route_handler handler;
	const char *name;
	bool running;             /* one run at a time per instance */
	struct route route;
};

/* One client connection, as seen through the bufferevent libevent gives it. */
struct guard_entry {
	struct bufferevent *bev;  /* we hold a reference until libevent is done with it */
	int64_t since_ms;         /* opened, or last request answered */
	int busy;                 /* requests being handled (or 1 for an event stream) */
	bool stream;              /* an event stream: exempt from the idle limit */
	bool doomed;              /* over the connection limit: close on the next tick */
	struct guard_entry *next;
};

struct http_server {
	const struct nc_config *cfg;
	const struct route *routes;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;

	/* Work queue: loop -> workers. */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct req *q_head, *q_tail;
	size_t q_len;
	bool q_closed;

	/* Done list: workers -> loop. */
	pthread_mutex_t d_mu;
	struct req *d_head, *d_tail;
	struct event *d_ev;

	struct nc_worker *workers;
	int n_workers;

	long inflight;            /* loop thread only */
	bool draining;
	struct event *ev_term, *ev_int, *ev_drain;
	struct periodic periodic[MAX_PERIODIC];
	int n_periodic;
	struct sse_hub *hub;      /* event streams, loop thread only */
	atomic_int busy_workers;  /* workers running a handler = DB/Redis connections in use */

	/* Connection guard (loop thread only): see "Connection guard" below. */
	struct guard_entry *guard[GUARD_BUCKETS];
	size_t n_conns;
	struct event *ev_guard;
};

static void guard_mark(struct http_server *srv, struct evhttp_request *evreq, int delta,
		       bool stream);

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* Request context                                                     */
/* ------------------------------------------------------------------ */

static void free_headers(struct http_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

static void req_free(struct req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r->path_buf);
	free(r->query);
	free_headers(r->headers, r->n_headers);
	free(r->body);
	free_headers(r->out_headers, r->n_out);
	free(r->resp_body);
	free(r->sse);
	free(r);
}

const char *req_header(const struct req *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

const char *req_param(const struct req *r, const char *name)
{
	return route_param(&r->match, name);
}

char *req_query(const struct req *r, const char *key)
{
	struct evkeyvalq q;
	const char *v;
	char *out = NULL;

	if (r->query == NULL)
		return NULL;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(r->query, &q) != 0) {
		evhttp_clear_headers(&q);
		return NULL;
	}
	v = evhttp_find_header(&q, key);
	if (v != NULL)
		out = xstrdup(v);
	evhttp_clear_headers(&q);
	return out;
}

json_t *req_json(struct req *r, bool allow_empty)
{
	const char *ct = req_header(r, "Content-Type");
	json_error_t jerr;
	json_t *root;

	if (r->body_len == 0) {
		if (allow_empty)
			return json_object();
		resp_error(r, NC_EBADREQ, "request body must be a JSON object");
		return NULL;
	}
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		resp_error(r, NC_EMEDIATYPE, "Content-Type must be application/json");
		return NULL;
	}
	root = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		resp_error(r, NC_EBADREQ, "malformed JSON at line %d column %d", jerr.line,
			   jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		resp_error(r, NC_EBADREQ, "request body must be a JSON object");
		return NULL;
	}
	return root;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

void resp_header(struct req *r, const char *name, const char *value)
{
	if (r->n_out == r->cap_out) {
		r->cap_out = r->cap_out ? r->cap_out * 2 : 4;
		r->out_headers = xrealloc(r->out_headers, r->cap_out * sizeof(*r->out_headers));
	}
	r->out_headers[r->n_out].name = xstrdup(name);
	r->out_headers[r->n_out].value = xstrdup(value);
	r->n_out++;
}

void resp_raw(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
	free(r->resp_body);
	r->resp_body = NULL;
	r->resp_len = 0;
	if (body != NULL) {
		r->resp_body = xstrndup(body, len);
		r->resp_len = len;
	}
	r->status = status;
	r->content_type = content_type;
}

void resp_json(struct req *r, int status, json_t *body)
{
	free(r->resp_body);
	r->resp_body = NULL;
	r->resp_len = 0;
	r->status = status;
	r->content_type = "application/json; charset=utf-8";
	if (body == NULL)
		return;
	r->resp_body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (r->resp_body == NULL)
		fatal("out of memory (json_dumps)");
	r->resp_len = strlen(r->resp_body);
}

static void resp_error_v(struct req *r, enum nc_err code, const char *msg)
{
	json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", err_code_name(code), "message", msg);

	if (e == NULL)
		fatal("out of memory (error body)");
	resp_json(r, err_http_status(code), e);
}

void resp_error(struct req *r, enum nc_err code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	resp_error_v(r, code, msg);
}

void resp_nc_error(struct req *r, const struct nc_error *e)
{
	resp_error_v(r, e->code == NC_OK ? NC_EINTERNAL : e->code, e->msg);
}

/* ------------------------------------------------------------------ */
/* Dispatch (worker side)                                              */
/* ------------------------------------------------------------------ */

static const char *bearer_token(const struct req *r)
{
	const char *h = req_header(r, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

/* Authenticate when the route asks for it; false if a response was set. */
static bool authenticate(struct req *r)
{
	unsigned flags = r->match.route->flags;
	const char *tok;
	char *qtok = NULL;
	struct nc_error err = {0};
	bool ok = true;

	if (!(flags & (ROUTE_AUTH | ROUTE_AUTH_OPTIONAL)))
		return true;
	tok = bearer_token(r);
	if (tok == NULL && (flags & ROUTE_QUERY_TOKEN)) {
		qtok = req_query(r, "access_token");
		tok = qtok;
	}
	if (tok == NULL) {
		if (flags & ROUTE_AUTH) {
			resp_error(r, NC_EUNAUTH, "missing bearer token");
			ok = false;
		}
		goto out;
	}
	if (auth_verify_user(r->cfg, tok, now_unix(), &r->user, &err) != NC_OK) {
		resp_nc_error(r, &err);
		ok = false;
		goto out;
	}
	r->authed = true;
out:
	free(qtok);
	return ok;
}

/* Charge the request to its buckets; false (and a 429 set) when over budget. */
static bool within_limits(struct req *r)
{
	enum rl_class cls = rl_classify(r->match.route->pattern, r->method);
	long wait_ms = rl_check(r->w, &r->cfg->rl, cls, r->authed ? r->user.user_id : NULL,
				r->client_addr);
	char ra[24];

	if (wait_ms <= 0)
		return true;
	snprintf(ra, sizeof(ra), "%ld", (wait_ms + 999) / 1000);
	free_headers(r->out_headers, r->n_out);
	r->out_headers = NULL;
	r->n_out = r->cap_out = 0;
	resp_header(r, "Retry-After", ra);
	resp_error(r, NC_ERATELIMIT, "too many %s requests; retry in %s s", rl_class_name(cls), ra);
	metrics_inc(M_RATE_LIMITED);
	return false;
}

static void dispatch(struct req *r)
{
	/* Failed authentications are charged to the address too (token guessing). */
	bool authed = authenticate(r);

	if (within_limits(r) && authed)
		r->match.route->handler(r);
	if (r->status == 0)
		resp_error(r, NC_EINTERNAL, "handler produced no response");
	/* A handler must never leave a transaction open on its connection. */
	if (r->w != NULL && r->w->db.in_tx) {
		log_error("route %s left a transaction open; rolled back", r->match.route->pattern);
		db_rollback(&r->w->db);
	}
}

static void push_done(struct http_server *srv, struct req *r)
{
	pthread_mutex_lock(&srv->d_mu);
	r->next = NULL;
	if (srv->d_tail != NULL)
		srv->d_tail->next = r;
	else
		srv->d_head = r;
	srv->d_tail = r;
	pthread_mutex_unlock(&srv->d_mu);
	event_active(srv->d_ev, EV_READ, 0);
}

static void *worker_main(void *arg)
{
	struct nc_worker *w = arg;
	struct http_server *srv = w->srv;

	worker_setup(w, srv->cfg);
	for (;;) {
		struct req *r;

		pthread_mutex_lock(&srv->q_mu);
		while (srv->q_head == NULL && !srv->q_closed)
			pthread_cond_wait(&srv->q_cv, &srv->q_mu);
		r = srv->q_head;
		if (r == NULL) {
			pthread_mutex_unlock(&srv->q_mu);
			break;
		}
		srv->q_head = r->next;
		if (srv->q_head == NULL)
			srv->q_tail = NULL;
		srv->q_len--;
		pthread_mutex_unlock(&srv->q_mu);

		r->w = w;
		atomic_fetch_add(&srv->busy_workers, 1);
		log_set_request_id(r->request_id);
		dispatch(r);
		log_set_request_id(NULL);
		atomic_fetch_sub(&srv->busy_workers, 1);
		r->w = NULL;
		push_done(srv, r);
		/* best-effort writes the handler queued, off the response path */
		worker_after_response(w);
	}
	worker_teardown(w);
	return NULL;
}

/* Queue r for a worker; false when the queue is full. */
static bool enqueue(struct http_server *srv, struct req *r)
{
	bool ok = true;

	pthread_mutex_lock(&srv->q_mu);
	if (srv->q_len >= (size_t)srv->cfg->max_queue || srv->q_closed) {
		ok = false;
	} else {
		r->next = NULL;
		if (srv->q_tail != NULL)
			srv->q_tail->next = r;
		else
			srv->q_head = r;
		srv->q_tail = r;
		srv->q_len++;
		pthread_cond_signal(&srv->q_cv);
	}
	pthread_mutex_unlock(&srv->q_mu);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Loop side                                                           */
/* ------------------------------------------------------------------ */

static bool origin_allowed(const struct nc_config *cfg, const char *origin)
{
	const char *p = cfg->cors_origins;
	size_t olen = strlen(origin);

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if ((len == 1 && *p == '*') || (len == olen && memcmp(p, origin, len) == 0))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static void add_common_headers(struct req *r, struct evkeyvalq *out)
{
	const char *origin = req_header(r, "Origin");

	evhttp_add_header(out, "X-Request-Id", r->request_id);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (origin != NULL && origin_allowed(r->cfg, origin)) {
		evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(out, "Vary", "Origin");
		evhttp_add_header(out, "Access-Control-Allow-Credentials", "true");
		evhttp_add_header(out, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
	}
}

/*
 * The last replies were only queued by evhttp_send_reply: their bytes go
 * out when the loop next sees the sockets writable.  Leaving the loop at
 * once dropped them (the client saw the connection close with no answer),
 * so the loop runs on this long after the last request finished.
 */
#define DRAIN_FLUSH_MS 200

static void maybe_finish_drain(struct http_server *srv)
{
	struct timeval tv = {0, DRAIN_FLUSH_MS * 1000};

	if (srv->draining && srv->inflight == 0)
		event_base_loopexit(srv->base, &tv);
}

/* Send r's response (loop thread) and free it. */
static void finish(struct http_server *srv, struct req *r)
{
	if (r->evreq != NULL && r->sse != NULL && r->status == 200) {
		/* The handler opened an event stream: the hub takes the connection. */
		int st;

		add_common_headers(r, evhttp_request_get_output_headers(r->evreq));
		st = sse_hub_attach(srv->hub, r->evreq, r->sse);
		if (st == 0) {
			guard_mark(srv, r->evreq, 0, true);
			log_set_request_id(r->request_id);
			log_info("event stream opened (%zu open)", sse_hub_count(srv->hub));
			log_set_request_id(NULL);
			r->evreq = NULL;
		} else {
			evhttp_clear_headers(evhttp_request_get_output_headers(r->evreq));
			if (st == 429)
				resp_header(r, "Retry-After", "5");
			resp_error(r, st == 429 ? NC_ERATELIMIT : NC_EUNAVAILABLE,
				   st == 429 ? "too many event streams for this user" : "cannot open an event stream now");
		}
	}
	if (r->evreq != NULL) {
		struct evkeyvalq *out = evhttp_request_get_output_headers(r->evreq);
		struct evbuffer *buf = evbuffer_new();
		double ms;

		if (buf == NULL)
			fatal("out of memory (evbuffer)");
		add_common_headers(r, out);
		if (r->content_type != NULL)
			evhttp_add_header(out, "Content-Type", r->content_type);
		for (size_t i = 0; i < r->n_out; i++)
			evhttp_add_header(out, r->out_headers[i].name, r->out_headers[i].value);
		if (r->resp_body != NULL && evbuffer_add(buf, r->resp_body, r->resp_len) != 0)
			fatal("out of memory (evbuffer_add)");
		guard_mark(srv, r->evreq, -1, false);
		evhttp_send_reply(r->evreq, r->status, NULL, buf);
		evbuffer_free(buf);
		ms = (double)(mono_us() - r->start_us) / 1000.0;
		metrics_http(r->match.route ? r->match.route->pattern : NULL, r->method_name, r->status, ms);
		log_set_request_id(r->request_id);
		log_access(r->method_name, r->match.route ? r->match.route->pattern : NULL, r->path,
			   r->status, ms, r->client_addr);
		log_set_request_id(NULL);
	}
	srv->inflight--;
	req_free(r);
	maybe_finish_drain(srv);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	struct req *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&srv->d_mu);
	list = srv->d_head;
	srv->d_head = srv->d_tail = NULL;
	pthread_mutex_unlock(&srv->d_mu);
	while (list != NULL) {
		struct req *next = list->next;

		if (list->evreq == NULL) {
			/* A periodic job: let the next tick run it again. */
			for (int i = 0; i < srv->n_periodic; i++)
				if (list->match.route == &srv->periodic[i].route)
					srv->periodic[i].running = false;
		}
		finish(srv, list);
		list = next;
	}
}

static bool request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= 64 || !(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return n > 0;
}

static void copy_headers(struct req *r, struct evkeyvalq *in)
{
	struct evkeyval *kv;
	size_t n = 0, i = 0;

	TAILQ_FOREACH(kv, in, next)
		n++;
	r->headers = xcalloc(n, sizeof(*r->headers));
	TAILQ_FOREACH(kv, in, next) {
		r->headers[i].name = xstrdup(kv->key);
		r->headers[i].value = xstrdup(kv->value);
		i++;
	}
	r->n_headers = n;
}

/* Is addr one of the comma-separated entries of list? */
static bool in_list(const char *list, const char *addr, size_t alen)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == alen && memcmp(p, addr, len) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/*
 * The client's address: the TCP peer, or, when the peer is a trusted proxy,
 * the right-most X-Forwarded-For entry that is not itself a trusted proxy
 * (entries to the left of it could have been written by the client).
 */
static void client_addr(struct evhttp_request *evreq, const struct nc_config *cfg, char *out,
			size_t outlen)
{
	struct evhttp_connection *con = evhttp_request_get_connection(evreq);
	const char *xff;
	char *addr = NULL;
	ev_uint16_t port = 0;

	out[0] = '\0';
	if (con != NULL)
		evhttp_connection_get_peer(con, &addr, &port);
	if (addr == NULL)
		return;
	snprintf(out, outlen, "%s", addr);
	if (cfg->trusted_proxies == NULL || *cfg->trusted_proxies == '\0' ||
	    !in_list(cfg->trusted_proxies, addr, strlen(addr)))
		return;
	xff = evhttp_find_header(evhttp_request_get_input_headers(evreq), "X-Forwarded-For");
	if (xff == NULL)
		return;
	for (const char *end = xff + strlen(xff); end > xff;) {
		const char *start = end;
		size_t len;

		while (start > xff && start[-1] != ',')
			start--;
		len = (size_t)(end - start);
		while (len > 0 && *start == ' ')
			start++, len--;
		while (len > 0 && start[len - 1] == ' ')
			len--;
		if (len > 0 && len < outlen && !in_list(cfg->trusted_proxies, start, len)) {
			memcpy(out, start, len);
			out[len] = '\0';
			return;
		}
		end = start > xff ? start - 1 : xff;
		if (start == xff)
			break;
	}
}

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

/* Answer on the loop thread without a worker (errors, preflight, ON_LOOP routes). */
static void answer_now(struct http_server *srv, struct req *r)
{
	finish(srv, r);
}

static void on_request(struct evhttp_request *evreq, void *arg)
{
	struct http_server *srv = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(evreq);
	struct evbuffer *in = evhttp_request_get_input_buffer(evreq);
	const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *rawq = uri ? evhttp_uri_get_query(uri) : NULL;
	const char *rid;
	struct req *r = xcalloc(1, sizeof(*r));
	size_t dlen = 0, blen;
	enum route_result rr;

	r->srv = srv;
	r->cfg = srv->cfg;
	r->evreq = evreq;
	r->start_us = mono_us();
	r->method_name = method_name(evhttp_request_get_command(evreq));
	r->method = route_method_bit(r->method_name);
	srv->inflight++;
	guard_mark(srv, evreq, +1, false);
	copy_headers(r, evhttp_request_get_input_headers(evreq));
	rid = req_header(r, "X-Request-Id");
	if (rid != NULL && request_id_ok(rid))
		snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
	else
		uuid_v4(r->request_id);
	client_addr(evreq, srv->cfg, r->client_addr, sizeof(r->client_addr));

	r->path = evhttp_uridecode(rawpath && *rawpath ? rawpath : "/", 0, &dlen);
	if (r->path == NULL)
		fatal("out of memory (uridecode)");
	if (rawq != NULL)
		r->query = xstrdup(rawq);
	if (strlen(r->path) != dlen) {
		resp_error(r, NC_EBADREQ, "malformed path");
		answer_now(srv, r);
		return;
	}

	if (r->method == RM_OPTIONS && req_header(r, "Origin") != NULL) {
		/* CORS preflight: answered for every path. */
		resp_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH, OPTIONS");
		resp_header(r, "Access-Control-Allow-Headers",
			    "Authorization, Content-Type, X-Request-Id, Last-Event-ID");
		resp_header(r, "Access-Control-Max-Age", "600");
		resp_raw(r, 204, NULL, NULL, 0);
		answer_now(srv, r);
		return;
	}

	blen = evbuffer_get_length(in);
	if ((long)blen > srv->cfg->max_body_bytes) {
		resp_error(r, NC_ETOOLARGE, "request body exceeds %ld bytes", srv->cfg->max_body_bytes);
		answer_now(srv, r);
		return;
	}
	if (blen > 0) {
		r->body = xmalloc(blen + 1);
		if (evbuffer_remove(in, r->body, blen) != (int)blen)
			fatal("evbuffer_remove short read");
		r->body[blen] = '\0';
		r->body_len = blen;
	}

	r->path_buf = xstrdup(r->path);
	rr = route_match(srv->routes, r->method, r->path_buf, &r->match);
	if (rr == ROUTE_NOT_FOUND) {
		resp_error(r, NC_ENOTFOUND, "no such endpoint");
		answer_now(srv, r);
		return;
	}
	if (rr == ROUTE_BAD_METHOD) {
		char allow[96];

		route_allow_header(r->match.allowed, allow, sizeof(allow));
		resp_header(r, "Allow", allow);
		resp_error(r, NC_EMETHOD, "method %s not allowed here", r->method_name);
		answer_now(srv, r);
		return;
	}
	if (r->match.route->flags & ROUTE_ON_LOOP) {
		log_set_request_id(r->request_id);
		r->match.route->handler(r);
		log_set_request_id(NULL);
		answer_now(srv, r);
		return;
	}
	if (srv->draining || !enqueue(srv, r)) {
		resp_header(r, "Retry-After", "1");
		resp_error(r, NC_EUNAVAILABLE, "server is busy");
		answer_now(srv, r);
	}
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
	for (int i = 0; i < srv->n_periodic; i++)
		event_del(srv->periodic[i].ev);
	sse_hub_shutdown(srv->hub);
	srv->ev_drain = evtimer_new(srv->base, on_drain_timeout, srv);
	if (srv->ev_drain != NULL)
		evtimer_add(srv->ev_drain, &tv);
	maybe_finish_drain(srv);
}

static void on_periodic(evutil_socket_t fd, short what, void *arg)
{
	struct periodic *p = arg;
	struct http_server *srv = p->srv;
	struct req *r;

	(void)fd;
	(void)what;
	if (p->running || srv->draining)
		return;
	r = xcalloc(1, sizeof(*r));
	r->srv = srv;
	r->cfg = srv->cfg;
	r->start_us = mono_us();
	r->method_name = "TIMER";
	r->path = xstrdup(p->name);
	uuid_v4(r->request_id);
	r->match.route = &p->route;
	srv->inflight++;
	if (!enqueue(srv, r)) {
		srv->inflight--;
		req_free(r);
		return;
	}
	p->running = true;
}

void http_server_add_periodic(struct http_server *srv, int interval_s, route_handler handler,
			      const char *name)
{
	struct periodic *p;

	if (interval_s <= 0 || srv->n_periodic == MAX_PERIODIC)
		return;
	p = &srv->periodic[srv->n_periodic++];
	p->srv = srv;
	p->interval_s = interval_s;
	p->handler = handler;
	p->name = name;
	p->route.pattern = name;
	p->route.handler = handler;
	p->route.methods = 0;
	p->route.flags = 0;
}


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
 *   - a connection over MAX_CONNECTIONS is shut down at once;
 *   - a connection that has not completed a request within
 *     CONN_IDLE_TIMEOUT_SECONDS of opening or of its previous answer (an
 *     idle keep-alive connection, or a slow sender) is shut down.
 * Shutting the socket down makes evhttp see EOF and free the connection in
 * its normal way.
 */

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

static struct bufferevent *guard_new_bev(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct guard_entry *g;
	unsigned h;

	if (bev == NULL)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	g->bev = bev;
	g->since_ms = now_ms();
	bufferevent_incref(bev);
	h = guard_hash(bev);
	g->next = srv->guard[h];
	srv->guard[h] = g;
	srv->n_conns++;
	if (srv->n_conns > (size_t)srv->cfg->max_connections) {
		g->doomed = true;
		event_active(srv->ev_guard, EV_TIMEOUT, 0); /* close it right after accept */
	}
	return bev;
}

static void guard_close(struct guard_entry *g)
{
	evutil_socket_t fd = bufferevent_getfd(g->bev);

	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void guard_mark(struct http_server *srv, struct evhttp_request *evreq, int delta,
		       bool stream)
{
	struct evhttp_connection *con = evreq ? evhttp_request_get_connection(evreq) : NULL;
	struct guard_entry *g = con ? guard_find(srv, evhttp_connection_get_bufferevent(con)) : NULL;

	if (g == NULL)
		return;
	g->busy += delta;
	if (g->busy < 0)
		g->busy = 0;
	g->stream |= stream;
	g->since_ms = now_ms();
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
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
			bufferevent_event_cb ecb = NULL;

			bufferevent_getcb(g->bev, NULL, NULL, &ecb, NULL);
			if (ecb == NULL && now - g->since_ms > 100) {
				/* evhttp freed the connection: release our hold. */
				*pp = g->next;
				bufferevent_decref(g->bev);
				free(g);
				srv->n_conns--;
				continue;
			}
			if (g->doomed || (!g->stream && g->busy == 0 && now - g->since_ms > idle_ms)) {
				if (g->doomed)
					log_warn("connection limit (%d) reached: closing a new connection",
						 srv->cfg->max_connections);
				if (!g->doomed)
					metrics_inc(M_CONN_CLOSED_IDLE);
				g->doomed = false;
				guard_close(g);
				g->since_ms = now; /* give evhttp a moment to notice */
			}
			pp = &g->next;
		}
	}
}

static void guard_free(struct http_server *srv)
{
	for (unsigned h = 0; h < GUARD_BUCKETS; h++) {
		while (srv->guard[h] != NULL) {
			struct guard_entry *g = srv->guard[h];
			srv->guard[h] = g->next;
			bufferevent_decref(g->bev);
			free(g);
		}
	}
	srv->n_conns = 0;
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

static int worker_count(const struct nc_config *cfg)
{
	long cores;

	if (cfg->workers > 0)
		return cfg->workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1)
		cores = 1;
	return cores * 2 < 4 ? 4 : (int)(cores * 2);
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
	srv->d_ev = event_new(srv->base, -1, EV_PERSIST | EV_READ, on_done, srv);
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
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						      EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
						      EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(srv->http, on_request, srv);
	evhttp_set_bevcb(srv->http, guard_new_bev, srv);
	srv->ev_guard = event_new(srv->base, -1, EV_PERSIST, on_guard, srv);
	{
		struct timeval one = {1, 0};
		if (srv->ev_guard == NULL || event_add(srv->ev_guard, &one) != 0) {
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

	srv->n_workers = worker_count(srv->cfg);
	srv->workers = xcalloc((size_t)srv->n_workers, sizeof(*srv->workers));
	for (int i = 0; i < srv->n_workers; i++) {
		srv->workers[i].id = i;
		srv->workers[i].srv = srv;
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0)
			fatal("pthread_create failed");
	}
	for (int i = 0; i < srv->n_periodic; i++) {
		struct periodic *p = &srv->periodic[i];
		struct timeval tv = {p->interval_s, 0};

		p->ev = event_new(srv->base, -1, EV_PERSIST, on_periodic, p);
		if (p->ev == NULL || event_add(p->ev, &tv) != 0)
			fatal("cannot add periodic timer");
	}
	on_guard(-1, 0, srv); /* first sample of the loop-side gauges */
	log_info("listening on %s:%d with %d workers", host, bound_port(srv->bound), srv->n_workers);

	if (event_base_dispatch(srv->base) == 0)
		rc = 0;

	/* Stop the workers: they finish what is queued, then exit. */
	pthread_mutex_lock(&srv->q_mu);
	srv->q_closed = true;
	pthread_cond_broadcast(&srv->q_cv);
	pthread_mutex_unlock(&srv->q_mu);
	for (int i = 0; i < srv->n_workers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	/* Anything a worker finished after the loop stopped is freed unsent. */
	on_done(-1, 0, srv);
	log_info("stopped");
	return rc;
}

void http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	for (int i = 0; i < srv->n_periodic; i++)
		if (srv->periodic[i].ev != NULL)
			event_free(srv->periodic[i].ev);
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
	guard_free(srv);
	if (srv->ev_guard != NULL)
		event_free(srv->ev_guard);
	if (srv->base != NULL)
		event_base_free(srv->base);
	free(srv->workers);
	pthread_mutex_destroy(&srv->q_mu);
	pthread_cond_destroy(&srv->q_cv);
	pthread_mutex_destroy(&srv->d_mu);
	free(srv);
}
