/*
 * streams_db.c - the statements of streams_db.h.
 */
#include "streams/streams_db.h"
#include "core/buf.h"
#include "core/uuid.h"
#include "store/db_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The stream ($1) with the caller's ($2, NULL for anonymous) rights:
 * $3 staff, $4 STREAMS_PUBLIC_WHILE_LIVE.  CTE "v" of every hot path.
 */
#define SEEN_CTE                                                                         \
	"v AS (SELECT s.id, s.status, s.enable_chat, s.enable_reactions,"                 \
	"   s.chat_slow_mode_seconds AS slow,"                                             \
	"   s.status IN ('ended', 'failed') AS over,"                                      \
	"   ($2::uuid IS NOT NULL AND s.broadcaster_id = $2::uuid) AS is_broadcaster,"     \
	"   ($2::uuid IS NOT NULL AND s.broadcaster_id = $2::uuid) OR $3::boolean"        \
	"   OR (s.status = 'live' AND $4::boolean)"                                        \
	"   OR ($2::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m"     \
	"       WHERE m.channel_id = s.channel_id AND m.user_id = $2::uuid)) AS can_view"  \
	"  FROM nchat_streams s WHERE s.id = $1::uuid)"

#define SEEN_COLS "v.status, v.can_view, v.over, v.is_broadcaster"

#define MSG_JSON_SQL                                                                      \
	"json_build_object('id', m.id, 'stream_id', m.stream_id, 'user_id', m.user_id,"   \
	" 'display_name', (SELECT u.display_name FROM nchat_users u WHERE u.id = m.user_id)," \
	" 'content', m.content, 'is_pinned', m.is_pinned,"                                \
	" 'pinned_at', " STREAMS_TS("m.pinned_at") ", 'is_deleted', m.is_deleted,"       \
	" 'created_at', " STREAMS_TS("m.created_at") ")"

/* SEEN_COLS of row i, of a stream that was found. */
static void seen_at(const PGresult *res, int i, struct streams_seen *s)
{
	memset(s, 0, sizeof(*s));
	s->found = true;
	row_copy(res, i, "status", s->status, sizeof(s->status));
	s->can_view = row_true(res, i, "can_view");
	s->over = row_true(res, i, "over");
	s->is_broadcaster = row_true(res, i, "is_broadcaster");
}

static void seen_from(const PGresult *res, struct streams_seen *s)
{
	memset(s, 0, sizeof(*s));
	if (PQntuples(res) == 1)
		seen_at(res, 0, s);
}

int streams_db_load(struct db_conn *db, const char *id, const char *user_id, bool for_update,
		    struct stream_row *out, struct nc_error *err)
{
	const char *params[2] = { id, user_id };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	res = db_exec(db, for_update
		? "SELECT s.id::text AS id, s.channel_id::text AS channel_id,"
		  " s.broadcaster_id::text AS broadcaster_id, s.status,"
		  " s.livekit_room_name AS room_name, s.livekit_ingress_id AS ingress_id,"
		  " s.livekit_egress_id AS egress_id, s.enable_chat, s.enable_reactions,"
		  " s.chat_slow_mode_seconds,"
		  " $2::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m"
		  "   WHERE m.channel_id = s.channel_id AND m.user_id = $2::uuid) AS is_member"
		  " FROM nchat_streams s WHERE s.id = $1 FOR UPDATE OF s"
		: "SELECT s.id::text AS id, s.channel_id::text AS channel_id,"
		  " s.broadcaster_id::text AS broadcaster_id, s.status,"
		  " s.livekit_room_name AS room_name, s.livekit_ingress_id AS ingress_id,"
		  " s.livekit_egress_id AS egress_id, s.enable_chat, s.enable_reactions,"
		  " s.chat_slow_mode_seconds,"
		  " $2::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m"
		  "   WHERE m.channel_id = s.channel_id AND m.user_id = $2::uuid) AS is_member"
		  " FROM nchat_streams s WHERE s.id = $1", 2, params, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	row_copy(res, 0, "id", out->id, sizeof(out->id));
	row_copy(res, 0, "channel_id", out->channel_id, sizeof(out->channel_id));
	row_copy(res, 0, "broadcaster_id", out->broadcaster_id, sizeof(out->broadcaster_id));
	row_copy(res, 0, "status", out->status, sizeof(out->status));
	out->room_name = row_dup(res, 0, "room_name");
	out->ingress_id = row_dup(res, 0, "ingress_id");
	out->egress_id = row_dup(res, 0, "egress_id");
	out->enable_chat = row_true(res, 0, "enable_chat");
	out->enable_reactions = row_true(res, 0, "enable_reactions");
	out->slow_mode_s = (int)row_i64(res, 0, "chat_slow_mode_seconds", 0);
	out->is_member = row_true(res, 0, "is_member");
	PQclear(res);
	return 1;
}

enum nc_err streams_db_chat_post(struct db_conn *db, const char *stream_id,
				 const struct streams_caller *c, const char *content, bool slow_ok,
				 struct streams_chat_post *out, struct nc_error *err)
{
	const char *params[6] = { stream_id, c->user_id, c->staff ? "t" : "f",
				  c->public_live ? "t" : "f", content, slow_ok ? "t" : "f" };
	const char *msg;
	PGresult *res;

