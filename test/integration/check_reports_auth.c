/*
 * check_reports_auth.c - who may see reports, and what a bad request gets,
 * with the service logged in as its member role (row-level security
 * applies) and again as the superuser (it does not: the service's own
 * checks must hold alone):
 *   - reports over all channels: admins only (403 otherwise);
 *   - with channelId: admins and that channel's admin and moderator
 *     members; a plain member, a stranger, a global moderator: 403;
 *   - GET /api/calls/{id}/quality: the call's participants and admins;
 *     anyone else 404, as if the call did not exist; exact percentiles;
 *   - every bad parameter is a 400 naming it, and changes nothing.
 */
#include "reports_fixture.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct it_server member_srv, super_srv;
static struct rf F;
static bool seeded;

static void seed_once(void)
{
	if (!seeded) {
		char *line;

		rf_seed(&F);
		line = rf_rollup(false);
		free(line);
		seeded = true;
	}
}

static char *tok(const char *user, const char *roles)
{
	char *t = it_user_token(user, roles, 3600);

	ck_assert_ptr_nonnull(t);
	return t;
}

/* GET path as token; the status (body in *out when out is given). */
static long get(const struct it_server *s, const char *path, const char *token, struct it_resp *out)
{
	struct it_resp r;
	long st;

	ck_assert_int_eq(it_req(s, "GET", path, token, NULL, &r), 0);
	st = r.status;
	if (out != NULL)
		*out = r;
	else
		it_resp_free(&r);
	return st;
}

static void check_access(const struct it_server *s)
{
	char *admin = tok("3f7c2a90-1b4d-4e8a-9c3f-0d2e1a4b5c6d", "user,admin");
	char *gmod = tok(F.outsider, "user,moderator");
	char *chadmin = tok(F.admin, "user"), *chmod = tok(F.mod, "user");
	char *member = tok(F.member, "user"), *outsider = tok(F.outsider, "user");
	char path_a[256], path_b[256], path_x[256];
	struct it_resp ra, rm;

	snprintf(path_a, sizeof(path_a), "/api/reports/usage?channelId=%s&from=%s&to=%s", F.ch_a,
		 rf_at(F.berlin, -1440), rf_at(F.berlin, 1440));
	snprintf(path_b, sizeof(path_b), "/api/reports/quality?channelId=%s", F.ch_b);
	snprintf(path_x, sizeof(path_x), "/api/reports/usage?channelId=%s",
		 "9b2f5c1e-0000-4000-8000-000000000001");
	ck_assert_int_eq(get(s, "/api/reports/usage", NULL, NULL), 401);
	ck_assert_int_eq(get(s, "/api/reports/usage", admin, NULL), 200);
	ck_assert_int_eq(get(s, "/api/reports/quality", admin, NULL), 200);
	ck_assert_int_eq(get(s, "/api/reports/usage", gmod, NULL), 403);
	ck_assert_int_eq(get(s, "/api/reports/quality", chadmin, NULL), 403);
	ck_assert_int_eq(get(s, path_a, member, NULL), 403);
	ck_assert_int_eq(get(s, path_a, outsider, NULL), 403);
	ck_assert_int_eq(get(s, path_a, gmod, NULL), 403);
	ck_assert_int_eq(get(s, path_b, chadmin, NULL), 403);   /* only a member of channel B */
	ck_assert_int_eq(get(s, path_x, admin, NULL), 404);
	ck_assert_int_eq(get(s, path_x, chadmin, NULL), 403);
	/* the channel's admin and moderator see what an admin sees */
	ck_assert_int_eq(get(s, path_a, admin, &ra), 200);
	ck_assert_int_eq(get(s, path_a, chmod, &rm), 200);
	ck_assert_msg(json_equal(json_object_get(ra.json, "totals"), json_object_get(rm.json, "totals")),
		      "moderator %s / admin %s", rm.body, ra.body);
	ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(ra.json, "totals"), "calls")), 0);
	it_resp_free(&rm);
	ck_assert_int_eq(get(s, path_a, chadmin, &rm), 200);
	ck_assert(json_equal(json_object_get(ra.json, "totals"), json_object_get(rm.json, "totals")));
	it_resp_free(&rm);
	it_resp_free(&ra);
	free(admin);
	free(gmod);
	free(chadmin);
	free(chmod);
	free(member);
	free(outsider);
}

START_TEST(report_access_as_member_role)
{
	seed_once();
	check_access(&member_srv);
}
END_TEST

START_TEST(report_access_as_superuser)
{
	seed_once();
	check_access(&super_srv);
}
END_TEST

