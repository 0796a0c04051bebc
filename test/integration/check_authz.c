/*
 * check_authz.c - authorisation holds whatever role the service logs in as.
 *
 * scripts/test.sh runs this suite once per database set-up: the service
 * logging in as a member of nchat_rtc_service (the documented set-up), as
 * the superuser with one URL for everything (Hasura/nHost style), and as the
 * schema owner.  In each, every read and write of another user's call,
 * recording, stream, chat message, reaction, viewer session, SSE stream and
 * GDPR data answers 401/403/404 and changes nothing (a fingerprint of every
 * row of the scenario is compared before and after).  Positive controls show
 * the same requests succeed for those allowed, so no check can pass by
 * everything failing.
 *
 * Also here: the issue-15 read rules (anonymous SSE on a private stream,
 * removed participants, channel members who never took part, recordings for
 * participants only) and the start-up refusal / readiness report when the
 * login role cannot enter the work roles.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct it_server srv;
static struct it_server srv2;  /* a second server of one test; stopped in main if left */
static PGconn *owner_db;
static char last_req[600];  /* "METHOD path" of the last req(), for messages */

static PGconn *db(void)
{
	if (owner_db == NULL)
		owner_db = it_db();
	return owner_db;
}

static char *q(const char *sql, int n, ...)
{
	const char *p[8];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n && i < 8; i++)
		p[i] = va_arg(ap, const char *);
	va_end(ap);
	return it_sql(db(), sql, n, p);
}

/* ------------------------------------------------------------------ */
/* The scenario                                                        */
/* ------------------------------------------------------------------ */

/*
 * Channel X: A, B, M, R.  A's call in X: A (initiator, joined), B (joined),
 * R (removed a minute ago); M never took part.  Recording rec1 before the
 * removal, rec2 after it, both completed.  Channel Y: D, E.  D's streams in
 * Y: s_priv (preparing) and s_live (live, public while live), each with a
 * chat message, a reaction and a viewer session of D.  C is in nothing.
 */
struct world {
	char *a, *b, *c, *m, *r, *d, *e, *admin;
	char *chx, *chy, *call, *rec1, *rec2;
	char *s_priv, *s_live, *msg_priv, *msg_live;
	char sess_priv[64], sess_live[64];
	char *ta, *tb, *tc, *tm, *tr, *td, *te, *tadmin;
};

