/*
 * db.c - per-worker libpq connection with lazy (re)connect and back-off.
 *
 * The connection is opened on first use, not at start-up, so the service
 * starts (and /readyz reports 503) while Postgres is down.  After a failure
 * the next attempt waits RETRY_MS, so during an outage each request fails
 * fast instead of waiting on a connect timeout.
 */
#include "db.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS 250
#define CONNECT_TIMEOUT_S "3"

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

void db_cleanup(struct db_conn *db)
{
	if (db->pg != NULL)
		PQfinish(db->pg);
	free(db->url);
	memset(db, 0, sizeof(*db));
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

PGresult *db_exec(struct db_conn *db, const char *sql, int nparams, const char *const *params,
		  struct nc_error *err)
{
	PGresult *res;
	ExecStatusType st;
	/* an open connection, idle between transactions */
	bool idle = db->pg != NULL && !db->broken && !db->in_tx;

	if (db_ensure(db, err) != NC_OK)
		return NULL;
	res = PQexecParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0);
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
		res = PQexecParams(db->pg, sql, nparams, NULL, params, NULL, NULL, 0);
		st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			return res;
		classify(db, res, err);
		PQclear(res);
	}
	return NULL;
}

/*
 * BEGIN, then set the acting identity and the statement timeout for this
 * transaction only (set_config(..., true) is SET LOCAL): nothing leaks into
 * the session, so the service works through a transaction-pooling proxy
 * such as pgbouncer.  Both settings go in one round trip.
 */
static enum nc_err begin_with(struct db_conn *db, const char *name, const char *value,
			      struct nc_error *err)
{
	char timeout[24];
	const char *params[] = {name, value, timeout};
	PGresult *res;

	if (db->in_tx)
		db_rollback(db);
	snprintf(timeout, sizeof(timeout), "%d", db->statement_timeout_ms);
	res = db_exec(db, "BEGIN", 0, NULL, err);
	if (res == NULL)
		return err->code;
	PQclear(res);
	db->in_tx = true;
	res = db_exec(db, "SELECT set_config($1, $2, true), set_config('statement_timeout', $3, true)",
		      3, params, err);
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
