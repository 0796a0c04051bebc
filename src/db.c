/*
 * db.c - per-worker libpq connection with lazy (re)connect and back-off.
 *
 * The connection is opened on first use, not at start-up, so the service
 * starts (and /readyz reports 503) while Postgres is down.  After a failure
 * the next attempt waits RETRY_MS, so during an outage each request fails
 * fast instead of waiting on a connect timeout.
 *
 * Round trips are what a request costs here (make bench): with
 * DB_PREPARED_STATEMENTS each statement is parsed and planned once per
 * connection and executed by name afterwards (a small cache keyed by the
 * SQL text, capped so that SQL built at run time cannot grow it without
 * bound), and BEGIN travels with the set_config of the acting identity in
 * one pipeline, so opening a transaction is one round trip, not two.
 */
#include "db.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 250
#define CONNECT_TIMEOUT_S "3"
#define STMT_SLOTS 256          /* hash table size (power of two) */
#define STMT_MAX 192            /* prepared statements per connection at most */

/* One prepared statement of a connection; its server-side name is "nc<slot>". */
struct db_stmt {
	char *sql;              /* NULL: free slot */
	uint64_t hash;
	int nparams;
};

static const char set_identity_sql[] =
	"SELECT set_config($1, $2, true), set_config('statement_timeout', $3, true)";

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

static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
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

enum nc_err db_ensure(struct db_conn *db, struct nc_error *err)
{
	const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
	const char *vals[] = {db->url, CONNECT_TIMEOUT_S, "nchat-rtc", NULL};

	if (db->pg != NULL && !db->broken && PQstatus(db->pg) == CONNECTION_OK)
		return NC_OK;
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
	db->pg = PQconnectdbParams(keys, vals, 1);
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK) {
		log_warn("database connect failed: %s", first_line(db->pg));
		if (db->pg != NULL)
			PQfinish(db->pg);
		db->pg = NULL;
		db->retry_after_ms = now_ms() + RETRY_MS;
		metrics_inc(M_DB_ERRORS);
		return err_set(err, NC_EUNAVAILABLE, "database unavailable");
	}
	PQsetNoticeProcessor(db->pg, notice_to_log, NULL);
	return NC_OK;
}

