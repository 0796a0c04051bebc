/*
 * api_calls_host.c - host controls of a call (API.md "Calls"): end for
 * everyone, mute a participant's track, remove a participant.  The
 * initiator, an admin or a moderator may; whoever may see the call but not
 * host it gets 403, whoever may not see it 404.  LiveKit is told first
 * (outside any transaction): if it cannot be, nothing changes.
 */
#include "calls/api_calls.h"
#include "recordings/recordings.h"
#include "http/auth.h"
#include "calls/calls.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "realtime/presence.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Read the call and decide whether the caller may act as its host
 * (initiator, admin, moderator): NC_OK with no transaction left open;
 * 404 (unknown, or not visible to the caller) or 403 otherwise.
 */
static enum nc_err load_for_host(struct req *r, const char *id, struct call_row *c,
				 struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct part_row p;
	int n;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, req_user(r)->user_id, req_cfg(r)->max_room_participants, c, &p, err);
	if (n < 0)
		return err->code;
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "call not found");
	if (strcmp(c->initiator, req_user(r)->user_id) == 0 || auth_is_staff(req_user(r))) {
		db_rollback(db); /* read only: LiveKit is called outside any transaction */
		return NC_OK;
	}
	if (p.found && strcmp(p.status, "removed") == 0)
		n = 0; /* removed: sees nothing of the call */
	else
		n = p.found ? 1 : calls_db_is_channel_member(db, c->channel, req_user(r)->user_id, err);
	if (n < 0)
		return err->code;
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "call not found");
	return err_set(err, NC_EFORBIDDEN, "only the initiator, an admin or a moderator may do this");
}

/* The closing transaction of /end; *members set on success (an error leaves it open). */
static enum nc_err end_tx(struct req *r, const char *id, const char *reason, bool *already,
			  char status[16], json_t **members, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	json_t *details;
	enum nc_err rc;
	int n;

	*already = false;
	*members = NULL;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, NULL, req_cfg(r)->max_room_participants, &c, NULL, err);
	if (n < 0)
		return err->code;
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "call not found");
	if (calls_status_terminal(c.status)) {
		/* Ended meanwhile by someone else: same outcome. */
		db_rollback(db); /* nothing written */
		*already = true;
		snprintf(status, 16, "%s", c.status);
		return NC_OK;
	}
	n = calls_close_tx(req_cfg(r), db, id, "ended", reason, NULL, err);
	if (n < 0)
		return err->code;
	details = json_pack("{s:s, s:i}", "reason", reason, "participantsClosed", n);
	rc = audit_log(db, req_user(r), "call.end", "call", id, details, req_id(r), err);
	json_decref(details);
	if (rc != NC_OK)
		return rc;
	*members = calls_db_member_ids(db, id, err);
	if (*members == NULL)
		return err->code;
	if (db_commit(db, err) != NC_OK) {
		json_decref(*members);
		*members = NULL;
		return err->code;
	}
	snprintf(status, 16, "ended");
	return NC_OK;
}

static enum nc_err api_calls_end(struct req *r, struct nc_error *err)
{
	struct call_row c;
	char id[37], status[16];
	const char *reason;
	json_t *members = NULL;
	bool already;

	calls_param(r, "id", id);
	if (load_for_host(r, id, &c, err) != NC_OK)
		return err->code;
	if (calls_status_terminal(c.status)) {
		resp_json(r, 200, calls_status_body(id, c.status));
		return NC_OK;
	}
	reason = strcmp(c.initiator, req_user(r)->user_id) == 0 ? "ended_by_initiator"
							      : "ended_by_staff";
	/* LiveKit first: if it cannot be told, the call stays open and the caller retries. */
	if (calls_delete_room(req_worker(r), c.room, err) != NC_OK)
		return err->code;
	{
		struct nc_error rerr = {0};

		if (recordings_stop_for_call(req_worker(r), id, &rerr) != NC_OK)
			log_warn("calls: stopping the recording of %s failed: %s", id, rerr.msg);
	}
	if (end_tx(r, id, reason, &already, status, &members, err) != NC_OK)
		return err->code;
	resp_json(r, 200, calls_status_body(id, status));
	if (!already) {
		presence_end_call(req_worker(r), id, members);
		calls_publish(req_worker(r), members, "call.ended", id, "ended", reason);
	}
	json_decref(members);
	return NC_OK;
}

