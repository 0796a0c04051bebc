/*
 * webhook.c - POST /api/webhooks/livekit: verify, de-duplicate and apply
 * LiveKit webhook events (PROTOCOL.md §6).
 *
 * Reply fast: verification is pure CPU; then ONE short service transaction
 * records the event id (INSERT ... ON CONFLICT DO NOTHING: a second
 * delivery, even one racing on another instance, waits on the first's row
 * and finds it there) and applies the event to the rows it concerns, so an
 * event is applied exactly when its id is recorded.  Side effects outside
 * Postgres (presence, realtime events, stopping a recording) follow the
 * commit.  A failure before commit is a 5xx, so LiveKit retries.
 *
 * Order tolerance.  LiveKit delivers one room's events in order, but
 * retries, several nodes and a restarted receiver can still reorder them.
 * Each participant row keeps the createdAt of the newest participant event
 * applied (last_event_at):
 *   - participant_joined applies only if strictly newer, never to a closed
 *     call and never to a removed participant;
 *   - participant_left / participant_connection_aborted apply if not older
 *     (so a leave in the same second as its join wins, whatever the order),
 *     set left_at = createdAt and joined_at = the participant's joinedAt,
 *     replacing whatever session an earlier close (room end, sweep) wrote;
 *   - track events change the track flags only of a joined participant of
 *     an open call and only if not older than the last participant event;
 *     leaving clears the flags;
 *   - room_finished ends the call (if still open) at createdAt and closes
 *     every open participant; room_started changes no status (the room is
 *     created by initiate, so it arrives at once; a call becomes active when
 *     the first invitee joins).
 * A participant_left does not end the call: LiveKit closes the empty room
 * after its departure timeout and sends room_finished, and the sweep ends
 * calls whose room is gone; ending on the last leave would make the final
 * state depend on delivery order.
 */
#include "ops/ops.h"
#include "core/uuid.h"
#include "calls/calls.h"
#include "realtime/events.h"
#include "streams/streams.h"
#include "core/log.h"
#include "recordings/recordings.h"
#include "core/metrics.h"
#include "realtime/presence.h"
#include "livekit/webhook_verify.h"
#include "ops/webhook_event.h"
#include "http/worker.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Verification                                                        */
/* ------------------------------------------------------------------ */

static atomic_ulong rejected;

unsigned long webhook_rejected_count(void)
{
	return atomic_load(&rejected);
}

/* ------------------------------------------------------------------ */
/* Applying events                                                     */
/* ------------------------------------------------------------------ */

/* What to do after commit. */
struct wh_effect {
	char call_id[37];
	char user_id[37];
	int presence;          /* +1 joined, -1 left */
	bool updated;          /* publish call.updated */
	bool ended;            /* the call ended: presence, call.ended, recording */
	char status[16];
	json_t *members;
};

