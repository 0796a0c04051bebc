/*
 * check_schema.c - the database schema (sql/), tested against a real,
 * migrated PostgreSQL through the service's own role.
 *
 * Environment:
 *   DATABASE_MIGRATE_URL  the owner role on the migrated database (fixtures)
 *   DATABASE_URL          the service's login role (member of nchat_rtc_service)
 * Without them the test is skipped (exit 77).
 *
 * What it proves: row-level security (a user sees only their own calls and
 * streams, nothing without a context, everything in service context), CHECK
 * constraints, the participant duration trigger, the stream analytics
 * triggers, and one active recording per call.  Every row it creates hangs
 * off random ids made for this run and is deleted at the end, so it can run
 * again and again on the same database.
 */
#include <check.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_owner_url;
static const char *g_app_url;

/* Fixture ids (uuid text), made once in main() before the tests fork. */
enum { UUID_LEN = 37 };
static char u_a[UUID_LEN], u_b[UUID_LEN], u_c[UUID_LEN];
static char ch_x[UUID_LEN], ch_y[UUID_LEN];
static char call1[UUID_LEN], call2[UUID_LEN], call3[UUID_LEN], call4[UUID_LEN];
static char run_tag[UUID_LEN];

/* Per-test connections (opened in the forked child by the fixture). */
static PGconn *app;
static PGconn *own;

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static PGconn *db_connect(const char *url)
{
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "check_schema: cannot connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PGresult *r = PQexec(c, "SET client_min_messages = warning");
	PQclear(r);
	return c;
}

/* Run a statement that must succeed; the caller PQclear()s the result. */
static PGresult *xq(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK,
		      "query failed: %s\n  %s", PQerrorMessage(c), sql);
	return r;
}

static void xexec(PGconn *c, const char *sql, int n, const char *const *params)
{
	PQclear(xq(c, sql, n, params));
}

/* First column of the first row as a long (0 when no row or NULL). */
static long xlong(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = xq(c, sql, n, params);
	long v = 0;
	if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* First column of the first row, copied into out (must exist). */
static void xtext(PGconn *c, char *out, size_t outlen, const char *sql, int n,
		  const char *const *params)
{
	PGresult *r = xq(c, sql, n, params);
	ck_assert_msg(PQntuples(r) == 1 && !PQgetisnull(r, 0, 0), "no value from: %s", sql);
	snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
}

/* A statement that must fail with SQLSTATE `state`. */
static void xfail(PGconn *c, const char *state, const char *sql, int n,
		  const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	ck_assert_msg(st == PGRES_FATAL_ERROR, "expected SQLSTATE %s, statement succeeded: %s",
		      state, sql);
	ck_assert_msg(got != NULL && strcmp(got, state) == 0,
		      "expected SQLSTATE %s, got %s: %s", state, got ? got : "(none)",
		      PQerrorMessage(c));
	PQclear(r);
}

/*
 * Open a transaction in the given context, as src/db.c does: "service" (the
 * work role nchat_rtc_system), a user id (nchat_rtc_user with nchat.user_id),
 * "nobody" (nchat_rtc_user with no user), or NULL (the login role itself).
 */
static void ctx_begin(PGconn *c, const char *who)
{
	xexec(c, "BEGIN", 0, NULL);
	if (who == NULL)
		return;
	if (strcmp(who, "service") == 0) {
		xexec(c, "SELECT set_config('role', 'nchat_rtc_system', true)", 0, NULL);
	} else if (strcmp(who, "nobody") == 0) {
		xexec(c, "SELECT set_config('role', 'nchat_rtc_user', true)", 0, NULL);
	} else {
		const char *p[] = { who };
		xexec(c, "SELECT set_config('role', 'nchat_rtc_user', true),"
			 " set_config('nchat.user_id', $1, true)", 1, p);
	}
}

/* Does the login role itself bypass row-level security (superuser, owner)? */
static bool g_login_bypasses;

static void ctx_commit(PGconn *c)
{
	xexec(c, "COMMIT", 0, NULL);
}

static void ctx_rollback(PGconn *c)
{
	PQclear(PQexec(c, "ROLLBACK"));
}

/* Count rows of `sql` (which selects rows, given one uuid param) as `who`. */
static long count_as(const char *who, const char *sql, const char *param)
{
	const char *p[] = { param };
	ctx_begin(app, who);
	long n = xlong(app, sql, param ? 1 : 0, param ? p : NULL);
	ctx_commit(app);
	return n;
}

/* Does `who` see this call? */
static int sees_call(const char *who, const char *call)
{
	return count_as(who, "SELECT count(*) FROM nchat_calls WHERE id = $1", call) == 1;
}

static void setup(void)
{
	own = db_connect(g_owner_url);
	app = db_connect(g_app_url);
	ck_assert_msg(own != NULL && app != NULL, "cannot connect to the test database");
}

static void teardown(void)
{
	if (app)
		PQfinish(app);
	if (own)
		PQfinish(own);
	app = own = NULL;
}

/* ------------------------------------------------------------------------ */
/* fixtures (run in main, with the owner role)                                */
/* ------------------------------------------------------------------------ */

static int fx_exec(PGconn *c, const char *sql, int n, const char *const *p)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "check_schema: fixture failed: %s  %s\n", PQerrorMessage(c), sql);
	PQclear(r);
	return ok ? 0 : -1;
}

