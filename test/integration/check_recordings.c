/*
 * check_recordings.c - call recordings end to end against the server, the
 * LiveKit stand-in (egress requests as LiveKit decoded them) and the S3
 * stand-in (every SigV4 signature recomputed with AWS's own signer).
 *
 * Calls and participants are inserted directly (owner connection), so this
 * suite does not depend on the calls API.  Egress webhooks are applied
 * through recordings_on_egress directly, with the EgressInfo JSON the
 * LiveKit stand-in itself produced (GET /_test/state), inside a service
 * transaction exactly as the webhook receiver does; when the receiver is
 * present in the server, the same is also checked through a signed webhook.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "recordings/recordings.h"
#include "livekit/lk.h"
#include "s3/s3.h"
#include "http/worker.h"

static struct it_server srv;
static struct nc_config *cfg;

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	ck_assert_msg(j != NULL, "bad JSON literal %s", text);
	return j;
}

static json_t *lk(const char *method, const char *path, const char *body)
{
	json_t *b = body ? parse(body) : NULL;
	json_t *r = it_standin(method, path, b);

	json_decref(b);
	return r;
}

/* The S3 stand-in's control API. */
static json_t *s3ctl(const char *method, const char *path, const char *body)
{
	char url[512];
	struct it_resp r;
	json_t *j;

	snprintf(url, sizeof url, "%s%s", it_env("S3_ENDPOINT"), path);
	ck_assert_int_eq(it_http(method, url, NULL, body, NULL, &r), 0);
	j = r.json ? json_incref(r.json) : NULL;
	it_resp_free(&r);
	return j;
}

static void s3_fault_down(int count)
{
	char body[64];

	snprintf(body, sizeof body, "{\"mode\":\"down\",\"count\":%d}", count);
	json_decref(s3ctl("POST", "/_test/fault", body));
}

struct call {
	char *id, *room, *initiator, *member, *outsider;
	char *tok_init, *tok_member, *tok_outsider, *tok_admin, *tok_mod;
	char *admin, *mod;
};

static struct call new_call(PGconn *db, const char *status)
{
	struct call c;
	const char *p[3];
	char *room_id;
	json_t *r;
	char body[256];

	c.initiator = it_new_user(db, "init");
	c.member = it_new_user(db, "member");
	c.outsider = it_new_user(db, "outsider");
	c.admin = it_new_user(db, "admin");
	c.mod = it_new_user(db, "mod");
	room_id = it_sql(db, "SELECT gen_random_uuid()::text", 0, NULL);
	c.room = malloc(64);
	snprintf(c.room, 64, "call-%s", room_id);
	free(room_id);
	p[0] = c.room;
	p[1] = c.initiator;
	p[2] = status;
	c.id = it_sql(db, "INSERT INTO nchat_calls (livekit_room_name, call_type, status, initiator_id,"
			  " started_at) VALUES ($1, 'video', $3, $2, now()) RETURNING id",
		      3, p);
	p[0] = c.id;
	p[1] = c.initiator;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
			" VALUES ($1, $2, 'initiator', 'joined')", 2, p));
	p[1] = c.member;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
			" VALUES ($1, $2, 'participant', 'joined')", 2, p));
	p[1] = c.admin;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
			" VALUES ($1, $2, 'participant', 'joined')", 2, p));
	p[1] = c.mod;
	free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
			" VALUES ($1, $2, 'participant', 'joined')", 2, p));
	snprintf(body, sizeof body, "{\"room\":\"%s\",\"identity\":\"%s\"}", c.room, c.initiator);
	r = lk("POST", "/_test/participants", body);
	ck_assert_ptr_nonnull(r);
	json_decref(r);
	c.tok_init = it_user_token(c.initiator, "user", 600);
	c.tok_member = it_user_token(c.member, "user", 600);
	c.tok_outsider = it_user_token(c.outsider, "user", 600);
	c.tok_admin = it_user_token(c.admin, "user,admin", 600);
	c.tok_mod = it_user_token(c.mod, "user,moderator", 600);
	return c;
}

static void call_free(struct call *c)
{
	free(c->id); free(c->room); free(c->initiator); free(c->member); free(c->outsider);
	free(c->admin); free(c->mod);
	free(c->tok_init); free(c->tok_member); free(c->tok_outsider); free(c->tok_admin);
	free(c->tok_mod);
}

static long post(const char *path, const char *tok, const char *body, struct it_resp *out)
{
	ck_assert_int_eq(it_req(&srv, "POST", path, tok, body, out), 0);
	return out->status;
}

/* Start a recording as the initiator; returns the recording id (malloc'd). */
static char *start_rec(const struct call *c, const char *body, char **egress_id)
{
	char path[128];
	struct it_resp r;
	char *id;

	snprintf(path, sizeof path, "/api/calls/%s/recording/start", c->id);
	ck_assert_msg(post(path, c->tok_init, body, &r) == 201, "start: %ld %s", r.status, r.body);
	id = strdup(json_string_value(json_object_get(r.json, "recordingId")));
	if (egress_id)
		*egress_id = strdup(json_string_value(json_object_get(r.json, "egressId")));
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "starting");
	it_resp_free(&r);
	return id;
}

/* The last decoded request of a stand-in method. */
static json_t *last_lk_request(const char *method)
{
	char path[128];
	json_t *all, *last;

	snprintf(path, sizeof path, "/_test/requests?method=%s", method);
	all = lk("GET", path, NULL);
	ck_assert(json_array_size(all) > 0);
	last = json_incref(json_array_get(all, json_array_size(all) - 1));
	json_decref(all);
	return last;
}

