/*
 * check_calls.c - the calls API over HTTP against a real server (`NC_BIN
 * serve`), real Postgres and Redis and the LiveKit stand-in.
 *
 * Proves: initiate / join / decline / leave / end for 1-1, group and
 * channel calls with exactly the token grants of the call type; every
 * 400/401/403/404/409/410 path changing nothing; a LiveKit failure leaving
 * no call row; a database failure deleting the room again; host controls
 * (mute, remove, a removed user stays out); history pagination; stats with
 * validation and rate limit; ring timeouts applied by `sweep-calls` and by
 * the timer of a restarted server; joins racing each other and an end.
 *
 * The server runs with MAX_ROOM_PARTICIPANTS=3 so the room cap is
 * reachable, and without its sweep timer (CALL_SWEEP_INTERVAL_SECONDS=0)
 * except where a test starts its own.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/cache.h"
#include "harness.h"

static struct it_server srv;
static PGconn *db;

/* ---- helpers ---- */

/* A request that must answer `expect`; returns the parsed body (caller decrefs). */
static json_t *api(const struct it_server *s, const char *method, const char *path,
		   const char *token, const char *body, long expect)
{
	struct it_resp r;
	json_t *j;

	ck_assert_int_eq(it_req(s, method, path, token, body, &r), 0);
	ck_assert_msg(r.status == expect, "%s %s: status %ld, want %ld: %s", method, path,
		      r.status, expect, r.body ? r.body : "");
	j = r.json ? json_incref(r.json) : json_object();
	it_resp_free(&r);
	return j;
}

static void api_err(const char *method, const char *path, const char *token, const char *body,
		    long expect, const char *code)
{
	struct it_resp r;

	ck_assert_int_eq(it_req(&srv, method, path, token, body, &r), 0);
	ck_assert_msg(r.status == expect, "%s %s: status %ld, want %ld: %s", method, path,
		      r.status, expect, r.body ? r.body : "");
	if (code != NULL)
		ck_assert_str_eq(it_err_code(&r), code);
	it_resp_free(&r);
}

static char *tok(const char *uid)
{
	return it_user_token(uid, NULL, 3600);
}

static char *sqlv(const char *sql, const char *p1, const char *p2)
{
	const char *params[2] = { p1, p2 };

	return it_sql(db, sql, p2 ? 2 : (p1 ? 1 : 0), params);
}

static long sqln(const char *sql, const char *p1, const char *p2)
{
	const char *params[2] = { p1, p2 };

	return it_sql_long(db, sql, p2 ? 2 : (p1 ? 1 : 0), params);
}

static void ck_str(char *got, const char *want)
{
	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "got %s, want %s", got ? got : "NULL",
		      want);
	free(got);
}

static char *pstatus(const char *call, const char *user)
{
	return sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    call, user);
}

static char *cstatus(const char *call)
{
	return sqlv("SELECT status FROM nchat_calls WHERE id = $1", call, NULL);
}

/* Is the room listed by the stand-in? */
static bool room_exists(const char *room)
{
	json_t *st = it_standin("GET", "/_test/state", NULL), *r;
	size_t i;
	bool found = false;

	ck_assert_ptr_nonnull(st);
	json_array_foreach(json_object_get(st, "rooms"), i, r) {
		const char *n = json_string_value(json_object_get(json_object_get(r, "room"), "name"));

		if (n && strcmp(n, room) == 0)
			found = true;
	}
	json_decref(st);
	return found;
}

/* The sorted canPublishSources of a token, joined by ','. */
static void check_grants(const char *token, const char *user, const char *room,
			 const char *const *want)
{
	json_t *claims = it_verify_lk_token(token), *video, *src;
	size_t n = 0;

	ck_assert_msg(claims != NULL, "LiveKit refused the token");
	ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), user);
	video = json_object_get(claims, "video");
	ck_assert_str_eq(json_string_value(json_object_get(video, "room")), room);
	ck_assert(json_is_true(json_object_get(video, "roomJoin")));
	ck_assert(!json_is_true(json_object_get(video, "roomAdmin")));
	ck_assert(!json_is_true(json_object_get(video, "roomCreate")));
	ck_assert(!json_is_true(json_object_get(video, "roomList")));
	ck_assert(!json_is_true(json_object_get(video, "roomRecord")));
	ck_assert(json_object_get(video, "canPublishData") == NULL ||
		  json_is_true(json_object_get(video, "canPublishData")));
	src = json_object_get(video, "canPublishSources");
	ck_assert(json_is_array(src));
	for (; want[n]; n++) {
		bool found = false;
		size_t i;
		json_t *v;

		json_array_foreach(src, i, v)
			if (strcmp(json_string_value(v), want[n]) == 0)
				found = true;
		ck_assert_msg(found, "source %s missing", want[n]);
	}
	ck_assert_int_eq(json_array_size(src), n);
	json_decref(claims);
}

static json_t *initiate(const char *caller, const char *body, long expect)
{
	char *t = tok(caller);
	json_t *j = api(&srv, "POST", "/api/calls/initiate", t, body, expect);

	free(t);
	return j;
}

static char *call_path(const char *id, const char *suffix)
{
	char *p;

	ck_assert(asprintf(&p, "/api/calls/%s%s", id, suffix) > 0);
	return p;
}

static json_t *act(const char *user, const char *id, const char *suffix, const char *body,
		   long expect)
{
	char *t = tok(user), *p = call_path(id, suffix);
	json_t *j = api(&srv, "POST", p, t, body ? body : "{}", expect);

	free(t);
	free(p);
	return j;
}

