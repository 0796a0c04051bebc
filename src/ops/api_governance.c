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

static bool require_admin(struct req *r)
{
	if (!(r->user.roles & ROLE_ADMIN)) {
		resp_error(r, NC_EFORBIDDEN, "admins only");
		return false;
	}
	return true;
}

/* limit (1..200, default 50) and before (a UUID) from the query; false if a 400 was set. */
static bool page_args(struct req *r, char limit[8], char **before)
{
	char *l = req_query(r, "limit");
	long v = 50;

	*before = req_query(r, "before");
	if (l != NULL && parse_long(l, 1, 200, &v) != 0) {
		free(l);
		resp_error(r, NC_EBADREQ, "limit must be from 1 to 200");
		return false;
	}
	free(l);
	if (*before != NULL && !is_uuid(*before)) {
		resp_error(r, NC_EBADREQ, "before must be a cursor from a previous page");
		return false;
	}
	snprintf(limit, 8, "%ld", v);
	return true;
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

static void list_audit(struct req *r)
{
	struct nc_error err = {0};
	char limit[8], *before = NULL;
	char *actor = req_query(r, "actor"), *action = req_query(r, "action");
	char *target = req_query(r, "target");
	const char *params[5];
	PGresult *res = NULL;

	if (!require_admin(r) || !page_args(r, limit, &before))
		goto out;
	if (actor != NULL && !is_uuid(actor)) {
		resp_error(r, NC_EBADREQ, "actor must be a UUID");
		goto out;
	}
	params[0] = actor;
	params[1] = action;
	params[2] = target;
	params[3] = before;
	params[4] = limit;
	if (db_begin_service(&r->w->db, &err) != NC_OK)
		goto fail;
	res = db_exec(&r->w->db,
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
		      " ORDER BY a.created_at DESC, a.id DESC LIMIT $5::int",
		      5, params, &err);
	db_rollback(&r->w->db);
	if (res == NULL)
		goto fail;
	resp_json(r, 200, page_json(res, atol(limit)));
	PQclear(res);
	goto out;
fail:
	resp_nc_error(r, &err);
out:
	free(actor);
	free(action);
	free(target);
	free(before);
}

static const char webhook_row_sql[] =
	"json_build_object('id', o.id, 'event', o.event, 'targetUrl', o.target_url,"
	" 'status', o.status, 'attempts', o.attempts, 'lastStatus', o.last_status,"
	" 'lastError', o.last_error, 'payload', o.payload,"
	" 'nextAttemptAt', to_char(o.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" 'deliveredAt', to_char(o.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" 'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))::text";

static void list_outbound(struct req *r)
{
	static const char *const statuses[] = {"pending", "delivered", "dead", NULL};
	struct nc_error err = {0};
	char limit[8], *before = NULL, *status = req_query(r, "status"), *sql;
	const char *params[3];
	PGresult *res = NULL;
	bool ok = status == NULL;

	if (!require_admin(r) || !page_args(r, limit, &before))
		goto out;
	for (size_t i = 0; status != NULL && statuses[i] != NULL; i++)
		ok |= strcmp(status, statuses[i]) == 0;
	if (!ok) {
		resp_error(r, NC_EBADREQ, "status must be pending, delivered or dead");
		goto out;
	}
	params[0] = status;
	params[1] = before;
	params[2] = limit;
	if (db_begin_service(&r->w->db, &err) != NC_OK)
		goto fail;
	sql = xasprintf("SELECT %s FROM nchat_rtc_outbound_webhooks o"
			" WHERE ($1::text IS NULL OR o.status = $1)"
			"   AND ($2::uuid IS NULL OR (o.created_at, o.id) <"
			"        (SELECT created_at, id FROM nchat_rtc_outbound_webhooks WHERE id = $2::uuid))"
			" ORDER BY o.created_at DESC, o.id DESC LIMIT $3::int",
			webhook_row_sql);
	res = db_exec(&r->w->db, sql, 3, params, &err);
	free(sql);
	db_rollback(&r->w->db);
	if (res == NULL)
		goto fail;
	resp_json(r, 200, page_json(res, atol(limit)));
	PQclear(res);
	goto out;
fail:
	resp_nc_error(r, &err);
out:
	free(status);
	free(before);
}

/* Deliver again: back to pending, due now, with a fresh attempt budget. */
static void replay_outbound(struct req *r)
{
	struct nc_error err = {0};
	const char *id = req_param(r, "id");
	const char *params[] = {id};
	PGresult *res;
	char *sql;

	if (!require_admin(r))
		return;
	if (!is_uuid(id)) {
		resp_error(r, NC_EBADREQ, "id must be a UUID");
		return;
	}
	if (db_begin_service(&r->w->db, &err) != NC_OK)
		goto fail;
	sql = xasprintf("UPDATE nchat_rtc_outbound_webhooks o SET status = 'pending', attempts = 0,"
			" next_attempt_at = now(), last_error = NULL WHERE o.id = $1 RETURNING %s",
			webhook_row_sql);
	res = db_exec(&r->w->db, sql, 1, params, &err);
	free(sql);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(&r->w->db);
		resp_error(r, NC_ENOTFOUND, "no such delivery");
		return;
	}
	if (audit_log(&r->w->db, &r->user, "outbound_webhook.replay", "outbound_webhook", id, NULL,
		      r->request_id, &err) != NC_OK ||
	    db_commit(&r->w->db, &err) != NC_OK) {
		PQclear(res);
		goto fail;
	}
	resp_json(r, 200, json_loads(PQgetvalue(res, 0, 0), 0, NULL));
	PQclear(res);
	return;
fail:
	db_rollback(&r->w->db);
	resp_nc_error(r, &err);
}

const struct route governance_routes[] = {
	{RM_GET, "/api/audit", list_audit, ROUTE_AUTH, NULL},
	{RM_GET, "/api/admin/outbound-webhooks", list_outbound, ROUTE_AUTH, NULL},
	{RM_POST, "/api/admin/outbound-webhooks/{id}/replay", replay_outbound, ROUTE_AUTH, NULL},
	{0, NULL, NULL, 0, NULL},
};
