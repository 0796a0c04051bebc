/*
 * check_streams.c - live streams over HTTP against Postgres, Redis, the
 * LiveKit stand-in and the S3 stand-in: create (room + RTMP ingress as the
 * stand-in decoded them, key stored only as a hash), scheduled streams,
 * LiveKit failure leaving no row, start (the HLS egress request field by
 * field), end, key rotation and revocation, publisher and viewer tokens
 * (checked with LiveKit's own verifier), viewer sessions counted from
 * heartbeats that stop, analytics against the sessions the test made,
 * chat rules, pagination, pinning and deletion, reactions, list/get and
 * the 401/403/404 of every endpoint.  The ingress_started webhook is
 * tested through the stand-in's automatic webhooks when the receiver
 * (/api/webhooks/livekit) is present, and skipped with a message when not.
 *
 * The server runs with VIEWER_HEARTBEAT_TIMEOUT_SECONDS=2.
 */
#include "harness.h"
#include "core/uuid.h"
#include "store/db.h"
#include "streams/streams.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#define HLS_BASE "https://hls.example.test/"

static struct it_server srv;
static PGconn *db;
static char *ch;                       /* the channel */
static char *u_b, *u_m, *u_o, *u_mod;  /* broadcaster, member, outsider, moderator */
static char *t_b, *t_m, *t_o, *t_mod;  /* their tokens */

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* One request; asserts the status; returns the parsed body (new ref, may be NULL). */
static json_t *call(const char *method, const char *path, const char *token, const char *body,
		    long want)
{
	struct it_resp r;
	json_t *out;

	ck_assert_int_eq(it_req(&srv, method, path, token, body, &r), 0);
	ck_assert_msg(r.status == want, "%s %s: status %ld, want %ld: %s", method, path, r.status,
		      want, r.body ? r.body : "");
	out = json_incref(r.json);
	it_resp_free(&r);
	return out;
}

static long status_of(const char *method, const char *path, const char *token, const char *body)
{
	struct it_resp r;
	long st;

	ck_assert_int_eq(it_req(&srv, method, path, token, body, &r), 0);
	st = r.status;
	it_resp_free(&r);
	return st;
}

static const char *js(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long ji(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* A new user who is a member of the channel, with a token. */
static char *new_member(const char *name, char **token)
{
	char *u = it_new_user(db, name);

	it_add_member(db, ch, u, "member");
	*token = it_user_token(u, NULL, 3600);
	return u;
}

/* Create a stream as token; extra is a JSON fragment (",\"k\":v") or "". */
static json_t *create_stream(const char *token, const char *extra)
{
	static int n;
	char body[1024];

	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"stream %d-%d\"%s}", ch,
		 (int)getpid(), ++n, extra);
	return call("POST", "/api/streams/create", token, body, 201);
}

static char *path_of(const char *id, const char *tail)
{
	char *p;

	ck_assert(asprintf(&p, "/api/streams/%s%s", id, tail) > 0);
	return p;
}

/* The request body of the last call of `method` the stand-in recorded. */
static json_t *lk_last(const char *method)
{
	char path[128];
	json_t *arr, *req;

	snprintf(path, sizeof(path), "/_test/requests?method=%s", method);
	arr = it_standin("GET", path, NULL);
	ck_assert_msg(json_array_size(arr) > 0, "no %s request recorded", method);
	req = json_incref(json_object_get(json_array_get(arr, json_array_size(arr) - 1),
					  "request"));
	json_decref(arr);
	return req;
}

static size_t lk_count(const char *method)
{
	char path[128];
	json_t *arr;
	size_t n;

	snprintf(path, sizeof(path), "/_test/requests?method=%s", method);
	arr = it_standin("GET", path, NULL);
	n = json_array_size(arr);
	json_decref(arr);
	return n;
}

/* The stand-in's ingress with this id, or NULL. */
static json_t *lk_ingress(const char *ingress_id)
{
	json_t *st = it_standin("GET", "/_test/state", NULL), *found = NULL, *v;
	size_t i;

	json_array_foreach(json_object_get(st, "ingress"), i, v)
		if (js(v, "ingressId") && strcmp(js(v, "ingressId"), ingress_id) == 0)
			found = json_incref(v);
	json_decref(st);
	return found;
}

static bool lk_has_room(const char *room)
{
	json_t *st = it_standin("GET", "/_test/state", NULL), *v;
	bool found = false;
	size_t i;

	json_array_foreach(json_object_get(st, "rooms"), i, v)
		if (strcmp(js(json_object_get(v, "room"), "name"), room) == 0)
			found = true;
	json_decref(st);
	return found;
}

static char *db_str(const char *sql, const char *a, const char *b)
{
	const char *p[2] = { a, b };

	return it_sql(db, sql, a ? (b ? 2 : 1) : 0, p);
}

static long db_long(const char *sql, const char *a, const char *b)
{
	char *v = db_str(sql, a, b);
	long n = v ? atol(v) : -1;

	free(v);
	return n;
}

/* Fold the stream's pending counts into its rows (what the service's reads do first). */
static void sync_counters(const char *id)
{
	free(db_str("SELECT nchat_rtc_stream_counters_sync($1)::text", id, NULL));
}

static void fault(const char *json_text)
{
	json_t *b = json_loads(json_text, 0, NULL), *r;

	r = it_standin("POST", "/_test/fault", b);
	json_decref(b);
	json_decref(r);
}

static void start_stream(const char *id)
{
	char *p = path_of(id, "/start");
	json_t *r = call("POST", p, t_b, "{}", 200);

	json_decref(r);
	free(p);
}

static void end_stream(const char *id)
{
	char *p = path_of(id, "/end");
	json_t *r = call("POST", p, t_b, "{}", 200);

	json_decref(r);
	free(p);
}

/* A 429 that says when to come back: its Retry-After in seconds. */
static long retry_after_of(const char *method, const char *path, const char *token,
			   const char *body)
{
	struct it_resp r;
	char *ra;
	long n;

	ck_assert_int_eq(it_req(&srv, method, path, token, body, &r), 0);
	ck_assert_msg(r.status == 429, "%s %s: status %ld, want 429: %s", method, path, r.status,
		      r.body ? r.body : "");
	ck_assert_str_eq(it_err_code(&r), "rate_limited");
	ra = it_resp_header(&r, "Retry-After");
	ck_assert_msg(ra != NULL, "%s %s: 429 without Retry-After", method, path);
	n = atol(ra);
	free(ra);
	it_resp_free(&r);
	return n;
}

/* ---- create ---- */

START_TEST(create_stores_only_a_hash)
{
	json_t *s = create_stream(t_b, ",\"description\":\"d\"");
	const char *id = js(s, "id"), *key = js(s, "stream_key");
	char room[64], *p, *ingress_id;
	json_t *req, *g;
	struct it_resp r;

	ck_assert_str_eq(js(s, "status"), "preparing");
	ck_assert_ptr_nonnull(key);
	ck_assert_int_ge(strlen(key), 8);
	snprintf(room, sizeof(room), "stream-%s", id);
	ck_assert_str_eq(js(s, "livekit_room_name"), room);
	/* no NEXT_PUBLIC_STREAM_INGEST_URL on this server: the ingress's url */
	ck_assert_str_eq(js(s, "ingest_url"), "rtmp://127.0.0.1:1935/live");
	ck_assert(json_is_true(json_object_get(s, "enable_chat")));

	/* what LiveKit was asked */
	req = lk_last("CreateRoom");
	ck_assert_str_eq(js(req, "name"), room);
	json_decref(req);
	req = lk_last("CreateIngress");
	ck_assert_str_eq(js(req, "roomName"), room);
	ck_assert_str_eq(js(req, "participantIdentity"), u_b);
	ck_assert_str_eq(js(req, "name"), id);
	/* RTMP_INPUT is the zero value: absent from protobuf JSON, or named */
	ck_assert(js(req, "inputType") == NULL || strcmp(js(req, "inputType"), "RTMP_INPUT") == 0);
	json_decref(req);

	/* the database holds the hash and the last four characters, never the key */
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1"
				 " AND stream_key = 'sha256:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')"
				 " AND stream_key_last4 = right($2, 4)", id, key), 1);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1"
				 " AND position($2 in row_to_json(nchat_streams)::text) > 0", id, key), 0);
	ingress_id = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1", id, NULL);
	g = lk_ingress(ingress_id);
	ck_assert_ptr_nonnull(g);
	ck_assert_str_eq(js(g, "streamKey"), key);
	json_decref(g);

	/* GET: last four to the broadcaster only, the key to nobody */
	p = path_of(id, "");
	ck_assert_int_eq(it_req(&srv, "GET", p, t_b, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(strstr(r.body, key));
	ck_assert_str_eq(js(r.json, "stream_key_last4"), key + strlen(key) - 4);
	ck_assert_ptr_null(json_object_get(r.json, "stream_key"));
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", p, t_m, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_null(strstr(r.body, key));
	ck_assert_ptr_null(json_object_get(r.json, "stream_key_last4"));
	ck_assert_ptr_null(json_object_get(r.json, "ingest_url"));
	it_resp_free(&r);
	free(p);
	free(ingress_id);
	json_decref(s);
}
END_TEST

START_TEST(create_validation_and_rights)
{
	char body[4096], title[260];
	long before = db_long("SELECT count(*) FROM nchat_streams", NULL, NULL);

	/* 401 without a token, 403 for a non-member, 404 for an unknown channel */
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"t\"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", NULL, body), 401);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_o, body), 403);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_mod, body), 403);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b,
		"{\"channelId\":\"00000000-0000-4000-8000-000000000000\",\"title\":\"t\"}"), 404);
	/* 400s */
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, "{\"title\":\"t\"}"), 400);
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"\"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"   \"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	memset(title, 'x', 201);
	title[201] = '\0';
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"%s\"}", ch, title);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"t\",\"scheduledAt\":\"tomorrow\"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"t\",\"scheduledAt\":\"2030-02-30T10:00:00Z\"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"t\",\"enableChat\":\"yes\"}", ch);
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	{
		char desc[2100];

		memset(desc, 'd', 2001);
		desc[2001] = '\0';
		snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"t\",\"description\":\"%s\"}", ch, desc);
		ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 400);
	}
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams", NULL, NULL), before);

	/* 200 characters is fine */
	memset(title, 'y', 200);
	title[200] = '\0';
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"%s\"}", ch, title);
	json_decref(call("POST", "/api/streams/create", t_b, body, 201));
}
END_TEST

