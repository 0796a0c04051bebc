/*
 * reports_compute.c - the 15-minute rollup rows of one range of hours,
 * computed from the base tables (the first step of a rollup batch).
 *
 * What a figure means (API.md "Reports"; the correctness test computes the
 * same from the base rows with plain SQL):
 *   calls, callsByType, callsByKind, answered (started_at set: a second
 *     participant joined), missed/declined/failed (status), setupMs
 *     (started_at - initiated_at), uniqueUsers (users with joined_at) and
 *     every quality figure count with the call's initiation;
 *   callMinutes: [started_at, end) split over the slots it overlaps;
 *   participantMinutes: each participant's last session [joined_at,
 *     left_at) within the call's life [initiated_at, end), split by
 *     overlap, plus the seconds of earlier sessions (total_duration_seconds
 *     minus the last session) at the last session's start;
 *   peakConcurrentCalls: most calls active at one instant of the slot;
 *   recordings (and their minutes and bytes) with the recording's start;
 *   streams with the stream's start, streamMinutes [started_at, end) by
 *     overlap; viewer sessions (views, distinct viewers), chat messages and
 *     reactions with their created_at.
 * A call or stream still open ends, for the figures, at the sweep's as_of.
 * Scope 0 (all channels) gets everything; a channel's scope gets what
 * belongs to that channel (direct and group calls have none).
 */
#include "reports/reports_int.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Call statuses and types, as small numbers. */
enum { ST_INITIATING, ST_RINGING, ST_ACTIVE, ST_ENDED, ST_MISSED, ST_DECLINED, ST_FAILED, ST_OTHER };

struct call {
	char id[37];
	int scope;              /* channel scope, or -1 */
	int status;
	char type;              /* 'a' audio, 'v' video, 's' screen_share */
	bool group;
	int64_t init_us, start_us, end_us;
	bool here;              /* initiated in the range */
};

struct run {
	int64_t a, b, as_of;
	struct rpt_rows *rows;
	struct call *calls;
	size_t n_calls;
	size_t *call_index;     /* open addressing: call number + 1 */
	size_t call_cap;
	struct event { size_t cell; int64_t t; int d; } *ev;
	size_t n_ev, cap_ev;
};

static int64_t floor_slot(int64_t us)
{
	int64_t r = us % RPT_SLOT_US;

	return us - (r < 0 ? r + RPT_SLOT_US : r);
}

static int64_t num(const PGresult *res, int row, const char *col)
{
	int f = PQfnumber(res, col);

	if (f < 0 || PQgetisnull(res, row, f))
		return RPT_NO_TS;
	return strtoll(PQgetvalue(res, row, f), NULL, 10);
}

static const char *str(const PGresult *res, int row, const char *col)
{
	int f = PQfnumber(res, col);

	return f < 0 || PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
}

