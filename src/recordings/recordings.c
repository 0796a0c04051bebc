/*
 * recordings.c - call recordings: start/stop through LiveKit Egress, the
 * egress webhook hook, and reconciliation against ListEgress.
 *
 * Start order (API.md, issue 6): the row is inserted `starting` FIRST in a
 * service transaction and committed - the partial unique index (one
 * starting/active/ending row per call) is what makes a second concurrent
 * start a 409 - and only then is StartRoomCompositeEgress called, outside
 * any transaction.  If LiveKit refuses, the row becomes `failed` with
 * "failed to start: <LiveKit's text>", so it never stays `starting`; if even
 * that update cannot be written, the sweep's egress reconciliation fails the
 * row after 5 minutes.
 *
 * The egress writes one MP4 (OGG when audio only) to
 * recordings/<channel id | "direct">/<call id>/<recording id>.<ext> in
 * S3_BUCKET, with the credentials of our own configuration (S3Upload) and
 * the JSON manifest disabled (it would be an object without a row).
 * LiveKit's S3Upload has no server-side-encryption field (only metadata,
 * tagging, content disposition), so S3_SSE cannot be requested for the
 * egress's own upload; when S3_SSE is set, a completed recording is copied
 * onto itself with encryption requested (recordings_after_egress), and our
 * own PUTs send x-amz-server-side-encryption.  Bucket default encryption
 * also covers the minutes between upload and that copy.
 *
 * Webhooks may reach us before StartRoomCompositeEgress has answered and its
 * egress id is stored; such an event is matched by the object key, which is
 * unique per recording and echoed in egressInfo (the request's filepath, or
 * the file result's filename), and the egress id is filled in then.
 */
#include "recordings/recordings.h"
#include "core/uuid.h"
#include "store/db.h"
#include "store/db_row.h"
#include "realtime/events.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "s3/s3.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- row JSON ---- */

json_t *recordings_row_json(const PGresult *res, int row)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o,"
			 " s:o, s:o, s:b, s:o, s:o}",
			 "id", row_json_str(res, row, "id"),
			 "callId", row_json_str(res, row, "call_id"),
			 "egressId", row_json_str(res, row, "livekit_egress_id"),
			 "status", row_json_str(res, row, "status"),
			 "objectKey", row_json_str(res, row, "object_key"),
			 "fileSizeBytes", row_json_int(res, row, "file_size_bytes"),
			 "durationSeconds", row_json_int(res, row, "duration_seconds"),
			 "resolution", row_json_str(res, row, "resolution"),
			 "layout", row_json_str(res, row, "layout_type"),
			 "audioOnly", row_bool(res, row, "audio_only", false),
			 "startedBy", row_json_str(res, row, "started_by"),
			 "startedAt", row_json_str(res, row, "started_at"),
			 "endedAt", row_json_str(res, row, "ended_at"),
			 "error", row_json_str(res, row, "error"),
			 "retentionDays", row_json_int(res, row, "retention_days"),
			 "expiresAt", row_json_str(res, row, "expires_at"),
			 "legalHold", row_bool(res, row, "legal_hold", false),
			 "deletedAt", row_json_str(res, row, "deleted_at"),
			 "createdAt", row_json_str(res, row, "created_at"));
}

json_t *recordings_row_by_id(struct db_conn *db, const char *rec_id, struct nc_error *err)
{
	const char *p[1] = { rec_id };
	PGresult *res = db_exec(db, "SELECT " REC_COLS " FROM nchat_call_recordings r WHERE r.id = $1",
				1, p, err);
	json_t *j = NULL;

	if (res && PQntuples(res) == 1)
		j = recordings_row_json(res, 0);
	else if (res)
		err_set(err, NC_ENOTFOUND, "recording not found");
	PQclear(res);
	return j;
}

/* ---- realtime ---- */

void recordings_publish(struct nc_worker *w, const char *call_id, json_t *recording)
{
	const char *p[1] = { call_id };
	struct nc_error err;
	PGresult *res;
	json_t *data;

	if (recording == NULL || !w->rds_ok)
		return;
	res = db_exec_service(&w->db,
			      "SELECT DISTINCT user_id FROM nchat_call_participants WHERE call_id = $1 "
			      "AND user_id IS NOT NULL AND status IN ('invited', 'ringing', 'joined')",
			      1, p, &err);
	if (res == NULL)
		return;
	data = json_pack("{s:s, s:O}", "callId", call_id, "recording", recording);
	for (int i = 0; i < PQntuples(res); i++)
		rt_publish_user(w, row_text(res, i, "user_id"), "call.updated", data);
	json_decref(data);
	PQclear(res);
}