/* EgressInfo of one egress as the stand-in holds it (protobuf JSON). */
static json_t *egress_info(const char *egress_id)
{
	json_t *st = lk("GET", "/_test/state", NULL), *eg, *out = NULL;
	size_t i;

	json_array_foreach(json_object_get(st, "egress"), i, eg)
		if (strcmp(json_string_value(json_object_get(eg, "egressId")), egress_id) == 0)
			out = json_incref(eg);
	json_decref(st);
	ck_assert_ptr_nonnull(out);
	return out;
}

/* Apply an egress event like the webhook receiver: in a service transaction. */
static int apply_event(struct nc_worker *w, json_t *info, int64_t created_at)
{
	struct nc_error err;
	int rc;

	ck_assert_int_eq(db_begin_service(&w->db, &err), NC_OK);
	rc = recordings_on_egress(w, "egress_updated", info, created_at, &err);
	ck_assert_msg(rc >= 0, "on_egress: %s", err.msg);
	ck_assert_int_eq(db_commit(&w->db, &err), NC_OK);
	return rc;
}

static void worker_open(struct nc_worker *w)
{
	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	db_init(&w->db, cfg->database_url, 5000);
	w->s3 = s3_client_new(cfg);
	ck_assert_ptr_nonnull(w->s3);
}

static void worker_close(struct nc_worker *w)
{
	db_cleanup(&w->db);
	s3_client_free(w->s3);
}

static char *rec_col(PGconn *db, const char *rec_id, const char *col)
{
	char sql[256];
	const char *p[1] = { rec_id };

	snprintf(sql, sizeof sql, "SELECT %s::text FROM nchat_call_recordings WHERE id = $1", col);
	return it_sql(db, sql, 1, p);
}

/* A finished recording row with an object in S3 (optionally), inserted directly. */
static char *completed_row(PGconn *db, struct nc_worker *w, const struct call *c, const char *expires,
			   bool hold, int retention, bool put_object)
{
	char *id = it_sql(db, "SELECT gen_random_uuid()::text", 0, NULL);
	char key[256], ret[16];
	const char *p[6];
	struct nc_error err;
	char *out;

	snprintf(key, sizeof key, "recordings/direct/%s/%s.mp4", c->id, id);
	snprintf(ret, sizeof ret, "%d", retention);
	p[0] = id;
	p[1] = c->id;
	p[2] = key;
	p[3] = ret;
	p[4] = expires;
	p[5] = hold ? "true" : "false";
	out = it_sql(db, "INSERT INTO nchat_call_recordings (id, call_id, status, object_key,"
			 " file_size_bytes, duration_seconds, retention_days, expires_at, legal_hold,"
			 " started_at, ended_at, livekit_egress_id)"
			 " VALUES ($1::uuid, $2, 'completed', $3, 11, 1, $4::integer,"
			 "  CASE WHEN $5 = '' THEN NULL ELSE now() + $5::interval END, $6::boolean,"
			 "  now() - interval '1 hour', now() - interval '1 hour', 'EG_' || $1::text)"
			 " RETURNING id",
		     6, p);
	free(out);
	if (put_object)
		ck_assert_int_eq(s3_put(w->s3, key, "hello world", 11, "video/mp4", &err), NC_OK);
	return id;
}

static bool object_exists(struct nc_worker *w, const char *key)
{
	struct nc_error err;
	enum nc_err e = s3_head(w->s3, key, NULL, &err);

	ck_assert_msg(e == NC_OK || e == NC_ENOTFOUND, "head: %s", err.msg);
	return e == NC_OK;
}

