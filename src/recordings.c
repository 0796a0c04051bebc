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
#include "recordings.h"
#include "db.h"
#include "events.h"
#include "hooks.h"
#include "lk.h"
#include "log.h"
#include "s3.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REC_ACTIVE_SQL "('starting', 'active', 'ending')"

/* ---- row JSON ---- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *int_or_null(const char *s)
{
	return s ? json_integer(strtoll(s, NULL, 10)) : json_null();
}

json_t *recordings_row_json(const PGresult *res, int row)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o,"
			 " s:o, s:o, s:b, s:o, s:o}",
			 "id", str_or_null(db_val(res, row, RC_ID)),
			 "callId", str_or_null(db_val(res, row, RC_CALL_ID)),
			 "egressId", str_or_null(db_val(res, row, RC_EGRESS_ID)),
			 "status", str_or_null(db_val(res, row, RC_STATUS)),
			 "objectKey", str_or_null(db_val(res, row, RC_OBJECT_KEY)),
			 "fileSizeBytes", int_or_null(db_val(res, row, RC_SIZE)),
			 "durationSeconds", int_or_null(db_val(res, row, RC_DURATION)),
			 "resolution", str_or_null(db_val(res, row, RC_RESOLUTION)),
			 "layout", str_or_null(db_val(res, row, RC_LAYOUT)),
			 "audioOnly", strcmp(PQgetvalue(res, row, RC_AUDIO_ONLY), "t") == 0,
			 "startedBy", str_or_null(db_val(res, row, RC_STARTED_BY)),
			 "startedAt", str_or_null(db_val(res, row, RC_STARTED_AT)),
			 "endedAt", str_or_null(db_val(res, row, RC_ENDED_AT)),
			 "error", str_or_null(db_val(res, row, RC_ERROR)),
			 "retentionDays", int_or_null(db_val(res, row, RC_RETENTION)),
			 "expiresAt", str_or_null(db_val(res, row, RC_EXPIRES_AT)),
			 "legalHold", strcmp(PQgetvalue(res, row, RC_LEGAL_HOLD), "t") == 0,
			 "deletedAt", str_or_null(db_val(res, row, RC_DELETED_AT)),
			 "createdAt", str_or_null(db_val(res, row, RC_CREATED_AT)));
}

/* The row by id as JSON, read in the current transaction (NULL if absent). */
static json_t *row_by_id(struct db_conn *db, const char *rec_id, struct nc_error *err)
{
	const char *p[1] = { rec_id };
	PGresult *res = db_exec(db, "SELECT " REC_COLS " FROM nchat_call_recordings r WHERE r.id = $1",
				1, p, err);
	json_t *j = NULL;

	if (res && PQntuples(res) == 1)
		j = recordings_row_json(res, 0);
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
	if (db_begin_service(&w->db, &err) != NC_OK)
		return;
	res = db_exec(&w->db,
		      "SELECT DISTINCT user_id FROM nchat_call_participants WHERE call_id = $1 "
		      "AND user_id IS NOT NULL AND status IN ('invited', 'ringing', 'joined')",
		      1, p, &err);
	db_rollback(&w->db);
	if (res == NULL)
		return;
	data = json_pack("{s:s, s:O}", "callId", call_id, "recording", recording);
	for (int i = 0; i < PQntuples(res); i++)
		rt_publish_user(w, PQgetvalue(res, i, 0), "call.updated", data);
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
	if (db_begin_user(&w->db, u->user_id, err) != NC_OK)
		return err->code;
	res = db_exec(&w->db,
		      "SELECT c.status, c.livekit_room_name, c.channel_id,"
		      " c.initiator_id IS NOT DISTINCT FROM $2::uuid OR EXISTS (SELECT 1 FROM"
		      "  nchat_call_participants p WHERE p.call_id = c.id AND p.user_id = $2::uuid"
		      "  AND p.role = 'initiator'),"
		      " EXISTS (SELECT 1 FROM nchat_call_participants p WHERE p.call_id = c.id"
		      "  AND p.user_id = $2::uuid AND p.status = 'joined')"
		      " FROM nchat_calls c WHERE c.id = $1",
		      2, p, err);
	db_rollback(&w->db);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "call not found");
	}
	snprintf(v->status, sizeof v->status, "%s", PQgetvalue(res, 0, 0));
	v->room = xstrdup(PQgetvalue(res, 0, 1));
	v->channel_id = db_val(res, 0, 2) ? xstrdup(PQgetvalue(res, 0, 2)) : NULL;
	v->initiator = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	v->participant = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
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

