/*
 * reports_params.c - the query parameters of the report endpoints.
 *
 *   from, to    RFC 3339 date-times; default the last 30 days up to now.
 *               The range is widened to whole 15-minute slots (the
 *               rollups' resolution) and the response says which range it
 *               covers.  to must be after from, at most 400 days later
 *               (31 days with interval=hour).
 *   interval    hour | day (default) | week (from Monday) | month
 *   tz          an IANA zone name known to Postgres (default UTC)
 *   channelId   a UUID: that channel's figures only
 *   format      json | csv (default: CSV when Accept asks for text/csv)
 *
 * Every bad value is a 400 whose message names the parameter.
 */
#include "reports/reports.h"
#include "core/log.h"
#include "core/uuid.h"
#include "http/http.h"
#include "http/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define US_PER_S INT64_C(1000000)
#define SLOT_US (900 * US_PER_S)
#define DAY_US (86400 * US_PER_S)
#define MAX_DAYS 400
#define MAX_HOUR_DAYS 31
#define DEFAULT_DAYS 30

const char *rpt_interval_name(enum rpt_interval iv)
{
	static const char *const names[] = {"hour", "day", "week", "month"};

	return names[iv];
}



void rpt_format_us(int64_t us, char *out, size_t outlen)
{
	int64_t s = us / US_PER_S - (us % US_PER_S < 0 ? 1 : 0);

	format_rfc3339(s, out, outlen);
}

/* ---- time zones: Postgres's list, read once ---- */

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;
static char **tz_names;
static size_t n_tz;