/* Run the sweep binary; returns its exit code, stdout in out. */
static int run_sweep(const char *args, char *out, size_t outlen)
{
	char cmd[1024];
	FILE *f;
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "%s sweep-recordings %s 2>>%s/sweep.err", it_env("NC_BIN"), args,
		 it_env("NC_RUN_DIR"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- tests ---- */

START_TEST(start_sends_s3_output_and_second_start_conflicts)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	char *egress, *rec = start_rec(&c, "{\"layout\":\"grid\",\"resolution\":\"1080p\","
					    "\"retentionDays\":7}", &egress);
	json_t *req = last_lk_request("StartRoomCompositeEgress"), *rq, *fo, *s3;
	char want_key[256], path[128];
	struct it_resp r;
	char *v;

	rq = json_object_get(req, "request");
	ck_assert_str_eq(json_string_value(json_object_get(rq, "roomName")), c.room);
	ck_assert_str_eq(json_string_value(json_object_get(rq, "layout")), "grid");
	ck_assert_str_eq(json_string_value(json_object_get(rq, "preset")), "H264_1080P_30");
	ck_assert_ptr_null(json_object_get(rq, "audioOnly"));
	ck_assert_int_eq(json_array_size(json_object_get(rq, "fileOutputs")), 1);
	fo = json_array_get(json_object_get(rq, "fileOutputs"), 0);
	snprintf(want_key, sizeof want_key, "recordings/direct/%s/%s.mp4", c.id, rec);
	ck_assert_str_eq(json_string_value(json_object_get(fo, "filepath")), want_key);
	ck_assert_str_eq(json_string_value(json_object_get(fo, "fileType")), "MP4");
	ck_assert(json_is_true(json_object_get(fo, "disableManifest")));
	s3 = json_object_get(fo, "s3");
	ck_assert_str_eq(json_string_value(json_object_get(s3, "bucket")), it_env("S3_BUCKET"));
	ck_assert_str_eq(json_string_value(json_object_get(s3, "endpoint")), it_env("S3_ENDPOINT"));
	ck_assert_str_eq(json_string_value(json_object_get(s3, "accessKey")), it_env("S3_ACCESS_KEY"));
	ck_assert_str_eq(json_string_value(json_object_get(s3, "secret")), it_env("S3_SECRET_KEY"));
	ck_assert_str_eq(json_string_value(json_object_get(s3, "region")), it_env("S3_REGION"));
	ck_assert(json_is_true(json_object_get(s3, "forcePathStyle")));
	ck_assert(json_is_true(json_object_get(json_object_get(req, "grants"), "roomRecord")));
	json_decref(req);

	/* The row. */
	v = rec_col(db, rec, "livekit_egress_id");
	ck_assert_str_eq(v, egress);
	free(v);
	v = rec_col(db, rec, "layout_type || resolution || audio_only || retention_days");
	ck_assert_str_eq(v, "grid1080pfalse7");
	free(v);
	v = rec_col(db, rec, "(expires_at > now() + interval '6 days')");
	ck_assert_str_eq(v, "true");
	free(v);

	/* A second start: 409, and LiveKit is not asked again. */
	snprintf(path, sizeof path, "/api/calls/%s/recording/start", c.id);
	ck_assert_int_eq(post(path, c.tok_admin, "{}", &r), 409);
	it_resp_free(&r);
	{
		const char *p[1] = { c.id };
		ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings"
						 " WHERE call_id = $1", 1, p), 1);
	}
	/* Everyone in the call sees it. */
	snprintf(path, sizeof path, "/api/calls/%s/recordings", c.id);
	ck_assert_int_eq(it_req(&srv, "GET", path, c.tok_member, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
		json_object_get(r.json, "recordings"), 0), "status")), "starting");
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", path, c.tok_outsider, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	/* Audit. */
	{
		const char *p[1] = { rec };
		ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_rtc_audit_log WHERE"
						 " action = 'recording.start' AND target_id = $1", 1, p), 1);
	}
	free(rec);
	free(egress);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(audio_only_and_defaults)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ringing");
	char *rec = start_rec(&c, "{\"audioOnly\":true,\"retentionDays\":0}", NULL);
	json_t *req = last_lk_request("StartRoomCompositeEgress");
	json_t *rq = json_object_get(req, "request");
	json_t *fo = json_array_get(json_object_get(rq, "fileOutputs"), 0);
	char *v;

	ck_assert(json_is_true(json_object_get(rq, "audioOnly")));
	ck_assert_str_eq(json_string_value(json_object_get(rq, "layout")), "speaker");
	/* The zero preset is on the wire because the oneof case is set. */
	ck_assert_str_eq(json_string_value(json_object_get(rq, "preset")), "H264_720P_30");
	ck_assert_str_eq(json_string_value(json_object_get(fo, "fileType")), "OGG");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(fo, "filepath")), ".ogg"));
	json_decref(req);
	v = rec_col(db, rec, "coalesce(expires_at::text, 'forever')");
	ck_assert_str_eq(v, "forever");
	free(v);
	free(rec);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(who_may_record)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	char path[128];
	struct it_resp r;
	const char *p[1];

	snprintf(path, sizeof path, "/api/calls/%s/recording/start", c.id);
	ck_assert_int_eq(post(path, c.tok_member, "{}", &r), 403);
	ck_assert_str_eq(it_err_code(&r), "forbidden");
	it_resp_free(&r);
	ck_assert_int_eq(post(path, c.tok_outsider, "{}", &r), 404);
	it_resp_free(&r);
	ck_assert_int_eq(post(path, NULL, "{}", &r), 401);
	it_resp_free(&r);
	/* Bad input: 400 naming the field, nothing written. */
	ck_assert_int_eq(post(path, c.tok_init, "{\"layout\":\"mosaic\"}", &r), 400);
	ck_assert_ptr_nonnull(strstr(r.body, "layout"));
	it_resp_free(&r);
	ck_assert_int_eq(post(path, c.tok_init, "{\"retentionDays\":4000}", &r), 400);
	it_resp_free(&r);
	ck_assert_int_eq(post(path, c.tok_init, "{\"audioOnly\":\"yes\"}", &r), 400);
	it_resp_free(&r);
	ck_assert_int_eq(post("/api/calls/not-a-uuid/recording/start", c.tok_init, "{}", &r), 400);
	it_resp_free(&r);
	p[0] = c.id;
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1",
				     1, p), 0);
	/* A moderator in the call may; stop by the member is refused too. */
	ck_assert_int_eq(post(path, c.tok_mod, "{}", &r), 201);
	it_resp_free(&r);
	snprintf(path, sizeof path, "/api/calls/%s/recording/stop", c.id);
	ck_assert_int_eq(post(path, c.tok_member, NULL, &r), 403);
	it_resp_free(&r);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(call_state_checked)
{
	PGconn *db = it_db();
	struct call ended = new_call(db, "ended"), init = new_call(db, "initiating");
	char path[128];
	struct it_resp r;

	snprintf(path, sizeof path, "/api/calls/%s/recording/start", ended.id);
	ck_assert_int_eq(post(path, ended.tok_init, "{}", &r), 410);
	it_resp_free(&r);
	snprintf(path, sizeof path, "/api/calls/%s/recording/start", init.id);
	ck_assert_int_eq(post(path, init.tok_init, "{}", &r), 409);
	it_resp_free(&r);
	snprintf(path, sizeof path, "/api/calls/%s/recording/stop", init.id);
	ck_assert_int_eq(post(path, init.tok_init, NULL, &r), 409);
	it_resp_free(&r);
	call_free(&ended);
	call_free(&init);
	PQfinish(db);
}
END_TEST

