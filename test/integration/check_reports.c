/*
 * check_reports.c - GET /api/reports/usage and /api/reports/quality give
 * exactly (percentiles and distinct counts within their stated error) what
 * plain SQL over the base tables gives, bucket by bucket and in total, in
 * JSON and in CSV alike, across daylight-saving days (Europe/Berlin 25 h,
 * Australia/Sydney 23 h) and a half-hour zone (Asia/Kolkata), for all
 * channels and for one; and still after late data: a call that ends after
 * its hours were rolled up, a late stats sample, a GDPR erase, a deleted
 * recording, a deleted channel, a live stream that ends.
 */
#include "reports_fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct it_server srv;
static struct rf F;
static char *admin_tok;

struct cfg {
	const char *name;
	long long base;       /* the anchor the range is relative to */
	long from_min, to_min;
	const char *interval, *tz;
	bool channel;         /* channel A, else all channels */
};

/* GET a report (JSON or CSV) as admin. */
static void get(const char *kind, const struct cfg *c, bool csv, struct it_resp *r)
{
	char path[512];

	snprintf(path, sizeof(path), "/api/reports/%s?from=%s&to=%s&interval=%s&tz=%s%s%s%s", kind,
		 rf_at(c->base, c->from_min), rf_at(c->base, c->to_min), c->interval, c->tz,
		 c->channel ? "&channelId=" : "", c->channel ? F.ch_a : "", csv ? "&format=csv" : "");
	ck_assert_int_eq(it_req(&srv, "GET", path, admin_tok, NULL, r), 0);
	ck_assert_msg(r->status == 200, "%s %s: %ld %s", kind, c->name, r->status, r->body);
}

/* Every bucket and the totals against the base tables. */
static void check_report(const char *kind, const struct cfg *c, const char *as_of)
{
	struct it_resp r;
	json_t *buckets, *b, *want;
	const char *to;
	size_t i;
	char what[160];

	get(kind, c, false, &r);
	buckets = json_object_get(r.json, "buckets");
	to = json_string_value(json_object_get(r.json, "to"));
	ck_assert_msg(json_array_size(buckets) > 0, "%s %s: no buckets", kind, c->name);
	json_array_foreach(buckets, i, b) {
		const char *start = json_string_value(json_object_get(b, "start"));
		json_t *next = json_array_get(buckets, i + 1);
		const char *lo = i == 0 ? json_string_value(json_object_get(r.json, "from")) : start;
		const char *hi = next ? json_string_value(json_object_get(next, "start")) : to;

		snprintf(what, sizeof(what), "%s %s bucket %s", kind, c->name, start);
		want = strcmp(kind, "usage") == 0
			? rf_expected_usage(F.db, lo, hi, c->channel ? F.ch_a : NULL, as_of)
			: rf_expected_quality(F.db, lo, hi, c->channel ? F.ch_a : NULL, as_of);
		rf_compare(what, b, want);
		json_decref(want);
	}
	snprintf(what, sizeof(what), "%s %s totals", kind, c->name);
	want = strcmp(kind, "usage") == 0
		? rf_expected_usage(F.db, json_string_value(json_object_get(r.json, "from")), to,
				    c->channel ? F.ch_a : NULL, as_of)
		: rf_expected_quality(F.db, json_string_value(json_object_get(r.json, "from")), to,
				      c->channel ? F.ch_a : NULL, as_of);
	rf_compare(what, json_object_get(r.json, "totals"), want);
	json_decref(want);
	it_resp_free(&r);
}

static const struct cfg *configs(size_t *n)
{
	static struct cfg c[6];

	c[0] = (struct cfg){"berlin days, all", F.berlin, -3 * 1440, 3 * 1440, "day", "Europe/Berlin", false};
	c[1] = (struct cfg){"berlin days, channel", F.berlin, -3 * 1440 + 7, 2 * 1440 + 1, "day",
			    "Europe/Berlin", true};
	c[2] = (struct cfg){"kolkata hours, all", F.berlin, -8 * 60, 26 * 60, "hour", "Asia/Kolkata", false};
	c[3] = (struct cfg){"kolkata hours, channel", F.berlin, -8 * 60, 3 * 60, "hour", "Asia/Kolkata", true};
	c[4] = (struct cfg){"sydney weeks, all", F.sydney, -9 * 1440, 12 * 1440, "week",
			    "Australia/Sydney", false};
	c[5] = (struct cfg){"months, channel", F.sydney, -20 * 1440, 40 * 1440, "month", "UTC", true};
	*n = sizeof(c) / sizeof(c[0]);
	return c;
}