static void seed(struct world *w)
{
	PGconn *c = db();

	memset(w, 0, sizeof(*w));
	w->a = it_new_user(c, "A initiator");
	w->b = it_new_user(c, "B participant");
	w->c = it_new_user(c, "C outsider");
	w->m = it_new_user(c, "M member who never took part");
	w->r = it_new_user(c, "R removed");
	w->d = it_new_user(c, "D broadcaster");
	w->e = it_new_user(c, "E stream channel member");
	w->admin = it_new_user(c, "Admin");
	w->chx = it_new_channel(c, "authz-x");
	w->chy = it_new_channel(c, "authz-y");
	it_add_member(c, w->chx, w->a, NULL);
	it_add_member(c, w->chx, w->b, NULL);
	it_add_member(c, w->chx, w->m, NULL);
	it_add_member(c, w->chx, w->r, NULL);
	it_add_member(c, w->chy, w->d, NULL);
	it_add_member(c, w->chy, w->e, NULL);

	w->call = q("INSERT INTO nchat_calls (livekit_room_name, call_type, status, initiator_id,"
		    " channel_id, is_group_call, started_at) VALUES ('authz-' || gen_random_uuid(),"
		    " 'video', 'active', $1, $2, true, now() - interval '20 minutes') RETURNING id",
		    2, w->a, w->chx);
	free(q("INSERT INTO nchat_call_participants (call_id, user_id, role, status,"
	       " livekit_identity, joined_at) VALUES"
	       " ($1, $2::uuid, 'initiator', 'joined', $2::text, now() - interval '20 minutes'),"
	       " ($1, $3::uuid, 'participant', 'joined', $3::text, now() - interval '19 minutes'),"
	       " ($1, $4::uuid, 'participant', 'joined', $4::text, now() - interval '18 minutes')"
	       " RETURNING id", 4, w->call, w->a, w->b, w->r));
	w->rec1 = q("INSERT INTO nchat_call_recordings (call_id, status, object_key, started_by,"
		    " started_at, ended_at, created_at) VALUES ($1, 'completed',"
		    " 'recordings/authz/' || gen_random_uuid() || '.mp4', $2,"
		    " now() - interval '15 minutes', now() - interval '5 minutes',"
		    " now() - interval '15 minutes') RETURNING id", 2, w->call, w->a);
	free(q("UPDATE nchat_call_participants SET status = 'removed', left_at = now() - interval '1 minute'"
	       " WHERE call_id = $1 AND user_id = $2 RETURNING id", 2, w->call, w->r));
	w->rec2 = q("INSERT INTO nchat_call_recordings (call_id, status, object_key, started_by,"
		    " started_at, ended_at) VALUES ($1, 'completed',"
		    " 'recordings/authz/' || gen_random_uuid() || '.mp4', $2,"
		    " now() - interval '50 seconds', now()) RETURNING id", 2, w->call, w->a);
	free(q("INSERT INTO nchat_recording_downloads (recording_id, user_id) VALUES ($1, $2)"
	       " RETURNING id", 2, w->rec1, w->a));
	free(q("INSERT INTO nchat_webrtc_connections (call_id, user_id, quality) VALUES ($1, $2, 'good')"
	       " RETURNING id", 2, w->call, w->b));

	w->s_priv = q("INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status,"
		      " livekit_room_name) VALUES ($1, $2, 'private', 'preparing',"
		      " 'stream-' || gen_random_uuid()) RETURNING id", 2, w->chy, w->d);
	w->s_live = q("INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status,"
		      " livekit_room_name, started_at) VALUES ($1, $2, 'live one', 'live',"
		      " 'stream-' || gen_random_uuid(), now()) RETURNING id", 2, w->chy, w->d);
	snprintf(w->sess_priv, sizeof w->sess_priv, "sess-d-%.8s", w->s_priv);
	snprintf(w->sess_live, sizeof w->sess_live, "sess-d-%.8s", w->s_live);
	free(q("INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id) VALUES"
	       " ($1, $3, $4), ($2, $3, $5) RETURNING id", 5, w->s_priv, w->s_live, w->d,
	       w->sess_priv, w->sess_live));
	w->msg_priv = q("INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content)"
			" VALUES ($1, $2, 'private words of D') RETURNING id", 2, w->s_priv, w->d);
	w->msg_live = q("INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content)"
			" VALUES ($1, $2, 'live words of D') RETURNING id", 2, w->s_live, w->d);
	free(q("INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type) VALUES"
	       " ($1, $3, 'heart'), ($2, $3, 'fire') RETURNING id", 3, w->s_priv, w->s_live, w->d));

	w->ta = it_user_token(w->a, "user", 3600);
	w->tb = it_user_token(w->b, "user", 3600);
	w->tc = it_user_token(w->c, "user", 3600);
	w->tm = it_user_token(w->m, "user", 3600);
	w->tr = it_user_token(w->r, "user", 3600);
	w->td = it_user_token(w->d, "user", 3600);
	w->te = it_user_token(w->e, "user", 3600);
	w->tadmin = it_user_token(w->admin, "user,admin", 3600);
}

static void world_free(struct world *w)
{
	char **f[] = {&w->a, &w->b, &w->c, &w->m, &w->r, &w->d, &w->e, &w->admin, &w->chx,
		      &w->chy, &w->call, &w->rec1, &w->rec2, &w->s_priv, &w->s_live,
		      &w->msg_priv, &w->msg_live, &w->ta, &w->tb, &w->tc, &w->tm, &w->tr,
		      &w->td, &w->te, &w->tadmin};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		free(*f[i]);
		*f[i] = NULL;
	}
}

