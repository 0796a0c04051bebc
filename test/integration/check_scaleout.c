/*
 * check_scaleout.c - several instances of nchat-rtc on one Postgres and one
 * Redis behave as one service (issue 11 item 3).
 *
 * Proves: webhooks of one call spread over two instances, each also
 * delivered twice at once, end in exactly the rows of ordered delivery to
 * one instance; ring-timeout sweeps run by two CLI processes and two
 * servers' timers at once finish every call exactly once; an instance
 * stopped with SIGTERM under load answers everything it accepted, exits 0
 * within its drain time, leaves rows that match its answers, while the
 * other keeps serving; and the service works through pgbouncer in
 * transaction pooling mode (no session state).
 *
 * Every test starts the instances it needs and stops them at the end, so
 * the tests are independent; every wait is bounded.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static PGconn *db;
/* The instances of the running test; the teardown stops what a failed test left. */
static struct it_server so_a, so_b, so_p;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long sql_long1(const char *sql, const char *p1)
{
	const char *p[1] = { p1 };

	return it_sql_long(db, sql, p1 ? 1 : 0, p);
}

static char *sql_str2(const char *sql, const char *p1, const char *p2)
{
	const char *p[2] = { p1, p2 };

	return it_sql(db, sql, p2 ? 2 : 1, p);
}

/* ------------------------------------------------------------ webhooks */

struct signed_ev {
	char *body;
	char *auth;
};

static struct signed_ev sign_ev(const char *event_json)
{
	json_t *ev = json_loads(event_json, 0, NULL), *req, *res;
	struct signed_ev s;

	ck_assert_msg(ev != NULL, "bad literal %s", event_json);
	req = json_pack("{s:o}", "event", ev);
	res = it_standin("POST", "/_test/sign-webhook", req);
	json_decref(req);
	ck_assert_msg(res != NULL && json_is_string(json_object_get(res, "body")),
		      "sign-webhook failed");
	s.body = strdup(json_string_value(json_object_get(res, "body")));
	s.auth = strdup(json_string_value(json_object_get(res, "authorization")));
	json_decref(res);
	return s;
}

/* POST a signed webhook to one instance; the answer's "status" (malloc'd) and HTTP status. */
static long deliver(const struct it_server *s, const struct signed_ev *ev, char **status)
{
	char hdr[4096], url[256];
	const char *hdrs[3] = { hdr, "Content-Type: application/webhook+json", NULL };
	struct it_resp r;
	long st;
	const char *v;

	snprintf(hdr, sizeof(hdr), "Authorization: %s", ev->auth);
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", s->base);
	if (it_http("POST", url, NULL, ev->body, hdrs, &r) != 0) {
		*status = strdup("transport-error");
		return -1;
	}
	st = r.status;
	v = json_string_value(json_object_get(r.json, "status"));
	*status = strdup(v ? v : "");
	it_resp_free(&r);
	return st;
}

struct delivery {
	const struct it_server *srv;
	const struct signed_ev *ev;
	long http;
	char *status;
};

static void *deliver_thread(void *arg)
{
	struct delivery *d = arg;

	d->http = deliver(d->srv, d->ev, &d->status);
	return NULL;
}

struct gcall {
	char *id, *u[3], *tok[3];
};

/* A group call: u[0] calls u[1] and u[2] through `via`, u[1] joins through
 * join1, u[2] through join2 (both with the API, as clients do). */
static struct gcall group_call(const struct it_server *via, const struct it_server *join1,
			       const struct it_server *join2)
{
	struct gcall c;
	char body[256], path[128];
	struct it_resp r;

	for (int i = 0; i < 3; i++) {
		c.u[i] = it_new_user(db, i == 0 ? "caller" : "invitee");
		c.tok[i] = it_user_token(c.u[i], NULL, 3600);
	}
	snprintf(body, sizeof(body), "{\"targetUserIds\":[\"%s\",\"%s\"],\"type\":\"video\"}",
		 c.u[1], c.u[2]);
	ck_assert_int_eq(it_req(via, "POST", "/api/calls/initiate", c.tok[0], body, &r), 0);
	ck_assert_msg(r.status == 201, "initiate: %ld %s", r.status, r.body);
	c.id = strdup(json_string_value(json_object_get(r.json, "callId")));
	it_resp_free(&r);
	snprintf(path, sizeof(path), "/api/calls/%s/join", c.id);
	ck_assert_int_eq(it_req(join1, "POST", path, c.tok[1], "{}", &r), 0);
	ck_assert_msg(r.status == 200, "join: %ld %s", r.status, r.body);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(join2, "POST", path, c.tok[2], "{}", &r), 0);
	ck_assert_msg(r.status == 200, "join: %ld %s", r.status, r.body);
	it_resp_free(&r);
	return c;
}

