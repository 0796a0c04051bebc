/*
 * calls.c - call state transitions shared by the HTTP handlers, the
 * webhook receiver and the sweep: closing a call and its participants,
 * counting who is still in, and the side effects that follow a commit
 * (DeleteRoom, stopping a recording, presence, realtime events).
 *
 * Status rules (API.md "Call status"): a call is `ringing` from initiate
 * until the first invitee joins (`active`); it ends as `ended` (hung up,
 * everyone left, room gone), `missed` (nobody answered within the ring
 * timeout) or `declined` (every invitee declined).  Closing a call closes
 * every open participant row: joined -> left with left_at (the duration
 * trigger of 0002_triggers.sql adds the session), ringing/invited -> missed.
 */
#include "calls/calls.h"
#include "recordings/recordings.h"
#include "core/uuid.h"
#include "calls/calls_db.h"
#include "realtime/events.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "realtime/presence.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool calls_status_terminal(const char *status)
{
	return status != NULL &&
	       (strcmp(status, "ended") == 0 || strcmp(status, "missed") == 0 ||
		strcmp(status, "declined") == 0 || strcmp(status, "failed") == 0);
}

int calls_close_tx(const struct nc_config *cfg, struct db_conn *db, const char *call_id,
		   const char *status, const char *end_reason, const char *at, struct nc_error *err)
{
	struct calls_close_result cr;
	char event[32];
	json_t *payload;
	enum nc_err rc;

	if (calls_db_close(db, call_id, status, end_reason, at, &cr, err) != NC_OK)
		return -1;
	if (!cr.closed)
		return cr.participants; /* already closed by someone else: nothing to announce */
	/* Tell the chat's backend in the same transaction (callers hold the call row). */
	payload = json_pack("{s:s, s:s, s:s}", "callId", call_id, "status", status, "reason",
			    end_reason ? end_reason : "");
	snprintf(event, sizeof(event), "call.%s", strcmp(status, "ended") == 0 ? "ended" : status);
	rc = outbox_enqueue(db, cfg, event, payload, err);
	json_decref(payload);
	return rc == NC_OK ? cr.participants : -1;
}

enum nc_err calls_delete_room(struct nc_worker *w, const char *room, struct nc_error *err)
{
	Livekit__DeleteRoomRequest req = LIVEKIT__DELETE_ROOM_REQUEST__INIT;
	Livekit__DeleteRoomResponse *resp;
	struct lk_status st;

	if (w->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	req.room = (char *)room;
	resp = lk_delete_room(w->lk, &req, &st);
	if (resp != NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		return NC_OK;
	}
	if (lk_status_is(&st, "not_found"))
		return NC_OK; /* already gone: that is what we wanted */
	return lk_status_error(&st, err);
}

void calls_publish(struct nc_worker *w, json_t *members, const char *type, const char *call_id,
		   const char *status, const char *reason)
{
	json_t *data, *m;
	size_t i;

	if (members == NULL)
		return;
	data = json_pack("{s:s, s:s}", "callId", call_id, "status", status);
	if (data == NULL)
		return;
	if (reason != NULL)
		json_object_set_new(data, "reason", json_string(reason));
	json_array_foreach(members, i, m)
		rt_publish_user(w, json_string_value(m), type, data);
	json_decref(data);
}

void calls_after_end(struct nc_worker *w, const char *call_id, json_t *members,
		     const char *status, const char *reason, bool delete_room)
{
	char room[64];
	struct nc_error err = {0};

	snprintf(room, sizeof(room), CALL_ROOM_PREFIX "%s", call_id);
	if (delete_room && calls_delete_room(w, room, &err) != NC_OK)
		log_warn("calls: DeleteRoom %s failed (%s); the sweep will retry", room, err.msg);
	memset(&err, 0, sizeof(err));
	if (recordings_stop_for_call(w, call_id, &err) != NC_OK)
		log_warn("calls: stopping the recording of %s failed: %s", call_id, err.msg);
	presence_end_call(w, call_id, members);
	calls_publish(w, members, "call.ended", call_id, status, reason);
}
