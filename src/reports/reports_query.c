/*
 * reports_query.c - one report: the buckets, the rollup rows that tile
 * them, and the figures.
 *
 * One statement does it (an index range scan on the rollup's primary key
 * per piece - OFFSET 0 keeps the planner from turning the look-ups into a
 * scan - a few hundred rows at most):
 *   1. bucket edges on the interval's boundaries in the zone: local hours
 *      (every quarter hour whose local minute is 0), local midnights,
 *      Mondays or first days of the month, converted back to instants by
 *      Postgres's zone rules, so a daylight-saving day is 23 or 25 hours;
 *      the first bucket starts at the edge at or before `from`, and each is
 *      clipped to [from, to);
 *   2. pieces that tile each clipped bucket: for all channels, whole
 *      24-hour windows, then hour windows, then 15-minute slots (windows
 *      exist at every quarter hour); for a channel, 15-minute slots up to
 *      the first UTC midnight, whole UTC days, 15-minute slots after;
 *   3. the rows of each piece, with the bucket they belong to.
 * The rows are then added up here, bucket by bucket and in total, with the
 * same merge the rollup itself uses.
 */
#include "reports/reports_int.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDGES_SQL                                                                            \
	"WITH p AS (SELECT " RPT_SQL_TS("$1") " AS f, " RPT_SQL_TS("$2") " AS t, $3::text AS iv," \
	"                  $4::text AS tz),"                                                  \
	" e AS ("                                                                             \
	"   SELECT g AS e FROM p, generate_series(p.f - interval '2 hours', p.t + interval '2 hours'," \
	"                                         interval '15 minutes') g"                   \
	"   WHERE p.iv = 'hour'"                                                              \
	"     AND date_trunc('hour', g AT TIME ZONE p.tz) = g AT TIME ZONE p.tz"                 \
	"   UNION ALL"                                                                        \
	"   SELECT d AT TIME ZONE p.tz FROM p, generate_series(((p.f AT TIME ZONE p.tz)::date - 1)::timestamp," \
	"     ((p.t AT TIME ZONE p.tz)::date + 1)::timestamp, interval '1 day') d WHERE p.iv = 'day'" \
	"   UNION ALL"                                                                        \
	"   SELECT d AT TIME ZONE p.tz FROM p, generate_series(date_trunc('week', p.f AT TIME ZONE p.tz)" \
	"     - interval '7 days', (p.t AT TIME ZONE p.tz) + interval '7 days', interval '7 days') d" \
	"   WHERE p.iv = 'week'"                                                              \
	"   UNION ALL"                                                                        \
	"   SELECT d AT TIME ZONE p.tz FROM p, generate_series(date_trunc('month', p.f AT TIME ZONE p.tz)" \
	"     - interval '1 month', (p.t AT TIME ZONE p.tz) + interval '1 month', interval '1 month') d" \
	"   WHERE p.iv = 'month'),"                                                           \
	" b AS (SELECT e AS s, lead(e) OVER (ORDER BY e) AS n FROM e),"                        \
	" bk AS MATERIALIZED ("                                                               \
	"   SELECT row_number() OVER (ORDER BY b.s) AS i, b.s, GREATEST(b.s, p.f) AS lo,"       \
	"          LEAST(b.n, p.t) AS hi,"                                                     \
	"          date_bin('15 minutes', b.s, timestamptz 'epoch') = b.s"                        \
	"          AND date_bin('15 minutes', b.n, timestamptz 'epoch') = b.n AS aligned"         \
	"   FROM b, p WHERE b.n IS NOT NULL AND b.n > p.f AND b.s < p.t),"

