/*
 * calls_db.c - the statements of calls_db.h that change calls: locking,
 * participant changes, closing, initiate, join, the webhook's participant
 * events and the sweep's queries.  Reads for the API are in
 * calls_db_read.c.
 */
#include "calls/calls_db.h"
#include "store/db_row.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A one-row result's first row, or NULL (cleared) when it has none. */
static bool one_row(PGresult *res)
{
	return res != NULL && PQntuples(res) == 1;
}

/* A JSON array in a text column (NULL = empty); NULL on a bad value. */
static json_t *json_array_col(const PGresult *res, int row, const char *name)
{
	const char *v = row_text(res, row, name);
	json_t *a = v ? json_loads(v, 0, NULL) : json_array();

	if (a != NULL && !json_is_array(a)) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

/* ------------------------------------------------------------------ */
/* Locking and reading for a state change                              */
/* ------------------------------------------------------------------ */

int calls_db_lock(struct db_conn *db, const char *call_id, const char *user_id, int cap,
		  struct call_row *c, struct part_row *p, struct nc_error *err)
{
	const char *params[2] = { call_id, user_id };
	PGresult *res;

	memset(c, 0, sizeof(*c));
	res = db_exec(db, "SELECT id::text AS id, status, call_type, livekit_room_name AS room,"
		      " initiator_id::text AS initiator, channel_id::text AS channel,"
		      " max_participants, started_at IS NOT NULL AS started"
		      " FROM nchat_calls WHERE id = $1 FOR UPDATE", 1, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	row_copy(res, 0, "id", c->id, sizeof(c->id));
	row_copy(res, 0, "status", c->status, sizeof(c->status));
	row_copy(res, 0, "call_type", c->type, sizeof(c->type));
	row_copy(res, 0, "room", c->room, sizeof(c->room));
	row_copy(res, 0, "initiator", c->initiator, sizeof(c->initiator));
	row_copy(res, 0, "channel", c->channel, sizeof(c->channel));
	c->max_participants = (int)row_i64(res, 0, "max_participants", cap);
	c->started = row_true(res, 0, "started");
	PQclear(res);
	if (p == NULL || user_id == NULL)
		return 1;
	memset(p, 0, sizeof(*p));
	res = db_exec(db, "SELECT id::text AS id, status, role FROM nchat_call_participants"
		      " WHERE call_id = $1 AND user_id = $2 FOR UPDATE", 2, params, err);
	if (res == NULL)
		return -1;
	if (one_row(res)) {
		p->found = true;
		row_copy(res, 0, "id", p->id, sizeof(p->id));
		row_copy(res, 0, "status", p->status, sizeof(p->status));
		row_copy(res, 0, "role", p->role, sizeof(p->role));
	}
	PQclear(res);
	return 1;
}

int calls_db_lock_status(struct db_conn *db, const char *call_id, bool open_only,
			 char status[16], struct nc_error *err)
{
	const char *params[1] = { call_id };
	PGresult *res = db_exec(db, open_only
				? "SELECT status FROM nchat_calls WHERE id = $1"
				  " AND status IN ('initiating', 'ringing', 'active') FOR UPDATE"
				: "SELECT status FROM nchat_calls WHERE id = $1 FOR UPDATE",
				1, params, err);
	int n;

	if (res == NULL)
		return -1;
	n = one_row(res) ? 1 : 0;
	if (n)
		row_copy(res, 0, "status", status, 16);
	PQclear(res);
	return n;
}

/* A count(*) AS n statement with params. */
static int count_of(struct db_conn *db, const char *sql, int nparams, const char *const *params,
		    struct nc_error *err)
{
	PGresult *res = db_exec(db, sql, nparams, params, err);
	int n;

	if (res == NULL)
		return -1;
	n = (int)row_i64(res, 0, "n", 0);
	PQclear(res);
	return n;
}

int calls_db_is_channel_member(struct db_conn *db, const char *channel, const char *user_id,
			       struct nc_error *err)
{
	const char *params[2] = { channel, user_id };
	int n;

	if (channel == NULL || *channel == '\0')
		return 0;
	n = count_of(db, "SELECT count(*) AS n FROM nchat_channel_members"
		     " WHERE channel_id = $1 AND user_id = $2", 2, params, err);
	return n < 0 ? -1 : n > 0;
}

int calls_db_has_participant(struct db_conn *db, const char *call_id, const char *user_id,
			     struct nc_error *err)
{
	const char *params[2] = { call_id, user_id };
	int n = count_of(db, "SELECT count(*) AS n FROM nchat_call_participants"
			 " WHERE call_id = $1 AND user_id = $2", 2, params, err);

	return n < 0 ? -1 : n > 0;
}

int calls_db_count_joined(struct db_conn *db, const char *call_id, struct nc_error *err)
{
	const char *params[1] = { call_id };

	return count_of(db, "SELECT count(*) AS n FROM nchat_call_participants"
			" WHERE call_id = $1 AND status = 'joined'", 1, params, err);
}

int calls_db_count_open_invitees(struct db_conn *db, const char *call_id, struct nc_error *err)
{
	const char *params[1] = { call_id };

	return count_of(db, "SELECT count(*) AS n FROM nchat_call_participants"
			" WHERE call_id = $1 AND role = 'participant'"
			" AND status IN ('ringing', 'invited', 'joined')", 1, params, err);
}

#define MEMBER_IDS_SQL                                                             \
	"SELECT user_id::text AS user_id FROM nchat_call_participants"             \
	" WHERE call_id = $1 AND user_id IS NOT NULL AND status <> 'removed'"

/* The user_id column of res (cleared) as a JSON array; NULL when res is. */
static json_t *member_array(PGresult *res)
{
	json_t *arr;
	int col;

	if (res == NULL)
		return NULL;
	arr = json_array();
	col = row_col(res, "user_id");
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, json_string(PQgetvalue(res, i, col)));
	PQclear(res);
	return arr;
}

json_t *calls_db_member_ids(struct db_conn *db, const char *call_id, struct nc_error *err)
{
	const char *params[1] = { call_id };

	return member_array(db_exec(db, MEMBER_IDS_SQL, 1, params, err));
}

json_t *calls_db_member_ids_service(struct db_conn *db, const char *call_id, struct nc_error *err)
{
	const char *params[1] = { call_id };

	return member_array(db_exec_service(db, MEMBER_IDS_SQL, 1, params, err));
}

/* ------------------------------------------------------------------ */
/* Changes                                                             */
/* ------------------------------------------------------------------ */

static enum nc_err exec_ok(struct db_conn *db, const char *sql, int nparams,
			   const char *const *params, struct nc_error *err)
{
	PGresult *res = db_exec(db, sql, nparams, params, err);

	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

enum nc_err calls_db_change_participant(struct db_conn *db, const char *call_id,
					const char *user_id, enum calls_part_change change,
					struct nc_error *err)
{
	static const char *const sql[] = {
		[CALLS_PART_DECLINE] =
			"UPDATE nchat_call_participants SET status = 'declined'"
			" WHERE call_id = $1 AND user_id = $2",
		[CALLS_PART_LEAVE] =
			"UPDATE nchat_call_participants SET status = 'left', left_at = now(),"
			" is_audio_enabled = false, is_video_enabled = false,"
			" is_screen_sharing = false WHERE call_id = $1 AND user_id = $2",
		[CALLS_PART_REMOVE] =
			"UPDATE nchat_call_participants SET status = 'removed',"
			" is_audio_enabled = false, is_video_enabled = false,"
			" is_screen_sharing = false WHERE call_id = $1 AND user_id = $2",
	};
	const char *params[2] = { call_id, user_id };

	return exec_ok(db, sql[change], 2, params, err);
}

enum nc_err calls_db_set_track(struct db_conn *db, const char *call_id, const char *user_id,
			       enum calls_track track, bool on, struct nc_error *err)
{
	static const char *const sql[] = {
		[CALLS_TRACK_AUDIO] = "UPDATE nchat_call_participants SET is_audio_enabled ="
				      " $3::boolean WHERE call_id = $1 AND user_id = $2",
		[CALLS_TRACK_VIDEO] = "UPDATE nchat_call_participants SET is_video_enabled ="
				      " $3::boolean WHERE call_id = $1 AND user_id = $2",
		[CALLS_TRACK_SCREEN] = "UPDATE nchat_call_participants SET is_screen_sharing ="
				       " $3::boolean WHERE call_id = $1 AND user_id = $2",
	};
	const char *params[3] = { call_id, user_id, on ? "t" : "f" };

	return exec_ok(db, sql[track], 3, params, err);
}

enum nc_err calls_db_close(struct db_conn *db, const char *call_id, const char *status,
			   const char *end_reason, const char *at, struct calls_close_result *out,
			   struct nc_error *err)
{
	const char *params[4] = { call_id, status, end_reason, at };
	PGresult *res;

	/*
	 * The call row changes only if it is still open, and the participants
	 * are closed only through that change (the CTE), so a second close of
	 * the same call touches nothing.  Track flags are cleared: nobody
	 * publishes in a closed call.
	 */
	res = db_exec(db,
		      "WITH c AS ("
		      "  UPDATE nchat_calls SET status = $2, end_reason = $3,"
		      "         ended_at = COALESCE($4::timestamptz, now())"
		      "   WHERE id = $1 AND status IN ('initiating', 'ringing', 'active')"
		      "  RETURNING id, ended_at),"
		      " p AS ("
		      "  UPDATE nchat_call_participants p"
		      "    SET status = CASE WHEN p.status = 'joined' THEN 'left' ELSE 'missed' END,"
		      "        left_at = CASE WHEN p.status = 'joined'"
		      "                       THEN GREATEST(c.ended_at, p.joined_at) ELSE p.left_at END,"
		      "        is_audio_enabled = false, is_video_enabled = false,"
		      "        is_screen_sharing = false"
		      "   FROM c"
		      "  WHERE p.call_id = c.id AND p.status IN ('joined', 'ringing', 'invited')"
		      "  RETURNING p.id)"
		      " SELECT (SELECT count(*) FROM c) AS closed, (SELECT count(*) FROM p) AS participants",
		      4, params, err);
	if (res == NULL)
		return err->code;
	out->closed = row_i64(res, 0, "closed", 0) > 0;
	out->participants = (int)row_i64(res, 0, "participants", 0);
	PQclear(res);
	return NC_OK;
}

enum nc_err calls_db_touch_event(struct db_conn *db, const char *call_id, const char *created,
				 struct nc_error *err)
{
	const char *params[2] = { call_id, created };

	return exec_ok(db, "UPDATE nchat_calls SET last_event_at ="
		       " GREATEST(last_event_at, to_timestamp($2::bigint)) WHERE id = $1",
		       2, params, err);
}

/* ------------------------------------------------------------------ */
/* Initiate                                                            */
/* ------------------------------------------------------------------ */

void calls_initiate_check_free(struct calls_initiate_check *c)
{
	free(c->caller_name);
	json_decref(c->fill);
	memset(c, 0, sizeof(*c));
}

enum nc_err calls_db_initiate_check(struct db_conn *db, const char *caller,
				    const char *invitees_literal, const char *channel, int limit,
				    struct calls_initiate_check *out, struct nc_error *err)
{
	char lim[16];
	const char *params[4] = { caller, invitees_literal, channel, lim };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	snprintf(lim, sizeof(lim), "%d", limit);
	res = db_exec_service(db,
		"SELECT EXISTS (SELECT 1 FROM nchat_users WHERE id = $1::uuid) AS caller_exists,"
		" (SELECT display_name FROM nchat_users WHERE id = $1::uuid) AS caller_name,"
		" (SELECT u.id::text FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, n)"
		"   WHERE NOT EXISTS (SELECT 1 FROM nchat_users x WHERE x.id = u.id)"
		"   ORDER BY u.n LIMIT 1) AS missing_user,"
		" $3::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channels"
		"   WHERE id = $3::uuid) AS channel_exists,"
		" $3::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members"
		"   WHERE channel_id = $3::uuid AND user_id = $1::uuid) AS caller_member,"
		" (SELECT u.id::text FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, n)"
		"   WHERE $3::uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nchat_channel_members m"
		"     WHERE m.channel_id = $3::uuid AND m.user_id = u.id)"
		"   ORDER BY u.n LIMIT 1) AS non_member,"
		" CASE WHEN $3::uuid IS NOT NULL AND cardinality($2::uuid[]) = 0 THEN"
		"   (SELECT COALESCE(json_agg(f.user_id::text), '[]') FROM"
		"     (SELECT user_id FROM nchat_channel_members WHERE channel_id = $3::uuid"
		"       AND user_id <> $1::uuid ORDER BY user_id LIMIT $4::int) f) END AS fill",
		4, params, err);
	if (res == NULL)
		return err->code;
	out->caller_exists = row_true(res, 0, "caller_exists");
	out->caller_name = row_dup(res, 0, "caller_name");
	row_copy(res, 0, "missing_user", out->missing_user, sizeof(out->missing_user));
	out->channel_exists = row_true(res, 0, "channel_exists");
	out->caller_member = row_true(res, 0, "caller_member");
	row_copy(res, 0, "non_member", out->non_member, sizeof(out->non_member));
	if (row_text(res, 0, "fill") != NULL && (out->fill = json_array_col(res, 0, "fill")) == NULL) {
		PQclear(res);
		calls_initiate_check_free(out);
		return err_set(err, NC_EINTERNAL, "cannot read the channel's members");
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err calls_db_create(struct db_conn *db, const struct calls_new *c, struct nc_error *err)
{
	char cap[16], ring[16];
	const char *params[12] = { c->id, c->room, c->type, c->initiator, c->channel,
				   c->group ? "t" : "f", c->metadata, cap, ring,
				   c->invitees_literal, c->outbox_urls_literal, c->outbox_payload };
	PGresult *res;

	snprintf(cap, sizeof(cap), "%d", c->max_participants);
	snprintf(ring, sizeof(ring), "%d", c->ring_timeout_s);
	res = db_exec_service(db,
		"WITH c AS ("
		"  INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id,"
		"    channel_id, is_group_call, metadata, max_participants, ring_expires_at)"
		"  VALUES ($1, $2, $3, 'ringing', $4, $5, $6::boolean, $7::jsonb, $8::int,"
		"    now() + make_interval(secs => $9::int)) RETURNING id),"
		" p AS ("
		"  INSERT INTO nchat_call_participants (call_id, user_id, role, status, joined_at,"
		"    livekit_identity)"
		"  SELECT c.id, x.u, x.role, x.status, x.joined, x.u::text FROM c,"
		"   (SELECT $4::uuid AS u, 'initiator' AS role, 'joined' AS status, now() AS joined"
		"    UNION ALL SELECT i, 'participant', 'ringing', NULL::timestamptz"
		"    FROM unnest($10::uuid[]) AS i) x"
		"  RETURNING 1),"
		" o AS ("
		"  INSERT INTO nchat_rtc_outbound_webhooks (event, target_url, payload)"
		"  SELECT 'call.started', url, $12::jsonb FROM c, unnest($11::text[]) AS url"
		"  RETURNING 1)"
		" SELECT (SELECT count(*) FROM p) AS participants, (SELECT count(*) FROM o) AS outbox",
		12, params, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

/* ------------------------------------------------------------------ */
/* Join                                                                */
/* ------------------------------------------------------------------ */

void calls_join_free(struct calls_join *j)
{
	free(j->display_name);
	json_decref(j->members);
	j->display_name = NULL;
	j->members = NULL;
}

static enum calls_join_outcome join_outcome(const char *s)
{
	static const struct { const char *name; enum calls_join_outcome o; } map[] = {
		{ "ok", CALLS_JOIN_OK }, { "forbidden", CALLS_JOIN_FORBIDDEN },
		{ "gone", CALLS_JOIN_GONE }, { "removed", CALLS_JOIN_REMOVED },
		{ "full", CALLS_JOIN_FULL },
	};

	for (size_t i = 0; s != NULL && i < NC_ARRAY_LEN(map); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].o;
	return CALLS_JOIN_NOT_FOUND;
}

/* The write step's answer {outcome, status, activated, cap, members}. */
static enum nc_err join_written(const char *text, struct calls_join *out, struct nc_error *err)
{
	json_t *w = text ? json_loads(text, 0, NULL) : NULL;
	const char *st = json_string_value(json_object_get(w, "status"));

	if (!json_is_object(w)) {
		json_decref(w);
		return err_set(err, NC_EINTERNAL, "cannot read the join's result");
	}
	out->outcome = join_outcome(json_string_value(json_object_get(w, "outcome")));
	if (st != NULL)
		snprintf(out->status, sizeof(out->status), "%s", st);
	out->activated = json_is_true(json_object_get(w, "activated"));
	if (json_is_integer(json_object_get(w, "cap")))
		out->max_participants = (int)json_integer_value(json_object_get(w, "cap"));
	if (out->outcome == CALLS_JOIN_OK) {
		out->members = json_incref(json_object_get(w, "members"));
		if (!json_is_array(out->members)) {
			json_decref(w);
			return err_set(err, NC_EINTERNAL, "cannot read the call's members");
		}
	}
	json_decref(w);
	return NC_OK;
}

/*
 * Joined already, the call open and nothing to answer (row c, the caller's
 * participant row p): a re-join.
 */
#define REJOIN                                                                            \
	"(COALESCE(p.status = 'joined', false)"                                          \
	" AND c.status NOT IN ('ended', 'missed', 'declined', 'failed')"                  \
	" AND NOT (c.status = 'ringing' AND c.initiator_id IS DISTINCT FROM $2::uuid))"

enum nc_err calls_db_join(struct db_conn *db, const char *call_id, const char *user_id, int cap,
			  struct calls_join *out, struct nc_error *err)
{
	char cap_s[16];
	const char *params[3] = { call_id, user_id, cap_s };
	PGresult *res;
	enum nc_err rc = NC_OK;

	memset(out, 0, sizeof(*out));
	snprintf(cap_s, sizeof(cap_s), "%d", cap);
	/*
	 * A re-join (joined already, call open, nothing to answer) reads
	 * three index rows and writes nothing; anything else goes through
	 * nchat_rtc_call_join_write (CASE evaluates it only then), which
	 * locks the call and reads again.
	 */
	res = db_exec_service(db,
		"SELECT c.status, c.call_type, c.livekit_room_name AS room,"
		"  COALESCE(c.max_participants, $3::int) AS cap, " REJOIN " AS rejoin,"
		"  CASE WHEN NOT " REJOIN " THEN"
		"    nchat_rtc_call_join_write($1::uuid, $2::uuid, $3::int)::text END AS written,"
		"  u.display_name"
		" FROM nchat_calls c"
		" LEFT JOIN nchat_call_participants p ON p.call_id = c.id AND p.user_id = $2::uuid"
		" LEFT JOIN nchat_users u ON u.id = $2::uuid"
		" WHERE c.id = $1::uuid", 3, params, err);
	if (res == NULL)
		return err->code;
	if (!one_row(res)) {
		PQclear(res);
		out->outcome = CALLS_JOIN_NOT_FOUND;
		return NC_OK;
	}
	row_copy(res, 0, "status", out->status, sizeof(out->status));
	row_copy(res, 0, "call_type", out->type, sizeof(out->type));
	row_copy(res, 0, "room", out->room, sizeof(out->room));
	out->max_participants = (int)row_i64(res, 0, "cap", cap);
	out->rejoin = row_true(res, 0, "rejoin");
	out->display_name = row_dup(res, 0, "display_name");
	if (out->rejoin)
		out->outcome = CALLS_JOIN_OK;
	else
		rc = join_written(row_text(res, 0, "written"), out, err);
	PQclear(res);
	if (rc != NC_OK)
		calls_join_free(out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Webhooks                                                            */
/* ------------------------------------------------------------------ */

void calls_wh_result_free(struct calls_wh_result *r)
{
	json_decref(r->members);
	r->members = NULL;
}

enum nc_err calls_db_webhook(struct db_conn *db, enum calls_wh_kind kind,
			     const struct calls_wh_event *e, struct calls_wh_result *out,
			     struct nc_error *err)
{
	static const char *const kinds[] = { [CALLS_WH_JOINED] = "joined", [CALLS_WH_LEFT] = "left",
					     [CALLS_WH_TRACK] = "track" };
	static const char *const cols[] = { [CALLS_TRACK_AUDIO] = "is_audio_enabled",
					    [CALLS_TRACK_VIDEO] = "is_video_enabled",
					    [CALLS_TRACK_SCREEN] = "is_screen_sharing" };
	bool track = kind == CALLS_WH_TRACK && e->has_column;
	const char *params[11] = { e->event_id, e->event, e->room_name, e->created, e->call_id,
				   e->identity, e->joined_at, e->sid, kinds[kind],
				   track ? cols[e->track] : NULL,
				   track ? (e->published ? "t" : "f") : NULL };
	PGresult *res;
	json_t *r;
	const char *st, *reason, *text;

	memset(out, 0, sizeof(*out));
	res = db_exec_service(db,
		"SELECT nchat_rtc_webhook_participant($1, $2, $3, $4::bigint, $5::uuid, $6::uuid,"
		" $7::bigint, $8, $9, $10, $11::boolean)::text AS result", 11, params, err);
	if (res == NULL)
		return err->code;
	text = one_row(res) ? row_text(res, 0, "result") : NULL;
	r = text ? json_loads(text, 0, NULL) : NULL;
	PQclear(res);
	if (!json_is_object(r)) {
		json_decref(r);
		return err_set(err, NC_EINTERNAL, "cannot read the event's result");
	}
	out->duplicate = json_is_true(json_object_get(r, "duplicate"));
	out->applied = json_is_true(json_object_get(r, "applied"));
	st = json_string_value(json_object_get(r, "status"));
	snprintf(out->status, sizeof(out->status), "%s", st ? st : "");
	out->presence = (int)json_integer_value(json_object_get(r, "presence"));
	reason = json_string_value(json_object_get(r, "reason"));
	if (reason != NULL && strcmp(reason, "no_participant") == 0)
		log_info("webhook: %s in call %s has no participant row; ignored", e->identity,
			 e->call_id);
	if (out->applied) {
		out->members = json_incref(json_object_get(r, "members"));
		if (!json_is_array(out->members)) {
			json_decref(out->members);
			out->members = json_array();
		}
	}
	json_decref(r);
	return NC_OK;
}

/* ------------------------------------------------------------------ */
/* The sweep                                                           */
/* ------------------------------------------------------------------ */

int calls_db_sweep_missed_invitees(struct db_conn *db, struct nc_error *err)
{
	PGresult *res = db_exec(db, "UPDATE nchat_call_participants p SET status = 'missed'"
				" FROM nchat_calls c WHERE p.call_id = c.id AND c.status = 'active'"
				" AND c.ring_expires_at <= now() AND p.status IN ('ringing', 'invited')",
				0, NULL, err);
	int n;

	if (res == NULL)
		return -1;
	n = (int)row_affected(res);
	PQclear(res);
	return n;
}

/* Column `name` of every row as a JSON array of strings. */
static json_t *column_array(PGresult *res, const char *name)
{
	json_t *arr = json_array();
	int col = row_col(res, name);

	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, json_string(PQgetvalue(res, i, col)));
	return arr;
}

json_t *calls_db_ring_expired(struct db_conn *db, int limit, struct nc_error *err)
{
	char lim[16];
	const char *params[1] = { lim };
	PGresult *res;
	json_t *ids;

	snprintf(lim, sizeof(lim), "%d", limit);
	res = db_exec(db, "SELECT id::text AS id FROM nchat_calls WHERE status = 'ringing'"
		      " AND ring_expires_at <= now() ORDER BY ring_expires_at LIMIT $1::int",
		      1, params, err);
	if (res == NULL)
		return NULL;
	ids = column_array(res, "id");
	PQclear(res);
	return ids;
}

json_t *calls_db_open_calls(struct db_conn *db, int grace_s, int limit, struct nc_error *err)
{
	char grace[16], lim[16];
	const char *params[2] = { grace, lim };
	PGresult *res;
	json_t *out;
	int cid, croom;

	snprintf(grace, sizeof(grace), "%d", grace_s);
	snprintf(lim, sizeof(lim), "%d", limit);
	res = db_exec(db, "SELECT id::text AS id, livekit_room_name AS room FROM nchat_calls"
		      " WHERE status IN ('initiating', 'ringing', 'active')"
		      " AND initiated_at < now() - make_interval(secs => $1::int)"
		      " ORDER BY updated_at LIMIT $2::int", 2, params, err);
	if (res == NULL)
		return NULL;
	out = json_array();
	cid = row_col(res, "id");
	croom = row_col(res, "room");
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(out, json_pack("{s:s, s:s}", "id", PQgetvalue(res, i, cid),
						     "room", PQgetvalue(res, i, croom)));
	PQclear(res);
	return out;
}

json_t *calls_db_close_absent(struct db_conn *db, const char *call_id, const char *present_literal,
			      int grace_s, struct nc_error *err)
{
	char grace[16];
	const char *params[3] = { call_id, present_literal, grace };
	PGresult *res;
	json_t *ids;

	snprintf(grace, sizeof(grace), "%d", grace_s);
	res = db_exec(db, "UPDATE nchat_call_participants SET status = 'left', left_at = now(),"
		      " is_audio_enabled = false, is_video_enabled = false, is_screen_sharing = false"
		      " WHERE call_id = $1 AND status = 'joined'"
		      " AND NOT (user_id = ANY ($2::uuid[]))"
		      " AND (livekit_participant_id IS NOT NULL"
		      "      OR joined_at < now() - make_interval(secs => $3::int))"
		      " RETURNING user_id::text AS user_id", 3, params, err);
	if (res == NULL)
		return NULL;
	ids = column_array(res, "user_id");
	PQclear(res);
	return ids;
}
