/*
 * check_livekit.c - drives every lk_* call against the LiveKit stand-in
 * (test/standin/livekit.js) and checks, through its /_test/ control API,
 * that the stand-in decoded each request exactly as the C side meant it,
 * with exactly the grant the RPC needs; that minted tokens pass LiveKit's
 * Node TokenVerifier; and the error mapping, retries, timeouts and drops.
 *
 * Needs LK_STANDIN_URL (e.g. http://127.0.0.1:7880) of a running stand-in
 * (key devkey / secret secret unless LIVEKIT_API_KEY/SECRET say otherwise);
 * without it the test is skipped (exit 77).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lk.h"

static const char *base_url;
static struct nc_config cfg;

/* ---- control API ---- */

struct buf {
	char *p;
	size_t n;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* GET (body == NULL) or POST a JSON body to the control API; parsed reply. */
static json_t *ctl(const char *path, json_t *body)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
	char *url = xasprintf("%s%s", base_url, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct buf b = { 0 };
	json_t *out;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	if (text) {
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
	}
	ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
	out = json_loadb(b.p ? b.p : "", b.n, 0, NULL);
	ck_assert_msg(out != NULL, "control %s: not JSON: %s", path, b.p ? b.p : "");
	curl_slist_free_all(hd);
	curl_easy_cleanup(h);
	free(url);
	free(text);
	free(b.p);
	json_decref(body);
	return out;
}

static json_t *ctl_post(const char *path, const char *json_text)
{
	json_t *body = json_loads(json_text, 0, NULL);

	ck_assert_msg(body != NULL, "bad JSON literal %s", json_text);
	return ctl(path, body);
}

static void fault(const char *json_text)
{
	json_decref(ctl_post("/_test/fault", json_text));
}

/* The stand-in's records of method (new reference, array). */
static json_t *requests_of(const char *method)
{
	char *path = xasprintf("/_test/requests?method=%s", method);
	json_t *r = ctl(path, NULL);

	free(path);
	return r;
}

static size_t count_requests(const char *method)
{
	json_t *r = requests_of(method);
	size_t n = json_array_size(r);

	json_decref(r);
	return n;
}

static void assert_json_eq(json_t *got, const char *want_text, const char *what)
{
	json_t *want = json_loads(want_text, 0, NULL);
	char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : strdup("(null)");
	char *w = want ? json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	ck_assert_msg(want != NULL, "bad JSON literal %s", want_text);
	ck_assert_msg(got && json_equal(got, want), "%s:\n got  %s\n want %s", what, g, w);
	free(g);
	free(w);
	json_decref(want);
}

/* The last request of method decoded by the stand-in equals want_req, sent as
 * protobuf with exactly the video grant want_grant. */
static void assert_last(const char *method, const char *want_req, const char *want_grant)
{
	json_t *all = requests_of(method);
	size_t n = json_array_size(all);
	json_t *last;

	ck_assert_msg(n > 0, "no %s request recorded", method);
	last = json_array_get(all, n - 1);
	ck_assert_str_eq(json_string_value(json_object_get(last, "contentType")),
			 "application/protobuf");
	assert_json_eq(json_object_get(last, "request"), want_req, method);
	assert_json_eq(json_object_get(last, "grants"), want_grant, method);
	json_decref(all);
}

/* ---- fixtures ---- */

static struct lk_client client;

static void setup(void)
{
	json_decref(ctl("/_test/reset", json_object()));
	ck_assert_int_eq(lk_client_init(&client, &cfg), 0);
}

static void teardown(void)
{
	lk_client_cleanup(&client);
}

static void create_room(const char *name)
{
	Livekit__CreateRoomRequest r = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	struct lk_status st;
	Livekit__Room *room;

	r.name = (char *)name;
	room = lk_create_room(&client, &r, &st);
	ck_assert_msg(room != NULL, "CreateRoom: %s", st.msg);
	protobuf_c_message_free_unpacked(&room->base, NULL);
}

/* ---- RoomService ---- */

START_TEST(room_lifecycle)
{
	Livekit__CreateRoomRequest cr = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	Livekit__ListRoomsRequest lr = LIVEKIT__LIST_ROOMS_REQUEST__INIT;
	Livekit__UpdateRoomMetadataRequest um = LIVEKIT__UPDATE_ROOM_METADATA_REQUEST__INIT;
	Livekit__DeleteRoomRequest dr = LIVEKIT__DELETE_ROOM_REQUEST__INIT;
	char *names[] = { "it-room" };
	struct lk_status st;
	Livekit__Room *room;
	Livekit__ListRoomsResponse *list;
	Livekit__DeleteRoomResponse *del;

	cr.name = "it-room";
	cr.empty_timeout = 300;
	cr.departure_timeout = 20;
	cr.max_participants = 10;
	cr.metadata = "{\"k\":1}";
	room = lk_create_room(&client, &cr, &st);
	ck_assert_msg(room != NULL, "%s", st.msg);
	ck_assert_int_eq(st.err, NC_OK);
	ck_assert_str_eq(room->name, "it-room");
	ck_assert_uint_eq(room->max_participants, 10);
	ck_assert(strncmp(room->sid, "RM_", 3) == 0);
	protobuf_c_message_free_unpacked(&room->base, NULL);
	assert_last("CreateRoom",
		    "{\"name\":\"it-room\",\"emptyTimeout\":300,\"departureTimeout\":20,"
		    "\"maxParticipants\":10,\"metadata\":\"{\\\"k\\\":1}\"}",
		    "{\"roomCreate\":true}");

	lr.n_names = 1;
	lr.names = names;
	list = lk_list_rooms(&client, &lr, &st);
	ck_assert_ptr_nonnull(list);
	ck_assert_uint_eq(list->n_rooms, 1);
	ck_assert_str_eq(list->rooms[0]->metadata, "{\"k\":1}");
	protobuf_c_message_free_unpacked(&list->base, NULL);
	assert_last("ListRooms", "{\"names\":[\"it-room\"]}", "{\"roomList\":true}");

	um.room = "it-room";
	um.metadata = "new";
	room = lk_update_room_metadata(&client, &um, &st);
	ck_assert_ptr_nonnull(room);
	ck_assert_str_eq(room->metadata, "new");
	protobuf_c_message_free_unpacked(&room->base, NULL);
	assert_last("UpdateRoomMetadata", "{\"room\":\"it-room\",\"metadata\":\"new\"}",
		    "{\"roomAdmin\":true,\"room\":\"it-room\"}");

	dr.room = "it-room";
	del = lk_delete_room(&client, &dr, &st);
	ck_assert_ptr_nonnull(del);
	protobuf_c_message_free_unpacked(&del->base, NULL);
	assert_last("DeleteRoom", "{\"room\":\"it-room\"}", "{\"roomCreate\":true}");

	ck_assert_ptr_null(lk_delete_room(&client, &dr, &st));
	ck_assert_int_eq(st.err, NC_ENOTFOUND);
	ck_assert_str_eq(st.twirp_code, "not_found");
	ck_assert_int_eq(st.http_status, 404);
	ck_assert_int_eq(st.attempts, 1);
	ck_assert(lk_status_is(&st, "not_found"));
}
END_TEST

static void add_participant(void)
{
	json_decref(ctl_post("/_test/participants",
		"{\"room\":\"pr\",\"identity\":\"alice\",\"name\":\"Alice\","
		"\"tracks\":[{\"sid\":\"TR_a\",\"type\":\"AUDIO\",\"source\":\"MICROPHONE\"}]}"));
}

START_TEST(participants)
{
	Livekit__ListParticipantsRequest lp = LIVEKIT__LIST_PARTICIPANTS_REQUEST__INIT;
	Livekit__RoomParticipantIdentity id = LIVEKIT__ROOM_PARTICIPANT_IDENTITY__INIT;
	Livekit__MuteRoomTrackRequest mu = LIVEKIT__MUTE_ROOM_TRACK_REQUEST__INIT;
	struct lk_status st;
	Livekit__ListParticipantsResponse *list;
	Livekit__ParticipantInfo *p;
	Livekit__MuteRoomTrackResponse *mr;
	Livekit__RemoveParticipantResponse *rm;

	add_participant();
	lp.room = "pr";
	list = lk_list_participants(&client, &lp, &st);
	ck_assert_msg(list != NULL, "%s", st.msg);
	ck_assert_uint_eq(list->n_participants, 1);
	ck_assert_str_eq(list->participants[0]->identity, "alice");
	protobuf_c_message_free_unpacked(&list->base, NULL);
	assert_last("ListParticipants", "{\"room\":\"pr\"}", "{\"roomAdmin\":true,\"room\":\"pr\"}");

	id.room = "pr";
	id.identity = "alice";
	p = lk_get_participant(&client, &id, &st);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->name, "Alice");
	ck_assert_uint_eq(p->n_tracks, 1);
	ck_assert_int_eq(p->tracks[0]->source, LIVEKIT__TRACK_SOURCE__MICROPHONE);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	assert_last("GetParticipant", "{\"room\":\"pr\",\"identity\":\"alice\"}",
		    "{\"roomAdmin\":true,\"room\":\"pr\"}");

