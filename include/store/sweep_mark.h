/*
 * sweep_mark.h - the last successful run of each sweep, in Redis.
 */
#ifndef NC_SWEEP_MARK_H
#define NC_SWEEP_MARK_H

#include "core/config.h"
#include "store/cache.h"

/* Redis key prefix: + "calls", "recordings", "data"; the value is unix seconds. */
#define SWEEP_KEY "nchat:sweep:last_success:"

/*
 * A sweep (calls, recordings, data) finished without error: record its time
 * (nchat_sweep_last_success_timestamp_seconds on /metrics).  rds may be NULL:
 * a connection is opened from cfg for the one command.
 */
void sweep_record_success(struct rds_conn *rds, const struct nc_config *cfg, const char *sweep);

#endif
