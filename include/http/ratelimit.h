/*
 * ratelimit.h - request rate limits per user and per client address.
 *
 * Each route belongs to a class (initiate, join, chat, ...).  A request is
 * charged to two buckets: its user's bucket for that class (when signed in)
 * and its client address's bucket (all classes together, so an office
 * behind one NAT gets a generous shared budget while per-user limits do the
 * real work).  Buckets are GCRA token buckets kept in Redis and updated
 * atomically by one Lua script, so every instance enforces the same budget.
 * When Redis is unreachable each instance falls back to its own in-memory
 * buckets (the same algorithm), so limits degrade to per-instance rather
 * than disappear.
 *
 * A route may add a bucket of its own (struct route.own_limit: the
 * reactions of one viewer on one stream), charged by the same script in the
 * same round trip, so a request that every bucket allows costs one.
 *
 * Configuration: RATE_LIMITS="default=300/60,initiate=20/60,..." (requests
 * per seconds, per user) and RATE_LIMIT_IP="3000/60"; "off" disables one.
 */
#ifndef NC_RATELIMIT_H
#define NC_RATELIMIT_H

#include "core/common.h"
#include "core/config.h"

struct nc_worker;

/* The class of a route pattern and method. */
enum rl_class rl_classify(const char *pattern, unsigned method);
/* A route's own bucket: at most count requests per window_s seconds under key. */
struct rl_bucket {
	char key[128];
	int count, window_s;
};

/*
 * Charge one request to its buckets (the address's, the user's for the
 * class, and own when not NULL): all or none.  Returns 0 when allowed,
 * otherwise the milliseconds until it would be (for Retry-After).  user_id
 * may be NULL.
 */
long rl_check(struct nc_worker *w, const struct rl_config *rc, enum rl_class cls,
	      const char *user_id, const char *client_addr, const struct rl_bucket *own);

#endif
