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

/* Open a transaction in the given context: "service", a user id, or NULL. */
static void ctx_begin(PGconn *c, const char *who)
{
	xexec(c, "BEGIN", 0, NULL);
	if (who == NULL)
		return;
	if (strcmp(who, "service") == 0) {
		xexec(c, "SELECT set_config('nchat.role', 'service', true)", 0, NULL);
	} else {
		const char *p[] = { who };
		xexec(c, "SELECT set_config('nchat.user_id', $1, true)", 1, p);
	}
}

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
			       "VALUES ($1, 'test-' || $1, 'video', 'active', $2, $3, $3 IS NOT NULL)",
			    3, p))
			return -1;
		if (fx_exec(c, "INSERT INTO nchat_call_participants (call_id, user_id, role, status, "
			       "livekit_identity) VALUES ($1, $2, 'initiator', 'joined', $2)", 2, p))
			return -1;
		if (calls[i].other) {
			const char *q[] = { calls[i].id, calls[i].other };
			if (fx_exec(c, "INSERT INTO nchat_call_participants (call_id, user_id, status, "
				       "livekit_identity) VALUES ($1, $2, 'ringing', $2)", 2, q))
				return -1;
		}
		if (fx_exec(c, "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status, "
			       "started_by, retention_days) "
			       "VALUES ($1, 'EG_' || $1, 'completed', $2, 30)", 2, p))
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
