/*
 * reports_output.c - a report as JSON or as CSV.
 *
 * Both are written from the same JSON values: a CSV cell is exactly the
 * JSON text of the figure (null is an empty cell, the bucket start is the
 * bare string), so the two formats cannot disagree.  CSV columns follow the
 * order of the figures in a bucket object, nested objects flattened with
 * dots (callsByType.audio, rttMs.p95); there is no totals line.
 */
#include "reports.h"
#include "http.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Doubles rounded to at most 4 decimals print exactly with 15 digits. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
#define CSV_MAX (16 * 1024 * 1024)

json_t *rpt_real(double v, int decimals)
{
	double f = pow(10.0, decimals);

	if (isnan(v) || isinf(v))
		return json_null();
	return json_real(round(v * f) / f);
}

json_t *rpt_num_text(const char *text)
{
	char *end;

	if (text == NULL)
		return json_null();
	if (strchr(text, '.') != NULL || strchr(text, 'e') != NULL) {
		double d = strtod(text, &end);

		return *end == '\0' ? json_real(d) : json_null();
	} else {
		long long v = strtoll(text, &end, 10);

		return *end == '\0' ? json_integer(v) : json_null();
	}
}

struct csv {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void csv_add(struct csv *c, const char *s, size_t n)
{
	if (!c->overflow && !buf_append_capped(&c->p, &c->len, &c->cap, CSV_MAX, s, n))
		c->overflow = true;
}

static void csv_str(struct csv *c, const char *s)
{
	csv_add(c, s, strlen(s));
}

/* Header names of an object's leaves, prefixed, comma-separated. */
static void csv_header(struct csv *c, json_t *obj, const char *prefix, bool *first)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		char *name = prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);

		if (json_is_object(v)) {
			csv_header(c, v, name, first);
		} else {
			if (!*first)
				csv_str(c, ",");
			csv_str(c, name);
			*first = false;
		}
		free(name);
	}
}

static void csv_cells(struct csv *c, json_t *obj, bool *first)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (json_is_object(v)) {
			csv_cells(c, v, first);
			continue;
		}
		if (!*first)
			csv_str(c, ",");
		*first = false;
		if (json_is_string(v)) {
			csv_str(c, json_string_value(v));   /* timestamps: no comma, no quote */
		} else if (!json_is_null(v)) {
			char *s = json_dumps(v, DUMP_FLAGS);

			if (s == NULL)
				fatal("out of memory (csv)");
			csv_str(c, s);
			free(s);
		}
	}
}

static void respond_csv(struct req *r, json_t *buckets)
{
	struct csv c = {0};
	size_t i;
	json_t *b;
	bool first = true;

	csv_header(&c, json_array_get(buckets, 0), NULL, &first);
	csv_str(&c, "\r\n");
	json_array_foreach(buckets, i, b) {
		first = true;
		csv_cells(&c, b, &first);
		csv_str(&c, "\r\n");
	}
	if (c.overflow) {
		free(c.p);
		resp_error(r, NC_EINTERNAL, "report too large");
		return;
	}
	resp_raw(r, 200, "text/csv; charset=utf-8", c.p, c.len);
	free(c.p);
}

void rpt_respond(struct req *r, const struct rpt_params *p, json_t *buckets, json_t *totals,
		 const char *as_of)
{
	char from[32], to[32];
	json_t *out;
	char *text;

	if (as_of != NULL && *as_of != '\0')
		resp_header(r, "X-Report-As-Of", as_of);
	resp_header(r, "Cache-Control", "no-store");
	if (p->csv) {
		respond_csv(r, buckets);
		json_decref(buckets);
		json_decref(totals);
		return;
	}
	rpt_format_us(p->from_us, from, sizeof(from));
	rpt_format_us(p->to_us, to, sizeof(to));
	out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "from", from, "to", to, "interval",
			rpt_interval_name(p->interval), "tz", p->tz, "buckets", buckets, "totals",
			totals);
	if (out == NULL)
		fatal("out of memory (report)");
	text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(out);
	if (text == NULL)
		fatal("out of memory (report)");
	resp_raw(r, 200, "application/json; charset=utf-8", text, strlen(text));
	free(text);
}
