/*
 * Integration tests of the audit trail (GET /api/audit), the metrics
 * endpoint and JSON log lines: privileged actions done through the API show
 * up in the audit list with who/what/target, filters and keyset pages work,
 * only admins may read it; /metrics counts what happened; LOG_FORMAT=json
 * writes one parseable object per line with the request id.
 */
#include "harness.h"
#include "core/common.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct it_server srv;

/* Start and end a call as user a (inviting b); returns the call id (malloc'd). */
static char *call_and_end(const char *ta, const char *b)
{
	char body[128], path[96], *id;
	struct it_resp r;

	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"video\"}", b);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	id = strdup(json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/end", id);
	ck_assert_int_eq(it_req(&srv, "POST", path, ta, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	return id;
}

START_TEST(audit_lists_privileged_actions)
{
	PGconn *db = it_db();
	char *a = it_new_user(db, "Auditor A"), *b = it_new_user(db, "Auditor B");
	char *ta = it_user_token(a, NULL, 600), *admin = it_user_token(a, "user,admin", 600);
	char *c1 = call_and_end(ta, b), *c2 = call_and_end(ta, b), *c3 = call_and_end(ta, b);
	char path[256], *cursor;
	struct it_resp r;
	json_t *items;

	/* users may not read the trail */
	ck_assert_int_eq(it_req(&srv, "GET", "/api/audit", ta, NULL, &r), 0);
	ck_assert_int_eq(r.status, 403);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/audit", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	it_resp_free(&r);
	/* the admin sees the three ends, newest first, filtered by actor and action */
	snprintf(path, sizeof(path), "/api/audit?actor=%s&action=call.end&limit=2", a);
	ck_assert_int_eq(it_req(&srv, "GET", path, admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	items = json_object_get(r.json, "items");
	ck_assert_int_eq(json_array_size(items), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "targetId")), c3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "targetId")), c2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "actorId")), a);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "action")), "call.end");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "targetType")), "call");
	cursor = strdup(json_string_value(json_object_get(r.json, "nextCursor")));
	it_resp_free(&r);
	/* the next page continues after the cursor */
	snprintf(path, sizeof(path), "/api/audit?actor=%s&action=call.end&limit=2&before=%s", a, cursor);
	ck_assert_int_eq(it_req(&srv, "GET", path, admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	items = json_object_get(r.json, "items");
	ck_assert_int_eq(json_array_size(items), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "targetId")), c1);
	ck_assert(json_is_null(json_object_get(r.json, "nextCursor")));
	it_resp_free(&r);
	/* by target */
	snprintf(path, sizeof(path), "/api/audit?target=%s", c2);
	ck_assert_int_eq(it_req(&srv, "GET", path, admin, NULL, &r), 0);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "items")), 1);
	it_resp_free(&r);
	/* bad filters are 400 */
	ck_assert_int_eq(it_req(&srv, "GET", "/api/audit?actor=nope", admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/audit?limit=0", admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	it_resp_free(&r);
	free(cursor);
	free(c1); free(c2); free(c3);
	free(a); free(b); free(ta); free(admin);
	PQfinish(db);
}
END_TEST

/* Value of one exposition line "name{labels} value" (first match of prefix), or -1. */
static double metric(const char *text, const char *prefix)
{
	char needle[256];
	const char *p, *sp;

	/* at the start of a line, so "# TYPE name ..." lines do not match */
	snprintf(needle, sizeof(needle), "\n%s", prefix);
	p = strstr(text, needle);
	if (p == NULL)
		return -1;
	sp = strchr(p + 1 + strlen(prefix) - 1, ' ');
	return sp ? atof(sp + 1) : -1;
}

START_TEST(metrics_count_what_happened)
{
	struct it_resp r;
	double before, after;

	ck_assert_int_eq(it_metrics(&srv, &r), 0);
	ck_assert_int_eq(r.status, 200);
	before = metric(r.body, "nchat_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"}");
	it_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(it_req(&srv, "GET", "/readyz", NULL, NULL, &r), 0);
		it_resp_free(&r);
	}
	ck_assert_int_eq(it_req(&srv, "GET", "/nope", NULL, NULL, &r), 0);
	it_resp_free(&r);
	ck_assert_int_eq(it_metrics(&srv, &r), 0);
	after = metric(r.body, "nchat_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"}");
	ck_assert_msg(after - (before < 0 ? 0 : before) == 3, "readyz count went %g -> %g", before, after);
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE nchat_http_request_duration_seconds histogram"));
	ck_assert_ptr_nonnull(strstr(r.body, "nchat_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"));
	ck_assert_ptr_nonnull(strstr(r.body, "nchat_livekit_requests_total{method=\"CreateRoom\",outcome=\"ok\"}"));
	ck_assert_ptr_nonnull(strstr(r.body, "nchat_livekit_request_duration_seconds_bucket{method=\"DeleteRoom\",le=\"+Inf\"}"));
	ck_assert_int_ge(metric(r.body, "nchat_active_calls "), 0);
	ck_assert_int_ge(metric(r.body, "nchat_workers "), 1);
	ck_assert_int_ge(metric(r.body, "nchat_workers_busy "), 0);
	ck_assert_int_ge(metric(r.body, "nchat_db_errors_total "), 0);
	it_resp_free(&r);
}
END_TEST

START_TEST(json_log_lines)
{
	struct it_server s2;
	const char *env[] = {"LOG_FORMAT=json", "LOG_LEVEL=info", NULL};
	const char *h[] = {"X-Request-Id: json-log-test-1", NULL};
	struct it_resp r;
	char url[128], line[4096];
	FILE *f;
	bool found = false;
	int lines = 0;

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	snprintf(url, sizeof(url), "%s/readyz", s2.base);
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, h, &r), 0);
	it_resp_free(&r);
	ck_assert_int_eq(it_server_stop(&s2), 0);
	f = fopen(s2.log_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		json_t *o = json_loads(line, 0, NULL);

		ck_assert_msg(o != NULL, "not JSON: %s", line);
		lines++;
		if (json_string_value(json_object_get(o, "rid")) != NULL &&
		    strcmp(json_string_value(json_object_get(o, "rid")), "json-log-test-1") == 0 &&
		    json_integer_value(json_object_get(o, "status")) == 200) {
			ck_assert_str_eq(json_string_value(json_object_get(o, "route")), "/readyz");
			ck_assert(json_is_number(json_object_get(o, "ms")));
			found = true;
		}
		json_decref(o);
	}
	fclose(f);
	ck_assert_int_ge(lines, 3);
	ck_assert(found);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			      "DATABASE_MIGRATE_URL", "LK_STANDIN_URL", NULL};
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("operations");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (it_server_start(&srv, NULL) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, audit_lists_privileged_actions);
	tcase_add_test(tc, metrics_count_what_happened);
	tcase_add_test(tc, json_log_lines);
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