static void gcall_free(struct gcall *c)
{
	free(c->id);
	for (int i = 0; i < 3; i++) {
		free(c->u[i]);
		free(c->tok[i]);
	}
}

static char *ev_part(const char *event, const char *call, const char *user, int seq, long created,
		     long joined)
{
	char *s;

	ck_assert(asprintf(&s, "{\"event\":\"%s\",\"id\":\"EV_so_%s_%d\",\"createdAt\":\"%ld\","
			   "\"room\":{\"name\":\"call-%s\"},\"participant\":{\"sid\":\"PA_%.8s\","
			   "\"identity\":\"%s\",\"state\":\"ACTIVE\",\"joinedAt\":\"%ld\"}}",
			   event, call, seq, created, call, user, user, joined) > 0);
	return s;
}

static char *ev_track(const char *event, const char *call, const char *user, int seq, long created,
		      const char *source, const char *type)
{
	char *s;

	ck_assert(asprintf(&s, "{\"event\":\"%s\",\"id\":\"EV_so_%s_%d\",\"createdAt\":\"%ld\","
			   "\"room\":{\"name\":\"call-%s\"},\"participant\":{\"identity\":\"%s\"},"
			   "\"track\":{\"sid\":\"TR_%.8s_%s\",\"type\":\"%s\",\"source\":\"%s\"}}",
			   event, call, seq, created, call, user, user, source, type, source) > 0);
	return s;
}

/*
 * The call's events, signed: phase 1 (joins and tracks) is evs[0..5), phase
 * 2 (leaves and room_finished) evs[5..9).  Same offsets from t for every call.
 */
#define N_EVS 9
#define PHASE1 5
static void call_events(const struct gcall *c, long t, struct signed_ev *out)
{
	char *e[N_EVS];
	int n = 0;

	e[n] = ev_part("participant_joined", c->id, c->u[0], n, t, t), n++;
	e[n] = ev_part("participant_joined", c->id, c->u[1], n, t + 2, t + 2), n++;
	e[n] = ev_part("participant_joined", c->id, c->u[2], n, t + 3, t + 3), n++;
	e[n] = ev_track("track_published", c->id, c->u[1], n, t + 5, "CAMERA", "VIDEO"), n++;
	e[n] = ev_track("track_unpublished", c->id, c->u[1], n, t + 20, "CAMERA", "VIDEO"), n++;
	ck_assert_int_eq(n, PHASE1);
	e[n] = ev_part("participant_left", c->id, c->u[2], n, t + 30, t + 3), n++;
	e[n] = ev_part("participant_left", c->id, c->u[1], n, t + 40, t + 2), n++;
	e[n] = ev_part("participant_left", c->id, c->u[0], n, t + 50, t), n++;
	ck_assert(asprintf(&e[n], "{\"event\":\"room_finished\",\"id\":\"EV_so_%s_%d\","
			   "\"createdAt\":\"%ld\",\"room\":{\"name\":\"call-%s\"}}",
			   c->id, n, t + 60, c->id) > 0);
	n++;
	ck_assert_int_eq(n, N_EVS);
	for (int i = 0; i < n; i++) {
		out[i] = sign_ev(e[i]);
		free(e[i]);
	}
}

/* The rows of a call in a form comparable across calls (users in role order u0,u1,u2). */
static char *call_state(const struct gcall *c, long t)
{
	char tt[32], *call, *parts[3], *out;

	snprintf(tt, sizeof(tt), "%ld", t);
	call = sql_str2("SELECT concat_ws(',', status, end_reason,"
			" extract(epoch FROM ended_at)::bigint - $2::bigint,"
			" (SELECT count(*) FROM nchat_call_participants WHERE call_id = c.id))"
			" FROM nchat_calls c WHERE id = $1", c->id, tt);
	for (int i = 0; i < 3; i++) {
		const char *p[3] = { c->id, c->u[i], tt };

		parts[i] = it_sql(db, "SELECT concat_ws(',', role, status, total_duration_seconds,"
				  " is_audio_enabled, is_video_enabled, is_screen_sharing,"
				  " coalesce((extract(epoch FROM left_at)::bigint - $3::bigint)::text, '-'))"
				  " FROM nchat_call_participants WHERE call_id = $1 AND user_id = $2",
				  3, p);
	}
	ck_assert(asprintf(&out, "%s|%s|%s|%s", call, parts[0], parts[1], parts[2]) > 0);
	free(call);
	for (int i = 0; i < 3; i++)
		free(parts[i]);
	return out;
}

