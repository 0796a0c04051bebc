/*
 * pool.c - the worker pool: a queue of jobs {fn, arg} and the threads that
 * run them, and the periodic jobs of `serve`.
 *
 * The loop thread queues a job (pool_submit); a worker pops it and runs
 * fn(w, arg) with its own connections, then puts the job on the done list
 * and wakes the loop, which runs done(srv, arg): a request's reply is sent
 * (intake.c), a periodic job is marked free to run again.  A job's memory
 * belongs to its owner (the struct req, the struct periodic), not to the
 * pool.
 *
 * Stopping (pool_stop): the queue is closed, the workers finish what is
 * queued and exit, and the done callbacks of the last jobs still run.
 */
#include "http/server_internal.h"
#include "core/log.h"
#include "core/uuid.h"
#include "http/worker.h"

#include <event2/event.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * Only the job that finds the done list empty wakes the loop: until the loop
 * takes the list (pool_on_done), that wake-up is still pending and covers
 * every job added behind it, so under load one wake-up (a write to the
 * loop's notification fd) serves several replies.
 */
static void push_done(struct http_server *srv, struct job *j)
{
	bool wake;

	pthread_mutex_lock(&srv->d_mu);
	j->next = NULL;
	wake = srv->d_head == NULL;
	if (srv->d_tail != NULL)
		srv->d_tail->next = j;
	else
		srv->d_head = j;
	srv->d_tail = j;
	pthread_mutex_unlock(&srv->d_mu);
	if (wake)
		event_active(srv->d_ev, EV_READ, 0);
}

/*
 * The next job, or NULL once the queue is closed and empty.  A worker that
 * finds nothing to do sends its queued Redis writes before it waits.
 */
static struct job *pop(struct http_server *srv, struct nc_worker *w)
{
	struct job *j;

	pthread_mutex_lock(&srv->q_mu);
	while (srv->q_head == NULL && !srv->q_closed) {
		if (worker_idle_pending(w)) {
			pthread_mutex_unlock(&srv->q_mu);
			worker_idle(w);
			pthread_mutex_lock(&srv->q_mu);
			continue;
		}
		pthread_cond_wait(&srv->q_cv, &srv->q_mu);
	}
	j = srv->q_head;
	if (j != NULL) {
		srv->q_head = j->next;
		if (srv->q_head == NULL)
			srv->q_tail = NULL;
		srv->q_len--;
	}
	pthread_mutex_unlock(&srv->q_mu);
	return j;
}

static void *worker_main(void *arg)
{
	struct nc_worker *w = arg;
	struct http_server *srv = w->srv;
	struct job *j;

	worker_setup(w, srv->cfg);
	while ((j = pop(srv, w)) != NULL) {
		atomic_fetch_add(&srv->busy_workers, 1);
		j->fn(w, j->arg);
		atomic_fetch_sub(&srv->busy_workers, 1);
		push_done(srv, j);
		/* best-effort writes the job queued (worker_defer, rds_append), off the response path */
		worker_after_response(w);
	}
	worker_teardown(w);
	return NULL;
}

bool pool_submit(struct http_server *srv, struct job *j)
{
	bool ok = true;

	pthread_mutex_lock(&srv->q_mu);
	if (srv->q_len >= (size_t)srv->cfg->max_queue || srv->q_closed) {
		ok = false;
	} else {
		j->next = NULL;
		if (srv->q_tail != NULL)
			srv->q_tail->next = j;
		else
			srv->q_head = j;
		srv->q_tail = j;
		srv->q_len++;
		pthread_cond_signal(&srv->q_cv);
	}
	pthread_mutex_unlock(&srv->q_mu);
	return ok;
}

void pool_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;
	struct job *list;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&srv->d_mu);
	list = srv->d_head;
	srv->d_head = srv->d_tail = NULL;
	pthread_mutex_unlock(&srv->d_mu);
	while (list != NULL) {
		struct job *next = list->next; /* done may free the job's owner */

		list->done(srv, list->arg);
		list = next;
	}
}

