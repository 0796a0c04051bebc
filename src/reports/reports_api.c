/*
 * reports_api.c - the report endpoints (API.md "Reports").
 *
 *   GET /api/reports/usage     admins; with channelId also that channel's
 *   GET /api/reports/quality   admin and moderator members
 *   GET /api/calls/{id}/quality   the call's participants and admins
 *
 * Who may see what is decided here, in SQL of our own, before any figure
 * is read, and holds whatever role the service logs in as; row-level
 * security backs it up: channel staff read the rollups in user context
 * (policy user_read of sql/0011_reports_rls.sql), admins - known only from
 * their token - in service context, as the other admin endpoints do.  A
 * user who may not see a call gets 404, as if it did not exist.
 */
#include "reports/reports_int.h"
#include "http/http.h"
#include "core/uuid.h"
#include "http/worker.h"
#include "store/db_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Settings for a report's transaction (JIT compiles for longer than the
 * query runs) and the checks, in one round trip.  $1 channel or NULL,
 * $2 the caller. */
static const char report_check_sql[] =
	"SELECT set_config('jit', 'off', true) AS jit,"
	" (SELECT m.role FROM nchat_channel_members m"
	"   WHERE m.channel_id = $1::uuid AND m.user_id = $2::uuid) AS member_role,"
	" $1::uuid IS NULL OR EXISTS (SELECT 1 FROM nchat_channels c WHERE c.id = $1::uuid) AS channel_exists,"
	" (SELECT to_char(s.as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	"   FROM nchat_rtc_report_state s WHERE s.id) AS as_of";

static const char *val(const PGresult *res, const char *col)
{
	int f = PQfnumber(res, col);

	return f < 0 || PQgetisnull(res, 0, f) ? NULL : PQgetvalue(res, 0, f);
}

/*
 * May the caller see this report (403, 404 for a channel that does not
 * exist)?  Copies the rollups' as_of into as_of ("" before the first
 * rollup).  Runs in the report's transaction.
 */
static enum nc_err report_check(struct req *r, const struct rpt_params *p, bool admin,
				char as_of[32], struct nc_error *err)
{
	const char *params[2] = { p->channel_id[0] ? p->channel_id : NULL, req_user(r)->user_id };
	PGresult *res = db_exec(&req_worker(r)->db, report_check_sql, 2, params, err);
	const char *role, *exists;
	enum nc_err rc = NC_OK;

	if (res == NULL)
		return err->code;
	role = val(res, "member_role");
	exists = val(res, "channel_exists");
	if (!admin && (role == NULL || (strcmp(role, "admin") != 0 && strcmp(role, "moderator") != 0)))
		rc = err_set(err, NC_EFORBIDDEN, "only admins and this channel's admins and moderators"
			     " may see its reports");
	else if (exists == NULL || exists[0] != 't')
		rc = err_set(err, NC_ENOTFOUND, "no such channel");
	else
		snprintf(as_of, 32, "%s", val(res, "as_of") != NULL ? val(res, "as_of") : "");
	PQclear(res);
	return rc;
}

static enum nc_err report(struct req *r, enum rpt_kind kind, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	struct rpt_params p;
	bool admin = (req_user(r)->roles & ROLE_ADMIN) != 0;
	char as_of[32] = "";
	struct fw body;

	if (rpt_read_params(r, &p, err) != NC_OK)
		return err->code;
	if (!admin && p.channel_id[0] == '\0')
		return err_set(err, NC_EFORBIDDEN, "reports over all channels are for admins;"
			       " channel admins and moderators pass channelId");
	if ((admin ? db_begin_service(db, err) : db_begin_user(db, req_user(r)->user_id, err)) != NC_OK ||
	    report_check(r, &p, admin, as_of, err) != NC_OK)
		return err->code;
	if (rpt_run_report(db, kind, &p, &body, err) != NC_OK) {
		fw_free(&body);
		return err->code;
	}
	db_rollback(db);   /* read only */
	if (as_of[0])
		resp_header(r, "X-Report-As-Of", as_of);
	resp_header(r, "Cache-Control", "no-store");
	resp_raw(r, 200, p.csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
		 body.p, body.len);
	fw_free(&body);
	return NC_OK;
}

