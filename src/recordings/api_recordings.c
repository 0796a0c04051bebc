/*
 * api_recordings.c - the HTTP side of call recordings (API.md "Calls"):
 *
 *   POST   /api/calls/{id}/recording/start   RECORDING_ALLOWED (default initiator, admin, moderator)
 *   POST   /api/calls/{id}/recording/stop    same
 *   GET    /api/calls/{id}/recordings        whoever may see the call
 *   GET    /api/recordings/{id}              same; + presigned downloadUrl when completed
 *   DELETE /api/recordings/{id}              the call's initiator, admin
 *   POST   /api/recordings/{id}/legal-hold   admin: {"hold": true|false}
 *
 * Who sees a recording: the call's participants (a participant row that is
 * not `removed`) and admins - not channel members who never took part, not
 * a participant from their removal on, and nobody once it is deleted.  A
 * recording (or call) the caller may not see is 404, never a 403 that would
 * confirm it exists.  Each read checks this twice: in its own SQL predicate
 * (participant_pred below) and through row-level security (it runs as the
 * user, sql/0006_work_roles.sql), so neither a policy regression nor a
 * handler bug alone can leak a recording.  Admins read as the service, with
 * the predicate "not deleted".  Every presigned URL handed out is recorded
 * in nchat_recording_downloads first, by an INSERT that checks the same
 * predicate again; if that row cannot be written no URL is given.
 *
 * DELETE removes the S3 object first (404 = already gone = fine), then marks
 * the row `deleted` (deleted_at set): from then on GET, the call's list,
 * legal hold and another DELETE answer 404 for everyone.  The row stays as
 * the anchor of the download log (an audit trail) and of usage reports; the
 * audit log entry keeps what the recording was.  S3 down -> 503 and the row
 * is unchanged.
 */
#include "http/http.h"
#include "store/db.h"
#include "store/db_row.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "recordings/recordings.h"
#include "s3/s3.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum nc_err api_recording_start(struct req *r, struct nc_error *err)
{
	static const char *const layouts[] = { "grid", "speaker", "single-speaker", NULL };
	static const char *const resolutions[] = { "720p", "1080p", NULL };
	struct rec_start_opts o = { .layout = "speaker", .resolution = "720p" };
	long long days = req_cfg(r)->recording_retention_days;
	json_t *body = req_body(r), *out = NULL;

	if (jv_enum(body, "layout", 0, layouts, &o.layout, err) < 0 ||
	    jv_enum(body, "resolution", 0, resolutions, &o.resolution, err) < 0 ||
	    jv_bool(body, "audioOnly", 0, &o.audio_only, err) < 0 ||
	    jv_int(body, "retentionDays", 0, 0, 3650, &days, err) < 0)
		return err->code;
	o.retention_days = (int)days;
	if (recordings_start(req_worker(r), req_user(r), req_param(r, "id"), &o, req_id(r), &out, err) !=
	    NC_OK)
		return err->code;
	resp_json(r, 201, out);
	return NC_OK;
}

static enum nc_err api_recording_stop(struct req *r, struct nc_error *err)
{
	json_t *out = NULL;

	if (recordings_stop(req_worker(r), req_user(r), req_param(r, "id"), req_id(r), &out, err) != NC_OK)
		return err->code;
	resp_json(r, 200, out);
	return NC_OK;
}

/*
 * The caller takes part in the recording's call: $2 is their user id.  The
 * recording predicate every non-admin read repeats (defence in depth beside
 * the row-level security it also runs under).
 */
#define PARTICIPANT_PRED(call_col) \
	" EXISTS (SELECT 1 FROM nchat_call_participants p WHERE p.call_id = " call_col \
	" AND p.user_id = $2::uuid AND p.status <> 'removed')"

static bool is_admin(const struct req *r)
{
	return (req_user(r)->roles & ROLE_ADMIN) != 0;
}

