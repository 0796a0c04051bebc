/*
 * reports_fixture.h - the data set of the report suites (check_reports.c,
 * check_reports_auth.c): calls, participants, connection stats,
 * recordings and streams around the daylight-saving edges of the most
 * recent past autumn, written straight into the base tables, and the
 * plain SQL that computes every report figure from those tables.
 */
#ifndef NC_REPORTS_FIXTURE_H
#define NC_REPORTS_FIXTURE_H

#include "harness.h"

#include <jansson.h>
#include <libpq-fe.h>

struct rf {
	PGconn *db;
	long long berlin;         /* Europe/Berlin falls back: unix seconds (01:00 UTC) */
	long long sydney;         /* Australia/Sydney springs forward (16:00 UTC) */
	char *ch_a, *ch_b;        /* channels */
	char *admin, *mod, *member, *outsider;   /* ch_a's admin, moderator, member; nobody */
	char *users[8];           /* participants (users[0..2] are ch_a members) */
	char *call_open;          /* active, not ended yet */
	char *call_long;          /* longer than the sweep's 6-hour look-back */
	char *call_berlin;        /* across the repeated hour; has a recording */
	char *call_old;           /* closed, gets a late sample */
	char *stream_live;        /* live, in ch_b */
	char *recording;          /* of call_berlin */
};

/* Seed everything (owner connection); aborts the test on failure. */
void rf_seed(struct rf *f);
/* "2026-10-25T01:00:00Z" plus minutes, as text for SQL (static buffer ring). */
const char *rf_at(long long base, long minutes);

/* Run `nchat-rtc rollup-reports [--rebuild]`; its summary line (malloc'd). */
char *rf_rollup(bool rebuild);
/* The rollup's as_of as text (timestamptz). */
char *rf_as_of(PGconn *db);

/*
 * The figures of [lo, hi) for channel ch (NULL: all channels), straight
 * from the base tables, as the JSON object the API would give (usage or
 * quality), open calls and streams counted up to as_of.
 */
json_t *rf_expected_usage(PGconn *db, const char *lo, const char *hi, const char *ch,
			  const char *as_of);
json_t *rf_expected_quality(PGconn *db, const char *lo, const char *hi, const char *ch,
			    const char *as_of);

/*
 * Compare one figure object of the API with the expected one: exact for
 * counts, minutes, averages and shares; within the stated error for
 * percentiles (2.44 % + half a histogram unit) and distinct counts (3
 * standard errors of 3.25 %).  Aborts the test with what differs.
 */
void rf_compare(const char *what, json_t *got, json_t *want);

#endif