/* Pieces: $5 true for all channels (windows at every quarter hour). */
#define PIECES_SQL                                                                           \
	" pc AS ("                                                                            \
	"   SELECT bk.i, x.lv, x.s AS plo, x.s + interval '15 minutes' AS phi"                  \
	"   FROM bk, LATERAL (SELECT date_bin('24 hours', bk.hi, bk.lo) AS m1) m,"              \
	"   LATERAL (SELECT date_bin('1 hour', bk.hi, m.m1) AS m2) m2,"                         \
	"   LATERAL (SELECT 2 AS lv, g AS s FROM generate_series(bk.lo, m.m1 - interval '1 microsecond'," \
	"                                                       interval '24 hours') g"          \
	"            UNION ALL SELECT 1, g FROM generate_series(m.m1, m2.m2 - interval '1 microsecond'," \
	"                                                       interval '1 hour') g"            \
	"            UNION ALL SELECT 0, g FROM generate_series(m2.m2, bk.hi - interval '1 microsecond'," \
	"                                                       interval '15 minutes') g) x"     \
	"   WHERE $5::boolean"                                                                \
	"   UNION ALL"                                                                        \
	"   SELECT bk.i, x.lv, x.plo, x.phi"                                                  \
	"   FROM bk, LATERAL (SELECT date_bin('1 day', bk.lo + interval '23 hours 45 minutes',"   \
	"                              timestamptz '2000-01-01 00:00:00+00') AS d1,"             \
	"                     date_bin('1 day', bk.hi, timestamptz '2000-01-01 00:00:00+00') AS d2) d," \
	"   LATERAL (SELECT 0 AS lv, bk.lo AS plo, bk.hi AS phi WHERE d.d1 >= d.d2"                \
	"            UNION ALL SELECT 0, bk.lo, d.d1 WHERE d.d1 < d.d2"                          \
	"            UNION ALL SELECT 2, d.d1, d.d2 WHERE d.d1 < d.d2"                           \
	"            UNION ALL SELECT 0, d.d2, bk.hi WHERE d.d1 < d.d2) x"                       \
	"   WHERE NOT $5::boolean AND x.plo < x.phi)"

static const char usage_sql[] =
	EDGES_SQL PIECES_SQL
	" SELECT bk.i, to_char(bk.s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS start,"
	"        bk.aligned, u.slot IS NOT NULL AS has_row, u.calls, u.calls_audio, u.calls_video,"
	"        u.calls_screen_share, u.calls_direct, u.calls_group, u.calls_channel, u.answered,"
	"        u.missed, u.declined, u.failed, u.call_us, u.participant_us, u.peak_calls,"
	"        u.setup_hist, u.users_hll, u.recordings, u.recording_us, u.recording_bytes,"
	"        u.streams, u.stream_us, u.stream_views, u.viewers_hll, u.chat_messages, u.reactions"
	" FROM bk LEFT JOIN (SELECT pc.i, u.* FROM pc CROSS JOIN LATERAL ("
	"   SELECT * FROM nchat_rtc_report_usage x WHERE x.scope = $6::uuid AND x.level = pc.lv"
	"     AND x.slot >= pc.plo AND x.slot < pc.phi OFFSET 0) u) u ON u.i = bk.i"
	" ORDER BY bk.i";

static const char quality_sql[] =
	EDGES_SQL PIECES_SQL
	" SELECT bk.i, to_char(bk.s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS start,"
	"        bk.aligned, q.slot IS NOT NULL AS has_row, q.samples, q.participants,"
	"        q.relay_participants, q.ice_failed_participants, q.rtt_hist, q.jitter_hist,"
	"        q.loss_hist, q.loss_n, q.loss_sum, q.bitrate_n, q.bitrate_sum, q.q_excellent,"
	"        q.q_good, q.q_poor, q.q_lost"
	" FROM bk LEFT JOIN (SELECT pc.i, q.* FROM pc CROSS JOIN LATERAL ("
	"   SELECT * FROM nchat_rtc_report_quality x WHERE x.scope = $6::uuid AND x.level = pc.lv"
	"     AND x.slot >= pc.plo AND x.slot < pc.phi OFFSET 0) q) q ON q.i = bk.i"
	" ORDER BY bk.i";

static void emit(struct fw *w, enum rpt_kind kind, const struct rpt_acc *a)
{
	if (kind == RPT_USAGE)
		rpt_emit_usage(w, a);
	else
		rpt_emit_quality(w, a, NULL);
}

/* Close a bucket: JSON object or CSV line. */
static void bucket(struct fw *w, enum rpt_kind kind, const char *start, const struct rpt_acc *a,
		   bool first)
{
	if (w->mode == FW_JSON) {
		if (!first)
			fw_raw(w, ",", 1);
		fw_open(w);
	}
	fw_str(w, "start", start);
	emit(w, kind, a);
	if (w->mode == FW_JSON)
		fw_close(w);
	else
		fw_line_end(w);
}