START_TEST(webhooks_spread_over_instances)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", NULL };
	struct gcall ref, spread;
	struct signed_ev ev_ref[N_EVS], ev_spread[N_EVS];
	char *ref_status[N_EVS], *want1, *want2, *got1, *got2;
	long t = (long)time(NULL) - 200;

	ck_assert_int_eq(it_server_start(&so_a, env), 0);
	ck_assert_int_eq(it_server_start(&so_b, env), 0);

	/* Reference: every event to A, in order. */
	ref = group_call(&so_a, &so_a, &so_a);
	call_events(&ref, t, ev_ref);
	for (int i = 0; i < N_EVS; i++) {
		ck_assert_int_eq(deliver(&so_a, &ev_ref[i], &ref_status[i]), 200);
		if (i == PHASE1 - 1)
			want1 = call_state(&ref, t);
	}
	want2 = call_state(&ref, t);
	ck_assert_msg(strncmp(want2, "ended,room_finished,60,3|", 25) == 0, "%s", want2);
	ck_assert_msg(strstr(want1, "participant,joined,0,f,f,f,-") != NULL, "%s", want1);

	/*
	 * Spread: initiated on A, joined through B and A; event i goes to
	 * A (i even) or B (i odd) and, at the same moment, a duplicate to the
	 * other instance.
	 */
	spread = group_call(&so_a, &so_b, &so_a);
	call_events(&spread, t, ev_spread);
	for (int i = 0; i < N_EVS; i++) {
		struct delivery d[2] = {
			{ (i % 2) ? &so_b : &so_a, &ev_spread[i], 0, NULL },
			{ (i % 2) ? &so_a : &so_b, &ev_spread[i], 0, NULL },
		};
		pthread_t th[2];
		int dup = 0;
		const char *won = NULL;

		for (int k = 0; k < 2; k++)
			ck_assert_int_eq(pthread_create(&th[k], NULL, deliver_thread, &d[k]), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		for (int k = 0; k < 2; k++) {
			ck_assert_msg(d[k].http == 200, "event %d to %s: %ld %s", i, d[k].srv->base,
				      d[k].http, d[k].status);
			if (strcmp(d[k].status, "duplicate") == 0)
				dup++;
			else
				won = d[k].status;
		}
		ck_assert_msg(dup == 1 && won != NULL && strcmp(won, ref_status[i]) == 0,
			      "event %d: %s / %s, ordered delivery said %s", i, d[0].status,
			      d[1].status, ref_status[i]);
		free(d[0].status);
		free(d[1].status);
		if (i == PHASE1 - 1) {
			got1 = call_state(&spread, t);
			ck_assert_msg(strcmp(got1, want1) == 0, "after phase 1: %s != %s", got1, want1);
			free(got1);
		}
	}
	got2 = call_state(&spread, t);
	ck_assert_msg(strcmp(got2, want2) == 0, "final: %s != %s", got2, want2);
	/* one stored event per event id, none lost, none doubled */
	{
		char like[128];

		snprintf(like, sizeof(like), "EV_so_%s_%%", spread.id);
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_livekit_webhook_events"
					   " WHERE event_id LIKE $1", like), N_EVS);
	}
	/* both instances serve the same view of the call */
	{
		char path[128];
		struct it_resp ra, rb;
		char *ja, *jb;

		snprintf(path, sizeof(path), "/api/calls/%s", spread.id);
		ck_assert_int_eq(it_req(&so_a, "GET", path, spread.tok[1], NULL, &ra), 0);
		ck_assert_int_eq(it_req(&so_b, "GET", path, spread.tok[1], NULL, &rb), 0);
		ck_assert_int_eq(ra.status, 200);
		ck_assert_int_eq(rb.status, 200);
		ja = json_dumps(ra.json, JSON_SORT_KEYS | JSON_COMPACT);
		jb = json_dumps(rb.json, JSON_SORT_KEYS | JSON_COMPACT);
		ck_assert_str_eq(ja, jb);
		free(ja);
		free(jb);
		it_resp_free(&ra);
		it_resp_free(&rb);
	}
	free(got2);
	free(want1);
	free(want2);
	for (int i = 0; i < N_EVS; i++) {
		free(ref_status[i]);
		free(ev_ref[i].body);
		free(ev_ref[i].auth);
		free(ev_spread[i].body);
		free(ev_spread[i].auth);
	}
	gcall_free(&ref);
	gcall_free(&spread);
	ck_assert_int_eq(it_server_stop(&so_a), 0);
	ck_assert_int_eq(it_server_stop(&so_b), 0);
}
END_TEST

