/*
 * sweep_calls.c - reconciliation of calls with the clock and with LiveKit:
 * `nchat-rtc sweep-calls` (cron) and the periodic timer inside `serve`.
 *
 * Webhooks are best effort (PROTOCOL.md §6.6: no persistence, dropped after
 * five attempts), and the instance that started a call may be gone, so the
 * database alone must be enough to finish what was started:
 *   1. ring timeouts: still-ringing invitees past ring_expires_at become
 *      missed; a call nobody answered becomes missed (room deleted);
 *   2. open calls whose room LiveKit no longer lists are ended;
 *   3. joined participants LiveKit no longer lists are closed (after a
 *      grace period, or at once when a webhook had shown them connected),
 *      and a call left with nobody joined is ended; presence is refreshed
 *      for everyone LiveKit still lists (the presence heartbeat).
 * A Postgres advisory lock (transaction level, on a connection of its own,
 * tried not waited for) keeps the sweep to one instance at a time.
 */
#include "calls/calls.h"
#include "core/uuid.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "store/sweep_mark.h"
#include "recordings/recordings.h"
#include "http/http.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "realtime/presence.h"
#include "http/worker.h"
#include "calls/calls_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key of the advisory lock (any constant unique to this job). */
#define SWEEP_LOCK_KEY "7120431001"
/* Calls handled per pass and step. */
#define SWEEP_BATCH 200
/*
 * A participant the API marked joined but LiveKit has never reported may
 * still be connecting: give them this long before closing the row.
 */
#define JOIN_GRACE_S 120
/* Do not look for the room of a call younger than this (initiate in flight). */
#define ROOM_GRACE_S 10

/* End one call (status/reason) in its own transaction; side effects after commit. */
static enum nc_err finish_call(struct nc_worker *w, const char *id, const char *status,
			       const char *reason, bool only_if_ringing, bool *done, int *closed,
			       struct nc_error *err)
{
	struct db_conn *db = &w->db;
	char now_status[16];
	json_t *members;
	int n;

	*done = false;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_lock_status(db, id, false, now_status, err);
	if (n < 0)
		goto fail;
	if (n == 0 || calls_status_terminal(now_status) ||
	    (only_if_ringing && strcmp(now_status, "ringing") != 0)) {
		db_rollback(db);
		return NC_OK; /* changed meanwhile: nothing to do */
	}
	n = calls_close_tx(w->cfg, db, id, status, reason, NULL, err);
	if (n < 0)
		goto fail;
	members = calls_db_member_ids(db, id, err);
	if (members == NULL)
		goto fail;
	if (db_commit(db, err) != NC_OK) {
		json_decref(members);
		goto fail;
	}
	*closed += n;
	*done = true;
	log_info("sweep-calls: call %s %s (%s)", id, status, reason);
	calls_after_end(w, id, members, status, reason, true);
	json_decref(members);
	return NC_OK;
fail:
	db_rollback(db);
	return err->code;
}

/* Step 1: ring timeouts. */
static enum nc_err sweep_ring(struct nc_worker *w, struct calls_sweep_stats *st,
			      struct nc_error *err)
{
	struct db_conn *db = &w->db;
	json_t *ids = NULL, *id;
	size_t i;
	int n;
	bool done;

	/* Invitees of answered calls who never picked up: missed (one statement). */
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	n = calls_db_sweep_missed_invitees(db, err);
	if (n < 0) {
		db_rollback(db);
		return err->code;
	}
	st->participants_closed += n;
	ids = calls_db_ring_expired(db, SWEEP_BATCH, err);
	if (ids == NULL || db_commit(db, err) != NC_OK) {
		json_decref(ids);
		db_rollback(db);
		return err->code;
	}
	json_array_foreach(ids, i, id) {
		if (finish_call(w, json_string_value(id), "missed", "ring_timeout", true, &done,
				&st->participants_closed, err) != NC_OK)
			break;
		if (done)
			st->missed++;
	}
	json_decref(ids);
	return err->code;
}