static const char *const mute_sources[] = { "microphone", "camera", "screen_share", NULL };

/* The sid of the participant's track of `source`, or NULL. */
static const char *find_track(const Livekit__ParticipantInfo *pi, const char *source)
{
	Livekit__TrackSource want = strcmp(source, "microphone") == 0 ? LIVEKIT__TRACK_SOURCE__MICROPHONE
				  : strcmp(source, "camera") == 0 ? LIVEKIT__TRACK_SOURCE__CAMERA
				  : LIVEKIT__TRACK_SOURCE__SCREEN_SHARE;

	for (size_t i = 0; i < pi->n_tracks; i++)
		if (pi->tracks[i]->source == want)
			return pi->tracks[i]->sid;
	/* A track without a source: audio is taken as the microphone, video as the camera. */
	for (size_t i = 0; i < pi->n_tracks; i++) {
		const Livekit__TrackInfo *t = pi->tracks[i];

		if (t->source != LIVEKIT__TRACK_SOURCE__UNKNOWN)
			continue;
		if ((want == LIVEKIT__TRACK_SOURCE__MICROPHONE && t->type == LIVEKIT__TRACK_TYPE__AUDIO) ||
		    (want == LIVEKIT__TRACK_SOURCE__CAMERA && t->type == LIVEKIT__TRACK_TYPE__VIDEO))
			return t->sid;
	}
	return NULL;
}

/* Is uid a participant of the call (its own short read)?  404 if not; LiveKit must be configured. */
static enum nc_err target_is_participant(struct req *r, const char *id, const char *uid,
					 struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	int n;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_has_participant(db, id, uid, err);
	if (n < 0)
		return err->code;
	db_rollback(db); /* read only */
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "user %s is not a participant of this call", uid);
	if (req_worker(r)->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	return NC_OK;
}

/* The sid of uid's `source` track from LiveKit into *sid (malloc'd). */
static enum nc_err mute_find_sid(struct req *r, const char *room, const char *uid,
				 const char *source, char **sid, struct nc_error *err)
{
	Livekit__RoomParticipantIdentity gp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__ParticipantInfo *pi;
	struct lk_status st;
	const char *found;

	gp.room = (char *)room;
	gp.identity = (char *)uid;
	pi = lk_get_participant(req_worker(r)->lk, &gp, &st);
	if (pi == NULL) {
		if (lk_status_is(&st, "not_found"))
			return err_set(err, NC_ENOTFOUND, "user %s is not connected to the call", uid);
		return lk_status_error(&st, err);
	}
	found = find_track(pi, source);
	*sid = found ? xstrdup(found) : NULL;
	protobuf_c_message_free_unpacked(&pi->base, NULL);
	if (*sid == NULL)
		return err_set(err, NC_ENOTFOUND, "user %s publishes no %s track", uid, source);
	return NC_OK;
}

/* MutePublishedTrack. */
static enum nc_err mute_in_livekit(struct req *r, const char *room, const char *uid,
				   const char *sid, bool muted, struct nc_error *err)
{
	Livekit__MuteRoomTrackRequest mr = LIVEKIT__MUTE_ROOM_TRACK_REQUEST__INIT;
	Livekit__MuteRoomTrackResponse *mresp;
	struct lk_status st;

	mr.room = (char *)room;
	mr.identity = (char *)uid;
	mr.track_sid = (char *)sid;
	mr.muted = muted;
	mresp = lk_mute_published_track(req_worker(r)->lk, &mr, &st);
	if (mresp == NULL) {
		if (lk_status_is(&st, "failed_precondition"))
			return err_set(err, NC_ECONFLICT, "LiveKit refused: %s",
				       muted ? "the track cannot be muted now"
					     : "remote unmute is not enabled on the LiveKit server");
		return lk_status_error(&st, err);
	}
	protobuf_c_message_free_unpacked(&mresp->base, NULL);
	return NC_OK;
}

