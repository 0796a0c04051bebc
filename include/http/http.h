/*
 * http.h - the request context and the HTTP server.
 *
 * The loop thread (libevent) accepts connections, reads requests, matches the
 * route and copies everything a handler needs into a `struct req`; a worker
 * thread then runs the handler as a plain linear function and fills in the
 * response; the loop thread sends it.  A handler therefore never touches
 * libevent, and the evhttp request is touched only by the loop thread.
 *
 * Ownership: the server owns each struct req from arrival until its reply is
 * sent; handlers borrow it.  resp_json steals the json_t it is given.
 */
#ifndef NC_HTTP_H
#define NC_HTTP_H

#include "http/auth.h"
#include "core/common.h"
#include "core/config.h"
#include "http/router.h"

#include <jansson.h>

struct nc_worker;
struct http_server;
struct evhttp_request;
struct sse_spec;

struct http_header {
	char *name;
	char *value;
};

struct req {
	/* Request: read-only for handlers. */
	unsigned method;              /* enum route_method bit */
	const char *method_name;
	char *path;                   /* raw path, as received (route_match decodes segments) */
	char *query;                  /* raw query string (no '?'), or NULL */
	struct http_header *headers;
	size_t n_headers;
	char *body;                   /* NUL-terminated copy, or NULL */
	size_t body_len;
	char request_id[65];
	char client_addr[64];
	struct route_match match;     /* route and path parameters */
	char *path_buf;               /* segmented copy of path that params point into */

	/* Set by the dispatcher before the handler runs. */
	bool authed;
	struct principal user;
	struct nc_worker *w;          /* the worker running the handler (NULL on loop) */
	json_t *json;                 /* the parsed body of a ROUTE_JSON route (server-owned) */
	const struct nc_config *cfg;
	bool metrics_listener;        /* arrived on METRICS_ADDR, not LISTEN_ADDR */

	/* Response: filled by the handler through resp_*. */
	int status;
	struct http_header *out_headers;
	size_t n_out, cap_out;
	char *resp_body;
	size_t resp_len;
	const char *content_type;
	struct sse_spec *sse;         /* set (malloc'd) by a handler that opens an event stream */

	/* Server internals. */
	struct evhttp_request *evreq;
	struct http_server *srv;
	int64_t start_us;
	struct req *next;
};

/* ---- request accessors ---- */
const char *req_header(const struct req *r, const char *name);
const char *req_param(const struct req *r, const char *name);
/* Decoded value of query parameter key, malloc'd, or NULL when absent. */
char *req_query(const struct req *r, const char *key);
/*
 * Parse the body as a JSON object.  On failure sets the response (400/415)
 * and returns NULL.  An empty body gives an empty object when allow_empty.
 */
json_t *req_json(struct req *r, bool allow_empty);
/* The body of a ROUTE_JSON route, parsed before the handler ran (borrowed). */
json_t *req_body(const struct req *r);

/* ---- responses ---- */
void resp_header(struct req *r, const char *name, const char *value);
/* Steals body (may be NULL for an empty 204-style reply). */
void resp_json(struct req *r, int status, json_t *body);
void resp_raw(struct req *r, int status, const char *content_type, const char *body, size_t len);
void resp_error(struct req *r, enum nc_err code, const char *fmt, ...) NC_PRINTF(3, 4);
/* Send the error in e (its code and message). */
void resp_nc_error(struct req *r, const struct nc_error *e);

/* ---- the server ---- */
struct http_server *http_server_new(const struct nc_config *cfg, const struct route *routes);
/* Bind LISTEN_ADDR, start workers, run the loop until SIGTERM/SIGINT drains it. */
int http_server_run(struct http_server *srv) NC_MUSTCHECK;
void http_server_free(struct http_server *srv);
/*
 * Run handler on a worker every interval_s seconds (with a NULL evreq, so the
 * response is discarded).  Call before http_server_run.
 */
void http_server_add_periodic(struct http_server *srv, int interval_s, route_handler handler,
			      const char *name);

#endif
