/*
 * api_governance.c - admin views over the audit trail and the outgoing
 * webhook outbox.
 *
 *   GET  /api/audit?actor=&action=&target=&before=&limit=
 *   GET  /api/admin/outbound-webhooks?status=&before=&limit=
 *   POST /api/admin/outbound-webhooks/{id}/replay
 *
 * Lists are newest first with keyset pagination: `nextCursor` is the id of
 * the last row returned, and `before=<that id>` continues after it (ties on
 * created_at are broken by id, so no row is skipped or repeated).
 */
#include "ops/ops.h"
#include "core/uuid.h"
#include "realtime/events.h"
#include "realtime/outbox.h"
#include "http/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* limit (1..200, default 50) and before (a UUID) from the query. */
static enum nc_err page_args(struct req *r, char limit[8], char **before, struct nc_error *err)
{
	char *l = req_query(r, "limit");
	long v = 50;
	int bad = l != NULL && parse_long(l, 1, 200, &v) != 0;

	free(l);
	if (bad)
		return err_set(err, NC_EBADREQ, "limit must be from 1 to 200");
	*before = req_query(r, "before");
	if (*before != NULL && !is_uuid(*before))
		return err_set(err, NC_EBADREQ, "before must be a cursor from a previous page");
	snprintf(limit, 8, "%ld", v);
	return NC_OK;
}

/* Turn a result whose first column is json text into {items, nextCursor}. */
static json_t *page_json(PGresult *res, long limit)
{
	json_t *items = json_array(), *out;
	int n = PQntuples(res);

	for (int i = 0; i < n; i++) {
		json_t *row = json_loads(PQgetvalue(res, i, 0), 0, NULL);
		if (row != NULL)
			json_array_append_new(items, row);
	}
	out = json_pack("{s:o}", "items", items);
	if (n == limit && n > 0)
		json_object_set_new(out, "nextCursor",
				    json_string(json_string_value(json_object_get(
					    json_array_get(items, (size_t)n - 1), "id"))));
	else
		json_object_set_new(out, "nextCursor", json_null());
	return out;
}

/* Run a read-only page query in a service transaction and answer it. */
static enum nc_err answer_page(struct req *r, const char *sql, int n, const char *const *params,
			       const char *limit, struct nc_error *err)
{
	PGresult *res;

	if (db_begin_service(&req_worker(r)->db, err) != NC_OK)
		return err->code;
	res = db_exec(&req_worker(r)->db, sql, n, params, err);
	db_rollback(&req_worker(r)->db);
	if (res == NULL)
		return err->code;
	resp_json(r, 200, page_json(res, atol(limit)));
	PQclear(res);
	return NC_OK;
}

static const char audit_page_sql[] =
	"SELECT json_build_object('id', a.id, 'actorId', a.actor_id, 'actorRole', a.actor_role,"
	" 'action', a.action, 'targetType', a.target_type, 'targetId', a.target_id,"
	" 'details', a.details, 'requestId', a.request_id,"
	" 'createdAt', to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))::text"
	" FROM nchat_rtc_audit_log a"
	" WHERE ($1::uuid IS NULL OR a.actor_id = $1::uuid)"
	"   AND ($2::text IS NULL OR a.action = $2)"
	"   AND ($3::text IS NULL OR a.target_id = $3)"
	"   AND ($4::uuid IS NULL OR (a.created_at, a.id) <"
	"        (SELECT created_at, id FROM nchat_rtc_audit_log WHERE id = $4::uuid))"
	" ORDER BY a.created_at DESC, a.id DESC LIMIT $5::int";

static enum nc_err list_audit(struct req *r, struct nc_error *err)
{
	char limit[8], *before = NULL;
	char *actor = req_query(r, "actor"), *action = req_query(r, "action");
	char *target = req_query(r, "target");
	enum nc_err rc = page_args(r, limit, &before, err);

