/*
 * check_webhooks.c - POST /api/webhooks/livekit against a real server, with
 * every event produced and signed by the LiveKit stand-in
 * (/_test/sign-webhook), never by C code.
 *
 * Proves: each event's effect on the call rows; forged, tampered, wrong-key,
 * expired and "Bearer "-prefixed deliveries are 401 and change nothing;
 * key rotation (LIVEKIT_WEBHOOK_KEYS); the same event twice (also in
 * parallel) is applied once; shuffled delivery of a realistic call ends in
 * the state of ordered delivery (fixed seed); reconciliation by sweep-calls
 * of a call whose room_finished / participant_left never came; each rule of
 * a participant or track event on its own (participant_rules), including
 * presence, the members told, and events that are recorded but ignored.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/uuid.h"
#include "harness.h"
#include "store/cache.h"

static struct it_server srv;
static PGconn *db;

struct signed_ev {
	char *body;
	char *auth;
};

/* Sign an event (JSON text) with the stand-in; key/secret NULL = its defaults. */
static struct signed_ev sign_ev(const char *event_json, const char *key, const char *secret, int ttl)
{
	json_t *ev = json_loads(event_json, 0, NULL), *req, *res;
	struct signed_ev s;

	ck_assert_msg(ev != NULL, "bad literal %s", event_json);
	req = json_pack("{s:o}", "event", ev);
	if (key)
		json_object_set_new(req, "key", json_string(key));
	if (secret)
		json_object_set_new(req, "secret", json_string(secret));
	if (ttl)
		json_object_set_new(req, "ttl", json_integer(ttl));
	res = it_standin("POST", "/_test/sign-webhook", req);
	json_decref(req);
	ck_assert_ptr_nonnull(res);
	ck_assert_msg(json_is_string(json_object_get(res, "body")), "sign-webhook: %s",
		      json_dumps(res, 0));
	s.body = strdup(json_string_value(json_object_get(res, "body")));
	s.auth = strdup(json_string_value(json_object_get(res, "authorization")));
	json_decref(res);
	return s;
}

static long deliver_raw(const char *body, const char *auth_value, char **status_out)
{
	char hdr[4096], url[256];
	const char *hdrs[3] = { hdr, "Content-Type: application/webhook+json", NULL };
	struct it_resp r;
	long st;

	snprintf(hdr, sizeof(hdr), "Authorization: %s", auth_value);
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", srv.base);
	ck_assert_int_eq(it_http("POST", url, NULL, body, auth_value ? hdrs : hdrs + 1, &r), 0);
	st = r.status;
	if (status_out)
		*status_out = r.json ? strdup(json_string_value(json_object_get(r.json, "status")) ?
					      json_string_value(json_object_get(r.json, "status")) : "")
				     : strdup("");
	it_resp_free(&r);
	return st;
}

static void deliver(struct signed_ev *s, const char *want_status)
{
	char *st = NULL;

	ck_assert_int_eq(deliver_raw(s->body, s->auth, &st), 200);
	if (want_status)
		ck_assert_msg(strcmp(st, want_status) == 0, "status %s, want %s", st, want_status);
	free(st);
}

static void free_ev(struct signed_ev *s)
{
	free(s->body);
	free(s->auth);
}

static char *sqlv(const char *sql, const char *p1, const char *p2)
{
	const char *params[2] = { p1, p2 };

	return it_sql(db, sql, p2 ? 2 : 1, params);
}

static void ck_str(char *got, const char *want)
{
	ck_assert_msg(got != NULL && strcmp(got, want) == 0, "got %s, want %s", got ? got : "NULL",
		      want);
	free(got);
}

