/*
 * Integration tests of the data-subject endpoints and the retention sweep,
 * over HTTP against a real Postgres: the export holds exactly the caller's
 * rows; erasure (by the user or an admin) removes their content and
 * pseudonymises their participation while other people's rows and the
 * stream counters stay; a refused or failing erasure changes nothing;
 * `sweep-data` deletes exactly the rows past retention, in batches.
 * Rows are seeded through the owner connection (db()).
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct it_server srv;
static PGconn *owner_db;

/* One owner connection for the whole run (db() opens a new one per call). */
static PGconn *db(void)
{
	if (owner_db == NULL)
		owner_db = it_db();
	return owner_db;
}

/* Everything one seeded scenario created. */
struct world {
	char *u, *o, *admin;       /* the subject, another user, an admin */
	char *channel, *call, *stream_o, *stream_u, *recording;
	char *u_part, *o_part;     /* participation rows */
	char *u_token, *o_token, *admin_token;
};

#define OTHER_TEXT "other-users-private-words"

static char *sql1(const char *sql, const char *a, const char *b, const char *c)
{
	const char *p[3] = {a, b, c};
	int n = c ? 3 : b ? 2 : a ? 1 : 0;

	return it_sql(db(), sql, n, p);
}

static long count1(const char *sql, const char *a)
{
	const char *p[1] = {a};

	return it_sql_long(db(), sql, a ? 1 : 0, p);
}

/* One user's rows of every kind, in the call, the other's stream and their own. */
static void seed_user(struct world *w, const char *user, const char *part, const char *text)
{
	char *viewer;

	free(sql1("INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content)"
		  " VALUES ($1, $2, $3), ($1, $2, $3 || ' again') RETURNING id",
		  w->stream_o, user, text));
	viewer = sql1("INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id)"
		      " VALUES ($1, $2::uuid, 'sess-' || $2::text) RETURNING id", w->stream_o, user, NULL);
	free(sql1("INSERT INTO nchat_stream_reactions (stream_id, user_id, viewer_id, reaction_type)"
		  " VALUES ($1, $2, $3, 'heart') RETURNING id", w->stream_o, user, viewer));
	/* an anonymous reaction sent from the user's session: it identifies them too */
	free(sql1("INSERT INTO nchat_stream_reactions (stream_id, viewer_id, reaction_type)"
		  " VALUES ($1, $2, 'fire') RETURNING id", w->stream_o, viewer, NULL));
	free(sql1("INSERT INTO nchat_webrtc_connections (call_id, participant_id, user_id,"
		  " ice_connection_state, rtt_ms, quality) VALUES ($1, $2, $3, 'connected', 42, 'good')"
		  " RETURNING id", w->call, part, user));
	free(sql1("INSERT INTO nchat_recording_downloads (recording_id, user_id) VALUES ($1, $2)"
		  " RETURNING id", w->recording, user, NULL));
	free(sql1("INSERT INTO nchat_rtc_audit_log (actor_id, actor_role, action, target_type,"
		  " target_id) VALUES ($1, 'user', 'call.end', 'call', $2) RETURNING id",
		  user, w->call, NULL));
	free(viewer);
}

static void seed(struct world *w)
{
	PGconn *c = db();

	memset(w, 0, sizeof(*w));
	w->u = it_new_user(c, "Subject");
	w->o = it_new_user(c, "Other");
	w->admin = it_new_user(c, "Admin");
	w->channel = it_new_channel(c, "gdpr");
	it_add_member(c, w->channel, w->u, "member");
	it_add_member(c, w->channel, w->o, "member");
	w->call = sql1("INSERT INTO nchat_calls (livekit_room_name, call_type, status, initiator_id,"
		       " channel_id, started_at, ended_at) VALUES ('gdpr-' || gen_random_uuid(),"
		       " 'video', 'ended', $1, $2, now() - interval '1 hour', now()) RETURNING id",
		       w->u, w->channel, NULL);
	w->u_part = sql1("INSERT INTO nchat_call_participants (call_id, user_id, role, status,"
			 " livekit_identity, livekit_participant_id, joined_at, left_at)"
			" VALUES ($1, $2::uuid, 'initiator', 'left', $2::text, 'PA_subject',"
			 " now() - interval '50 minutes', now() - interval '10 minutes') RETURNING id",
			 w->call, w->u, NULL);
	w->o_part = sql1("INSERT INTO nchat_call_participants (call_id, user_id, role, status,"
			 " livekit_identity, livekit_participant_id, joined_at, left_at)"
			" VALUES ($1, $2::uuid, 'participant', 'left', $2::text, 'PA_other',"
			 " now() - interval '40 minutes', now() - interval '10 minutes') RETURNING id",
			 w->call, w->o, NULL);
	w->recording = sql1("INSERT INTO nchat_call_recordings (call_id, status, started_by)"
			    " VALUES ($1, 'completed', $2) RETURNING id", w->call, w->u, NULL);
	w->stream_o = sql1("INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status)"
			   " VALUES ($1, $2, 'Other''s stream', 'live') RETURNING id",
			   w->channel, w->o, NULL);
	w->stream_u = sql1("INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status)"
			   " VALUES ($1, $2, 'Subject''s stream', 'ended') RETURNING id",
			   w->channel, w->u, NULL);
	seed_user(w, w->u, w->u_part, "subject says hello");
	seed_user(w, w->o, w->o_part, OTHER_TEXT);
	w->u_token = it_user_token(w->u, "user", 3600);
	w->o_token = it_user_token(w->o, "user", 3600);
	w->admin_token = it_user_token(w->admin, "user,admin", 3600);
}