/* Close joined participants of call id that LiveKit no longer has. */
static enum nc_err sweep_participants(struct nc_worker *w, const char *id, const char *room,
				      struct calls_sweep_stats *st, struct nc_error *err)
{
	Livekit__ListParticipantsRequest lr = LIVEKIT__LIST_PARTICIPANTS_REQUEST__INIT;
	Livekit__ListParticipantsResponse *lp;
	struct lk_status lst;
	struct db_conn *db = &w->db;
	char status[16];
	json_t *present = json_array(), *closed_ids = NULL, *u;
	char *lit;
	struct buf b = {0};
	size_t i;
	bool done;
	int n;

	lr.room = (char *)room;
	lp = lk_list_participants(w->lk, &lr, &lst);
	if (lp == NULL) {
		json_decref(present);
		if (lk_status_is(&lst, "not_found"))
			return NC_OK; /* the next pass ends it */
		return lk_status_error(&lst, err);
	}
	for (i = 0; i < lp->n_participants; i++) {
		const char *ident = lp->participants[i]->identity;

		if (ident != NULL && is_uuid(ident)) {
			json_array_append_new(present, json_string(ident));
		}
	}
	protobuf_c_message_free_unpacked(&lp->base, NULL);
	/* The heartbeat: whoever LiveKit lists is present. */
	json_array_foreach(present, i, u)
		presence_join(w, id, json_string_value(u));

	/* the identities are UUIDs (checked above): nothing to quote */
	buf_add(&b, "{");
	json_array_foreach(present, i, u)
		buf_addf(&b, "%s%s", i ? "," : "", json_string_value(u));
	buf_add(&b, "}");
	lit = buf_steal(&b);
	if (db_begin_service(db, err) != NC_OK)
		goto out;
	n = calls_db_lock_status(db, id, true, status, err);
	if (n < 0)
		goto fail;
	if (n == 0 || strcmp(status, "initiating") == 0) {
		db_rollback(db);
		goto out;
	}
	closed_ids = calls_db_close_absent(db, id, lit, JOIN_GRACE_S, err);
	if (closed_ids == NULL)
		goto fail;
	n = calls_db_count_joined(db, id, err);
	if (n < 0 || db_commit(db, err) != NC_OK)
		goto fail;
	st->participants_closed += (int)json_array_size(closed_ids);
	json_array_foreach(closed_ids, i, u)
		presence_leave(w, id, json_string_value(u));
	if (n == 0 && json_array_size(closed_ids) > 0) {
		/* Everyone is gone: the call is over. */
		if (finish_call(w, id, "ended", "everyone_left", false, &done,
				&st->participants_closed, err) == NC_OK && done)
			st->ended++;
	}
	goto out;
fail:
	db_rollback(db);
out:
	free(lit);
	json_decref(present);
	json_decref(closed_ids);
	return err->code;
}

/* Steps 2 and 3: calls whose room is gone, participants who are gone. */
static enum nc_err sweep_rooms(struct nc_worker *w, struct calls_sweep_stats *st,
			       struct nc_error *err)
{
	struct db_conn *db = &w->db;
	Livekit__ListRoomsRequest lr = LIVEKIT__LIST_ROOMS_REQUEST__INIT;
	Livekit__ListRoomsResponse *rooms;
	struct lk_status lst;
	json_t *calls;
	size_t n;
	bool done;

	if (w->lk == NULL)
		return NC_OK;
	if (db_begin_service(db, err) != NC_OK)
		return err->code;
	calls = calls_db_open_calls(db, ROOM_GRACE_S, SWEEP_BATCH, err);
	db_rollback(db);
	if (calls == NULL)
		return err->code;
	n = json_array_size(calls);
	if (n == 0) {
		json_decref(calls);
		return NC_OK;
	}
	lr.n_names = n;
	lr.names = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		lr.names[i] = (char *)json_string_value(json_object_get(json_array_get(calls, i), "room"));
	rooms = lk_list_rooms(w->lk, &lr, &lst);
	free(lr.names);
	if (rooms == NULL) {
		/* Never end calls on a LiveKit error: only on a clear "not listed". */
		json_decref(calls);
		return lk_status_error(&lst, err);
	}
	for (size_t i = 0; i < n && err->code == NC_OK; i++) {
		json_t *c = json_array_get(calls, i);
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *room = json_string_value(json_object_get(c, "room"));
		bool listed = false;

		for (size_t k = 0; k < rooms->n_rooms; k++)
			if (rooms->rooms[k]->name != NULL && strcmp(rooms->rooms[k]->name, room) == 0)
				listed = true;
		if (!listed) {
			if (finish_call(w, id, "ended", "room_gone", false, &done,
					&st->participants_closed, err) == NC_OK && done)
				st->ended++;
		} else {
			sweep_participants(w, id, room, st, err);
		}
	}
	protobuf_c_message_free_unpacked(&rooms->base, NULL);
	json_decref(calls);
	return err->code;
}

