/*
 * api_health.c - liveness and readiness.
 *
 * /healthz answers on the loop thread and touches nothing: the process is
 * alive.  /readyz runs on a worker and checks that worker's own Postgres and
 * Redis connections, so a 200 means this instance can serve requests now.
 */
#include "ops/ops.h"
#include "core/metrics.h"
#include "http/worker.h"

static enum nc_err api_healthz(struct req *r, struct nc_error *err)
{
	(void)err;
	resp_json(r, 200, json_pack("{s:s}", "status", "ok"));
	return NC_OK;
}

/*
 * Postgres is "ok" only when this worker's connection can enter both work
 * roles and they are confined (db_check_roles); "roles" with a
 * postgresDetail line saying what to grant when it cannot.
 */
static enum nc_err api_readyz(struct req *r, struct nc_error *err)
{
	struct nc_worker *w = req_worker(r);
	char msg[512];
	enum db_roles_state st = db_check_roles(&w->db, msg, sizeof(msg));
	redisReply *rep = NULL;
	bool pg_ok = st == DB_ROLES_OK, redis_ok = false;
	json_t *out;

	if (w->rds_ok) {
		rep = rds_cmd(&w->rds, err, "PING");
		redis_ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
		freeReplyObject(rep);
	}
	out = json_pack("{s:s, s:s, s:s}", "status", pg_ok && redis_ok ? "ready" : "unavailable",
			"postgres", pg_ok ? "ok" : st == DB_ROLES_REFUSED ? "roles" : "down",
			"redis", redis_ok ? "ok" : "down");
	if (st == DB_ROLES_REFUSED)
		json_object_set_new(out, "postgresDetail", json_string(msg));
	/* An answer either way: the 503 names what is down (not an error body). */
	resp_json(r, pg_ok && redis_ok ? 200 : 503, out);
	return NC_OK;
}

/* Who the bearer token says the caller is (handy for the frontend and tests). */
static enum nc_err api_me(struct req *r, struct nc_error *err)
{
	json_t *roles = json_array();

	(void)err;
	if (req_user(r)->roles & ROLE_USER)
		json_array_append_new(roles, json_string("user"));
	if (req_user(r)->roles & ROLE_MODERATOR)
		json_array_append_new(roles, json_string("moderator"));
	if (req_user(r)->roles & ROLE_ADMIN)
		json_array_append_new(roles, json_string("admin"));
	resp_json(r, 200, json_pack("{s:s, s:o}", "userId", req_user(r)->user_id, "roles", roles));
	return NC_OK;
}

const struct route health_routes[] = {
	{RM_GET | RM_HEAD, "/healthz", api_healthz, ROUTE_ON_LOOP, NULL, NULL},
	{RM_GET | RM_HEAD, "/readyz", api_readyz, 0, NULL, NULL},
	{RM_GET, "/api/me", api_me, ROUTE_AUTH, NULL, NULL},
	{RM_GET, "/metrics", api_metrics, ROUTE_METRICS, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
