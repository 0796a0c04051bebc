/*
 * check_stream_counters.c - a stream's counters (sql/0013): every count is
 * one append-only pending row, folded into the stream row, the per-type
 * rows and the viewer rows later.  Against the real database:
 *
 *   - writers on several connections at once, with folds (sync and flush)
 *     racing them: no writer ever waits on a lock (sampled from
 *     pg_stat_activity), and afterwards every total, per-type count and
 *     per-session count equals the rows it counts;
 *   - a writer whose transaction is still open, and a fold whose
 *     transaction is still open, step by step: neither waits for the
 *     other, the row plus what is pending is exact in every snapshot, a
 *     fold that rolls back loses nothing;
 *   - the service killed before it folded: the counts of committed posts
 *     are in Postgres, and the next GET (list, stream, reaction summary,
 *     analytics) shows them exactly.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#define WRITERS 6
#define ROUNDS 60
#define WRITER_APP "nc-counter-writer"

static PGconn *db;
static char *ch;
static char *users[WRITERS];
static char *u_b, *t_b;

static const char *const types[] = { "heart", "like", "fire", "clap", "laugh", "wow", "sad", "angry" };

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static char *q1(const char *sql, const char *a, const char *b)
{
	const char *p[2] = { a, b };

	return it_sql(db, sql, a ? (b ? 2 : 1) : 0, p);
}

static long n1(const char *sql, const char *a, const char *b)
{
	char *v = q1(sql, a, b);
	long n = v ? strtol(v, NULL, 10) : -1;

	free(v);
	return n;
}

/* A live stream in the channel, created directly (no LiveKit needed to count). */
static char *new_stream(const char *title)
{
	const char *p[3] = { ch, u_b, title };

	return it_sql(db, "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status,"
			  " stream_key) VALUES ($1, $2, $3, 'live', 'sha256:' ||"
			  " encode(sha256(gen_random_uuid()::text::bytea), 'hex')) RETURNING id",
		      3, p);
}

static void sync_counters(const char *stream)
{
	free(q1("SELECT nchat_rtc_stream_counters_sync($1)::text", stream, NULL));
}

