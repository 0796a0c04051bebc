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

#include "livekit/lk.h"

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
	char *egress_id, *want;

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
	want = xasprintf("{\"egressId\":\"%s\",\"layout\":\"speaker\"}", egress_id);
	assert_last("UpdateLayout", want, "{\"roomRecord\":true}");
	free(want);

	sq.egress_id = egress_id;
	info = lk_stop_egress(&client, &sq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert_int_eq(info->status, LIVEKIT__EGRESS_STATUS__EGRESS_ENDING);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	want = xasprintf("{\"egressId\":\"%s\"}", egress_id);
	assert_last("StopEgress", want, "{\"roomRecord\":true}");
	free(want);

	/* a second stop: failed_precondition, LiveKit's refusal (502), not retried */
	ck_assert_ptr_null(lk_stop_egress(&client, &sq, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT);
	ck_assert_str_eq(st.twirp_code, "failed_precondition");
	ck_assert_int_eq(st.http_status, 412);
	ck_assert_int_eq(st.attempts, 1);
	free(egress_id);
}
END_TEST

START_TEST(track_composite_egress)
{
	Livekit__TrackCompositeEgressRequest rq = LIVEKIT__TRACK_COMPOSITE_EGRESS_REQUEST__INIT;
	Livekit__EncodingOptions adv = LIVEKIT__ENCODING_OPTIONS__INIT;
	Livekit__EncodedFileOutput file = LIVEKIT__ENCODED_FILE_OUTPUT__INIT;
	Livekit__EncodedFileOutput *files[] = { &file };
	struct lk_status st;
	Livekit__EgressInfo *info;

	create_room("tc");
	adv.width = 1280;
	adv.height = 720;
	adv.framerate = 30;
	adv.video_codec = LIVEKIT__VIDEO_CODEC__H264_MAIN;
	adv.audio_codec = LIVEKIT__AUDIO_CODEC__OPUS;
	adv.key_frame_interval = 2.5;
	file.filepath = "tc.mp4";
	rq.room_name = "tc";
	rq.audio_track_id = "TR_audio";
	rq.video_track_id = "TR_video";
	rq.options_case = LIVEKIT__TRACK_COMPOSITE_EGRESS_REQUEST__OPTIONS_ADVANCED;
	rq.advanced = &adv;
	rq.n_file_outputs = 1;
	rq.file_outputs = files;
	info = lk_start_track_composite_egress(&client, &rq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert_int_eq(info->request_case, LIVEKIT__EGRESS_INFO__REQUEST_TRACK_COMPOSITE);
	ck_assert_str_eq(info->track_composite->video_track_id, "TR_video");
	protobuf_c_message_free_unpacked(&info->base, NULL);
	assert_last("StartTrackCompositeEgress",
		    "{\"roomName\":\"tc\",\"audioTrackId\":\"TR_audio\",\"videoTrackId\":\"TR_video\","
		    "\"advanced\":{\"width\":1280,\"height\":720,\"framerate\":30,\"audioCodec\":\"OPUS\","
		    "\"videoCodec\":\"H264_MAIN\",\"keyFrameInterval\":2.5},"
		    "\"fileOutputs\":[{\"filepath\":\"tc.mp4\"}]}",
		    "{\"roomRecord\":true}");

	/* no such room: not_found */
	rq.room_name = "nope";
	ck_assert_ptr_null(lk_start_track_composite_egress(&client, &rq, &st));
	ck_assert_int_eq(st.err, NC_ENOTFOUND);
}
END_TEST

/* ---- Ingress ---- */

START_TEST(ingress)
{
	Livekit__CreateIngressRequest cq = LIVEKIT__CREATE_INGRESS_REQUEST__INIT;
	Livekit__IngressAudioOptions ao = LIVEKIT__INGRESS_AUDIO_OPTIONS__INIT;
	Livekit__IngressVideoOptions vo = LIVEKIT__INGRESS_VIDEO_OPTIONS__INIT;
	Livekit__UpdateIngressRequest uq = LIVEKIT__UPDATE_INGRESS_REQUEST__INIT;
	Livekit__ListIngressRequest lq = LIVEKIT__LIST_INGRESS_REQUEST__INIT;
	Livekit__DeleteIngressRequest dq = LIVEKIT__DELETE_INGRESS_REQUEST__INIT;
	struct lk_status st;
	Livekit__IngressInfo *info;
	Livekit__ListIngressResponse *list;
	char *id, *want;

	ao.has_source = 1;
	ao.source = LIVEKIT__TRACK_SOURCE__MICROPHONE;
	ao.encoding_options_case = LIVEKIT__INGRESS_AUDIO_OPTIONS__ENCODING_OPTIONS_PRESET;
	ao.preset = LIVEKIT__INGRESS_AUDIO_ENCODING_PRESET__OPUS_MONO_64KBS;
	vo.has_source = 1;
	vo.source = LIVEKIT__TRACK_SOURCE__CAMERA;
	vo.encoding_options_case = LIVEKIT__INGRESS_VIDEO_OPTIONS__ENCODING_OPTIONS_PRESET;
	vo.preset = LIVEKIT__INGRESS_VIDEO_ENCODING_PRESET__H264_1080P_30FPS_3_LAYERS;
	cq.has_input_type = 1;
	cq.input_type = LIVEKIT__INGRESS_INPUT__RTMP_INPUT;
	cq.name = "stream-1";
	cq.room_name = "live";
	cq.participant_identity = "broadcaster";
	cq.participant_name = "Broadcaster";
	cq.has_enable_transcoding = 1;
	cq.enable_transcoding = 1;
	cq.has_enabled = 1;
	cq.enabled = 0;
	cq.audio = &ao;
	cq.video = &vo;
	info = lk_create_ingress(&client, &cq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert(strncmp(info->ingress_id, "IN_", 3) == 0);
	ck_assert(info->stream_key && *info->stream_key);
	ck_assert(info->url && strncmp(info->url, "rtmp://", 7) == 0);
	ck_assert(info->has_enabled && !info->enabled);
	id = xstrdup(info->ingress_id);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	assert_last("CreateIngress",
		    "{\"name\":\"stream-1\",\"roomName\":\"live\",\"participantIdentity\":\"broadcaster\","
		    "\"participantName\":\"Broadcaster\",\"enableTranscoding\":true,\"enabled\":false,"
		    "\"audio\":{\"source\":\"MICROPHONE\",\"preset\":\"OPUS_MONO_64KBS\"},"
		    "\"video\":{\"source\":\"CAMERA\",\"preset\":\"H264_1080P_30FPS_3_LAYERS\"}}",
		    "{\"ingressAdmin\":true}");

	uq.ingress_id = id;
	uq.name = "renamed";
	uq.has_enabled = 1;
	uq.enabled = 1;
	info = lk_update_ingress(&client, &uq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert_str_eq(info->name, "renamed");
	ck_assert(info->has_enabled && info->enabled);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	want = xasprintf("{\"ingressId\":\"%s\",\"name\":\"renamed\",\"enabled\":true}", id);
	assert_last("UpdateIngress", want, "{\"ingressAdmin\":true}");
	free(want);

	lq.room_name = "live";
	list = lk_list_ingress(&client, &lq, &st);
	ck_assert_ptr_nonnull(list);
	ck_assert_uint_eq(list->n_items, 1);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	assert_last("ListIngress", "{\"roomName\":\"live\"}", "{\"ingressAdmin\":true}");

	dq.ingress_id = id;
	info = lk_delete_ingress(&client, &dq, &st);
	ck_assert_msg(info != NULL, "%s", st.msg);
	ck_assert_str_eq(info->ingress_id, id);
	protobuf_c_message_free_unpacked(&info->base, NULL);
	want = xasprintf("{\"ingressId\":\"%s\"}", id);
	assert_last("DeleteIngress", want, "{\"ingressAdmin\":true}");
	free(want);

	ck_assert_ptr_null(lk_delete_ingress(&client, &dq, &st));
	ck_assert_int_eq(st.err, NC_ENOTFOUND);
	free(id);
}
END_TEST

/* ---- tokens against LiveKit's TokenVerifier ---- */

static json_t *verify(const char *tok, const char *secret)
{
	json_t *b = json_pack("{s:s}", "token", tok);

	if (secret)
		json_object_set_new(b, "secret", json_string(secret));
	return ctl("/_test/verify-token", b);
}

START_TEST(token_verifies)
{
	struct lk_token_opts o = {
		.identity = "alice", .name = "Alice", .metadata = "{}", .ttl_s = 600,
		.grant = { .room = "demo", .room_join = true, .can_publish = LK_TRUE,
			   .can_subscribe = LK_TRUE, .can_publish_data = LK_FALSE,
			   .sources = LK_SRC_CAMERA | LK_SRC_SCREEN_SHARE_AUDIO,
			   .can_update_own_metadata = true },
	};
	int64_t now = now_unix();
	char *tok = lk_token_mint(cfg.livekit_api_key, cfg.livekit_api_secret, &o, now);
	json_t *r = verify(tok, NULL), *claims = json_object_get(r, "claims");
	json_t *want_video = lk_grant_json(&o.grant);

	ck_assert_msg(json_is_true(json_object_get(r, "ok")), "%s",
		      json_string_value(json_object_get(r, "error")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "header"), "alg")), "HS256");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), "alice");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "iss")), cfg.livekit_api_key);
	ck_assert_str_eq(json_string_value(json_object_get(claims, "name")), "Alice");
	ck_assert_int_eq(json_integer_value(json_object_get(claims, "exp")) -
			 json_integer_value(json_object_get(claims, "nbf")), 600);
	assert_json_eq(json_object_get(claims, "video"),
		       "{\"roomJoin\":true,\"room\":\"demo\",\"canPublish\":true,\"canSubscribe\":true,"
		       "\"canPublishData\":false,\"canPublishSources\":[\"camera\",\"screen_share_audio\"],"
		       "\"canUpdateOwnMetadata\":true}", "video grant");
	ck_assert(json_equal(json_object_get(claims, "video"), want_video));
	json_decref(want_video);
	json_decref(r);
	free(tok);
}
END_TEST