static char *start_1to1(const char *a, const char *b, const char *type)
{
	char body[256];
	json_t *j;
	char *id;

	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"%s\"}", b, type);
	j = initiate(a, body, 201);
	id = strdup(json_string_value(json_object_get(j, "callId")));
	json_decref(j);
	return id;
}

/* ---- tests ---- */

START_TEST(one_to_one_happy_path)
{
	char *a = it_new_user(db, "Alice"), *b = it_new_user(db, "Bob"), body[256], room[64];
	const char *audio[] = { "microphone", NULL };
	json_t *j, *claims, *c, *p, *k;
	const char *id;
	char *ta, *path;
	size_t i;

	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\","
		 "\"metadata\":{\"topic\":\"standup\"}}", b);
	j = initiate(a, body, 201);
	id = json_string_value(json_object_get(j, "callId"));
	snprintf(room, sizeof(room), "call-%s", id);
	ck_assert_str_eq(json_string_value(json_object_get(j, "roomName")), room);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "participants")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(j, "livekitUrl")), it_env("LIVEKIT_URL"));
	ck_assert(json_is_array(json_object_get(j, "iceServers")));
	ck_assert(json_array_size(json_object_get(j, "iceServers")) >= 1);
	ck_assert(json_is_string(json_object_get(j, "expiresAt")));
	check_grants(json_string_value(json_object_get(j, "token")), a, room, audio);
	claims = it_verify_lk_token(json_string_value(json_object_get(j, "token")));
	ck_assert_str_eq(json_string_value(json_object_get(claims, "name")), "Alice");
	json_decref(claims);
	ck_assert(room_exists(room));

	ck_str(cstatus(id), "ringing");
	ck_str(pstatus(id, a), "joined");
	ck_str(pstatus(id, b), "ringing");
	ck_str(sqlv("SELECT is_group_call::text FROM nchat_calls WHERE id = $1", id, NULL), "false");
	ck_str(sqlv("SELECT metadata->>'topic' FROM nchat_calls WHERE id = $1", id, NULL), "standup");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_calls WHERE id = $1 AND ring_expires_at >"
			      " now() + interval '30 seconds'", id, NULL), 1);

	/* Bob joins: the call becomes active. */
	c = act(b, id, "/join", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(c, "callType")), "audio");
	ck_assert_str_eq(json_string_value(json_object_get(c, "roomName")), room);
	check_grants(json_string_value(json_object_get(c, "token")), b, room, audio);
	/*
	 * A re-join a moment later (past the second a fresh token's nbf would
	 * show) gets the same token and its own expiry; a new name, a new token.
	 */
	usleep(1100000);
	k = act(b, id, "/join", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(k, "token")),
			 json_string_value(json_object_get(c, "token")));
	ck_assert_str_eq(json_string_value(json_object_get(k, "expiresAt")),
			 json_string_value(json_object_get(c, "expiresAt")));
	json_decref(k);
	ck_str(sqlv("UPDATE nchat_users SET display_name = 'Robert' WHERE id = $1"
		    " RETURNING display_name", b, NULL), "Robert");
	k = act(b, id, "/join", NULL, 200);
	ck_assert_str_ne(json_string_value(json_object_get(k, "token")),
			 json_string_value(json_object_get(c, "token")));
	claims = it_verify_lk_token(json_string_value(json_object_get(k, "token")));
	ck_assert_str_eq(json_string_value(json_object_get(claims, "name")), "Robert");
	json_decref(claims);
	json_decref(k);
	json_decref(c);
	ck_str(cstatus(id), "active");
	ck_str(pstatus(id, b), "joined");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_calls WHERE id = $1 AND started_at IS NOT NULL",
			      id, NULL), 1);

	/* GET shows both participants with track states and presence. */
	ta = tok(a);
	path = call_path(id, "");
	c = api(&srv, "GET", path, ta, NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "active");
	ck_assert_str_eq(json_string_value(json_object_get(c, "callType")), "audio");
	ck_assert_int_eq(json_array_size(json_object_get(c, "participants")), 2);
	json_array_foreach(json_object_get(c, "participants"), i, p) {
		ck_assert(json_is_boolean(json_object_get(p, "isAudioEnabled")));
		ck_assert(json_is_boolean(json_object_get(p, "isVideoEnabled")));
		ck_assert(json_is_boolean(json_object_get(p, "isScreenSharing")));
		if (strcmp(json_string_value(json_object_get(p, "userId")), b) == 0) {
			ck_assert(json_is_true(json_object_get(p, "present")));
			ck_assert(json_is_true(json_object_get(p, "busy")));
		}
	}
	json_decref(c);

	/* Bob leaves: Alice is still in, the call stays active. */
	json_decref(act(b, id, "/leave", NULL, 200));
	ck_str(pstatus(id, b), "left");
	ck_str(cstatus(id), "active");
	c = api(&srv, "GET", path, ta, NULL, 200);
	json_array_foreach(json_object_get(c, "participants"), i, p)
		if (strcmp(json_string_value(json_object_get(p, "userId")), b) == 0)
			ck_assert(json_is_false(json_object_get(p, "present")));
	json_decref(c);

	/* Alice ends it: room deleted, rows closed, audited. */
	c = act(a, id, "/end", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "ended");
	json_decref(c);
	ck_str(cstatus(id), "ended");
	ck_str(sqlv("SELECT end_reason FROM nchat_calls WHERE id = $1", id, NULL), "ended_by_initiator");
	ck_str(pstatus(id, a), "left");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
			      " AND status = 'left' AND left_at IS NOT NULL", id, NULL), 2);
	ck_assert(!room_exists(room));
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'call.end'"
			      " AND target_id = $1", id, NULL), 1);
	/* Joining an ended call: 410; ending again: 200, nothing new. */
	json_decref(act(b, id, "/join", NULL, 410));
	json_decref(act(a, id, "/end", NULL, 200));
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'call.end'"
			      " AND target_id = $1", id, NULL), 1);
	free(path);
	free(ta);
	json_decref(j);
	free(a);
	free(b);
}
END_TEST

