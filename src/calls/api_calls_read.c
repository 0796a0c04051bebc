/*
 * api_calls_read.c - reading calls (GET /api/calls/{id}, GET /api/calls)
 * and client connection statistics (POST /api/calls/{id}/stats).
 *
 * Reads run in the caller's user context and the statements themselves
 * (calls_db_read.c) say who may see what, so a call the caller may not see
 * is 404 whatever role the service logs in as.
 */
#include "calls/api_calls.h"
#include "core/uuid.h"
#include "core/b64.h"
#include "core/jsonv.h"
#include "realtime/presence.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *participant_json(const struct part_view *p)
{
	json_t *o = json_object();

	json_object_set_new(o, "userId", str_or_null(p->user_id));
	json_object_set_new(o, "displayName", str_or_null(p->display_name));
	json_object_set_new(o, "role", json_string(p->role));
	json_object_set_new(o, "status", json_string(p->status));
	json_object_set_new(o, "invitedAt", str_or_null(p->invited_at));
	json_object_set_new(o, "joinedAt", str_or_null(p->joined_at));
	json_object_set_new(o, "leftAt", str_or_null(p->left_at));
	json_object_set_new(o, "totalDurationSeconds", json_integer(p->total_duration_seconds));
	json_object_set_new(o, "isAudioEnabled", json_boolean(p->audio));
	json_object_set_new(o, "isVideoEnabled", json_boolean(p->video));
	json_object_set_new(o, "isScreenSharing", json_boolean(p->screen));
	return o;
}

/*
 * The API object of a call, with presence flags on its participants.  A
 * call the viewer was removed from is only the line that says so: which
 * call, when, and their own participant row.
 */
static json_t *call_json(struct nc_worker *w, const struct call_view *v)
{
	json_t *o = json_object(), *meta, *parts = json_array();

	for (size_t i = 0; i < v->n_parts; i++)
		json_array_append_new(parts, participant_json(&v->parts[i]));
	json_object_set_new(o, "id", json_string(v->id));
	json_object_set_new(o, "callType", json_string(v->type));
	json_object_set_new(o, "initiatedAt", str_or_null(v->initiated_at));
	if (v->removed) {
		json_object_set_new(o, "removed", json_true());
		json_object_set_new(o, "participants", parts);
		return o;
	}
	json_object_set_new(o, "roomName", json_string(v->room));
	json_object_set_new(o, "status", json_string(v->status));
	json_object_set_new(o, "initiatorId", str_or_null(v->initiator));
	json_object_set_new(o, "channelId", str_or_null(v->channel));
	json_object_set_new(o, "isGroupCall", json_boolean(v->group));
	meta = v->metadata ? json_loads(v->metadata, 0, NULL) : NULL;
	json_object_set_new(o, "metadata", meta ? meta : json_object());
	json_object_set_new(o, "maxParticipants", v->max_participants >= 0
				   ? json_integer(v->max_participants) : json_null());
	json_object_set_new(o, "endReason", str_or_null(v->end_reason));
	json_object_set_new(o, "startedAt", str_or_null(v->started_at));
	json_object_set_new(o, "endedAt", str_or_null(v->ended_at));
	json_object_set_new(o, "ringExpiresAt", str_or_null(v->ring_expires_at));
	json_object_set_new(o, "recordingActive", json_boolean(v->recording_active));
	presence_annotate(w, v->id, parts);
	json_object_set_new(o, "participants", parts);
	return o;
}

static enum nc_err api_calls_get(struct req *r, struct nc_error *err)
{
	struct call_view v;
	char id[37];
	bool found;

	calls_param(r, "id", id);
	if (calls_db_get(&req_worker(r)->db, req_user(r)->user_id, id, &v, &found, err) != NC_OK)
		return err->code;
	if (!found)
		return err_set(err, NC_ENOTFOUND, "call not found");
	resp_json(r, 200, call_json(req_worker(r), &v));
	call_view_free(&v);
	return NC_OK;
}

static const char *const call_statuses[] = {
	"initiating", "ringing", "active", "ended", "missed", "declined", "failed", NULL
};

/*
 * Decode a cursor "<timestamp>|<uuid>" (base64url) into ts and id; false if
 * it is not one we issued.
 */
