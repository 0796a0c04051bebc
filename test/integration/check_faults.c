/*
 * check_faults.c - the service survives its dependencies failing (issue 9
 * item 6), against real Postgres and Redis that the test stops and starts
 * (scripts/services.sh pg-stop/pg-start/redis-stop/redis-start on the
 * services of NC_RUN_DIR) and the LiveKit stand-in's fault modes.
 *
 * Proves: a Postgres restart under traffic gives clean 503s with the error
 * shape (no 500, nothing hangs past the connect/statement timeouts) and
 * full service afterwards without restarting nchat-rtc; with Redis down
 * calls still start and join, /readyz says 503, and after Redis is back
 * readiness and the SSE hub recover; LiveKit down, slow or failing gives
 * 502/503 within a bounded time and no half-written call or recording
 * rows; a webhook that could not be stored is answered non-2xx, so LiveKit
 * retries it, and the retry is applied exactly once.
 *
 * Each test restores every service in its teardown, even when it fails.
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct it_server srv;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* scripts/services.sh CMD on the test's services; 0 on success. */
static int services(const char *cmd)
{
	char line[2048];

	snprintf(line, sizeof(line), "RUN_DIR='%s' timeout 90 bash '%s/scripts/services.sh' %s"
		 " >>'%s/faults-services.log' 2>&1", it_env("NC_RUN_DIR"), it_env("NC_ROOT"), cmd,
		 it_env("NC_RUN_DIR"));
	return system(line) == 0 ? 0 : -1;
}

/* Poll GET path on srv until it answers want (bounded); seconds it took or -1. */
static double wait_status(const char *path, long want, double secs)
{
	double start = now_s();

	while (now_s() < start + secs) {
		struct it_resp r;

		if (it_req(&srv, "GET", path, NULL, NULL, &r) == 0 && r.status == want) {
			it_resp_free(&r);
			return now_s() - start;
		}
		it_resp_free(&r);
		usleep(100 * 1000);
	}
	return -1;
}

static long owner_count(const char *sql, const char *p1)
{
	PGconn *db = it_db();
	const char *p[1] = { p1 };
	long n = it_sql_long(db, sql, p1 ? 1 : 0, p);

	PQfinish(db);
	return n;
}

/* An API error body: {"error":{"code":"...","message":"..."}}. */
static bool error_shape(const struct it_resp *r)
{
	json_t *e = json_object_get(r->json, "error");

	return json_is_string(json_object_get(e, "code")) &&
	       json_string_length(json_object_get(e, "code")) > 0 &&
	       json_is_string(json_object_get(e, "message"));
}

struct pair {
	char *caller, *callee, *tok_caller, *tok_callee;
};

static struct pair new_pair(void)
{
	PGconn *db = it_db();
	struct pair p;

	p.caller = it_new_user(db, "caller");
	p.callee = it_new_user(db, "callee");
	p.tok_caller = it_user_token(p.caller, NULL, 3600);
	p.tok_callee = it_user_token(p.callee, NULL, 3600);
	PQfinish(db);
	return p;
}

static void pair_free(struct pair *p)
{
	free(p->caller);
	free(p->callee);
	free(p->tok_caller);
	free(p->tok_callee);
}

/* initiate caller -> callee on srv; the response (caller frees). */
static long initiate(const struct pair *p, const char *type, struct it_resp *r, double *secs)
{
	char body[160];
	double t0 = now_s();

	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"%s\"}", p->callee, type);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", p->tok_caller, body, r), 0);
	if (secs)
		*secs = now_s() - t0;
	return r->status;
}

