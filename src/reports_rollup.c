/*
 * reports_rollup.c - the rollup sweep: `nchat-rtc rollup-reports` and the
 * REPORTS_ROLLUP_INTERVAL_SECONDS timer inside `serve`.
 *
 * One run:
 *   1. Collect (one transaction): find what changed since the watermark
 *      (see sql/0010_reports.sql) and add the UTC hours it touches to
 *      nchat_rtc_report_dirty, with the hours the triggers queued; keep the
 *      set of unfinished calls and streams and the list of long ones; move
 *      the watermark.  The new watermark is the start of the oldest
 *      transaction still running (read before anything else), so a row
 *      stamped by a transaction that commits later is still ahead of it.
 *   2. Drain: take queued hours 48 at a time, recompute their 15-minute
 *      rows from the base tables, rebuild the windows over them, dequeue
 *      them, commit.  A run with a time budget stops between batches and
 *      the next run continues; nothing is lost if a run dies half-way.
 * A transaction-level advisory lock, held on a connection of its own for
 * the whole run, keeps it to one instance at a time (the others skip).
 */
#include "reports_int.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLLUP_LOCK_KEY "7120431019"
#define BATCH_HOURS 48          /* also in batch()'s LIMIT */
#define ROLLUP_STATEMENT_TIMEOUT_MS 120000
#define PERIODIC_BUDGET_MS 20000

/* Open calls and unfinished streams, as SQL. */
#define CALL_OPEN "c.status IN ('initiating', 'ringing', 'active')"
#define STREAM_OPEN "st.status IN ('preparing', 'scheduled', 'live')"
#define HOUR(x) "date_bin('1 hour', " x ", timestamptz '2000-01-01 00:00:00+00')"
/* Statement parameters: microseconds since the epoch. */
#define P1 RPT_SQL_TS("$1")
#define P2 RPT_SQL_TS("$2")

/* Planner settings for the sweep's own transactions: no JIT (its compile
 * time dwarfs these statements), and index look-ups over scans (the rows
 * of a few hours are a small part of every table). */
static const char tx_settings_sql[] =
	"SELECT set_config('jit', 'off', true), set_config('random_page_cost', '1.1', true)";

static enum nc_err begin(struct db_conn *db, struct nc_error *err)
{
	PGresult *res;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	res = db_exec(db, tx_settings_sql, 0, NULL, err);
	if (res == NULL) {
		db_rollback(db);
		return err->code;
	}
	PQclear(res);
	return NC_OK;
}

/* Which of watermark and as_of a statement takes, as $1 (and $2). */
enum uses { NONE, WM_ONLY, ASOF_ONLY, BOTH };

struct stmt {
	enum uses uses;
	const char *sql;
};

static enum nc_err run_stmt(struct db_conn *db, const struct stmt *s, int64_t wm, int64_t as_of,
			    struct nc_error *err)
{
	char a[24], b[24];
	const char *params[2] = {a, b};
	int n = s->uses == NONE ? 0 : s->uses == BOTH ? 2 : 1;
	PGresult *res;