START_TEST(group_and_channel_calls)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *c = it_new_user(db, "C");
	char *d = it_new_user(db, "D"), *ch = it_new_channel(db, "general"), body[512], room[64];
	const char *video[] = { "camera", "microphone", "screen_share", "screen_share_audio", NULL };
	const char *screen[] = { "screen_share", "screen_share_audio", "microphone", NULL };
	json_t *j, *k;
	const char *id;

	/* Group: duplicates and the caller are dropped. */
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\",\"%s\",\"%s\"],"
		 "\"type\":\"video\"}", b, c, b, a);
	j = initiate(a, body, 201);
	id = json_string_value(json_object_get(j, "callId"));
	snprintf(room, sizeof(room), "call-%s", id);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "participants")), 3);
	check_grants(json_string_value(json_object_get(j, "token")), a, room, video);
	ck_str(sqlv("SELECT is_group_call::text FROM nchat_calls WHERE id = $1", id, NULL), "true");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1", id,
			      NULL), 3);
	/* B declines: C still ringing, call still ringing. */
	json_decref(act(b, id, "/decline", NULL, 200));
	ck_str(pstatus(id, b), "declined");
	ck_str(cstatus(id), "ringing");
	/* C declines too: nobody left, the call is declined and its room deleted. */
	k = act(c, id, "/decline", NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(k, "status")), "declined");
	json_decref(k);
	ck_str(cstatus(id), "declined");
	ck_str(pstatus(id, a), "left");
	ck_assert(!room_exists(room));
	json_decref(j);

	/* Channel call without targets invites every other member. */
	it_add_member(db, ch, a, "member");
	it_add_member(db, ch, b, "member");
	it_add_member(db, ch, c, "member");
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"type\":\"screen_share\"}", ch);
	j = initiate(a, body, 201);
	id = json_string_value(json_object_get(j, "callId"));
	snprintf(room, sizeof(room), "call-%s", id);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "participants")), 3);
	check_grants(json_string_value(json_object_get(j, "token")), a, room, screen);
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
			      " AND status = 'ringing'", id, NULL), 2);
	/* D joins the channel later and may join the call uninvited. */
	it_add_member(db, ch, d, "member");
	k = act(b, id, "/join", NULL, 200);
	check_grants(json_string_value(json_object_get(k, "token")), b, room, screen);
	json_decref(k);
	/* cap 3: A, B joined, C ringing; D joins -> 3 joined */
	json_decref(act(d, id, "/join", NULL, 200));
	ck_str(sqlv("SELECT role FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, d), "participant");
	/* C would be the fourth: the room cap refuses (409), nothing changes. */
	json_decref(act(c, id, "/join", NULL, 409));
	ck_str(pstatus(id, c), "ringing");
	/* A channel with more members than the cap, no targets: 409. */
	{
		char *e = it_new_user(db, "E");

		it_add_member(db, ch, e, "member");
		j = (json_decref(j), initiate(a, body, 409));
		free(e);
	}
	json_decref(j);
	free(a); free(b); free(c); free(d); free(ch);
}
END_TEST

START_TEST(bad_requests_change_nothing)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *x = it_new_user(db, "X");
	char *ch = it_new_channel(db, "c"), body[512], *ta = tok(a);
	long before = sqln("SELECT count(*) FROM nchat_calls", NULL, NULL);
	char *id, *path;
	static const char *ghost = "3f1e0000-0000-4000-8000-000000000001";

	it_add_member(db, ch, a, "member");
	api_err("POST", "/api/calls/initiate", NULL, "{\"type\":\"audio\"}", 401, "unauthorized");
	api_err("POST", "/api/calls/initiate", ta, "{\"type\":\"audio\"}", 400, "bad_request");
	api_err("POST", "/api/calls/initiate", ta, NULL, 400, "bad_request"); /* no body at all */
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\"}", b);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"hologram\"}", b);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	api_err("POST", "/api/calls/initiate", ta, "{\"targetUserId\":\"nope\",\"type\":\"audio\"}",
		400, "bad_request");
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", a);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\",\"metadata\":[1]}", b);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	{
		char *big = malloc(6000);

		memset(big, 'x', 5000);
		big[5000] = '\0';
		snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\",\"metadata\":{\"k\":\"", b);
		char *full;
		ck_assert(asprintf(&full, "%s%s\"}}", body, big) > 0);
		api_err("POST", "/api/calls/initiate", ta, full, 400, "bad_request");
		free(full);
		free(big);
	}
	/* more invitees than the room holds (cap 3 -> at most 2) */
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\",\"%s\"],\"type\":\"audio\"}",
		 b, x, ghost);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"audio\"}", b, ghost);
	api_err("POST", "/api/calls/initiate", ta, body, 404, "not_found");
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"type\":\"audio\"}", ghost);
	api_err("POST", "/api/calls/initiate", ta, body, 404, "not_found");
	/* b is not a channel member */
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"targetUserId\":\"%s\",\"type\":\"audio\"}",
		 ch, b);
	api_err("POST", "/api/calls/initiate", ta, body, 403, "forbidden");
	/* the caller is not a member */
	{
		char *tx = tok(x);

		snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"type\":\"audio\"}", ch);
		api_err("POST", "/api/calls/initiate", tx, body, 403, "forbidden");
		free(tx);
	}
	/* nobody else in the channel */
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"type\":\"audio\"}", ch);
	api_err("POST", "/api/calls/initiate", ta, body, 400, "bad_request");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_calls", NULL, NULL), before);

	/* A real call, then the wrong people poking at it. */
	id = start_1to1(a, b, "audio");
	{
		char *tx = tok(x), *tb = tok(b);

		path = call_path(id, "/join");
		api_err("POST", path, tx, "{}", 403, "forbidden");
		free(path);
		path = call_path(id, "/decline");
		api_err("POST", path, tx, "{}", 403, "forbidden");
		api_err("POST", path, ta, "{}", 403, "forbidden"); /* the initiator cannot decline */
		free(path);
		path = call_path(id, "/end");
		api_err("POST", path, tx, "{}", 404, "not_found"); /* cannot see it */
		api_err("POST", path, tb, "{}", 403, "forbidden"); /* sees it, not the host */
		free(path);
		path = call_path(id, "");
		api_err("GET", path, tx, NULL, 404, "not_found");
		free(path);
		path = call_path(id, "/leave");
		api_err("POST", path, tb, "{}", 409, "conflict"); /* still ringing */
		free(path);
		ck_assert(asprintf(&path, "/api/calls/%s/join", ghost) > 0);
		api_err("POST", path, tb, "{}", 404, "not_found");
		free(path);
		api_err("POST", "/api/calls/not-a-uuid/join", tb, "{}", 400, "bad_request");
		api_err("GET", "/api/calls?limit=0", tb, NULL, 400, "bad_request");
		api_err("GET", "/api/calls?limit=101", tb, NULL, 400, "bad_request");
		api_err("GET", "/api/calls?status=weird", tb, NULL, 400, "bad_request");
		api_err("GET", "/api/calls?before=%21%21", tb, NULL, 400, "bad_request");
		free(tx);
		free(tb);
	}
	ck_str(cstatus(id), "ringing");
	ck_str(pstatus(id, b), "ringing");
	free(id);
	free(ta);
	free(a); free(b); free(x); free(ch);
}
END_TEST

