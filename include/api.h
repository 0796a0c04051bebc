/*
 * api.h - the HTTP handlers of every resource, and the route table.
 *
 * Each handler is a plain function of a request context (see http.h) run on
 * a worker thread unless its route is marked ROUTE_ON_LOOP.
 */
#ifndef NC_API_H
#define NC_API_H

#include "http.h"

/* The route table, terminated by an entry with a NULL pattern. */
extern const struct route api_routes[];

/* api_health.c */
void api_healthz(struct req *r);
void api_readyz(struct req *r);

#endif