/* -------------------------------------------------------------- sweeps */

/* Outgoing webhooks on (to a closed port): each close writes one outbox row. */
#define SWEEP_HOOKS "OUTBOUND_WEBHOOK_URLS=http://127.0.0.1:9/nchat-hook"

/* Start `NC_BIN sweep-calls` with stdout+stderr to path; the pid. */
static pid_t spawn_sweep(const char *path)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		setenv("LOG_LEVEL", "info", 1);
		putenv((char *)SWEEP_HOOKS);
		execl(it_env("NC_BIN"), it_env("NC_BIN"), "sweep-calls", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait up to secs for pid; its exit status, or -1 (then it is killed). */
static int wait_bounded(pid_t pid, double secs)
{
	double end = now_s() + secs;
	int status;

	while (now_s() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* How many times needle occurs in the file at path. */
static int count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

#define N_SWEEP_CALLS 20

START_TEST(sweeps_do_each_call_once)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=1", SWEEP_HOOKS, NULL };
	char *ids[N_SWEEP_CALLS], *callers[N_SWEEP_CALLS], idlist[N_SWEEP_CALLS * 40 + 4] = "{";
	char out1[512], out2[512];
	json_t *reqs;
	pid_t p1, p2;
	double end;
	long left;

	ck_assert_int_eq(it_server_start(&so_a, env), 0);
	ck_assert_int_eq(it_server_start(&so_b, env), 0);
	for (int i = 0; i < N_SWEEP_CALLS; i++) {
		char *callee = it_new_user(db, "callee"), *tok, body[128];
		struct it_resp r;

		callers[i] = it_new_user(db, "caller");
		tok = it_user_token(callers[i], NULL, 600);
		snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", callee);
		ck_assert_int_eq(it_req(i % 2 ? &so_b : &so_a, "POST", "/api/calls/initiate", tok, body, &r), 0);
		ck_assert_msg(r.status == 201, "initiate: %ld %s", r.status, r.body);
		ids[i] = strdup(json_string_value(json_object_get(r.json, "callId")));
		it_resp_free(&r);
		free(tok);
		free(callee);
		strcat(idlist, ids[i]);
		strcat(idlist, i + 1 < N_SWEEP_CALLS ? "," : "}");
	}
	ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_calls WHERE id = ANY($1::uuid[])"
				   " AND status = 'ringing'", idlist), N_SWEEP_CALLS);
	/* All ring timeouts expire at once; two cron runs start at that moment too. */
	snprintf(out1, sizeof(out1), "%s/sweep-so-1.log", it_env("NC_RUN_DIR"));
	snprintf(out2, sizeof(out2), "%s/sweep-so-2.log", it_env("NC_RUN_DIR"));
	free(it_sql(db, "UPDATE nchat_calls SET ring_expires_at = now() - interval '1 second'"
		    " WHERE id = ANY($1::uuid[])", 1, (const char *const[]){ idlist }));
	p1 = spawn_sweep(out1);
	p2 = spawn_sweep(out2);
	ck_assert_int_eq(wait_bounded(p1, 30), 0);
	ck_assert_int_eq(wait_bounded(p2, 30), 0);
	end = now_s() + 20;
	do {
		left = sql_long1("SELECT count(*) FROM nchat_calls WHERE id = ANY($1::uuid[])"
				 " AND status <> 'missed'", idlist);
		if (left == 0)
			break;
		usleep(100 * 1000);
	} while (now_s() < end);
	ck_assert_msg(left == 0, "%ld calls not missed after 20 s", left);
	/* let both timers run once more over the finished calls */
	sleep(2);

	reqs = it_standin("GET", "/_test/requests?method=DeleteRoom", NULL);
	ck_assert_ptr_nonnull(reqs);
	for (int i = 0; i < N_SWEEP_CALLS; i++) {
		char room[64], needle[128];
		size_t k;
		json_t *q;
		int deletes = 0, logged;

		snprintf(room, sizeof(room), "call-%s", ids[i]);
		json_array_foreach(reqs, k, q) {
			const char *rn = json_string_value(json_object_get(json_object_get(q, "request"),
									   "room"));
			if (rn != NULL && strcmp(rn, room) == 0)
				deletes++;
		}
		ck_assert_msg(deletes == 1, "call %s: %d DeleteRoom", ids[i], deletes);
		snprintf(needle, sizeof(needle), "call %s missed", ids[i]);
		logged = count_in_file(so_a.log_path, needle) + count_in_file(so_b.log_path, needle) +
			 count_in_file(out1, needle) + count_in_file(out2, needle);
		ck_assert_msg(logged == 1, "call %s finished %d times", ids[i], logged);
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_calls WHERE id = $1 AND"
					   " status = 'missed' AND end_reason = 'ring_timeout'", ids[i]), 1);
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE"
					   " event = 'call.missed' AND payload->>'callId' = $1", ids[i]), 1);
		/* two participant rows, both closed, none added */
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_call_participants WHERE"
					   " call_id = $1", ids[i]), 2);
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_call_participants WHERE"
					   " call_id = $1 AND status IN ('invited', 'ringing', 'joined')",
					   ids[i]), 0);
	}
	json_decref(reqs);
	/* A later run changes nothing: ended_at stays. */
	{
		char *before = it_sql(db, "SELECT string_agg(ended_at::text, ',' ORDER BY id) FROM"
				      " nchat_calls WHERE id = ANY($1::uuid[])", 1,
				      (const char *const[]){ idlist });
		char *after;

		p1 = spawn_sweep(out1);
		ck_assert_int_eq(wait_bounded(p1, 30), 0);
		after = it_sql(db, "SELECT string_agg(ended_at::text, ',' ORDER BY id) FROM"
			       " nchat_calls WHERE id = ANY($1::uuid[])", 1,
			       (const char *const[]){ idlist });
		ck_assert_str_eq(before, after);
		free(before);
		free(after);
	}
	for (int i = 0; i < N_SWEEP_CALLS; i++) {
		free(ids[i]);
		free(callers[i]);
	}
	ck_assert_int_eq(it_server_stop(&so_a), 0);
	ck_assert_int_eq(it_server_stop(&so_b), 0);
}
END_TEST

