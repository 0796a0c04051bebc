/*
 * Integration tests of the HTTP foundation against the real server, Postgres
 * and Redis: health and readiness, authentication failures, routing errors,
 * body limits, request ids, CORS, configuration errors and SIGTERM.
 */
#include "harness.h"
#include "core/uuid.h"
#include "core/common.h"

#include <check.h>
#include <curl/curl.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static struct it_server srv;
static char uid[37];

START_TEST(health_and_ready)
{
	struct it_resp r;

	ck_assert_int_eq(it_req(&srv, "GET", "/healthz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "postgres")), "ok");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "redis")), "ok");
	it_resp_free(&r);
}
END_TEST

START_TEST(auth_failures)
{
	struct it_resp r;
	char *good = it_user_token(uid, "user,moderator", 300);
	char *expired = it_user_token(uid, NULL, -120);
	char bad[4096];

	ck_assert_int_eq(it_req(&srv, "GET", "/api/me", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	ck_assert_str_eq(it_err_code(&r), "unauthorized");
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/me", expired, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	it_resp_free(&r);
	snprintf(bad, sizeof(bad), "%s", good);
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'a' ? 'b' : 'a';
	ck_assert_int_eq(it_req(&srv, "GET", "/api/me", bad, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/me", "not.a.token", NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "GET", "/api/me", good, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "userId")), uid);
	ck_assert_int_eq(json_array_size(json_object_get(r.json, "roles")), 2);
	it_resp_free(&r);
	free(good);
	free(expired);
}
END_TEST

START_TEST(routing_errors_and_limits)
{
	struct it_resp r;
	char *big = malloc(70001);
	char url[128];
	char *allow;

	ck_assert_int_eq(it_req(&srv, "GET", "/api/nope", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	ck_assert_str_eq(it_err_code(&r), "not_found");
	it_resp_free(&r);
	ck_assert_int_eq(it_req(&srv, "DELETE", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 405);
	allow = it_resp_header(&r, "Allow");
	ck_assert_ptr_nonnull(allow);
	ck_assert_str_eq(allow, "GET, HEAD");
	free(allow);
	it_resp_free(&r);
	memset(big, ' ', 70000);
	big[0] = '{';
	big[69999] = '}';
	big[70000] = '\0';
	ck_assert_int_eq(it_req(&srv, "POST", "/api/calls/initiate", NULL, big, &r), 0);
	ck_assert_int_eq(r.status, 413);
	ck_assert_str_eq(it_err_code(&r), "payload_too_large");
	it_resp_free(&r);
	free(big);
	/* headers past 16 KiB are refused before any handler runs */
	{
		char *h = malloc(20060);
		const char *hdrs[] = {h, NULL};
		char u2[128];
		int rc;

		memcpy(h, "X-Big: ", 7);
		memset(h + 7, 'a', 20000);
		h[20007] = '\0';
		snprintf(u2, sizeof(u2), "%s/healthz", srv.base);
		rc = it_http("GET", u2, NULL, NULL, hdrs, &r);
		ck_assert_msg(rc != 0 || r.status == 413 || r.status == 400 || r.status == 431,
			      "an oversized header got %ld", r.status);
		if (rc == 0)
			it_resp_free(&r);
		free(h);
	}
	/* a percent-encoded NUL in the path is refused, not truncated */
	snprintf(url, sizeof(url), "%s/healthz%%00x", srv.base);
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	it_resp_free(&r);
}
END_TEST

START_TEST(request_id_and_headers)
{
	struct it_resp r;
	const char *h1[] = {"X-Request-Id: trace-abc.123", NULL};
	const char *h2[] = {"X-Request-Id: bad id with spaces", NULL};
	const char *h3[] = {"Origin: https://chat.example.com", NULL};
	char url[128], *v;

	snprintf(url, sizeof(url), "%s/healthz", srv.base);
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, h1, &r), 0);
	v = it_resp_header(&r, "X-Request-Id");
	ck_assert_str_eq(v, "trace-abc.123");
	free(v);
	v = it_resp_header(&r, "X-Content-Type-Options");
	ck_assert_str_eq(v, "nosniff");
	free(v);
	it_resp_free(&r);
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, h2, &r), 0);
	v = it_resp_header(&r, "X-Request-Id");
	ck_assert_int_eq(strlen(v), 36); /* replaced by a generated UUID */
	free(v);
	it_resp_free(&r);
	/* CORS: the configured origin is echoed, another is not */
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, h3, &r), 0);
	v = it_resp_header(&r, "Access-Control-Allow-Origin");
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "https://chat.example.com");
	free(v);
	it_resp_free(&r);
	{
		const char *h4[] = {"Origin: https://evil.example.net", NULL};
		ck_assert_int_eq(it_http("GET", url, NULL, NULL, h4, &r), 0);
		ck_assert_ptr_null(it_resp_header(&r, "Access-Control-Allow-Origin"));
		it_resp_free(&r);
		ck_assert_int_eq(it_http("OPTIONS", url, NULL, NULL, h3, &r), 0);
		ck_assert_int_eq(r.status, 204);
		v = it_resp_header(&r, "Access-Control-Allow-Methods");
		ck_assert_ptr_nonnull(v);
		free(v);
		it_resp_free(&r);
	}
}
END_TEST

START_TEST(readyz_reports_dead_dependencies)
{
	struct it_server s2;
	struct it_resp r;
	char redis[64], pg[128];
	const char *env[] = {redis, NULL};
	const char *env2[] = {pg, NULL};

	snprintf(redis, sizeof(redis), "REDIS_URL=redis://127.0.0.1:%d/0", it_free_port());
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	ck_assert_int_eq(it_req(&s2, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "redis")), "down");
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "postgres")), "ok");
	it_resp_free(&r);
	ck_assert_int_eq(it_server_stop(&s2), 0);

	snprintf(pg, sizeof(pg), "DATABASE_URL=postgresql://nchat_app@127.0.0.1:%d/nchat",
		 it_free_port());
	ck_assert_int_eq(it_server_start(&s2, env2), 0);
	ck_assert_int_eq(it_req(&s2, "GET", "/readyz", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(json_string_value(json_object_get(r.json, "postgres")), "down");
	it_resp_free(&r);
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

/* Run the binary with a modified environment; returns exit status and first stderr line. */
static int run_bin(const char *const *unset, const char *const *set, const char *arg, char *line,
		   size_t linelen)
{
	int fds[2];
	pid_t pid;
	int status;
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		for (size_t i = 0; unset && unset[i]; i++)
			unsetenv(unset[i]);
		for (size_t i = 0; set && set[i]; i++)
			putenv((char *)set[i]);
		execl(it_env("NC_BIN"), "nchat-rtc", arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], line, linelen - 1);
	line[n > 0 ? n : 0] = '\0';
	{
		char sink[512]; /* drain the rest so the child never dies of SIGPIPE */
		while (read(fds[0], sink, sizeof(sink)) > 0)
			;
	}
	close(fds[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(config_errors_stop_startup)
{
	char line[1024];
	const char *unset_db[] = {"DATABASE_URL", NULL};
	const char *bad_workers[] = {"WORKERS=lots", NULL};
	const char *secret_env[] = {"LIVEKIT_API_SECRET=do-not-print-me", "WORKERS=-1", NULL};

	ck_assert_int_eq(run_bin(unset_db, NULL, "serve", line, sizeof(line)), 1);
	ck_assert_str_eq(line, "config: missing required setting DATABASE_URL\n");
	ck_assert_int_eq(run_bin(NULL, bad_workers, "serve", line, sizeof(line)), 1);
	ck_assert_ptr_nonnull(strstr(line, "WORKERS"));
	ck_assert_ptr_null(strchr(line, '\n') == NULL ? NULL : strchr(strchr(line, '\n') + 1, '\n'));
	ck_assert_int_eq(run_bin(NULL, secret_env, "serve", line, sizeof(line)), 1);
	ck_assert_ptr_null(strstr(line, "do-not-print-me"));
	ck_assert_int_eq(run_bin(NULL, secret_env + 1, "config", line, sizeof(line)), 1);
	ck_assert_int_eq(run_bin(NULL, NULL, "no-such-command", line, sizeof(line)), 2);
}
END_TEST

START_TEST(sigterm_exits_zero_and_stops_accepting)
{
	struct it_server s2;
	struct it_resp r;
	char url[128];

	ck_assert_int_eq(it_server_start(&s2, NULL), 0);
	snprintf(url, sizeof(url), "%s/healthz", s2.base);
	ck_assert_int_eq(it_server_stop(&s2), 0);
	ck_assert_int_eq(it_http("GET", url, NULL, NULL, NULL, &r), -1);
}
END_TEST

static int raw_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* True if the server closed fd within timeout_ms (reads and discards data). */
static bool closed_within(int fd, int timeout_ms)
{
	char buf[4096];
	struct pollfd p = {fd, POLLIN, 0};

	for (int waited = 0; waited < timeout_ms; waited += 100) {
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				return true;
		}
	}
	return false;
}

START_TEST(slow_clients_and_connection_cap)
{
	struct it_server s2;
	const char *env[] = {"CONN_IDLE_TIMEOUT_SECONDS=2", "MAX_CONNECTIONS=6", NULL};
	int slow, idle[10];
	time_t t0;
	bool cut = false;

	ck_assert_int_eq(it_server_start(&s2, env), 0);
	/* slowloris: a header line every 400 ms, never finishing the request */
	slow = raw_connect(s2.port);
	ck_assert_int_eq(write(slow, "GET /healthz HTTP/1.1\r\n", 23), 23);
	t0 = time(NULL);
	for (int i = 0; i < 30 && !cut; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "X-Slow-%d: 1\r\n", i);
		if (write(slow, line, (size_t)n) != n || closed_within(slow, 400))
			cut = true;
	}
	ck_assert_msg(cut, "slow client was never cut off");
	ck_assert_int_le(time(NULL) - t0, 6);
	close(slow);
	/* connection cap: beyond 6 open connections, new ones are closed at once */
	for (int i = 0; i < 10; i++)
		idle[i] = raw_connect(s2.port);
	{
		int closed = 0;
		for (int i = 0; i < 10; i++)
			if (closed_within(idle[i], i < 6 ? 300 : 1500))
				closed++;
		ck_assert_msg(closed >= 4, "only %d of 10 connections were refused", closed);
	}
	for (int i = 0; i < 10; i++)
		close(idle[i]);
	usleep(1500 * 1000); /* the guard releases closed connections */
	{
		struct it_resp r;
		ck_assert_int_eq(it_req(&s2, "GET", "/healthz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

static int get_me(const struct it_server *s, const char *user, char **retry_after)
{
	struct it_resp r;
	char *tok = it_user_token(user, NULL, 300);
	int status;

	ck_assert_int_eq(it_req(s, "GET", "/api/me", tok, NULL, &r), 0);
	status = (int)r.status;
	if (retry_after != NULL)
		*retry_after = it_resp_header(&r, "Retry-After");
	if (status == 429)
		ck_assert_str_eq(it_err_code(&r), "rate_limited");
	it_resp_free(&r);
	free(tok);
	return status;
}

START_TEST(rate_limits_per_user_and_address)
{
	struct it_server s2;
	const char *env[] = {"RATE_LIMITS=default=5/60", "RATE_LIMIT_IP=12/60", NULL};
	char a[37], b[37], *ra = NULL;
	int ok = 0;

	uuid_v4(a);
	uuid_v4(b);
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(get_me(&s2, a, NULL), 200);
	ck_assert_int_eq(get_me(&s2, a, &ra), 429);
	ck_assert_ptr_nonnull(ra);
	ck_assert_int_ge(atoi(ra), 1);
	ck_assert_int_le(atoi(ra), 60);
	free(ra);
	/* another user has their own budget, until the address budget runs out */
	for (int i = 0; i < 10; i++)
		if (get_me(&s2, b, NULL) == 200)
			ok++;
	ck_assert_int_eq(ok, 5);           /* b's own 5; refused requests cost nothing */
	{
		char c[37];
		uuid_v4(c);
		ck_assert_int_eq(get_me(&s2, c, NULL), 200); /* 11th from this address */
		ck_assert_int_eq(get_me(&s2, c, NULL), 200); /* 12th */
		ck_assert_int_eq(get_me(&s2, c, NULL), 429); /* the address budget is spent */
	}
	/* health and webhooks are never limited */
	{
		struct it_resp r;
		ck_assert_int_eq(it_req(&s2, "GET", "/readyz", NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		it_resp_free(&r);
	}
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

START_TEST(rate_limits_without_redis)
{
	struct it_server s2;
	char redis[64];
	const char *env[] = {redis, "RATE_LIMITS=default=3/60", NULL};
	char a[37];

	snprintf(redis, sizeof(redis), "REDIS_URL=redis://127.0.0.1:%d/0", it_free_port());
	uuid_v4(a);
	ck_assert_int_eq(it_server_start(&s2, env), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get_me(&s2, a, NULL), 200);
	ck_assert_int_eq(get_me(&s2, a, NULL), 429); /* the local limiter took over */
	ck_assert_int_eq(it_server_stop(&s2), 0);
}
END_TEST

int main(void)
{
	const char *need[] = {"NC_BIN", "DATABASE_URL", "REDIS_URL", "LIVEKIT_URL",
			      "AUTH_JWT_SECRET", "DATABASE_MIGRATE_URL", NULL};
	const char *env[] = {"CORS_ORIGINS=https://chat.example.com, https://other.example.com", NULL};
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server");
	SRunner *sr;
	PGconn *db;
	char *u;
	int failed;

	it_require(need);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	db = it_db();
	u = it_new_user(db, "HTTP Tester");
	snprintf(uid, sizeof(uid), "%s", u);
	free(u);
	PQfinish(db);
	if (it_server_start(&srv, env) != 0) {
		fprintf(stderr, "cannot start the server\n");
		return 1;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, health_and_ready);
	tcase_add_test(tc, auth_failures);
	tcase_add_test(tc, routing_errors_and_limits);
	tcase_add_test(tc, request_id_and_headers);
	tcase_add_test(tc, readyz_reports_dead_dependencies);
	tcase_add_test(tc, config_errors_stop_startup);
	tcase_add_test(tc, sigterm_exits_zero_and_stops_accepting);
	tcase_add_test(tc, slow_clients_and_connection_cap);
	tcase_add_test(tc, rate_limits_per_user_and_address);
	tcase_add_test(tc, rate_limits_without_redis);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (it_server_stop(&srv) != 0) {
		fprintf(stderr, "server did not exit 0 on SIGTERM\n");
		failed++;
	}
	curl_global_cleanup();
	return failed == 0 ? 0 : 1;
}
