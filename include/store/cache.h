/*
 * cache.h - one Redis connection per worker thread (hiredis, synchronous,
 * with connect and command timeouts).  Reconnects lazily after an error with
 * a short back-off.  Redis holds only derived, expiring state (presence,
 * viewer counts, rate limits), so callers degrade gracefully when it is down.
 */
#ifndef NC_CACHE_H
#define NC_CACHE_H

#include "core/common.h"

#include <hiredis/hiredis.h>

struct rds_conn {
	redisContext *c;
	char *host;
	int port;
	char *password;
	int db;
	int timeout_ms;
	int64_t retry_after_ms;
};

/* Parse redis://[:password@]host[:port][/db].  0 or -1. */
int rds_parse_url(const char *url, char **host, int *port, char **password, int *db) NC_MUSTCHECK;
int rds_init(struct rds_conn *r, const char *url, int timeout_ms) NC_MUSTCHECK;
void rds_cleanup(struct rds_conn *r);

/*
 * Run a command (argv form).  Returns the reply (caller frees with
 * freeReplyObject) or NULL with err set to NC_EUNAVAILABLE.  A Redis error
 * reply is returned as a reply of type REDIS_REPLY_ERROR.
 */
redisReply *rds_cmdv(struct rds_conn *r, int argc, const char **argv, const size_t *lens,
		     struct nc_error *err) NC_MUSTCHECK;
/* printf-style convenience wrapper around redisCommand. */
redisReply *rds_cmd(struct rds_conn *r, struct nc_error *err, const char *fmt, ...) NC_MUSTCHECK;

#endif
