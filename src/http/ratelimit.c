/*
 * ratelimit.c - GCRA token buckets in Redis, with an in-process fallback.
 *
 * GCRA ("generic cell rate algorithm") keeps one number per bucket: the
 * theoretical arrival time (TAT) of the next request.  With a limit of L
 * requests per W ms, each request advances TAT by T = W / L; a request is
 * allowed while TAT - now <= W - T (a full bucket allows a burst of L).
 * One key per bucket, one atomic script per request, no background refill.
 */
#include "http/ratelimit.h"
#include "core/log.h"
#include "http/router.h"
#include "http/worker.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_SLOTS 8192
/* "rlu": the buckets count in microseconds (older instances used ms keys). */
#define RL_KEY_PREFIX "nchat:rlu:"

enum rl_class rl_classify(const char *pattern, unsigned method)
{
	size_t n;

	if (pattern == NULL)
		return RL_DEFAULT;
	if (strncmp(pattern, "/api/webhooks/", 14) == 0 || strcmp(pattern, "/healthz") == 0 ||
	    strcmp(pattern, "/readyz") == 0 || strcmp(pattern, "/metrics") == 0)
		return RL_EXEMPT;
	n = strlen(pattern);
#define ENDS(s) (n >= sizeof(s) - 1 && strcmp(pattern + n - (sizeof(s) - 1), s) == 0)
	if (strcmp(pattern, "/api/calls/initiate") == 0 || strcmp(pattern, "/api/streams/create") == 0)
		return RL_INITIATE;
	if (ENDS("/join"))
		return RL_JOIN;
	if (method == RM_POST && ENDS("/chat"))
		return RL_CHAT;
	if (method == RM_POST && ENDS("/reactions"))
		return RL_REACTIONS;
	if (ENDS("/stats") || ENDS("/viewers/heartbeat"))
		return RL_STATS;
#undef ENDS
	return RL_DEFAULT;
}

/* ---- Redis ---- */

/*
 * KEYS: the buckets.  ARGV: per key, T (us per request) and tau (us of
 * burst tolerance).  Returns 0 (allowed, every bucket charged) or the us to
 * wait (nothing charged).  Time comes from Redis, so instances agree.  In
 * microseconds so that a limit above 1,000 requests a second per key (an
 * address behind NAT) is not rounded down to one per millisecond; a TAT is
 * stored with %.0f, as tostring would drop its low digits.
 */
static const char gcra_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local tats = {}\n"
	"for i = 1, #KEYS do\n"
	"  local T = tonumber(ARGV[2*i-1]); local tau = tonumber(ARGV[2*i])\n"
	"  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')\n"
	"  if tat < now then tat = now end\n"
	"  if tat - now > tau then return tat - now - tau end\n"
	"  tats[i] = tat + T\n"
	"end\n"
	"for i = 1, #KEYS do\n"
	"  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX',\n"
	"             math.ceil((tats[i] - now) / 1000) + 1000)\n"
	"end\n"
	"return 0\n";

static char gcra_sha[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void compute_sha(void)
{
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)gcra_lua, strlen(gcra_lua), md);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(gcra_sha + 2 * i, 3, "%02x", md[i]);
}

/* The address's bucket, the user's for the class, the route's own. */
#define RL_MAX_KEYS 3

/* -1 when Redis could not answer (use the local fallback). */
static long long redis_check(struct nc_worker *w, int nkeys, char keys[][160], long long T[],
			     long long tau[])
{
	const char *argv[3 + RL_MAX_KEYS + 2 * RL_MAX_KEYS];
	char targs[2 * RL_MAX_KEYS][24], nk[4];
	struct nc_error err = {0};
	redisReply *rep;
	int argc = 0;
	long long rc = -1;

	pthread_once(&sha_once, compute_sha);
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVALSHA";
	argv[argc++] = gcra_sha;
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (int i = 0; i < nkeys; i++) {
		snprintf(targs[2 * i], sizeof(targs[0]), "%lld", T[i]);
		snprintf(targs[2 * i + 1], sizeof(targs[0]), "%lld", tau[i]);
		argv[argc++] = targs[2 * i];
		argv[argc++] = targs[2 * i + 1];
	}
	rep = rds_cmdv(&w->rds, argc, argv, NULL, &err);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(rep);
		argv[0] = "EVAL";
		argv[1] = gcra_lua;
		rep = rds_cmdv(&w->rds, argc, argv, NULL, &err);
	}
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
		rc = (long long)rep->integer;
	else if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warn("rate limit script failed: %s", rep->str);
	freeReplyObject(rep);
	return rc;
}

