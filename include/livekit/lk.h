/*
 * lk.h - LiveKit: access tokens (lk_token.c), the Twirp server-API client
 * (lk_twirp.c) and the `nchat-rtc token` dev command (cmd_token.c).
 *
 * Ownership: every lk_* call that returns a protobuf-c message returns a new
 * message the caller frees with protobuf_c_message_free_unpacked(&m->base,
 * NULL); request messages are borrowed.  Strings returned as char * are
 * malloc'd and freed by the caller.
 */
#ifndef NC_LK_H
#define NC_LK_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/common.h"
#include "core/config.h"

#include "livekit_models.pb-c.h"
#include "livekit_room.pb-c.h"
#include "livekit_room_data.pb-c.h"
#include "livekit_egress.pb-c.h"
#include "livekit_ingress.pb-c.h"

/* ---- tokens (lk_token.c) ---- */

/* A grant key whose absence means something other than false. */
enum lk_tri { LK_UNSET = 0, LK_FALSE, LK_TRUE };

/* Bits of lk_grant.sources, written as canPublishSources names. */
enum lk_source {
	LK_SRC_CAMERA = 1 << 0,             /* "camera" */
	LK_SRC_MICROPHONE = 1 << 1,         /* "microphone" */
	LK_SRC_SCREEN_SHARE = 1 << 2,       /* "screen_share" */
	LK_SRC_SCREEN_SHARE_AUDIO = 1 << 3, /* "screen_share_audio" */
};

/*
 * The `video` grant.  Zero-initialise it and set what you need: false bools,
 * LK_UNSET, NULL room and sources == 0 leave the key out of the token.
 */
struct lk_grant {
	const char *room;
	bool room_join;
	bool room_admin;
	bool room_create;
	bool room_list;
	bool room_record;
	bool ingress_admin;
	enum lk_tri can_publish;      /* absent = true on the server */
	enum lk_tri can_subscribe;    /* absent = true */
	enum lk_tri can_publish_data; /* absent = value of canPublish */
	unsigned sources;             /* LK_SRC_* bits; 0 = key absent (all sources) */
	bool can_update_own_metadata;
	bool hidden;
	bool recorder;
};

struct lk_token_opts {
	const char *identity;   /* sub; NULL = absent */
	const char *name;       /* NULL = absent */
	const char *metadata;   /* NULL = absent */
	json_t *attributes;     /* borrowed object of strings; NULL = absent */
	int ttl_s;              /* exp = now + ttl_s (must be > 0) */
	struct lk_grant grant;
};

/*
 * Mint an HS256 LiveKit access token: iss = key, nbf = now, exp = now +
 * ttl_s, plus the claims in o.  Returns a malloc'd compact JWT, or NULL on
 * bad arguments (empty key/secret, ttl_s <= 0) or a libjwt failure.
 */
char *lk_token_mint(const char *key, const char *secret,
		    const struct lk_token_opts *o, int64_t now) NC_MUSTCHECK;

/*
 * lk_token_mint, or again a token lk_token_mint_reuse minted in this process
 * for the same key, secret and claims (all but nbf and exp) while it is at
 * most a tenth of its lifetime old.  *exp_out is the token's own exp: a
 * token handed out again is never extended.  Thread-safe: one table for the
 * process, emptied by lk_token_cache_release (each worker calls it as it
 * stops).
 */
char *lk_token_mint_reuse(const char *key, const char *secret, const struct lk_token_opts *o,
			  int64_t now, int64_t *exp_out) NC_MUSTCHECK;
void lk_token_cache_release(void);

/* The `video` claim object for g (new reference; may be an empty object). */
json_t *lk_grant_json(const struct lk_grant *g);

/* LK_SRC_* bit for a source name (case-insensitive), 0 if unknown. */
unsigned lk_source_parse(const char *name);

/* ---- Twirp client (lk_twirp.c) ---- */

/* Cap on a LiveKit response body. */
#define LK_MAX_RESPONSE (4u * 1024 * 1024)

/* One per worker thread: owns a reusable curl handle (keep-alive). */
struct lk_client {
	const struct nc_config *cfg; /* borrowed, must outlive the client */
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *body;                  /* response buffer of the current call */
	size_t body_len;
	size_t body_cap;
	bool body_overflow;
	uint64_t rng;                /* jitter state */
};

/*
 * Outcome of one call.  err is NC_OK, NC_ENOTFOUND, NC_EBADREQ,
 * NC_ECONFLICT, NC_ELIVEKIT (LiveKit said no) or NC_ELIVEKIT_DOWN
 * (unreachable, timed out, unavailable).  twirp_code keeps LiveKit's code so
 * callers can tell "room not found" (not_found) from other errors; it is ""
 * on success, on transport failures and for non-Twirp bodies.
 */
