/*
 * sse.h - Server-Sent Events for realtime updates, across instances.
 *
 * A client opens GET /api/events (user events) or /api/events?stream=<id>
 * (plus that stream's events).  A worker authenticates and authorises the
 * request (GET /api/events, sse_events.c) and describes the subscription in a struct sse_spec;
 * the loop thread then hands the connection to the hub, which keeps it for
 * the rest of its life: SSE connections never occupy a worker.
 *
 * Every instance holds one Redis pattern subscription (nchat:rt:*) and
 * delivers each event to its own connections of that topic.  Events are
 * written by rt_publish (realtime/events.c) to a capped Redis stream per topic as
 * well, so a client that reconnects with Last-Event-ID gets what it missed.
 * An event id carries the client's position in each of its topics:
 * "u<ms>-<seq>,s<ms>-<seq>" (user topic, stream topic).
 */
#ifndef NC_SSE_H
#define NC_SSE_H

#include "core/common.h"
#include "core/config.h"
#include "http/router.h"

/*
 * Redis names of the realtime fan-out: publishers (realtime/events.c) write
 * "<id> <json>" to RT_CHANNEL_PREFIX<topic> and append it to the capped
 * replay stream RT_LOG_PREFIX<topic>; the hub subscribes to the pattern.
 */
#define RT_CHANNEL_PREFIX "nchat:rt:"   /* + "user:<id>" / "stream:<id>" */
#define RT_LOG_PREFIX "nchat:rtlog:"    /* + same topic: the replay stream */
#define RT_LOG_MAXLEN 1000
#define RT_LOG_TTL_MS (10 * 60 * 1000)

struct event_base;
struct evhttp_request;
struct req;
struct sse_hub;

#define SSE_MAX_TOPICS 2

/* What a worker decided a new SSE connection subscribes to. */
struct sse_spec {
	char user_id[37];                 /* "" for an anonymous stream viewer */
	int64_t exp;                      /* token expiry (0 = none: anonymous) */
	int n_topics;
	char topics[SSE_MAX_TOPICS][64];  /* "user:<id>", "stream:<id>" */
	char positions[SSE_MAX_TOPICS][48]; /* from Last-Event-ID, "" = live only */
	char client_addr[64];             /* the client's address (set by the server) */
};

struct sse_hub *sse_hub_new(struct event_base *base, const struct nc_config *cfg);
/*
 * Take over evreq as an event stream described by spec (copied).  Returns 0,
 * or an HTTP status (429 too many connections: SSE_MAX_PER_USER for a user,
 * SSE_MAX_ANONYMOUS_PER_ADDRESS for anonymous viewers from one client
 * address; 503 shutting down) for the caller to answer normally instead.
 */
int sse_hub_attach(struct sse_hub *hub, struct evhttp_request *evreq, const struct sse_spec *spec);
/* End every stream politely (server shutdown); new attaches are refused. */
void sse_hub_shutdown(struct sse_hub *hub);
void sse_hub_free(struct sse_hub *hub);
/* Open connections (for metrics and tests). */
size_t sse_hub_count(const struct sse_hub *hub);

/* Parse "u<id>,s<id>" into spec->positions by topic kind. */
void sse_parse_last_event_id(const char *last_id, struct sse_spec *spec);
/* Compare two Redis stream ids ("ms-seq"); <0, 0, >0. */
int sse_id_cmp(const char *a, const char *b);

/* GET /api/events (sse_events.c; a route_fn, see router.h). */
extern const struct route events_routes[];

#endif
