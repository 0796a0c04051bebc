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
#include "reports_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDGES_SQL                                                                            \
	"WITH p AS (SELECT " RPT_SQL_TS("$1") " AS f, " RPT_SQL_TS("$2") " AS t, $3::text AS iv," \
	"                  $4::text AS tz),"                                                  \
	" e AS ("                                                                             \
	"   SELECT g AS e FROM p, generate_series(p.f - interval '2 hours', p.t + interval '2 hours'," \
	"                                         interval '15 minutes') g"                   \
	"   WHERE p.iv = 'hour' AND extract(minute FROM g AT TIME ZONE p.tz) = 0"                \
	"     AND extract(second FROM g AT TIME ZONE p.tz) = 0"                                   \
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
	"          extract(epoch FROM b.s) % 900 = 0 AND extract(epoch FROM b.n) % 900 = 0 AS aligned" \
	"   FROM b, p WHERE b.n IS NOT NULL AND b.n > p.f AND b.s < p.t),"

/* Pieces: $5 true for all channels (windows at every quarter hour). */
#define PIECES_SQL                                                                           \
	" pc AS ("                                                                            \
	"   SELECT bk.i, x.lv, x.s AS plo, x.s + interval '15 minutes' AS phi"                  \
	"   FROM bk, LATERAL (SELECT bk.lo + floor(extract(epoch FROM bk.hi - bk.lo) / 86400)"   \
	"                     * interval '24 hours' AS m1) m,"                                  \
	"   LATERAL (SELECT m.m1 + floor(extract(epoch FROM bk.hi - m.m1) / 3600)"               \
	"                   * interval '1 hour' AS m2) m2,"                                     \
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

static json_t *figures(enum rpt_kind kind, const struct rpt_acc *a)
{
	return kind == RPT_USAGE ? rpt_usage_figures(a) : rpt_quality_figures(a);
}

/* Close a bucket: its figures after "start", into buckets. */
static void emit(json_t *buckets, enum rpt_kind kind, const char *start, const struct rpt_acc *a)
{
	json_t *o = json_pack("{s:s}", "start", start), *f = figures(kind, a);

	if (o == NULL || json_object_update(o, f) != 0)
		fatal("out of memory (report bucket)");
	json_decref(f);
	json_array_append_new(buckets, o);
}

static enum nc_err build(PGresult *res, enum rpt_kind kind, json_t *buckets, json_t **totals,
			 struct nc_error *err)
{
	int fi = PQfnumber(res, "i"), fs = PQfnumber(res, "start");
	int fa = PQfnumber(res, "aligned"), fh = PQfnumber(res, "has_row");
	struct rpt_acc total = {0}, cur = {0};
	struct rpt_colmap cols;
	const char *start = NULL;
	long last = -1;

	rpt_colmap_init(&cols, res);
	for (int r = 0, n = PQntuples(res); r < n; r++) {
		long i = atol(PQgetvalue(res, r, fi));

		if (PQgetvalue(res, r, fa)[0] != 't') {
			rpt_acc_free(&cur);
			rpt_acc_free(&total);
			return err_set(err, NC_EBADREQ,
				       "tz: in this range the zone's offset is not a multiple of 15 minutes");
		}
		if (i != last) {
			if (start != NULL) {
				emit(buckets, kind, start, &cur);
				rpt_acc_merge(&total, &cur);
				rpt_acc_free(&cur);
			}
			start = PQgetvalue(res, r, fs);
			last = i;
		}
		if (PQgetvalue(res, r, fh)[0] == 't') {
			int bad = kind == RPT_USAGE ? rpt_acc_add_usage_row(&cur, res, r, &cols)
						    : rpt_acc_add_quality_row(&cur, res, r, &cols);

			if (bad) {
				rpt_acc_free(&cur);
				rpt_acc_free(&total);
				return err_set(err, NC_EINTERNAL, "malformed rollup row");
			}
		}
	}
	if (start != NULL) {
		emit(buckets, kind, start, &cur);
		rpt_acc_merge(&total, &cur);
	}
	*totals = figures(kind, &total);
	rpt_acc_free(&cur);
	rpt_acc_free(&total);
	return NC_OK;
}

enum nc_err rpt_run_report(struct db_conn *db, enum rpt_kind kind, const struct rpt_params *p,
			   json_t **buckets, json_t **totals, struct nc_error *err)
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
	*buckets = json_array();
	*totals = NULL;
	rc = build(res, kind, *buckets, totals, err);
	PQclear(res);
	if (rc != NC_OK) {
		json_decref(*buckets);
		*buckets = NULL;
	}
	return rc;
}