START_TEST(livekit_failure_leaves_no_call)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), body[256], *ta = tok(a);
	long before = sqln("SELECT count(*) FROM nchat_calls WHERE initiator_id = $1", a, NULL);
	json_t *f;

	f = json_pack("{s:s, s:s, s:i}", "method", "CreateRoom", "mode", "unavailable", "count", 5);
	json_decref(it_standin("POST", "/_test/fault", f));
	json_decref(f);
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", b);
	api_err("POST", "/api/calls/initiate", ta, body, 503, "livekit_unavailable");
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	f = json_pack("{s:s, s:s, s:i, s:s, s:i}", "method", "CreateRoom", "mode", "error", "count", 1,
		      "code", "internal", "status", 500);
	json_decref(it_standin("POST", "/_test/fault", f));
	json_decref(f);
	api_err("POST", "/api/calls/initiate", ta, body, 502, "livekit_unavailable");
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_calls WHERE initiator_id = $1", a, NULL),
			 before);
	free(ta); free(a); free(b);
}
END_TEST

START_TEST(db_failure_deletes_room)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), body[256], *ta = tok(a);
	json_t *reqs, *q;
	size_t i;
	int deleted = 0, created = 0;

	/* A trigger (owner connection) that refuses calls carrying this marker. */
	free(it_sql(db, "CREATE OR REPLACE FUNCTION test_fail_call() RETURNS trigger LANGUAGE plpgsql"
		    " AS $$ BEGIN IF NEW.metadata ? 'failme' THEN RAISE EXCEPTION 'test failure';"
		    " END IF; RETURN NEW; END $$", 0, NULL));
	free(it_sql(db, "DROP TRIGGER IF EXISTS test_fail_call ON nchat_calls", 0, NULL));
	free(it_sql(db, "CREATE TRIGGER test_fail_call BEFORE INSERT ON nchat_calls FOR EACH ROW"
		    " EXECUTE FUNCTION test_fail_call()", 0, NULL));
	json_decref(it_standin("POST", "/_test/reset", NULL));
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"video\","
		 "\"metadata\":{\"failme\":true}}", b);
	api_err("POST", "/api/calls/initiate", ta, body, 500, "internal");
	free(it_sql(db, "DROP TRIGGER test_fail_call ON nchat_calls", 0, NULL));
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_calls WHERE initiator_id = $1", a, NULL), 0);
	reqs = it_standin("GET", "/_test/requests", NULL);
	json_array_foreach(reqs, i, q) {
		const char *m = json_string_value(json_object_get(q, "method"));

		if (strcmp(m, "CreateRoom") == 0)
			created++;
		if (strcmp(m, "DeleteRoom") == 0)
			deleted++;
	}
	json_decref(reqs);
	ck_assert_int_eq(created, 1);
	ck_assert_int_eq(deleted, 1);
	{
		json_t *st = it_standin("GET", "/_test/state", NULL);

		ck_assert_int_eq(json_array_size(json_object_get(st, "rooms")), 0);
		json_decref(st);
	}
	free(ta); free(a); free(b);
}
END_TEST

