/*
 * combine.h - the same statement of several workers sent as one.
 *
 * A worker that needs a statement of some kind queues an item.  If fewer
 * than `leaders` batches of that kind are running, it becomes a leader: it
 * takes every item queued (its own among them, up to max), runs them as one
 * batch with its own resources (its Postgres connection), marks them done
 * and wakes the others.  Items queued while the batches run go in the next
 * ones.  A worker alone runs a batch of one at once: there is no timer and
 * no wait for company, so the batching costs nothing when the load is
 * light and saves a statement per item when it is not.
 *
 * run must fill in every item's results; after combine() returns, the
 * item's results are visible to its owner.
 */
#ifndef NC_COMBINE_H
#define NC_COMBINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define COMBINE_MAX 64

struct comb_item {
	struct comb_item *next;
	bool done;
};

typedef void (*comb_run_fn)(void *ctx, struct comb_item **items, size_t n);

struct combiner {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct comb_item *head, *tail;
	unsigned running;       /* batches running now */
	unsigned leaders;       /* batches that may run at once, >= 1 */
	size_t max;             /* items per batch, 1..COMBINE_MAX */
	comb_run_fn run;
};

#define COMBINER_INIT(fn, max_leaders, max_items)                                     \
	{ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0,        \
	  (max_leaders), (max_items), (fn) }

/* Queue it and return once a batch holding it ran (maybe on this thread, with ctx). */
void combine(struct combiner *c, struct comb_item *it, void *ctx);

#endif