START_TEST(create_scheduled)
{
	json_t *s = create_stream(t_b, ",\"scheduledAt\":\"2099-01-02T03:04:05Z\"");

	ck_assert_str_eq(js(s, "status"), "scheduled");
	ck_assert_str_eq(js(s, "scheduled_at"), "2099-01-02T03:04:05Z");
	json_decref(s);
	s = create_stream(t_b, ",\"scheduledAt\":\"2001-01-02T03:04:05+02:00\"");
	ck_assert_str_eq(js(s, "status"), "preparing");
	ck_assert_str_eq(js(s, "scheduled_at"), "2001-01-02T01:04:05Z");
	json_decref(s);
}
END_TEST

START_TEST(create_livekit_failure_leaves_nothing)
{
	char body[256];
	long rooms_deleted;

	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"lk-fail-%d\"}", ch,
		 (int)getpid());
	/* ingress refused: 502/503, the room taken back, no row */
	rooms_deleted = (long)lk_count("DeleteRoom");
	fault("{\"method\":\"CreateIngress\",\"mode\":\"unavailable\",\"count\":1}");
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 503);
	ck_assert_int_eq((long)lk_count("DeleteRoom"), rooms_deleted + 1);
	fault("{\"method\":\"CreateIngress\",\"mode\":\"error\",\"code\":\"internal\",\"status\":500,\"count\":1}");
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 502);
	fault("{\"method\":\"CreateRoom\",\"mode\":\"unavailable\",\"count\":-1}");
	ck_assert_int_eq(status_of("POST", "/api/streams/create", t_b, body), 503);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	snprintf(body, sizeof(body), "lk-fail-%d", (int)getpid());
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE title = $1", body, NULL), 0);
}
END_TEST

/* ---- start / end ---- */

START_TEST(start_and_end_lifecycle)
{
	json_t *s = create_stream(t_b, ""), *r, *req, *seg, *s3;
	const char *id = js(s, "id");
	char *p_start = path_of(id, "/start"), *p_end = path_of(id, "/end"), *egress_id,
	     *ingress_id, room[64], want[256];

	snprintf(room, sizeof(room), "stream-%s", id);
	ck_assert_int_eq(status_of("POST", p_start, NULL, "{}"), 401);
	ck_assert_int_eq(status_of("POST", p_start, t_m, "{}"), 403);
	ck_assert_int_eq(status_of("POST", p_start, t_mod, "{}"), 403);
	ck_assert_int_eq(status_of("POST", "/api/streams/not-a-uuid/start", t_b, "{}"), 400);
	ck_assert_int_eq(status_of("POST", "/api/streams/00000000-0000-4000-8000-000000000000/start", t_b, "{}"), 404);

	r = call("POST", p_start, t_b, "{}", 200);
	ck_assert_str_eq(js(r, "status"), "live");
	snprintf(want, sizeof(want), HLS_BASE "streams/%s/live.m3u8", id);
	/* the trailing '/' of NEXT_PUBLIC_HLS_BASE_URL is not doubled */
	ck_assert_str_eq(js(r, "hls_manifest_url"), want);
	ck_assert_ptr_nonnull(js(r, "started_at"));
	json_decref(r);

	/* the egress request, field by field */
	req = lk_last("StartRoomCompositeEgress");
	ck_assert_str_eq(js(req, "roomName"), room);
	ck_assert_str_eq(js(req, "layout"), "speaker");
	ck_assert_int_eq(json_array_size(json_object_get(req, "segmentOutputs")), 1);
	seg = json_array_get(json_object_get(req, "segmentOutputs"), 0);
	ck_assert_str_eq(js(seg, "protocol"), "HLS_PROTOCOL");
	snprintf(want, sizeof(want), "streams/%s/segment", id);
	ck_assert_str_eq(js(seg, "filenamePrefix"), want);
	snprintf(want, sizeof(want), "streams/%s/index.m3u8", id);
	ck_assert_str_eq(js(seg, "playlistName"), want);
	snprintf(want, sizeof(want), "streams/%s/live.m3u8", id);
	ck_assert_str_eq(js(seg, "livePlaylistName"), want);
	ck_assert_int_eq(ji(seg, "segmentDuration"), 4);
	s3 = json_object_get(seg, "s3");
	ck_assert_str_eq(js(s3, "bucket"), it_env("S3_BUCKET"));
	ck_assert_str_eq(js(s3, "endpoint"), it_env("S3_ENDPOINT"));
	ck_assert_str_eq(js(s3, "region"), it_env("S3_REGION"));
	ck_assert_str_eq(js(s3, "accessKey"), it_env("S3_ACCESS_KEY"));
	ck_assert_str_eq(js(s3, "secret"), it_env("S3_SECRET_KEY"));
	ck_assert(json_is_true(json_object_get(s3, "forcePathStyle")));
	json_decref(req);

	egress_id = db_str("SELECT livekit_egress_id FROM nchat_streams WHERE id = $1 AND status = 'live'"
			   " AND started_at IS NOT NULL", id, NULL);
	ck_assert_ptr_nonnull(egress_id);
	ck_assert(strncmp(egress_id, "EG_", 3) == 0);
	ingress_id = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1", id, NULL);

	/* a second start: 409, no second egress */
	ck_assert_int_eq(status_of("POST", p_start, t_b, "{}"), 409);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'stream.start'"
				 " AND target_id = $1", id, NULL), 1);

	/* end: broadcaster or moderator, not another member */
	ck_assert_int_eq(status_of("POST", p_end, t_m, "{}"), 403);
	ck_assert_int_eq(status_of("POST", p_end, NULL, "{}"), 401);
	r = call("POST", p_end, t_mod, "{}", 200);
	ck_assert_str_eq(js(r, "status"), "ended");
	json_decref(r);
	req = lk_last("StopEgress");
	ck_assert_str_eq(js(req, "egressId"), egress_id);
	json_decref(req);
	req = lk_last("DeleteIngress");
	ck_assert_str_eq(js(req, "ingressId"), ingress_id);
	json_decref(req);
	req = lk_last("DeleteRoom");
	ck_assert_str_eq(js(req, "room"), room);
	json_decref(req);
	ck_assert_ptr_null(lk_ingress(ingress_id));
	ck_assert(!lk_has_room(room));
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'ended'"
				 " AND ended_at IS NOT NULL", id, NULL), 1);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'stream.end'"
				 " AND target_id = $1 AND actor_id = $2", id, u_mod), 1);

	/* after the end */
	ck_assert_int_eq(status_of("POST", p_start, t_b, "{}"), 409);
	ck_assert_int_eq(status_of("POST", p_end, t_b, "{}"), 409);
	free(egress_id);
	free(ingress_id);
	free(p_start);
	free(p_end);
	json_decref(s);
}
END_TEST

START_TEST(start_failure_changes_nothing)
{
	json_t *s = create_stream(t_b, "");
	const char *id = js(s, "id");
	char *p = path_of(id, "/start");

	fault("{\"method\":\"StartRoomCompositeEgress\",\"mode\":\"unavailable\",\"count\":1}");
	ck_assert_int_eq(status_of("POST", p, t_b, "{}"), 503);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'preparing'"
				 " AND livekit_egress_id IS NULL AND started_at IS NULL", id, NULL), 1);
	/* and it can be started afterwards */
	start_stream(id);
	end_stream(id);
	free(p);
	json_decref(s);
}
END_TEST

START_TEST(scheduled_stream_goes_live)
{
	json_t *s = create_stream(t_b, ",\"scheduledAt\":\"2099-01-02T03:04:05Z\"");
	const char *id = js(s, "id");

	ck_assert_str_eq(js(s, "status"), "scheduled");
	start_stream(id);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'live'", id, NULL), 1);
	end_stream(id);
	json_decref(s);
}
END_TEST

/* ---- keys ---- */

START_TEST(rotate_key)
{
	json_t *s = create_stream(t_b, ""), *r, *g;
	const char *id = js(s, "id");
	char *p = path_of(id, "/rotate-key"), *old_ingress, *new_ingress;
	char *old_key = strdup(js(s, "stream_key"));

	old_ingress = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1", id, NULL);
	ck_assert_int_eq(status_of("POST", p, t_m, "{}"), 403);
	ck_assert_int_eq(status_of("POST", p, t_mod, "{}"), 403);
	ck_assert_int_eq(status_of("POST", p, NULL, "{}"), 401);
	r = call("POST", p, t_b, "", 200);
	ck_assert_ptr_nonnull(js(r, "stream_key"));
	ck_assert_str_ne(js(r, "stream_key"), old_key);
	ck_assert_str_eq(js(r, "stream_key_last4"), js(r, "stream_key") + strlen(js(r, "stream_key")) - 4);
	new_ingress = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1"
			     " AND stream_key = 'sha256:' || encode(sha256(convert_to($2, 'UTF8')), 'hex')",
			     id, js(r, "stream_key"));
	ck_assert_ptr_nonnull(new_ingress);
	ck_assert_str_ne(new_ingress, old_ingress);
	/* the old ingress is gone, the new one carries the new key */
	ck_assert_ptr_null(lk_ingress(old_ingress));
	g = lk_ingress(new_ingress);
	ck_assert_ptr_nonnull(g);
	ck_assert_str_eq(js(g, "streamKey"), js(r, "stream_key"));
	ck_assert_str_eq(js(g, "participantIdentity"), u_b);
	json_decref(g);
	{
		json_t *d = lk_last("DeleteIngress");

		ck_assert_str_eq(js(d, "ingressId"), old_ingress);
		json_decref(d);
	}
	json_decref(r);

	/* while live: 409 unless forced */
	start_stream(id);
	ck_assert_int_eq(status_of("POST", p, t_b, "{}"), 409);
	ck_assert_int_eq(status_of("POST", p, t_b, "{\"force\":\"yes\"}"), 400);
	r = call("POST", p, t_b, "{\"force\":true}", 200);
	ck_assert_ptr_null(lk_ingress(new_ingress));
	json_decref(r);
	end_stream(id);
	ck_assert_int_eq(status_of("POST", p, t_b, "{}"), 409);
	free(old_key);
	free(old_ingress);
	free(new_ingress);
	free(p);
	json_decref(s);
}
END_TEST