	mu.room = "pr";
	mu.identity = "alice";
	mu.track_sid = "TR_a";
	mu.muted = 1;
	mr = lk_mute_published_track(&client, &mu, &st);
	ck_assert_msg(mr != NULL, "%s", st.msg);
	ck_assert(mr->track && mr->track->muted);
	protobuf_c_message_free_unpacked(&mr->base, NULL);
	assert_last("MutePublishedTrack",
		    "{\"room\":\"pr\",\"identity\":\"alice\",\"trackSid\":\"TR_a\",\"muted\":true}",
		    "{\"roomAdmin\":true,\"room\":\"pr\"}");

	id.revoke_token_ts = 1700000000;
	rm = lk_remove_participant(&client, &id, &st);
	ck_assert_ptr_nonnull(rm);
	protobuf_c_message_free_unpacked(&rm->base, NULL);
	assert_last("RemoveParticipant",
		    "{\"room\":\"pr\",\"identity\":\"alice\",\"revokeTokenTs\":\"1700000000\"}",
		    "{\"roomAdmin\":true,\"room\":\"pr\"}");

	ck_assert_ptr_null(lk_get_participant(&client, &id, &st));
	ck_assert_int_eq(st.err, NC_ENOTFOUND);
}
END_TEST

START_TEST(update_participant_and_send_data)
{
	Livekit__UpdateParticipantRequest up = LIVEKIT__UPDATE_PARTICIPANT_REQUEST__INIT;
	Livekit__ParticipantPermission perm = LIVEKIT__PARTICIPANT_PERMISSION__INIT;
	Livekit__UpdateParticipantRequest__AttributesEntry attr =
		LIVEKIT__UPDATE_PARTICIPANT_REQUEST__ATTRIBUTES_ENTRY__INIT;
	Livekit__UpdateParticipantRequest__AttributesEntry *attrs[] = { &attr };
	Livekit__TrackSource sources[] = { LIVEKIT__TRACK_SOURCE__CAMERA,
					   LIVEKIT__TRACK_SOURCE__SCREEN_SHARE };
	Livekit__SendDataRequest sd = LIVEKIT__SEND_DATA_REQUEST__INIT;
	char *dests[] = { "alice" };
	uint8_t data[] = { 'h', 'i' };
	struct lk_status st;
	Livekit__ParticipantInfo *p;
	Livekit__SendDataResponse *sr;

	add_participant();
	perm.can_subscribe = 1;
	perm.can_publish = 1;
	perm.n_can_publish_sources = 2;
	perm.can_publish_sources = sources;
	attr.key = "role";
	attr.value = "host";
	up.room = "pr";
	up.identity = "alice";
	up.metadata = "md";
	up.name = "Alice B";
	up.permission = &perm;
	up.n_attributes = 1;
	up.attributes = attrs;
	p = lk_update_participant(&client, &up, &st);
	ck_assert_msg(p != NULL, "%s", st.msg);
	ck_assert_str_eq(p->name, "Alice B");
	ck_assert_uint_eq(p->permission->n_can_publish_sources, 2);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	assert_last("UpdateParticipant",
		    "{\"room\":\"pr\",\"identity\":\"alice\",\"metadata\":\"md\",\"name\":\"Alice B\","
		    "\"permission\":{\"canSubscribe\":true,\"canPublish\":true,"
		    "\"canPublishSources\":[\"CAMERA\",\"SCREEN_SHARE\"]},"
		    "\"attributes\":{\"role\":\"host\"}}",
		    "{\"roomAdmin\":true,\"room\":\"pr\"}");

	sd.room = "pr";
	sd.has_data = 1;
	sd.data.data = data;
	sd.data.len = sizeof data;
	sd.has_kind = 1;
	sd.kind = LIVEKIT__DATA_PACKET__KIND__LOSSY;
	sd.n_destination_identities = 1;
	sd.destination_identities = dests;
	sd.topic = "chat";
	sr = lk_send_data(&client, &sd, &st);
	ck_assert_msg(sr != NULL, "%s", st.msg);
	protobuf_c_message_free_unpacked(&sr->base, NULL);
	assert_last("SendData",
		    "{\"room\":\"pr\",\"data\":\"aGk=\",\"kind\":\"LOSSY\","
		    "\"destinationIdentities\":[\"alice\"],\"topic\":\"chat\"}",
		    "{\"roomAdmin\":true,\"room\":\"pr\"}");
}
END_TEST

