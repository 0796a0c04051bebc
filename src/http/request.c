/*
 * request.c - the request context: what handlers read (req_*) and how they
 * answer (resp_*).  Everything here works on one struct req and touches no
 * libevent object, so it runs on whichever thread holds the request.
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "http/sse.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void free_headers(struct http_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
}

void req_free(struct req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r->path_buf);
	free(r->query);
	free_headers(r->headers, r->n_headers);
	free(r->body);
	json_decref(r->json);
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

json_t *req_body(const struct req *r)
{
	return r->json;
}

const char *req_raw_body(const struct req *r, size_t *len)
{
	if (len != NULL)
		*len = r->body_len;
	return r->body;
}

struct nc_worker *req_worker(const struct req *r)
{
	return r->w;
}

const struct principal *req_user(const struct req *r)
{
	return &r->user;
}

bool req_authed(const struct req *r)
{
	return r->authed;
}

const struct nc_config *req_cfg(const struct req *r)
{
	return r->cfg;
}

const char *req_id(const struct req *r)
{
	return r->request_id;
}

const char *req_client_addr(const struct req *r)
{
	return r->client_addr;
}

bool req_on_metrics_listener(const struct req *r)
{
	return r->metrics_listener;
}

void req_open_stream(struct req *r, const struct sse_spec *spec)
{
	free(r->sse);
	r->sse = xmalloc(sizeof(*r->sse));
	memcpy(r->sse, spec, sizeof(*r->sse));
	resp_raw(r, 200, "text/event-stream", NULL, 0);
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

void req_clear_out_headers(struct req *r)
{
	free_headers(r->out_headers, r->n_out);
	r->out_headers = NULL;
	r->n_out = r->cap_out = 0;
}
