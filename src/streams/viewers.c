/*
 * viewers.c - stream viewer sessions and the live viewer count.
 *
 * A session is one row of nchat_stream_viewers, keyed by the client's own
 * viewer_session_id (signed-in or anonymous).  join opens (or re-opens) it,
 * heartbeat keeps it counted, leave closes it; triggers keep the watch time
 * (0002_triggers.sql) and count total_views and unique_viewers (one pending
 * row per view, folded into the stream row: 0013_stream_counts_append.sql).
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
#include "streams/streams_db.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
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

/*
 * One round trip for a viewer's session and the live count: record
 * (touch) or drop (forget) the session, prune the silent ones, count, and
 * say whether the count differs from the one last stored in Postgres.
 * KEYS[1] the stream's set, KEYS[2] the stored count; ARGV: mode, session,
 * now ms, cutoff ms, ttl s.  Returns {count, changed}.
 */
static const char sync_lua[] =
	"if ARGV[1] == 'touch' then\n"
	"  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
	"elseif ARGV[1] == 'forget' then\n"
	"  redis.call('ZREM', KEYS[1], ARGV[2])\n"
	"end\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])\n"
	"local n = redis.call('ZCARD', KEYS[1])\n"
	"local stored = redis.call('GET', KEYS[2])\n"
	"if stored == tostring(n) then return {n, 0} end\n"
	"return {n, 1}\n";

struct viewers_changed {
	char stream_id[37];
	long n;
};

/* The count changed: store it (the peak trigger follows), tell the viewers. */
static void store_count(struct nc_worker *w, const char *stream_id, long n)
{
	struct nc_error err = {0};
	enum streams_count_write wr;
	char key[96], txt[24], ttl[16];
	const char *argv[5];

	if (streams_db_set_current_viewers(&w->db, stream_id, n, &wr, &err) != NC_OK) {
		log_warn("stream %s: cannot store viewer count: %s", stream_id, err.msg);
		return;
	}
	if (wr == STREAMS_COUNT_BUSY)
		return; /* the next sync writes it */
	snprintf(key, sizeof(key), "%s%s:stored", STREAMS_VIEWERS_KEY, stream_id);
	snprintf(txt, sizeof(txt), "%ld", n);
	snprintf(ttl, sizeof(ttl), "%d", w->cfg->viewer_heartbeat_timeout_s * 2 + 3600);
	argv[0] = "SET", argv[1] = key, argv[2] = txt, argv[3] = "EX", argv[4] = ttl;
	(void)rds_append(&w->rds, 5, argv, NULL);
	if (wr == STREAMS_COUNT_WRITTEN) {
		json_t *d = json_pack("{s:s, s:I}", "stream_id", stream_id, "current_viewers",
				      (json_int_t)n);

		rt_publish_stream(w, stream_id, "stream.viewers", d);
		json_decref(d);
	}
}

/* mode "touch", "forget" or "count"; the live count, or -1 when Redis is unavailable. */
static long viewers_sync(struct nc_worker *w, const char *stream_id, const char *mode,
			 const char *session)
{
	struct nc_error err = {0};
	char key[96], stored[96], now[24], cutoff[24], ttl[16];
	const char *argv[10];
	redisReply *rep;
	long n = -1;
	bool changed = false;

	if (!w->rds_ok)
		return -1;
	snprintf(key, sizeof(key), "%s%s", STREAMS_VIEWERS_KEY, stream_id);
	snprintf(stored, sizeof(stored), "%s%s:stored", STREAMS_VIEWERS_KEY, stream_id);
	snprintf(now, sizeof(now), "%lld", (long long)now_ms());
	snprintf(cutoff, sizeof(cutoff), "%lld", (long long)(now_ms() - timeout_ms(w->cfg)));
	/* an abandoned stream's set goes away by itself */
	snprintf(ttl, sizeof(ttl), "%d", w->cfg->viewer_heartbeat_timeout_s * 2 + 3600);
	argv[0] = "EVAL", argv[1] = sync_lua, argv[2] = "2", argv[3] = key, argv[4] = stored;
	argv[5] = mode, argv[6] = session ? session : "", argv[7] = now, argv[8] = cutoff;
	argv[9] = ttl;
	rep = rds_cmdv(&w->rds, 10, argv, NULL, &err);
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER) {
		n = (long)rep->element[0]->integer;
		changed = rep->element[1]->type == REDIS_REPLY_INTEGER && rep->element[1]->integer;
	} else if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
		log_warn("stream %s: viewer count failed: %s", stream_id, rep->str);
	}
	freeReplyObject(rep);
	if (changed)
		store_count(w, stream_id, n);
	return n;
}

