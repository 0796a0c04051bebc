/*
 * api_calls.c - the calls half of the HTTP API (API.md "Calls"): initiate,
 * join, decline, leave and their routes (host controls in api_calls_host.c,
 * reads and stats in api_calls_read.c).  Each handler returns its error
 * (route_fn); dispatch rolls back what it left open and answers it.
 *
 * Authorisation is decided here in C against rows read in service context
 * (calls_db.c holds the statements).  LiveKit is never called while a
 * transaction is open.  What only informs others (realtime events,
 * presence) is queued and sent after the response (rds_append).
 *
 * Round trips to Postgres: join is one (calls_db_join), initiate two (the
 * check, then CreateRoom to LiveKit, then the insert), decline and leave
 * take the call row lock first and so run as a transaction.
 */
#include "calls/api_calls.h"
#include "core/uuid.h"
#include "calls/calls.h"
#include "realtime/events.h"
#include "core/jsonv.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "realtime/presence.h"
#include "livekit/turn.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL_METADATA_MAX 4096
/* Seconds LiveKit keeps an empty room beyond the ring timeout. */
#define ROOM_EMPTY_MARGIN_S 30
/* Seconds LiveKit keeps a room after the last participant left. */
#define ROOM_DEPARTURE_TIMEOUT_S 30

static const char *const call_types[] = { "audio", "video", "screen_share", NULL };

void calls_param(const struct req *r, const char *name, char out[37])
{
	uuid_lower(req_param(r, name), out);
}

json_t *calls_status_body(const char *call_id, const char *status)
{
	return json_pack("{s:s, s:s}", "callId", call_id, "status", status);
}

static unsigned sources_for(const char *type)
{
	if (strcmp(type, "audio") == 0)
		return LK_SRC_MICROPHONE;
	if (strcmp(type, "video") == 0)
		return LK_SRC_CAMERA | LK_SRC_MICROPHONE | LK_SRC_SCREEN_SHARE |
		       LK_SRC_SCREEN_SHARE_AUDIO;
	/* screen_share */
	return LK_SRC_SCREEN_SHARE | LK_SRC_SCREEN_SHARE_AUDIO | LK_SRC_MICROPHONE;
}

/*
 * Add roomName, token, iceServers, livekitUrl and expiresAt to out for the
 * caller in room: identity = user id, roomJoin for that room only,
 * canPublishSources by call type, no admin grants (a join again within a
 * tenth of the token's lifetime gets the same token: lk_token_mint_reuse).
 * false if minting failed.
 */
static bool add_join_fields(struct req *r, json_t *out, const char *room, const char *type,
			    const char *display_name)
{
	struct lk_token_opts o;
	int64_t now = now_unix(), exp;
	char *token, expires[32];

	memset(&o, 0, sizeof(o));
	o.identity = req_user(r)->user_id;
	o.name = display_name;
	o.ttl_s = req_cfg(r)->livekit_token_ttl_s;
	o.grant.room = room;
	o.grant.room_join = true;
	o.grant.can_publish = LK_TRUE;
	o.grant.can_subscribe = LK_TRUE;
	o.grant.can_publish_data = LK_TRUE;
	o.grant.sources = sources_for(type);
	token = lk_token_mint_reuse(req_cfg(r)->livekit_api_key, req_cfg(r)->livekit_api_secret,
				    &o, now, &exp);
	if (token == NULL)
		return false;
	format_rfc3339(exp, expires, sizeof(expires));
	json_object_set_new(out, "roomName", json_string(room));
	json_object_set_new(out, "token", json_string(token));
	json_object_set_new(out, "iceServers", turn_ice_servers(req_cfg(r), req_user(r)->user_id, now));
	json_object_set_new(out, "livekitUrl", json_string(req_cfg(r)->livekit_url));
	json_object_set_new(out, "expiresAt", json_string(expires));
	free(token);
	return true;
}

/* ------------------------------------------------------------------ */
/* POST /api/calls/initiate                                            */
/* ------------------------------------------------------------------ */

struct invitees {
	char (*ids)[37];
	size_t n, cap;
};

static void inv_add(struct invitees *v, const char *id, const char *caller)
{
	char low[37];

	uuid_lower(id, low);
	if (strcmp(low, caller) == 0)
		return; /* the caller is the initiator, not an invitee */
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->ids[i], low) == 0)
			return;
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->ids = xrealloc(v->ids, v->cap * sizeof(*v->ids));
	}
	memcpy(v->ids[v->n++], low, 37);
}

