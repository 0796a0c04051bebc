/*
 * db.h - one PostgreSQL connection per worker thread.
 *
 * Connections are opened lazily and re-opened after a drop, with a short
 * back-off so a Postgres outage costs each request one fast failure (503)
 * rather than a connect timeout.  All SQL is parameterised.
 *
 * Every statement runs under one of two work roles (sql/0006_work_roles.sql),
 * entered with SET LOCAL ROLE in the same round trip that opens its
 * transaction, so row-level security holds whatever role the service logs
 * in as (a member of nchat_rtc_service, the schema owner, a superuser):
 *   DB_ROLE_USER    a user's request: nchat.user_id set, the user policies
 *                   decide what is visible;
 *   DB_ROLE_SYSTEM  work the service has authorised itself (policies `true`).
 * A statement sent with db_exec outside a transaction runs under
 * DB_ROLE_USER with no user: it sees no row of the service's tables.
 */
#ifndef NC_DB_H
#define NC_DB_H

#include "core/common.h"

#include <libpq-fe.h>

#define DB_ROLE_SYSTEM "nchat_rtc_system"
#define DB_ROLE_USER "nchat_rtc_user"

struct db_stmt;

struct db_conn {
	PGconn *pg;
	char *url;
	int statement_timeout_ms;
	int64_t retry_after_ms;   /* no reconnect attempt before this time */
	bool in_tx;
	bool broken;              /* last command failed at the connection level */
	bool terminated;          /* the server said FATAL (shutdown, admin command): nothing of ours ran after it */
	bool role_error;          /* the last work role could not be entered */
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
/*
 * db_exec with the result in binary format (each type's send form; see
 * PQexecParams), inside a transaction only (NC_EUNAVAILABLE otherwise);
 * never prepared.  For reads of many rows whose values the caller decodes.
 */
PGresult *db_exec_binary(struct db_conn *db, const char *sql, int nparams,
			 const char *const *params, struct nc_error *err) NC_MUSTCHECK;
/* db_exec with parameters in the given formats (1: binary, with lengths;
 * see PQexecParams), text results; inside a transaction only. */
PGresult *db_exec_params_binary(struct db_conn *db, const char *sql, int nparams,
				const char *const *values, const int *lengths, const int *formats,
				struct nc_error *err) NC_MUSTCHECK;

/*
 * BEGIN as the user (DB_ROLE_USER, nchat.user_id = user_id, which must be a
 * UUID), in one round trip.  A role that cannot be entered is NC_EUNAVAILABLE
 * (503, logged once) and db->role_error is set.
 */
enum nc_err db_begin_user(struct db_conn *db, const char *user_id, struct nc_error *err) NC_MUSTCHECK;
/* BEGIN as the service itself (DB_ROLE_SYSTEM), in one round trip. */
enum nc_err db_begin_service(struct db_conn *db, struct nc_error *err) NC_MUSTCHECK;
/*
 * One statement in a transaction of its own, in ONE round trip (the role
 * and identity pipelined with it, committed at the sync point; no BEGIN or
 * COMMIT round trips).  Like db_exec otherwise.  Any open transaction is
 * rolled back first.  user_id NULL: no acting user.
 */
PGresult *db_exec_user(struct db_conn *db, const char *user_id, const char *sql, int nparams,
		       const char *const *params, struct nc_error *err) NC_MUSTCHECK;
PGresult *db_exec_service(struct db_conn *db, const char *sql, int nparams,
			  const char *const *params, struct nc_error *err) NC_MUSTCHECK;
enum nc_err db_commit(struct db_conn *db, struct nc_error *err) NC_MUSTCHECK;
/* Roll back if a transaction is open; safe to call at any time. */
void db_rollback(struct db_conn *db);

/*
 * The start-up check of `serve` (and /readyz): can this login role enter both
 * work roles, and are they confined (no superuser, no BYPASSRLS, not the
 * tables' owner)?  msg: "ok", or one line saying what to grant or fix.
 */
enum db_roles_state {
	DB_ROLES_OK,
	DB_ROLES_UNKNOWN,   /* database unreachable: cannot tell */
	DB_ROLES_REFUSED,   /* the service must not run like this */
};
enum db_roles_state db_check_roles(struct db_conn *db, char *msg, size_t len);

/* Convenience: value of row/col or NULL if SQL NULL. */
static inline const char *db_val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

#endif
