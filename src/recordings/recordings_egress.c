/*
 * recordings_egress.c - what LiveKit tells us about an egress: the
 * egress_* webhook events (recordings_on_egress, handed over by the webhook
 * router), the reconciliation of rows still in progress against ListEgress
 * (run by the sweep), and server-side encryption of a completed recording.
 *
 * Webhooks may reach us before StartRoomCompositeEgress has answered and its
 * egress id is stored (recordings.c); such an event is matched by the object
 * key, which is unique per recording and echoed in egressInfo (the request's
 * filepath, or the file result's filename), and the egress id is filled in
 * then.  Terminal states are never left by an egress event; older events
 * never overwrite newer ones (last_event_at).
 */
#include "recordings/recordings.h"
#include "store/db.h"
#include "store/db_row.h"
#include "realtime/events.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "s3/s3.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- egress events ---- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* An int64 that protobuf JSON writes as a string (or a number); 0 if absent. */
static long long jint64(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

/* Rank of a row state: events never move a row to a lower rank. */
static int state_rank(const char *s)
{
	if (strcmp(s, "starting") == 0)
		return 0;
	if (strcmp(s, "active") == 0)
		return 1;
	if (strcmp(s, "ending") == 0)
		return 2;
	return 3; /* completed, failed, aborted, deleted: terminal */
}

/* EgressStatus name -> row status (LIMIT_REACHED: the file is complete, so completed). */
static const char *map_status(const char *egress_status)
{
	static const struct { const char *from, *to; } m[] = {
		{ "EGRESS_STARTING", "starting" }, { "EGRESS_ACTIVE", "active" },
		{ "EGRESS_ENDING", "ending" }, { "EGRESS_COMPLETE", "completed" },
		{ "EGRESS_FAILED", "failed" }, { "EGRESS_ABORTED", "aborted" },
		{ "EGRESS_LIMIT_REACHED", "completed" },
	};

	for (size_t i = 0; i < NC_ARRAY_LEN(m); i++)
		if (strcmp(egress_status, m[i].from) == 0)
			return m[i].to;
	return NULL;
}

/* The object key the egress was asked to write (request echo, or the file result). */
static const char *egress_filepath(json_t *info)
{
	json_t *rc = json_object_get(info, "roomComposite");
	json_t *fo = json_array_get(json_object_get(rc, "fileOutputs"), 0);
	json_t *fr = json_array_get(json_object_get(info, "fileResults"), 0);
	const char *s = jstr(fo, "filepath");

	if (s == NULL)
		s = jstr(json_object_get(rc, "file"), "filepath");
	if (s == NULL)
		s = jstr(fr, "filename");
	return s;
}

/* "<sec>.<nanos>" of a unix-nanosecond value (for to_timestamp). */
static void ns_text(long long ns, char *out, size_t n)
{
	snprintf(out, n, "%lld.%09lld", ns / 1000000000LL, ns % 1000000000LL);
}

/* The columns both lookups of lock_egress_row return. */
#define EGRESS_ROW_COLS \
	"id, call_id, status," \
	" COALESCE(floor(extract(epoch FROM last_event_at))::bigint, 0) AS last_event"

/*
 * The row of egress_id, locked; when the id is not stored yet (start still
 * in flight), the row of our unique object key, which gets the id now.
 * NULL on error; no row when the egress is not one of ours.
 */
static PGresult *lock_egress_row(struct db_conn *db, const char *egress_id, json_t *info,
				 struct nc_error *err)
{
	const char *p[2] = { egress_id, NULL };
	const char *path;
	PGresult *res;

	res = db_exec(db,
		      "SELECT " EGRESS_ROW_COLS
		      " FROM nchat_call_recordings WHERE livekit_egress_id = $1 FOR UPDATE",
		      1, p, err);
	if (res == NULL || PQntuples(res) > 0 || (path = egress_filepath(info)) == NULL)
		return res;
	PQclear(res);
	p[0] = path;
	p[1] = egress_id;
	return db_exec(db,
		       "UPDATE nchat_call_recordings SET livekit_egress_id = $2"
		       " WHERE object_key = $1 AND livekit_egress_id IS NULL"
		       " RETURNING " EGRESS_ROW_COLS,
		       2, p, err);
}

/* Write state `to` and what the event says about times, file and error into the row. */
static enum nc_err write_egress_state(struct db_conn *db, const char *rec_id, const char *to,
				      int64_t created_at, json_t *info, struct nc_error *err)
{
	char created[24], ended[32], started[32], size[24], dur[24];
	bool completed = strcmp(to, "completed") == 0;
	const char *errtext, *p[10];
	json_t *fr;
	PGresult *res;

	snprintf(created, sizeof created, "%lld", (long long)(created_at > 0 ? created_at : 0));
	ns_text(jint64(info, "endedAt"), ended, sizeof ended);
	ns_text(jint64(info, "startedAt"), started, sizeof started);
	fr = json_array_get(json_object_get(info, "fileResults"), 0);
	if (fr == NULL)
		fr = json_object_get(info, "file");
	snprintf(size, sizeof size, "%lld", jint64(fr, "size"));
	/* duration is nanoseconds; whole seconds, rounded. */
	snprintf(dur, sizeof dur, "%lld", (jint64(fr, "duration") + 500000000LL) / 1000000000LL);
	errtext = jstr(info, "error");
	if ((errtext == NULL || *errtext == '\0') && !completed)
		errtext = jstr(info, "details");

	p[0] = rec_id;
	p[1] = to;
	p[2] = created;
	p[3] = started;
	p[4] = ended;
	p[5] = completed ? jstr(fr, "location") : NULL;
	p[6] = completed ? jstr(fr, "filename") : NULL;
	p[7] = completed && fr ? size : NULL;
	p[8] = completed && fr ? dur : NULL;
	p[9] = (strcmp(to, "failed") == 0 || strcmp(to, "aborted") == 0)
		       ? (errtext && *errtext ? errtext : "egress ended without an error text")
		       : NULL;
	res = db_exec(db,
		      "UPDATE nchat_call_recordings SET status = $2,"
		      " last_event_at = GREATEST(last_event_at, CASE WHEN $3::bigint > 0"
		      "   THEN to_timestamp($3::bigint) END),"
		      " started_at = COALESCE(started_at, CASE WHEN $4::numeric > 0"
		      "   THEN to_timestamp($4::double precision) END),"
		      " ended_at = CASE WHEN $2 IN ('completed', 'failed', 'aborted') THEN"
		      "   COALESCE(CASE WHEN $5::numeric > 0 THEN to_timestamp($5::double precision) END,"
		      "            ended_at, now()) ELSE ended_at END,"
		      " file_url = COALESCE($6, file_url),"
		      " object_key = COALESCE(NULLIF($7, ''), object_key),"
		      " file_size_bytes = COALESCE($8::bigint, file_size_bytes),"
		      " duration_seconds = COALESCE($9::integer, duration_seconds),"
		      " error = COALESCE($10, error)"
		      " WHERE id = $1",
		      10, p, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

/* An ended recording is audited; a completed one is announced (recording.ready). */
static enum nc_err egress_ended(struct nc_worker *w, const char *rec_id, const char *call_id,
				const char *egress_id, const char *to, struct nc_error *err)
{
	struct db_conn *db = &w->db;
	json_t *details, *row;
	enum nc_err e;

	if (strcmp(to, "completed") != 0 && strcmp(to, "failed") != 0 &&
	    strcmp(to, "aborted") != 0)
		return NC_OK;
	details = json_pack("{s:s, s:s, s:s}", "callId", call_id, "egressId", egress_id,
			    "status", to);
	e = audit_log(db, NULL, "recording.end", "recording", rec_id, details, NULL, err);
	json_decref(details);
	if (e != NC_OK || strcmp(to, "completed") != 0)
		return e;
	row = recordings_row_by_id(db, rec_id, err);
	if (row == NULL)
		return err->code;
	e = outbox_enqueue(db, w->cfg, "recording.ready", row, err);
	json_decref(row);
	return e;
}

int recordings_on_egress(struct nc_worker *w, const char *event, json_t *info,
			 int64_t created_at, struct nc_error *err)
{
	const char *egress_id = jstr(info, "egressId");
	const char *estatus = jstr(info, "status");
	const char *to, *cur;
	char *rec_id, *call_id;
	PGresult *res;
	int rc = -1;

	(void)event; /* the status inside egressInfo is what counts */
	if (egress_id == NULL || *egress_id == '\0')
		return 0;
	/* Protobuf JSON omits enum value 0: no status means EGRESS_STARTING. */
	to = map_status(estatus ? estatus : "EGRESS_STARTING");
	if (to == NULL) {
		log_warn("egress %s: unknown status %s ignored", egress_id, estatus);
		return 0;
	}
	res = lock_egress_row(&w->db, egress_id, info, err);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	rec_id = xstrdup(row_text(res, 0, "id"));
	call_id = xstrdup(row_text(res, 0, "call_id"));
	cur = row_text(res, 0, "status");
	if ((created_at > 0 && created_at < row_i64(res, 0, "last_event", 0)) ||
	    state_rank(cur) == 3 || state_rank(to) < state_rank(cur)) {
		/* Older than what we applied, or would leave a terminal / go backwards. */
		log_debug("egress %s: %s ignored (row is %s)", egress_id, to, cur);
		rc = 1;
	}
	PQclear(res);
	if (rc != 1 && write_egress_state(&w->db, rec_id, to, created_at, info, err) == NC_OK &&
	    egress_ended(w, rec_id, call_id, egress_id, to, err) == NC_OK)
		rc = 1;
	free(rec_id);
	free(call_id);
	return rc;
}

/* ---- reconciliation with ListEgress (run by the sweep) ---- */

/* The fields recordings_on_egress reads, from a ListEgress item. */
static json_t *egress_info_json(const Livekit__EgressInfo *e)
{
	const ProtobufCEnumValue *sv =
		protobuf_c_enum_descriptor_get_value(&livekit__egress_status__descriptor, e->status);
	json_t *j = json_object();
	char buf[32];

	json_object_set_new(j, "egressId", json_string(e->egress_id ? e->egress_id : ""));
	json_object_set_new(j, "status", json_string(sv ? sv->name : "EGRESS_STARTING"));
	snprintf(buf, sizeof buf, "%lld", (long long)e->started_at);
	json_object_set_new(j, "startedAt", json_string(buf));
	snprintf(buf, sizeof buf, "%lld", (long long)e->ended_at);
	json_object_set_new(j, "endedAt", json_string(buf));
	if (e->error && *e->error)
		json_object_set_new(j, "error", json_string(e->error));
	if (e->n_file_results > 0) {
		const Livekit__FileInfo *f = e->file_results[0];
		json_t *fr = json_object();
		snprintf(buf, sizeof buf, "%lld", (long long)f->size);
		json_object_set_new(fr, "size", json_string(buf));
		snprintf(buf, sizeof buf, "%lld", (long long)f->duration);
		json_object_set_new(fr, "duration", json_string(buf));
		json_object_set_new(fr, "filename", json_string(f->filename ? f->filename : ""));
		json_object_set_new(fr, "location", json_string(f->location ? f->location : ""));
		json_object_set_new(j, "fileResults", json_pack("[o]", fr));
	}
	return j;
}

/* Apply a synthetic event in its own service transaction.  0 or -1. */
static int apply_info(struct nc_worker *w, json_t *info, struct nc_error *err)
{
	if (db_begin_service(&w->db, err) != NC_OK)
		return -1;
	if (recordings_on_egress(w, "reconcile", info, now_unix(), err) < 0 ||
	    db_commit(&w->db, err) != NC_OK) {
		db_rollback(&w->db);
		return -1;
	}
	return 0;
}

static int set_state(struct nc_worker *w, const char *rec_id, const char *status,
		     const char *why, struct nc_error *err)
{
	const char *p[3] = { rec_id, status, why };
	PGresult *res;

	if (db_begin_service(&w->db, err) != NC_OK)
		return -1;
	res = db_exec(&w->db,
		      "UPDATE nchat_call_recordings SET status = $2, error = $3,"
		      " ended_at = COALESCE(ended_at, now())"
		      " WHERE id = $1 AND status IN " REC_ACTIVE_SQL,
		      3, p, err);
	if (res == NULL || db_commit(&w->db, err) != NC_OK) {
		PQclear(res);
		db_rollback(&w->db);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Bring one in-progress row in line with LiveKit; counted in out. */
static void reconcile_one(struct nc_worker *w, const PGresult *res, int i,
			  struct rec_reconcile *out, struct nc_error *err)
{
	const char *rec_id = row_text(res, i, "id");
	const char *egress_id = row_text(res, i, "livekit_egress_id");
	Livekit__ListEgressRequest lq = LIVEKIT__LIST_EGRESS_REQUEST__INIT;
	Livekit__ListEgressResponse *list;
	struct lk_status st;
	struct nc_error e2;
	int done = 1; /* 1: nothing to do, 0: fixed, -1: failed */

	out->checked++;
	if (egress_id == NULL) {
		if (row_bool(res, i, "stale", false))
			done = set_state(w, rec_id, "failed",
					 "failed to start: no egress id was recorded", &e2);
	} else if (w->lk == NULL) {
		done = -1;
	} else {
		lq.egress_id = (char *)egress_id;
		list = lk_list_egress(w->lk, &lq, &st);
		if (list == NULL) {
			lk_status_error(&st, err);
			done = -1;
		} else if (list->n_items == 0) {
			done = set_state(w, rec_id, "aborted", "egress unknown to LiveKit", &e2);
		} else {
			json_t *info = egress_info_json(list->items[0]);
			const char *to = map_status(jstr(info, "status"));

			if (to && strcmp(to, row_text(res, i, "status")) != 0)
				done = apply_info(w, info, &e2);
			json_decref(info);
		}
		if (list != NULL)
			protobuf_c_message_free_unpacked(&list->base, NULL);
	}
	if (done == 0)
		out->fixed++;
	else if (done < 0)
		out->failed++;
}

int recordings_reconcile_egress(struct nc_worker *w, int limit, struct rec_reconcile *out,
				struct nc_error *err)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *res;

	memset(out, 0, sizeof *out);
	snprintf(lim, sizeof lim, "%d", limit > 0 ? limit : 100);
	res = db_exec_service(&w->db,
			      "SELECT id, livekit_egress_id, status,"
			      " created_at < now() - interval '5 minutes' AS stale"
			      " FROM nchat_call_recordings WHERE status IN " REC_ACTIVE_SQL
			      " AND updated_at < now() - interval '1 minute'"
			      " ORDER BY updated_at LIMIT $1::integer",
			      1, p, err);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		reconcile_one(w, res, i, out, err);
	PQclear(res);
	return 0;
}

/*
 * After an egress event committed: a recording that just completed is
 * re-written with server-side encryption when S3_SSE asks for it.  A failure
 * is logged and left (the object stays readable; the bucket's default
 * encryption, if any, still applies).
 */
void recordings_after_egress(struct nc_worker *w, const char *egress_id)
{
	struct nc_error err = {0};
	const char *p[1] = {egress_id};
	PGresult *res;
	char *key = NULL;

	if (w->s3 == NULL || w->cfg->s3_sse == NULL || *w->cfg->s3_sse == '\0' || egress_id == NULL)
		return;
	res = db_exec_service(&w->db,
			      "SELECT object_key FROM nchat_call_recordings"
			      " WHERE livekit_egress_id = $1 AND status = 'completed'"
			      " AND object_key IS NOT NULL",
			      1, p, &err);
	if (res != NULL && PQntuples(res) == 1)
		key = xstrdup(row_text(res, 0, "object_key"));
	PQclear(res);
	if (key == NULL)
		return;
	if (s3_encrypt_in_place(w->s3, key, &err) != NC_OK)
		log_warn("recording %s: server-side encryption not applied: %s", key, err.msg);
	free(key);
}