static bool cursor_decode(const char *cur, char ts[40], char id[37])
{
	size_t n = strlen(cur);
	unsigned char dec[100];
	long len;
	char *bar;

	/* 128 characters decode to at most 96 bytes: room for them and a NUL. */
	if (n == 0 || n > 128)
		return false;
	len = b64url_decode(cur, n, dec);
	if (len <= 0 || len >= (long)sizeof(dec))
		return false;
	dec[len] = '\0';
	bar = strchr((char *)dec, '|');
	if (bar == NULL || bar - (char *)dec >= 40 || !is_uuid(bar + 1))
		return false;
	*bar = '\0';
	for (char *q = (char *)dec; *q; q++)
		if (!((*q >= '0' && *q <= '9') || *q == '-' || *q == ':' || *q == '.' || *q == 'T' ||
		      *q == 'Z'))
			return false;
	memcpy(ts, dec, (size_t)(bar - (char *)dec) + 1);
	uuid_lower(bar + 1, id);
	return true;
}

/* The query of GET /api/calls into f (ts/cid hold the cursor). */
static enum nc_err list_filter(char *status, char *channel, char *limit_s, char *before,
			       char ts[40], char cid[37], struct calls_list_filter *f,
			       struct nc_error *err)
{
	long limit = 20;
	bool ok;

	memset(f, 0, sizeof(*f));
	if (status != NULL) {
		ok = false;
		for (size_t i = 0; call_statuses[i]; i++)
			if (strcmp(status, call_statuses[i]) == 0)
				ok = true;
		if (!ok)
			return err_set(err, NC_EBADREQ, "status must be one of initiating, ringing,"
				       " active, ended, missed, declined, failed");
		f->status = status;
	}
	if (channel != NULL) {
		if (!is_uuid(channel))
			return err_set(err, NC_EBADREQ, "channelId is not a UUID");
		f->channel = channel;
	}
	if (limit_s != NULL && parse_long(limit_s, 1, 100, &limit) != 0)
		return err_set(err, NC_EBADREQ, "limit must be an integer from 1 to 100");
	if (before != NULL) {
		if (!cursor_decode(before, ts, cid))
			return err_set(err, NC_EBADREQ, "before is not a valid cursor");
		f->before_ts = ts;
		f->before_id = cid;
	}
	f->limit = (int)limit;
	return NC_OK;
}