static enum nc_err api_call_recordings(struct req *r, struct nc_error *err)
{
	/*
	 * One statement: a row per recording, one row of NULLs when the caller
	 * may see the call's recordings but there are none, no row when they
	 * may not (404).
	 */
	static const char user_sql[] =
		"SELECT " REC_COLS " FROM"
		" (SELECT 1 FROM nchat_call_participants p WHERE p.call_id = $1"
		"   AND p.user_id = $2::uuid AND p.status <> 'removed') me"
		" LEFT JOIN LATERAL (SELECT * FROM nchat_call_recordings x"
		"   WHERE x.call_id = $1 AND x.status <> 'deleted'"
		"   ORDER BY x.created_at DESC, x.id DESC LIMIT 200) r ON true"
		" ORDER BY r.created_at DESC, r.id DESC";
	static const char admin_sql[] =
		"SELECT " REC_COLS " FROM nchat_calls c"
		" LEFT JOIN LATERAL (SELECT * FROM nchat_call_recordings x"
		"   WHERE x.call_id = c.id AND x.status <> 'deleted'"
		"   ORDER BY x.created_at DESC, x.id DESC LIMIT 200) r ON true"
		" WHERE c.id = $1 ORDER BY r.created_at DESC, r.id DESC";
	const char *p[2] = { req_param(r, "id"), req_user(r)->user_id };
	struct db_conn *db = &req_worker(r)->db;
	PGresult *res;
	json_t *items;

	if (is_admin(r))
		res = db_exec_service(db, admin_sql, 1, p, err);
	else
		res = db_exec_user(db, req_user(r)->user_id, user_sql, 2, p, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "call not found");
	}
	items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (!row_is_null(res, i, "id"))
			json_array_append_new(items, recordings_row_json(res, i));
	PQclear(res);
	resp_json(r, 200, json_pack("{s:o}", "recordings", items));
	return NC_OK;
}

/*
 * Read one recording the caller may see, as JSON; NULL with err (404 when
 * they may not, or it is deleted).  Participants: as the user, predicate
 * and row-level security; admins: as the service, "not deleted".  The id
 * is a UUID (the route's prologue checked it).
 */
static json_t *load_visible(struct req *r, const char *rec_id, struct nc_error *err)
{
	static const char user_sql[] =
		"SELECT " REC_COLS " FROM nchat_call_recordings r"
		" WHERE r.id = $1 AND r.status <> 'deleted' AND" PARTICIPANT_PRED("r.call_id");
	static const char admin_sql[] =
		"SELECT " REC_COLS " FROM nchat_call_recordings r"
		" WHERE r.id = $1 AND r.status <> 'deleted'";
	const char *p[2] = { rec_id, req_user(r)->user_id };
	struct db_conn *db = &req_worker(r)->db;
	PGresult *res;
	json_t *row = NULL;

	if (is_admin(r))
		res = db_exec_service(db, admin_sql, 1, p, err);
	else
		res = db_exec_user(db, req_user(r)->user_id, user_sql, 2, p, err);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1)
		row = recordings_row_json(res, 0);
	else
		err_set(err, NC_ENOTFOUND, "recording not found");
	PQclear(res);
	return row;
}

/*
 * A presigned download URL (and its expiry) into row.  The download is on
 * record before the URL leaves the service, written only if the caller may
 * still see the completed recording (the same predicate again, as the
 * service: one statement, one round trip); no row, no URL.
 */
static enum nc_err add_download_url(struct req *r, json_t *row, const char *key,
				    struct nc_error *err)
{
	const char *rec_id = req_param(r, "id");
	const char *p[3] = { rec_id, req_user(r)->user_id, is_admin(r) ? "true" : "false" };
	char expires[32];
	char *url = s3_presign_get(req_cfg(r), key, req_cfg(r)->s3_presign_ttl_s, now_unix());
	PGresult *res;
	int n;

	if (url == NULL)
		return err_set(err, NC_ESTORAGE, "recording storage is not configured");
	res = db_exec_service(&req_worker(r)->db,
			      "INSERT INTO nchat_recording_downloads (recording_id, user_id)"
			      " SELECT r.id, (SELECT id FROM nchat_users WHERE id = $2::uuid)"
			      " FROM nchat_call_recordings r"
			      " WHERE r.id = $1 AND r.status = 'completed'"
			      " AND ($3::boolean OR" PARTICIPANT_PRED("r.call_id") ")"
			      " RETURNING id",
			      3, p, err);
	if (res == NULL) {
		free(url);
		return err->code;
	}
	n = PQntuples(res);
	PQclear(res);
	if (n != 1) {
		free(url);
		return err_set(err, NC_ENOTFOUND, "recording not found");
	}
	format_rfc3339(now_unix() + req_cfg(r)->s3_presign_ttl_s, expires, sizeof expires);
	json_object_set_new(row, "downloadUrl", json_string(url));
	json_object_set_new(row, "downloadUrlExpiresAt", json_string(expires));
	free(url);
	return NC_OK;
}

