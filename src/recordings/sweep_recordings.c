/*
 * sweep_recordings.c - `nchat-rtc sweep-recordings [--dry-run] [--limit N]
 * [--reconcile]`, run by cron (etc/nchat-rtc.crontab).
 *
 * Retention: recordings past expires_at, not on legal hold, finished
 * (completed / failed / aborted) and not yet deleted are claimed in batches
 * of SWEEP_BATCH with SELECT ... FOR UPDATE SKIP LOCKED, so several sweeps
 * (several hosts) never pick the same row: each deletes the S3 object
 * (404 = already gone = deleted) and marks the row `deleted` in the same
 * transaction.  This is the one place a transaction stays open across S3
 * calls - the row lock IS the claim - so batches are small and every S3 call
 * has connect/total timeouts.  A row whose object could not be deleted is
 * left as it was (the next run retries it) and is skipped for the rest of
 * this run; a batch in which every delete failed ends the run (S3 is down).
 * retention_days = 0 rows have no expires_at and are never swept.
 *
 * Every non-dry run also reconciles in-progress rows with LiveKit's
 * ListEgress (recordings_reconcile_egress: lost egress_ended webhooks), when
 * LiveKit is configured.
 *
 * --reconcile (report only, nothing deleted): lists every object under
 * recordings/ (ListObjectsV2, paginated) and reports objects with no live
 * row, then HEADs the object of every completed row and reports rows whose
 * object is missing; details on stderr, one summary line on stdout.
 *
 * Output: one line, "sweep-recordings: found N, deleted N, failed N"
 * ("would delete" with --dry-run).  Exit 0 when nothing failed, 1 otherwise,
 * 2 for bad arguments.
 */
#include "core/uuid.h"
#include "store/db.h"
#include "store/db_row.h"
#include "realtime/events.h"
#include "livekit/lk.h"
#include "core/log.h"
#include "recordings/recordings.h"
#include "s3/s3.h"
#include "http/worker.h"
#include "core/metrics.h"
#include "store/sweep_mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_BATCH 25
#define SWEEP_DEFAULT_LIMIT 1000
#define RECORDINGS_PREFIX "recordings/"

struct sweep_opts {
	bool dry_run;
	bool reconcile;
	long limit;
};

static int parse_args(int argc, char **argv, struct sweep_opts *o)
{
	o->dry_run = o->reconcile = false;
	o->limit = SWEEP_DEFAULT_LIMIT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			o->dry_run = true;
		} else if (strcmp(argv[i], "--reconcile") == 0) {
			o->reconcile = true;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (parse_long(argv[++i], 1, 1000000, &o->limit) != 0)
				return -1;
		} else {
			return -1;
		}
	}
	return 0;
}

/* A Postgres text[] literal of arbitrary strings (each quoted and escaped). */
static char *text_array(char **v, size_t n)
{
	size_t len = 3;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	s = p = xmalloc(len);
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		*p++ = '"';
		for (const char *c = v[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return s;
}

struct sweep_counts {
	long found, deleted, failed;
};

static int sweep_dry_run(struct nc_worker *w, const struct sweep_opts *o, struct sweep_counts *c,
			 struct nc_error *err)
{
	char lim[24];
	const char *p[1] = { lim };
	PGresult *res;

	snprintf(lim, sizeof lim, "%ld", o->limit);
	res = db_exec_service(&w->db,
			      "SELECT id, object_key FROM nchat_call_recordings"
			      " WHERE expires_at < now() AND NOT legal_hold AND deleted_at IS NULL"
			      " AND status IN ('completed', 'failed', 'aborted')"
			      " ORDER BY expires_at LIMIT $1::integer",
			      1, p, err);
	if (res == NULL)
		return -1;
	c->found = PQntuples(res);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *key = row_text(res, i, "object_key");

		fprintf(stderr, "would delete recording %s (%s)\n", row_text(res, i, "id"),
			key ? key : "no object");
	}
	PQclear(res);
	return 0;
}

/* Ids this run could not delete (S3 refused): skipped until the run ends. */
struct skip_list {
	char (*ids)[37];
	size_t n;
};

/*
 * Expire the claimed rows of res in the open transaction: S3 object, then
 * row -> deleted with its audit entry.  Rows deleted, or -1 (err set) when
 * the transaction must be rolled back.
 */
static long expire_batch(struct nc_worker *w, PGresult *res, struct skip_list *skip,
			 struct sweep_counts *c, struct nc_error *err)
{
	long ok = 0;

	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = row_text(res, i, "id");
		const char *key = row_text(res, i, "object_key");
		const char *q[1] = { id };
		struct nc_error e2;
		enum nc_err e = NC_OK;
		PGresult *u;
		json_t *details;

		if (key != NULL)
			e = s3_delete(w->s3, key, &e2);
		if (e != NC_OK && e != NC_ENOTFOUND) {
			fprintf(stderr, "sweep-recordings: recording %s: %s\n", id, e2.msg);
			skip->ids = xrealloc(skip->ids, (skip->n + 1) * sizeof *skip->ids);
			snprintf(skip->ids[skip->n++], sizeof *skip->ids, "%s", id);
			c->failed++;
			continue;
		}
		u = db_exec(&w->db,
			    "UPDATE nchat_call_recordings SET status = 'deleted',"
			    " deleted_at = now(), file_url = NULL WHERE id = $1",
			    1, q, err);
		if (u == NULL)
			return -1;
		PQclear(u);
		details = json_pack("{s:s, s:s?, s:s}", "callId", row_text(res, i, "call_id"),
				    "objectKey", key, "reason", "retention");
		e = audit_log(&w->db, NULL, "recording.expire", "recording", id, details, NULL, err);
		json_decref(details);
		if (e != NC_OK)
			return -1;
		ok++;
	}
	return ok;
}