static void head(struct fw *w, enum rpt_kind kind, const struct rpt_params *p)
{
	char from[32], to[32];
	struct rpt_acc none = {0};

	if (w->mode == FW_JSON) {
		rpt_format_us(p->from_us, from, sizeof(from));
		rpt_format_us(p->to_us, to, sizeof(to));
		fw_open(w);
		fw_str(w, "from", from);
		fw_str(w, "to", to);
		fw_str(w, "interval", rpt_interval_name(p->interval));
		fw_str(w, "tz", p->tz);
		fw_raw(w, ",\"buckets\":[", 12);
		return;
	}
	/* CSV: the header row, from the same emitter in header mode */
	w->mode = FW_CSV_HEAD;
	fw_str(w, "start", "");
	emit(w, kind, &none);
	fw_line_end(w);
	w->mode = FW_CSV_ROW;
}

static enum nc_err build(PGresult *res, enum rpt_kind kind, const struct rpt_params *p,
			 struct fw *w, struct nc_error *err)
{
	int fi = PQfnumber(res, "i"), fs = PQfnumber(res, "start");
	int fa = PQfnumber(res, "aligned"), fh = PQfnumber(res, "has_row");
	struct rpt_acc total = {0}, cur = {0};
	struct rpt_colmap cols;
	const char *start = NULL;
	long last = -1, n = 0;
	enum nc_err rc = NC_OK;

	rpt_colmap_init(&cols, res);
	head(w, kind, p);
	for (int r = 0, rows = PQntuples(res); r < rows && rc == NC_OK; r++) {
		long i = strtol(PQgetvalue(res, r, fi), NULL, 10);

		if (PQgetvalue(res, r, fa)[0] != 't') {
			rc = err_set(err, NC_EBADREQ,
				     "tz: in this range the zone's offset is not a multiple of 15 minutes");
			break;
		}
		if (i != last) {
			if (start != NULL) {
				bucket(w, kind, start, &cur, n++ == 0);
				rpt_acc_merge(&total, &cur);
				rpt_acc_reset(&cur);
			}
			start = PQgetvalue(res, r, fs);
			last = i;
		}
		if (PQgetvalue(res, r, fh)[0] == 't' &&
		    (kind == RPT_USAGE ? rpt_acc_add_usage_row(&cur, res, r, &cols)
				       : rpt_acc_add_quality_row(&cur, res, r, &cols)) != 0)
			rc = err_set(err, NC_EINTERNAL, "malformed rollup row");
	}
	if (rc == NC_OK && start != NULL) {
		bucket(w, kind, start, &cur, n == 0);
		rpt_acc_merge(&total, &cur);
	}
	if (rc == NC_OK && w->mode == FW_JSON) {
		fw_raw(w, "],\"totals\":", 11);
		w->first = true;
		fw_open(w);
		emit(w, kind, &total);
		fw_close(w);
		fw_close(w);
	}
	if (rc == NC_OK && w->overflow)
		rc = err_set(err, NC_EINTERNAL, "report too large");
	rpt_acc_free(&cur);
	rpt_acc_free(&total);
	return rc;
}

enum nc_err rpt_run_report(struct db_conn *db, enum rpt_kind kind, const struct rpt_params *p,
			   struct fw *out, struct nc_error *err)
{
	char f[24], t[24];
	const char *params[6];
	PGresult *res;
	enum nc_err rc;

	snprintf(f, sizeof(f), "%lld", (long long)p->from_us);
	snprintf(t, sizeof(t), "%lld", (long long)p->to_us);
	params[0] = f;
	params[1] = t;
	params[2] = rpt_interval_name(p->interval);
	params[3] = p->tz;
	params[4] = p->channel_id[0] ? "false" : "true";
	params[5] = p->channel_id[0] ? p->channel_id : RPT_NIL_SCOPE;
	res = db_exec(db, kind == RPT_USAGE ? usage_sql : quality_sql, 6, params, err);
	if (res == NULL)
		return err->code;
	fw_init(out, p->csv ? FW_CSV_ROW : FW_JSON);
	rc = build(res, kind, p, out, err);
	PQclear(res);
	return rc;
}
