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

/* The URL encoders push to: STREAM_INGEST_URL when set, else LiveKit's. */
static const char *ingest_url_of(const struct req *r, const struct streams_ingress *in)
{
	const char *cfg_url = req_cfg(r)->stream_ingest_url;

	return cfg_url != NULL && *cfg_url ? cfg_url : in->url;
}

/* ---- POST /api/streams/create ---- */

/* A stream being created; the handler frees the owned fields. */
struct stream_create {
	const char *channel_id, *title, *description, *scheduled_at; /* borrowed from the body */
	bool enable_chat, enable_reactions, scheduled;
	long long slow_mode;
	char id[37];
	char *room;          /* "stream-<id>" */
	char *display_name;  /* the broadcaster's, or NULL */
	struct streams_ingress in;
};

static enum nc_err create_read(json_t *body, struct stream_create *c, struct nc_error *err)
{
	c->enable_chat = c->enable_reactions = true;
	if (jv_uuid(body, "channelId", JV_REQUIRED, &c->channel_id, err) < 0 ||
	    jv_string(body, "title", JV_REQUIRED, 1, 200, &c->title, err) < 0 ||
	    jv_string(body, "description", 0, 0, 2000, &c->description, err) < 0 ||
	    jv_string(body, "scheduledAt", 0, 1, 64, &c->scheduled_at, err) < 0 ||
	    jv_bool(body, "enableChat", 0, &c->enable_chat, err) < 0 ||
	    jv_bool(body, "enableReactions", 0, &c->enable_reactions, err) < 0 ||
	    jv_int(body, "chatSlowModeSeconds", 0, 0, 3600, &c->slow_mode, err) < 0)
		return err->code;
	if (all_space(c->title))
		return err_set(err, NC_EBADREQ, "title must not be blank");
	if (c->scheduled_at != NULL && !rfc3339_valid(c->scheduled_at))
		return err_set(err, NC_EBADREQ, "scheduledAt must be an RFC 3339 date-time");
	return NC_OK;
}

/* Who may create: members of the channel.  Read only; ends its transaction on success. */
static enum nc_err create_check(struct req *r, struct stream_create *c, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_create_check chk = { 0 };

	if (db_begin_service(db, err) != NC_OK ||
	    streams_db_create_check(db, c->channel_id, req_user(r)->user_id, c->scheduled_at, &chk,
				    err) != NC_OK)
		return err->code;
	c->display_name = chk.display_name;
	c->scheduled = chk.scheduled;
	if (!chk.channel_exists)
		return err_set(err, NC_ENOTFOUND, "channel not found");
	if (!chk.member)
		return err_set(err, NC_EFORBIDDEN, "only members of the channel may stream to it");
	db_rollback(db); /* read only; no transaction across the LiveKit calls */
	return NC_OK;
}

/*
 * The stream row and its audit entry, committed into *out.  On failure the
 * transaction is rolled back here, so that LiveKit is asked to take back
 * what it made with no transaction held.
 */
