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
#include "core/uuid.h"
#include "store/db.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "core/log.h"
#include "recordings/recordings.h"
#include "s3/s3.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void api_recording_start(struct req *r)
{
	static const char *const layouts[] = { "grid", "speaker", "single-speaker", NULL };
	static const char *const resolutions[] = { "720p", "1080p", NULL };
	struct rec_start_opts o = { .layout = "speaker", .resolution = "720p" };
	struct nc_error err;
	long long days = r->cfg->recording_retention_days;
	json_t *body = req_json(r, true), *out = NULL;

	if (body == NULL)
		return;
	if (jv_enum(body, "layout", 0, layouts, &o.layout, &err) < 0 ||
	    jv_enum(body, "resolution", 0, resolutions, &o.resolution, &err) < 0 ||
	    jv_bool(body, "audioOnly", 0, &o.audio_only, &err) < 0 ||
	    jv_int(body, "retentionDays", 0, 0, 3650, &days, &err) < 0) {
		json_decref(body);
		resp_nc_error(r, &err);
		return;
	}
	o.retention_days = (int)days;
	if (recordings_start(r->w, &r->user, req_param(r, "id"), &o, r->request_id, &out, &err) ==
	    NC_OK)
		resp_json(r, 201, out);
	else
		resp_nc_error(r, &err);
	json_decref(body);
}

static void api_recording_stop(struct req *r)
{
	struct nc_error err;
	json_t *out = NULL;

	if (recordings_stop(r->w, &r->user, req_param(r, "id"), r->request_id, &out, &err) == NC_OK)
		resp_json(r, 200, out);
	else
		resp_nc_error(r, &err);
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
	return (r->user.roles & ROLE_ADMIN) != 0;
}

static void api_call_recordings(struct req *r)
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
	const char *call_id = req_param(r, "id");
	const char *p[2] = { call_id, r->user.user_id };
	struct db_conn *db = &r->w->db;
	struct nc_error err;
	PGresult *res;
	json_t *items;

	if (!is_uuid(call_id)) {
		resp_error(r, NC_EBADREQ, "call id must be a UUID");
		return;
	}
	if (is_admin(r))
		res = db_exec_service(db, admin_sql, 1, p, &err);
	else
		res = db_exec_user(db, r->user.user_id, user_sql, 2, p, &err);
	if (res == NULL) {
		resp_nc_error(r, &err);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		resp_error(r, NC_ENOTFOUND, "call not found");
		return;
	}
	items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (db_val(res, i, RC_ID) != NULL)
			json_array_append_new(items, recordings_row_json(res, i));
	PQclear(res);
	resp_json(r, 200, json_pack("{s:o}", "recordings", items));
}

/*
 * Read one recording the caller may see, as JSON; NULL with err (404 when
 * they may not, or it is deleted).  Participants: as the user, predicate
 * and row-level security; admins: as the service, "not deleted".
 */
static json_t *load_visible(struct req *r, const char *rec_id, struct nc_error *err)
{
	static const char user_sql[] =
		"SELECT " REC_COLS " FROM nchat_call_recordings r"
		" WHERE r.id = $1 AND r.status <> 'deleted' AND" PARTICIPANT_PRED("r.call_id");
	static const char admin_sql[] =
		"SELECT " REC_COLS " FROM nchat_call_recordings r"
		" WHERE r.id = $1 AND r.status <> 'deleted'";
	const char *p[2] = { rec_id, r->user.user_id };
	struct db_conn *db = &r->w->db;
	PGresult *res;
	json_t *row = NULL;

	if (!is_uuid(rec_id)) {
		err_set(err, NC_EBADREQ, "recording id must be a UUID");
		return NULL;
	}
	if (is_admin(r))
		res = db_exec_service(db, admin_sql, 1, p, err);
	else
		res = db_exec_user(db, r->user.user_id, user_sql, 2, p, err);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1)
		row = recordings_row_json(res, 0);
	else
		err_set(err, NC_ENOTFOUND, "recording not found");
	PQclear(res);
	return row;
}

