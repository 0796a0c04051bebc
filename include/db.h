/*
 * db.h - one PostgreSQL connection per worker thread.
 *
 * Connections are opened lazily and re-opened after a drop, with a short
 * back-off so a Postgres outage costs each request one fast failure (503)
 * rather than a connect timeout.  All SQL is parameterised.  A transaction
 * runs either for a user (nchat.user_id set, so row-level security applies)
 * or as the service (nchat.role = 'service') for work the service has
 * already authorised itself.
 */
#ifndef NC_DB_H
#define NC_DB_H

#include "common.h"

#include <libpq-fe.h>

struct db_stmt;

struct db_conn {
	PGconn *pg;
	char *url;
	int statement_timeout_ms;
	int64_t retry_after_ms;   /* no reconnect attempt before this time */
	bool in_tx;
	bool broken;              /* last command failed at the connection level */
	bool use_prepared;        /* DB_PREPARED_STATEMENTS (db_set_prepared) */
	struct db_stmt *stmts;    /* prepared statements of this connection */
	unsigned n_stmts;
};

void db_init(struct db_conn *db, const char *url, int statement_timeout_ms);
void db_cleanup(struct db_conn *db);
/*
 * Prepare each statement once per connection and execute it by name from
 * then on (off by default; the workers turn it on from
 * DB_PREPARED_STATEMENTS).  Off for a transaction-pooling proxy that does
 * not track prepared statements (pgbouncer before 1.21).
 */
void db_set_prepared(struct db_conn *db, bool on);

/* Connect or reconnect if needed.  NC_OK or NC_EUNAVAILABLE. */
enum nc_err db_ensure(struct db_conn *db, struct nc_error *err) NC_MUSTCHECK;

/*
 * Run sql with text parameters (NULL entries are SQL NULL).  Returns the
 * result (caller PQclears) for COMMAND_OK / TUPLES_OK, else NULL with err set:
 * NC_EUNAVAILABLE when the connection failed, NC_ECONFLICT for a unique
 * violation, NC_EBADREQ for a check/foreign-key/invalid-text violation,
 * NC_EINTERNAL otherwise.  The SQLSTATE of the last failure is kept in
 * db_last_sqlstate.
 */
PGresult *db_exec(struct db_conn *db, const char *sql, int nparams,
		  const char *const *params, struct nc_error *err) NC_MUSTCHECK;
const char *db_last_sqlstate(void);

/* BEGIN and set the acting user (row-level security applies). */
enum nc_err db_begin_user(struct db_conn *db, const char *user_id, struct nc_error *err) NC_MUSTCHECK;
/* BEGIN as the service itself. */
enum nc_err db_begin_service(struct db_conn *db, struct nc_error *err) NC_MUSTCHECK;
enum nc_err db_commit(struct db_conn *db, struct nc_error *err) NC_MUSTCHECK;
/* Roll back if a transaction is open; safe to call at any time. */
void db_rollback(struct db_conn *db);

/*
 * One statement as a transaction of its own, in one network round trip:
 * the acting identity (as db_begin_user / db_begin_service set it) and sql
 * are pipelined and committed together at the pipeline's sync point, with
 * no BEGIN or COMMIT of their own.  Returns sql's result once committed
 * (caller PQclears), or NULL with err set as db_exec does (nothing
 * committed).  Called with a transaction open, that one is rolled back
 * first.  For statements that are complete on their own (a CTE, or a call
 * of a function that does several steps).
 */
PGresult *db_exec1_user(struct db_conn *db, const char *user_id, const char *sql, int nparams,
			const char *const *params, struct nc_error *err) NC_MUSTCHECK;
PGresult *db_exec1_service(struct db_conn *db, const char *sql, int nparams,
			   const char *const *params, struct nc_error *err) NC_MUSTCHECK;

/*
 * Rows are read by column name (the AS names of the statement), never by
 * position.  db_col aborts when the statement has no such column: that is
 * a statement / reader mismatch, a programming error.  db_get returns NULL
 * for SQL NULL; db_get_copy writes "" for it.
 */
int db_col(const PGresult *res, const char *name);
const char *db_get(const PGresult *res, int row, const char *name);
bool db_get_bool(const PGresult *res, int row, const char *name);
long long db_get_ll(const PGresult *res, int row, const char *name, long long dflt);
void db_get_copy(const PGresult *res, int row, const char *name, char *dst, size_t n);
/* malloc'd copy, or NULL for SQL NULL. */
char *db_get_dup(const PGresult *res, int row, const char *name);

/* Convenience: value of row/col or NULL if SQL NULL. */
static inline const char *db_val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

#endif