START_TEST(livekit_failure_fails_the_row)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	char path[128];
	struct it_resp r;
	const char *p[1] = { c.id };
	char *v;

	snprintf(path, sizeof path, "/api/calls/%s/recording/start", c.id);
	json_decref(lk("POST", "/_test/fault", "{\"method\":\"StartRoomCompositeEgress\","
			   "\"mode\":\"error\",\"code\":\"internal\",\"status\":500,"
			   "\"msg\":\"egress not connected (redis required)\"}"));
	ck_assert_int_eq(post(path, c.tok_init, "{}", &r), 502);
	ck_assert_str_eq(it_err_code(&r), "livekit_unavailable");
	it_resp_free(&r);
	v = it_sql(db, "SELECT status || '|' || error FROM nchat_call_recordings WHERE call_id = $1",
		   1, p);
	ck_assert_msg(strncmp(v, "failed|failed to start: internal: egress not connected", 54) == 0,
		      "%s", v);
	free(v);
	/* Unreachable: 503, and the call can be recorded once LiveKit is back. */
	json_decref(lk("POST", "/_test/fault", "{\"method\":\"StartRoomCompositeEgress\","
			   "\"mode\":\"unavailable\",\"count\":1}"));
	ck_assert_int_eq(post(path, c.tok_init, "{}", &r), 503);
	it_resp_free(&r);
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					 " AND status = 'failed'", 1, p), 2);
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					 " AND status = 'starting'", 1, p), 0);
	free(start_rec(&c, "{}", NULL));
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(stop_and_egress_events_complete_the_row)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	struct nc_worker w;
	char *egress, *rec = start_rec(&c, "{}", &egress);
	char path[128];
	struct it_resp r;
	json_t *info, *old;
	char *v;
	int tries;
	const char *p[1] = { rec };

	worker_open(&w);
	/* An event for an egress that is not ours: 0. */
	info = parse("{\"egressId\":\"EG_not_ours\",\"status\":\"EGRESS_ACTIVE\"}");
	ck_assert_int_eq(apply_event(&w, info, now_unix()), 0);
	json_decref(info);

	usleep(300 * 1000); /* the stand-in turns it ACTIVE after 100 ms */
	info = egress_info(egress);
	ck_assert_int_eq(apply_event(&w, info, now_unix() - 5), 1);
	old = json_deep_copy(info); /* an ACTIVE event, replayed later */
	json_decref(info);
	v = rec_col(db, rec, "status");
	ck_assert_str_eq(v, "active");
	free(v);

	snprintf(path, sizeof path, "/api/calls/%s/recording/stop", c.id);
	ck_assert_int_eq(post(path, c.tok_init, NULL, &r), 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "ending");
	it_resp_free(&r);
	{
		json_t *sr = last_lk_request("StopEgress");
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sr, "request"),
								   "egressId")), egress);
		json_decref(sr);
	}
	/* Stop again: still ending, fine. */
	ck_assert_int_eq(post(path, c.tok_init, NULL, &r), 200);
	it_resp_free(&r);

	/* The stand-in completes it with file results; apply its EgressInfo. */
	for (tries = 0; tries < 50; tries++) {
		info = egress_info(egress);
		if (strcmp(json_string_value(json_object_get(info, "status")), "EGRESS_COMPLETE") == 0)
			break;
		json_decref(info);
		info = NULL;
		usleep(100 * 1000);
	}
	ck_assert_ptr_nonnull(info);
	ck_assert_int_eq(apply_event(&w, info, now_unix()), 1);
	v = it_sql(db, "SELECT status || '|' || (file_url IS NOT NULL) || '|' ||"
		       " (file_size_bytes IS NOT NULL) || '|' || (duration_seconds IS NOT NULL) || '|' ||"
		       " (ended_at IS NOT NULL) FROM nchat_call_recordings WHERE id = $1", 1, p);
	ck_assert_str_eq(v, "completed|true|true|true|true");
	free(v);
	{
		/* Values are taken from fileResults (size string, duration ns -> s). */
		json_t *fr = json_array_get(json_object_get(info, "fileResults"), 0);
		char *sz = rec_col(db, rec, "file_size_bytes");
		long long want_dur = (strtoll(json_string_value(json_object_get(fr, "duration")) ?
					      json_string_value(json_object_get(fr, "duration")) : "0",
					      NULL, 10) + 500000000LL) / 1000000000LL;
		char *dur = rec_col(db, rec, "duration_seconds");
		ck_assert_str_eq(sz, json_string_value(json_object_get(fr, "size")) ?
				     json_string_value(json_object_get(fr, "size")) : "0");
		ck_assert_int_eq(strtoll(dur, NULL, 10), want_dur);
		free(sz);
		free(dur);
	}
	json_decref(info);
	/* One outgoing recording.ready per OUTBOUND_WEBHOOK_URLS entry (one, set in main). */
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_rtc_outbound_webhooks WHERE"
					 " event = 'recording.ready' AND payload->>'id' = $1", 1, p), 1);
	/* A replayed older ACTIVE event does not leave the terminal state. */
	ck_assert_int_eq(apply_event(&w, old, now_unix() - 60), 1);
	ck_assert_int_eq(apply_event(&w, old, now_unix() + 60), 1);
	json_decref(old);
	v = rec_col(db, rec, "status");
	ck_assert_str_eq(v, "completed");
	free(v);
	worker_close(&w);
	free(rec);
	free(egress);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(failed_and_aborted_events)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active"), c2 = new_call(db, "active");
	struct nc_worker w;
	char *e1, *e2, *r1 = start_rec(&c, "{}", &e1), *r2 = start_rec(&c2, "{}", &e2);
	json_t *info;
	char *v, body[256];

	worker_open(&w);
	snprintf(body, sizeof body, "{\"egressId\":\"%s\",\"status\":\"EGRESS_FAILED\","
		 "\"error\":\"pipeline crashed\",\"endedAt\":\"1700000000000000000\"}", e1);
	info = parse(body);
	ck_assert_int_eq(apply_event(&w, info, now_unix()), 1);
	json_decref(info);
	v = rec_col(db, r1, "status || '|' || error || '|' || extract(epoch from ended_at)::bigint");
	ck_assert_str_eq(v, "failed|pipeline crashed|1700000000");
	free(v);
	snprintf(body, sizeof body, "{\"egressId\":\"%s\",\"status\":\"EGRESS_ABORTED\","
		 "\"error\":\"room closed\"}", e2);
	info = parse(body);
	ck_assert_int_eq(apply_event(&w, info, now_unix()), 1);
	json_decref(info);
	v = rec_col(db, r2, "status || '|' || error");
	ck_assert_str_eq(v, "aborted|room closed");
	free(v);
	/* The call can be recorded again after a terminal state. */
	free(start_rec(&c, "{}", NULL));
	worker_close(&w);
	free(r1); free(r2); free(e1); free(e2);
	call_free(&c);
	call_free(&c2);
	PQfinish(db);
}
END_TEST

