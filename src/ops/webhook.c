/*
 * webhook.c - POST /api/webhooks/livekit: verify, de-duplicate and apply
 * LiveKit webhook events (PROTOCOL.md §6).
 *
 * Reply fast: verification is pure CPU; then the event id is recorded
 * (INSERT ... ON CONFLICT DO NOTHING: a second delivery, even one racing on
 * another instance, waits on the first's row and finds it there) in the
 * same transaction that applies the event to the rows it concerns, so an
 * event is applied exactly when its id is recorded.  Participant and track
 * events (the bulk of them) are one statement in one round trip that does
 * both and returns whom to tell (calls_db_webhook, the SQL function
 * nchat_rtc_webhook_participant); room, egress and ingress events run in one
 * short service transaction.  Side effects outside Postgres (presence,
 * realtime events, stopping a recording) follow the commit.  A failure
 * before commit is a 5xx with nothing recorded, so LiveKit retries.
 *
 * Order tolerance.  LiveKit delivers one room's events in order, but
 * retries, several nodes and a restarted receiver can still reorder them.
 * Each participant row keeps the createdAt of the newest participant event
 * applied (last_event_at):
 *   - participant_joined applies only if strictly newer, never to a closed
 *     call and never to a removed participant; the first invitee's answers
 *     a ringing call (active, started_at = their joinedAt);
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
 * Events of rooms that are not calls, of unknown calls, and of participants
 * that are not our users (egress, ingress, agents) are recorded and ignored.
 * A participant_left does not end the call: LiveKit closes the empty room
 * after its departure timeout and sends room_finished, and the sweep ends
 * calls whose room is gone; ending on the last leave would make the final
 * state depend on delivery order.
 */
#include "ops/ops.h"
#include "calls/calls.h"
#include "calls/calls_db.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/uuid.h"
#include "http/worker.h"
#include "livekit/webhook_verify.h"
#include "ops/webhook_event.h"
#include "realtime/events.h"
#include "realtime/presence.h"
#include "recordings/recordings.h"
#include "store/db_row.h"
#include "streams/streams.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong rejected;

unsigned long webhook_rejected_count(void)
{
	return atomic_load(&rejected);
}

/* ------------------------------------------------------------------ */
/* Outcomes                                                            */
/* ------------------------------------------------------------------ */

/* 200 {"status": outcome} (applied, ignored, duplicate), logged and counted. */
static void answer(struct req *r, const struct wh_event *e, const char *outcome)
{
	log_debug("webhook: %s %s %s", e->event, e->id, outcome);
	metrics_webhook(e->event, outcome);
	resp_json(r, 200, json_pack("{s:s}", "status", outcome));
}

/*
 * The event could not be applied (nothing of it is committed): a 5xx so
 * that LiveKit retries.  Postgres being down keeps its 503; anything else
 * is a 500 with a fixed message (the cause is logged, never sent).
 */
static enum nc_err not_applied(const struct wh_event *e, struct nc_error *err)
{
	log_error("webhook: %s %s failed: %s", e->event, e->id, err->msg);
	metrics_webhook(e->event, "error");
	if (err->code == NC_OK || err->code == NC_EBADREQ || err->code == NC_ECONFLICT)
		return err_set(err, NC_EINTERNAL, "the event could not be applied");
	return err->code;
}

/* ------------------------------------------------------------------ */
/* Participant and track events: one statement                         */
/* ------------------------------------------------------------------ */

/* The participant column a track drives (webhook_event.c's name) as calls_track; false if none. */
static bool track_of(const char *column, enum calls_track *out)
{
	static const struct { const char *column; enum calls_track track; } map[] = {
		{ "is_audio_enabled", CALLS_TRACK_AUDIO },
		{ "is_video_enabled", CALLS_TRACK_VIDEO },
		{ "is_screen_sharing", CALLS_TRACK_SCREEN },
	};

	for (size_t i = 0; column != NULL && i < NC_ARRAY_LEN(map); i++)
		if (strcmp(column, map[i].column) == 0) {
			*out = map[i].track;
			return true;
		}
	return false;
}

/*
 * Record and apply a participant or track event in one round trip
 * (calls_db_webhook), answer, then presence and call.updated to the members
 * the same statement returned.
 */
static enum nc_err apply_call_event(struct req *r, const struct wh_event *e, const char *created,
				    struct nc_error *err)
{
	struct nc_worker *w = req_worker(r);
	enum calls_wh_kind kind = e->kind == WH_TRACK ? CALLS_WH_TRACK
				  : e->up ? CALLS_WH_JOINED : CALLS_WH_LEFT;
	struct calls_wh_event ce = {0};
	struct calls_wh_result res;
	char identity[37] = "", joined_at[24] = "";