/* Start a call A -> B, B joins through the API; returns the call id. */
static char *new_call(char **a, char **b)
{
	char body[256], *ta, *tb, path[128], *id;
	struct it_resp r;

	*a = it_new_user(db, "A");
	*b = it_new_user(db, "B");
	ta = it_user_token(*a, NULL, 3600);
	tb = it_user_token(*b, NULL, 3600);
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"video\"}", *b);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	id = strdup(json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/join", id);
	ck_assert_int_eq(it_req(&srv, "POST", path, tb, "{}", &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	free(ta);
	free(tb);
	return id;
}

static char *ev_participant(const char *event, const char *id, const char *user, long created,
			    long joined)
{
	char *s;

	ck_assert(asprintf(&s, "{\"event\":\"%s\",\"id\":\"EV_%s_%s_%ld_%d\",\"createdAt\":\"%ld\","
			   "\"room\":{\"name\":\"call-%s\"},\"participant\":{\"sid\":\"PA_%.8s\","
			   "\"identity\":\"%s\",\"state\":\"ACTIVE\",\"joinedAt\":\"%ld\"}}",
			   event, event, user, created, rand(), created, id, user, user, joined) > 0);
	return s;
}

static char *ev_track(const char *event, const char *id, const char *user, long created,
		      const char *source, const char *type)
{
	char *s;

	ck_assert(asprintf(&s, "{\"event\":\"%s\",\"id\":\"EV_%s_%s_%ld_%d\",\"createdAt\":\"%ld\","
			   "\"room\":{\"name\":\"call-%s\"},\"participant\":{\"identity\":\"%s\"},"
			   "\"track\":{\"sid\":\"TR_%s\",\"type\":\"%s\",\"source\":\"%s\"}}",
			   event, user, source, created, rand(), created, id, user, source, type,
			   source) > 0);
	return s;
}

static void send_json(const char *json, const char *want)
{
	struct signed_ev s = sign_ev(json, NULL, NULL, 0);

	deliver(&s, want);
	free_ev(&s);
}

/* Occurrences of needle in the server's log. */
static int log_count(const char *needle)
{
	FILE *f = fopen(srv.log_path, "r");
	char line[8192];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

/* Entries of `type` in the user's realtime log (what their SSE streams replay). */
static long rt_count(const char *user, const char *type)
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

/* Wait (up to 2 s: events go out after the response) for more than `than` entries; their number. */
static long rt_wait_more(const char *user, const char *type, long than)
{
	long got = 0;

	for (int i = 0; i < 40 && (got = rt_count(user, type)) <= than; i++)
		usleep(50 * 1000);
	ck_assert_msg(got > than, "%s got no new %s (%ld)", user, type, got);
	return got;
}

/* "present" of user in GET /api/calls/{id} as viewer (presence in Redis): 1, 0, -1 absent. */
static int present(const char *viewer, const char *id, const char *user)
{
	char *tok = it_user_token(viewer, NULL, 3600), path[128];
	struct it_resp r;
	json_t *p;
	size_t i;
	int out = -1;

	snprintf(path, sizeof(path), "/api/calls/%s", id);
	ck_assert_int_eq(it_req(&srv, "GET", path, tok, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	json_array_foreach(json_object_get(r.json, "participants"), i, p)
		if (strcmp(json_string_value(json_object_get(p, "userId")), user) == 0)
			out = json_is_true(json_object_get(p, "present"));
	it_resp_free(&r);
	free(tok);
	return out;
}

/* POST path (JSON {}) as user; the status. */
static long post_as(const char *user, const char *path)
{
	char *tok = it_user_token(user, NULL, 3600);
	struct it_resp r;
	long st;

	ck_assert_int_eq(it_req(&srv, "POST", path, tok, "{}", &r), 0);
	st = r.status;
	it_resp_free(&r);
	free(tok);
	return st;
}

/* Deliver the event (JSON text) twice: `want` first, then a duplicate. */
static void send_twice(const char *json, const char *want)
{
	struct signed_ev s = sign_ev(json, NULL, NULL, 0);

	deliver(&s, want);
	deliver(&s, "duplicate");
	free_ev(&s);
}

static long epoch_of(const char *sql, const char *id, const char *user)
{
	char *v = sqlv(sql, id, user);
	long n;

	ck_assert_msg(v != NULL, "%s: NULL", sql);
	n = atol(v);
	free(v);
	return n;
}

START_TEST(event_effects)
{
	char *a, *b, *id = new_call(&a, &b), *e;
	long t = (long)time(NULL);

	e = ev_participant("participant_joined", id, b, t, t);
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT left(livekit_participant_id, 3) FROM nchat_call_participants"
		    " WHERE call_id = $1 AND user_id = $2", id, b), "PA_");
	e = ev_track("track_published", id, b, t + 1, "CAMERA", "VIDEO");
	send_json(e, "applied");
	free(e);
	e = ev_track("track_published", id, b, t + 1, "SCREEN_SHARE", "VIDEO");
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT concat_ws(',', is_audio_enabled, is_video_enabled, is_screen_sharing)"
		    " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2", id, b), "f,t,t");
	e = ev_track("track_unpublished", id, b, t + 2, "SCREEN_SHARE", "VIDEO");
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT concat_ws(',', is_audio_enabled, is_video_enabled, is_screen_sharing)"
		    " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2", id, b), "f,t,f");
	/* an older event than the row has seen is ignored */
	e = ev_participant("participant_joined", id, b, t - 5, t - 5);
	send_json(e, "ignored");
	free(e);
	e = ev_participant("participant_left", id, b, t + 10, t);
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT concat_ws(',', status, total_duration_seconds, is_video_enabled)"
		    " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2", id, b),
	       "left,10,f");
	/* unknown room / event: 200 ignored */
	send_json("{\"event\":\"room_started\",\"id\":\"EV_unknown_room_x1\",\"room\":{\"name\":\"demo\"}}",
		  "ignored");
	send_json("{\"event\":\"something_new\",\"id\":\"EV_unknown_ev_x1\"}", "ignored");
	/* room_started changes nothing */
	{
		char *rs;

		ck_assert(asprintf(&rs, "{\"event\":\"room_started\",\"id\":\"EV_rs_%s\","
				   "\"room\":{\"name\":\"call-%s\"}}", id, id) > 0);
		send_json(rs, "applied");
		free(rs);
		ck_str(sqlv("SELECT status FROM nchat_calls WHERE id = $1", id, NULL), "active");
		ck_assert(asprintf(&rs, "{\"event\":\"room_finished\",\"id\":\"EV_rf_%s\","
				   "\"createdAt\":\"%ld\",\"room\":{\"name\":\"call-%s\"}}", id, t + 20,
				   id) > 0);
		send_json(rs, "applied");
		free(rs);
	}
	ck_str(sqlv("SELECT concat_ws(',', status, end_reason) FROM nchat_calls WHERE id = $1", id, NULL),
	       "ended,room_finished");
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, a), "left");
	free(id); free(a); free(b);
}
END_TEST