static enum nc_err create_row(struct req *r, const struct stream_create *c, json_t **out,
			      struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	char key_hash[72], last4[5], slow_txt[24];
	const struct streams_new n = { c->id, c->channel_id, req_user(r)->user_id, c->title,
				       c->description, c->scheduled ? "scheduled" : "preparing",
				       c->room, c->in.ingress_id, key_hash, last4,
				       ingest_url_of(r, &c->in), slow_txt, c->scheduled_at,
				       c->enable_chat, c->enable_reactions };
	json_t *details;
	enum nc_err rc;

	streams_key_hash(c->in.stream_key, key_hash);
	streams_key_last4(c->in.stream_key, last4);
	snprintf(slow_txt, sizeof(slow_txt), "%lld", c->slow_mode);
	rc = db_begin_service(db, err);
	if (rc == NC_OK && (*out = streams_db_insert(db, &n, err)) == NULL)
		rc = err->code;
	if (rc == NC_OK) {
		details = json_pack("{s:s, s:s}", "channel_id", c->channel_id, "title", c->title);
		rc = audit_log(db, req_user(r), "stream.create", "stream", c->id, details, req_id(r),
			       err);
		json_decref(details);
	}
	if (rc == NC_OK)
		rc = db_commit(db, err);
	if (rc != NC_OK) {
		db_rollback(db);
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

/* No stream row: take back what LiveKit created (best effort). */
static void create_undo(struct req *r, const struct stream_create *c)
{
	struct nc_error e2;

	if (streams_lk_delete_ingress(req_worker(r), c->in.ingress_id, &e2) != NC_OK)
		log_warn("stream create: ingress %s left behind: %s", c->in.ingress_id, e2.msg);
	if (streams_lk_delete_room(req_worker(r), c->room, &e2) != NC_OK)
		log_warn("stream create: room %s left behind: %s", c->room, e2.msg);
}

static enum nc_err create_stream(struct req *r, struct stream_create *c, struct nc_error *err)
{
	json_t *out = NULL;

	if (create_read(req_body(r), c, err) != NC_OK || create_check(r, c, err) != NC_OK)
		return err->code;
	/* LiveKit: the room, then the RTMP ingress that publishes into it. */
	uuid_v4(c->id);
	c->room = xasprintf("stream-%s", c->id);
	if (streams_lk_ensure_room(req_worker(r), c->room, err) != NC_OK)
		return err->code;
	if (streams_lk_new_ingress(req_worker(r), c->id, c->room, req_user(r)->user_id,
				   c->display_name, &c->in, err) != NC_OK ||
	    create_row(r, c, &out, err) != NC_OK) {
		create_undo(r, c);
		return err->code;
	}
	json_object_set_new(out, "stream_key", json_string(c->in.stream_key));
	json_object_set_new(out, "ingest_url", json_string(ingest_url_of(r, &c->in)));
	log_info("stream %s created in channel %s (ingress %s)", c->id, c->channel_id,
		 c->in.ingress_id);
	resp_json(r, 201, out);
	return NC_OK;
}

static enum nc_err api_streams_create(struct req *r, struct nc_error *err)
{
	struct stream_create c = { 0 };
	enum nc_err rc = create_stream(r, &c, err);

	streams_ingress_cleanup(&c.in);
	free(c.display_name);
	free(c.room);
	return rc;
}

/* ---- POST /api/streams/{id}/publisher-token ---- */

static enum nc_err publisher_token(struct req *r, struct stream_ctx *s, void *arg,
				   struct nc_error *err)
{
	char *name, *token;
	int64_t exp;
	char exp_txt[32];

	(void)arg;
	if (streams_is_over(s))
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	name = streams_db_user_name(&req_worker(r)->db, req_user(r)->user_id);
	db_rollback(&req_worker(r)->db); /* read only */
	token = streams_mint_token(req_cfg(r), req_user(r)->user_id, name, s->room_name, true, &exp);
	free(name);
	if (token == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	format_rfc3339(exp, exp_txt, sizeof(exp_txt));
	resp_json(r, 200, json_pack("{s:s, s:s?, s:s, s:s, s:s}", "token", token, "livekit_url",
				    req_cfg(r)->livekit_url, "room_name", s->room_name, "identity",
				    req_user(r)->user_id, "expires_at", exp_txt));
	free(token);
	return NC_OK;
}

static enum nc_err api_stream_publisher_token(struct req *r, struct nc_error *err)
{
	return streams_run(r, STREAM_NEED_OWNER, false, publisher_token, NULL, err);
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
 * The egress and the live status, committed (stream.live to the outbox when
 * the webhook did not make it live first).  On failure the transaction is
 * rolled back here, so the egress is stopped with no transaction held.
 */
static enum nc_err start_finish(struct req *r, const struct stream_ctx *s, const char *egress_id,
				const char *hls, const char *claim, struct streams_started *st,
				struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	json_t *payload = NULL;
	enum nc_err rc = db_begin_service(db, err);

	if (rc == NC_OK)
		rc = streams_db_finish_start(db, s->id, egress_id, hls, claim, st, err);
	if (rc == NC_OK && !st->found) /* ended (or reclaimed) while we were talking to LiveKit */
		rc = err_set(err, NC_ECONFLICT, "the stream ended while starting");
	if (rc == NC_OK) {
		payload = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s, s:s}", "stream_id", s->id,
				    "channel_id", st->channel_id, "broadcaster_id", st->broadcaster_id,
				    "title", st->title ? st->title : "", "started_at", st->started_at,
				    "hls_manifest_url", hls, "source", "start");
		if (payload == NULL)
			rc = err_set(err, NC_EINTERNAL, "out of memory");
	}
	if (rc == NC_OK && !st->was_live)
		rc = outbox_enqueue(db, req_cfg(r), "stream.live", payload, err);
	if (rc == NC_OK)
		rc = audit_log(db, req_user(r), "stream.start", "stream", s->id, NULL, req_id(r), err);
	if (rc == NC_OK)
		rc = db_commit(db, err);
	json_decref(payload);
	if (rc != NC_OK)
		db_rollback(db);
	return rc;
}

/* The stream holds our claim (committed): start its HLS egress and go live. */
static enum nc_err start_egress(struct req *r, const struct stream_ctx *s, const char *claim,
				struct nc_error *err)
{
	struct streams_started st = { 0 };
	char *egress_id = NULL, *hls;
	struct nc_error e2;
	enum nc_err rc;
	json_t *out;

	/* The room may have been closed by LiveKit while empty: make sure it exists. */
	if (streams_lk_ensure_room(req_worker(r), s->room_name, err) != NC_OK ||
	    streams_lk_start_hls(req_worker(r), s->id, s->room_name, &egress_id, err) != NC_OK) {
		start_unclaim(r, s->id, claim);
		return err->code;
	}
	hls = streams_hls_url(req_cfg(r), s->id);
	rc = start_finish(r, s, egress_id, hls, claim, &st, err);
	if (rc == NC_OK) {
		out = json_pack("{s:s, s:s, s:s, s:s}", "id", s->id, "status", "live",
				"hls_manifest_url", hls, "started_at", st.started_at);
		rt_publish_stream(req_worker(r), s->id, "stream.status", out);
		log_info("stream %s live, HLS egress %s", s->id, egress_id);
		resp_json(r, 200, out);
	} else {
		if (streams_lk_stop_egress(req_worker(r), egress_id, &e2) != NC_OK)
			log_warn("stream %s: egress %s left running: %s", s->id, egress_id, e2.msg);
		start_unclaim(r, s->id, claim);
	}
	free(egress_id);
	free(hls);
	streams_started_free(&st);
	return rc;
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
static enum nc_err start_stream(struct req *r, struct stream_ctx *s, void *arg,
				struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	char claim[48];

	(void)arg;
	if (streams_is_over(s))
		return err_set(err, NC_ECONFLICT, "the stream has ended");
	if (s->egress_id != NULL && !claim_is_stale(s->egress_id))
		return err_set(err, NC_ECONFLICT, "%s",
			       strncmp(s->egress_id, "pending:", 8) == 0 ? "the stream is being started"
									 : "the stream is already live");
	snprintf(claim, sizeof(claim), "pending:%lld", (long long)now_unix());
	if (streams_db_set_egress(db, s->id, claim, NULL, err) != NC_OK ||
	    db_commit(db, err) != NC_OK)
		return err->code;
	return start_egress(r, s, claim, err);
}

static enum nc_err api_stream_start(struct req *r, struct nc_error *err)
{
	return streams_run(r, STREAM_NEED_OWNER, true, start_stream, NULL, err);
}

/* ---- POST /api/streams/{id}/end ---- */

/* After the end: the live viewer set goes, viewers and the caller are told. */
static void end_announce(struct req *r, const struct stream_ctx *s, json_t *payload, long closed)
{
	struct nc_error e2;
	json_t *out;

	if (req_worker(r)->rds_ok) {
		redisReply *rep = rds_cmd(&req_worker(r)->rds, &e2, "DEL %s%s", STREAMS_VIEWERS_KEY, s->id);

		if (rep)
			freeReplyObject(rep);
	}
	out = json_pack("{s:s, s:s, s:s, s:I}", "id", s->id, "status", "ended", "ended_at",
			json_string_value(json_object_get(payload, "ended_at")),
			"closed_viewer_sessions", (json_int_t)closed);
	rt_publish_stream(req_worker(r), s->id, "stream.status", out);
	log_info("stream %s ended by %s", s->id, req_user(r)->user_id);
	resp_json(r, 200, out);
}

static enum nc_err end_stream(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	json_t *payload, *d;
	enum nc_err rc;
	long closed;
	bool found;

	(void)arg;
	db_rollback(db); /* read only; no transaction across the LiveKit calls */
	if (streams_is_over(s))
		return err_set(err, NC_ECONFLICT, "the stream has already ended");
	/*
	 * LiveKit first: if it cannot be reached nothing changes (503) and the
	 * end can be retried; "not found" counts as done, so a retry after a
	 * partial clean-up goes through.
	 */
	if (streams_lk_stop_egress(req_worker(r), s->egress_id, err) != NC_OK ||
	    streams_lk_delete_ingress(req_worker(r), s->ingress_id, err) != NC_OK ||
	    streams_lk_delete_room(req_worker(r), s->room_name, err) != NC_OK ||
	    db_begin_service(db, err) != NC_OK)
		return err->code;
	payload = streams_db_end(db, s->id, req_cfg(r)->viewer_heartbeat_timeout_s, &closed, &found,
				 err);
	/* not found: over already (err is still clear); a failed statement keeps its error */
	if (payload == NULL)
		return found || err->code != NC_OK
			       ? err->code
			       : err_set(err, NC_ECONFLICT, "the stream has already ended");
	d = json_pack("{s:s, s:b}", "previous_status", s->status, "as_moderator", !s->is_broadcaster);
	rc = outbox_enqueue(db, req_cfg(r), "stream.ended", payload, err);
	if (rc == NC_OK)
		rc = audit_log(db, req_user(r), "stream.end", "stream", s->id, d, req_id(r), err);
	json_decref(d);
	if (rc == NC_OK)
		rc = db_commit(db, err);
	if (rc == NC_OK)
		end_announce(r, s, payload, closed);
	json_decref(payload);
	return rc;
}

static enum nc_err api_stream_end(struct req *r, struct nc_error *err)
{
	return streams_run(r, STREAM_NEED_MANAGE, false, end_stream, NULL, err);
}

/* ---- POST /api/streams/{id}/rotate-key ---- */

/*
 * The new ingress and key in the row, with the audit entry, committed.  On
 * failure the transaction is rolled back here, so the new ingress is
 * deleted with no transaction held.
 */
static enum nc_err rotate_row(struct req *r, const struct stream_ctx *s,
			      const struct streams_ingress *in, const char *last4, bool force,
			      struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	char key_hash[72];
	bool swapped = false;
	json_t *d;
	enum nc_err rc;

	streams_key_hash(in->stream_key, key_hash);
	rc = db_begin_service(db, err);
	if (rc == NC_OK)
		rc = streams_db_swap_ingress(db, s->id, in->ingress_id, key_hash, last4,
					     ingest_url_of(r, in), s->ingress_id, &swapped, err);
	if (rc == NC_OK && !swapped)
		rc = err_set(err, NC_ECONFLICT, "the stream changed meanwhile; try again");
	if (rc == NC_OK) {
		d = json_pack("{s:s?, s:s, s:b}", "old_ingress_id", s->ingress_id, "new_ingress_id",
			      in->ingress_id, "forced", force);
		rc = audit_log(db, req_user(r), "stream.rotate_key", "stream", s->id, d, req_id(r),
			       err);
		json_decref(d);
	}
	if (rc == NC_OK)
		rc = db_commit(db, err);
	if (rc != NC_OK)
		db_rollback(db);
	return rc;
}

/*
 * A new ingress (and key) replaces the old one, which is deleted before the
 * row changes: if the old one cannot be deleted nothing changes (5xx), so a
 * key the broadcaster believes dead never keeps working.
 */
static enum nc_err rotate_key(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	bool force = *(const bool *)arg;
	struct streams_ingress in = { 0 };
	char *name = streams_db_user_name(&req_worker(r)->db, req_user(r)->user_id);
	char last4[5];
	struct nc_error e2;
	enum nc_err rc;

	db_rollback(&req_worker(r)->db); /* read only; no transaction across the LiveKit calls */
	if (streams_is_over(s))
		rc = err_set(err, NC_ECONFLICT, "the stream has ended");
	else if (strcmp(s->status, "live") == 0 && !force)
		rc = err_set(err, NC_ECONFLICT, "the stream is live; rotating the key cuts the"
			     " broadcast (send {\"force\":true})");
	else
		rc = streams_lk_new_ingress(req_worker(r), s->id, s->room_name, s->broadcaster_id,
					    name, &in, err);
	free(name);
	if (rc != NC_OK)
		return rc;
	streams_key_last4(in.stream_key, last4);
	rc = streams_lk_delete_ingress(req_worker(r), s->ingress_id, err);
	if (rc == NC_OK)
		rc = rotate_row(r, s, &in, last4, force, err);
	if (rc == NC_OK) {
		log_info("stream %s: key rotated (ingress %s -> %s)", s->id,
			 s->ingress_id ? s->ingress_id : "-", in.ingress_id);
		resp_json(r, 200, json_pack("{s:s, s:s, s:s, s:s}", "id", s->id, "stream_key",
					    in.stream_key, "stream_key_last4", last4, "ingest_url",
					    ingest_url_of(r, &in)));
	} else if (streams_lk_delete_ingress(req_worker(r), in.ingress_id, &e2) != NC_OK) {
		log_warn("stream %s: ingress %s left behind: %s", s->id, in.ingress_id, e2.msg);
	}
	streams_ingress_cleanup(&in);
	return rc;
}

static enum nc_err api_stream_rotate_key(struct req *r, struct nc_error *err)
{
	bool force = false;

	if (jv_bool(req_body(r), "force", 0, &force, err) < 0)
		return err->code;
	return streams_run(r, STREAM_NEED_OWNER, false, rotate_key, &force, err);
}

/* ---- POST /api/streams/{id}/revoke-key ---- */

static enum nc_err revoke_key(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	char revoked_at[32];
	json_t *d;
	enum nc_err rc;

	(void)arg;
	db_rollback(db); /* read only; no transaction across the LiveKit call */
	if (streams_is_over(s))
		return err_set(err, NC_ECONFLICT, "the stream has ended (its ingest is already gone)");
	/* enabled=false makes LiveKit refuse new connections with the key at once */
	if (streams_lk_disable_ingress(req_worker(r), s->ingress_id, err) != NC_OK ||
	    db_begin_service(db, err) != NC_OK ||
	    streams_db_revoke(db, s->id, revoked_at, err) != NC_OK)
		return err->code;
	d = json_pack("{s:s?, s:b}", "ingress_id", s->ingress_id, "as_moderator", !s->is_broadcaster);
	rc = audit_log(db, req_user(r), "stream.revoke_key", "stream", s->id, d, req_id(r), err);
	json_decref(d);
	if (rc != NC_OK || db_commit(db, err) != NC_OK)
		return err->code;
	log_info("stream %s: key revoked by %s", s->id, req_user(r)->user_id);
	resp_json(r, 200, json_pack("{s:s, s:s}", "id", s->id, "stream_key_revoked_at", revoked_at));
	return NC_OK;
}

static enum nc_err api_stream_revoke_key(struct req *r, struct nc_error *err)
{
	return streams_run(r, STREAM_NEED_MANAGE, false, revoke_key, NULL, err);
}

/* ---- GET /api/streams/{id} ---- */

static enum nc_err get_stream(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_caller who = streams_caller_of(r);
	json_t *out;
	long cur;

	(void)arg;
	db_rollback(db); /* the viewer count is refreshed in a transaction of its own */
	if (strcmp(s->status, "live") == 0)
		viewers_refresh(req_worker(r), s->id);
	/* the statement checks again who may see it */
	if (db_begin_service(db, err) != NC_OK || (out = streams_db_get(db, s->id, &who, err)) == NULL)
		return err->code;
	db_rollback(db); /* read only */
	stream_json_filter(out, r);
	/* the live count straight from Redis when it answers */
	if (strcmp(s->status, "live") == 0 && (cur = viewers_current(req_worker(r), s->id)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	return NC_OK;
}

static enum nc_err api_stream_get(struct req *r, struct nc_error *err)
{
	streams_db_sync_counters(&req_worker(r)->db, req_param(r, "id"));
	return streams_run(r, STREAM_NEED_VIEW, false, get_stream, NULL, err);
}

/* ---- GET /api/streams?channel_id=&status=&limit=&before= ---- */

/* The query of the list (400 for a bad value); the caller frees the strings. */
static enum nc_err list_filter(struct req *r, struct streams_list_filter *f, struct nc_error *err)
{
	static const char *const statuses[] = { "preparing", "scheduled", "live", "ended", "failed" };
	char *limit_txt = req_query(r, "limit");
	long limit = 50;
	bool known = f->status == NULL, bad_limit;

	bad_limit = limit_txt != NULL && parse_long(limit_txt, 1, 100, &limit) != 0;
	free(limit_txt);
	for (size_t i = 0; i < NC_ARRAY_LEN(statuses) && !known; i++)
		known = strcmp(f->status, statuses[i]) == 0;
	if (f->channel_id && !is_uuid(f->channel_id))
		return err_set(err, NC_EBADREQ, "channel_id must be a UUID");
	if (f->before && !is_uuid(f->before))
		return err_set(err, NC_EBADREQ, "before must be a stream id");
	if (!known)
		return err_set(err, NC_EBADREQ,
			       "status must be preparing, scheduled, live, ended or failed");
	if (bad_limit)
		return err_set(err, NC_EBADREQ, "limit must be an integer from 1 to 100");
	f->limit = (int)limit;
	return NC_OK;
}

/* The caller's channels' streams and their own (decided in the statement itself). */
static enum nc_err list_streams(struct req *r, const struct streams_list_filter *f,
				struct nc_error *err)
{
	json_t *rows = streams_db_list(&req_worker(r)->db, req_user(r)->user_id, f, err), *arr, *o;
	json_t *next;
	size_t n, limit = (size_t)f->limit;

	if (rows == NULL)
		return err->code;
	n = json_array_size(rows);
	arr = json_array();
	for (size_t i = 0; i < n && i < limit; i++) {
		o = json_array_get(rows, i);
		stream_json_filter(o, r);
		json_array_append(arr, o);
	}
	next = n > limit ? json_object_get(json_array_get(rows, limit - 1), "id") : NULL;
	resp_json(r, 200, json_pack("{s:o, s:O?}", "streams", arr, "next_before", next));
	json_decref(rows);
	return NC_OK;
}

static enum nc_err api_streams_list(struct req *r, struct nc_error *err)
{
	char *channel_id = req_query(r, "channel_id"), *status = req_query(r, "status");
	char *before = req_query(r, "before");
	struct streams_list_filter f = { channel_id, status, before, 50 };
	enum nc_err rc = list_filter(r, &f, err);

	if (rc == NC_OK)
		rc = list_streams(r, &f, err);
	free(channel_id);
	free(status);
	free(before);
	return rc;
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
static enum nc_err analytics(struct req *r, struct stream_ctx *s, void *arg, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct streams_caller who = streams_caller_of(r);
	json_t *out;
	long cur;

	(void)arg;
	db_rollback(db); /* the viewer count is refreshed in a transaction of its own */
	if (strcmp(s->status, "live") == 0)
		viewers_refresh(req_worker(r), s->id);
	if (db_begin_service(db, err) != NC_OK ||
	    (out = streams_db_analytics(db, s->id, req_cfg(r)->viewer_heartbeat_timeout_s, &who,
					err)) == NULL)
		return err->code;
	db_rollback(db); /* read only */
	if (strcmp(s->status, "live") == 0 && (cur = viewers_current(req_worker(r), s->id)) >= 0)
		json_object_set_new(out, "current_viewers", json_integer(cur));
	resp_json(r, 200, out);
	return NC_OK;
}

static enum nc_err api_stream_analytics(struct req *r, struct nc_error *err)
{
	streams_db_sync_counters(&req_worker(r)->db, req_param(r, "id"));
	return streams_run(r, STREAM_NEED_MANAGE, false, analytics, NULL, err);
}

/* ---- routes ---- */

/* Stream routes; chat and reactions are in stream_chat.c, viewers in viewers.c. */
const struct route streams_routes[] = {
	{RM_POST, "/api/streams/create", api_streams_create,
	 ROUTE_AUTH | ROUTE_JSON, NULL, NULL},
	{RM_GET, "/api/streams", api_streams_list, ROUTE_AUTH, NULL, NULL},
	{RM_GET, "/api/streams/{id}", api_stream_get,
	 ROUTE_AUTH_OPTIONAL | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/start", api_stream_start,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/end", api_stream_end,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/rotate-key", api_stream_rotate_key,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL},
	{RM_POST, "/api/streams/{id}/revoke-key", api_stream_revoke_key,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_POST, "/api/streams/{id}/publisher-token", api_stream_publisher_token,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{RM_GET, "/api/streams/{id}/analytics", api_stream_analytics,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
