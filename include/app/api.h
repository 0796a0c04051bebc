/*
 * api.h - the route table of the whole service.
 *
 * Each module exports its own route table (terminated by a NULL pattern) in
 * its header; api_routes() joins them once at start-up.  Handlers are plain
 * functions of a request context (see http/http.h), run on a worker thread
 * unless the route is marked ROUTE_ON_LOOP.
 */
#ifndef NC_API_H
#define NC_API_H

#include "http/router.h"

/* The joined table (built on first call, lives for the process). */
const struct route *api_routes(void);

#endif
