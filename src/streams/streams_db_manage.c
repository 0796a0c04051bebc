/*
 * streams_db_manage.c - the statements of streams_db.h for a stream's
 * life (create, start, end, keys), its reads for the API (one stream,
 * chat pages, reaction summary, analytics), chat moderation and the
 * webhook hooks.  The hot paths are in streams_db.c.
 *
 * The reads meant for the caller carry their own visibility predicate
 * (VIEWABLE / MANAGEABLE): the handler checked already (streams_open),
 * and the statement checks again, so a policy regression cannot leak.
 */
#include "streams/streams_db.h"
#include "store/db_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* May the caller ($V uuid or NULL, $S staff, $P public while live) view stream s? */
#define VIEWABLE(V, S, P)                                                               \
	"(s.broadcaster_id = " V " OR " S " OR (s.status = 'live' AND " P ")"             \
	" OR EXISTS (SELECT 1 FROM nchat_channel_members cm WHERE cm.channel_id = s.channel_id" \
	"     AND cm.user_id = " V "))"
/* ... manage it (broadcaster or staff)? */
#define MANAGEABLE(V, S) "(s.broadcaster_id = " V " OR " S ")"

#define MSG_JSON_SQL                                                                      \
	"json_build_object('id', m.id, 'stream_id', m.stream_id, 'user_id', m.user_id,"   \
	" 'display_name', (SELECT u.display_name FROM nchat_users u WHERE u.id = m.user_id)," \
	" 'content', m.content, 'is_pinned', m.is_pinned,"                                \
	" 'pinned_at', " STREAMS_TS("m.pinned_at") ", 'is_deleted', m.is_deleted,"       \
	" 'created_at', " STREAMS_TS("m.created_at") ")"

static const char *tf(bool b)
{
	return b ? "t" : "f";
}

/* The JSON of column name in row 0 (new reference), NULL without a row or on a bad value. */
static json_t *json_col(const PGresult *res, const char *name)
{
	const char *v = PQntuples(res) == 1 ? row_text(res, 0, name) : NULL;

	return v ? json_loads(v, 0, NULL) : NULL;
}

static enum nc_err exec_ok(struct db_conn *db, const char *sql, int n, const char *const *params,
			   struct nc_error *err)
{
	PGresult *res = db_exec(db, sql, n, params, err);

	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

char *streams_db_user_name(struct db_conn *db, const char *user_id)
{
	const char *p[1] = { user_id };
	struct nc_error err = {0};
	PGresult *res = db_exec(db, "SELECT display_name FROM nchat_users WHERE id = $1", 1, p, &err);
	char *name = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1)
		name = row_dup(res, 0, "display_name");
	PQclear(res);
	return name;
}

/* ---- create ---- */

enum nc_err streams_db_create_check(struct db_conn *db, const char *channel_id, const char *user_id,
				    const char *scheduled_at, struct streams_create_check *out,
				    struct nc_error *err)
{
	const char *p[3] = { channel_id, user_id, scheduled_at };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	res = db_exec(db,
		"SELECT EXISTS (SELECT 1 FROM nchat_channels WHERE id = $1) AS channel_exists,"
		" EXISTS (SELECT 1 FROM nchat_channel_members WHERE channel_id = $1 AND user_id = $2)"
		"   AS member,"
		" (SELECT display_name FROM nchat_users WHERE id = $2) AS display_name,"
		" CASE WHEN $3::text IS NULL THEN NULL ELSE ($3::timestamptz > now()) END AS future",
		3, p, err);
	if (res == NULL) {
		if (err->code == NC_EBADREQ)
			err_set(err, NC_EBADREQ, "scheduledAt is not a valid date-time");
		return err->code;
	}
	out->channel_exists = row_true(res, 0, "channel_exists");
	out->member = row_true(res, 0, "member");
	out->display_name = row_dup(res, 0, "display_name");
	out->scheduled = row_true(res, 0, "future");
	PQclear(res);
	return NC_OK;
}

