/*
 * db.c - per-worker libpq connection with lazy (re)connect and back-off.
 *
 * The connection is opened on first use, not at start-up, so the service
 * starts (and /readyz reports 503) while Postgres is down.  After a connect
 * attempt that failed slowly (a host that does not answer) the next attempt
 * waits RETRY_MS, so during such an outage each request fails fast instead
 * of waiting on a connect timeout; a refused connection is retried at once.
 *
 * Round trips are what a request costs here (make bench): with
 * DB_PREPARED_STATEMENTS each statement is parsed and planned once per
 * connection and executed by name afterwards (a small cache keyed by the
 * SQL text, capped so that SQL built at run time cannot grow it without
 * bound), and BEGIN travels with the set_config of the acting identity in
 * one pipeline, so opening a transaction is one round trip, not two.
 *
 * Row-level security holds whatever role the service logs in as: every
 * transaction enters a work role (sql/0006_work_roles.sql) in the same round
 * trip that opens it - nchat_rtc_system for service work, nchat_rtc_user for
 * a user's request - so a login role that is the schema owner or a superuser
 * is confined like any other.  A statement sent outside a transaction runs
 * in an implicit transaction of its own, under nchat_rtc_user with no user
 * (it sees no row of the service's tables); nothing runs as the login role.
 */
#include "store/db.h"
#include "core/uuid.h"
#include "core/log.h"
#include "core/metrics.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 250
#define SLOW_CONNECT_MS 50     /* a failed connect slower than this backs off for RETRY_MS */
#define CONNECT_TIMEOUT_S "3"
#define STMT_SLOTS 256          /* hash table size (power of two) */
#define STMT_MAX 192            /* prepared statements per connection at most */

/* One prepared statement of a connection; its server-side name is "nc<slot>". */
struct db_stmt {
	char *sql;              /* NULL: free slot */
	uint64_t hash;
	int nparams;
};

/*
 * Enter the work role, set the acting user (empty for service work) and the
 * statement timeout, all transaction-local.  'role' first: if the login role
 * may not enter it, nothing else of the transaction runs.
 */
static const char set_identity_sql[] =
	"SELECT set_config('role', $1, true), set_config('nchat.user_id', $2, true),"
	" set_config('statement_timeout', $3, true)";

static _Thread_local char last_sqlstate[6];

const char *db_last_sqlstate(void)
{
	return last_sqlstate;
}

void db_init(struct db_conn *db, const char *url, int statement_timeout_ms)
{
	memset(db, 0, sizeof(*db));
	db->url = url ? xstrdup(url) : NULL;
	db->statement_timeout_ms = statement_timeout_ms;
}

/* Forget the prepared statements (they live and die with the session). */
static void stmts_clear(struct db_conn *db)
{
	if (db->stmts != NULL)
		for (unsigned i = 0; i < STMT_SLOTS; i++)
			free(db->stmts[i].sql);
	free(db->stmts);
	db->stmts = NULL;
	db->n_stmts = 0;
}

void db_cleanup(struct db_conn *db)
{
	if (db->pg != NULL)
		PQfinish(db->pg);
	stmts_clear(db);
	free(db->url);
	memset(db, 0, sizeof(*db));
}

void db_set_prepared(struct db_conn *db, bool on)
{
	db->use_prepared = on;
	if (!on)
		stmts_clear(db);
}

/*
 * libpq hands an unsolicited error on an idle connection to the notice
 * processor: a FATAL there is the server ending the session (restart,
 * pg_terminate_backend) before anything of ours ran on it.
 */
static void notice_to_log(void *arg, const char *message)
{
	struct db_conn *db = arg;

	if (db != NULL && strncmp(message, "FATAL", 5) == 0)
		db->terminated = true;
	log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

/* First line of the connection's error message (libpq's text spans lines). */
static const char *first_line(const PGconn *pg)
{
	static _Thread_local char buf[256];
	const char *m = pg ? PQerrorMessage(pg) : "no connection";

	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(m, "\n"), m);
	return buf;
}

/*
 * An idle connection whose server went away (restart, fast shutdown) has
 * its end-of-file or the server's last FATAL message waiting: look without
 * blocking, so the request reconnects at once instead of failing on it.
 */
static bool idle_conn_dead(struct db_conn *db)
{
	struct pollfd pfd = {.fd = PQsocket(db->pg), .events = POLLIN};

	if (db->in_tx || pfd.fd < 0)
		return false;
	if (poll(&pfd, 1, 0) <= 0)
		return false;
	if (PQconsumeInput(db->pg) != 1 || PQstatus(db->pg) != CONNECTION_OK || db->terminated)
		return true;
	/* Notices and the like were consumed; anything else is unexpected. */
	return PQisBusy(db->pg) != 0;
}

