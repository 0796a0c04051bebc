/*
 * harness.c - integration test helpers (see harness.h).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * check's ck_assert marks progress even when the assertion holds, which is
 * an error outside a running test (suite set-up in main); only call into
 * check when something actually failed.
 */
#define IT_ASSERT(cond, ...)                 \
	do {                                 \
		if (!(cond))                 \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

const char *it_env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

void it_require(const char *const *vars)
{
	for (size_t i = 0; vars[i] != NULL; i++) {
		if (it_env(vars[i]) == NULL) {
			printf("skipped: %s is not set (run through make test)\n", vars[i]);
			exit(77);
		}
	}
}

int it_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* ---- HTTP ---- */

struct growbuf {
	char *p;
	size_t n;
};

static size_t grow_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct growbuf *b = arg;
	size_t add = size * nmemb;
	char *q = realloc(b->p, b->n + add + 1);

	if (q == NULL)
		return 0;
	b->p = q;
	memcpy(b->p + b->n, data, add);
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

int it_http(const char *method, const char *url, const char *token, const char *body,
	    const char *const *extra_headers, struct it_resp *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct growbuf b = {0}, h = {0};
	char auth[8192];
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body != NULL) {
		bool has_ct = false;
		for (size_t i = 0; extra_headers && extra_headers[i]; i++)
			if (strncasecmp(extra_headers[i], "Content-Type:", 13) == 0)
				has_ct = true;
		if (!has_ct)
			hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	for (size_t i = 0; extra_headers && extra_headers[i]; i++)
		hdrs = curl_slist_append(hdrs, extra_headers[i]);
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
		out->body = b.p ? b.p : strdup("");
		out->headers = h.p ? h.p : strdup("");
		out->json = out->body ? json_loads(out->body, 0, NULL) : NULL;
	} else {
		free(b.p);
		free(h.p);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

int it_req(const struct it_server *s, const char *method, const char *path, const char *token,
	   const char *body, struct it_resp *out)
{
	char url[2048];

	snprintf(url, sizeof(url), "%s%s", s->base, path);
	return it_http(method, url, token, body, NULL, out);
}

int it_metrics(const struct it_server *s, struct it_resp *out)
{
	char url[128];

	snprintf(url, sizeof(url), "%s/metrics", s->metrics_base);
	return it_http("GET", url, NULL, NULL, NULL, out);
}

void it_resp_free(struct it_resp *r)
{
	free(r->body);
	free(r->headers);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

char *it_resp_header(const struct it_resp *r, const char *name)
{
	size_t nl = strlen(name);
	const char *p = r->headers;

	while (p != NULL && *p != '\0') {
		const char *eol = strstr(p, "\r\n");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			return strndup(v, len - (size_t)(v - p));
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

const char *it_err_code(const struct it_resp *r)
{
	const char *c = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));

	return c ? c : "";
}

/* ---- the server process ---- */

int it_server_start(struct it_server *s, const char *const *extra_env)
{
	const char *bin = it_env("NC_BIN");
	const char *rundir = it_env("NC_RUN_DIR");
	char listen[64], metrics[64];
	pid_t pid;

	memset(s, 0, sizeof(*s));
	if (bin == NULL)
		return -1;
	s->port = it_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
	do
		s->metrics_port = it_free_port();
	while (s->metrics_port == s->port);
	for (size_t i = 0; extra_env && extra_env[i]; i++) {
		const char *colon;

		if (strncmp(extra_env[i], "METRICS_ADDR=", 13) == 0)
			s->metrics_port = (colon = strrchr(extra_env[i], ':')) ? atoi(colon + 1) : 0;
	}
	snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", s->metrics_port);
	snprintf(s->metrics_base, sizeof(s->metrics_base), "http://127.0.0.1:%d", s->metrics_port);
	snprintf(s->log_path, sizeof(s->log_path), "%s/server-%d.log", rundir ? rundir : "/tmp",
		 s->port);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		setenv("LISTEN_ADDR", listen, 1);
		setenv("METRICS_ADDR", metrics, 1);
		if (getenv("WORKERS") == NULL)
			setenv("WORKERS", "4", 1);
		if (getenv("LOG_LEVEL") == NULL)
			setenv("LOG_LEVEL", "debug", 1);
		/* Tests make many requests from one address and user; suites that
		 * test the limits themselves pass their own values. */
		if (getenv("RATE_LIMIT_IP") == NULL)
			setenv("RATE_LIMIT_IP", "off", 1);
		if (getenv("RATE_LIMITS") == NULL)
			setenv("RATE_LIMITS", "default=off,initiate=off,join=off,chat=off,"
					      "reactions=off,stats=off", 1);
		for (size_t i = 0; extra_env && extra_env[i]; i++)
			putenv(strdup(extra_env[i]));
		execl(bin, bin, "serve", (char *)NULL);
		_exit(127);
	}
	s->pid = pid;
	for (int i = 0; i < 300; i++) {
		struct it_resp r;
		char url[128];
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "server exited during start-up; see %s\n", s->log_path);
			s->pid = 0;
			return -1;
		}
		snprintf(url, sizeof(url), "%s/healthz", s->base);
		if (it_http("GET", url, NULL, NULL, NULL, &r) == 0 && r.status == 200) {
			it_resp_free(&r);
			return 0;
		}
		it_resp_free(&r);
		usleep(50 * 1000);
	}
	it_server_kill(s);
	return -1;
}