json_t *streams_db_insert(struct db_conn *db, const struct streams_new *n, struct nc_error *err)
{
	const char *p[15] = { n->id, n->channel_id, n->broadcaster_id, n->title, n->description,
			      n->status, n->room, n->ingress_id, n->key_hash, n->last4,
			      n->ingest_url, tf(n->enable_chat), tf(n->enable_reactions),
			      n->slow_mode, n->scheduled_at };
	PGresult *res = db_exec(db,
		"INSERT INTO nchat_streams AS s (id, channel_id, broadcaster_id, title, description,"
		" status, livekit_room_name, livekit_ingress_id, stream_key, stream_key_last4,"
		" ingest_url, enable_chat, enable_reactions, chat_slow_mode_seconds, scheduled_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::boolean, $13::boolean,"
		" $14::int, $15::timestamptz) RETURNING " STREAM_JSON_SQL "::text AS stream",
		15, p, err);
	json_t *o;

	if (res == NULL)
		return NULL;
	o = json_col(res, "stream");
	PQclear(res);
	if (o == NULL)
		err_set(err, NC_EINTERNAL, "cannot read the new stream");
	return o;
}

/* ---- start, end, keys ---- */

enum nc_err streams_db_set_egress(struct db_conn *db, const char *id, const char *egress_id,
				  const char *only_if, struct nc_error *err)
{
	const char *p[3] = { id, egress_id, only_if };

	return exec_ok(db, only_if
		       ? "UPDATE nchat_streams SET livekit_egress_id = $2 WHERE id = $1"
			 " AND livekit_egress_id = $3"
		       : "UPDATE nchat_streams SET livekit_egress_id = $2 WHERE id = $1",
		       only_if ? 3 : 2, p, err);
}

enum nc_err streams_db_finish_start(struct db_conn *db, const char *id, const char *egress_id,
				    const char *hls, const char *claim, struct streams_started *out,
				    struct nc_error *err)
{
	const char *p[4] = { id, egress_id, hls, claim };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	res = db_exec(db,
		"WITH prev AS (SELECT status FROM nchat_streams WHERE id = $1 FOR UPDATE)"
		" UPDATE nchat_streams s SET livekit_egress_id = $2, hls_manifest_url = $3,"
		" status = 'live', started_at = COALESCE(s.started_at, now())"
		" WHERE s.id = $1 AND s.livekit_egress_id = $4 AND s.status NOT IN ('ended', 'failed')"
		" RETURNING (SELECT status FROM prev) AS prev_status, " STREAMS_TS("s.started_at")
		" AS started_at, s.channel_id::text AS channel_id, s.broadcaster_id::text AS broadcaster_id,"
		" s.title", 4, p, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 1) {
		out->found = true;
		out->was_live = strcmp(row_text(res, 0, "prev_status") ? row_text(res, 0, "prev_status") : "",
				       "live") == 0;
		row_copy(res, 0, "started_at", out->started_at, sizeof(out->started_at));
		out->channel_id = row_dup(res, 0, "channel_id");
		out->broadcaster_id = row_dup(res, 0, "broadcaster_id");
		out->title = row_dup(res, 0, "title");
	}
	PQclear(res);
	return NC_OK;
}

void streams_started_free(struct streams_started *s)
{
	free(s->channel_id);
	free(s->broadcaster_id);
	free(s->title);
	memset(s, 0, sizeof(*s));
}

