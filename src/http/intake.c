/*
 * intake.c - the loop side of a request.
 *
 *   on_request  copies method, path, query, headers and body into a struct
 *               req, matches the route, answers at once what needs no
 *               worker (404/405/413/501, CORS preflight, framing errors,
 *               ROUTE_ON_LOOP routes) and queues the rest as a job
 *               (dispatch.c runs it on a worker);
 *   finish      turns the response into an evhttp reply (or hands the
 *               connection to the SSE hub) and frees the req.
 * Only the loop thread touches libevent objects.  If a client goes away while
 * a worker is busy, libevent detaches the request and frees it when we reply,
 * so every request is answered exactly once, even late.
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "http/ratelimit.h"
#include "http/sse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

enum cors_match { CORS_NONE, CORS_ANY, CORS_EXACT };

/*
 * How CORS_ORIGINS admits origin: an entry equal to it (compared exactly,
 * so "null" only when "null" is listed), or "*" for any origin.  An exact
 * entry wins over "*".
 */
static enum cors_match origin_allowed(const struct nc_config *cfg, const char *origin)
{
	const char *p = cfg->cors_origins;
	size_t olen = strlen(origin);
	enum cors_match m = CORS_NONE;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == olen && memcmp(p, origin, len) == 0)
			return CORS_EXACT;
		if (len == 1 && *p == '*')
			m = CORS_ANY;
		p = end ? end + 1 : NULL;
	}
	return m;
}

/*
 * Every response carries the security headers.  CORS: a listed origin is
 * echoed with Access-Control-Allow-Credentials; with "*" any other origin
 * gets "Access-Control-Allow-Origin: *" and never the credentials flag
 * (browsers then send no cookies or HTTP auth, and no origin is reflected).
 */
static void add_common_headers(struct req *r, struct evkeyvalq *out)
{
	const char *origin = req_header(r, "Origin");
	enum cors_match cm = origin != NULL ? origin_allowed(r->cfg, origin) : CORS_NONE;

	evhttp_add_header(out, "X-Request-Id", r->request_id);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "Cache-Control", "no-store");
	if (cm == CORS_EXACT) {
		evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
		evhttp_add_header(out, "Vary", "Origin");
		evhttp_add_header(out, "Access-Control-Allow-Credentials", "true");
	} else if (cm == CORS_ANY) {
		evhttp_add_header(out, "Access-Control-Allow-Origin", "*");
		evhttp_add_header(out, "Vary", "Origin");
	}
	if (cm != CORS_NONE)
		evhttp_add_header(out, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
}

/*
 * The last replies were only queued by evhttp_send_reply: their bytes go
 * out when the loop next sees the sockets writable.  Leaving the loop at
 * once dropped them (the client saw the connection close with no answer),
 * so the loop runs on this long after the last request finished.
 */

/* Send r's response (loop thread) and free it. */
void intake_finish(struct http_server *srv, struct req *r)
{
	if (r->evreq != NULL && r->sse != NULL && r->status == 200) {
		/* The handler opened an event stream: the hub takes the connection. */
		int st;

		add_common_headers(r, evhttp_request_get_output_headers(r->evreq));
		snprintf(r->sse->client_addr, sizeof(r->sse->client_addr), "%s", r->client_addr);
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
			if (st == 429)
				resp_error(r, NC_ERATELIMIT, r->sse->user_id[0] != '\0'
							     ? "too many event streams for this user"
							     : "too many anonymous event streams from this address");
			else
				resp_error(r, NC_EUNAVAILABLE, "cannot open an event stream now");
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
		metrics_http_class(r->match.route ? rl_class_name(rl_classify(r->match.route->pattern, r->method))
						  : NULL, r->status, ms);
		log_set_request_id(r->request_id);
		log_access(r->method_name, r->match.route ? r->match.route->pattern : NULL, r->path,
			   r->status, ms, r->client_addr);
		log_set_request_id(NULL);
	}
	srv->inflight--;
	req_free(r);
	server_maybe_finish_drain(srv);
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

/* Is the text an IPv4 or IPv6 address? */
static bool is_ip(const char *s, size_t len)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET, tmp, bin) == 1 || inet_pton(AF_INET6, tmp, bin) == 1;
}