/* Every row of the scenario, as text: equal before and after = nothing changed. */
static char *snapshot(const struct world *w)
{
	char streams[96], users[512];

	snprintf(streams, sizeof streams, "{%s,%s}", w->s_priv, w->s_live);
	snprintf(users, sizeof users, "{%s,%s,%s,%s,%s,%s,%s}", w->a, w->b, w->c, w->m, w->r,
		 w->d, w->e);
	/* counts still pending are folded first, so serve's timer changes nothing in between */
	free(q("SELECT count(nchat_rtc_stream_counters_sync(x)::text) FROM unnest($1::uuid[]) x", 1,
	       streams));
	return q("SELECT concat_ws(E'\\n',"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_calls x WHERE x.id = $1),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_call_participants x"
		 "   WHERE x.call_id = $1),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_call_recordings x"
		 "   WHERE x.call_id = $1),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_recording_downloads x"
		 "   WHERE x.recording_id IN (SELECT id FROM nchat_call_recordings WHERE call_id = $1)),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_webrtc_connections x"
		 "   WHERE x.call_id = $1),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_streams x"
		 "   WHERE x.id = ANY ($2::uuid[])),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_stream_chat_messages x"
		 "   WHERE x.stream_id = ANY ($2::uuid[])),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_stream_reactions x"
		 "   WHERE x.stream_id = ANY ($2::uuid[])),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_stream_viewers x"
		 "   WHERE x.stream_id = ANY ($2::uuid[])),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.stream_id, x.reaction_type)"
		 "   FROM nchat_stream_reaction_counts x WHERE x.stream_id = ANY ($2::uuid[])),"
		 " (SELECT count(*) FROM nchat_rtc_audit_log x WHERE x.target_id IN"
		 "   (SELECT unnest($2::text[]) UNION ALL SELECT $1::text"
		 "    UNION ALL SELECT id::text FROM nchat_call_recordings WHERE call_id = $1)"
		 "   OR x.actor_id = ANY ($3::uuid[])),"
		 " (SELECT string_agg(x::text, '|' ORDER BY x.id) FROM nchat_users x"
		 "   WHERE x.id = ANY ($3::uuid[])))",
		 3, w->call, streams, users);
}

static void assert_unchanged(const char *before, const struct world *w, const char *what)
{
	char *after = snapshot(w);

	ck_assert_msg(strcmp(before, after) == 0, "%s changed rows:\nbefore: %s\nafter:  %s", what,
		      before, after);
	free(after);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

/* One request; its status.  The body must never leak `secret` (if given). */
static long req(const char *method, const char *token, const char *body, const char *secret,
		const char *fmt, ...)
{
	char path[512];
	struct it_resp r;
	long status;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	snprintf(last_req, sizeof last_req, "%s %s", method, path);
	ck_assert_int_eq(it_req(&srv, method, path, token, body, &r), 0);
	status = r.status;
	if (secret != NULL)
		ck_assert_msg(strstr(r.body, secret) == NULL, "%s %s leaks %s: %s", method, path,
			      secret, r.body);
	ck_assert_msg(strstr(r.body, "downloadUrl") == NULL || status == 200,
		      "%s %s: a download URL in a refusal", method, path);
	it_resp_free(&r);
	return status;
}

#define REFUSED(st) ((st) == 401 || (st) == 403 || (st) == 404)
#define ASSERT_REFUSED(st, what) do { long st_ = (st); \
	ck_assert_msg(REFUSED(st_), "%s (%s): expected 401/403/404, got %ld", what, last_req, st_); \
	} while (0)
#define ASSERT_HIDDEN(st, what) do { long st_ = (st); \
	ck_assert_msg(st_ == 404, "%s (%s): expected 404, got %ld", what, last_req, st_); \
	} while (0)

/* Does GET path (a list) mention id? */
static bool list_mentions(const char *token, const char *path, const char *id)
{
	struct it_resp r;
	bool found;

	ck_assert_int_eq(it_req(&srv, "GET", path, token, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "GET %s: %ld %s", path, r.status, r.body);
	found = strstr(r.body, id) != NULL;
	it_resp_free(&r);
	return found;
}

/* ------------------------------------------------------------------ */
/* A tiny SSE client (HTTP/1.0: no chunked framing)                     */
/* ------------------------------------------------------------------ */

struct sse {
	int fd;
	char buf[1 << 15];
	size_t len;
};

static int sse_open(struct sse *s, const char *token, const char *path, const char *last_id)
{
	struct sockaddr_in sa;
	char rq[8192];
	int n;

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)srv.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	n = snprintf(rq, sizeof rq, "GET %s HTTP/1.0\r\nHost: t\r\n%s%s%s%s%s%s\r\n", path,
		     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
		     last_id ? "Last-Event-ID: " : "", last_id ? last_id : "", last_id ? "\r\n" : "");
	return write(s->fd, rq, (size_t)n) == n ? 0 : -1;
}

/* Read for up to ms (or until EOF); returns bytes read so far. */
static size_t sse_read(struct sse *s, int ms)
{
	struct pollfd p = {s->fd, POLLIN, 0};

	while (s->len < sizeof(s->buf) - 1 && poll(&p, 1, ms) > 0) {
		ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
		if (n <= 0)
			break;
		s->len += (size_t)n;
		s->buf[s->len] = '\0';
	}
	return s->len;
}

static int sse_status(struct sse *s)
{
	int status = 0;

	for (int i = 0; i < 50 && strstr(s->buf, "\r\n\r\n") == NULL; i++)
		sse_read(s, 100);
	sscanf(s->buf, "HTTP/1.%*d %d", &status);
	return status;
}

