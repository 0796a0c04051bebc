/*
 * streams_db.h - the statements on the stream tables (nchat_streams,
 * nchat_stream_viewers, nchat_stream_chat_messages, nchat_stream_reactions)
 * that the stream handlers send, each a named function with a typed
 * result; rows are read by column name.
 *
 * The hot paths (chat post, reaction, viewer join, heartbeat) are one
 * statement each, in a transaction of its own, one round trip
 * (db_exec1_service): the stream row, the caller's rights on it and the
 * write, decided together.  The counters they move cost one append-only
 * row each (a trigger's INSERT into nchat_stream_counts_pending,
 * sql/0013_stream_counts_append.sql), folded into the stream row later: no
 * shared row is updated or locked on the way.
 *
 * Who may view a stream (the same rule in C, streams_open, and in the
 * statements): its broadcaster, a member of its channel, staff, or anyone
 * while it is live when STREAMS_PUBLIC_WHILE_LIVE is on.
 */
#ifndef NC_STREAMS_DB_H
#define NC_STREAMS_DB_H

#include "core/common.h"
#include "store/db.h"

#include <jansson.h>

/* SQL timestamp -> RFC 3339 UTC text, for SELECT lists. */
#define STREAMS_TS(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/*
 * A stream row as the JSON object of API responses (one column), with its
 * counters as given: STREAM_JSON_SQL takes them from the row alone (a row
 * just inserted), STREAM_JSON_EXACT_SQL adds what is still pending (the
 * counts not folded into the row yet, sql/0013), which needs
 * STREAM_PENDING_JOIN after "FROM nchat_streams s": exact in the
 * statement's snapshot, whether a fold ran or not.
 */
#define STREAM_JSON_SQL_OF(views, uniques, chat, reactions)                               \
	"json_build_object('id', s.id, 'channel_id', s.channel_id,"                       \
	" 'broadcaster_id', s.broadcaster_id, 'title', s.title,"                          \
	" 'description', s.description, 'status', s.status,"                              \
	" 'livekit_room_name', s.livekit_room_name, 'hls_manifest_url', s.hls_manifest_url," \
	" 'ingest_url', s.ingest_url, 'stream_key_last4', s.stream_key_last4,"            \
	" 'stream_key_revoked_at', " STREAMS_TS("s.stream_key_revoked_at") ","            \
	" 'enable_chat', s.enable_chat, 'enable_reactions', s.enable_reactions,"          \
	" 'chat_slow_mode_seconds', s.chat_slow_mode_seconds,"                            \
	" 'scheduled_at', " STREAMS_TS("s.scheduled_at") ","                              \
	" 'started_at', " STREAMS_TS("s.started_at") ","                                  \
	" 'ended_at', " STREAMS_TS("s.ended_at") ","                                      \
	" 'current_viewers', s.current_viewers, 'peak_viewers', s.peak_viewers,"          \
	" 'total_views', " views ", 'unique_viewers', " uniques ","                       \
	" 'total_chat_messages', " chat ","                                               \
	" 'total_reactions', " reactions ","                                              \
	" 'created_at', " STREAMS_TS("s.created_at") ","                                  \
	" 'updated_at', " STREAMS_TS("s.updated_at") ")"
#define STREAM_JSON_SQL                                                                   \
	STREAM_JSON_SQL_OF("s.total_views", "s.unique_viewers", "s.total_chat_messages",   \
			   "s.total_reactions")
#define STREAM_JSON_EXACT_SQL                                                             \
	STREAM_JSON_SQL_OF("s.total_views + sp.views", "s.unique_viewers + sp.uniques",    \
			   "s.total_chat_messages + sp.chat", "s.total_reactions + sp.reactions")
#define STREAM_PENDING_JOIN " CROSS JOIN LATERAL nchat_rtc_stream_pending(s.id) sp"

