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
#include "reports/reports_int.h"
#include "http/worker.h"
#include "core/buf.h"
#include "http/http.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/db_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROLLUP_LOCK_KEY "7120431019"
/*
 * Hours per batch: two weeks while catching up on many (a first run, a
 * rebuild: the windows of one time of day then land together on disk,
 * which is what a cold monthly report reads), else two days.
 */
#define BATCH_HOURS_MAX 336
#define BATCH_HOURS 48
#define NC_STR_(x) #x
#define NC_XSTR(x) NC_STR_(x)
#define ROLLUP_STATEMENT_TIMEOUT_MS 120000
#define PERIODIC_BUDGET_MS 20000


/*
 * Planner settings for the sweep's own transactions: no JIT (its compile
 * time dwarfs these statements), room to sort and hash, and for the
 * recomputes index look-ups over scans (the rows of a few hours are a
 * small part of every table; the collect step keeps the default costs, so
 * that its watermark scans use the BRIN indexes).
 */
static const char tx_settings_sql[] =
	"SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true),"
	" set_config('random_page_cost', CASE WHEN $1 THEN '1.1' ELSE"
	"   current_setting('random_page_cost') END, true)";

static enum nc_err begin_with(struct db_conn *db, bool lookups, struct nc_error *err)
{
	const char *params[1] = {lookups ? "true" : "false"};
	PGresult *res;

	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	res = db_exec(db, tx_settings_sql, 1, params, err);
	if (res == NULL) {
		db_rollback(db);
		return err->code;
	}
	PQclear(res);
	return NC_OK;
}

static enum nc_err begin(struct db_conn *db, struct nc_error *err)
{
	return begin_with(db, true, err);
}

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

	if (begin_with(db, false, err) != NC_OK)
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
	{
		char w[24], o[24];
		const char *cp[3] = {w, o, fresh ? "true" : "false"};

		snprintf(w, sizeof(w), "%lld", (long long)wm);
		snprintf(o, sizeof(o), "%lld", (long long)as_of);
		res = db_exec(db, "SELECT nchat_rtc_report_collect(" RPT_SQL_TS("$1") ", "
			      RPT_SQL_TS("$2") ", $3::boolean)", 3, cp, err);
		if (res == NULL)
			goto fail;
		PQclear(res);
	}
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

/* One batch of queued hours; *n = hours done (0: none left). */
static enum nc_err batch(struct db_conn *db, size_t *n, struct nc_error *err)
{
	int64_t hours[BATCH_HOURS_MAX], as_of;
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
		      " ORDER BY hour LIMIT CASE WHEN (SELECT count(*) FROM nchat_rtc_report_dirty) > 500"
		      " THEN " NC_XSTR(BATCH_HOURS_MAX) " ELSE " NC_XSTR(BATCH_HOURS) " END", 0, NULL, err);
	if (res == NULL)
		goto fail;
	for (int i = 0; i < PQntuples(res) && *n < BATCH_HOURS_MAX; i++)
		hours[(*n)++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	PQclear(res);
	for (size_t i = 0; i < *n;) {
		size_t j = i + 1;
		struct rpt_rows rows;
		enum nc_err rc;

		while (j < *n && hours[j] == hours[j - 1] + RPT_HOUR_US)
			j++;
		int64_t t0 = now_ms(), t1;

		rpt_rows_init(&rows);
		rc = rpt_compute_slots(db, hours[i], hours[j - 1] + RPT_HOUR_US, as_of, &rows, err);
		t1 = now_ms();
		if (rc == NC_OK)
			rc = rpt_write_slots(db, hours[i], hours[j - 1] + RPT_HOUR_US, &rows, err);
		log_debug("rollup-reports: %zu hours: %zu rows computed in %lld ms, written in %lld ms",
			  j - i, rows.n_cells, (long long)(t1 - t0), (long long)(now_ms() - t1));
		rpt_rows_free(&rows);
		if (rc != NC_OK)
			goto fail;
		i = j;
	}
	{
		int64_t t0 = now_ms();

		if (*n > 0 && rpt_rebuild_windows(db, hours, *n, err) != NC_OK)
			goto fail;
		log_debug("rollup-reports: windows over %zu hours in %lld ms", *n,
			  (long long)(now_ms() - t0));
	}
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

/* Hours still queued, and the rollup's as_of (into st). */
static enum nc_err finish(struct db_conn *db, struct rollup_stats *st, struct nc_error *err)
{
	PGresult *res;

	if (begin(db, err) != NC_OK)
		return err->code;
	res = db_exec(db, "SELECT count(*) AS n FROM nchat_rtc_report_dirty", 0, NULL, err);
	if (res == NULL) {
		db_rollback(db);
		return err->code;
	}
	st->queued = (long)row_i64(res, 0, "n", 0);
	PQclear(res);
	if (reports_as_of(db, st->as_of, sizeof(st->as_of), err) != NC_OK) {
		db_rollback(db);
		return err->code;
	}
	db_rollback(db);
	return NC_OK;
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
	log_debug("rollup-reports: collected in %lld ms", (long long)(now_ms() - t0));
	do {
		if (batch(&db, &n, err) != NC_OK)
			goto out;
		st->hours += (long)n;
	} while (n > 0 && (budget_ms <= 0 || now_ms() - t0 < budget_ms));
	finish(&db, st, err);
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

void reports_periodic(struct nc_worker *w, void *arg)
{
	struct rollup_stats st;
	struct nc_error err = {0};

	(void)arg;
	if (reports_rollup(w->cfg, false, PERIODIC_BUDGET_MS, &st, &err) != NC_OK)
		log_warn("rollup-reports: %s", err.msg);
	else if (st.hours > 0)
		log_info("rollup-reports: %ld hours recomputed, %ld queued, as of %s", st.hours,
			 st.queued, st.as_of);
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