static int status_of(const char *s)
{
	static const char *const names[] = {"initiating", "ringing", "active", "ended",
					    "missed", "declined", "failed"};

	for (int i = 0; s != NULL && i < (int)NC_ARRAY_LEN(names); i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return ST_OTHER;
}

static void call_index_put(struct run *r, size_t n)
{
	size_t mask = r->call_cap - 1, i;

	for (i = rpt_hash(r->calls[n].id) & mask; r->call_index[i]; i = (i + 1) & mask)
		;
	r->call_index[i] = n + 1;
}

static struct call *call_find(struct run *r, const char *id)
{
	size_t mask = r->call_cap - 1;

	if (id == NULL || r->call_cap == 0)
		return NULL;
	for (size_t i = rpt_hash(id) & mask; r->call_index[i]; i = (i + 1) & mask)
		if (strcmp(r->calls[r->call_index[i] - 1].id, id) == 0)
			return &r->calls[r->call_index[i] - 1];
	return NULL;
}

/* Run a fetch with the range's three parameters. */
static PGresult *fetch(struct db_conn *db, const char *sql, struct run *r, struct nc_error *err)
{
	char a[24], b[24], o[24];
	const char *params[3] = {a, b, o};

	snprintf(a, sizeof(a), "%lld", (long long)r->a);
	snprintf(b, sizeof(b), "%lld", (long long)r->b);
	snprintf(o, sizeof(o), "%lld", (long long)r->as_of);
	return db_exec(db, sql, 3, params, err);
}

/* The sweep's reads (SECURITY DEFINER functions of sql/0010_reports.sql). */
#define READ(fn) "SELECT *, $3::bigint AS as_of FROM " fn "(" RPT_SQL_TS("$1") ", " RPT_SQL_TS("$2") ")"

static enum nc_err load_calls(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_calls"), r, err);
	int n;

	if (res == NULL)
		return err->code;
	n = PQntuples(res);
	r->calls = xcalloc((size_t)n + 1, sizeof(*r->calls));
	for (r->call_cap = 64; r->call_cap < (size_t)n * 2; r->call_cap *= 2)
		;
	r->call_index = xcalloc(r->call_cap, sizeof(size_t));
	for (int i = 0; i < n; i++) {
		struct call *c = &r->calls[r->n_calls];
		const char *ch = str(res, i, "channel_id"), *type = str(res, i, "call_type");
		const char *grp = str(res, i, "is_group_call");
		int64_t ended = num(res, i, "ended");

		snprintf(c->id, sizeof(c->id), "%s", str(res, i, "id"));
		c->scope = ch ? rpt_rows_scope(r->rows, ch) : -1;
		c->status = status_of(str(res, i, "status"));
		c->type = type ? type[0] : '?';
		c->group = grp && grp[0] == 't';
		c->init_us = num(res, i, "initiated");
		c->start_us = num(res, i, "started");
		if (ended != RPT_NO_TS)
			c->end_us = ended;
		else if (c->status <= ST_ACTIVE)
			c->end_us = r->as_of > c->init_us ? r->as_of : c->init_us;
		else
			c->end_us = c->init_us;
		c->here = c->init_us >= r->a && c->init_us < r->b;
		call_index_put(r, r->n_calls++);
	}
	PQclear(res);
	return NC_OK;
}

/*
 * Run body with `var` (and its cell number `cell_`) bound to the cell of
 * (all channels, slot) and then of (the channel, slot) when there is one.
 */
#define EACH_SCOPE(r, sc, slot, var, body)                                          \
	do {                                                                        \
		int scopes_[2] = {0, (sc)};                                         \
		for (int k_ = 0; k_ < ((sc) > 0 ? 2 : 1); k_++) {                   \
			size_t cell_ = rpt_rows_cell_at((r)->rows, scopes_[k_], (slot)); \
			struct rpt_acc *var = &(r)->rows->cells[cell_].acc;         \
			(void)cell_;                                                \
			body;                                                       \
		}                                                                   \
	} while (0)

static void count_call(struct run *r, const struct call *c)
{
	int64_t slot = floor_slot(c->init_us);
	int setup_b = -1;

	if (c->start_us != RPT_NO_TS) {
		int64_t d = c->start_us - c->init_us;

		setup_b = rpt_hist_bucket(d > 0 ? (double)d / 1000.0 : 0.0, RPT_UNIT_SETUP);
	}
	EACH_SCOPE(r, c->scope, slot, a, {
		a->has_usage = true;
		a->calls++;
		a->calls_audio += c->type == 'a';
		a->calls_video += c->type == 'v';
		a->calls_screen_share += c->type == 's';
		a->calls_direct += c->scope < 0 && !c->group;
		a->calls_group += c->scope < 0 && c->group;
		a->calls_channel += c->scope >= 0;
		a->answered += c->start_us != RPT_NO_TS;
		a->missed += c->status == ST_MISSED;
		a->declined += c->status == ST_DECLINED;
		a->failed += c->status == ST_FAILED;
		if (setup_b >= 0)
			rpt_hist_add(&a->setup, setup_b, 1);
	});
}

/* Split [lo, hi) over the slots of the range; fn(slot, piece_lo, piece_hi). */
#define EACH_PIECE(r, lo_, hi_, s, plo, phi, body)                                      \
	do {                                                                            \
		int64_t l_ = (lo_) > (r)->a ? (lo_) : (r)->a;                           \
		int64_t h_ = (hi_) < (r)->b ? (hi_) : (r)->b;                           \
		for (int64_t s = floor_slot(l_); s < h_; s += RPT_SLOT_US) {            \
			int64_t plo = l_ > s ? l_ : s;                                  \
			int64_t phi = h_ < s + RPT_SLOT_US ? h_ : s + RPT_SLOT_US;      \
			body;                                                           \
		}                                                                       \
	} while (0)

static void add_event(struct run *r, size_t cell, int64_t t, int d)
{
	if (r->n_ev == r->cap_ev) {
		r->cap_ev = r->cap_ev ? r->cap_ev * 2 : 1024;
		r->ev = xrealloc(r->ev, r->cap_ev * sizeof(*r->ev));
	}
	r->ev[r->n_ev].cell = cell;
	r->ev[r->n_ev].t = t;
	r->ev[r->n_ev].d = d;
	r->n_ev++;
}

static void active_call(struct run *r, const struct call *c)
{
	if (c->start_us == RPT_NO_TS || c->end_us <= c->start_us)
		return;
	EACH_PIECE(r, c->start_us, c->end_us, s, plo, phi, {
		EACH_SCOPE(r, c->scope, s, a, {
			a->has_usage = true;
			a->call_us += phi - plo;
			add_event(r, cell_, plo, 1);
			add_event(r, cell_, phi, -1);
		});
	});
}

static int cmp_event(const void *x, const void *y)
{
	const struct event *a = x, *b = y;

	if (a->cell != b->cell)
		return a->cell < b->cell ? -1 : 1;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->d - b->d;   /* ends before starts at the same instant */
}

/* Peak concurrency per cell: a sweep over its sorted start/end events. */
static void peaks(struct run *r)
{
	int64_t run = 0;

	if (r->n_ev == 0)
		return;
	qsort(r->ev, r->n_ev, sizeof(*r->ev), cmp_event);
	for (size_t i = 0; i < r->n_ev; i++) {
		struct rpt_acc *a = &r->rows->cells[r->ev[i].cell].acc;

		if (i == 0 || r->ev[i].cell != r->ev[i - 1].cell)
			run = 0;
		run += r->ev[i].d;
		if (run > a->peak_calls)
			a->peak_calls = run;
	}
}

static enum nc_err load_participants(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_participants"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		struct call *c = call_find(r, str(res, i, "call_id"));
		const char *user = str(res, i, "user_id"), *st = str(res, i, "status");
		int64_t joined = num(res, i, "joined"), left = num(res, i, "left_at");
		int64_t total = num(res, i, "total"), lo, hi, rest;

		if (c == NULL || joined == RPT_NO_TS)
			continue;
		lo = joined > c->init_us ? joined : c->init_us;
		hi = left != RPT_NO_TS ? left : (st && strcmp(st, "joined") == 0 ? c->end_us : lo);
		if (hi > c->end_us)
			hi = c->end_us;
		if (hi > lo)
			EACH_PIECE(r, lo, hi, s, plo, phi, {
				EACH_SCOPE(r, c->scope, s, a, {
					a->has_usage = true;
					a->participant_us += phi - plo;
				});
			});
		/* earlier sessions of a re-joined participant, at this session's start */
		rest = total == RPT_NO_TS ? 0 : total;
		if (left != RPT_NO_TS) {
			int64_t last = left > joined ? (left - joined) / RPT_US : 0;

			rest = rest > last ? rest - last : 0;
		}
		if (rest > 0 && joined >= r->a && joined < r->b)
			EACH_SCOPE(r, c->scope, floor_slot(joined), a, {
				a->has_usage = true;
				a->participant_us += rest * RPT_US;
			});
		if (c->here && user != NULL) {
			char key[48];

			snprintf(key, sizeof(key), "u:%s", user);
			EACH_SCOPE(r, c->scope, floor_slot(c->init_us), a,
				   rpt_hll_add(rpt_acc_users(a), rpt_hash(key)));
		}
	}
	PQclear(res);
	return NC_OK;
}