/*
 * The rules of a participant or a track event, one by one, as the one
 * statement of calls_db_webhook applies them (and as the transaction of C
 * statements before it did): the initiator's join answers nothing, the
 * first invitee's answers the call with started_at from their joinedAt and
 * tells the members; presence follows joins and leaves; an older track event
 * is ignored and a track event does not move the call's last event; a track
 * that drives no column is ignored; a leave after a leave replaces the
 * session; a removed participant's join and a join to an ended call are
 * ignored; events of users without a row, of unknown calls, of other rooms
 * and of participants who are not our users are ignored but recorded.
 */
START_TEST(participant_rules)
{
	char *a = it_new_user(db, "A"), *b = it_new_user(db, "B"), *c = it_new_user(db, "C");
	char *d = it_new_user(db, "D"), *ta = it_user_token(a, NULL, 3600), *e, *id, body[256];
	char path[192], ghost[37], needle[160];
	long t = (long)time(NULL) - 200, updates;
	struct it_resp r;

	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"video\"}", b, c);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	id = strdup(json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);

	/* the initiator connecting answers nothing; presence +1 */
	ck_assert_int_eq(present(a, id, b), 0);
	e = ev_participant("participant_joined", id, a, t, t);
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT status FROM nchat_calls WHERE id = $1", id, NULL), "ringing");
	ck_assert_int_eq(present(a, id, a), 1);

	/* the first invitee answers: active, started_at = their joinedAt; the members hear it */
	updates = rt_wait_more(a, "call.updated", 0);
	e = ev_participant("participant_joined", id, b, t + 8, t + 5);
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT status FROM nchat_calls WHERE id = $1", id, NULL), "active");
	ck_assert_int_eq(epoch_of("SELECT extract(epoch FROM started_at)::bigint FROM nchat_calls"
				  " WHERE id = $1", id, NULL), t + 5);
	ck_assert_int_eq(epoch_of("SELECT extract(epoch FROM last_event_at)::bigint FROM nchat_calls"
				  " WHERE id = $1", id, NULL), t + 8);
	updates = rt_wait_more(a, "call.updated", updates);
	ck_assert_int_eq(present(a, id, b), 1);

	/* tracks: older than the last participant event ignored; no touch of the call */
	e = ev_track("track_published", id, b, t + 6, "CAMERA", "VIDEO");
	send_json(e, "ignored");
	free(e);
	e = ev_track("track_published", id, b, t + 50, "CAMERA", "VIDEO");
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT is_video_enabled::text FROM nchat_call_participants WHERE call_id = $1"
		    " AND user_id = $2", id, b), "true");
	ck_assert_int_eq(epoch_of("SELECT extract(epoch FROM last_event_at)::bigint FROM nchat_calls"
				  " WHERE id = $1", id, NULL), t + 8);
	updates = rt_wait_more(a, "call.updated", updates);
	/* a track that drives no column: recorded, ignored, nothing announced */
	e = ev_track("track_published", id, b, t + 51, "SCREEN_SHARE_AUDIO", "AUDIO");
	send_twice(e, "ignored");
	free(e);
	usleep(300 * 1000);
	ck_assert_int_eq(rt_count(a, "call.updated"), updates);

	/*
	 * B leaves through the API (left_at = now: a session of about 195 s), then
	 * LiveKit's participant_left with its own times (joined t + 6, left t + 20)
	 * replaces that session: 14 s, not 195 + 14.
	 */
	snprintf(path, sizeof(path), "/api/calls/%s/leave", id);
	ck_assert_int_eq(post_as(b, path), 200);
	ck_assert_int_ge(epoch_of("SELECT total_duration_seconds FROM nchat_call_participants"
				  " WHERE call_id = $1 AND user_id = $2", id, b), 150);
	e = ev_participant("participant_left", id, b, t + 20, t + 6);
	send_json(e, "applied");
	free(e);
	ck_str(sqlv("SELECT concat_ws(',', status, total_duration_seconds, is_video_enabled)"
		    " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2", id, b),
	       "left,14,f");

	/* C is removed by the host: a later join of theirs is ignored */
	snprintf(path, sizeof(path), "/api/calls/%s/participants/%s/remove", id, c);
	ck_assert_int_eq(post_as(a, path), 200);
	e = ev_participant("participant_joined", id, c, t + 70, t + 70);
	send_json(e, "ignored");
	free(e);
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, c), "removed");

	/* the initiator's connection drops: presence -1, the call stays open */
	e = ev_participant("participant_connection_aborted", id, a, t + 60, t);
	send_json(e, "applied");
	free(e);
	ck_assert_int_eq(present(b, id, a), 0);
	ck_str(sqlv("SELECT concat_ws(',', p.status, p.total_duration_seconds, c.status)"
		    " FROM nchat_call_participants p JOIN nchat_calls c ON c.id = p.call_id"
		    " WHERE p.call_id = $1 AND p.user_id = $2", id, a), "left,60,active");

	/* D has no participant row: ignored, logged once, recorded */
	snprintf(needle, sizeof(needle), "%s in call %s has no participant row", d, id);
	ck_assert_int_eq(log_count(needle), 0);
	e = ev_participant("participant_joined", id, d, t + 71, t + 71);
	send_twice(e, "ignored");
	free(e);
	ck_assert_int_eq(log_count(needle), 1);

	/* an unknown call, another room, a participant that is not one of our users */
	uuid_v4(ghost);
	e = ev_participant("participant_joined", ghost, b, t + 72, t + 72);
	send_twice(e, "ignored");
	free(e);
	ck_assert(asprintf(&e, "{\"event\":\"participant_joined\",\"id\":\"EV_demo_%s\",\"createdAt\":"
			   "\"%ld\",\"room\":{\"name\":\"demo\"},\"participant\":{\"identity\":\"%s\"}}",
			   b, t + 73, b) > 0);
	send_twice(e, "ignored");
	free(e);
	ck_assert(asprintf(&e, "{\"event\":\"participant_joined\",\"id\":\"EV_eg_%s\",\"createdAt\":"
			   "\"%ld\",\"room\":{\"name\":\"call-%s\"},\"participant\":{\"identity\":"
			   "\"EG_recorder\",\"sid\":\"PA_eg\"}}", id, t + 74, id) > 0);
	send_twice(e, "ignored");
	free(e);
	ck_assert_int_eq(log_count(needle), 1);
	ck_assert_int_eq(epoch_of("SELECT count(*) FROM nchat_livekit_webhook_events WHERE event_id"
				  " IN ('EV_demo_' || $1::text, 'EV_eg_' || $2::text)", b, id), 2);

	/* the call ends: a newer join is ignored */
	ck_assert(asprintf(&e, "{\"event\":\"room_finished\",\"id\":\"EV_rf2_%s\",\"createdAt\":"
			   "\"%ld\",\"room\":{\"name\":\"call-%s\"}}", id, t + 80, id) > 0);
	send_json(e, "applied");
	free(e);
	e = ev_participant("participant_joined", id, b, t + 90, t + 90);
	send_json(e, "ignored");
	free(e);
	ck_str(sqlv("SELECT concat_ws(',', p.status, c.status) FROM nchat_call_participants p"
		    " JOIN nchat_calls c ON c.id = p.call_id WHERE p.call_id = $1 AND p.user_id = $2",
		    id, b), "left,ended");
	free(ta); free(id); free(a); free(b); free(c); free(d);
}
END_TEST

