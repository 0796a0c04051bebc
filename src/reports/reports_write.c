/*
 * reports_write.c - inserting rollup rows: one statement per table and
 * chunk, each column sent as one binary array parameter and zipped back
 * into rows by unnest():
 *
 *   INSERT INTO nchat_rtc_report_usage (scope, level, slot, calls, ...)
 *   SELECT scope, level, slot, calls, ... FROM unnest($1::uuid[],
 *       $2::smallint[], $3::timestamptz[], $4::integer[], ...) AS x(...)
 *
 * Binary arrays cost the server no text to parse (the catch-up after a busy
 * day writes tens of thousands of rows with a dozen sketches each); the
 * rows land in the order given, which is their order on disk (see
 * reports_levels.c).  COPY is not an option: it refuses tables with
 * row-level security.  The exact loss sum travels as text and is cast to
 * numeric in the statement.
 *
 * Array wire format (array_recv): ndim, has-nulls flag, element type oid,
 * then per dimension its length and lower bound, then each element as a
 * length (-1: NULL) and its bytes; all integers 4-byte big-endian.
 */
#include "reports/reports_int.h"
#include "core/buf.h"
#include "core/log.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per statement: the parameters of 5,000 rows are a few MB. */
#define WRITE_CHUNK 5000
#define PG_EPOCH_US INT64_C(946684800000000)

enum { OID_INT2 = 21, OID_INT4 = 23, OID_INT8 = 20, OID_TEXT = 25, OID_TIMESTAMPTZ = 1184,
       OID_UUID = 2950 };

struct array {
	struct buf b;
	size_t n_at;          /* offset of the element count */
	int32_t n;
	bool nulls;
};

static void put32(struct buf *b, int32_t v)
{
	uint32_t x = htobe32((uint32_t)v);

	buf_addn(b, &x, 4);
}

static void array_init(struct array *a, unsigned oid)
{
	memset(a, 0, sizeof(*a));
	put32(&a->b, 1);             /* one dimension */
	put32(&a->b, 0);             /* has nulls: set at the end */
	put32(&a->b, (int32_t)oid);
	a->n_at = a->b.len;
	put32(&a->b, 0);             /* length: set at the end */
	put32(&a->b, 1);             /* lower bound */
}

/* The finished array (its bytes stay in a->b). */
static void array_close(struct array *a)
{
	uint32_t n = htobe32((uint32_t)a->n), f = htobe32(a->nulls ? 1u : 0u);

	memcpy(a->b.p + 4, &f, 4);
	memcpy(a->b.p + a->n_at, &n, 4);
}

static void elem(struct array *a, const void *p, int32_t len)
{
	put32(&a->b, len);
	if (len > 0)
		buf_addn(&a->b, p, (size_t)len);
	a->n++;
}

static void elem_null(struct array *a)
{
	put32(&a->b, -1);
	a->nulls = true;
	a->n++;
}

static bool parse_uuid(const char *s, unsigned char *out)
{
	size_t k = 0;

	for (const char *p = s; *p && k < 32; p++) {
		int v;

		if (*p == '-')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			return false;
		out[k / 2] = (unsigned char)(k % 2 ? (out[k / 2] | v) : v << 4);
		k++;
	}
	return k == 32 && strlen(s) == 36;
}

/* The INSERT statement of a table (malloc'd). */
static char *insert_sql(const char *table, bool quality)
{
	static const char *const sql_types[] = {[RC_INT4] = "integer", [RC_INT8] = "bigint",
						[RC_TEXT] = "text", [RC_NUMERIC] = "text"};
	size_t n = rpt_acc_ncols(quality);
	struct buf cols = {0}, sel = {0}, arr = {0};

	buf_add(&cols, "scope, level, slot");
	buf_add(&sel, "scope, level, slot");
	buf_add(&arr, "$1::uuid[], $2::smallint[], $3::timestamptz[]");
	for (size_t i = 0; i < n; i++) {
		enum rpt_col_type t;
		const char *name = rpt_acc_colname(quality, i, &t);

		buf_addf(&cols, ", %s", name);
		buf_addf(&sel, t == RC_NUMERIC ? ", %s::numeric" : ", %s", name);
		buf_addf(&arr, ", $%zu::%s[]", i + 4, sql_types[t]);
	}
	{
		char *sql = xasprintf("INSERT INTO %s (%s) SELECT %s FROM unnest(%s) AS x(%s)", table,
				      buf_str(&cols), buf_str(&sel), buf_str(&arr), buf_str(&cols));

		buf_free(&cols);
		buf_free(&sel);
		buf_free(&arr);
		return sql;
	}
}

