/*
 * dispatch.c - the worker side of a request: authenticate, charge the rate
 * limits, check what the route table declares (prologue), run the handler;
 * a route_fn's returned error becomes the response here, after rolling back
 * a transaction it left open.
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "http/ratelimit.h"
#include "http/worker.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

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
	if (auth_verify_cached(r->cfg, tok, now_unix(), &r->user, &err) != NC_OK) {
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
	struct rl_bucket own;
	long wait_ms;
	char ra[24];

	if (r->match.route->own_limit != NULL)
		r->match.route->own_limit(r, &own);
	wait_ms = rl_check(r->w, &r->cfg->rl, cls, r->authed ? r->user.user_id : NULL,
			   r->client_addr, r->match.route->own_limit != NULL ? &own : NULL);

	if (wait_ms <= 0)
		return true;
	snprintf(ra, sizeof(ra), "%ld", (wait_ms + 999) / 1000);
	req_clear_out_headers(r);
	resp_header(r, "Retry-After", ra);
	resp_error(r, NC_ERATELIMIT, "too many %s requests; retry in %s s", rl_class_name(cls), ra);
	metrics_inc(M_RATE_LIMITED);
	return false;
}

/*
 * What the route table declares of every request, checked once here rather
 * than at the top of each handler: the admin role, UUID path parameters, a
 * JSON body.  False with the error response set.
 */
static bool prologue(struct req *r)
{
	unsigned flags = r->match.route->flags;

	if ((flags & ROUTE_ADMIN) && !(r->user.roles & ROLE_ADMIN)) {
		resp_error(r, NC_EFORBIDDEN, "admins only");
		return false;
	}
	if (flags & ROUTE_UUID_PARAMS)
		for (size_t i = 0; i < r->match.n_params; i++)
			if (!is_uuid(r->match.values[i])) {
				resp_error(r, NC_EBADREQ, "%.*s must be a UUID",
					   (int)r->match.name_lens[i], r->match.names[i]);
				return false;
			}
	if (flags & ROUTE_JSON) {
		r->json = req_json(r, true);
		if (r->json == NULL)
			return false;
	}
	return true;
}

/* Run the route's handler; a returned error becomes the response. */
void dispatch_run_handler(struct req *r)
{
	const struct route *rt = r->match.route;
	struct nc_error err = {0};
	enum nc_err rc;

	rc = rt->handler(r, &err);
	if (rc == NC_OK)
		return;
	if (r->w != NULL && r->w->db.in_tx)
		db_rollback(&r->w->db);
	if (err.code == NC_OK)
		err.code = rc;
	if (err.msg[0] == '\0')
		snprintf(err.msg, sizeof(err.msg), "%s", err_code_name(err.code));
	if (err_http_status(err.code) >= 500)
		log_error("%s %s: %s", r->method_name, rt->pattern, err.msg);
	else
		log_debug("%s %s: %d %s", r->method_name, rt->pattern, err_http_status(err.code),
			  err.msg);
	resp_nc_error(r, &err);
}

static void dispatch(struct req *r)
{
	/* Failed authentications are charged to the address too (token guessing). */
	bool authed = authenticate(r);

	if (within_limits(r) && authed && prologue(r))
		dispatch_run_handler(r);
	if (r->status == 0)
		resp_error(r, NC_EINTERNAL, "handler produced no response");
	/* A handler must never leave a transaction open on its connection. */
	if (r->w != NULL && r->w->db.in_tx) {
		log_error("route %s left a transaction open; rolled back", r->match.route->pattern);
		db_rollback(&r->w->db);
	}
}

/* The job of a request (struct req.job): runs on worker w. */
void dispatch_job(struct nc_worker *w, void *arg)
{
	struct req *r = arg;

	r->w = w;
	log_set_request_id(r->request_id);
	dispatch(r);
	log_set_request_id(NULL);
	r->w = NULL;
}