/* A call caller -> callee that the callee joined; its id. */
static char *joined_call(const struct pair *p)
{
	struct it_resp r;
	char path[128], *id;

	ck_assert_msg(initiate(p, "video", &r, NULL) == 201, "initiate: %ld %s", r.status, r.body);
	id = strdup(json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/join", id);
	ck_assert_int_eq(it_req(&srv, "POST", path, p->tok_callee, "{}", &r), 0);
	ck_assert_msg(r.status == 200, "join: %ld %s", r.status, r.body);
	it_resp_free(&r);
	return id;
}

/* ------------------------------------------------- Postgres restarted */

#define N_PG_CLIENTS 6
#define MAX_PG_RES 400

struct pg_res {
	int kind;           /* 0 initiate, 1 history */
	int transport_ok;
	long status;
	double secs;
	double t_start;
	bool shaped;        /* error body has the API error shape */
	char code[32];
};

struct pg_client {
	struct pair p;
	struct pg_res res[MAX_PG_RES];
	int n;
	int created;        /* 201s */
};

static atomic_int pg_stop_flag;

static void *pg_client_main(void *arg)
{
	struct pg_client *c = arg;

	while (!atomic_load(&pg_stop_flag) && c->n < MAX_PG_RES) {
		struct pg_res *x = &c->res[c->n];
		struct it_resp r;
		char body[160];
		double t0 = now_s();
		int rc;

		x->kind = c->n % 2;
		x->t_start = t0;
		if (x->kind == 0) {
			snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}",
				 c->p.callee);
			rc = it_req(&srv, "POST", "/api/calls/initiate", c->p.tok_caller, body, &r);
		} else {
			rc = it_req(&srv, "GET", "/api/calls?limit=5", c->p.tok_caller, NULL, &r);
		}
		x->secs = now_s() - t0;
		x->transport_ok = rc == 0;
		x->status = rc == 0 ? r.status : 0;
		x->shaped = rc == 0 && error_shape(&r);
		if (rc == 0 && x->shaped)
			snprintf(x->code, sizeof(x->code), "%s", it_err_code(&r));
		if (rc == 0 && x->kind == 0 && r.status == 201)
			c->created++;
		it_resp_free(&r);
		c->n++;
		usleep(50 * 1000);
	}
	return NULL;
}

START_TEST(postgres_restart_gives_clean_503s)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", "DB_STATEMENT_TIMEOUT_MS=2000",
				     NULL };
	static struct pg_client cl[N_PG_CLIENTS];
	pthread_t th[N_PG_CLIENTS];
	int n503 = 0, n_ok_after = 0, bad = 0, late503 = 0;
	double worst = 0, back, t_ready;

	ck_assert_int_eq(it_server_start(&srv, env), 0);
	for (int i = 0; i < N_PG_CLIENTS; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].p = new_pair();
	}
	atomic_store(&pg_stop_flag, 0);
	for (int i = 0; i < N_PG_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, pg_client_main, &cl[i]), 0);
	sleep(1);
	ck_assert_int_eq(services("pg-stop"), 0);
	sleep(3); /* requests flow into the outage */
	ck_assert_int_eq(services("pg-start"), 0);
	back = wait_status("/readyz", 200, 20);
	t_ready = now_s();
	sleep(1); /* and flow on after it */
	atomic_store(&pg_stop_flag, 1);
	for (int i = 0; i < N_PG_CLIENTS; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(back >= 0, "readyz not 200 within 20 s of Postgres being back");

	for (int i = 0; i < N_PG_CLIENTS; i++) {
		for (int k = 0; k < cl[i].n; k++) {
			struct pg_res *x = &cl[i].res[k];
			bool good = x->transport_ok &&
				    (x->status == 200 || x->status == 201 ||
				     (x->status == 503 && x->shaped && strcmp(x->code, "unavailable") == 0));

			if (x->secs > worst)
				worst = x->secs;
			if (x->status == 503)
				n503++;
			/*
			 * Ready means ready: half a second after /readyz said 200 (a
			 * worker that just failed to connect waits 250 ms before it
			 * tries again) nothing fails any more.
			 */
			if (x->status != 200 && x->status != 201 && back >= 0 &&
			    x->t_start > t_ready + 0.5) {
				fprintf(stderr, "client %d request %d: HTTP %ld %.2f s after ready\n", i, k,
					x->status, x->t_start - t_ready);
				late503++;
			}
			if (!good) {
				fprintf(stderr, "client %d request %d (%s): transport %s, HTTP %ld, code '%s',"
					" %.2f s\n", i, k, x->kind ? "history" : "initiate",
					x->transport_ok ? "ok" : "FAILED", x->status, x->code, x->secs);
				bad++;
			}
		}
		/* the last requests, after the restart, succeeded */
		if (cl[i].n > 0 && cl[i].res[cl[i].n - 1].status / 100 == 2)
			n_ok_after++;
	}
	printf("postgres restart: %d x 503 during the outage, slowest request %.2f s, ready again"
	       " after %.2f s\n", n503, worst, back);
	ck_assert_msg(bad == 0, "%d requests were not 2xx or a clean 503 (see above)", bad);
	ck_assert_msg(n503 > 0, "no request saw the outage");
	ck_assert_msg(late503 == 0, "%d requests failed after the service was ready again", late503);
	/* connect timeout 3 s, statement timeout 2 s: nothing waits much longer */
	ck_assert_msg(worst < 7.0, "a request took %.1f s during the outage", worst);
	ck_assert_msg(n_ok_after == N_PG_CLIENTS, "only %d clients were served after the restart",
		      n_ok_after);
	/* no half-written calls: each caller has exactly its 201s */
	for (int i = 0; i < N_PG_CLIENTS; i++) {
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_calls WHERE initiator_id = $1",
					     cl[i].p.caller), cl[i].created);
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_calls c WHERE initiator_id = $1"
					     " AND NOT EXISTS (SELECT 1 FROM nchat_call_participants p"
					     " WHERE p.call_id = c.id)", cl[i].p.caller), 0);
	}
	/* full service without a restart of nchat-rtc */
	{
		struct it_resp r;
		char *id;

		ck_assert_int_eq(initiate(&cl[0].p, "video", &r, NULL), 201);
		id = strdup(json_string_value(json_object_get(r.json, "callId")));
		it_resp_free(&r);
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_calls WHERE id = $1", id), 1);
		free(id);
	}
	/*
	 * A restart while nobody asks: every worker holds a dead connection
	 * and must notice and reconnect on its next request, not fail it.
	 */
	ck_assert_int_eq(services("pg-restart"), 0);
	for (int i = 0; i < 12; i++) {
		struct it_resp r;

		ck_assert_int_eq(it_req(&srv, "GET", "/api/calls?limit=1", cl[i % N_PG_CLIENTS].p.tok_caller,
					NULL, &r), 0);
		ck_assert_msg(r.status == 200, "request %d after a quiet restart: %ld %s", i, r.status,
			      r.body);
		it_resp_free(&r);
	}
	for (int i = 0; i < N_PG_CLIENTS; i++)
		pair_free(&cl[i].p);
	ck_assert_int_eq(it_server_stop(&srv), 0);
}
END_TEST