static int fx_uuid(PGconn *c, char *out)
{
	PGresult *r = PQexec(c, "SELECT gen_random_uuid()");
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (ok)
		snprintf(out, UUID_LEN, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return ok ? 0 : -1;
}

/*
 * Users A, B, C.  Channel X: A and C.  Channel Y: B.
 *   call1: B -> C, no channel          A must not see it
 *   call2: B -> A, no channel          A sees it (participant)
 *   call3: C alone, channel X          A sees it (channel member)
 *   call4: B alone, channel Y          A must not see it
 * Each call has a completed recording.
 */
static int fixtures_create(PGconn *c)
{
	char *ids[] = { u_a, u_b, u_c, ch_x, ch_y, call1, call2, call3, call4, run_tag };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		if (fx_uuid(c, ids[i]) != 0)
			return -1;

	const char *users[] = { u_a, u_b, u_c };
	const char *names[] = { "Test A", "Test B", "Test C" };
	for (int i = 0; i < 3; i++) {
		const char *p[] = { users[i], names[i] };
		if (fx_exec(c, "INSERT INTO nchat_users (id, display_name) VALUES ($1, $2)", 2, p))
			return -1;
	}
	{
		const char *p[] = { ch_x, ch_y };
		if (fx_exec(c, "INSERT INTO nchat_channels (id, name) VALUES ($1, 'x'), ($2, 'y')", 2, p))
			return -1;
	}
	{
		const char *p[] = { ch_x, ch_y, u_a, u_b, u_c };
		if (fx_exec(c, "INSERT INTO nchat_channel_members (channel_id, user_id) "
			       "VALUES ($1, $3), ($1, $5), ($2, $4)", 5, p))
			return -1;
	}
	struct {
		const char *id, *initiator, *channel, *other;
	} calls[] = {
		{ call1, u_b, NULL, u_c },
		{ call2, u_b, NULL, u_a },
		{ call3, u_c, ch_x, NULL },
		{ call4, u_b, ch_y, NULL },
	};
	for (size_t i = 0; i < 4; i++) {
		const char *p[] = { calls[i].id, calls[i].initiator, calls[i].channel };
		if (fx_exec(c, "INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, "
			       "initiator_id, channel_id, is_group_call) "
			       "VALUES ($1::uuid, 'test-' || $1::text, 'video', 'active', $2, $3::uuid, $3::uuid IS NOT NULL)",
			    3, p))
			return -1;
		if (fx_exec(c, "INSERT INTO nchat_call_participants (call_id, user_id, role, status, "
			       "livekit_identity) VALUES ($1, $2::uuid, 'initiator', 'joined', $2::text)", 2, p))
			return -1;
		if (calls[i].other) {
			const char *q[] = { calls[i].id, calls[i].other };
			if (fx_exec(c, "INSERT INTO nchat_call_participants (call_id, user_id, status, "
				       "livekit_identity) VALUES ($1, $2::uuid, 'ringing', $2::text)", 2, q))
				return -1;
		}
		if (fx_exec(c, "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status, "
			       "started_by, retention_days) "
			       "VALUES ($1::uuid, 'EG_' || $1::text, 'completed', $2, 30)", 2, p))
			return -1;
	}
	return 0;
}

static void fixtures_delete(PGconn *c)
{
	const char *callp[] = { call1, call2, call3, call4 };
	const char *streamp[] = { ch_x, ch_y, u_a, u_b, u_c };
	const char *chanp[] = { ch_x, ch_y };
	const char *userp[] = { u_a, u_b, u_c };

	/* recordings first: a call with recordings cannot be deleted (RESTRICT) */
	fx_exec(c, "DELETE FROM nchat_call_recordings "
		   "WHERE call_id = ANY (ARRAY[$1, $2, $3, $4]::uuid[])", 4, callp);
	fx_exec(c, "DELETE FROM nchat_calls WHERE id = ANY (ARRAY[$1, $2, $3, $4]::uuid[])", 4, callp);
	fx_exec(c, "DELETE FROM nchat_streams WHERE channel_id = ANY (ARRAY[$1, $2]::uuid[]) "
		   "OR broadcaster_id = ANY (ARRAY[$3, $4, $5]::uuid[])", 5, streamp);
	fx_exec(c, "DELETE FROM nchat_channels WHERE id = ANY (ARRAY[$1, $2]::uuid[])", 2, chanp);
	fx_exec(c, "DELETE FROM nchat_users WHERE id = ANY (ARRAY[$1, $2, $3]::uuid[])", 3, userp);
}

/* ------------------------------------------------------------------------ */
/* row-level security                                                        */
/* ------------------------------------------------------------------------ */

START_TEST(test_rls_user_sees_own_calls_only)
{
	/* A: a participant of call2, a member of call3's channel. */
	ck_assert(!sees_call(u_a, call1));
	ck_assert(sees_call(u_a, call2));
	ck_assert(sees_call(u_a, call3));
	ck_assert(!sees_call(u_a, call4));
	/* B: initiator of 1, 2, 4; not in channel X. */
	ck_assert(sees_call(u_b, call1));
	ck_assert(sees_call(u_b, call2));
	ck_assert(!sees_call(u_b, call3));
	ck_assert(sees_call(u_b, call4));
	/* C: invitee of call1, initiator of call3, member of X. */
	ck_assert(sees_call(u_c, call1));
	ck_assert(!sees_call(u_c, call2));
	ck_assert(sees_call(u_c, call3));

	/* What hangs off B's call1 is hidden from A as well. */
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_participants "
				       "WHERE call_id = $1", call1), 0);
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE call_id = $1", call1), 0);
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_participants "
				       "WHERE call_id = $1", call2), 2);
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE call_id = $1", call2), 1);
	/* Recordings are for participants: a channel member who never took part
	 * sees the call, not its recordings. */
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE call_id = $1", call3), 0);
	ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE call_id = $1", call3), 1);
	/* A search by egress id does not leak either. */
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE livekit_egress_id = 'EG_' || $1", call4), 0);

	/* A user context cannot change a call, even one it can see. */
	{
		const char *p[] = { call2 };
		ctx_begin(app, u_a);
		xfail(app, "42501", "UPDATE nchat_calls SET status = 'ended' WHERE id = $1", 1, p);
		ctx_rollback(app);
		ctx_begin(app, u_a);
		xfail(app, "42501", "DELETE FROM nchat_call_recordings WHERE call_id = $1", 1, p);
		ctx_rollback(app);
		ctx_begin(app, u_a);
		xfail(app, "42501", "INSERT INTO nchat_calls (livekit_room_name, call_type, status) "
				     "VALUES ('rls-' || $1, 'audio', 'ringing')", 1, p);
		ctx_rollback(app);
	}
}
END_TEST