enum nc_err db_ensure(struct db_conn *db, struct nc_error *err)
{
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {db->url, CONNECT_TIMEOUT_S, "nchat-rtc", NULL};
	int64_t t0;

	if (db->pg != NULL && !db->broken && PQstatus(db->pg) == CONNECTION_OK) {
		if (!idle_conn_dead(db))
			return NC_OK;
		log_info("database connection closed by the server; reconnecting");
		db->retry_after_ms = 0;
	}
	if (db->url == NULL)
		return err_set(err, NC_EUNAVAILABLE, "database not configured");
	if (now_ms() < db->retry_after_ms)
		return err_set(err, NC_EUNAVAILABLE, "database unavailable");
	if (db->pg != NULL) {
		PQfinish(db->pg);
		db->pg = NULL;
	}
	stmts_clear(db);
	db->in_tx = false;
	db->broken = false;
	t0 = now_ms();
	db->pg = PQconnectdbParams(keys, vals, 1);
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK) {
		log_warn("database connect failed: %s", first_line(db->pg));
		if (db->pg != NULL)
			PQfinish(db->pg);
		db->pg = NULL;
		/*
		 * Back off only from attempts that cost time (a host that does not
		 * answer, a slow handshake): a refused connection costs nothing to
		 * try again, and a back-off left by a background job must not fail
		 * the first request after Postgres is back.
		 */
		if (now_ms() - t0 >= SLOW_CONNECT_MS)
			db->retry_after_ms = now_ms() + RETRY_MS;
		metrics_inc(M_DB_ERRORS);
		return err_set(err, NC_EUNAVAILABLE, "database unavailable");
	}
	db->terminated = false;
	PQsetNoticeProcessor(db->pg, notice_to_log, db);
	return NC_OK;
}

