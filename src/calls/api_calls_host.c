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
 * (initiator, admin, moderator).  Answers 404 (unknown, or not visible to
 * the caller) / 403 itself and returns false.
 */
static bool load_for_host(struct req *r, const char *id, struct call_row *c)
{
	struct db_conn *db = &req_worker(r)->db;
	struct nc_error err = {0};
	struct part_row p;
	int n;

	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return false;
	}
	n = calls_db_lock(db, id, req_user(r)->user_id, req_cfg(r)->max_room_participants, c, &p, &err);
	if (n < 0) {
		calls_fail(r, &err);
		return false;
	}
	if (n == 0) {
		db_rollback(db);
		resp_error(r, NC_ENOTFOUND, "call not found");
		return false;
	}
	if (strcmp(c->initiator, req_user(r)->user_id) == 0 || auth_is_staff(req_user(r))) {
		db_rollback(db);
		return true;
	}
	if (p.found && strcmp(p.status, "removed") == 0)
		n = 0; /* removed: sees nothing of the call */
	else
		n = p.found ? 1 : calls_db_is_channel_member(db, c->channel, req_user(r)->user_id, &err);
	db_rollback(db);
	if (n < 0)
		resp_nc_error(r, &err);
	else if (n == 0)
		resp_error(r, NC_ENOTFOUND, "call not found");
	else
		resp_error(r, NC_EFORBIDDEN, "only the initiator, an admin or a moderator may do this");
	return false;
}

/* The closing transaction of /end; *members set on success. */
static enum nc_err end_tx(struct req *r, const char *id, const char *reason, bool *already,
			  char status[16], json_t **members, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	json_t *details;
	int n;

	*already = false;
	*members = NULL;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, NULL, req_cfg(r)->max_room_participants, &c, NULL, err);
	if (n <= 0)
		goto fail;
	if (calls_status_terminal(c.status)) {
		/* Ended meanwhile by someone else: same outcome. */
		db_rollback(db);
		*already = true;
		snprintf(status, 16, "%s", c.status);
		return NC_OK;
	}
	n = calls_close_tx(req_cfg(r), db, id, "ended", reason, NULL, err);
	if (n < 0)
		goto fail;
	details = json_pack("{s:s, s:i}", "reason", reason, "participantsClosed", n);
	if (audit_log(db, req_user(r), "call.end", "call", id, details, req_id(r), err) != NC_OK) {
		json_decref(details);
		goto fail;
	}
	json_decref(details);
	*members = calls_db_member_ids(db, id, err);
	if (*members == NULL || db_commit(db, err) != NC_OK)
		goto fail;
	snprintf(status, 16, "ended");
	return NC_OK;
fail:
	json_decref(*members);
	*members = NULL;
	db_rollback(db);
	if (err->code == NC_OK)
		err_set(err, NC_ENOTFOUND, "call not found");
	return err->code;
}