START_TEST(revoke_key)
{
	json_t *s = create_stream(t_b, ""), *r, *g, *req;
	const char *id = js(s, "id");
	char *p = path_of(id, "/revoke-key"), *ingress_id;

	ingress_id = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1", id, NULL);
	ck_assert_int_eq(status_of("POST", p, t_o, "{}"), 404);
	ck_assert_int_eq(status_of("POST", p, t_m, "{}"), 403);
	ck_assert_int_eq(status_of("POST", p, NULL, "{}"), 401);
	r = call("POST", p, t_mod, "{}", 200);
	ck_assert_ptr_nonnull(js(r, "stream_key_revoked_at"));
	json_decref(r);
	req = lk_last("UpdateIngress");
	ck_assert_str_eq(js(req, "ingressId"), ingress_id);
	/* proto2 optional bool false: present only because presence was set */
	ck_assert(json_is_false(json_object_get(req, "enabled")));
	json_decref(req);
	g = lk_ingress(ingress_id);
	ck_assert(json_is_false(json_object_get(g, "enabled")));
	json_decref(g);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1"
				 " AND stream_key_revoked_at IS NOT NULL", id, NULL), 1);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'stream.revoke_key'"
				 " AND target_id = $1", id, NULL), 1);
	/* a LiveKit failure changes nothing */
	{
		json_t *s2 = create_stream(t_b, "");
		char *p2 = path_of(js(s2, "id"), "/revoke-key");

		/* (UpdateIngress is idempotent, so the client retries: fail them all) */
		fault("{\"method\":\"UpdateIngress\",\"mode\":\"unavailable\",\"count\":-1}");
		ck_assert_int_eq(status_of("POST", p2, t_b, "{}"), 503);
		json_decref(it_standin("POST", "/_test/fault/clear", NULL));
		ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1"
					 " AND stream_key_revoked_at IS NULL", js(s2, "id"), NULL), 1);
		free(p2);
		json_decref(s2);
	}
	free(ingress_id);
	free(p);
	json_decref(s);
}
END_TEST

/* ---- tokens ---- */

START_TEST(publisher_and_viewer_tokens)
{
	json_t *s = create_stream(t_b, ""), *r, *claims, *video, *srcs;
	const char *id = js(s, "id");
	char *pp = path_of(id, "/publisher-token"), *pv = path_of(id, "/viewer-token"), room[64];

	snprintf(room, sizeof(room), "stream-%s", id);
	ck_assert_int_eq(status_of("POST", pp, t_m, "{}"), 403);
	ck_assert_int_eq(status_of("POST", pp, t_mod, "{}"), 403);
	ck_assert_int_eq(status_of("POST", pp, NULL, "{}"), 401);
	r = call("POST", pp, t_b, "{}", 200);
	ck_assert_str_eq(js(r, "room_name"), room);
	claims = it_verify_lk_token(js(r, "token"));
	ck_assert_ptr_nonnull(claims);
	ck_assert_str_eq(js(claims, "sub"), u_b);
	video = json_object_get(claims, "video");
	ck_assert_str_eq(js(video, "room"), room);
	ck_assert(json_is_true(json_object_get(video, "roomJoin")));
	ck_assert(json_is_true(json_object_get(video, "canPublish")));
	ck_assert(!json_is_true(json_object_get(video, "roomAdmin")));
	srcs = json_object_get(video, "canPublishSources");
	ck_assert_int_eq(json_array_size(srcs), 4);
	json_decref(claims);
	json_decref(r);

	/* viewer token: a member, subscribe only */
	r = call("POST", pv, t_m, "", 200);
	claims = it_verify_lk_token(js(r, "token"));
	ck_assert_ptr_nonnull(claims);
	ck_assert_str_eq(js(claims, "sub"), u_m);
	video = json_object_get(claims, "video");
	ck_assert_str_eq(js(video, "room"), room);
	ck_assert(json_is_true(json_object_get(video, "roomJoin")));
	ck_assert(json_is_false(json_object_get(video, "canPublish")));
	ck_assert(json_is_false(json_object_get(video, "canPublishData")));
	ck_assert(json_is_true(json_object_get(video, "canSubscribe")));
	ck_assert(json_is_true(json_object_get(video, "hidden")));
	json_decref(claims);
	json_decref(r);
	/* not live: anonymous 401, outsider 404 (a private stream is not confirmed) */
	ck_assert_int_eq(status_of("POST", pv, NULL, "{\"viewer_session_id\":\"anon-session-1\"}"), 401);
	ck_assert_int_eq(status_of("POST", pv, t_o, "{}"), 404);
	/* live: public */
	start_stream(id);
	ck_assert_int_eq(status_of("POST", pv, NULL, "{}"), 400);
	r = call("POST", pv, NULL, "{\"viewer_session_id\":\"anon-session-1\"}", 200);
	ck_assert_str_eq(js(r, "identity"), "anon-anon-session-1");
	claims = it_verify_lk_token(js(r, "token"));
	ck_assert(json_is_false(json_object_get(json_object_get(claims, "video"), "canPublish")));
	json_decref(claims);
	json_decref(r);
	json_decref(call("POST", pv, t_o, "{}", 200));
	end_stream(id);
	ck_assert_int_eq(status_of("POST", pv, t_m, "{}"), 409);
	ck_assert_int_eq(status_of("POST", pp, t_b, "{}"), 409);
	free(pp);
	free(pv);
	json_decref(s);
}
END_TEST

/* ---- viewers ---- */

/* Sixteen viewers joining one live stream at once: all get in, every view counted once. */
START_TEST(concurrent_viewer_joins)
{
	json_t *s = create_stream(t_b, ""), *r;
	const char *id = js(s, "id");
	char *pj = path_of(id, "/viewers/join"), *pg = path_of(id, "");
	pid_t kids[16];
	int ok = 0;

	start_stream(id);
	for (int i = 0; i < 16; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			char body[96];
			struct it_resp rr;
			int st;

			char url[256], xff[64];
			const char *hdr[] = { xff, NULL };

			/* 16 anonymous clients: each its own address (through the trusted proxy) */
			snprintf(body, sizeof(body), "{\"viewer_session_id\":\"concurrent-%02d-%d\"}", i,
				 (int)getppid());
			snprintf(url, sizeof(url), "%s%s", srv.base, pj);
			snprintf(xff, sizeof(xff), "X-Forwarded-For: 203.0.113.%d", i + 1);
			st = it_http("POST", url, NULL, body, hdr, &rr) == 0 ? (int)rr.status : 0;
			_exit(st == 201 ? 0 : 1);
		}
	}
	for (int i = 0; i < 16; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	ck_assert_int_eq(ok, 16);
	r = call("GET", pg, t_b, NULL, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "total_views")), 16);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "unique_viewers")), 16);
	json_decref(r);
	free(pj);
	free(pg);
	json_decref(s);
}
END_TEST