/* ---- connection quality: samples of the calls initiated in the range ---- */

/* One participant (call, user) of the samples: what its samples said. */
struct pair {
	const struct call *call;
	char user[37];
	bool relay, failed, connected, used;
};

struct pairs {
	struct pair *p;
	size_t cap;
};

static struct pair *pair_of(struct pairs *ps, const struct call *c, const char *user)
{
	char key[80];
	size_t mask = ps->cap - 1, i;

	snprintf(key, sizeof(key), "%s/%s", c->id, user ? user : "");
	for (i = rpt_hash(key) & mask; ps->p[i].used; i = (i + 1) & mask)
		if (ps->p[i].call == c && strcmp(ps->p[i].user, user ? user : "") == 0)
			return &ps->p[i];
	ps->p[i].used = true;
	ps->p[i].call = c;
	snprintf(ps->p[i].user, sizeof(ps->p[i].user), "%s", user ? user : "");
	return &ps->p[i];
}

static void one_sample(struct run *r, const PGresult *res, int i, struct pairs *ps)
{
	struct call *c = call_find(r, str(res, i, "call_id"));
	const char *ice = str(res, i, "ice"), *lct = str(res, i, "local_type");
	const char *turn = str(res, i, "turn_used"), *q = str(res, i, "quality");
	const char *rtt = str(res, i, "rtt"), *jit = str(res, i, "jitter");
	const char *loss = str(res, i, "loss"), *br = str(res, i, "bitrate");
	struct pair *pr;
	__int128 loss_v = 0;
	bool loss_ok;

	if (c == NULL || !c->here)
		return;
	pr = pair_of(ps, c, str(res, i, "user_id"));
	pr->relay |= (lct && strcmp(lct, "relay") == 0) || (turn && turn[0] == 't');
	pr->failed |= ice && strcmp(ice, "failed") == 0;
	pr->connected |= ice && (strcmp(ice, "connected") == 0 || strcmp(ice, "completed") == 0);
	loss_ok = loss != NULL && rpt_parse_e12(loss, &loss_v) == 0;
	EACH_SCOPE(r, c->scope, floor_slot(c->init_us), a, {
		a->has_quality = true;
		a->samples++;
		if (rtt)
			rpt_hist_add(&a->rtt, rpt_hist_bucket(strtod(rtt, NULL), RPT_UNIT_MS), 1);
		if (jit)
			rpt_hist_add(&a->jitter, rpt_hist_bucket(strtod(jit, NULL), RPT_UNIT_MS), 1);
		if (loss_ok) {
			rpt_hist_add(&a->loss, rpt_hist_bucket(strtod(loss, NULL), RPT_UNIT_LOSS), 1);
			a->loss_n++;
			a->loss_e12 += loss_v;
		}
		if (br) {
			a->bitrate_n++;
			a->bitrate_sum += strtoll(br, NULL, 10);
		}
		a->q_excellent += q && strcmp(q, "excellent") == 0;
		a->q_good += q && strcmp(q, "good") == 0;
		a->q_poor += q && strcmp(q, "poor") == 0;
		a->q_lost += q && strcmp(q, "lost") == 0;
	});
}

