/*
 * Integration tests of outgoing webhooks: rows written with the service's
 * own outbox_enqueue are delivered by the running server to a receiver in
 * this process, signed (checked here with an independent HMAC), retried
 * after failures, dead-lettered after the last attempt, and replayed by an
 * admin.
 */
#include "harness.h"
#include "core/uuid.h"
#include "core/config.h"
#include "store/db.h"
#include "realtime/events.h"

#include <check.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET "outbox-test-secret"

struct delivery {
	char sig[128];
	char event[64];
	char id[64];
	char body[2048];
};

static struct {
	pthread_mutex_t mu;
	int port;
	int fail_next;        /* answer 500 to this many requests */
	bool always_fail;
	int n;
	struct delivery got[64];
	struct event_base *base;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct it_server srv;

static void on_rx(struct evhttp_request *req, void *arg)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	int status = 200;

	(void)arg;
	pthread_mutex_lock(&rx.mu);
	if (rx.always_fail || rx.fail_next > 0) {
		status = 500;
		if (rx.fail_next > 0)
			rx.fail_next--;
	} else if (rx.n < 64) {
		struct delivery *d = &rx.got[rx.n++];
		const char *v;
		size_t len = evbuffer_get_length(in);

		if ((v = evhttp_find_header(h, "X-Nchat-Signature")) != NULL)
			snprintf(d->sig, sizeof(d->sig), "%s", v);
		if ((v = evhttp_find_header(h, "X-Nchat-Event")) != NULL)
			snprintf(d->event, sizeof(d->event), "%s", v);
		if ((v = evhttp_find_header(h, "X-Nchat-Delivery")) != NULL)
			snprintf(d->id, sizeof(d->id), "%s", v);
		if (len >= sizeof(d->body))
			len = sizeof(d->body) - 1;
		evbuffer_remove(in, d->body, len);
		d->body[len] = '\0';
	}
	pthread_mutex_unlock(&rx.mu);
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Oops", NULL);
}

static void *rx_thread(void *arg)
{
	(void)arg;
	event_base_dispatch(rx.base);
	return NULL;
}

static void rx_start(void)
{
	struct evhttp *http;
	pthread_t t;

	rx.base = event_base_new();
	http = evhttp_new(rx.base);
	rx.port = it_free_port();
	if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)rx.port) != 0)
		abort();
	evhttp_set_gencb(http, on_rx, NULL);
	pthread_create(&t, NULL, rx_thread, NULL);
	pthread_detach(t);
}

/* Enqueue through the service's own code, as the service role. */
static void enqueue(const char *event, const char *marker)
{
	struct nc_config cfg;
	struct db_conn db;
	struct nc_error err = {0};
	char url[64];
	json_t *payload = json_pack("{s:s}", "marker", marker);

	memset(&cfg, 0, sizeof(cfg));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", rx.port);
	cfg.outbound_webhook_urls = url;
	db_init(&db, it_env("DATABASE_URL"), 5000);
	ck_assert_int_eq(db_begin_service(&db, &err), NC_OK);
	ck_assert_int_eq(outbox_enqueue(&db, &cfg, event, payload, &err), NC_OK);
	ck_assert_int_eq(db_commit(&db, &err), NC_OK);
	db_cleanup(&db);
	json_decref(payload);
}

/* Wait until a delivery whose body contains marker arrives; its index or -1. */
static int wait_delivery(const char *marker, int timeout_s)
{
	for (int t = 0; t < timeout_s * 10; t++) {
		pthread_mutex_lock(&rx.mu);
		for (int i = 0; i < rx.n; i++) {
			if (strstr(rx.got[i].body, marker) != NULL) {
				pthread_mutex_unlock(&rx.mu);
				return i;
			}
		}
		pthread_mutex_unlock(&rx.mu);
		usleep(100 * 1000);
	}
	return -1;
}

static char *row_field(const char *marker, const char *col)
{
	PGconn *db = it_db();
	const char *p[] = {marker};
	char sql[256], *v;

	snprintf(sql, sizeof(sql),
		 "SELECT %s::text FROM nchat_rtc_outbound_webhooks WHERE payload->>'marker' = $1", col);
	v = it_sql(db, sql, 1, p);
	PQfinish(db);
	return v;
}