static void sse_close(struct sse *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

START_TEST(outsider_cannot_touch_a_call)
{
	struct world w;
	char *before;
	long st;
	const char *const posts[] = {"join", "decline", "leave", "end", "recording/start",
				     "recording/stop"};

	seed(&w);
	before = snapshot(&w);
	ASSERT_HIDDEN(req("GET", w.tc, NULL, w.a, "/api/calls/%s", w.call), "outsider GET call");
	ck_assert_msg(!list_mentions(w.tc, "/api/calls?limit=100", w.call),
		      "the outsider's call history lists the call");
	for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++) {
		st = req("POST", w.tc, "{}", NULL, "/api/calls/%s/%s", w.call, posts[i]);
		ASSERT_REFUSED(st, posts[i]);
	}
	st = req("POST", w.tc, "{\"source\":\"microphone\",\"muted\":true}", NULL,
		 "/api/calls/%s/participants/%s/mute", w.call, w.b);
	ASSERT_REFUSED(st, "outsider mutes B");
	st = req("POST", w.tc, "{}", NULL, "/api/calls/%s/participants/%s/remove", w.call, w.b);
	ASSERT_REFUSED(st, "outsider removes B");
	st = req("POST", w.tc, "{\"quality\":\"good\",\"rttMs\":10}", NULL, "/api/calls/%s/stats",
		 w.call);
	ASSERT_REFUSED(st, "outsider posts stats");
	/* A participant who is not the initiator may not end or remove either. */
	st = req("POST", w.tb, "{}", NULL, "/api/calls/%s/participants/%s/remove", w.call, w.a);
	ASSERT_REFUSED(st, "participant removes the initiator");
	assert_unchanged(before, &w, "outsider on a call");

	/* Positive controls: the participants see it. */
	ck_assert_int_eq(req("GET", w.tb, NULL, NULL, "/api/calls/%s", w.call), 200);
	ck_assert_int_eq(req("GET", w.tm, NULL, NULL, "/api/calls/%s", w.call), 200);
	ck_assert_msg(list_mentions(w.ta, "/api/calls?limit=100", w.call), "A's history lacks A's call");
	free(before);
	world_free(&w);
}
END_TEST

/* Issue 15 #3: a removed participant sees nothing of the call from the removal on. */
START_TEST(removed_participant_sees_nothing)
{
	struct world w;
	char *before;
	long st;

	seed(&w);
	before = snapshot(&w);
	ASSERT_HIDDEN(req("GET", w.tr, NULL, NULL, "/api/calls/%s", w.call), "removed: GET call");
	ASSERT_HIDDEN(req("GET", w.tr, NULL, NULL, "/api/calls/%s/recordings", w.call),
		      "removed: recordings list");
	ASSERT_HIDDEN(req("GET", w.tr, NULL, NULL, "/api/recordings/%s", w.rec2),
		      "removed: recording started after the removal");
	ASSERT_HIDDEN(req("GET", w.tr, NULL, NULL, "/api/recordings/%s", w.rec1),
		      "removed: earlier recording");
	st = req("POST", w.tr, "{}", NULL, "/api/calls/%s/join", w.call);
	ck_assert_msg(st == 403 || st == 404, "removed: join %ld", st);
	st = req("POST", w.tr, "{\"quality\":\"good\"}", NULL, "/api/calls/%s/stats", w.call);
	ASSERT_REFUSED(st, "removed: stats");
	ASSERT_REFUSED(req("DELETE", w.tr, NULL, NULL, "/api/recordings/%s", w.rec2),
		       "removed: delete recording");
	ck_assert_msg(!list_mentions(w.tr, "/api/calls?limit=100", w.call),
		      "the removed participant's history lists the call");
	assert_unchanged(before, &w, "removed participant's requests");
	free(before);
	world_free(&w);
}
END_TEST

