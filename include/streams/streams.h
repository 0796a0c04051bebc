/*
 * streams.h - live streams: the pieces shared by the stream modules.
 *
 *   streams.c      loading a stream and deciding who may do what with it,
 *                  the LiveKit side of the lifecycle (room, RTMP ingress,
 *                  HLS egress) and the webhook hooks below;
 *   api_streams.c  create/start/end/keys/tokens/list/get/analytics handlers
 *                  (streams_routes);
 *   stream_chat.c  chat and reactions handlers (stream_chat_routes);
 *   reactions.c    reactions written in batches across workers (streams_react);
 *   viewers.c      viewer sessions, the viewer token and the Redis viewer
 *                  count (viewers_routes).
 * Each file's handlers are route_fns (http/router.h): they return their
 * errors, and the route table declares the UUID {id} and the JSON body.
 *
 * Access model (documented in etc/openapi.d/streams.paths.yaml):
 *   broadcaster  the user who created the stream;
 *   staff        admins and moderators: may view, end, revoke, moderate any stream;
 *   member       a member of the stream's channel: may view and take part;
 *   public       while a stream is live and STREAMS_PUBLIC_WHILE_LIVE is on (the
 *                default), anyone, signed in or not, may view it.
 * A caller who may not view a stream gets 401 when anonymous, and 404 when
 * signed in (as if it did not exist: a private stream is not confirmed).
 */
#ifndef NC_STREAMS_H
#define NC_STREAMS_H

#include "core/combine.h"
#include "core/common.h"
#include "core/config.h"
#include "http/http.h"
#include "streams/streams_db.h"

#include <jansson.h>

struct nc_worker;

/* What a handler needs of the caller (bits). */
enum stream_need {
	STREAM_NEED_VIEW = 1 << 0,   /* may view (see the access model) */
	STREAM_NEED_OWNER = 1 << 1,  /* the broadcaster */
	STREAM_NEED_MANAGE = 1 << 2, /* the broadcaster or staff */
};

/* One stream as loaded for a request, with the caller's rights on it. */
struct stream_ctx {
	char id[37];
	char channel_id[37];     /* "" when the channel is gone */
	char broadcaster_id[37]; /* "" when the user is gone */
	char status[16];
	char *room_name;         /* owned */
	char *ingress_id;        /* owned, NULL if none */
	char *egress_id;         /* owned, NULL if none */
	bool enable_chat;
	bool enable_reactions;
	int slow_mode_s;
	bool is_broadcaster;
	bool is_member;
	bool is_staff;
	bool can_view;
};

/*
 * Validate the id (400), BEGIN a service transaction, load the stream (404),
 * compute the caller's rights and check `need` (401/403; with any need, 404
 * for a signed-in caller who may not view the stream).  need 0 (a viewer's
 * own session) checks nothing.  On NC_OK the
 * transaction is left open for the caller (commit or roll back); on error it
 * is rolled back and err is set.  for_update locks the row.
 */
enum nc_err streams_open(struct req *r, const char *id, unsigned need, bool for_update,
			 struct stream_ctx *s, struct nc_error *err) NC_MUSTCHECK;
void stream_ctx_cleanup(struct stream_ctx *s);

/* What a handler does with the stream streams_run loaded (see there). */
typedef enum nc_err (*stream_step)(struct req *r, struct stream_ctx *s, void *arg,
				   struct nc_error *err);
/*
 * The body of a handler on /api/streams/{id}...: open the stream the {id}
 * parameter names (streams_open with need and for_update), run step on it
 * with arg, release it.  Returns what streams_open or step returned; the
 * transaction step leaves open on an error is dispatch's to roll back.
 */
enum nc_err streams_run(struct req *r, unsigned need, bool for_update, stream_step step, void *arg,
			struct nc_error *err) NC_MUSTCHECK;

/* The caller as the statements see them (streams_db.h). */
struct streams_caller streams_caller_of(const struct req *r);

/* One reaction to write, and what came of it. */
struct streams_react_job {
	struct comb_item link;          /* first: the combiner hands these back */
	struct streams_reaction_in in;
	struct streams_reaction out;    /* when rc is NC_OK */
	enum nc_err rc;
	struct nc_error err;            /* when it is not */
};
/*
 * Write one reaction, in the same statement as those of every other worker
 * waiting to write one at this moment (core/combine.h); db is this
 * worker's connection (a batch runs on its leader's).
 */
void streams_react(struct db_conn *db, struct streams_react_job *job);
/*
 * What one batch of streams_react does: every job in one statement; if a
 * row's data fails it (a foreign key, a check, a unique key), each job on
 * its own, so that no reaction fails for another's sake; any other failure
 * is every job's.  Public for the tests.
 */
void streams_react_batch(struct db_conn *db, struct streams_react_job *const *jobs, size_t n);

