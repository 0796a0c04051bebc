/*
 * api_streams.c - the live-stream HTTP API (API.md "Live streams"): create,
 * start, end, stream keys, LiveKit tokens, list/get and analytics, plus the
 * route table of every stream endpoint (chat, reactions and viewers live in
 * stream_chat.c and viewers.c).  Streams speak snake_case in responses; the
 * create request keeps the camelCase the frontend sends.
 *
 * The stream key is shown in full only in the create and rotate-key
 * responses.  The database keeps 'sha256:<hex>' of it and its last four
 * characters, which GET shows to the broadcaster only.
 */
#include "streams/streams.h"
#include "core/uuid.h"
#include "streams/streams_db.h"

#include "http/http.h"
#include "http/auth.h"
#include "store/db.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "core/log.h"
#include "http/worker.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A start claim older than this is taken to be from a crashed request. */
#define START_CLAIM_STALE_S 60

/*
 * Drop what this caller may not see: ingest_url and stream_key_last4 are
 * the broadcaster's; stream_key_revoked_at is also shown to staff.
 */
static void stream_json_filter(json_t *o, const struct req *r)
{
	const char *b = json_string_value(json_object_get(o, "broadcaster_id"));
	bool mine = req_authed(r) && b != NULL && strcmp(b, req_user(r)->user_id) == 0;

	if (!mine) {
		json_object_del(o, "ingest_url");
		json_object_del(o, "stream_key_last4");
		if (!(req_authed(r) && auth_is_staff(req_user(r))))
			json_object_del(o, "stream_key_revoked_at");
	}
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static bool rfc3339_valid(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i])
				  : (pat[i] == 'T' ? (s[i] != 'T' && s[i] != 't') : s[i] != pat[i]))
			return false;
	}
	s += i;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return true;
	return (*s == '+' || *s == '-') && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
	       isdigit((unsigned char)s[5]) && s[6] == '\0';
}

