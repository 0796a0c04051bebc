/*
 * calls_db.h - every statement on the call tables (nchat_calls,
 * nchat_call_participants, nchat_webrtc_connections) that the calls
 * handlers, the LiveKit webhook receiver and the call sweep send.  Each is a
 * named function that returns a typed result; rows are read by column name
 * (db_get and friends), never by position.  The handlers hold no SQL.
 *
 * Unless a function says it opens its own transaction ("own round trip"),
 * it runs inside the caller's service transaction.  The hot paths (join,
 * the initiate check and insert, the webhook's participant and track
 * events) are one statement each in a transaction of their own, one round
 * trip (db_exec_service: the identity and the statement pipelined,
 * committed at the sync point): see the functions of sql/0008_hot_paths.sql
 * and sql/0012_webhook_participant.sql they call.
 *
 * Who may read a call (defence in depth: the predicates are in these
 * statements themselves, whatever row-level security does): a participant
 * who was not removed, or a member of the call's channel who was not
 * removed from it.  The history lists only calls the caller took part in;
 * for a call they were removed from it keeps a line with their own row only.
 */
#ifndef NC_CALLS_DB_H
#define NC_CALLS_DB_H

#include "core/common.h"
#include "store/db.h"

#include <jansson.h>

/* A call as loaded for a state change. */
struct call_row {
	char id[37];
	char status[16];
	char type[16];
	char room[64];
	char initiator[37];   /* "" when NULL */
	char channel[37];     /* "" when NULL */
	int max_participants; /* the call's own, or the configured cap */
	bool started;         /* started_at is set: some invitee joined */
};

/* The caller's participant row of a call. */
struct part_row {
	bool found;
	char id[37];
	char status[16];
	char role[16];
};

/*
 * Lock the call row (FOR UPDATE) and read it, and the participant row of
 * user_id (locked too) when user_id and p are not NULL.  1 found, 0 no such
 * call, -1 error.
 */
int calls_db_lock(struct db_conn *db, const char *call_id, const char *user_id, int cap,
		  struct call_row *c, struct part_row *p, struct nc_error *err);
/* The call's status, the row locked (FOR UPDATE); 1 found (status filled), 0 none, -1 error. */
int calls_db_lock_status(struct db_conn *db, const char *call_id, bool open_only,
			 char status[16], struct nc_error *err);

/* Is user_id a member of the channel?  1, 0 (also for channel "" / NULL), -1. */
int calls_db_is_channel_member(struct db_conn *db, const char *channel, const char *user_id,
			       struct nc_error *err);
/* Does user_id have a participant row in the call?  1, 0, -1. */
int calls_db_has_participant(struct db_conn *db, const char *call_id, const char *user_id,
			     struct nc_error *err);
/* Participants with status joined; or -1. */
int calls_db_count_joined(struct db_conn *db, const char *call_id, struct nc_error *err);
/* Invitees (role participant) still ringing, invited or joined; or -1. */
int calls_db_count_open_invitees(struct db_conn *db, const char *call_id, struct nc_error *err);
/*
 * The user ids (JSON array of strings, new reference) of every participant
 * who was not removed: whom call events go to.  NULL with err set.
 */
json_t *calls_db_member_ids(struct db_conn *db, const char *call_id, struct nc_error *err);

/* What a participant's own action or a host's action does to their row. */
enum calls_part_change {
	CALLS_PART_DECLINE, /* -> declined */
	CALLS_PART_LEAVE,   /* -> left, left_at now, track flags off */
	CALLS_PART_REMOVE,  /* -> removed, track flags off */
};
enum nc_err calls_db_change_participant(struct db_conn *db, const char *call_id,
					const char *user_id, enum calls_part_change change,
					struct nc_error *err) NC_MUSTCHECK;

/* The participant column a track source drives. */
enum calls_track {
	CALLS_TRACK_AUDIO,  /* is_audio_enabled */
	CALLS_TRACK_VIDEO,  /* is_video_enabled */
	CALLS_TRACK_SCREEN, /* is_screen_sharing */
};
enum nc_err calls_db_set_track(struct db_conn *db, const char *call_id, const char *user_id,
			       enum calls_track track, bool on, struct nc_error *err) NC_MUSTCHECK;

/* Result of closing a call (calls_db_close). */
struct calls_close_result {
	bool closed;      /* this statement closed it (it was open) */
	int participants; /* participant rows closed */
};
/*
 * One statement: the call becomes `status` (with end_reason, ended_at = at
 * or now) only if still open, and only then its open participants are
 * closed (joined -> left, ringing / invited -> missed, track flags off).
 */
