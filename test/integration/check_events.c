/*
 * Integration tests of realtime events (SSE) across two instances on one
 * Postgres and Redis: delivery across instances, order, Last-Event-ID
 * replay, reaction batching, slow-consumer drop, token expiry, the
 * per-user cap, HTTP/1.1 chunked streaming, and the memory cost of idle
 * connections.  Events are published with the service's own rt_publish
 * (events.c), exactly as a handler on another instance would.
 */
#include "harness.h"
#include "core/uuid.h"
#include "realtime/events.h"
#include "http/worker.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct it_server a, b;
static char uid[37], stream_id[37];
static struct nc_worker pub; /* a publisher with a Redis connection, like a worker */

/* ---- a tiny SSE client over HTTP/1.0 (no chunked framing to undo) ---- */

struct sse_client {
	int fd;
	char buf[1 << 16];
	size_t len;
	bool eof;
};

struct sse_event {
	char id[160];
	char type[64];
	char data[4096];
};

static int sse_connect(struct sse_client *c, int port, const char *token, const char *path,
		       const char *last_id)
{
	struct sockaddr_in sa;
	char reqbuf[8192];
	int n;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	n = snprintf(reqbuf, sizeof(reqbuf), "GET %s HTTP/1.0\r\nHost: test\r\n%s%s%s%s%s\r\n", path,
		     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
		     last_id ? "Last-Event-ID: " : "", last_id ? last_id : "");
	if (last_id != NULL)
		n += snprintf(reqbuf + n - 2, sizeof(reqbuf) - (size_t)n, "\r\n\r\n") - 2;
	return write(c->fd, reqbuf, (size_t)n) == n ? 0 : -1;
}

static bool fill(struct sse_client *c, int timeout_ms)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	ssize_t n;

	if (c->eof || c->len == sizeof(c->buf) - 1)
		return false;
	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n <= 0) {
		c->eof = true;
		return false;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return true;
}

/* HTTP status of the response (reads the header block). */
static int sse_status(struct sse_client *c, int timeout_ms)
{
	char *end;
	int status = 0;

	while ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		if (!fill(c, timeout_ms))
			return -1;
	sscanf(c->buf, "HTTP/1.%*d %d", &status);
	end += 4;
	c->len -= (size_t)(end - c->buf);
	memmove(c->buf, end, c->len + 1);
	return status;
}

/* Next event (comments skipped); false on timeout or EOF. */
static bool sse_next(struct sse_client *c, struct sse_event *ev, int timeout_ms)
{
	for (;;) {
		char *sep = strstr(c->buf, "\n\n");

		if (sep != NULL) {
			char *line = c->buf, *next;
			bool any = false;

			*sep = '\0';
			memset(ev, 0, sizeof(*ev));
			for (; line != NULL && *line; line = next) {
				next = strchr(line, '\n');
				if (next)
					*next++ = '\0';
				if (strncmp(line, "id: ", 4) == 0)
					snprintf(ev->id, sizeof(ev->id), "%s", line + 4);
				else if (strncmp(line, "event: ", 7) == 0)
					snprintf(ev->type, sizeof(ev->type), "%s", line + 7), any = true;
				else if (strncmp(line, "data: ", 6) == 0)
					snprintf(ev->data, sizeof(ev->data), "%s", line + 6);
			}
			sep += 2;
			c->len -= (size_t)(sep - c->buf);
			memmove(c->buf, sep, c->len + 1);
			if (any)
				return true;
			continue;
		}
		if (!fill(c, timeout_ms))
			return false;
	}
}

static void sse_close(struct sse_client *c)
{
	close(c->fd);
}

static void publish_user(const char *type, int n)
{
	char topic[64];

	snprintf(topic, sizeof(topic), "user:%s", uid);
	for (int i = 0; i < n; i++) {
		json_t *d = json_pack("{s:i}", "seq", i);
		ck_assert_int_eq(rt_publish(&pub, topic, type, d), 0);
		json_decref(d);
	}
}

static int seq_of(const struct sse_event *ev)
{
	json_t *d = json_loads(ev->data, 0, NULL);
	int s = (int)json_integer_value(json_object_get(d, "seq"));

	json_decref(d);
	return s;
}

