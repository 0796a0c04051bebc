/*
 * calls_db_read.c - the reads of calls_db.h for the API: one call, the
 * caller's history, and the client stats report.  Each read is one
 * statement (the call rows with their participant rows), in the caller's
 * user context, in one round trip.
 *
 * The visibility rule is part of every statement (VISIBLE below), so the
 * answer is the same whether or not row-level security applies to the
 * login role.
 */
#include "calls/calls_db.h"
#include "store/db_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An RFC 3339 UTC text of a timestamptz column. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/*
 * May viewer $V see call c, whose participant row for the viewer (if any)
 * is `me`?  A participant who was not removed, or a member of the call's
 * channel who was not removed from the call.
 */
#define VISIBLE(V)                                                                   \
	"(me.status IS DISTINCT FROM 'removed' AND (me.id IS NOT NULL"                   \
	" OR (c.channel_id IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m" \
	"     WHERE m.channel_id = c.channel_id AND m.user_id = " V "))))"

#define CALL_COLS                                                                     \
	"c.id AS cid, c.initiated_at AS ts_raw, c.id::text AS id,"                        \
	" c.livekit_room_name AS room, c.call_type, c.status,"                            \
	" c.initiator_id::text AS initiator, c.channel_id::text AS channel,"              \
	" c.is_group_call, c.metadata::text AS metadata, c.max_participants, c.end_reason," \
	" " TS("c.initiated_at") " AS initiated_at, " TS("c.started_at") " AS started_at," \
	" " TS("c.ended_at") " AS ended_at, " TS("c.ring_expires_at") " AS ring_expires_at," \
	" EXISTS (SELECT 1 FROM nchat_call_recordings rec WHERE rec.call_id = c.id"        \
	"         AND rec.status IN ('starting', 'active')) AS recording_active,"          \
	" to_char(c.initiated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"  \
	"   AS cursor_ts"

#define PART_COLS                                                                     \
	"p.id AS p_id, p.user_id::text AS p_user, u.display_name AS p_name, p.role AS p_role," \
	" p.status AS p_status, " TS("p.invited_at") " AS p_invited_at,"                   \
	" " TS("p.joined_at") " AS p_joined_at, " TS("p.left_at") " AS p_left_at,"         \
	" p.total_duration_seconds AS p_duration, p.is_audio_enabled AS p_audio,"         \
	" p.is_video_enabled AS p_video, p.is_screen_sharing AS p_screen"

#define PART_ORDER "p.role = 'initiator' DESC, p.invited_at, p.user_id"

static void part_view_free(struct part_view *p)
{
	free(p->user_id);
	free(p->display_name);
	free(p->invited_at);
	free(p->joined_at);
	free(p->left_at);
}

void call_view_free(struct call_view *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n_parts; i++)
		part_view_free(&v->parts[i]);
	free(v->parts);
	free(v->initiator);
	free(v->channel);
	free(v->metadata);
	free(v->end_reason);
	free(v->initiated_at);
	free(v->started_at);
	free(v->ended_at);
	free(v->ring_expires_at);
	memset(v, 0, sizeof(*v));
}

void call_views_free(struct call_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		call_view_free(&v[i]);
	free(v);
}

static void call_from_row(const PGresult *res, int i, struct call_view *v)
{
	memset(v, 0, sizeof(*v));
	row_copy(res, i, "id", v->id, sizeof(v->id));
	row_copy(res, i, "room", v->room, sizeof(v->room));
	row_copy(res, i, "call_type", v->type, sizeof(v->type));
	row_copy(res, i, "status", v->status, sizeof(v->status));
	v->initiator = row_dup(res, i, "initiator");
	v->channel = row_dup(res, i, "channel");
	v->group = row_true(res, i, "is_group_call");
	v->metadata = row_dup(res, i, "metadata");
	v->max_participants = row_i64(res, i, "max_participants", -1);
	v->end_reason = row_dup(res, i, "end_reason");
	v->initiated_at = row_dup(res, i, "initiated_at");
	v->started_at = row_dup(res, i, "started_at");
	v->ended_at = row_dup(res, i, "ended_at");
	v->ring_expires_at = row_dup(res, i, "ring_expires_at");
	v->recording_active = row_true(res, i, "recording_active");
	row_copy(res, i, "cursor_ts", v->cursor_ts, sizeof(v->cursor_ts));
	v->removed = row_true(res, i, "removed");
}

static void part_from_row(const PGresult *res, int i, struct call_view *v)
{
	struct part_view *p;

	if (row_text(res, i, "p_id") == NULL)
		return; /* a call without participant rows */
	v->parts = xrealloc(v->parts, (v->n_parts + 1) * sizeof(*v->parts));
	p = &v->parts[v->n_parts++];
	memset(p, 0, sizeof(*p));
	p->user_id = row_dup(res, i, "p_user");
	p->display_name = row_dup(res, i, "p_name");
	row_copy(res, i, "p_role", p->role, sizeof(p->role));
	row_copy(res, i, "p_status", p->status, sizeof(p->status));
	p->invited_at = row_dup(res, i, "p_invited_at");
	p->joined_at = row_dup(res, i, "p_joined_at");
	p->left_at = row_dup(res, i, "p_left_at");
	p->total_duration_seconds = row_i64(res, i, "p_duration", 0);
	p->audio = row_true(res, i, "p_audio");
	p->video = row_true(res, i, "p_video");
	p->screen = row_true(res, i, "p_screen");
}

