/*
 * harness.h - helpers for the integration suites.
 *
 * The suites run against real services started by scripts/test.sh, whose
 * addresses arrive in the environment: NC_BIN (the binary under test),
 * DATABASE_URL (the service's role), DATABASE_MIGRATE_URL (schema owner),
 * NC_TEST_ADMIN_URL (superuser), REDIS_URL, LK_STANDIN_URL / LIVEKIT_URL /
 * LIVEKIT_API_KEY / LIVEKIT_API_SECRET (the LiveKit stand-in), S3_* (the S3
 * stand-in), AUTH_JWT_SECRET, NC_RUN_DIR (scratch space).  A suite whose
 * services are absent exits 77 (skipped) through it_require().
 */
#ifndef NC_HARNESS_H
#define NC_HARNESS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sys/types.h>

struct it_server {
	pid_t pid;
	int port;
	char base[64];       /* http://127.0.0.1:PORT */
	int metrics_port;    /* METRICS_ADDR's port (a free one unless extra_env sets it) */
	char metrics_base[64];
	char log_path[512];
};

struct it_resp {
	long status;
	char *body;
	json_t *json;        /* parsed body, or NULL */
	char *headers;       /* raw response headers */
};

/* Exit 77 unless every named environment variable is set. */
void it_require(const char *const *vars);
const char *it_env(const char *name);

/* Pick a free loopback TCP port. */
int it_free_port(void);

/*
 * Start `NC_BIN serve` with the current environment plus extra "K=V"
 * entries (NULL-terminated, may be NULL), LISTEN_ADDR and METRICS_ADDR on
 * free ports; waits until /healthz answers.  0 or -1.
 */
int it_server_start(struct it_server *s, const char *const *extra_env);
/* SIGTERM and wait; returns the exit status (or -1). */
int it_server_stop(struct it_server *s);
/* SIGKILL and wait (a crash). */
void it_server_kill(struct it_server *s);

/*
 * One HTTP request.  token: bearer token or NULL; body: JSON text or NULL;
 * extra_headers: NULL-terminated "Name: value" list or NULL.  0 on transport
 * success (any status), -1 on transport failure.
 */
int it_http(const char *method, const char *url, const char *token, const char *body,
	    const char *const *extra_headers, struct it_resp *out);
/* Same, against the running test server: path is appended to s->base. */
int it_req(const struct it_server *s, const char *method, const char *path, const char *token,
	   const char *body, struct it_resp *out);
/* GET /metrics from the server's metrics listener (METRICS_ADDR). */
int it_metrics(const struct it_server *s, struct it_resp *out);
void it_resp_free(struct it_resp *r);
/* Value of a response header (case-insensitive), malloc'd, or NULL. */
char *it_resp_header(const struct it_resp *r, const char *name);
/* The error code string of an API error body, or "". */
const char *it_err_code(const struct it_resp *r);

/* A user JWT (HS256 with AUTH_JWT_SECRET, Hasura claims). roles: "user,admin" or NULL. */
char *it_user_token(const char *user_id, const char *roles, long ttl_s);

/*
 * DATABASE_URL with the login of another URL (e.g. NC_TEST_ADMIN_URL, the
 * superuser): "KEY=postgresql://USER@HOST:PORT/DB" ready for it_server_start's
 * extra environment (malloc'd), so a suite can run the service as another
 * role against the same database.  NULL if either URL is unusable.
 */
char *it_database_url_env_as(const char *login_url);

/* Owner-role connection (bypasses RLS) for set-up and assertions. */
PGconn *it_db(void);
/* Run SQL with text params; abort the test on error. Returns first column of first row (malloc'd) or NULL. */
char *it_sql(PGconn *db, const char *sql, int nparams, const char *const *params);
/* Count rows: SELECT count(*) ... */
long it_sql_long(PGconn *db, const char *sql, int nparams, const char *const *params);
/* Insert a user / channel / membership; returns the new uuid (malloc'd). */
char *it_new_user(PGconn *db, const char *display_name);
char *it_new_channel(PGconn *db, const char *name);
void it_add_member(PGconn *db, const char *channel_id, const char *user_id, const char *role);

/* Call the LiveKit stand-in's control API; returns parsed JSON (caller decrefs) or NULL. */
json_t *it_standin(const char *method, const char *path, json_t *body);
/* Verify a LiveKit token with livekit-server-sdk via the stand-in; claims or NULL. */
json_t *it_verify_lk_token(const char *token);

#endif