START_TEST(bad_signatures_change_nothing)
{
	char *a, *b, *id = new_call(&a, &b), *e, *bearer, *tampered;
	long t = (long)time(NULL);
	struct signed_ev s, wrong;

	e = ev_participant("participant_left", id, b, t, t);
	s = sign_ev(e, NULL, NULL, 0);
	wrong = sign_ev(e, "devkey", "not-the-secret", 0);
	ck_assert_int_eq(deliver_raw(s.body, NULL, NULL), 401);
	ck_assert_int_eq(deliver_raw(s.body, "garbage", NULL), 401);
	ck_assert(asprintf(&bearer, "Bearer %s", s.auth) > 0);
	ck_assert_int_eq(deliver_raw(s.body, bearer, NULL), 401);
	tampered = strdup(s.body);
	tampered[strlen(tampered) - 2] = ' ';
	ck_assert_int_eq(deliver_raw(tampered, s.auth, NULL), 401);
	ck_assert_int_eq(deliver_raw(wrong.body, wrong.auth, NULL), 401);
	{
		struct signed_ev other = sign_ev(e, "oldkey", "oldsecret", 0);

		ck_assert_int_eq(deliver_raw(other.body, other.auth, NULL), 401); /* not configured */
		free_ev(&other);
	}
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, b), "joined");
	/* not a webhook body, correctly signed: 400 */
	{
		struct signed_ev nb = sign_ev("{\"room\":{\"name\":\"x\"}}", NULL, NULL, 0);
		long st = deliver_raw(nb.body, nb.auth, NULL);

		ck_assert_msg(st == 400 || st == 200, "status %ld", st);
		free_ev(&nb);
	}
	/* the genuine one applies, once */
	deliver(&s, "applied");
	deliver(&s, "duplicate");
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, b), "left");
	free(tampered); free(bearer); free(e);
	free_ev(&s); free_ev(&wrong);
	free(id); free(a); free(b);
}
END_TEST