START_TEST(webhook_through_server)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	char *egress, *rec = start_rec(&c, "{}", &egress);
	json_t *info, *ev, *signed_ev;
	struct it_resp r;
	char url[256], *auth_h, *v, *key = NULL;
	const char *hdrs[3];
	int tries;

	/* Is the webhook receiver in this build? */
	snprintf(url, sizeof url, "%s/api/webhooks/livekit", srv.base);
	ck_assert_int_eq(it_http("POST", url, NULL, "{}", NULL, &r), 0);
	if (r.status == 404 || r.status == 405) {
		it_resp_free(&r);
		printf("check_recordings: webhook receiver not in this build; signed-webhook path"
		       " skipped (recordings_on_egress is tested directly)\n");
		free(rec); free(egress); call_free(&c); PQfinish(db);
		return;
	}
	it_resp_free(&r);
	json_decref(lk("POST", "/_test/webhooks/auto", "{\"url\":null}"));
	/* let the stand-in's own STARTING -> ACTIVE step (100 ms) happen first */
	usleep(400 * 1000);
	/* the stand-in's egress uploads nothing: put the file where it would */
	{
		struct nc_worker w;
		struct nc_error e = {0};

		key = rec_col(db, rec, "object_key");
		worker_open(&w);
		ck_assert_int_eq(s3_put(w.s3, key, "mp4 bytes", 9, "video/mp4", &e), NC_OK);
		worker_close(&w);
		json_decref(s3ctl("POST", "/_test/reset", NULL));
	}
	{
		char b[256];
		snprintf(b, sizeof b, "{\"egressId\":\"%s\",\"status\":\"EGRESS_COMPLETE\"}", egress);
		json_decref(lk("POST", "/_test/egress/update", b));
	}
	info = egress_info(egress);
	ev = json_pack("{s:{s:s, s:O}}", "event", "event", "egress_ended", "egressInfo", info);
	signed_ev = it_standin("POST", "/_test/sign-webhook", ev);
	ck_assert_ptr_nonnull(signed_ev);
	auth_h = malloc(4096);
	snprintf(auth_h, 4096, "Authorization: %s",
		 json_string_value(json_object_get(signed_ev, "authorization")));
	hdrs[0] = auth_h;
	hdrs[1] = "Content-Type: application/webhook+json";
	hdrs[2] = NULL;
	ck_assert_int_eq(it_http("POST", url, NULL,
				 json_string_value(json_object_get(signed_ev, "body")), hdrs, &r), 0);
	ck_assert_msg(r.status == 200 || r.status == 204, "webhook: %ld %s", r.status, r.body);
	it_resp_free(&r);
	for (tries = 0; tries < 20; tries++) {
		v = rec_col(db, rec, "status");
		if (strcmp(v, "completed") == 0)
			break;
		free(v);
		v = NULL;
		usleep(100 * 1000);
	}
	ck_assert_ptr_nonnull(v);
	free(v);
	/* S3_SSE: the completed recording was re-written in place with encryption requested */
	{
		json_t *reqs = NULL, *q;
		size_t k;
		bool copied = false;

		for (tries = 0; tries < 30 && !copied; tries++) {
			json_decref(reqs);
			reqs = s3ctl("GET", "/_test/requests", NULL);
			json_array_foreach(reqs, k, q) {
				const char *path = json_string_value(json_object_get(q, "path"));
				if (strcmp(json_string_value(json_object_get(q, "method")), "PUT") == 0 &&
				    path != NULL && strstr(path, key) != NULL &&
				    json_is_true(json_object_get(q, "signatureOk")) &&
				    json_integer_value(json_object_get(q, "status")) == 200)
					copied = true;
			}
			if (!copied)
				usleep(100 * 1000);
		}
		json_decref(reqs);
		ck_assert_msg(copied, "no signed in-place copy of %s", key);
	}
	free(key);
	free(auth_h);
	json_decref(ev);
	json_decref(signed_ev);
	json_decref(info);
	free(rec);
	free(egress);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(download_url_works_and_tampered_refused)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char *rec, path[128], *url, *bad;
	struct it_resp r, d;
	const char *p[2];

	worker_open(&w);
	rec = completed_row(db, &w, &c, "30 days", false, 30, true);
	snprintf(path, sizeof path, "/api/recordings/%s", rec);
	ck_assert_int_eq(it_req(&srv, "GET", path, c.tok_member, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "completed");
	url = strdup(json_string_value(json_object_get(r.json, "downloadUrl")));
	ck_assert_ptr_nonnull(json_object_get(r.json, "downloadUrlExpiresAt"));
	it_resp_free(&r);
	/* Path-style on the public endpoint. */
	ck_assert_msg(strncmp(url, it_env("S3_ENDPOINT"), strlen(it_env("S3_ENDPOINT"))) == 0, "%s", url);
	ck_assert_ptr_nonnull(strstr(url, "/nchat-recordings/recordings/direct/"));
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, NULL, &d), 0);
	ck_assert_int_eq(d.status, 200);
	ck_assert_str_eq(d.body, "hello world");
	it_resp_free(&d);
	/* Tampered: another key with the same signature. */
	bad = strdup(url);
	*strstr(bad, ".mp4?") = 'x';
	ck_assert_int_eq(it_http("GET", bad, NULL, NULL, NULL, &d), 0);
	ck_assert_int_eq(d.status, 403);
	ck_assert_ptr_nonnull(strstr(d.body, "SignatureDoesNotMatch"));
	it_resp_free(&d);
	free(bad);
	/* The download is on record. */
	p[0] = rec;
	p[1] = c.member;
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_recording_downloads WHERE"
					 " recording_id = $1 AND user_id = $2", 2, p), 1);
	/* Outsiders see nothing. */
	ck_assert_int_eq(it_req(&srv, "GET", path, c.tok_outsider, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_recording_downloads WHERE"
					 " recording_id = $1", 1, p), 1);
	free(url);
	free(rec);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(delete_object_then_row)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char *rec, *key, path[128], *v;
	struct it_resp r;

	worker_open(&w);
	rec = completed_row(db, &w, &c, "30 days", false, 30, true);
	key = rec_col(db, rec, "object_key");
	snprintf(path, sizeof path, "/api/recordings/%s", rec);
	/* Not the initiator, not admin. */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_member, NULL, &r), 0);
	ck_assert_int_eq(r.status, 403);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_outsider, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	it_resp_free(&r);
	/* S3 down: 503, row and object untouched. */
	s3_fault_down(1);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_init, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(it_err_code(&r), "storage_unavailable");
	it_resp_free(&r);
	v = rec_col(db, rec, "status");
	ck_assert_str_eq(v, "completed");
	free(v);
	ck_assert(object_exists(&w, key));
	/* Now it works: object gone, row deleted. */
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_init, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	it_resp_free(&r);
	ck_assert(!object_exists(&w, key));
	v = rec_col(db, rec, "status || '|' || (deleted_at IS NOT NULL)");
	ck_assert_str_eq(v, "deleted|true");
	free(v);
	/* Deleted is gone for everyone: GET, the call's list, another DELETE, legal
	 * hold all 404 (issue 15 #14); the row stays for the download log. */
	{
		const char *who[] = { c.tok_init, c.tok_admin, c.tok_member };
		char lpath[128];

		snprintf(lpath, sizeof lpath, "/api/calls/%s/recordings", c.id);
		for (size_t i = 0; i < 3; i++) {
			ck_assert_int_eq(it_req(&srv, "GET", path, who[i], NULL, &r), 0);
			ck_assert_int_eq(r.status, 404);
			ck_assert_ptr_null(json_object_get(r.json, "downloadUrl"));
			it_resp_free(&r);
			ck_assert_int_eq(it_req(&srv, "GET", lpath, who[i], NULL, &r), 0);
			if (r.status == 200) {
				json_t *a = json_object_get(r.json, "recordings");
				for (size_t j = 0; j < json_array_size(a); j++)
					ck_assert_str_ne(json_string_value(json_object_get(
						json_array_get(a, j), "id")), rec);
			}
			it_resp_free(&r);
		}
		ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_init, NULL, &r), 0);
		ck_assert_int_eq(r.status, 404);
		it_resp_free(&r);
		ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_admin, NULL, &r), 0);
		ck_assert_int_eq(r.status, 404);
		it_resp_free(&r);
		snprintf(lpath, sizeof lpath, "/api/recordings/%s/legal-hold", rec);
		ck_assert_int_eq(it_req(&srv, "POST", lpath, c.tok_admin, "{\"hold\":true}", &r), 0);
		ck_assert_int_eq(r.status, 404);
		it_resp_free(&r);
		v = rec_col(db, rec, "status || '|' || legal_hold");
		ck_assert_str_eq(v, "deleted|false");
		free(v);
	}
	{
		const char *p[1] = { rec };
		ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_rtc_audit_log WHERE"
						 " action = 'recording.delete' AND target_id = $1", 1, p), 1);
	}
	/* Admin deletes a row whose object is already gone (404 = fine). */
	free(rec);
	rec = completed_row(db, &w, &c, "30 days", false, 30, false);
	snprintf(path, sizeof path, "/api/recordings/%s", rec);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_admin, NULL, &r), 0);
	ck_assert_int_eq(r.status, 204);
	it_resp_free(&r);
	free(key);
	free(rec);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(legal_hold)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char *rec, path[128], *v;
	struct it_resp r;

	worker_open(&w);
	rec = completed_row(db, &w, &c, "30 days", false, 30, true);
	snprintf(path, sizeof path, "/api/recordings/%s/legal-hold", rec);
	ck_assert_int_eq(post(path, c.tok_init, "{\"hold\":true}", &r), 403);
	it_resp_free(&r);
	ck_assert_int_eq(post(path, c.tok_admin, "{\"hold\":\"yes\"}", &r), 400);
	it_resp_free(&r);
	ck_assert_int_eq(post(path, c.tok_admin, "{\"hold\":true}", &r), 200);
	ck_assert(json_is_true(json_object_get(r.json, "legalHold")));
	it_resp_free(&r);
	snprintf(path, sizeof path, "/api/recordings/%s", rec);
	ck_assert_int_eq(it_req(&srv, "DELETE", path, c.tok_init, NULL, &r), 0);
	ck_assert_int_eq(r.status, 409);
	it_resp_free(&r);
	v = rec_col(db, rec, "status || legal_hold");
	ck_assert_str_eq(v, "completedtrue");
	free(v);
	free(rec);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(sweep_deletes_exactly_the_expired)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char *exp[3], *fresh, *held, *forever, *gone, out[512];
	const char *p[1];
	int rc;

	worker_open(&w);
	json_decref(s3ctl("POST", "/_test/reset", NULL));
	rc = run_sweep("", out, sizeof out); /* leftovers of other runs */
	for (int i = 0; i < 3; i++)
		exp[i] = completed_row(db, &w, &c, "-1 day", false, 30, true);
	gone = completed_row(db, &w, &c, "-1 day", false, 30, false); /* object already gone */
	fresh = completed_row(db, &w, &c, "10 days", false, 30, true);
	held = completed_row(db, &w, &c, "-1 day", true, 30, true);
	forever = completed_row(db, &w, &c, "", false, 0, true);

	rc = run_sweep("--dry-run", out, sizeof out);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "sweep-recordings: found 4, would delete 4, failed 0\n");
	p[0] = c.id;
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					 " AND status = 'deleted'", 1, p), 0);

	/* S3 down: nothing deleted, rows stay, exit 1. */
	s3_fault_down(-1);
	rc = run_sweep("", out, sizeof out);
	json_decref(s3ctl("POST", "/_test/reset", NULL));
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strncmp(out, "sweep-recordings: found ", 24) == 0 &&
		      strstr(out, "deleted 0, failed ") != NULL, "%s", out);
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					 " AND status = 'deleted'", 1, p), 0);

	rc = run_sweep("", out, sizeof out);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "sweep-recordings: found 4, deleted 4, failed 0\n");
	for (int i = 0; i < 3; i++) {
		char *k = rec_col(db, exp[i], "object_key"), *s = rec_col(db, exp[i], "status");
		ck_assert_str_eq(s, "deleted");
		ck_assert(!object_exists(&w, k));
		free(k);
		free(s);
		free(exp[i]);
	}
	{
		const char *keep[] = { fresh, held, forever };
		for (int i = 0; i < 3; i++) {
			char *k = rec_col(db, keep[i], "object_key"), *s = rec_col(db, keep[i], "status");
			ck_assert_str_eq(s, "completed");
			ck_assert(object_exists(&w, k));
			free(k);
			free(s);
		}
	}
	{
		char *s = rec_col(db, gone, "status");
		ck_assert_str_eq(s, "deleted");
		free(s);
	}
	/* Nothing left: found 0. */
	rc = run_sweep("--limit 10", out, sizeof out);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(out, "sweep-recordings: found 0, deleted 0, failed 0\n");
	rc = run_sweep("--limit nope", out, sizeof out);
	ck_assert_int_eq(rc, 2);
	free(fresh); free(held); free(forever); free(gone);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(concurrent_sweeps_delete_each_object_once)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char out[512], cmd[1024], *paths[2];
	FILE *f[2];
	long deleted = 0;
	json_t *reqs, *q;
	size_t i, n_del = 0;
	const char *p[1] = { c.id };

	worker_open(&w);
	run_sweep("", out, sizeof out); /* leftovers */
	for (int k = 0; k < 50; k++)
		free(completed_row(db, &w, &c, "-1 hour", false, 30, true));
	json_decref(s3ctl("POST", "/_test/reset", NULL));
	snprintf(cmd, sizeof cmd, "%s sweep-recordings 2>>%s/sweep.err", it_env("NC_BIN"),
		 it_env("NC_RUN_DIR"));
	f[0] = popen(cmd, "r");
	f[1] = popen(cmd, "r");
	for (int k = 0; k < 2; k++) {
		size_t n = fread(out, 1, sizeof out - 1, f[k]);
		long found, del, failed;
		int st;
		out[n] = '\0';
		st = pclose(f[k]);
		ck_assert_msg(st == 0, "sweep %d exited %d: %s", k, st, out);
		ck_assert_msg(sscanf(out, "sweep-recordings: found %ld, deleted %ld, failed %ld",
				     &found, &del, &failed) == 3, "%s", out);
		ck_assert_int_eq(failed, 0);
		deleted += del;
	}
	ck_assert_int_eq(deleted, 50);
	ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE call_id = $1"
					 " AND status = 'deleted'", 1, p), 50);
	/* Each object got exactly one DELETE. */
	reqs = s3ctl("GET", "/_test/requests", NULL);
	paths[0] = paths[1] = NULL;
	json_array_foreach(reqs, i, q) {
		if (strcmp(json_string_value(json_object_get(q, "method")), "DELETE") != 0)
			continue;
		ck_assert(json_is_true(json_object_get(q, "signatureOk")));
		n_del++;
	}
	ck_assert_int_eq(n_del, 50);
	{
		/* distinct paths */
		json_t *seen = json_object();
		json_array_foreach(reqs, i, q)
			if (strcmp(json_string_value(json_object_get(q, "method")), "DELETE") == 0)
				json_object_set_new(seen, json_string_value(json_object_get(q, "path")),
						    json_true());
		ck_assert_int_eq(json_object_size(seen), 50);
		json_decref(seen);
	}
	json_decref(reqs);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(reconcile_reports_orphans_and_missing)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "ended");
	struct nc_worker w;
	char out[1024], *missing, orphan[128], errpath[512], *log;
	struct nc_error err;
	FILE *f;
	long sz;
	int rc;

	worker_open(&w);
	missing = completed_row(db, &w, &c, "30 days", false, 30, false);
	snprintf(orphan, sizeof orphan, "recordings/direct/orphan-%s.mp4", c.id);
	ck_assert_int_eq(s3_put(w.s3, orphan, "x", 1, NULL, &err), NC_OK);
	snprintf(errpath, sizeof errpath, "%s/sweep.err", it_env("NC_RUN_DIR"));
	unlink(errpath);
	rc = run_sweep("--reconcile", out, sizeof out);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strncmp(out, "sweep-recordings: reconcile: ", 29) == 0, "%s", out);
	f = fopen(errpath, "r");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	log = calloc(1, (size_t)sz + 1);
	ck_assert_int_eq(fread(log, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	ck_assert_msg(strstr(log, orphan) != NULL, "orphan not reported: %s", log);
	ck_assert_msg(strstr(log, missing) != NULL, "missing object not reported: %s", log);
	free(log);
	free(missing);
	worker_close(&w);
	call_free(&c);
	PQfinish(db);
}
END_TEST

START_TEST(stop_for_call_stops_the_egress)
{
	PGconn *db = it_db();
	struct call c = new_call(db, "active");
	struct nc_worker w;
	struct nc_error err;
	char *egress, *rec = start_rec(&c, "{}", &egress), *v;
	json_t *sr;

	worker_open(&w);
	w.lk = calloc(1, sizeof *w.lk);
	ck_assert_int_eq(lk_client_init(w.lk, cfg), 0);
	ck_assert_int_eq(recordings_stop_for_call(&w, c.id, &err), NC_OK);
	sr = last_lk_request("StopEgress");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sr, "request"),
							   "egressId")), egress);
	json_decref(sr);
	v = rec_col(db, rec, "status");
	ck_assert_str_eq(v, "ending");
	free(v);
	/* No recording in progress: nothing to do. */
	ck_assert_int_eq(recordings_stop_for_call(&w, c.id, &err), NC_OK);
	lk_client_cleanup(w.lk);
	free(w.lk);
	w.lk = NULL;
	worker_close(&w);
	free(rec);
	free(egress);
	call_free(&c);
	PQfinish(db);
}
END_TEST