/* ------------------------------------------------------- Redis stopped */

struct sse_client {
	char url[1024];
	char *buf;
	size_t n;
	const char *needle;
	atomic_int connected, found;
	pthread_mutex_t mu;
};

static size_t sse_cb(char *d, size_t sz, size_t nm, void *arg)
{
	struct sse_client *c = arg;
	size_t add = sz * nm;
	char *q;

	pthread_mutex_lock(&c->mu);
	q = realloc(c->buf, c->n + add + 1);
	if (q == NULL) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	c->buf = q;
	memcpy(c->buf + c->n, d, add);
	c->n += add;
	c->buf[c->n] = '\0';
	if (strstr(c->buf, ":ok") != NULL)
		atomic_store(&c->connected, 1);
	if (strstr(c->buf, c->needle) != NULL)
		atomic_store(&c->found, 1);
	pthread_mutex_unlock(&c->mu);
	return atomic_load(&c->found) ? 0 : add; /* seen it: end the stream */
}

static void *sse_main(void *arg)
{
	struct sse_client *c = arg;
	CURL *h = curl_easy_init();

	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 25000L);
	curl_easy_perform(h);
	curl_easy_cleanup(h);
	return NULL;
}

START_TEST(redis_down_degrades_then_recovers)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	struct pair p = new_pair(), q = new_pair();
	struct it_resp r;
	char *id, path[160];
	struct sse_client sc;
	pthread_t th;
	double t0;

	ck_assert_int_eq(it_server_start(&srv, env), 0);
	ck_assert_int_eq(services("redis-stop"), 0);

	/* calls start and join without Redis */
	id = joined_call(&p);
	snprintf(path, sizeof(path), "/api/calls/%s", id);
	ck_assert_int_eq(it_req(&srv, "GET", path, p.tok_caller, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_call_participants WHERE call_id = $1"
				     " AND status = 'joined'", id), 2);
	free(id);
	/* but the instance is not ready */
	ck_assert_int_eq(it_req(&srv, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "redis")), "down");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "postgres")), "ok");
	it_resp_free(&r);

	ck_assert_int_eq(services("redis-start"), 0);
	ck_assert_msg(wait_status("/readyz", 200, 15) >= 0, "readyz not 200 within 15 s of Redis");

	/* The SSE hub is back on Redis: an invite published now reaches q's stream. */
	memset(&sc, 0, sizeof(sc));
	pthread_mutex_init(&sc.mu, NULL);
	sc.needle = "call.invite";
	snprintf(sc.url, sizeof(sc.url), "%s/api/events?access_token=%s", srv.base, q.tok_callee);
	ck_assert_int_eq(pthread_create(&th, NULL, sse_main, &sc), 0);
	t0 = now_s();
	while (!atomic_load(&sc.connected) && now_s() < t0 + 5)
		usleep(20 * 1000);
	ck_assert_msg(atomic_load(&sc.connected), "the event stream did not open");
	/* one invite every 2 s until one arrives (the hub re-subscribes within its retry delay) */
	while (!atomic_load(&sc.found) && now_s() < t0 + 15) {
		ck_assert_int_eq(initiate(&q, "audio", &r, NULL), 201);
		it_resp_free(&r);
		for (int i = 0; i < 20 && !atomic_load(&sc.found); i++)
			usleep(100 * 1000);
	}
	pthread_join(th, NULL);
	printf("redis: invite seen on the event stream %.2f s after it opened\n", now_s() - t0);
	ck_assert_msg(atomic_load(&sc.found), "no call.invite on the event stream after Redis came back:"
		      " %s", sc.buf ? sc.buf : "");
	free(sc.buf);
	pthread_mutex_destroy(&sc.mu);
	pair_free(&p);
	pair_free(&q);
	ck_assert_int_eq(it_server_stop(&srv), 0);
}
END_TEST