static enum nc_err api_reports_usage(struct req *r, struct nc_error *err)
{
	return report(r, RPT_USAGE, err);
}

static enum nc_err api_reports_quality(struct req *r, struct nc_error *err)
{
	return report(r, RPT_QUALITY, err);
}

/* ---- one call, exactly ---- */

static const char call_check_sql[] =
	"SELECT set_config('jit', 'off', true) AS jit,"
	" EXISTS (SELECT 1 FROM nchat_calls c WHERE c.id = $1::uuid) AS call_exists,"
	" EXISTS (SELECT 1 FROM nchat_call_participants p"
	"         WHERE p.call_id = $1::uuid AND p.user_id = $2::uuid) AS participant";

/* Per participant and (grp = 1) for the whole call, from the raw samples. */
static const char call_quality_sql[] =
	"WITH s AS ("
	"   SELECT w.user_id, w.ice_connection_state AS ice,"
	"          (w.local_candidate_type = 'relay' OR w.turn_used) AS relay, w.rtt_ms, w.jitter_ms,"
	"          w.packet_loss_pct, w.bitrate_kbps, w.quality"
	"   FROM nchat_webrtc_connections w WHERE w.call_id = $1::uuid),"
	" pp AS ("
	"   SELECT user_id, COALESCE(bool_or(relay), false) AS relay,"
	"          COALESCE(bool_or(ice = 'failed') AND NOT bool_or(ice IN ('connected', 'completed')),"
	"                   false) AS failed"
	"   FROM s GROUP BY user_id)"
	" SELECT g.*, (SELECT count(*) FROM pp WHERE g.grp = 1 OR pp.user_id IS NOT DISTINCT FROM g.user_id)"
	"          AS participants,"
	"        (SELECT count(*) FROM pp WHERE pp.relay AND (g.grp = 1 OR pp.user_id IS NOT DISTINCT FROM g.user_id))"
	"          AS relay_participants,"
	"        (SELECT count(*) FROM pp WHERE pp.failed AND (g.grp = 1 OR pp.user_id IS NOT DISTINCT FROM g.user_id))"
	"          AS ice_failed_participants"
	" FROM (SELECT s.user_id, s.user_id::text AS user_text, GROUPING(s.user_id) AS grp, count(*) AS samples,"
	"         percentile_cont(0.5) WITHIN GROUP (ORDER BY s.rtt_ms) AS rtt_p50,"
	"         percentile_cont(0.95) WITHIN GROUP (ORDER BY s.rtt_ms) AS rtt_p95,"
	"         percentile_cont(0.5) WITHIN GROUP (ORDER BY s.jitter_ms) AS jitter_p50,"
	"         percentile_cont(0.95) WITHIN GROUP (ORDER BY s.jitter_ms) AS jitter_p95,"
	"         percentile_cont(0.95) WITHIN GROUP (ORDER BY s.packet_loss_pct) AS loss_p95,"
	"         count(s.packet_loss_pct) AS loss_n, sum(s.packet_loss_pct::numeric) AS loss_sum,"
	"         count(s.bitrate_kbps) AS bitrate_n, sum(s.bitrate_kbps) AS bitrate_sum,"
	"         count(*) FILTER (WHERE s.quality = 'excellent') AS q_excellent,"
	"         count(*) FILTER (WHERE s.quality = 'good') AS q_good,"
	"         count(*) FILTER (WHERE s.quality = 'poor') AS q_poor,"
	"         count(*) FILTER (WHERE s.quality = 'lost') AS q_lost"
	"       FROM s GROUP BY GROUPING SETS ((s.user_id), ())) g"
	" ORDER BY g.grp DESC, g.user_text";

static const char *text_col(const PGresult *res, int row, const char *col)
{
	int f = PQfnumber(res, col);

	return f < 0 || PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
}

