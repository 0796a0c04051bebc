/*
 * check_metrics.c - the metrics the operator's dashboard and alert rules use
 * (etc/grafana/nchat-rtc.json, etc/prometheus/alerts.yml), against a real
 * server and real Postgres/Redis:
 *
 *   - requests by route class and status class, with a latency histogram;
 *   - LiveKit calls whose outcome is "unavailable" (LiveKit unreachable);
 *   - the lag of LiveKit webhooks (createdAt to arrival);
 *   - active call participants and recordings stuck in `starting`, from the
 *     database at scrape time;
 *   - the last successful run of each sweep, also of a sweep run from cron
 *     (another process), through Redis;
 *   - Postgres/Redis reachability gauges, 0 while Redis is down.
 */
#include "harness.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct it_server srv;

/* The value of the exposition line starting with name{labels} (or "name "), or -1. */
static double metric(const char *text, const char *prefix)
{
	char needle[256];
	const char *p, *sp;

	snprintf(needle, sizeof(needle), "\n%s", prefix);
	p = strstr(text, needle);
	if (p == NULL)
		return -1;
	sp = strchr(p + strlen(needle) - 1, ' ');
	return sp ? atof(sp + 1) : -1;
}

/* GET /metrics of s on its METRICS_ADDR listener (malloc'd body). */
static char *scrape(const struct it_server *s)
{
	struct it_resp r;
	char *body;

	ck_assert_int_eq(it_metrics(s, &r), 0);
	ck_assert_int_eq(r.status, 200);
	body = strdup(r.body);
	it_resp_free(&r);
	return body;
}

static double scrape_one(const char *prefix)
{
	char *m = scrape(&srv);
	double v = metric(m, prefix);

	free(m);
	return v;
}

/* scripts/services.sh CMD on the test's services; 0 on success. */
static int services(const char *cmd)
{
	char line[2048];

	snprintf(line, sizeof(line), "RUN_DIR='%s' timeout 90 bash '%s/scripts/services.sh' %s"
		 " >>'%s/metrics-services.log' 2>&1", it_env("NC_RUN_DIR"), it_env("NC_ROOT"), cmd,
		 it_env("NC_RUN_DIR"));
	return system(line) == 0 ? 0 : -1;
}

static double zero_if_absent(double v)
{
	return v < 0 ? 0 : v;
}