/* The caller as the statements see them. */
struct streams_caller {
	const char *user_id;   /* NULL for an anonymous caller */
	bool staff;
	bool public_live;      /* STREAMS_PUBLIC_WHILE_LIVE */
};

/* What every hot-path statement says about the stream. */
struct streams_seen {
	bool found;
	char status[16];
	bool can_view;
	bool over;             /* ended or failed */
	bool is_broadcaster;
};

/* A stream row as loaded for a request (streams_open). */
struct stream_row {
	char id[37];
	char channel_id[37];
	char broadcaster_id[37];
	char status[16];
	char *room_name, *ingress_id, *egress_id; /* malloc'd or NULL */
	bool enable_chat, enable_reactions;
	int slow_mode_s;
	bool is_member;
};
/* In the caller's transaction: 1 found, 0 not, -1 error.  for_update locks the row. */
int streams_db_load(struct db_conn *db, const char *id, const char *user_id, bool for_update,
		    struct stream_row *out, struct nc_error *err);

/* ---- chat post ---- */
struct streams_chat_post {
	struct streams_seen s;
	bool enable_chat;
	int slow_mode_s;
	bool needs_slow_check;  /* slow mode applies and slow_ok was false: nothing written */
	json_t *msg;            /* the new message, or NULL */
};
/*
 * Insert the message if the caller may view the stream, it is not over,
 * chat is on and slow mode lets it (slow_ok: the caller passed the slow
 * mode check already; the broadcaster and staff are exempt).
 */
enum nc_err streams_db_chat_post(struct db_conn *db, const char *stream_id,
				 const struct streams_caller *c, const char *content, bool slow_ok,
				 struct streams_chat_post *out, struct nc_error *err) NC_MUSTCHECK;

/* ---- reaction ---- */
struct streams_reaction {
	struct streams_seen s;
	bool enable_reactions;
	bool session_ok;        /* no session named, or it is the caller's open one */
	char id[37];            /* the new reaction, "" when none was written */
	char created_at[32];
};
/* One reaction: what the stream and the caller's rights allow, and the row if written. */
enum nc_err streams_db_reaction(struct db_conn *db, const char *stream_id,
				const struct streams_caller *c, const char *session_id,
				const char *type, struct streams_reaction *out,
				struct nc_error *err) NC_MUSTCHECK;
struct streams_reaction_in {
	const char *stream_id;      /* a validated UUID */
	struct streams_caller c;
	const char *session_id;     /* NULL: none named */
	const char *type;           /* one of the eight types */
};
/*
 * n reactions (of any streams and callers) in one statement: out[i] is what
 * streams_db_reaction would have said of in[i] (which costs Postgres less
 * for a single one).  Fails as a whole, writing nothing, if any row does;
 * the caller may then retry them one by one.
 */
enum nc_err streams_db_reactions(struct db_conn *db, size_t n, const struct streams_reaction_in *in,
				 struct streams_reaction *out, struct nc_error *err) NC_MUSTCHECK;

/* ---- viewers ---- */
struct streams_viewer_join {
	struct streams_seen s;
	bool too_many;          /* the anonymous client has max_anon open sessions already */
	bool taken;             /* the session id belongs to another viewer */
	bool inserted;          /* a new session (else re-opened) */
	char viewer_id[37];
	char joined_at[32];
};
/*
 * Open (or re-open) the session; client_key (anonymous callers) bounds
 * their open sessions on the stream at max_anon.
 */
enum nc_err streams_db_viewer_join(struct db_conn *db, const char *stream_id,
				   const struct streams_caller *c, const char *session_id,
				   const char *client_key, int max_anon,
				   struct streams_viewer_join *out, struct nc_error *err) NC_MUSTCHECK;