/* A connection of the service's login, in its system work role; NULL on failure. */
static PGconn *service_conn(const char *app)
{
	char conninfo[1024];
	PGconn *c;
	PGresult *r;

	snprintf(conninfo, sizeof(conninfo), "%s%sapplication_name=%s",
		 it_env("DATABASE_URL"), strchr(it_env("DATABASE_URL"), '?') ? "&" : "?", app);
	c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	/* a writer that had to wait 5 s for a lock fails instead of hiding it */
	r = PQexec(c, "SELECT set_config('role', 'nchat_rtc_system', false),"
		      " set_config('lock_timeout', '5s', false)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "role: %s", PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

/* Run one statement; 0 on success (prints the error otherwise). */
static int run(PGconn *c, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* Like run, and the first value as a number. */
static long runl(PGconn *c, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	long v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	else
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return v;
}

/* Writer i: reactions as its user and through its session, chat, anonymous views. */
static int writer(const char *stream, int i)
{
	PGconn *c = service_conn(WRITER_APP);
	int bad = 0;

	if (c == NULL)
		return 1;
	for (int k = 0; k < ROUNDS && bad == 0; k++) {
		const char *p[3] = { stream, users[i], types[(i + k) % 8] };
		char sid[64];
		const char *pv[2] = { stream, sid };

		bad += run(c, "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type)"
			      " VALUES ($1, $2, $3)", 3, p) != 0;
		if (k % 3 == 0)
			bad += run(c, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content)"
				      " VALUES ($1, $2, 'counted')", 2, p) != 0;
		if (k % 10 == 0)
			bad += run(c, "INSERT INTO nchat_stream_reactions (stream_id, viewer_id, reaction_type)"
				      " SELECT $1, v.id, $3 FROM nchat_stream_viewers v"
				      " WHERE v.stream_id = $1 AND v.user_id = $2", 3, p) != 0;
		if (k % 20 == 0) {
			snprintf(sid, sizeof(sid), "anon-%d-%d-%d", i, k, (int)getpid());
			bad += run(c, "INSERT INTO nchat_stream_viewers (stream_id, viewer_session_id)"
				      " VALUES ($1, $2)", 2, pv) != 0;
		}
	}
	PQfinish(c);
	return bad == 0 ? 0 : 1;
}

/* Folder: syncs, flushes, and folds held open for a while, racing the writers. */
static int folder(const char *stream, int i)
{
	PGconn *c = service_conn("nc-counter-folder");
	const char *p[1] = { stream };
	int bad = 0;

	if (c == NULL)
		return 1;
	for (int k = 0; k < 40 && bad == 0; k++) {
		if ((k + i) % 3 == 0) {
			bad += run(c, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p) != 0;
		} else if ((k + i) % 3 == 1) {
			bad += run(c, "SELECT nchat_rtc_stream_counters_flush()", 0, NULL) != 0;
		} else {
			bad += run(c, "BEGIN", 0, NULL) != 0;
			bad += run(c, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p) != 0;
			sleep_ms(20);
			bad += run(c, k % 2 ? "COMMIT" : "ROLLBACK", 0, NULL) != 0;
		}
		sleep_ms(5);
	}
	PQfinish(c);
	return bad == 0 ? 0 : 1;
}

/* Every counter of the stream against the rows it counts; the stream is folded first. */
static void assert_exact(const char *stream, long reactions, long chat, long views)
{
	sync_counters(stream);
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			    stream, NULL), 0);
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_reactions WHERE stream_id = $1",
			    stream, NULL), reactions);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL),
			 reactions);
	ck_assert_int_eq(n1("SELECT COALESCE(sum(count), 0) FROM nchat_stream_reaction_counts"
			    " WHERE stream_id = $1", stream, NULL), reactions);
	/* each type on its own */
	ck_assert_int_eq(n1("SELECT count(*) FROM (SELECT reaction_type, count(*) AS n"
			    "  FROM nchat_stream_reactions WHERE stream_id = $1 GROUP BY 1) x"
			    " FULL JOIN (SELECT reaction_type, count FROM nchat_stream_reaction_counts"
			    "  WHERE stream_id = $1 AND count > 0) c USING (reaction_type)"
			    " WHERE x.n IS DISTINCT FROM c.count", stream, NULL), 0);
	ck_assert_int_eq(n1("SELECT total_chat_messages FROM nchat_streams WHERE id = $1", stream,
			    NULL), chat);
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_chat_messages WHERE stream_id = $1",
			    stream, NULL), chat);
	if (views >= 0) {
		ck_assert_int_eq(n1("SELECT total_views FROM nchat_streams WHERE id = $1", stream,
				    NULL), views);
		ck_assert_int_eq(n1("SELECT unique_viewers FROM nchat_streams WHERE id = $1", stream,
				    NULL), views);
	}
	/* each session: its reactions (by id, or by its user when none given) and its user's chat */
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_viewers v WHERE v.stream_id = $1"
			    " AND (v.sent_reactions <> (SELECT count(*) FROM nchat_stream_reactions x"
			    "       WHERE x.stream_id = $1 AND (x.viewer_id = v.id OR (x.viewer_id IS NULL"
			    "         AND x.user_id = v.user_id)))"
			    "   OR v.sent_chat_messages <> (SELECT count(*) FROM nchat_stream_chat_messages m"
			    "       WHERE m.stream_id = $1 AND m.user_id = v.user_id))", stream, NULL), 0);
}

/* ---- many writers, folds racing them ---- */

START_TEST(concurrent_writers_never_wait_and_count_exactly)
{
	char *stream = new_stream("counters: concurrent");
	pid_t kids[WRITERS + 2];
	int status[WRITERS + 2];
	PGconn *admin;
	long samples = 0, waiting = 0;
	int n = 0, left;

	for (int i = 0; i < WRITERS; i++) {
		const char *p[3] = { stream, users[i], NULL };
		char sid[64];

		snprintf(sid, sizeof(sid), "writer-%d", i);
		p[2] = sid;
		free(it_sql(db, "INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id)"
				" VALUES ($1, $2, $3)", 3, p));
	}
	/* as the superuser: only it sees the wait events of every session */
	admin = PQconnectdb(it_env("NC_TEST_ADMIN_URL"));
	ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
	for (int i = 0; i < WRITERS + 2; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0)
			_exit(i < WRITERS ? writer(stream, i) : folder(stream, i));
		status[i] = -1;
	}
	/* sample until every child is done */
	do {
		long w = runl(admin, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"
				     WRITER_APP "' AND wait_event_type = 'Lock'"
				     /* a lock of another writer's rows or transaction, not the
				      * table growing by a page (relation extension) */
				     " AND wait_event <> 'extend'", 0, NULL);

		ck_assert_int_ge(w, 0);
		samples++;
		if (w > 0)
			waiting++;
		left = 0;
		for (int i = 0; i < WRITERS + 2; i++) {
			if (status[i] == -1 && waitpid(kids[i], &status[i], WNOHANG) != kids[i])
				status[i] = -1;
			left += status[i] == -1;
		}
		sleep_ms(2);
	} while (left > 0);
	PQfinish(admin);
	for (int i = 0; i < WRITERS + 2; i++) {
		ck_assert_msg(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0, "child %d failed", i);
		n++;
	}
	ck_assert_int_eq(n, WRITERS + 2);
	ck_assert_msg(waiting == 0, "a counter writer waited on a lock in %ld of %ld samples",
		      waiting, samples);
	/* per writer: ROUNDS reactions, one per 10 through the session, chat every 3rd, a view every 20th */
	assert_exact(stream, WRITERS * (ROUNDS + ROUNDS / 10), WRITERS * (ROUNDS / 3),
		     WRITERS * (1 + ROUNDS / 20));
	free(stream);
}
END_TEST