static int sweep_expired(struct nc_worker *w, const struct sweep_opts *o, struct sweep_counts *c,
			 struct nc_error *err)
{
	struct skip_list skip = { NULL, 0 };
	int rc = 0;

	while (c->found < o->limit) {
		long want = o->limit - c->found < SWEEP_BATCH ? o->limit - c->found : SWEEP_BATCH;
		char lim[24], *skip_arr = uuid_array_literal(skip.ids, skip.n);
		const char *p[2] = { lim, skip_arr };
		long batch_ok, batch_n;
		PGresult *res;

		snprintf(lim, sizeof lim, "%ld", want);
		if (db_begin_service(&w->db, err) != NC_OK) {
			free(skip_arr);
			rc = -1;
			break;
		}
		res = db_exec(&w->db,
			      "SELECT id, object_key, call_id FROM nchat_call_recordings"
			      " WHERE expires_at < now() AND NOT legal_hold AND deleted_at IS NULL"
			      " AND status IN ('completed', 'failed', 'aborted')"
			      " AND NOT (id = ANY ($2::uuid[]))"
			      " ORDER BY expires_at LIMIT $1::integer FOR UPDATE SKIP LOCKED",
			      2, p, err);
		free(skip_arr);
		if (res == NULL) {
			db_rollback(&w->db);
			rc = -1;
			break;
		}
		batch_n = PQntuples(res);
		if (batch_n == 0) {
			PQclear(res);
			db_rollback(&w->db);
			break;
		}
		c->found += batch_n;
		batch_ok = expire_batch(w, res, &skip, c, err);
		PQclear(res);
		if (batch_ok < 0 || db_commit(&w->db, err) != NC_OK) {
			/* Objects already deleted are found again next run (404 = deleted). */
			db_rollback(&w->db);
			rc = -1;
			break;
		}
		c->deleted += batch_ok;
		if (batch_ok == 0)
			break; /* every delete failed: S3 is down, leave the rest for next time */
	}
	free(skip.ids);
	return rc;
}

struct reconcile_counts {
	long objects, orphans, rows, missing, errors;
};

static int reconcile_objects(struct nc_worker *w, struct reconcile_counts *rc_out,
			     struct nc_error *err)
{
	char *token = NULL;

	do {
		struct s3_list_page page;
		char *arr;
		const char *p[1];
		PGresult *res;

		if (s3_list(w->s3, RECORDINGS_PREFIX, token, 1000, &page, err) != NC_OK) {
			free(token);
			return -1;
		}
		free(token);
		token = page.next_token ? xstrdup(page.next_token) : NULL;
		rc_out->objects += (long)page.n_keys;
		if (page.n_keys > 0) {
			arr = text_array(page.keys, page.n_keys);
			p[0] = arr;
			res = db_exec_service(&w->db,
					      "SELECT k FROM unnest($1::text[]) AS k WHERE NOT EXISTS"
					      " (SELECT 1 FROM nchat_call_recordings r"
					      "  WHERE r.object_key = k AND r.deleted_at IS NULL)",
					      1, p, err);
			free(arr);
			if (res == NULL) {
				s3_list_page_free(&page);
				free(token);
				return -1;
			}
			for (int i = 0; i < PQntuples(res); i++)
				fprintf(stderr, "object without a recording row: %s\n",
					row_text(res, i, "k"));
			rc_out->orphans += PQntuples(res);
			PQclear(res);
		}
		s3_list_page_free(&page);
	} while (token != NULL);
	return 0;
}

