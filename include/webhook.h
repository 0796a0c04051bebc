/*
 * webhook.h - the LiveKit webhook receiver (POST /api/webhooks/livekit).
 *
 * LiveKit signs each delivery with a JWT in the Authorization header (raw,
 * no "Bearer "): HS256 with the secret of the API key named by `iss`, and a
 * `sha256` claim holding the standard base64 (padded) SHA-256 of the exact
 * body bytes.  webhook_verify checks exactly that; the handler then applies
 * the event once (event id unique in Postgres, same transaction) and in an
 * order-tolerant way (createdAt against each row's last_event_at).
 */
#ifndef NC_WEBHOOK_H
#define NC_WEBHOOK_H

#include "common.h"
#include "config.h"

#include <jansson.h>

/*
 * Verify a webhook's Authorization value against keys (several pairs for
 * rotation) at time now with leeway_s for exp/nbf.  0 when valid; -1 with a
 * short reason in why (never the token or a secret).
 */
int webhook_verify(const struct cfg_keypair *keys, size_t n_keys, int leeway_s,
		   const char *authorization, const char *body, size_t body_len, int64_t now,
		   char *why, size_t whylen) NC_MUSTCHECK;

enum wh_kind { WH_OTHER, WH_PARTICIPANT, WH_TRACK, WH_ROOM, WH_EGRESS, WH_INGRESS };

/*
 * A verified delivery's body as the receiver reads it, before any database
 * work: LiveKit's WebhookEvent in protobuf JSON (int64 as strings or
 * numbers, enums by name).  Strings point into root.
 */
struct wh_event {
	json_t *root;                /* the parsed body (owned) */
	const char *event;           /* event name, not empty */
	const char *id;              /* event id, 1..200 bytes */
	int64_t created_at;          /* createdAt (unix seconds); 0 when absent or not a number */
	const char *room_name;       /* room.name, or NULL */
	enum wh_kind kind;
	bool up;                     /* joined / published / started (false: left, unpublished, finished) */
	char call_id[37];            /* the call of a "call-<uuid>" room, or "" */
	const char *identity;        /* participant.identity when it is a UUID (one of our users), or NULL */
	const char *participant_sid; /* participant.sid, or "" */
	int64_t joined_at;           /* participant.joinedAt; 0 when absent */
	const char *track_column;    /* track events: the participant column the track drives, or NULL */
	json_t *info;                /* egressInfo / ingressInfo when an object (borrowed), or NULL */
};

/*
 * Decode body into *out.  0, or -1 with a short reason in why (the body is
 * not a JSON object with a non-empty "event" and an "id" of 1..200 bytes);
 * out needs webhook_event_free either way.  Pure: no I/O, any input.
 */
int webhook_decode(const char *body, size_t len, struct wh_event *out, char *why,
		   size_t whylen) NC_MUSTCHECK;
void webhook_event_free(struct wh_event *ev);

/* Deliveries refused with 401 since start-up (metrics later). */
unsigned long webhook_rejected_count(void);

#endif
