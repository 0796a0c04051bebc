/*
 * reports_read.c - how the rollup sweep reads the base rows of a range of
 * hours (reports_compute.c counts them).
 *
 * The calls, participants and samples of a busy day are a million rows, so
 * they come in binary: uuids as their 16 bytes, timestamps as microseconds,
 * integers as integers - no text to produce on the server and none to
 * parse here.  Values whose text the figures are defined on (real and
 * numeric measurements) are cast to text in SQL and arrive as that text.
 * Every column's type is checked once per result; a value of another length
 * than its type has is treated as NULL.
 *
 * The participants and the samples are each read on a connection of their
 * own by a thread of their own, started before the calls are read, so that
 * Postgres produces them and libpq takes them in while the sweep reads and
 * counts the calls (the readers stream their rows: a connection nobody
 * reads stalls once its socket is full).  A side that could not run (no
 * connection, no thread, a failed statement) is read again on the main
 * connection.  Each side sees its own snapshot, as the samples always did:
 * what changes in between moves the columns the watermark follows, so the
 * next run recomputes those hours.
 */
#include "reports/reports_int.h"
#include "core/log.h"

#include <endian.h>
#include <stdio.h>
#include <string.h>

/* Postgres's epoch, 2000-01-01, in Unix microseconds. */
#define PG_EPOCH_US INT64_C(946684800000000)

static void range_params(char (*p)[24], int64_t a, int64_t b, int64_t as_of)
{
	snprintf(p[0], sizeof(p[0]), "%lld", (long long)a);
	snprintf(p[1], sizeof(p[1]), "%lld", (long long)b);
	snprintf(p[2], sizeof(p[2]), "%lld", (long long)as_of);
}

PGresult *rpt_read(struct db_conn *db, const char *sql, bool binary, int64_t a, int64_t b,
		   int64_t as_of, struct nc_error *err)
{
	char p[3][24];
	const char *params[3] = {p[0], p[1], p[2]};

	range_params(p, a, b, as_of);
	return binary ? db_exec_binary(db, sql, 3, params, err) : db_exec(db, sql, 3, params, err);
}

/* ---- side connections ---- */

static void *side_main(void *arg)
{
	struct rpt_side *sd = arg;
	struct nc_error err = {0};
	PGresult *res;

	if (db_begin_service(&sd->db, &err) == NC_OK &&
	    (res = db_exec(&sd->db, "SELECT set_config('jit', 'off', true),"
			   " set_config('random_page_cost', '1.1', true)", 0, NULL, &err)) != NULL) {
		PQclear(res);
		sd->res = rpt_read(&sd->db, sd->sql, true, sd->a, sd->b, sd->as_of, &err);
	}
	if (sd->res == NULL)
		log_warn("rollup-reports: side connection: %s", err.msg);
	db_rollback(&sd->db);
	db_cleanup(&sd->db);
	return NULL;
}

void rpt_side_start(struct rpt_side *sd, const struct db_conn *main, const char *sql, int64_t a,
		    int64_t b, int64_t as_of)
{
	memset(sd, 0, sizeof(*sd));
	db_init(&sd->db, main->url, main->statement_timeout_ms);
	sd->sql = sql;
	sd->a = a;
	sd->b = b;
	sd->as_of = as_of;
	sd->started = pthread_create(&sd->thread, NULL, side_main, sd) == 0;
	if (!sd->started)
		db_cleanup(&sd->db);
}

void rpt_side_join(struct rpt_side *sd)
{
	if (sd->started) {
		pthread_join(sd->thread, NULL);
		sd->started = false;
	}
}

PGresult *rpt_side_take(struct rpt_side *sd, struct db_conn *main, struct nc_error *err)
{
	int64_t t0 = now_ms();
	PGresult *res;

	rpt_side_join(sd);
	res = sd->res;
	sd->res = NULL;
	log_debug("rollup-reports: waited %lld ms for a side connection", (long long)(now_ms() - t0));
	return res != NULL ? res : rpt_read(main, sd->sql, true, sd->a, sd->b, sd->as_of, err);
}

void rpt_side_free(struct rpt_side *sd)
{
	rpt_side_join(sd);
	PQclear(sd->res);
	sd->res = NULL;
}

/* ---- binary columns ---- */

/* Type oids (pg_type.dat; fixed since Postgres 7). */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT4 = 23, OID_TEXT = 25, OID_TIMESTAMPTZ = 1184,
       OID_UUID = 2950 };

static unsigned oid_of(enum rpt_bin_type t)
{
	static const unsigned oids[] = {
		[RB_BOOL] = OID_BOOL, [RB_INT4] = OID_INT4, [RB_INT8] = OID_INT8,
		[RB_TEXT] = OID_TEXT, [RB_TS] = OID_TIMESTAMPTZ, [RB_UUID] = OID_UUID,
	};

	return oids[t];
}

static const char *const type_names[] = {
	[RB_BOOL] = "boolean", [RB_INT4] = "integer", [RB_INT8] = "bigint",
	[RB_TEXT] = "text", [RB_TS] = "timestamptz", [RB_UUID] = "uuid",
};

enum nc_err rpt_bin_columns(const PGresult *res, const struct rpt_bin_col *cols, int *f, size_t n,
			    struct nc_error *err)
{
	for (size_t i = 0; i < n; i++) {
		f[i] = PQfnumber(res, cols[i].name);
		if (f[i] < 0 || PQfformat(res, f[i]) != 1 || PQftype(res, f[i]) != oid_of(cols[i].type))
			return err_set(err, NC_EINTERNAL, "rollup read: column %s is not binary %s",
				       cols[i].name, type_names[cols[i].type]);
	}
	return NC_OK;
}

/* The bytes of a value of exactly len bytes, or NULL (NULL value, other length). */
static const unsigned char *fixed(const PGresult *res, int row, int f, int len)
{
	if (PQgetisnull(res, row, f) || PQgetlength(res, row, f) != len)
		return NULL;
	return (const unsigned char *)PQgetvalue(res, row, f);
}

int64_t rpt_bin_i64(const PGresult *res, int row, int f, int64_t def)
{
	const unsigned char *p = fixed(res, row, f, 8);
	uint64_t v;

	if (p == NULL)
		return def;
	memcpy(&v, p, 8);
	return (int64_t)be64toh(v);
}

int64_t rpt_bin_i32(const PGresult *res, int row, int f, int64_t def)
{
	const unsigned char *p = fixed(res, row, f, 4);
	uint32_t v;

	if (p == NULL)
		return def;
	memcpy(&v, p, 4);
	return (int32_t)be32toh(v);
}

int64_t rpt_bin_ts(const PGresult *res, int row, int f)
{
	int64_t v = rpt_bin_i64(res, row, f, RPT_NO_TS);

	/* +-infinity are INT64_MIN / INT64_MAX: no instant */
	if (v == RPT_NO_TS || v == INT64_MAX || v > INT64_MAX - PG_EPOCH_US)
		return RPT_NO_TS;
	return v + PG_EPOCH_US;
}

bool rpt_bin_bool(const PGresult *res, int row, int f)
{
	const unsigned char *p = fixed(res, row, f, 1);

	return p != NULL && p[0] != 0;
}

const char *rpt_bin_text(const PGresult *res, int row, int f)
{
	/* libpq ends every value with a zero byte, binary ones too */
	return PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
}

const unsigned char *rpt_bin_uuid(const PGresult *res, int row, int f)
{
	return fixed(res, row, f, 16);
}

void rpt_uuid_text(const unsigned char *u, char *out)
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u[i] >> 4];
		*p++ = hex[u[i] & 15];
	}
	*p = '\0';
}
