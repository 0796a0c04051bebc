/*
 * sweep_data.c - `nchat-rtc sweep-data`: the data retention job (cron).
 *
 * Deletes what is older than its retention period (0 = keep forever):
 *   RETENTION_CHAT_DAYS            stream chat messages and reactions
 *   RETENTION_ANALYTICS_DAYS       viewer sessions (by their last sign of
 *                                  life) and client connection stats
 *   RETENTION_WEBHOOK_EVENTS_DAYS  LiveKit webhook event ids (idempotency:
 *                                  LiveKit stops retrying within minutes)
 * in batches of GDPR_SWEEP_BATCH rows, each its own short transaction, so a
 * large backlog never holds locks or a snapshot for long.  FOR UPDATE SKIP
 * LOCKED lets two sweeps (or a sweep and live traffic) run side by side: a
 * locked row is simply taken by the next run.  Stream counters are anonymous
 * aggregates and stay as they are (see gdpr.h).
 */
#include "store/db.h"
#include "store/db_row.h"
#include "ops/gdpr.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/sweep_mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sweep_kind {
	const char *label;  /* for the summary line */
	size_t cfg_off;     /* the retention in days (int) in struct nc_config */
	const char *sql;    /* $1 = days, $2 = batch size */
};

/*
 * Each statement names its own table and column (no SQL is assembled at run
 * time).  The batch is taken as `= ANY(ARRAY(subquery))`, not `IN (subquery)`:
 * with row-level security on these tables the planner turned IN into a
 * nested loop that re-ran the LIMIT .. FOR UPDATE subquery once per row of
 * the table (2,500 rows took 11 s); ARRAY() runs it exactly once.  A viewer session counts from its last heartbeat or its end, so a
 * long-open session is judged by when it was last alive.
 */
static const struct sweep_kind sweep_kinds[] = {
	{"chat messages", offsetof(struct nc_config, retention_chat_days),
	 "DELETE FROM nchat_stream_chat_messages WHERE id = ANY(ARRAY(SELECT id FROM"
	 " nchat_stream_chat_messages WHERE created_at < now() - make_interval(days => $1::int)"
	 " LIMIT $2::int FOR UPDATE SKIP LOCKED))"},
	{"reactions", offsetof(struct nc_config, retention_chat_days),
	 "DELETE FROM nchat_stream_reactions WHERE id = ANY(ARRAY(SELECT id FROM"
	 " nchat_stream_reactions WHERE created_at < now() - make_interval(days => $1::int)"
	 " LIMIT $2::int FOR UPDATE SKIP LOCKED))"},
	{"viewer sessions", offsetof(struct nc_config, retention_analytics_days),
	 "DELETE FROM nchat_stream_viewers WHERE id = ANY(ARRAY(SELECT id FROM nchat_stream_viewers"
	 " WHERE GREATEST(last_heartbeat_at, left_at) < now() - make_interval(days => $1::int)"
	 " LIMIT $2::int FOR UPDATE SKIP LOCKED))"},
	{"connection stats", offsetof(struct nc_config, retention_analytics_days),
	 "DELETE FROM nchat_webrtc_connections WHERE id = ANY(ARRAY(SELECT id FROM"
	 " nchat_webrtc_connections WHERE created_at < now() - make_interval(days => $1::int)"
	 " LIMIT $2::int FOR UPDATE SKIP LOCKED))"},
	{"webhook events", offsetof(struct nc_config, retention_webhook_events_days),
	 "DELETE FROM nchat_livekit_webhook_events WHERE event_id = ANY(ARRAY(SELECT event_id FROM"
	 " nchat_livekit_webhook_events WHERE received_at < now() - make_interval(days => $1::int)"
	 " LIMIT $2::int FOR UPDATE SKIP LOCKED))"},
};

/* Delete batches of one kind until a batch comes back short; rows deleted or -1. */
static long sweep_one(struct db_conn *db, const struct sweep_kind *k, int days,
		      struct nc_error *err)
{
	char days_s[16], batch_s[16];
	const char *params[2] = {days_s, batch_s};
	long total = 0, n;

	snprintf(days_s, sizeof(days_s), "%d", days);
	snprintf(batch_s, sizeof(batch_s), "%d", GDPR_SWEEP_BATCH);
	do {
		PGresult *res;

		if (db_begin_service(db, err) != NC_OK)
			return -1;
		res = db_exec(db, k->sql, 2, params, err);
		if (res == NULL) {
			db_rollback(db);
			return -1;
		}
		n = (long)row_affected(res);
		PQclear(res);
		if (db_commit(db, err) != NC_OK)
			return -1;
		total += n;
	} while (n >= GDPR_SWEEP_BATCH);
	return total;
}

int cmd_sweep_data(int argc, char **argv, const struct nc_config *cfg)
{
	struct db_conn db;
	struct nc_error err = {0};
	long counts[NC_ARRAY_LEN(sweep_kinds)];
	char line[512];
	size_t off = 0;
	int rc = 0;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: nchat-rtc sweep-data\n");
		return 2;
	}
	db_init(&db, cfg->database_url, cfg->db_statement_timeout_ms);
	for (size_t i = 0; i < NC_ARRAY_LEN(sweep_kinds); i++) {
		int days = *(const int *)((const char *)cfg + sweep_kinds[i].cfg_off);

		/* -1: kept forever (0 days); -2: not reached after a failure */
		counts[i] = days <= 0 ? -1 : -2;
		if (rc != 0 || days <= 0)
			continue;
		counts[i] = sweep_one(&db, &sweep_kinds[i], days, &err);
		if (counts[i] < 0) {
			counts[i] = -2;
			log_error("sweep-data: %s: %s", sweep_kinds[i].label, err.msg);
			rc = 1;
		}
	}
	for (size_t i = 0; i < NC_ARRAY_LEN(sweep_kinds) && off < sizeof(line); i++) {
		int n = counts[i] >= 0
			? snprintf(line + off, sizeof(line) - off, "%s%ld %s", i ? ", " : "", counts[i],
				   sweep_kinds[i].label)
			: snprintf(line + off, sizeof(line) - off, "%s%s %s", i ? ", " : "",
				   sweep_kinds[i].label, counts[i] == -1 ? "kept" : "not swept");
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (rc == 0)
		sweep_record_success(NULL, cfg, "data");
	printf("sweep-data: %s%s\n", rc ? "FAILED: " : "deleted ", line);
	db_cleanup(&db);
	return rc;
}