enum nc_err calls_db_close(struct db_conn *db, const char *call_id, const char *status,
			   const char *end_reason, const char *at, struct calls_close_result *out,
			   struct nc_error *err) NC_MUSTCHECK;

/* ---- initiate (each its own round trip) ---- */

/* What the initiate check found (calls_db_initiate_check). */
struct calls_initiate_check {
	bool caller_exists;
	char *caller_name;      /* malloc'd, NULL when unknown */
	char missing_user[37];  /* first invitee with no user row, or "" */
	bool channel_exists;    /* (with a channel) */
	bool caller_member;     /* (with a channel) */
	char non_member[37];    /* first named invitee not in the channel, or "" */
	json_t *fill;           /* (channel, no named invitees) up to limit other members */
};
void calls_initiate_check_free(struct calls_initiate_check *c);
/*
 * One read in one round trip: the caller, the invitees (a "{uuid,...}"
 * literal, "{}" for none) and, with a channel, its existence, the caller's
 * and the invitees' membership, or (no invitees) up to limit other members.
 */
enum nc_err calls_db_initiate_check(struct db_conn *db, const char *caller,
				    const char *invitees_literal, const char *channel, int limit,
				    struct calls_initiate_check *out, struct nc_error *err) NC_MUSTCHECK;

/* A new call (calls_db_create). */
struct calls_new {
	const char *id, *room, *type, *initiator, *channel; /* channel may be NULL */
	bool group;
	const char *metadata;          /* JSON object text */
	int max_participants;
	int ring_timeout_s;
	const char *invitees_literal;  /* "{uuid,...}" */
	/* the call.started outgoing webhook: one row per URL ("{}" = none) */
	const char *outbox_urls_literal;
	const char *outbox_payload;
};
/* The call, the initiator (joined), the invitees (ringing) and the outbox rows: one statement, own round trip. */
enum nc_err calls_db_create(struct db_conn *db, const struct calls_new *c,
			    struct nc_error *err) NC_MUSTCHECK;

/* ---- join (own round trip) ---- */

enum calls_join_outcome {
	CALLS_JOIN_NOT_FOUND,
	CALLS_JOIN_OK,
	CALLS_JOIN_FORBIDDEN, /* not invited, not a channel member */
	CALLS_JOIN_GONE,      /* the call is over (status says how) */
	CALLS_JOIN_REMOVED,
	CALLS_JOIN_FULL,      /* max_participants joined already */
};
struct calls_join {
	enum calls_join_outcome outcome;
	char status[16];      /* the call's status after the join */
	char type[16];
	char room[64];
	int max_participants;
	bool rejoin;          /* already joined: nothing written, nothing to announce */
	bool activated;       /* this join answered the call (ringing -> active) */
	char *display_name;   /* the joiner's, malloc'd or NULL */
	json_t *members;      /* whom to tell (calls_db_member_ids), NULL on a re-join */
};
void calls_join_free(struct calls_join *j);
/*
 * Join: one statement.  A participant who is already joined (a client
 * reconnecting) only reads: no lock, no write.  Otherwise
 * nchat_rtc_call_join_write locks the call and decides with fresh reads.
 */
enum nc_err calls_db_join(struct db_conn *db, const char *call_id, const char *user_id, int cap,
			  struct calls_join *out, struct nc_error *err) NC_MUSTCHECK;

/* ---- reading (user context, own transaction) ---- */

struct part_view {
	char *user_id;         /* NULL once pseudonymised */
	char *display_name;
	char role[16];
	char status[16];
	char *invited_at, *joined_at, *left_at;
	long long total_duration_seconds;
	bool audio, video, screen;
};

struct call_view {
	char id[37];
	char room[64];
	char type[16];
	char status[16];
	char *initiator, *channel;
	bool group;
	char *metadata;        /* JSON text */
	long long max_participants; /* -1 when NULL */
	char *end_reason;
	char *initiated_at, *started_at, *ended_at, *ring_expires_at;
	bool recording_active;
	char cursor_ts[40];    /* initiated_at with microseconds, for the history cursor */
	bool removed;          /* the viewer was removed: only their own row is listed */
	struct part_view *parts;
	size_t n_parts;
};
void call_view_free(struct call_view *v);
void call_views_free(struct call_view *v, size_t n);

/* One call as viewer may see it (404 otherwise: *found false). */
enum nc_err calls_db_get(struct db_conn *db, const char *viewer, const char *call_id,
			 struct call_view *out, bool *found, struct nc_error *err) NC_MUSTCHECK;