	memset(out, 0, sizeof(*out));
	res = db_exec_service(db,
		"WITH " SEEN_CTE ","
		" m AS (INSERT INTO nchat_stream_chat_messages AS m (stream_id, user_id, content)"
		"   SELECT v.id, $2::uuid, $5 FROM v"
		"   WHERE v.can_view AND NOT v.over AND v.enable_chat"
		"     AND (v.slow = 0 OR v.is_broadcaster OR $3::boolean OR $6::boolean)"
		"   RETURNING " MSG_JSON_SQL "::text AS msg)"
		" SELECT " SEEN_COLS ", v.enable_chat, v.slow,"
		"  (v.slow > 0 AND NOT v.is_broadcaster AND NOT $3::boolean AND NOT $6::boolean)"
		"    AS needs_slow_check, (SELECT m.msg FROM m) AS msg FROM v", 6, params, err);
	if (res == NULL)
		return err->code;
	seen_from(res, &out->s);
	if (out->s.found) {
		out->enable_chat = row_true(res, 0, "enable_chat");
		out->slow_mode_s = (int)row_i64(res, 0, "slow", 0);
		out->needs_slow_check = row_true(res, 0, "needs_slow_check");
		msg = row_text(res, 0, "msg");
		if (msg != NULL && (out->msg = json_loads(msg, 0, NULL)) == NULL) {
			PQclear(res);
			return err_set(err, NC_EINTERNAL, "cannot read the new message");
		}
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_reaction(struct db_conn *db, const char *stream_id,
				const struct streams_caller *c, const char *session_id,
				const char *type, struct streams_reaction *out, struct nc_error *err)
{
	const char *params[6] = { stream_id, c->user_id, c->staff ? "t" : "f",
				  c->public_live ? "t" : "f", session_id, type };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	/* a named session must be the caller's open one (signed in or anonymous alike) */
	res = db_exec_service(db,
		"WITH " SEEN_CTE ","
		" vw AS (SELECT x.id FROM nchat_stream_viewers x WHERE $5::text IS NOT NULL"
		"   AND x.stream_id = $1::uuid AND x.viewer_session_id = $5"
		"   AND x.user_id IS NOT DISTINCT FROM $2::uuid AND x.left_at IS NULL),"
		" ok AS (SELECT v.id FROM v WHERE v.can_view AND NOT v.over AND v.enable_reactions"
		"   AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM vw))),"
		" r AS (INSERT INTO nchat_stream_reactions (stream_id, user_id, viewer_id, reaction_type)"
		"   SELECT ok.id, $2::uuid, (SELECT vw.id FROM vw), $6 FROM ok"
		"   RETURNING id::text AS id, " STREAMS_TS("created_at") " AS created_at)"
		" SELECT " SEEN_COLS ", v.enable_reactions,"
		"  ($5::text IS NULL OR EXISTS (SELECT 1 FROM vw)) AS session_ok,"
		"  (SELECT r.id FROM r) AS rid, (SELECT r.created_at FROM r) AS created_at FROM v",
		6, params, err);
	if (res == NULL)
		return err->code;
	seen_from(res, &out->s);
	if (out->s.found) {
		out->enable_reactions = row_true(res, 0, "enable_reactions");
		out->session_ok = row_true(res, 0, "session_ok");
		row_copy(res, 0, "rid", out->id, sizeof(out->id));
		row_copy(res, 0, "created_at", out->created_at, sizeof(out->created_at));
	}
	PQclear(res);
	return NC_OK;
}

/*
 * One row per reaction, in order: x numbers them and gives each its id
 * beforehand (so a written row is found again by it), v is SEEN_CTE of each
 * with the named session, r writes those that may be written.
 */
enum nc_err streams_db_reactions(struct db_conn *db, size_t n, const struct streams_reaction_in *in,
				 struct streams_reaction *out, struct nc_error *err)
{
	struct buf a[6] = { { 0 } };
	const char *params[6];
	PGresult *res = NULL;
	size_t k;

	for (k = 0; k < 6; k++)
		buf_add(&a[k], "{");
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		row_array_add(&a[0], in[i].stream_id);
		row_array_add(&a[1], in[i].c.user_id);
		row_array_add(&a[2], in[i].c.staff ? "t" : "f");
		row_array_add(&a[3], in[i].c.public_live ? "t" : "f");
		row_array_add(&a[4], in[i].session_id);
		row_array_add(&a[5], in[i].type);
	}
	for (k = 0; k < 6; k++) {
		buf_add(&a[k], "}");
		params[k] = buf_str(&a[k]);
	}
	/* a named session must be the caller's open one (signed in or anonymous alike) */
	res = db_exec_service(db,
		"WITH x AS MATERIALIZED (SELECT t.o, t.sid, t.uid, t.staff, t.pub, t.sess, t.typ,"
		"   gen_random_uuid() AS rid FROM unnest($1::uuid[], $2::uuid[], $3::boolean[],"
		"   $4::boolean[], $5::text[], $6::text[]) WITH ORDINALITY"
		"   AS t(sid, uid, staff, pub, sess, typ, o)),"
		" v AS (SELECT x.o, x.rid, x.uid, x.sess, x.typ, s.id, s.status, s.enable_reactions,"
		"   s.status IN ('ended', 'failed') AS over,"
		"   (x.uid IS NOT NULL AND s.broadcaster_id = x.uid) AS is_broadcaster,"
		"   (x.uid IS NOT NULL AND s.broadcaster_id = x.uid) OR x.staff"
		"   OR (s.status = 'live' AND x.pub)"
		"   OR (x.uid IS NOT NULL AND EXISTS (SELECT 1 FROM nchat_channel_members m"
		"       WHERE m.channel_id = s.channel_id AND m.user_id = x.uid)) AS can_view,"
		"   (SELECT w.id FROM nchat_stream_viewers w WHERE x.sess IS NOT NULL"
		"     AND w.stream_id = s.id AND w.viewer_session_id = x.sess"
		"     AND w.user_id IS NOT DISTINCT FROM x.uid AND w.left_at IS NULL) AS vw"
		"  FROM x JOIN nchat_streams s ON s.id = x.sid),"
		" r AS (INSERT INTO nchat_stream_reactions (id, stream_id, user_id, viewer_id, reaction_type)"
		"   SELECT v.rid, v.id, v.uid, v.vw, v.typ FROM v WHERE v.can_view AND NOT v.over"
		"     AND v.enable_reactions AND (v.sess IS NULL OR v.vw IS NOT NULL)"
		"   RETURNING id, " STREAMS_TS("created_at") " AS created_at)"
		" SELECT x.o, v.id IS NOT NULL AS found, " SEEN_COLS ", v.enable_reactions,"
		"  (x.sess IS NULL OR v.vw IS NOT NULL) AS session_ok,"
		"  r.id::text AS rid, r.created_at"
		" FROM x LEFT JOIN v ON v.o = x.o LEFT JOIN r ON r.id = x.rid ORDER BY x.o",
		6, params, err);
	for (k = 0; k < 6; k++)
		buf_free(&a[k]);
	if (res == NULL)
		return err->code;
	if ((size_t)PQntuples(res) != n) {
		int got = PQntuples(res);

		PQclear(res);
		return err_set(err, NC_EINTERNAL, "reactions: %d rows for %zu", got, n);
	}
	for (size_t i = 0; i < n; i++) {
		struct streams_reaction *o = &out[i];

		if (!row_true(res, (int)i, "found"))
			continue;
		seen_at(res, (int)i, &o->s);
		o->enable_reactions = row_true(res, (int)i, "enable_reactions");
		o->session_ok = row_true(res, (int)i, "session_ok");
		row_copy(res, (int)i, "rid", o->id, sizeof(o->id));
		row_copy(res, (int)i, "created_at", o->created_at, sizeof(o->created_at));
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_viewer_join(struct db_conn *db, const char *stream_id,
				   const struct streams_caller *c, const char *session_id,
				   const char *client_key, int max_anon,
				   struct streams_viewer_join *out, struct nc_error *err)
{
	char max_s[16];
	const char *params[7] = { stream_id, c->user_id, c->staff ? "t" : "f",
				  c->public_live ? "t" : "f", session_id, client_key, max_s };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	snprintf(max_s, sizeof(max_s), "%d", max_anon);
	res = db_exec_service(db,
		"WITH " SEEN_CTE ","
		/* the bound applies to new sessions: a re-open counts nothing */
		" anon AS (SELECT CASE WHEN $6::text IS NULL OR EXISTS (SELECT 1"
		"     FROM nchat_stream_viewers e WHERE e.stream_id = $1::uuid"
		"     AND e.viewer_session_id = $5) THEN 0"
		"   ELSE (SELECT count(*) FROM (SELECT 1 FROM nchat_stream_viewers x"
		"     WHERE x.stream_id = $1::uuid AND x.client_key = $6"
		"       AND x.user_id IS NULL AND x.left_at IS NULL"
		"     LIMIT $7::int) y) END AS n),"
		" j AS (INSERT INTO nchat_stream_viewers AS x (stream_id, user_id, viewer_session_id,"
		"     client_key)"
		"   SELECT v.id, $2::uuid, $5, $6 FROM v"
		"   WHERE v.can_view AND NOT v.over AND (SELECT anon.n FROM anon) < $7::int"
		"   ON CONFLICT (stream_id, viewer_session_id) DO UPDATE"
		"     SET left_at = NULL, last_heartbeat_at = now()"
		"     WHERE x.user_id IS NOT DISTINCT FROM EXCLUDED.user_id"
		"   RETURNING x.id::text AS id, " STREAMS_TS("x.joined_at") " AS joined_at,"
		"     (x.xmax = 0) AS inserted)"
		" SELECT " SEEN_COLS ", (SELECT anon.n FROM anon) >= $7::int AS too_many,"
		"  (SELECT count(*) FROM j) AS written, (SELECT j.id FROM j) AS viewer_id,"
		"  (SELECT j.joined_at FROM j) AS joined_at, (SELECT j.inserted FROM j) AS inserted"
		" FROM v", 7, params, err);
	if (res == NULL)
		return err->code;
	seen_from(res, &out->s);
	if (out->s.found) {
		out->too_many = row_true(res, 0, "too_many");
		out->inserted = row_true(res, 0, "inserted");
		row_copy(res, 0, "viewer_id", out->viewer_id, sizeof(out->viewer_id));
		row_copy(res, 0, "joined_at", out->joined_at, sizeof(out->joined_at));
		out->taken = out->s.can_view && !out->s.over && !out->too_many &&
			     row_i64(res, 0, "written", 0) == 0;
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_heartbeat(struct db_conn *db, const char *stream_id, const char *session_id,
				 const char *user_id, enum streams_beat_outcome *out,
				 struct nc_error *err)
{
	const char *params[3] = { stream_id, session_id, user_id };
	PGresult *res;

	*out = STREAMS_BEAT_NO_STREAM;
	res = db_exec_service(db,
		"WITH s AS (SELECT status IN ('ended', 'failed') AS over FROM nchat_streams"
		"   WHERE id = $1::uuid),"
		" x AS (SELECT id, left_at IS NULL AS open FROM nchat_stream_viewers"
		"   WHERE stream_id = $1::uuid AND viewer_session_id = $2"
		"     AND user_id IS NOT DISTINCT FROM $3::uuid),"
		" u AS (UPDATE nchat_stream_viewers SET last_heartbeat_at = now()"
		"   WHERE id = (SELECT x.id FROM x WHERE x.open)"
		"     AND NOT (SELECT s.over FROM s) RETURNING 1)"
		" SELECT (SELECT count(*) FROM s) AS stream, (SELECT s.over FROM s) AS over,"
		"  (SELECT count(*) FROM x) AS session, (SELECT bool_and(x.open) FROM x) AS open,"
		"  (SELECT count(*) FROM u) AS beat", 3, params, err);
	if (res == NULL)
		return err->code;
	if (row_i64(res, 0, "stream", 0) == 0)
		*out = STREAMS_BEAT_NO_STREAM;
	else if (row_i64(res, 0, "session", 0) == 0)
		*out = STREAMS_BEAT_NO_SESSION;
	else if (!row_true(res, 0, "open"))
		*out = STREAMS_BEAT_CLOSED;
	else if (row_true(res, 0, "over"))
		*out = STREAMS_BEAT_OVER;
	else
		*out = STREAMS_BEAT_OK;
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_viewer_leave(struct db_conn *db, const char *stream_id,
				    const char *session_id, const char *user_id,
				    struct streams_viewer_leave *out, struct nc_error *err)
{
	const char *params[3] = { stream_id, session_id, user_id };
	PGresult *res;

	memset(out, 0, sizeof(*out));
	/* RETURNING shows what the closing trigger computed (the watch time) */
	res = db_exec_service(db,
		"WITH x AS (SELECT v.id, v.watch_duration_seconds, v.left_at"
		"   FROM nchat_stream_viewers v JOIN nchat_streams s ON s.id = v.stream_id"
		"   WHERE v.stream_id = $1::uuid AND v.viewer_session_id = $2"
		"     AND v.user_id IS NOT DISTINCT FROM $3::uuid),"
		" u AS (UPDATE nchat_stream_viewers v SET left_at = now()"
		"   WHERE v.id = (SELECT x.id FROM x) AND v.left_at IS NULL"
		"   RETURNING v.watch_duration_seconds, v.left_at)"
		" SELECT COALESCE((SELECT u.watch_duration_seconds FROM u),"
		"   x.watch_duration_seconds) AS watch,"
		"  " STREAMS_TS("COALESCE((SELECT u.left_at FROM u), x.left_at)") " AS left_at FROM x",
		3, params, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 1) {
		out->found = true;
		out->watch_duration_seconds = row_i64(res, 0, "watch", 0);
		row_copy(res, 0, "left_at", out->left_at, sizeof(out->left_at));
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err streams_db_set_current_viewers(struct db_conn *db, const char *stream_id, long n,
					   enum streams_count_write *out, struct nc_error *err)
{
	char txt[24];
	const char *params[2] = { stream_id, txt };
	PGresult *res;

	snprintf(txt, sizeof(txt), "%ld", n);
	/*
	 * Never queue on the stream row (a crowd joining at once changes the
	 * count on every join): if another writer holds it, skip; the count is
	 * then still "changed" for the next join, heartbeat or read, which
	 * writes it.
	 */
	res = db_exec_service(db,
		"WITH t AS (SELECT s.current_viewers = $2::int OR s.status IN ('ended', 'failed')"
		"   AS same FROM nchat_streams s WHERE s.id = $1),"
		" u AS (UPDATE nchat_streams SET current_viewers = $2::int"
		"   WHERE id = (SELECT s.id FROM nchat_streams s WHERE s.id = $1"
		"     AND s.current_viewers <> $2::int AND s.status NOT IN ('ended', 'failed')"
		"     FOR NO KEY UPDATE SKIP LOCKED) RETURNING 1)"
		" SELECT COALESCE((SELECT t.same FROM t), true) AS same,"
		"  (SELECT count(*) FROM u) AS written", 2, params, err);
	if (res == NULL)
		return err->code;
	*out = row_i64(res, 0, "written", 0) > 0 ? STREAMS_COUNT_WRITTEN
	       : row_true(res, 0, "same") ? STREAMS_COUNT_SAME : STREAMS_COUNT_BUSY;
	PQclear(res);
	return NC_OK;
}

json_t *streams_db_list(struct db_conn *db, const char *viewer, const struct streams_list_filter *f,
			struct nc_error *err)
{
	char lim[16];
	const char *params[5] = { f->channel_id, f->status, f->before, lim, viewer };
	PGresult *res;
	json_t *arr;
	int col;

	snprintf(lim, sizeof(lim), "%d", f->limit + 1);
	/* the viewer's own streams and their channels' (row-level security or not) */
	res = db_exec_user(db, viewer,
		"SELECT " STREAM_JSON_EXACT_SQL "::text AS stream FROM (SELECT s.* FROM nchat_streams s"
		" WHERE (s.broadcaster_id = $5::uuid OR EXISTS (SELECT 1 FROM nchat_channel_members m"
		"        WHERE m.channel_id = s.channel_id AND m.user_id = $5::uuid))"
		"   AND ($1::uuid IS NULL OR s.channel_id = $1::uuid)"
		"   AND ($2::text IS NULL OR s.status = $2::text)"
		"   AND ($3::uuid IS NULL OR (s.created_at, s.id) <"
		"        (SELECT b.created_at, b.id FROM nchat_streams b WHERE b.id = $3::uuid))"
		" ORDER BY s.created_at DESC, s.id DESC LIMIT $4::int) s"
		/* the pending counts of the page's streams only */
		STREAM_PENDING_JOIN " ORDER BY s.created_at DESC, s.id DESC", 5, params, err);
	if (res == NULL)
		return NULL;
	arr = json_array();
	col = row_col(res, "stream");
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *o = json_loads(PQgetvalue(res, i, col), 0, NULL);

		if (o != NULL)
			json_array_append_new(arr, o);
	}
	PQclear(res);
	return arr;
}

int streams_db_flush_counters(struct db_conn *db, struct nc_error *err)
{
	PGresult *res = db_exec_service(db, "SELECT nchat_rtc_stream_counters_flush() AS n", 0,
					 NULL, err);
	int n;

	if (res == NULL)
		return -1;
	n = (int)row_i64(res, 0, "n", 0);
	PQclear(res);
	return n;
}

void streams_db_sync_counters(struct db_conn *db, const char *stream_id)
{
	const char *p[1] = { stream_id };
	struct nc_error err = {0};
	PGresult *res;

	if (stream_id == NULL || !is_uuid(stream_id))
		return;
	res = db_exec_service(db, "SELECT nchat_rtc_stream_counters_sync($1::uuid)", 1, p, &err);
	PQclear(res);
}