START_TEST(viewer_counting_with_heartbeats)
{
	json_t *s = create_stream(t_b, ""), *r;
	const char *id = js(s, "id");
	char *pj = path_of(id, "/viewers/join"), *ph = path_of(id, "/viewers/heartbeat"),
	     *pl = path_of(id, "/viewers/leave"), *pg = path_of(id, "");
	const char *A = "{\"viewer_session_id\":\"anon-viewer-A\"}";
	const char *B = "{\"viewer_session_id\":\"member-viewer-B\"}";
	const char *C = "{\"viewer_session_id\":\"outsider-viewer-C\"}";

	/* before live: anonymous may not watch, a member may wait */
	ck_assert_int_eq(status_of("POST", pj, NULL, A), 401);
	ck_assert_int_eq(status_of("POST", pj, t_o, C), 404);
	start_stream(id);
	ck_assert_int_eq(status_of("POST", pj, NULL, "{\"viewer_session_id\":\"short\"}"), 400);
	ck_assert_int_eq(status_of("POST", pj, NULL, "{\"viewer_session_id\":\"bad id with spaces\"}"), 400);
	ck_assert_int_eq(status_of("POST", pj, NULL, "{}"), 400);
	r = call("POST", pj, NULL, A, 201);
	ck_assert_str_eq(js(r, "viewer_session_id"), "anon-viewer-A");
	json_decref(r);
	json_decref(call("POST", pj, t_m, B, 201));
	json_decref(call("POST", pj, t_o, C, 201));  /* live streams are public */
	/* someone else's session id */
	ck_assert_int_eq(status_of("POST", pj, t_m, A), 409);
	ck_assert_int_eq(status_of("POST", ph, t_m, A), 404);
	ck_assert_int_eq(status_of("POST", ph, NULL, "{\"viewer_session_id\":\"never-joined\"}"), 404);

	r = call("GET", pg, NULL, NULL, 200);
	ck_assert_int_eq(ji(r, "current_viewers"), 3);
	json_decref(r);
	ck_assert_int_eq(db_long("SELECT current_viewers FROM nchat_streams WHERE id = $1", id, NULL), 3);

	/* only A keeps beating; the timeout is 2 s */
	for (int i = 0; i < 6; i++) {
		sleep_ms(500);
		json_decref(call("POST", ph, NULL, A, 200));
	}
	r = call("GET", pg, t_m, NULL, 200);
	ck_assert_int_eq(ji(r, "current_viewers"), 1);
	ck_assert_int_eq(ji(r, "peak_viewers"), 3);
	ck_assert_int_eq(ji(r, "total_views"), 3);
	ck_assert_int_eq(ji(r, "unique_viewers"), 3);
	json_decref(r);
	ck_assert_int_eq(db_long("SELECT current_viewers FROM nchat_streams WHERE id = $1", id, NULL), 1);

	/* B comes back: counted again; leave records the watch time */
	json_decref(call("POST", ph, t_m, B, 200));
	r = call("POST", pl, t_m, B, 200);
	ck_assert_int_ge(ji(r, "watch_duration_seconds"), 3);
	ck_assert_int_le(ji(r, "watch_duration_seconds"), 6);
	json_decref(r);
	/* leaving twice repeats the answer; heartbeat after leave is 409 */
	json_decref(call("POST", pl, t_m, B, 200));
	ck_assert_int_eq(status_of("POST", ph, t_m, B), 409);
	/* re-joining re-opens the session: one more view, not one more viewer */
	json_decref(call("POST", pj, t_m, B, 200));
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT total_views FROM nchat_streams WHERE id = $1", id, NULL), 4);
	ck_assert_int_eq(db_long("SELECT unique_viewers FROM nchat_streams WHERE id = $1", id, NULL), 3);

	/* the end closes open sessions */
	end_stream(id);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND left_at IS NULL", id, NULL), 0);
	ck_assert_int_eq(status_of("POST", pj, t_m, B), 409);
	ck_assert_int_eq(status_of("POST", ph, NULL, A), 409);
	free(pj);
	free(ph);
	free(pl);
	free(pg);
	json_decref(s);
}
END_TEST

/* ---- analytics ---- */

START_TEST(analytics_numbers)
{
	json_t *s = create_stream(t_b, ""), *r, *tl, *v;
	const char *id = js(s, "id");
	char *pa = path_of(id, "/analytics"), *pc = path_of(id, "/chat"),
	     *pr = path_of(id, "/reactions");
	char *tok, *u = new_member("Analytics Viewer", &tok);
	long long chat_sum = 0, react_sum = 0;
	size_t i;

	start_stream(id);
	/* sessions with known durations: 60 s and 30 s closed, one open for ~20 s */
	{
		const char *p[2] = { id, u };

		it_sql(db, "INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id,"
			   " joined_at, last_heartbeat_at, left_at) VALUES"
			   " ($1, $2, 'an-closed-1', now() - interval '100 s', now() - interval '40 s', now() - interval '40 s')",
			   2, p);
		it_sql(db, "INSERT INTO nchat_stream_viewers (stream_id, viewer_session_id,"
			   " joined_at, last_heartbeat_at, left_at) VALUES"
			   " ($1, 'an-closed-2', now() - interval '50 s', now() - interval '20 s', now() - interval '20 s')",
			   1, p);
		it_sql(db, "INSERT INTO nchat_stream_viewers (stream_id, viewer_session_id,"
			   " joined_at, last_heartbeat_at) VALUES"
			   " ($1, 'an-open-3', now() - interval '20 s', now())", 1, p);
	}
	json_decref(call("POST", pc, tok, "{\"content\":\"one\"}", 201));
	json_decref(call("POST", pc, tok, "{\"content\":\"two\"}", 201));
	json_decref(call("POST", pr, tok, "{\"reactionType\":\"fire\"}", 201));
	json_decref(call("POST", pr, tok, "{\"reactionType\":\"fire\"}", 201));
	json_decref(call("POST", pr, tok, "{\"reactionType\":\"heart\"}", 201));

	ck_assert_int_eq(status_of("GET", pa, NULL, NULL), 401);
	ck_assert_int_eq(status_of("GET", pa, t_m, NULL), 403);
	json_decref(call("GET", pa, t_mod, NULL, 200));
	r = call("GET", pa, t_b, NULL, 200);
	ck_assert_int_eq(ji(r, "total_views"), 3);
	ck_assert_int_eq(ji(r, "unique_viewers"), 3);
	ck_assert_int_eq(ji(r, "viewer_sessions"), 3);
	/* 60 + 30 + ~20 (the open one counts up to now) */
	ck_assert_int_ge(ji(r, "total_watch_time_seconds"), 110);
	ck_assert_int_le(ji(r, "total_watch_time_seconds"), 113);
	ck_assert_int_eq(ji(r, "average_watch_time_seconds"), ji(r, "total_watch_time_seconds") / 3);
	ck_assert_int_eq(ji(r, "chat_messages"), 2);
	ck_assert_int_eq(ji(r, "reactions_total"), 3);
	ck_assert_int_eq(ji(json_object_get(r, "reactions_by_type"), "fire"), 2);
	ck_assert_int_eq(ji(json_object_get(r, "reactions_by_type"), "heart"), 1);
	ck_assert_int_eq(ji(json_object_get(r, "reactions_by_type"), "sad"), 0);
	tl = json_object_get(r, "timeline");
	ck_assert_int_ge(json_array_size(tl), 1);
	json_array_foreach(tl, i, v) {
		chat_sum += ji(v, "chat_messages");
		react_sum += ji(v, "reactions");
	}
	ck_assert_int_eq(chat_sum, 2);
	ck_assert_int_eq(react_sum, 3);
	/* the last minute has the open viewer */
	ck_assert_int_ge(ji(json_array_get(tl, json_array_size(tl) - 1), "viewers"), 1);
	/* the viewer's own counters followed (their only open session is none: closed) */
	json_decref(r);
	end_stream(id);
	r = call("GET", pa, t_b, NULL, 200);
	ck_assert_str_eq(js(r, "status"), "ended");
	ck_assert_int_eq(ji(r, "current_viewers"), 0);
	/* the open session closed at the end: still ~110 s in all */
	ck_assert_int_ge(ji(r, "total_watch_time_seconds"), 110);
	ck_assert_int_le(ji(r, "total_watch_time_seconds"), 113);
	json_decref(r);
	free(u);
	free(tok);
	free(pa);
	free(pc);
	free(pr);
	json_decref(s);
}
END_TEST

/* ---- chat ---- */

START_TEST(chat_rules)
{
	json_t *s = create_stream(t_b, ""), *r;
	const char *id = js(s, "id");
	char *pc = path_of(id, "/chat"), *tok, *u = new_member("Chatter", &tok);
	char *tok2, *u2 = new_member("Chatter Two", &tok2);
	char *big = malloc(8192);
	long before;

	/* 2000 characters (multi-byte ones count once) is the most */
	strcpy(big, "{\"content\":\"");
	for (int i = 0; i < 2000; i++)
		strcat(big, i % 2 ? "a" : "\xc3\xa9");
	strcat(big, "\"}");
	r = call("POST", pc, tok, big, 201);
	ck_assert_int_eq(json_string_length(json_object_get(r, "content")), 3000);
	json_decref(r);
	strcpy(big, "{\"content\":\"");
	for (int i = 0; i < 2001; i++)
		strcat(big, "b");
	strcat(big, "\"}");
	before = db_long("SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1", id, NULL);
	ck_assert_int_eq(status_of("POST", pc, tok2, big), 400);
	/* whitespace only, empty, wrong type, lone surrogate, NUL */
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"  \\t\\n \"}"), 400);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"\"}"), 400);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":5}"), 400);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"x\\ud800y\"}"), 400);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"x\\u0000y\"}"), 400);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{}"), 400);
	/* blocked words: whole words, any case */
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"this is BadWord here\"}"), 400);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1", id, NULL), before);
	r = call("POST", pc, tok2, "{\"content\":\"  badwords are fine \"}", 201);
	ck_assert_str_eq(js(r, "content"), "badwords are fine");  /* trimmed */
	ck_assert_str_eq(js(r, "user_id"), u2);
	json_decref(r);
	/* anonymous may not post; an outsider may not on a stream that is not live */
	ck_assert_int_eq(status_of("POST", pc, NULL, "{\"content\":\"hi\"}"), 401);
	ck_assert_int_eq(status_of("POST", pc, t_o, "{\"content\":\"hi\"}"), 404);
	ck_assert_int_eq(status_of("POST", "/api/streams/00000000-0000-4000-8000-000000000000/chat", tok2, "{\"content\":\"hi\"}"), 404);

	/* the rate limit: 5 per 10 s per user (tok has used 1, tok2 1) */
	for (int i = 0; i < 4; i++)
		json_decref(call("POST", pc, tok, "{\"content\":\"again\"}", 201));
	{
		struct it_resp rr;
		char *ra;

		ck_assert_int_eq(it_req(&srv, "POST", pc, tok, "{\"content\":\"one too many\"}", &rr), 0);
		ck_assert_int_eq(rr.status, 429);
		ck_assert_str_eq(it_err_code(&rr), "rate_limited");
		ra = it_resp_header(&rr, "Retry-After");
		ck_assert_ptr_nonnull(ra);
		ck_assert_int_ge(atoi(ra), 1);
		ck_assert_int_le(atoi(ra), 10);
		free(ra);
		it_resp_free(&rr);
	}
	/* ended: 409 */
	end_stream(id);
	ck_assert_int_eq(status_of("POST", pc, tok2, "{\"content\":\"late\"}"), 409);
	free(big);
	free(u);
	free(tok);
	free(u2);
	free(tok2);
	free(pc);
	json_decref(s);
}
END_TEST

