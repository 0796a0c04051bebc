/*
 * calls.h - call domain logic shared by the HTTP handlers (api_calls.c),
 * the LiveKit webhook receiver (webhook.c) and the reconciliation sweep
 * (sweep_calls.c).
 *
 * A call's LiveKit room is "call-<call uuid>": unique, never reused, so a
 * room name alone identifies the call row.  Every state change of a call or
 * of its participant rows happens inside a service transaction that holds
 * the call row locked (SELECT ... FOR UPDATE), so ending, joining, webhooks
 * and sweeps running at the same time serialise on the call and leave
 * consistent rows.  Side effects outside Postgres (DeleteRoom, realtime
 * events, presence) happen after commit.
 */
#ifndef NC_CALLS_H
#define NC_CALLS_H

#include "core/common.h"
#include "core/uuid.h"
#include "core/config.h"
#include "http/router.h"
#include "store/db.h"

#include <jansson.h>
#include <string.h>

struct nc_worker;

#define CALL_ROOM_PREFIX "call-"

/* True if s is one of the terminal call statuses (ended/missed/declined/failed). */
bool calls_status_terminal(const char *status);

/* The call id of a room name "call-<uuid>" into out; false if not a call room. */
static inline bool calls_room_to_id(const char *room, char out[37])
{
	size_t plen = sizeof(CALL_ROOM_PREFIX) - 1;

	if (room == NULL || strncmp(room, CALL_ROOM_PREFIX, plen) != 0 || !is_uuid(room + plen))
		return false;
	uuid_lower(room + plen, out);
	return true;
}

/*
 * Close a call inside the caller's service transaction (call row already
 * locked by the caller): the call gets `status` (ended / missed / declined),
 * ended_at = at (timestamptz text, NULL = now()) and end_reason; every open
 * participant is closed: joined -> left (left_at = at, the duration trigger
 * adds the session), ringing / invited -> missed.  Does nothing if the call
 * is already terminal.  Returns the number of participant rows closed
 * (>= 0), or -1 with err set.
 */
/* Also writes the call.ended / call.missed / call.declined outgoing webhook. */
int calls_close_tx(const struct nc_config *cfg, struct db_conn *db, const char *call_id, const char *status,
		   const char *end_reason, const char *at, struct nc_error *err);

/* DeleteRoom; not_found counts as success.  NC_OK or the LiveKit error. */
enum nc_err calls_delete_room(struct nc_worker *w, const char *room, struct nc_error *err);

/*
 * After commit: tell every member (user ids in members, borrowed) that the
 * call changed ("call.updated") or ended ("call.ended"), with
 * {callId, status, reason?}.  Best effort.
 */
void calls_publish(struct nc_worker *w, json_t *members, const char *type, const char *call_id,
		   const char *status, const char *reason);

/*
 * After a call ended: DeleteRoom when delete_room (logged on failure, the
 * sweep retries),
 * stop an active recording, clear presence, publish call.ended.
 */
void calls_after_end(struct nc_worker *w, const char *call_id, json_t *members,
		     const char *status, const char *reason, bool delete_room);

/* ---- reconciliation (sweep_calls.c) ---- */

struct calls_sweep_stats {
	int missed;               /* calls that became missed */
	int ended;                /* calls ended because their room was gone / empty */
	int participants_closed;  /* participant rows closed (missed or left) */
	int recordings_fixed;     /* recordings brought in line with ListEgress */
	bool skipped;             /* another instance holds the sweep lock */
};

/* One reconciliation pass on w's connections.  NC_OK or an error. */
enum nc_err calls_sweep(struct nc_worker *w, struct calls_sweep_stats *st, struct nc_error *err);

/* The calls routes: initiate, join, decline, leave (api_calls.c); end, mute,
 * remove (api_calls_host.c); one call, the history, stats (api_calls_read.c). */
extern const struct route calls_routes[];
extern const struct route calls_host_routes[];
extern const struct route calls_read_routes[];

/* Periodic job of `serve` on a timer (http_server_add_periodic; sweep_calls.c). */
void calls_periodic(struct nc_worker *w, void *arg);
/* `nchat-rtc sweep-calls` (argv[0] is the subcommand name). */
int cmd_sweep_calls(int argc, char **argv, const struct nc_config *cfg);

#endif