int it_server_stop(struct it_server *s)
{
	int status = 0;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 600; i++) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(50 * 1000);
	}
	it_server_kill(s);
	return -1;
}

void it_server_kill(struct it_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

/* ---- tokens ---- */

char *it_user_token(const char *user_id, const char *roles, long ttl_s)
{
	const char *secret = it_env("AUTH_JWT_SECRET");
	jwt_t *jwt = NULL;
	json_t *claims, *allowed = json_array();
	char *out = NULL, *claims_s, *copy, *tok, *save = NULL;
	time_t now = time(NULL);
	const char *def = "user";

	if (secret == NULL)
		return NULL;
	copy = strdup(roles ? roles : "user");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		json_array_append_new(allowed, json_string(tok));
		def = json_string_value(json_array_get(allowed, 0));
	}
	claims = json_pack("{s:s, s:I, s:I, s:{s:s, s:o, s:s}}", "sub", user_id, "iat",
			   (json_int_t)now, "exp", (json_int_t)(now + ttl_s),
			   "https://hasura.io/jwt/claims", "x-hasura-user-id", user_id,
			   "x-hasura-allowed-roles", allowed, "x-hasura-default-role", def);
	claims_s = json_dumps(claims, JSON_COMPACT);
	if (jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims_s) == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0)
		out = jwt_encode_str(jwt);
	jwt_free(jwt);
	free(claims_s);
	json_decref(claims);
	free(copy);
	return out;
}

/* ---- database ---- */

/* "postgresql://USER@HOST:PORT/DB": pointers to the user part and the rest. */
static bool split_url(const char *url, const char **user, size_t *ulen, const char **rest)
{
	const char *p = url ? strstr(url, "://") : NULL, *at;

	if (p == NULL)
		return false;
	p += 3;
	at = strchr(p, '@');
	if (at == NULL || strchr(p, '/') < at)
		return false;
	*user = p;
	*ulen = (size_t)(at - p);
	*rest = at + 1;
	return true;
}

char *it_database_url_env_as(const char *login_url)
{
	const char *u, *rest, *u2, *rest2;
	size_t ulen, ulen2, n;
	char *out;

	/* the login (user) of one, the host, port and database of the other */
	if (!split_url(login_url, &u, &ulen, &rest) ||
	    !split_url(it_env("DATABASE_URL"), &u2, &ulen2, &rest2) || strchr(rest2, '/') == NULL)
		return NULL;
	n = ulen + strlen(rest2) + 40;
	out = malloc(n);
	if (out != NULL)
		snprintf(out, n, "DATABASE_URL=postgresql://%.*s@%s", (int)ulen, u, rest2);
	return out;
}

PGconn *it_db(void)
{
	const char *url = it_env("DATABASE_MIGRATE_URL");
	PGconn *db = PQconnectdb(url ? url : "");

	IT_ASSERT(PQstatus(db) == CONNECTION_OK, "db connect: %s", PQerrorMessage(db));
	return db;
}

char *it_sql(PGconn *db, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	char *out = NULL;

	IT_ASSERT(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "sql failed: %s: %s", sql,
		      PQerrorMessage(db));
	if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

long it_sql_long(PGconn *db, const char *sql, int nparams, const char *const *params)
{
	char *v = it_sql(db, sql, nparams, params);
	long n = v ? strtol(v, NULL, 10) : 0;

	free(v);
	return n;
}

char *it_new_user(PGconn *db, const char *display_name)
{
	const char *p[] = {display_name};

	return it_sql(db, "INSERT INTO nchat_users (id, display_name) VALUES (gen_random_uuid(), $1) RETURNING id",
		      1, p);
}

char *it_new_channel(PGconn *db, const char *name)
{
	const char *p[] = {name};

	return it_sql(db, "INSERT INTO nchat_channels (id, name) VALUES (gen_random_uuid(), $1) RETURNING id",
		      1, p);
}

void it_add_member(PGconn *db, const char *channel_id, const char *user_id, const char *role)
{
	const char *p[] = {channel_id, user_id, role ? role : "member"};

	free(it_sql(db, "INSERT INTO nchat_channel_members (channel_id, user_id, role) VALUES ($1, $2, $3)",
		    3, p));
}

/* ---- LiveKit stand-in ---- */

json_t *it_standin(const char *method, const char *path, json_t *body)
{
	const char *base = it_env("LK_STANDIN_URL");
	char url[1024];
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct it_resp r;
	json_t *out = NULL;

	if (base == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", base, path);
	if (it_http(method, url, NULL, text ? text : (strcmp(method, "POST") == 0 ? "{}" : NULL),
		    NULL, &r) == 0) {
		out = json_incref(r.json);
		it_resp_free(&r);
	}
	free(text);
	return out;
}

json_t *it_verify_lk_token(const char *token)
{
	json_t *req = json_pack("{s:s}", "token", token);
	json_t *res = it_standin("POST", "/_test/verify-token", req);
	json_t *claims = NULL;

	json_decref(req);
	if (res != NULL && json_is_true(json_object_get(res, "ok")))
		claims = json_incref(json_object_get(res, "claims"));
	json_decref(res);
	return claims;
}