/*
 * The client's address: the TCP peer, or, when the peer is a trusted proxy,
 * the right-most X-Forwarded-For entry that is not itself a trusted proxy
 * (entries to the left of it could have been written by the client).  The
 * header may come as several lines (the client's own, then the proxy's):
 * they are one list, in order, so the last line's entries are the right-most.
 * If that entry is not an IP address, or every entry is a trusted proxy, the
 * peer's address is used.
 */
static void client_addr(struct evhttp_request *evreq, const struct nc_config *cfg, char *out,
			size_t outlen)
{
	struct evhttp_connection *con = evhttp_request_get_connection(evreq);
	struct evkeyvalq *hdrs = evhttp_request_get_input_headers(evreq);
	struct evkeyval *kv;
	char *xff = NULL, *addr = NULL;
	size_t xlen = 0;
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
	TAILQ_FOREACH(kv, hdrs, next) {
		size_t vl;

		if (strcasecmp(kv->key, "X-Forwarded-For") != 0)
			continue;
		vl = strlen(kv->value);
		xff = xrealloc(xff, xlen + vl + 2);
		if (xlen > 0)
			xff[xlen++] = ',';
		memcpy(xff + xlen, kv->value, vl);
		xlen += vl;
		xff[xlen] = '\0';
	}
	if (xff == NULL)
		return;
	for (const char *end = xff + xlen;;) {
		const char *start = end, *e;
		size_t len;

		while (start > xff && start[-1] != ',')
			start--;
		e = start;
		len = (size_t)(end - start);
		while (len > 0 && (*e == ' ' || *e == '\t'))
			e++, len--;
		while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
			len--;
		if (len > 0 && !in_list(cfg->trusted_proxies, e, len)) {
			if (is_ip(e, len) && len < outlen) {
				memcpy(out, e, len);
				out[len] = '\0';
			}
			break;
		}
		if (start == xff)
			break;
		end = start - 1; /* before the comma */
	}
	free(xff);
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
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	default: return "OTHER";
	}
}

/* Answer on the loop thread without a worker (errors, preflight, ON_LOOP routes). */
static void answer_now(struct http_server *srv, struct req *r)
{
	intake_finish(srv, r);
}

static void request_done(struct http_server *srv, void *arg)
{
	intake_finish(srv, arg);
}

/* A struct req for evreq: method, headers, request id, client address. */
static struct req *req_new(struct http_server *srv, struct evhttp_request *evreq,
			   bool metrics_listener)
{
	struct req *r = xcalloc(1, sizeof(*r));
	const char *rid;

	r->srv = srv;
	r->cfg = srv->cfg;
	r->evreq = evreq;
	r->metrics_listener = metrics_listener;
	r->start_us = mono_us();
	r->method_name = method_name(evhttp_request_get_command(evreq));
	r->method = route_method_bit(r->method_name);
	r->job.fn = dispatch_job;
	r->job.arg = r;
	r->job.done = request_done;
	srv->inflight++;
	guard_mark(srv, evreq, +1, false);
	copy_headers(r, evhttp_request_get_input_headers(evreq));
	rid = req_header(r, "X-Request-Id");
	if (rid != NULL && request_id_ok(rid))
		snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
	else
		uuid_v4(r->request_id);
	client_addr(evreq, srv->cfg, r->client_addr, sizeof(r->client_addr));
	return r;
}

/*
 * What is answered before the path is matched: a request behind broken
 * framing, a method no route serves, a CORS preflight, a body over the
 * limit.  True when r's response is set; otherwise the body is copied in.
 */
