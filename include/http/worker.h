/*
 * worker.h - a worker thread's own connections.
 *
 * Each worker owns one Postgres connection, one Redis connection and one
 * LiveKit client (a curl easy handle kept alive between calls).  They are
 * created on the worker's own thread when it starts and are never shared,
 * so handlers use them without locks.
 */
#ifndef NC_WORKER_H
#define NC_WORKER_H

#include "store/cache.h"
#include "core/config.h"
#include "store/db.h"

#include <pthread.h>

struct lk_client;
struct s3_client;
struct http_server;

#define WORKER_DEFER_MAX 8

struct nc_worker;

/* Work a handler leaves for after its response (worker_defer). */
struct worker_deferred {
	void (*fn)(struct nc_worker *w, void *arg);
	void *arg;
};

struct nc_worker {
	int id;
	pthread_t thread;
	const struct nc_config *cfg;
	struct http_server *srv;
	struct db_conn db;
	struct rds_conn rds;
	bool rds_ok;               /* REDIS_URL parsed */
	int rds_carried;           /* jobs whose queued Redis writes are still unsent */
	struct lk_client *lk;      /* NULL when LiveKit is not configured */
	struct s3_client *s3;      /* NULL when S3 is not configured */
	struct worker_deferred deferred[WORKER_DEFER_MAX];
	int n_deferred;
};

/* s3.c: a client for the configured bucket, or NULL when S3 is not configured. */
struct s3_client *s3_client_new(const struct nc_config *cfg);
void s3_client_free(struct s3_client *c);

/* Open (lazily) the worker's connections; called on the worker thread. */
void worker_setup(struct nc_worker *w, const struct nc_config *cfg);
void worker_teardown(struct nc_worker *w);
/*
 * Run fn at the end of worker_teardown on every worker thread (clean-ups of
 * higher modules' thread-local state).  Call before the server starts.
 */
void worker_at_exit(void (*fn)(void));

/*
 * Run fn(w, arg) once the current request's response is on its way (fn
 * owns arg and frees it).  For best-effort work the answer does not depend
 * on; with the list full it runs at once.
 */
void worker_defer(struct nc_worker *w, void (*fn)(struct nc_worker *w, void *arg), void *arg);
/*
 * After a response was handed to the loop: run the deferred work.  The
 * Redis commands it queued (rds_append) go out with the next job's first
 * Redis command, or from worker_idle.
 */
void worker_after_response(struct nc_worker *w);
/* True when queued Redis commands still wait to be written. */
bool worker_idle_pending(const struct nc_worker *w);
/* Before waiting for work: send the queued Redis commands (replies read later). */
void worker_idle(struct nc_worker *w);

#endif