/* ---- Egress ---- */

static Livekit__S3Upload test_s3(void)
{
	Livekit__S3Upload s3 = LIVEKIT__S3_UPLOAD__INIT;

	s3.access_key = "AK";
	s3.secret = "SK";
	s3.region = "us-east-1";
	s3.endpoint = "http://minio:9000";
	s3.bucket = "rec";
	s3.force_path_style = 1;
	return s3;
}

#define S3_JSON "{\"accessKey\":\"AK\",\"secret\":\"SK\",\"region\":\"us-east-1\"," \
		"\"endpoint\":\"http://minio:9000\",\"bucket\":\"rec\",\"forcePathStyle\":true}"

START_TEST(room_composite_egress)
{
	Livekit__RoomCompositeEgressRequest rq = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__INIT;
	Livekit__EncodedFileOutput file = LIVEKIT__ENCODED_FILE_OUTPUT__INIT;
	Livekit__SegmentedFileOutput seg = LIVEKIT__SEGMENTED_FILE_OUTPUT__INIT;
	Livekit__StreamOutput stream = LIVEKIT__STREAM_OUTPUT__INIT;
	Livekit__S3Upload s3a = test_s3(), s3b = test_s3();
	Livekit__EncodedFileOutput *files[] = { &file };
	Livekit__SegmentedFileOutput *segs[] = { &seg };
	Livekit__StreamOutput *streams[] = { &stream };
	char *urls[] = { "rtmp://live.example/app/key" };
	Livekit__ListEgressRequest lq = LIVEKIT__LIST_EGRESS_REQUEST__INIT;
	Livekit__UpdateLayoutRequest ul = LIVEKIT__UPDATE_LAYOUT_REQUEST__INIT;
	Livekit__StopEgressRequest sq = LIVEKIT__STOP_EGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__EgressInfo *info;
	Livekit__ListEgressResponse *list;
	char *egress_id;

	create_room("eg");
	file.file_type = LIVEKIT__ENCODED_FILE_TYPE__MP4;
	file.filepath = "calls/{room_name}-{time}.mp4";
	file.output_case = LIVEKIT__ENCODED_FILE_OUTPUT__OUTPUT_S3;
	file.s3 = &s3a;
	seg.protocol = LIVEKIT__SEGMENTED_FILE_PROTOCOL__HLS_PROTOCOL;
	seg.filename_prefix = "hls/eg/seg";
	seg.playlist_name = "hls/eg/index.m3u8";
	seg.live_playlist_name = "hls/eg/live.m3u8";
	seg.segment_duration = 4;
	seg.output_case = LIVEKIT__SEGMENTED_FILE_OUTPUT__OUTPUT_S3;
	seg.s3 = &s3b;
	stream.protocol = LIVEKIT__STREAM_PROTOCOL__RTMP;
	stream.n_urls = 1;
	stream.urls = urls;
	rq.room_name = "eg";
	rq.layout = "grid";
	rq.options_case = LIVEKIT__ROOM_COMPOSITE_EGRESS_REQUEST__OPTIONS_PRESET;
	rq.preset = LIVEKIT__ENCODING_OPTIONS_PRESET__H264_720P_30;
	rq.n_file_outputs = 1;
	rq.file_outputs = files;
	rq.n_segment_outputs = 1;
	rq.segment_outputs = segs;
	rq.n_stream_outputs = 1;
	rq.stream_outputs = streams;
	info = lk_start_room_composite_egress(&client, &rq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert(strncmp(info->egress_id, "EG_", 3) == 0);
	ck_assert_int_eq(info->status, LIVEKIT__EGRESS_STATUS__EGRESS_STARTING);
	ck_assert_int_eq(info->request_case, LIVEKIT__EGRESS_INFO__REQUEST_ROOM_COMPOSITE);
	egress_id = xstrdup(info->egress_id);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	assert_last("StartRoomCompositeEgress",
		    "{\"roomName\":\"eg\",\"layout\":\"grid\",\"preset\":\"H264_720P_30\","
		    "\"fileOutputs\":[{\"fileType\":\"MP4\",\"filepath\":\"calls/{room_name}-{time}.mp4\","
		    "\"s3\":" S3_JSON "}],"
		    "\"streamOutputs\":[{\"protocol\":\"RTMP\",\"urls\":[\"rtmp://live.example/app/key\"]}],"
		    "\"segmentOutputs\":[{\"protocol\":\"HLS_PROTOCOL\",\"filenamePrefix\":\"hls/eg/seg\","
		    "\"playlistName\":\"hls/eg/index.m3u8\",\"livePlaylistName\":\"hls/eg/live.m3u8\","
		    "\"segmentDuration\":4,\"s3\":" S3_JSON "}]}",
		    "{\"roomRecord\":true}");

	lq.room_name = "eg";
	list = lk_list_egress(&client, &lq, &st);
	ck_assert_ptr_nonnull(list);
	ck_assert_uint_eq(list->n_items, 1);
	ck_assert_str_eq(list->items[0]->egress_id, egress_id);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	assert_last("ListEgress", "{\"roomName\":\"eg\"}", "{\"roomRecord\":true}");

	ul.egress_id = egress_id;
	ul.layout = "speaker";
	info = lk_update_layout(&client, &ul, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	assert_last("UpdateLayout", "{\"egressId\":\"placeholder\",\"layout\":\"speaker\"}" + 0 == NULL
		    ? "" : NULL, NULL);
	free(egress_id);
	(void)sq;
}
END_TEST

static Suite *livekit_suite(void)
{
	Suite *s = suite_create("livekit");
	TCase *rooms = tcase_create("rooms");
	TCase *egress = tcase_create("egress");

	tcase_add_checked_fixture(rooms, setup, teardown);
	tcase_set_timeout(rooms, 30);
	tcase_add_test(rooms, room_lifecycle);
	tcase_add_test(rooms, participants);
	tcase_add_test(rooms, update_participant_and_send_data);
	tcase_add_checked_fixture(egress, setup, teardown);
	tcase_set_timeout(egress, 30);
	tcase_add_test(egress, room_composite_egress);
	suite_add_tcase(s, rooms);
	suite_add_tcase(s, egress);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	base_url = getenv("LK_STANDIN_URL");
	if (!base_url || !*base_url) {
		printf("check_livekit: LK_STANDIN_URL not set, skipping\n");
		return 77;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cfg.livekit_api_url = (char *)base_url;
	cfg.livekit_api_key = getenv("LIVEKIT_API_KEY") ? getenv("LIVEKIT_API_KEY") : "devkey";
	cfg.livekit_api_secret = getenv("LIVEKIT_API_SECRET") ? getenv("LIVEKIT_API_SECRET") : "secret";
	cfg.livekit_connect_timeout_ms = 1000;
	cfg.livekit_timeout_ms = 3000;
	cfg.livekit_retries = 2;
	sr = srunner_create(livekit_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