START_TEST(delivered_and_signed)
{
	char marker[40];
	int i;
	long t;
	char v1[80], mac_hex[65], *body, *status;
	unsigned char mac[32];
	unsigned int maclen;
	json_t *j;

	uuid_v4(marker);
	enqueue("call.ended", marker);
	i = wait_delivery(marker, 10);
	ck_assert_int_ge(i, 0);
	ck_assert_str_eq(rx.got[i].event, "call.ended");
	ck_assert_int_eq(sscanf(rx.got[i].sig, "t=%ld,v1=%64s", &t, v1), 2);
	ck_assert_int_le(labs((long)time(NULL) - t), 30);
	body = malloc(strlen(rx.got[i].body) + 32);
	sprintf(body, "%ld.%s", t, rx.got[i].body);
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)body, strlen(body), mac, &maclen);
	for (unsigned k = 0; k < maclen; k++)
		sprintf(mac_hex + 2 * k, "%02x", mac[k]);
	ck_assert_str_eq(v1, mac_hex);
	free(body);
	j = json_loads(rx.got[i].body, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(j, "event")), "call.ended");
	ck_assert_str_eq(json_string_value(json_object_get(j, "id")), rx.got[i].id);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "data"), "marker")), marker);
	json_decref(j);
	for (int k = 0; k < 30; k++) { /* the row is marked after the reply */
		status = row_field(marker, "status");
		if (strcmp(status, "delivered") == 0)
			break;
		free(status);
		status = NULL;
		usleep(100 * 1000);
	}
	ck_assert_ptr_nonnull(status);
	free(status);
}
END_TEST

START_TEST(retried_then_delivered)
{
	char marker[40], *att;

	uuid_v4(marker);
	pthread_mutex_lock(&rx.mu);
	rx.fail_next = 2;
	pthread_mutex_unlock(&rx.mu);
	enqueue("recording.ready", marker);
	ck_assert_int_ge(wait_delivery(marker, 20), 0);
	usleep(500 * 1000);
	att = row_field(marker, "attempts");
	ck_assert_str_eq(att, "3");
	free(att);
}
END_TEST