static void world_free(struct world *w)
{
	char **f[] = {&w->u, &w->o, &w->admin, &w->channel, &w->call, &w->stream_o, &w->stream_u,
		      &w->recording, &w->u_part, &w->o_part, &w->u_token, &w->o_token,
		      &w->admin_token};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		free(*f[i]);
		*f[i] = NULL;
	}
}

/* A fingerprint of everything erasure could touch, to prove "nothing changed". */
static char *snapshot(const struct world *w)
{
	return sql1("SELECT concat_ws('|',"
		    " (SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1),"
		    " (SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1),"
		    " (SELECT count(*) FROM nchat_stream_viewers WHERE stream_id = $1),"
		    " (SELECT count(*) FROM nchat_webrtc_connections WHERE call_id = $2),"
		    " (SELECT count(*) FROM nchat_recording_downloads WHERE recording_id = $3),"
		    " (SELECT string_agg(coalesce(user_id::text, '-') || coalesce(livekit_identity, '-')"
		    "   || coalesce(livekit_participant_id, '-') || (pseudonymised_at IS NULL)::text, ','"
		    "   ORDER BY id) FROM nchat_call_participants WHERE call_id = $2),"
		    " (SELECT coalesce(initiator_id::text, '-') FROM nchat_calls WHERE id = $2),"
		    " (SELECT count(*) FROM nchat_rtc_audit_log WHERE action = 'user.erase'))",
		    w->stream_o, w->call, w->recording);
}

/* The stream's counters: anonymous aggregates that erasure must keep. */
static char *counters(const char *stream)
{
	/* folded first, as the service's reads do */
	free(sql1("SELECT nchat_rtc_stream_counters_sync($1)::text", stream, NULL, NULL));
	return sql1("SELECT concat_ws('|', total_views, unique_viewers, total_chat_messages,"
		    " total_reactions, (SELECT string_agg(reaction_type || count, ',' ORDER BY"
		    " reaction_type) FROM nchat_stream_reaction_counts WHERE stream_id = $1))"
		    " FROM nchat_streams WHERE id = $1", stream, NULL, NULL);
}

static json_t *export_of(const char *token, struct it_resp *resp)
{
	ck_assert_int_eq(it_req(&srv, "GET", "/api/users/me/export", token, NULL, resp), 0);
	ck_assert_int_eq(resp->status, 200);
	ck_assert_ptr_nonnull(resp->json);
	return resp->json;
}

static size_t section_len(json_t *ex, const char *key)
{
	json_t *a = json_object_get(ex, key);

	ck_assert_msg(json_is_array(a), "export has no array %s", key);
	return json_array_size(a);
}