/*
 * The caller and the invitees, and with a channel its membership, in one
 * read; for a channel call without named targets the invitees are filled
 * from the channel.  *caller_name set on success.
 */
static enum nc_err initiate_check(struct req *r, const char *channel, struct invitees *inv,
				  char **caller_name, struct nc_error *err)
{
	struct calls_initiate_check chk;
	int cap = req_cfg(r)->max_room_participants;
	bool named = inv->n > 0;
	char *lit = uuid_array_literal((const char (*)[37])inv->ids, inv->n);
	enum nc_err rc;
	json_t *m;
	size_t i;

	rc = calls_db_initiate_check(&req_worker(r)->db, req_user(r)->user_id, lit, channel, cap,
				     &chk, err);
	free(lit);
	if (rc != NC_OK)
		return rc;
	if (!chk.caller_exists)
		rc = err_set(err, NC_EFORBIDDEN, "the caller is not a registered user");
	else if (chk.missing_user[0] != '\0')
		rc = err_set(err, NC_ENOTFOUND, "user %s not found", chk.missing_user);
	else if (channel != NULL && !chk.channel_exists)
		rc = err_set(err, NC_ENOTFOUND, "channel not found");
	else if (channel != NULL && !chk.caller_member)
		rc = err_set(err, NC_EFORBIDDEN, "the caller is not a member of the channel");
	else if (channel != NULL && named && chk.non_member[0] != '\0')
		rc = err_set(err, NC_EFORBIDDEN, "user %s is not a member of the channel",
			     chk.non_member);
	else if (channel != NULL && !named && json_array_size(chk.fill) > (size_t)cap - 1)
		rc = err_set(err, NC_ECONFLICT, "the channel has more members than a call holds (%d);"
			     " name the targets with targetUserIds", cap);
	else if (channel != NULL && !named && json_array_size(chk.fill) == 0)
		rc = err_set(err, NC_EBADREQ, "the channel has no other member to call");
	if (rc == NC_OK && channel != NULL && !named)
		json_array_foreach(chk.fill, i, m)
			inv_add(inv, json_string_value(m), req_user(r)->user_id);
	if (rc == NC_OK) {
		*caller_name = chk.caller_name;
		chk.caller_name = NULL;
	}
	calls_initiate_check_free(&chk);
	return rc;
}