/* Lock the call of a "call-<uuid>" room; 1 found (status filled), 0 not ours, -1 error. */
static int lock_call(struct db_conn *db, const struct wh_event *e, char id[37], char status[16],
		     char initiator[37], struct nc_error *err)
{
	const char *params[1] = { id };
	PGresult *res;

	if (e->call_id[0] == '\0')
		return 0;
	snprintf(id, 37, "%s", e->call_id);
	res = db_exec(db, "SELECT status, COALESCE(initiator_id::text, '') FROM nchat_calls"
		      " WHERE id = $1 FOR UPDATE", 1, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	snprintf(status, 16, "%s", PQgetvalue(res, 0, 0));
	snprintf(initiator, 37, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 1;
}

static enum nc_err touch_call(struct db_conn *db, const char *id, const char *created,
			      struct nc_error *err)
{
	const char *params[2] = { id, created };
	PGresult *res = db_exec(db, "UPDATE nchat_calls SET last_event_at ="
				" GREATEST(last_event_at, to_timestamp($2::bigint)) WHERE id = $1",
				2, params, err);

	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

static int apply_participant(struct db_conn *db, const struct wh_event *e, const char *created,
			     struct wh_effect *eff, struct nc_error *err)
{
	const char *identity = e->identity, *params[5];
	char id[37], status[16], initiator[37], joined_at[32] = "", pid[37], pstatus[16], role[16];
	PGresult *res;
	bool newer, not_older, joined = e->up;
	int64_t ja = e->joined_at;
	int n;

	if (identity == NULL)
		return 0; /* egress/ingress/agent participants are not ours */
	n = lock_call(db, e, id, status, initiator, err);
	if (n <= 0)
		return n;
	if (ja > 0)
		snprintf(joined_at, sizeof(joined_at), "%lld", (long long)ja);
	params[0] = id;
	params[1] = identity;
	params[2] = created;
	res = db_exec(db, "SELECT id::text, status, role,"
		      " last_event_at IS NULL OR to_timestamp($3::bigint) > last_event_at,"
		      " last_event_at IS NULL OR to_timestamp($3::bigint) >= last_event_at"
		      " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2::uuid"
		      " FOR UPDATE", 3, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		log_info("webhook: %s in call %s has no participant row; ignored", identity, id);
		return 0;
	}
	snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 0));
	snprintf(pstatus, sizeof(pstatus), "%s", PQgetvalue(res, 0, 1));
	snprintf(role, sizeof(role), "%s", PQgetvalue(res, 0, 2));
	newer = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	not_older = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	PQclear(res);

	params[0] = pid;
	params[1] = identity;
	params[2] = created;
	params[3] = joined_at[0] ? joined_at : NULL;
	params[4] = e->participant_sid;
	if (joined) {
		if (calls_status_terminal(status) || !newer || strcmp(pstatus, "removed") == 0)
			return 0;
		res = db_exec(db, "UPDATE nchat_call_participants SET status = 'joined',"
			      " livekit_participant_id = COALESCE(NULLIF($5, ''), livekit_participant_id),"
			      " livekit_identity = $2,"
			      " joined_at = COALESCE(to_timestamp($4::bigint), joined_at, now()),"
			      " last_event_at = to_timestamp($3::bigint) WHERE id = $1",
			      5, params, err);
		if (res == NULL)
			return -1;
		PQclear(res);
		if (strcmp(status, "ringing") == 0 && strcmp(role, "initiator") != 0) {
			const char *cp[2] = { id, joined_at[0] ? joined_at : created };

			res = db_exec(db, "UPDATE nchat_calls SET status = 'active', started_at ="
				      " COALESCE(started_at, to_timestamp($2::bigint)) WHERE id = $1",
				      2, cp, err);
			if (res == NULL)
				return -1;
			PQclear(res);
			snprintf(status, sizeof(status), "active");
		}
		eff->presence = calls_status_terminal(status) ? 0 : 1;
	} else {
		if (!not_older)
			return 0;
		if (strcmp(pstatus, "joined") == 0) {
			res = db_exec(db, "UPDATE nchat_call_participants SET status = 'left',"
				      " livekit_identity = $2, livekit_participant_id = COALESCE(NULLIF($5, ''), livekit_participant_id),"
				      " joined_at = COALESCE(to_timestamp($4::bigint), joined_at),"
				      " left_at = GREATEST(to_timestamp($3::bigint),"
				      "     COALESCE(to_timestamp($4::bigint), joined_at)),"
				      " is_audio_enabled = false, is_video_enabled = false,"
				      " is_screen_sharing = false, last_event_at = to_timestamp($3::bigint)"
				      " WHERE id = $1", 5, params, err);
		} else if (strcmp(pstatus, "left") == 0) {
			/*
			 * Closed before by the API, a room end or a sweep: LiveKit's
			 * own times replace that session.  Two steps so the duration
			 * trigger replaces the share instead of adding it again:
			 * take the old share out and clear left_at, then set the
			 * session anew.
			 */
			res = db_exec(db, "UPDATE nchat_call_participants SET"
				      " total_duration_seconds = GREATEST(0, total_duration_seconds"
				      "   - nchat_rtc_seconds_between(joined_at, left_at)),"
				      " left_at = NULL WHERE id = $1", 1, params, err);
			if (res == NULL)
				return -1;
			PQclear(res);
			res = db_exec(db, "UPDATE nchat_call_participants SET"
				      " livekit_identity = $2, livekit_participant_id = COALESCE(NULLIF($5, ''), livekit_participant_id),"
				      " joined_at = COALESCE(to_timestamp($4::bigint), joined_at),"
				      " left_at = GREATEST(to_timestamp($3::bigint),"
				      "     COALESCE(to_timestamp($4::bigint), joined_at)),"
				      " is_audio_enabled = false, is_video_enabled = false,"
				      " is_screen_sharing = false, last_event_at = to_timestamp($3::bigint)"
				      " WHERE id = $1", 5, params, err);
		} else {
			const char *p2[2] = { pid, created };

			res = db_exec(db, "UPDATE nchat_call_participants SET"
				      " is_audio_enabled = false, is_video_enabled = false,"
				      " is_screen_sharing = false, last_event_at = to_timestamp($2::bigint)"
				      " WHERE id = $1", 2, p2, err);
		}
		if (res == NULL)
			return -1;
		PQclear(res);
		eff->presence = -1;
	}
	if (touch_call(db, id, created, err) != NC_OK)
		return -1;
	snprintf(eff->call_id, sizeof(eff->call_id), "%s", id);
	snprintf(eff->user_id, sizeof(eff->user_id), "%s", identity);
	snprintf(eff->status, sizeof(eff->status), "%s", status);
	eff->updated = true;
	return 1;
}

static int apply_track(struct db_conn *db, const struct wh_event *e, const char *created,
		       struct wh_effect *eff, struct nc_error *err)
{
	const char *identity = e->identity;
	const char *col = e->track_column, *params[4];
	char id[37], status[16], initiator[37], *sql;
	PGresult *res;
	bool published = e->up;
	int n;

	if (col == NULL || identity == NULL)
		return 0;
	n = lock_call(db, e, id, status, initiator, err);
	if (n <= 0)
		return n;
	if (calls_status_terminal(status))
		return 0;
	params[0] = id;
	params[1] = identity;
	params[2] = created;
	params[3] = published ? "t" : "f";
	sql = xasprintf("UPDATE nchat_call_participants SET %s = $4::boolean"
			" WHERE call_id = $1 AND user_id = $2::uuid AND status = 'joined'"
			" AND (last_event_at IS NULL OR to_timestamp($3::bigint) >= last_event_at)",
			col);
	res = db_exec(db, sql, 4, params, err);
	free(sql);
	if (res == NULL)
		return -1;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0)
		return 0;
	snprintf(eff->call_id, sizeof(eff->call_id), "%s", id);
	snprintf(eff->status, sizeof(eff->status), "%s", status);
	eff->updated = true;
	return 1;
}

