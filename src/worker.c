/*
 * worker.c - set-up and tear-down of a worker thread's connections.
 */
#include "worker.h"
#include "lk.h"
#include "log.h"
#include "outbox.h"

#include <stdlib.h>

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
	 * The queued Redis writes go out now; their replies are read before
	 * the next command on this connection (they have arrived by then), so
	 * the worker does not wait for them.
	 */
	if (w->rds_ok)
		(void)rds_send(&w->rds);
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
	outbox_thread_cleanup();
}