START_TEST(requests_by_route_class)
{
	PGconn *db = it_db();
	char *a = it_new_user(db, "Metrics A"), *b = it_new_user(db, "Metrics B");
	char *ta = it_user_token(a, NULL, 600), body[128];
	const char *def = "nchat_http_class_requests_total{class=\"default\",code=\"2xx\"}";
	const char *ini = "nchat_http_class_requests_total{class=\"initiate\",code=\"2xx\"}";
	const char *bad = "nchat_http_class_requests_total{class=\"initiate\",code=\"4xx\"}";
	const char *lat = "nchat_http_class_request_duration_seconds_count{class=\"initiate\"}";
	double d0 = zero_if_absent(scrape_one(def)), i0 = zero_if_absent(scrape_one(ini));
	double b0 = zero_if_absent(scrape_one(bad)), l0 = zero_if_absent(scrape_one(lat));
	struct it_resp r;
	char *m;

	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(it_req(&srv, "GET", "/api/me", ta, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", b);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, "{\"type\":\"nope\"}", &r), 0);
	ck_assert_int_eq(r.status, 400);
	it_resp_free(&r);
	m = scrape(&srv);
	ck_assert_double_eq(metric(m, def) - d0, 2);
	ck_assert_double_eq(metric(m, ini) - i0, 1);
	ck_assert_double_eq(metric(m, bad) - b0, 1);
	ck_assert_double_eq(metric(m, lat) - l0, 2);
	ck_assert_ptr_nonnull(strstr(m, "nchat_http_class_request_duration_seconds_bucket{class=\"initiate\",le=\"+Inf\"}"));
	free(m);
	free(a); free(b); free(ta);
	PQfinish(db);
}
END_TEST

START_TEST(livekit_unreachable_is_counted_as_unavailable)
{
	char env_url[96], *u, *t, body[128];
	const char *env[4];
	struct it_server down;
	struct it_resp r;
	PGconn *db = it_db();
	char *a = it_new_user(db, "Metrics LK A"), *b = it_new_user(db, "Metrics LK B"), *m;

	/* a port nothing listens on */
	snprintf(env_url, sizeof(env_url), "LIVEKIT_URL=ws://127.0.0.1:%d", it_free_port());
	env[0] = env_url;
	env[1] = "LIVEKIT_API_URL=";
	env[2] = "LIVEKIT_RETRIES=0";
	env[3] = NULL;
	ck_assert_int_eq(it_server_start(&down, env), 0);
	u = a;
	t = it_user_token(u, NULL, 600);
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", b);
	ck_assert_int_eq(it_req(&down, "POST", "/api/calls/initiate", t, body, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(it_err_code(&r), "livekit_unavailable");
	it_resp_free(&r);
	m = scrape(&down);
	ck_assert_double_eq(metric(m, "nchat_livekit_requests_total{method=\"CreateRoom\",outcome=\"unavailable\"}"), 1);
	ck_assert_double_eq(metric(m, "nchat_http_class_requests_total{class=\"initiate\",code=\"5xx\"}"), 1);
	free(m);
	ck_assert_int_eq(it_server_stop(&down), 0);
	free(a); free(b); free(t);
	PQfinish(db);
}
END_TEST

START_TEST(webhook_lag_is_observed)
{
	char ev[256], hdr[4096], url[256];
	const char *hdrs[3] = {hdr, "Content-Type: application/webhook+json", NULL};
	const char *cnt = "nchat_livekit_webhook_lag_seconds_count ";
	const char *sum = "nchat_livekit_webhook_lag_seconds_sum ";
	double c0 = zero_if_absent(scrape_one(cnt)), s0 = zero_if_absent(scrape_one(sum));
	json_t *req, *res;
	struct it_resp r;
	char *m;

	snprintf(ev, sizeof(ev), "{\"event\":\"room_started\",\"id\":\"EV_lag_%ld\",\"createdAt\":%ld,"
		 "\"room\":{\"name\":\"not-a-call\"}}", (long)getpid(), (long)time(NULL) - 40);
	req = json_pack("{s:o}", "event", json_loads(ev, 0, NULL));
	res = it_standin("POST", "/_test/sign-webhook", req);
	json_decref(req);
	ck_assert_ptr_nonnull(res);
	snprintf(hdr, sizeof(hdr), "Authorization: %s", json_string_value(json_object_get(res, "authorization")));
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", srv.base);
	ck_assert_int_eq(it_http("POST", url, NULL, json_string_value(json_object_get(res, "body")), hdrs, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	json_decref(res);
	m = scrape(&srv);
	ck_assert_double_eq(metric(m, cnt) - c0, 1);
	ck_assert_double_ge(metric(m, sum) - s0, 39);
	ck_assert_double_le(metric(m, sum) - s0, 100);
	ck_assert_ptr_nonnull(strstr(m, "\nnchat_livekit_webhook_lag_seconds_bucket{le=\"+Inf\"} "));
	free(m);
}
END_TEST

START_TEST(database_gauges_at_scrape_time)
{
	PGconn *db = it_db();
	char *a = it_new_user(db, "Metrics G A"), *b = it_new_user(db, "Metrics G B");
	const char *p[2];
	char *call, *m;
	long joined, starting;

	/* a call with both joined, and a recording stuck in starting for 20 minutes */
	p[0] = a;
	call = it_sql(db, "INSERT INTO nchat_calls (id, livekit_room_name, call_type, status, initiator_id)"
		      " SELECT id, 'call-' || id, 'audio', 'active', $1 FROM (SELECT gen_random_uuid() AS id) x"
		      " RETURNING id", 1, p);
	p[0] = call;
	p[1] = a;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
		    " VALUES ($1, $2, 'initiator', 'joined')", 2, p));
	p[1] = b;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
		    " VALUES ($1, $2, 'participant', 'joined')", 2, p));
	free(it_sql(db, "INSERT INTO nchat_call_recordings (call_id, status, created_at)"
		    " VALUES ($1, 'starting', now() - interval '20 minutes')", 1, p));
	joined = it_sql_long(db, "SELECT count(*) FROM nchat_call_participants p JOIN nchat_calls c"
			     " ON c.id = p.call_id WHERE p.status = 'joined' AND c.status IN ('ringing', 'active')",
			     0, NULL);
	starting = it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE status = 'starting'", 0, NULL);
	m = scrape(&srv);
	ck_assert_double_eq(metric(m, "nchat_active_call_participants "), (double)joined);
	ck_assert_int_ge(joined, 2);
	ck_assert_double_eq(metric(m, "nchat_recordings_starting "), (double)starting);
	ck_assert_double_ge(metric(m, "nchat_recordings_starting_oldest_seconds "), 1199);
	ck_assert_double_eq(metric(m, "nchat_postgres_up "), 1);
	ck_assert_double_eq(metric(m, "nchat_redis_up "), 1);
	free(m);
	/* leave nothing stuck for the other suites */
	free(it_sql(db, "UPDATE nchat_call_recordings SET status = 'failed', error = 'test' WHERE call_id = $1", 1, p));
	free(it_sql(db, "UPDATE nchat_calls SET status = 'ended', ended_at = now() WHERE id = $1", 1, p));
	free(it_sql(db, "UPDATE nchat_call_participants SET status = 'left', left_at = now() WHERE call_id = $1", 1, p));
	free(call); free(a); free(b);
	PQfinish(db);
}
END_TEST

START_TEST(sweep_runs_are_seen_by_every_instance)
{
	char cmd[1024];
	double before = (double)time(NULL) - 1, v;
	char *m;

	/* sweep-data from "cron": another process */
	snprintf(cmd, sizeof(cmd), "'%s' sweep-data >/dev/null 2>&1", it_env("NC_BIN"));
	ck_assert_int_eq(system(cmd), 0);
	m = scrape(&srv);
	v = metric(m, "nchat_sweep_last_success_timestamp_seconds{sweep=\"data\"}");
	ck_assert_double_ge(v, before);
	ck_assert_double_le(v, (double)time(NULL) + 1);
	/* the serving instance's own sweep-calls timer (CALL_SWEEP_INTERVAL_SECONDS=1) */
	free(m);
	for (int i = 0; i < 50; i++) {
		m = scrape(&srv);
		v = metric(m, "nchat_sweep_last_success_timestamp_seconds{sweep=\"calls\"}");
		free(m);
		if (v >= before)
			break;
		usleep(100 * 1000);
	}
	ck_assert_double_ge(v, before);
}
END_TEST

START_TEST(redis_down_shows_in_redis_up)
{
	ck_assert_double_eq(scrape_one("nchat_redis_up "), 1);
	ck_assert_int_eq(services("redis-stop"), 0);
	ck_assert_double_eq(scrape_one("nchat_redis_up "), 0);
	ck_assert_double_eq(scrape_one("nchat_postgres_up "), 1);
	ck_assert_int_eq(services("redis-start"), 0);
	for (int i = 0; i < 100 && scrape_one("nchat_redis_up ") != 1; i++)
		usleep(100 * 1000);
	ck_assert_double_eq(scrape_one("nchat_redis_up "), 1);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET", "LK_STANDIN_URL",
			      "NC_RUN_DIR", "NC_ROOT", NULL};
	const char *env[] = {"CALL_SWEEP_INTERVAL_SECONDS=1", NULL};
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, requests_by_route_class);
	tcase_add_test(tc, livekit_unreachable_is_counted_as_unavailable);
	tcase_add_test(tc, webhook_lag_is_observed);
	tcase_add_test(tc, database_gauges_at_scrape_time);
	tcase_add_test(tc, sweep_runs_are_seen_by_every_instance);
	tcase_add_test(tc, redis_down_shows_in_redis_up);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&srv) != 0)
		failed++;
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