struct par {
	struct signed_ev *s;
	char *status;
};

static void *par_deliver(void *arg)
{
	struct par *p = arg;

	deliver_raw(p->s->body, p->s->auth, &p->status);
	return NULL;
}

START_TEST(parallel_duplicates)
{
	char *a, *b, *id = new_call(&a, &b), *e;
	long t = (long)time(NULL);
	struct signed_ev s;
	struct par p[4];
	pthread_t th[4];
	int applied = 0, dup = 0;

	e = ev_participant("participant_left", id, b, t, t - 7);
	s = sign_ev(e, NULL, NULL, 0);
	for (int i = 0; i < 4; i++) {
		p[i].s = &s;
		p[i].status = NULL;
		pthread_create(&th[i], NULL, par_deliver, &p[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (p[i].status && strcmp(p[i].status, "applied") == 0)
			applied++;
		if (p[i].status && strcmp(p[i].status, "duplicate") == 0)
			dup++;
		free(p[i].status);
	}
	ck_assert_int_eq(applied, 1);
	ck_assert_int_eq(dup, 3);
	ck_str(sqlv("SELECT total_duration_seconds::text FROM nchat_call_participants"
		    " WHERE call_id = $1 AND user_id = $2", id, b), "7");
	free_ev(&s); free(e); free(id); free(a); free(b);
}
END_TEST

/* A realistic call's events, signed once. */
static int build_call_events(const char *id, const char *a, const char *b, long t,
			     struct signed_ev *out)
{
	char *evs[12], *rf;
	int n = 0;

	evs[n++] = ev_participant("participant_joined", id, a, t, t);
	evs[n++] = ev_participant("participant_joined", id, b, t + 2, t + 2);
	evs[n++] = ev_track("track_published", id, a, t + 3, "MICROPHONE", "AUDIO");
	evs[n++] = ev_track("track_published", id, b, t + 3, "CAMERA", "VIDEO");
	evs[n++] = ev_track("track_published", id, b, t + 4, "MICROPHONE", "AUDIO");
	evs[n++] = ev_track("track_unpublished", id, b, t + 20, "CAMERA", "VIDEO");
	evs[n++] = ev_participant("participant_left", id, b, t + 30, t + 2);
	evs[n++] = ev_participant("participant_left", id, a, t + 40, t);
	ck_assert(asprintf(&rf, "{\"event\":\"room_finished\",\"id\":\"EV_rf_%s_%d\",\"createdAt\":"
			   "\"%ld\",\"room\":{\"name\":\"call-%s\"}}", id, rand(), t + 60, id) > 0);
	evs[n++] = rf;
	for (int i = 0; i < n; i++) {
		out[i] = sign_ev(evs[i], NULL, NULL, 0);
		free(evs[i]);
	}
	return n;
}

static char *final_state(const char *id)
{
	return sqlv("SELECT c.status || '|' || c.end_reason || '|' || to_char(c.ended_at, 'SS') || '|' ||"
		    " string_agg(concat_ws(',', p.role, p.status, p.total_duration_seconds,"
		    " p.is_audio_enabled, p.is_video_enabled, p.is_screen_sharing), ';'"
		    " ORDER BY p.role) FROM nchat_calls c JOIN nchat_call_participants p"
		    " ON p.call_id = c.id WHERE c.id = $1 GROUP BY c.id", id, NULL);
}

START_TEST(shuffled_delivery_same_state)
{
	struct signed_ev evs[12];
	char *a, *b, *id, *want;
	long t = (long)time(NULL) - 100;
	int n;

	srand(4242);
	id = new_call(&a, &b);
	n = build_call_events(id, a, b, t, evs);
	for (int i = 0; i < n; i++)
		deliver(&evs[i], "applied");
	want = final_state(id);
	ck_assert_msg(strstr(want, "ended|room_finished") == want, "%s", want);
	ck_assert_msg(strstr(want, "initiator,left,40,f,f,f;participant,left,28,f,f,f") != NULL, "%s",
		      want);
	for (int i = 0; i < n; i++)
		free_ev(&evs[i]);
	free(id); free(a); free(b);

	for (int round = 0; round < 30; round++) {
		char *got;

		id = new_call(&a, &b);
		n = build_call_events(id, a, b, t, evs);
		for (int i = n - 1; i > 0; i--) {
			int j = rand() % (i + 1);
			struct signed_ev tmp = evs[i];

			evs[i] = evs[j];
			evs[j] = tmp;
		}
		for (int i = 0; i < n; i++)
			deliver(&evs[i], NULL);
		got = final_state(id);
		ck_assert_msg(strcmp(got, want) == 0, "round %d: %s != %s", round, got, want);
		free(got);
		for (int i = 0; i < n; i++)
			free_ev(&evs[i]);
		free(id); free(a); free(b);
	}
	free(want);
}
END_TEST

START_TEST(reconciliation_without_webhooks)
{
	char *a, *b, *id = new_call(&a, &b), *e, cmd[512], line[256] = "", room[64];
	long t = (long)time(NULL);
	json_t *p;
	FILE *f;

	snprintf(room, sizeof(room), "call-%s", id);
	/* B connects (LiveKit reports it), then vanishes without participant_left. */
	p = json_pack("{s:s, s:s}", "room", room, "identity", b);
	json_decref(it_standin("POST", "/_test/participants", p));
	json_decref(p);
	e = ev_participant("participant_joined", id, b, t, t);
	send_json(e, "applied");
	free(e);
	p = json_pack("{s:s, s:s}", "room", room, "identity", b);
	json_decref(it_standin("POST", "/_test/participants/remove", p));
	json_decref(p);
	/* older than the sweep's grace for calls still being set up */
	free(sqlv("UPDATE nchat_calls SET initiated_at = now() - interval '1 minute' WHERE id = $1",
		  id, NULL));
	snprintf(cmd, sizeof(cmd), "%s sweep-calls 2>/dev/null", it_env("NC_BIN"));
	f = popen(cmd, "r");
	ck_assert(fgets(line, sizeof(line), f) != NULL);
	ck_assert_int_eq(pclose(f), 0);
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, b), "left");
	ck_str(sqlv("SELECT status FROM nchat_calls WHERE id = $1", id, NULL), "active");
	/* Now the room disappears without room_finished. */
	p = json_pack("{s:s}", "room", room);
	{
		/* DeleteRoom through the stand-in's own Twirp is what LiveKit would do. */
		json_t *st = it_standin("POST", "/_test/reset", NULL);

		json_decref(st);
	}
	json_decref(p);
	f = popen(cmd, "r");
	ck_assert(fgets(line, sizeof(line), f) != NULL);
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_msg(strstr(line, "ended") != NULL, "%s", line);
	ck_str(sqlv("SELECT concat_ws(',', status, end_reason) FROM nchat_calls WHERE id = $1", id,
		    NULL), "ended,room_gone");
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, a), "left");
	free(id); free(a); free(b);
}
END_TEST

