/*
 * Integration tests of the front door (issue 15), against the real server,
 * Postgres and Redis, over raw sockets where the bytes matter: request
 * smuggling (the smuggled request never runs: no row, connection closed),
 * methods no route serves, routing on the raw path, the acting role,
 * X-Forwarded-For over several lines, CORS with a wildcard, the anonymous
 * event-stream cap, the metrics listener and token, upstream error text.
 * The smuggling cases run with the service logged in as its member role and
 * as the database superuser.
 */
#include "harness.h"
#include "core/uuid.h"
#include "core/common.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct it_server srv;
static PGconn *db;
static char *ch, *u_b, *u_m, *t_b, *t_m; /* channel, broadcaster, member and their tokens */
static char *stream_id;                   /* a stream in ch (preparing) */

/* ------------------------------------------------------------ raw sockets */

static int raw_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

struct exchange {
	char buf[65536];
	size_t len;
	bool closed;    /* the server closed the connection (EOF or reset) */
};

/* Send len bytes on a new connection; read until the server closes or timeout_ms of quiet. */
static void exchange(int port, const char *req, size_t len, int timeout_ms, struct exchange *x)
{
	int fd = raw_connect(port);
	struct pollfd p = {fd, POLLIN, 0};

	memset(x, 0, sizeof(*x));
	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(fd, x->buf + x->len, sizeof(x->buf) - 1 - x->len);

		if (n <= 0) {
			x->closed = true;
			break;
		}
		x->len += (size_t)n;
		x->buf[x->len] = '\0';
	}
	close(fd);
}

/* Number of HTTP responses in x (status lines). */
static int responses(const struct exchange *x)
{
	int n = 0;

	for (const char *p = x->buf; (p = strstr(p, "HTTP/1.")) != NULL; p++)
		if (p == x->buf || p[-1] == '\n' || p[-1] == '}')
			n++;
	return n;
}

/* ------------------------------------------------------------ helpers */

static json_t *call(const struct it_server *s, const char *method, const char *path,
		    const char *token, const char *body, long want)
{
	struct it_resp r;
	json_t *out;

	ck_assert_int_eq(it_req(s, method, path, token, body, &r), 0);
	ck_assert_msg(r.status == want, "%s %s: %ld %s", method, path, r.status, r.body);
	out = json_incref(r.json);
	it_resp_free(&r);
	return out;
}

static long chat_rows(const char *marker)
{
	const char *p[] = {marker};

	return it_sql_long(db, "SELECT count(*) FROM nchat_stream_chat_messages WHERE content = $1", 1,
			   p);
}

/* The chat POST another user smuggles: a complete request of its own. */
static char *smuggled_chat(const char *marker, const char *token)
{
	char body[256], *req;

	snprintf(body, sizeof(body), "{\"content\":\"%s\"}", marker);
	ck_assert(asprintf(&req,
			   "POST /api/streams/%s/chat HTTP/1.1\r\nHost: t\r\n"
			   "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\n\r\n%s",
			   stream_id, token, strlen(body), body) > 0);
	return req;
}

static void unique_marker(char *out, size_t len, const char *what)
{
	static int n;

	snprintf(out, len, "smuggled-%s-%d-%d", what, (int)getpid(), ++n);
}

/* One smuggling attempt: exactly one 400 (JSON), the connection closed, no row. */
static void refused_and_closed(const struct it_server *s, const char *what, const char *req,
			       size_t len, const char *marker)
{
	struct exchange x;

	exchange(s->port, req, len, 3000, &x);
	ck_assert_msg(strncmp(x.buf, "HTTP/1.1 400 ", 13) == 0, "%s: answered %.80s", what, x.buf);
	ck_assert_msg(strstr(x.buf, "\"bad_request\"") != NULL, "%s: no JSON error: %s", what, x.buf);
	ck_assert_msg(responses(&x) == 1, "%s: %d responses: %s", what, responses(&x), x.buf);
	ck_assert_msg(x.closed, "%s: the connection stayed open", what);
	usleep(100 * 1000);
	ck_assert_msg(chat_rows(marker) == 0, "%s: the smuggled request ran", what);
}

/* ------------------------------------------------------------ smuggling */