json_t *streams_db_end(struct db_conn *db, const char *id, int timeout_s, long *closed,
		       bool *found, struct nc_error *err)
{
	const char *p1[1] = { id };
	char tmo[16];
	const char *p2[2] = { id, tmo };
	PGresult *res;
	json_t *payload;

	*found = false;
	*closed = 0;
	res = db_exec(db,
		"UPDATE nchat_streams s SET status = 'ended', ended_at = now(), current_viewers = 0"
		" WHERE s.id = $1 AND s.status NOT IN ('ended', 'failed')"
		" RETURNING s.channel_id::text AS channel_id, s.broadcaster_id::text AS broadcaster_id,"
		" s.title, " STREAMS_TS("s.started_at") " AS started_at, " STREAMS_TS("s.ended_at")
		" AS ended_at", 1, p1, err);
	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return NULL;
	}
	*found = true;
	payload = json_pack("{s:s, s:s?, s:s?, s:s, s:s?, s:s?}", "stream_id", id, "channel_id",
			    row_text(res, 0, "channel_id"), "broadcaster_id",
			    row_text(res, 0, "broadcaster_id"), "title", row_text(res, 0, "title"),
			    "started_at", row_text(res, 0, "started_at"), "ended_at",
			    row_text(res, 0, "ended_at"));
	PQclear(res);
	/*
	 * Open sessions close at the end of the stream, but a session whose
	 * heartbeats stopped earlier closes where they stopped (last heartbeat
	 * plus the timeout), so a vanished viewer does not collect watch time.
	 */
	snprintf(tmo, sizeof(tmo), "%d", timeout_s);
	res = db_exec(db,
		"UPDATE nchat_stream_viewers SET left_at = LEAST(now(), GREATEST(joined_at,"
		" last_heartbeat_at + make_interval(secs => $2::double precision)))"
		" WHERE stream_id = $1 AND left_at IS NULL", 2, p2, err);
	if (res == NULL)
		goto fail;
	*closed = (long)row_affected(res);
	PQclear(res);
	/* the counts still pending go into the row now (this transaction holds it) */
	res = db_exec(db, "SELECT nchat_rtc_stream_counters_sync($1::uuid)", 1, p1, err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	res = db_exec(db, "SELECT peak_viewers, total_views, unique_viewers FROM nchat_streams"
		      " WHERE id = $1", 1, p1, err);
	if (res == NULL)
		goto fail;
	json_object_set_new(payload, "peak_viewers", json_integer(row_i64(res, 0, "peak_viewers", 0)));
	json_object_set_new(payload, "total_views", json_integer(row_i64(res, 0, "total_views", 0)));
	json_object_set_new(payload, "unique_viewers",
			    json_integer(row_i64(res, 0, "unique_viewers", 0)));
	PQclear(res);
	return payload;
fail:
	json_decref(payload);
	return NULL;
}