/* The track change and its audit line, committed; *members (whom to tell) set on success. */
static enum nc_err mute_tx(struct req *r, const char *id, const char *uid, const char *source,
			   bool muted, const char *sid, json_t **members, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	enum calls_track track = strcmp(source, "microphone") == 0 ? CALLS_TRACK_AUDIO
				 : strcmp(source, "camera") == 0 ? CALLS_TRACK_VIDEO
				 : CALLS_TRACK_SCREEN;
	json_t *details;
	enum nc_err rc;

	if (db_begin_service(db, err) != NC_OK ||
	    calls_db_set_track(db, id, uid, track, !muted, err) != NC_OK)
		return err->code;
	details = json_pack("{s:s, s:s, s:b, s:s}", "userId", uid, "source", source, "muted",
			    muted, "trackSid", sid);
	rc = audit_log(db, req_user(r), "call.participant.mute", "call", id, details, req_id(r), err);
	json_decref(details);
	if (rc != NC_OK)
		return rc;
	*members = calls_db_member_ids(db, id, err);
	if (*members == NULL)
		return err->code;
	if (db_commit(db, err) != NC_OK) {
		json_decref(*members);
		*members = NULL;
		return err->code;
	}
	return NC_OK;
}

static enum nc_err api_calls_mute(struct req *r, struct nc_error *err)
{
	json_t *body = req_body(r), *members = NULL;
	struct call_row c;
	const char *source = NULL;
	char id[37], uid[37], *sid = NULL;
	bool muted = true;
	enum nc_err rc;

	if (calls_no_body(r))
		return err_set(err, NC_EBADREQ, "request body must be a JSON object");
	calls_param(r, "id", id);
	calls_param(r, "userId", uid);
	if (jv_enum(body, "source", JV_REQUIRED, mute_sources, &source, err) < 0 ||
	    jv_bool(body, "muted", JV_REQUIRED, &muted, err) < 0)
		return err->code;
	if (load_for_host(r, id, &c, err) != NC_OK)
		return err->code;
	if (calls_status_terminal(c.status))
		return err_set(err, NC_EGONE, "the call is %s", c.status);
	rc = target_is_participant(r, id, uid, err);
	if (rc == NC_OK)
		rc = mute_find_sid(r, c.room, uid, source, &sid, err);
	if (rc == NC_OK)
		rc = mute_in_livekit(r, c.room, uid, sid, muted, err);
	if (rc == NC_OK)
		rc = mute_tx(r, id, uid, source, muted, sid, &members, err);
	if (rc == NC_OK) {
		resp_json(r, 200, json_pack("{s:s, s:s, s:s, s:b, s:s}", "callId", id, "userId", uid,
					    "source", source, "muted", muted, "trackSid", sid));
		calls_publish(req_worker(r), members, "call.updated", id, c.status, "muted");
	}
	json_decref(members);
	free(sid);
	return rc;
}

/* RemoveParticipant (not_found is fine: not connected). */
static enum nc_err remove_in_livekit(struct req *r, const char *room, const char *uid,
				     struct nc_error *err)
{
	Livekit__RoomParticipantIdentity rp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__RemoveParticipantResponse *rresp;
	struct lk_status st;

	rp.room = (char *)room;
	rp.identity = (char *)uid;
	rresp = lk_remove_participant(req_worker(r)->lk, &rp, &st);
	if (rresp != NULL) {
		protobuf_c_message_free_unpacked(&rresp->base, NULL);
		return NC_OK;
	}
	if (lk_status_is(&st, "not_found"))
		return NC_OK;
	return lk_status_error(&st, err);
}