/* ---- an open writer, an open fold ---- */

/* The stream's reactions as a reader that does not fold sees them: row + pending. */
static long seen_reactions(PGconn *c, const char *stream)
{
	const char *p[1] = { stream };

	return runl(c, "SELECT s.total_reactions + sp.reactions FROM nchat_streams s"
		       " CROSS JOIN LATERAL nchat_rtc_stream_pending(s.id) sp WHERE s.id = $1", 1, p);
}

START_TEST(folds_and_writers_do_not_wait_for_each_other)
{
	char *stream = new_stream("counters: races");
	PGconn *a = service_conn("nc-race-a"), *b = service_conn("nc-race-b");
	PGconn *f = service_conn("nc-race-fold"), *r = service_conn("nc-race-read");
	const char *heart[3] = { stream, users[0], "heart" }, *fire[3] = { stream, users[1], "fire" };
	const char *clap[3] = { stream, users[2], "clap" }, *wow[3] = { stream, users[3], "wow" };
	const char *p[1] = { stream };
	const char *ins = "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type)"
			  " VALUES ($1, $2, $3)";

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(r);
	/* nobody waits more than a moment below: a wait is an error, not a slow test */
	ck_assert_int_eq(run(b, "SET lock_timeout = '1s'", 0, NULL), 0);
	ck_assert_int_eq(run(f, "SET lock_timeout = '1s'", 0, NULL), 0);
	ck_assert_int_eq(run(r, "SET lock_timeout = '1s'", 0, NULL), 0);

	/* A's reaction is written but not committed */
	ck_assert_int_eq(run(a, "BEGIN", 0, NULL), 0);
	ck_assert_int_eq(run(a, ins, 3, heart), 0);
	/* B writes and commits meanwhile; a fold goes through and counts B only */
	ck_assert_int_eq(run(b, ins, 3, fire), 0);
	ck_assert_int_eq(seen_reactions(r, stream), 1);
	ck_assert_int_eq(run(f, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p), 0);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL), 1);

	/* a fold held open (it holds the stream row and the pending rows it took) */
	ck_assert_int_eq(run(b, ins, 3, clap), 0);
	ck_assert_int_eq(run(f, "BEGIN", 0, NULL), 0);
	ck_assert_int_eq(run(f, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p), 0);
	/* ... a writer does not wait for it, nor does the timer's flush (it skips the stream) */
	ck_assert_int_eq(run(b, ins, 3, wow), 0);
	ck_assert_int_eq(run(r, "SELECT nchat_rtc_stream_counters_flush()", 0, NULL), 0);
	/* ... and a reader sees the exact count: the taken rows still pending, the row not yet moved */
	ck_assert_int_eq(seen_reactions(r, stream), 3);
	ck_assert_int_eq(run(f, "COMMIT", 0, NULL), 0);
	ck_assert_int_eq(seen_reactions(r, stream), 3);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL), 2);

	/* a fold that rolls back (a folder that crashed) leaves its rows for the next one */
	ck_assert_int_eq(run(f, "BEGIN", 0, NULL), 0);
	ck_assert_int_eq(run(f, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p), 0);
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			    stream, NULL), 1);
	PQfinish(f);
	ck_assert_int_eq(seen_reactions(r, stream), 3);

	/* A commits: counted by the next fold like any other */
	ck_assert_int_eq(run(a, "COMMIT", 0, NULL), 0);
	ck_assert_int_eq(seen_reactions(r, stream), 4);
	assert_exact(stream, 4, 0, -1);
	ck_assert_int_eq(n1("SELECT count FROM nchat_stream_reaction_counts WHERE stream_id = $1"
			    " AND reaction_type = 'heart'", stream, NULL), 1);
	PQfinish(a);
	PQfinish(b);
	PQfinish(r);
	free(stream);
}
END_TEST

/* ---- the service killed before it folded ---- */

static long status_on(const struct it_server *s, const char *method, const char *path,
		      const char *token, const char *body)
{
	struct it_resp rr;
	long st;

	ck_assert_int_eq(it_req(s, method, path, token, body, &rr), 0);
	st = rr.status;
	it_resp_free(&rr);
	return st;
}

static json_t *get_on(const struct it_server *s, const char *path, const char *token)
{
	struct it_resp rr;
	json_t *o;

	ck_assert_int_eq(it_req(s, "GET", path, token, NULL, &rr), 0);
	ck_assert_msg(rr.status == 200, "GET %s: %ld %s", path, rr.status, rr.body ? rr.body : "");
	o = json_incref(rr.json);
	it_resp_free(&rr);
	return o;
}