static enum nc_err api_recording_get(struct req *r, struct nc_error *err)
{
	json_t *row = load_visible(r, req_param(r, "id"), err);
	const char *status, *key;

	if (row == NULL)
		return err->code;
	status = json_string_value(json_object_get(row, "status"));
	key = json_string_value(json_object_get(row, "objectKey"));
	if (strcmp(status, "completed") == 0 && key != NULL &&
	    json_is_null(json_object_get(row, "deletedAt")) &&
	    add_download_url(r, row, key, err) != NC_OK) {
		json_decref(row);
		return err->code;
	}
	resp_json(r, 200, row);
	return NC_OK;
}

/*
 * The row for a privileged action, read as the service, with the call's
 * initiator.  Non-admins who cannot see the call get 404, those who can but
 * are not allowed 403.
 */
static PGresult *load_for_action(struct req *r, const char *rec_id, bool initiator_ok,
				 struct nc_error *err)
{
	const char *p[1] = { rec_id };
	PGresult *res;
	const char *initiator;
	json_t *vis;

	/* 404 for whoever may not see it (deleted included, admins too). */
	vis = load_visible(r, rec_id, err);
	if (vis == NULL)
		return NULL;
	json_decref(vis);
	res = db_exec_service(&req_worker(r)->db,
			      "SELECT r.id, r.call_id, r.status, r.object_key, r.legal_hold,"
			      " c.initiator_id::text AS initiator_id, r.livekit_egress_id,"
			      " r.started_by, r.created_at, r.file_size_bytes, r.duration_seconds"
			      " FROM nchat_call_recordings r JOIN nchat_calls c ON c.id = r.call_id"
			      " WHERE r.id = $1 AND r.status <> 'deleted'",
			      1, p, err);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		err_set(err, NC_ENOTFOUND, "recording not found");
		return NULL;
	}
	initiator = row_text(res, 0, "initiator_id");
	if (!is_admin(r) &&
	    !(initiator_ok && initiator != NULL && strcmp(initiator, req_user(r)->user_id) == 0)) {
		PQclear(res);
		err_set(err, NC_EFORBIDDEN, "you may not do this to this recording");
		return NULL;
	}
	return res;
}

/* 409 while the recording is in progress or on legal hold. */
static enum nc_err check_deletable(const PGresult *row, struct nc_error *err)
{
	const char *status = row_text(row, 0, "status");

	if (strcmp(status, "starting") == 0 || strcmp(status, "active") == 0 ||
	    strcmp(status, "ending") == 0)
		return err_set(err, NC_ECONFLICT, "the recording is still in progress; stop it first");
	if (row_bool(row, 0, "legal_hold", false))
		return err_set(err, NC_ECONFLICT, "the recording is under legal hold");
	return NC_OK;
}

/* The S3 object goes first; 404 = already gone = fine.  No key: nothing to do. */
static enum nc_err delete_object(struct req *r, const char *key, struct nc_error *err)
{
	struct nc_error e2 = { 0 };
	enum nc_err e;

	if (key == NULL)
		return NC_OK;
	if (req_worker(r)->s3 == NULL)
		return err_set(err, NC_ESTORAGE, "recording storage is not configured");
	e = s3_delete(req_worker(r)->s3, key, &e2);
	if (e != NC_OK && e != NC_ENOTFOUND) {
		*err = e2;
		return e;
	}
	return NC_OK;
}