static void api_recording_get(struct req *r)
{
	const char *rec_id = req_param(r, "id");
	struct db_conn *db = &r->w->db;
	struct nc_error err;
	json_t *row = load_visible(r, rec_id, &err);
	const char *status, *key;
	char *url;
	char expires[32];
	PGresult *res;
	const char *p[3] = { rec_id, r->user.user_id, is_admin(r) ? "true" : "false" };

	if (row == NULL) {
		resp_nc_error(r, &err);
		return;
	}
	status = json_string_value(json_object_get(row, "status"));
	key = json_string_value(json_object_get(row, "objectKey"));
	if (strcmp(status, "completed") != 0 || key == NULL ||
	    !json_is_null(json_object_get(row, "deletedAt"))) {
		resp_json(r, 200, row);
		return;
	}
	url = s3_presign_get(r->cfg, key, r->cfg->s3_presign_ttl_s, now_unix());
	if (url == NULL) {
		json_decref(row);
		resp_error(r, NC_ESTORAGE, "recording storage is not configured");
		return;
	}
	/*
	 * The download is on record before the URL leaves the service, written
	 * only if the caller may still see the completed recording (the same
	 * predicate again, as the service: one statement, one round trip).
	 */
	res = db_exec_service(db,
			      "INSERT INTO nchat_recording_downloads (recording_id, user_id)"
			      " SELECT r.id, (SELECT id FROM nchat_users WHERE id = $2::uuid)"
			      " FROM nchat_call_recordings r"
			      " WHERE r.id = $1 AND r.status = 'completed'"
			      " AND ($3::boolean OR" PARTICIPANT_PRED("r.call_id") ")"
			      " RETURNING id",
			      3, p, &err);
	if (res == NULL || PQntuples(res) != 1) {
		if (res != NULL)
			err_set(&err, NC_ENOTFOUND, "recording not found");
		PQclear(res);
		free(url);
		json_decref(row);
		resp_nc_error(r, &err);
		return;
	}
	PQclear(res);
	format_rfc3339(now_unix() + r->cfg->s3_presign_ttl_s, expires, sizeof expires);
	json_object_set_new(row, "downloadUrl", json_string(url));
	json_object_set_new(row, "downloadUrlExpiresAt", json_string(expires));
	free(url);
	resp_json(r, 200, row);
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
	struct db_conn *db = &r->w->db;
	bool admin = is_admin(r);
	PGresult *res;
	json_t *vis;

	/* 404 for whoever may not see it (deleted included, admins too). */
	vis = load_visible(r, rec_id, err);
	if (vis == NULL)
		return NULL;
	json_decref(vis);
	res = db_exec_service(db,
			      "SELECT r.id, r.call_id, r.status, r.object_key, r.legal_hold,"
			      " c.initiator_id::text, r.livekit_egress_id, r.started_by,"
			      " r.created_at, r.file_size_bytes, r.duration_seconds"
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
	if (!admin && !(initiator_ok && db_val(res, 0, 5) &&
			strcmp(PQgetvalue(res, 0, 5), r->user.user_id) == 0)) {
		PQclear(res);
		err_set(err, NC_EFORBIDDEN, "you may not do this to this recording");
		return NULL;
	}
	return res;
}

static void api_recording_delete(struct req *r)
{
	const char *rec_id = req_param(r, "id");
	struct db_conn *db = &r->w->db;
	struct nc_error err;
	PGresult *row = load_for_action(r, rec_id, true, &err), *res;
	const char *status, *key;
	const char *p[3] = { rec_id, is_admin(r) ? "true" : "false", r->user.user_id };
	json_t *details;
	enum nc_err e;

	if (row == NULL) {
		resp_nc_error(r, &err);
		return;
	}
	status = PQgetvalue(row, 0, 2);
	key = db_val(row, 0, 3);
	if (strcmp(status, "starting") == 0 || strcmp(status, "active") == 0 ||
	    strcmp(status, "ending") == 0) {
		PQclear(row);
		resp_error(r, NC_ECONFLICT, "the recording is still in progress; stop it first");
		return;
	}
	if (strcmp(PQgetvalue(row, 0, 4), "t") == 0) {
		PQclear(row);
		resp_error(r, NC_ECONFLICT, "the recording is under legal hold");
		return;
	}
	if (key != NULL) {
		if (r->w->s3 == NULL) {
			PQclear(row);
			resp_error(r, NC_ESTORAGE, "recording storage is not configured");
			return;
		}
		e = s3_delete(r->w->s3, key, &err);
		if (e != NC_OK && e != NC_ENOTFOUND) {
			PQclear(row);
			resp_nc_error(r, &err);
			return;
		}
	}
	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	/* The rights once more in the statement itself: admin or the initiator. */
	res = db_exec(db,
		      "UPDATE nchat_call_recordings r SET status = 'deleted', deleted_at = now(),"
		      " file_url = NULL WHERE r.id = $1 AND r.status <> 'deleted' AND NOT r.legal_hold"
		      " AND ($2::boolean OR EXISTS (SELECT 1 FROM nchat_calls c"
		      "  WHERE c.id = r.call_id AND c.initiator_id = $3::uuid))",
		      3, p, &err);
	if (res == NULL)
		goto fail;
	if (strcmp(PQcmdTuples(res), "1") != 0) {
		PQclear(res);
		err_set(&err, NC_ECONFLICT, "the recording changed meanwhile; try again");
		goto fail;
	}
	PQclear(res);
	/* What audit needs once the row is hidden: what the recording was. */
	details = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "callId",
			    PQgetvalue(row, 0, 1), "objectKey", key, "egressId", db_val(row, 0, 6),
			    "startedBy", db_val(row, 0, 7), "createdAt", db_val(row, 0, 8),
			    "fileSizeBytes", db_val(row, 0, 9), "durationSeconds", db_val(row, 0, 10));
	e = audit_log(db, &r->user, "recording.delete", "recording", rec_id, details,
		      r->request_id, &err);
	json_decref(details);
	if (e != NC_OK || db_commit(db, &err) != NC_OK)
		goto fail;
	PQclear(row);
	resp_json(r, 204, NULL);
	return;
fail:
	db_rollback(db);
	PQclear(row);
	resp_nc_error(r, &err);
}