enum nc_err recordings_start(struct nc_worker *w, const struct principal *user,
			     const char *call_id, const struct rec_start_opts *o,
			     const char *request_id, json_t **out, struct nc_error *err)
{
	const struct nc_config *cfg = w->cfg;
	Livekit__RoomCompositeEgressRequest rq = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__INIT;
	Livekit__EncodedFileOutput file = LIVEKIT__ENCODED_FILE_OUTPUT__INIT;
	Livekit__S3Upload s3u = LIVEKIT__S3_UPLOAD__INIT;
	Livekit__EncodedFileOutput *files[1] = { &file };
	Livekit__EgressInfo *info = NULL;
	struct lk_status st;
	struct call_view v;
	char rec_id[37], retention[16], audio[6];
	char *key = NULL, *why;
	const char *p[8];
	PGresult *res;
	json_t *details, *row = NULL;
	enum nc_err e;

	*out = NULL;
	if (!s3_configured(cfg))
		return err_set(err, NC_ESTORAGE, "recording storage is not configured");
	if (load_call_for(w, user, call_id, &v, err) != NC_OK)
		return err->code;
	if (check_call_recordable(v.status, err) != NC_OK) {
		call_view_free(&v);
		return err->code;
	}

	/* 1. The row, `starting`, committed before LiveKit is asked. */
	uuid_v4(rec_id);
	key = xasprintf("recordings/%s/%s/%s.%s", v.channel_id ? v.channel_id : "direct", call_id,
			rec_id, o->audio_only ? "ogg" : "mp4");
	snprintf(retention, sizeof retention, "%d", o->retention_days);
	snprintf(audio, sizeof audio, "%s", o->audio_only ? "true" : "false");
	if (db_begin_service(&w->db, err) != NC_OK)
		goto out;
	p[0] = call_id;
	res = db_exec(&w->db, "SELECT status FROM nchat_calls WHERE id = $1 FOR UPDATE", 1, p, err);
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1 ||
	    check_call_recordable(PQgetvalue(res, 0, 0), err) != NC_OK) {
		if (PQntuples(res) != 1)
			err_set(err, NC_ENOTFOUND, "call not found");
		PQclear(res);
		goto out;
	}
	PQclear(res);
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
		goto out;
	}
	PQclear(res);
	details = json_pack("{s:s, s:s, s:s, s:b, s:i}", "callId", call_id, "layout", o->layout,
			    "resolution", o->resolution, "audioOnly", o->audio_only,
			    "retentionDays", o->retention_days);
	e = audit_log(&w->db, user, "recording.start", "recording", rec_id, details, request_id, err);
	json_decref(details);
	if (e != NC_OK || db_commit(&w->db, err) != NC_OK)
		goto out;

	/* 2. LiveKit, outside any transaction. */
	if (w->lk == NULL) {
		err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		mark_failed(w, rec_id, "failed to start: LiveKit is not configured");
		goto out;
	}
	s3u.access_key = cfg->s3_access_key;
	s3u.secret = cfg->s3_secret_key;
	s3u.region = cfg->s3_region ? cfg->s3_region : "us-east-1";
	s3u.endpoint = cfg->s3_endpoint;
	s3u.bucket = cfg->s3_bucket;
	s3u.force_path_style = cfg->s3_force_path_style;
	file.file_type = o->audio_only ? LIVEKIT__ENCODED_FILE_TYPE__OGG : LIVEKIT__ENCODED_FILE_TYPE__MP4;
	file.filepath = key;
	file.disable_manifest = true;
	file.output_case = LIVEKIT__ENCODED_FILE_OUTPUT__OUTPUT_S3;
	file.s3 = &s3u;
	rq.room_name = v.room;
	rq.layout = (char *)o->layout;
	rq.audio_only = o->audio_only;
	/* Set the oneof case even for H264_720P_30 (= 0) so it is on the wire. */
	rq.options_case = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__OPTIONS_PRESET;
	rq.preset = strcmp(o->resolution, "1080p") == 0 ? LIVEKIT__ENCODING_OPTIONS_PRESET__H264_1080P_30
							: LIVEKIT__ENCODING_OPTIONS_PRESET__H264_720P_30;
	rq.n_file_outputs = 1;
	rq.file_outputs = files;
	info = lk_start_room_composite_egress(w->lk, &rq, &st);
	if (info == NULL) {
		why = xasprintf("failed to start: %s%s%s", st.twirp_code[0] ? st.twirp_code : "",
				st.twirp_code[0] ? ": " : "", st.msg);
		mark_failed(w, rec_id, why);
		free(why);
		lk_status_error(&st, err);
		/* Whatever LiveKit said, the caller sees a LiveKit failure (502/503). */
		if (err->code != NC_ELIVEKIT_DOWN)
			err->code = NC_ELIVEKIT;
		goto out;
	}

	/* 3. Remember the egress id (a webhook may have matched it by key already). */
	p[0] = rec_id;
	p[1] = info->egress_id;
	if (db_begin_service(&w->db, err) == NC_OK &&
	    (res = db_exec(&w->db,
			   "UPDATE nchat_call_recordings SET livekit_egress_id = $2,"
			   " started_at = COALESCE(started_at, now()) WHERE id = $1"
			   " RETURNING status",
			   2, p, err)) != NULL) {
		PQclear(res);
		row = row_by_id(&w->db, rec_id, err);
		if (db_commit(&w->db, err) != NC_OK) {
			json_decref(row);
			row = NULL;
		}
	}
	db_rollback(&w->db);
	if (row == NULL)
		log_error("recording %s: egress %s started but not stored (%s); webhooks will match"
			  " it by object key", rec_id, info->egress_id, err->msg);
	*out = json_pack("{s:s, s:s, s:s}", "recordingId", rec_id, "egressId", info->egress_id,
			 "status", row ? json_string_value(json_object_get(row, "status")) : "starting");
	if (row)
		recordings_publish(w, call_id, row);
	json_decref(row);
	err_set(err, NC_OK, "ok");