START_TEST(cross_instance_in_order)
{
	struct sse_client ca, cb;
	struct sse_event ev;
	char *tok = it_user_token(uid, NULL, 600);

	ck_assert_int_eq(sse_connect(&ca, a.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_connect(&cb, b.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&ca, 5000), 200);
	ck_assert_int_eq(sse_status(&cb, 5000), 200);
	usleep(200 * 1000);
	publish_user("call.updated", 30);
	for (int i = 0; i < 30; i++) {
		ck_assert_msg(sse_next(&ca, &ev, 5000), "instance A: event %d missing", i);
		ck_assert_str_eq(ev.type, "call.updated");
		ck_assert_int_eq(seq_of(&ev), i);
		ck_assert_msg(ev.id[0] == 'u', "id %s", ev.id);
		ck_assert_msg(sse_next(&cb, &ev, 5000), "instance B: event %d missing", i);
		ck_assert_int_eq(seq_of(&ev), i);
	}
	sse_close(&ca);
	sse_close(&cb);
	free(tok);
}
END_TEST

START_TEST(last_event_id_replay)
{
	struct sse_client c;
	struct sse_event ev;
	char last[160];
	char *tok = it_user_token(uid, NULL, 600);

	ck_assert_int_eq(sse_connect(&c, b.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	usleep(200 * 1000);
	publish_user("call.invite", 3);
	for (int i = 0; i < 3; i++)
		ck_assert(sse_next(&c, &ev, 5000));
	snprintf(last, sizeof(last), "%s", ev.id);
	sse_close(&c);
	publish_user("call.ended", 5); /* missed while away */
	/* reconnect to the OTHER instance: the replay log is shared */
	ck_assert_int_eq(sse_connect(&c, a.port, tok, "/api/events", last), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(sse_next(&c, &ev, 5000), "replayed event %d missing", i);
		ck_assert_str_eq(ev.type, "call.ended");
		ck_assert_int_eq(seq_of(&ev), i);
	}
	/* and then live, without duplicates */
	publish_user("call.updated", 1);
	ck_assert(sse_next(&c, &ev, 5000));
	ck_assert_str_eq(ev.type, "call.updated");
	ck_assert(!sse_next(&c, &ev, 300));
	sse_close(&c);
	free(tok);
}
END_TEST

START_TEST(anonymous_stream_and_reaction_batching)
{
	struct sse_client c;
	struct sse_event ev;
	char path[128], topic[64];
	int total = 0, events = 0;

	snprintf(path, sizeof(path), "/api/events?stream=%s", stream_id);
	ck_assert_int_eq(sse_connect(&c, a.port, NULL, path, NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	usleep(200 * 1000);
	snprintf(topic, sizeof(topic), "stream:%s", stream_id);
	for (int i = 0; i < 40; i++) {
		json_t *d = json_pack("{s:s}", "reactionType", i % 2 ? "heart" : "fire");
		ck_assert_int_eq(rt_publish(&pub, topic, "stream.reaction", d), 0);
		json_decref(d);
	}
	{
		json_t *d = json_pack("{s:s}", "content", "hello");
		ck_assert_int_eq(rt_publish(&pub, topic, "stream.chat", d), 0);
		json_decref(d);
	}
	while (total < 40 && sse_next(&c, &ev, 3000)) {
		if (strcmp(ev.type, "stream.reaction") == 0) {
			json_t *d = json_loads(ev.data, 0, NULL), *counts = json_object_get(d, "counts");
			total += (int)(json_integer_value(json_object_get(counts, "heart")) +
				       json_integer_value(json_object_get(counts, "fire")));
			events++;
			json_decref(d);
			ck_assert_msg(ev.id[0] == 's', "stream id expected, got %s", ev.id);
		}
	}
	ck_assert_int_eq(total, 40);
	ck_assert_msg(events <= 3, "40 reactions came as %d events", events);
	sse_close(&c);
	/* anonymous without a stream, or with an unknown one */
	ck_assert_int_eq(sse_connect(&c, a.port, NULL, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 401);
	sse_close(&c);
	ck_assert_int_eq(sse_connect(&c, a.port, NULL, "/api/events?stream=0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 404);
	sse_close(&c);
	ck_assert_int_eq(sse_connect(&c, a.port, NULL, "/api/events?stream=nope", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 400);
	sse_close(&c);
}
END_TEST

/* A signed ingress_started from the LiveKit stand-in reaches a stream's viewers as stream.status. */
START_TEST(webhook_changes_reach_viewers)
{
	PGconn *db = it_db();
	struct sse_client c;
	struct sse_event ev;
	char path[128], ingress[40], url[128], auth[4096];
	const char *hdrs[3] = {auth, "Content-Type: application/webhook+json", NULL};
	char *sid, *ch = it_new_channel(db, "ingest"), *u = it_new_user(db, "Broadcaster"), *tok;
	json_t *event, *signed_ev;
	struct it_resp r;
	bool got = false;

	{
		/* unique per run: the database may hold earlier runs' streams */
		char *rnd = it_sql(db, "SELECT md5(gen_random_uuid()::text)", 0, NULL);
		snprintf(ingress, sizeof(ingress), "IN_%.20s", rnd);
		free(rnd);
	}
	{
		const char *p[] = {ch, u, ingress};
		sid = it_sql(db,
			     "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status,"
			     " livekit_room_name, livekit_ingress_id)"
			     " VALUES ($1, $2, 'Ingest test', 'preparing', 'stream-' || gen_random_uuid(), $3)"
			     " RETURNING id",
			     3, p);
	}
	snprintf(path, sizeof(path), "/api/events?stream=%s", sid);
	/* A stream that is not live yet: its channel's members (here the
	 * broadcaster) may follow it, anonymous callers may not. */
	ck_assert_int_eq(sse_connect(&c, b.port, NULL, path, NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 401);
	sse_close(&c);
	tok = it_user_token(u, "user", 3600);
	ck_assert_int_eq(sse_connect(&c, b.port, tok, path, NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	usleep(200 * 1000);
	event = json_pack("{s:{s:s, s:{s:s, s:{s:s}}}}", "event", "event", "ingress_started",
			  "ingressInfo", "ingressId", ingress, "state", "status", "ENDPOINT_PUBLISHING");
	signed_ev = it_standin("POST", "/_test/sign-webhook", event);
	ck_assert_ptr_nonnull(signed_ev);
	snprintf(auth, sizeof(auth), "Authorization: %s",
		 json_string_value(json_object_get(signed_ev, "authorization")));
	snprintf(url, sizeof(url), "%s/api/webhooks/livekit", a.base); /* another instance */
	ck_assert_int_eq(it_http("POST", url, NULL, json_string_value(json_object_get(signed_ev, "body")),
				 hdrs, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	while (!got && sse_next(&c, &ev, 5000))
		if (strcmp(ev.type, "stream.status") == 0 && strstr(ev.data, "\"live\"") != NULL)
			got = true;
	ck_assert_msg(got, "no stream.status live event");
	sse_close(&c);
	json_decref(event);
	json_decref(signed_ev);
	free(sid);
	free(ch);
	free(u);
	free(tok);
	PQfinish(db);
}
END_TEST

static int services(const char *what)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "RUN_DIR='%s' bash '%s/scripts/services.sh' %s >/dev/null 2>&1",
		 it_env("NC_RUN_DIR"), it_env("NC_ROOT"), what);
	return system(cmd);
}

/*
 * Redis restarts: an event published right after it is back, before the hub
 * has re-subscribed, still reaches a connected client (the hub replays from
 * each stream's position once its subscription is active again).
 */
START_TEST(redis_restart_loses_nothing)
{
	struct sse_client c;
	struct sse_event ev;
	char *tok = it_user_token(uid, NULL, 600), topic[64];
	json_t *d = json_pack("{s:s}", "marker", "after-restart");
	bool published = false, got = false;

	if (it_env("NC_ROOT") == NULL || it_env("NC_RUN_DIR") == NULL)
		return;
	ck_assert_int_eq(sse_connect(&c, a.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	usleep(200 * 1000);
	publish_user("call.updated", 1);
	ck_assert(sse_next(&c, &ev, 5000)); /* the stream now has a position */
	ck_assert_int_eq(services("redis-restart"), 0);
	snprintf(topic, sizeof(topic), "user:%s", uid);
	for (int i = 0; i < 100 && !published; i++) { /* as soon as Redis answers again */
		published = rt_publish(&pub, topic, "call.invite", d) == 0;
		if (!published)
			usleep(50 * 1000);
	}
	ck_assert(published);
	while (!got && sse_next(&c, &ev, 6000))
		if (strcmp(ev.type, "call.invite") == 0 && strstr(ev.data, "after-restart") != NULL)
			got = true;
	ck_assert_msg(got, "the event published during the hub's reconnect never arrived");
	sse_close(&c);
	json_decref(d);
	free(tok);
}
END_TEST

/*
 * Redis stopped and started while streams that have received nothing yet
 * are open.  One whose topic had a live event before the outage takes that
 * event as its position, so the replay brings what was published in the
 * gap; one on a topic that never had an event here has no position at all
 * and is told to refetch (events.resync) - or gets the event live, when the
 * hub was back before it was published.
 */
START_TEST(redis_outage_reaches_streams_without_a_position)
{
	struct it_server s;
	struct sse_client c1, c2, c3;
	struct sse_event ev;
	char other[37], topic[64], topic2[64];
	char *tok = it_user_token(uid, NULL, 600), *tok2;
	json_t *d = json_pack("{s:s}", "marker", "during-outage");
	bool published = false, got2 = false, got3 = false;

	if (it_env("NC_ROOT") == NULL || it_env("NC_RUN_DIR") == NULL)
		return;
	uuid_v4(other);
	tok2 = it_user_token(other, NULL, 600);
	ck_assert_int_eq(it_server_start(&s, NULL), 0);
	/* c1 sees an event live: the hub knows the topic's last event */
	ck_assert_int_eq(sse_connect(&c1, s.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c1, 5000), 200);
	usleep(200 * 1000);
	publish_user("call.updated", 1);
	ck_assert(sse_next(&c1, &ev, 5000));
	/* c2 (same topic) and c3 (a topic without events) receive nothing before the outage */
	ck_assert_int_eq(sse_connect(&c2, s.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c2, 5000), 200);
	ck_assert_int_eq(sse_connect(&c3, s.port, tok2, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c3, 5000), 200);
	usleep(200 * 1000);
	ck_assert_int_eq(services("redis-stop"), 0);
	usleep(1500 * 1000); /* the hub has noticed */
	ck_assert_int_eq(services("redis-start"), 0);
	snprintf(topic, sizeof(topic), "user:%s", uid);
	snprintf(topic2, sizeof(topic2), "user:%s", other);
	for (int i = 0; i < 100 && !published; i++) { /* as soon as Redis answers again */
		published = rt_publish(&pub, topic, "call.invite", d) == 0;
		if (!published)
			usleep(50 * 1000);
	}
	ck_assert(published);
	ck_assert_int_eq(rt_publish(&pub, topic2, "call.invite", d), 0);
	while (!got2 && sse_next(&c2, &ev, 6000))
		if (strcmp(ev.type, "call.invite") == 0 && strstr(ev.data, "during-outage") != NULL)
			got2 = true;
	ck_assert_msg(got2, "a stream without a position missed the event published during the outage");
	while (!got3 && sse_next(&c3, &ev, 6000))
		if ((strcmp(ev.type, "call.invite") == 0 && strstr(ev.data, "during-outage") != NULL) ||
		    (strcmp(ev.type, "events.resync") == 0 && strstr(ev.data, "\"user\"") != NULL))
			got3 = true;
	ck_assert_msg(got3, "a stream on a topic without events got neither the event nor events.resync");
	sse_close(&c1);
	sse_close(&c2);
	sse_close(&c3);
	ck_assert_int_eq(it_server_stop(&s), 0);
	json_decref(d);
	free(tok);
	free(tok2);
}
END_TEST

START_TEST(token_expiry_closes)
{
	struct sse_client c;
	struct sse_event ev;
	char *tok = it_user_token(uid, NULL, 2);
	time_t t0 = time(NULL);
	bool got = false;

	ck_assert_int_eq(sse_connect(&c, a.port, tok, "/api/events", NULL), 0);
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	while (sse_next(&c, &ev, 8000))
		if (strcmp(ev.type, "token.expired") == 0)
			got = true;
	ck_assert(got);
	ck_assert(c.eof);
	ck_assert_int_le(time(NULL) - t0, 8);
	sse_close(&c);
	free(tok);
}
END_TEST

START_TEST(per_user_cap)
{
	struct it_server s;
	const char *env[] = {"SSE_MAX_PER_USER=2", NULL};
	struct sse_client c[3];
	char *tok = it_user_token(uid, NULL, 600);

	ck_assert_int_eq(it_server_start(&s, env), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sse_connect(&c[i], s.port, tok, "/api/events", NULL), 0);
		ck_assert_int_eq(sse_status(&c[i], 5000), i < 2 ? 200 : 429);
	}
	for (int i = 0; i < 3; i++)
		sse_close(&c[i]);
	ck_assert_int_eq(it_server_stop(&s), 0);
	free(tok);
}
END_TEST

START_TEST(slow_consumer_is_dropped)
{
	struct it_server s;
	const char *env[] = {"SSE_MAX_BUFFER_BYTES=8192", NULL};
	struct sse_client c;
	char *tok = it_user_token(uid, NULL, 600);
	char big[3000], topic[64];
	int rcvbuf = 4096;
	size_t total = 0;

	ck_assert_int_eq(it_server_start(&s, env), 0);
	ck_assert_int_eq(sse_connect(&c, s.port, tok, "/api/events", NULL), 0);
	setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	ck_assert_int_eq(sse_status(&c, 5000), 200);
	usleep(200 * 1000);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(topic, sizeof(topic), "user:%s", uid);
	/* ~6 MB of events the client never reads */
	for (int i = 0; i < 2000; i++) {
		json_t *d = json_pack("{s:s}", "pad", big);
		rt_publish(&pub, topic, "call.updated", d);
		json_decref(d);
	}
	/* now read: the server must have cut us off long before 6 MB */
	for (int i = 0; i < 2000 && !c.eof; i++) {
		c.len = 0;
		if (fill(&c, 2000))
			total += c.len;
		else if (!c.eof)
			break;
	}
	ck_assert_msg(c.eof, "server did not drop the slow client");
	ck_assert_msg(total < 2000 * 3000 / 2, "read %zu bytes", total);
	sse_close(&c);
	/* the server is fine afterwards */
	{
		struct it_resp r;
		ck_assert_int_eq(it_req(&s, "GET", "/healthz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	ck_assert_int_eq(it_server_stop(&s), 0);
	free(tok);
}
END_TEST

static size_t curl_first_event(char *data, size_t size, size_t nmemb, void *arg)
{
	char *acc = arg;
	size_t n = size * nmemb, have = strlen(acc);

	if (have + n < 8191) {
		memcpy(acc + have, data, n);
		acc[have + n] = '\0';
	}
	return strstr(acc, "event: call.invite") ? 0 : n; /* stop once it arrived */
}

START_TEST(http11_chunked_with_curl)
{
	CURL *cu = curl_easy_init();
	char url[4096], auth[256], acc[8192] = "";
	char *tok = it_user_token(uid, NULL, 600);
	struct curl_slist *h = NULL;
	pid_t pid;

	snprintf(url, sizeof(url), "%s/api/events?access_token=%s", b.base, tok);
	snprintf(auth, sizeof(auth), "Accept: text/event-stream");
	h = curl_slist_append(h, auth);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, curl_first_event);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, acc);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 8000L);
	pid = fork();
	if (pid == 0) {
		usleep(700 * 1000);
		publish_user("call.invite", 1);
		_exit(0);
	}
	curl_easy_perform(cu);
	waitpid(pid, NULL, 0);
	ck_assert_msg(strstr(acc, "event: call.invite") != NULL, "curl received: %s", acc);
	ck_assert_ptr_nonnull(strstr(acc, "retry: 2000"));
	curl_slist_free_all(h);
	curl_easy_cleanup(cu);
	free(tok);
}
END_TEST

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/*
 * 2,000 idle event streams must cost little: under 8 KiB each (server RSS
 * growth), measured on the release build when present.
 */
START_TEST(idle_connections_are_cheap)
{
	enum { N = 2000 };
	struct rlimit rl = {8192, 8192};
	struct it_server s;
	static struct sse_client cl[N];
	char *tok;
	long before, after;
	char **users = calloc(N, sizeof(char *));
	PGconn *db = it_db();

	setrlimit(RLIMIT_NOFILE, &rl);
	/* Measure the release build when it is there: ASan pads every allocation. */
	{
		const char *bin = it_env("NC_BIN");
		const char *asan = strstr(bin, "build/asan/");
		static char rel[1024];

		if (asan != NULL) {
			snprintf(rel, sizeof(rel), "%.*sbuild/release/%s", (int)(asan - bin), bin,
				 asan + strlen("build/asan/"));
			if (access(rel, X_OK) == 0)
				setenv("NC_BIN", rel, 1);
		}
	}
	ck_assert_int_eq(it_server_start(&s, NULL), 0);
	for (int i = 0; i < 16; i++) { /* warm up worker connections */
		struct it_resp r;
		it_req(&s, "GET", "/readyz", NULL, NULL, &r);
		it_resp_free(&r);
	}
	before = rss_kib(s.pid);
	for (int i = 0; i < N; i++) {
		char id[37];
		uuid_v4(id);
		tok = it_user_token(id, NULL, 600);
		ck_assert_int_eq(sse_connect(&cl[i], s.port, tok, "/api/events", NULL), 0);
		free(tok);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(sse_status(&cl[i], 10000), 200);
	usleep(300 * 1000);
	after = rss_kib(s.pid);
	printf("sse: %d idle connections: RSS %ld -> %ld KiB, %.0f bytes each\n", N, before, after,
	       (double)(after - before) * 1024.0 / N);
	fflush(stdout);
	ck_assert_msg((after - before) * 1024 / N < 8 * 1024, "%ld bytes per connection",
		      (after - before) * 1024 / N);
	for (int i = 0; i < N; i++)
		sse_close(&cl[i]);
	ck_assert_int_eq(it_server_stop(&s), 0);
	free(users);
	PQfinish(db);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			      "DATABASE_MIGRATE_URL", "LK_STANDIN_URL", NULL};
	const char *env[] = {"SSE_REACTION_BATCH_MS=400", NULL};
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("sse");
	SRunner *sr;
	PGconn *db;
	char *u, *ch;
	struct nc_config cfg;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	db = it_db();
	u = it_new_user(db, "SSE Tester");
	snprintf(uid, sizeof(uid), "%s", u);
	ch = it_new_channel(db, "sse");
	{
		const char *p[] = {ch, u};
		char *sid = it_sql(db,
				   "INSERT INTO nchat_streams (channel_id, broadcaster_id, title, status, livekit_room_name)"
				   " VALUES ($1, $2, 'SSE test', 'live', 'stream-sse-' || gen_random_uuid()) RETURNING id",
				   2, p);
		snprintf(stream_id, sizeof(stream_id), "%s", sid);
		free(sid);
	}
	free(u);
	free(ch);
	PQfinish(db);
	memset(&cfg, 0, sizeof(cfg));
	pub.cfg = &cfg;
	pub.rds_ok = rds_init(&pub.rds, it_env("REDIS_URL"), 2000) == 0;
	if (it_server_start(&a, env) != 0 || it_server_start(&b, env) != 0) {
		fprintf(stderr, "cannot start the servers\n");
		return 1;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, cross_instance_in_order);
	tcase_add_test(tc, last_event_id_replay);
	tcase_add_test(tc, anonymous_stream_and_reaction_batching);
	tcase_add_test(tc, token_expiry_closes);
	tcase_add_test(tc, webhook_changes_reach_viewers);
	tcase_add_test(tc, redis_restart_loses_nothing);
	tcase_add_test(tc, redis_outage_reaches_streams_without_a_position);
	tcase_add_test(tc, per_user_cap);
	tcase_add_test(tc, slow_consumer_is_dropped);
	tcase_add_test(tc, http11_chunked_with_curl);
	tcase_add_test(tc, idle_connections_are_cheap);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&a) != 0 || it_server_stop(&b) != 0) {
		fprintf(stderr, "a server did not exit 0 on SIGTERM\n");
		failed++;
	}
	rds_cleanup(&pub.rds);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