	if (e->identity != NULL)
		uuid_lower(e->identity, identity);
	if (e->joined_at > 0)
		snprintf(joined_at, sizeof(joined_at), "%lld", (long long)e->joined_at);
	ce.event_id = e->id;
	ce.event = e->event;
	ce.room_name = e->room_name;
	ce.created = created;
	ce.call_id = e->call_id[0] != '\0' ? e->call_id : NULL;
	ce.identity = identity[0] != '\0' ? identity : NULL;
	ce.joined_at = joined_at[0] != '\0' ? joined_at : NULL;
	ce.sid = e->participant_sid;
	ce.has_column = kind == CALLS_WH_TRACK && track_of(e->track_column, &ce.track);
	ce.published = e->up;
	if (calls_db_webhook(&w->db, kind, &ce, &res, err) != NC_OK)
		return not_applied(e, err);
	answer(r, e, res.duplicate ? "duplicate" : res.applied ? "applied" : "ignored");
	if (res.applied) {
		if (res.presence > 0)
			presence_join(w, e->call_id, identity);
		else if (res.presence < 0)
			presence_leave(w, e->call_id, identity);
		calls_publish(w, res.members, "call.updated", e->call_id, res.status, NULL);
	}
	calls_wh_result_free(&res);
	return NC_OK;
}

/* ------------------------------------------------------------------ */
/* Room, egress and ingress events: one transaction                    */
/* ------------------------------------------------------------------ */

/* What to do after commit: a call that ended (presence, call.ended, recording). */
struct wh_effect {
	char call_id[37];
	bool ended;
	json_t *members;
};

/* 1 applied, 0 ignored (not a call of ours), -1 error. */
static int apply_room(const struct nc_config *cfg, struct db_conn *db, const struct wh_event *e,
		      int64_t created_at, const char *created, struct wh_effect *eff,
		      struct nc_error *err)
{
	char status[16], at[32];
	int n;

	if (e->call_id[0] == '\0')
		return 0;
	n = calls_db_lock_status(db, e->call_id, false, status, err);
	if (n <= 0)
		return n;
	if (e->up || calls_status_terminal(status)) {
		/* room_started: nothing but the event time (see the file comment). */
		return calls_db_touch_event(db, e->call_id, created, err) == NC_OK ? 1 : -1;
	}
	format_rfc3339(created_at, at, sizeof(at));
	if (calls_close_tx(cfg, db, e->call_id, "ended", "room_finished", at, err) < 0 ||
	    calls_db_touch_event(db, e->call_id, created, err) != NC_OK)
		return -1;
	eff->members = calls_db_member_ids(db, e->call_id, err);
	if (eff->members == NULL)
		return -1;
	snprintf(eff->call_id, sizeof(eff->call_id), "%s", e->call_id);
	eff->ended = true;
	return 1;
}

/* 1 applied, 0 ignored, -1 error. */
static int apply_event(struct nc_worker *w, const struct wh_event *e, int64_t created_at,
		       struct wh_effect *eff, struct nc_error *err)
{
	char created[24];
	int n;

	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	switch (e->kind) {
	case WH_ROOM:
		return apply_room(w->cfg, &w->db, e, created_at, created, eff, err);
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
	case WH_PARTICIPANT: /* apply_call_event */
	case WH_TRACK:
	case WH_OTHER:
		break;
	}
	return 0; /* unknown event: ignored */
}

static void after_commit(struct nc_worker *w, const struct wh_effect *eff)
{
	struct nc_error err = {0};

	if (!eff->ended)
		return;
	if (recordings_stop_for_call(w, eff->call_id, &err) != NC_OK)
		log_warn("webhook: stopping the recording of %s failed: %s", eff->call_id, err.msg);
	presence_end_call(w, eff->call_id, eff->members);
	calls_publish(w, eff->members, "call.ended", eff->call_id, "ended", "room_finished");
}

/*
 * Egress and ingress hooks run inside the event's transaction and cannot
 * publish; after the commit, tell the affected clients what changed: a
 * recording's state to the call's members, a stream's state to its viewers.
 * Best effort: each read is a statement of its own.
 */