/* The removing transaction; *members (not removed) and *ended set on success (an error leaves it open). */
static enum nc_err remove_tx(struct req *r, const char *id, const char *uid, char status[16],
			     bool *ended, json_t **members, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	struct part_row p;
	json_t *details;
	enum nc_err rc;
	int n;

	*ended = false;
	*members = NULL;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, uid, req_cfg(r)->max_room_participants, &c, &p, err);
	if (n < 0)
		return err->code;
	if (n == 0)
		return err_set(err, NC_ENOTFOUND, "call not found");
	if (calls_db_change_participant(db, id, uid, CALLS_PART_REMOVE, err) != NC_OK)
		return err->code;
	details = json_pack("{s:s, s:s}", "userId", uid, "previousStatus", p.status);
	rc = audit_log(db, req_user(r), "call.participant.remove", "call", id, details, req_id(r), err);
	json_decref(details);
	if (rc != NC_OK)
		return rc;
	if (!calls_status_terminal(c.status)) {
		n = calls_db_count_joined(db, id, err);
		if (n < 0)
			return err->code;
		if (n == 0) {
			if (calls_close_tx(req_cfg(r), db, id, "ended", "everyone_left", NULL, err) < 0)
				return err->code;
			snprintf(c.status, sizeof(c.status), "ended");
			*ended = true;
		}
	}
	*members = calls_db_member_ids(db, id, err);
	if (*members == NULL)
		return err->code;
	if (db_commit(db, err) != NC_OK) {
		json_decref(*members);
		*members = NULL;
		return err->code;
	}
	snprintf(status, 16, "%s", c.status);
	return NC_OK;
}

static enum nc_err api_calls_remove(struct req *r, struct nc_error *err)
{
	struct call_row c;
	char id[37], uid[37], status[16];
	json_t *members = NULL, *told;
	bool ended;

	calls_param(r, "id", id);
	calls_param(r, "userId", uid);
	if (load_for_host(r, id, &c, err) != NC_OK)
		return err->code;
	if (calls_status_terminal(c.status))
		return err_set(err, NC_EGONE, "the call is %s", c.status);
	if (strcmp(uid, req_user(r)->user_id) == 0)
		return err_set(err, NC_EBADREQ, "cannot remove yourself: leave the call instead");
	if (target_is_participant(r, id, uid, err) != NC_OK ||
	    remove_in_livekit(r, c.room, uid, err) != NC_OK ||
	    remove_tx(r, id, uid, status, &ended, &members, err) != NC_OK)
		return err->code;
	resp_json(r, 200, json_pack("{s:s, s:s, s:s}", "callId", id, "userId", uid, "status",
				    "removed"));
	presence_leave(req_worker(r), id, uid);
	/* the removed user hears of the removal itself, and of nothing after it */
	told = json_copy(members);
	json_array_append_new(told, json_string(uid));
	if (ended)
		calls_after_end(req_worker(r), id, told, "ended", "everyone_left", true);
	else
		calls_publish(req_worker(r), told, "call.updated", id, status, "removed");
	json_decref(told);
	json_decref(members);
	return NC_OK;
}

#define HOST_ROUTE (ROUTE_AUTH | ROUTE_UUID_PARAMS)

const struct route calls_host_routes[] = {
	{ RM_POST, "/api/calls/{id}/end", api_calls_end, HOST_ROUTE, "calls.end", NULL },
	{ RM_POST, "/api/calls/{id}/participants/{userId}/mute", api_calls_mute,
	  HOST_ROUTE | ROUTE_JSON, "calls.mute", NULL },
	{ RM_POST, "/api/calls/{id}/participants/{userId}/remove", api_calls_remove, HOST_ROUTE,
	  "calls.remove", NULL },
	{ 0, NULL, NULL, 0, NULL, NULL }
};
