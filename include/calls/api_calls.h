/*
 * api_calls.h - what the files of the calls HTTP API share, each of which
 * holds its handlers and their route table:
 *   api_calls.c       initiate, join, decline, leave (calls_routes);
 *   api_calls_host.c  host controls: end, mute, remove (calls_host_routes);
 *   api_calls_read.c  one call, the history, client stats (calls_read_routes).
 * The SQL they run is in calls_db.c / calls_db_read.c.  Handlers return
 * their errors (route_fn); the routes declare the prologue (ROUTE_AUTH,
 * ROUTE_UUID_PARAMS, ROUTE_JSON), checked by dispatch before them.
 */
#ifndef NC_API_CALLS_H
#define NC_API_CALLS_H

#include "calls/calls_db.h"
#include "http/http.h"

#include <jansson.h>

/* The {name} path parameter (a UUID: the route has ROUTE_UUID_PARAMS), lower-cased into out. */
void calls_param(const struct req *r, const char *name, char out[37]);

/*
 * No request body at all.  ROUTE_JSON takes an empty body for {}; the
 * endpoints whose body carries what they do want one (400 otherwise).
 */
static inline bool calls_no_body(const struct req *r)
{
	size_t len = 0;

	(void)req_raw_body(r, &len);
	return len == 0;
}

/* {"callId", "status"} */
json_t *calls_status_body(const char *call_id, const char *status);

#endif
