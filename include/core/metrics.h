/*
 * metrics.h - process metrics in the Prometheus text format (GET /metrics).
 *
 * Every recording function is thread-safe and cheap (one uncontended mutex
 * and a few additions); rendering happens on a worker.  Label values come
 * from fixed sets (route patterns, LiveKit method names, webhook event names
 * we know), never from request data, so the number of series is bounded.
 */
#ifndef NC_METRICS_H
#define NC_METRICS_H

#include "core/common.h"


/* Counters without labels. */
enum metric_counter {
	M_DB_ERRORS,             /* failed Postgres commands or connects */
	M_REDIS_ERRORS,          /* failed Redis commands or connects */
	M_WEBHOOK_AUTH_FAILURES, /* LiveKit webhooks refused with 401 */
	M_RATE_LIMITED,          /* requests answered 429 */
	M_SSE_DROPPED_SLOW,      /* event streams cut for not reading */
	M_CONN_CLOSED_IDLE,      /* connections cut by the idle/slow-request guard */
	M_BAD_FRAMING,           /* requests refused for ambiguous framing (400, connection closed) */
	M_REACTION_BATCHES,      /* reaction statements sent (core/combine.h) */
	M_REACTION_BATCHED,      /* reactions those statements carried */
	M_COUNTER_MAX
};

void metrics_inc(enum metric_counter c);
void metrics_add(enum metric_counter c, uint64_t n);
/* One answered HTTP request (route pattern or NULL for unrouted). */
void metrics_http(const char *route, const char *method, int status, double ms);
/* The same request by route class (the rate-limit class: default, initiate, join, chat,
 * reactions, stats, exempt; "unmatched" for no route): counted by status class, timed. */
void metrics_http_class(const char *route_class, int status, double ms);
/* One LiveKit Twirp call: method name, outcome (ok; error: LiveKit answered with an
 * error; unavailable: unreachable, timed out or not configured), its latency. */
void metrics_livekit(const char *method, const char *outcome, double ms);
/* Seconds from a webhook's createdAt to its arrival. */
void metrics_webhook_lag(double seconds);
/* One LiveKit webhook: event name and outcome (applied, duplicate, ignored, rejected, error). */
void metrics_webhook(const char *event, const char *outcome);
/* A sweep result: sweep name, result kind, count. */
void metrics_sweep(const char *sweep, const char *result, long n);
/* The unix time of a sweep's last successful run (set at scrape time). */
void metrics_set_sweep_last(const char *sweep, double unix_s);
/* Gauges sampled at render time. */
void metrics_set_gauge(const char *name, double value);

/* Render everything (malloc'd text). */
char *metrics_render(void);

#endif