/* The call's figures, exactly, from the base rows. */
static json_t *call_expected(const char *call_id, const char *user)
{
	const char *p[2] = {call_id, user};
	char *text = it_sql(F.db,
		"SELECT json_build_object('samples', count(*),"
		" 'rtt50', percentile_cont(0.5) WITHIN GROUP (ORDER BY rtt_ms),"
		" 'rtt95', percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms),"
		" 'jit95', percentile_cont(0.95) WITHIN GROUP (ORDER BY jitter_ms),"
		" 'loss95', percentile_cont(0.95) WITHIN GROUP (ORDER BY packet_loss_pct),"
		" 'lossAvg', round(avg(packet_loss_pct::numeric), 3),"
		" 'participants', count(DISTINCT user_id))::text"
		" FROM nchat_webrtc_connections WHERE call_id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
		2, p);
	json_t *o = json_loads(text, 0, NULL);

	free(text);
	return o;
}

static void near(const char *what, json_t *got, json_t *want, int decimals)
{
	double scale = decimals == 1 ? 10 : 1000;

	if (json_is_null(want)) {
		ck_assert_msg(json_is_null(got), "%s should be null", what);
		return;
	}
	ck_assert_msg(json_is_number(got), "%s is not a number", what);
	ck_assert_msg(json_number_value(got) == round(json_number_value(want) * scale) / scale,
		      "%s: %g, exactly %g", what, json_number_value(got), json_number_value(want));
}

static void check_call_quality(const struct it_server *s)
{
	char *admin = tok("3f7c2a90-1b4d-4e8a-9c3f-0d2e1a4b5c6d", "user,admin");
	char *part = tok(F.users[1], "user"), *member = tok(F.member, "user");
	char *outsider = tok(F.outsider, "user"), path[160];
	struct it_resp r;
	json_t *want, *by;

	snprintf(path, sizeof(path), "/api/calls/%s/quality", F.call_berlin);
	ck_assert_int_eq(get(s, path, member, NULL), 404);     /* channel member, not a participant */
	ck_assert_int_eq(get(s, path, outsider, NULL), 404);
	ck_assert_int_eq(get(s, "/api/calls/not-a-uuid/quality", admin, NULL), 400);
	ck_assert_int_eq(get(s, "/api/calls/7a1e3c5d-0000-4000-8000-000000000000/quality", admin, NULL), 404);
	ck_assert_int_eq(get(s, path, part, NULL), 200);
	ck_assert_int_eq(get(s, path, admin, &r), 200);
	want = call_expected(F.call_berlin, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "callId")), F.call_berlin);
	ck_assert_int_eq(json_integer_value(json_object_get(r.json, "samples")),
			 json_integer_value(json_object_get(want, "samples")));
	ck_assert_int_eq(json_integer_value(json_object_get(r.json, "participants")), 2);
	near("rttMs.p50", json_object_get(json_object_get(r.json, "rttMs"), "p50"),
	     json_object_get(want, "rtt50"), 1);
	near("rttMs.p95", json_object_get(json_object_get(r.json, "rttMs"), "p95"),
	     json_object_get(want, "rtt95"), 1);
	near("jitterMs.p95", json_object_get(json_object_get(r.json, "jitterMs"), "p95"),
	     json_object_get(want, "jit95"), 1);
	near("packetLossPct.p95", json_object_get(json_object_get(r.json, "packetLossPct"), "p95"),
	     json_object_get(want, "loss95"), 3);
	ck_assert(json_number_value(json_object_get(json_object_get(r.json, "packetLossPct"), "avg")) ==
		  json_number_value(json_object_get(want, "lossAvg")));
	/* users[1] mixed checking/connected samples, half of them over TURN */
	ck_assert(json_real_value(json_object_get(r.json, "turnRelayShare")) == 0.5);
	ck_assert(json_real_value(json_object_get(r.json, "iceFailureRate")) == 0.0);
	json_decref(want);
	by = json_object_get(r.json, "byParticipant");
	ck_assert_int_eq(json_array_size(by), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *p = json_array_get(by, i);

		want = call_expected(F.call_berlin, json_string_value(json_object_get(p, "userId")));
		ck_assert_int_eq(json_integer_value(json_object_get(p, "samples")),
				 json_integer_value(json_object_get(want, "samples")));
		near("byParticipant rttMs.p95", json_object_get(json_object_get(p, "rttMs"), "p95"),
		     json_object_get(want, "rtt95"), 1);
		json_decref(want);
	}
	it_resp_free(&r);
	free(admin);
	free(part);
	free(member);
	free(outsider);
}