/* Issue 15 #3: and gets no more events of the call. */
START_TEST(removed_participant_gets_no_events)
{
	struct world w;
	struct sse sr, sa;

	seed(&w);
	ck_assert_int_eq(sse_open(&sr, w.tr, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_open(&sa, w.ta, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&sr), 200);
	ck_assert_int_eq(sse_status(&sa), 200);
	usleep(300 * 1000);
	/* B leaves: a call.updated for the call's people. */
	ck_assert_int_eq(req("POST", w.tb, "{}", NULL, "/api/calls/%s/leave", w.call), 200);
	sse_read(&sa, 1500);
	sse_read(&sr, 300);
	ck_assert_msg(strstr(sa.buf, w.call) != NULL, "the initiator got no event (control)");
	ck_assert_msg(strstr(sr.buf, w.call) == NULL, "the removed participant got: %s", sr.buf);
	sse_close(&sr);
	sse_close(&sa);
	world_free(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Recordings                                                          */
/* ------------------------------------------------------------------ */

/* Issue 15 #4: recordings are for participants (and admins), not channel members. */
START_TEST(recordings_are_for_participants)
{
	struct world w;
	char *before, *v;
	const char *who[] = {NULL, NULL};
	const char *names[] = {"outsider", "channel member who never took part"};
	const char *recs[2];

	seed(&w);
	who[0] = w.tc;
	who[1] = w.tm;
	recs[0] = w.rec1;
	recs[1] = w.rec2;
	before = snapshot(&w);
	for (int i = 0; i < 2; i++) {
		ASSERT_HIDDEN(req("GET", who[i], NULL, NULL, "/api/calls/%s/recordings", w.call),
			      names[i]);
		for (int j = 0; j < 2; j++) {
			ASSERT_HIDDEN(req("GET", who[i], NULL, "X-Amz", "/api/recordings/%s", recs[j]),
				      names[i]);
			ASSERT_HIDDEN(req("DELETE", who[i], NULL, NULL, "/api/recordings/%s", recs[j]),
				      names[i]);
			ASSERT_REFUSED(req("POST", who[i], "{\"hold\":true}", NULL,
					   "/api/recordings/%s/legal-hold", recs[j]), names[i]);
		}
	}
	/* A participant who did not start the call may read, not delete. */
	ck_assert_int_eq(req("DELETE", w.tb, NULL, NULL, "/api/recordings/%s", w.rec1), 403);
	ck_assert_int_eq(req("POST", w.tb, "{\"hold\":true}", NULL, "/api/recordings/%s/legal-hold",
			     w.rec1), 403);
	assert_unchanged(before, &w, "recording requests of non-participants");

	/* Positive controls (they write download rows, so after the comparison). */
	{
		struct it_resp r;
		char path[128];
		const char *ok[] = {w.tb, w.ta, w.tadmin};

		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "/api/recordings/%s", w.rec2);
			ck_assert_int_eq(it_req(&srv, "GET", path, ok[i], NULL, &r), 0);
			ck_assert_msg(r.status == 200, "allowed reader got %ld", r.status);
			ck_assert_ptr_nonnull(json_object_get(r.json, "downloadUrl"));
			it_resp_free(&r);
			snprintf(path, sizeof path, "/api/calls/%s/recordings", w.call);
			ck_assert_int_eq(it_req(&srv, "GET", path, ok[i], NULL, &r), 0);
			ck_assert_int_eq(r.status, 200);
			ck_assert_int_eq(json_array_size(json_object_get(r.json, "recordings")), 2);
			it_resp_free(&r);
		}
	}
	v = q("SELECT count(*)::text FROM nchat_recording_downloads WHERE recording_id = $1", 1,
	      w.rec2);
	ck_assert_str_eq(v, "3");
	free(v);
	free(before);
	world_free(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Streams, chat, reactions, viewer sessions                           */
/* ------------------------------------------------------------------ */

START_TEST(outsider_cannot_touch_a_private_stream)
{
	struct world w;
	char *before;
	const char *tok[] = {NULL, NULL};
	const char *names[] = {"anonymous", "signed-in outsider"};

	seed(&w);
	tok[1] = w.tc;
	before = snapshot(&w);
	for (int i = 0; i < 2; i++) {
		const char *t = tok[i], *n = names[i];
		static const char *const gets[] = {"", "/chat", "/reactions", "/analytics"};
		static const char *const posts[] = {"/start", "/end", "/rotate-key", "/revoke-key",
						    "/publisher-token", "/viewer-token"};
		char body[160];

		for (size_t j = 0; j < sizeof gets / sizeof gets[0]; j++)
			ASSERT_REFUSED(req("GET", t, NULL, "private words of D", "/api/streams/%s%s",
					   w.s_priv, gets[j]), n);
		for (size_t j = 0; j < sizeof posts / sizeof posts[0]; j++)
			ASSERT_REFUSED(req("POST", t, "{\"viewer_session_id\":\"outsider-session-1\"}",
					   NULL, "/api/streams/%s%s", w.s_priv, posts[j]), n);
		ASSERT_REFUSED(req("POST", t, "{\"content\":\"hi from outside\"}", NULL,
				   "/api/streams/%s/chat", w.s_priv), n);
		ASSERT_REFUSED(req("POST", t, "{}", NULL, "/api/streams/%s/chat/%s/pin", w.s_priv,
				   w.msg_priv), n);
		ASSERT_REFUSED(req("DELETE", t, NULL, NULL, "/api/streams/%s/chat/%s", w.s_priv,
				   w.msg_priv), n);
		snprintf(body, sizeof body, "{\"reactionType\":\"heart\",\"viewer_session_id\":\"%s\"}",
			 w.sess_priv);
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/reactions", w.s_priv), n);
		snprintf(body, sizeof body, "{\"viewer_session_id\":\"%s\"}", w.sess_priv);
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/viewers/join", w.s_priv), n);
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/viewers/heartbeat",
				   w.s_priv), n);
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/viewers/leave", w.s_priv),
			       n);
		ASSERT_REFUSED(req("POST", t, "{\"viewer_session_id\":\"outsider-session-1\"}", NULL,
				   "/api/streams/%s/viewers/join", w.s_priv), n);
	}
	ck_assert_msg(!list_mentions(w.tc, "/api/streams?limit=100", w.s_priv),
		      "the outsider's stream list shows a private stream");
	assert_unchanged(before, &w, "outsider on a private stream");

	/* Positive controls: the channel member sees it and its chat. */
	ck_assert_int_eq(req("GET", w.te, NULL, NULL, "/api/streams/%s/chat", w.s_priv), 200);
	ck_assert_msg(list_mentions(w.te, "/api/streams?limit=100", w.s_priv),
		      "the member's stream list lacks the stream");
	free(before);
	world_free(&w);
}
END_TEST