struct lk_status {
	enum nc_err err;
	int http_status;        /* 0 when no HTTP answer came */
	char twirp_code[32];
	char msg[160];          /* LiveKit's msg or the transport error; never a token */
	int attempts;           /* HTTP attempts made */
};

/* 0, or -1 if curl could not make a handle.  curl_global_init is the caller's. */
int lk_client_init(struct lk_client *c, const struct nc_config *cfg) NC_MUSTCHECK;
void lk_client_cleanup(struct lk_client *c);

/* True if the call failed with Twirp code `code` (e.g. "not_found"). */
bool lk_status_is(const struct lk_status *st, const char *code);
/* Copy st into e (message "livekit <code>: <msg>") and return st->err. */
enum nc_err lk_status_error(const struct lk_status *st, struct nc_error *e);
/* Twirp code string -> nc_err (the mapping table documented in lk_twirp.c). */
enum nc_err lk_twirp_code_err(const char *code);

/* RoomService.  Each returns NULL on error with *st filled. */
Livekit__Room *lk_create_room(struct lk_client *c,
	const Livekit__CreateRoomRequest *req, struct lk_status *st);
Livekit__ListRoomsResponse *lk_list_rooms(struct lk_client *c,
	const Livekit__ListRoomsRequest *req, struct lk_status *st);
Livekit__DeleteRoomResponse *lk_delete_room(struct lk_client *c,
	const Livekit__DeleteRoomRequest *req, struct lk_status *st);
Livekit__ListParticipantsResponse *lk_list_participants(struct lk_client *c,
	const Livekit__ListParticipantsRequest *req, struct lk_status *st);
Livekit__ParticipantInfo *lk_get_participant(struct lk_client *c,
	const Livekit__RoomParticipantIdentity *req, struct lk_status *st);
Livekit__RemoveParticipantResponse *lk_remove_participant(struct lk_client *c,
	const Livekit__RoomParticipantIdentity *req, struct lk_status *st);
Livekit__MuteRoomTrackResponse *lk_mute_published_track(struct lk_client *c,
	const Livekit__MuteRoomTrackRequest *req, struct lk_status *st);
Livekit__ParticipantInfo *lk_update_participant(struct lk_client *c,
	const Livekit__UpdateParticipantRequest *req, struct lk_status *st);
Livekit__SendDataResponse *lk_send_data(struct lk_client *c,
	const Livekit__SendDataRequest *req, struct lk_status *st);
Livekit__Room *lk_update_room_metadata(struct lk_client *c,
	const Livekit__UpdateRoomMetadataRequest *req, struct lk_status *st);

/* Egress. */
Livekit__EgressInfo *lk_start_room_composite_egress(struct lk_client *c,
	const Livekit__RoomCompositeEgressRequest *req, struct lk_status *st);
Livekit__EgressInfo *lk_start_track_composite_egress(struct lk_client *c,
	const Livekit__TrackCompositeEgressRequest *req, struct lk_status *st);
Livekit__EgressInfo *lk_stop_egress(struct lk_client *c,
	const Livekit__StopEgressRequest *req, struct lk_status *st);
Livekit__ListEgressResponse *lk_list_egress(struct lk_client *c,
	const Livekit__ListEgressRequest *req, struct lk_status *st);
Livekit__EgressInfo *lk_update_layout(struct lk_client *c,
	const Livekit__UpdateLayoutRequest *req, struct lk_status *st);

/* Ingress (proto2 messages: set has_<field> for the scalars you fill). */
Livekit__IngressInfo *lk_create_ingress(struct lk_client *c,
	const Livekit__CreateIngressRequest *req, struct lk_status *st);
Livekit__IngressInfo *lk_update_ingress(struct lk_client *c,
	const Livekit__UpdateIngressRequest *req, struct lk_status *st);
Livekit__ListIngressResponse *lk_list_ingress(struct lk_client *c,
	const Livekit__ListIngressRequest *req, struct lk_status *st);
Livekit__IngressInfo *lk_delete_ingress(struct lk_client *c,
	const Livekit__DeleteIngressRequest *req, struct lk_status *st);

/* ---- `nchat-rtc token` (cmd_token.c) ---- */

/*
 * argv[0] is the subcommand name ("token").  Prints a token on stdout.
 * Returns the process exit code: 0 ok, 1 failure, 2 bad arguments.
 */
int cmd_token(int argc, char **argv, const struct nc_config *cfg);

#endif
