/*
 * api_calls.c - the calls half of the HTTP API (API.md "Calls"):
 * initiate, join, decline, leave, end, read (one call, history), host
 * controls (mute, remove) and client connection statistics.
 *
 * Authorisation is decided here in C against rows read in a service
 * transaction; reads meant for the caller (GET) run in the caller's user
 * context so that row-level security decides what is visible.  LiveKit is
 * never called while a transaction is open, except where stated.
 */
#include "http/http.h"
#include "core/b64.h"
#include "core/uuid.h"
#include "calls/calls.h"
#include "realtime/events.h"
#include "recordings/recordings.h"
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

/* An RFC 3339 UTC text of a timestamptz column. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char *const call_types[] = { "audio", "video", "screen_share", NULL };

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* The {id} path parameter as a lower-case UUID; answers 400 and returns false if malformed. */
static bool path_uuid(struct req *r, const char *name, char out[37])
{
	const char *v = req_param(r, name);

	if (v == NULL || !is_uuid(v)) {
		resp_error(r, NC_EBADREQ, "%s is not a UUID", name);
		return false;
	}
	for (size_t i = 0; i < 37; i++)
		out[i] = (v[i] >= 'A' && v[i] <= 'F') ? (char)(v[i] - 'A' + 'a') : v[i];
	return true;
}

/* Fail the request with err after rolling back whatever is open. */
static void fail(struct req *r, struct nc_error *err)
{
	db_rollback(&r->w->db);
	resp_nc_error(r, err);
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
 * canPublishSources by call type, no admin grants.  false if minting failed.
 */
static bool add_join_fields(struct req *r, json_t *out, const char *room, const char *type,
			    const char *display_name)
{
	struct lk_token_opts o;
	int64_t now = now_unix();
	char *token, expires[32];

	memset(&o, 0, sizeof(o));
	o.identity = r->user.user_id;
	o.name = display_name;
	o.ttl_s = r->cfg->livekit_token_ttl_s;
	o.grant.room = room;
	o.grant.room_join = true;
	o.grant.can_publish = LK_TRUE;
	o.grant.can_subscribe = LK_TRUE;
	o.grant.can_publish_data = LK_TRUE;
	o.grant.sources = sources_for(type);
	token = lk_token_mint(r->cfg->livekit_api_key, r->cfg->livekit_api_secret, &o, now);
	if (token == NULL)
		return false;
	format_rfc3339(now + o.ttl_s, expires, sizeof(expires));
	json_object_set_new(out, "roomName", json_string(room));
	json_object_set_new(out, "token", json_string(token));
	json_object_set_new(out, "iceServers", turn_ice_servers(r->cfg, r->user.user_id, now));
	json_object_set_new(out, "livekitUrl", json_string(r->cfg->livekit_url));
	json_object_set_new(out, "expiresAt", json_string(expires));
	free(token);
	return true;
}

/* display_name of a user (malloc'd), NULL when unknown or NULL; *exists says whether the row is there. */
static char *user_display_name(struct db_conn *db, const char *user_id, bool *exists,
			       struct nc_error *err)
{
	const char *params[1] = { user_id };
	PGresult *res = db_exec(db, "SELECT display_name FROM nchat_users WHERE id = $1", 1,
				params, err);
	char *name = NULL;

	*exists = false;
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1) {
		*exists = true;
		if (db_val(res, 0, 0) != NULL)
			name = xstrdup(db_val(res, 0, 0));
	}
	PQclear(res);
	return name;
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
 * Check the caller and the invitees in a read-only service transaction and,
 * for a channel call without explicit targets, fill the invitees from the
 * channel.  Answers the error itself and returns false on failure.
 */
static bool initiate_check(struct req *r, const char *channel, bool explicit_targets,
			   struct invitees *inv, char **caller_name)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	const char *params[3];
	PGresult *res;
	char *arr, cap_s[16];
	bool exists;
	int cap = r->cfg->max_room_participants;

	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return false;
	}
	*caller_name = user_display_name(db, r->user.user_id, &exists, &err);
	if (err.code != NC_OK) {
		fail(r, &err);
		return false;
	}
	if (!exists) {
		db_rollback(db);
		resp_error(r, NC_EFORBIDDEN, "the caller is not a registered user");
		return false;
	}
	if (inv->n > 0) {
		arr = uuid_array_literal((const char (*)[37])inv->ids, inv->n);
		params[0] = arr;
		res = db_exec(db, "SELECT u.id::text FROM unnest($1::uuid[]) AS u(id)"
			      " WHERE NOT EXISTS (SELECT 1 FROM nchat_users x WHERE x.id = u.id)"
			      " LIMIT 1", 1, params, &err);
		free(arr);
		if (res == NULL) {
			fail(r, &err);
			return false;
		}
		if (PQntuples(res) > 0) {
			db_rollback(db);
			resp_error(r, NC_ENOTFOUND, "user %s not found", PQgetvalue(res, 0, 0));
			PQclear(res);
			return false;
		}
		PQclear(res);
	}
	if (channel == NULL) {
		db_rollback(db);
		return true;
	}
	params[0] = channel;
	params[1] = r->user.user_id;
	res = db_exec(db, "SELECT EXISTS (SELECT 1 FROM nchat_channels WHERE id = $1),"
		      " EXISTS (SELECT 1 FROM nchat_channel_members"
		      "         WHERE channel_id = $1 AND user_id = $2)", 2, params, &err);
	if (res == NULL) {
		fail(r, &err);
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		db_rollback(db);
		resp_error(r, NC_ENOTFOUND, "channel not found");
		return false;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		PQclear(res);
		db_rollback(db);
		resp_error(r, NC_EFORBIDDEN, "the caller is not a member of the channel");
		return false;
	}
	PQclear(res);
	if (explicit_targets) {
		arr = uuid_array_literal((const char (*)[37])inv->ids, inv->n);
		params[1] = arr;
		res = db_exec(db, "SELECT u.id::text FROM unnest($2::uuid[]) AS u(id)"
			      " WHERE NOT EXISTS (SELECT 1 FROM nchat_channel_members m"
			      "                   WHERE m.channel_id = $1 AND m.user_id = u.id)"
			      " LIMIT 1", 2, params, &err);
		free(arr);
		if (res == NULL) {
			fail(r, &err);
			return false;
		}
		if (PQntuples(res) > 0) {
			db_rollback(db);
			resp_error(r, NC_EFORBIDDEN, "user %s is not a member of the channel",
				   PQgetvalue(res, 0, 0));
			PQclear(res);
			return false;
		}
		PQclear(res);
		db_rollback(db);
		return true;
	}
	/* Everyone else in the channel, one more than fits to detect overflow. */
	snprintf(cap_s, sizeof(cap_s), "%d", cap);
	params[2] = cap_s;
	res = db_exec(db, "SELECT user_id::text FROM nchat_channel_members"
		      " WHERE channel_id = $1 AND user_id <> $2 ORDER BY user_id LIMIT $3::int",
		      3, params, &err);
	if (res == NULL) {
		fail(r, &err);
		return false;
	}
	db_rollback(db);
	if (PQntuples(res) > cap - 1) {
		PQclear(res);
		resp_error(r, NC_ECONFLICT, "the channel has more members than a call holds (%d);"
			   " name the targets with targetUserIds", cap);
		return false;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		resp_error(r, NC_EBADREQ, "the channel has no other member to call");
		return false;
	}
	for (int i = 0; i < PQntuples(res); i++)
		inv_add(inv, PQgetvalue(res, i, 0), r->user.user_id);
	PQclear(res);
	return true;
}

