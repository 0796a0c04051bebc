/*
 * db_row.c - typed getters by column name (see db_row.h).
 */
#include "store/db_row.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int row_col(const PGresult *res, const char *name)
{
	int c = PQfnumber(res, name);

	if (c < 0)
		log_error("db_row: the result has no column \"%s\"", name);
	return c;
}

/* The text of a non-NULL cell, or NULL. */
static const char *cell(const PGresult *res, int row, const char *name)
{
	int c = row_col(res, name);

	if (c < 0 || row < 0 || row >= PQntuples(res) || PQgetisnull(res, row, c))
		return NULL;
	return PQgetvalue(res, row, c);
}

bool row_is_null(const PGresult *res, int row, const char *name)
{
	return cell(res, row, name) == NULL;
}

const char *row_text(const PGresult *res, int row, const char *name)
{
	return cell(res, row, name);
}

bool row_bool(const PGresult *res, int row, const char *name, bool def)
{
	const char *v = cell(res, row, name);

	if (v == NULL)
		return def;
	return v[0] == 't';
}

bool row_true(const PGresult *res, int row, const char *name)
{
	return row_bool(res, row, name, false);
}

void row_copy(const PGresult *res, int row, const char *name, char *dst, size_t n)
{
	const char *v = cell(res, row, name);

	snprintf(dst, n, "%s", v ? v : "");
}

char *row_dup(const PGresult *res, int row, const char *name)
{
	const char *v = cell(res, row, name);

	return v ? xstrdup(v) : NULL;
}

int64_t row_i64(const PGresult *res, int row, const char *name, int64_t def)
{
	const char *v = cell(res, row, name);
	char *end = NULL;
	long long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return def;
	return (int64_t)n;
}

double row_f64(const PGresult *res, int row, const char *name, double def)
{
	const char *v = cell(res, row, name);
	char *end = NULL;
	double d;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || *end != '\0')
		return def;
	return d;
}

json_t *row_json_str(const PGresult *res, int row, const char *name)
{
	const char *v = cell(res, row, name);

	return v != NULL ? json_string(v) : json_null();
}

json_t *row_json_int(const PGresult *res, int row, const char *name)
{
	const char *v = cell(res, row, name);

	return v != NULL ? json_integer(row_i64(res, row, name, 0)) : json_null();
}

json_t *row_json(const PGresult *res, int row, const char *name)
{
	const char *v = cell(res, row, name);
	json_t *j;

	if (v == NULL)
		return json_null();
	j = json_loads(v, JSON_DECODE_ANY, NULL);
	if (j == NULL) {
		log_error("db_row: column \"%s\" is not JSON", name);
		return json_null();
	}
	return j;
}

int64_t row_affected(const PGresult *res)
{
	const char *v = PQcmdTuples((PGresult *)res);
	char *end = NULL;
	long long n;

	if (v == NULL || *v == '\0')
		return 0;
	n = strtoll(v, &end, 10);
	return *end == '\0' ? (int64_t)n : 0;
}

void row_array_add(struct buf *b, const char *v)
{
	if (b->len > 0 && b->p[b->len - 1] != '{')
		buf_addn(b, ",", 1);
	if (v == NULL) {
		buf_add(b, "NULL");
		return;
	}
	buf_addn(b, "\"", 1);
	for (const char *s = v; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_addn(b, "\\", 1);
		buf_addn(b, s, 1);
	}
	buf_addn(b, "\"", 1);
}