START_TEST(host_controls)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *c = it_new_user(db, "C");
	char body[512], room[64], *id, *path, *tb;
	json_t *p, *k;

	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"video\"}", b, c);
	k = initiate(a, body, 201);
	id = strdup(json_string_value(json_object_get(k, "callId")));
	json_decref(k);
	snprintf(room, sizeof(room), "call-%s", id);
	json_decref(act(b, id, "/join", NULL, 200));
	json_decref(act(c, id, "/join", NULL, 200));
	/* B "connects" with a microphone track (stand-in participant). */
	p = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "room", room, "identity", b, "tracks",
		      "sid", "TR_mic_b", "type", "AUDIO", "source", "MICROPHONE");
	json_decref(it_standin("POST", "/_test/participants", p));
	json_decref(p);

	/* Only the host. */
	tb = tok(c);
	ck_assert(asprintf(&path, "/api/calls/%s/participants/%s/mute", id, b) > 0);
	api_err("POST", path, tb, "{\"source\":\"microphone\",\"muted\":true}", 403, "forbidden");
	free(tb);
	tb = tok(a);
	api_err("POST", path, tb, "{\"source\":\"ears\",\"muted\":true}", 400, "bad_request");
	api_err("POST", path, tb, NULL, 400, "bad_request");
	api_err("POST", path, tb, "{\"source\":\"camera\",\"muted\":true}", 404, "not_found");
	k = api(&srv, "POST", path, tb, "{\"source\":\"microphone\",\"muted\":true}", 200);
	ck_assert_str_eq(json_string_value(json_object_get(k, "trackSid")), "TR_mic_b");
	json_decref(k);
	/* remote unmute is refused by LiveKit's default config: 409 */
	api_err("POST", path, tb, "{\"source\":\"microphone\",\"muted\":false}", 409, "conflict");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_rtc_audit_log WHERE action ="
			      " 'call.participant.mute' AND target_id = $1", id, NULL), 1);
	{
		json_t *reqs = it_standin("GET", "/_test/requests?method=MutePublishedTrack", NULL), *q;
		size_t i;
		int ok = 0;

		json_array_foreach(reqs, i, q) {
			json_t *rq = json_object_get(q, "request");

			if (rq && strcmp(json_string_value(json_object_get(rq, "trackSid")), "TR_mic_b") == 0 &&
			    json_is_true(json_object_get(rq, "muted")))
				ok++;
		}
		ck_assert_int_ge(ok, 1);
		json_decref(reqs);
	}
	free(path);

	/* Remove C (not connected: not_found is fine); C can never come back. */
	ck_assert(asprintf(&path, "/api/calls/%s/participants/%s/remove", id, c) > 0);
	k = api(&srv, "POST", path, tb, "{}", 200);
	json_decref(k);
	free(path);
	ck_str(pstatus(id, c), "removed");
	ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_rtc_audit_log WHERE action ="
			      " 'call.participant.remove' AND target_id = $1", id, NULL), 1);
	json_decref(act(c, id, "/join", NULL, 403));
	/* Remove B (connected): RemoveParticipant reaches LiveKit. */
	ck_assert(asprintf(&path, "/api/calls/%s/participants/%s/remove", id, b) > 0);
	json_decref(api(&srv, "POST", path, tb, "{}", 200));
	free(path);
	{
		json_t *reqs = it_standin("GET", "/_test/requests?method=RemoveParticipant", NULL);

		ck_assert_int_ge(json_array_size(reqs), 2);
		json_decref(reqs);
	}
	ck_str(pstatus(id, b), "removed");
	ck_str(cstatus(id), "active"); /* the host is still in */
	free(tb);
	free(id);
	free(a); free(b); free(c);
}
END_TEST