static int cmp_ci(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* Load the zone names (under tz_mu); false if the database failed. */
static bool tz_load(struct db_conn *db)
{
	struct nc_error err = {0};
	PGresult *res;
	int n;

	if (tz_names != NULL)
		return true;
	res = db_exec(db, "SELECT name FROM pg_catalog.pg_timezone_names", 0, NULL, &err);
	if (res == NULL)
		return false;
	n = PQntuples(res);
	tz_names = xcalloc((size_t)n + 1, sizeof(*tz_names));
	for (int i = 0; i < n; i++)
		tz_names[n_tz++] = xstrdup(PQgetvalue(res, i, PQfnumber(res, "name")));
	PQclear(res);
	qsort(tz_names, n_tz, sizeof(*tz_names), cmp_ci);
	return true;
}

void rpt_tz_preload(struct db_conn *db)
{
	pthread_mutex_lock(&tz_mu);
	if (!tz_load(db))
		log_warn("time zone list not read at start-up; the first report request reads it");
	pthread_mutex_unlock(&tz_mu);
}

/* 1 known (canonical spelling into out), 0 unknown, -1 database failure. */
static int tz_lookup(struct db_conn *db, const char *name, char *out, size_t outlen)
{
	const char *key = name;
	char **hit;
	int rc;

	pthread_mutex_lock(&tz_mu);
	if (!tz_load(db)) {
		pthread_mutex_unlock(&tz_mu);
		return -1;
	}
	hit = bsearch(&key, tz_names, n_tz, sizeof(*tz_names), cmp_ci);
	rc = hit != NULL && strlen(*hit) < outlen;
	if (rc)
		snprintf(out, outlen, "%s", *hit);
	pthread_mutex_unlock(&tz_mu);
	return rc;
}

/* ---- the parameters ---- */

static enum nc_err read_range(struct req *r, struct rpt_params *p, struct nc_error *err)
{
	char *from = req_query(r, "from"), *to = req_query(r, "to");
	int64_t now_us = now_ms() * 1000, f = 0, t = 0;
	enum nc_err rc = NC_OK;

	if (from != NULL && rpt_parse_rfc3339(from, &f) != 0)
		rc = err_set(err, NC_EBADREQ,
			     "from must be an RFC 3339 date-time such as 2026-03-01T00:00:00Z");
	else if (to != NULL && rpt_parse_rfc3339(to, &t) != 0)
		rc = err_set(err, NC_EBADREQ,
			     "to must be an RFC 3339 date-time such as 2026-04-01T00:00:00Z");
	if (rc == NC_OK) {
		if (to == NULL)
			t = from != NULL && f > now_us ? f + DEFAULT_DAYS * DAY_US : now_us;
		if (from == NULL)
			f = t - DEFAULT_DAYS * DAY_US;
		if (t <= f)
			rc = err_set(err, NC_EBADREQ, "to must be after from");
		else if (t - f > MAX_DAYS * DAY_US)
			rc = err_set(err, NC_EBADREQ, "from, to: the range may span at most 400 days");
	}
	/* widen to whole 15-minute slots */
	p->from_us = f - ((f % SLOT_US) + SLOT_US) % SLOT_US;
	p->to_us = t + (SLOT_US - ((t % SLOT_US) + SLOT_US) % SLOT_US) % SLOT_US;
	free(from);
	free(to);
	return rc;
}

static enum nc_err read_interval(struct req *r, struct rpt_params *p, struct nc_error *err)
{
	char *iv = req_query(r, "interval");
	bool ok = true;

	p->interval = RPT_DAY;
	if (iv != NULL) {
		enum rpt_interval k;

		ok = false;
		for (k = RPT_HOUR; k <= RPT_MONTH; k++)
			if (strcmp(iv, rpt_interval_name(k)) == 0) {
				p->interval = k;
				ok = true;
			}
	}
	free(iv);
	if (!ok)
		return err_set(err, NC_EBADREQ, "interval must be hour, day, week or month");
	if (p->interval == RPT_HOUR && p->to_us - p->from_us > MAX_HOUR_DAYS * DAY_US + SLOT_US * 2)
		return err_set(err, NC_EBADREQ,
			       "interval: hourly buckets need a range of at most 31 days");
	return NC_OK;
}

static enum nc_err read_format(struct req *r, struct rpt_params *p, struct nc_error *err)
{
	char *fmt = req_query(r, "format");
	const char *accept = req_header(r, "Accept");
	bool ok = true;

	p->csv = accept != NULL && strcasestr(accept, "text/csv") != NULL;
	if (fmt != NULL) {
		if (strcmp(fmt, "csv") == 0)
			p->csv = true;
		else if (strcmp(fmt, "json") == 0)
			p->csv = false;
		else
			ok = false;
	}
	free(fmt);
	return ok ? NC_OK : err_set(err, NC_EBADREQ, "format must be json or csv");
}

/* tz: canonical spelling of a zone Postgres knows, default UTC. */
static enum nc_err read_tz(struct req *r, struct rpt_params *p, const char *tz,
			   struct nc_error *err)
{
	int known;

	if (tz == NULL || *tz == '\0') {
		snprintf(p->tz, sizeof(p->tz), "UTC");
		return NC_OK;
	}
	known = strlen(tz) < sizeof(p->tz) ? tz_lookup(&req_worker(r)->db, tz, p->tz, sizeof(p->tz)) : 0;
	if (known < 0)
		return err_set(err, NC_EUNAVAILABLE, "database unavailable");
	if (known == 0)
		return err_set(err, NC_EBADREQ,
			       "tz must be an IANA time zone name such as Europe/Berlin");
	return NC_OK;
}

enum nc_err rpt_read_params(struct req *r, struct rpt_params *p, struct nc_error *err)
{
	char *tz = req_query(r, "tz"), *ch = req_query(r, "channelId");
	enum nc_err rc;

	memset(p, 0, sizeof(*p));
	rc = read_range(r, p, err);
	if (rc == NC_OK)
		rc = read_interval(r, p, err);
	if (rc == NC_OK)
		rc = read_format(r, p, err);
	if (rc == NC_OK && ch != NULL) {
		if (!is_uuid(ch))
			rc = err_set(err, NC_EBADREQ, "channelId must be a UUID");
		else
			uuid_lower(ch, p->channel_id);
	}
	if (rc == NC_OK)
		rc = read_tz(r, p, tz, err);
	free(tz);
	free(ch);
	return rc;
}