	if (rc == NC_OK && actor != NULL && !is_uuid(actor))
		rc = err_set(err, NC_EBADREQ, "actor must be a UUID");
	if (rc == NC_OK) {
		const char *params[5] = {actor, action, target, before, limit};

		rc = answer_page(r, audit_page_sql, 5, params, limit, err);
	}
	free(actor);
	free(action);
	free(target);
	free(before);
	return rc;
}

#define WEBHOOK_ROW_SQL                                                                         \
	"json_build_object('id', o.id, 'event', o.event, 'targetUrl', o.target_url,"            \
	" 'status', o.status, 'attempts', o.attempts, 'lastStatus', o.last_status,"             \
	" 'lastError', o.last_error, 'payload', o.payload,"                                     \
	" 'nextAttemptAt', to_char(o.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')," \
	" 'deliveredAt', to_char(o.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')," \
	" 'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))::text"

#define OUTBOUND_PAGE_SQL(row)                                                                 \
	"SELECT " row " FROM nchat_rtc_outbound_webhooks o"                                    \
	" WHERE ($1::text IS NULL OR o.status = $1)"                                           \
	"   AND ($2::uuid IS NULL OR (o.created_at, o.id) <"                                   \
	"        (SELECT created_at, id FROM nchat_rtc_outbound_webhooks WHERE id = $2::uuid))" \
	" ORDER BY o.created_at DESC, o.id DESC LIMIT $3::int"

static enum nc_err list_outbound(struct req *r, struct nc_error *err)
{
	static const char *const statuses[] = {"pending", "delivered", "dead", NULL};
	char limit[8], *before = NULL, *status = req_query(r, "status");
	bool known = status == NULL;
	enum nc_err rc = page_args(r, limit, &before, err);

	for (size_t i = 0; status != NULL && statuses[i] != NULL; i++)
		known |= strcmp(status, statuses[i]) == 0;
	if (rc == NC_OK && !known)
		rc = err_set(err, NC_EBADREQ, "status must be pending, delivered or dead");
	if (rc == NC_OK) {
		const char *params[3] = {status, before, limit};

		rc = answer_page(r, OUTBOUND_PAGE_SQL(WEBHOOK_ROW_SQL), 3, params, limit, err);
	}
	free(status);
	free(before);
	return rc;
}

/* Deliver again: back to pending, due now, with a fresh attempt budget. */
static enum nc_err replay_outbound(struct req *r, struct nc_error *err)
{
	const char *id = req_param(r, "id");
	const char *params[] = {id};
	PGresult *res;
	json_t *row;

	if (db_begin_service(&req_worker(r)->db, err) != NC_OK)
		return err->code;
	res = db_exec(&req_worker(r)->db,
		      "UPDATE nchat_rtc_outbound_webhooks o SET status = 'pending', attempts = 0,"
		      " next_attempt_at = now(), last_error = NULL WHERE o.id = $1 RETURNING "
		      WEBHOOK_ROW_SQL,
		      1, params, err);
	if (res == NULL)
		return err->code;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return err_set(err, NC_ENOTFOUND, "no such delivery");
	}
	row = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	PQclear(res);
	if (audit_log(&req_worker(r)->db, req_user(r), "outbound_webhook.replay", "outbound_webhook", id, NULL,
		      req_id(r), err) != NC_OK ||
	    db_commit(&req_worker(r)->db, err) != NC_OK) {
		json_decref(row);
		return err->code;
	}
	resp_json(r, 200, row);
	return NC_OK;
}

const struct route governance_routes[] = {
	{RM_GET, "/api/audit", list_audit, ROUTE_AUTH | ROUTE_ADMIN, NULL, NULL},
	{RM_GET, "/api/admin/outbound-webhooks", list_outbound,
	 ROUTE_AUTH | ROUTE_ADMIN, NULL, NULL},
	{RM_POST, "/api/admin/outbound-webhooks/{id}/replay", replay_outbound,
	 ROUTE_AUTH | ROUTE_ADMIN | ROUTE_UUID_PARAMS, NULL, NULL},
	{0, NULL, NULL, 0, NULL, NULL},
};