START_TEST(chat_disabled_and_slow_mode)
{
	json_t *s = create_stream(t_b, ",\"enableChat\":false,\"enableReactions\":false");
	char *pc = path_of(js(s, "id"), "/chat"), *pr = path_of(js(s, "id"), "/reactions");
	char *tok, *u = new_member("Slow", &tok);
	json_t *slow;
	char *ps;
	long ra;

	ck_assert(json_is_false(json_object_get(s, "enable_chat")));
	ck_assert_int_eq(status_of("POST", pc, tok, "{\"content\":\"hi\"}"), 403);
	ck_assert_int_eq(status_of("POST", pr, tok, "{\"reactionType\":\"heart\"}"), 403);

	slow = create_stream(t_b, ",\"chatSlowModeSeconds\":30");
	ps = path_of(js(slow, "id"), "/chat");
	json_decref(call("POST", ps, tok, "{\"content\":\"first\"}", 201));
	ra = retry_after_of("POST", ps, tok, "{\"content\":\"second\"}");
	ck_assert_int_ge(ra, 1);
	ck_assert_int_le(ra, 30);
	/* the broadcaster is exempt */
	json_decref(call("POST", ps, t_b, "{\"content\":\"host 1\"}", 201));
	json_decref(call("POST", ps, t_b, "{\"content\":\"host 2\"}", 201));
	free(ps);
	json_decref(slow);
	free(u);
	free(tok);
	free(pc);
	free(pr);
	json_decref(s);
}
END_TEST

START_TEST(chat_list_pin_delete)
{
	json_t *s = create_stream(t_b, ""), *r, *msgs;
	const char *id = js(s, "id");
	char *pc = path_of(id, "/chat"), *tok, *u = new_member("Lister", &tok), *ids[7], path[256];
	char *pj = path_of(id, "/viewers/join");

	/* seven messages a second apart (older first) */
	for (int i = 0; i < 7; i++) {
		char txt[16];
		const char *p[3] = { id, u, txt };

		snprintf(txt, sizeof(txt), "m%d", i);
		ids[i] = it_sql(db, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content, created_at)"
				    " VALUES ($1, $2, $3, now() - make_interval(secs => 100 - "
				    "substr($3, 2)::int)) RETURNING id", 3, p);
	}
	/* page 1: m6 m5 m4 */
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=3", id);
	r = call("GET", path, t_m, NULL, 200);
	msgs = json_object_get(r, "messages");
	ck_assert_int_eq(json_array_size(msgs), 3);
	ck_assert_str_eq(js(json_array_get(msgs, 0), "content"), "m6");
	ck_assert_str_eq(js(json_array_get(msgs, 2), "content"), "m4");
	ck_assert_str_eq(js(r, "next_before"), ids[4]);
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=3&before=%s", id, ids[4]);
	r = call("GET", path, t_m, NULL, 200);
	msgs = json_object_get(r, "messages");
	ck_assert_str_eq(js(json_array_get(msgs, 0), "content"), "m3");
	ck_assert_str_eq(js(json_array_get(msgs, 2), "content"), "m1");
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=3&before=%s", id, ids[1]);
	r = call("GET", path, t_m, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r, "messages")), 1);
	ck_assert(json_is_null(json_object_get(r, "next_before")) || !json_object_get(r, "next_before"));
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=0", id);
	ck_assert_int_eq(status_of("GET", path, t_m, NULL), 400);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?before=nope", id);
	ck_assert_int_eq(status_of("GET", path, t_m, NULL), 400);
	/* who may read: members yes, anonymous not before live, outsider not */
	ck_assert_int_eq(status_of("GET", pc, NULL, NULL), 401);
	ck_assert_int_eq(status_of("GET", pc, t_o, NULL), 404);

	/* pin m1: broadcaster or moderator only */
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s/pin", id, ids[1]);
	ck_assert_int_eq(status_of("POST", path, tok, "{}"), 403);
	ck_assert_int_eq(status_of("POST", path, NULL, "{}"), 401);
	r = call("POST", path, t_b, "{}", 200);
	ck_assert(json_is_true(json_object_get(r, "is_pinned")));
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=3&pinned_first=true", id);
	r = call("GET", path, t_m, NULL, 200);
	msgs = json_object_get(r, "messages");
	ck_assert_int_eq(json_array_size(msgs), 4);
	ck_assert_str_eq(js(json_array_get(msgs, 0), "content"), "m1");
	ck_assert_str_eq(js(json_array_get(msgs, 1), "content"), "m6");
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=10&pinned_first=true&before=%s", id, ids[4]);
	r = call("GET", path, t_m, NULL, 200);
	msgs = json_object_get(r, "messages");
	ck_assert_int_eq(json_array_size(msgs), 3); /* m3 m2 m0: the pinned m1 is not repeated */
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s/pin", id, ids[1]);
	r = call("POST", path, t_mod, "{\"pinned\":false}", 200);
	ck_assert(json_is_false(json_object_get(r, "is_pinned")));
	json_decref(r);
	snprintf(path, sizeof(path), "/api/streams/%s/chat/00000000-0000-4000-8000-000000000000/pin", id);
	ck_assert_int_eq(status_of("POST", path, t_b, "{}"), 404);

	/* delete: author, broadcaster, moderator; not another member */
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s", id, ids[6]);
	ck_assert_int_eq(status_of("DELETE", path, t_m, NULL), 403);
	ck_assert_int_eq(status_of("DELETE", path, NULL, NULL), 401);
	ck_assert_int_eq(status_of("DELETE", path, tok, NULL), 204);
	ck_assert_int_eq(status_of("DELETE", path, tok, NULL), 404);
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s", id, ids[5]);
	ck_assert_int_eq(status_of("DELETE", path, t_mod, NULL), 204);
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s", id, ids[4]);
	ck_assert_int_eq(status_of("DELETE", path, t_b, NULL), 204);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1"
				 " AND is_deleted AND deleted_at IS NOT NULL", id, NULL), 3);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'stream.chat.delete'"
				 " AND target_id = $1", id, NULL), 2);
	snprintf(path, sizeof(path), "/api/streams/%s/chat?limit=10", id);
	r = call("GET", path, t_m, NULL, 200);
	msgs = json_object_get(r, "messages");
	ck_assert_int_eq(json_array_size(msgs), 4);
	ck_assert_str_eq(js(json_array_get(msgs, 0), "content"), "m3");
	json_decref(r);

	/* the viewer's sent_chat_messages follows */
	json_decref(call("POST", pj, tok, "{\"viewer_session_id\":\"lister-session\"}", 201));
	json_decref(call("POST", pc, tok, "{\"content\":\"counted\"}", 201));
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT sent_chat_messages FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND viewer_session_id = 'lister-session'", id, NULL), 1);
	for (int i = 0; i < 7; i++)
		free(ids[i]);
	free(u);
	free(tok);
	free(pc);
	free(pj);
	json_decref(s);
}
END_TEST

/* ---- reactions ---- */

START_TEST(reactions_all_types)
{
	static const char *types[] = { "heart", "like", "fire", "clap", "laugh", "wow", "sad", "angry" };
	json_t *s = create_stream(t_b, ""), *r;
	const char *id = js(s, "id");
	char *pr = path_of(id, "/reactions"), *pj = path_of(id, "/viewers/join"), body[128];
	char *tok, *u = new_member("Reactor", &tok);
	int limited = 0;

	for (size_t i = 0; i < 8; i++) {
		snprintf(body, sizeof(body), "{\"reactionType\":\"%s\"}", types[i]);
		r = call("POST", pr, tok, body, 201);
		ck_assert_str_eq(js(r, "reaction_type"), types[i]);
		json_decref(r);
	}
	/* the per-viewer limit (10 a second, 1 back every 100 ms) counts bad requests too */
	usleep(400000);
	ck_assert_int_eq(status_of("POST", pr, tok, "{\"reactionType\":\"meh\"}"), 400);
	ck_assert_int_eq(status_of("POST", pr, tok, "{\"reactionType\":\"HEART\"}"), 400);
	ck_assert_int_eq(status_of("POST", pr, tok, "{}"), 400);
	ck_assert_int_eq(status_of("POST", pr, t_o, "{\"reactionType\":\"heart\"}"), 404);
	ck_assert_int_eq(status_of("POST", pr, NULL, "{\"reactionType\":\"heart\",\"viewer_session_id\":\"anon-react-1\"}"), 401);
	r = call("GET", pr, t_m, NULL, 200);
	for (size_t i = 0; i < 8; i++) {
		ck_assert_int_eq(ji(json_object_get(r, "counts"), types[i]), 1);
		ck_assert_int_eq(ji(json_object_get(r, "last_minute"), types[i]), 1);
	}
	ck_assert_int_eq(ji(r, "total"), 8);
	json_decref(r);
	ck_assert_int_eq(db_long("SELECT sum(count) FROM nchat_stream_reaction_counts WHERE stream_id = $1", id, NULL), 8);

	/* live: anonymous viewers react through their session */
	start_stream(id);
	json_decref(call("POST", pj, NULL, "{\"viewer_session_id\":\"anon-react-1\"}", 201));
	ck_assert_int_eq(status_of("POST", pr, NULL, "{\"reactionType\":\"heart\"}"), 400);
	ck_assert_int_eq(status_of("POST", pr, NULL, "{\"reactionType\":\"heart\",\"viewer_session_id\":\"anon-never\"}"), 404);
	json_decref(call("POST", pr, NULL, "{\"reactionType\":\"clap\",\"viewer_session_id\":\"anon-react-1\"}", 201));
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT sent_reactions FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND viewer_session_id = 'anon-react-1'", id, NULL), 1);
	json_decref(call("GET", pr, NULL, NULL, 200));

	/* the per-viewer rate limit: 10 per second */
	for (int i = 0; i < 15; i++) {
		long st = status_of("POST", pr, NULL,
			"{\"reactionType\":\"wow\",\"viewer_session_id\":\"anon-react-1\"}");

		ck_assert(st == 201 || st == 429);
		limited += st == 429;
	}
	ck_assert_int_ge(limited, 1);
	end_stream(id);
	ck_assert_int_eq(status_of("POST", pr, tok, "{\"reactionType\":\"heart\"}"), 409);
	free(u);
	free(tok);
	free(pr);
	free(pj);
	json_decref(s);
}
END_TEST