/*
 * The samples are most of a batch's rows: they are read on a connection of
 * their own, sent before and collected after the calls and participants,
 * so that Postgres produces them while this side works on the others.
 */
struct side {
	struct db_conn db;
	bool sent;
};

static void side_send(struct side *sd, const struct db_conn *main, struct run *r)
{
	struct nc_error err = {0};
	char a[24], b[24], o[24];
	const char *params[3] = {a, b, o};
	PGresult *res;

	memset(sd, 0, sizeof(*sd));
	db_init(&sd->db, main->url, main->statement_timeout_ms);
	if (db_begin_service(&sd->db, &err) != NC_OK)
		return;
	res = db_exec(&sd->db, "SELECT set_config('jit', 'off', true),"
		      " set_config('random_page_cost', '1.1', true)", 0, NULL, &err);
	if (res == NULL)
		return;
	PQclear(res);
	snprintf(a, sizeof(a), "%lld", (long long)r->a);
	snprintf(b, sizeof(b), "%lld", (long long)r->b);
	snprintf(o, sizeof(o), "%lld", (long long)r->as_of);
	sd->sent = PQsendQueryParams(sd->db.pg, READ("nchat_rtc_report_samples"), 3, NULL, params,
				     NULL, NULL, 0) == 1;
}

/* The side's result, or NULL (then the caller reads on the main connection). */
static PGresult *side_result(struct side *sd)
{
	PGresult *res = NULL, *x;

	if (sd->sent) {
		while ((x = PQgetResult(sd->db.pg)) != NULL) {
			if (res == NULL && PQresultStatus(x) == PGRES_TUPLES_OK)
				res = x;
			else
				PQclear(x);
		}
		if (res == NULL)
			log_warn("rollup-reports: samples connection: %s", PQerrorMessage(sd->db.pg));
	}
	db_rollback(&sd->db);
	db_cleanup(&sd->db);
	return res;
}

static enum nc_err load_samples(struct db_conn *db, struct run *r, struct side *sd,
				struct nc_error *err)
{
	PGresult *res = side_result(sd);
	struct pairs ps = {0};
	int n;

	if (res == NULL)
		res = fetch(db, READ("nchat_rtc_report_samples"), r, err);
	if (res == NULL)
		return err->code;
	n = PQntuples(res);
	for (ps.cap = 64; ps.cap < (size_t)n * 2; ps.cap *= 2)
		;
	ps.p = xcalloc(ps.cap, sizeof(*ps.p));
	for (int i = 0; i < n; i++)
		one_sample(r, res, i, &ps);
	PQclear(res);
	for (size_t i = 0; i < ps.cap; i++) {
		const struct pair *pr = &ps.p[i];

		if (!pr->used)
			continue;
		EACH_SCOPE(r, pr->call->scope, floor_slot(pr->call->init_us), a, {
			a->participants++;
			a->relay_participants += pr->relay;
			a->ice_failed_participants += pr->failed && !pr->connected;
		});
	}
	free(ps.p);
	return NC_OK;
}