START_TEST(test_rls_no_context_sees_nothing)
{
	/* The user role without a user: nothing, whatever the login role. */
	ck_assert(!sees_call("nobody", call1));
	ck_assert(!sees_call("not-a-uuid", call2)); /* a malformed user id is no user */
	ck_assert_int_eq(count_as("nobody", "SELECT count(*) FROM nchat_calls", NULL), 0);
	ck_assert_int_eq(count_as("nobody", "SELECT count(*) FROM nchat_call_recordings", NULL), 0);
	ck_assert_int_eq(count_as("nobody", "SELECT count(*) FROM nchat_streams", NULL), 0);
	ctx_begin(app, "nobody");
	xexec(app, "SELECT set_config('nchat.role', 'service', true)", 0, NULL);
	ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_calls", 0, NULL), 0);
	ctx_rollback(app);
	if (g_login_bypasses)
		return; /* a superuser / owner login sees all without a work role */
	/* The login role itself (a member of nchat_rtc_service): no access at all,
	 * and the setting of an earlier transaction does not linger. */
	ck_assert(sees_call(u_a, call2));
	{
		static const char *const tables[] = { "nchat_calls", "nchat_call_participants",
			"nchat_call_recordings", "nchat_streams", "nchat_stream_chat_messages",
			"nchat_rtc_audit_log" };
		char sql[128];
		for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
			snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i]);
			ctx_begin(app, NULL);
			xfail(app, "42501", sql, 0, NULL);
			ctx_rollback(app);
		}
	}
	/* ...and settings alone are no context either. */
	ctx_begin(app, NULL);
	xexec(app, "SELECT set_config('nchat.role', 'service', true),"
		   " set_config('nchat.user_id', $1, true)", 1, (const char *const[]){ u_a });
	xfail(app, "42501", "SELECT count(*) FROM nchat_calls", 0, NULL);
	ctx_rollback(app);
	/* Outside a work role, writes are refused too. */
	{
		const char *p[] = { run_tag };
		ctx_begin(app, NULL);
		xfail(app, "42501", "INSERT INTO nchat_calls (livekit_room_name, call_type) "
				     "VALUES ('none-' || $1, 'audio')", 1, p);
		ctx_rollback(app);
		ctx_begin(app, NULL);
		xfail(app, "42501", "SELECT count(*) FROM nchat_call_recordings", 0, NULL);
		ctx_rollback(app);
	}
}
END_TEST

