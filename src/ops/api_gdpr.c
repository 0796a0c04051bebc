/*
 * api_gdpr.c - the data-subject endpoints (see gdpr.h for what erasure
 * touches and why the stream counters stay).
 *
 *   GET    /api/users/me/export   the caller's data as one JSON document
 *   DELETE /api/users/{id}/data   erase / pseudonymise (self or admin)
 *
 * Both run as the service after the C code has authorised the caller: row
 * level security in user context would hide rows that are still the user's
 * own (their viewer session of a stream they can no longer see, their audit
 * entries) and never lets a user delete anything.  Every query is filtered
 * by the one user id, so nothing of another user can leak into an export.
 */
#include "ops/ops.h"
#include "core/uuid.h"
#include "realtime/events.h"
#include "ops/gdpr.h"
#include "core/log.h"
#include "store/db_row.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One query per section, each a JSON array of the user's rows ($1 = user id).
 * Other people's ids are left out on purpose: the call rows say whether the
 * caller initiated the call, not who did; a stream lists its numbers, not
 * its viewers.  The stream key hash is a credential, not personal data.
 * Counters (a stream's totals, a session's sent_*) are the row's value plus
 * what is still pending for it (sql/0013), exact in the statement's snapshot.
 */
#define EXPORT_CALL_PARTICIPATIONS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', p.id, 'call_id', p.call_id, 'role', p.role, 'status', p.status," \
	" 'invited_at', p.invited_at, 'joined_at', p.joined_at, 'left_at', p.left_at," \
	" 'total_duration_seconds', p.total_duration_seconds," \
	" 'is_audio_enabled', p.is_audio_enabled, 'is_video_enabled', p.is_video_enabled," \
	" 'is_screen_sharing', p.is_screen_sharing," \
	" 'call', json_build_object('id', c.id, 'call_type', c.call_type, 'status', c.status," \
	"  'channel_id', c.channel_id, 'is_group_call', c.is_group_call," \
	"  'initiated_by_me', c.initiator_id IS NOT DISTINCT FROM p.user_id," \
	"  'initiated_at', c.initiated_at, 'started_at', c.started_at, 'ended_at', c.ended_at," \
	"  'end_reason', c.end_reason))" \
	" ORDER BY p.invited_at, p.id), '[]')" \
	" FROM nchat_call_participants p JOIN nchat_calls c ON c.id = p.call_id" \
	" WHERE p.user_id = $1"

#define EXPORT_STREAMS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', s.id, 'channel_id', s.channel_id, 'title', s.title," \
	" 'description', s.description, 'status', s.status, 'scheduled_at', s.scheduled_at," \
	" 'started_at', s.started_at, 'ended_at', s.ended_at, 'peak_viewers', s.peak_viewers," \
	" 'total_views', s.total_views + sp.views, 'unique_viewers', s.unique_viewers + sp.uniques," \
	" 'total_chat_messages', s.total_chat_messages + sp.chat," \
	" 'total_reactions', s.total_reactions + sp.reactions," \
	" 'created_at', s.created_at) ORDER BY s.created_at, s.id), '[]')" \
	" FROM nchat_streams s CROSS JOIN LATERAL nchat_rtc_stream_pending(s.id) sp" \
	" WHERE s.broadcaster_id = $1"

#define EXPORT_STREAM_CHAT_MESSAGES \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', m.id, 'stream_id', m.stream_id, 'content', m.content," \
	" 'is_pinned', m.is_pinned, 'is_deleted', m.is_deleted, 'deleted_at', m.deleted_at," \
	" 'created_at', m.created_at) ORDER BY m.created_at, m.id), '[]')" \
	" FROM nchat_stream_chat_messages m WHERE m.user_id = $1"

#define EXPORT_STREAM_REACTIONS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', x.id, 'stream_id', x.stream_id, 'reaction_type', x.reaction_type," \
	" 'created_at', x.created_at) ORDER BY x.created_at, x.id), '[]')" \
	" FROM nchat_stream_reactions x WHERE x.user_id = $1"

#define EXPORT_STREAM_VIEWER_SESSIONS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', v.id, 'stream_id', v.stream_id, 'viewer_session_id', v.viewer_session_id," \
	" 'joined_at', v.joined_at, 'last_heartbeat_at', v.last_heartbeat_at," \
	" 'left_at', v.left_at, 'watch_duration_seconds', v.watch_duration_seconds," \
	" 'sent_chat_messages', v.sent_chat_messages + vp.chat," \
	" 'sent_reactions', v.sent_reactions + vp.reactions)" \
	" ORDER BY v.joined_at, v.id), '[]')" \
	" FROM nchat_stream_viewers v CROSS JOIN LATERAL nchat_rtc_viewer_pending(v.stream_id, v.id) vp" \
	" WHERE v.user_id = $1"