static bool answer_before_routing(struct http_server *srv, struct req *r,
				  struct evhttp_request *evreq, const char *rawpath,
				  const char *rawq)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(evreq);
	struct guard_entry *g = guard_of(srv, evreq);
	unsigned idx = g != NULL ? g->n_req++ : 0;
	size_t blen;

	/* The raw path: route_match decodes it one segment at a time (router.h). */
	r->path = xstrdup(rawpath && *rawpath ? rawpath : "/");
	if (g != NULL && g->frame_bad && idx >= g->bad_req) {
		/* Framing this request broke (http_framing.h): nothing on this connection runs. */
		resp_header(r, "Connection", "close");
		resp_error(r, NC_EBADREQ, "malformed request framing: %s", g->fr.error);
		return true;
	}
	if (r->method == 0) {
		/* TRACE, CONNECT, PROPFIND, ...: no route serves them. */
		if (strcmp(r->method_name, "OTHER") == 0)
			resp_error(r, NC_ENOTIMPL, "this method is not implemented");
		else
			resp_error(r, NC_ENOTIMPL, "method %s is not implemented", r->method_name);
		return true;
	}
	if (rawq != NULL)
		r->query = xstrdup(rawq);
	if (r->method == RM_OPTIONS && req_header(r, "Origin") != NULL) {
		/* CORS preflight: answered for every path. */
		resp_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH, OPTIONS");
		resp_header(r, "Access-Control-Allow-Headers",
			    "Authorization, Content-Type, X-Request-Id, Last-Event-ID");
		resp_header(r, "Access-Control-Max-Age", "600");
		resp_raw(r, 204, NULL, NULL, 0);
		return true;
	}
	blen = evbuffer_get_length(in);
	if ((long)blen > srv->cfg->max_body_bytes) {
		resp_error(r, NC_ETOOLARGE, "request body exceeds %ld bytes", srv->cfg->max_body_bytes);
		return true;
	}
	if (blen > 0) {
		r->body = xmalloc(blen + 1);
		if (evbuffer_remove(in, r->body, blen) != (int)blen)
			fatal("evbuffer_remove short read");
		r->body[blen] = '\0';
		r->body_len = blen;
	}
	return false;
}

/* Match r's path; true when that answered it (404, 405, bad path, wrong listener). */
static bool answer_unrouted(struct http_server *srv, struct req *r)
{
	enum route_result rr;

	r->path_buf = xstrdup(r->path);
	rr = route_match(srv->routes, r->method, r->path_buf, &r->match);
	if (r->metrics_listener && rr != ROUTE_BAD_PATH &&
	    (rr != ROUTE_FOUND || !(r->match.route->flags & ROUTE_METRICS))) {
		/* the metrics listener serves GET /metrics and nothing else */
		memset(&r->match, 0, sizeof(r->match));
		resp_error(r, NC_ENOTFOUND, "no such endpoint");
		return true;
	}
	if (rr == ROUTE_BAD_PATH) {
		resp_error(r, NC_EBADREQ, "malformed path");
		return true;
	}
	if (rr == ROUTE_NOT_FOUND) {
		resp_error(r, NC_ENOTFOUND, "no such endpoint");
		return true;
	}
	if (rr == ROUTE_BAD_METHOD) {
		char allow[96];

		route_allow_header(r->match.allowed, allow, sizeof(allow));
		resp_header(r, "Allow", allow);
		resp_error(r, NC_EMETHOD, "method %s not allowed here", r->method_name);
		return true;
	}
	return false;
}

static void handle_request(struct http_server *srv, struct evhttp_request *evreq,
			   bool metrics_listener)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(evreq);
	const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *rawq = uri ? evhttp_uri_get_query(uri) : NULL;
	struct req *r = req_new(srv, evreq, metrics_listener);

	if (answer_before_routing(srv, r, evreq, rawpath, rawq) || answer_unrouted(srv, r)) {
		answer_now(srv, r);
		return;
	}
	if (r->match.route->flags & ROUTE_ON_LOOP) {
		log_set_request_id(r->request_id);
		dispatch_run_handler(r);
		log_set_request_id(NULL);
		answer_now(srv, r);
		return;
	}
	if (srv->draining || !pool_submit(srv, &r->job)) {
		resp_header(r, "Retry-After", "1");
		resp_error(r, NC_EUNAVAILABLE, "server is busy");
		answer_now(srv, r);
	}
}

void intake_on_request(struct evhttp_request *evreq, void *arg)
{
	handle_request(arg, evreq, false);
}

void intake_on_metrics_request(struct evhttp_request *evreq, void *arg)
{
	handle_request(arg, evreq, true);
}