void viewers_refresh(struct nc_worker *w, const char *stream_id)
{
	(void)viewers_sync(w, stream_id, "count", NULL);
}

void streams_client_key(const struct nc_config *cfg, const char *addr, char out[STREAMS_CLIENT_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	const char *key = cfg->auth_key ? cfg->auth_key : "nchat-rtc";

	if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)addr, strlen(addr), md,
		 &len) == NULL || len < STREAMS_CLIENT_KEY_LEN / 2) {
		/* cannot happen with a working libcrypto; never count everyone as one */
		log_error("streams: HMAC failed");
		abort();
	}
	for (unsigned i = 0; i < STREAMS_CLIENT_KEY_LEN / 2; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[STREAMS_CLIENT_KEY_LEN] = '\0';
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

/* The error for a join the statement refused; NC_OK when it went through. */
static enum nc_err join_refused(struct req *r, const struct streams_viewer_join *j,
				struct nc_error *err)
{
	if (!j->s.found || (!j->s.can_view && req_authed(r)))
		return err_set(err, NC_ENOTFOUND, "stream not found");
	if (!j->s.can_view)
		return err_set(err, NC_EUNAUTH, "sign in to view this stream");
	if (j->s.over)
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	if (j->too_many) {
		/* the header stays on the error response dispatch writes */
		resp_header(r, "Retry-After", "30");
		return err_set(err, NC_ERATELIMIT, "too many viewer sessions from this address");
	}
	if (j->taken)
		return err_set(err, NC_ECONFLICT, "this viewer_session_id belongs to another viewer");
	return NC_OK;
}

static enum nc_err api_stream_viewer_join(struct req *r, struct nc_error *err)
{
	const struct nc_config *cfg = req_cfg(r);
	struct streams_caller who = streams_caller_of(r);
	struct streams_viewer_join j;
	const char *sid = NULL, *id = req_param(r, "id");
	char ck[STREAMS_CLIENT_KEY_LEN + 1];
	json_t *out;
	long cur;

	if (session_id_of(req_body(r), JV_REQUIRED, &sid, err) < 0)
		return err->code;
	if (!req_authed(r))
		streams_client_key(cfg, req_client_addr(r), ck);
	/* one statement: the stream, the caller's rights, the session */
	if (streams_db_viewer_join(&req_worker(r)->db, id, &who, sid, req_authed(r) ? NULL : ck,
				   cfg->anon_viewer_sessions, &j, err) != NC_OK ||
	    join_refused(r, &j, err) != NC_OK)
		return err->code;
	out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "stream_id", id, "viewer_id",
			j.viewer_id, "viewer_session_id", sid, "joined_at", j.joined_at,
			"heartbeat_timeout_seconds", cfg->viewer_heartbeat_timeout_s,
			"heartbeat_interval_seconds",
			cfg->viewer_heartbeat_timeout_s >= 3 ? cfg->viewer_heartbeat_timeout_s / 3 : 1);
	cur = viewers_sync(req_worker(r), id, "touch", sid);
	if (cur >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, j.inserted ? 201 : 200, out);
	return NC_OK;
}

/*
 * Heartbeat and leave act on "that session": the caller must present the
 * session id, and a session opened by a signed-in user answers only to that
 * user (an anonymous one only to anonymous callers).  Viewing rights are not
 * re-checked, so a session outlives the stream going from live to ended.
 */

/* ---- POST /api/streams/{id}/viewers/heartbeat ---- */

static enum nc_err api_stream_viewer_heartbeat(struct req *r, struct nc_error *err)
{
	const char *sid = NULL, *id = req_param(r, "id");
	enum streams_beat_outcome beat;
	json_t *out;
	long cur;