/* ---------------------------------------------------- LiveKit failing */

static void lk_fault(const char *method, const char *mode, int delay_ms)
{
	json_t *f = json_pack("{s:s, s:s, s:i}", "method", method, "mode", mode, "count", -1);

	if (delay_ms > 0)
		json_object_set_new(f, "delayMs", json_integer(delay_ms));
	if (strcmp(mode, "error") == 0) {
		json_object_set_new(f, "code", json_string("internal"));
		json_object_set_new(f, "status", json_integer(500));
		json_object_set_new(f, "msg", json_string("injected"));
	}
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	json_decref(it_standin("POST", "/_test/fault", f));
	json_decref(f);
}

START_TEST(livekit_failing_is_bounded_and_clean)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", "LIVEKIT_TIMEOUT_MS=800", NULL };
	static const char *modes[] = { "unavailable", "slow", "error", "drop", NULL };
	struct pair p = new_pair();
	struct it_resp r;
	char *id, path[160];
	double secs;

	ck_assert_int_eq(it_server_start(&srv, env), 0);
	for (int i = 0; modes[i] != NULL; i++) {
		lk_fault("CreateRoom", modes[i], 3000);
		initiate(&p, "video", &r, &secs);
		ck_assert_msg(r.status == 502 || r.status == 503, "%s: HTTP %ld %s", modes[i], r.status,
			      r.body);
		ck_assert_msg(error_shape(&r) && strcmp(it_err_code(&r), "livekit_unavailable") == 0,
			      "%s: %s", modes[i], r.body);
		ck_assert_msg(secs < 4.0, "%s: initiate took %.1f s", modes[i], secs);
		it_resp_free(&r);
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_calls WHERE initiator_id = $1",
					     p.caller), 0);
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_call_participants WHERE"
					     " user_id = $1", p.callee), 0);
	}
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));

	/* Recordings: LiveKit's egress failing leaves no recording "starting". */
	id = joined_call(&p);
	snprintf(path, sizeof(path), "/api/calls/%s/recording/start", id);
	for (int i = 0; modes[i] != NULL; i++) {
		double t0;

		lk_fault("StartRoomCompositeEgress", modes[i], 3000);
		t0 = now_s();
		ck_assert_int_eq(it_req(&srv, "POST", path, p.tok_caller, "{}", &r), 0);
		secs = now_s() - t0;
		ck_assert_msg(r.status == 502 || r.status == 503, "%s: HTTP %ld %s", modes[i], r.status,
			      r.body);
		ck_assert_msg(error_shape(&r), "%s: %s", modes[i], r.body);
		ck_assert_msg(secs < 4.0, "%s: recording start took %.1f s", modes[i], secs);
		it_resp_free(&r);
		ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					     " AND status IN ('starting', 'active', 'ending')", id), 0);
	}
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	/* nothing left behind blocks the next start */
	ck_assert_int_eq(it_req(&srv, "POST", path, p.tok_caller, "{}", &r), 0);
	ck_assert_msg(r.status == 201, "recording start after LiveKit is back: %ld %s", r.status, r.body);
	it_resp_free(&r);
	ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
				     " AND status = 'starting'", id), 1);
	free(id);
	/* and calls start again */
	ck_assert_int_eq(initiate(&p, "audio", &r, NULL), 201);
	it_resp_free(&r);
	pair_free(&p);
	ck_assert_int_eq(it_server_stop(&srv), 0);
}
END_TEST

/* ------------------------------------------ a webhook that was not stored */