START_TEST(key_rotation)
{
	static const char *env[] = { "LIVEKIT_WEBHOOK_KEYS=oldkey:oldsecret",
				     "LIVEKIT_WEBHOOK_LEEWAY_SECONDS=0", NULL };
	struct it_server s2 = srv;
	char *a, *b, *id = new_call(&a, &b), *e, *st;
	long t = (long)time(NULL);
	struct signed_ev s;

	ck_assert_int_eq(it_server_start(&srv, env), 0);
	e = ev_participant("participant_left", id, b, t, t);
	s = sign_ev(e, "oldkey", "oldsecret", 0);
	ck_assert_int_eq(deliver_raw(s.body, s.auth, &st), 200);
	ck_assert_str_eq(st, "applied");
	free(st);
	free_ev(&s);
	/* expired (no leeway on this server): 401, nothing applied */
	free(e);
	e = ev_participant("participant_joined", id, b, t + 5, t + 5);
	s = sign_ev(e, NULL, NULL, 1);
	sleep(3);
	ck_assert_int_eq(deliver_raw(s.body, s.auth, NULL), 401);
	ck_str(sqlv("SELECT status FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
		    id, b), "left");
	it_server_stop(&srv);
	srv = s2;
	free_ev(&s); free(e); free(id); free(a); free(b);
}
END_TEST

int main(void)
{
	static const char *need[] = { "NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL",
				      "LK_STANDIN_URL", "LIVEKIT_URL", "AUTH_JWT_SECRET", NULL };
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	Suite *s = suite_create("webhooks");
	TCase *tc = tcase_create("webhooks");
	SRunner *sr;
	int failed;

	it_require(need);
	db = it_db();
	if (it_server_start(&srv, env) != 0)
		return 1;
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, event_effects);
	tcase_add_test(tc, participant_rules);
	tcase_add_test(tc, bad_signatures_change_nothing);
	tcase_add_test(tc, parallel_duplicates);
	tcase_add_test(tc, shuffled_delivery_same_state);
	tcase_add_test(tc, reconciliation_without_webhooks);
	tcase_add_test(tc, key_rotation);
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