/* CreateRoom "call-<id>" with the call id in its metadata. */
static enum nc_err create_room(struct req *r, const char *room, const char *call_id,
			       const char *type, struct nc_error *err)
{
	Livekit__CreateRoomRequest req = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	Livekit__Room *resp;
	struct lk_status st;
	char *meta;

	if (r->w->lk == NULL)
		return err_set(err, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
	meta = xasprintf("{\"callId\":\"%s\",\"callType\":\"%s\"}", call_id, type);
	req.name = (char *)room;
	req.empty_timeout = (uint32_t)(r->cfg->ring_timeout_s + ROOM_EMPTY_MARGIN_S);
	req.departure_timeout = ROOM_DEPARTURE_TIMEOUT_S;
	req.max_participants = (uint32_t)r->cfg->max_room_participants;
	req.metadata = meta;
	resp = lk_create_room(r->w->lk, &req, &st);
	free(meta);
	if (resp == NULL)
		return lk_status_error(&st, err);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return NC_OK;
}

/* Write the call and its participant rows in one service transaction. */
static enum nc_err initiate_insert(struct req *r, const char *call_id, const char *room,
				   const char *type, const char *channel, json_t *meta,
				   struct invitees *inv, struct nc_error *err)
{
	struct db_conn *db = &r->w->db;
	char group[2], cap_s[16], ring_s[16], *meta_s, *arr;
	const char *params[9];
	PGresult *res;
	json_t *ev;

	snprintf(group, sizeof(group), "%s", (inv->n > 1 || channel != NULL) ? "t" : "f");
	snprintf(cap_s, sizeof(cap_s), "%d", r->cfg->max_room_participants);
	snprintf(ring_s, sizeof(ring_s), "%d", r->cfg->ring_timeout_s);
	meta_s = meta ? json_dumps(meta, JSON_COMPACT) : xstrdup("{}");
	if (meta_s == NULL)
		return err_set(err, NC_EINTERNAL, "cannot encode metadata");
	if (db_begin_service(db, err) != NC_OK) {
		free(meta_s);
		return err->code;
	}
	params[0] = call_id;
	params[1] = room;
	params[2] = type;
	params[3] = r->user.user_id;
	params[4] = channel;
	params[5] = group;
	params[6] = meta_s;
	params[7] = cap_s;
	params[8] = ring_s;
	res = db_exec(db, "INSERT INTO nchat_calls (id, livekit_room_name, call_type, status,"
		      " initiator_id, channel_id, is_group_call, metadata, max_participants,"
		      " ring_expires_at) VALUES ($1, $2, $3, 'ringing', $4, $5, $6::boolean,"
		      " $7::jsonb, $8::int, now() + make_interval(secs => $9::int))",
		      9, params, err);
	free(meta_s);
	if (res == NULL)
		goto fail;
	PQclear(res);
	params[1] = r->user.user_id;
	res = db_exec(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status,"
		      " joined_at, livekit_identity) VALUES ($1, $2::uuid, 'initiator', 'joined',"
		      " now(), $2::text)", 2, params, err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	arr = uuid_array_literal((const char (*)[37])inv->ids, inv->n);
	params[1] = arr;
	res = db_exec(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status,"
		      " livekit_identity) SELECT $1, u, 'participant', 'ringing', u::text"
		      " FROM unnest($2::uuid[]) AS u", 2, params, err);
	free(arr);
	if (res == NULL)
		goto fail;
	PQclear(res);
	ev = json_pack("{s:s, s:s, s:s, s:s?, s:i}", "callId", call_id, "callType", type,
		       "initiatorId", r->user.user_id, "channelId", channel,
		       "participants", (int)inv->n + 1);
	if (outbox_enqueue(db, r->cfg, "call.started", ev, err) != NC_OK) {
		json_decref(ev);
		goto fail;
	}
	json_decref(ev);
	if (db_commit(db, err) != NC_OK)
		goto fail;
	return NC_OK;
fail:
	db_rollback(db);
	return err->code;
}

static void api_calls_initiate(struct req *r)
{
	json_t *body = req_json(r, false), *targets = NULL, *meta = NULL, *out, *item, *invite;
	struct nc_error err = {0};
	const char *target = NULL, *channel = NULL, *type = NULL;
	char chan_low[37], call_id[37], room[64], *caller_name = NULL;
	struct invitees inv = {0};
	size_t cap = (size_t)r->cfg->max_room_participants, i;
	enum nc_err rc;

	if (body == NULL)
		return;
	if (jv_uuid(body, "targetUserId", 0, &target, &err) < 0 ||
	    jv_uuid_array(body, "targetUserIds", 0, 10000, &targets, &err) < 0 ||
	    jv_uuid(body, "channelId", 0, &channel, &err) < 0 ||
	    jv_enum(body, "type", JV_REQUIRED, call_types, &type, &err) < 0 ||
	    jv_object(body, "metadata", 0, CALL_METADATA_MAX, &meta, &err) < 0) {
		resp_nc_error(r, &err);
		goto out;
	}
	if (target == NULL && targets == NULL && channel == NULL) {
		resp_error(r, NC_EBADREQ, "one of targetUserId, targetUserIds or channelId is required");
		goto out;
	}
	if (target != NULL)
		inv_add(&inv, target, r->user.user_id);
	json_array_foreach(targets, i, item)
		inv_add(&inv, json_string_value(item), r->user.user_id);
	if ((target != NULL || targets != NULL) && inv.n == 0) {
		resp_error(r, NC_EBADREQ, "no one to call: the caller cannot call only themself");
		goto out;
	}
	if (inv.n > cap - 1) {
		resp_error(r, NC_EBADREQ, "at most %zu invitees per call", cap - 1);
		goto out;
	}
	if (channel != NULL) {
		uuid_lower(channel, chan_low);
		channel = chan_low;
	}
	if (!initiate_check(r, channel, inv.n > 0, &inv, &caller_name))
		goto out;

	uuid_v4(call_id);
	snprintf(room, sizeof(room), CALL_ROOM_PREFIX "%s", call_id);
	/* The room first: if LiveKit fails no row is ever written. */
	if (create_room(r, room, call_id, type, &err) != NC_OK) {
		log_warn("calls: CreateRoom %s failed: %s", room, err.msg);
		resp_nc_error(r, &err);
		goto out;
	}
	rc = initiate_insert(r, call_id, room, type, channel, meta, &inv, &err);
	if (rc != NC_OK) {
		struct nc_error derr = {0};

		log_error("calls: recording call %s failed (%s); deleting its room", call_id, err.msg);
		if (calls_delete_room(r->w, room, &derr) != NC_OK)
			log_error("calls: DeleteRoom %s failed too: %s", room, derr.msg);
		if (rc == NC_EUNAVAILABLE)
			resp_nc_error(r, &err);
		else
			resp_error(r, NC_EINTERNAL, "the call could not be recorded");
		goto out;
	}

	out = json_pack("{s:s}", "callId", call_id);
	if (!add_join_fields(r, out, room, type, caller_name)) {
		json_decref(out);
		resp_error(r, NC_EINTERNAL, "cannot mint the LiveKit token");
		goto out;
	}
	json_object_set_new(out, "participants", json_integer((json_int_t)inv.n + 1));
	resp_json(r, 201, out);

	invite = json_pack("{s:s, s:s, s:s?, s:{s:s, s:s?}, s:s}", "callId", call_id,
			   "callType", type, "channelId", channel, "from", "userId",
			   r->user.user_id, "displayName", caller_name, "roomName", room);
	for (i = 0; invite != NULL && i < inv.n; i++)
		rt_publish_user(r->w, inv.ids[i], "call.invite", invite);
	json_decref(invite);
out:
	free(inv.ids);
	free(caller_name);
	json_decref(body);
}

/* ------------------------------------------------------------------ */
/* Loading a call for a state change                                   */
/* ------------------------------------------------------------------ */

struct call_row {
	char id[37];
	char status[16];
	char type[16];
	char room[64];
	char initiator[37];   /* "" when NULL */
	char channel[37];     /* "" when NULL */
	int max_participants;
	bool started;         /* started_at is set: some invitee joined */
};

struct part_row {
	bool found;
	char id[37];
	char status[16];
	char role[16];
};

static void copy_col(char *dst, size_t n, const PGresult *res, int col)
{
	const char *v = db_val(res, 0, col);

	snprintf(dst, n, "%s", v ? v : "");
}

/*
 * Inside an open service transaction: lock and read the call and the
 * participant row of user_id (when user_id is not NULL).  Returns 1 found,
 * 0 no such call, -1 error.
 */
static int load_call(struct db_conn *db, const char *call_id, const char *user_id, int cap,
		     struct call_row *c, struct part_row *p, struct nc_error *err)
{
	const char *params[2] = { call_id, user_id };
	PGresult *res;

	memset(c, 0, sizeof(*c));
	res = db_exec(db, "SELECT id::text, status, call_type, livekit_room_name,"
		      " initiator_id::text, channel_id::text, max_participants,"
		      " started_at IS NOT NULL FROM nchat_calls WHERE id = $1 FOR UPDATE",
		      1, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	copy_col(c->id, sizeof(c->id), res, 0);
	copy_col(c->status, sizeof(c->status), res, 1);
	copy_col(c->type, sizeof(c->type), res, 2);
	copy_col(c->room, sizeof(c->room), res, 3);
	copy_col(c->initiator, sizeof(c->initiator), res, 4);
	copy_col(c->channel, sizeof(c->channel), res, 5);
	c->max_participants = db_val(res, 0, 6) ? atoi(db_val(res, 0, 6)) : cap;
	c->started = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
	PQclear(res);
	if (p == NULL || user_id == NULL)
		return 1;
	memset(p, 0, sizeof(*p));
	res = db_exec(db, "SELECT id::text, status, role FROM nchat_call_participants"
		      " WHERE call_id = $1 AND user_id = $2 FOR UPDATE", 2, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		p->found = true;
		copy_col(p->id, sizeof(p->id), res, 0);
		copy_col(p->status, sizeof(p->status), res, 1);
		copy_col(p->role, sizeof(p->role), res, 2);
	}
	PQclear(res);
	return 1;
}

static int is_channel_member(struct db_conn *db, const char *channel, const char *user_id,
			     struct nc_error *err)
{
	const char *params[2] = { channel, user_id };
	PGresult *res;
	int yes;

	if (channel == NULL || *channel == '\0')
		return 0;
	res = db_exec(db, "SELECT 1 FROM nchat_channel_members WHERE channel_id = $1"
		      " AND user_id = $2", 2, params, err);
	if (res == NULL)
		return -1;
	yes = PQntuples(res) > 0;
	PQclear(res);
	return yes;
}

static json_t *status_body(const char *call_id, const char *status)
{
	return json_pack("{s:s, s:s}", "callId", call_id, "status", status);
}

/* ------------------------------------------------------------------ */
/* POST /api/calls/{id}/join                                           */
/* ------------------------------------------------------------------ */

/*
 * The joining user's display name (NULL when unknown) and the ids of the
 * call's members (for the call.updated fan-out) in one round trip: join is
 * the hot path (make bench), and these were two statements.
 */
static enum nc_err join_name_and_members(struct db_conn *db, const char *call_id,
					 const char *user_id, char **name, json_t **members,
					 struct nc_error *err)
{
	const char *params[2] = { call_id, user_id };
	PGresult *res = db_exec(db, "SELECT (SELECT display_name FROM nchat_users WHERE id = $2::uuid),"
				" (SELECT COALESCE(json_agg(user_id::text), '[]') FROM"
				" nchat_call_participants WHERE call_id = $1 AND user_id IS NOT NULL)",
				2, params, err);
	json_error_t jerr;

	*name = NULL;
	*members = NULL;
	if (res == NULL)
		return err->code;
	*members = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
	if (*members == NULL || !json_is_array(*members)) {
		PQclear(res);
		json_decref(*members);
		*members = NULL;
		return err_set(err, NC_EINTERNAL, "cannot read the call's members");
	}
	if (db_val(res, 0, 0) != NULL)
		*name = xstrdup(db_val(res, 0, 0));
	PQclear(res);
	return NC_OK;
}

/*
 * The start of every per-call action of the caller: the {id} path parameter,
 * a service transaction, and the call row locked with the caller's
 * participant row.  Returns false after answering (400/404/503) with no
 * transaction left open; true with the transaction open.
 */
static bool open_call(struct req *r, char id[37], struct call_row *c, struct part_row *p)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	int n;

	if (!path_uuid(r, "id", id))
		return false;
	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return false;
	}
	n = load_call(db, id, r->user.user_id, r->cfg->max_room_participants, c, p, &err);
	if (n < 0) {
		fail(r, &err);
		return false;
	}
	if (n == 0) {
		db_rollback(db);
		resp_error(r, NC_ENOTFOUND, "call not found");
		return false;
	}
	return true;
}

static void api_calls_join(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct call_row c;
	struct part_row p;
	char id[37], *name = NULL;
	const char *params[3];
	PGresult *res;
	json_t *members = NULL, *out;
	bool activated = false;
	int n;

	if (!open_call(r, id, &c, &p))
		return;
	if (!p.found) {
		n = is_channel_member(db, c.channel, r->user.user_id, &err);
		if (n < 0)
			goto fail;
		if (n == 0) {
			db_rollback(db);
			resp_error(r, NC_EFORBIDDEN, "not invited to this call");
			return;
		}
	}
	if (calls_status_terminal(c.status)) {
		db_rollback(db);
		resp_error(r, NC_EGONE, "the call is %s", c.status);
		return;
	}
	if (p.found && strcmp(p.status, "removed") == 0) {
		db_rollback(db);
		resp_error(r, NC_EFORBIDDEN, "removed from this call");
		return;
	}
	if (!p.found || strcmp(p.status, "joined") != 0) {
		/* The room cap, checked again on every join. */
		n = calls_count_joined(db, id, &err);
		if (n < 0)
			goto fail;
		if (n >= c.max_participants) {
			db_rollback(db);
			resp_error(r, NC_ECONFLICT, "the call is full (%d participants)",
				   c.max_participants);
			return;
		}
		params[0] = id;
		params[1] = r->user.user_id;
		if (p.found)
			res = db_exec(db, "UPDATE nchat_call_participants SET status = 'joined',"
				      " joined_at = now(), left_at = NULL, livekit_identity = $2::text"
				      " WHERE call_id = $1 AND user_id = $2::uuid", 2, params, &err);
		else
			res = db_exec(db, "INSERT INTO nchat_call_participants (call_id, user_id,"
				      " role, status, joined_at, livekit_identity)"
				      " VALUES ($1, $2::uuid, 'participant', 'joined', now(), $2::text)",
				      2, params, &err);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	if (strcmp(c.status, "ringing") == 0 && strcmp(c.initiator, r->user.user_id) != 0) {
		params[0] = id;
		res = db_exec(db, "UPDATE nchat_calls SET status = 'active',"
			      " started_at = COALESCE(started_at, now()) WHERE id = $1", 1, params,
			      &err);
		if (res == NULL)
			goto fail;
		PQclear(res);
		snprintf(c.status, sizeof(c.status), "active");
		activated = true;
	}
	if (join_name_and_members(db, id, r->user.user_id, &name, &members, &err) != NC_OK)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;

	presence_join(r->w, id, r->user.user_id);
	out = json_object();
	if (!add_join_fields(r, out, c.room, c.type, name)) {
		json_decref(out);
		resp_error(r, NC_EINTERNAL, "cannot mint the LiveKit token");
	} else {
		json_object_set_new(out, "callType", json_string(c.type));
		resp_json(r, 200, out);
	}
	calls_publish(r->w, members, "call.updated", id, c.status,
		      activated ? "answered" : "joined");
	json_decref(members);
	free(name);
	return;
fail:
	free(name);
	json_decref(members);
	fail(r, &err);
}

/* ------------------------------------------------------------------ */
/* decline, leave                                                      */
/* ------------------------------------------------------------------ */

/* Count invitees still ringing/invited/joined (role participant). */
static int count_open_invitees(struct db_conn *db, const char *id, struct nc_error *err)
{
	const char *params[1] = { id };
	PGresult *res = db_exec(db, "SELECT count(*) FROM nchat_call_participants"
				" WHERE call_id = $1 AND role = 'participant'"
				" AND status IN ('ringing', 'invited', 'joined')", 1, params, err);
	int n;

	if (res == NULL)
		return -1;
	n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

static void api_calls_decline(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct call_row c;
	struct part_row p;
	char id[37];
	const char *params[2];
	PGresult *res;
	json_t *members = NULL;
	bool ended = false;
	int n;

	if (!open_call(r, id, &c, &p))
		return;
	if (!p.found || strcmp(p.role, "initiator") == 0) {
		db_rollback(db);
		resp_error(r, NC_EFORBIDDEN, "only an invitee can decline this call");
		return;
	}
	if (calls_status_terminal(c.status)) {
		db_rollback(db);
		resp_error(r, NC_EGONE, "the call is %s", c.status);
		return;
	}
	if (strcmp(p.status, "declined") == 0) {
		db_rollback(db);
		resp_json(r, 200, status_body(id, c.status));
		return;
	}
	if (strcmp(p.status, "ringing") != 0 && strcmp(p.status, "invited") != 0) {
		db_rollback(db);
		resp_error(r, NC_ECONFLICT, "cannot decline: participant is %s", p.status);
		return;
	}
	params[0] = id;
	params[1] = r->user.user_id;
	res = db_exec(db, "UPDATE nchat_call_participants SET status = 'declined'"
		      " WHERE call_id = $1 AND user_id = $2", 2, params, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	/* Nobody left to answer and nobody ever answered: the call is declined. */
	n = count_open_invitees(db, id, &err);
	if (n < 0)
		goto fail;
	if (n == 0 && !c.started) {
		if (calls_close_tx(r->cfg, db, id, "declined", "declined", NULL, &err) < 0)
			goto fail;
		snprintf(c.status, sizeof(c.status), "declined");
		ended = true;
	}
	members = calls_member_ids(db, id, &err);
	if (members == NULL)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	resp_json(r, 200, status_body(id, c.status));
	if (ended)
		calls_after_end(r->w, id, members, "declined", "declined", true);
	else
		calls_publish(r->w, members, "call.updated", id, c.status, "declined");
	json_decref(members);
	return;
fail:
	json_decref(members);
	fail(r, &err);
}

static void api_calls_leave(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct call_row c;
	struct part_row p;
	char id[37];
	const char *params[2];
	PGresult *res;
	json_t *members = NULL;
	bool ended = false;
	int n;

	if (!open_call(r, id, &c, &p))
		return;
	if (!p.found) {
		db_rollback(db);
		resp_error(r, NC_EFORBIDDEN, "not a participant of this call");
		return;
	}
	/* Leaving what is already over, or twice, changes nothing. */
	if (calls_status_terminal(c.status) || strcmp(p.status, "joined") != 0) {
		db_rollback(db);
		if (!calls_status_terminal(c.status) &&
		    (strcmp(p.status, "ringing") == 0 || strcmp(p.status, "invited") == 0))
			resp_error(r, NC_ECONFLICT, "not in the call yet: decline it instead");
		else
			resp_json(r, 200, status_body(id, c.status));
		return;
	}
	params[0] = id;
	params[1] = r->user.user_id;
	res = db_exec(db, "UPDATE nchat_call_participants SET status = 'left', left_at = now(),"
		      " is_audio_enabled = false, is_video_enabled = false,"
		      " is_screen_sharing = false WHERE call_id = $1 AND user_id = $2",
		      2, params, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	n = calls_count_joined(db, id, &err);
	if (n < 0)
		goto fail;
	if (n == 0) {
		if (calls_close_tx(r->cfg, db, id, "ended", "everyone_left", NULL, &err) < 0)
			goto fail;
		snprintf(c.status, sizeof(c.status), "ended");
		ended = true;
	}
	members = calls_member_ids(db, id, &err);
	if (members == NULL)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	resp_json(r, 200, status_body(id, c.status));
	presence_leave(r->w, id, r->user.user_id);
	if (ended)
		calls_after_end(r->w, id, members, "ended", "everyone_left", true);
	else
		calls_publish(r->w, members, "call.updated", id, c.status, "left");
	json_decref(members);
	return;
fail:
	json_decref(members);
	fail(r, &err);
}

/* ------------------------------------------------------------------ */
/* Host actions: end, mute, remove                                     */
/* ------------------------------------------------------------------ */

/*
 * Read the call (no lock) and decide whether the caller may act as its host
 * (initiator, admin, moderator).  Answers 404 (unknown, or not visible to
 * the caller) / 403 itself and returns false.
 */
static bool load_for_host(struct req *r, const char *id, struct call_row *c)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct part_row p;
	int n;

	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return false;
	}
	n = load_call(db, id, r->user.user_id, r->cfg->max_room_participants, c, &p, &err);
	if (n < 0) {
		fail(r, &err);
		return false;
	}
	if (n == 0) {
		db_rollback(db);
		resp_error(r, NC_ENOTFOUND, "call not found");
		return false;
	}
	if (strcmp(c->initiator, r->user.user_id) == 0 || auth_is_staff(&r->user)) {
		db_rollback(db);
		return true;
	}
	n = p.found ? 1 : is_channel_member(db, c->channel, r->user.user_id, &err);
	db_rollback(db);
	if (n < 0)
		resp_nc_error(r, &err);
	else if (n == 0)
		resp_error(r, NC_ENOTFOUND, "call not found");
	else
		resp_error(r, NC_EFORBIDDEN, "only the initiator, an admin or a moderator may do this");
	return false;
}

static void api_calls_end(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct call_row c;
	char id[37];
	const char *reason;
	json_t *members = NULL, *details;
	int n;

	if (!path_uuid(r, "id", id))
		return;
	if (!load_for_host(r, id, &c))
		return;
	if (calls_status_terminal(c.status)) {
		resp_json(r, 200, status_body(id, c.status));
		return;
	}
	reason = strcmp(c.initiator, r->user.user_id) == 0 ? "ended_by_initiator"
							      : "ended_by_staff";
	/* LiveKit first: if it cannot be told, the call stays open and the caller retries. */
	if (calls_delete_room(r->w, c.room, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	memset(&err, 0, sizeof(err));
	if (recordings_stop_for_call(r->w, id, &err) != NC_OK)
		log_warn("calls: stopping the recording of %s failed: %s", id, err.msg);
	memset(&err, 0, sizeof(err));
	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	n = load_call(db, id, NULL, r->cfg->max_room_participants, &c, NULL, &err);
	if (n <= 0)
		goto fail;
	if (calls_status_terminal(c.status)) {
		/* Ended meanwhile by someone else: same outcome. */
		db_rollback(db);
		resp_json(r, 200, status_body(id, c.status));
		return;
	}
	n = calls_close_tx(r->cfg, db, id, "ended", reason, NULL, &err);
	if (n < 0)
		goto fail;
	details = json_pack("{s:s, s:i}", "reason", reason, "participantsClosed", n);
	if (audit_log(db, &r->user, "call.end", "call", id, details, r->request_id, &err) != NC_OK) {
		json_decref(details);
		goto fail;
	}
	json_decref(details);
	members = calls_member_ids(db, id, &err);
	if (members == NULL)
		goto fail;
	if (db_commit(db, &err) != NC_OK)
		goto fail;
	resp_json(r, 200, status_body(id, "ended"));
	presence_end_call(r->w, id, members);
	calls_publish(r->w, members, "call.ended", id, "ended", reason);
	json_decref(members);
	return;
fail:
	if (err.code == NC_OK)
		err_set(&err, NC_ENOTFOUND, "call not found");
	json_decref(members);
	fail(r, &err);
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

/* Does user_id have a participant row in the call?  1, 0, -1. */
static int has_participant(struct db_conn *db, const char *id, const char *user_id,
			   struct nc_error *err)
{
	const char *params[2] = { id, user_id };
	PGresult *res = db_exec(db, "SELECT 1 FROM nchat_call_participants WHERE call_id = $1"
				" AND user_id = $2", 2, params, err);
	int n;

	if (res == NULL)
		return -1;
	n = PQntuples(res) > 0;
	PQclear(res);
	return n;
}

static void api_calls_mute(struct req *r)
{
	struct db_conn *db = &r->w->db;
	json_t *body = req_json(r, false), *details, *members = NULL, *out;
	struct nc_error err = {0};
	struct call_row c;
	struct lk_status st;
	const char *source = NULL, *sid, *params[3], *col;
	char id[37], uid[37], *sid_copy = NULL, *sql;
	bool muted = true;
	Livekit__RoomParticipantIdentity gp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__ParticipantInfo *pi;
	Livekit__MuteRoomTrackRequest mr = LIVEKIT__MUTE_ROOM_TRACK_REQUEST__INIT;
	Livekit__MuteRoomTrackResponse *mresp;
	PGresult *res;
	int n;

	if (body == NULL)
		return;
	if (!path_uuid(r, "id", id) || !path_uuid(r, "userId", uid))
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
	if (db_begin_service(db, &err) != NC_OK || (n = has_participant(db, id, uid, &err)) < 0) {
		fail(r, &err);
		goto out;
	}
	db_rollback(db);
	if (n == 0) {
		resp_error(r, NC_ENOTFOUND, "user %s is not a participant of this call", uid);
		goto out;
	}
	if (r->w->lk == NULL) {
		resp_error(r, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		goto out;
	}
	gp.room = c.room;
	gp.identity = uid;
	pi = lk_get_participant(r->w->lk, &gp, &st);
	if (pi == NULL) {
		if (lk_status_is(&st, "not_found"))
			resp_error(r, NC_ENOTFOUND, "user %s is not connected to the call", uid);
		else {
			lk_status_error(&st, &err);
			resp_nc_error(r, &err);
		}
		goto out;
	}
	sid = find_track(pi, source);
	sid_copy = sid ? xstrdup(sid) : NULL;
	protobuf_c_message_free_unpacked(&pi->base, NULL);
	if (sid_copy == NULL) {
		resp_error(r, NC_ENOTFOUND, "user %s publishes no %s track", uid, source);
		goto out;
	}
	mr.room = c.room;
	mr.identity = uid;
	mr.track_sid = sid_copy;
	mr.muted = muted;
	mresp = lk_mute_published_track(r->w->lk, &mr, &st);
	if (mresp == NULL) {
		if (lk_status_is(&st, "failed_precondition"))
			resp_error(r, NC_ECONFLICT, "LiveKit refused: %s",
				   muted ? "the track cannot be muted now"
					 : "remote unmute is not enabled on the LiveKit server");
		else {
			lk_status_error(&st, &err);
			resp_nc_error(r, &err);
		}
		goto out;
	}
	protobuf_c_message_free_unpacked(&mresp->base, NULL);

	col = strcmp(source, "microphone") == 0 ? "is_audio_enabled"
	      : strcmp(source, "camera") == 0 ? "is_video_enabled" : "is_screen_sharing";
	if (db_begin_service(db, &err) != NC_OK)
		goto dbfail;
	params[0] = id;
	params[1] = uid;
	params[2] = muted ? "f" : "t";
	sql = xasprintf("UPDATE nchat_call_participants SET %s = $3::boolean"
			" WHERE call_id = $1 AND user_id = $2", col);
	res = db_exec(db, sql, 3, params, &err);
	free(sql);
	if (res == NULL)
		goto dbfail;
	PQclear(res);
	details = json_pack("{s:s, s:s, s:b, s:s}", "userId", uid, "source", source, "muted",
			    muted, "trackSid", sid_copy);
	if (audit_log(db, &r->user, "call.participant.mute", "call", id, details, r->request_id,
		      &err) != NC_OK) {
		json_decref(details);
		goto dbfail;
	}
	json_decref(details);
	members = calls_member_ids(db, id, &err);
	if (members == NULL || db_commit(db, &err) != NC_OK)
		goto dbfail;
	out = json_pack("{s:s, s:s, s:s, s:b, s:s}", "callId", id, "userId", uid, "source", source,
			"muted", muted, "trackSid", sid_copy);
	resp_json(r, 200, out);
	calls_publish(r->w, members, "call.updated", id, c.status, "muted");
	goto out;
dbfail:
	fail(r, &err);
out:
	json_decref(members);
	free(sid_copy);
	json_decref(body);
}

static void api_calls_remove(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	struct call_row c;
	struct part_row p;
	struct lk_status st;
	char id[37], uid[37];
	const char *params[2];
	Livekit__RoomParticipantIdentity rp = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__RemoveParticipantResponse *rresp;
	PGresult *res;
	json_t *members = NULL, *details;
	bool ended = false;
	int n;

	if (!path_uuid(r, "id", id) || !path_uuid(r, "userId", uid))
		return;
	if (!load_for_host(r, id, &c))
		return;
	if (calls_status_terminal(c.status)) {
		resp_error(r, NC_EGONE, "the call is %s", c.status);
		return;
	}
	if (strcmp(uid, r->user.user_id) == 0) {
		resp_error(r, NC_EBADREQ, "cannot remove yourself: leave the call instead");
		return;
	}
	if (db_begin_service(db, &err) != NC_OK || (n = has_participant(db, id, uid, &err)) < 0) {
		fail(r, &err);
		return;
	}
	db_rollback(db);
	if (n == 0) {
		resp_error(r, NC_ENOTFOUND, "user %s is not a participant of this call", uid);
		return;
	}
	if (r->w->lk == NULL) {
		resp_error(r, NC_ELIVEKIT_DOWN, "LiveKit is not configured");
		return;
	}
	rp.room = c.room;
	rp.identity = uid;
	rresp = lk_remove_participant(r->w->lk, &rp, &st);
	if (rresp != NULL)
		protobuf_c_message_free_unpacked(&rresp->base, NULL);
	else if (!lk_status_is(&st, "not_found")) {
		lk_status_error(&st, &err);
		resp_nc_error(r, &err);
		return;
	}
	if (db_begin_service(db, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	n = load_call(db, id, uid, r->cfg->max_room_participants, &c, &p, &err);
	if (n <= 0)
		goto fail;
	params[0] = id;
	params[1] = uid;
	res = db_exec(db, "UPDATE nchat_call_participants SET status = 'removed',"
		      " is_audio_enabled = false, is_video_enabled = false,"
		      " is_screen_sharing = false WHERE call_id = $1 AND user_id = $2",
		      2, params, &err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	details = json_pack("{s:s, s:s}", "userId", uid, "previousStatus", p.status);
	if (audit_log(db, &r->user, "call.participant.remove", "call", id, details, r->request_id,
		      &err) != NC_OK) {
		json_decref(details);
		goto fail;
	}
	json_decref(details);
	if (!calls_status_terminal(c.status)) {
		n = calls_count_joined(db, id, &err);
		if (n < 0)
			goto fail;
		if (n == 0) {
			if (calls_close_tx(r->cfg, db, id, "ended", "everyone_left", NULL, &err) < 0)
				goto fail;
			snprintf(c.status, sizeof(c.status), "ended");
			ended = true;
		}
	}
	members = calls_member_ids(db, id, &err);
	if (members == NULL || db_commit(db, &err) != NC_OK)
		goto fail;
	resp_json(r, 200, json_pack("{s:s, s:s, s:s}", "callId", id, "userId", uid, "status",
				    "removed"));
	presence_leave(r->w, id, uid);
	if (ended)
		calls_after_end(r->w, id, members, "ended", "everyone_left", true);
	else
		calls_publish(r->w, members, "call.updated", id, c.status, "removed");
	json_decref(members);
	return;
fail:
	if (err.code == NC_OK)
		err_set(&err, NC_ENOTFOUND, "call not found");
	json_decref(members);
	fail(r, &err);
}

/* ------------------------------------------------------------------ */
/* Reading: GET /api/calls/{id}, GET /api/calls                        */
/* ------------------------------------------------------------------ */

#define CALL_COLS \
	"c.id::text, c.livekit_room_name, c.call_type, c.status, c.initiator_id::text," \
	" c.channel_id::text, c.is_group_call, c.metadata::text, c.max_participants," \
	" c.end_reason, " TS("c.initiated_at") ", " TS("c.started_at") ", " TS("c.ended_at") "," \
	" " TS("c.ring_expires_at") "," \
	" EXISTS (SELECT 1 FROM nchat_call_recordings rec WHERE rec.call_id = c.id" \
	"         AND rec.status IN ('starting', 'active'))," \
	" to_char(c.initiated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define PART_COLS \
	"p.call_id::text, p.user_id::text, u.display_name, p.role, p.status, " TS("p.invited_at") "," \
	" " TS("p.joined_at") ", " TS("p.left_at") ", p.total_duration_seconds," \
	" p.is_audio_enabled, p.is_video_enabled, p.is_screen_sharing"

static json_t *str_or_null(const PGresult *res, int row, int col)
{
	const char *v = db_val(res, row, col);

	return v ? json_string(v) : json_null();
}

static json_t *call_json(const PGresult *res, int i)
{
	json_t *o = json_object(), *meta;
	const char *ms = db_val(res, i, 7);

	json_object_set_new(o, "id", json_string(PQgetvalue(res, i, 0)));
	json_object_set_new(o, "roomName", json_string(PQgetvalue(res, i, 1)));
	json_object_set_new(o, "callType", json_string(PQgetvalue(res, i, 2)));
	json_object_set_new(o, "status", json_string(PQgetvalue(res, i, 3)));
	json_object_set_new(o, "initiatorId", str_or_null(res, i, 4));
	json_object_set_new(o, "channelId", str_or_null(res, i, 5));
	json_object_set_new(o, "isGroupCall", json_boolean(strcmp(PQgetvalue(res, i, 6), "t") == 0));
	meta = ms ? json_loads(ms, 0, NULL) : NULL;
	json_object_set_new(o, "metadata", meta ? meta : json_object());
	json_object_set_new(o, "maxParticipants",
			    db_val(res, i, 8) ? json_integer(atoi(db_val(res, i, 8))) : json_null());
	json_object_set_new(o, "endReason", str_or_null(res, i, 9));
	json_object_set_new(o, "initiatedAt", str_or_null(res, i, 10));
	json_object_set_new(o, "startedAt", str_or_null(res, i, 11));
	json_object_set_new(o, "endedAt", str_or_null(res, i, 12));
	json_object_set_new(o, "ringExpiresAt", str_or_null(res, i, 13));
	json_object_set_new(o, "recordingActive",
			    json_boolean(strcmp(PQgetvalue(res, i, 14), "t") == 0));
	json_object_set_new(o, "participants", json_array());
	return o;
}

static json_t *participant_json(const PGresult *res, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "userId", str_or_null(res, i, 1));
	json_object_set_new(o, "displayName", str_or_null(res, i, 2));
	json_object_set_new(o, "role", json_string(PQgetvalue(res, i, 3)));
	json_object_set_new(o, "status", json_string(PQgetvalue(res, i, 4)));
	json_object_set_new(o, "invitedAt", str_or_null(res, i, 5));
	json_object_set_new(o, "joinedAt", str_or_null(res, i, 6));
	json_object_set_new(o, "leftAt", str_or_null(res, i, 7));
	json_object_set_new(o, "totalDurationSeconds", json_integer(atoi(PQgetvalue(res, i, 8))));
	json_object_set_new(o, "isAudioEnabled", json_boolean(strcmp(PQgetvalue(res, i, 9), "t") == 0));
	json_object_set_new(o, "isVideoEnabled", json_boolean(strcmp(PQgetvalue(res, i, 10), "t") == 0));
	json_object_set_new(o, "isScreenSharing",
			    json_boolean(strcmp(PQgetvalue(res, i, 11), "t") == 0));
	return o;
}

/*
 * Fill the "participants" arrays of the call objects in calls (indexed by
 * id in byid) with one query, then add presence flags.
 */
static enum nc_err fill_participants(struct req *r, json_t *byid, const char *ids_literal,
				     struct nc_error *err)
{
	const char *params[1] = { ids_literal };
	PGresult *res;
	const char *key;
	json_t *call;

	res = db_exec(&r->w->db, "SELECT " PART_COLS " FROM nchat_call_participants p"
		      " LEFT JOIN nchat_users u ON u.id = p.user_id"
		      " WHERE p.call_id = ANY($1::uuid[])"
		      " ORDER BY p.call_id, p.role = 'initiator' DESC, p.invited_at, p.user_id",
		      1, params, err);
	if (res == NULL)
		return err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		call = json_object_get(byid, PQgetvalue(res, i, 0));
		if (call != NULL)
			json_array_append_new(json_object_get(call, "participants"),
					      participant_json(res, i));
	}
	PQclear(res);
	json_object_foreach(byid, key, call)
		presence_annotate(r->w, key, json_object_get(call, "participants"));
	return NC_OK;
}

static void api_calls_get(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	char id[37], lit[40];
	const char *params[1];
	PGresult *res;
	json_t *call, *byid;

	if (!path_uuid(r, "id", id))
		return;
	/* User context: row-level security decides whether the caller sees it. */
	if (db_begin_user(db, r->user.user_id, &err) != NC_OK) {
		resp_nc_error(r, &err);
		return;
	}
	params[0] = id;
	res = db_exec(db, "SELECT " CALL_COLS " FROM nchat_calls c WHERE c.id = $1", 1, params,
		      &err);
	if (res == NULL) {
		fail(r, &err);
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(db);
		resp_error(r, NC_ENOTFOUND, "call not found");
		return;
	}
	call = call_json(res, 0);
	PQclear(res);
	byid = json_object();
	json_object_set(byid, id, call);
	snprintf(lit, sizeof(lit), "{%s}", id);
	if (fill_participants(r, byid, lit, &err) != NC_OK) {
		json_decref(byid);
		json_decref(call);
		fail(r, &err);
		return;
	}
	json_decref(byid);
	db_rollback(db); /* read only */
	resp_json(r, 200, call);
}

static const char *const call_statuses[] = {
	"initiating", "ringing", "active", "ended", "missed", "declined", "failed", NULL
};

/*
 * Decode a cursor "<timestamp>|<uuid>" (base64url) into ts and id; false if
 * it is not one we issued.
 */
static bool cursor_decode(const char *cur, char ts[40], char id[37])
{
	size_t n = strlen(cur);
	unsigned char dec[100];
	long len;
	char *bar;

	/* 128 characters decode to at most 96 bytes: dec has room for them and a NUL. */
	if (n == 0 || n > 128)
		return false;
	len = b64url_decode(cur, n, dec);
	if (len <= 0 || len >= (long)sizeof(dec))
		return false;
	dec[len] = '\0';
	bar = strchr((char *)dec, '|');
	if (bar == NULL || bar - (char *)dec >= 40 || !is_uuid(bar + 1))
		return false;
	*bar = '\0';
	for (char *q = (char *)dec; *q; q++)
		if (!((*q >= '0' && *q <= '9') || *q == '-' || *q == ':' || *q == '.' || *q == 'T' ||
		      *q == 'Z'))
			return false;
	memcpy(ts, dec, (size_t)(bar - (char *)dec) + 1);
	uuid_lower(bar + 1, id);
	return true;
}

static void api_calls_list(struct req *r)
{
	struct db_conn *db = &r->w->db;
	struct nc_error err = {0};
	char *status = req_query(r, "status"), *channel = req_query(r, "channelId");
	char *limit_s = req_query(r, "limit"), *before = req_query(r, "before");
	char ts[40], cid[37], lim[32], *lit = NULL, *cursor_text;
	const char *params[5] = { NULL, NULL, NULL, NULL, NULL };
	long limit = 20;
	bool ok = true;
	PGresult *res = NULL;
	json_t *items = NULL, *byid = NULL, *out;
	int rows;

	if (status != NULL) {
		ok = false;
		for (size_t i = 0; call_statuses[i]; i++)
			if (strcmp(status, call_statuses[i]) == 0)
				ok = true;
		if (!ok) {
			resp_error(r, NC_EBADREQ, "status must be one of initiating, ringing, active,"
				   " ended, missed, declined, failed");
			goto out;
		}
		params[0] = status;
	}
	if (channel != NULL) {
		if (!is_uuid(channel)) {
			resp_error(r, NC_EBADREQ, "channelId is not a UUID");
			goto out;
		}
		params[1] = channel;
	}
	if (limit_s != NULL && parse_long(limit_s, 1, 100, &limit) != 0) {
		resp_error(r, NC_EBADREQ, "limit must be an integer from 1 to 100");
		goto out;
	}
	if (before != NULL) {
		if (!cursor_decode(before, ts, cid)) {
			resp_error(r, NC_EBADREQ, "before is not a valid cursor");
			goto out;
		}
		params[2] = ts;
		params[3] = cid;
	}
	snprintf(lim, sizeof(lim), "%ld", limit + 1);
	params[4] = lim;
	if (db_begin_user(db, r->user.user_id, &err) != NC_OK) {
		resp_nc_error(r, &err);
		goto out;
	}
	res = db_exec(db, "SELECT " CALL_COLS " FROM nchat_calls c"
		      " WHERE ($1::text IS NULL OR c.status = $1)"
		      "   AND ($2::uuid IS NULL OR c.channel_id = $2::uuid)"
		      "   AND ($3::timestamptz IS NULL"
		      "        OR (c.initiated_at, c.id) < ($3::timestamptz, $4::uuid))"
		      " ORDER BY c.initiated_at DESC, c.id DESC LIMIT $5::int",
		      5, params, &err);
	if (res == NULL) {
		fail(r, &err);
		goto out;
	}
	rows = PQntuples(res);
	items = json_array();
	byid = json_object();
	lit = xmalloc((size_t)rows * 37 + 3);
	strcpy(lit, "{");
	for (int i = 0; i < rows && i < limit; i++) {
		json_t *call = call_json(res, i);

		json_array_append_new(items, call);
		json_object_set(byid, PQgetvalue(res, i, 0), call);
		if (i > 0)
			strcat(lit, ",");
		strcat(lit, PQgetvalue(res, i, 0));
	}
	strcat(lit, "}");
	out = json_pack("{s:o}", "items", items);
	items = NULL;
	if (rows > limit) {
		char *raw = xasprintf("%s|%s", PQgetvalue(res, (int)limit - 1, 15),
				      PQgetvalue(res, (int)limit - 1, 0));

		cursor_text = b64url_encode_str(raw);
		free(raw);
		json_object_set_new(out, "nextCursor", json_string(cursor_text));
		free(cursor_text);
	} else {
		json_object_set_new(out, "nextCursor", json_null());
	}
	if (rows > 0 && fill_participants(r, byid, lit, &err) != NC_OK) {
		json_decref(out);
		fail(r, &err);
		goto out;
	}
	db_rollback(db);
	resp_json(r, 200, out);
out:
	PQclear(res);
	json_decref(items);
	json_decref(byid);
	free(lit);
	free(status);
	free(channel);
	free(limit_s);
	free(before);
}

/* ------------------------------------------------------------------ */
/* POST /api/calls/{id}/stats                                          */
/* ------------------------------------------------------------------ */

static const char *const ice_states[] = {
	"new", "checking", "connected", "completed", "failed", "disconnected", "closed", NULL
};
static const char *const candidate_types[] = { "host", "srflx", "prflx", "relay", NULL };
static const char *const qualities[] = { "excellent", "good", "poor", "lost", "unknown", NULL };

/* 1 allowed, 0 over the limit; Redis down counts as allowed (best effort). */
static int stats_rate_ok(struct req *r, const char *id)
{
	struct nc_error err = {0};
	redisReply *rep;
	int ok = 1;

	if (!r->w->rds_ok)
		return 1;
	rep = rds_cmd(&r->w->rds, &err, "SET nchat:rl:stats:%s:%s 1 PX 1000 NX", id,
		      r->user.user_id);
	if (rep != NULL && rep->type == REDIS_REPLY_NIL)
		ok = 0;
	freeReplyObject(rep);
	return ok;
}

static void api_calls_stats(struct req *r)
{
	struct db_conn *db = &r->w->db;
	json_t *body = req_json(r, false);
	struct nc_error err = {0};
	const char *ice = "new", *lct = NULL, *rct = NULL, *quality = "unknown", *params[12];
	bool turn = false;
	double rtt = -1, jitter = -1, loss = -1;
	long long bitrate = -1;
	char id[37], rtt_s[32], jit_s[32], loss_s[32], br_s[32];
	PGresult *res;

	if (body == NULL)
		return;
	if (!path_uuid(r, "id", id))
		goto out;
	if (jv_enum(body, "iceConnectionState", 0, ice_states, &ice, &err) < 0 ||
	    jv_enum(body, "localCandidateType", 0, candidate_types, &lct, &err) < 0 ||
	    jv_enum(body, "remoteCandidateType", 0, candidate_types, &rct, &err) < 0 ||
	    jv_bool(body, "turnUsed", 0, &turn, &err) < 0 ||
	    jv_number(body, "rttMs", 0, 0, 600000, &rtt, &err) < 0 ||
	    jv_number(body, "jitterMs", 0, 0, 600000, &jitter, &err) < 0 ||
	    jv_number(body, "packetLossPct", 0, 0, 100, &loss, &err) < 0 ||
	    jv_int(body, "bitrateKbps", 0, 0, 10000000, &bitrate, &err) < 0 ||
	    jv_enum(body, "quality", 0, qualities, &quality, &err) < 0) {
		resp_nc_error(r, &err);
		goto out;
	}
	snprintf(rtt_s, sizeof(rtt_s), "%.3f", rtt);
	snprintf(jit_s, sizeof(jit_s), "%.3f", jitter);
	snprintf(loss_s, sizeof(loss_s), "%.3f", loss);
	snprintf(br_s, sizeof(br_s), "%lld", bitrate);
	/* User context: the policy lets a participant insert only their own row. */
	if (db_begin_user(db, r->user.user_id, &err) != NC_OK) {
		resp_nc_error(r, &err);
		goto out;
	}
	params[0] = id;
	params[1] = r->user.user_id;
	res = db_exec(db, "SELECT p.id::text FROM nchat_calls c LEFT JOIN nchat_call_participants p"
		      " ON p.call_id = c.id AND p.user_id = $2 AND p.status <> 'removed'"
		      " WHERE c.id = $1", 2, params, &err);
	if (res == NULL) {
		fail(r, &err);
		goto out;
	}
	if (PQntuples(res) == 0 || db_val(res, 0, 0) == NULL) {
		bool visible = PQntuples(res) > 0;

		PQclear(res);
		db_rollback(db);
		if (visible)
			resp_error(r, NC_EFORBIDDEN, "not a participant of this call");
		else
			resp_error(r, NC_ENOTFOUND, "call not found");
		goto out;
	}
	params[2] = PQgetvalue(res, 0, 0);
	if (!stats_rate_ok(r, id)) {
		PQclear(res);
		db_rollback(db);
		resp_header(r, "Retry-After", "1");
		resp_error(r, NC_ERATELIMIT, "at most one stats report per second per call");
		goto out;
	}
	params[3] = ice;
	params[4] = lct;
	params[5] = rct;
	params[6] = turn ? "t" : "f";
	params[7] = rtt >= 0 ? rtt_s : NULL;
	params[8] = jitter >= 0 ? jit_s : NULL;
	params[9] = loss >= 0 ? loss_s : NULL;
	params[10] = bitrate >= 0 ? br_s : NULL;
	params[11] = quality;
	{
		PGresult *ins = db_exec(db, "INSERT INTO nchat_webrtc_connections (call_id, user_id,"
					" participant_id, ice_connection_state, local_candidate_type,"
					" remote_candidate_type, turn_used, rtt_ms, jitter_ms,"
					" packet_loss_pct, bitrate_kbps, quality) VALUES ($1, $2, $3,"
					" $4, $5, $6, $7::boolean, $8::real, $9::real, $10::real,"
					" $11::int, $12) RETURNING id::text, " TS("created_at"),
					12, params, &err);

		PQclear(res);
		if (ins == NULL || db_commit(db, &err) != NC_OK) {
			PQclear(ins);
			fail(r, &err);
			goto out;
		}
		resp_json(r, 201, json_pack("{s:s, s:s}", "id", PQgetvalue(ins, 0, 0),
					    "createdAt", PQgetvalue(ins, 0, 1)));
		PQclear(ins);
	}
out:
	json_decref(body);
}

const struct route calls_routes[] = {
	{ RM_POST, "/api/calls/initiate", api_calls_initiate, ROUTE_AUTH, "calls.initiate" },
	{ RM_GET, "/api/calls", api_calls_list, ROUTE_AUTH, "calls.list" },
	{ RM_GET, "/api/calls/{id}", api_calls_get, ROUTE_AUTH, "calls.get" },
	{ RM_POST, "/api/calls/{id}/join", api_calls_join, ROUTE_AUTH, "calls.join" },
	{ RM_POST, "/api/calls/{id}/decline", api_calls_decline, ROUTE_AUTH, "calls.decline" },
	{ RM_POST, "/api/calls/{id}/leave", api_calls_leave, ROUTE_AUTH, "calls.leave" },
	{ RM_POST, "/api/calls/{id}/end", api_calls_end, ROUTE_AUTH, "calls.end" },
	{ RM_POST, "/api/calls/{id}/participants/{userId}/mute", api_calls_mute, ROUTE_AUTH,
	  "calls.mute" },
	{ RM_POST, "/api/calls/{id}/participants/{userId}/remove", api_calls_remove, ROUTE_AUTH,
	  "calls.remove" },
	{ RM_POST, "/api/calls/{id}/stats", api_calls_stats, ROUTE_AUTH, "calls.stats" },
	{ 0, NULL, NULL, 0, NULL }
};
