/*
 * db_row.h - typed reads of a result row by column name.
 *
 * Statements name their output columns; code reads them by those names,
 * never by position, so adding a column to a SELECT cannot shift another.
 * A column the statement does not have is a programming error: it is
 * logged once per call site's name and read as NULL.
 */
#ifndef NC_DB_ROW_H
#define NC_DB_ROW_H

#include "core/buf.h"
#include "core/common.h"

#include <jansson.h>
#include <libpq-fe.h>

/* Column number of name, or -1 (logged) when the result has none. */
int row_col(const PGresult *res, const char *name);
bool row_is_null(const PGresult *res, int row, const char *name);
/* The text of a column; NULL for SQL NULL (or no such column). */
const char *row_text(const PGresult *res, int row, const char *name);
/* True only for a boolean column that is 't' (NULL, 'f', no such column: false). */
bool row_true(const PGresult *res, int row, const char *name);
/* The text into dst (n bytes, truncated, always terminated); "" for SQL NULL. */
void row_copy(const PGresult *res, int row, const char *name, char *dst, size_t n);
/* A malloc'd copy of the text, or NULL for SQL NULL. */
char *row_dup(const PGresult *res, int row, const char *name);
/* boolean column ('t'/'f'); def for NULL. */
bool row_bool(const PGresult *res, int row, const char *name, bool def);
/* Integer column (int2/4/8, or numeric text without a fraction); def for NULL or garbage. */
int64_t row_i64(const PGresult *res, int row, const char *name, int64_t def);
/* double precision / numeric column; def for NULL or garbage. */
double row_f64(const PGresult *res, int row, const char *name, double def);
/* A JSON string of the text, or JSON null for SQL NULL (new reference). */
json_t *row_json_str(const PGresult *res, int row, const char *name);
/* A JSON integer, or JSON null for SQL NULL (new reference). */
json_t *row_json_int(const PGresult *res, int row, const char *name);
/* A json/jsonb column parsed, or JSON null for SQL NULL (new reference). */
json_t *row_json(const PGresult *res, int row, const char *name);
/* The affected-row count of an INSERT/UPDATE/DELETE (PQcmdTuples), 0 if none. */
int64_t row_affected(const PGresult *res);

/*
 * Parameters the other way: append v to a Postgres array literal built in
 * b (the caller adds "{" first and "}" last), quoted and escaped, NULL as
 * SQL NULL.  Sent as a query parameter, never spliced into SQL.
 */
void row_array_add(struct buf *b, const char *v);

#endif