/*
 * Reactions of several workers go in one statement (streams_react_batch):
 * each one is judged on its own (its stream, its caller's rights, its
 * session) exactly as it would be alone, only those allowed are written,
 * and a row that fails the statement (a caller nchat_users does not know)
 * fails only itself.  On the service's own connection and work role.
 */
START_TEST(reactions_batch_judges_each)
{
	json_t *sa = create_stream(t_b, ""), *sb = create_stream(t_b, ""),
	       *sc = create_stream(t_b, ",\"enableReactions\":false");
	const char *a = js(sa, "id"), *b = js(sb, "id"), *c = js(sc, "id");
	char *pj = path_of(a, "/viewers/join"), ghost[37], unknown[37];
	struct streams_react_job jobs[8], *jp[8];
	struct db_conn conn;
	const struct streams_caller member = { u_m, false, false }, outsider = { u_o, false, false },
				    anon = { NULL, false, true };

	start_stream(a);
	start_stream(b);
	end_stream(b);
	start_stream(c);
	json_decref(call("POST", pj, NULL, "{\"viewer_session_id\":\"batch-anon-1\"}", 201));
	uuid_v4(ghost);
	uuid_v4(unknown);
	memset(jobs, 0, sizeof(jobs));
	jobs[0].in = (struct streams_reaction_in){ a, member, NULL, "heart" };           /* written */
	jobs[1].in = (struct streams_reaction_in){ a, outsider, NULL, "fire" };          /* may not view */
	jobs[2].in = (struct streams_reaction_in){ a, anon, "batch-anon-1", "clap" };    /* written, its session */
	jobs[3].in = (struct streams_reaction_in){ a, anon, "batch-never1", "wow" };     /* no such session */
	jobs[4].in = (struct streams_reaction_in){ ghost, member, NULL, "sad" };         /* no such stream */
	jobs[5].in = (struct streams_reaction_in){ b, member, NULL, "like" };            /* ended */
	jobs[6].in = (struct streams_reaction_in){ c, member, NULL, "laugh" };           /* disabled */
	jobs[7].in = (struct streams_reaction_in){ a, member, "batch-anon-1", "angry" }; /* not their session */
	for (int i = 0; i < 8; i++)
		jp[i] = &jobs[i];
	db_init(&conn, it_env("DATABASE_URL"), 5000);
	streams_react_batch(&conn, jp, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(jobs[i].rc == NC_OK, "job %d: %s", i, jobs[i].err.msg);
	ck_assert(jobs[0].out.s.found && jobs[0].out.s.can_view && jobs[0].out.session_ok);
	ck_assert(jobs[0].out.id[0] != '\0' && jobs[0].out.created_at[0] != '\0');
	ck_assert(jobs[1].out.s.found && !jobs[1].out.s.can_view && jobs[1].out.id[0] == '\0');
	ck_assert(jobs[2].out.s.can_view && jobs[2].out.session_ok && jobs[2].out.id[0] != '\0');
	ck_assert(!jobs[3].out.session_ok && jobs[3].out.id[0] == '\0');
	ck_assert(!jobs[4].out.s.found && jobs[4].out.id[0] == '\0');
	ck_assert(jobs[5].out.s.found && jobs[5].out.s.over && jobs[5].out.id[0] == '\0');
	ck_assert(jobs[6].out.s.found && !jobs[6].out.enable_reactions && jobs[6].out.id[0] == '\0');
	ck_assert(!jobs[7].out.session_ok && jobs[7].out.id[0] == '\0');
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = ANY"
				 " (ARRAY[$1, $2]::uuid[])", a, b), 2);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1", c, NULL), 0);
	/* each answer is its own row */
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE id = $1"
				 " AND reaction_type = 'heart' AND user_id = $2 AND viewer_id IS NULL",
				 jobs[0].out.id, u_m), 1);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions x JOIN nchat_stream_viewers v"
				 " ON v.id = x.viewer_id WHERE x.id = $1 AND x.reaction_type = 'clap'"
				 " AND x.user_id IS NULL AND v.viewer_session_id = $2",
				 jobs[2].out.id, "batch-anon-1"), 1);
	/* counted once each (the counting trigger runs once for the statement) */
	sync_counters(a);
	ck_assert_int_eq(db_long("SELECT total_reactions FROM nchat_streams WHERE id = $1", a, NULL), 2);
	ck_assert_int_eq(db_long("SELECT sent_reactions FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND viewer_session_id = $2", a, "batch-anon-1"), 1);

	/*
	 * The reaction route takes any session id of 8 to 128 characters (none
	 * with quotes, backslashes or braces can be open, the join refuses
	 * them): in the array statement itself, such a one is its own element,
	 * matches nothing, and leaves its neighbours alone.
	 */
	{
		struct streams_reaction_in in[3] = {
			{ a, anon, "odd\"one\\{x,y}", "fire" },
			{ a, member, NULL, "fire" },
			{ a, anon, "batch-anon-1", "fire" },
		};
		struct streams_reaction out[3];
		struct nc_error e = { 0 };

		ck_assert_int_eq(streams_db_reactions(&conn, 3, in, out, &e), NC_OK);
		ck_assert(out[0].s.found && !out[0].session_ok && out[0].id[0] == '\0');
		ck_assert(out[1].session_ok && out[1].id[0] != '\0');
		ck_assert(out[2].session_ok && out[2].id[0] != '\0');
		ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1"
					 " AND reaction_type = 'fire'", a, NULL), 2);
	}

	/* a caller unknown to nchat_users fails the statement, and only itself */
	memset(jobs, 0, sizeof(jobs));
	jobs[0].in = (struct streams_reaction_in){ a, member, NULL, "wow" };
	jobs[1].in = (struct streams_reaction_in){ a, { unknown, false, true }, NULL, "wow" };
	jobs[2].in = (struct streams_reaction_in){ a, anon, "batch-anon-1", "wow" };
	{
		struct streams_reaction_in in[3] = { jobs[0].in, jobs[1].in, jobs[2].in };
		struct streams_reaction out[3];
		struct nc_error e = { 0 };

		ck_assert_int_ne(streams_db_reactions(&conn, 3, in, out, &e), NC_OK);
		ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1"
					 " AND reaction_type = 'wow'", a, NULL), 0);
	}
	for (int i = 0; i < 3; i++)
		jp[i] = &jobs[i];
	streams_react_batch(&conn, jp, 3);
	ck_assert_int_eq(jobs[0].rc, NC_OK);
	ck_assert_int_eq(jobs[2].rc, NC_OK);
	ck_assert(jobs[0].out.id[0] != '\0' && jobs[2].out.id[0] != '\0');
	ck_assert_int_eq(jobs[1].rc, NC_EBADREQ);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1"
				 " AND reaction_type = 'wow'", a, NULL), 2);
	db_cleanup(&conn);

	/* Postgres unreachable: every job of the batch says so (503), nothing is retried */
	memset(jobs, 0, sizeof(jobs));
	jobs[0].in = (struct streams_reaction_in){ a, member, NULL, "sad" };
	jobs[1].in = (struct streams_reaction_in){ a, anon, "batch-anon-1", "sad" };
	{
		char url[64];

		snprintf(url, sizeof(url), "postgresql://127.0.0.1:%d/nchat", it_free_port());
		db_init(&conn, url, 1000);
	}
	streams_react_batch(&conn, jp, 2);
	ck_assert_int_eq(jobs[0].rc, NC_EUNAVAILABLE);
	ck_assert_int_eq(jobs[1].rc, NC_EUNAVAILABLE);
	db_cleanup(&conn);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1"
				 " AND reaction_type = 'sad'", a, NULL), 0);
	free(pj);
	json_decref(sa);
	json_decref(sb);
	json_decref(sc);
}
END_TEST

/* ---- list / get / auth ---- */

