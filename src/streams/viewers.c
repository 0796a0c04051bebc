/*
 * viewers.c - stream viewer sessions and the live viewer count.
 *
 * A session is one row of nchat_stream_viewers, keyed by the client's own
 * viewer_session_id (signed-in or anonymous).  join opens (or re-opens) it,
 * heartbeat keeps it counted, leave closes it; the triggers of
 * 0002_triggers.sql keep total_views, unique_viewers and watch time.
 *
 * Who is watching right now lives in Redis, not Postgres: one sorted set per
 * stream, member = session id, score = last heartbeat (unix ms).  The
 * current count is the number of members heard from within
 * VIEWER_HEARTBEAT_TIMEOUT_SECONDS, so a viewer whose tab died stops counting
 * without any sweep.  Each time the count changes it is written to
 * nchat_streams.current_viewers (whose trigger raises peak_viewers) and
 * published as stream.viewers.  With Redis down, sessions still open and
 * close; only the live count is frozen.
 */
#include "streams/streams.h"

#include "store/db.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "core/log.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long timeout_ms(const struct nc_config *cfg)
{
	return (long)cfg->viewer_heartbeat_timeout_s * 1000L;
}

long viewers_current(struct nc_worker *w, const char *stream_id)
{
	struct nc_error err;
	redisReply *rep;
	long n = -1;

	if (!w->rds_ok)
		return -1;
	rep = rds_cmd(&w->rds, &err, "ZCOUNT %s%s %lld +inf", STREAMS_VIEWERS_KEY, stream_id,
		      (long long)(now_ms() - timeout_ms(w->cfg)));
	if (rep == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_INTEGER)
		n = (long)rep->integer;
	freeReplyObject(rep);
	return n;
}

/* Record a heartbeat (or join) of session in Redis; best effort. */
static void viewers_touch(struct nc_worker *w, const char *stream_id, const char *session)
{
	struct nc_error err;
	redisReply *rep;

	if (!w->rds_ok)
		return;
	rep = rds_cmd(&w->rds, &err, "ZADD %s%s %lld %s", STREAMS_VIEWERS_KEY, stream_id,
		      (long long)now_ms(), session);
	if (rep == NULL)
		return;
	freeReplyObject(rep);
	/* an abandoned stream's set goes away by itself */
	rep = rds_cmd(&w->rds, &err, "EXPIRE %s%s %d", STREAMS_VIEWERS_KEY, stream_id,
		      w->cfg->viewer_heartbeat_timeout_s * 2 + 3600);
	if (rep)
		freeReplyObject(rep);
}

static void viewers_forget(struct nc_worker *w, const char *stream_id, const char *session)
{
	struct nc_error err;
	redisReply *rep;

	if (!w->rds_ok)
		return;
	rep = rds_cmd(&w->rds, &err, "ZREM %s%s %s", STREAMS_VIEWERS_KEY, stream_id, session);
	if (rep)
		freeReplyObject(rep);
}

void viewers_refresh(struct nc_worker *w, const char *stream_id)
{
	struct db_conn *db = &w->db;
	struct nc_error err;
	redisReply *rep;
	char count_txt[24];
	const char *p[2];
	PGresult *res;
	long n;

	if (!w->rds_ok)
		return;
	/* prune the silent ones so the set stays the size of the audience */
	rep = rds_cmd(&w->rds, &err, "ZREMRANGEBYSCORE %s%s -inf (%lld", STREAMS_VIEWERS_KEY,
		      stream_id, (long long)(now_ms() - timeout_ms(w->cfg)));
	if (rep == NULL)
		return;
	freeReplyObject(rep);
	if ((n = viewers_current(w, stream_id)) < 0)
		return;
	snprintf(count_txt, sizeof(count_txt), "%ld", n);
	p[0] = stream_id;
	p[1] = count_txt;
	if (db_begin_service(db, &err) != NC_OK)
		return;
	res = db_exec(db,
		"UPDATE nchat_streams SET current_viewers = $2::int"
		" WHERE id = $1 AND current_viewers <> $2::int AND status NOT IN ('ended', 'failed')",
		2, p, &err);
	if (res == NULL) {
		db_rollback(db);
		log_warn("stream %s: cannot store viewer count: %s", stream_id, err.msg);
		return;
	}
	if (atol(PQcmdTuples(res)) == 1) {
		PQclear(res);
		if (db_commit(db, &err) == NC_OK) {
			json_t *d = json_pack("{s:s, s:I}", "stream_id", stream_id,
					      "current_viewers", (json_int_t)n);

			rt_publish_stream(w, stream_id, "stream.viewers", d);
			json_decref(d);
		}
		db_rollback(db);
		return;
	}
	PQclear(res);
	db_rollback(db);
}