static int worker_count(const struct nc_config *cfg)
{
	long cores;

	if (cfg->workers > 0)
		return cfg->workers;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1)
		cores = 1;
	return cores * 2 < 4 ? 4 : (int)(cores * 2);
}

void pool_start(struct http_server *srv)
{
	srv->n_workers = worker_count(srv->cfg);
	srv->workers = xcalloc((size_t)srv->n_workers, sizeof(*srv->workers));
	for (int i = 0; i < srv->n_workers; i++) {
		srv->workers[i].id = i;
		srv->workers[i].srv = srv;
		if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0)
			fatal("pthread_create failed");
	}
}

void pool_stop(struct http_server *srv)
{
	pthread_mutex_lock(&srv->q_mu);
	srv->q_closed = true;
	pthread_cond_broadcast(&srv->q_cv);
	pthread_mutex_unlock(&srv->q_mu);
	for (int i = 0; i < srv->n_workers; i++)
		pthread_join(srv->workers[i].thread, NULL);
	/* Anything a worker finished after the loop stopped is freed unsent. */
	pool_on_done(-1, 0, srv);
}

/* ------------------------------------------------------------------ */
/* Periodic jobs                                                       */
/* ------------------------------------------------------------------ */

/* Worker side of a periodic run: the job's fn, with a request id for its logs. */
static void periodic_job(struct nc_worker *w, void *arg)
{
	struct periodic *p = arg;
	char rid[37];

	uuid_v4(rid);
	log_set_request_id(rid);
	p->fn(w, p->arg);
	/* A job must never leave a transaction open on its connection. */
	if (w->db.in_tx) {
		log_error("periodic job %s left a transaction open; rolled back", p->name);
		db_rollback(&w->db);
	}
	log_set_request_id(NULL);
}

/* Loop side, after the run: let the next tick run it again. */
static void periodic_done(struct http_server *srv, void *arg)
{
	struct periodic *p = arg;

	p->running = false;
	srv->inflight--;
	server_maybe_finish_drain(srv);
}

static void on_periodic(evutil_socket_t fd, short what, void *arg)
{
	struct periodic *p = arg;
	struct http_server *srv = p->srv;

	(void)fd;
	(void)what;
	if (p->running || srv->draining)
		return;
	if (!pool_submit(srv, &p->job))
		return;
	p->running = true;
	srv->inflight++;
}

void http_server_add_periodic(struct http_server *srv, int interval_s, nc_job_fn fn, void *arg,
			      const char *name)
{
	struct periodic *p;

	if (interval_s <= 0 || srv->n_periodic == MAX_PERIODIC)
		return;
	p = &srv->periodic[srv->n_periodic++];
	p->srv = srv;
	p->interval_s = interval_s;
	p->fn = fn;
	p->arg = arg;
	p->name = name;
	p->job.fn = periodic_job;
	p->job.arg = p;
	p->job.done = periodic_done;
}

void periodic_start(struct http_server *srv)
{
	for (int i = 0; i < srv->n_periodic; i++) {
		struct periodic *p = &srv->periodic[i];
		struct timeval tv = {p->interval_s, 0};

		p->ev = event_new(srv->base, -1, EV_PERSIST, on_periodic, p);
		if (p->ev == NULL || event_add(p->ev, &tv) != 0)
			fatal("cannot add periodic timer");
	}
}

void periodic_stop(struct http_server *srv)
{
	for (int i = 0; i < srv->n_periodic; i++)
		if (srv->periodic[i].ev != NULL)
			event_del(srv->periodic[i].ev);
}

void periodic_free(struct http_server *srv)
{
	for (int i = 0; i < srv->n_periodic; i++)
		if (srv->periodic[i].ev != NULL) {
			event_free(srv->periodic[i].ev);
			srv->periodic[i].ev = NULL;
		}
}
