/*
 * req_private.h - the layout of struct req (private to http/).
 *
 * Handlers use the accessors of http/http.h (req_worker, req_user, req_cfg,
 * ...), never these fields.  TRANSITIONAL: http/http.h still includes this
 * header so that handlers outside http/ that read fields keep compiling
 * until they are moved to the accessors; then that include goes and only
 * src/http/ sees the layout.
 */
#ifndef NC_REQ_PRIVATE_H
#define NC_REQ_PRIVATE_H

#include "core/common.h"
#include "core/config.h"
#include "http/auth.h"
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

/*
 * A unit of work for the worker pool: fn(w, arg) runs on a worker thread,
 * then done(srv, arg) on the loop thread (see server_internal.h).
 */
struct job {
	void (*fn)(struct nc_worker *w, void *arg);
	void *arg;
	void (*done)(struct http_server *srv, void *arg);
	struct job *next;
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
	struct sse_spec *sse;         /* set (malloc'd) by req_open_stream */

	/* Server internals. */
	struct evhttp_request *evreq;
	struct http_server *srv;
	int64_t start_us;
	struct job job;               /* this request as a worker-pool job */
};

#endif