/* CreateRoom "call-<id>" with the call id in its metadata. */
static enum nc_err create_room(struct req *r, const char *room, const char *call_id,
			       const char *type, struct nc_error *err)
{
	Livekit__CreateRoomRequest req = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	Livekit__Room *resp;
	struct lk_status st;
	char *meta;

	if (req_worker(r)->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	meta = xasprintf("{\"callId\":\"%s\",\"callType\":\"%s\"}", call_id, type);
	req.name = (char *)room;
	req.empty_timeout = (uint32_t)(req_cfg(r)->ring_timeout_s + ROOM_EMPTY_MARGIN_S);
	req.departure_timeout = ROOM_DEPARTURE_TIMEOUT_S;
	req.max_participants = (uint32_t)req_cfg(r)->max_room_participants;
	req.metadata = meta;
	resp = lk_create_room(req_worker(r)->lk, &req, &st);
	free(meta);
	if (resp == NULL)
		return lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return NC_OK;
}

/* The call, its participants and the call.started outbox rows: one statement. */
static enum nc_err initiate_insert(struct req *r, const char *call_id, const char *room,
				   const char *type, const char *channel, json_t *meta,
				   struct invitees *inv, struct nc_error *err)
{
	struct calls_new c;
	char *meta_s, *arr, *urls, *payload;
	json_t *ev;
	enum nc_err rc;

	meta_s = meta ? json_dumps(meta, JSON_COMPACT) : xstrdup("{}");
	ev = json_pack("{s:s, s:s, s:s, s:s?, s:i}", "callId", call_id, "callType", type,
		       "initiatorId", req_user(r)->user_id, "channelId", channel,
		       "participants", (int)inv->n + 1);
	payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (meta_s == NULL || payload == NULL) {
		free(meta_s);
		free(payload);
		return err_set(err, NC_EINTERNAL, "cannot encode the call");
	}
	arr = uuid_array_literal((const char (*)[37])inv->ids, inv->n);
	urls = outbox_urls_literal(req_cfg(r));
	memset(&c, 0, sizeof(c));
	c.id = call_id;
	c.room = room;
	c.type = type;
	c.initiator = req_user(r)->user_id;
	c.channel = channel;
	c.group = inv->n > 1 || channel != NULL;
	c.metadata = meta_s;
	c.max_participants = req_cfg(r)->max_room_participants;
	c.ring_timeout_s = req_cfg(r)->ring_timeout_s;
	c.invitees_literal = arr;
	c.outbox_urls_literal = urls;
	c.outbox_payload = payload;
	rc = calls_db_create(&req_worker(r)->db, &c, err);
	free(meta_s);
	free(payload);
	free(arr);
	free(urls);
	return rc;
}

/* Check the request body into inv / channel / type / meta. */
static enum nc_err initiate_body(struct req *r, json_t *body, struct invitees *inv,
				 char chan_low[37], const char **channel, const char **type,
				 json_t **meta, struct nc_error *err)
{
	json_t *targets = NULL, *item;
	const char *target = NULL;
	size_t cap = (size_t)req_cfg(r)->max_room_participants, i;

	if (jv_uuid(body, "targetUserId", 0, &target, err) < 0 ||
	    jv_uuid_array(body, "targetUserIds", 0, 10000, &targets, err) < 0 ||
	    jv_uuid(body, "channelId", 0, channel, err) < 0 ||
	    jv_enum(body, "type", JV_REQUIRED, call_types, type, err) < 0 ||
	    jv_object(body, "metadata", 0, CALL_METADATA_MAX, meta, err) < 0)
		return err->code;
	if (target == NULL && targets == NULL && *channel == NULL)
		return err_set(err, NC_EBADREQ,
			       "one of targetUserId, targetUserIds or channelId is required");
	if (target != NULL)
		inv_add(inv, target, req_user(r)->user_id);
	json_array_foreach(targets, i, item)
		inv_add(inv, json_string_value(item), req_user(r)->user_id);
	if ((target != NULL || targets != NULL) && inv->n == 0)
		return err_set(err, NC_EBADREQ, "no one to call: the caller cannot call only themself");
	if (inv->n > cap - 1)
		return err_set(err, NC_EBADREQ, "at most %zu invitees per call", cap - 1);
	if (*channel != NULL) {
		uuid_lower(*channel, chan_low);
		*channel = chan_low;
	}
	return NC_OK;
}

/*
 * The room first, then the rows: if LiveKit fails no row is ever written,
 * and if the rows cannot be written the room is deleted again.
 */
static enum nc_err initiate_create(struct req *r, const char *call_id, const char *room,
				   const char *type, const char *channel, json_t *meta,
				   struct invitees *inv, struct nc_error *err)
{
	struct nc_error derr = {0};
	enum nc_err rc;

	if (create_room(r, room, call_id, type, err) != NC_OK) {
		log_warn("calls: CreateRoom %s failed: %s", room, err->msg);
		return err->code;
	}
	rc = initiate_insert(r, call_id, room, type, channel, meta, inv, err);
	if (rc == NC_OK)
		return NC_OK;
	log_error("calls: recording call %s failed (%s); deleting its room", call_id, err->msg);
	if (calls_delete_room(req_worker(r), room, &derr) != NC_OK)
		log_error("calls: DeleteRoom %s failed too: %s", room, derr.msg);
	if (rc == NC_EUNAVAILABLE)
		return rc;
	return err_set(err, NC_EINTERNAL, "the call could not be recorded");
}

static enum nc_err api_calls_initiate(struct req *r, struct nc_error *err)
{
	json_t *body = req_body(r), *meta = NULL, *out, *invite;
	const char *channel = NULL, *type = NULL;
	char chan_low[37], call_id[37], room[64], *caller_name = NULL;
	struct invitees inv = {0};
	enum nc_err rc;

	if (calls_no_body(r))
		return err_set(err, NC_EBADREQ, "request body must be a JSON object");
	rc = initiate_body(r, body, &inv, chan_low, &channel, &type, &meta, err);
	if (rc == NC_OK)
		rc = initiate_check(r, channel, &inv, &caller_name, err);
	if (rc != NC_OK)
		goto out;
	uuid_v4(call_id);
	snprintf(room, sizeof(room), CALL_ROOM_PREFIX "%s", call_id);
	rc = initiate_create(r, call_id, room, type, channel, meta, &inv, err);
	if (rc != NC_OK)
		goto out;
	out = json_pack("{s:s}", "callId", call_id);
	if (!add_join_fields(r, out, room, type, caller_name)) {
		json_decref(out);
		rc = err_set(err, NC_EINTERNAL, "cannot mint the LiveKit token");
		goto out;
	}
	json_object_set_new(out, "participants", json_integer((json_int_t)inv.n + 1));
	resp_json(r, 201, out);
	invite = json_pack("{s:s, s:s, s:s?, s:{s:s, s:s?}, s:s}", "callId", call_id,
			   "callType", type, "channelId", channel, "from", "userId",
			   req_user(r)->user_id, "displayName", caller_name, "roomName", room);
	for (size_t i = 0; invite != NULL && i < inv.n; i++)
		rt_publish_user(req_worker(r), inv.ids[i], "call.invite", invite);
	json_decref(invite);
out:
	free(inv.ids);
	free(caller_name);
	return rc;
}

/* ------------------------------------------------------------------ */
/* POST /api/calls/{id}/join                                           */
/* ------------------------------------------------------------------ */

/* The outcome of a join that did not join, as its error. */
static enum nc_err join_refused(const struct calls_join *j, struct nc_error *err)
{
	switch (j->outcome) {
	case CALLS_JOIN_NOT_FOUND:
		return err_set(err, NC_ENOTFOUND, "call not found");
	case CALLS_JOIN_FORBIDDEN:
		return err_set(err, NC_EFORBIDDEN, "not invited to this call");
	case CALLS_JOIN_GONE:
		return err_set(err, NC_EGONE, "the call is %s", j->status);
	case CALLS_JOIN_REMOVED:
		return err_set(err, NC_EFORBIDDEN, "removed from this call");
	case CALLS_JOIN_FULL:
		return err_set(err, NC_ECONFLICT, "the call is full (%d participants)",
			       j->max_participants);
	case CALLS_JOIN_OK:
		break;
	}
	return NC_OK;
}

static enum nc_err api_calls_join(struct req *r, struct nc_error *err)
{
	struct calls_join j;
	char id[37];
	json_t *out;
	enum nc_err rc;

	calls_param(r, "id", id);
	if (calls_db_join(&req_worker(r)->db, id, req_user(r)->user_id,
			  req_cfg(r)->max_room_participants, &j, err) != NC_OK)
		return err->code;
	rc = join_refused(&j, err);
	if (rc != NC_OK) {
		calls_join_free(&j);
		return rc;
	}
	out = json_object();
	if (!add_join_fields(r, out, j.room, j.type, j.display_name)) {
		json_decref(out);
		rc = err_set(err, NC_EINTERNAL, "cannot mint the LiveKit token");
	} else {
		json_object_set_new(out, "callType", json_string(j.type));
		resp_json(r, 200, out);
	}
	/* the join is written either way: presence (refreshed on a re-join too), the fan-out */
	presence_join(req_worker(r), id, req_user(r)->user_id);
	if (!j.rejoin)
		calls_publish(req_worker(r), j.members, "call.updated", id, j.status,
			      j.activated ? "answered" : "joined");
	calls_join_free(&j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* decline, leave                                                      */
/* ------------------------------------------------------------------ */

/*
 * The start of a participant's own action: a service transaction, the call
 * row locked with the caller's participant row.  NC_OK with the
 * transaction open; an error (404 for a call the caller may not see) with
 * it open too, for dispatch to roll back.
 */
static enum nc_err open_call(struct req *r, const char *id, struct call_row *c,
			     struct part_row *p, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	int n;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock(db, id, req_user(r)->user_id, req_cfg(r)->max_room_participants, c, p, err);
	if (n < 0)
		return err->code;
	/* a removed participant sees nothing of the call any more */
	if (n == 0 || (p->found && strcmp(p->status, "removed") == 0))
		return err_set(err, NC_ENOTFOUND, "call not found");
	return NC_OK;
}

/* Nothing to change: end the transaction (it wrote nothing) and answer {callId, status}. */
static enum nc_err unchanged(struct req *r, const char *id, const char *status)
{
	db_rollback(&req_worker(r)->db);
	resp_json(r, 200, calls_status_body(id, status));
	return NC_OK;
}

/* Commit, answer {callId, status}, then tell the members (or end the call's side effects). */
static enum nc_err finish_own_action(struct req *r, const char *id, const char *status,
				     bool ended, const char *reason, const char *update_reason,
				     struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	json_t *members = calls_db_member_ids(db, id, err);

	if (members == NULL || db_commit(db, err) != NC_OK) {
		json_decref(members);
		return err->code;
	}
	resp_json(r, 200, calls_status_body(id, status));
	if (strcmp(update_reason, "left") == 0)
		presence_leave(req_worker(r), id, req_user(r)->user_id);
	if (ended)
		calls_after_end(req_worker(r), id, members, status, reason, true);
	else
		calls_publish(req_worker(r), members, "call.updated", id, status, update_reason);
	json_decref(members);
	return NC_OK;
}

static enum nc_err api_calls_decline(struct req *r, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	struct part_row p;
	char id[37];
	bool ended = false;
	int n;

	calls_param(r, "id", id);
	if (open_call(r, id, &c, &p, err) != NC_OK)
		return err->code;
	if (!p.found || strcmp(p.role, "initiator") == 0)
		return err_set(err, NC_EFORBIDDEN, "only an invitee can decline this call");
	if (calls_status_terminal(c.status))
		return err_set(err, NC_EGONE, "the call is %s", c.status);
	if (strcmp(p.status, "declined") == 0)
		return unchanged(r, id, c.status);
	if (strcmp(p.status, "ringing") != 0 && strcmp(p.status, "invited") != 0)
		return err_set(err, NC_ECONFLICT, "cannot decline: participant is %s", p.status);
	if (calls_db_change_participant(db, id, req_user(r)->user_id, CALLS_PART_DECLINE, err) != NC_OK)
		return err->code;
	/* Nobody left to answer and nobody ever answered: the call is declined. */
	n = calls_db_count_open_invitees(db, id, err);
	if (n < 0)
		return err->code;
	if (n == 0 && !c.started) {
		if (calls_close_tx(req_cfg(r), db, id, "declined", "declined", NULL, err) < 0)
			return err->code;
		snprintf(c.status, sizeof(c.status), "declined");
		ended = true;
	}
	return finish_own_action(r, id, c.status, ended, "declined", "declined", err);
}

static enum nc_err api_calls_leave(struct req *r, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct call_row c;
	struct part_row p;
	char id[37];
	bool ended = false;
	int n;

	calls_param(r, "id", id);
	if (open_call(r, id, &c, &p, err) != NC_OK)
		return err->code;
	if (!p.found)
		return err_set(err, NC_EFORBIDDEN, "not a participant of this call");
	/* Leaving what is already over, or twice, changes nothing. */
	if (!calls_status_terminal(c.status) &&
	    (strcmp(p.status, "ringing") == 0 || strcmp(p.status, "invited") == 0))
		return err_set(err, NC_ECONFLICT, "not in the call yet: decline it instead");
	if (calls_status_terminal(c.status) || strcmp(p.status, "joined") != 0)
		return unchanged(r, id, c.status);
	if (calls_db_change_participant(db, id, req_user(r)->user_id, CALLS_PART_LEAVE, err) != NC_OK)
		return err->code;
	n = calls_db_count_joined(db, id, err);
	if (n < 0)
		return err->code;
	if (n == 0) {
		if (calls_close_tx(req_cfg(r), db, id, "ended", "everyone_left", NULL, err) < 0)
			return err->code;
		snprintf(c.status, sizeof(c.status), "ended");
		ended = true;
	}
	return finish_own_action(r, id, c.status, ended, "everyone_left", "left", err);
}

#define CALL_ROUTE (ROUTE_AUTH | ROUTE_UUID_PARAMS)

const struct route calls_routes[] = {
	{ RM_POST, "/api/calls/initiate", api_calls_initiate, ROUTE_AUTH | ROUTE_JSON,
	  "calls.initiate", NULL },
	{ RM_POST, "/api/calls/{id}/join", api_calls_join, CALL_ROUTE, "calls.join", NULL },
	{ RM_POST, "/api/calls/{id}/decline", api_calls_decline, CALL_ROUTE, "calls.decline", NULL },
	{ RM_POST, "/api/calls/{id}/leave", api_calls_leave, CALL_ROUTE, "calls.leave", NULL },
	{ 0, NULL, NULL, 0, NULL, NULL }
};