enum nc_err streams_db_swap_ingress(struct db_conn *db, const char *id, const char *ingress_id,
				    const char *key_hash, const char *last4, const char *ingest_url,
				    const char *old_ingress, bool *swapped, struct nc_error *err)
{
	const char *p[6] = { id, ingress_id, key_hash, last4, ingest_url, old_ingress };
	PGresult *res = db_exec(db,
		"UPDATE nchat_streams SET livekit_ingress_id = $2, stream_key = $3,"
		" stream_key_last4 = $4, stream_key_revoked_at = NULL, ingest_url = $5"
		" WHERE id = $1 AND livekit_ingress_id IS NOT DISTINCT FROM $6"
		"   AND status NOT IN ('ended', 'failed')", 6, p, err);

	if (res == NULL)
		return err->code;
	*swapped = row_affected(res) == 1;
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_revoke(struct db_conn *db, const char *id, char at[32], struct nc_error *err)
{
	const char *p[1] = { id };
	PGresult *res = db_exec(db,
		"UPDATE nchat_streams SET stream_key_revoked_at = COALESCE(stream_key_revoked_at, now())"
		" WHERE id = $1 RETURNING " STREAMS_TS("stream_key_revoked_at") " AS revoked_at",
		1, p, err);

	if (res == NULL)
		return err->code;
	row_copy(res, 0, "revoked_at", at, 32);
	PQclear(res);
	return NC_OK;
}

/* ---- reads ---- */

json_t *streams_db_get(struct db_conn *db, const char *id, const struct streams_caller *c,
		       struct nc_error *err)
{
	const char *p[4] = { id, c->user_id, tf(c->staff), tf(c->public_live) };
	PGresult *res = db_exec(db,
		"SELECT " STREAM_JSON_EXACT_SQL "::text AS stream FROM nchat_streams s"
		STREAM_PENDING_JOIN " WHERE s.id = $1"
		" AND " VIEWABLE("$2::uuid", "$3::boolean", "$4::boolean"), 4, p, err);
	json_t *o;

	if (res == NULL)
		return NULL;
	o = json_col(res, "stream");
	PQclear(res);
	if (o == NULL)
		err_set(err, NC_ENOTFOUND, "stream not found");
	return o;
}

json_t *streams_db_chat_page(struct db_conn *db, const char *id, const struct streams_caller *c,
			     bool pinned_first, const char *before, int limit,
			     char next_before[37], struct nc_error *err)
{
	char lim[16];
	const char *pp[4] = { id, c->user_id, tf(c->staff), tf(c->public_live) };
	const char *p[7] = { id, c->user_id, tf(c->staff), tf(c->public_live),
			     tf(pinned_first), before, lim };
	PGresult *res;
	json_t *arr = json_array();
	int n, col;

	next_before[0] = '\0';
	snprintf(lim, sizeof(lim), "%d", limit + 1);
	if (pinned_first && before == NULL) {
		res = db_exec(db,
			"SELECT " MSG_JSON_SQL "::text AS msg FROM nchat_stream_chat_messages m"
			" JOIN nchat_streams s ON s.id = m.stream_id"
			" WHERE m.stream_id = $1 AND m.is_pinned AND NOT m.is_deleted"
			"   AND " VIEWABLE("$2::uuid", "$3::boolean", "$4::boolean")
			" ORDER BY m.pinned_at DESC, m.id DESC LIMIT 100", 4, pp, err);
		if (res == NULL)
			goto fail;
		col = row_col(res, "msg");
		for (int i = 0; i < PQntuples(res); i++)
			json_array_append_new(arr, json_loads(PQgetvalue(res, i, col), 0, NULL));
		PQclear(res);
	}
	res = db_exec(db,
		"SELECT " MSG_JSON_SQL "::text AS msg, m.id::text AS id FROM nchat_stream_chat_messages m"
		" JOIN nchat_streams s ON s.id = m.stream_id"
		" WHERE m.stream_id = $1 AND NOT m.is_deleted"
		"   AND " VIEWABLE("$2::uuid", "$3::boolean", "$4::boolean")
		"   AND (NOT $5::bool OR NOT m.is_pinned)"
		"   AND ($6::uuid IS NULL OR (m.created_at, m.id) <"
		"        (SELECT b.created_at, b.id FROM nchat_stream_chat_messages b"
		"         WHERE b.id = $6::uuid AND b.stream_id = $1))"
		" ORDER BY m.created_at DESC, m.id DESC LIMIT $7::int", 7, p, err);
	if (res == NULL)
		goto fail;
	n = PQntuples(res);
	col = row_col(res, "msg");
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, json_loads(PQgetvalue(res, i, col), 0, NULL));
	if (n > limit)
		snprintf(next_before, 37, "%s", PQgetvalue(res, limit - 1, row_col(res, "id")));
	PQclear(res);
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

json_t *streams_db_chat_pin(struct db_conn *db, const char *id, const char *message_id,
			    bool pinned, const char *user_id, struct nc_error *err)
{
	const char *p[4] = { id, message_id, tf(pinned), user_id };
	PGresult *res = db_exec(db,
		"UPDATE nchat_stream_chat_messages m SET is_pinned = $3::bool,"
		" pinned_at = CASE WHEN $3::bool THEN now() END,"
		" pinned_by = CASE WHEN $3::bool THEN $4::uuid END"
		" WHERE m.id = $2 AND m.stream_id = $1 AND NOT m.is_deleted"
		" RETURNING " MSG_JSON_SQL "::text AS msg", 4, p, err);
	json_t *o;

	if (res == NULL)
		return NULL;
	o = json_col(res, "msg");
	PQclear(res);
	if (o == NULL)
		err_set(err, NC_ENOTFOUND, "message not found");
	return o;
}

int streams_db_chat_lock(struct db_conn *db, const char *id, const char *message_id,
			 const char *user_id, bool *own, struct nc_error *err)
{
	const char *p[3] = { id, message_id, user_id };
	PGresult *res = db_exec(db,
		"SELECT user_id = $3::uuid AS own FROM nchat_stream_chat_messages"
		" WHERE id = $2 AND stream_id = $1 AND NOT is_deleted FOR UPDATE", 3, p, err);
	int n;

	if (res == NULL)
		return -1;
	n = PQntuples(res) == 1;
	*own = n && row_true(res, 0, "own");
	PQclear(res);
	return n;
}

enum nc_err streams_db_chat_delete(struct db_conn *db, const char *id, const char *message_id,
				   const char *user_id, struct nc_error *err)
{
	const char *p[3] = { id, message_id, user_id };

	return exec_ok(db,
		"UPDATE nchat_stream_chat_messages SET is_deleted = true, deleted_at = now(),"
		" deleted_by = $3, is_pinned = false, pinned_at = NULL, pinned_by = NULL"
		" WHERE id = $2 AND stream_id = $1", 3, p, err);
}

json_t *streams_db_reaction_summary(struct db_conn *db, const char *id,
				    const struct streams_caller *c, struct nc_error *err)
{
	const char *p[4] = { id, c->user_id, tf(c->staff), tf(c->public_live) };
	PGresult *res = db_exec(db,
		"SELECT t.type, COALESCE(rc.count, 0) AS count,"
		" (SELECT count(*) FROM nchat_stream_reactions x WHERE x.stream_id = $1"
		"   AND x.reaction_type = t.type AND x.created_at > now() - interval '1 minute') AS recent"
		" FROM nchat_streams s"
		" CROSS JOIN unnest(ARRAY['heart','like','fire','clap','laugh','wow','sad','angry']) AS t(type)"
		" LEFT JOIN nchat_stream_reaction_counts rc ON rc.stream_id = $1 AND rc.reaction_type = t.type"
		" WHERE s.id = $1 AND " VIEWABLE("$2::uuid", "$3::boolean", "$4::boolean"), 4, p, err);
	json_t *counts, *recent;
	long long total = 0, recent_total = 0;

	if (res == NULL)
		return NULL;
	counts = json_object();
	recent = json_object();
	for (int i = 0; i < PQntuples(res); i++) {
		long long n = row_i64(res, i, "count", 0), m = row_i64(res, i, "recent", 0);

		json_object_set_new(counts, row_text(res, i, "type"), json_integer(n));
		json_object_set_new(recent, row_text(res, i, "type"), json_integer(m));
		total += n;
		recent_total += m;
	}
	PQclear(res);
	return json_pack("{s:s, s:I, s:o, s:I, s:o}", "stream_id", id, "total", (json_int_t)total,
			 "counts", counts, "last_minute_total", (json_int_t)recent_total,
			 "last_minute", recent);
}

/* The analytics' stream row, sessions and per-type counts into out. */
static enum nc_err analytics_totals(struct db_conn *db, const char *const *p, json_t *out,
				    struct nc_error *err)
{
	static const char *const types[] = { "heart", "like", "fire", "clap",
					     "laugh", "wow",  "sad",  "angry" };
	PGresult *res;
	long long sessions, watch;
	json_t *by_type;

	if ((res = db_exec(db,
		"SELECT s.status, s.current_viewers, s.peak_viewers, s.total_views, s.unique_viewers,"
		" s.total_chat_messages, s.total_reactions, " STREAMS_TS("s.started_at") " AS started_at,"
		" " STREAMS_TS("s.ended_at") " AS ended_at FROM nchat_streams s WHERE s.id = $1"
		" AND $2::text IS NOT NULL AND " MANAGEABLE("$3::uuid", "$4::boolean"), 4, p, err)) == NULL)
		return err->code;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "stream not found");
	}
	json_object_set_new(out, "status", json_string(row_text(res, 0, "status")));
	json_object_set_new(out, "current_viewers", json_integer(row_i64(res, 0, "current_viewers", 0)));
	json_object_set_new(out, "peak_viewers", json_integer(row_i64(res, 0, "peak_viewers", 0)));
	json_object_set_new(out, "total_views", json_integer(row_i64(res, 0, "total_views", 0)));
	json_object_set_new(out, "unique_viewers", json_integer(row_i64(res, 0, "unique_viewers", 0)));
	json_object_set_new(out, "chat_messages", json_integer(row_i64(res, 0, "total_chat_messages", 0)));
	json_object_set_new(out, "reactions_total", json_integer(row_i64(res, 0, "total_reactions", 0)));
	json_object_set_new(out, "started_at", row_text(res, 0, "started_at")
			    ? json_string(row_text(res, 0, "started_at")) : json_null());
	json_object_set_new(out, "ended_at", row_text(res, 0, "ended_at")
			    ? json_string(row_text(res, 0, "ended_at")) : json_null());
	PQclear(res);
	if ((res = db_exec(db,
		"SELECT count(*) AS sessions, COALESCE(sum(watch_duration_seconds::bigint"
		"  + CASE WHEN left_at IS NULL THEN GREATEST(0, floor(extract(epoch FROM"
		"      LEAST(now(), last_heartbeat_at + make_interval(secs => $2::double precision))"
		"      - joined_at)))::bigint ELSE 0 END), 0) AS watch"
		" FROM nchat_stream_viewers WHERE stream_id = $1", 2, p, err)) == NULL)
		return err->code;
	sessions = row_i64(res, 0, "sessions", 0);
	watch = row_i64(res, 0, "watch", 0);
	PQclear(res);
	json_object_set_new(out, "viewer_sessions", json_integer(sessions));
	json_object_set_new(out, "total_watch_time_seconds", json_integer(watch));
	json_object_set_new(out, "average_watch_time_seconds",
			    json_integer(sessions > 0 ? watch / sessions : 0));
	if ((res = db_exec(db, "SELECT reaction_type, count FROM nchat_stream_reaction_counts"
			   " WHERE stream_id = $1", 1, p, err)) == NULL)
		return err->code;
	by_type = json_object();
	for (size_t i = 0; i < NC_ARRAY_LEN(types); i++)
		json_object_set_new(by_type, types[i], json_integer(0));
	for (int i = 0; i < PQntuples(res); i++)
		json_object_set_new(by_type, row_text(res, i, "reaction_type"),
				    json_integer(row_i64(res, i, "count", 0)));
	PQclear(res);
	json_object_set_new(out, "reactions_by_type", by_type);
	return NC_OK;
}

