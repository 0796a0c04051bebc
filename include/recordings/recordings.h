/*
 * recordings.h - call recordings: LiveKit room-composite egress to S3, the
 * recording rows' state machine, and what the API handlers
 * (api_recordings.c) and the sweep (sweep_recordings.c) share.
 *
 * The hooks other modules call (recordings_on_egress,
 * recordings_stop_for_call) are declared at the end.
 *
 * Row states (nchat_call_recordings.status): starting -> active -> ending ->
 * completed | failed | aborted, and deleted once the object is gone.  A
 * recording that LiveKit refused to start is `failed` with the error text
 * ("failed to start: ...").  Terminal states are never left by an egress
 * event; older events never overwrite newer ones (last_event_at).
 */
#ifndef NC_RECORDINGS_H
#define NC_RECORDINGS_H

#include "http/auth.h"
#include "core/common.h"
#include "core/config.h"
#include "http/router.h"

#include <jansson.h>
#include <libpq-fe.h>

struct nc_worker;
struct db_conn;

/*
 * The select list every reader of a recording row uses (alias r for
 * nchat_call_recordings); recordings_row_json reads it by these names.
 */
#define REC_TS(col, name) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS " name
#define REC_COLS \
	"r.id, r.call_id, r.livekit_egress_id, r.status, r.object_key, r.file_size_bytes, " \
	"r.duration_seconds, r.resolution, r.layout_type, r.audio_only, r.started_by, " \
	REC_TS("r.started_at", "started_at") ", " REC_TS("r.ended_at", "ended_at") ", " \
	"r.error, r.retention_days, " REC_TS("r.expires_at", "expires_at") ", r.legal_hold, " \
	REC_TS("r.deleted_at", "deleted_at") ", " REC_TS("r.created_at", "created_at")

/* The states of a recording in progress, as an SQL list. */
#define REC_ACTIVE_SQL "('starting', 'active', 'ending')"

/* The API form of one row (camelCase keys; new reference). */
json_t *recordings_row_json(const PGresult *res, int row);
/* The row by id as JSON, read in the current transaction; NULL with err (404 if absent). */
json_t *recordings_row_by_id(struct db_conn *db, const char *rec_id, struct nc_error *err);

/* Options of POST /api/calls/{id}/recording/start (already validated). */
struct rec_start_opts {
	const char *layout;      /* grid | speaker | single-speaker */
	const char *resolution;  /* 720p | 1080p */
	bool audio_only;
	int retention_days;      /* 0 = keep forever */
};

/*
 * Start a recording of call_id for user (RECORDING_ALLOWED decides who may).
 * On success *out is {recordingId, egressId, status}.  Errors: 400 bad id,
 * 404 call not visible, 403 not allowed, 409 call not ringing/active or a
 * recording already in progress, 410 call over, 502/503 LiveKit failure
 * (the row is then `failed` with the error), 503 storage not configured.
 */
enum nc_err recordings_start(struct nc_worker *w, const struct principal *user,
			     const char *call_id, const struct rec_start_opts *o,
			     const char *request_id, json_t **out, struct nc_error *err);

/*
 * Stop the call's recording in progress (StopEgress; not_found and
 * failed_precondition count as already stopped; row -> ending).
 * *out is {recordingId, egressId, status}.  409 when none is in progress.
 */
enum nc_err recordings_stop(struct nc_worker *w, const struct principal *user,
			    const char *call_id, const char *request_id, json_t **out,
			    struct nc_error *err);

/* Publish "call.updated" {callId, recording} to the call's participants (after commit). */
void recordings_publish(struct nc_worker *w, const char *call_id, json_t *recording);

/* Counts of recordings_reconcile_egress. */
struct rec_reconcile {
	int checked;   /* in-progress rows looked at */
	int fixed;     /* rows whose state was brought in line with LiveKit */
	int failed;    /* rows that could not be checked (LiveKit/DB error) */
};

/*
 * Bring rows still starting/active/ending (untouched for a minute) in line
 * with ListEgress: an egress LiveKit reports finished is applied like its
 * webhook; an egress LiveKit does not know is `aborted`; a row that never got
 * an egress id after 5 minutes is `failed`.  At most limit rows.  0 or -1.
 */
int recordings_reconcile_egress(struct nc_worker *w, int limit, struct rec_reconcile *out,
				struct nc_error *err);

/* After an egress event committed: apply S3_SSE to a just-completed recording
 * (recordings_egress.c, with recordings_on_egress and the reconciliation). */
void recordings_after_egress(struct nc_worker *w, const char *egress_id);

/* The recordings routes (api_recordings.c). */
extern const struct route recordings_routes[];

/*
 * LiveKit egress events handed over by the webhook receiver: 1 when the
 * event was applied to a recording row, 0 when the egress is not one of
 * ours, -1 on error (err set; the webhook answers 5xx so LiveKit retries).
 * created_at is the event's createdAt (unix seconds); rows keep the newest
 * createdAt they applied and ignore older events.
 */
int recordings_on_egress(struct nc_worker *w, const char *event, json_t *egress_info,
			 int64_t created_at, struct nc_error *err);

/*
 * Stop the active recording of a call, if any (StopEgress, row -> ending).
 * Called by the calls module when a call ends, outside any transaction.
 */
enum nc_err recordings_stop_for_call(struct nc_worker *w, const char *call_id,
				     struct nc_error *err);

/* `nchat-rtc sweep-recordings` (argv[0] is the subcommand name). */
int cmd_sweep_recordings(int argc, char **argv, const struct nc_config *cfg);

#endif