	snprintf(a, sizeof(a), "%lld", (long long)(s->uses == ASOF_ONLY ? as_of : wm));
	snprintf(b, sizeof(b), "%lld", (long long)as_of);
	res = db_exec(db, s->sql, n, params, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

/* Everything queued again: the first run, or `rollup-reports --rebuild`. */
static const struct stmt rebuild_sql[] = {
	{NONE, "DELETE FROM nchat_rtc_report_usage"},
	{NONE, "DELETE FROM nchat_rtc_report_quality"},
	{NONE, "DELETE FROM nchat_rtc_report_long"},
	{ASOF_ONLY, "INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)"
	 " SELECT 'call', c.id, c.initiated_at,"
	 "        CASE WHEN " CALL_OPEN " THEN 'infinity' ELSE COALESCE(c.ended_at, c.initiated_at) END"
	 " FROM nchat_calls c"
	 " WHERE COALESCE(c.ended_at, CASE WHEN " CALL_OPEN " THEN " P1 " END, c.initiated_at)"
	 "       - c.initiated_at > interval '6 hours'"},
	{ASOF_ONLY, "INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)"
	 " SELECT 'stream', st.id, st.started_at,"
	 "        CASE WHEN st.status = 'live' THEN 'infinity' ELSE COALESCE(st.ended_at, st.started_at) END"
	 " FROM nchat_streams st WHERE st.started_at IS NOT NULL"
	 "   AND COALESCE(st.ended_at, CASE WHEN st.status = 'live' THEN " P1 " END, st.started_at)"
	 "       - st.started_at > interval '6 hours'"},
	{ASOF_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT generate_series(" HOUR("m") ", " P1 ", interval '1 hour')"
	 " FROM (SELECT LEAST((SELECT min(initiated_at) FROM nchat_calls),"
	 "                    (SELECT min(created_at) FROM nchat_streams)) AS m) x"
	 " WHERE m IS NOT NULL ON CONFLICT DO NOTHING"},
};

/*
 * What changed since the watermark ($1); open parts count up to as_of
 * ($2).  A call or stream seen for the first time, or changed, is queued
 * over its whole life; one that was open last time over the part between
 * what was counted then and what counts now.
 */
static const struct stmt collect_sql[] = {
	{BOTH, "WITH cand AS ("
	 "   SELECT c.id FROM nchat_calls c WHERE c.updated_at >= " P1
	 "   UNION SELECT c.id FROM nchat_calls c WHERE " CALL_OPEN
	 "   UNION SELECT o.id FROM nchat_rtc_report_open o WHERE o.kind = 'call'),"
	 " cc AS ("
	 "   SELECT c.id, c.initiated_at, " CALL_OPEN " AS open, c.updated_at >= " P1 " AS changed,"
	 "          COALESCE(c.ended_at, CASE WHEN " CALL_OPEN " THEN GREATEST(" P2 ", c.initiated_at)"
	 "                                    ELSE c.initiated_at END) AS e, o.counted_until AS pc"
	 "   FROM cand JOIN nchat_calls c ON c.id = cand.id"
	 "   LEFT JOIN nchat_rtc_report_open o ON o.kind = 'call' AND o.id = c.id),"
	 " marks AS ("
	 "   INSERT INTO nchat_rtc_report_dirty (hour)"
	 "   SELECT DISTINCT h FROM cc, LATERAL ("
	 "     SELECT nchat_rtc_report_hours(cc.initiated_at, cc.e) WHERE cc.changed OR cc.pc IS NULL"
	 "     UNION ALL SELECT nchat_rtc_report_hours(LEAST(" P1 ", cc.e, cc.pc), GREATEST(cc.pc, cc.e))"
	 "       WHERE NOT (cc.changed OR cc.pc IS NULL)"
	 "     UNION ALL SELECT " HOUR("cc.initiated_at") ") x(h)"
	 "   ON CONFLICT DO NOTHING RETURNING 1)"
	 " INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)"
	 " SELECT 'call', cc.id, cc.initiated_at, CASE WHEN cc.open THEN 'infinity' ELSE cc.e END"
	 " FROM cc WHERE cc.e - cc.initiated_at > interval '6 hours'"
	 " ON CONFLICT (kind, id) DO UPDATE SET hi = EXCLUDED.hi"},
	{NONE, "DELETE FROM nchat_rtc_report_open WHERE kind = 'call'"},
	{ASOF_ONLY, "INSERT INTO nchat_rtc_report_open (kind, id, counted_until)"
	 " SELECT 'call', c.id, " P1 " FROM nchat_calls c WHERE " CALL_OPEN},

	{BOTH, "WITH cand AS ("
	 "   SELECT st.id FROM nchat_streams st WHERE st.created_at >= " P1
	 "   UNION SELECT st.id FROM nchat_streams st WHERE " STREAM_OPEN
	 "   UNION SELECT o.id FROM nchat_rtc_report_open o WHERE o.kind = 'stream'),"
	 " sc AS ("
	 "   SELECT st.id, st.started_at, st.status = 'live' AS live, st.created_at >= " P1 " AS changed,"
	 "          COALESCE(st.ended_at, CASE WHEN st.status = 'live'"
	 "                   THEN GREATEST(" P2 ", st.started_at) ELSE st.started_at END) AS e,"
	 "          NULLIF(o.counted_until, '-infinity') AS pc"
	 "   FROM cand JOIN nchat_streams st ON st.id = cand.id"
	 "   LEFT JOIN nchat_rtc_report_open o ON o.kind = 'stream' AND o.id = st.id"
	 "   WHERE st.started_at IS NOT NULL),"
	 " marks AS ("
	 "   INSERT INTO nchat_rtc_report_dirty (hour)"
	 "   SELECT DISTINCT h FROM sc, LATERAL ("
	 "     SELECT nchat_rtc_report_hours(sc.started_at, sc.e) WHERE sc.changed OR sc.pc IS NULL"
	 "     UNION ALL SELECT nchat_rtc_report_hours(LEAST(" P1 ", sc.e, sc.pc), GREATEST(sc.pc, sc.e))"
	 "       WHERE NOT (sc.changed OR sc.pc IS NULL)"
	 "     UNION ALL SELECT " HOUR("sc.started_at") ") x(h)"
	 "   ON CONFLICT DO NOTHING RETURNING 1)"
	 " INSERT INTO nchat_rtc_report_long (kind, id, lo, hi)"
	 " SELECT 'stream', sc.id, sc.started_at, CASE WHEN sc.live THEN 'infinity' ELSE sc.e END"
	 " FROM sc WHERE sc.e - sc.started_at > interval '6 hours'"
	 " ON CONFLICT (kind, id) DO UPDATE SET hi = EXCLUDED.hi"},
	{NONE, "DELETE FROM nchat_rtc_report_open WHERE kind = 'stream'"},
	{ASOF_ONLY, "INSERT INTO nchat_rtc_report_open (kind, id, counted_until)"
	 " SELECT 'stream', st.id, CASE WHEN st.started_at IS NULL THEN '-infinity' ELSE " P1 " END"
	 " FROM nchat_streams st WHERE " STREAM_OPEN},

	/* connection stats count with their call's initiation */
	{WM_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT DISTINCT " HOUR("c.initiated_at")
	 " FROM (SELECT DISTINCT w.call_id FROM nchat_webrtc_connections w WHERE w.created_at >= " P1 ") s"
	 " JOIN nchat_calls c ON c.id = s.call_id ON CONFLICT DO NOTHING"},
	{WM_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT DISTINCT " HOUR("r.started_at") " FROM nchat_call_recordings r"
	 " WHERE r.updated_at >= " P1 " AND r.started_at IS NOT NULL ON CONFLICT DO NOTHING"},
	{WM_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT DISTINCT " HOUR("created_at") " FROM nchat_stream_viewers"
	 " WHERE created_at >= " P1 " ON CONFLICT DO NOTHING"},
	{WM_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT DISTINCT " HOUR("created_at") " FROM nchat_stream_chat_messages"
	 " WHERE created_at >= " P1 " ON CONFLICT DO NOTHING"},
	{WM_ONLY, "INSERT INTO nchat_rtc_report_dirty (hour)"
	 " SELECT DISTINCT " HOUR("created_at") " FROM nchat_stream_reactions"
	 " WHERE created_at >= " P1 " ON CONFLICT DO NOTHING"},
};

/*
 * The state row, locked: the previous watermark, and the new watermark
 * and as_of.  First statement of the transaction: pg_stat_activity is read
 * once per transaction, before the data.
 */
static const char state_sql[] =
	"SELECT s.watermark IS NULL AS fresh, " RPT_SQL_US("s.watermark") " AS wm,"
	" " RPT_SQL_US("clock_timestamp()") " AS as_of,"
	" " RPT_SQL_US("LEAST(clock_timestamp(), (SELECT min(a.xact_start) FROM pg_stat_activity a"
	"   WHERE a.datname = current_database() AND a.backend_type = 'client backend'"
	"     AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL)) - interval '1 second'")
	" AS new_wm FROM nchat_rtc_report_state s WHERE s.id FOR UPDATE";

static int64_t col_i64(const PGresult *res, const char *name)
{
	int f = PQfnumber(res, name);

	return f < 0 || PQgetisnull(res, 0, f) ? 0 : strtoll(PQgetvalue(res, 0, f), NULL, 10);
}

static enum nc_err collect(struct db_conn *db, bool rebuild, struct rollup_stats *st,
			   struct nc_error *err)
{
	PGresult *res;
	int64_t wm, as_of, new_wm;
	bool fresh;
	char a[24], b[24];
	const char *params[2] = {a, b};

	if (begin(db, err) != NC_OK)
		return err->code;
	res = db_exec(db, state_sql, 0, NULL, err);
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		db_rollback(db);
		return err->code ? err->code : err_set(err, NC_EINTERNAL, "no rollup state row");
	}
	fresh = PQgetvalue(res, 0, PQfnumber(res, "fresh"))[0] == 't' || rebuild;
	wm = col_i64(res, "wm");
	as_of = col_i64(res, "as_of");
	new_wm = col_i64(res, "new_wm");
	PQclear(res);
	st->rebuilt = fresh;
	if (fresh) {
		for (size_t i = 0; i < NC_ARRAY_LEN(rebuild_sql); i++)
			if (run_stmt(db, &rebuild_sql[i], as_of, as_of, err) != NC_OK)
				goto fail;
	}
	/* a rebuild still takes in the open set and the queued hours as usual */
	for (size_t i = 0; i < NC_ARRAY_LEN(collect_sql); i++)
		if (run_stmt(db, &collect_sql[i], fresh ? as_of : wm, as_of, err) != NC_OK)
			goto fail;
	snprintf(a, sizeof(a), "%lld", (long long)new_wm);
	snprintf(b, sizeof(b), "%lld", (long long)as_of);
	res = db_exec(db, "UPDATE nchat_rtc_report_state SET watermark = " RPT_SQL_TS("$1") ","
		      " as_of = " RPT_SQL_TS("$2") ", updated_at = now() WHERE id", 2, params, err);
	if (res == NULL)
		goto fail;
	PQclear(res);
	return db_commit(db, err);
fail:
	db_rollback(db);
	return err->code;
}

/* One batch: up to BATCH_HOURS queued hours; *n = hours done (0: none left). */
static enum nc_err batch(struct db_conn *db, size_t *n, struct nc_error *err)
{
	int64_t hours[BATCH_HOURS], as_of;
	char *arr = NULL;
	size_t len = 0, cap = 0;
	PGresult *res;
	const char *params[1];

