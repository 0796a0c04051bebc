/*
 * api.h - the HTTP handlers of every resource, and the route table.
 *
 * Each resource module exports a route table (terminated by a NULL pattern);
 * api_routes() joins them once at start-up.  Handlers are plain functions of
 * a request context (see http.h), run on a worker thread unless the route is
 * marked ROUTE_ON_LOOP.
 */
#ifndef NC_API_H
#define NC_API_H

#include "http.h"

extern const struct route health_routes[];     /* api_health.c */
extern const struct route calls_routes[];      /* api_calls.c */
extern const struct route webhook_routes[];    /* webhook.c */
extern const struct route recordings_routes[]; /* api_recordings.c */
extern const struct route streams_routes[];    /* api_streams.c */
extern const struct route events_routes[];     /* sse.c */
extern const struct route governance_routes[]; /* api_governance.c */
extern const struct route gdpr_routes[];       /* api_gdpr.c */
extern const struct route reports_routes[];    /* reports_api.c */

/* The joined table (built on first call, lives for the process). */
const struct route *api_routes(void);

/* api_health.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_me(struct req *r);

#endif