#define EXPORT_CONNECTION_STATS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', w.id, 'call_id', w.call_id, 'ice_connection_state', w.ice_connection_state," \
	" 'local_candidate_type', w.local_candidate_type," \
	" 'remote_candidate_type', w.remote_candidate_type, 'turn_used', w.turn_used," \
	" 'rtt_ms', w.rtt_ms, 'jitter_ms', w.jitter_ms, 'packet_loss_pct', w.packet_loss_pct," \
	" 'bitrate_kbps', w.bitrate_kbps, 'quality', w.quality, 'created_at', w.created_at)" \
	" ORDER BY w.created_at, w.id), '[]')" \
	" FROM nchat_webrtc_connections w WHERE w.user_id = $1"

#define EXPORT_RECORDING_DOWNLOADS \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', d.id, 'recording_id', d.recording_id, 'call_id', r.call_id," \
	" 'created_at', d.created_at) ORDER BY d.created_at, d.id), '[]')" \
	" FROM nchat_recording_downloads d JOIN nchat_call_recordings r ON r.id = d.recording_id" \
	" WHERE d.user_id = $1"

#define EXPORT_AUDIT_LOG \
	"SELECT COALESCE(json_agg(json_build_object(" \
	" 'id', a.id, 'action', a.action, 'actor_role', a.actor_role," \
	" 'target_type', a.target_type, 'target_id', a.target_id, 'details', a.details," \
	" 'request_id', a.request_id, 'created_at', a.created_at)" \
	" ORDER BY a.created_at, a.id), '[]')" \
	" FROM nchat_rtc_audit_log a WHERE a.actor_id = $1"

/*
 * All sections in ONE statement, so the document is one consistent snapshot
 * (a single statement sees a single snapshot even under READ COMMITTED).
 */
static const char export_sql[] =
	"SELECT json_build_object("
	" 'call_participations', (" EXPORT_CALL_PARTICIPATIONS ")"
	" ,'streams', (" EXPORT_STREAMS ")"
	" ,'stream_chat_messages', (" EXPORT_STREAM_CHAT_MESSAGES ")"
	" ,'stream_reactions', (" EXPORT_STREAM_REACTIONS ")"
	" ,'stream_viewer_sessions', (" EXPORT_STREAM_VIEWER_SESSIONS ")"
	" ,'connection_stats', (" EXPORT_CONNECTION_STATS ")"
	" ,'recording_downloads', (" EXPORT_RECORDING_DOWNLOADS ")"
	" ,'audit_log', (" EXPORT_AUDIT_LOG ")"
	")::text AS export";

/*
 * A database failure is the server's problem whatever the SQLSTATE: a
 * constraint tripping here is not the caller's fault, so never a 400/409.
 * Logs what the database said; returns the code dispatch answers with.
 */
static enum nc_err db_failed(struct nc_error *err, const char *what)
{
	log_error("gdpr: %s failed: %s", what, err->msg);
	if (err->code != NC_EUNAVAILABLE)
		return err_set(err, NC_EINTERNAL, "%s failed", what);
	return err->code;
}

/* One statement, so one snapshot, in a read-only service transaction of its own. */
static enum nc_err api_gdpr_export(struct req *r, struct nc_error *err)
{
	const char *params[1] = {req_user(r)->user_id};
	char now[32];
	json_t *out, *sections;
	PGresult *res = db_exec_service(&req_worker(r)->db, export_sql, 1, params, err);

	if (res == NULL)
		return db_failed(err, "export");
	sections = PQntuples(res) == 1 ? json_loads(row_text(res, 0, "export"), 0, NULL) : NULL;
	PQclear(res);
	if (!json_is_object(sections)) {
		json_decref(sections);
		err_set(err, NC_EINTERNAL, "export is not a JSON object");
		return db_failed(err, "export");
	}
	format_rfc3339(now_unix(), now, sizeof(now));
	out = json_pack("{s:s, s:s}", "user_id", req_user(r)->user_id, "exported_at", now);
	if (out == NULL || json_object_update(out, sections) != 0)
		fatal("out of memory (export)");
	json_decref(sections);
	resp_header(r, "Cache-Control", "no-store");
	resp_json(r, 200, out);
	return NC_OK;
}

/* One erasure statement: its key in the response and the SQL ($1 = user id). */
struct erase_step {
	const char *group;  /* "erased" or "pseudonymised" */
	const char *key;
	const char *sql;
};