/* {items, nextCursor} of the rows read (one more than the page when there is a next one). */
static json_t *list_page(struct nc_worker *w, const struct call_view *v, size_t n, int limit)
{
	json_t *items = json_array(), *out;

	for (size_t i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(items, call_json(w, &v[i]));
	out = json_pack("{s:o}", "items", items);
	if (n > (size_t)limit) {
		char *raw = xasprintf("%s|%s", v[limit - 1].cursor_ts, v[limit - 1].id);
		char *cursor_text = b64url_encode_str(raw);

		free(raw);
		json_object_set_new(out, "nextCursor", json_string(cursor_text));
		free(cursor_text);
	} else {
		json_object_set_new(out, "nextCursor", json_null());
	}
	return out;
}

static enum nc_err api_calls_list(struct req *r, struct nc_error *err)
{
	char *status = req_query(r, "status"), *channel = req_query(r, "channelId");
	char *limit_s = req_query(r, "limit"), *before = req_query(r, "before");
	char ts[40], cid[37];
	struct calls_list_filter f;
	struct call_view *v = NULL;
	size_t n = 0;
	enum nc_err rc;

	rc = list_filter(status, channel, limit_s, before, ts, cid, &f, err);
	if (rc == NC_OK)
		rc = calls_db_list(&req_worker(r)->db, req_user(r)->user_id, &f, &v, &n, err);
	if (rc == NC_OK)
		resp_json(r, 200, list_page(req_worker(r), v, n, f.limit));
	call_views_free(v, n);
	free(status);
	free(channel);
	free(limit_s);
	free(before);
	return rc;
}

/* ------------------------------------------------------------------ */
/* POST /api/calls/{id}/stats                                          */
/* ------------------------------------------------------------------ */

static const char *const ice_states[] = {
	"new", "checking", "connected", "completed", "failed", "disconnected", "closed", NULL
};
static const char *const candidate_types[] = { "host", "srflx", "prflx", "relay", NULL };
static const char *const qualities[] = { "excellent", "good", "poor", "lost", "unknown", NULL };

/* 1 allowed, 0 over the limit; Redis down counts as allowed (best effort). */
static int stats_rate_ok(struct req *r, const char *id)
{
	struct nc_error err = {0};
	redisReply *rep;
	int ok = 1;

	if (!req_worker(r)->rds_ok)
		return 1;
	rep = rds_cmd(&req_worker(r)->rds, &err, "SET nchat:rl:stats:%s:%s 1 PX 1000 NX", id,
		      req_user(r)->user_id);
	if (rep != NULL && rep->type == REDIS_REPLY_NIL)
		ok = 0;
	freeReplyObject(rep);
	return ok;
}

/* The report in the body into s (numbers as text in the buffers). */
static enum nc_err stats_body(json_t *body, struct calls_stats_row *s, char rtt_s[32],
			      char jit_s[32], char loss_s[32], char br_s[32], struct nc_error *err)
{
	double rtt = -1, jitter = -1, loss = -1;
	long long bitrate = -1;

	memset(s, 0, sizeof(*s));
	s->ice = "new";
	s->quality = "unknown";
	if (jv_enum(body, "iceConnectionState", 0, ice_states, &s->ice, err) < 0 ||
	    jv_enum(body, "localCandidateType", 0, candidate_types, &s->local_candidate, err) < 0 ||
	    jv_enum(body, "remoteCandidateType", 0, candidate_types, &s->remote_candidate, err) < 0 ||
	    jv_bool(body, "turnUsed", 0, &s->turn, err) < 0 ||
	    jv_number(body, "rttMs", 0, 0, 600000, &rtt, err) < 0 ||
	    jv_number(body, "jitterMs", 0, 0, 600000, &jitter, err) < 0 ||
	    jv_number(body, "packetLossPct", 0, 0, 100, &loss, err) < 0 ||
	    jv_int(body, "bitrateKbps", 0, 0, 10000000, &bitrate, err) < 0 ||
	    jv_enum(body, "quality", 0, qualities, &s->quality, err) < 0)
		return err->code;
	snprintf(rtt_s, 32, "%.3f", rtt);
	snprintf(jit_s, 32, "%.3f", jitter);
	snprintf(loss_s, 32, "%.3f", loss);
	snprintf(br_s, 32, "%lld", bitrate);
	s->rtt = rtt >= 0 ? rtt_s : NULL;
	s->jitter = jitter >= 0 ? jit_s : NULL;
	s->loss = loss >= 0 ? loss_s : NULL;
	s->bitrate = bitrate >= 0 ? br_s : NULL;
	return NC_OK;
}

static enum nc_err api_calls_stats(struct req *r, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct calls_stats_row s;
	enum calls_stats_outcome outcome;
	char id[37], pid[37], rid[37], created[32];
	char rtt_s[32], jit_s[32], loss_s[32], br_s[32];

	if (calls_no_body(r))
		return err_set(err, NC_EBADREQ, "request body must be a JSON object");
	calls_param(r, "id", id);
	if (stats_body(req_body(r), &s, rtt_s, jit_s, loss_s, br_s, err) != NC_OK)
		return err->code;
	/* User context: the policy lets a participant insert only their own row. */
	if (db_begin_user(db, req_user(r)->user_id, err) != NC_OK ||
	    calls_db_stats_participant(db, id, req_user(r)->user_id, &outcome, pid, err) != NC_OK)
		return err->code;
	if (outcome == CALLS_STATS_FORBIDDEN)
		return err_set(err, NC_EFORBIDDEN, "not a participant of this call");
	if (outcome != CALLS_STATS_OK)
		return err_set(err, NC_ENOTFOUND, "call not found");
	if (!stats_rate_ok(r, id)) {
		resp_header(r, "Retry-After", "1");
		return err_set(err, NC_ERATELIMIT, "at most one stats report per second per call");
	}
	if (calls_db_stats_insert(db, id, req_user(r)->user_id, pid, &s, rid, created, err) != NC_OK ||
	    db_commit(db, err) != NC_OK)
		return err->code;
	resp_json(r, 201, json_pack("{s:s, s:s}", "id", rid, "createdAt", created));
	return NC_OK;
}

#define READ_ROUTE (ROUTE_AUTH | ROUTE_UUID_PARAMS)

const struct route calls_read_routes[] = {
	{ RM_GET, "/api/calls", api_calls_list, ROUTE_AUTH, "calls.list", NULL },
	{ RM_GET, "/api/calls/{id}", api_calls_get, READ_ROUTE, "calls.get", NULL },
	{ RM_POST, "/api/calls/{id}/stats", api_calls_stats, READ_ROUTE | ROUTE_JSON,
	  "calls.stats", NULL },
	{ 0, NULL, NULL, 0, NULL, NULL }
};