static void api_recording_legal_hold(struct req *r)
{
	const char *rec_id = req_param(r, "id");
	struct db_conn *db = &r->w->db;
	struct nc_error err;
	json_t *body, *details, *row = NULL;
	bool hold = false;
	const char *p[2];
	PGresult *res;
	enum nc_err e;

	if (!(r->user.roles & ROLE_ADMIN)) {
		resp_error(r, NC_EFORBIDDEN, "only admins may set a legal hold");
		return;
	}
	if (!is_uuid(rec_id)) {
		resp_error(r, NC_EBADREQ, "recording id must be a UUID");
		return;
	}
	body = req_json(r, false);
	if (body == NULL)
		return;
	if (jv_bool(body, "hold", JV_REQUIRED, &hold, &err) < 0) {
		json_decref(body);
		resp_nc_error(r, &err);
		return;
	}
	json_decref(body);
	p[0] = rec_id;
	p[1] = hold ? "true" : "false";
	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	res = db_exec(db,
		      "UPDATE nchat_call_recordings SET legal_hold = $2::boolean"
		      " WHERE id = $1 AND status <> 'deleted' RETURNING id",
		      2, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		/* Deleted is gone for everyone, as GET says (the row stays for audit). */
		PQclear(res);
		err_set(&err, NC_ENOTFOUND, "recording not found");
		goto fail;
	}
	PQclear(res);
	details = json_pack("{s:b}", "hold", hold);
	e = audit_log(db, &r->user, "recording.legal_hold", "recording", rec_id, details,
		      r->request_id, &err);
	json_decref(details);
	if (e != NC_OK)
		goto fail;
	res = db_exec(db, "SELECT " REC_COLS " FROM nchat_call_recordings r WHERE r.id = $1", 1, p,
		      &err);
	if (res == NULL)
		goto fail;
	row = recordings_row_json(res, 0);
	PQclear(res);
	if (db_commit(db, &err) != NC_OK) {
		json_decref(row);
		goto fail;
	}
	resp_json(r, 200, row);
	return;
fail:
	db_rollback(db);
	resp_nc_error(r, &err);
}

const struct route recordings_routes[] = {
	{ RM_POST, "/api/calls/{id}/recording/start", api_recording_start, ROUTE_AUTH, NULL },
	{ RM_POST, "/api/calls/{id}/recording/stop", api_recording_stop, ROUTE_AUTH, NULL },
	{ RM_GET, "/api/calls/{id}/recordings", api_call_recordings, ROUTE_AUTH, NULL },
	{ RM_GET, "/api/recordings/{id}", api_recording_get, ROUTE_AUTH, NULL },
	{ RM_DELETE, "/api/recordings/{id}", api_recording_delete, ROUTE_AUTH, NULL },
	{ RM_POST, "/api/recordings/{id}/legal-hold", api_recording_legal_hold, ROUTE_AUTH, NULL },
	{ 0, NULL, NULL, 0, NULL },
};