/* ------------------------------------------------------------- SIGTERM */

#define N_CLIENTS 16
#define MAX_RESULTS 64

struct result {
	int kind;           /* 0 initiate, 1 join */
	int on_b;           /* sent to B */
	CURLcode cc;
	long status;
	double t_end;
	char call_id[37];
	char err[64];
};

struct client {
	int idx;
	char *caller, *callee, *tok_caller, *tok_callee;
	struct result res[MAX_RESULTS];
	int n;
};

static atomic_int a_gone, stop_clients;

struct body {
	char *p;
	size_t n;
};

static size_t body_cb(char *d, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t add = sz * nm;
	char *q = realloc(b->p, b->n + add + 1);

	if (q == NULL)
		return 0;
	b->p = q;
	memcpy(b->p + b->n, d, add);
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

/* One request on a fresh connection (so a closed listener means "refused"). */
static void one_request(struct client *c, int kind, const char *call_id)
{
	struct result *res = &c->res[c->n++];
	const struct it_server *s = atomic_load(&a_gone) ? &so_b : &so_a;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct body b = { 0 };
	char url[256], auth[2048], body[128];
	json_t *j;

	memset(res, 0, sizeof(*res));
	res->kind = kind;
	res->on_b = s == &so_b;
	if (kind == 0) {
		snprintf(url, sizeof(url), "%s/api/calls/initiate", s->base);
		snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"video\"}", c->callee);
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->tok_caller);
	} else {
		snprintf(url, sizeof(url), "%s/api/calls/%s/join", s->base, call_id);
		snprintf(body, sizeof(body), "{}");
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->tok_callee);
	}
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
	res->cc = curl_easy_perform(h);
	res->t_end = now_s();
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	j = b.p ? json_loads(b.p, 0, NULL) : NULL;
	if (kind == 0 && json_is_string(json_object_get(j, "callId")))
		snprintf(res->call_id, sizeof(res->call_id), "%s",
			 json_string_value(json_object_get(j, "callId")));
	else if (kind == 1)
		snprintf(res->call_id, sizeof(res->call_id), "%s", call_id);
	if (json_object_get(j, "error") != NULL)
		snprintf(res->err, sizeof(res->err), "%s",
			 json_string_value(json_object_get(json_object_get(j, "error"), "code")) ?
			 json_string_value(json_object_get(json_object_get(j, "error"), "code")) : "?");
	else if (j == NULL && res->cc == CURLE_OK)
		snprintf(res->err, sizeof(res->err), "not JSON");
	json_decref(j);
	free(b.p);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	while (!atomic_load(&stop_clients) && c->n + 2 <= MAX_RESULTS) {
		struct result *r;

		one_request(c, 0, NULL);
		r = &c->res[c->n - 1];
		if (r->cc == CURLE_OK && r->status == 201 && r->call_id[0] != '\0') {
			char id[37];

			memcpy(id, r->call_id, sizeof(id));
			one_request(c, 1, id);
		} else if (r->cc == CURLE_COULDNT_CONNECT || r->status == 503) {
			usleep(50 * 1000); /* refused: the next try goes to B once A is gone */
		}
	}
	return NULL;
}