START_TEST(export_holds_exactly_the_callers_rows)
{
	struct world w;
	struct it_resp resp = {0};
	json_t *ex, *p;

	seed(&w);
	ex = export_of(w.u_token, &resp);
	ck_assert_str_eq(json_string_value(json_object_get(ex, "user_id")), w.u);
	ck_assert_uint_eq(section_len(ex, "call_participations"), 1);
	p = json_array_get(json_object_get(ex, "call_participations"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(p, "id")), w.u_part);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "call"), "id")), w.call);
	ck_assert(json_is_true(json_object_get(json_object_get(p, "call"), "initiated_by_me")));
	ck_assert_uint_eq(section_len(ex, "streams"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(ex, "streams"), 0), "id")), w.stream_u);
	ck_assert_uint_eq(section_len(ex, "stream_chat_messages"), 2);
	ck_assert_uint_eq(section_len(ex, "stream_reactions"), 1);
	ck_assert_uint_eq(section_len(ex, "stream_viewer_sessions"), 1);
	ck_assert_uint_eq(section_len(ex, "connection_stats"), 1);
	ck_assert_uint_eq(section_len(ex, "recording_downloads"), 1);
	ck_assert_uint_eq(section_len(ex, "audit_log"), 1);
	/* Nothing of the other user: not their id, not their words. */
	ck_assert_msg(strstr(resp.body, w.o) == NULL, "export mentions the other user");
	ck_assert_msg(strstr(resp.body, OTHER_TEXT) == NULL, "export holds the other user's chat");
	ck_assert_msg(strstr(resp.body, "PA_other") == NULL, "export holds the other's LiveKit id");
	ck_assert_msg(strstr(resp.body, "subject says hello") != NULL, "export lacks own chat");
	it_resp_free(&resp);

	/* Without a token: 401. */
	ck_assert_int_eq(it_req(&srv, "GET", "/api/users/me/export", NULL, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 401);
	it_resp_free(&resp);
	world_free(&w);
}
END_TEST

/* After the subject's data was erased (by actor_token): check the outcome. */
static void check_erased(struct world *w, const char *before_counters, const char *actor,
			 const char *actor_role)
{
	struct it_resp resp = {0};
	char *after;
	json_t *ex;

	/* Their content is gone ... */
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w->u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_reactions WHERE user_id = $1"
				" OR viewer_id IN (SELECT id FROM nchat_stream_viewers WHERE user_id = $1)", w->u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_viewers WHERE user_id = $1", w->u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_webrtc_connections WHERE user_id = $1", w->u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_recording_downloads WHERE user_id = $1", w->u), 0);
	/* ... the download log is an audit trail of access to someone's recording:
	 * the subject's row stays, without the subject (issue 15 #13) ... */
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_recording_downloads WHERE recording_id = $1"
				" AND user_id IS NULL AND pseudonymised_at IS NOT NULL", w->recording), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_recording_downloads WHERE recording_id = $1",
				w->recording), 2);
	/* ... their participation is pseudonymised, not deleted ... */
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_call_participants WHERE id = $1 AND"
				" user_id IS NULL AND livekit_identity IS NULL AND"
				" livekit_participant_id IS NULL AND pseudonymised_at IS NOT NULL"
				" AND total_duration_seconds > 0", w->u_part), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_calls WHERE id = $1 AND initiator_id IS NULL",
				w->call), 1);
	/* ... the other participant is intact ... */
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1", w->call), 2);
	{
		const char *p[2] = {w->o_part, w->o};
		ck_assert_int_eq(it_sql_long(db(), "SELECT count(*) FROM nchat_call_participants"
					     " WHERE id = $1 AND user_id = $2 AND livekit_identity = $2::text"
					     " AND livekit_participant_id = 'PA_other' AND pseudonymised_at IS NULL",
					     2, p), 1);
	}
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w->o), 2);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_reactions WHERE user_id = $1", w->o), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_viewers WHERE user_id = $1", w->o), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_webrtc_connections WHERE user_id = $1", w->o), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_recording_downloads WHERE user_id = $1", w->o), 1);
	/* ... the anonymous counters did not move ... */
	after = counters(w->stream_o);
	ck_assert_str_eq(after, before_counters);
	free(after);
	/* ... and the erasure is audited. */
	{
		const char *p[3] = {w->u, actor, actor_role};
		ck_assert_int_eq(it_sql_long(db(), "SELECT count(*) FROM nchat_rtc_audit_log WHERE"
					     " action = 'user.erase' AND target_type = 'user' AND"
					     " target_id = $1::text AND actor_id = $2 AND actor_role = $3",
					     3, p), 1);
	}
	/* The subject's export is now empty of all of it. */
	ex = export_of(w->u_token, &resp);
	ck_assert_uint_eq(section_len(ex, "call_participations"), 0);
	ck_assert_uint_eq(section_len(ex, "stream_chat_messages"), 0);
	ck_assert_uint_eq(section_len(ex, "stream_reactions"), 0);
	ck_assert_uint_eq(section_len(ex, "stream_viewer_sessions"), 0);
	ck_assert_uint_eq(section_len(ex, "connection_stats"), 0);
	ck_assert_uint_eq(section_len(ex, "recording_downloads"), 0);
	it_resp_free(&resp);
}

