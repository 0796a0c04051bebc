/*
 * kvcache.c - the shared direct-mapped table of kvcache.h.
 */
#include "core/kvcache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct kv_entry {
	size_t klen, vlen;
	unsigned char data[]; /* key, then value */
};

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

static void ensure_ready(struct kvcache *c)
{
	if (atomic_load_explicit(&c->ready, memory_order_acquire))
		return;
	pthread_mutex_lock(&init_mu);
	if (!atomic_load_explicit(&c->ready, memory_order_relaxed)) {
		for (size_t i = 0; i < KVCACHE_STRIPES; i++)
			pthread_mutex_init(&c->mu[i], NULL);
		if (getrandom(&c->seed, sizeof(c->seed), 0) != (ssize_t)sizeof(c->seed)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			c->seed = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^
				  (uint64_t)(uintptr_t)c;
		}
		atomic_store_explicit(&c->ready, true, memory_order_release);
	}
	pthread_mutex_unlock(&init_mu);
}

static size_t slot_of(const struct kvcache *c, const unsigned char *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ c->seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ULL;
	h ^= h >> 29;
	return (size_t)(h % KVCACHE_SLOTS);
}

/* Equal keys, in time that depends on the length only. */
static bool same_key(const struct kv_entry *e, const unsigned char *k, size_t n)
{
	unsigned char d = 0;

	if (e->klen != n)
		return false;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(e->data[i] ^ k[i]);
	return d == 0;
}

bool kvcache_get(struct kvcache *c, const void *key, size_t klen, void *out, size_t cap,
		 size_t *len)
{
	const unsigned char *k = key;
	struct kv_entry *e;
	pthread_mutex_t *mu;
	size_t s;
	bool hit = false;

	ensure_ready(c);
	s = slot_of(c, k, klen);
	mu = &c->mu[s % KVCACHE_STRIPES];
	pthread_mutex_lock(mu);
	e = c->slot[s];
	if (e != NULL && same_key(e, k, klen) && e->vlen <= cap) {
		memcpy(out, e->data + e->klen, e->vlen);
		*len = e->vlen;
		hit = true;
	}
	pthread_mutex_unlock(mu);
	return hit;
}

void kvcache_put(struct kvcache *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct kv_entry *e, *old;
	pthread_mutex_t *mu;
	size_t s;

	ensure_ready(c);
	if (klen > SIZE_MAX / 2 - sizeof(*e) || vlen > SIZE_MAX / 2)
		return;
	e = malloc(sizeof(*e) + klen + vlen);
	if (e == NULL)
		return;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
	s = slot_of(c, e->data, klen);
	mu = &c->mu[s % KVCACHE_STRIPES];
	pthread_mutex_lock(mu);
	old = c->slot[s];
	c->slot[s] = e;
	pthread_mutex_unlock(mu);
	free(old);
}

void kvcache_clear(struct kvcache *c)
{
	ensure_ready(c);
	for (size_t s = 0; s < KVCACHE_SLOTS; s++) {
		pthread_mutex_t *mu = &c->mu[s % KVCACHE_STRIPES];
		struct kv_entry *old;

		pthread_mutex_lock(mu);
		old = c->slot[s];
		c->slot[s] = NULL;
		pthread_mutex_unlock(mu);
		free(old);
	}
}