START_TEST(history_and_stats)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *x = it_new_user(db, "X");
	char *ids[5], *ta = tok(a), *tb = tok(b), *tx = tok(x), *path, url[512];
	json_t *page, *items;
	const char *cursor;
	int seen = 0;

	for (int i = 0; i < 5; i++)
		ids[i] = start_1to1(a, b, i % 2 ? "video" : "audio");
	json_decref(act(a, ids[0], "/end", NULL, 200));
	/* Page through A's history two at a time, newest first. */
	page = api(&srv, "GET", "/api/calls?limit=2", ta, NULL, 200);
	for (;;) {
		size_t i;
		json_t *it;

		items = json_object_get(page, "items");
		json_array_foreach(items, i, it) {
			const char *id = json_string_value(json_object_get(it, "id"));

			for (int k = 0; k < 5; k++)
				if (strcmp(id, ids[4 - seen]) == 0 && k == 0)
					seen++, k = 5;
			ck_assert(json_is_array(json_object_get(it, "participants")));
		}
		cursor = json_string_value(json_object_get(page, "nextCursor"));
		if (cursor == NULL || seen >= 5)
			break;
		snprintf(url, sizeof(url), "/api/calls?limit=2&before=%s", cursor);
		json_decref(page);
		page = api(&srv, "GET", url, ta, NULL, 200);
	}
	json_decref(page);
	ck_assert_int_eq(seen, 5);
	/* status filter */
	page = api(&srv, "GET", "/api/calls?status=ended&limit=100", ta, NULL, 200);
	{
		size_t i;
		json_t *it;
		int found = 0;

		json_array_foreach(json_object_get(page, "items"), i, it) {
			ck_assert_str_eq(json_string_value(json_object_get(it, "status")), "ended");
			if (strcmp(json_string_value(json_object_get(it, "id")), ids[0]) == 0)
				found = 1;
		}
		ck_assert_int_eq(found, 1);
	}
	json_decref(page);
	/* X sees none of them */
	page = api(&srv, "GET", "/api/calls", tx, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(page, "items")), 0);
	json_decref(page);

	/* Stats: validated, participant only, rate limited. */
	path = call_path(ids[1], "/stats");
	api_err("POST", path, tb, "{\"packetLossPct\":101}", 400, "bad_request");
	api_err("POST", path, tb, "{\"iceConnectionState\":\"weird\"}", 400, "bad_request");
	api_err("POST", path, tb, "{\"rttMs\":\"fast\"}", 400, "bad_request");
	api_err("POST", path, tb, NULL, 400, "bad_request"); /* no body: no report of defaults */
	api_err("POST", path, tx, "{\"rttMs\":10}", 404, "not_found");
	page = api(&srv, "POST", path, tb, "{\"iceConnectionState\":\"connected\","
		   "\"localCandidateType\":\"relay\",\"remoteCandidateType\":\"srflx\","
		   "\"turnUsed\":true,\"rttMs\":42.5,\"jitterMs\":3,\"packetLossPct\":1.5,"
		   "\"bitrateKbps\":900,\"quality\":\"good\"}", 201);
	json_decref(page);
	{
		struct it_resp r;
		char *ra;

		ck_assert_int_eq(it_req(&srv, "POST", path, tb, "{\"rttMs\":1}", &r), 0);
		ck_assert_int_eq(r.status, 429);
		ra = it_resp_header(&r, "Retry-After");
		ck_assert_ptr_nonnull(ra);
		free(ra);
		it_resp_free(&r);
	}
	ck_str(sqlv("SELECT concat_ws(',', ice_connection_state, local_candidate_type,"
		    " remote_candidate_type, turn_used, rtt_ms, packet_loss_pct, bitrate_kbps, quality)"
		    " FROM nchat_webrtc_connections WHERE call_id = $1 AND user_id = $2", ids[1], b),
	       "connected,relay,srflx,t,42.5,1.5,900,good");
	ck_str(sqlv("SELECT count(*)::text FROM nchat_webrtc_connections WHERE call_id = $1", ids[1],
		    NULL), "1");
	free(path);
	for (int i = 0; i < 5; i++)
		free(ids[i]);
	free(ta); free(tb); free(tx);
	free(a); free(b); free(x);
}
END_TEST

/* Run `NC_BIN sweep-calls` with extra env; returns its stdout line. */
static char *run_sweep(const char *extra)
{
	char cmd[1024], line[256] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s %s sweep-calls 2>/dev/null", extra ? extra : "", it_env("NC_BIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	return strdup(line);
}

START_TEST(ring_timeout_by_sweep)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *c = it_new_user(db, "C");
	char *id1, *id2, body[256], *line, room[64];
	json_t *k;

	id1 = start_1to1(a, b, "audio");
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"audio\"}", b, c);
	k = initiate(a, body, 201);
	id2 = strdup(json_string_value(json_object_get(k, "callId")));
	json_decref(k);
	json_decref(act(b, id2, "/join", NULL, 200));
	/* Pretend the ring time is over. */
	free(sqlv("UPDATE nchat_calls SET ring_expires_at = now() - interval '1 second'"
		  " WHERE id IN ($1, $2)", id1, id2));
	line = run_sweep(NULL);
	ck_assert_msg(strncmp(line, "sweep-calls: ", 13) == 0, "%s", line);
	ck_assert_msg(strstr(line, "missed") != NULL, "%s", line);
	free(line);
	ck_str(cstatus(id1), "missed");
	ck_str(sqlv("SELECT end_reason FROM nchat_calls WHERE id = $1", id1, NULL), "ring_timeout");
	ck_str(pstatus(id1, b), "missed");
	ck_str(pstatus(id1, a), "left");
	snprintf(room, sizeof(room), "call-%s", id1);
	ck_assert(!room_exists(room));
	/* the answered group call stays active; only C is missed */
	ck_str(cstatus(id2), "active");
	ck_str(pstatus(id2, c), "missed");
	ck_str(pstatus(id2, b), "joined");
	free(id1); free(id2);
	free(a); free(b); free(c);
}
END_TEST

START_TEST(ring_timeout_survives_restart)
{
	static const char *env[] = { "RING_TIMEOUT_SECONDS=1", "CALL_SWEEP_INTERVAL_SECONDS=1",
				     "MAX_ROOM_PARTICIPANTS=3", NULL };
	struct it_server s2;
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), body[256], *ta = tok(a), *id, *st;
	json_t *k;

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"video\"}", b);
	k = api(&s2, "POST", "/api/calls/initiate", ta, body, 201);
	id = strdup(json_string_value(json_object_get(k, "callId")));
	json_decref(k);
	/* The instance dies at once (before any tick could see the expiry). */
	it_server_kill(&s2);
	sleep(2);
	ck_str(cstatus(id), "ringing"); /* nobody swept while no server ran */
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	for (int i = 0; i < 50; i++) {
		st = cstatus(id);
		if (strcmp(st, "missed") == 0) {
			free(st);
			break;
		}
		free(st);
		usleep(200 * 1000);
	}
	ck_str(cstatus(id), "missed");
	ck_str(pstatus(id, b), "missed");
	ck_assert_int_eq(it_server_stop(&s2), 0);
	free(id); free(ta); free(a); free(b);
}
END_TEST

/* ---- concurrency ---- */

struct racer {
	const char *method;
	char path[256];
	char *token;
	long status;
};