static int apply_room(const struct nc_config *cfg, struct db_conn *db, const struct wh_event *e,
		      const char *created, struct wh_effect *eff, struct nc_error *err)
{
	char id[37], status[16], initiator[37], at[32];
	bool finished = !e->up;
	int n = lock_call(db, e, id, status, initiator, err);

	if (n <= 0)
		return n;
	if (!finished || calls_status_terminal(status)) {
		/* room_started: nothing but the event time (see the file comment). */
		return touch_call(db, id, created, err) == NC_OK ? 1 : -1;
	}
	format_rfc3339((int64_t)atoll(created), at, sizeof(at));
	if (calls_close_tx(cfg, db, id, "ended", "room_finished", at, err) < 0)
		return -1;
	if (touch_call(db, id, created, err) != NC_OK)
		return -1;
	eff->members = calls_member_ids(db, id, err);
	if (eff->members == NULL)
		return -1;
	snprintf(eff->call_id, sizeof(eff->call_id), "%s", id);
	snprintf(eff->status, sizeof(eff->status), "ended");
	eff->ended = true;
	return 1;
}

/* 1 applied, 0 ignored, -1 error. */
static int apply_event(struct nc_worker *w, const struct wh_event *e, int64_t created_at,
		       struct wh_effect *eff, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	char created[24];
	int n;

	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	switch (e->kind) {
	case WH_PARTICIPANT:
		return apply_participant(db, e, created, eff, err);
	case WH_TRACK:
		return apply_track(db, e, created, eff, err);
	case WH_ROOM:
		return apply_room(w->cfg, db, e, created, eff, err);
	case WH_EGRESS:
		if (e->info == NULL)
			return 0;
		n = recordings_on_egress(w, e->event, e->info, created_at, err);
		if (n == 0)
			n = streams_on_egress(w, e->event, e->info, created_at, err);
		return n;
	case WH_INGRESS:
		if (e->info == NULL)
			return 0;
		return streams_on_ingress(w, e->event, e->info, created_at, err);
	case WH_OTHER:
		break;
	}
	return 0; /* unknown event: ignored */
}

