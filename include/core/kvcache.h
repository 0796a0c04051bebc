/*
 * kvcache.h - a small table of byte strings shared by every thread of the
 * process: what the workers computed once and may hand out again (verified
 * user tokens, minted LiveKit tokens).
 *
 * Direct-mapped: a key has one slot, chosen by a hash with a secret seed
 * drawn when the table is first used, so a client cannot aim at another
 * client's slot; a put evicts whatever held the slot.  Keys are compared in
 * full (in constant time), so a hit is always the value put under that very
 * key.  Slots are guarded by striped locks held only for a compare and a
 * copy.  A table is a static object initialised with KVCACHE_INIT; it
 * allocates one block per entry and nothing else.
 */
#ifndef NC_KVCACHE_H
#define NC_KVCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVCACHE_SLOTS 8192
#define KVCACHE_STRIPES 64

struct kv_entry;

struct kvcache {
	atomic_bool ready;
	uint64_t seed;
	pthread_mutex_t mu[KVCACHE_STRIPES];
	struct kv_entry *slot[KVCACHE_SLOTS];
};

#define KVCACHE_INIT { .ready = false }

/*
 * Copy the value stored under key into out (at most cap bytes): true and
 * *len set on a hit; false on a miss or a value longer than cap.
 */
bool kvcache_get(struct kvcache *c, const void *key, size_t klen, void *out, size_t cap,
		 size_t *len);

/* Store a copy of val under key (replacing the slot's entry); dropped if out of memory. */
void kvcache_put(struct kvcache *c, const void *key, size_t klen, const void *val, size_t vlen);

/* Free every entry (the table stays usable). */
void kvcache_clear(struct kvcache *c);

#endif