START_TEST(token_expired_or_wrong_secret_refused)
{
	struct lk_token_opts o = { .identity = "a", .ttl_s = 60,
				   .grant = { .room = "r", .room_join = true } };
	char *old = lk_token_mint(cfg.livekit_api_key, cfg.livekit_api_secret, &o, now_unix() - 3600);
	char *bad = lk_token_mint(cfg.livekit_api_key, "another-secret", &o, now_unix());
	json_t *r1 = verify(old, NULL), *r2 = verify(bad, NULL), *r3 = verify(bad, "another-secret");

	ck_assert(json_is_false(json_object_get(r1, "ok")));
	ck_assert(json_is_false(json_object_get(r2, "ok")));
	ck_assert(json_is_true(json_object_get(r3, "ok")));
	json_decref(r1);
	json_decref(r2);
	json_decref(r3);
	free(old);
	free(bad);
}
END_TEST

/* ---- errors, retries, timeouts ---- */

static Livekit__ListRoomsResponse *list_rooms(struct lk_client *c, struct lk_status *st)
{
	Livekit__ListRoomsRequest r = LIVEKIT__LIST_ROOMS_REQUEST__INIT;

	return lk_list_rooms(c, &r, st);
}

START_TEST(unavailable_retried_on_idempotent)
{
	struct lk_status st;
	Livekit__ListRoomsResponse *l;

	fault("{\"method\":\"ListRooms\",\"mode\":\"unavailable\",\"count\":10}");
	ck_assert_ptr_null(list_rooms(&client, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_str_eq(st.twirp_code, "unavailable");
	ck_assert_int_eq(st.http_status, 503);
	ck_assert_int_eq(st.attempts, 3);
	ck_assert_uint_eq(count_requests("ListRooms"), 3);

	json_decref(ctl("/_test/fault/clear", json_object()));
	fault("{\"method\":\"ListRooms\",\"mode\":\"unavailable\",\"count\":1}");
	l = list_rooms(&client, &st);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(st.attempts, 2);
	protobuf_c_message_free_unpacked(&l->base, NULL);
}
END_TEST

START_TEST(create_room_not_retried)
{
	Livekit__CreateRoomRequest r = LIVEKIT__CREATE_ROOM_REQUEST__INIT;
	Livekit__ListRoomsResponse *l;
	Livekit__Room *room;
	struct lk_status st;
	size_t n;
	int same = 0;

	r.name = "x";
	fault("{\"method\":\"CreateRoom\",\"mode\":\"unavailable\",\"count\":10}");
	ck_assert_ptr_null(lk_create_room(&client, &r, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(st.attempts, 1);
	ck_assert_uint_eq(count_requests("CreateRoom"), 1);

	/*
	 * An answer lost on a reused connection: libcurl sends the request once
	 * more on a new one, which CreateRoom allows (LiveKit gets or creates
	 * the room by its name): it succeeds, and the room is there once.
	 */
	json_decref(ctl("/_test/fault/clear", json_object()));
	room = lk_create_room(&client, &r, &st); /* a connection to reuse */
	ck_assert_ptr_nonnull(room);
	protobuf_c_message_free_unpacked(&room->base, NULL);
	n = count_requests("CreateRoom");
	fault("{\"method\":\"CreateRoom\",\"mode\":\"drop\",\"count\":1}");
	room = lk_create_room(&client, &r, &st);
	ck_assert_ptr_nonnull(room);
	ck_assert_str_eq(room->name, "x");
	protobuf_c_message_free_unpacked(&room->base, NULL);
	ck_assert_int_eq(st.attempts, 1);
	ck_assert_uint_eq(count_requests("CreateRoom"), n + 2);
	l = list_rooms(&client, &st);
	ck_assert_ptr_nonnull(l);
	for (size_t i = 0; i < l->n_rooms; i++)
		same += strcmp(l->rooms[i]->name, "x") == 0;
	ck_assert_int_eq(same, 1);
	protobuf_c_message_free_unpacked(&l->base, NULL);
	/* lost every time: the error surfaces, and this client never repeats it itself */
	n = count_requests("CreateRoom");
	fault("{\"method\":\"CreateRoom\",\"mode\":\"drop\",\"count\":10}");
	ck_assert_ptr_null(lk_create_room(&client, &r, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(st.attempts, 1);
	ck_assert_uint_le(count_requests("CreateRoom"), n + 2);
	json_decref(ctl("/_test/fault/clear", json_object()));
}
END_TEST

START_TEST(injected_error_codes)
{
	static const struct { const char *code; int status; enum nc_err err; } cases[] = {
		{ "not_found", 404, NC_ENOTFOUND },
		{ "invalid_argument", 400, NC_EBADREQ },
		{ "already_exists", 409, NC_ECONFLICT },
		{ "internal", 500, NC_ELIVEKIT },
		{ "permission_denied", 403, NC_ELIVEKIT },
	};

	for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
		struct lk_status st;
		char *f = xasprintf("{\"method\":\"ListRooms\",\"mode\":\"error\",\"code\":\"%s\","
				    "\"status\":%d,\"msg\":\"boom\"}", cases[i].code, cases[i].status);
		fault(f);
		free(f);
		ck_assert_ptr_null(list_rooms(&client, &st));
		ck_assert_int_eq(st.err, cases[i].err);
		ck_assert_str_eq(st.twirp_code, cases[i].code);
		ck_assert_str_eq(st.msg, "boom");
		ck_assert_int_eq(st.http_status, cases[i].status);
		ck_assert_int_eq(st.attempts, 1);
	}
}
END_TEST

START_TEST(slow_times_out)
{
	struct nc_config fast = cfg;
	struct lk_client c;
	struct lk_status st;
	int64_t t0;

	fast.livekit_timeout_ms = 300;
	ck_assert_int_eq(lk_client_init(&c, &fast), 0);
	fault("{\"method\":\"ListRooms\",\"mode\":\"slow\",\"delayMs\":1500,\"count\":5}");
	t0 = now_ms();
	ck_assert_ptr_null(list_rooms(&c, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(st.attempts, 1); /* connected, then timed out: not repeated */
	ck_assert_int_lt(now_ms() - t0, 1200);
	lk_client_cleanup(&c);
}
END_TEST

START_TEST(drop_retried_on_idempotent)
{
	struct lk_status st;
	Livekit__ListRoomsResponse *l;

	fault("{\"method\":\"ListRooms\",\"mode\":\"drop\",\"count\":1}");
	l = list_rooms(&client, &st);
	ck_assert_msg(l != NULL, "%s", st.msg);
	ck_assert_int_eq(st.attempts, 2);
	protobuf_c_message_free_unpacked(&l->base, NULL);

	fault("{\"method\":\"ListRooms\",\"mode\":\"drop\",\"count\":5}");
	ck_assert_ptr_null(list_rooms(&client, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(st.attempts, 3);
}
END_TEST

START_TEST(wrong_secret_plain_401)
{
	struct nc_config badcfg = cfg;
	struct lk_client c;
	struct lk_status st;

	badcfg.livekit_api_secret = "wrong";
	ck_assert_int_eq(lk_client_init(&c, &badcfg), 0);
	ck_assert_ptr_null(list_rooms(&c, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT);
	ck_assert_int_eq(st.http_status, 401);
	ck_assert_str_eq(st.twirp_code, "");
	ck_assert_msg(strstr(st.msg, "invalid token") != NULL, "%s", st.msg);
	ck_assert_msg(strstr(st.msg, "eyJ") == NULL, "token leaked: %s", st.msg);
	ck_assert_int_eq(st.attempts, 1);
	lk_client_cleanup(&c);
}
END_TEST

START_TEST(unreachable_is_down)
{
	struct nc_config dead = cfg;
	struct lk_client c;
	struct lk_status st;

	dead.livekit_api_url = "http://127.0.0.1:1";
	ck_assert_int_eq(lk_client_init(&c, &dead), 0);
	ck_assert_ptr_null(list_rooms(&c, &st));
	ck_assert_int_eq(st.err, NC_ELIVEKIT_DOWN);
	ck_assert_int_eq(st.http_status, 0);
	ck_assert_int_eq(st.attempts, 3);
	lk_client_cleanup(&c);
}
END_TEST

static TCase *make_case(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *livekit_suite(void)
{
	Suite *s = suite_create("livekit");
	TCase *rooms = make_case(s, "rooms");
	TCase *egress = make_case(s, "egress");
	TCase *ingr = make_case(s, "ingress");
	TCase *tokens = make_case(s, "tokens");
	TCase *errors = make_case(s, "errors");

	tcase_add_test(rooms, room_lifecycle);
	tcase_add_test(rooms, participants);
	tcase_add_test(rooms, update_participant_and_send_data);
	tcase_add_test(egress, room_composite_egress);
	tcase_add_test(egress, track_composite_egress);
	tcase_add_test(ingr, ingress);
	tcase_add_test(tokens, token_verifies);
	tcase_add_test(tokens, token_expired_or_wrong_secret_refused);
	tcase_add_test(errors, unavailable_retried_on_idempotent);
	tcase_add_test(errors, create_room_not_retried);
	tcase_add_test(errors, injected_error_codes);
	tcase_add_test(errors, slow_times_out);
	tcase_add_test(errors, drop_retried_on_idempotent);
	tcase_add_test(errors, wrong_secret_plain_401);
	tcase_add_test(errors, unreachable_is_down);
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