static void after_commit(struct nc_worker *w, struct wh_effect *eff)
{
	struct nc_error err = {0};

	if (eff->call_id[0] == '\0')
		return;
	if (eff->ended) {
		if (recordings_stop_for_call(w, eff->call_id, &err) != NC_OK)
			log_warn("webhook: stopping the recording of %s failed: %s", eff->call_id,
				 err.msg);
		presence_end_call(w, eff->call_id, eff->members);
		calls_publish(w, eff->members, "call.ended", eff->call_id, "ended", "room_finished");
		return;
	}
	if (eff->presence > 0)
		presence_join(w, eff->call_id, eff->user_id);
	else if (eff->presence < 0)
		presence_leave(w, eff->call_id, eff->user_id);
	if (eff->updated) {
		/* Members read after commit, outside the event's transaction. */
		if (db_begin_service(&w->db, &err) == NC_OK) {
			eff->members = calls_member_ids(&w->db, eff->call_id, &err);
			db_rollback(&w->db);
		}
		calls_publish(w, eff->members, "call.updated", eff->call_id, eff->status, NULL);
	}
}

/*
 * Egress and ingress hooks run inside the event's transaction and cannot
 * publish; after the commit, tell the affected clients what changed: a
 * recording's state to the call's members, a stream's state to its viewers.
 */
static void publish_resource_change(struct nc_worker *w, const char *event, json_t *ev)
{
	const char *egress = json_string_value(json_object_get(json_object_get(ev, "egressInfo"), "egressId"));
	const char *ingress = json_string_value(json_object_get(json_object_get(ev, "ingressInfo"), "ingressId"));
	struct nc_error err = {0};
	const char *params[1];
	PGresult *res = NULL;
	json_t *members = NULL, *data = NULL;
	char call_id[37] = "", stream_id[37] = "";

	if ((strncmp(event, "egress_", 7) != 0 || egress == NULL) &&
	    (strncmp(event, "ingress_", 8) != 0 || ingress == NULL))
		return;
	if (db_begin_service(&w->db, &err) != NC_OK)
		return;
	if (egress != NULL) {
		params[0] = egress;
		res = db_exec(&w->db,
			      "SELECT r.call_id::text, json_build_object('callId', r.call_id, 'recording',"
			      " json_build_object('id', r.id, 'status', r.status))::text"
			      " FROM nchat_call_recordings r WHERE r.livekit_egress_id = $1",
			      1, params, &err);
		if (res != NULL && PQntuples(res) == 1) {
			snprintf(call_id, sizeof(call_id), "%s", PQgetvalue(res, 0, 0));
			data = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
			members = calls_member_ids(&w->db, call_id, &err);
		}
		PQclear(res);
		res = NULL;
	}
	if (call_id[0] == '\0') {
		params[0] = egress != NULL ? egress : ingress;
		res = db_exec(&w->db,
			      "SELECT id::text, json_build_object('id', id, 'status', status,"
			      " 'hls_manifest_url', hls_manifest_url, 'started_at', started_at)::text"
			      " FROM nchat_streams WHERE livekit_ingress_id = $1 OR livekit_egress_id = $1",
			      1, params, &err);
		if (res != NULL && PQntuples(res) == 1) {
			snprintf(stream_id, sizeof(stream_id), "%s", PQgetvalue(res, 0, 0));
			data = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
		}
		PQclear(res);
	}
	db_rollback(&w->db);
	if (data != NULL && call_id[0] != '\0' && members != NULL) {
		size_t i;
		json_t *m;

		json_array_foreach(members, i, m)
			rt_publish_user(w, json_string_value(m), "call.updated", data);
	} else if (data != NULL && stream_id[0] != '\0') {
		rt_publish_stream(w, stream_id, "stream.status", data);
	}
	json_decref(members);
	json_decref(data);
}