/* Insert cells[0..n) into one table. */
static enum nc_err insert_chunk(struct db_conn *db, const struct rpt_rows *rows,
				const struct rpt_cell *const *cells, size_t n, int level,
				bool quality, struct nc_error *err)
{
	static const unsigned oids[] = {[RC_INT4] = OID_INT4, [RC_INT8] = OID_INT8,
					[RC_TEXT] = OID_TEXT, [RC_NUMERIC] = OID_TEXT};
	size_t ncols = rpt_acc_ncols(quality) + 3;
	struct array *a = xcalloc(ncols, sizeof(*a));
	const char **values = xcalloc(ncols, sizeof(*values));
	int *lengths = xcalloc(ncols, sizeof(*lengths)), *formats = xcalloc(ncols, sizeof(*formats));
	enum nc_err rc = NC_OK;
	PGresult *res;
	char *sql;

	array_init(&a[0], OID_UUID);
	array_init(&a[1], OID_INT2);
	array_init(&a[2], OID_TIMESTAMPTZ);
	for (size_t k = 3; k < ncols; k++) {
		enum rpt_col_type t;

		rpt_acc_colname(quality, k - 3, &t);
		array_init(&a[k], oids[t]);
	}
	for (size_t i = 0; i < n && rc == NC_OK; i++) {
		const struct rpt_cell *c = cells[i];
		unsigned char uuid[16];
		int16_t lv = (int16_t)htobe16((uint16_t)level);
		uint64_t slot = htobe64((uint64_t)(c->slot_us - PG_EPOCH_US));

		if (!parse_uuid(rows->scopes[c->scope], uuid)) {
			rc = err_set(err, NC_EINTERNAL, "rollup: scope %s is not a uuid", rows->scopes[c->scope]);
			break;
		}
		elem(&a[0], uuid, 16);
		elem(&a[1], &lv, 2);
		elem(&a[2], &slot, 8);
		for (size_t k = 3; k < ncols; k++) {
			enum rpt_col_type t;
			int64_t v;
			char *text;

			rpt_acc_colname(quality, k - 3, &t);
			text = rpt_acc_colvalue(&c->acc, quality, k - 3, &v);
			if (t == RC_INT4) {
				uint32_t x = htobe32((uint32_t)(int32_t)v);

				if (v < INT32_MIN || v > INT32_MAX) {
					rc = err_set(err, NC_EINTERNAL, "rollup: %s out of range",
						     rpt_acc_colname(quality, k - 3, &t));
					break;
				}
				elem(&a[k], &x, 4);
			} else if (t == RC_INT8) {
				uint64_t x = htobe64((uint64_t)v);

				elem(&a[k], &x, 8);
			} else if (text == NULL) {
				elem_null(&a[k]);
			} else {
				elem(&a[k], text, (int32_t)strlen(text));
			}
			free(text);
		}
	}
	if (rc == NC_OK) {
		for (size_t k = 0; k < ncols; k++) {
			array_close(&a[k]);
			values[k] = a[k].b.p;
			lengths[k] = (int)a[k].b.len;
			formats[k] = 1;
		}
		sql = insert_sql(quality ? "nchat_rtc_report_quality" : "nchat_rtc_report_usage", quality);
		res = db_exec_params_binary(db, sql, (int)ncols, values, lengths, formats, err);
		free(sql);
		if (res == NULL)
			rc = err->code;
		PQclear(res);
	}
	for (size_t k = 0; k < ncols; k++)
		buf_free(&a[k].b);
	free(a);
	free(values);
	free(lengths);
	free(formats);
	return rc;
}

enum nc_err rpt_insert_cells(struct db_conn *db, const struct rpt_rows *rows,
			     const struct rpt_cell *const *cells, size_t n, int level,
			     struct nc_error *err)
{
	const struct rpt_cell **u = xcalloc(n + 1, sizeof(*u)), **q = xcalloc(n + 1, sizeof(*q));
	size_t nu = 0, nq = 0;
	enum nc_err rc = NC_OK;

	for (size_t i = 0; i < n; i++) {
		if (cells[i]->acc.has_usage)
			u[nu++] = cells[i];
		if (cells[i]->acc.has_quality && cells[i]->acc.samples > 0)
			q[nq++] = cells[i];
	}
	for (size_t i = 0; i < nu && rc == NC_OK; i += WRITE_CHUNK)
		rc = insert_chunk(db, rows, u + i, nu - i < WRITE_CHUNK ? nu - i : WRITE_CHUNK, level,
				  false, err);
	for (size_t i = 0; i < nq && rc == NC_OK; i += WRITE_CHUNK)
		rc = insert_chunk(db, rows, q + i, nq - i < WRITE_CHUNK ? nq - i : WRITE_CHUNK, level,
				  true, err);
	free(u);
	free(q);
	return rc;
}