out:
	db_rollback(&w->db);
	if (info)
		protobuf_c_message_free_unpacked(&info->base, NULL);
	call_view_free(&v);
	free(key);
	return *out ? NC_OK : err->code;
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
	row = row_by_id(&w->db, rec_id, err);
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
	if (db_begin_service(&w->db, err) != NC_OK)
		return err->code;
	res = db_exec(&w->db,
		      "SELECT id, livekit_egress_id, status FROM nchat_call_recordings"
		      " WHERE call_id = $1 AND status IN " REC_ACTIVE_SQL,
		      1, p, err);
	db_rollback(&w->db);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return err_set(err, NC_ECONFLICT, "no recording of this call is in progress");
	}
	rec_id = xstrdup(PQgetvalue(res, 0, 0));
	egress_id = db_val(res, 0, 1) ? xstrdup(PQgetvalue(res, 0, 1)) : NULL;
	status = xstrdup(PQgetvalue(res, 0, 2));
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
	if (db_begin_service(&w->db, err) != NC_OK)
		return err->code;
	res = db_exec(&w->db,
		      "SELECT id, livekit_egress_id FROM nchat_call_recordings"
		      " WHERE call_id = $1 AND status IN ('starting', 'active')",
		      1, p, err);
	db_rollback(&w->db);
	if (res == NULL)
		return err->code;
	/* A row without an egress id yet is left to its webhooks / the sweep. */
	if (PQntuples(res) == 1 && db_val(res, 0, 1) != NULL)
		e = stop_row(w, NULL, PQgetvalue(res, 0, 0), call_id, PQgetvalue(res, 0, 1),
			     "call ended", NULL, NULL, err);
	PQclear(res);
	return e;
}