START_TEST(list_get_and_auth)
{
	json_t *s = create_stream(t_b, ""), *r, *v;
	const char *id = js(s, "id"), *key = js(s, "stream_key");
	char path[256], *pg = path_of(id, "");
	struct it_resp rr;
	bool found = false;
	size_t i;

	snprintf(path, sizeof(path), "/api/streams?channel_id=%s&status=preparing&limit=100", ch);
	ck_assert_int_eq(it_req(&srv, "GET", path, t_m, NULL, &rr), 0);
	ck_assert_int_eq(rr.status, 200);
	ck_assert_ptr_null(strstr(rr.body, key));
	json_array_foreach(json_object_get(rr.json, "streams"), i, v) {
		ck_assert_str_eq(js(v, "status"), "preparing");
		if (strcmp(js(v, "id"), id) == 0)
			found = true;
	}
	ck_assert(found);
	it_resp_free(&rr);
	/* the outsider sees none of this channel's streams */
	r = call("GET", path, t_o, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r, "streams")), 0);
	json_decref(r);
	/* pagination */
	snprintf(path, sizeof(path), "/api/streams?channel_id=%s&limit=1", ch);
	r = call("GET", path, t_b, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r, "streams")), 1);
	ck_assert_ptr_nonnull(js(r, "next_before"));
	{
		char p2[256];
		json_t *r2;

		snprintf(p2, sizeof(p2), "/api/streams?channel_id=%s&limit=1&before=%s", ch, js(r, "next_before"));
		r2 = call("GET", p2, t_b, NULL, 200);
		ck_assert_str_ne(js(json_array_get(json_object_get(r2, "streams"), 0), "id"),
				 js(json_array_get(json_object_get(r, "streams"), 0), "id"));
		json_decref(r2);
	}
	json_decref(r);
	ck_assert_int_eq(status_of("GET", "/api/streams", NULL, NULL), 401);
	ck_assert_int_eq(status_of("GET", "/api/streams?status=bogus", t_m, NULL), 400);
	ck_assert_int_eq(status_of("GET", "/api/streams?channel_id=x", t_m, NULL), 400);
	ck_assert_int_eq(status_of("GET", "/api/streams?limit=1000", t_m, NULL), 400);

	/* GET one */
	ck_assert_int_eq(status_of("GET", pg, NULL, NULL), 401);
	ck_assert_int_eq(status_of("GET", pg, t_o, NULL), 404);
	json_decref(call("GET", pg, t_mod, NULL, 200));
	ck_assert_int_eq(status_of("GET", "/api/streams/not-a-uuid", t_m, NULL), 400);
	ck_assert_int_eq(status_of("GET", "/api/streams/00000000-0000-4000-8000-000000000000", t_m, NULL), 404);
	start_stream(id);
	r = call("GET", pg, NULL, NULL, 200);  /* public while live */
	ck_assert_str_eq(js(r, "status"), "live");
	ck_assert_ptr_null(json_object_get(r, "stream_key_last4"));
	json_decref(r);
	end_stream(id);
	ck_assert_int_eq(status_of("GET", pg, NULL, NULL), 401);

	/* every signed-in-only endpoint refuses anonymous callers */
	{
		static const char *tails[] = { "/start", "/end", "/rotate-key", "/revoke-key",
					       "/publisher-token", "/chat" };

		for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
			char *p = path_of(id, tails[i]);

			ck_assert_int_eq(status_of("POST", p, NULL, "{}"), 401);
			free(p);
		}
		ck_assert_int_eq(status_of("POST", "/api/streams/create", NULL, "{}"), 401);
	}
	free(pg);
	json_decref(s);
}
END_TEST

/* ---- Redis down: sessions still open and close, counts degrade ---- */

/*
 * Every route under /api/streams/{id} answers a malformed {id} or
 * {messageId} with a 400 naming it, before anything else (anonymous callers
 * of the routes that allow them included), and changes nothing.
 */
START_TEST(malformed_ids_are_400)
{
	json_t *s = create_stream(t_b, "");
	const char *id = js(s, "id");
	static const char mid[] = "00000000-0000-4000-8000-000000000001";
	char *before, *after, path[160];
	const char *count_sql =
		"SELECT (SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1) || '/' ||"
		" (SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1) || '/' ||"
		" (SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1) || '/' ||"
		" (SELECT count(*) FROM nchat_rtc_audit_log WHERE target_id = $1::text) || '/' ||"
		" (SELECT status || coalesce(livekit_egress_id, '-') || coalesce(livekit_ingress_id, '-') ||"
		"   coalesce(stream_key_revoked_at::text, '-') FROM nchat_streams WHERE id = $1)";
	static const struct {
		const char *method, *tail, *body;
		int who; /* 0 anonymous, 1 the broadcaster */
		const char *param;
	} cases[] = {
		{ "GET", "", NULL, 0, "id" },
		{ "GET", "", NULL, 1, "id" },
		{ "POST", "/start", "{}", 1, "id" },
		{ "POST", "/end", "{}", 1, "id" },
		{ "POST", "/rotate-key", "{\"force\":true}", 1, "id" },
		{ "POST", "/revoke-key", "{}", 1, "id" },
		{ "POST", "/publisher-token", "{}", 1, "id" },
		{ "POST", "/viewer-token", "{\"viewer_session_id\":\"bad-id-case-1\"}", 0, "id" },
		{ "GET", "/analytics", NULL, 1, "id" },
		{ "GET", "/chat", NULL, 0, "id" },
		{ "POST", "/chat", "{\"content\":\"hi\"}", 1, "id" },
		{ "GET", "/reactions", NULL, 0, "id" },
		{ "POST", "/reactions", "{\"reactionType\":\"heart\",\"viewer_session_id\":\"bad-id-case-1\"}", 0, "id" },
		{ "POST", "/viewers/join", "{\"viewer_session_id\":\"bad-id-case-1\"}", 0, "id" },
		{ "POST", "/viewers/heartbeat", "{\"viewer_session_id\":\"bad-id-case-1\"}", 0, "id" },
		{ "POST", "/viewers/leave", "{\"viewer_session_id\":\"bad-id-case-1\"}", 0, "id" },
	};

	start_stream(id);
	before = db_str(count_sql, id, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct it_resp r;
		char want[64];

		snprintf(path, sizeof(path), "/api/streams/not-a-uuid%s", cases[i].tail);
		ck_assert_int_eq(it_req(&srv, cases[i].method, path, cases[i].who ? t_b : NULL,
					cases[i].body, &r), 0);
		ck_assert_msg(r.status == 400, "%s %s: status %ld, want 400: %s", cases[i].method,
			      path, r.status, r.body ? r.body : "");
		ck_assert_str_eq(it_err_code(&r), "bad_request");
		snprintf(want, sizeof(want), "%s must be a UUID", cases[i].param);
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"),
								   "message")), want);
		it_resp_free(&r);
	}
	/* the message id of pin and delete, and the stream id before it */
	snprintf(path, sizeof(path), "/api/streams/%s/chat/not-a-uuid/pin", id);
	ck_assert_int_eq(status_of("POST", path, t_b, "{\"pinned\":true}"), 400);
	snprintf(path, sizeof(path), "/api/streams/%s/chat/not-a-uuid", id);
	ck_assert_int_eq(status_of("DELETE", path, t_b, NULL), 400);
	snprintf(path, sizeof(path), "/api/streams/not-a-uuid/chat/%s/pin", mid);
	ck_assert_int_eq(status_of("POST", path, t_b, "{\"pinned\":true}"), 400);
	snprintf(path, sizeof(path), "/api/streams/not-a-uuid/chat/%s", mid);
	ck_assert_int_eq(status_of("DELETE", path, t_b, NULL), 400);
	/* a well-formed id of no stream is still a 404 */
	snprintf(path, sizeof(path), "/api/streams/%s/chat/%s", id, mid);
	ck_assert_int_eq(status_of("DELETE", path, t_b, NULL), 404);
	after = db_str(count_sql, id, NULL);
	ck_assert_str_eq(after, before);
	end_stream(id);
	free(before);
	free(after);
	json_decref(s);
}
END_TEST

START_TEST(redis_down_degrades)
{
	const char *env[] = { "REDIS_URL=redis://127.0.0.1:1/0", "VIEWER_HEARTBEAT_TIMEOUT_SECONDS=2", NULL };
	struct it_server down;
	struct it_resp r;
	json_t *s = create_stream(t_b, "");
	const char *id = js(s, "id");
	char *pj = path_of(id, "/viewers/join"), *ph = path_of(id, "/viewers/heartbeat"),
	     *pl = path_of(id, "/viewers/leave"), *pc = path_of(id, "/chat");
	const char *B = "{\"viewer_session_id\":\"redis-down-B\"}";

	ck_assert_int_eq(it_server_start(&down, env), 0);
	{
		char url[256];

		snprintf(url, sizeof(url), "%s%s", down.base, pj);
		ck_assert_int_eq(it_http("POST", url, t_m, B, NULL, &r), 0);
		ck_assert_int_eq(r.status, 201);
		it_resp_free(&r);
		snprintf(url, sizeof(url), "%s%s", down.base, ph);
		ck_assert_int_eq(it_http("POST", url, t_m, B, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
		snprintf(url, sizeof(url), "%s%s", down.base, pc);
		ck_assert_int_eq(it_http("POST", url, t_m, "{\"content\":\"no redis\"}", NULL, &r), 0);
		ck_assert_int_eq(r.status, 201);
		it_resp_free(&r);
		snprintf(url, sizeof(url), "%s%s", down.base, pl);
		ck_assert_int_eq(it_http("POST", url, t_m, B, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND viewer_session_id = 'redis-down-B' AND left_at IS NOT NULL", id, NULL), 1);
	it_server_stop(&down);
	free(pj);
	free(ph);
	free(pl);
	free(pc);
	json_decref(s);
}
END_TEST

/* ---- the ingress_started webhook ---- */

START_TEST(ingress_started_marks_live)
{
	json_t *s, *b, *res;
	const char *id;
	char url[256], *ingress_id, *pst;
	long st = status_of("POST", "/api/webhooks/livekit", NULL, "{}");
	int i;

	if (st == 404 || st == 405) {
		fprintf(stderr, "SKIP ingress_started_marks_live: no /api/webhooks/livekit in this build\n");
		return;
	}
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", srv.base);
	b = json_pack("{s:s}", "url", url);
	json_decref(it_standin("POST", "/_test/webhooks/auto", b));
	json_decref(b);

	s = create_stream(t_b, "");
	id = js(s, "id");
	ingress_id = db_str("SELECT livekit_ingress_id FROM nchat_streams WHERE id = $1", id, NULL);
	b = json_pack("{s:s, s:s}", "ingressId", ingress_id, "status", "ENDPOINT_PUBLISHING");
	res = it_standin("POST", "/_test/ingress/update", b);
	json_decref(b);
	json_decref(res);
	for (i = 0; i < 50; i++) {
		if (db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'live'", id, NULL) == 1)
			break;
		sleep_ms(100);
	}
	ck_assert_msg(i < 50, "ingress_started did not make the stream live");
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND started_at IS NOT NULL"
				 " AND livekit_egress_id IS NULL", id, NULL), 1);
	/* /start after the webhook: still starts the HLS egress, once */
	pst = path_of(id, "/start");
	json_decref(call("POST", pst, t_b, "{}", 200));
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'live'"
				 " AND livekit_egress_id LIKE 'EG_%'", id, NULL), 1);
	ck_assert_int_eq(status_of("POST", pst, t_b, "{}"), 409);
	/* the encoder stopping does not end the stream */
	b = json_pack("{s:s, s:s}", "ingressId", ingress_id, "status", "ENDPOINT_COMPLETE");
	json_decref(it_standin("POST", "/_test/ingress/update", b));
	json_decref(b);
	sleep_ms(500);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_streams WHERE id = $1 AND status = 'live'", id, NULL), 1);
	end_stream(id);
	b = json_pack("{s:n}", "url");
	json_decref(it_standin("POST", "/_test/webhooks/auto", b));
	json_decref(b);
	free(pst);
	free(ingress_id);
	json_decref(s);
}
END_TEST

/* ---- issue 15 #10: anonymous viewers, per client address ---- */

START_TEST(anonymous_counted_once_per_address)
{
	json_t *s = create_stream(t_b, "");
	const char *id = js(s, "id");
	char *pj = path_of(id, "/viewers/join"), *pr = path_of(id, "/reactions"), body[96];
	int limited = 0;

	start_stream(id);
	/* one client (this address), four made-up session ids: one view, one viewer */
	for (int i = 0; i < 4; i++) {
		snprintf(body, sizeof(body), "{\"viewer_session_id\":\"same-client-%d\"}", i);
		json_decref(call("POST", pj, NULL, body, 201));
	}
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT total_views FROM nchat_streams WHERE id = $1", id, NULL), 1);
	ck_assert_int_eq(db_long("SELECT unique_viewers FROM nchat_streams WHERE id = $1", id, NULL), 1);
	/* and no more open sessions than ANON_VIEWER_SESSIONS_PER_ADDRESS (4) */
	ck_assert_int_eq(retry_after_of("POST", pj, NULL, "{\"viewer_session_id\":\"same-client-5\"}"),
			 30);
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1", id,
				 NULL), 4);
	/* re-opening one of its own sessions is no new view either */
	json_decref(call("POST", pj, NULL, "{\"viewer_session_id\":\"same-client-0\"}", 200));
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT total_views FROM nchat_streams WHERE id = $1", id, NULL), 1);
	/* a signed-in viewer still counts */
	json_decref(call("POST", pj, t_m, "{\"viewer_session_id\":\"member-view-1\"}", 201));
	sync_counters(id);
	ck_assert_int_eq(db_long("SELECT unique_viewers FROM nchat_streams WHERE id = $1", id, NULL), 2);
	/* the address is never stored, only a keyed hash of it */
	ck_assert_int_eq(db_long("SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1"
				 " AND client_key LIKE '%127.0.0.1%'", id, NULL), 0);
	/* reactions: the limit (10/s) is per address, whichever session they name */
	for (int i = 0; i < 16; i++) {
		long st;

		snprintf(body, sizeof(body),
			 "{\"reactionType\":\"wow\",\"viewer_session_id\":\"same-client-%d\"}", i % 4);
		st = status_of("POST", pr, NULL, body);
		ck_assert(st == 201 || st == 429);
		limited += st == 429;
	}
	ck_assert_int_ge(limited, 1);
	free(pj);
	free(pr);
	json_decref(s);
}
END_TEST