static enum nc_err classify(struct db_conn *db, PGresult *res, struct nc_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	metrics_inc(M_DB_ERRORS);
	snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", state ? state : "");
	if (db->pg == NULL || PQstatus(db->pg) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		/* Connection-level failure: drop the connection, try again later. */
		db->broken = true;
		db->in_tx = false;
		db->retry_after_ms = now_ms() + RETRY_MS;
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

PGresult *db_exec(struct db_conn *db, const char *sql, int nparams, const char *const *params,
		  struct nc_error *err)
{
	PGresult *res;
	ExecStatusType st;
	/* an open connection, idle between transactions */
	bool idle = db->pg != NULL && !db->broken && !db->in_tx;

	if (db_ensure(db, err) != NC_OK)
		return NULL;
	res = exec_raw(db, sql, nparams, params);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	classify(db, res, err);
	PQclear(res);
	/*
	 * The connection died while idle (Postgres restarted since our last
	 * statement): a BEGIN or the readiness probe did nothing yet, so
	 * reconnect at once and run it again, rather than fail the first
	 * request of every worker after the database is back.
	 */
	if (idle && db->broken && (strcmp(sql, "BEGIN") == 0 || strcmp(sql, "SELECT 1") == 0)) {
		db->retry_after_ms = 0;
		memset(err, 0, sizeof(*err));
		if (db_ensure(db, err) != NC_OK)
			return NULL;
		res = exec_raw(db, sql, nparams, params);
		st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		classify(db, res, err);
		PQclear(res);
	}
	return NULL;
}

/*
 * BEGIN and the set_config statement in one pipeline (one round trip).
 * NC_OK with the transaction open, or the error of the first statement that
 * failed (the caller rolls back).  *tried = false (and NC_OK) when the
 * connection cannot enter pipeline mode: the caller sends them one by one.
 */
static enum nc_err begin_pipelined(struct db_conn *db, const char *const *params,
				   bool *tried, struct nc_error *err)
{
	PGresult *first_err = NULL, *x, *fail = NULL;
	int slot = -1, nulls = 0;
	bool synced = false, sent;
	char name[16];

	*tried = false;
	if (db->use_prepared) {
		/* Outside any transaction: a failure here aborts nothing. */
		slot = stmt_slot(db, set_identity_sql, 3, &fail);
		if (slot == -2) {
			classify(db, fail, err);
			PQclear(fail);
			return err->code;
		}
	}
	if (PQenterPipelineMode(db->pg) != 1)
		return NC_OK;
	*tried = true;
	snprintf(name, sizeof(name), "nc%d", slot);
	sent = PQsendQueryParams(db->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
	       (slot >= 0 ? PQsendQueryPrepared(db->pg, name, 3, params, NULL, NULL, 0)
			  : PQsendQueryParams(db->pg, set_identity_sql, 3, NULL, params, NULL,
					      NULL, 0)) == 1 &&
	       PQpipelineSync(db->pg) == 1;
	/* Results: BEGIN, NULL, set_config, NULL, then the sync point. */
	while (sent && !synced) {
		x = PQgetResult(db->pg);
		if (x == NULL) {
			if (PQstatus(db->pg) != CONNECTION_OK || ++nulls > 4)
				break;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(x)) {
		case PGRES_PIPELINE_SYNC:
			synced = true;
			PQclear(x);
			break;
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			PQclear(x);
			break;
		default:
			if (first_err == NULL)
				first_err = x;
			else
				PQclear(x);
		}
	}
	if (!synced || PQexitPipelineMode(db->pg) != 1) {
		/* A connection that is not back to idle is not reused. */
		if (first_err == NULL) {
			classify(db, NULL, err);
		} else {
			classify(db, first_err, err);
			PQclear(first_err);
		}
		db->broken = true;
		db->in_tx = false;
		return err->code;
	}
	db->in_tx = true;
	if (first_err != NULL) {
		classify(db, first_err, err);
		PQclear(first_err);
		return err->code;
	}
	return NC_OK;
}

/*
 * BEGIN, then set the acting identity and the statement timeout for this
 * transaction only (set_config(..., true) is SET LOCAL): nothing leaks into
 * the session, so the service works through a transaction-pooling proxy
 * such as pgbouncer.  BEGIN and both settings go in one round trip
 * (pipeline), or two where pipeline mode is not available.
 */
static enum nc_err begin_with(struct db_conn *db, const char *name, const char *value,
			      struct nc_error *err)
{
	char timeout[24];
	const char *params[] = {name, value, timeout};
	PGresult *res;
	bool tried, idle;
	enum nc_err rc;

	if (db->in_tx)
		db_rollback(db);
	snprintf(timeout, sizeof(timeout), "%d", db->statement_timeout_ms);
	idle = db->pg != NULL && !db->broken;
	if (db_ensure(db, err) != NC_OK)
		return err->code;
	rc = begin_pipelined(db, params, &tried, err);
	if (rc != NC_OK && idle && db->broken) {
		/* Died while idle (as in db_exec): reconnect at once, once. */
		db->retry_after_ms = 0;
		memset(err, 0, sizeof(*err));
		if (db_ensure(db, err) != NC_OK)
			return err->code;
		rc = begin_pipelined(db, params, &tried, err);
	}
	if (rc != NC_OK) {
		db_rollback(db);
		return err->code;
	}
	if (tried)
		return NC_OK;
	res = db_exec(db, "BEGIN", 0, NULL, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	db->in_tx = true;
	res = db_exec(db, set_identity_sql, 3, params, err);
	if (res == NULL) {
		db_rollback(db);
		return err->code;
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err db_begin_user(struct db_conn *db, const char *user_id, struct nc_error *err)
{
	return begin_with(db, "nchat.user_id", user_id, err);
}

enum nc_err db_begin_service(struct db_conn *db, struct nc_error *err)
{
	return begin_with(db, "nchat.role", "service", err);
}

enum nc_err db_commit(struct db_conn *db, struct nc_error *err)
{
	PGresult *res = db_exec(db, "COMMIT", 0, NULL, err);

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
/* One statement, one transaction, one round trip                      */
/* ------------------------------------------------------------------ */

/*
 * Queue one statement in the pipeline: by name when prepared statements are
 * on (preparing it first, outside the pipeline, on its first use), else
 * unnamed.  Returns -2 with *fail set when PREPARE failed, 0 when sent, -1
 * when libpq refused to queue it.
 */
static int pipe_send(struct db_conn *db, const char *sql, int nparams, const char *const *params,
		     int slot)
{
	char name[16];

	if (slot < 0)
		return PQsendQueryParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0) == 1
			       ? 0 : -1;
	snprintf(name, sizeof(name), "nc%d", slot);
	return PQsendQueryPrepared(db->pg, name, nparams, params, NULL, NULL, 0) == 1 ? 0 : -1;
}

/*
 * The identity statement then sql, in one pipeline that ends in a sync
 * point.  No BEGIN and no COMMIT: the statements of a pipeline up to its
 * sync point are one implicit transaction, committed at the sync point (or
 * rolled back there if any of them failed), so set_config(..., true) holds
 * for sql and nothing leaks into the session.
 *
 * (Whatever begin_pipelined sends to enter the acting identity must be sent
 * here as well, in the same order, before sql.)
 *
 * *got_any tells whether the server answered any statement with success
 * (a failure before that means the statement never ran: the identity
 * statement goes first, and its answer comes before sql runs).
 */
static PGresult *exec1_pipelined(struct db_conn *db, const char *const *id_params, const char *sql,
				 int nparams, const char *const *params, bool *got_any,
				 struct nc_error *err)
{
	PGresult *x, *first_err = NULL, *fail = NULL, *out = NULL;
	int id_slot = -1, slot = -1, nulls = 0, nres = 0;
	bool synced = false, sent;

	*got_any = false;
	if (db->use_prepared) {
		/* Outside any transaction: a failed PREPARE aborts nothing. */
		id_slot = stmt_slot(db, set_identity_sql, 3, &fail);
		if (id_slot != -2)
			slot = stmt_slot(db, sql, nparams, &fail);
		if (id_slot == -2 || slot == -2) {
			classify(db, fail, err);
			PQclear(fail);
			/* PREPARE runs nothing: safe to retry after a reconnect */
			*got_any = !db->broken;
			return NULL;
		}
	}
	if (PQenterPipelineMode(db->pg) != 1) {
		classify(db, NULL, err);
		return NULL;
	}
	sent = pipe_send(db, set_identity_sql, 3, id_params, id_slot) == 0 &&
	       pipe_send(db, sql, nparams, params, slot) == 0 && PQpipelineSync(db->pg) == 1;
	/* Results: identity, NULL, sql, NULL, then the sync point. */
	while (sent && !synced) {
		x = PQgetResult(db->pg);
		if (x == NULL) {
			if (PQstatus(db->pg) != CONNECTION_OK || ++nulls > 4)
				break;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(x)) {
		case PGRES_PIPELINE_SYNC:
			synced = true;
			PQclear(x);
			break;
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			*got_any = true;
			if (++nres == 2 && out == NULL)
				out = x;
			else
				PQclear(x);
			break;
		default:
			/* PGRES_PIPELINE_ABORTED for what followed the failure */
			if (first_err == NULL && PQresultStatus(x) != PGRES_PIPELINE_ABORTED)
				first_err = x;
			else
				PQclear(x);
		}
	}
	if (!synced || PQexitPipelineMode(db->pg) != 1) {
		/* A connection that is not back to idle is not reused. */
		classify(db, first_err, err);
		PQclear(first_err);
		PQclear(out);
		db->broken = true;
		return NULL;
	}
	if (first_err != NULL || out == NULL) {
		if (first_err != NULL)
			classify(db, first_err, err);
		else
			err_set(err, NC_EINTERNAL, "database error");
		PQclear(first_err);
		PQclear(out);
		return NULL;
	}
	return out;
}

static PGresult *exec1_with(struct db_conn *db, const char *name, const char *value,
			    const char *sql, int nparams, const char *const *params,
			    struct nc_error *err)
{
	char timeout[24];
	const char *id_params[] = {name, value, timeout};
	PGresult *res;
	bool idle, got_any;

	if (db->in_tx)
		db_rollback(db);
	snprintf(timeout, sizeof(timeout), "%d", db->statement_timeout_ms);
	idle = db->pg != NULL && !db->broken;
	if (db_ensure(db, err) != NC_OK)
		return NULL;
	res = exec1_pipelined(db, id_params, sql, nparams, params, &got_any, err);
	if (res == NULL && idle && db->broken && !got_any) {
		/*
		 * Died while idle (Postgres restarted since our last statement)
		 * and nothing was answered, so nothing ran: reconnect at once
		 * and send it again, once (as db_exec does for BEGIN).
		 */
		db->retry_after_ms = 0;
		memset(err, 0, sizeof(*err));
		if (db_ensure(db, err) != NC_OK)
			return NULL;
		res = exec1_pipelined(db, id_params, sql, nparams, params, &got_any, err);
	}
	return res;
}

PGresult *db_exec1_user(struct db_conn *db, const char *user_id, const char *sql, int nparams,
			const char *const *params, struct nc_error *err)
{
	return exec1_with(db, "nchat.user_id", user_id, sql, nparams, params, err);
}

PGresult *db_exec1_service(struct db_conn *db, const char *sql, int nparams,
			   const char *const *params, struct nc_error *err)
{
	return exec1_with(db, "nchat.role", "service", sql, nparams, params, err);
}

/* ------------------------------------------------------------------ */
/* Reading rows by column name                                         */
/* ------------------------------------------------------------------ */

int db_col(const PGresult *res, const char *name)
{
	int c = PQfnumber(res, name);

	if (c < 0)
		fatal("database: the statement returns no column \"%s\"", name);
	return c;
}

const char *db_get(const PGresult *res, int row, const char *name)
{
	int c = db_col(res, name);

	return PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
}

bool db_get_bool(const PGresult *res, int row, const char *name)
{
	const char *v = db_get(res, row, name);

	return v != NULL && v[0] == 't';
}

long long db_get_ll(const PGresult *res, int row, const char *name, long long dflt)
{
	const char *v = db_get(res, row, name);

	return v != NULL ? strtoll(v, NULL, 10) : dflt;
}

void db_get_copy(const PGresult *res, int row, const char *name, char *dst, size_t n)
{
	const char *v = db_get(res, row, name);

	snprintf(dst, n, "%s", v ? v : "");
}

char *db_get_dup(const PGresult *res, int row, const char *name)
{
	const char *v = db_get(res, row, name);

	return v ? xstrdup(v) : NULL;
}