static void *race_one(void *arg)
{
	struct racer *r = arg;
	struct it_resp resp;

	if (it_req(&srv, r->method, r->path, r->token, "{}", &resp) == 0) {
		r->status = resp.status;
		it_resp_free(&resp);
	}
	return NULL;
}

static void race(struct racer *rs, int n)
{
	pthread_t th[8];

	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, race_one, &rs[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

START_TEST(concurrent_joins_and_end)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *c = it_new_user(db, "C");
	char body[256], *id;
	struct racer rs[2];
	json_t *k;

	for (int round = 0; round < 5; round++) {
		snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"audio\"}", b, c);
		k = initiate(a, body, 201);
		id = strdup(json_string_value(json_object_get(k, "callId")));
		json_decref(k);
		/* two invitees at once: both joined, call active once */
		memset(rs, 0, sizeof(rs));
		rs[0].method = rs[1].method = "POST";
		snprintf(rs[0].path, sizeof(rs[0].path), "/api/calls/%s/join", id);
		snprintf(rs[1].path, sizeof(rs[1].path), "/api/calls/%s/join", id);
		rs[0].token = tok(b);
		rs[1].token = tok(c);
		race(rs, 2);
		ck_assert_int_eq(rs[0].status, 200);
		ck_assert_int_eq(rs[1].status, 200);
		ck_str(cstatus(id), "active");
		ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
				      " AND status = 'joined'", id, NULL), 3);
		free(rs[0].token);
		free(rs[1].token);
		/* C leaves, then the host ends while C re-joins */
		json_decref(act(c, id, "/leave", NULL, 200));
		memset(rs, 0, sizeof(rs));
		rs[0].method = rs[1].method = "POST";
		snprintf(rs[0].path, sizeof(rs[0].path), "/api/calls/%s/end", id);
		snprintf(rs[1].path, sizeof(rs[1].path), "/api/calls/%s/join", id);
		rs[0].token = tok(a);
		rs[1].token = tok(c);
		race(rs, 2);
		ck_assert_int_eq(rs[0].status, 200);
		ck_assert_msg(rs[1].status == 200 || rs[1].status == 410, "join: %ld", rs[1].status);
		ck_str(cstatus(id), "ended");
		/* whatever the order: nobody is left joined or ringing in an ended call */
		ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
				      " AND status IN ('joined', 'ringing', 'invited')", id, NULL), 0);
		ck_assert_int_eq(sqln("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
				      " AND status = 'left' AND left_at IS NULL", id, NULL), 0);
		free(rs[0].token);
		free(rs[1].token);
		free(id);
	}
	free(a); free(b); free(c);
}
END_TEST

/* Entries of user's realtime replay log (Redis stream) of type `type`. */
static long rt_log_count(const char *user, const char *type)
{
	struct rds_conn rc;
	struct nc_error err = {0};
	redisReply *rep;
	char needle[64];
	long n = 0;

	ck_assert_int_eq(rds_init(&rc, it_env("REDIS_URL"), 2000), 0);
	rep = rds_cmd(&rc, &err, "XRANGE nchat:rtlog:user:%s - +", user);
	ck_assert_ptr_nonnull(rep);
	snprintf(needle, sizeof(needle), "\"type\":\"%s\"", type);
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		redisReply *f = rep->element[i]->element[1];

		for (size_t k = 1; k < f->elements; k += 2)
			if (strstr(f->element[k]->str, needle) != NULL)
				n++;
	}
	freeReplyObject(rep);
	rds_cleanup(&rc);
	return n;
}

/* Wait (up to 2 s) until the log has at least n entries of type (events go out after the response). */
static long rt_log_wait(const char *user, const char *type, long n)
{
	long got = 0;

	for (int i = 0; i < 40 && (got = rt_log_count(user, type)) < n; i++)
		usleep(50 * 1000);
	return got;
}

/* Issue 15 #3: a participant removed by a host sees nothing of the call from then on. */
START_TEST(removed_participant_sees_nothing)
{
	char *a = it_new_user(db, "Host"), *b = it_new_user(db, "Stays"), *c = it_new_user(db, "Removed");
	char *ta = tok(a), *tc = tok(c), *path, body[256], *id;
	json_t *j, *items, *it;
	long before;
	size_t i;
	int lines = 0;

	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"video\"}", b, c);
	j = initiate(a, body, 201);
	id = strdup(json_string_value(json_object_get(j, "callId")));
	json_decref(j);
	json_decref(act(b, id, "/join", NULL, 200));
	json_decref(act(c, id, "/join", NULL, 200));
	path = call_path(id, "");
	json_decref(api(&srv, "GET", path, tc, NULL, 200));
	free(path);
	ck_assert(asprintf(&path, "/api/calls/%s/participants/%s/remove", id, c) > 0);
	json_decref(api(&srv, "POST", path, ta, "{}", 200));
	free(path);
	/* the removal itself reaches them, as the last call event they get */
	ck_assert_int_ge(rt_log_wait(c, "call.updated", 3), 3);
	before = rt_log_count(c, "call.updated");

	path = call_path(id, "");
	api_err("GET", path, tc, NULL, 404, "not_found");
	free(path);
	path = call_path(id, "/stats");
	api_err("POST", path, tc, "{\"rttMs\":1}", 404, "not_found");
	free(path);
	/*
	 * the history no longer lists the call: row-level security hides a call from a
	 * participant a host removed, like every other read of it
	 */
	j = api(&srv, "GET", "/api/calls?limit=100", tc, NULL, 200);
	items = json_object_get(j, "items");
	json_array_foreach(items, i, it) {
		if (strcmp(json_string_value(json_object_get(it, "id")), id) != 0)
			continue;
		lines++;
		ck_assert(json_is_true(json_object_get(it, "removed")));
		ck_assert_ptr_null(json_object_get(it, "roomName"));
		ck_assert_ptr_null(json_object_get(it, "metadata"));
		ck_assert_int_eq(json_array_size(json_object_get(it, "participants")), 1);
		ck_assert_str_eq(json_string_value(json_object_get(
			json_array_get(json_object_get(it, "participants"), 0), "userId")), c);
		ck_assert_str_eq(json_string_value(json_object_get(
			json_array_get(json_object_get(it, "participants"), 0), "status")), "removed");
	}
	ck_assert_int_eq(lines, 0);
	json_decref(j);
	/* what happens in the call afterwards is not theirs to hear */
	json_decref(act(b, id, "/leave", NULL, 200));
	ck_assert_int_ge(rt_log_wait(a, "call.updated", 4), 4);
	usleep(200 * 1000);
	ck_assert_int_eq(rt_log_count(c, "call.updated"), before);
	json_decref(act(c, id, "/join", NULL, 403));
	free(id);
	free(ta); free(tc);
	free(a); free(b); free(c);
}
END_TEST