static void api_webhook_livekit(struct req *r)
{
	struct nc_worker *w = req_worker(r);
	struct db_conn *db = &w->db;
	struct nc_error err = {0};
	struct wh_effect eff;
	struct wh_event e;
	char why[96], created[24];
	const char *event, *id, *params[4];
	PGresult *res;
	int64_t created_at;
	int n;
	size_t body_len = 0;
	const char *body = req_raw_body(r, &body_len);

	if (webhook_verify(req_cfg(r)->webhook_keys, req_cfg(r)->n_webhook_keys, req_cfg(r)->webhook_leeway_s,
			   req_header(r, "Authorization"), body, body_len, now_unix(), why,
			   sizeof(why)) != 0) {
		atomic_fetch_add(&rejected, 1);
		metrics_inc(M_WEBHOOK_AUTH_FAILURES);
		log_warn("webhook: refused a delivery from %s: %s", req_client_addr(r), why);
		resp_error(r, NC_EUNAUTH, "webhook signature invalid: %s", why);
		return;
	}
	if (webhook_decode(body, body_len, &e, why, sizeof(why)) != 0) {
		webhook_event_free(&e);
		resp_error(r, NC_EBADREQ, "%s", why);
		return;
	}
	event = e.event;
	id = e.id;
	created_at = e.created_at;
	if (created_at > 0)
		metrics_webhook_lag((double)(now_unix() - created_at));
	else
		created_at = now_unix();
	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	memset(&eff, 0, sizeof(eff));

	if (db_begin_service(db, &err) != NC_OK)
		goto fail;
	params[0] = id;
	params[1] = event;
	params[2] = e.room_name;
	params[3] = created;
	res = db_exec(db, "INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name,"
		      " created_at) VALUES ($1, $2, $3, to_timestamp($4::bigint))"
		      " ON CONFLICT (event_id) DO NOTHING", 4, params, &err);
	if (res == NULL)
		goto fail;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0) {
		db_rollback(db);
		log_debug("webhook: %s %s is a duplicate", event, id);
		metrics_webhook(event, "duplicate");
		resp_json(r, 200, json_pack("{s:s}", "status", "duplicate"));
		webhook_event_free(&e);
		return;
	}
	n = apply_event(w, &e, created_at, &eff, &err);
	if (n < 0)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	log_debug("webhook: %s %s %s", event, id, n > 0 ? "applied" : "ignored");
	metrics_webhook(event, n > 0 ? "applied" : "ignored");
	resp_json(r, 200, json_pack("{s:s}", "status", n > 0 ? "applied" : "ignored"));
	after_commit(w, &eff);
	if (n > 0)
		publish_resource_change(w, event, e.root);
	if (n > 0 && strcmp(event, "egress_ended") == 0)
		recordings_after_egress(w, json_string_value(json_object_get(e.info, "egressId")));
	json_decref(eff.members);
	webhook_event_free(&e);
	return;
fail:
	db_rollback(db);
	if (err.code == NC_OK || err.code == NC_EBADREQ || err.code == NC_ECONFLICT)
		err_set(&err, NC_EINTERNAL, "the event could not be applied");
	log_error("webhook: %s %s failed: %s", event, id, err.msg);
	metrics_webhook(event, "error");
	resp_nc_error(r, &err);
	json_decref(eff.members);
	webhook_event_free(&e);
}

const struct route webhook_routes[] = {
	{ RM_POST, "/api/webhooks/livekit", api_webhook_livekit, ROUTE_RAW_BODY, "webhooks.livekit" },
	{ 0, NULL, NULL, 0, NULL }
};