static bool all_space(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/* ---- POST /api/streams/create ---- */

static void api_streams_create(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct nc_error err;
	json_t *body = req_json(r, false), *out = NULL, *details;
	const char *channel_id = NULL, *title = NULL, *description = NULL, *scheduled_at = NULL;
	bool enable_chat = true, enable_reactions = true, scheduled = false;
	long long slow_mode = 0;
	char *display_name = NULL, *room = NULL, *ingest_url = NULL;
	char id[37], key_hash[72], last4[5], slow_txt[24];
	struct streams_ingress in = { 0 };
	struct streams_create_check chk = { 0 };

	if (body == NULL)
		return;
	if (jv_uuid(body, "channelId", JV_REQUIRED, &channel_id, &err) < 0 ||
	    jv_string(body, "title", JV_REQUIRED, 1, 200, &title, &err) < 0 ||
	    jv_string(body, "description", 0, 0, 2000, &description, &err) < 0 ||
	    jv_string(body, "scheduledAt", 0, 1, 64, &scheduled_at, &err) < 0 ||
	    jv_bool(body, "enableChat", 0, &enable_chat, &err) < 0 ||
	    jv_bool(body, "enableReactions", 0, &enable_reactions, &err) < 0 ||
	    jv_int(body, "chatSlowModeSeconds", 0, 0, 3600, &slow_mode, &err) < 0)
		goto fail;
	if (all_space(title)) {
		err_set(&err, NC_EBADREQ, "title must not be blank");
		goto fail;
	}
	if (scheduled_at != NULL && !rfc3339_valid(scheduled_at)) {
		err_set(&err, NC_EBADREQ, "scheduledAt must be an RFC 3339 date-time");
		goto fail;
	}

	/* Who may create: members of the channel. */
	if (db_begin_service(db, &err) != NC_OK ||
	    streams_db_create_check(db, channel_id, req_user(r)->user_id, scheduled_at, &chk, &err) != NC_OK)
		goto fail;
	display_name = chk.display_name;
	scheduled = chk.scheduled;
	if (!chk.channel_exists) {
		err_set(&err, NC_ENOTFOUND, "channel not found");
		goto fail;
	}
	if (!chk.member) {
		err_set(&err, NC_EFORBIDDEN, "only members of the channel may stream to it");
		goto fail;
	}
	db_rollback(db); /* read only; no transaction across the LiveKit calls */

	/* LiveKit: the room, then the RTMP ingress that publishes into it. */
	uuid_v4(id);
	room = xasprintf("stream-%s", id);
	if (streams_lk_ensure_room(req_worker(r), room, &err) != NC_OK)
		goto fail;
	if (streams_lk_new_ingress(req_worker(r), id, room, req_user(r)->user_id, display_name, &in, &err) !=
	    NC_OK) {
		struct nc_error e2;

		if (streams_lk_delete_room(req_worker(r), room, &e2) != NC_OK)
			log_warn("stream create: room %s left behind: %s", room, e2.msg);
		goto fail;
	}
	streams_key_hash(in.stream_key, key_hash);
	streams_key_last4(in.stream_key, last4);
	ingest_url = xstrdup(req_cfg(r)->stream_ingest_url && *req_cfg(r)->stream_ingest_url
				     ? req_cfg(r)->stream_ingest_url : in.url);
	snprintf(slow_txt, sizeof(slow_txt), "%lld", slow_mode);

	if (db_begin_service(db, &err) != NC_OK)
		goto undo_lk;
	{
		struct streams_new n = { id, channel_id, req_user(r)->user_id, title, description,
					 scheduled ? "scheduled" : "preparing", room, in.ingress_id,
					 key_hash, last4, ingest_url, slow_txt, scheduled_at,
					 enable_chat, enable_reactions };

		if ((out = streams_db_insert(db, &n, &err)) == NULL)
			goto undo_lk;
	}
	details = json_pack("{s:s, s:s}", "channel_id", channel_id, "title", title);
	if (audit_log(db, req_user(r), "stream.create", "stream", id, details, req_id(r), &err) !=
	    NC_OK) {
		json_decref(details);
		goto undo_lk;
	}
	json_decref(details);
	if (db_commit(db, &err) != NC_OK)
		goto undo_lk;

	json_object_set_new(out, "stream_key", json_string(in.stream_key));
	json_object_set_new(out, "ingest_url", json_string(ingest_url));
	log_info("stream %s created in channel %s (ingress %s)", id, channel_id, in.ingress_id);
	resp_json(r, 201, out);
	out = NULL;
	goto done;

undo_lk:
	/* no stream row: take back what LiveKit created */
	db_rollback(db);
	{
		struct nc_error e2;

		if (streams_lk_delete_ingress(req_worker(r), in.ingress_id, &e2) != NC_OK)
			log_warn("stream create: ingress %s left behind: %s", in.ingress_id, e2.msg);
		if (streams_lk_delete_room(req_worker(r), room, &e2) != NC_OK)
			log_warn("stream create: room %s left behind: %s", room, e2.msg);
	}
fail:
	streams_fail(r, &err);
done:
	json_decref(out);
	json_decref(body);
	streams_ingress_cleanup(&in);
	free(display_name);
	free(room);
	free(ingest_url);
}

/* ---- POST /api/streams/{id}/publisher-token ---- */

static void api_stream_publisher_token(struct req *r)
{
	struct stream_ctx s;
	struct nc_error err;
	char *name, *token;
	int64_t exp;
	char exp_txt[32];

	if (streams_open(r, req_param(r, "id"), STREAM_NEED_OWNER, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	if (streams_is_over(&s)) {
		db_rollback(&req_worker(r)->db);
		stream_ctx_cleanup(&s);
		resp_error(r, NC_ECONFLICT, "the stream has ended");
		return;
	}
	name = streams_db_user_name(&req_worker(r)->db, req_user(r)->user_id);
	db_rollback(&req_worker(r)->db);
	token = streams_mint_token(req_cfg(r), req_user(r)->user_id, name, s.room_name, true, &exp);
	if (token == NULL) {
		resp_error(r, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	} else {
		format_rfc3339(exp, exp_txt, sizeof(exp_txt));
		resp_json(r, 200, json_pack("{s:s, s:s?, s:s, s:s, s:s}", "token", token,
					    "livekit_url", req_cfg(r)->livekit_url, "room_name",
					    s.room_name, "identity", req_user(r)->user_id, "expires_at",
					    exp_txt));
	}
	free(token);
	free(name);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/start ---- */

/* Release a start claim after a failure (best effort). */
static void start_unclaim(struct req *r, const char *id, const char *claim)
{
	struct db_conn *db = &req_worker(r)->db;
	struct nc_error err;

	if (db_begin_service(db, &err) != NC_OK)
		return;
	if (streams_db_set_egress(db, id, NULL, claim, &err) == NC_OK && db_commit(db, &err) == NC_OK)
		return;
	db_rollback(db);
	log_warn("stream %s: cannot release start claim: %s", id, err.msg);
}

static bool claim_is_stale(const char *egress_id)
{
	long t;

	if (egress_id == NULL || strncmp(egress_id, "pending:", 8) != 0)
		return false;
	if (parse_long(egress_id + 8, 0, 1L << 40, &t) != 0)
		return true;
	return now_unix() - t > START_CLAIM_STALE_S;
}

/*
 * Going live.  Whichever of /start and the ingress_started webhook comes
 * first makes the stream live; the second does not change the status.  But
 * the HLS egress is only ever started here (webhooks run inside a
 * transaction and must not call LiveKit), so a /start on a stream the
 * webhook already made live still starts the egress; only a stream that is
 * live AND has its egress answers 409.  Concurrent starts are serialised by
 * a claim ("pending:<unix time>") written to livekit_egress_id before
 * LiveKit is called.
 */
static void api_stream_start(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct streams_started st = { 0 };
	struct nc_error err;
	char claim[48];
	char *egress_id = NULL, *hls = NULL;
	json_t *payload, *out;

	if (streams_open(r, req_param(r, "id"), STREAM_NEED_OWNER, true, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended");
		goto fail;
	}
	if (s.egress_id != NULL && !claim_is_stale(s.egress_id)) {
		if (strncmp(s.egress_id, "pending:", 8) == 0)
			err_set(&err, NC_ECONFLICT, "the stream is being started");
		else
			err_set(&err, NC_ECONFLICT, "the stream is already live");
		goto fail;
	}
	snprintf(claim, sizeof(claim), "pending:%lld", (long long)now_unix());
	if (streams_db_set_egress(db, s.id, claim, NULL, &err) != NC_OK ||
	    db_commit(db, &err) != NC_OK)
		goto fail;

	/* The room may have been closed by LiveKit while empty: make sure it exists. */
	if (streams_lk_ensure_room(req_worker(r), s.room_name, &err) != NC_OK ||
	    streams_lk_start_hls(req_worker(r), s.id, s.room_name, &egress_id, &err) != NC_OK) {
		start_unclaim(r, s.id, claim);
		goto fail;
	}
	hls = streams_hls_url(req_cfg(r), s.id);

	if (db_begin_service(db, &err) != NC_OK)
		goto undo;
	if (streams_db_finish_start(db, s.id, egress_id, hls, claim, &st, &err) != NC_OK)
		goto undo;
	if (!st.found) {
		/* ended (or reclaimed) while we were talking to LiveKit */
		err_set(&err, NC_ECONFLICT, "the stream ended while starting");
		goto undo;
	}
	payload = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s, s:s}", "stream_id", s.id,
			    "channel_id", st.channel_id, "broadcaster_id", st.broadcaster_id,
			    "title", st.title ? st.title : "", "started_at", st.started_at,
			    "hls_manifest_url", hls, "source", "start");
	if (payload == NULL) {
		err_set(&err, NC_EINTERNAL, "out of memory");
		goto undo;
	}
	if ((!st.was_live && outbox_enqueue(db, req_cfg(r), "stream.live", payload, &err) != NC_OK) ||
	    audit_log(db, req_user(r), "stream.start", "stream", s.id, NULL, req_id(r), &err) !=
		    NC_OK) {
		json_decref(payload);
		goto undo;
	}
	json_decref(payload);
	if (db_commit(db, &err) != NC_OK)
		goto undo;

	out = json_pack("{s:s, s:s, s:s, s:s}", "id", s.id, "status", "live", "hls_manifest_url",
			hls, "started_at", st.started_at);
	rt_publish_stream(req_worker(r), s.id, "stream.status", out);
	log_info("stream %s live, HLS egress %s", s.id, egress_id);
	resp_json(r, 200, out);
	goto done;

undo:
	db_rollback(db);
	{
		struct nc_error e2;

		if (streams_lk_stop_egress(req_worker(r), egress_id, &e2) != NC_OK)
			log_warn("stream %s: egress %s left running: %s", s.id, egress_id, e2.msg);
	}
	start_unclaim(r, s.id, claim);
fail:
	streams_fail(r, &err);
done:
	free(egress_id);
	free(hls);
	streams_started_free(&st);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/end ---- */

static void api_stream_end(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct nc_error err;
	const char *ended_at;
	json_t *payload = NULL, *out;
	long closed;
	bool found;

	if (streams_open(r, req_param(r, "id"), STREAM_NEED_MANAGE, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	db_rollback(db);
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has already ended");
		goto fail;
	}
	/*
	 * LiveKit first: if it cannot be reached nothing changes (503) and the
	 * end can be retried; "not found" counts as done, so a retry after a
	 * partial clean-up goes through.
	 */
	if (streams_lk_stop_egress(req_worker(r), s.egress_id, &err) != NC_OK ||
	    streams_lk_delete_ingress(req_worker(r), s.ingress_id, &err) != NC_OK ||
	    streams_lk_delete_room(req_worker(r), s.room_name, &err) != NC_OK)
		goto fail;

	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	payload = streams_db_end(db, s.id, req_cfg(r)->viewer_heartbeat_timeout_s, &closed, &found, &err);
	if (payload == NULL) {
		if (!found)
			err_set(&err, NC_ECONFLICT, "the stream has already ended");
		goto fail;
	}
	ended_at = json_string_value(json_object_get(payload, "ended_at"));
	if (outbox_enqueue(db, req_cfg(r), "stream.ended", payload, &err) != NC_OK)
		goto fail;
	{
		json_t *d = json_pack("{s:s, s:b}", "previous_status", s.status, "as_moderator",
				      !s.is_broadcaster);

		if (audit_log(db, req_user(r), "stream.end", "stream", s.id, d, req_id(r),
			      &err) != NC_OK) {
			json_decref(d);
			goto fail;
		}
		json_decref(d);
	}
	if (db_commit(db, &err) != NC_OK)
		goto fail;

	if (req_worker(r)->rds_ok) {
		redisReply *rep = rds_cmd(&req_worker(r)->rds, &err, "DEL %s%s", STREAMS_VIEWERS_KEY, s.id);

		if (rep)
			freeReplyObject(rep);
	}
	out = json_pack("{s:s, s:s, s:s, s:I}", "id", s.id, "status", "ended", "ended_at",
			ended_at, "closed_viewer_sessions", (json_int_t)closed);
	rt_publish_stream(req_worker(r), s.id, "stream.status", out);
	log_info("stream %s ended by %s", s.id, req_user(r)->user_id);
	resp_json(r, 200, out);
	goto done;
fail:
	streams_fail(r, &err);
done:
	json_decref(payload);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/rotate-key ---- */

/*
 * A new ingress (and key) replaces the old one, which is deleted before the
 * row changes: if the old one cannot be deleted nothing changes (5xx), so a
 * key the broadcaster believes dead never keeps working.
 */
static void api_stream_rotate_key(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct nc_error err;
	json_t *body = req_json(r, true);
	bool force = false;
	char *name = NULL, *ingest_url = NULL;
	char key_hash[72], last4[5];
	struct streams_ingress in = { 0 };
	bool swapped;

	if (body == NULL)
		return;
	if (jv_bool(body, "force", 0, &force, &err) < 0) {
		json_decref(body);
		resp_nc_error(r, &err);
		return;
	}
	json_decref(body);
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_OWNER, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	name = streams_db_user_name(db, req_user(r)->user_id);
	db_rollback(db);
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended");
		goto fail;
	}
	if (strcmp(s.status, "live") == 0 && !force) {
		err_set(&err, NC_ECONFLICT,
			"the stream is live; rotating the key cuts the broadcast (send {\"force\":true})");
		goto fail;
	}
	if (streams_lk_new_ingress(req_worker(r), s.id, s.room_name, s.broadcaster_id, name, &in, &err) !=
	    NC_OK)
		goto fail;
	if (streams_lk_delete_ingress(req_worker(r), s.ingress_id, &err) != NC_OK)
		goto undo_lk;
	streams_key_hash(in.stream_key, key_hash);
	streams_key_last4(in.stream_key, last4);
	ingest_url = xstrdup(req_cfg(r)->stream_ingest_url && *req_cfg(r)->stream_ingest_url
				     ? req_cfg(r)->stream_ingest_url : in.url);
	if (db_begin_service(db, &err) != NC_OK)
		goto undo_lk;
	if (streams_db_swap_ingress(db, s.id, in.ingress_id, key_hash, last4, ingest_url,
				    s.ingress_id, &swapped, &err) != NC_OK)
		goto undo_lk;
	if (!swapped) {
		err_set(&err, NC_ECONFLICT, "the stream changed meanwhile; try again");
		goto undo_lk;
	}
	{
		json_t *d = json_pack("{s:s?, s:s, s:b}", "old_ingress_id", s.ingress_id,
				      "new_ingress_id", in.ingress_id, "forced", force);

		if (audit_log(db, req_user(r), "stream.rotate_key", "stream", s.id, d, req_id(r),
			      &err) != NC_OK) {
			json_decref(d);
			goto undo_lk;
		}
		json_decref(d);
	}
	if (db_commit(db, &err) != NC_OK)
		goto undo_lk;
	log_info("stream %s: key rotated (ingress %s -> %s)", s.id,
		 s.ingress_id ? s.ingress_id : "-", in.ingress_id);
	resp_json(r, 200, json_pack("{s:s, s:s, s:s, s:s}", "id", s.id, "stream_key",
				    in.stream_key, "stream_key_last4", last4, "ingest_url",
				    ingest_url));
	goto done;

undo_lk:
	db_rollback(db);
	{
		struct nc_error e2;

		if (streams_lk_delete_ingress(req_worker(r), in.ingress_id, &e2) != NC_OK)
			log_warn("stream %s: ingress %s left behind: %s", s.id, in.ingress_id,
				 e2.msg);
	}
fail:
	streams_fail(r, &err);
done:
	streams_ingress_cleanup(&in);
	free(name);
	free(ingest_url);
	stream_ctx_cleanup(&s);
}

/* ---- POST /api/streams/{id}/revoke-key ---- */

static void api_stream_revoke_key(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct stream_ctx s;
	struct nc_error err;
	char revoked_at[32];
	json_t *out;

	if (streams_open(r, req_param(r, "id"), STREAM_NEED_MANAGE, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	db_rollback(db);
	if (streams_is_over(&s)) {
		err_set(&err, NC_ECONFLICT, "the stream has ended (its ingest is already gone)");
		goto fail;
	}
	/* enabled=false makes LiveKit refuse new connections with the key at once */
	if (streams_lk_disable_ingress(req_worker(r), s.ingress_id, &err) != NC_OK)
		goto fail;
	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	if (streams_db_revoke(db, s.id, revoked_at, &err) != NC_OK)
		goto fail;
	out = json_pack("{s:s, s:s}", "id", s.id, "stream_key_revoked_at", revoked_at);
	{
		json_t *d = json_pack("{s:s?, s:b}", "ingress_id", s.ingress_id, "as_moderator",
				      !s.is_broadcaster);

		if (audit_log(db, req_user(r), "stream.revoke_key", "stream", s.id, d, req_id(r),
			      &err) != NC_OK) {
			json_decref(d);
			json_decref(out);
			goto fail;
		}
		json_decref(d);
	}
	if (db_commit(db, &err) != NC_OK) {
		json_decref(out);
		goto fail;
	}
	log_info("stream %s: key revoked by %s", s.id, req_user(r)->user_id);
	resp_json(r, 200, out);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	stream_ctx_cleanup(&s);
}

/* ---- GET /api/streams/{id} ---- */

static void api_stream_get(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_caller who = { req_authed(r) ? req_user(r)->user_id : NULL,
				      req_authed(r) && auth_is_staff(req_user(r)), req_cfg(r)->streams_public_live };
	struct stream_ctx s;
	struct nc_error err;
	json_t *out;
	long cur;

	streams_db_sync_counters(db, req_param(r, "id"));
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_VIEW, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	db_rollback(db);
	if (strcmp(s.status, "live") == 0)
		viewers_refresh(req_worker(r), s.id);
	/* the statement checks again who may see it */
	if (db_begin_service(db, &err) != NC_OK ||
	    (out = streams_db_get(db, s.id, &who, &err)) == NULL)
		goto fail;
	db_rollback(db);
	stream_json_filter(out, r);
	/* the live count straight from Redis when it answers */
	if (strcmp(s.status, "live") == 0 && (cur = viewers_current(req_worker(r), s.id)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	stream_ctx_cleanup(&s);
}

/* ---- GET /api/streams?channel_id=&status=&limit=&before= ---- */

static void api_streams_list(struct req *r)
{
	static const char *const statuses[] = { "preparing", "scheduled", "live", "ended", "failed" };
	struct nc_error err = {0};
	char *channel_id = req_query(r, "channel_id"), *status = req_query(r, "status");
	char *limit_txt = req_query(r, "limit"), *before = req_query(r, "before");
	struct streams_list_filter f = { channel_id, status, before, 50 };
	long limit = 50;
	json_t *rows = NULL, *arr, *o, *next;
	size_t n, i;
	bool ok = false;

	if (channel_id && !is_uuid(channel_id)) {
		resp_error(r, NC_EBADREQ, "channel_id must be a UUID");
		goto out;
	}
	if (before && !is_uuid(before)) {
		resp_error(r, NC_EBADREQ, "before must be a stream id");
		goto out;
	}
	if (status) {
		for (i = 0; i < NC_ARRAY_LEN(statuses) && !ok; i++)
			ok = strcmp(status, statuses[i]) == 0;
		if (!ok) {
			resp_error(r, NC_EBADREQ,
				   "status must be preparing, scheduled, live, ended or failed");
			goto out;
		}
	}
	if (limit_txt && parse_long(limit_txt, 1, 100, &limit) != 0) {
		resp_error(r, NC_EBADREQ, "limit must be an integer from 1 to 100");
		goto out;
	}
	f.limit = (int)limit;
	/* the caller's channels' streams and their own, in the statement itself */
	rows = streams_db_list(&req_worker(r)->db, req_user(r)->user_id, &f, &err);
	if (rows == NULL) {
		resp_nc_error(r, &err);
		goto out;
	}
	n = json_array_size(rows);
	arr = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++) {
		o = json_array_get(rows, i);
		stream_json_filter(o, r);
		json_array_append(arr, o);
	}
	next = n > (size_t)limit ? json_object_get(json_array_get(rows, (size_t)limit - 1), "id") : NULL;
	resp_json(r, 200, json_pack("{s:o, s:O?}", "streams", arr, "next_before", next));
out:
	json_decref(rows);
	free(channel_id);
	free(status);
	free(limit_txt);
	free(before);
}

/* ---- GET /api/streams/{id}/analytics ---- */

/*
 * Watch time: closed sessions count what they recorded; open sessions count
 * up to now, or up to their last heartbeat plus the heartbeat timeout when
 * their heartbeats stopped.  The timeline has one row per minute from the
 * stream's creation (at most the last 24 hours) to its end or now: viewers
 * whose session overlapped that minute, chat messages and reactions sent in
 * it.
 */
static void api_stream_analytics(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_caller who = { req_authed(r) ? req_user(r)->user_id : NULL,
				      req_authed(r) && auth_is_staff(req_user(r)), req_cfg(r)->streams_public_live };
	struct stream_ctx s;
	struct nc_error err;
	json_t *out = NULL;
	long cur;

	streams_db_sync_counters(db, req_param(r, "id"));
	if (streams_open(r, req_param(r, "id"), STREAM_NEED_MANAGE, false, &s, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	db_rollback(db);
	if (strcmp(s.status, "live") == 0)
		viewers_refresh(req_worker(r), s.id);
	if (db_begin_service(db, &err) != NC_OK ||
	    (out = streams_db_analytics(db, s.id, req_cfg(r)->viewer_heartbeat_timeout_s, &who, &err)) ==
		    NULL)
		goto fail;
	db_rollback(db);
	if (strcmp(s.status, "live") == 0 && (cur = viewers_current(req_worker(r), s.id)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	stream_ctx_cleanup(&s);
	return;
fail:
	streams_fail(r, &err);
	stream_ctx_cleanup(&s);
}

/* ---- routes ---- */

const struct route streams_routes[] = {
	{RM_POST, "/api/streams/create", api_streams_create, ROUTE_AUTH, NULL},
	{RM_GET, "/api/streams", api_streams_list, ROUTE_AUTH, NULL},
	{RM_GET, "/api/streams/{id}", api_stream_get, ROUTE_AUTH_OPTIONAL, NULL},
	{RM_POST, "/api/streams/{id}/start", api_stream_start, ROUTE_AUTH, NULL},
	{RM_POST, "/api/streams/{id}/end", api_stream_end, ROUTE_AUTH, NULL},
	{RM_POST, "/api/streams/{id}/rotate-key", api_stream_rotate_key, ROUTE_AUTH, NULL},
	{RM_POST, "/api/streams/{id}/revoke-key", api_stream_revoke_key, ROUTE_AUTH, NULL},
	{RM_POST, "/api/streams/{id}/publisher-token", api_stream_publisher_token, ROUTE_AUTH,
	 NULL},
	{RM_POST, "/api/streams/{id}/viewer-token", api_stream_viewer_token, ROUTE_AUTH_OPTIONAL,
	 NULL},
	{RM_GET, "/api/streams/{id}/analytics", api_stream_analytics, ROUTE_AUTH, NULL},
	{RM_GET, "/api/streams/{id}/chat", api_stream_chat_list, ROUTE_AUTH_OPTIONAL, NULL},
	{RM_POST, "/api/streams/{id}/chat", api_stream_chat_post, ROUTE_AUTH, NULL},
	{RM_POST, "/api/streams/{id}/chat/{messageId}/pin", api_stream_chat_pin, ROUTE_AUTH,
	 NULL},
	{RM_DELETE, "/api/streams/{id}/chat/{messageId}", api_stream_chat_delete, ROUTE_AUTH,
	 NULL},
	{RM_GET, "/api/streams/{id}/reactions", api_stream_reaction_summary,
	 ROUTE_AUTH_OPTIONAL, NULL},
	{RM_POST, "/api/streams/{id}/reactions", api_stream_reaction_post, ROUTE_AUTH_OPTIONAL,
	 NULL},
	{RM_POST, "/api/streams/{id}/viewers/join", api_stream_viewer_join, ROUTE_AUTH_OPTIONAL,
	 NULL},
	{RM_POST, "/api/streams/{id}/viewers/heartbeat", api_stream_viewer_heartbeat,
	 ROUTE_AUTH_OPTIONAL, NULL},
	{RM_POST, "/api/streams/{id}/viewers/leave", api_stream_viewer_leave,
	 ROUTE_AUTH_OPTIONAL, NULL},
	{0, NULL, NULL, 0, NULL},
};