/* ---- a hot stream: counters exact without a queue on the stream row ---- */

START_TEST(concurrent_reactions_count_exactly)
{
	json_t *s = create_stream(t_b, "");
	const char *id = js(s, "id");
	char *pr = path_of(id, "/reactions"), *pc = path_of(id, "/chat");
	char *toks[12];
	pid_t kids[12];
	long total = 0, rows = 0, types = 0, chat = 0, left = 0;

	start_stream(id);
	for (int i = 0; i < 12; i++) {
		char name[32];

		snprintf(name, sizeof(name), "Reactor %d", i);
		free(new_member(name, &toks[i]));
	}
	for (int i = 0; i < 12; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			static const char *t[] = { "heart", "fire", "clap", "wow" };
			int bad = 0;

			for (int k = 0; k < 8; k++) {
				char body[64];
				struct it_resp rr;

				snprintf(body, sizeof(body), "{\"reactionType\":\"%s\"}", t[(i + k) % 4]);
				bad += it_req(&srv, "POST", pr, toks[i], body, &rr) != 0 || rr.status != 201;
				it_resp_free(&rr);
			}
			{
				struct it_resp rr;

				bad += it_req(&srv, "POST", pc, toks[i], "{\"content\":\"hot\"}", &rr) != 0 ||
				       rr.status != 201;
				it_resp_free(&rr);
			}
			_exit(bad == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 12; i++) {
		int st;

		waitpid(kids[i], &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* whatever is pending is folded by serve within STREAM_COUNTER_FLUSH_SECONDS */
	for (int i = 0; i < 50; i++) {
		total = db_long("SELECT total_reactions FROM nchat_streams WHERE id = $1", id, NULL);
		left = db_long("SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			       id, NULL);
		if (total == 96 && left == 0)
			break;
		sleep_ms(200);
	}
	rows = db_long("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1", id, NULL);
	types = db_long("SELECT sum(count) FROM nchat_stream_reaction_counts WHERE stream_id = $1", id,
			NULL);
	chat = db_long("SELECT total_chat_messages FROM nchat_streams WHERE id = $1", id, NULL);
	ck_assert_int_eq(rows, 96);
	ck_assert_int_eq(total, 96);
	ck_assert_int_eq(types, 96);
	ck_assert_int_eq(db_long("SELECT count FROM nchat_stream_reaction_counts WHERE stream_id = $1"
				 " AND reaction_type = 'heart'", id, NULL), 24);
	ck_assert_int_eq(chat, 12);
	ck_assert_int_eq(left, 0);
	for (int i = 0; i < 12; i++)
		free(toks[i]);
	free(pr);
	free(pc);
	json_decref(s);
}
END_TEST

/* GET /api/streams lists the caller's channels' streams even where RLS does not apply. */
START_TEST(stream_list_holds_without_rls)
{
	char dsn[600], url[512];
	const char *env[] = { dsn, NULL };
	struct it_server own;
	struct it_resp r;
	json_t *s = create_stream(t_b, ""), *it;
	const char *id = js(s, "id");
	size_t i;

	snprintf(dsn, sizeof(dsn), "DATABASE_URL=%s", it_env("DATABASE_MIGRATE_URL"));
	ck_assert_int_eq(it_server_start(&own, env), 0);
	snprintf(url, sizeof(url), "%s/api/streams?limit=100", own.base);
	ck_assert_int_eq(it_http("GET", url, t_o, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	json_array_foreach(json_object_get(r.json, "streams"), i, it)
		ck_assert_str_ne(js(it, "id"), id);
	it_resp_free(&r);
	snprintf(url, sizeof(url), "%s/api/streams/%s", own.base, id);
	ck_assert_int_eq(it_http("GET", url, t_o, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	it_server_stop(&own);
	json_decref(s);
}
END_TEST

int main(void)
{
	const char *need[] = { "NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			       "DATABASE_MIGRATE_URL", "LK_STANDIN_URL", "LIVEKIT_URL",
			       "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "S3_ENDPOINT", "S3_BUCKET",
			       "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY", NULL };
	const char *env[] = { "VIEWER_HEARTBEAT_TIMEOUT_SECONDS=2", "NEXT_PUBLIC_HLS_BASE_URL=" HLS_BASE,
			      "CHAT_BLOCKED_WORDS=badword, darn", "STREAM_CHAT_RATE_LIMIT=5",
			      "STREAM_CHAT_RATE_WINDOW_SECONDS=10", "STREAM_REACTION_RATE_LIMIT=10",
			      "TRUSTED_PROXIES=127.0.0.1", NULL };
	Suite *s = suite_create("streams");
	TCase *tc = tcase_create("streams");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	db = it_db();
	ch = it_new_channel(db, "streams");
	u_b = it_new_user(db, "Broadcaster");
	u_m = it_new_user(db, "Member");
	u_o = it_new_user(db, "Outsider");
	u_mod = it_new_user(db, "Moderator");
	it_add_member(db, ch, u_b, "member");
	it_add_member(db, ch, u_m, "member");
	t_b = it_user_token(u_b, NULL, 3600);
	t_m = it_user_token(u_m, NULL, 3600);
	t_o = it_user_token(u_o, NULL, 3600);
	t_mod = it_user_token(u_mod, "user,moderator", 3600);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, create_stores_only_a_hash);
	tcase_add_test(tc, create_validation_and_rights);
	tcase_add_test(tc, create_scheduled);
	tcase_add_test(tc, create_livekit_failure_leaves_nothing);
	tcase_add_test(tc, start_and_end_lifecycle);
	tcase_add_test(tc, start_failure_changes_nothing);
	tcase_add_test(tc, scheduled_stream_goes_live);
	tcase_add_test(tc, rotate_key);
	tcase_add_test(tc, revoke_key);
	tcase_add_test(tc, publisher_and_viewer_tokens);
	tcase_add_test(tc, viewer_counting_with_heartbeats);
	tcase_add_test(tc, concurrent_viewer_joins);
	tcase_add_test(tc, anonymous_counted_once_per_address);
	tcase_add_test(tc, concurrent_reactions_count_exactly);
	tcase_add_test(tc, stream_list_holds_without_rls);
	tcase_add_test(tc, analytics_numbers);
	tcase_add_test(tc, chat_rules);
	tcase_add_test(tc, chat_disabled_and_slow_mode);
	tcase_add_test(tc, chat_list_pin_delete);
	tcase_add_test(tc, reactions_all_types);
	tcase_add_test(tc, reactions_batch_judges_each);
	tcase_add_test(tc, list_get_and_auth);
	tcase_add_test(tc, malformed_ids_are_400);
	tcase_add_test(tc, redis_down_degrades);
	tcase_add_test(tc, ingress_started_marks_live);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	it_server_stop(&srv);
	PQfinish(db);
	return failed == 0 ? 0 : 1;
}