/* ---- in-process fallback ---- */

struct slot {
	uint64_t key;
	int64_t tat;
};

static struct slot local_slots[LOCAL_SLOTS];
static pthread_mutex_t local_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h ? h : 1;
}

/*
 * Same algorithm in a fixed table; two keys that collide on a slot share a
 * bucket, which only makes the (temporary) local limit a little stricter.
 */
static long long local_check(int nkeys, char keys[][160], long long T[], long long tau[])
{
	int64_t now = now_ms() * 1000, tats[RL_MAX_KEYS];
	struct slot *s[RL_MAX_KEYS];

	pthread_mutex_lock(&local_mu);
	for (int i = 0; i < nkeys; i++) {
		uint64_t h = key_hash(keys[i]);

		s[i] = &local_slots[h % LOCAL_SLOTS];
		if (s[i]->key != h) {
			s[i]->key = h;
			s[i]->tat = 0;
		}
		tats[i] = s[i]->tat < now ? now : s[i]->tat;
		if (tats[i] - now > tau[i]) {
			pthread_mutex_unlock(&local_mu);
			return (long long)(tats[i] - now - tau[i]);
		}
	}
	for (int i = 0; i < nkeys; i++)
		s[i]->tat = tats[i] + T[i];
	pthread_mutex_unlock(&local_mu);
	return 0;
}

long rl_check(struct nc_worker *w, const struct rl_config *rc, enum rl_class cls,
	      const char *user_id, const char *client_addr, const struct rl_bucket *own)
{
	char keys[RL_MAX_KEYS][160];
	long long T[RL_MAX_KEYS], tau[RL_MAX_KEYS], wait;
	int n = 0;

	if (cls >= RL_CLASS_MAX)
		return 0;
	if (rc->ip.count > 0 && client_addr != NULL && *client_addr != '\0') {
		snprintf(keys[n], sizeof(keys[n]), RL_KEY_PREFIX "ip:%s", client_addr);
		T[n] = (long long)rc->ip.window_s * 1000000 / rc->ip.count;
		tau[n] = (long long)rc->ip.window_s * 1000000 - T[n];
		n++;
	}
	if (rc->user[cls].count > 0 && user_id != NULL && *user_id != '\0') {
		const struct rl_limit *l = &rc->user[cls];

		snprintf(keys[n], sizeof(keys[n]), RL_KEY_PREFIX "%s:%s", rl_class_name(cls), user_id);
		T[n] = (long long)l->window_s * 1000000 / l->count;
		tau[n] = (long long)l->window_s * 1000000 - T[n];
		n++;
	}
	if (own != NULL && own->count > 0 && own->window_s > 0 && own->key[0] != '\0') {
		snprintf(keys[n], sizeof(keys[n]), RL_KEY_PREFIX "own:%s", own->key);
		T[n] = (long long)own->window_s * 1000000 / own->count;
		tau[n] = (long long)own->window_s * 1000000 - T[n];
		n++;
	}
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (T[i] < 1)
			T[i] = 1;
	wait = w != NULL && w->rds_ok ? redis_check(w, n, keys, T, tau) : -1;
	if (wait < 0)
		wait = local_check(n, keys, T, tau);
	/* microseconds to the milliseconds the caller turns into Retry-After */
	return (long)((wait + 999) / 1000);
}