/* A removed participant sees nothing of the call; a deleted recording no one. */
START_TEST(test_rls_removed_and_deleted)
{
	const char *p[] = { call1, u_c };
	char rec[UUID_LEN];
	const char *pr[] = { rec };

	ck_assert(sees_call(u_c, call1));
	xtext(own, rec, sizeof rec, "SELECT id FROM nchat_call_recordings WHERE call_id = $1", 1, p);
	xexec(own, "UPDATE nchat_call_participants SET status = 'removed' "
		   "WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert(!sees_call(u_c, call1));
	ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_call_participants "
				       "WHERE call_id = $1", call1), 0);
	ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE call_id = $1", call1), 0);
	ck_assert(sees_call(u_b, call1));
	xexec(own, "UPDATE nchat_call_participants SET status = 'ringing' "
		   "WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert(sees_call(u_c, call1));

	/* deleted: gone for every user, still there for the service */
	xexec(own, "UPDATE nchat_call_recordings SET status = 'deleted', deleted_at = now() "
		   "WHERE id = $1", 1, pr);
	ck_assert_int_eq(count_as(u_b, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE id = $1", rec), 0);
	ck_assert_int_eq(count_as("service", "SELECT count(*) FROM nchat_call_recordings "
					     "WHERE id = $1", rec), 1);
	xexec(own, "UPDATE nchat_call_recordings SET status = 'completed', deleted_at = NULL "
		   "WHERE id = $1", 1, pr);
	ck_assert_int_eq(count_as(u_b, "SELECT count(*) FROM nchat_call_recordings "
				       "WHERE id = $1", rec), 1);
}
END_TEST

START_TEST(test_rls_service_sees_all)
{
	ck_assert(sees_call("service", call1));
	ck_assert(sees_call("service", call2));
	ck_assert(sees_call("service", call3));
	ck_assert(sees_call("service", call4));
	ck_assert_int_eq(count_as("service", "SELECT count(*) FROM nchat_call_participants "
					     "WHERE call_id = $1", call1), 2);
	ck_assert_int_eq(count_as("service", "SELECT count(*) FROM nchat_call_recordings "
					     "WHERE call_id = $1", call4), 1);
	/* and may write */
	{
		const char *p[] = { call4 };
		ctx_begin(app, "service");
		PGresult *r = xq(app, "UPDATE nchat_calls SET end_reason = 'test' WHERE id = $1", 1, p);
		ck_assert_str_eq(PQcmdTuples(r), "1");
		PQclear(r);
		ctx_rollback(app);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* constraints                                                               */
/* ------------------------------------------------------------------------ */

START_TEST(test_check_constraints)
{
	const char *p1[] = { call2 };
	const char *p2[] = { call2, u_a };
	const char *px[] = { ch_x, u_a };

	ctx_begin(app, "service");
	xfail(app, "23514", "UPDATE nchat_calls SET status = 'bogus' WHERE id = $1", 1, p1);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "UPDATE nchat_calls SET call_type = 'hologram' WHERE id = $1", 1, p1);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "UPDATE nchat_call_participants SET status = 'dancing' "
			     "WHERE call_id = $1 AND user_id = $2", 2, p2);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_call_recordings (call_id, status) "
			     "VALUES ($1, 'paused')", 1, p1);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_call_recordings (call_id, status, resolution) "
			     "VALUES ($1, 'completed', '4k')", 1, p1);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status) "
			     "VALUES ($1, $2, 't', 'paused')", 2, px);
	ctx_rollback(app);

	/* a stream key is stored only as its hash */
	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, stream_key) "
			     "VALUES ($1, $2, 't', 'sk_live_plaintext')", 2, px);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_webrtc_connections (call_id, user_id, quality) "
			     "VALUES ($1, $2, 'superb')", 2, p2);
	ctx_rollback(app);

	ctx_begin(app, "service");
	xfail(app, "23514", "INSERT INTO nchat_webrtc_connections (call_id, user_id, "
			     "ice_connection_state) VALUES ($1, $2, 'dreaming')", 2, p2);
	ctx_rollback(app);

	/* a call with recordings cannot be deleted (they hold S3 objects) */
	ctx_begin(app, "service");
	xfail(app, "23503", "DELETE FROM nchat_calls WHERE id = $1", 1, p1);
	ctx_rollback(app);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* participant duration trigger                                              */
