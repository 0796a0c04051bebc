/*
 * presence.h - who is in which call, kept in Redis.
 *
 *   nchat:presence:call:<call id>  set of user ids present in the call
 *   nchat:busy:<user id>           the call id the user is in
 *
 * Both expire after PRESENCE_TTL_SECONDS and are refreshed when a user
 * joins (API or participant_joined webhook) and by each reconciliation
 * sweep for the participants LiveKit still lists, so an instance that
 * crashes leaves nothing stale for longer than the TTL.  Redis only holds
 * derived state: every function is best effort and a Redis outage never
 * fails a request (the flags are then left out of responses).
 */
#ifndef NC_PRESENCE_H
#define NC_PRESENCE_H

#include "core/common.h"

#include <jansson.h>

struct nc_worker;

void presence_join(struct nc_worker *w, const char *call_id, const char *user_id);
void presence_leave(struct nc_worker *w, const char *call_id, const char *user_id);
/* The call ended: drop its set and the busy keys that point at it (user ids borrowed). */
void presence_end_call(struct nc_worker *w, const char *call_id, json_t *user_ids);

/*
 * Add "present" and "busy" booleans to every participant object in
 * participants (array of objects with "userId"); nothing is added when Redis
 * is unavailable.  0 when the flags were added, -1 otherwise.
 */
int presence_annotate(struct nc_worker *w, const char *call_id, json_t *participants);

#endif