static void check_all(void)
{
	char *as_of = rf_as_of(F.db);
	size_t n;
	const struct cfg *c = configs(&n);

	for (size_t i = 0; i < n; i++) {
		check_report("usage", &c[i], as_of);
		check_report("quality", &c[i], as_of);
	}
	free(as_of);
}

START_TEST(reports_match_the_base_tables)
{
	struct it_resp r;
	const struct cfg *c;
	size_t n;
	char *line;

	/* the seed and the first rollup (a rebuild) run inside the test, so a
	 * failure there is reported as one */
	rf_seed(&F);
	line = rf_rollup(true);
	printf("%s", line);
	free(line);
	check_all();
	/* the 25-hour and 23-hour days are one bucket each */
	c = configs(&n);
	get("usage", &c[0], false, &r);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "buckets")), 7);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(r.json, "buckets"), 3), "start")), rf_at(F.berlin, -3 * 60));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(r.json, "buckets"), 4), "start")), rf_at(F.berlin, 22 * 60));
	it_resp_free(&r);
}
END_TEST

/* Split one CSV line on commas (the cells never contain commas or quotes). */
static json_t *csv_cells(const char *line, size_t len)
{
	json_t *a = json_array();
	size_t s = 0;

	for (size_t i = 0; i <= len; i++)
		if (i == len || line[i] == ',') {
			json_array_append_new(a, json_stringn(line + s, i - s));
			s = i + 1;
		}
	return a;
}

/* The JSON text of a bucket's figure by dotted name, as a CSV cell would show it. */
static char *cell_of(json_t *bucket, const char *name)
{
	char key[64], *dot;
	json_t *v;

	snprintf(key, sizeof(key), "%s", name);
	dot = strchr(key, '.');
	if (dot != NULL) {
		*dot = '\0';
		v = json_object_get(json_object_get(bucket, key), dot + 1);
	} else {
		v = json_object_get(bucket, key);
	}
	ck_assert_msg(v != NULL, "CSV column %s is not a JSON figure", name);
	if (json_is_null(v))
		return strdup("");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	return json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

static void check_csv(const char *kind, const struct cfg *c)
{
	struct it_resp rj, rc;
	json_t *buckets, *header = NULL;
	const char *p;
	char *ct;
	size_t row = 0;

	get(kind, c, false, &rj);
	get(kind, c, true, &rc);
	ct = it_resp_header(&rc, "Content-Type");
	ck_assert_ptr_nonnull(ct);
	ck_assert_msg(strncmp(ct, "text/csv", 8) == 0, "Content-Type %s", ct);
	free(ct);
	buckets = json_object_get(rj.json, "buckets");
	for (p = rc.body; *p != '\0'; row++) {
		const char *eol = strstr(p, "\r\n");
		json_t *cells;

		ck_assert_ptr_nonnull(eol);
		cells = csv_cells(p, (size_t)(eol - p));
		if (header == NULL) {
			header = cells;
			ck_assert_str_eq(json_string_value(json_array_get(header, 0)), "start");
		} else {
			json_t *b = json_array_get(buckets, row - 1);

			ck_assert_ptr_nonnull(b);
			ck_assert_int_eq(json_array_size(cells), json_array_size(header));
			for (size_t k = 0; k < json_array_size(header); k++) {
				char *want = cell_of(b, json_string_value(json_array_get(header, k)));

				ck_assert_msg(strcmp(want, json_string_value(json_array_get(cells, k))) == 0,
					      "%s %s row %zu %s: CSV %s, JSON %s", kind, c->name, row,
					      json_string_value(json_array_get(header, k)),
					      json_string_value(json_array_get(cells, k)), want);
				free(want);
			}
			json_decref(cells);
		}
		p = eol + 2;
	}
	ck_assert_int_eq(row, json_array_size(buckets) + 1);   /* header, buckets, no totals */
	json_decref(header);
	it_resp_free(&rj);
	it_resp_free(&rc);
}

START_TEST(csv_says_what_json_says)
{
	size_t n;
	const struct cfg *c = configs(&n);
	struct it_resp r;
	const char *hdr[] = {"Accept: text/csv", NULL};
	char url[512];

	for (size_t i = 0; i < n; i++) {
		check_csv("usage", &c[i]);
		check_csv("quality", &c[i]);
	}
	/* Accept: text/csv alone asks for CSV too, with the dotted columns */
	snprintf(url, sizeof(url), "%s/api/reports/usage", srv.base);
	ck_assert_int_eq(it_http("GET", url, admin_tok, NULL, hdr, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.body, "start,calls,callsByType.audio,", 30) == 0, "%.80s", r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "setupMsP95"));
	it_resp_free(&r);
}
END_TEST