void api_calls_end(struct req *r)
{
	struct nc_error err = {0};
	struct call_row c;
	char id[37], status[16];
	const char *reason;
	json_t *members = NULL;
	bool already;

	if (!calls_path_uuid(r, "id", id))
		return;
	if (!load_for_host(r, id, &c))
		return;
	if (calls_status_terminal(c.status)) {
		resp_json(r, 200, calls_status_body(id, c.status));
		return;
	}
	reason = strcmp(c.initiator, req_user(r)->user_id) == 0 ? "ended_by_initiator"
							      : "ended_by_staff";
	/* LiveKit first: if it cannot be told, the call stays open and the caller retries. */
	if (calls_delete_room(req_worker(r), c.room, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	memset(&err, 0, sizeof(err));
	if (recordings_stop_for_call(req_worker(r), id, &err) != NC_OK)
		log_warn("calls: stopping the recording of %s failed: %s", id, err.msg);
	memset(&err, 0, sizeof(err));
	if (end_tx(r, id, reason, &already, status, &members, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	resp_json(r, 200, calls_status_body(id, status));
	if (!already) {
		presence_end_call(req_worker(r), id, members);
		calls_publish(req_worker(r), members, "call.ended", id, "ended", reason);
	}
	json_decref(members);
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

/* Is uid a participant of the call (its own short read)?  Answers 404 / the error and returns false. */
static bool target_is_participant(struct req *r, const char *id, const char *uid)
{
	struct db_conn *db = &req_worker(r)->db;
	struct nc_error err = {0};
	int n;

	if (db_begin_service(db, &err) != NC_OK ||
	    (n = calls_db_has_participant(db, id, uid, &err)) < 0) {
		calls_fail(r, &err);
		return false;
	}
	db_rollback(db);
	if (n == 0) {
		resp_error(r, NC_ENOTFOUND, "user %s is not a participant of this call", uid);
		return false;
	}
	if (req_worker(r)->lk == NULL) {
		resp_error(r, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		return false;
	}
	return true;
}

/* The sid of uid's `source` track from LiveKit (malloc'd); NULL after answering. */
static char *mute_find_sid(struct req *r, const char *room, const char *uid, const char *source)
{
	Livekit__RoomParticipantIdentity gp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__ParticipantInfo *pi;
	struct lk_status st;
	struct nc_error err = {0};
	const char *sid;
	char *copy;

	gp.room = (char *)room;
	gp.identity = (char *)uid;
	pi = lk_get_participant(req_worker(r)->lk, &gp, &st);
	if (pi == NULL) {
		if (lk_status_is(&st, "not_found")) {
			resp_error(r, NC_ENOTFOUND, "user %s is not connected to the call", uid);
		} else {
			lk_status_error(&st, &err);
			resp_nc_error(r, &err);
		}
		return NULL;
	}
	sid = find_track(pi, source);
	copy = sid ? xstrdup(sid) : NULL;
	protobuf_c_message_free_unpacked(&pi->base, NULL);
	if (copy == NULL)
		resp_error(r, NC_ENOTFOUND, "user %s publishes no %s track", uid, source);
	return copy;
}

/* MutePublishedTrack; false after answering. */
static bool mute_in_livekit(struct req *r, const char *room, const char *uid, const char *sid,
			    bool muted)
{
	Livekit__MuteRoomTrackRequest mr = LIVEKIT__MUTE_ROOM_TRACK_REQUEST__INIT;
	Livekit__MuteRoomTrackResponse *mresp;
	struct lk_status st;
	struct nc_error err = {0};

	mr.room = (char *)room;
	mr.identity = (char *)uid;
	mr.track_sid = (char *)sid;
	mr.muted = muted;
	mresp = lk_mute_published_track(req_worker(r)->lk, &mr, &st);
	if (mresp == NULL) {
		if (lk_status_is(&st, "failed_precondition"))
			resp_error(r, NC_ECONFLICT, "LiveKit refused: %s",
				   muted ? "the track cannot be muted now"
					 : "remote unmute is not enabled on the LiveKit server");
		else {
			lk_status_error(&st, &err);
			resp_nc_error(r, &err);
		}
		return false;
	}
	protobuf_c_message_free_unpacked(&mresp->base, NULL);
	return true;
}

void api_calls_mute(struct req *r)
{
	struct db_conn *db = &req_worker(r)->db;
	json_t *body = req_json(r, false), *details, *members = NULL;
	struct nc_error err = {0};
	struct call_row c;
	const char *source = NULL;
	char id[37], uid[37], *sid = NULL;
	bool muted = true;
	enum calls_track track;

	if (body == NULL)
		return;
	if (!calls_path_uuid(r, "id", id) || !calls_path_uuid(r, "userId", uid))
		goto out;
	if (jv_enum(body, "source", JV_REQUIRED, mute_sources, &source, &err) < 0 ||
	    jv_bool(body, "muted", JV_REQUIRED, &muted, &err) < 0) {
		resp_nc_error(r, &err);
		goto out;
	}
	if (!load_for_host(r, id, &c))
		goto out;
	if (calls_status_terminal(c.status)) {
		resp_error(r, NC_EGONE, "the call is %s", c.status);
		goto out;
	}
	if (!target_is_participant(r, id, uid) || (sid = mute_find_sid(r, c.room, uid, source)) == NULL ||
	    !mute_in_livekit(r, c.room, uid, sid, muted))
		goto out;
	track = strcmp(source, "microphone") == 0 ? CALLS_TRACK_AUDIO
		: strcmp(source, "camera") == 0 ? CALLS_TRACK_VIDEO : CALLS_TRACK_SCREEN;
	if (db_begin_service(db, &err) != NC_OK ||
	    calls_db_set_track(db, id, uid, track, !muted, &err) != NC_OK)
		goto dbfail;
	details = json_pack("{s:s, s:s, s:b, s:s}", "userId", uid, "source", source, "muted",
			    muted, "trackSid", sid);
	if (audit_log(db, req_user(r), "call.participant.mute", "call", id, details, req_id(r),
		      &err) != NC_OK) {
		json_decref(details);
		goto dbfail;
	}
	json_decref(details);
	members = calls_db_member_ids(db, id, &err);
	if (members == NULL || db_commit(db, &err) != NC_OK)
		goto dbfail;
	resp_json(r, 200, json_pack("{s:s, s:s, s:s, s:b, s:s}", "callId", id, "userId", uid,
				    "source", source, "muted", muted, "trackSid", sid));
	calls_publish(req_worker(r), members, "call.updated", id, c.status, "muted");
	goto out;
dbfail:
	calls_fail(r, &err);
out:
	json_decref(members);
	free(sid);
	json_decref(body);
}

/* RemoveParticipant (not_found is fine: not connected); false after answering. */
static bool remove_in_livekit(struct req *r, const char *room, const char *uid)
{
	Livekit__RoomParticipantIdentity rp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__RemoveParticipantResponse *rresp;
	struct lk_status st;
	struct nc_error err = {0};

	rp.room = (char *)room;
	rp.identity = (char *)uid;
	rresp = lk_remove_participant(req_worker(r)->lk, &rp, &st);
	if (rresp != NULL) {
		protobuf_c_message_free_unpacked(&rresp->base, NULL);
		return true;
	}
	if (lk_status_is(&st, "not_found"))
		return true;
	lk_status_error(&st, &err);
	resp_nc_error(r, &err);
	return false;
}

/* The removing transaction; *members (not removed) and *ended set on success. */
static enum nc_err remove_tx(struct req *r, const char *id, const char *uid, char status[16],
			     bool *ended, json_t **members, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	struct part_row p;
	json_t *details;
	int n;

	*ended = false;
	*members = NULL;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, uid, req_cfg(r)->max_room_participants, &c, &p, err);
	if (n <= 0)
		goto fail;
	if (calls_db_change_participant(db, id, uid, CALLS_PART_REMOVE, err) != NC_OK)
		goto fail;
	details = json_pack("{s:s, s:s}", "userId", uid, "previousStatus", p.status);
	if (audit_log(db, req_user(r), "call.participant.remove", "call", id, details, req_id(r),
		      err) != NC_OK) {
		json_decref(details);
		goto fail;
	}
	json_decref(details);
	if (!calls_status_terminal(c.status)) {
		n = calls_db_count_joined(db, id, err);
		if (n < 0)
			goto fail;
		if (n == 0) {
			if (calls_close_tx(req_cfg(r), db, id, "ended", "everyone_left", NULL, err) < 0)
				goto fail;
			snprintf(c.status, sizeof(c.status), "ended");
			*ended = true;
		}
	}
	*members = calls_db_member_ids(db, id, err);
	if (*members == NULL || db_commit(db, err) != NC_OK)
		goto fail;
	snprintf(status, 16, "%s", c.status);
	return NC_OK;
fail:
	json_decref(*members);
	*members = NULL;
	db_rollback(db);
	if (err->code == NC_OK)
		err_set(err, NC_ENOTFOUND, "call not found");
	return err->code;
}

void api_calls_remove(struct req *r)
{
	struct nc_error err = {0};
	struct call_row c;
	char id[37], uid[37], status[16];
	json_t *members = NULL, *told;
	bool ended;

	if (!calls_path_uuid(r, "id", id) || !calls_path_uuid(r, "userId", uid))
		return;
	if (!load_for_host(r, id, &c))
		return;
	if (calls_status_terminal(c.status)) {
		resp_error(r, NC_EGONE, "the call is %s", c.status);
		return;
	}
	if (strcmp(uid, req_user(r)->user_id) == 0) {
		resp_error(r, NC_EBADREQ, "cannot remove yourself: leave the call instead");
		return;
	}
	if (!target_is_participant(r, id, uid) || !remove_in_livekit(r, c.room, uid))
		return;
	if (remove_tx(r, id, uid, status, &ended, &members, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
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
}
