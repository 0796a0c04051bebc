/*
 * sse_events.c - GET /api/events, the worker side of an event stream: it
 * authorises the subscription and describes it in a struct sse_spec
 * (req_open_stream); after the handler returns, the loop thread hands the
 * connection to the hub (intake.c, sse_hub_attach).  A route_fn: its errors
 * are answered by dispatch like any other handler's.  A refusal by the hub
 * itself (429 too many streams, 503 shutting down) comes later, on the loop
 * thread, and is answered there.
 */
#include "http/sse.h"
#include "core/uuid.h"
#include "http/auth.h"
#include "http/http.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * May this caller follow stream id?  Exactly the read rule of the REST
 * endpoints for the same data (streams_open's STREAM_NEED_VIEW, used by
 * GET /api/streams/{id}/chat): the broadcaster, a member of the stream's
 * channel, staff (admin, moderator), or anyone - signed in or not - while
 * the stream is live and STREAMS_PUBLIC_WHILE_LIVE is on.  Checked here in
 * its own SQL predicate, not through a policy, so a policy change cannot
 * open the event stream.  200; 404 (no such stream, or a signed-in caller
 * who may not see it: not confirmed to exist); 401 (anonymous, as the REST
 * chat read says); 503 / 500.
 */
static int sse_stream_readable(struct req *r, const char *stream_id)
{
	static const char sql[] =
		"SELECT ($3::boolean AND s.status = 'live')"
		" OR ($2::uuid IS NOT NULL AND ($4::boolean OR s.broadcaster_id = $2::uuid"
		"     OR EXISTS (SELECT 1 FROM nchat_channel_members m"
		"                WHERE m.channel_id = s.channel_id AND m.user_id = $2::uuid)))"
		" FROM nchat_streams s WHERE s.id = $1";
	struct nc_error err = {0};
	bool authed = req_authed(r);
	const char *params[4] = {
		stream_id, authed ? req_user(r)->user_id : NULL,
		req_cfg(r)->streams_public_live ? "true" : "false",
		authed && auth_is_staff(req_user(r)) ? "true" : "false",
	};
	PGresult *res = db_exec_service(&req_worker(r)->db, sql, 4, params, &err);
	int status;

	if (res == NULL)
		return err.code == NC_EUNAVAILABLE ? 503 : 500;
	if (PQntuples(res) != 1)
		status = 404;
	else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		status = 200;
	else
		status = authed ? 404 : 401;
	PQclear(res);
	return status;
}

/* May the caller follow ?stream=id?  NC_OK, or the error in err. */
static enum nc_err check_stream(struct req *r, const char *stream, struct nc_error *err)
{
	int st;

	if (!is_uuid(stream))
		return err_set(err, NC_EBADREQ, "stream must be a UUID");
	st = sse_stream_readable(r, stream);
	if (st == 404)
		return err_set(err, NC_ENOTFOUND, "stream not found");
	if (st == 401)
		return err_set(err, NC_EUNAUTH, "sign in to follow this stream");
	if (st != 200)
		return err_set(err, st == 503 ? NC_EUNAVAILABLE : NC_EINTERNAL, "cannot check the stream");
	return NC_OK;
}

static enum nc_err api_events(struct req *r, struct nc_error *err)
{
	const struct principal *user = req_user(r);
	struct sse_spec spec;
	char *stream = req_query(r, "stream");
	char *qlast = req_query(r, "lastEventId");
	const char *last = req_header(r, "Last-Event-ID");
	enum nc_err rc = NC_OK;

	if (stream == NULL && !req_authed(r))
		rc = err_set(err, NC_EUNAUTH, "missing bearer token");
	else if (stream != NULL)
		rc = check_stream(r, stream, err);
	if (rc == NC_OK) {
		memset(&spec, 0, sizeof(spec));
		if (req_authed(r)) {
			snprintf(spec.user_id, sizeof(spec.user_id), "%s", user->user_id);
			spec.exp = user->exp;
			snprintf(spec.topics[spec.n_topics++], sizeof(spec.topics[0]), "user:%s",
				 user->user_id);
		}
		if (stream != NULL)
			snprintf(spec.topics[spec.n_topics++], sizeof(spec.topics[0]), "stream:%s",
				 stream);
		sse_parse_last_event_id(last != NULL ? last : qlast, &spec);
		req_open_stream(r, &spec);
	}
	free(stream);
	free(qlast);
	return rc;
}

const struct route events_routes[] = {
	{RM_GET, "/api/events", api_events, ROUTE_AUTH_OPTIONAL | ROUTE_QUERY_TOKEN, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