/* The figures of one result row: the rollup's counters and exact percentiles. */
static bool call_figures(struct fw *w, const PGresult *res, int row)
{
	struct rpt_acc a = {0};
	struct rpt_colmap cols;
	struct rpt_exact ex = {
		.rtt_p50 = text_col(res, row, "rtt_p50"), .rtt_p95 = text_col(res, row, "rtt_p95"),
		.jitter_p50 = text_col(res, row, "jitter_p50"),
		.jitter_p95 = text_col(res, row, "jitter_p95"), .loss_p95 = text_col(res, row, "loss_p95"),
	};

	rpt_colmap_init(&cols, res);
	if (rpt_acc_add_quality_row(&a, res, row, &cols) != 0)
		return false;
	rpt_emit_quality(w, &a, &ex);
	rpt_acc_free(&a);
	return true;
}

/* {"callId", ...figures of the whole call, "byParticipant": [{"userId", ...}]} */
static bool call_quality_json(struct fw *w, const char *id, const PGresult *res)
{
	int fu = PQfnumber(res, "user_text"), whole = -1;
	bool first = true;

	fw_init(w, FW_JSON);
	fw_open(w);
	fw_str(w, "callId", id);
	for (int i = 0, n = PQntuples(res); i < n; i++)
		if (row_i64(res, i, "grp", 0) == 1)
			whole = i;
	if (whole >= 0) {
		if (!call_figures(w, res, whole))
			return false;
	} else {
		struct rpt_acc none = {0};   /* no samples at all */
		struct rpt_exact ex = {0};

		rpt_emit_quality(w, &none, &ex);
	}
	fw_raw(w, ",\"byParticipant\":[", 18);
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		if (i == whole)
			continue;
		if (!first)
			fw_raw(w, ",", 1);
		first = false;
		fw_open(w);
		if (PQgetisnull(res, i, fu))
			fw_null(w, "userId");
		else
			fw_str(w, "userId", PQgetvalue(res, i, fu));
		if (!call_figures(w, res, i))
			return false;
		fw_close(w);
	}
	fw_raw(w, "]", 1);
	fw_close(w);
	return !w->overflow;
}

/* The call's figures, for its participants and admins (404 for anyone else). */
static enum nc_err api_call_quality(struct req *r, struct nc_error *err)
{
	struct db_conn *db = &req_worker(r)->db;
	const char *params[2];
	bool admin = (req_user(r)->roles & ROLE_ADMIN) != 0, visible;
	char id[37];
	struct fw body;
	PGresult *res;
	bool ok;

	uuid_lower(req_param(r, "id"), id);   /* a UUID: the route's prologue checked it */
	params[0] = id;
	params[1] = req_user(r)->user_id;
	if ((admin ? db_begin_service(db, err) : db_begin_user(db, req_user(r)->user_id, err)) != NC_OK ||
	    (res = db_exec(db, call_check_sql, 2, params, err)) == NULL)
		return err->code;
	visible = val(res, "call_exists")[0] == 't' && (admin || val(res, "participant")[0] == 't');
	PQclear(res);
	if (!visible)
		return err_set(err, NC_ENOTFOUND, "call not found");
	if ((res = db_exec(db, call_quality_sql, 1, params, err)) == NULL)
		return err->code;
	db_rollback(db);   /* read only */
	ok = call_quality_json(&body, id, res);
	PQclear(res);
	if (ok) {
		resp_header(r, "Cache-Control", "no-store");
		resp_raw(r, 200, "application/json; charset=utf-8", body.p, body.len);
	}
	fw_free(&body);
	return ok ? NC_OK : err_set(err, NC_EINTERNAL, "malformed stats");
}

const struct route reports_routes[] = {
	{RM_GET, "/api/reports/usage", api_reports_usage, ROUTE_AUTH,
	 "reports.usage", NULL},
	{RM_GET, "/api/reports/quality", api_reports_quality, ROUTE_AUTH,
	 "reports.quality", NULL},
	{RM_GET, "/api/calls/{id}/quality", api_call_quality,
	 ROUTE_AUTH | ROUTE_UUID_PARAMS, "calls.quality", NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