START_TEST(call_quality_as_member_role)
{
	seed_once();
	check_call_quality(&member_srv);
}
END_TEST

START_TEST(call_quality_as_superuser)
{
	seed_once();
	check_call_quality(&super_srv);
}
END_TEST

START_TEST(bad_parameters_are_400_naming_them)
{
	static const struct { const char *query, *param; } bad[] = {
		{"from=yesterday", "from"},
		{"from=2026-02-30T00:00:00Z", "from"},
		{"to=2026-01-01", "to"},
		{"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"},
		{"from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to"},
		{"from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "400 days"},
		{"interval=hour&from=2026-01-01T00:00:00Z&to=2026-02-15T00:00:00Z", "interval"},
		{"interval=year", "interval"},
		{"tz=Mars/Olympus_Mons", "tz"},
		{"tz=%2B05:30", "tz"},
		{"channelId=general", "channelId"},
		{"format=xml", "format"},
		/* Liberia's offset was 44 minutes 30 seconds then: no 15-minute slot fits */
		{"tz=Africa/Monrovia&from=1971-01-01T00:00:00Z&to=1971-01-03T00:00:00Z", "tz"},
	};
	char *admin = tok("3f7c2a90-1b4d-4e8a-9c3f-0d2e1a4b5c6d", "user,admin");
	char *before, *after, path[256];
	struct it_resp r;

	seed_once();
	before = it_sql(F.db, "SELECT (SELECT count(*) FROM nchat_rtc_report_usage)::text || '/' ||"
			" (SELECT as_of FROM nchat_rtc_report_state)::text", 0, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int k = 0; k < 2; k++) {
			snprintf(path, sizeof(path), "/api/reports/%s?%s", k ? "quality" : "usage",
				 bad[i].query);
			ck_assert_int_eq(get(&member_srv, path, admin, &r), 400);
			ck_assert_str_eq(it_err_code(&r), "bad_request");
			ck_assert_msg(strstr(json_string_value(json_object_get(json_object_get(r.json, "error"),
						"message")), bad[i].param) != NULL,
				      "%s: %s does not name %s", path, r.body, bad[i].param);
			it_resp_free(&r);
		}
	}
	after = it_sql(F.db, "SELECT (SELECT count(*) FROM nchat_rtc_report_usage)::text || '/' ||"
		       " (SELECT as_of FROM nchat_rtc_report_state)::text", 0, NULL);
	ck_assert_str_eq(before, after);
	/* the defaults: the last 30 days by day in UTC, widened to whole slots */
	ck_assert_int_eq(get(&member_srv, "/api/reports/usage", admin, &r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "interval")), "day");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "tz")), "UTC");
	ck_assert_int_ge(json_array_size(json_object_get(r.json, "buckets")), 30);
	{
		char *h = it_resp_header(&r, "X-Report-As-Of");

		ck_assert_ptr_nonnull(h);
		free(h);
	}
	it_resp_free(&r);
	free(before);
	free(after);
	free(admin);
}
END_TEST

int main(void)
{
	static const char *need[] = {"NC_BIN", "DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL",
				     "AUTH_JWT_SECRET", "LIVEKIT_URL", "NC_TEST_ADMIN_URL", NULL};
	char *super_url;
	const char *env[] = {"REPORTS_ROLLUP_INTERVAL_SECONDS=0", NULL, NULL};
	Suite *s = suite_create("reports_auth");
	TCase *tc = tcase_create("access");
	SRunner *sr;
	int failed;

	it_require(need);
	super_url = it_database_url_env_as(it_env("NC_TEST_ADMIN_URL"));
	if (super_url == NULL) {
		fprintf(stderr, "cannot derive a superuser DATABASE_URL\n");
		return 1;
	}
	if (it_server_start(&member_srv, env) != 0) {
		fprintf(stderr, "server did not start\n");
		return 1;
	}
	env[1] = super_url;
	if (it_server_start(&super_srv, env) != 0) {
		fprintf(stderr, "superuser server did not start\n");
		it_server_stop(&member_srv);
		return 1;
	}
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, report_access_as_member_role);
	tcase_add_test(tc, report_access_as_superuser);
	tcase_add_test(tc, call_quality_as_member_role);
	tcase_add_test(tc, call_quality_as_superuser);
	tcase_add_test(tc, bad_parameters_are_400_naming_them);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	it_server_stop(&member_srv);
	it_server_stop(&super_srv);
	free(super_url);
	if (F.db != NULL)
		PQfinish(F.db);
	return failed == 0 ? 0 : 1;
}