START_TEST(sigterm_under_load_loses_nothing)
{
	static const char *env[] = { "CALL_SWEEP_INTERVAL_SECONDS=0", "LIVEKIT_TIMEOUT_MS=8000",
				     "WORKERS=4", NULL };
	static struct client cl[N_CLIENTS];
	pthread_t th[N_CLIENTS];
	json_t *f;
	double t_term, t_exit = 0;
	int status = -1, a_ok_after_term = 0, b_ok = 0, n201 = 0, bad = 0;
	char callers[N_CLIENTS * 40 + 4] = "{";

	ck_assert_int_eq(it_server_start(&so_a, env), 0);
	ck_assert_int_eq(it_server_start(&so_b, env), 0);
	atomic_store(&a_gone, 0);
	atomic_store(&stop_clients, 0);
	for (int i = 0; i < N_CLIENTS; i++) {
		memset(&cl[i], 0, sizeof(cl[i]));
		cl[i].idx = i;
		cl[i].caller = it_new_user(db, "load-caller");
		cl[i].callee = it_new_user(db, "load-callee");
		cl[i].tok_caller = it_user_token(cl[i].caller, NULL, 600);
		cl[i].tok_callee = it_user_token(cl[i].callee, NULL, 600);
		strcat(callers, cl[i].caller);
		strcat(callers, i + 1 < N_CLIENTS ? "," : "}");
	}
	/* CreateRoom takes 1.5 s: initiates are in flight (and queued) when SIGTERM comes. */
	f = json_pack("{s:s, s:s, s:i, s:i}", "method", "CreateRoom", "mode", "slow", "delayMs", 1500,
		      "count", -1);
	json_decref(it_standin("POST", "/_test/fault", f));
	json_decref(f);
	for (int i = 0; i < N_CLIENTS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
	sleep(3);
	t_term = now_s();
	kill(so_a.pid, SIGTERM);
	while (now_s() < t_term + 30) {
		if (waitpid(so_a.pid, &status, WNOHANG) == so_a.pid) {
			t_exit = now_s();
			so_a.pid = 0;
			break;
		}
		usleep(20 * 1000);
	}
	atomic_store(&a_gone, 1);
	/* B serves on while A is gone */
	sleep(3);
	atomic_store(&stop_clients, 1);
	for (int i = 0; i < N_CLIENTS; i++)
		pthread_join(th[i], NULL);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));

	ck_assert_msg(t_exit > 0, "A did not exit within 30 s of SIGTERM");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "A exit status %d", status);
	ck_assert_msg(t_exit - t_term < 20, "A took %.1f s to drain", t_exit - t_term);
	ck_assert_int_eq(count_in_file(so_a.log_path, "drain timeout"), 0);

	for (int i = 0; i < N_CLIENTS; i++) {
		for (int k = 0; k < cl[i].n; k++) {
			struct result *r = &cl[i].res[k];
			bool ok2xx = r->cc == CURLE_OK && r->status >= 200 && r->status < 300 &&
				     r->err[0] == '\0';
			bool refused = r->cc == CURLE_COULDNT_CONNECT ||
				       (r->cc == CURLE_OK && r->status == 503 && r->err[0] != '\0' &&
					strcmp(r->err, "not JSON") != 0);

			if (ok2xx && r->kind == 0) {
				const char *p[2] = { r->call_id, cl[i].caller };

				n201++;
				ck_assert_msg(r->status == 201, "initiate answered %ld", r->status);
				ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_calls WHERE"
							     " id = $1 AND initiator_id = $2", 2, p), 1);
			}
			if (ok2xx && r->kind == 1) {
				const char *p[2] = { r->call_id, cl[i].callee };

				ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_participants"
							     " WHERE call_id = $1 AND user_id = $2 AND"
							     " status = 'joined'", 2, p), 1);
			}
			if (ok2xx && !r->on_b && r->t_end > t_term)
				a_ok_after_term++;
			if (ok2xx && r->on_b && r->t_end > t_exit)
				b_ok++;
			if (!ok2xx && !refused) {
				fprintf(stderr, "client %d request %d (%s to %s): curl %d (%s), HTTP %ld %s\n",
					i, k, r->kind ? "join" : "initiate", r->on_b ? "B" : "A", r->cc,
					curl_easy_strerror(r->cc), r->status, r->err);
				bad++;
			}
		}
	}
	printf("sigterm: A drained in %.2f s, %d answered by A after SIGTERM, %d by B after A"
	       " exited, %d calls started\n", t_exit - t_term, a_ok_after_term, b_ok, n201);
	ck_assert_msg(bad == 0, "%d requests failed or were cut off (see above)", bad);
	ck_assert_msg(a_ok_after_term > 0, "no request in flight on A completed after SIGTERM");
	ck_assert_msg(b_ok >= N_CLIENTS / 2, "B answered only %d requests after A exited", b_ok);
	/* every call row of these callers has its 201, and the other way round */
	ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_calls WHERE initiator_id = ANY($1::uuid[])",
				   callers), n201);
	for (int i = 0; i < N_CLIENTS; i++) {
		free(cl[i].caller);
		free(cl[i].callee);
		free(cl[i].tok_caller);
		free(cl[i].tok_callee);
	}
	ck_assert_int_eq(it_server_stop(&so_b), 0);
}
END_TEST