/*
 * Order matters only for reactions: those linked to one of the user's viewer
 * sessions go too (even when sent without a user id), so they are deleted
 * before the sessions whose ids identify them.  Chat messages are deleted,
 * not blanked: the content is the personal data, and an empty row would
 * still say who wrote when (content must be 1..2000 characters anyway).
 * The recording download log is not the user's content but an audit trail
 * of access to other people's recordings: its rows stay, without the user.
 */
static const struct erase_step erase_steps[] = {
	{"erased", "stream_chat_messages",
	 "DELETE FROM nchat_stream_chat_messages WHERE user_id = $1"},
	{"erased", "stream_reactions",
	 "DELETE FROM nchat_stream_reactions WHERE user_id = $1"
	 " OR viewer_id IN (SELECT id FROM nchat_stream_viewers WHERE user_id = $1)"},
	{"erased", "stream_viewer_sessions",
	 "DELETE FROM nchat_stream_viewers WHERE user_id = $1"},
	{"erased", "connection_stats",
	 "DELETE FROM nchat_webrtc_connections WHERE user_id = $1"
	 " OR participant_id IN (SELECT id FROM nchat_call_participants WHERE user_id = $1)"},
	{"pseudonymised", "recording_downloads",
	 "UPDATE nchat_recording_downloads SET user_id = NULL, pseudonymised_at = now()"
	 " WHERE user_id = $1"},
	{"pseudonymised", "call_participations",
	 "UPDATE nchat_call_participants SET user_id = NULL, livekit_identity = NULL,"
	 " livekit_participant_id = NULL, pseudonymised_at = now() WHERE user_id = $1"},
	{"pseudonymised", "calls_initiated",
	 "UPDATE nchat_calls SET initiator_id = NULL WHERE initiator_id = $1"},
};

/*
 * Every erase step and the audit row in one service transaction, committed;
 * out gets {user_id, erased: {...}, pseudonymised: {...}}.  404 when there
 * is no such user.
 */
static enum nc_err erase_user(struct req *r, const char *uid, json_t *out, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	const char *params[1] = {uid};
	json_t *details;
	PGresult *res;
	bool exists;
	enum nc_err e;

	if (db_begin_service(db, err) != NC_OK)
		return db_failed(err, "erase");
	res = db_exec(db, "SELECT 1 FROM nchat_users WHERE id = $1", 1, params, err);
	if (res == NULL)
		return db_failed(err, "erase");
	exists = PQntuples(res) == 1;
	PQclear(res);
	if (!exists)
		return err_set(err, NC_ENOTFOUND, "no such user");
	for (size_t i = 0; i < NC_ARRAY_LEN(erase_steps); i++) {
		res = db_exec(db, erase_steps[i].sql, 1, params, err);
		if (res == NULL)
			return db_failed(err, "erase");
		json_object_set_new(json_object_get(out, erase_steps[i].group), erase_steps[i].key,
				    json_integer(row_affected(res)));
		PQclear(res);
	}
	details = json_pack("{s:O, s:O}", "erased", json_object_get(out, "erased"), "pseudonymised",
			    json_object_get(out, "pseudonymised"));
	if (details == NULL)
		fatal("out of memory (erase)");
	e = audit_log(db, req_user(r), "user.erase", "user", uid, details, req_id(r), err);
	json_decref(details);
	if (e != NC_OK || db_commit(db, err) != NC_OK)
		return db_failed(err, "erase");
	return NC_OK;
}

/* Self or admin; the id is a UUID (the route's prologue checked it). */
static enum nc_err api_gdpr_erase(struct req *r, struct nc_error *err)
{
	char uid[37];
	json_t *out;

	/* Canonical lower case, as principal ids are, so self is recognised. */
	uuid_lower(req_param(r, "id"), uid);
	if (strcmp(uid, req_user(r)->user_id) != 0 && !(req_user(r)->roles & ROLE_ADMIN))
		return err_set(err, NC_EFORBIDDEN,
			       "only the user themself or an admin may erase their data");
	out = json_pack("{s:s, s:{}, s:{}}", "user_id", uid, "erased", "pseudonymised");
	if (out == NULL)
		fatal("out of memory (erase)");
	if (erase_user(r, uid, out, err) != NC_OK) {
		json_decref(out);
		return err->code;
	}
	log_info("gdpr: data of user %s erased by %s", uid, req_user(r)->user_id);
	resp_json(r, 200, out);
	return NC_OK;
}

const struct route gdpr_routes[] = {
	{RM_GET, "/api/users/me/export", api_gdpr_export, ROUTE_AUTH, "gdpr.export", NULL},
	{RM_DELETE, "/api/users/{id}/data", api_gdpr_erase,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, "gdpr.erase", NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
