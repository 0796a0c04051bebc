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
	int pending;              /* rds_append'ed commands whose replies are unread */
	bool unsent;              /* some of them are still in the output buffer */
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

/*
 * Queue a command whose reply nobody waits for (writes that are best
 * effort: presence, realtime events, counters).  Queued commands go out
 * together at the next rds_send / rds_flush, which the worker runs once the
 * response is on its way and no other job is waiting for it, or in the same
 * write as the next synchronous command (rds_cmd / rds_cmdv), which reads
 * their replies before its own, so replies never get mixed up.
 * false when Redis is unavailable (nothing queued).
 */
bool rds_append(struct rds_conn *r, int argc, const char **argv, const size_t *lens);
/*
 * Send what is queued without waiting for the replies: they are read (and
 * dropped) before the next command on this connection, by when they have
 * arrived.  0, or -1 when the connection failed (the commands are lost).
 */
int rds_send(struct rds_conn *r);
/* True while queued commands have not been written to the socket yet. */
bool rds_unsent(const struct rds_conn *r);
/*
 * Send what is queued and read (and drop) its replies.  Returns the number
 * of error replies (logged at debug level), or -1 when the connection
 * failed (the commands are lost; the connection is re-opened later).
 */
int rds_flush(struct rds_conn *r);

#endif