static void publish_resource_change(struct nc_worker *w, const struct wh_event *e)
{
	const char *egress = json_string_value(json_object_get(json_object_get(e->root, "egressInfo"), "egressId"));
	const char *ingress = json_string_value(json_object_get(json_object_get(e->root, "ingressInfo"), "ingressId"));
	struct nc_error err = {0};
	const char *params[1];
	PGresult *res = NULL;
	json_t *members = NULL, *data = NULL, *m;
	char call_id[37] = "", stream_id[37] = "";
	size_t i;

	if ((e->kind != WH_EGRESS || egress == NULL) && (e->kind != WH_INGRESS || ingress == NULL))
		return;
	if (egress != NULL) {
		params[0] = egress;
		res = db_exec_service(&w->db,
			"SELECT r.call_id::text, json_build_object('callId', r.call_id, 'recording',"
			" json_build_object('id', r.id, 'status', r.status))::text"
			" FROM nchat_call_recordings r WHERE r.livekit_egress_id = $1", 1, params, &err);
		if (res != NULL && PQntuples(res) == 1) {
			snprintf(call_id, sizeof(call_id), "%s", PQgetvalue(res, 0, 0));
			data = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
		}
		PQclear(res);
		res = NULL;
		if (call_id[0] != '\0')
			members = calls_db_member_ids_service(&w->db, call_id, &err);
	}
	if (call_id[0] == '\0') {
		params[0] = egress != NULL ? egress : ingress;
		res = db_exec_service(&w->db,
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
	if (data != NULL && call_id[0] != '\0' && members != NULL) {
		json_array_foreach(members, i, m)
			rt_publish_user(w, json_string_value(m), "call.updated", data);
	} else if (data != NULL && stream_id[0] != '\0') {
		rt_publish_stream(w, stream_id, "stream.status", data);
	}
	json_decref(members);
	json_decref(data);
}

/*
 * Record the event id and apply a room, egress or ingress event in one
 * service transaction, answer, then what follows the commit.  An error
 * leaves the transaction open for dispatch to roll back.
 */
static enum nc_err apply_in_tx(struct req *r, const struct wh_event *e, int64_t created_at,
			       struct nc_error *err)
{
	struct nc_worker *w = req_worker(r);
	struct wh_effect eff = {0};
	char created[24];
	const char *params[4] = { e->id, e->event, e->room_name, created };
	PGresult *res;
	int n;

	snprintf(created, sizeof(created), "%lld", (long long)created_at);
	if (db_begin_service(&w->db, err) != NC_OK)
		return not_applied(e, err);
	res = db_exec(&w->db, "INSERT INTO nchat_livekit_webhook_events (event_id, event, room_name,"
		      " created_at) VALUES ($1, $2, $3, to_timestamp($4::bigint))"
		      " ON CONFLICT (event_id) DO NOTHING", 4, params, err);
	if (res == NULL)
		return not_applied(e, err);
	n = row_affected(res);
	PQclear(res);
	if (n == 0) {
		db_rollback(&w->db); /* nothing written: ends the transaction */
		answer(r, e, "duplicate");
		return NC_OK;
	}
	n = apply_event(w, e, created_at, &eff, err);
	if (n < 0 || db_commit(&w->db, err) != NC_OK) {
		json_decref(eff.members);
		return not_applied(e, err);
	}
	answer(r, e, n > 0 ? "applied" : "ignored");
	after_commit(w, &eff);
	json_decref(eff.members);
	if (n > 0)
		publish_resource_change(w, e);
	if (n > 0 && e->kind == WH_EGRESS && strcmp(e->event, "egress_ended") == 0)
		recordings_after_egress(w, json_string_value(json_object_get(e->info, "egressId")));
	return NC_OK;
}

/* ------------------------------------------------------------------ */
/* The receiver                                                        */
/* ------------------------------------------------------------------ */

static enum nc_err api_webhook_livekit(struct req *r, struct nc_error *err)
{
	const struct nc_config *cfg = req_cfg(r);
	size_t body_len = 0;
	const char *body = req_raw_body(r, &body_len);
	struct wh_event e;
	char why[96];
	int64_t created_at;
	enum nc_err rc;

	if (webhook_verify(cfg->webhook_keys, cfg->n_webhook_keys, cfg->webhook_leeway_s,
			   req_header(r, "Authorization"), body, body_len, now_unix(), why,
			   sizeof(why)) != 0) {
		atomic_fetch_add(&rejected, 1);
		metrics_inc(M_WEBHOOK_AUTH_FAILURES);
		log_warn("webhook: refused a delivery from %s: %s", req_client_addr(r), why);
		return err_set(err, NC_EUNAUTH, "webhook signature invalid: %s", why);
	}
	if (webhook_decode(body, body_len, &e, why, sizeof(why)) != 0) {
		webhook_event_free(&e);
		return err_set(err, NC_EBADREQ, "%s", why);
	}
	created_at = e.created_at;
	if (created_at > 0)
		metrics_webhook_lag((double)(now_unix() - created_at));
	else
		created_at = now_unix();
	if (e.kind == WH_PARTICIPANT || e.kind == WH_TRACK) {
		char created[24];

		snprintf(created, sizeof(created), "%lld", (long long)created_at);
		rc = apply_call_event(r, &e, created, err);
	} else {
		rc = apply_in_tx(r, &e, created_at, err);
	}
	webhook_event_free(&e);
	return rc;
}

const struct route webhook_routes[] = {
	{ RM_POST, "/api/webhooks/livekit", api_webhook_livekit, ROUTE_RAW_BODY,
	  "webhooks.livekit", NULL },
	{ 0, NULL, NULL, 0, NULL, NULL }
};
