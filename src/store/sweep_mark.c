/*
 * sweep_mark.c - when each sweep last finished without error, kept in Redis
 * so that every instance's /metrics shows it, for sweeps run by cron too.
 */
#include "store/sweep_mark.h"
#include "core/log.h"

#include <stdio.h>

void sweep_record_success(struct rds_conn *rds, const struct nc_config *cfg, const char *sweep)
{
	struct rds_conn own;
	struct nc_error err = {0};
	redisReply *rep;
	char key[64], now[24];
	const char *argv[3] = {"SET", key, now};

	if (rds == NULL) {
		if (cfg->redis_url == NULL || rds_init(&own, cfg->redis_url, cfg->redis_timeout_ms) != 0)
			return;
		rds = &own;
	}
	snprintf(key, sizeof(key), SWEEP_KEY "%s", sweep);
	snprintf(now, sizeof(now), "%lld", (long long)now_unix());
	rep = rds_cmdv(rds, 3, argv, NULL, &err);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
		log_warn("sweep-%s: could not record the run in Redis: %s", sweep,
			 rep ? rep->str : err.msg);
	freeReplyObject(rep);
	if (rds == &own)
		rds_cleanup(&own);
}
