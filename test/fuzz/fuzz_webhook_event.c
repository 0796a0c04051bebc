/*
 * fuzz_webhook_event.c - libFuzzer target for the LiveKit webhook event
 * decoder (webhook_decode), the step behind the signature check.
 *
 * fuzz_webhook covers webhook_verify; a body that passes it is LiveKit's
 * WebhookEvent in protobuf JSON, and webhook_decode turns it into what the
 * receiver applies to the database.  It must take any bytes.  Invariants on
 * success: event and id are non-empty (id at most 200 bytes); times are not
 * negative; call_id is "" or the lower-case UUID of a "call-<uuid>" room;
 * identity is NULL or a UUID; a track column only for track events and only
 * one of the three participant columns; info only for egress/ingress events
 * and always an object.  Decoding the re-serialised body gives the same
 * result.
 */
#include "fuzz_util.h"
#include "core/uuid.h"
#include "ops/webhook_event.h"

#include <stdio.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

static void check_one(const struct wh_event *e)
{
	FZ_CHECK(e->event != NULL && e->event[0] != '\0');
	FZ_CHECK(e->id != NULL && e->id[0] != '\0' && strlen(e->id) <= 200);
	FZ_CHECK(e->created_at >= 0 && e->joined_at >= 0);
	if (e->call_id[0] != '\0') {
		FZ_CHECK(is_uuid(e->call_id));
		FZ_CHECK(e->room_name != NULL && strncmp(e->room_name, "call-", 5) == 0);
		FZ_CHECK(strcasecmp(e->room_name + 5, e->call_id) == 0);
		for (const char *p = e->call_id; *p; p++)
			FZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
	}
	FZ_CHECK(e->identity == NULL || is_uuid(e->identity));
	FZ_CHECK(e->participant_sid != NULL);
	if (e->track_column != NULL) {
		FZ_CHECK(e->kind == WH_TRACK);
		FZ_CHECK(strcmp(e->track_column, "is_audio_enabled") == 0 ||
			 strcmp(e->track_column, "is_video_enabled") == 0 ||
			 strcmp(e->track_column, "is_screen_sharing") == 0);
	}
	if (e->info != NULL) {
		FZ_CHECK(json_is_object(e->info));
		FZ_CHECK(e->kind == WH_EGRESS || e->kind == WH_INGRESS);
	}
	FZ_CHECK(e->kind != WH_EGRESS || strncmp(e->event, "egress_", 7) == 0);
	FZ_CHECK(e->kind != WH_INGRESS || strncmp(e->event, "ingress_", 8) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wh_event e, again;
	char why[96], why2[96];
	char *text;
	int rc;

	rc = webhook_decode((const char *)data, size, &e, why, sizeof(why));
	if (rc != 0) {
		FZ_CHECK(why[0] != '\0');
		webhook_event_free(&e);
		return 0;
	}
	check_one(&e);
	/* the same event, re-serialised, decodes to the same thing */
	text = json_dumps(e.root, JSON_COMPACT | JSON_ENCODE_ANY);
	FZ_CHECK(text != NULL);
	FZ_CHECK(webhook_decode(text, strlen(text), &again, why2, sizeof(why2)) == 0);
	check_one(&again);
	FZ_CHECK(strcmp(e.event, again.event) == 0 && strcmp(e.id, again.id) == 0);
	FZ_CHECK(e.kind == again.kind && e.up == again.up);
	FZ_CHECK(e.created_at == again.created_at && e.joined_at == again.joined_at);
	FZ_CHECK(strcmp(e.call_id, again.call_id) == 0);
	FZ_CHECK((e.identity == NULL) == (again.identity == NULL));
	FZ_CHECK((e.track_column == NULL) == (again.track_column == NULL));
	FZ_CHECK((e.info == NULL) == (again.info == NULL));
	free(text);
	webhook_event_free(&again);
	webhook_event_free(&e);
	return 0;
}