/* ------------------------------------------------------------------------ */

START_TEST(test_participant_duration)
{
	const char *p[] = { call2, u_a };
	const char *sel = "SELECT total_duration_seconds FROM nchat_call_participants "
			  "WHERE call_id = $1 AND user_id = $2";

	ctx_begin(app, "service");
	ck_assert_int_eq(xlong(app, sel, 2, p), 0);
	xexec(app, "UPDATE nchat_call_participants SET status = 'joined', "
		   "joined_at = '2024-05-01 10:00:00+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	/* leaving with left_at: 90.7 s -> 90 whole seconds */
	xexec(app, "UPDATE nchat_call_participants SET status = 'left', "
		   "left_at = '2024-05-01 10:01:30.7+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, sel, 2, p), 90);
	/* the same left_at written again (a duplicate webhook) adds nothing */
	xexec(app, "UPDATE nchat_call_participants SET status = 'left', "
		   "left_at = '2024-05-01 10:01:30.7+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, sel, 2, p), 90);
	/* a second session of 30 s accumulates */
	xexec(app, "UPDATE nchat_call_participants SET status = 'joined', "
		   "joined_at = '2024-05-01 10:05:00+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_call_participants "
				    "WHERE call_id = $1 AND user_id = $2 AND left_at IS NULL", 2, p), 1);
	xexec(app, "UPDATE nchat_call_participants SET status = 'left', "
		   "left_at = '2024-05-01 10:05:30+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, sel, 2, p), 120);
	/* a session whose left_at is before joined_at never subtracts */
	xexec(app, "UPDATE nchat_call_participants SET status = 'joined', "
		   "joined_at = '2024-05-01 11:00:00+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	xexec(app, "UPDATE nchat_call_participants SET status = 'left', "
		   "left_at = '2024-05-01 10:59:00+00' WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, sel, 2, p), 120);
	/* leaving without a left_at stamps one */
	xexec(app, "UPDATE nchat_call_participants SET status = 'joined', joined_at = now() "
		   "WHERE call_id = $1 AND user_id = $2", 2, p);
	xexec(app, "UPDATE nchat_call_participants SET status = 'removed' "
		   "WHERE call_id = $1 AND user_id = $2", 2, p);
	ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_call_participants "
				    "WHERE call_id = $1 AND user_id = $2 AND left_at IS NOT NULL", 2, p), 1);
	ck_assert_int_eq(xlong(app, sel, 2, p), 120);
	ctx_rollback(app);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* stream analytics triggers                                                 */
/* ------------------------------------------------------------------------ */

/* Fold the stream's pending counts into its rows (what the service's reads do first). */
static void sync_counters(const char *stream)
{
	const char *p[] = { stream };
	ctx_begin(app, "service");
	xexec(app, "SELECT nchat_rtc_stream_counters_sync($1)", 1, p);
	ctx_commit(app);
}

static long stream_col(const char *stream, const char *col)
{
	char sql[200];
	const char *p[] = { stream };
	snprintf(sql, sizeof sql, "SELECT %s FROM nchat_streams WHERE id = $1", col);
	sync_counters(stream);
	ctx_begin(app, "service");
	long v = xlong(app, sql, 1, p);
	ctx_commit(app);
	return v;
}

static void add_viewer(const char *stream, const char *user, const char *session)
{
	const char *p[] = { stream, user, session };
	ctx_begin(app, "service");
	xexec(app, "INSERT INTO nchat_stream_viewers (stream_id, user_id, viewer_session_id) "
		   "VALUES ($1, $2, $3)", 3, p);
	ctx_commit(app);
}

START_TEST(test_stream_analytics)
{
	char stream[UUID_LEN];
	char s1[80], s2[80], s3[80], s4[80], s5[80];
	snprintf(s1, sizeof s1, "%s-1", run_tag);
	snprintf(s2, sizeof s2, "%s-2", run_tag);
	snprintf(s3, sizeof s3, "%s-3", run_tag);
	snprintf(s4, sizeof s4, "%s-anon-4", run_tag);
	snprintf(s5, sizeof s5, "%s-anon-5", run_tag);

	{
		const char *p[] = { ch_x, u_a };
		ctx_begin(app, "service");
		xtext(app, stream, sizeof stream,
		      "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status, stream_key) "
		      "VALUES ($1, $2, 'Analytics test', 'live', 'sha256:' || "
		      "encode(sha256(gen_random_uuid()::text::bytea), 'hex')) RETURNING id", 2, p);
		ctx_commit(app);
	}

	/* visibility: A broadcasts, C is in channel X, B is not */
	ck_assert_int_eq(count_as(u_a, "SELECT count(*) FROM nchat_streams WHERE id = $1", stream), 1);
	ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_streams WHERE id = $1", stream), 1);
	ck_assert_int_eq(count_as(u_b, "SELECT count(*) FROM nchat_streams WHERE id = $1", stream), 0);
	ck_assert_int_eq(count_as("nobody", "SELECT count(*) FROM nchat_streams WHERE id = $1", stream), 0);

	/* five sessions: A twice (two tabs), C once, two anonymous clients */
	add_viewer(stream, u_a, s1);
	add_viewer(stream, u_a, s2);
	add_viewer(stream, u_c, s3);
	add_viewer(stream, NULL, s4);
	add_viewer(stream, NULL, s5);
	ck_assert_int_eq(stream_col(stream, "total_views"), 5);
	ck_assert_int_eq(stream_col(stream, "unique_viewers"), 4);

	/* chat: two by A (in a user context: A's own message), one by C */
	{
		const char *pa[] = { stream, u_a };
		const char *pc[] = { stream, u_c };
		const char *pb[] = { stream, u_b };
		ctx_begin(app, u_a);
		xexec(app, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content) "
			   "VALUES ($1, $2, 'hello')", 2, pa);
		ctx_commit(app);
		/* an empty message is refused (and counts nothing) */
		ctx_begin(app, "service");
		xfail(app, "23514", "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content) "
				     "VALUES ($1, $2, '')", 2, pa);
		ctx_rollback(app);
		ctx_begin(app, "service");
		xexec(app, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content) "
			   "VALUES ($1, $2, 'again')", 2, pa);
		xexec(app, "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content) "
			   "VALUES ($1, $2, 'hi from C')", 2, pc);
		ctx_commit(app);
		/* B cannot post into (nor read) a stream it cannot see */
		ctx_begin(app, u_b);
		xfail(app, "42501", "INSERT INTO nchat_stream_chat_messages (stream_id, user_id, content) "
				     "VALUES ($1, $2, 'intruder')", 2, pb);
		ctx_rollback(app);
		ck_assert_int_eq(count_as(u_b, "SELECT count(*) FROM nchat_stream_chat_messages "
					       "WHERE stream_id = $1", stream), 0);
		ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_stream_chat_messages "
					       "WHERE stream_id = $1", stream), 3);
	}
	ck_assert_int_eq(stream_col(stream, "total_chat_messages"), 3);
	{
		const char *p[] = { stream, u_a };
		const char *pc[] = { stream, s3 };
		ctx_begin(app, "service");
		/* A's two messages land on one of A's sessions (the newest) */
		ck_assert_int_eq(xlong(app, "SELECT sum(sent_chat_messages) FROM nchat_stream_viewers "
					    "WHERE stream_id = $1 AND user_id = $2", 2, p), 2);
		ck_assert_int_eq(xlong(app, "SELECT max(sent_chat_messages) FROM nchat_stream_viewers "
					    "WHERE stream_id = $1 AND user_id = $2", 2, p), 2);
		ck_assert_int_eq(xlong(app, "SELECT sent_chat_messages FROM nchat_stream_viewers "
					    "WHERE stream_id = $1 AND viewer_session_id = $2", 2, pc), 1);
		ctx_commit(app);
	}

	/* reactions: heart by A (no viewer id), fire by anonymous s4, heart by C */
	{
		const char *pa[] = { stream, u_a };
		const char *pc[] = { stream, u_c };
		const char *p4[] = { stream, s4 };
		ctx_begin(app, u_a);
		xexec(app, "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type) "
			   "VALUES ($1, $2, 'heart')", 2, pa);
		ctx_commit(app);
		ctx_begin(app, "service");
		xfail(app, "23514", "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type) "
				     "VALUES ($1, $2, 'meh')", 2, pc);
		ctx_rollback(app);
		ctx_begin(app, "service");
		xexec(app, "INSERT INTO nchat_stream_reactions (stream_id, viewer_id, reaction_type) "
			   "SELECT $1, id, 'fire' FROM nchat_stream_viewers "
			   "WHERE stream_id = $1 AND viewer_session_id = $2", 2, p4);
		xexec(app, "INSERT INTO nchat_stream_reactions (stream_id, user_id, reaction_type) "
			   "VALUES ($1, $2, 'heart')", 2, pc);
		ctx_commit(app);
	}
	ck_assert_int_eq(stream_col(stream, "total_reactions"), 3);
	{
		const char *p[] = { stream };
		const char *p4[] = { stream, s4 };
		const char *pa[] = { stream, u_a };
		ctx_begin(app, "service");
		ck_assert_int_eq(xlong(app, "SELECT count FROM nchat_stream_reaction_counts "
					    "WHERE stream_id = $1 AND reaction_type = 'heart'", 1, p), 2);
		ck_assert_int_eq(xlong(app, "SELECT count FROM nchat_stream_reaction_counts "
					    "WHERE stream_id = $1 AND reaction_type = 'fire'", 1, p), 1);
		ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_stream_reaction_counts "
					    "WHERE stream_id = $1", 1, p), 2);
		ck_assert_int_eq(xlong(app, "SELECT sent_reactions FROM nchat_stream_viewers "
					    "WHERE stream_id = $1 AND viewer_session_id = $2", 2, p4), 1);
		ck_assert_int_eq(xlong(app, "SELECT sum(sent_reactions) FROM nchat_stream_viewers "
					    "WHERE stream_id = $1 AND user_id = $2", 2, pa), 1);
		ctx_commit(app);
		/* per-type counts are visible to a member, not to an outsider */
		ck_assert_int_eq(count_as(u_c, "SELECT count(*) FROM nchat_stream_reaction_counts "
					       "WHERE stream_id = $1", stream), 2);
		ck_assert_int_eq(count_as(u_b, "SELECT count(*) FROM nchat_stream_reaction_counts "
					       "WHERE stream_id = $1", stream), 0);
	}

	/* peak follows the highest current_viewers */
	{
		const char *p[] = { stream };
		ctx_begin(app, "service");
		xexec(app, "UPDATE nchat_streams SET current_viewers = 7 WHERE id = $1", 1, p);
		xexec(app, "UPDATE nchat_streams SET current_viewers = 3 WHERE id = $1", 1, p);
		ctx_commit(app);
		ck_assert_int_eq(stream_col(stream, "peak_viewers"), 7);
		ck_assert_int_eq(stream_col(stream, "current_viewers"), 3);
	}

	/* leaving computes the watch time; re-opening is a new view, same viewer */
	{
		const char *p[] = { stream, s3 };
		const char *sel = "SELECT watch_duration_seconds FROM nchat_stream_viewers "
				  "WHERE stream_id = $1 AND viewer_session_id = $2";
		ctx_begin(app, "service");
		xexec(app, "UPDATE nchat_stream_viewers SET left_at = joined_at + interval '42.9 seconds' "
			   "WHERE stream_id = $1 AND viewer_session_id = $2", 2, p);
		ck_assert_int_eq(xlong(app, sel, 2, p), 42);
		xexec(app, "UPDATE nchat_stream_viewers SET left_at = NULL "
			   "WHERE stream_id = $1 AND viewer_session_id = $2", 2, p);
		xexec(app, "UPDATE nchat_stream_viewers SET left_at = joined_at + interval '8 seconds' "
			   "WHERE stream_id = $1 AND viewer_session_id = $2", 2, p);
		ck_assert_int_eq(xlong(app, sel, 2, p), 50);
		ctx_commit(app);
		ck_assert_int_eq(stream_col(stream, "total_views"), 6);
		ck_assert_int_eq(stream_col(stream, "unique_viewers"), 4);
	}

	/* a duplicate client session id is refused */
	{
		const char *p[] = { stream, s4 };
		ctx_begin(app, "service");
		xfail(app, "23505", "INSERT INTO nchat_stream_viewers (stream_id, viewer_session_id) "
				     "VALUES ($1, $2)", 2, p);
		ctx_rollback(app);
	}

	{
		const char *p[] = { stream };
		xexec(own, "DELETE FROM nchat_streams WHERE id = $1", 1, p);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* one recording in progress per call                                        */
/* ------------------------------------------------------------------------ */

START_TEST(test_one_active_recording)
{
	const char *p[] = { call3, run_tag };
	char first[UUID_LEN];
	const char *pf[] = { first };

	ctx_begin(app, "service");
	xtext(app, first, sizeof first,
	      "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status) "
	      "VALUES ($1, 'EG_a_' || $2, 'starting') RETURNING id", 2, p);
	ctx_commit(app);

	/* a second one while the first is starting / active / ending: refused */
	static const char *const busy[] = { "starting", "active", "ending" };
	for (size_t i = 0; i < 3; i++) {
		const char *ps[] = { first, busy[i] };
		ctx_begin(app, "service");
		xexec(app, "UPDATE nchat_call_recordings SET status = $2 WHERE id = $1", 2, ps);
		xfail(app, "23505", "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, "
				     "status) VALUES ($1, 'EG_b_' || $2, 'starting')", 2, p);
		ctx_rollback(app);
	}

	/* once it completed, the next one may start */
	ctx_begin(app, "service");
	xexec(app, "UPDATE nchat_call_recordings SET status = 'completed', ended_at = now() "
		   "WHERE id = $1", 1, pf);
	xexec(app, "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status) "
		   "VALUES ($1, 'EG_b_' || $2, 'active')", 2, p);
	ctx_commit(app);

	/* retention: expires_at follows retention_days, 0 keeps for ever */
	ctx_begin(app, "service");
	xexec(app, "UPDATE nchat_call_recordings SET retention_days = 10 WHERE id = $1", 1, pf);
	ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_call_recordings WHERE id = $1 "
				    "AND expires_at = ended_at + interval '10 days'", 1, pf), 1);
	xexec(app, "UPDATE nchat_call_recordings SET retention_days = 0 WHERE id = $1", 1, pf);
	ck_assert_int_eq(xlong(app, "SELECT count(*) FROM nchat_call_recordings WHERE id = $1 "
				    "AND expires_at IS NULL", 1, pf), 1);
	ctx_commit(app);

	xexec(own, "DELETE FROM nchat_call_recordings WHERE call_id = $1 "
		   "AND livekit_egress_id LIKE 'EG\\_%\\_' || $2", 2, p);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("schema");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rls_user_sees_own_calls_only);
	tcase_add_test(tc, test_rls_no_context_sees_nothing);
	tcase_add_test(tc, test_rls_service_sees_all);
	tcase_add_test(tc, test_rls_removed_and_deleted);
	tcase_add_test(tc, test_check_constraints);
	tcase_add_test(tc, test_participant_duration);
	tcase_add_test(tc, test_stream_analytics);
	tcase_add_test(tc, test_one_active_recording);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	g_owner_url = getenv("DATABASE_MIGRATE_URL");
	g_app_url = getenv("DATABASE_URL");
	if (!g_owner_url || !*g_owner_url || !g_app_url || !*g_app_url) {
		fprintf(stderr, "check_schema: DATABASE_MIGRATE_URL and DATABASE_URL not set, skipping\n");
		return 77;
	}

	PGconn *c = db_connect(g_owner_url);
	if (!c)
		return 1;
	{
		PGconn *a = db_connect(g_app_url);
		PGresult *r;

		if (!a)
			return 1;
		r = PQexec(a, "SELECT rolsuper OR rolbypassrls OR pg_has_role(current_user,"
			      " (SELECT relowner FROM pg_class WHERE relname = 'nchat_calls'), 'USAGE')"
			      " FROM pg_roles WHERE rolname = current_user");
		g_login_bypasses = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
				   strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		PQfinish(a);
	}
	if (fixtures_create(c) != 0) {
		fixtures_delete(c);
		PQfinish(c);
		return 1;
	}

	SRunner *sr = srunner_create(schema_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	fixtures_delete(c);
	PQfinish(c);
	return failed == 0 ? 0 : 1;
}