/* Late data: each of these reaches the rollup only after it was rolled up. */
static void late_data(void)
{
	struct it_resp r;
	char path[96];
	const char *p[2];

	/* the open call ends - earlier than the instant it was counted up to */
	p[0] = F.call_open;
	p[1] = rf_at(F.berlin, 24 * 60 + 35);
	free(it_sql(F.db, "UPDATE nchat_calls SET status = 'ended', ended_at = $2::timestamptz"
		    " WHERE id = $1", 2, p));
	free(it_sql(F.db, "UPDATE nchat_call_participants SET status = 'left', left_at = $2::timestamptz"
		    " WHERE call_id = $1", 2, p));
	/* a stats sample for a call that ended long ago */
	p[1] = F.users[7];
	free(it_sql(F.db, "INSERT INTO nchat_webrtc_connections (call_id, user_id, ice_connection_state,"
		    " rtt_ms, quality) VALUES ($1, $2, 'connected', 444.4, 'poor')", 2,
		    (const char *[]){F.call_old, F.users[7]}));
	/* a user erased through the API */
	snprintf(path, sizeof(path), "/api/users/%s/data", F.users[1]);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, admin_tok, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	/* a recording row deleted, a channel deleted, the live stream ended */
	free(it_sql(F.db, "DELETE FROM nchat_call_recordings WHERE id = $1", 1,
		    (const char *[]){F.recording}));
	free(it_sql(F.db, "DELETE FROM nchat_channels WHERE id = $1", 1, (const char *[]){F.ch_b}));
	p[0] = F.stream_live;
	p[1] = rf_at(F.berlin, 2 * 24 * 60 + 65);
	free(it_sql(F.db, "UPDATE nchat_streams SET status = 'ended', ended_at = $2::timestamptz"
		    " WHERE id = $1", 2, p));
}

START_TEST(late_data_corrects_the_rollup)
{
	char *line;
	long hours;

	late_data();
	line = rf_rollup(false);
	ck_assert_msg(sscanf(line, "rollup-reports: %ld hours recomputed", &hours) == 1, "%s", line);
	/* only what changed was recomputed, not everything: the hours of the
	 * calls and streams involved (the open call was counted up to now) */
	ck_assert_msg(hours > 0, "%s", line);
	free(line);
	check_all();
}
END_TEST

int main(void)
{
	static const char *need[] = {"NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL",
				     "AUTH_JWT_SECRET", "LIVEKIT_URL", NULL};
	const char *env[] = {"REPORTS_ROLLUP_INTERVAL_SECONDS=0", NULL};
	Suite *s = suite_create("reports");
	TCase *tc = tcase_create("correctness");
	SRunner *sr;
	char *admin_id;
	int failed;

	it_require(need);
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "server did not start\n");
		return 1;
	}
	admin_id = strdup("8d4b1a36-6f0e-4c1e-9a1b-6a4f2b0c9e11");   /* admins need no user row */
	admin_tok = it_user_token(admin_id, "user,admin", 3600);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, reports_match_the_base_tables);
	tcase_add_test(tc, csv_says_what_json_says);
	tcase_add_test(tc, late_data_corrects_the_rollup);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	it_server_stop(&srv);
	free(admin_id);
	free(admin_tok);
	if (F.db != NULL)
		PQfinish(F.db);
	return failed == 0 ? 0 : 1;
}
