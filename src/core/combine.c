/*
 * combine.c - flat combining of one kind of statement (see combine.h).
 */
#include "core/combine.h"

void combine(struct combiner *c, struct comb_item *it, void *ctx)
{
	struct comb_item *batch[COMBINE_MAX];
	size_t max = c->max < 1 ? 1 : c->max > COMBINE_MAX ? COMBINE_MAX : c->max;

	it->next = NULL;
	it->done = false;
	pthread_mutex_lock(&c->mu);
	if (c->tail != NULL)
		c->tail->next = it;
	else
		c->head = it;
	c->tail = it;
	while (!it->done) {
		size_t n = 0;

		if (c->running >= (c->leaders < 1 ? 1 : c->leaders) || c->head == NULL) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		/* lead: take what is queued, oldest first (our own item among them
		 * unless more than max came before it; then the next round) */
		c->running++;
		while (n < max && c->head != NULL) {
			batch[n++] = c->head;
			c->head = c->head->next;
		}
		if (c->head == NULL)
			c->tail = NULL;
		pthread_mutex_unlock(&c->mu);
		c->run(ctx, batch, n);
		pthread_mutex_lock(&c->mu);
		for (size_t i = 0; i < n; i++)
			batch[i]->done = true;
		c->running--;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}