/* A live public stream may be watched by anyone: still nobody else's session or message. */
START_TEST(outsider_cannot_touch_others_rows_on_a_live_stream)
{
	struct world w;
	char *before;
	char body[160];
	const char *tok[] = {NULL, NULL};

	seed(&w);
	tok[1] = w.tc;
	before = snapshot(&w);
	for (int i = 0; i < 2; i++) {
		const char *t = tok[i];
		static const char *const posts[] = {"/end", "/rotate-key", "/revoke-key",
						    "/publisher-token", "/start"};

		ASSERT_REFUSED(req("DELETE", t, NULL, NULL, "/api/streams/%s/chat/%s", w.s_live,
				   w.msg_live), "delete D's message");
		ASSERT_REFUSED(req("POST", t, "{}", NULL, "/api/streams/%s/chat/%s/pin", w.s_live,
				   w.msg_live), "pin D's message");
		snprintf(body, sizeof body, "{\"viewer_session_id\":\"%s\"}", w.sess_live);
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/viewers/heartbeat",
				   w.s_live), "heartbeat on D's session");
		ASSERT_REFUSED(req("POST", t, body, NULL, "/api/streams/%s/viewers/leave", w.s_live),
			       "leave D's session");
		ASSERT_REFUSED(req("GET", t, NULL, NULL, "/api/streams/%s/analytics", w.s_live),
			       "analytics");
		for (size_t j = 0; j < sizeof posts / sizeof posts[0]; j++)
			ASSERT_REFUSED(req("POST", t, "{}", NULL, "/api/streams/%s%s", w.s_live,
					   posts[j]), posts[j]);
	}
	/* Joining with D's session id (signed in as C) must not take it over. */
	snprintf(body, sizeof body, "{\"viewer_session_id\":\"%s\"}", w.sess_live);
	{
		long st = req("POST", w.tc, body, NULL, "/api/streams/%s/viewers/join", w.s_live);
		ck_assert_msg(REFUSED(st) || st == 409, "join with D's session id: %ld", st);
	}
	assert_unchanged(before, &w, "outsider on others' rows of a live stream");
	/* Control: anyone may read a live public stream's chat. */
	ck_assert_int_eq(req("GET", w.tc, NULL, NULL, "/api/streams/%s/chat", w.s_live), 200);
	free(before);
	world_free(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SSE                                                                 */
/* ------------------------------------------------------------------ */

/* Issue 15 #1: the SSE subscription applies the REST read rule, anonymous or not. */
START_TEST(sse_stream_follows_the_rest_read_rule)
{
	struct world w;
	struct sse s;
	char path[128];

	seed(&w);
	snprintf(path, sizeof path, "/api/events?stream=%s", w.s_priv);
	/* anonymous, with a replay request from the start */
	ck_assert_int_eq(sse_open(&s, NULL, path, "s0-0"), 0);
	ck_assert_int_eq(sse_status(&s), 401);
	sse_read(&s, 300);
	ck_assert_msg(strstr(s.buf, "event: stream.") == NULL, "anonymous got events: %s", s.buf);
	sse_close(&s);
	/* the REST rule for the same data says the same */
	ck_assert_int_eq(req("GET", NULL, NULL, NULL, "/api/streams/%s/chat", w.s_priv), 401);
	/* signed-in outsider: 404 */
	ck_assert_int_eq(sse_open(&s, w.tc, path, "s0-0"), 0);
	ck_assert_int_eq(sse_status(&s), 404);
	sse_close(&s);
	/* a malformed or unknown stream */
	ck_assert_int_eq(sse_open(&s, NULL, "/api/events?stream=00000000-0000-4000-8000-000000000001",
				  NULL), 0);
	ck_assert_int_eq(sse_status(&s), 404);
	sse_close(&s);
	/* controls: a channel member and the broadcaster may; anyone may follow the live one */
	ck_assert_int_eq(sse_open(&s, w.te, path, NULL), 0);
	ck_assert_int_eq(sse_status(&s), 200);
	sse_close(&s);
	ck_assert_int_eq(sse_open(&s, w.td, path, NULL), 0);
	ck_assert_int_eq(sse_status(&s), 200);
	sse_close(&s);
	snprintf(path, sizeof path, "/api/events?stream=%s", w.s_live);
	ck_assert_int_eq(sse_open(&s, NULL, path, NULL), 0);
	ck_assert_int_eq(sse_status(&s), 200);
	sse_close(&s);
	ck_assert_int_eq(req("GET", NULL, NULL, NULL, "/api/streams/%s/chat", w.s_live), 200);
	/* the live stream ends: anonymous may no longer follow it */
	free(q("UPDATE nchat_streams SET status = 'ended', ended_at = now() WHERE id = $1"
	       " RETURNING id", 1, w.s_live));
	ck_assert_int_eq(sse_open(&s, NULL, path, NULL), 0);
	ck_assert_int_eq(sse_status(&s), 401);
	sse_close(&s);
	world_free(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* GDPR                                                                */
/* ------------------------------------------------------------------ */

START_TEST(gdpr_of_another_user)
{
	struct world w;
	char *before;
	struct it_resp r;

	seed(&w);
	before = snapshot(&w);
	ck_assert_int_eq(req("DELETE", w.tc, NULL, NULL, "/api/users/%s/data", w.a), 403);
	ck_assert_int_eq(req("DELETE", w.tb, NULL, NULL, "/api/users/%s/data", w.d), 403);
	ck_assert_int_eq(req("GET", w.tc, NULL, NULL, "/api/users/%s/export", w.a), 404);
	assert_unchanged(before, &w, "erasing another user's data");
	/* The export holds nothing of anyone else. */
	ck_assert_int_eq(it_req(&srv, "GET", "/api/users/me/export", w.tb, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strstr(r.body, w.a) == NULL && strstr(r.body, w.d) == NULL &&
			      strstr(r.body, "words of D") == NULL && strstr(r.body, w.rec1) == NULL,
		      "B's export holds others' data: %s", r.body);
	ck_assert_msg(strstr(r.body, w.call) != NULL, "B's export lacks B's call (control)");
	it_resp_free(&r);
	free(before);
	world_free(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The login role                                                      */
/* ------------------------------------------------------------------ */

static PGconn *admin_db(void)
{
	PGconn *c = PQconnectdb(it_env("NC_TEST_ADMIN_URL"));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "admin connect: %s", PQerrorMessage(c));
	return c;
}

static void admin_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
}

/* DATABASE_URL for login role `role` on the test database. */
static void url_for(const char *role, char *out, size_t len)
{
	const char *base = it_env("DATABASE_MIGRATE_URL");
	const char *at = strchr(base, '@');

	ck_assert_ptr_nonnull(at);
	snprintf(out, len, "DATABASE_URL=postgresql://%s%s", role, at);
}

START_TEST(serve_refuses_a_login_role_without_the_work_roles)
{
	PGconn *adm = admin_db();
	char role[64], sql[256], env_url[512], cmd[2048], out[4096];
	FILE *f;
	size_t n;
	int rc, lines = 0;

	snprintf(role, sizeof role, "nctest_norole_%d", (int)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
	admin_exec(adm, sql);
	snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", role);
	admin_exec(adm, sql);
	url_for(role, env_url, sizeof env_url);
	snprintf(cmd, sizeof cmd,
		 "env '%s' LISTEN_ADDR=127.0.0.1:%d METRICS_ADDR=off LOG_LEVEL=warn timeout 20 '%s' serve 2>&1",
		 env_url, it_free_port(), it_env("NC_BIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	rc = pclose(f);
	ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "serve did not refuse (%d): %s", rc, out);
	for (char *p = out; (p = strstr(p, "nchat-rtc: ")) != NULL; p++)
		lines++;
	ck_assert_msg(lines == 1, "want one line, got: %s", out);
	ck_assert_msg(strstr(out, "GRANT nchat_rtc_system, nchat_rtc_user TO") != NULL &&
			      strstr(out, role) != NULL,
		      "the line does not say what to grant: %s", out);
	snprintf(sql, sizeof sql, "DROP ROLE %s", role);
	admin_exec(adm, sql);
	PQfinish(adm);
}
END_TEST

START_TEST(readyz_reports_a_login_role_that_lost_the_work_roles)
{
	PGconn *adm = admin_db();
	struct world w;
	struct it_server *s2 = &srv2;
	struct it_resp r;
	char role[64], sql[256], env_url[512], path[128], *before;
	const char *env[] = {env_url, NULL};
	const char *detail;

	seed(&w);
	snprintf(role, sizeof role, "nctest_lost_%d", (int)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
	admin_exec(adm, sql);
	snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE nchat_rtc_service", role);
	admin_exec(adm, sql);
	url_for(role, env_url, sizeof env_url);
	ck_assert_int_eq(it_server_start(s2, env), 0);
	ck_assert_int_eq(it_req(s2, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "readyz %ld %s", r.status, r.body);
	it_resp_free(&r);

	snprintf(sql, sizeof sql, "REVOKE nchat_rtc_service FROM %s", role);
	admin_exec(adm, sql);
	before = snapshot(&w);
	ck_assert_int_eq(it_req(s2, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "postgres")), "roles");
	detail = json_string_value(json_object_get(r.json, "postgresDetail"));
	ck_assert_msg(detail != NULL && strstr(detail, "GRANT") != NULL, "detail: %s", r.body);
	it_resp_free(&r);
	/* No silent fallback: requests fail (503), nothing is read or written. */
	snprintf(path, sizeof path, "/api/calls/%s", w.call);
	ck_assert_int_eq(it_req(s2, "GET", path, w.ta, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_msg(strstr(r.body, w.a) == NULL, "data in a failed answer");
	it_resp_free(&r);
	snprintf(path, sizeof path, "/api/calls/%s/leave", w.call);
	ck_assert_int_eq(it_req(s2, "POST", path, w.tb, "{}", &r), 0);
	ck_assert_int_eq(r.status, 503);
	it_resp_free(&r);
	assert_unchanged(before, &w, "requests without the work roles");

	snprintf(sql, sizeof sql, "GRANT nchat_rtc_service TO %s", role);
	admin_exec(adm, sql);
	ck_assert_int_eq(it_req(s2, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_eq(it_server_stop(s2), 0);
	snprintf(sql, sizeof sql, "DROP ROLE %s", role);
	admin_exec(adm, sql);
	PQfinish(adm);
	free(before);
	world_free(&w);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "NC_TEST_ADMIN_URL",
			      "REDIS_URL", "AUTH_JWT_SECRET", "LK_STANDIN_URL", NULL};
	Suite *s = suite_create("authz");
	TCase *tc = tcase_create("authz");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	printf("database set-up: %s\n", it_env("NC_TEST_DB_SETUP") ? it_env("NC_TEST_DB_SETUP")
								  : "member");
	if (it_server_start(&srv, NULL) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, outsider_cannot_touch_a_call);
	tcase_add_test(tc, removed_participant_sees_nothing);
	tcase_add_test(tc, removed_participant_gets_no_events);
	tcase_add_test(tc, recordings_are_for_participants);
	tcase_add_test(tc, outsider_cannot_touch_a_private_stream);
	tcase_add_test(tc, outsider_cannot_touch_others_rows_on_a_live_stream);
	tcase_add_test(tc, sse_stream_follows_the_rest_read_rule);
	tcase_add_test(tc, gdpr_of_another_user);
	tcase_add_test(tc, serve_refuses_a_login_role_without_the_work_roles);
	tcase_add_test(tc, readyz_reports_a_login_role_that_lost_the_work_roles);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (srv2.pid > 0)
		it_server_kill(&srv2);
	if (it_server_stop(&srv) != 0)
		failed++;
	if (owner_db != NULL)
		PQfinish(owner_db);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