static void smuggling_cases(const struct it_server *s)
{
	char marker[64], *smug, *req, leave[160];
	int n;

	snprintf(leave, sizeof(leave), "/api/streams/%s/viewers/leave", stream_id);

	/* control: the request we smuggle is valid and runs when sent on its own */
	unique_marker(marker, sizeof(marker), "control");
	smug = smuggled_chat(marker, t_m);
	{
		struct exchange x;
		exchange(s->port, smug, strlen(smug), 1500, &x);
		ck_assert_msg(strncmp(x.buf, "HTTP/1.1 201 ", 13) == 0, "control: %.200s", x.buf);
		ck_assert_int_eq(chat_rows(marker), 1);
	}
	free(smug);

	/* two different Content-Length values (the exact shape) */
	unique_marker(marker, sizeof(marker), "two-cl");
	smug = smuggled_chat(marker, t_m);
	n = asprintf(&req,
		     "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		     "Content-Length: 7\r\nContent-Length: %zu\r\n\r\n{\"x\":1}%s",
		     leave, 7 + strlen(smug), smug);
	refused_and_closed(s, "two Content-Length", req, (size_t)n, marker);
	free(req);
	/* the same value twice */
	n = asprintf(&req,
		     "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"
		     "{\"x\":1}%s", leave, smug);
	refused_and_closed(s, "duplicate Content-Length", req, (size_t)n, marker);
	free(req);
	/* a sign, a list */
	n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: +7\r\n\r\n{\"x\":1}%s",
		     leave, smug);
	refused_and_closed(s, "Content-Length +7", req, (size_t)n, marker);
	free(req);
	n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 7, 7\r\n\r\n{\"x\":1}%s",
		     leave, smug);
	refused_and_closed(s, "Content-Length list", req, (size_t)n, marker);
	free(req);
	/* white space before the colon: evhttp sees no Content-Length, a proxy a body */
	n = asprintf(&req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length : %zu\r\n\r\n%s", leave,
		     strlen(smug), smug);
	refused_and_closed(s, "Content-Length with space", req, (size_t)n, marker);
	free(req);
	/* HEAD with a body: evhttp reads none, so the body would run as a request */
	n = asprintf(&req, "HEAD /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s",
		     strlen(smug), smug);
	refused_and_closed(s, "HEAD with a body", req, (size_t)n, marker);
	free(req);
	/* a Transfer-Encoding evhttp does not take for chunked, with Content-Length 0 */
	n = asprintf(&req,
		     "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n"
		     "Content-Length: 0\r\n\r\n%s", leave, smug);
	refused_and_closed(s, "Transfer-Encoding gzip, chunked", req, (size_t)n, marker);
	free(req);
	/* chunked with a chunk extension evhttp cannot read */
	n = asprintf(&req,
		     "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "7;x=1\r\n{\"x\":1}\r\n0\r\n\r\n%s", leave, smug);
	refused_and_closed(s, "chunk extension", req, (size_t)n, marker);
	free(req);
	/* a good request first: answered; then the bad one: 400 and closed */
	n = asprintf(&req,
		     "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
		     "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 7\r\nContent-Length: %zu\r\n\r\n"
		     "{\"x\":1}%s", leave, 7 + strlen(smug), smug);
	{
		struct exchange x;
		const char *second;

		exchange(s->port, req, (size_t)n, 3000, &x);
		ck_assert_msg(strncmp(x.buf, "HTTP/1.1 200 ", 13) == 0, "pipelined: %.80s", x.buf);
		second = strstr(x.buf + 1, "HTTP/1.1 ");
		ck_assert_ptr_nonnull(second);
		ck_assert_msg(strncmp(second, "HTTP/1.1 400 ", 13) == 0, "pipelined: %s", x.buf);
		ck_assert_int_eq(responses(&x), 2);
		ck_assert(x.closed);
		usleep(100 * 1000);
		ck_assert_int_eq(chat_rows(marker), 0);
	}
	free(req);
	free(smug);

	/* an obs-folded Authorization header on the chat request itself */
	unique_marker(marker, sizeof(marker), "obs-fold");
	{
		char body[128];

		snprintf(body, sizeof(body), "{\"content\":\"%s\"}", marker);
		n = asprintf(&req,
			     "POST /api/streams/%s/chat HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer\r\n"
			     " %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     stream_id, t_m, strlen(body), body);
		refused_and_closed(s, "obs-fold", req, (size_t)n, marker);
		free(req);
	}
	/* the server still serves new connections normally */
	{
		struct it_resp r;
		ck_assert_int_eq(it_req(s, "GET", "/healthz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
}

START_TEST(smuggling_member_role)
{
	smuggling_cases(&srv);
}
END_TEST

START_TEST(smuggling_superuser)
{
	struct it_server s2;
	char url[256], env_db[300];
	const char *admin = it_env("NC_TEST_ADMIN_URL");
	const char *env[] = {env_db, NULL};
	char *slash;

	/* the superuser on the service's database (the admin URL names the maintenance db) */
	snprintf(url, sizeof(url), "%s", admin);
	slash = strrchr(url, '/');
	ck_assert_ptr_nonnull(slash);
	snprintf(slash, sizeof(url) - (size_t)(slash - url), "/nchat");
	snprintf(env_db, sizeof(env_db), "DATABASE_URL=%s", url);
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	smuggling_cases(&s2);
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

/* ------------------------------------------------------------ methods */

START_TEST(unserved_methods_answer_json)
{
	static const char *const methods[] = {"TRACE", "CONNECT", "PROPFIND", "BREW", NULL};

	for (int i = 0; methods[i] != NULL; i++) {
		struct exchange x;
		char req[256];
		int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", methods[i],
				 strcmp(methods[i], "CONNECT") == 0 ? "example.com:443" : "/api/me");

		exchange(srv.port, req, (size_t)n, 1000, &x);
		ck_assert_msg(strncmp(x.buf, "HTTP/1.1 501 ", 13) == 0, "%s: %.80s", methods[i], x.buf);
		ck_assert_msg(strstr(x.buf, "application/json") != NULL, "%s: %s", methods[i], x.buf);
		ck_assert_msg(strstr(x.buf, "{\"error\":{\"code\":\"not_implemented\"") != NULL,
			      "%s: %s", methods[i], x.buf);
		ck_assert_msg(strstr(x.buf, "<HTML>") == NULL, "%s: %s", methods[i], x.buf);
	}
	/* a method we serve, on a path that does not take it: still 405 with Allow */
	{
		struct it_resp r;
		ck_assert_int_eq(it_req(&srv, "DELETE", "/healthz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 405);
		it_resp_free(&r);
	}
}
END_TEST

/* ------------------------------------------------------------ roles */

/* An HS256 user token with the given Hasura claims object text (inner JSON). */
static char *hasura_token(const char *user, const char *inner)
{
	const char *secret = it_env("AUTH_JWT_SECRET");
	char claims[1024];
	jwt_t *jwt = NULL;
	char *out;

	snprintf(claims, sizeof(claims),
		 "{\"sub\":\"%s\",\"exp\":%lld,\"https://hasura.io/jwt/claims\":"
		 "{\"x-hasura-user-id\":\"%s\"%s}}",
		 user, (long long)time(NULL) + 600, user, inner);
	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret,
				     (int)strlen(secret)), 0);
	out = jwt_encode_str(jwt);
	jwt_free(jwt);
	ck_assert_ptr_nonnull(out);
	return out;
}

START_TEST(default_role_outside_allowed_roles_is_refused)
{
	char *esc = hasura_token(u_m, ",\"x-hasura-allowed-roles\":[\"user\"],"
				      "\"x-hasura-default-role\":\"admin\"");
	char *bare = hasura_token(u_m, ",\"x-hasura-default-role\":\"admin\"");
	char *ok = hasura_token(u_m, ",\"x-hasura-allowed-roles\":[\"user\",\"admin\"],"
				     "\"x-hasura-default-role\":\"user\"");
	json_t *me;

	json_decref(call(&srv, "GET", "/api/me", esc, NULL, 401));
	json_decref(call(&srv, "GET", "/api/audit", esc, NULL, 401));
	json_decref(call(&srv, "GET", "/api/admin/outbound-webhooks", esc, NULL, 401));
	json_decref(call(&srv, "GET", "/api/me", bare, NULL, 401));
	json_decref(call(&srv, "GET", "/api/audit", bare, NULL, 401));
	/* the event stream takes the token from the query too: same rule */
	{
		char path[1200];
		snprintf(path, sizeof(path), "/api/events?access_token=%s", esc);
		json_decref(call(&srv, "GET", path, NULL, NULL, 401));
	}
	/* a default role among the allowed ones is fine, and holds the allowed roles */
	me = call(&srv, "GET", "/api/me", ok, NULL, 200);
	ck_assert_int_eq(json_array_size(json_object_get(me, "roles")), 2);
	json_decref(me);
	json_decref(call(&srv, "GET", "/api/audit", ok, NULL, 200));
	free(esc);
	free(bare);
	free(ok);
}
END_TEST

/* ------------------------------------------------------------ raw path */

START_TEST(encoded_slash_never_routes)
{
	char *admin = it_user_token(u_m, "user,admin", 600), path[200];
	char id[37];
	struct it_resp r;

	uuid_v4(id);
	json_decref(call(&srv, "GET", "/api/admin/outbound-webhooks", admin, NULL, 200));
	json_decref(call(&srv, "GET", "/api%2fadmin%2foutbound-webhooks", admin, NULL, 404));
	json_decref(call(&srv, "GET", "/api%2Fadmin%2Foutbound-webhooks", admin, NULL, 404));
	json_decref(call(&srv, "GET", "/api/admin%2foutbound-webhooks", admin, NULL, 404));
	json_decref(call(&srv, "GET", "/api/me%2f", admin, NULL, 404));
	snprintf(path, sizeof(path), "/api/calls/%s%%2fjoin", id);
	json_decref(call(&srv, "POST", path, admin, "{}", 404));
	json_decref(call(&srv, "GET", path, admin, NULL, 404));
	ck_assert_int_eq(it_req(&srv, "POST", path, admin, "{}", &r), 0);
	ck_assert_str_eq(it_err_code(&r), "not_found");
	ck_assert_ptr_null(strstr(r.body, "call")); /* the router's 404, not the join handler's */
	it_resp_free(&r);
	/* other escapes are decoded within their segment; malformed ones are 400 */
	json_decref(call(&srv, "GET", "/api/%6De", admin, NULL, 200));
	json_decref(call(&srv, "GET", "/api/calls/%zz", admin, NULL, 400));
	json_decref(call(&srv, "GET", "/healthz%00", NULL, NULL, 400));
	free(admin);
}
END_TEST

/* ------------------------------------------------------------ CORS */

/* ACAO and ACAC of a request from origin (NULL when absent), malloc'd. */
static void cors_of(const struct it_server *s, const char *method, const char *path,
		    const char *origin, char **acao, char **acac, long *status)
{
	char url[256], oh[256];
	const char *hdrs[] = {oh, "Access-Control-Request-Method: GET", NULL};
	struct it_resp r;

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	snprintf(oh, sizeof(oh), "Origin: %s", origin);
	ck_assert_int_eq(it_http(method, url, NULL, NULL, hdrs, &r), 0);
	*acao = it_resp_header(&r, "Access-Control-Allow-Origin");
	*acac = it_resp_header(&r, "Access-Control-Allow-Credentials");
	if (status != NULL)
		*status = r.status;
	it_resp_free(&r);
}

START_TEST(cors_wildcard_never_reflects_or_allows_credentials)
{
	struct it_server s2;
	const char *env_any[] = {"CORS_ORIGINS=*", NULL};
	const char *env_list[] = {"CORS_ORIGINS=https://chat.example.com, null", NULL};
	static const char *const origins[] = {"https://evil.example.net", "null", NULL};
	char *acao, *acac;
	long st;

	ck_assert_int_eq(it_server_start(&s2, env_any), 0);
	for (int i = 0; origins[i] != NULL; i++) {
		cors_of(&s2, "GET", "/healthz", origins[i], &acao, &acac, NULL);
		ck_assert_msg(acao != NULL && strcmp(acao, "*") == 0, "%s: ACAO %s", origins[i], acao);
		ck_assert_msg(acac == NULL, "%s: credentials %s", origins[i], acac);
		free(acao);
		free(acac);
		/* preflight to an admin endpoint */
		cors_of(&s2, "OPTIONS", "/api/admin/outbound-webhooks", origins[i], &acao, &acac, &st);
		ck_assert_int_eq(st, 204);
		ck_assert_msg(acao != NULL && strcmp(acao, "*") == 0, "%s: ACAO %s", origins[i], acao);
		ck_assert_msg(acac == NULL, "%s: preflight credentials %s", origins[i], acac);
		free(acao);
		free(acac);
	}
	ck_assert_int_eq(it_server_stop(&s2), 0);

	/* exact entries: echoed with credentials; "null" only because it is listed */
	ck_assert_int_eq(it_server_start(&s2, env_list), 0);
	cors_of(&s2, "GET", "/healthz", "https://chat.example.com", &acao, &acac, NULL);
	ck_assert_str_eq(acao, "https://chat.example.com");
	ck_assert_str_eq(acac, "true");
	free(acao);
	free(acac);
	cors_of(&s2, "GET", "/healthz", "null", &acao, &acac, NULL);
	ck_assert_str_eq(acao, "null");
	free(acao);
	free(acac);
	cors_of(&s2, "GET", "/healthz", "https://chat.example.com.evil.net", &acao, &acac, NULL);
	ck_assert_ptr_null(acao);
	ck_assert_ptr_null(acac);
	cors_of(&s2, "GET", "/healthz", "https://CHAT.example.com", &acao, &acac, NULL);
	ck_assert_ptr_null(acao);
	ck_assert_int_eq(it_server_stop(&s2), 0);
	/* and the suite's own server (no CORS_ORIGINS) never echoes null */
	cors_of(&srv, "GET", "/healthz", "null", &acao, &acac, NULL);
	ck_assert_ptr_null(acao);
	ck_assert_ptr_null(acac);
}
END_TEST

/* ------------------------------------------------------------ X-Forwarded-For */

static long me_with_xff(const struct it_server *s, const char *tok, const char *const *hdrs)
{
	char url[256];
	struct it_resp r;
	long st;

	snprintf(url, sizeof(url), "%s/api/me", s->base);
	ck_assert_int_eq(it_http("GET", url, tok, NULL, hdrs, &r), 0);
	st = r.status;
	it_resp_free(&r);
	return st;
}

static bool log_has(const struct it_server *s, const char *needle)
{
	FILE *f = fopen(s->log_path, "r");
	char line[4096];
	bool found = false;

	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

START_TEST(forwarded_for_over_several_lines)
{
	struct it_server s2;
	const char *env[] = {"TRUSTED_PROXIES=127.0.0.1", "RATE_LIMIT_IP=3/60", NULL};
	const char *env_noip[] = {"TRUSTED_PROXIES=127.0.0.1", NULL};
	char *tok = it_user_token(u_m, NULL, 600), forged[64], proxy_line[64], want[64];
	const char *hdrs[] = {forged, proxy_line, NULL};
	/* addresses of this run only: the address buckets live in Redis for a minute */
	int a = (int)(getpid() / 250 % 250) + 1, b = (int)(getpid() % 250) + 1;
	char l1[96], l2[96], l3[96], l4[96];

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	/* the client forges a fresh address on its own line each time; the proxy appends its line */
	snprintf(proxy_line, sizeof(proxy_line), "X-Forwarded-For: 203.%d.%d.7", a, b);
	for (int i = 0; i < 4; i++) {
		snprintf(forged, sizeof(forged), "X-Forwarded-For: 10.%d.%d.%d", a, b, i + 1);
		ck_assert_int_eq(me_with_xff(&s2, tok, hdrs), i < 3 ? 200 : 429);
	}
	/* all four came from the proxy's entry */
	snprintf(want, sizeof(want), "client=203.%d.%d.7", a, b);
	ck_assert(log_has(&s2, want));
	snprintf(want, sizeof(want), "client=10.%d.%d.", a, b);
	ck_assert(!log_has(&s2, want));
	ck_assert_int_eq(it_server_stop(&s2), 0);
	/*
	 * The rest on a server without the address budget: the last case falls back
	 * to 127.0.0.1, whose Redis bucket other suites' servers share.
	 */
	ck_assert_int_eq(it_server_start(&s2, env_noip), 0);
	/* one line, a trusted hop at the right: the entry before it */
	snprintf(l1, sizeof(l1), "X-Forwarded-For: 10.%d.%d.200, 198.%d.%d.4, 127.0.0.1", a, b, a, b);
	{
		const char *one[] = {l1, NULL};
		ck_assert_int_eq(me_with_xff(&s2, tok, one), 200);
		snprintf(want, sizeof(want), "client=198.%d.%d.4", a, b);
		ck_assert(log_has(&s2, want));
	}
	/* across lines, with the trusted hop on a line of its own */
	snprintf(l2, sizeof(l2), "X-Forwarded-For: 10.%d.%d.201, 198.%d.%d.5", a, b, a, b);
	{
		const char *two[] = {l2, "X-Forwarded-For: 127.0.0.1", NULL};
		ck_assert_int_eq(me_with_xff(&s2, tok, two), 200);
		snprintf(want, sizeof(want), "client=198.%d.%d.5", a, b);
		ck_assert(log_has(&s2, want));
	}
	/* something that is not an address: the proxy's own address counts */
	snprintf(l3, sizeof(l3), "X-Forwarded-For: 10.%d.%d.202", a, b);
	snprintf(l4, sizeof(l4), "X-Forwarded-For: not-an-ip-%d-%d", a, b);
	{
		const char *junk[] = {l3, l4, NULL};
		ck_assert_int_eq(me_with_xff(&s2, tok, junk), 200);
		ck_assert(!log_has(&s2, "client=not-an-ip"));
		snprintf(want, sizeof(want), "client=10.%d.%d.202", a, b);
		ck_assert(!log_has(&s2, want));
	}
	ck_assert_int_eq(it_server_stop(&s2), 0);
	free(tok);
}
END_TEST

/* ------------------------------------------------------------ upstream errors */

static json_t *s3ctl(const char *path, const char *body)
{
	char url[512];
	struct it_resp r;
	json_t *j;

	snprintf(url, sizeof url, "%s%s", it_env("S3_ENDPOINT"), path);
	ck_assert_int_eq(it_http("POST", url, NULL, body, NULL, &r), 0);
	j = json_incref(r.json);
	it_resp_free(&r);
	return j;
}

START_TEST(upstream_error_text_stays_in_the_log)
{
	char secret[64], body[256], path[128];
	json_t *f;
	struct it_resp r;

	/* LiveKit answers an error with its own text: the client gets a fixed message */
	snprintf(secret, sizeof(secret), "lk-internal-detail-%d", (int)getpid());
	f = json_pack("{s:s, s:s, s:i, s:s, s:i, s:s}", "method", "CreateRoom", "mode", "error",
		      "count", -1, "code", "internal", "status", 500, "msg", secret);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	json_decref(it_standin("POST", "/_test/fault", f));
	json_decref(f);
	snprintf(body, sizeof(body), "{\"targetUserId\":\"%s\",\"type\":\"audio\"}", u_b);
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", t_m, body, &r), 0);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	ck_assert_int_eq(r.status, 502);
	ck_assert_str_eq(it_err_code(&r), "livekit_unavailable");
	ck_assert_msg(strstr(r.body, secret) == NULL, "%s", r.body);
	ck_assert_msg(strstr(r.body, "internal") == NULL || strstr(r.body, "\"internal\"") == NULL,
		      "%s", r.body);
	ck_assert_msg(strstr(r.body, "\\\"code\\\"") == NULL, "%s", r.body);
	it_resp_free(&r);
	ck_assert(log_has(&srv, secret)); /* the detail is in the log */

	/* S3 refuses: a fixed message, the code and text only in the log */
	if (it_env("S3_ENDPOINT") != NULL) {
		const char *p[3];
		char *call, *rec, room[80], msg[64];

		snprintf(room, sizeof(room), "call-frontdoor-%d-%ld", (int)getpid(), (long)time(NULL));
		p[0] = room;
		p[1] = u_m;
		call = it_sql(db, "INSERT INTO nchat_calls (livekit_room_name, call_type, status,"
				  " initiator_id, started_at) VALUES ($1, 'video', 'ended', $2, now())"
				  " RETURNING id", 2, p);
		p[0] = call;
		free(it_sql(db, "INSERT INTO nchat_call_participants (call_id, user_id, role, status)"
				" VALUES ($1, $2, 'initiator', 'left')", 2, p));
		rec = it_sql(db, "INSERT INTO nchat_call_recordings (call_id, status, object_key,"
				 " started_by, started_at, ended_at) VALUES ($1::uuid, 'completed',"
				 " 'recordings/frontdoor/' || $1::text || '.mp4', $2, now(), now())"
				 " RETURNING id",
			     2, p);
		snprintf(msg, sizeof(msg), "s3-internal-detail-%d", (int)getpid());
		snprintf(body, sizeof(body),
			 "{\"mode\":\"error\",\"status\":403,\"code\":\"AccessDenied\",\"msg\":\"%s\","
			 "\"count\":1}", msg);
		json_decref(s3ctl("/_test/fault", body));
		snprintf(path, sizeof(path), "/api/recordings/%s", rec);
		ck_assert_int_eq(it_req(&srv, "DELETE", path, t_m, NULL, &r), 0);
		json_decref(s3ctl("/_test/reset", "{}"));
		ck_assert_msg(r.status == 503, "%ld %s", r.status, r.body);
		ck_assert_str_eq(it_err_code(&r), "storage_unavailable");
		ck_assert_msg(strstr(r.body, "AccessDenied") == NULL && strstr(r.body, "403") == NULL &&
			      strstr(r.body, msg) == NULL, "%s", r.body);
		it_resp_free(&r);
		ck_assert(log_has(&srv, "AccessDenied"));
		p[0] = rec;
		ck_assert_int_eq(it_sql_long(db, "SELECT count(*) FROM nchat_call_recordings WHERE id = $1"
					     " AND status = 'completed'", 1, p), 1);
		free(call);
		free(rec);
	}
}
END_TEST

/* ------------------------------------------------------------ metrics */

static long get_status(const char *base, const char *path, const char *token, char **body)
{
	char url[256];
	struct it_resp r;
	long st;

	snprintf(url, sizeof(url), "%s%s", base, path);
	ck_assert_int_eq(it_http("GET", url, token, NULL, NULL, &r), 0);
	st = r.status;
	if (body != NULL)
		*body = strdup(r.body ? r.body : "");
	it_resp_free(&r);
	return st;
}

START_TEST(metrics_not_on_the_public_listener)
{
	struct it_server s2;
	const char *tokv = "metrics-test-token-0123456789";
	char env_tok[96];
	const char *env[] = {env_tok, NULL};
	char *body;

	/* no token configured: only the metrics listener serves it, and only it */
	ck_assert_int_eq(get_status(srv.base, "/metrics", NULL, NULL), 404);
	ck_assert_int_eq(get_status(srv.metrics_base, "/metrics", NULL, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "nchat_http_requests_total"));
	ck_assert_ptr_nonnull(strstr(body, "nchat_http_bad_framing_total"));
	free(body);
	ck_assert_int_eq(get_status(srv.metrics_base, "/api/me", t_m, NULL), 404);
	ck_assert_int_eq(get_status(srv.metrics_base, "/healthz", NULL, NULL), 404);
	ck_assert_int_eq(get_status(srv.metrics_base, "/api/admin/outbound-webhooks", t_m, NULL), 404);

	/* with METRICS_TOKEN: the bearer token on either listener, nothing without it */
	snprintf(env_tok, sizeof(env_tok), "METRICS_TOKEN=%s", tokv);
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	ck_assert_int_eq(get_status(s2.base, "/metrics", NULL, NULL), 401);
	ck_assert_int_eq(get_status(s2.base, "/metrics", "metrics-test-token-012345678", NULL), 401);
	ck_assert_int_eq(get_status(s2.base, "/metrics", t_m, NULL), 401); /* a user token is no key */
	ck_assert_int_eq(get_status(s2.metrics_base, "/metrics", NULL, NULL), 401);
	ck_assert_int_eq(get_status(s2.base, "/metrics", tokv, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "nchat_workers "));
	free(body);
	ck_assert_int_eq(get_status(s2.metrics_base, "/metrics", tokv, NULL), 200);
	ck_assert_int_eq(it_server_stop(&s2), 0);

	/* a METRICS_ADDR already in use stops start-up */
	{
		char busy[64];
		const char *env2[] = {busy, NULL};

		snprintf(busy, sizeof(busy), "METRICS_ADDR=127.0.0.1:%d", srv.port);
		ck_assert_int_eq(it_server_start(&s2, env2), -1);
		ck_assert(log_has(&s2, "cannot listen on METRICS_ADDR"));
	}
}
END_TEST

/* ------------------------------------------------------------ anonymous event streams */

/* Open GET path on a new connection; the HTTP status, fd left open in *fd. */
static int sse_open(int port, const char *path, const char *token, const char *xff, int *fd)
{
	char req[2048], buf[4096];
	size_t len = 0;
	int n, status = 0;
	struct pollfd p;

	*fd = raw_connect(port);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s%s%s%s%s%s\r\n", path,
		     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
		     xff ? "X-Forwarded-For: " : "", xff ? xff : "", xff ? "\r\n" : "");
	ck_assert_int_eq(send(*fd, req, (size_t)n, MSG_NOSIGNAL), n);
	p.fd = *fd;
	p.events = POLLIN;
	buf[0] = '\0';
	while (strstr(buf, "\r\n\r\n") == NULL && len < sizeof(buf) - 1) {
		ssize_t got;

		if (poll(&p, 1, 5000) <= 0)
			break;
		got = read(*fd, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		buf[len] = '\0';
	}
	sscanf(buf, "HTTP/1.%*d %d", &status);
	return status;
}

START_TEST(anonymous_event_streams_capped_per_address)
{
	struct it_server s2;
	const char *env[] = {"SSE_MAX_ANONYMOUS_PER_ADDRESS=3", "TRUSTED_PROXIES=127.0.0.1", NULL};
	char path[160], body[256], *live;
	int fds[6], n = 0, fd;
	json_t *st;

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	/* a live stream of a channel: anyone may watch it (STREAMS_PUBLIC_WHILE_LIVE) */
	snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"live %d\"}", ch, (int)getpid());
	st = call(&s2, "POST", "/api/streams/create", t_b, body, 201);
	live = strdup(json_string_value(json_object_get(st, "id")));
	json_decref(st);
	snprintf(path, sizeof(path), "/api/streams/%s/start", live);
	json_decref(call(&s2, "POST", path, t_b, "{}", 200));
	snprintf(path, sizeof(path), "/api/events?stream=%s", live);

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(sse_open(s2.port, path, NULL, NULL, &fds[n]), 200);
		n++;
	}
	/* the fourth from the same address: 429 */
	ck_assert_int_eq(sse_open(s2.port, path, NULL, NULL, &fd), 429);
	close(fd);
	/* signed-in viewers have their own (per-user) cap */
	ck_assert_int_eq(sse_open(s2.port, path, t_m, NULL, &fds[n]), 200);
	n++;
	/* another client address behind the trusted proxy has its own budget */
	ck_assert_int_eq(sse_open(s2.port, path, NULL, "198.18.0.9", &fds[n]), 200);
	n++;
	/* a closed stream frees its place */
	close(fds[0]);
	fds[0] = -1;
	{
		int got = 0;

		for (int i = 0; i < 30 && got != 200; i++) {
			usleep(100 * 1000);
			got = sse_open(s2.port, path, NULL, NULL, &fd);
			if (got != 200)
				close(fd);
		}
		ck_assert_int_eq(got, 200);
		close(fd);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	ck_assert_int_eq(it_server_stop(&s2), 0);
	free(live);
}
END_TEST

/* ------------------------------------------------------------ refused framing frees its slot */

/* Bytes on fd until the server closes it (true) or timeout_ms of quiet (false). */
static bool read_to_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	size_t len = 0;

	buf[0] = '\0';
	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			return true;
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= cap - 1)
			return false;
	}
	return false;
}

/* The value of a gauge in a /metrics scrape of s (-1 if absent). */
static double gauge(const struct it_server *s, const char *name)
{
	struct it_resp r;
	double v = -1;
	size_t nl = strlen(name);

	ck_assert_int_eq(it_metrics(s, &r), 0);
	ck_assert_int_eq(r.status, 200);
	for (const char *p = r.body; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
			v = strtod(p + nl + 1, NULL);
			break;
		}
	it_resp_free(&r);
	return v;
}

/*
 * A connection whose framing was refused (400, then closed) must give its
 * place under MAX_CONNECTIONS back however it ends: closed by the client at
 * once, closed by the client after the 400 (before the guard's linger), or
 * left open for the guard to close.  Far more of them than the cap, then
 * bursts over the cap (each over-cap connection used to push the guard's
 * once-a-second sweep a second later, and the cap counted connections
 * already gone until a sweep), then every place must be free again:
 * otherwise malformed requests are a denial of service.
 */
START_TEST(refused_framing_releases_connection_slots)
{
	static const struct {
		const char *req;
		size_t len, split; /* split: bytes of the first write (0: one write) */
	} shape[] = {
#define SHAPE(s, split) {s, sizeof(s) - 1, split}
		SHAPE("GET /healthz HTTP/1.1\r\n\0", 0),
		SHAPE("GET /healthz HTTP/1.1\r\n\0", 23),
		SHAPE("GET /healthz HTTP/1.1\r\nHost: t\r\nX-A\0b: 1\r\n\r\n", 0),
		SHAPE("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
		      "Content-Length: 2\r\n\r\nab", 0),
		SHAPE("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
		      "Content-Length: 2\r\n\r\nab", 52),
		SHAPE("GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n", 0),
		SHAPE("GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n folded\r\n\r\n", 40),
#undef SHAPE
	};
	enum { ROUNDS = 6, PER_ROUND = 3, CAP = 6 };
	struct it_server s2;
	const char *env[] = {"CONN_IDLE_TIMEOUT_SECONDS=2", "MAX_CONNECTIONS=6", NULL};
	int kept[ROUNDS * PER_ROUND], fds[CAP], k = 0;
	char buf[2048];

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	for (int r = 0; r < ROUNDS; r++) {
		int fd[PER_ROUND];

		for (int i = 0; i < PER_ROUND; i++) {
			int sh = (r * PER_ROUND + i) % (int)(sizeof(shape) / sizeof(shape[0]));
			size_t first = shape[sh].split ? shape[sh].split : shape[sh].len;

			fd[i] = raw_connect(s2.port);
			ck_assert_int_eq(send(fd[i], shape[sh].req, first, MSG_NOSIGNAL), (ssize_t)first);
			if (first < shape[sh].len) {
				usleep(50 * 1000);
				ck_assert_int_eq(send(fd[i], shape[sh].req + first, shape[sh].len - first,
						      MSG_NOSIGNAL),
						 (ssize_t)(shape[sh].len - first));
			}
			if (i == 0) { /* the client gives up at once */
				close(fd[i]);
				continue;
			}
			/* the 400, then the server's end of the connection closes */
			ck_assert_msg(read_to_eof(fd[i], buf, sizeof(buf), 3000),
				      "shape %d: the connection stayed open: %s", sh, buf);
			ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "shape %d: answered %.80s",
				      sh, buf);
			if (i == 1)
				close(fd[i]); /* the client closes first, before the guard */
			else
				kept[k++] = fd[i]; /* left open: the guard must close it */
		}
		usleep(1500 * 1000);
	}
	/* bursts over the cap: the connections beyond it are closed at once */
	for (int b = 0; b < 4; b++) {
		int fd[CAP + 3];

		for (int i = 0; i < CAP + 3; i++) {
			int sh = (b + i) % (int)(sizeof(shape) / sizeof(shape[0]));

			fd[i] = raw_connect(s2.port);
			(void)!send(fd[i], shape[sh].req, shape[sh].len, MSG_NOSIGNAL);
		}
		usleep(50 * 1000);
		for (int i = 0; i < CAP + 3; i++)
			close(fd[i]);
		usleep(400 * 1000);
	}
	/* the idle cut-off (2 s) and a guard tick (1 s) have passed for all of them */
	usleep(3500 * 1000);
	{
		double open = gauge(&s2, "nchat_connections_open");

		/* at most the scrape's own connection, if a tick saw it */
		ck_assert_msg(open >= 0 && open <= 1, "%.0f connections still counted open", open);
	}
	usleep(1200 * 1000); /* the scrapes' own connections are released */
	/* every place under the cap is free: CAP keep-alive connections at once */
	for (int i = 0; i < CAP; i++)
		ck_assert_msg(sse_open(s2.port, "/healthz", NULL, NULL, &fds[i]) == 200,
			      "connection %d of %d refused", i + 1, CAP);
	for (int i = 0; i < CAP; i++)
		close(fds[i]);
	for (int i = 0; i < k; i++)
		close(kept[i]);
	usleep(1200 * 1000);
	{
		struct it_resp r;

		ck_assert_int_eq(it_req(&s2, "GET", "/healthz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "AUTH_JWT_SECRET",
			      "DATABASE_MIGRATE_URL", "NC_TEST_ADMIN_URL", "LK_STANDIN_URL",
			      "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", NULL};
	Suite *s = suite_create("frontdoor");
	TCase *tc = tcase_create("frontdoor");
	SRunner *sr;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	db = it_db();
	ch = it_new_channel(db, "front door");
	u_b = it_new_user(db, "Broadcaster");
	u_m = it_new_user(db, "Member");
	it_add_member(db, ch, u_b, "member");
	it_add_member(db, ch, u_m, "member");
	t_b = it_user_token(u_b, NULL, 3600);
	t_m = it_user_token(u_m, NULL, 3600);
	json_decref(it_standin("POST", "/_test/fault/clear", NULL));
	if (it_server_start(&srv, NULL) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	{
		char body[256];
		struct it_resp r;

		snprintf(body, sizeof(body), "{\"channelId\":\"%s\",\"title\":\"front door %d\"}", ch,
			 (int)getpid());
		if (it_req(&srv, "POST", "/api/streams/create", t_b, body, &r) != 0 || r.status != 201 ||
		    json_string_value(json_object_get(r.json, "id")) == NULL) {
			fprintf(stderr, "cannot create a stream: %ld %s\n", r.status, r.body);
			return 1;
		}
		stream_id = strdup(json_string_value(json_object_get(r.json, "id")));
		it_resp_free(&r);
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, smuggling_member_role);
	tcase_add_test(tc, smuggling_superuser);
	tcase_add_test(tc, unserved_methods_answer_json);
	tcase_add_test(tc, default_role_outside_allowed_roles_is_refused);
	tcase_add_test(tc, encoded_slash_never_routes);
	tcase_add_test(tc, cors_wildcard_never_reflects_or_allows_credentials);
	tcase_add_test(tc, forwarded_for_over_several_lines);
	tcase_add_test(tc, upstream_error_text_stays_in_the_log);
	tcase_add_test(tc, metrics_not_on_the_public_listener);
	tcase_add_test(tc, anonymous_event_streams_capped_per_address);
	tcase_add_test(tc, refused_framing_releases_connection_slots);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&srv) != 0)
		failed++;
	PQfinish(db);
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