	if (session_id_of(req_body(r), JV_REQUIRED, &sid, err) < 0 ||
	    streams_db_heartbeat(&req_worker(r)->db, id, sid,
				 req_authed(r) ? req_user(r)->user_id : NULL, &beat, err) != NC_OK)
		return err->code;
	switch (beat) {
	case STREAMS_BEAT_NO_STREAM:
		return err_set(err, NC_ENOTFOUND, "stream not found");
	case STREAMS_BEAT_NO_SESSION:
		return err_set(err, NC_ENOTFOUND, "no such viewer session");
	case STREAMS_BEAT_CLOSED:
		return err_set(err, NC_ECONFLICT, "the viewer session was closed; join again");
	case STREAMS_BEAT_OVER:
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	case STREAMS_BEAT_OK:
		break;
	}
	out = json_pack("{s:s, s:s}", "stream_id", id, "viewer_session_id", sid);
	if ((cur = viewers_sync(req_worker(r), id, "touch", sid)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	return NC_OK;
}

/* ---- POST /api/streams/{id}/viewers/leave ---- */

/* Leaving twice is harmless: the second answer repeats the first. */
static enum nc_err api_stream_viewer_leave(struct req *r, struct nc_error *err)
{
	struct streams_viewer_leave lv;
	const char *sid = NULL, *id = req_param(r, "id");
	json_t *out;

	if (session_id_of(req_body(r), JV_REQUIRED, &sid, err) < 0 ||
	    streams_db_viewer_leave(&req_worker(r)->db, id, sid,
				    req_authed(r) ? req_user(r)->user_id : NULL, &lv, err) != NC_OK)
		return err->code;
	if (!lv.found)
		return err_set(err, NC_ENOTFOUND, "no such viewer session");
	out = json_pack("{s:s, s:s, s:I, s:s?}", "stream_id", id, "viewer_session_id", sid,
			"watch_duration_seconds", (json_int_t)lv.watch_duration_seconds, "left_at",
			lv.left_at[0] ? lv.left_at : NULL);
	(void)viewers_sync(req_worker(r), id, "forget", sid);
	resp_json(r, 200, out);
	return NC_OK;
}

/* ---- POST /api/streams/{id}/viewer-token ---- */

/*
 * Subscribe-only token for WebRTC viewing.  Identity: the user id when
 * signed in, "anon-<viewer_session_id>" for anonymous viewers (who must
 * send viewer_session_id; session_id_of checked it).
 */
static enum nc_err viewer_token(struct req *r, struct stream_ctx *s, void *arg,
				struct nc_error *err)
{
	const char *sid = arg;
	char identity[160], exp_txt[32], *name = NULL, *token;
	int64_t exp;

	if (streams_is_over(s))
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	if (req_authed(r)) {
		name = streams_db_user_name(&req_worker(r)->db, req_user(r)->user_id);
		snprintf(identity, sizeof(identity), "%s", req_user(r)->user_id);
	} else {
		snprintf(identity, sizeof(identity), "anon-%s", sid);
	}
	db_rollback(&req_worker(r)->db); /* read only */
	token = streams_mint_token(req_cfg(r), identity, name, s->room_name, false, &exp);
	free(name);
	if (token == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	format_rfc3339(exp, exp_txt, sizeof(exp_txt));
	resp_json(r, 200, json_pack("{s:s, s:s?, s:s, s:s, s:s}", "token", token, "livekit_url",
				    req_cfg(r)->livekit_url, "room_name", s->room_name, "identity",
				    identity, "expires_at", exp_txt));
	free(token);
	return NC_OK;
}

static enum nc_err api_stream_viewer_token(struct req *r, struct nc_error *err)
{
	const char *sid = NULL;

	if (session_id_of(req_body(r), req_authed(r) ? 0 : JV_REQUIRED, &sid, err) < 0)
		return err->code;
	return streams_run(r, STREAM_NEED_VIEW, false, viewer_token, (void *)sid, err);
}

/* ---- routes ---- */

const struct route viewers_routes[] = {
	{RM_POST, "/api/streams/{id}/viewer-token", api_stream_viewer_token,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_POST, "/api/streams/{id}/viewers/join", api_stream_viewer_join,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_POST, "/api/streams/{id}/viewers/heartbeat", api_stream_viewer_heartbeat,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_POST, "/api/streams/{id}/viewers/leave", api_stream_viewer_leave,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