static int reconcile_rows(struct nc_worker *w, long limit, struct reconcile_counts *c,
			  struct nc_error *err)
{
	char lim[24];
	const char *p[1] = { lim };
	PGresult *res;

	snprintf(lim, sizeof lim, "%ld", limit);
	res = db_exec_service(&w->db,
			      "SELECT id, object_key FROM nchat_call_recordings"
			      " WHERE status = 'completed' AND deleted_at IS NULL"
			      " AND object_key IS NOT NULL ORDER BY created_at LIMIT $1::integer",
			      1, p, err);
	if (res == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *id = row_text(res, i, "id"), *key = row_text(res, i, "object_key");
		struct nc_error e2;
		enum nc_err e = s3_head(w->s3, key, NULL, &e2);

		c->rows++;
		if (e == NC_ENOTFOUND) {
			c->missing++;
			fprintf(stderr, "recording %s: object missing: %s\n", id, key);
		} else if (e != NC_OK) {
			c->errors++;
			fprintf(stderr, "recording %s: %s\n", id, e2.msg);
		}
	}
	PQclear(res);
	return 0;
}

int cmd_sweep_recordings(int argc, char **argv, const struct nc_config *cfg)
{
	struct sweep_opts o;
	struct sweep_counts c = { 0 };
	struct nc_worker w;
	struct nc_error err = { NC_OK, "" };
	int rc = 0;

	if (parse_args(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: nchat-rtc sweep-recordings [--dry-run] [--limit N] [--reconcile]\n");
		return 2;
	}
	/* A worker of our own: the domain code works on a worker's connections. */
	memset(&w, 0, sizeof w);
	w.cfg = cfg;
	db_init(&w.db, cfg->database_url, cfg->db_statement_timeout_ms);
	w.s3 = s3_client_new(cfg);
	if (w.s3 == NULL) {
		fprintf(stderr, "sweep-recordings: S3 is not configured\n");
		db_cleanup(&w.db);
		return 1;
	}
	if (cfg->livekit_api_url && cfg->livekit_api_key && cfg->livekit_api_secret) {
		w.lk = xcalloc(1, sizeof *w.lk);
		if (lk_client_init(w.lk, cfg) != 0) {
			free(w.lk);
			w.lk = NULL;
		}
	}

	if (o.reconcile) {
		struct reconcile_counts rc_c = { 0 };
		if (reconcile_objects(&w, &rc_c, &err) != 0 ||
		    reconcile_rows(&w, o.limit, &rc_c, &err) != 0) {
			fprintf(stderr, "sweep-recordings: reconcile: %s\n", err.msg);
			rc = 1;
		}
		printf("sweep-recordings: reconcile: %ld objects, %ld without a row; %ld rows checked,"
		       " %ld missing their object; %ld errors\n",
		       rc_c.objects, rc_c.orphans, rc_c.rows, rc_c.missing, rc_c.errors);
		if (rc_c.errors)
			rc = 1;
	} else if (o.dry_run) {
		if (sweep_dry_run(&w, &o, &c, &err) != 0) {
			fprintf(stderr, "sweep-recordings: %s\n", err.msg);
			rc = 1;
		}
		printf("sweep-recordings: found %ld, would delete %ld, failed %ld\n", c.found, c.found,
		       rc ? 1L : 0L);
	} else {
		struct rec_reconcile rr;
		if (sweep_expired(&w, &o, &c, &err) != 0) {
			fprintf(stderr, "sweep-recordings: %s\n", err.msg);
			rc = 1;
		}
		if (w.lk != NULL) {
			if (recordings_reconcile_egress(&w, 100, &rr, &err) != 0) {
				fprintf(stderr, "sweep-recordings: egress reconcile: %s\n", err.msg);
				rc = 1;
			} else if (rr.fixed || rr.failed) {
				fprintf(stderr, "sweep-recordings: egress reconcile: %d checked,"
					" %d fixed, %d failed\n", rr.checked, rr.fixed, rr.failed);
			}
		}
		if (c.failed)
			rc = 1;
		if (rc == 0)
			sweep_record_success(w.rds_ok ? &w.rds : NULL, cfg, "recordings");
		printf("sweep-recordings: found %ld, deleted %ld, failed %ld\n", c.found, c.deleted,
		       c.failed);
	}
	fflush(stdout);
	if (w.lk) {
		lk_client_cleanup(w.lk);
		free(w.lk);
	}
	s3_client_free(w.s3);
	db_cleanup(&w.db);
	return rc;
}
