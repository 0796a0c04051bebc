/*
 * api_calls.h - what the files of the calls HTTP API share:
 *   api_calls.c       initiate, join, decline, leave, the route table;
 *   api_calls_host.c  host controls: end, mute, remove;
 *   api_calls_read.c  one call, the history, client stats.
 * The SQL they run is in calls_db.c / calls_db_read.c.
 */
#ifndef NC_API_CALLS_H
#define NC_API_CALLS_H

#include "calls/calls_db.h"
#include "http/http.h"

#include <jansson.h>

/* The {name} path parameter as a lower-case UUID; answers 400 and returns false if malformed. */
bool calls_path_uuid(struct req *r, const char *name, char out[37]);
/* Roll back whatever is open and answer err. */
void calls_fail(struct req *r, const struct nc_error *err);
/* {"callId", "status"} */
json_t *calls_status_body(const char *call_id, const char *status);

void api_calls_end(struct req *r);
void api_calls_mute(struct req *r);
void api_calls_remove(struct req *r);
void api_calls_get(struct req *r);
void api_calls_list(struct req *r);
void api_calls_stats(struct req *r);

#endif