enum streams_beat_outcome {
	STREAMS_BEAT_NO_STREAM,
	STREAMS_BEAT_NO_SESSION,
	STREAMS_BEAT_CLOSED,    /* the session was closed */
	STREAMS_BEAT_OVER,      /* the stream ended */
	STREAMS_BEAT_OK,
};
/* Record a heartbeat of the caller's open session (user_id NULL = anonymous). */
enum nc_err streams_db_heartbeat(struct db_conn *db, const char *stream_id, const char *session_id,
				 const char *user_id, enum streams_beat_outcome *out,
				 struct nc_error *err) NC_MUSTCHECK;

/* Close the caller's session (again: the same answer).  found false: no such session (or stream). */
struct streams_viewer_leave {
	bool found;
	long long watch_duration_seconds;
	char left_at[32];
};
enum nc_err streams_db_viewer_leave(struct db_conn *db, const char *stream_id,
				    const char *session_id, const char *user_id,
				    struct streams_viewer_leave *out, struct nc_error *err) NC_MUSTCHECK;

enum streams_count_write {
	STREAMS_COUNT_WRITTEN, /* current_viewers changed to n */
	STREAMS_COUNT_SAME,    /* it was n already (or the stream is over, or gone) */
	STREAMS_COUNT_BUSY,    /* another writer holds the row: not written, not waited for */
};
/* current_viewers = n, without waiting for the row. */
enum nc_err streams_db_set_current_viewers(struct db_conn *db, const char *stream_id, long n,
					   enum streams_count_write *out,
					   struct nc_error *err) NC_MUSTCHECK;

/* ---- lists ---- */
struct streams_list_filter {
	const char *channel_id, *status, *before; /* NULL = any / first page */
	int limit;                                /* rows wanted; one more is read */
};
/*
 * The streams viewer may list, newest first, as API JSON objects
 * (json array, new reference, up to limit + 1): their own and their
 * channels' streams.  NULL with err set.
 */
json_t *streams_db_list(struct db_conn *db, const char *viewer, const struct streams_list_filter *f,
			struct nc_error *err);

/* ---- a stream's life (streams_db_manage.c; in the caller's transaction) ---- */

/* A user's display name (malloc'd), NULL when unknown or on error. */
char *streams_db_user_name(struct db_conn *db, const char *user_id);

struct streams_create_check {
	bool channel_exists, member;
	char *display_name;     /* malloc'd or NULL */
	bool scheduled;         /* scheduled_at given and in the future */
};
/* 400 "scheduledAt is not a valid date-time" when Postgres cannot read it. */
enum nc_err streams_db_create_check(struct db_conn *db, const char *channel_id, const char *user_id,
				    const char *scheduled_at, struct streams_create_check *out,
				    struct nc_error *err) NC_MUSTCHECK;

struct streams_new {
	const char *id, *channel_id, *broadcaster_id, *title, *description, *status, *room;
	const char *ingress_id, *key_hash, *last4, *ingest_url, *slow_mode, *scheduled_at;
	bool enable_chat, enable_reactions;
};
/* The new stream as its API object, or NULL with err set. */
json_t *streams_db_insert(struct db_conn *db, const struct streams_new *n, struct nc_error *err);

/* livekit_egress_id = egress_id (NULL clears it), only while it is only_if when that is not NULL. */
enum nc_err streams_db_set_egress(struct db_conn *db, const char *id, const char *egress_id,
				  const char *only_if, struct nc_error *err) NC_MUSTCHECK;

struct streams_started {
	bool found;             /* false: ended or reclaimed meanwhile */
	bool was_live;
	char started_at[32];
	char *channel_id, *broadcaster_id, *title;
};
void streams_started_free(struct streams_started *s);
/* The stream is live with its HLS egress, if it still holds claim. */
enum nc_err streams_db_finish_start(struct db_conn *db, const char *id, const char *egress_id,
				    const char *hls, const char *claim, struct streams_started *out,
				    struct nc_error *err) NC_MUSTCHECK;

/*
 * End the stream (if not over), close its open sessions (where their
 * heartbeats stopped), and return the stream.ended payload with the final
 * counts; *found false when it was over already.
 */
