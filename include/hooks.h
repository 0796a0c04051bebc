/*
 * hooks.h - calls between resource modules.
 *
 * The webhook receiver (webhook.c) verifies, de-duplicates and opens one
 * service transaction per event; events about egress and ingress are then
 * handed to the module that owns the row.  Each hook returns 1 when it
 * applied the event to a row it owns, 0 when the egress/ingress is not one
 * of its rows, -1 on error (err set; the webhook answers 5xx so LiveKit
 * retries).  created_at is the event's createdAt (unix seconds); rows keep
 * the newest createdAt they applied and ignore older events.
 */
#ifndef NC_HOOKS_H
#define NC_HOOKS_H

#include "common.h"
#include "config.h"
#include "http.h"

#include <jansson.h>

struct nc_worker;

int recordings_on_egress(struct nc_worker *w, const char *event, json_t *egress_info,
			 int64_t created_at, struct nc_error *err);
int streams_on_egress(struct nc_worker *w, const char *event, json_t *egress_info,
		      int64_t created_at, struct nc_error *err);
int streams_on_ingress(struct nc_worker *w, const char *event, json_t *ingress_info,
		       int64_t created_at, struct nc_error *err);

/*
 * Stop the active recording of a call, if any (StopEgress, row -> ending).
 * Called by the calls module when a call ends, outside any transaction.
 */
enum nc_err recordings_stop_for_call(struct nc_worker *w, const char *call_id,
				     struct nc_error *err);

/* Periodic work run by `serve` on a timer (route handlers with evreq NULL). */
void calls_periodic(struct req *r);
/* Fold the counter deltas busy streams left (sql/0009_stream_counters.sql). */
void streams_counters_periodic(struct req *r);

/* CLI subcommands (argv[0] is the subcommand name). */
int cmd_sweep_calls(int argc, char **argv, const struct nc_config *cfg);
int cmd_sweep_recordings(int argc, char **argv, const struct nc_config *cfg);

#endif