START_TEST(erase_by_self)
{
	struct world w;
	struct it_resp resp = {0};
	char path[128], *before;
	json_t *erased;

	seed(&w);
	before = counters(w.stream_o);
	snprintf(path, sizeof(path), "/api/users/%s/data", w.u);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.u_token, NULL, &resp), 0);
	ck_assert_msg(resp.status == 200, "status %ld: %s", resp.status, resp.body);
	erased = json_object_get(resp.json, "erased");
	ck_assert_int_eq(json_integer_value(json_object_get(erased, "stream_chat_messages")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(erased, "stream_reactions")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(erased, "stream_viewer_sessions")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(erased, "connection_stats")), 1);
	ck_assert_ptr_null(json_object_get(erased, "recording_downloads"));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(resp.json, "pseudonymised"),
							    "recording_downloads")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(resp.json, "pseudonymised"),
							    "call_participations")), 1);
	it_resp_free(&resp);
	check_erased(&w, before, w.u, "user");

	/* Again: idempotent, nothing left to erase. */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.u_token, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 200);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(resp.json, "erased"),
							    "stream_chat_messages")), 0);
	it_resp_free(&resp);
	free(before);
	world_free(&w);
}
END_TEST

START_TEST(erase_by_admin)
{
	struct world w;
	struct it_resp resp = {0};
	char path[128], *before;

	seed(&w);
	before = counters(w.stream_o);
	/* upper-case id: the same user */
	snprintf(path, sizeof(path), "/api/users/%s/data", w.u);
	for (char *c = path + strlen("/api/users/"); *c != '/'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.admin_token, NULL, &resp), 0);
	ck_assert_msg(resp.status == 200, "status %ld: %s", resp.status, resp.body);
	it_resp_free(&resp);
	check_erased(&w, before, w.admin, "admin");
	free(before);
	world_free(&w);
}
END_TEST

START_TEST(erase_refused_changes_nothing)
{
	struct world w;
	struct it_resp resp = {0};
	char path[128], *before, *after;

	seed(&w);
	before = snapshot(&w);
	snprintf(path, sizeof(path), "/api/users/%s/data", w.u);
	/* another (non-admin) user */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.o_token, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 403);
	ck_assert_str_eq(it_err_code(&resp), "forbidden");
	it_resp_free(&resp);
	/* no token */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, NULL, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 401);
	it_resp_free(&resp);
	/* not a UUID */
	ck_assert_int_eq(it_req(&srv, "DELETE", "/api/users/not-a-uuid/data", w.admin_token, NULL,
				&resp), 0);
	ck_assert_int_eq(resp.status, 400);
	it_resp_free(&resp);
	/* unknown user */
	ck_assert_int_eq(it_req(&srv, "DELETE", "/api/users/00000000-0000-4000-8000-0000000000ff/data",
				w.admin_token, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 404);
	it_resp_free(&resp);
	after = snapshot(&w);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	world_free(&w);
}
END_TEST

/*
 * A statement failing half-way (the pseudonymisation, after every delete)
 * must leave nothing done: a NOT VALID check constraint, added by the owner
 * for the duration of the test, rejects exactly that UPDATE.
 */
START_TEST(erase_failure_is_atomic)
{
	struct world w;
	struct it_resp resp = {0};
	char path[128], *before, *after;

	seed(&w);
	before = snapshot(&w);
	free(sql1("ALTER TABLE nchat_call_participants ADD CONSTRAINT it_gdpr_no_null_user"
		  " CHECK (user_id IS NOT NULL OR pseudonymised_at IS NULL) NOT VALID",
		  NULL, NULL, NULL));
	snprintf(path, sizeof(path), "/api/users/%s/data", w.u);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.u_token, NULL, &resp), 0);
	free(sql1("ALTER TABLE nchat_call_participants DROP CONSTRAINT it_gdpr_no_null_user",
		  NULL, NULL, NULL));
	ck_assert_msg(resp.status >= 500, "status %ld: %s", resp.status, resp.body);
	it_resp_free(&resp);
	after = snapshot(&w);
	ck_assert_str_eq(after, before);
	free(after);
	/* and once the fault is gone, the erasure goes through */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, w.u_token, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 200);
	it_resp_free(&resp);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w.u), 0);
	free(before);
	world_free(&w);
}
END_TEST

