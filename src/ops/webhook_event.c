/*
 * webhook_event.c - LiveKit's WebhookEvent (protobuf JSON) into struct
 * wh_event: the fields the appliers of webhook.c read, checked once.
 */
#include "ops/webhook_event.h"
#include "calls/calls.h"
#include "core/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return -1;
}

/* An int64 that protojson writes as a string (or a plain number); 0 if absent. */
static int64_t json_i64(json_t *v)
{
	long val;

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v) && parse_long(json_string_value(v), 0, INT64_MAX / 2, &val) == 0)
		return (int64_t)val;
	return 0;
}

static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

/* The participant column a track of this source/type drives, or NULL. */
static const char *track_column(json_t *track)
{
	const char *source = json_string_value(json_object_get(track, "source"));
	const char *type = json_string_value(json_object_get(track, "type"));

	if (source == NULL || strcmp(source, "UNKNOWN") == 0) {
		/* absent = UNKNOWN; absent type = AUDIO (enum value 0) */
		if (type == NULL || strcmp(type, "AUDIO") == 0)
			return "is_audio_enabled";
		if (strcmp(type, "VIDEO") == 0)
			return "is_video_enabled";
		return NULL;
	}
	if (strcmp(source, "MICROPHONE") == 0)
		return "is_audio_enabled";
	if (strcmp(source, "CAMERA") == 0)
		return "is_video_enabled";
	if (strcmp(source, "SCREEN_SHARE") == 0)
		return "is_screen_sharing";
	return NULL; /* SCREEN_SHARE_AUDIO and others: no column */
}

static const struct {
	const char *name;
	enum wh_kind kind;
	bool up;
} event_kinds[] = {
	{"participant_joined", WH_PARTICIPANT, true},
	{"participant_left", WH_PARTICIPANT, false},
	{"participant_connection_aborted", WH_PARTICIPANT, false},
	{"track_published", WH_TRACK, true},
	{"track_unpublished", WH_TRACK, false},
	{"room_started", WH_ROOM, true},
	{"room_finished", WH_ROOM, false},
};

void webhook_event_free(struct wh_event *ev)
{
	json_decref(ev->root);
	memset(ev, 0, sizeof(*ev));
}

int webhook_decode(const char *body, size_t len, struct wh_event *out, char *why, size_t whylen)
{
	json_t *root, *pi;
	const char *identity;

	memset(out, 0, sizeof(*out));
	root = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
	out->root = root;
	out->event = json_string_value(json_object_get(root, "event"));
	out->id = json_string_value(json_object_get(root, "id"));
	if (!json_is_object(root) || out->event == NULL || *out->event == '\0')
		return refuse(why, whylen, "not a LiveKit webhook event");
	if (out->id == NULL || *out->id == '\0' || strlen(out->id) > 200)
		return refuse(why, whylen, "the event has no usable id");
	out->created_at = json_i64(json_object_get(root, "createdAt"));
	if (out->created_at < 0)
		out->created_at = 0;
	out->room_name = json_string_value(json_object_get(json_object_get(root, "room"), "name"));
	if (out->room_name != NULL && !calls_room_to_id(out->room_name, out->call_id))
		out->call_id[0] = '\0';
	for (size_t i = 0; i < NC_ARRAY_LEN(event_kinds); i++)
		if (strcmp(out->event, event_kinds[i].name) == 0) {
			out->kind = event_kinds[i].kind;
			out->up = event_kinds[i].up;
		}
	if (strncmp(out->event, "egress_", 7) == 0) {
		out->kind = WH_EGRESS;
		out->info = json_object_get(root, "egressInfo");
	} else if (strncmp(out->event, "ingress_", 8) == 0) {
		out->kind = WH_INGRESS;
		out->info = json_object_get(root, "ingressInfo");
	}
	if (!json_is_object(out->info))
		out->info = NULL;
	pi = json_object_get(root, "participant");
	identity = json_string_value(json_object_get(pi, "identity"));
	out->identity = identity != NULL && is_uuid(identity) ? identity : NULL;
	out->participant_sid = jstr(pi, "sid");
	out->joined_at = json_i64(json_object_get(pi, "joinedAt"));
	if (out->joined_at < 0)
		out->joined_at = 0;
	if (out->kind == WH_TRACK)
		out->track_column = track_column(json_object_get(root, "track"));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Applying                                                            */
/* ------------------------------------------------------------------ */
