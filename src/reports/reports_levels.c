/*
 * reports_levels.c - writing rollup rows, and the windows built from them.
 *
 * After a batch has rewritten the 15-minute rows (level 0) of some hours,
 * the windows that overlap those hours are rebuilt from the rows below:
 *   level 1, all channels: the hour starting at each quarter hour = four
 *     level-0 rows;
 *   level 2, all channels: the 24 hours starting at each quarter hour =
 *     24 level-1 rows;
 *   level 2, a channel: its UTC day = its level-0 rows of that day.
 * Rows are written with one statement per table (reports_write.c), deleted
 * range by range before.
 */
#include "reports/reports_int.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A set of window starts or days as sorted, disjoint [lo, hi) ranges. */
struct ranges {
	int64_t (*r)[2];
	size_t n, cap;
};

static void ranges_add(struct ranges *s, int64_t lo, int64_t hi)
{
	if (s->n > 0 && lo <= s->r[s->n - 1][1]) {
		if (hi > s->r[s->n - 1][1])
			s->r[s->n - 1][1] = hi;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->r = xrealloc(s->r, s->cap * sizeof(*s->r));
	}
	s->r[s->n][0] = lo;
	s->r[s->n][1] = hi;
	s->n++;
}

static enum nc_err exec3(struct db_conn *db, const char *sql, const char *p1, int64_t lo,
			 int64_t hi, struct nc_error *err)
{
	char a[24], b[24];
	const char *params[3] = {p1, a, b};
	PGresult *res;

	snprintf(a, sizeof(a), "%lld", (long long)lo);
	snprintf(b, sizeof(b), "%lld", (long long)hi);
	res = db_exec(db, sql, p1 ? 3 : 2, p1 ? params : params + 1, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

/*
 * The order rows are written in, which is their order on disk until
 * vacuum reuses the space: a report reads one scope's rows, and of the
 * all-channels windows those at one time of day (or of the hour), so those
 * go together - a cold report then reads a few pages, not one per row.
 */
static int cmp_cell(const void *x, const void *y, void *period_p)
{
	const struct rpt_cell *a = *(const struct rpt_cell *const *)x;
	const struct rpt_cell *b = *(const struct rpt_cell *const *)y;
	int64_t period = *(const int64_t *)period_p;
	int64_t pa = period ? a->slot_us % period : 0, pb = period ? b->slot_us % period : 0;

	if (a->scope != b->scope)
		return a->scope < b->scope ? -1 : 1;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return (a->slot_us > b->slot_us) - (a->slot_us < b->slot_us);
}

/* Insert every cell of rows at `level` into both tables (rows with data);
 * windows of `period` (0: none) are grouped by their time in the period. */
static enum nc_err write_rows(struct db_conn *db, const struct rpt_rows *rows, int level,
			      int64_t period, struct nc_error *err)
{
	const struct rpt_cell **order = xcalloc(rows->n_cells + 1, sizeof(*order));
	enum nc_err rc;

	for (size_t i = 0; i < rows->n_cells; i++)
		order[i] = &rows->cells[i];
	qsort_r(order, rows->n_cells, sizeof(*order), cmp_cell, &period);
	rc = rpt_insert_cells(db, rows, order, rows->n_cells, level, err);
	free(order);
	return rc;
}

enum nc_err rpt_write_slots(struct db_conn *db, int64_t a_us, int64_t b_us,
			    const struct rpt_rows *rows, struct nc_error *err)
{
	static const char *const del[] = {
		"DELETE FROM nchat_rtc_report_usage WHERE level = 0"
		" AND slot >= " RPT_SQL_TS("$1") " AND slot < " RPT_SQL_TS("$2"),
		"DELETE FROM nchat_rtc_report_quality WHERE level = 0"
		" AND slot >= " RPT_SQL_TS("$1") " AND slot < " RPT_SQL_TS("$2"),
	};

	for (size_t i = 0; i < NC_ARRAY_LEN(del); i++)
		if (exec3(db, del[i], NULL, a_us, b_us, err) != NC_OK)
			return err->code;
	return write_rows(db, rows, 0, 0, err);
}

/*
 * Load the rows of one level into `into`: all channels (nil scope) or
 * every channel but that, slots in [lo, hi).
 */
static enum nc_err load_level(struct db_conn *db, int level, bool nil, int64_t lo, int64_t hi,
			      struct rpt_rows *into, struct nc_error *err)
{
	static const char *const tables[] = {"nchat_rtc_report_usage", "nchat_rtc_report_quality"};
	char lv[8], a[24], b[24];
	const char *params[3] = {lv, a, b};

	snprintf(lv, sizeof(lv), "%d", level);
	snprintf(a, sizeof(a), "%lld", (long long)lo);
	snprintf(b, sizeof(b), "%lld", (long long)hi);
	for (size_t t = 0; t < NC_ARRAY_LEN(tables); t++) {
		char *sql = xasprintf("SELECT scope::text AS scope_id, " RPT_SQL_US("slot") " AS slot_us, *"
				      " FROM %s WHERE %s AND level = $1::smallint"
				      " AND slot >= " RPT_SQL_TS("$2") " AND slot < " RPT_SQL_TS("$3"),
				      tables[t], nil ? "scope = '" RPT_NIL_SCOPE "'"
						     : "scope <> '" RPT_NIL_SCOPE "'");
		PGresult *res = db_exec(db, sql, 3, params, err);
		struct rpt_colmap cols;
		int fs, fo;

		free(sql);
		if (res == NULL)
			return err->code;
		fs = PQfnumber(res, "scope_id");
		fo = PQfnumber(res, "slot_us");
		rpt_colmap_init(&cols, res);
		for (int i = 0, n = PQntuples(res); i < n; i++) {
			int sc = rpt_rows_scope(into, PQgetvalue(res, i, fs));
			struct rpt_acc *acc = rpt_rows_cell(into, sc, strtoll(PQgetvalue(res, i, fo), NULL, 10));
			int bad = t == 0 ? rpt_acc_add_usage_row(acc, res, i, &cols)
					 : rpt_acc_add_quality_row(acc, res, i, &cols);

			if (bad) {
				PQclear(res);
				return err_set(err, NC_EINTERNAL, "malformed rollup row");
			}
		}
		PQclear(res);
	}
	return NC_OK;
}

/* Look up (nil scope, slot) in rows without creating it. */
static const struct rpt_acc *find_nil(const struct rpt_rows *rows, int64_t slot_us)
{
	for (size_t i = 0; i < rows->n_cells; i++)   /* small sets: a scan is fine */
		if (rows->cells[i].scope == 0 && rows->cells[i].slot_us == slot_us)
			return &rows->cells[i].acc;
	return NULL;
}

/*
 * The all-channels windows of one level over the starts in `starts`: each
 * the merge of `parts` rows of the level below, `step` apart.
 */
static enum nc_err nil_windows(struct db_conn *db, const struct ranges *starts, int level,
			       int parts, int64_t step, struct nc_error *err)
{
	static const char *const del[] = {
		"DELETE FROM nchat_rtc_report_usage WHERE scope = '" RPT_NIL_SCOPE "'"
		" AND level = $1::smallint AND slot >= " RPT_SQL_TS("$2") " AND slot < " RPT_SQL_TS("$3"),
		"DELETE FROM nchat_rtc_report_quality WHERE scope = '" RPT_NIL_SCOPE "'"
		" AND level = $1::smallint AND slot >= " RPT_SQL_TS("$2") " AND slot < " RPT_SQL_TS("$3"),
	};
	char lv[8];
	enum nc_err rc = NC_OK;

	snprintf(lv, sizeof(lv), "%d", level);
	for (size_t k = 0; k < starts->n && rc == NC_OK; k++) {
		int64_t lo = starts->r[k][0], hi = starts->r[k][1];
		struct rpt_rows src, out;
		const struct rpt_acc **idx;
		size_t n_idx = (size_t)((hi - lo + parts * step) / RPT_SLOT_US) + 1;

		rpt_rows_init(&src);
		rpt_rows_init(&out);
		rc = load_level(db, level - 1, true, lo, hi + parts * step, &src, err);
		/* index the source rows by slot, so each window is a few look-ups */
		idx = xcalloc(n_idx, sizeof(*idx));
		for (size_t i = 0; rc == NC_OK && i < src.n_cells; i++)
			if (src.cells[i].scope == 0 && src.cells[i].slot_us >= lo)
				idx[(src.cells[i].slot_us - lo) / RPT_SLOT_US] = &src.cells[i].acc;
		for (int64_t t = lo; rc == NC_OK && t < hi; t += RPT_SLOT_US) {
			struct rpt_acc w = {0};

			for (int j = 0; j < parts; j++) {
				size_t at = (size_t)((t + j * step - lo) / RPT_SLOT_US);
				const struct rpt_acc *s = at < n_idx ? idx[at] : find_nil(&src, t + j * step);

				if (s != NULL)
					rpt_acc_merge(&w, s);
			}
			if (w.has_usage || w.has_quality) {
				struct rpt_acc *o = rpt_rows_cell(&out, 0, t);

				*o = w;
			} else {
				rpt_acc_free(&w);
			}
		}
		free(idx);
		for (size_t d = 0; rc == NC_OK && d < NC_ARRAY_LEN(del); d++)
			rc = exec3(db, del[d], lv, lo, hi, err);
		if (rc == NC_OK)
			rc = write_rows(db, &out, level, level == 1 ? RPT_HOUR_US : RPT_DAY_US, err);
		rpt_rows_free(&src);
		rpt_rows_free(&out);
	}
	return rc;
}

/* Each channel's UTC days over the days in `days`, from its level-0 rows,
 * written range by range so that a channel's days lie together. */
static enum nc_err channel_days(struct db_conn *db, const struct ranges *days, struct nc_error *err)
{
	static const char *const del[] = {
		"DELETE FROM nchat_rtc_report_usage WHERE scope <> '" RPT_NIL_SCOPE "'"
		" AND level = 2 AND slot >= " RPT_SQL_TS("$1") " AND slot < " RPT_SQL_TS("$2"),
		"DELETE FROM nchat_rtc_report_quality WHERE scope <> '" RPT_NIL_SCOPE "'"
		" AND level = 2 AND slot >= " RPT_SQL_TS("$1") " AND slot < " RPT_SQL_TS("$2"),
	};
	enum nc_err rc = NC_OK;

	for (size_t k = 0; k < days->n && rc == NC_OK; k++) {
		int64_t lo = days->r[k][0], hi = days->r[k][1];
		struct rpt_rows src, out;

		rpt_rows_init(&src);
		rpt_rows_init(&out);
		rc = load_level(db, 0, false, lo, hi, &src, err);
		for (size_t i = 0; rc == NC_OK && i < src.n_cells; i++) {
			const struct rpt_cell *c = &src.cells[i];
			int sc = rpt_rows_scope(&out, src.scopes[c->scope]);
			int64_t day = c->slot_us - (c->slot_us % RPT_DAY_US + RPT_DAY_US) % RPT_DAY_US;

			rpt_acc_merge(rpt_rows_cell(&out, sc, day), &c->acc);
		}
		for (size_t d = 0; rc == NC_OK && d < NC_ARRAY_LEN(del); d++)
			rc = exec3(db, del[d], NULL, lo, hi, err);
		if (rc == NC_OK)
			rc = write_rows(db, &out, 2, 0, err);
		rpt_rows_free(&src);
		rpt_rows_free(&out);
	}
	return rc;
}

enum nc_err rpt_rebuild_windows(struct db_conn *db, const int64_t *hours, size_t n,
				struct nc_error *err)
{
	struct ranges hs = {0}, ds = {0}, days = {0};
	enum nc_err rc;

	for (size_t i = 0; i < n; i++) {
		int64_t h = hours[i], day = h - (h % RPT_DAY_US + RPT_DAY_US) % RPT_DAY_US;

		/* windows that overlap [h, h + 1 h): starting after h - 1 h (- 24 h) */
		ranges_add(&hs, h - RPT_HOUR_US + RPT_SLOT_US, h + RPT_HOUR_US);
		ranges_add(&ds, h - RPT_DAY_US + RPT_SLOT_US, h + RPT_HOUR_US);
		ranges_add(&days, day, day + RPT_DAY_US);
	}
	rc = nil_windows(db, &hs, 1, 4, RPT_SLOT_US, err);
	if (rc == NC_OK)
		rc = nil_windows(db, &ds, 2, 24, RPT_HOUR_US, err);
	if (rc == NC_OK)
		rc = channel_days(db, &days, err);
	free(hs.r);
	free(ds.r);
	free(days.r);
	return rc;
}