/* ---- egress events ---- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* An int64 that protobuf JSON writes as a string (or a number); 0 if absent. */
static long long jint64(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

/* Rank of a row state: events never move a row to a lower rank. */
static int state_rank(const char *s)
{
	if (strcmp(s, "starting") == 0)
		return 0;
	if (strcmp(s, "active") == 0)
		return 1;
	if (strcmp(s, "ending") == 0)
		return 2;
	return 3; /* completed, failed, aborted, deleted: terminal */
}

/* EgressStatus name -> row status (LIMIT_REACHED: the file is complete, so completed). */
static const char *map_status(const char *egress_status)
{
	static const struct { const char *from, *to; } m[] = {
		{ "EGRESS_STARTING", "starting" }, { "EGRESS_ACTIVE", "active" },
		{ "EGRESS_ENDING", "ending" }, { "EGRESS_COMPLETE", "completed" },
		{ "EGRESS_FAILED", "failed" }, { "EGRESS_ABORTED", "aborted" },
		{ "EGRESS_LIMIT_REACHED", "completed" },
	};

	for (size_t i = 0; i < NC_ARRAY_LEN(m); i++)
		if (strcmp(egress_status, m[i].from) == 0)
			return m[i].to;
	return NULL;
}

/* The object key the egress was asked to write (request echo, or the file result). */
static const char *egress_filepath(json_t *info)
{
	json_t *rc = json_object_get(info, "roomComposite");
	json_t *fo = json_array_get(json_object_get(rc, "fileOutputs"), 0);
	json_t *fr = json_array_get(json_object_get(info, "fileResults"), 0);
	const char *s = jstr(fo, "filepath");

	if (s == NULL)
		s = jstr(json_object_get(rc, "file"), "filepath");
	if (s == NULL)
		s = jstr(fr, "filename");
	return s;
}

/* "<sec>.<nanos>" of a unix-nanosecond value (for to_timestamp). */
static void ns_text(long long ns, char *out, size_t n)
{
	snprintf(out, n, "%lld.%09lld", ns / 1000000000LL, ns % 1000000000LL);
}

int recordings_on_egress(struct nc_worker *w, const char *event, json_t *info,
			 int64_t created_at, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	const char *egress_id = jstr(info, "egressId");
	const char *estatus = jstr(info, "status");
	const char *path, *to, *cur, *errtext;
	json_t *fr, *details;
	const char *p[10];
	char created[24], ended[32], started[32], size[24], dur[24];
	long long ns;
	char *rec_id = NULL, *call_id = NULL;
	PGresult *res;
	int rc = -1;

	(void)event; /* the status inside egressInfo is what counts */
	if (egress_id == NULL || *egress_id == '\0')
		return 0;
	/* Protobuf JSON omits enum value 0: no status means EGRESS_STARTING. */
	to = map_status(estatus ? estatus : "EGRESS_STARTING");
	if (to == NULL) {
		log_warn("egress %s: unknown status %s ignored", egress_id, estatus);
		return 0;
	}
	p[0] = egress_id;
	res = db_exec(db,
		      "SELECT id, call_id, status, COALESCE(floor(extract(epoch FROM last_event_at))::bigint, 0)"
		      " FROM nchat_call_recordings WHERE livekit_egress_id = $1 FOR UPDATE",
		      1, p, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0 && (path = egress_filepath(info)) != NULL) {
		/* Not stored yet (start still in flight): match by our unique object key. */
		PQclear(res);
		p[0] = path;
		p[1] = egress_id;
		res = db_exec(db,
			      "UPDATE nchat_call_recordings SET livekit_egress_id = $2"
			      " WHERE object_key = $1 AND livekit_egress_id IS NULL"
			      " RETURNING id, call_id, status,"
			      "  COALESCE(floor(extract(epoch FROM last_event_at))::bigint, 0)",
			      2, p, err);
		if (res == NULL)
			return -1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	rec_id = xstrdup(PQgetvalue(res, 0, 0));
	call_id = xstrdup(PQgetvalue(res, 0, 1));
	cur = PQgetvalue(res, 0, 2);
	if ((created_at > 0 && created_at < strtoll(PQgetvalue(res, 0, 3), NULL, 10)) ||
	    state_rank(cur) == 3 || state_rank(to) < state_rank(cur)) {
		/* Older than what we applied, or would leave a terminal / go backwards. */
		log_debug("egress %s: %s ignored (row is %s)", egress_id, to, cur);
		PQclear(res);
		rc = 1;
		goto out;
	}
	PQclear(res);

	snprintf(created, sizeof created, "%lld", (long long)(created_at > 0 ? created_at : 0));
	ns = jint64(info, "endedAt");
	ns_text(ns, ended, sizeof ended);
	ns = jint64(info, "startedAt");
	ns_text(ns, started, sizeof started);
	fr = json_array_get(json_object_get(info, "fileResults"), 0);
	if (fr == NULL)
		fr = json_object_get(info, "file");
	snprintf(size, sizeof size, "%lld", jint64(fr, "size"));
	/* duration is nanoseconds; whole seconds, rounded. */
	snprintf(dur, sizeof dur, "%lld", (jint64(fr, "duration") + 500000000LL) / 1000000000LL);
	errtext = jstr(info, "error");
	if ((errtext == NULL || *errtext == '\0') && strcmp(to, "completed") != 0)
		errtext = jstr(info, "details");

	p[0] = rec_id;
	p[1] = to;
	p[2] = created;
	p[3] = started;
	p[4] = ended;
	p[5] = strcmp(to, "completed") == 0 ? jstr(fr, "location") : NULL;
	p[6] = strcmp(to, "completed") == 0 ? jstr(fr, "filename") : NULL;
	p[7] = strcmp(to, "completed") == 0 && fr ? size : NULL;
	p[8] = strcmp(to, "completed") == 0 && fr ? dur : NULL;
	p[9] = (strcmp(to, "failed") == 0 || strcmp(to, "aborted") == 0)
		       ? (errtext && *errtext ? errtext : "egress ended without an error text")
		       : NULL;
	res = db_exec(db,
		      "UPDATE nchat_call_recordings SET status = $2,"
		      " last_event_at = GREATEST(last_event_at, CASE WHEN $3::bigint > 0"
		      "   THEN to_timestamp($3::bigint) END),"
		      " started_at = COALESCE(started_at, CASE WHEN $4::numeric > 0"
		      "   THEN to_timestamp($4::double precision) END),"
		      " ended_at = CASE WHEN $2 IN ('completed', 'failed', 'aborted') THEN"
		      "   COALESCE(CASE WHEN $5::numeric > 0 THEN to_timestamp($5::double precision) END,"
		      "            ended_at, now()) ELSE ended_at END,"
		      " file_url = COALESCE($6, file_url),"
		      " object_key = COALESCE(NULLIF($7, ''), object_key),"
		      " file_size_bytes = COALESCE($8::bigint, file_size_bytes),"
		      " duration_seconds = COALESCE($9::integer, duration_seconds),"
		      " error = COALESCE($10, error)"
		      " WHERE id = $1",
		      10, p, err);
	if (res == NULL)
		goto out;
	PQclear(res);
	if (strcmp(to, "completed") == 0 || strcmp(to, "failed") == 0 ||
	    strcmp(to, "aborted") == 0) {
		details = json_pack("{s:s, s:s, s:s}", "callId", call_id, "egressId", egress_id,
				    "status", to);
		if (audit_log(db, NULL, "recording.end", "recording", rec_id, details, NULL, err) !=
		    NC_OK) {
			json_decref(details);
			goto out;
		}
		json_decref(details);
	}
	if (strcmp(to, "completed") == 0) {
		json_t *row = row_by_id(db, rec_id, err);
		if (row == NULL)
			goto out;
		if (outbox_enqueue(db, w->cfg, "recording.ready", row, err) != NC_OK) {
			json_decref(row);
			goto out;
		}
		json_decref(row);
	}
	rc = 1;
out:
	free(rec_id);
	free(call_id);
	return rc;
}

/* ---- reconciliation with ListEgress (run by the sweep) ---- */

/* The fields recordings_on_egress reads, from a ListEgress item. */
static json_t *egress_info_json(const Livekit__EgressInfo *e)
{
	const ProtobufCEnumValue *sv =
		protobuf_c_enum_descriptor_get_value(&livekit__egress_status__descriptor, e->status);
	json_t *j = json_object();
	char buf[32];

	json_object_set_new(j, "egressId", json_string(e->egress_id ? e->egress_id : ""));
	json_object_set_new(j, "status", json_string(sv ? sv->name : "EGRESS_STARTING"));
	snprintf(buf, sizeof buf, "%lld", (long long)e->started_at);
	json_object_set_new(j, "startedAt", json_string(buf));
	snprintf(buf, sizeof buf, "%lld", (long long)e->ended_at);
	json_object_set_new(j, "endedAt", json_string(buf));
	if (e->error && *e->error)
		json_object_set_new(j, "error", json_string(e->error));
	if (e->n_file_results > 0) {
		const Livekit__FileInfo *f = e->file_results[0];
		json_t *fr = json_object();
		snprintf(buf, sizeof buf, "%lld", (long long)f->size);
		json_object_set_new(fr, "size", json_string(buf));
		snprintf(buf, sizeof buf, "%lld", (long long)f->duration);
		json_object_set_new(fr, "duration", json_string(buf));
		json_object_set_new(fr, "filename", json_string(f->filename ? f->filename : ""));
		json_object_set_new(fr, "location", json_string(f->location ? f->location : ""));
		json_object_set_new(j, "fileResults", json_pack("[o]", fr));
	}
	return j;
}

/* Apply a synthetic event in its own service transaction.  0 or -1. */
static int apply_info(struct nc_worker *w, json_t *info, struct nc_error *err)
{
	if (db_begin_service(&w->db, err) != NC_OK)
		return -1;
	if (recordings_on_egress(w, "reconcile", info, now_unix(), err) < 0 ||
	    db_commit(&w->db, err) != NC_OK) {
		db_rollback(&w->db);
		return -1;
	}
	return 0;
}

static int set_state(struct nc_worker *w, const char *rec_id, const char *status,
		     const char *why, struct nc_error *err)
{
	const char *p[3] = { rec_id, status, why };
	PGresult *res;

	if (db_begin_service(&w->db, err) != NC_OK)
		return -1;
	res = db_exec(&w->db,
		      "UPDATE nchat_call_recordings SET status = $2, error = $3,"
		      " ended_at = COALESCE(ended_at, now())"
		      " WHERE id = $1 AND status IN " REC_ACTIVE_SQL,
		      3, p, err);
	if (res == NULL || db_commit(&w->db, err) != NC_OK) {
		PQclear(res);
		db_rollback(&w->db);
		return -1;
	}
	PQclear(res);
	return 0;
}

int recordings_reconcile_egress(struct nc_worker *w, int limit, struct rec_reconcile *out,
				struct nc_error *err)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *res;

	memset(out, 0, sizeof *out);
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 100);
	if (db_begin_service(&w->db, err) != NC_OK)
		return -1;
	res = db_exec(&w->db,
		      "SELECT id, livekit_egress_id, status, created_at < now() - interval '5 minutes'"
		      " FROM nchat_call_recordings WHERE status IN " REC_ACTIVE_SQL
		      " AND updated_at < now() - interval '1 minute'"
		      " ORDER BY updated_at LIMIT $1::integer",
		      1, p, err);
	db_rollback(&w->db);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *rec_id = PQgetvalue(res, i, 0);
		const char *egress_id = db_val(res, i, 1);
		Livekit__ListEgressRequest lq = LIVEKIT__LIST_EGRESS_REQUEST__INIT;
		Livekit__ListEgressResponse *list;
		struct lk_status st;
		struct nc_error e2;

		out->checked++;
		if (egress_id == NULL) {
			if (strcmp(PQgetvalue(res, i, 3), "t") == 0) {
				if (set_state(w, rec_id, "failed",
					      "failed to start: no egress id was recorded", &e2) == 0)
					out->fixed++;
				else
					out->failed++;
			}
			continue;
		}
		if (w->lk == NULL) {
			out->failed++;
			continue;
		}
		lq.egress_id = (char *)egress_id;
		list = lk_list_egress(w->lk, &lq, &st);
		if (list == NULL) {
			out->failed++;
			lk_status_error(&st, err);
			continue;
		}
		if (list->n_items == 0) {
			if (set_state(w, rec_id, "aborted", "egress unknown to LiveKit", &e2) == 0)
				out->fixed++;
			else
				out->failed++;
		} else {
			json_t *info = egress_info_json(list->items[0]);
			const char *to = map_status(jstr(info, "status"));
			if (to && strcmp(to, PQgetvalue(res, i, 2)) != 0) {
				if (apply_info(w, info, &e2) == 0)
					out->fixed++;
				else
					out->failed++;
			}
			json_decref(info);
		}
		protobuf_c_message_free_unpacked(&list->base, NULL);
	}
	PQclear(res);
	return 0;
}

/*
 * After an egress event committed: a recording that just completed is
 * re-written with server-side encryption when S3_SSE asks for it.  A failure
 * is logged and left (the object stays readable; the bucket's default
 * encryption, if any, still applies).
 */
void recordings_after_egress(struct nc_worker *w, const char *egress_id)
{
	struct nc_error err = {0};
	const char *p[1] = {egress_id};
	PGresult *res;
	char *key = NULL;

	if (w->s3 == NULL || w->cfg->s3_sse == NULL || *w->cfg->s3_sse == '\0' || egress_id == NULL)
		return;
	if (db_begin_service(&w->db, &err) != NC_OK)
		return;
	res = db_exec(&w->db,
		      "SELECT object_key FROM nchat_call_recordings"
		      " WHERE livekit_egress_id = $1 AND status = 'completed' AND object_key IS NOT NULL",
		      1, p, &err);
	db_rollback(&w->db);
	if (res != NULL && PQntuples(res) == 1)
		key = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (key == NULL)
		return;
	if (s3_encrypt_in_place(w->s3, key, &err) != NC_OK)
		log_warn("recording %s: server-side encryption not applied: %s", key, err.msg);
	free(key);
}
