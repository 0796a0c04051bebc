/*
 * worker.c - set-up and tear-down of a worker thread's connections.
 */
#include "http/worker.h"
#include "http/auth.h"
#include "livekit/lk.h"
#include "core/log.h"

#include <stdlib.h>

/*
 * Per-thread clean-ups of modules above this one (a curl handle kept in a
 * thread-local, say), registered once before the workers start.
 */
#define AT_EXIT_MAX 8
static void (*at_exit_fns[AT_EXIT_MAX])(void);
static size_t n_at_exit;

void worker_at_exit(void (*fn)(void))
{
	if (n_at_exit == AT_EXIT_MAX)
		fatal("worker_at_exit: more than %d clean-ups", AT_EXIT_MAX);
	at_exit_fns[n_at_exit++] = fn;
}

void worker_setup(struct nc_worker *w, const struct nc_config *cfg)
{
	w->cfg = cfg;
	db_init(&w->db, cfg->database_url, cfg->db_statement_timeout_ms);
	db_set_prepared(&w->db, cfg->db_prepared_statements);
	w->rds_ok = cfg->redis_url != NULL &&
		    rds_init(&w->rds, cfg->redis_url, cfg->redis_timeout_ms) == 0;
	w->lk = NULL;
	if (cfg->livekit_api_url != NULL && cfg->livekit_api_key != NULL &&
	    cfg->livekit_api_secret != NULL) {
		w->lk = xcalloc(1, sizeof(*w->lk));
		if (lk_client_init(w->lk, cfg) != 0) {
			log_error("worker %d: cannot create the LiveKit client", w->id);
			free(w->lk);
			w->lk = NULL;
		}
	}
	w->s3 = s3_client_new(cfg);
}

void worker_defer(struct nc_worker *w, void (*fn)(struct nc_worker *w, void *arg), void *arg)
{
	if (w->n_deferred >= WORKER_DEFER_MAX) {
		fn(w, arg);
		return;
	}
	w->deferred[w->n_deferred].fn = fn;
	w->deferred[w->n_deferred].arg = arg;
	w->n_deferred++;
}

void worker_after_response(struct nc_worker *w)
{
	for (int i = 0; i < w->n_deferred; i++) {
		struct worker_deferred d = w->deferred[i];

		d.fn(w, d.arg);
	}
	w->n_deferred = 0;
	/*
	 * The queued Redis writes stay in the connection's buffer: the next
	 * job's first Redis command takes them along in its own write (one
	 * round trip for both), or worker_idle sends them before the worker
	 * waits for work.  Their replies are read before the next command's.
	 * A job that sent nothing to Redis (a webhook) does not hold them any
	 * longer: at most one job's time late.
	 */
	if (!worker_idle_pending(w))
		w->rds_carried = 0;
	else if (++w->rds_carried > 1)
		worker_idle(w);
}

bool worker_idle_pending(const struct nc_worker *w)
{
	return w->rds_ok && rds_unsent(&w->rds);
}

void worker_idle(struct nc_worker *w)
{
	if (w->rds_ok)
		(void)rds_send(&w->rds);
	w->rds_carried = 0;
}

void worker_teardown(struct nc_worker *w)
{
	worker_after_response(w);
	if (w->rds_ok)
		(void)rds_flush(&w->rds);
	db_cleanup(&w->db);
	if (w->rds_ok)
		rds_cleanup(&w->rds);
	if (w->lk != NULL) {
		lk_client_cleanup(w->lk);
		free(w->lk);
		w->lk = NULL;
	}
	s3_client_free(w->s3);
	w->s3 = NULL;
	auth_cache_release();
	lk_token_cache_release();
	for (size_t i = 0; i < n_at_exit; i++)
		at_exit_fns[i]();
}