/*
 * viewer_session_id: 8..128 characters from [A-Za-z0-9._:-], so it is safe
 * as a Redis member and inside a LiveKit identity ("anon-<id>").
 */
static int session_id_of(json_t *body, unsigned flags, const char **out, struct nc_error *err)
{
	int rc = jv_string(body, "viewer_session_id", flags, 8, 128, out, err);

	if (rc <= 0)
		return rc;
	for (const char *c = *out; *c; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == ':' ||
		      *c == '-')) {
			err_set(err, NC_EBADREQ,
				"viewer_session_id may contain only letters, digits and . _ : -");
			return -1;
		}
	}
	return 1;
}

/* ---- POST /api/streams/{id}/viewers/join ---- */

void api_stream_viewer_join(struct req *r)
{
	static const char sql[] =
		"INSERT INTO nchat_stream_viewers AS v (stream_id, user_id, viewer_session_id)"
		" VALUES ($1, $2, $3)"
		" ON CONFLICT (stream_id, viewer_session_id) DO UPDATE"
		"   SET left_at = NULL, last_heartbeat_at = now()"
		"   WHERE v.user_id IS NOT DISTINCT FROM EXCLUDED.user_id"
		" RETURNING v.id, " STREAMS_TS("v.joined_at") ", (xmax = 0)";
	struct db_conn *db = &r->w->db;
	struct stream_ctx s;
	struct nc_error err;
	json_t *body = req_json(r, false), *out;
	const char *sid = NULL;
	PGresult *res;
	bool inserted;
	long cur;

	if (body == NULL)
		return;
	if (session_id_of(body, JV_REQUIRED, &sid, &err) < 0) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_VIEW, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended");
		goto fail;
	}
	{
		const char *p[3] = { s.id, r->authed ? r->user.user_id : NULL, sid };

		res = db_exec(db, sql, 3, p, &err);
	}
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(&err, NC_ECONFLICT, "this viewer_session_id belongs to another viewer");
		goto fail;
	}
	inserted = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "stream_id", s.id, "viewer_id",
			PQgetvalue(res, 0, 0), "viewer_session_id", sid, "joined_at",
			PQgetvalue(res, 0, 1), "heartbeat_timeout_seconds",
			r->cfg->viewer_heartbeat_timeout_s, "heartbeat_interval_seconds",
			r->cfg->viewer_heartbeat_timeout_s >= 3
				? r->cfg->viewer_heartbeat_timeout_s / 3 : 1);
	PQclear(res);
	if (db_commit(db, &err) != NC_OK) {
		json_decref(out);
		goto fail;
	}
	viewers_touch(r->w, s.id, sid);
	viewers_refresh(r->w, s.id);
	cur = viewers_current(r->w, s.id);
	if (cur >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, inserted ? 201 : 200, out);
	json_decref(body);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	json_decref(body);
	stream_ctx_cleanup(&s);
}

/*
 * Heartbeat and leave act on "that session": the caller must present the
 * session id, and a session opened by a signed-in user answers only to that
 * user (an anonymous one only to anonymous callers).  Viewing rights are not
 * re-checked, so a session outlives the stream going from live to ended.
 */

/* ---- POST /api/streams/{id}/viewers/heartbeat ---- */