START_TEST(dead_letter_and_replay)
{
	char marker[40], *status, *id, path[128];
	char *admin = it_user_token("0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b", "admin", 600);
	char *user = it_user_token("0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b", "user", 600);
	struct it_resp r;
	bool listed = false;
	size_t k;
	json_t *item;

	uuid_v4(marker);
	pthread_mutex_lock(&rx.mu);
	rx.always_fail = true;
	pthread_mutex_unlock(&rx.mu);
	enqueue("stream.ended", marker);
	for (int t = 0; t < 100; t++) {
		status = row_field(marker, "status");
		if (strcmp(status, "dead") == 0)
			break;
		free(status);
		status = NULL;
		usleep(200 * 1000);
	}
	ck_assert_ptr_nonnull(status);
	free(status);
	ck_assert_int_eq(wait_delivery(marker, 1), -1);
	/* admins see it; users may not */
	ck_assert_int_eq(it_req(&srv, "GET", "/api/admin/outbound-webhooks?status=dead", user, NULL, &r), 0);
	ck_assert_int_eq(r.status, 403);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/admin/outbound-webhooks?status=dead", admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	json_array_foreach(json_object_get(r.json, "items"), k, item)
		if (strcmp(json_string_value(json_object_get(json_object_get(item, "payload"), "marker")), marker) == 0)
			listed = true;
	ck_assert(listed);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/admin/outbound-webhooks?status=bogus", admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	it_resp_free(&r);
	/* fix the receiver and replay */
	pthread_mutex_lock(&rx.mu);
	rx.always_fail = false;
	pthread_mutex_unlock(&rx.mu);
	id = row_field(marker, "id");
	snprintf(path, sizeof(path), "/api/admin/outbound-webhooks/%s/replay", id);
	ck_assert_int_eq(it_req(&srv, "POST", path, admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "pending");
	it_resp_free(&r);
	ck_assert_int_ge(wait_delivery(marker, 10), 0);
	snprintf(path, sizeof(path), "/api/admin/outbound-webhooks/%s/replay",
		 "0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b");
	ck_assert_int_eq(it_req(&srv, "POST", path, admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	/* the route table's prologue: a non-UUID id is 400, a user is 403 before any lookup */
	ck_assert_int_eq(it_req(&srv, "POST", "/api/admin/outbound-webhooks/not-a-uuid/replay", admin,
				NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
			 "bad_request");
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/admin/outbound-webhooks/%s/replay", id);
	ck_assert_int_eq(it_req(&srv, "POST", path, user, NULL, &r), 0);
	ck_assert_int_eq(r.status, 403);
	it_resp_free(&r);
	free(id);
	free(admin);
	free(user);
}
END_TEST

/* Index of a delivery of event whose body mentions needle, waiting up to timeout_s. */
static int wait_event(const char *event, const char *needle, int timeout_s)
{
	for (int t = 0; t < timeout_s * 10; t++) {
		pthread_mutex_lock(&rx.mu);
		for (int i = 0; i < rx.n; i++) {
			if (strcmp(rx.got[i].event, event) == 0 && strstr(rx.got[i].body, needle)) {
				pthread_mutex_unlock(&rx.mu);
				return i;
			}
		}
		pthread_mutex_unlock(&rx.mu);
		usleep(100 * 1000);
	}
	return -1;
}

START_TEST(call_lifecycle_reaches_the_backend)
{
	PGconn *db = it_db();
	char *a = it_new_user(db, "Caller"), *b = it_new_user(db, "Callee");
	char *ta = it_user_token(a, NULL, 600), *tb = it_user_token(b, NULL, 600);
	char body[128], path[128], call1[40], call2[40];
	struct it_resp r;

	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", b);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	snprintf(call1, sizeof(call1), "%s", json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/end", call1);
	ck_assert_int_eq(it_req(&srv, "POST", path, ta, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_ge(wait_event("call.started", call1, 10), 0);
	ck_assert_int_ge(wait_event("call.ended", call1, 10), 0);

	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", ta, body, &r), 0);
	ck_assert_int_eq(r.status, 201);
	snprintf(call2, sizeof(call2), "%s", json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/decline", call2);
	ck_assert_int_eq(it_req(&srv, "POST", path, tb, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_ge(wait_event("call.declined", call2, 10), 0);
	/* exactly one call.ended row for the first call, even after a second end */
	snprintf(path, sizeof(path), "/api/calls/%s/end", call1);
	ck_assert_int_eq(it_req(&srv, "POST", path, ta, NULL, &r), 0);
	it_resp_free(&r);
	{
		const char *p[] = {call1};
		ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_rtc_outbound_webhooks"
					     " WHERE event = 'call.ended' AND payload->>'callId' = $1", 1, p), 1);
	}
	free(a); free(b); free(ta); free(tb);
	PQfinish(db);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			      "DATABASE_MIGRATE_URL", "LK_STANDIN_URL", NULL};
	char urls[96];
	const char *env[] = {"OUTBOUND_WEBHOOK_SECRET=" SECRET, "OUTBOUND_WEBHOOK_INTERVAL_SECONDS=1",
			     "OUTBOUND_WEBHOOK_BACKOFF_SECONDS=1", "OUTBOUND_WEBHOOK_MAX_ATTEMPTS=3",
			     urls, NULL};
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("delivery");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rx_start();
	snprintf(urls, sizeof(urls), "OUTBOUND_WEBHOOK_URLS=http://127.0.0.1:%d/hook", rx.port);
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, delivered_and_signed);
	tcase_add_test(tc, retried_then_delivered);
	tcase_add_test(tc, dead_letter_and_replay);
	tcase_add_test(tc, call_lifecycle_reaches_the_backend);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK); /* the receiver thread lives in this process */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&srv) != 0)
		failed++;
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
