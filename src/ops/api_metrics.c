/*
 * api_metrics.c - GET /metrics: the counters of core/metrics.c plus the
 * business gauges, sampled from the database at scrape time.
 */
#include "ops/ops.h"
#include "core/metrics.h"
#include "http/worker.h"

#include <stdlib.h>
#include <string.h>

/* Business gauges come from the database at scrape time. */
static void sample_db_gauges(struct req *r)
{
	struct nc_error err = {0};
	PGresult *res;

	if (db_begin_service(&r->w->db, &err) != NC_OK)
		return;
	res = db_exec(&r->w->db,
		      "SELECT (SELECT count(*) FROM nchat_calls WHERE status IN ('ringing', 'active')),"
		      " (SELECT count(*) FROM nchat_streams WHERE status = 'live'),"
		      " (SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE status = 'pending'),"
		      " (SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE status = 'dead')",
		      0, NULL, &err);
	db_rollback(&r->w->db);
	if (res == NULL)
		return;
	metrics_set_gauge("nchat_active_calls", atof(PQgetvalue(res, 0, 0)));
	metrics_set_gauge("nchat_live_streams", atof(PQgetvalue(res, 0, 1)));
	metrics_set_gauge("nchat_outbound_webhooks_pending", atof(PQgetvalue(res, 0, 2)));
	metrics_set_gauge("nchat_outbound_webhooks_dead", atof(PQgetvalue(res, 0, 3)));
	PQclear(res);
}

void api_metrics(struct req *r)
{
	char *text;

	sample_db_gauges(r);
	text = metrics_render();
	resp_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
	free(text);
}