static Suite *recordings_suite(void)
{
	Suite *s = suite_create("recordings");
	TCase *api = tcase_create("api");
	TCase *sweep = tcase_create("sweep");

	tcase_set_timeout(api, 60);
	tcase_set_timeout(sweep, 120);
	tcase_add_test(api, start_sends_s3_output_and_second_start_conflicts);
	tcase_add_test(api, audio_only_and_defaults);
	tcase_add_test(api, who_may_record);
	tcase_add_test(api, call_state_checked);
	tcase_add_test(api, livekit_failure_fails_the_row);
	tcase_add_test(api, stop_and_egress_events_complete_the_row);
	tcase_add_test(api, failed_and_aborted_events);
	tcase_add_test(api, webhook_through_server);
	tcase_add_test(api, stop_for_call_stops_the_egress);
	tcase_add_test(api, download_url_works_and_tampered_refused);
	tcase_add_test(api, delete_object_then_row);
	tcase_add_test(api, legal_hold);
	tcase_add_test(sweep, sweep_deletes_exactly_the_expired);
	tcase_add_test(sweep, concurrent_sweeps_delete_each_object_once);
	tcase_add_test(sweep, reconcile_reports_orphans_and_missing);
	suite_add_tcase(s, api);
	suite_add_tcase(s, sweep);
	return s;
}

int main(void)
{
	static const char *const need[] = { "NC_BIN", "DATABASE_URL", "LK_STANDIN_URL",
					     "S3_ENDPOINT", "S3_BUCKET", "AUTH_JWT_SECRET",
					     "NC_RUN_DIR", NULL };
	static const char *const extra[] = { "S3_FORCE_PATH_STYLE=true", "S3_SSE=AES256", NULL };
	char errbuf[256];
	SRunner *sr;
	int failed;

	it_require(need);
	/* So recording.ready lands in the outbox (nothing listens there). */
	setenv("OUTBOUND_WEBHOOK_URLS", "http://127.0.0.1:9/nchat-hook", 1);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cfg = cfg_load(NULL, errbuf, sizeof errbuf);
	if (cfg == NULL) {
		fprintf(stderr, "check_recordings: %s\n", errbuf);
		return 1;
	}
	if (it_server_start(&srv, extra) != 0) {
		fprintf(stderr, "check_recordings: server did not start\n");
		return 1;
	}
	sr = srunner_create(recordings_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	it_server_stop(&srv);
	cfg_free(cfg);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
