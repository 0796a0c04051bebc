/*
 * check_lk_proto.c - the generated LiveKit messages encode as LiveKit's own
 * (PROTOCOL.md §9(b) reference bytes; oneof zero values and proto2
 * `optional` false values are on the wire), plus the small pure helpers of
 * lk_twirp.c (URL mapping, Twirp code mapping).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "livekit/lk.h"

/* Pack m and compare with the expected bytes. */
static void assert_packs_to(const ProtobufCMessage *m, const uint8_t *want, size_t n)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);

	ck_assert_uint_eq(protobuf_c_message_pack(m, buf), len);
	ck_assert_uint_eq(len, n);
	ck_assert_mem_eq(buf, want, n);
	free(buf);
}

START_TEST(create_room_reference_bytes)
{
	Livekit__CreateRoomRequest r = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	static const uint8_t want[] = { 0x0a, 0x04, 'd', 'e', 'm', 'o', 0x10, 0xac, 0x02,
					0x18, 0x0a };

	r.name = "demo";
	r.empty_timeout = 300;
	r.max_participants = 10;
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(participant_identity_reference_bytes)
{
	Livekit__RoomParticipantIdentity r = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	static const uint8_t want[] = { 0x0a, 0x04, 'd', 'e', 'm', 'o', 0x12, 0x05,
					'a', 'l', 'i', 'c', 'e' };

	r.room = "demo";
	r.identity = "alice";
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(oneof_zero_preset_is_serialised)
{
	Livekit__RoomCompositeEgressRequest r = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__INIT;
	static const uint8_t want[] = { 0x0a, 0x01, 'r', 0x40, 0x00 };

	r.room_name = "r";
	r.options_case = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__OPTIONS_PRESET;
	r.preset = LIVEKIT__ENCODING_OPTIONS_PRESET__H264_720P_30;
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(ingress_enabled_false_is_serialised)
{
	Livekit__CreateIngressRequest r = LIVEKIT__CREATE_INGRESS_REQUEST__INIT;
	static const uint8_t want[] = { 0x08, 0x01, 0x1a, 0x01, 'r', 0x58, 0x00, 0x60, 0x00 };
	static const uint8_t bare[] = { 0x1a, 0x01, 'r' };

	r.room_name = "r";
	assert_packs_to(&r.base, bare, sizeof bare);
	r.has_input_type = 1;
	r.input_type = LIVEKIT__INGRESS_INPUT__WHIP_INPUT;
	r.has_enable_transcoding = 1;
	r.enable_transcoding = 0;
	r.has_enabled = 1;
	r.enabled = 0;
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(update_ingress_enabled_false)
{
	Livekit__UpdateIngressRequest r = LIVEKIT__UPDATE_INGRESS_REQUEST__INIT;
	static const uint8_t want[] = { 0x0a, 0x02, 'I', 'N', 0x58, 0x00 };

	r.ingress_id = "IN";
	r.has_enabled = 1;
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(send_data_topic_presence)
{
	Livekit__SendDataRequest r = LIVEKIT__SEND_DATA_REQUEST__INIT;
	static const uint8_t want[] = { 0x0a, 0x01, 'r', 0x12, 0x02, 'h', 'i', 0x2a, 0x00 };
	uint8_t data[] = { 'h', 'i' };

	r.room = "r";
	r.has_data = 1;
	r.data.data = data;
	r.data.len = sizeof data;
	r.topic = "";
	assert_packs_to(&r.base, want, sizeof want);
}
END_TEST

START_TEST(ingress_info_decodes_presence)
{
	static const uint8_t bytes[] = { 0x0a, 0x02, 'I', 'N', 0x80, 0x01, 0x00 };
	Livekit__IngressInfo *i = livekit__ingress_info__unpack(NULL, sizeof bytes, bytes);

	ck_assert_ptr_nonnull(i);
	ck_assert_str_eq(i->ingress_id, "IN");
	ck_assert(i->has_enabled);
	ck_assert(!i->enabled);
	ck_assert(!i->has_enable_transcoding);
	livekit__ingress_info__free_unpacked(i, NULL);
}
END_TEST

START_TEST(http_url_mapping)
{
	static const char *const cases[][2] = {
		{ "ws://127.0.0.1:7880", "http://127.0.0.1:7880" },
		{ "wss://lk.example.com/", "https://lk.example.com" },
		{ "WSS://lk.example.com//", "https://lk.example.com" },
		{ "http://h:1/", "http://h:1" },
		{ "https://h", "https://h" },
	};

	for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
		char *u = lk_http_url(cases[i][0]);
		ck_assert_ptr_nonnull(u);
		ck_assert_str_eq(u, cases[i][1]);
		free(u);
	}
	ck_assert_ptr_null(lk_http_url("ftp://h"));
	ck_assert_ptr_null(lk_http_url("ws://"));
	ck_assert_ptr_null(lk_http_url(NULL));
}
END_TEST

START_TEST(twirp_code_mapping)
{
	struct lk_status st = { .err = NC_ENOTFOUND, .twirp_code = "not_found",
				.msg = "requested room does not exist" };
	struct nc_error e;

	ck_assert_int_eq(lk_twirp_code_err("not_found"), NC_ENOTFOUND);
	ck_assert_int_eq(lk_twirp_code_err("invalid_argument"), NC_EBADREQ);
	ck_assert_int_eq(lk_twirp_code_err("out_of_range"), NC_EBADREQ);
	ck_assert_int_eq(lk_twirp_code_err("malformed"), NC_ELIVEKIT);
	ck_assert_int_eq(lk_twirp_code_err("already_exists"), NC_ECONFLICT);
	ck_assert_int_eq(lk_twirp_code_err("aborted"), NC_ECONFLICT);
	ck_assert_int_eq(lk_twirp_code_err("unavailable"), NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(lk_twirp_code_err("internal"), NC_ELIVEKIT);
	ck_assert_int_eq(lk_twirp_code_err("unauthenticated"), NC_ELIVEKIT);
	ck_assert_int_eq(lk_twirp_code_err("failed_precondition"), NC_ELIVEKIT);
	ck_assert(lk_status_is(&st, "not_found"));
	ck_assert(!lk_status_is(&st, "internal"));
	ck_assert_int_eq(lk_status_error(&st, &e), NC_ENOTFOUND);
	ck_assert_int_eq(e.code, NC_ENOTFOUND);
	/* LiveKit's own text stays out of what a client sees */
	ck_assert_ptr_null(strstr(e.msg, "requested room does not exist"));
	ck_assert_ptr_null(strstr(e.msg, "not_found"));
	ck_assert_str_eq(e.msg, "LiveKit has no such room or participant");
}
END_TEST

static Suite *lk_proto_suite(void)
{
	Suite *s = suite_create("lk_proto");
	TCase *wire = tcase_create("wire");
	TCase *help = tcase_create("helpers");

	tcase_add_test(wire, create_room_reference_bytes);
	tcase_add_test(wire, participant_identity_reference_bytes);
	tcase_add_test(wire, oneof_zero_preset_is_serialised);
	tcase_add_test(wire, ingress_enabled_false_is_serialised);
	tcase_add_test(wire, update_ingress_enabled_false);
	tcase_add_test(wire, send_data_topic_presence);
	tcase_add_test(wire, ingress_info_decodes_presence);
	tcase_add_test(help, http_url_mapping);
	tcase_add_test(help, twirp_code_mapping);
	suite_add_tcase(s, wire);
	suite_add_tcase(s, help);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lk_proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