json_t *streams_db_end(struct db_conn *db, const char *id, int timeout_s, long *closed,
		       bool *found, struct nc_error *err);
/* The new ingress and key, if the stream still has old_ingress and is not over. */
enum nc_err streams_db_swap_ingress(struct db_conn *db, const char *id, const char *ingress_id,
				    const char *key_hash, const char *last4, const char *ingest_url,
				    const char *old_ingress, bool *swapped, struct nc_error *err) NC_MUSTCHECK;
/* stream_key_revoked_at (kept if set before) into at. */
enum nc_err streams_db_revoke(struct db_conn *db, const char *id, char at[32],
			      struct nc_error *err) NC_MUSTCHECK;

/* ---- reads for the caller (each with its own visibility predicate) ---- */

/* The stream's API object if c may view it; NULL (404) otherwise. */
json_t *streams_db_get(struct db_conn *db, const char *id, const struct streams_caller *c,
		       struct nc_error *err);
/* A chat page (pinned ones first when asked, on the first page); next_before "" when last. */
json_t *streams_db_chat_page(struct db_conn *db, const char *id, const struct streams_caller *c,
			     bool pinned_first, const char *before, int limit, char next_before[37],
			     struct nc_error *err);
/* {stream_id, total, counts, last_minute_total, last_minute} if c may view the stream. */
json_t *streams_db_reaction_summary(struct db_conn *db, const char *id,
				    const struct streams_caller *c, struct nc_error *err);
/* The analytics object (API.md) if c manages the stream (broadcaster or staff). */
json_t *streams_db_analytics(struct db_conn *db, const char *id, int timeout_s,
			     const struct streams_caller *c, struct nc_error *err);

/* ---- chat moderation ---- */
/* The message after (un)pinning, or NULL (404 when it is not there). */
json_t *streams_db_chat_pin(struct db_conn *db, const char *id, const char *message_id,
			    bool pinned, const char *user_id, struct nc_error *err);
/* Lock a message of the stream: 1 (own set), 0 none, -1 error. */
int streams_db_chat_lock(struct db_conn *db, const char *id, const char *message_id,
			 const char *user_id, bool *own, struct nc_error *err);
enum nc_err streams_db_chat_delete(struct db_conn *db, const char *id, const char *message_id,
				   const char *user_id, struct nc_error *err) NC_MUSTCHECK;

/* ---- webhook hooks ---- */
/* Live by the encoder (first of /start and the webhook wins): the stream.live payload when it became live. */
json_t *streams_db_ingress_started(struct db_conn *db, const char *ingress_id, const char *ts,
				   bool *done, struct nc_error *err);
enum nc_err streams_db_ingress_ended(struct db_conn *db, const char *ingress_id, const char *ts,
				     struct nc_error *err) NC_MUSTCHECK;
/* The HLS egress of a live stream is gone: 1 (stream_id set), 0 not a live stream's, -1. */
int streams_db_egress_gone(struct db_conn *db, const char *egress_id, const char *ts,
			   char stream_id[37], struct nc_error *err);
/* Does a stream use this ingress / egress id?  1, 0, -1. */
int streams_db_has_ingress_or_egress(struct db_conn *db, const char *ingress_id,
				     const char *egress_id, struct nc_error *err);

/* The stream using this ingress or egress id: {id, status, hls_manifest_url, started_at}, stream_id; NULL if none. */
json_t *streams_db_status_by_lk_id(struct db_conn *db, const char *lk_id, char stream_id[37],
				   struct nc_error *err);

/*
 * Fold the stream's pending counts (sql/0013) into its row now (own round
 * trip; waits for the row if a fold or a status change holds it): before a
 * read that shows the counters.  Best effort: on failure the read shows
 * them up to a flush late.
 */
void streams_db_sync_counters(struct db_conn *db, const char *stream_id);

/* Fold every stream's pending counts (serve's timer); streams folded or -1. */
int streams_db_flush_counters(struct db_conn *db, struct nc_error *err);

#endif