/* Reads check who may see a call in their own SQL: channel members see a channel call, outsiders nothing. */
START_TEST(call_reads_by_visibility)
{
	char *a = it_new_user(db, "Caller"), *b = it_new_user(db, "Callee"), *m = it_new_user(db, "Member");
	char *x = it_new_user(db, "Outsider"), *ch = it_new_channel(db, "reads");
	char *tm = tok(m), *tx = tok(x), body[256], *id, *path;
	json_t *j, *it;
	size_t i;

	it_add_member(db, ch, a, NULL);
	it_add_member(db, ch, b, NULL);
	it_add_member(db, ch, m, NULL);
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\"],\"channelId\":\"%s\",\"type\":\"audio\"}",
		 b, ch);
	j = initiate(a, body, 201);
	id = strdup(json_string_value(json_object_get(j, "callId")));
	json_decref(j);
	path = call_path(id, "");
	json_decref(api(&srv, "GET", path, tm, NULL, 200));   /* a channel member */
	api_err("GET", path, tx, NULL, 404, "not_found");      /* an outsider */
	/* the history is the caller's own calls: the member never took part */
	j = api(&srv, "GET", "/api/calls?limit=100", tm, NULL, 200);
	json_array_foreach(json_object_get(j, "items"), i, it)
		ck_assert_str_ne(json_string_value(json_object_get(it, "id")), id);
	json_decref(j);
	j = api(&srv, "GET", "/api/calls?limit=100", tx, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
	json_decref(j);
	free(path);
	free(id);
	free(tm); free(tx);
	free(a); free(b); free(m); free(x); free(ch);
}
END_TEST

/*
 * The same reads with the service logged in as the schema owner, which
 * row-level security does not hold back: the answers must not change.
 */
START_TEST(call_reads_hold_without_rls)
{
	char dsn[600];
	const char *env[] = { dsn, "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	struct it_server own;
	struct it_resp r;
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *x = it_new_user(db, "X");
	char *tx = tok(x), *id, url[512];

	snprintf(dsn, sizeof(dsn), "DATABASE_URL=%s", it_env("DATABASE_MIGRATE_URL"));
	id = start_1to1(a, b, "audio");
	ck_assert_int_eq(it_server_start(&own, env), 0);
	snprintf(url, sizeof(url), "%s/api/calls/%s", own.base, id);
	ck_assert_int_eq(it_http("GET", url, tx, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	snprintf(url, sizeof(url), "%s/api/calls?limit=100", own.base);
	ck_assert_int_eq(it_http("GET", url, tx, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "items")), 0);
	it_resp_free(&r);
	snprintf(url, sizeof(url), "%s/api/calls/%s/stats", own.base, id);
	ck_assert_int_eq(it_http("POST", url, tx, "{\"rttMs\":1}", NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	it_server_stop(&own);
	free(id);
	free(tx);
	free(a); free(b); free(x);
}
END_TEST

int main(void)
{
	static const char *need[] = { "NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL",
				      "LK_STANDIN_URL", "LIVEKIT_URL", "AUTH_JWT_SECRET", NULL };
	static const char *env[] = { "MAX_ROOM_PARTICIPANTS=3", "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	Suite *s = suite_create("calls");
	TCase *tc = tcase_create("calls");
	SRunner *sr;
	int failed;

	it_require(need);
	setenv("MAX_ROOM_PARTICIPANTS", "3", 1); /* for sweep-calls runs too */
	db = it_db();
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "check_calls: server did not start\n");
		return 1;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, one_to_one_happy_path);
	tcase_add_test(tc, group_and_channel_calls);
	tcase_add_test(tc, bad_requests_change_nothing);
	tcase_add_test(tc, livekit_failure_leaves_no_call);
	tcase_add_test(tc, db_failure_deletes_room);
	tcase_add_test(tc, host_controls);
	tcase_add_test(tc, history_and_stats);
	tcase_add_test(tc, ring_timeout_by_sweep);
	tcase_add_test(tc, ring_timeout_survives_restart);
	tcase_add_test(tc, concurrent_joins_and_end);
	tcase_add_test(tc, removed_participant_sees_nothing);
	tcase_add_test(tc, call_reads_by_visibility);
	tcase_add_test(tc, call_reads_hold_without_rls);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	it_server_stop(&srv);
	PQfinish(db);
	return failed == 0 ? 0 : 1;
}