json_t *streams_db_analytics(struct db_conn *db, const char *id, int timeout_s,
			     const struct streams_caller *c, struct nc_error *err)
{
	char tmo[16];
	const char *p[4] = { id, tmo, c->user_id, tf(c->staff) };
	json_t *out = json_pack("{s:s}", "stream_id", id), *timeline;
	PGresult *res;

	snprintf(tmo, sizeof(tmo), "%d", timeout_s);
	if (analytics_totals(db, p, out, err) != NC_OK) {
		json_decref(out);
		return NULL;
	}
	/*
	 * One row per minute from the stream's creation (at most the last 24
	 * hours) to its end or now: viewers whose session overlapped that
	 * minute, chat messages and reactions sent in it.
	 */
	res = db_exec(db,
		"WITH b AS (SELECT date_trunc('minute', created_at) AS t0,"
		"   date_trunc('minute', COALESCE(ended_at, now())) AS t1"
		"   FROM nchat_streams WHERE id = $1),"
		" mins AS (SELECT generate_series(GREATEST(b.t0, b.t1 - interval '1439 minutes'),"
		"   b.t1, interval '1 minute') AS m FROM b)"
		" SELECT " STREAMS_TS("mins.m") " AS minute,"
		" (SELECT count(*) FROM nchat_stream_viewers v WHERE v.stream_id = $1"
		"   AND v.joined_at < mins.m + interval '1 minute'"
		"   AND COALESCE(v.left_at, LEAST(now(), v.last_heartbeat_at"
		"       + make_interval(secs => $2::double precision))) >= mins.m) AS viewers,"
		" (SELECT count(*) FROM nchat_stream_chat_messages c WHERE c.stream_id = $1"
		"   AND c.created_at >= mins.m AND c.created_at < mins.m + interval '1 minute') AS chat,"
		" (SELECT count(*) FROM nchat_stream_reactions x WHERE x.stream_id = $1"
		"   AND x.created_at >= mins.m AND x.created_at < mins.m + interval '1 minute') AS reactions"
		" FROM mins ORDER BY mins.m", 2, p, err);
	if (res == NULL) {
		json_decref(out);
		return NULL;
	}
	timeline = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(timeline, json_pack("{s:s, s:I, s:I, s:I}",
			"minute", row_text(res, i, "minute"),
			"viewers", (json_int_t)row_i64(res, i, "viewers", 0),
			"chat_messages", (json_int_t)row_i64(res, i, "chat", 0),
			"reactions", (json_int_t)row_i64(res, i, "reactions", 0)));
	PQclear(res);
	json_object_set_new(out, "timeline", timeline);
	return out;
}