/* Rows of (call, participant) ordered by call into *out / *n. */
static void group_rows(const PGresult *res, struct call_view **out, size_t *n)
{
	int rows = PQntuples(res), cid = row_col(res, "id");

	*out = NULL;
	*n = 0;
	for (int i = 0; i < rows; i++) {
		if (*n == 0 || strcmp((*out)[*n - 1].id, PQgetvalue(res, i, cid)) != 0) {
			*out = xrealloc(*out, (*n + 1) * sizeof(**out));
			call_from_row(res, i, &(*out)[*n]);
			(*n)++;
		}
		part_from_row(res, i, &(*out)[*n - 1]);
	}
}

enum nc_err calls_db_get(struct db_conn *db, const char *viewer, const char *call_id,
			 struct call_view *out, bool *found, struct nc_error *err)
{
	const char *params[2] = { call_id, viewer };
	struct call_view *v;
	size_t n;
	PGresult *res;

	*found = false;
	memset(out, 0, sizeof(*out));
	res = db_exec_user(db, viewer,
		"WITH c AS (SELECT " CALL_COLS ", false AS removed FROM nchat_calls c"
		"  LEFT JOIN nchat_call_participants me ON me.call_id = c.id AND me.user_id = $2::uuid"
		"  WHERE c.id = $1::uuid AND " VISIBLE("$2::uuid") ")"
		" SELECT c.*, " PART_COLS " FROM c"
		" LEFT JOIN nchat_call_participants p ON p.call_id = c.cid"
		" LEFT JOIN nchat_users u ON u.id = p.user_id"
		" ORDER BY " PART_ORDER, 2, params, err);
	if (res == NULL)
		return err->code;
	group_rows(res, &v, &n);
	PQclear(res);
	if (n == 1) {
		*out = v[0];
		*found = true;
		free(v);
	} else {
		call_views_free(v, n);
	}
	return NC_OK;
}

enum nc_err calls_db_list(struct db_conn *db, const char *viewer, const struct calls_list_filter *f,
			  struct call_view **out, size_t *n, struct nc_error *err)
{
	char lim[16];
	const char *params[6] = { f->status, f->channel, f->before_ts, f->before_id, lim, viewer };
	PGresult *res;

	*out = NULL;
	*n = 0;
	snprintf(lim, sizeof(lim), "%d", f->limit + 1);
	/*
	 * The caller's own calls only (a participant row of theirs), newest
	 * first.  A call they were removed from keeps its line, with their own
	 * participant row only.
	 */
	res = db_exec_user(db, viewer,
		"WITH c AS (SELECT " CALL_COLS ", me.status = 'removed' AS removed"
		"  FROM nchat_call_participants me JOIN nchat_calls c ON c.id = me.call_id"
		"  WHERE me.user_id = $6::uuid"
		"    AND ($1::text IS NULL OR c.status = $1)"
		"    AND ($2::uuid IS NULL OR c.channel_id = $2::uuid)"
		"    AND ($3::timestamptz IS NULL"
		"         OR (c.initiated_at, c.id) < ($3::timestamptz, $4::uuid))"
		"  ORDER BY c.initiated_at DESC, c.id DESC LIMIT $5::int)"
		" SELECT c.*, " PART_COLS " FROM c"
		" LEFT JOIN nchat_call_participants p ON p.call_id = c.cid"
		"   AND (NOT c.removed OR p.user_id = $6::uuid)"
		" LEFT JOIN nchat_users u ON u.id = p.user_id"
		" ORDER BY c.ts_raw DESC, c.cid DESC, " PART_ORDER, 6, params, err);
	if (res == NULL)
		return err->code;
	group_rows(res, out, n);
	PQclear(res);
	return NC_OK;
}

enum nc_err calls_db_stats_participant(struct db_conn *db, const char *call_id, const char *user_id,
				       enum calls_stats_outcome *outcome, char pid[37],
				       struct nc_error *err)
{
	const char *params[2] = { call_id, user_id };
	PGresult *res = db_exec(db,
		"SELECT me.id::text AS pid, " VISIBLE("$2::uuid") " AS visible"
		" FROM nchat_calls c LEFT JOIN nchat_call_participants me"
		"   ON me.call_id = c.id AND me.user_id = $2::uuid WHERE c.id = $1", 2, params, err);

	*outcome = CALLS_STATS_NOT_FOUND;
	pid[0] = '\0';
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 1 && row_true(res, 0, "visible")) {
		row_copy(res, 0, "pid", pid, 37);
		*outcome = pid[0] != '\0' ? CALLS_STATS_OK : CALLS_STATS_FORBIDDEN;
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err calls_db_stats_insert(struct db_conn *db, const char *call_id, const char *user_id,
				  const char *pid, const struct calls_stats_row *s, char id[37],
				  char created_at[32], struct nc_error *err)
{
	const char *params[12] = { call_id, user_id, pid, s->ice, s->local_candidate,
				   s->remote_candidate, s->turn ? "t" : "f", s->rtt, s->jitter,
				   s->loss, s->bitrate, s->quality };
	PGresult *res = db_exec(db,
		"INSERT INTO nchat_webrtc_connections (call_id, user_id, participant_id,"
		" ice_connection_state, local_candidate_type, remote_candidate_type, turn_used,"
		" rtt_ms, jitter_ms, packet_loss_pct, bitrate_kbps, quality) VALUES ($1, $2, $3,"
		" $4, $5, $6, $7::boolean, $8::real, $9::real, $10::real, $11::int, $12)"
		" RETURNING id::text AS id, " TS("created_at") " AS created_at", 12, params, err);

	if (res == NULL)
		return err->code;
	row_copy(res, 0, "id", id, 37);
	row_copy(res, 0, "created_at", created_at, 32);
	PQclear(res);
	return NC_OK;
}