void api_stream_viewer_heartbeat(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct stream_ctx s;
	struct nc_error err;
	json_t *body = req_json(r, false), *out;
	const char *sid = NULL;
	const char *p[3];
	PGresult *res;
	long cur;

	if (body == NULL)
		return;
	if (session_id_of(body, JV_REQUIRED, &sid, &err) < 0) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_open(r, req_param(r, "id"), 0, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	p[0] = s.id;
	p[1] = sid;
	p[2] = r->authed ? r->user.user_id : NULL;
	res = db_exec(db,
		"SELECT left_at IS NULL FROM nchat_stream_viewers"
		" WHERE stream_id = $1 AND viewer_session_id = $2"
		"   AND user_id IS NOT DISTINCT FROM $3::uuid FOR UPDATE", 3, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(&err, NC_ENOTFOUND, "no such viewer session");
		goto fail;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		err_set(&err, NC_ECONFLICT, "the viewer session was closed; join again");
		goto fail;
	}
	PQclear(res);
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended");
		goto fail;
	}
	res = db_exec(db,
		"UPDATE nchat_stream_viewers SET last_heartbeat_at = now()"
		" WHERE stream_id = $1 AND viewer_session_id = $2", 2, p, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	viewers_touch(r->w, s.id, sid);
	viewers_refresh(r->w, s.id);
	out = json_pack("{s:s, s:s}", "stream_id", s.id, "viewer_session_id", sid);
	if ((cur = viewers_current(r->w, s.id)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	json_decref(body);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	json_decref(body);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/viewers/leave ---- */

/* Leaving twice is harmless: the second answer repeats the first. */
void api_stream_viewer_leave(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct stream_ctx s;
	struct nc_error err;
	json_t *body = req_json(r, false), *out;
	const char *sid = NULL;
	const char *p[3];
	PGresult *res;

	if (body == NULL)
		return;
	if (session_id_of(body, JV_REQUIRED, &sid, &err) < 0) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_open(r, req_param(r, "id"), 0, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	p[0] = s.id;
	p[1] = sid;
	p[2] = r->authed ? r->user.user_id : NULL;
	res = db_exec(db,
		"UPDATE nchat_stream_viewers SET left_at = now()"
		" WHERE stream_id = $1 AND viewer_session_id = $2"
		"   AND user_id IS NOT DISTINCT FROM $3::uuid AND left_at IS NULL", 3, p, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	res = db_exec(db,
		"SELECT watch_duration_seconds, " STREAMS_TS("left_at") " FROM nchat_stream_viewers"
		" WHERE stream_id = $1 AND viewer_session_id = $2"
		"   AND user_id IS NOT DISTINCT FROM $3::uuid", 3, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(&err, NC_ENOTFOUND, "no such viewer session");
		goto fail;
	}
	out = json_pack("{s:s, s:s, s:I, s:s?}", "stream_id", s.id, "viewer_session_id", sid,
			"watch_duration_seconds", (json_int_t)atoll(PQgetvalue(res, 0, 0)),
			"left_at", db_val(res, 0, 1));
	PQclear(res);
	if (db_commit(db, &err) != NC_OK) {
		json_decref(out);
		goto fail;
	}
	viewers_forget(r->w, s.id, sid);
	viewers_refresh(r->w, s.id);
	resp_json(r, 200, out);
	json_decref(body);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	json_decref(body);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/viewer-token ---- */

/*
 * Subscribe-only token for WebRTC viewing.  Identity: the user id when
 * signed in, "anon-<viewer_session_id>" for anonymous viewers (who must
 * send viewer_session_id).
 */
void api_stream_viewer_token(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct stream_ctx s;
	struct nc_error err;
	json_t *body = req_json(r, true);
	const char *sid = NULL;
	char *identity = NULL, *name = NULL, *token = NULL;
	char exp_txt[32];
	int64_t exp;

	if (body == NULL)
		return;
	if (session_id_of(body, r->authed ? 0 : JV_REQUIRED, &sid, &err) < 0) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_VIEW, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		json_decref(body);
		return;
	}
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended");
		streams_fail(r, &err);
		goto out;
	}
	if (r->authed) {
		const char *p[1] = { r->user.user_id };
		PGresult *res = db_exec(db, "SELECT display_name FROM nchat_users WHERE id = $1", 1,
					p, &err);

		if (res != NULL) {
			if (PQntuples(res) == 1 && db_val(res, 0, 0))
				name = xstrdup(db_val(res, 0, 0));
			PQclear(res);
		}
		identity = xstrdup(r->user.user_id);
	} else {
		identity = xasprintf("anon-%s", sid);
	}
	db_rollback(db);
	token = streams_mint_token(r->cfg, identity, name, s.room_name, false, &exp);
	if (token == NULL) {
		resp_error(r, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		goto out;
	}
	format_rfc3339(exp, exp_txt, sizeof(exp_txt));
	resp_json(r, 200, json_pack("{s:s, s:s?, s:s, s:s, s:s}", "token", token, "livekit_url",
				    r->cfg->livekit_url, "room_name", s.room_name, "identity",
				    identity, "expires_at", exp_txt));
out:
	free(token);
	free(identity);
	free(name);
	json_decref(body);
	stream_ctx_cleanup(&s);
}