/* ---- webhook hooks ---- */

json_t *streams_db_ingress_started(struct db_conn *db, const char *ingress_id, const char *ts,
				   bool *done, struct nc_error *err)
{
	const char *p[2] = { ingress_id, ts };
	PGresult *res = db_exec(db,
		"UPDATE nchat_streams SET status = 'live',"
		" started_at = COALESCE(started_at, to_timestamp($2::bigint)),"
		" last_event_at = to_timestamp($2::bigint)"
		" WHERE livekit_ingress_id = $1 AND status IN ('preparing', 'scheduled')"
		"   AND (last_event_at IS NULL OR last_event_at <= to_timestamp($2::bigint))"
		" RETURNING id::text AS id, channel_id::text AS channel_id,"
		" broadcaster_id::text AS broadcaster_id, title, " STREAMS_TS("started_at") " AS started_at",
		2, p, err);
	json_t *payload = NULL;

	*done = false;
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1) {
		*done = true;
		payload = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s}", "stream_id", row_text(res, 0, "id"),
				    "channel_id", row_text(res, 0, "channel_id"), "broadcaster_id",
				    row_text(res, 0, "broadcaster_id"), "title", row_text(res, 0, "title"),
				    "started_at", row_text(res, 0, "started_at"), "source", "ingress");
	}
	PQclear(res);
	return payload;
}