/* Row -> deleted with its audit entry, in one service transaction. */
static enum nc_err mark_deleted(struct req *r, const char *rec_id, const PGresult *row,
				struct nc_error *err)
{
	const char *p[3] = { rec_id, is_admin(r) ? "true" : "false", req_user(r)->user_id };
	struct db_conn *db = &req_worker(r)->db;
	PGresult *res;
	json_t *details;
	int64_t n;
	enum nc_err e;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	/* The rights once more in the statement itself: admin or the initiator. */
	res = db_exec(db,
		      "UPDATE nchat_call_recordings r SET status = 'deleted', deleted_at = now(),"
		      " file_url = NULL WHERE r.id = $1 AND r.status <> 'deleted' AND NOT r.legal_hold"
		      " AND ($2::boolean OR EXISTS (SELECT 1 FROM nchat_calls c"
		      "  WHERE c.id = r.call_id AND c.initiator_id = $3::uuid))",
		      3, p, err);
	if (res == NULL)
		return err->code;
	n = row_affected(res);
	PQclear(res);
	if (n != 1)
		return err_set(err, NC_ECONFLICT, "the recording changed meanwhile; try again");
	/* What audit needs once the row is hidden: what the recording was. */
	details = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "callId",
			    row_text(row, 0, "call_id"), "objectKey", row_text(row, 0, "object_key"),
			    "egressId", row_text(row, 0, "livekit_egress_id"), "startedBy",
			    row_text(row, 0, "started_by"), "createdAt", row_text(row, 0, "created_at"),
			    "fileSizeBytes", row_text(row, 0, "file_size_bytes"), "durationSeconds",
			    row_text(row, 0, "duration_seconds"));
	e = audit_log(db, req_user(r), "recording.delete", "recording", rec_id, details,
		      req_id(r), err);
	json_decref(details);
	if (e != NC_OK)
		return e;
	return db_commit(db, err);
}

static enum nc_err api_recording_delete(struct req *r, struct nc_error *err)
{
	const char *rec_id = req_param(r, "id");
	PGresult *row = load_for_action(r, rec_id, true, err);
	enum nc_err rc;

	if (row == NULL)
		return err->code;
	rc = check_deletable(row, err);
	if (rc == NC_OK)
		rc = delete_object(r, row_text(row, 0, "object_key"), err);
	if (rc == NC_OK)
		rc = mark_deleted(r, rec_id, row, err);
	PQclear(row);
	if (rc == NC_OK)
		resp_json(r, 204, NULL);
	return rc;
}

/* Admins only (the route says so): {"hold": true|false}. */
static enum nc_err api_recording_legal_hold(struct req *r, struct nc_error *err)
{
	const char *rec_id = req_param(r, "id");
	struct db_conn *db = &req_worker(r)->db;
	json_t *details, *row;
	bool hold = false;
	const char *p[2];
	PGresult *res;
	enum nc_err e;

	if (jv_bool(req_body(r), "hold", JV_REQUIRED, &hold, err) < 0)
		return err->code;
	p[0] = rec_id;
	p[1] = hold ? "true" : "false";
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	res = db_exec(db,
		      "UPDATE nchat_call_recordings SET legal_hold = $2::boolean"
		      " WHERE id = $1 AND status <> 'deleted' RETURNING id",
		      2, p, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		/* Deleted is gone for everyone, as GET says (the row stays for audit). */
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "recording not found");
	}
	PQclear(res);
	details = json_pack("{s:b}", "hold", hold);
	e = audit_log(db, req_user(r), "recording.legal_hold", "recording", rec_id, details,
		      req_id(r), err);
	json_decref(details);
	if (e != NC_OK)
		return e;
	res = db_exec(db, "SELECT " REC_COLS " FROM nchat_call_recordings r WHERE r.id = $1", 1, p,
		      err);
	if (res == NULL)
		return err->code;
	row = recordings_row_json(res, 0);
	PQclear(res);
	if (db_commit(db, err) != NC_OK) {
		json_decref(row);
		return err->code;
	}
	resp_json(r, 200, row);
	return NC_OK;
}

/*
 * Start parses its body before anything else and only then checks the id
 * (after "is storage configured"), so it takes no ROUTE_UUID_PARAMS: the
 * order of its answers stays as it was.
 */
const struct route recordings_routes[] = {
	{ RM_POST, "/api/calls/{id}/recording/start", api_recording_start,
	  ROUTE_AUTH | ROUTE_JSON, NULL, NULL },
	{ RM_POST, "/api/calls/{id}/recording/stop", api_recording_stop,
	  ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL },
	{ RM_GET, "/api/calls/{id}/recordings", api_call_recordings,
	  ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL },
	{ RM_GET, "/api/recordings/{id}", api_recording_get,
	  ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL },
	{ RM_DELETE, "/api/recordings/{id}", api_recording_delete,
	  ROUTE_AUTH | ROUTE_UUID_PARAMS, NULL, NULL },
	{ RM_POST, "/api/recordings/{id}/legal-hold", api_recording_legal_hold,
	  ROUTE_AUTH | ROUTE_ADMIN | ROUTE_UUID_PARAMS | ROUTE_JSON, NULL, NULL },
	{ 0, NULL, NULL, 0, NULL, NULL },
};