/* ----------------------------------------------------------- pgbouncer */

static void ck_status(const struct it_resp *r, long want, const char *what)
{
	ck_assert_msg(r->status == want, "%s: HTTP %ld, want %ld: %s", what, r->status, want,
		      r->body ? r->body : "");
}

START_TEST(through_pgbouncer_transaction_pooling)
{
	const char *url = it_env("PGBOUNCER_DATABASE_URL");
	char dbu[512];
	const char *env[] = { dbu, "DB_PREPARED_STATEMENTS=false", "CALL_SWEEP_INTERVAL_SECONDS=1",
			      "WORKERS=4", NULL };
	struct gcall c;
	struct it_resp r;
	char path[256], body[256];
	long t = (long)time(NULL) - 100;

	if (url == NULL) {
		printf("through_pgbouncer_transaction_pooling: skipped, pgbouncer is not installed\n");
		return;
	}
	snprintf(dbu, sizeof(dbu), "DATABASE_URL=%s", url);
	printf("pgbouncer: serving through %s\n", url);
	ck_assert_int_eq(it_server_start(&so_p, env), 0);
	ck_assert_int_eq(it_req(&so_p, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_status(&r, 200, "readyz");
	it_resp_free(&r);

	/* Several rounds, so statements of one client land on different server connections. */
	for (int round = 0; round < 3; round++) {
		struct signed_ev evs[N_EVS];
		char *st;

		c = group_call(&so_p, &so_p, &so_p);
		snprintf(path, sizeof(path), "/api/calls/%s", c.id);
		ck_assert_int_eq(it_req(&so_p, "GET", path, c.tok[2], NULL, &r), 0);
		ck_status(&r, 200, "GET call");
		ck_assert_int_eq(json_array_size(json_object_get(r.json, "participants")), 3);
		it_resp_free(&r);
		call_events(&c, t, evs);
		for (int i = 0; i < N_EVS; i++) {
			ck_assert_int_eq(deliver(&so_p, &evs[i], &st), 200);
			ck_assert_msg(strcmp(st, "applied") == 0, "event %d: %s", i, st);
			free(st);
			free(evs[i].body);
			free(evs[i].auth);
		}
		st = call_state(&c, t);
		ck_assert_msg(strncmp(st, "ended,room_finished,60,3|", 25) == 0, "%s", st);
		free(st);
		ck_assert_int_eq(it_req(&so_p, "GET", "/api/calls?limit=5", c.tok[1], NULL, &r), 0);
		ck_status(&r, 200, "GET /api/calls");
		ck_assert_msg(r.body != NULL && strstr(r.body, c.id) != NULL, "history lacks the call: %s",
			      r.body);
		it_resp_free(&r);
		/* RLS through the pool: an outsider does not see the call */
		{
			char *o = it_new_user(db, "outsider"), *ot = it_user_token(o, NULL, 600);

			ck_assert_int_eq(it_req(&so_p, "GET", path, ot, NULL, &r), 0);
			ck_assert_msg(r.status == 404 || r.status == 403, "outsider: %ld", r.status);
			it_resp_free(&r);
			free(o);
			free(ot);
		}
		gcall_free(&c);
	}

	/* Chat in a stream. */
	{
		char *owner = it_new_user(db, "broadcaster"), *viewer = it_new_user(db, "viewer");
		char *chan = it_new_channel(db, "pgbouncer-stream");
		char *to = it_user_token(owner, NULL, 600), *tv = it_user_token(viewer, NULL, 600);
		char *sid;

		it_add_member(db, chan, owner, "owner");
		it_add_member(db, chan, viewer, NULL);
		snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"through the pool\"}", chan);
		ck_assert_int_eq(it_req(&so_p, "POST", "/api/streams/create", to, body, &r), 0);
		ck_status(&r, 201, "create stream");
		sid = strdup(json_string_value(json_object_get(r.json, "id")));
		it_resp_free(&r);
		snprintf(path, sizeof(path), "/api/streams/%s/chat", sid);
		for (int i = 0; i < 3; i++) {
			snprintf(body, sizeof(body), "{\"content\":\"hello %d\"}", i);
			ck_assert_int_eq(it_req(&so_p, "POST", path, i % 2 ? to : tv, body, &r), 0);
			ck_status(&r, 201, "chat");
			it_resp_free(&r);
		}
		ck_assert_int_eq(it_req(&so_p, "GET", path, tv, NULL, &r), 0);
		ck_status(&r, 200, "chat page");
		ck_assert_msg(r.body && strstr(r.body, "hello 2") && strstr(r.body, "hello 0"), "%s",
			      r.body);
		it_resp_free(&r);
		ck_assert_int_eq(sql_long1("SELECT count(*) FROM nchat_stream_chat_messages WHERE"
					   " stream_id = $1", sid), 3);
		free(sid); free(owner); free(viewer); free(chan); free(to); free(tv);
	}

	/*
	 * The sweep timer ran meanwhile (every second) through the pool: it
	 * must leave no session-level state behind on a pooled server
	 * connection, e.g. an advisory lock taken on one server connection and
	 * "released" on another.
	 */
	sleep(2);
	ck_assert_int_eq(it_server_stop(&so_p), 0);
	{
		long locks = it_sql_long(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
					 0, NULL);

		ck_assert_msg(locks == 0, "%ld advisory lock(s) left held on pooled connections", locks);
	}
}
END_TEST

static void setup(void)
{
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
}

/* Runs after every test, also a failed one: no instance or fault outlives it. */
static void teardown(void)
{
	it_server_kill(&so_a);
	it_server_kill(&so_b);
	it_server_kill(&so_p);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
}

int main(void)
{
	static const char *need[] = { "NC_BIN", "NC_RUN_DIR", "DATABASE_URL", "DATABASE_MIGRATE_URL",
				      "REDIS_URL", "LK_STANDIN_URL", "LIVEKIT_URL", "AUTH_JWT_SECRET",
				      NULL };
	Suite *s = suite_create("scaleout");
	TCase *tc = tcase_create("scaleout");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_ALL);
	db = it_db();
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, webhooks_spread_over_instances);
	tcase_add_test(tc, sweeps_do_each_call_once);
	tcase_add_test(tc, sigterm_under_load_loses_nothing);
	tcase_add_test(tc, through_pgbouncer_transaction_pooling);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	PQfinish(db);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