static long ji(json_t *o, const char *k)
{
	return (long)json_integer_value(json_object_get(o, k));
}

START_TEST(counts_survive_a_killed_service)
{
	/* no timer: only a read folds */
	const char *env[] = { "STREAM_COUNTER_FLUSH_SECONDS=0", "STREAM_REACTION_RATE_LIMIT=1000",
			      "STREAM_CHAT_RATE_LIMIT=1000", NULL };
	char *stream = new_stream("counters: killed");
	char path[160], body[64], *tok[3];
	struct it_server k, l;
	json_t *o, *it;
	size_t i;
	bool listed = false;

	for (int u = 0; u < 3; u++)
		tok[u] = it_user_token(users[u], NULL, 3600);
	ck_assert_int_eq(it_server_start(&k, env), 0);
	snprintf(path, sizeof(path), "/api/streams/%s/reactions", stream);
	for (int n = 0; n < 15; n++) {
		snprintf(body, sizeof(body), "{\"reactionType\":\"%s\"}", types[n % 3]);
		ck_assert_int_eq(status_on(&k, "POST", path, tok[n % 3], body), 201);
	}
	snprintf(path, sizeof(path), "/api/streams/%s/chat", stream);
	for (int n = 0; n < 4; n++)
		ck_assert_int_eq(status_on(&k, "POST", path, tok[n % 3], "{\"content\":\"before the crash\"}"),
				 201);
	it_server_kill(&k);

	/* every post committed its count, not folded yet */
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			    stream, NULL), 19);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL), 0);

	ck_assert_int_eq(it_server_start(&l, env), 0);
	/* the list does not fold: it adds what is pending */
	o = get_on(&l, "/api/streams?limit=100", t_b);
	json_array_foreach(json_object_get(o, "streams"), i, it) {
		if (strcmp(json_string_value(json_object_get(it, "id")), stream) == 0) {
			ck_assert_int_eq(ji(it, "total_reactions"), 15);
			ck_assert_int_eq(ji(it, "total_chat_messages"), 4);
			listed = true;
		}
	}
	ck_assert(listed);
	json_decref(o);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL), 0);
	/* GET of the stream folds first */
	snprintf(path, sizeof(path), "/api/streams/%s", stream);
	o = get_on(&l, path, t_b);
	ck_assert_int_eq(ji(o, "total_reactions"), 15);
	ck_assert_int_eq(ji(o, "total_chat_messages"), 4);
	json_decref(o);
	ck_assert_int_eq(n1("SELECT total_reactions FROM nchat_streams WHERE id = $1", stream, NULL), 15);
	ck_assert_int_eq(n1("SELECT count(*) FROM nchat_stream_counts_pending WHERE stream_id = $1",
			    stream, NULL), 0);
	snprintf(path, sizeof(path), "/api/streams/%s/reactions", stream);
	o = get_on(&l, path, t_b);
	ck_assert_int_eq(ji(o, "total"), 15);
	for (int t = 0; t < 3; t++)
		ck_assert_int_eq(ji(json_object_get(o, "counts"), types[t]), 5);
	json_decref(o);
	snprintf(path, sizeof(path), "/api/streams/%s/analytics", stream);
	o = get_on(&l, path, t_b);
	ck_assert_int_eq(ji(o, "reactions_total"), 15);
	ck_assert_int_eq(ji(o, "chat_messages"), 4);
	ck_assert_int_eq(ji(json_object_get(o, "reactions_by_type"), "heart"), 5);
	json_decref(o);
	it_server_stop(&l);
	assert_exact(stream, 15, 4, -1);
	for (int u = 0; u < 3; u++)
		free(tok[u]);
	free(stream);
}
END_TEST

int main(void)
{
	const char *need[] = { "NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			       "DATABASE_MIGRATE_URL", "NC_TEST_ADMIN_URL", "LK_STANDIN_URL",
			       "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", NULL };
	Suite *s = suite_create("stream_counters");
	TCase *tc = tcase_create("stream_counters");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	db = it_db();
	ch = it_new_channel(db, "counters");
	u_b = it_new_user(db, "Counter broadcaster");
	it_add_member(db, ch, u_b, "member");
	t_b = it_user_token(u_b, NULL, 3600);
	for (int i = 0; i < WRITERS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "Counter writer %d", i);
		users[i] = it_new_user(db, name);
		it_add_member(db, ch, users[i], "member");
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, concurrent_writers_never_wait_and_count_exactly);
	tcase_add_test(tc, folds_and_writers_do_not_wait_for_each_other);
	tcase_add_test(tc, counts_survive_a_killed_service);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	PQfinish(db);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