enum nc_err streams_db_ingress_ended(struct db_conn *db, const char *ingress_id, const char *ts,
				     struct nc_error *err)
{
	const char *p[2] = { ingress_id, ts };

	return exec_ok(db,
		"UPDATE nchat_streams SET last_event_at = to_timestamp($2::bigint)"
		" WHERE livekit_ingress_id = $1"
		"   AND (last_event_at IS NULL OR last_event_at <= to_timestamp($2::bigint))",
		2, p, err);
}

int streams_db_egress_gone(struct db_conn *db, const char *egress_id, const char *ts,
			   char stream_id[37], struct nc_error *err)
{
	const char *p[2] = { egress_id, ts };
	PGresult *res = db_exec(db,
		"UPDATE nchat_streams SET livekit_egress_id = NULL,"
		" last_event_at = to_timestamp($2::bigint)"
		" WHERE livekit_egress_id = $1 AND status = 'live' RETURNING id::text AS id",
		2, p, err);
	int n;

	if (res == NULL)
		return -1;
	n = PQntuples(res) == 1;
	if (n)
		row_copy(res, 0, "id", stream_id, 37);
	PQclear(res);
	return n;
}

int streams_db_has_ingress_or_egress(struct db_conn *db, const char *ingress_id,
				     const char *egress_id, struct nc_error *err)
{
	const char *p[2] = { ingress_id, egress_id };
	PGresult *res = db_exec(db,
		"SELECT count(*) AS n FROM nchat_streams WHERE ($1::text IS NOT NULL"
		" AND livekit_ingress_id = $1) OR ($2::text IS NOT NULL AND livekit_egress_id = $2)",
		2, p, err);
	int n;

	if (res == NULL)
		return -1;
	n = row_i64(res, 0, "n", 0) > 0;
	PQclear(res);
	return n;
}

json_t *streams_db_status_by_lk_id(struct db_conn *db, const char *lk_id, char stream_id[37],
				   struct nc_error *err)
{
	const char *p[1] = { lk_id };
	PGresult *res = db_exec(db,
		"SELECT id::text AS id, json_build_object('id', id, 'status', status,"
		" 'hls_manifest_url', hls_manifest_url, 'started_at', started_at)::text AS data"
		" FROM nchat_streams WHERE livekit_ingress_id = $1 OR livekit_egress_id = $1", 1, p, err);
	json_t *data = NULL;

	stream_id[0] = '\0';
	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1) {
		row_copy(res, 0, "id", stream_id, 37);
		data = json_col(res, "data");
	}
	PQclear(res);
	return data;
}