/* True if status is 'ended' or 'failed' (no more chat, reactions, viewers). */
bool streams_is_over(const struct stream_ctx *s);

/* Redis keys. */
#define STREAMS_VIEWERS_KEY "nchat:stream:viewers:"  /* + stream id: zset session -> ms */

/* ---- stream keys and LiveKit (streams.c) ---- */

/* "sha256:<64 hex>" of key into out. */
void streams_key_hash(const char *key, char out[72]);
/* Last four characters of key. */
void streams_key_last4(const char *key, char out[5]);

/* A new RTMP ingress (all owned). */
struct streams_ingress {
	char *ingress_id;
	char *stream_key;
	char *url;
};
void streams_ingress_cleanup(struct streams_ingress *in);

/*
 * LiveKit calls.  Each returns NC_OK or the mapped LiveKit error (502/503);
 * "not found" counts as success for the delete/stop/disable calls, and
 * "already ending" (failed_precondition) too for StopEgress.
 */
enum nc_err streams_lk_ensure_room(struct nc_worker *w, const char *room, struct nc_error *err);
enum nc_err streams_lk_delete_room(struct nc_worker *w, const char *room, struct nc_error *err);
enum nc_err streams_lk_new_ingress(struct nc_worker *w, const char *stream_id, const char *room,
				   const char *identity, const char *name,
				   struct streams_ingress *out, struct nc_error *err);
enum nc_err streams_lk_delete_ingress(struct nc_worker *w, const char *ingress_id,
				      struct nc_error *err);
enum nc_err streams_lk_disable_ingress(struct nc_worker *w, const char *ingress_id,
				       struct nc_error *err);
/* RoomComposite egress (layout speaker) with one HLS SegmentedFileOutput to S3. */
enum nc_err streams_lk_start_hls(struct nc_worker *w, const char *stream_id, const char *room,
				 char **egress_id, struct nc_error *err);
/* egress ids beginning "pending:" (a /start in progress) are skipped. */
enum nc_err streams_lk_stop_egress(struct nc_worker *w, const char *egress_id,
				   struct nc_error *err);
/* The public URL of the stream's live playlist (malloc'd). */
char *streams_hls_url(const struct nc_config *cfg, const char *stream_id);

/*
 * A LiveKit token for the stream's room: publisher (camera, microphone,
 * screen share and its audio, data) or subscribe-only viewer (hidden);
 * *expires_at its exp (a token minted for the same person and room moments
 * ago is handed out again: lk_token_mint_reuse).  NULL when LiveKit keys
 * are not configured.
 */
char *streams_mint_token(const struct nc_config *cfg, const char *identity, const char *name,
			 const char *room, bool publisher, int64_t *expires_at);

/* ---- viewers.c ---- */

/*
 * Current viewers from Redis (sessions whose last heartbeat is within
 * VIEWER_HEARTBEAT_TIMEOUT_SECONDS); -1 when Redis is unavailable.
 */
long viewers_current(struct nc_worker *w, const char *stream_id);
/*
 * Recount the stream's viewers; when the count differs from
 * nchat_streams.current_viewers, store it (the peak trigger follows) and
 * publish stream.viewers.  Runs its own short transaction: call it with no
 * transaction open.  Best effort: Redis or Postgres trouble is logged only.
 */
void viewers_refresh(struct nc_worker *w, const char *stream_id);

/*
 * An anonymous client's key for counting and bounding its viewer sessions:
 * a keyed hash (HMAC-SHA256 with the JWT key) of its address, so the
 * address itself is never stored.  Hex, STREAMS_CLIENT_KEY_LEN characters.
 */
#define STREAMS_CLIENT_KEY_LEN 32
void streams_client_key(const struct nc_config *cfg, const char *addr,
			char out[STREAMS_CLIENT_KEY_LEN + 1]);

/* Viewer sessions and the viewer token (viewers.c). */
extern const struct route viewers_routes[];

/* ---- stream_chat.c ---- */

/* Chat and reactions (stream_chat.c). */
extern const struct route stream_chat_routes[];

/*
 * Whole-word, case-insensitive (ASCII) match of text against the
 * comma-separated list; returns true if any word of the list occurs.
 */
bool stream_chat_blocked(const char *list, const char *text);

/* Create, lifecycle, keys, tokens, list, get, analytics (api_streams.c). */
extern const struct route streams_routes[];

/* LiveKit egress / ingress events (same contract as recordings_on_egress). */
int streams_on_egress(struct nc_worker *w, const char *event, json_t *egress_info,
		      int64_t created_at, struct nc_error *err);
int streams_on_ingress(struct nc_worker *w, const char *event, json_t *ingress_info,
		       int64_t created_at, struct nc_error *err);

/* Fold the pending counts into the stream rows (sql/0013_stream_counts_append.sql); a periodic job. */
void streams_counters_periodic(struct nc_worker *w, void *arg);

#endif