/* Run `NC_BIN sweep-data` with extra environment; its stdout into out. */
static int run_sweep(const char *extra_env, char *out, size_t outlen)
{
	char cmd[1024];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "env %s '%s' sweep-data 2>&1", extra_env, it_env("NC_BIN"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	return pclose(f);
}

START_TEST(sweep_deletes_exactly_the_old_rows)
{
	struct world w;
	char out[2048];
	long old_events;

	seed(&w);
	/* Age some of both users' rows past the default retention periods. */
	free(sql1("UPDATE nchat_stream_chat_messages SET created_at = now() - interval '366 days'"
		  " WHERE user_id = $1 AND content = 'subject says hello'", w.u, NULL, NULL));
	free(sql1("UPDATE nchat_stream_chat_messages SET created_at = now() - interval '364 days'"
		  " WHERE user_id = $1 AND content LIKE '%again'", w.u, NULL, NULL));
	free(sql1("UPDATE nchat_stream_reactions SET created_at = now() - interval '400 days'"
		  " WHERE user_id = $1", w.o, NULL, NULL));
	free(sql1("UPDATE nchat_stream_viewers SET joined_at = now() - interval '200 days',"
		  " last_heartbeat_at = now() - interval '100 days', left_at = now() - interval '91 days'"
		  " WHERE user_id = $1", w.u, NULL, NULL));
	free(sql1("UPDATE nchat_stream_viewers SET joined_at = now() - interval '200 days',"
		  " last_heartbeat_at = now() - interval '100 days', left_at = now() - interval '89 days'"
		  " WHERE user_id = $1", w.o, NULL, NULL));
	free(sql1("UPDATE nchat_webrtc_connections SET created_at = now() - interval '91 days'"
		  " WHERE user_id = $1", w.o, NULL, NULL));
	/* 2500 old webhook ids (several batches) and one recent */
	free(sql1("INSERT INTO nchat_livekit_webhook_events (event_id, event, received_at)"
		  " SELECT 'gdpr-old-' || $1 || '-' || g, 'room_started', now() - interval '8 days'"
		  " FROM generate_series(1, 2500) g RETURNING 1", w.u, NULL, NULL));
	free(sql1("INSERT INTO nchat_livekit_webhook_events (event_id, event, received_at)"
		  " VALUES ('gdpr-new-' || $1, 'room_started', now() - interval '6 days') RETURNING 1",
		  w.u, NULL, NULL));
	old_events = count1("SELECT count(*) FROM nchat_livekit_webhook_events"
			    " WHERE received_at < now() - interval '7 days'", NULL);
	ck_assert_int_ge(old_events, 2500);

	/* Chat kept forever: the old chat stays, everything else past retention goes. */
	ck_assert_int_eq(run_sweep("RETENTION_CHAT_DAYS=0", out, sizeof(out)), 0);
	ck_assert_msg(strncmp(out, "sweep-data: deleted ", 20) == 0, "%s", out);
	ck_assert_msg(strstr(out, "chat messages kept") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "reactions kept") != NULL, "%s", out);
	{
		char want[64];

		snprintf(want, sizeof(want), " %ld webhook events", old_events);
		ck_assert_msg(strstr(out, want) != NULL, "want \"%s\" in %s", want, out);
	}
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w.u), 2);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_reactions WHERE user_id = $1", w.o), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_viewers WHERE user_id = $1", w.u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_viewers WHERE user_id = $1", w.o), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_webrtc_connections WHERE user_id = $1", w.o), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_webrtc_connections WHERE user_id = $1", w.u), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_livekit_webhook_events"
				" WHERE received_at < now() - interval '7 days'", NULL), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_livekit_webhook_events"
				" WHERE event_id = 'gdpr-new-' || $1", w.u), 1);

	/* Default retention: now the old chat and reactions go too, exactly those. */
	ck_assert_int_eq(run_sweep("", out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, " 0 webhook events") != NULL, "%s", out);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1"
				" AND content = 'subject says hello'", w.u), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w.u), 1);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_chat_messages WHERE user_id = $1", w.o), 2);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_reactions WHERE user_id = $1", w.o), 0);
	ck_assert_int_eq(count1("SELECT count(*) FROM nchat_stream_reactions WHERE user_id = $1", w.u), 1);

	/* A third run finds nothing. */
	ck_assert_int_eq(run_sweep("", out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "deleted 0 chat messages, 0 reactions, 0 viewer sessions,"
			      " 0 connection stats, 0 webhook events") != NULL, "%s", out);
	world_free(&w);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL",
			      "AUTH_JWT_SECRET", NULL};
	Suite *s = suite_create("gdpr");
	TCase *tc = tcase_create("gdpr");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (it_server_start(&srv, NULL) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, export_holds_exactly_the_callers_rows);
	tcase_add_test(tc, erase_by_self);
	tcase_add_test(tc, erase_by_admin);
	tcase_add_test(tc, erase_refused_changes_nothing);
	tcase_add_test(tc, erase_failure_is_atomic);
	tcase_add_test(tc, sweep_deletes_exactly_the_old_rows);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&srv) != 0)
		failed++;
	if (owner_db != NULL)
		PQfinish(owner_db);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