/* ---- recordings, streams, viewers, chat, reactions ---- */

static enum nc_err load_recordings(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_recordings"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *ch = str(res, i, "channel_id");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t st = num(res, i, "started"), dur = num(res, i, "duration");
		int64_t end = num(res, i, "ended"), bytes = num(res, i, "bytes"), us = 0;

		if (dur != RPT_NO_TS)
			us = dur * RPT_US;
		else if (end != RPT_NO_TS && end > st)
			us = end - st;
		EACH_SCOPE(r, sc, floor_slot(st), a, {
			a->has_usage = true;
			a->recordings++;
			a->recording_us += us;
			a->recording_bytes += bytes == RPT_NO_TS ? 0 : bytes;
		});
	}
	PQclear(res);
	return NC_OK;
}

static enum nc_err load_streams(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_streams"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *ch = str(res, i, "channel_id"), *status = str(res, i, "status");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t st = num(res, i, "started"), end = num(res, i, "ended");

		if (st == RPT_NO_TS)
			continue;
		if (end == RPT_NO_TS)
			end = status && strcmp(status, "live") == 0 && r->as_of > st ? r->as_of : st;
		if (st >= r->a && st < r->b)
			EACH_SCOPE(r, sc, floor_slot(st), a, {
				a->has_usage = true;
				a->streams++;
			});
		if (end > st)
			EACH_PIECE(r, st, end, s, plo, phi, {
				EACH_SCOPE(r, sc, s, a, {
					a->has_usage = true;
					a->stream_us += phi - plo;
				});
			});
	}
	PQclear(res);
	return NC_OK;
}

static enum nc_err load_viewers(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_viewers"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *ch = str(res, i, "channel_id"), *user = str(res, i, "user_id");
		const char *sess = str(res, i, "session");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		char key[160];
		uint64_t h;

		snprintf(key, sizeof(key), "%s:%s", user ? "u" : "a", user ? user : sess ? sess : "");
		h = rpt_hash(key);
		EACH_SCOPE(r, sc, floor_slot(num(res, i, "created")), a, {
			a->has_usage = true;
			a->stream_views++;
			rpt_hll_add(rpt_acc_viewers(a), h);
		});
	}
	PQclear(res);
	return NC_OK;
}

static enum nc_err load_messages(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_messages"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *ch = str(res, i, "channel_id"), *kind = str(res, i, "kind");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t cnt = num(res, i, "n");
		bool chat = kind && strcmp(kind, "chat") == 0;

		EACH_SCOPE(r, sc, num(res, i, "slot"), a, {
			a->has_usage = true;
			if (chat)
				a->chat_messages += cnt;
			else
				a->reactions += cnt;
		});
	}
	PQclear(res);
	return NC_OK;
}

enum nc_err rpt_compute_slots(struct db_conn *db, int64_t a_us, int64_t b_us, int64_t as_of_us,
			      struct rpt_rows *out, struct nc_error *err)
{
	struct run r = {.a = a_us, .b = b_us, .as_of = as_of_us, .rows = out};
	struct side sd;
	int64_t t0 = now_ms();
	enum nc_err rc;

	side_send(&sd, db, &r);
	rc = load_calls(db, &r, err);
	log_debug("rollup-reports: %zu calls read in %lld ms", r.n_calls, (long long)(now_ms() - t0));
	if (rc == NC_OK) {
		for (size_t i = 0; i < r.n_calls; i++) {
			if (r.calls[i].here)
				count_call(&r, &r.calls[i]);
			active_call(&r, &r.calls[i]);
		}
		peaks(&r);
		rc = load_participants(db, &r, err);
	}
	log_debug("rollup-reports: participants at %lld ms", (long long)(now_ms() - t0));
	if (rc == NC_OK)
		rc = load_samples(db, &r, &sd, err);
	else
		PQclear(side_result(&sd));
	log_debug("rollup-reports: samples at %lld ms", (long long)(now_ms() - t0));
	if (rc == NC_OK)
		rc = load_recordings(db, &r, err);
	if (rc == NC_OK)
		rc = load_streams(db, &r, err);
	if (rc == NC_OK)
		rc = load_viewers(db, &r, err);
	if (rc == NC_OK)
		rc = load_messages(db, &r, err);
	free(r.calls);
	free(r.call_index);
	free(r.ev);
	return rc;
}