/* ---- who may record ---- */

/* Is `word` one of the comma-separated entries of list (spaces ignored)? */
static bool list_has(const char *list, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list ? list : "";

	while (*p) {
		size_t n;
		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == wl && strncasecmp(p, word, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static bool may_record(const struct nc_config *cfg, const struct principal *u, bool initiator,
		       bool participant)
{
	const char *allowed = cfg->recording_allowed ? cfg->recording_allowed
						       : "initiator,admin,moderator";

	return (initiator && list_has(allowed, "initiator")) ||
	       ((u->roles & ROLE_ADMIN) && list_has(allowed, "admin")) ||
	       ((u->roles & ROLE_MODERATOR) && list_has(allowed, "moderator")) ||
	       (participant && list_has(allowed, "participant"));
}

/* What start/stop need to know about the call, read in the caller's context. */
struct call_view {
	char status[16];
	char *room;
	char *channel_id;   /* NULL for direct calls */
	bool initiator;     /* the caller started the call */
	bool participant;   /* the caller is in it (joined) */
};

static void call_view_free(struct call_view *v)
{
	free(v->room);
	free(v->channel_id);
}

/*
 * Read the call as the user (RLS: 404 when they may not see it) and check
 * RECORDING_ALLOWED (403).
 */
static enum nc_err load_call_for(struct nc_worker *w, const struct principal *u,
				 const char *call_id, struct call_view *v, struct nc_error *err)
{
	const char *p[2] = { call_id, u->user_id };
	PGresult *res;

	memset(v, 0, sizeof *v);
	if (!is_uuid(call_id))
		return err_set(err, NC_EBADREQ, "call id must be a UUID");
	res = db_exec_user(&w->db, u->user_id,
			   "SELECT c.status, c.livekit_room_name, c.channel_id,"
			   " c.initiator_id IS NOT DISTINCT FROM $2::uuid OR EXISTS (SELECT 1 FROM"
			   "  nchat_call_participants p WHERE p.call_id = c.id AND p.user_id = $2::uuid"
			   "  AND p.role = 'initiator') AS initiator,"
			   " EXISTS (SELECT 1 FROM nchat_call_participants p WHERE p.call_id = c.id"
			   "  AND p.user_id = $2::uuid AND p.status = 'joined') AS participant"
			   " FROM nchat_calls c WHERE c.id = $1",
			   2, p, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "call not found");
	}
	snprintf(v->status, sizeof v->status, "%s", row_text(res, 0, "status"));
	v->room = xstrdup(row_text(res, 0, "livekit_room_name"));
	v->channel_id = row_is_null(res, 0, "channel_id") ? NULL
							  : xstrdup(row_text(res, 0, "channel_id"));
	v->initiator = row_bool(res, 0, "initiator", false);
	v->participant = row_bool(res, 0, "participant", false);
	PQclear(res);
	if (!may_record(w->cfg, u, v->initiator, v->participant)) {
		call_view_free(v);
		return err_set(err, NC_EFORBIDDEN, "you may not record this call");
	}
	return NC_OK;
}

static bool call_status_over(const char *s)
{
	return strcmp(s, "ended") == 0 || strcmp(s, "missed") == 0 ||
	       strcmp(s, "declined") == 0 || strcmp(s, "failed") == 0;
}

static enum nc_err check_call_recordable(const char *status, struct nc_error *err)
{
	if (call_status_over(status))
		return err_set(err, NC_EGONE, "the call is over (%s)", status);
	if (strcmp(status, "active") != 0 && strcmp(status, "ringing") != 0)
		return err_set(err, NC_ECONFLICT, "the call is not ringing or active (%s)", status);
	return NC_OK;
}

/* ---- start ---- */

/* Mark a row failed (failed to start); best effort, logged on failure. */
static void mark_failed(struct nc_worker *w, const char *rec_id, const char *why)
{
	const char *p[2] = { rec_id, why };
	struct nc_error err;
	PGresult *res;

	if (db_begin_service(&w->db, &err) != NC_OK)
		goto fail;
	res = db_exec(&w->db,
		      "UPDATE nchat_call_recordings SET status = 'failed', error = $2,"
		      " ended_at = now() WHERE id = $1 AND status IN " REC_ACTIVE_SQL,
		      2, p, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	if (db_commit(&w->db, &err) != NC_OK)
		goto fail;
	return;
fail:
	db_rollback(&w->db);
	log_error("recording %s: could not mark it failed (%s); the sweep will", rec_id, err.msg);
}

/*
 * 1. The row, `starting`, with its audit entry, committed before LiveKit is
 * asked (the call is locked and checked again inside the transaction).
 */
static enum nc_err insert_starting(struct nc_worker *w, const struct principal *user,
				   const char *call_id, const struct rec_start_opts *o,
				   const char *rec_id, const char *key, const char *request_id,
				   struct nc_error *err)
{
	char retention[16], audio[6];
	const char *p[8] = { call_id };
	PGresult *res;
	json_t *details;
	enum nc_err e;

	snprintf(retention, sizeof retention, "%d", o->retention_days);
	snprintf(audio, sizeof audio, "%s", o->audio_only ? "true" : "false");
	if (db_begin_service(&w->db, err) != NC_OK)
		return err->code;
	res = db_exec(&w->db, "SELECT status FROM nchat_calls WHERE id = $1 FOR UPDATE", 1, p, err);
	if (res == NULL)
		return err->code;
	e = PQntuples(res) != 1 ? err_set(err, NC_ENOTFOUND, "call not found")
				: check_call_recordable(row_text(res, 0, "status"), err);
	PQclear(res);
	if (e != NC_OK)
		return e;
	p[0] = rec_id;
	p[1] = call_id;
	p[2] = key;
	p[3] = o->resolution;
	p[4] = o->layout;
	p[5] = audio;
	p[6] = user->user_id;
	p[7] = retention;
	res = db_exec(&w->db,
		      "INSERT INTO nchat_call_recordings (id, call_id, status, object_key, resolution,"
		      " layout_type, audio_only, started_by, retention_days)"
		      " VALUES ($1, $2, 'starting', $3, $4, $5, $6::boolean,"
		      "  (SELECT id FROM nchat_users WHERE id = $7::uuid), $8::integer)",
		      8, p, err);
	if (res == NULL) {
		if (err->code == NC_ECONFLICT)
			err_set(err, NC_ECONFLICT, "a recording of this call is already in progress");
		return err->code;
	}
	PQclear(res);
	details = json_pack("{s:s, s:s, s:s, s:b, s:i}", "callId", call_id, "layout", o->layout,
			    "resolution", o->resolution, "audioOnly", o->audio_only,
			    "retentionDays", o->retention_days);
	e = audit_log(&w->db, user, "recording.start", "recording", rec_id, details, request_id, err);
	json_decref(details);
	if (e != NC_OK)
		return e;
	return db_commit(&w->db, err);
}

/* 2. StartRoomCompositeEgress, outside any transaction; NULL with st on failure. */
static Livekit__EgressInfo *start_egress(struct nc_worker *w, const struct rec_start_opts *o,
					 const char *room, const char *key, struct lk_status *st)
{
	const struct nc_config *cfg = w->cfg;
	Livekit__RoomCompositeEgressRequest rq = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__INIT;
	Livekit__EncodedFileOutput file = LIVEKIT__ENCODED_FILE_OUTPUT__INIT;
	Livekit__S3Upload s3u = LIVEKIT__S3_UPLOAD__INIT;
	Livekit__EncodedFileOutput *files[1] = { &file };

	s3u.access_key = cfg->s3_access_key;
	s3u.secret = cfg->s3_secret_key;
	s3u.region = cfg->s3_region ? cfg->s3_region : "us-east-1";
	s3u.endpoint = cfg->s3_endpoint;
	s3u.bucket = cfg->s3_bucket;
	s3u.force_path_style = cfg->s3_force_path_style;
	file.file_type = o->audio_only ? LIVEKIT__ENCODED_FILE_TYPE__OGG : LIVEKIT__ENCODED_FILE_TYPE__MP4;
	file.filepath = (char *)key;
	file.disable_manifest = true;
	file.output_case = LIVEKIT__ENCODED_FILE_OUTPUT__OUTPUT_S3;
	file.s3 = &s3u;
	rq.room_name = (char *)room;
	rq.layout = (char *)o->layout;
	rq.audio_only = o->audio_only;
	/* Set the oneof case even for H264_720P_30 (= 0) so it is on the wire. */
	rq.options_case = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__OPTIONS_PRESET;
	rq.preset = strcmp(o->resolution, "1080p") == 0 ? LIVEKIT__ENCODING_OPTIONS_PRESET__H264_1080P_30
							: LIVEKIT__ENCODING_OPTIONS_PRESET__H264_720P_30;
	rq.n_file_outputs = 1;
	rq.file_outputs = files;
	return lk_start_room_composite_egress(w->lk, &rq, st);
}

/* LiveKit refused: the row becomes `failed` with its text; the caller sees 502/503. */
static enum nc_err start_refused(struct nc_worker *w, const char *rec_id,
				 const struct lk_status *st, struct nc_error *err)
{
	char *why = xasprintf("failed to start: %s%s%s", st->twirp_code[0] ? st->twirp_code : "",
			      st->twirp_code[0] ? ": " : "", st->msg);

	mark_failed(w, rec_id, why);
	free(why);
	lk_status_error(st, err);
	/* Whatever LiveKit said, the caller sees a LiveKit failure (502/503). */
	if (err->code != NC_ELIVEKIT_DOWN)
		err->code = NC_ELIVEKIT;
	return err->code;
}

/*
 * 3. Remember the egress id (a webhook may have matched it by key already);
 * the row as it is now, or NULL (logged: webhooks will match it by key).
 */
static json_t *store_egress_id(struct nc_worker *w, const char *rec_id, const char *egress_id)
{
	const char *p[2] = { rec_id, egress_id };
	struct nc_error err = { 0 };
	PGresult *res;
	json_t *row = NULL;

	if (db_begin_service(&w->db, &err) == NC_OK &&
	    (res = db_exec(&w->db,
			   "UPDATE nchat_call_recordings SET livekit_egress_id = $2,"
			   " started_at = COALESCE(started_at, now()) WHERE id = $1"
			   " RETURNING status",
			   2, p, &err)) != NULL) {
		PQclear(res);
		row = recordings_row_by_id(&w->db, rec_id, &err);
		if (db_commit(&w->db, &err) != NC_OK) {
			json_decref(row);
			row = NULL;
		}
	}
	db_rollback(&w->db);
	if (row == NULL)
		log_error("recording %s: egress %s started but not stored (%s); webhooks will match"
			  " it by object key", rec_id, egress_id, err.msg);
	return row;
}

enum nc_err recordings_start(struct nc_worker *w, const struct principal *user,
			     const char *call_id, const struct rec_start_opts *o,
			     const char *request_id, json_t **out, struct nc_error *err)
{
	Livekit__EgressInfo *info = NULL;
	struct lk_status st;
	struct call_view v;
	char rec_id[37];
	char *key;
	json_t *row;
	enum nc_err e;

	*out = NULL;
	if (!s3_configured(w->cfg))
		return err_set(err, NC_ESTORAGE, "recording storage is not configured");
	if (load_call_for(w, user, call_id, &v, err) != NC_OK)
		return err->code;
	if (check_call_recordable(v.status, err) != NC_OK) {
		call_view_free(&v);
		return err->code;
	}
	uuid_v4(rec_id);
	key = xasprintf("recordings/%s/%s/%s.%s", v.channel_id ? v.channel_id : "direct", call_id,
			rec_id, o->audio_only ? "ogg" : "mp4");
	e = insert_starting(w, user, call_id, o, rec_id, key, request_id, err);
	db_rollback(&w->db);
	if (e == NC_OK && w->lk == NULL) {
		e = err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		mark_failed(w, rec_id, "failed to start: LiveKit is not configured");
	}
	if (e == NC_OK && (info = start_egress(w, o, v.room, key, &st)) == NULL)
		e = start_refused(w, rec_id, &st, err);
	if (e == NC_OK) {
		row = store_egress_id(w, rec_id, info->egress_id);
		*out = json_pack("{s:s, s:s, s:s}", "recordingId", rec_id, "egressId",
				 info->egress_id, "status",
				 row ? json_string_value(json_object_get(row, "status")) : "starting");
		if (row)
			recordings_publish(w, call_id, row);
		json_decref(row);
		err_set(err, NC_OK, "ok");
	}
	if (info)
		protobuf_c_message_free_unpacked(&info->base, NULL);
	call_view_free(&v);
	free(key);
	return e;
}

/* ---- stop ---- */

/*
 * StopEgress for one row, then row -> ending.  actor NULL = the system.
 * not_found / failed_precondition mean LiveKit has already stopped it.
 */
static enum nc_err stop_row(struct nc_worker *w, const struct principal *actor,
			    const char *rec_id, const char *call_id, const char *egress_id,
			    const char *reason, const char *request_id, json_t **row_out,
			    struct nc_error *err)
{
	Livekit__StopEgressRequest sq = LIVEKIT__STOP_EGRESS_REQUEST__INIT;
	Livekit__EgressInfo *info;
	struct lk_status st;
	const char *p[1] = { rec_id };
	PGresult *res;
	json_t *details, *row;
	enum nc_err e;

	if (w->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	sq.egress_id = (char *)egress_id;
	info = lk_stop_egress(w->lk, &sq, &st);
	if (info != NULL)
		protobuf_c_message_free_unpacked(&info->base, NULL);
	else if (!lk_status_is(&st, "not_found") && !lk_status_is(&st, "failed_precondition"))
		return lk_status_error(&st, err);

	if (db_begin_service(&w->db, err) != NC_OK)
		return err->code;
	res = db_exec(&w->db,
		      "UPDATE nchat_call_recordings SET status = 'ending'"
		      " WHERE id = $1 AND status IN ('starting', 'active')",
		      1, p, err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	details = json_pack("{s:s, s:s, s:s}", "callId", call_id, "egressId", egress_id,
			    "reason", reason);
	e = audit_log(&w->db, actor, "recording.stop", "recording", rec_id, details, request_id, err);
	json_decref(details);
	if (e != NC_OK)
		goto fail;
	row = recordings_row_by_id(&w->db, rec_id, err);
	if (db_commit(&w->db, err) != NC_OK) {
		json_decref(row);
		goto fail;
	}
	recordings_publish(w, call_id, row);
	if (row_out)
		*row_out = row;
	else
		json_decref(row);
	return NC_OK;
fail:
	db_rollback(&w->db);
	return err->code;
}

enum nc_err recordings_stop(struct nc_worker *w, const struct principal *user,
			    const char *call_id, const char *request_id, json_t **out,
			    struct nc_error *err)
{
	struct call_view v;
	const char *p[1] = { call_id };
	PGresult *res;
	char *rec_id = NULL, *egress_id = NULL, *status = NULL;
	json_t *row = NULL;

	*out = NULL;
	if (load_call_for(w, user, call_id, &v, err) != NC_OK)
		return err->code;
	call_view_free(&v);
	res = db_exec_service(&w->db,
			      "SELECT id, livekit_egress_id, status FROM nchat_call_recordings"
			      " WHERE call_id = $1 AND status IN " REC_ACTIVE_SQL,
			      1, p, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return err_set(err, NC_ECONFLICT, "no recording of this call is in progress");
	}
	rec_id = xstrdup(row_text(res, 0, "id"));
	egress_id = row_is_null(res, 0, "livekit_egress_id")
			    ? NULL : xstrdup(row_text(res, 0, "livekit_egress_id"));
	status = xstrdup(row_text(res, 0, "status"));
	PQclear(res);
	if (egress_id == NULL) {
		err_set(err, NC_ECONFLICT, "the recording is still starting; try again in a moment");
	} else if (strcmp(status, "ending") == 0) {
		*out = json_pack("{s:s, s:s, s:s}", "recordingId", rec_id, "egressId", egress_id,
				 "status", "ending");
	} else if (stop_row(w, user, rec_id, call_id, egress_id, "requested", request_id, &row,
			    err) == NC_OK) {
		*out = json_pack("{s:s, s:s, s:s}", "recordingId", rec_id, "egressId", egress_id,
				 "status", row ? json_string_value(json_object_get(row, "status"))
					       : "ending");
		json_decref(row);
	}
	free(rec_id);
	free(egress_id);
	free(status);
	return *out ? NC_OK : err->code;
}

enum nc_err recordings_stop_for_call(struct nc_worker *w, const char *call_id,
				     struct nc_error *err)
{
	const char *p[1] = { call_id };
	PGresult *res;
	enum nc_err e = NC_OK;

	if (!is_uuid(call_id))
		return err_set(err, NC_EBADREQ, "call id must be a UUID");
	res = db_exec_service(&w->db,
			      "SELECT id, livekit_egress_id FROM nchat_call_recordings"
			      " WHERE call_id = $1 AND status IN ('starting', 'active')",
			      1, p, err);
	if (res == NULL)
		return err->code;
	/* A row without an egress id yet is left to its webhooks / the sweep. */
	if (PQntuples(res) == 1 && !row_is_null(res, 0, "livekit_egress_id"))
		e = stop_row(w, NULL, row_text(res, 0, "id"), call_id,
			     row_text(res, 0, "livekit_egress_id"), "call ended", NULL, NULL, err);
	PQclear(res);
	return e;
}