START_TEST(unstored_webhook_is_retried_and_applied_once)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	struct pair p = new_pair();
	char *id, *ev, hdr[4096], url[256], evid[96];
	const char *hdrs[3] = { hdr, "Content-Type: application/webhook+json", NULL };
	json_t *req, *signed_ev;
	struct it_resp r;
	long t = (long)time(NULL);
	double t0;

	ck_assert_int_eq(it_server_start(&srv, env), 0);
	id = joined_call(&p);
	snprintf(evid, sizeof(evid), "EV_fault_%s", id);
	ck_assert(asprintf(&ev, "{\"event\":\"participant_left\",\"id\":\"%s\",\"createdAt\":\"%ld\","
			   "\"room\":{\"name\":\"call-%s\"},\"participant\":{\"sid\":\"PA_x\","
			   "\"identity\":\"%s\",\"state\":\"DISCONNECTED\",\"joinedAt\":\"%ld\"}}",
			   evid, t + 5, id, p.callee, t) > 0);
	req = json_pack("{s:o}", "event", json_loads(ev, 0, NULL));
	signed_ev = it_standin("POST", "/_test/sign-webhook", req);
	json_decref(req);
	ck_assert_ptr_nonnull(signed_ev);
	snprintf(hdr, sizeof(hdr), "Authorization: %s",
		 json_string_value(json_object_get(signed_ev, "authorization")));
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", srv.base);

	ck_assert_int_eq(services("pg-stop"), 0);
	t0 = now_s();
	ck_assert_int_eq(it_http("POST", url, NULL, json_string_value(json_object_get(signed_ev, "body")),
				 hdrs, &r), 0);
	ck_assert_msg(r.status == 503, "webhook with Postgres down: %ld %s", r.status, r.body);
	ck_assert(error_shape(&r));
	ck_assert_msg(now_s() - t0 < 7, "took %.1f s", now_s() - t0);
	it_resp_free(&r);
	ck_assert_int_eq(services("pg-start"), 0);
	ck_assert_msg(wait_status("/readyz", 200, 20) >= 0, "not ready after Postgres came back");
	/*
	 * LiveKit retries after a back-off of seconds; a worker whose connect
	 * failed in the outage waits 250 ms (db.c RETRY_MS) before it tries
	 * again, so give every worker that long.
	 */
	usleep(500 * 1000);

	/* LiveKit's retry: applied, stored once */
	ck_assert_int_eq(it_http("POST", url, NULL, json_string_value(json_object_get(signed_ev, "body")),
				 hdrs, &r), 0);
	ck_assert_msg(r.status == 200, "retry: %ld %s", r.status, r.body);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "applied");
	it_resp_free(&r);
	ck_assert_int_eq(it_http("POST", url, NULL, json_string_value(json_object_get(signed_ev, "body")),
				 hdrs, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "duplicate");
	it_resp_free(&r);
	ck_assert_int_eq(owner_count("SELECT count(*) FROM nchat_livekit_webhook_events WHERE"
				     " event_id = $1", evid), 1);
	{
		PGconn *db = it_db();
		const char *prm[2] = { id, p.callee };
		char *st = it_sql(db, "SELECT status FROM nchat_call_participants WHERE call_id = $1"
				  " AND user_id = $2", 2, prm);

		ck_assert_str_eq(st, "left");
		free(st);
		PQfinish(db);
	}
	json_decref(signed_ev);
	free(ev);
	free(id);
	pair_free(&p);
	ck_assert_int_eq(it_server_stop(&srv), 0);
}
END_TEST

static void setup(void)
{
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
}

/* After every test, also a failed one: services back, no instance left, no fault. */
static void teardown(void)
{
	it_server_kill(&srv);
	if (services("pg-start") != 0)
		fprintf(stderr, "teardown: pg-start failed\n");
	if (services("redis-start") != 0)
		fprintf(stderr, "teardown: redis-start failed\n");
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
}

int main(void)
{
	static const char *need[] = { "NC_BIN", "NC_RUN_DIR", "NC_ROOT", "DATABASE_URL",
				      "DATABASE_MIGRATE_URL", "REDIS_URL", "LK_STANDIN_URL", "LIVEKIT_URL",
				      "AUTH_JWT_SECRET", NULL };
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_ALL);
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, postgres_restart_gives_clean_503s);
	tcase_add_test(tc, redis_down_degrades_then_recovers);
	tcase_add_test(tc, livekit_failing_is_bounded_and_clean);
	tcase_add_test(tc, unstored_webhook_is_retried_and_applied_once);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
