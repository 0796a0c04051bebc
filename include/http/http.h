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
struct sse_spec;
struct req;

/*
 * struct req is opaque outside http/: handlers use the accessors below.  Its
 * layout is in http/req_private.h, included only by http/'s own files.
 */

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
/* The body as received (NUL-terminated, or NULL when empty); *len its length. */
const char *req_raw_body(const struct req *r, size_t *len);
/* The worker running the handler (its connections); NULL on the loop thread. */
struct nc_worker *req_worker(const struct req *r);
/* The authenticated caller; all zero (no user id, no roles) unless req_authed. */
const struct principal *req_user(const struct req *r);
bool req_authed(const struct req *r);
const struct nc_config *req_cfg(const struct req *r);
/* The request id (X-Request-Id when valid, else a fresh UUID). */
const char *req_id(const struct req *r);
/* The client's address (X-Forwarded-For resolved through TRUSTED_PROXIES). */
const char *req_client_addr(const struct req *r);
/* Did the request arrive on the METRICS_ADDR listener? */
bool req_on_metrics_listener(const struct req *r);
/*
 * Answer by opening an event stream described by spec (copied): the loop
 * thread hands the connection to the SSE hub after the handler returns.
 */
void req_open_stream(struct req *r, const struct sse_spec *spec);

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
/* Work for a worker thread: runs with the worker's own connections. */
typedef void (*nc_job_fn)(struct nc_worker *w, void *arg);
/*
 * Run fn(w, arg) on a worker every interval_s seconds (none when <= 0), one
 * run at a time on this instance: a tick while the previous run is queued or
 * running is skipped.  No tick starts once draining begins; a run in
 * progress is waited for.  name is for logs.  Call before http_server_run.
 */
void http_server_add_periodic(struct http_server *srv, int interval_s, nc_job_fn fn, void *arg,
			      const char *name);

#endif
