/*
 * webhook_event.h - a verified LiveKit webhook body, decoded.
 *
 * The receiver (webhook.c) decodes once, before any database work, and the
 * appliers read these fields by name.  Pure (no I/O, any input): fuzzed
 * alone by test/fuzz/fuzz_webhook_event.c.
 */
#ifndef NC_WEBHOOK_EVENT_H
#define NC_WEBHOOK_EVENT_H

#include "core/common.h"

#include <jansson.h>

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

#endif