struct calls_list_filter {
	const char *status;     /* NULL = any */
	const char *channel;    /* NULL = any */
	const char *before_ts;  /* keyset cursor, NULL = first page */
	const char *before_id;
	int limit;              /* rows wanted (one more is read to detect a next page) */
};
/* The viewer's own calls, newest first: *n rows (up to limit + 1). */
enum nc_err calls_db_list(struct db_conn *db, const char *viewer, const struct calls_list_filter *f,
			  struct call_view **out, size_t *n, struct nc_error *err) NC_MUSTCHECK;

/* ---- client stats (user context, own transaction) ---- */

struct calls_stats_row {
	const char *ice, *local_candidate, *remote_candidate, *quality;
	bool turn;
	const char *rtt, *jitter, *loss, *bitrate; /* text or NULL */
};
enum calls_stats_outcome { CALLS_STATS_NOT_FOUND, CALLS_STATS_FORBIDDEN, CALLS_STATS_OK };
/*
 * In the open user transaction: may user_id report on the call (a
 * participant, not removed)?  pid gets the participant id.
 */
enum nc_err calls_db_stats_participant(struct db_conn *db, const char *call_id, const char *user_id,
				       enum calls_stats_outcome *outcome, char pid[37],
				       struct nc_error *err) NC_MUSTCHECK;
/* Insert the report; id and created_at (RFC 3339) of the new row. */
enum nc_err calls_db_stats_insert(struct db_conn *db, const char *call_id, const char *user_id,
				  const char *pid, const struct calls_stats_row *s, char id[37],
				  char created_at[32], struct nc_error *err) NC_MUSTCHECK;

/* ---- LiveKit webhooks ---- */

/* A participant or track event of a call room (calls_db_webhook). */
struct calls_wh_event {
	const char *event_id, *event, *room_name;
	const char *created;     /* unix seconds, text */
	const char *call_id;     /* of a "call-<uuid>" room name, NULL for any other room */
	const char *identity;    /* the participant's identity when one of our users (a user id), else NULL */
	const char *joined_at;   /* unix seconds text, or NULL */
	const char *sid;         /* LiveKit participant sid, or "" */
	/* for track events: the column the track's source drives (none: ignored) */
	bool has_column;
	enum calls_track track;
	bool published;
};
enum calls_wh_kind { CALLS_WH_JOINED, CALLS_WH_LEFT, CALLS_WH_TRACK };
struct calls_wh_result {
	bool duplicate;          /* the event id was applied before */
	bool applied;
	char status[16];         /* the call's status afterwards */
	int presence;            /* +1 joined, -1 left, 0 none */
	json_t *members;         /* when applied: whom to tell */
};
void calls_wh_result_free(struct calls_wh_result *r);
/*
 * Record the event id and apply the event, one statement in one round trip
 * in service context, committed with it (nchat_rtc_webhook_participant,
 * sql/0012_webhook_participant.sql): see webhook.c for the order rules.  An
 * event of another room, of a participant who is not one of our users or of
 * a track that drives no column is recorded and ignored.
 */
enum nc_err calls_db_webhook(struct db_conn *db, enum calls_wh_kind kind,
			     const struct calls_wh_event *e, struct calls_wh_result *out,
			     struct nc_error *err) NC_MUSTCHECK;
/* The members (calls_db_member_ids) in a statement of their own, service context: own round trip. */
json_t *calls_db_member_ids_service(struct db_conn *db, const char *call_id, struct nc_error *err);
/* last_event_at = max(last_event_at, created) of the call. */
enum nc_err calls_db_touch_event(struct db_conn *db, const char *call_id, const char *created,
				 struct nc_error *err) NC_MUSTCHECK;

/* ---- the sweep ---- */

/* Invitees of answered calls past their ring time: missed.  Rows changed or -1. */
int calls_db_sweep_missed_invitees(struct db_conn *db, struct nc_error *err);
/* Up to limit calls still ringing past their ring time (ids, JSON array). */
json_t *calls_db_ring_expired(struct db_conn *db, int limit, struct nc_error *err);
/* Open calls older than grace_s, least recently updated first: {id, room} objects. */
json_t *calls_db_open_calls(struct db_conn *db, int grace_s, int limit, struct nc_error *err);
/*
 * Close joined participants LiveKit no longer lists (present: "{uuid,...}")
 * who either were seen by a webhook or joined more than grace_s ago; their
 * user ids (JSON array) or NULL with err set.
 */
json_t *calls_db_close_absent(struct db_conn *db, const char *call_id, const char *present_literal,
			      int grace_s, struct nc_error *err);

#endif