enum nc_err calls_sweep(struct nc_worker *w, struct calls_sweep_stats *st, struct nc_error *err)
{
	struct db_conn lock;
	PGresult *res;
	bool locked;

	/*
	 * The lock is transaction scoped, held by an open transaction on a
	 * connection of its own for the whole pass.  A session-level lock does
	 * not survive a transaction-pooling proxy (pgbouncer): taken on one
	 * server connection and "released" on another, it stayed held for
	 * good and every later sweep of every instance skipped.
	 */
	memset(st, 0, sizeof(*st));
	db_init(&lock, w->cfg->database_url, w->cfg->db_statement_timeout_ms);
	if (db_begin_service(&lock, err) != NC_OK) {
		db_cleanup(&lock);
		return err->code;
	}
	res = db_exec(&lock, "SELECT pg_try_advisory_xact_lock(" SWEEP_LOCK_KEY ")", 0, NULL, err);
	if (res == NULL) {
		db_cleanup(&lock);
		return err->code;
	}
	locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!locked) {
		st->skipped = true;
		db_cleanup(&lock);
		return NC_OK;
	}
	if (sweep_ring(w, st, err) == NC_OK)
		sweep_rooms(w, st, err);
	if (err->code == NC_OK && w->lk != NULL) {
		/* Egress events lost while we were down: ask LiveKit (issue: webhooks). */
		struct rec_reconcile rr = {0};

		if (recordings_reconcile_egress(w, 100, &rr, err) == NC_OK)
			st->recordings_fixed = rr.fixed;
	}
	metrics_sweep("calls", "missed", st->missed);
	metrics_sweep("calls", "ended", st->ended);
	metrics_sweep("calls", "participants_closed", st->participants_closed);
	metrics_sweep("calls", "recordings_fixed", st->recordings_fixed);
	db_rollback(&lock); /* ends the transaction: releases the lock */
	db_cleanup(&lock);
	return err->code;
}

void calls_periodic(struct nc_worker *w, void *arg)
{
	struct calls_sweep_stats st;
	struct nc_error err = {0};

	(void)arg;
	if (calls_sweep(w, &st, &err) != NC_OK) {
		log_warn("sweep-calls: %s", err.msg);
	} else {
		if (!st.skipped)
			sweep_record_success(w->rds_ok ? &w->rds : NULL, w->cfg, "calls");
		if (st.missed || st.ended || st.participants_closed || st.recordings_fixed)
			log_info("sweep-calls: %d missed, %d ended, %d participants closed, %d recordings fixed",
				 st.missed, st.ended, st.participants_closed, st.recordings_fixed);
	}
}

int cmd_sweep_calls(int argc, char **argv, const struct nc_config *cfg)
{
	struct nc_worker w;
	struct calls_sweep_stats st;
	struct nc_error err = {0};
	int rc = 0;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: nchat-rtc sweep-calls\n");
		return 2;
	}
	memset(&w, 0, sizeof(w));
	worker_setup(&w, cfg);
	if (calls_sweep(&w, &st, &err) != NC_OK) {
		printf("sweep-calls: failed after %d missed, %d ended, %d participants closed: %s\n",
		       st.missed, st.ended, st.participants_closed, err.msg);
		rc = 1;
	} else if (st.skipped) {
		printf("sweep-calls: skipped, another instance is sweeping\n");
	} else {
		sweep_record_success(w.rds_ok ? &w.rds : NULL, cfg, "calls");
		printf("sweep-calls: %d missed, %d ended, %d participants closed, %d recordings fixed\n",
		       st.missed, st.ended, st.participants_closed, st.recordings_fixed);
	}
	worker_teardown(&w);
	return rc;
}