	*n = 0;
	if (begin(db, err) != NC_OK)
		return err->code;
	res = db_exec(db, "SELECT " RPT_SQL_US("as_of") " AS as_of FROM nchat_rtc_report_state"
		      " WHERE id", 0, NULL, err);
	if (res == NULL)
		goto fail;
	as_of = col_i64(res, "as_of");
	PQclear(res);
	res = db_exec(db, "SELECT " RPT_SQL_US("hour") " AS hour FROM nchat_rtc_report_dirty"
		      " ORDER BY hour LIMIT 48", 0, NULL, err);
	if (res == NULL)
		goto fail;
	for (int i = 0; i < PQntuples(res); i++)
		hours[(*n)++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	for (size_t i = 0; i < *n;) {
		size_t j = i + 1;
		struct rpt_rows rows;
		enum nc_err rc;

		while (j < *n && hours[j] == hours[j - 1] + RPT_HOUR_US)
			j++;
		rpt_rows_init(&rows);
		rc = rpt_compute_slots(db, hours[i], hours[j - 1] + RPT_HOUR_US, as_of, &rows, err);
		if (rc == NC_OK)
			rc = rpt_write_slots(db, hours[i], hours[j - 1] + RPT_HOUR_US, &rows, err);
		rpt_rows_free(&rows);
		if (rc != NC_OK)
			goto fail;
		i = j;
	}
	if (*n > 0 && rpt_rebuild_windows(db, hours, *n, err) != NC_OK)
		goto fail;
	for (size_t i = 0; i < *n; i++) {
		char num[24];
		int k = snprintf(num, sizeof(num), "%s%lld", i ? "," : "{", (long long)hours[i]);

		if (!buf_append_capped(&arr, &len, &cap, 1 << 16, num, (size_t)k))
			fatal("out of memory (rollup batch)");
	}
	if (*n > 0) {
		if (!buf_append_capped(&arr, &len, &cap, 1 << 16, "}", 1))
			fatal("out of memory (rollup batch)");
		params[0] = arr;
		res = db_exec(db, "DELETE FROM nchat_rtc_report_dirty WHERE hour = ANY(ARRAY("
			      "SELECT " RPT_SQL_TS("x") " FROM unnest($1::bigint[]) x))", 1, params, err);
		free(arr);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	return db_commit(db, err);
fail:
	db_rollback(db);
	*n = 0;
	return err->code;
}

static enum nc_err lock_run(struct db_conn *lock, bool *got, struct nc_error *err)
{
	PGresult *res;

	*got = false;
	if (db_begin_service(lock, err) != NC_OK)
		return err->code;
	res = db_exec(lock, "SELECT pg_try_advisory_xact_lock(" ROLLUP_LOCK_KEY ")", 0, NULL, err);
	if (res == NULL)
		return err->code;
	*got = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return NC_OK;
}

static long queued(struct db_conn *db, struct nc_error *err)
{
	PGresult *res;
	long n;

	if (begin(db, err) != NC_OK)
		return -1;
	res = db_exec(db, "SELECT count(*) AS n, to_char(as_of AT TIME ZONE 'UTC',"
		      " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS as_of"
		      " FROM nchat_rtc_report_dirty RIGHT JOIN nchat_rtc_report_state ON true"
		      " GROUP BY as_of", 0, NULL, err);
	db_rollback(db);
	if (res == NULL)
		return -1;
	n = PQntuples(res) ? atol(PQgetvalue(res, 0, 0)) : 0;
	PQclear(res);
	return n;
}

enum nc_err reports_rollup(const struct nc_config *cfg, bool rebuild, int64_t budget_ms,
			   struct rollup_stats *st, struct nc_error *err)
{
	struct db_conn lock, db;
	int64_t t0 = now_ms();
	bool got;
	size_t n;

	memset(st, 0, sizeof(*st));
	db_init(&lock, cfg->database_url, cfg->db_statement_timeout_ms);
	db_init(&db, cfg->database_url, ROLLUP_STATEMENT_TIMEOUT_MS);
	if (lock_run(&lock, &got, err) != NC_OK || !got) {
		st->skipped = err->code == NC_OK;
		goto out;
	}
	if (collect(&db, rebuild, st, err) != NC_OK)
		goto out;
	do {
		if (batch(&db, &n, err) != NC_OK)
			goto out;
		st->hours += (long)n;
	} while (n > 0 && (budget_ms <= 0 || now_ms() - t0 < budget_ms));
	st->queued = queued(&db, err);
	if (reports_as_of(&db, st->as_of, sizeof(st->as_of), err) != NC_OK)
		goto out;
out:
	metrics_sweep("reports", "hours", st->hours);
	db_rollback(&lock);
	db_cleanup(&lock);
	db_cleanup(&db);
	return err->code;
}

enum nc_err reports_as_of(struct db_conn *db, char *out, size_t outlen, struct nc_error *err)
{
	PGresult *res = db_exec(db, "SELECT to_char(as_of AT TIME ZONE 'UTC',"
				" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS as_of"
				" FROM nchat_rtc_report_state WHERE id", 0, NULL, err);
	int f;

	if (res == NULL)
		return err->code;
	f = PQfnumber(res, "as_of");
	snprintf(out, outlen, "%s", PQntuples(res) && !PQgetisnull(res, 0, f) ? PQgetvalue(res, 0, f) : "");
	PQclear(res);
	return NC_OK;
}

void reports_periodic(struct req *r)
{
	struct rollup_stats st;
	struct nc_error err = {0};

	if (reports_rollup(r->cfg, false, PERIODIC_BUDGET_MS, &st, &err) != NC_OK)
		log_warn("rollup-reports: %s", err.msg);
	else if (st.hours > 0)
		log_info("rollup-reports: %ld hours recomputed, %ld queued, as of %s", st.hours,
			 st.queued, st.as_of);
	resp_json(r, 204, NULL);
}

int cmd_rollup_reports(int argc, char **argv, const struct nc_config *cfg)
{
	struct rollup_stats st;
	struct nc_error err = {0};
	bool rebuild = false;
	int64_t t0 = now_ms();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rebuild") == 0) {
			rebuild = true;
		} else {
			fprintf(stderr, "usage: nchat-rtc rollup-reports [--rebuild]\n");
			return 2;
		}
	}
	if (reports_rollup(cfg, rebuild, 0, &st, &err) != NC_OK) {
		printf("rollup-reports: FAILED after %ld hours: %s\n", st.hours, err.msg);
		return 1;
	}
	if (st.skipped) {
		printf("rollup-reports: skipped, another instance is rolling up\n");
		return 0;
	}
	printf("rollup-reports: %ld hours recomputed%s in %.1f s, %ld queued, figures as of %s\n",
	       st.hours, st.rebuilt ? " (rebuild)" : "", (double)(now_ms() - t0) / 1000.0,
	       st.queued < 0 ? 0 : st.queued, st.as_of);
	return 0;
}
