/*
 * api_metrics.c - GET /metrics: the counters of core/metrics.c plus the
 * gauges sampled at scrape time.
 */
#include "ops/ops.h"
#include "core/metrics.h"
#include "http/worker.h"
#include "store/db_row.h"
#include "store/sweep_mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const sweep_names[] = {"calls", "recordings", "data"};

/* The database gauges: one statement, the gauge name of each column. */
static const char *const pg_gauges[] = {
	"nchat_active_calls", "nchat_live_streams", "nchat_outbound_webhooks_pending",
	"nchat_outbound_webhooks_dead", "nchat_active_call_participants",
	"nchat_recordings_starting", "nchat_recordings_starting_oldest_seconds",
};
static const char pg_gauges_sql[] =
	"SELECT (SELECT count(*) FROM nchat_calls WHERE status IN ('ringing', 'active'))"
	"  AS nchat_active_calls,"
	" (SELECT count(*) FROM nchat_streams WHERE status = 'live') AS nchat_live_streams,"
	" (SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE status = 'pending')"
	"  AS nchat_outbound_webhooks_pending,"
	" (SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE status = 'dead')"
	"  AS nchat_outbound_webhooks_dead,"
	" (SELECT count(*) FROM nchat_call_participants p JOIN nchat_calls c"
	"   ON c.id = p.call_id WHERE p.status = 'joined' AND c.status IN ('ringing', 'active'))"
	"  AS nchat_active_call_participants,"
	" (SELECT count(*) FROM nchat_call_recordings WHERE status = 'starting')"
	"  AS nchat_recordings_starting,"
	" (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)"
	"   FROM nchat_call_recordings WHERE status = 'starting')"
	"  AS nchat_recordings_starting_oldest_seconds";

/* Gauges sampled at scrape time: the database's state, Redis's reachability and the
 * sweeps' last runs.  A dependency that is down gives its *_up gauge 0. */
static void sample_scrape_gauges(struct req *r)
{
	struct nc_error err = {0};
	PGresult *res = db_exec_service(&req_worker(r)->db, pg_gauges_sql, 0, NULL, &err);
	redisReply *rep = NULL;
	bool pg_ok = res != NULL, redis_ok = false;

	if (res != NULL) {
		for (size_t i = 0; i < NC_ARRAY_LEN(pg_gauges); i++)
			metrics_set_gauge(pg_gauges[i], row_f64(res, 0, pg_gauges[i], 0));
		PQclear(res);
	}
	metrics_set_gauge("nchat_postgres_up", pg_ok ? 1 : 0);

	if (req_worker(r)->rds_ok) {
		const char *argv[1 + NC_ARRAY_LEN(sweep_names)];
		char keys[NC_ARRAY_LEN(sweep_names)][48];

		argv[0] = "MGET";
		for (size_t i = 0; i < NC_ARRAY_LEN(sweep_names); i++) {
			snprintf(keys[i], sizeof(keys[i]), SWEEP_KEY "%s", sweep_names[i]);
			argv[i + 1] = keys[i];
		}
		rep = rds_cmdv(&req_worker(r)->rds, (int)NC_ARRAY_LEN(argv), argv, NULL, &err);
		redis_ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
			   rep->elements == NC_ARRAY_LEN(sweep_names);
		for (size_t i = 0; redis_ok && i < rep->elements; i++)
			if (rep->element[i]->type == REDIS_REPLY_STRING)
				metrics_set_sweep_last(sweep_names[i],
						       strtod(rep->element[i]->str, NULL));
		freeReplyObject(rep);
	}
	metrics_set_gauge("nchat_redis_up", redis_ok ? 1 : 0);
}

/* Constant-time comparison of the presented bearer token with METRICS_TOKEN. */
static bool token_matches(const char *given, const char *want)
{
	size_t gl = strlen(given), wl = strlen(want);
	unsigned char diff = (unsigned char)(gl != wl);

	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)(want[i] ^ (i < gl ? given[i] : 0));
	return diff == 0;
}

/*
 * Who may read the metrics: with METRICS_TOKEN set, whoever presents it as
 * a bearer token, on either listener; without it, only clients of the
 * METRICS_ADDR listener (loopback by default).  On LISTEN_ADDR the endpoint
 * then does not exist (404).
 */
static enum nc_err metrics_allowed(struct req *r, struct nc_error *err)
{
	const char *tok = req_cfg(r)->metrics_token, *h;

	if (tok == NULL || *tok == '\0') {
		if (req_on_metrics_listener(r))
			return NC_OK;
		return err_set(err, NC_ENOTFOUND, "no such endpoint");
	}
	h = req_header(r, "Authorization");
	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		h += 7;
		while (*h == ' ')
			h++;
		if (token_matches(h, tok))
			return NC_OK;
	}
	resp_header(r, "WWW-Authenticate", "Bearer realm=\"metrics\"");
	return err_set(err, NC_EUNAUTH, "metrics need the bearer token (METRICS_TOKEN)");
}

enum nc_err api_metrics(struct req *r, struct nc_error *err)
{
	char *text;

	if (metrics_allowed(r, err) != NC_OK)
		return err->code;
	sample_scrape_gauges(r);
	text = metrics_render();
	resp_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
	free(text);
	return NC_OK;
}