static enum nc_err classify(struct db_conn *db, PGresult *res, struct nc_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	metrics_inc(M_DB_ERRORS);
	snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", state ? state : "");
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		/*
		 * Connection-level failure: drop the connection.  The next use
		 * reconnects at once; db_ensure backs off if connecting is slow.
		 */
		db->broken = true;
		db->in_tx = false;
		log_warn("database connection lost: %s", first_line(db->pg));
		return err_set(err, NC_EUNAVAILABLE, "database unavailable");
	}
	if (strcmp(state, "57014") == 0) {
		log_warn("database statement timeout");
		return err_set(err, NC_EUNAVAILABLE, "database timed out");
	}
	if (strcmp(state, "23505") == 0)
		return err_set(err, NC_ECONFLICT, "already exists");
	if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) {
		log_info("database rejected values (%s): %s", state,
			 PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		return err_set(err, NC_EBADREQ, "invalid value");
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return err_set(err, NC_ECONFLICT, "concurrent update, try again");
	log_error("database error %s: %s", state, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	return err_set(err, NC_EINTERNAL, "database error");
}

/*
 * A failure of set_identity_sql: the login role may not enter the work role
 * (42501), or the role does not exist (22023: not migrated).  Not the
 * caller's fault and not the database being down: 503, logged once per
 * connection with what to do.
 */
static enum nc_err identity_failed(struct db_conn *db, PGresult *res, const char *role,
				   struct nc_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL || (strcmp(state, "42501") != 0 && strcmp(state, "22023") != 0))
		return classify(db, res, err);
	metrics_inc(M_DB_ERRORS);
	snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", state);
	if (!db->role_error)
		log_error("database: cannot enter role %s: %s (see `nchat-rtc serve` start-up check)",
			  role, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	db->role_error = true;
	return err_set(err, NC_EUNAVAILABLE, "database roles not usable");
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * The slot of sql's prepared statement, preparing it on first use.  -1 when
 * it is not to be prepared (cache full): run it unnamed.  -2 when PREPARE
 * failed: *fail holds the result (the statement would have failed anyway,
 * and inside a transaction the transaction is now aborted, as it would be).
 */
static int stmt_slot(struct db_conn *db, const char *sql, int nparams, PGresult **fail)
{
	uint64_t h = fnv1a(sql);
	unsigned i = (unsigned)h & (STMT_SLOTS - 1);
	char name[16];
	PGresult *res;

	if (db->stmts == NULL)
		db->stmts = xcalloc(STMT_SLOTS, sizeof(*db->stmts));
	for (; db->stmts[i].sql != NULL; i = (i + 1) & (STMT_SLOTS - 1))
		if (db->stmts[i].hash == h && db->stmts[i].nparams == nparams &&
		    strcmp(db->stmts[i].sql, sql) == 0)
			return (int)i;
	if (db->n_stmts >= STMT_MAX)
		return -1;
	snprintf(name, sizeof(name), "nc%u", i);
	res = PQprepare(db->pg, name, sql, nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		*fail = res;
		return -2;
	}
	PQclear(res);
	db->stmts[i].sql = xstrdup(sql);
	db->stmts[i].hash = h;
	db->stmts[i].nparams = nparams;
	db->n_stmts++;
	return (int)i;
}

/* Send sql once: by name when prepared statements are on, else unnamed. */
static PGresult *exec_raw(struct db_conn *db, const char *sql, int nparams,
			  const char *const *params)
{
	PGresult *fail = NULL;
	char name[16];
	int slot;

	if (!db->use_prepared)
		return PQexecParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	slot = stmt_slot(db, sql, nparams, &fail);
	if (slot == -2)
		return fail;
	if (slot < 0)
		return PQexecParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0);
	snprintf(name, sizeof(name), "nc%d", slot);
	return PQexecPrepared(db->pg, name, nparams, params, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Pipelines: several statements, one round trip                       */
/* ------------------------------------------------------------------ */

/* One statement of a pipeline. */
struct pl_step {
	const char *sql;
	int nparams;
	const char *const *params;
	bool prepare;           /* by name when DB_PREPARED_STATEMENTS is on */
	bool identity;          /* set_identity_sql: failures are role failures */
	const char *role;       /* for identity steps: the role entered */
};

#define PL_MAX 3

/*
 * Send steps and a sync point in one pipeline and read every result.
 * *kept = the result of step `keep` when it succeeded (-1: none).  NC_OK, or
 * the error of the first step that failed (later steps were skipped by the
 * server).  *tried = false (and NC_OK) when the connection cannot enter
 * pipeline mode: the caller sends them one by one.  Without a BEGIN among the
 * steps they run in one implicit transaction, committed at the sync point.
 */
static enum nc_err pipeline_run(struct db_conn *db, const struct pl_step *steps, int n, int keep,
				PGresult **kept, bool *tried, struct nc_error *err)
{
	PGresult *first_err = NULL, *x, *fail = NULL;
	int slots[PL_MAX], err_step = -1, nulls = 0;
	bool synced = false, sent = true;
	char name[16];

	*tried = false;
	if (kept != NULL)
		*kept = NULL;
	for (int i = 0; i < n; i++) {
		slots[i] = -1;
		if (!db->use_prepared || !steps[i].prepare)
			continue;
		/* Outside any transaction: a failure here aborts nothing. */
		slots[i] = stmt_slot(db, steps[i].sql, steps[i].nparams, &fail);
		if (slots[i] == -2) {
			classify(db, fail, err);
			PQclear(fail);
			return err->code;
		}
	}
	if (PQenterPipelineMode(db->pg) != 1)
		return NC_OK;
	*tried = true;
	for (int i = 0; i < n && sent; i++) {
		if (slots[i] >= 0) {
			snprintf(name, sizeof(name), "nc%d", slots[i]);
			sent = PQsendQueryPrepared(db->pg, name, steps[i].nparams, steps[i].params,
						   NULL, NULL, 0) == 1;
		} else {
			sent = PQsendQueryParams(db->pg, steps[i].sql, steps[i].nparams, NULL,
						 steps[i].params, NULL, NULL, 0) == 1;
		}
	}
	sent = sent && PQpipelineSync(db->pg) == 1;
	/* Each step: its result(s), then NULL.  Then the sync point. */
	for (int i = 0; i < n && sent && PQstatus(db->pg) == CONNECTION_OK; i++) {
		while ((x = PQgetResult(db->pg)) != NULL) {
			switch (PQresultStatus(x)) {
			case PGRES_COMMAND_OK:
			case PGRES_TUPLES_OK:
				if (i == keep && kept != NULL && *kept == NULL)
					*kept = x;
				else
					PQclear(x);
				break;
			case PGRES_PIPELINE_ABORTED:
				PQclear(x);
				break;
			default:
				if (first_err == NULL) {
					first_err = x;
					err_step = i;
				} else {
					PQclear(x);
				}
			}
			if (PQstatus(db->pg) != CONNECTION_OK)
				break;
		}
	}
	while (sent && !synced) {
		x = PQgetResult(db->pg);
		if (x == NULL) {
			if (PQstatus(db->pg) != CONNECTION_OK || ++nulls > 4)
				break;
			continue;
		}
		if (PQresultStatus(x) == PGRES_PIPELINE_SYNC)
			synced = true;
		else if (first_err == NULL && PQresultStatus(x) != PGRES_COMMAND_OK &&
			 PQresultStatus(x) != PGRES_TUPLES_OK)
			first_err = x, x = NULL;
		PQclear(x);
	}
	if (!synced || PQexitPipelineMode(db->pg) != 1) {
		/* A connection that is not back to idle is not reused. */
		if (first_err == NULL) {
			classify(db, NULL, err);
		} else {
			classify(db, first_err, err);
			PQclear(first_err);
		}
		if (kept != NULL) {
			PQclear(*kept);
			*kept = NULL;
		}
		db->broken = true;
		db->in_tx = false;
		return err->code;
	}
	if (first_err != NULL) {
		if (err_step >= 0 && steps[err_step].identity)
			identity_failed(db, first_err, steps[err_step].role, err);
		else
			classify(db, first_err, err);
		PQclear(first_err);
		if (kept != NULL) {
			PQclear(*kept);
			*kept = NULL;
		}
		return err->code;
	}
	db->role_error = false;
	return NC_OK;
}

static enum nc_err begin_with(struct db_conn *db, const char *role, const char *user_id,
			      struct nc_error *err);

/* The three parameters of set_identity_sql. */
struct identity {
	const char *params[3];
	char timeout[24];
};

static void identity_init(struct identity *id, const struct db_conn *db, const char *role,
			  const char *user_id)
{
	snprintf(id->timeout, sizeof(id->timeout), "%d", db->statement_timeout_ms);
	id->params[0] = role;
	id->params[1] = user_id ? user_id : "";
	id->params[2] = id->timeout;
}

/*
 * One statement in a transaction of its own, under `role` (and user_id, or
 * none), in one round trip: the identity and the statement in one pipeline,
 * committed at its sync point.  Without pipeline mode: BEGIN, identity,
 * statement, COMMIT one by one.
 */
static PGresult *exec_once(struct db_conn *db, const char *role, const char *user_id,
			   const char *sql, int nparams, const char *const *params,
			   struct nc_error *err)
{
	struct identity id;
	struct pl_step steps[2];
	PGresult *res = NULL;
	bool tried, idle;

	if (db->in_tx)
		db_rollback(db);
	idle = db->pg != NULL && !db->broken;
	if (db_ensure(db, err) != NC_OK)
		return NULL;
	identity_init(&id, db, role, user_id);
	steps[0] = (struct pl_step){set_identity_sql, 3, id.params, true, true, role};
	steps[1] = (struct pl_step){sql, nparams, params, true, false, NULL};
	if (pipeline_run(db, steps, 2, 1, &res, &tried, err) != NC_OK) {
		/*
		 * The server ended an idle connection (restart): it says so
		 * (57P..) before anything of ours ran, so once more on a new
		 * connection.  A connection that just broke is not retried: the
		 * statement may have been applied.
		 */
		if (!(idle && db->broken &&
		      (strncmp(last_sqlstate, "57P", 3) == 0 || db->terminated)))
			return NULL;
		db->retry_after_ms = 0;
		memset(err, 0, sizeof(*err));
		if (db_ensure(db, err) != NC_OK ||
		    pipeline_run(db, steps, 2, 1, &res, &tried, err) != NC_OK)
			return NULL;
	}
	if (tried)
		return res;
	if (begin_with(db, role, user_id, err) != NC_OK)
		return NULL;
	res = db_exec(db, sql, nparams, params, err);
	if (res == NULL) {
		db_rollback(db);
		return NULL;
	}
	if (db_commit(db, err) != NC_OK) {
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *db_exec_user(struct db_conn *db, const char *user_id, const char *sql, int nparams,
		       const char *const *params, struct nc_error *err)
{
	return exec_once(db, DB_ROLE_USER, user_id, sql, nparams, params, err);
}

PGresult *db_exec_service(struct db_conn *db, const char *sql, int nparams,
			  const char *const *params, struct nc_error *err)
{
	return exec_once(db, DB_ROLE_SYSTEM, NULL, sql, nparams, params, err);
}

PGresult *db_exec(struct db_conn *db, const char *sql, int nparams, const char *const *params,
		  struct nc_error *err)
{
	PGresult *res;
	ExecStatusType st;

	/* Never as the login role: outside a transaction, as nobody (see top). */
	if (!db->in_tx)
		return exec_once(db, DB_ROLE_USER, NULL, sql, nparams, params, err);
	/* Inside one: never reconnect (a new session would not be in it). */
	if (db->pg == NULL || db->broken) {
		db->in_tx = false;
		return err_set(err, NC_EUNAVAILABLE, "database unavailable"), NULL;
	}
	res = exec_raw(db, sql, nparams, params);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	classify(db, res, err);
	PQclear(res);
	return NULL;
}

/* One statement inside the open transaction, with parameter and result formats. */
static PGresult *exec_formats(struct db_conn *db, const char *sql, int nparams,
			      const char *const *params, const int *lengths, const int *formats,
			      int result_format, struct nc_error *err)
{
	PGresult *res;
	ExecStatusType st;

	if (!db->in_tx || db->pg == NULL || db->broken) {
		db->in_tx = false;
		return err_set(err, NC_EUNAVAILABLE, "database unavailable"), NULL;
	}
	res = PQexecParams(db->pg, sql, nparams, NULL, params, lengths, formats, result_format);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	classify(db, res, err);
	PQclear(res);
	return NULL;
}

PGresult *db_exec_binary(struct db_conn *db, const char *sql, int nparams,
			 const char *const *params, struct nc_error *err)
{
	return exec_formats(db, sql, nparams, params, NULL, NULL, 1, err);
}

PGresult *db_exec_params_binary(struct db_conn *db, const char *sql, int nparams,
				const char *const *values, const int *lengths, const int *formats,
				struct nc_error *err)
{
	return exec_formats(db, sql, nparams, values, lengths, formats, 0, err);
}

/* Inside a transaction only (begin_with's fallback); no retry. */
static PGresult *exec_in_tx(struct db_conn *db, const char *sql, int nparams,
			    const char *const *params, struct nc_error *err)
{
	PGresult *res = exec_raw(db, sql, nparams, params);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	classify(db, res, err);
	PQclear(res);
	return NULL;
}

/*
 * BEGIN, then enter the work role and set the acting user and the statement
 * timeout for this transaction only (set_config(..., true) is SET LOCAL):
 * nothing leaks into the session, so the service works through a
 * transaction-pooling proxy such as pgbouncer.  All in one round trip
 * (pipeline), or two where pipeline mode is not available.
 */
static enum nc_err begin_with(struct db_conn *db, const char *role, const char *user_id,
			      struct nc_error *err)
{
	struct identity id;
	struct pl_step steps[2];
	PGresult *res;
	bool tried, idle;
	enum nc_err rc;

	if (db->in_tx)
		db_rollback(db);
	idle = db->pg != NULL && !db->broken;
	if (db_ensure(db, err) != NC_OK)
		return err->code;
	identity_init(&id, db, role, user_id);
	steps[0] = (struct pl_step){"BEGIN", 0, NULL, false, false, NULL};
	steps[1] = (struct pl_step){set_identity_sql, 3, id.params, true, true, role};
	rc = pipeline_run(db, steps, 2, -1, NULL, &tried, err);
	if (rc != NC_OK && idle && db->broken) {
		/* Died while idle: BEGIN and settings did nothing yet; once more. */
		db->retry_after_ms = 0;
		memset(err, 0, sizeof(*err));
		if (db_ensure(db, err) != NC_OK)
			return err->code;
		rc = pipeline_run(db, steps, 2, -1, NULL, &tried, err);
	}
	if (rc != NC_OK) {
		/* BEGIN may have opened the transaction the identity step aborted. */
		if (!db->broken)
			db->in_tx = true;
		db_rollback(db);
		return err->code;
	}
	if (tried) {
		db->in_tx = true;
		return NC_OK;
	}
	res = exec_in_tx(db, "BEGIN", 0, NULL, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	db->in_tx = true;
	res = exec_in_tx(db, set_identity_sql, 3, id.params, err);
	if (res == NULL) {
		db_rollback(db);
		return err->code;
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err db_begin_user(struct db_conn *db, const char *user_id, struct nc_error *err)
{
	if (user_id == NULL || !is_uuid(user_id))
		return err_set(err, NC_EINTERNAL, "no acting user");
	return begin_with(db, DB_ROLE_USER, user_id, err);
}

enum nc_err db_begin_service(struct db_conn *db, struct nc_error *err)
{
	return begin_with(db, DB_ROLE_SYSTEM, NULL, err);
}

enum nc_err db_commit(struct db_conn *db, struct nc_error *err)
{
	PGresult *res;

	if (!db->in_tx)
		return err_set(err, NC_EINTERNAL, "commit without a transaction");
	res = exec_in_tx(db, "COMMIT", 0, NULL, err);
	db->in_tx = false;
	if (res == NULL)
		return err->code;
	PQclear(res);
	return NC_OK;
}

void db_rollback(struct db_conn *db)
{
	PGresult *res;

	if (!db->in_tx)
		return;
	db->in_tx = false;
	if (db->pg == NULL || db->broken)
		return;
	res = PQexec(db->pg, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		db->broken = true;
	PQclear(res);
}

/* ------------------------------------------------------------------ */
/* The start-up check                                                   */
/* ------------------------------------------------------------------ */

enum db_roles_state db_check_roles(struct db_conn *db, char *msg, size_t len)
{
	static const char attrs_sql[] =
		"SELECT session_user::text,"
		" (SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM pg_catalog.pg_roles"
		"   WHERE rolname IN ('" DB_ROLE_SYSTEM "', '" DB_ROLE_USER "')"
		"     AND (rolsuper OR rolbypassrls)),"
		" (SELECT string_agg(DISTINCT r.rolname, ', ') FROM pg_catalog.pg_class c"
		"   JOIN pg_catalog.pg_roles r ON r.oid = c.relowner"
		"   WHERE c.relname IN ('nchat_calls', 'nchat_call_participants',"
		"     'nchat_call_recordings', 'nchat_streams', 'nchat_stream_chat_messages')"
		"     AND (pg_catalog.pg_has_role('" DB_ROLE_SYSTEM "', r.oid, 'USAGE')"
		"          OR pg_catalog.pg_has_role('" DB_ROLE_USER "', r.oid, 'USAGE')))";
	static const char *const roles[] = {DB_ROLE_SYSTEM, DB_ROLE_USER};
	struct nc_error err = {0};
	const char *login;
	PGresult *res;

	snprintf(msg, len, "ok");
	if (db_ensure(db, &err) != NC_OK) {
		snprintf(msg, len, "database unavailable");
		return DB_ROLES_UNKNOWN;
	}
	login = PQuser(db->pg);
	for (size_t i = 0; i < NC_ARRAY_LEN(roles); i++) {
		res = exec_once(db, roles[i], NULL, "SELECT current_user::text", 0, NULL, &err);
		if (res == NULL && !db->role_error) {
			snprintf(msg, len, "database unavailable");
			return DB_ROLES_UNKNOWN;
		}
		if (res == NULL || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), roles[i]) != 0) {
			PQclear(res);
			if (strcmp(db_last_sqlstate(), "22023") == 0)
				snprintf(msg, len,
					 "database role %s does not exist: run `nchat-rtc migrate` (as the"
					 " schema owner or a superuser)", roles[i]);
			else
				snprintf(msg, len,
					 "database login role \"%s\" may not enter %s: as the schema owner"
					 " or a superuser run GRANT " DB_ROLE_SYSTEM ", " DB_ROLE_USER
					 " TO \"%s\" (or GRANT nchat_rtc_service TO \"%s\")",
					 login ? login : "?", roles[i], login ? login : "?",
					 login ? login : "?");
			return DB_ROLES_REFUSED;
		}
		PQclear(res);
	}
	/* Entering them is only worth it if they are confined. */
	res = exec_once(db, DB_ROLE_SYSTEM, NULL, attrs_sql, 0, NULL, &err);
	if (res == NULL || PQntuples(res) != 1) {
		PQclear(res);
		snprintf(msg, len, "database unavailable");
		return DB_ROLES_UNKNOWN;
	}
	if (db_val(res, 0, 1) != NULL) {
		snprintf(msg, len,
			 "database role(s) %s bypass row-level security: as a superuser run"
			 " ALTER ROLE ... NOSUPERUSER NOBYPASSRLS", PQgetvalue(res, 0, 1));
		PQclear(res);
		return DB_ROLES_REFUSED;
	}
	if (db_val(res, 0, 2) != NULL) {
		snprintf(msg, len,
			 "the service's tables are owned by %s, which the work roles belong to (owners"
			 " bypass row-level security): revoke that membership", PQgetvalue(res, 0, 2));
		PQclear(res);
		return DB_ROLES_REFUSED;
	}
	PQclear(res);
	return DB_ROLES_OK;
}
