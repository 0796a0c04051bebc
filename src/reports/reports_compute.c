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
	unsigned char id[16];   /* the uuid's bytes */
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

/* A column of a (small) text result by name: NULL or its text. */
static const char *str_by(const PGresult *res, int row, const char *col)
{
	int f = PQfnumber(res, col);

	return f < 0 || PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
}

static int64_t num_by(const PGresult *res, int row, const char *col)
{
	const char *v = str_by(res, row, col);

	return v == NULL ? RPT_NO_TS : strtoll(v, NULL, 10);
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

/* The hash of a uuid's bytes (they are random already: mix the halves). */
static size_t uuid_hash(const unsigned char *u)
{
	uint64_t x, y;

	memcpy(&x, u, 8);
	memcpy(&y, u + 8, 8);
	x ^= y * 0x9e3779b97f4a7c15ULL;
	return (size_t)(x ^ (x >> 31));
}

static void call_index_put(struct run *r, size_t n)
{
	size_t mask = r->call_cap - 1, i;

	for (i = uuid_hash(r->calls[n].id) & mask; r->call_index[i]; i = (i + 1) & mask)
		;
	r->call_index[i] = n + 1;
}

static struct call *call_find(struct run *r, const unsigned char *id)
{
	size_t mask = r->call_cap - 1;

	if (id == NULL || r->call_cap == 0)
		return NULL;
	for (size_t i = uuid_hash(id) & mask; r->call_index[i]; i = (i + 1) & mask)
		if (memcmp(r->calls[r->call_index[i] - 1].id, id, 16) == 0)
			return &r->calls[r->call_index[i] - 1];
	return NULL;
}

/* The small reads, in text. */
static PGresult *fetch(struct db_conn *db, const char *sql, struct run *r, struct nc_error *err)
{
	return rpt_read(db, sql, false, r->a, r->b, r->as_of, err);
}

/* The sweep's reads (sql/0010_reports.sql, 0014_reports_speed.sql). */
#define READ(fn) "SELECT *, $3::bigint AS as_of FROM " fn "(" RPT_SQL_TS("$1") ", " RPT_SQL_TS("$2") ")"

static enum nc_err load_calls(struct db_conn *db, struct run *r, struct nc_error *err)
{
	enum { C_ID, C_CHANNEL, C_TYPE, C_STATUS, C_GROUP, C_INIT, C_START, C_END, C_N };
	static const struct rpt_bin_col cols[C_N] = {
		{"id", RB_UUID}, {"channel_id", RB_UUID}, {"call_type", RB_TEXT}, {"status", RB_TEXT},
		{"is_group_call", RB_BOOL}, {"initiated", RB_TS}, {"started", RB_TS}, {"ended", RB_TS},
	};
	PGresult *res = rpt_read(db, READ("nchat_rtc_report_calls"), true, r->a, r->b, r->as_of, err);
	int n, f[C_N];

	if (res == NULL)
		return err->code;
	if (rpt_bin_columns(res, cols, f, C_N, err) != NC_OK) {
		PQclear(res);
		return err->code;
	}
	n = PQntuples(res);
	r->calls = xcalloc((size_t)n + 1, sizeof(*r->calls));
	for (r->call_cap = 64; r->call_cap < (size_t)n * 2; r->call_cap *= 2)
		;
	r->call_index = xcalloc(r->call_cap, sizeof(size_t));
	for (int i = 0; i < n; i++) {
		struct call *c = &r->calls[r->n_calls];
		const unsigned char *id = rpt_bin_uuid(res, i, f[C_ID]);
		const unsigned char *ch = rpt_bin_uuid(res, i, f[C_CHANNEL]);
		const char *type = rpt_bin_text(res, i, f[C_TYPE]);
		int64_t ended = rpt_bin_ts(res, i, f[C_END]);
		char chan[37];

		if (id == NULL)
			continue;
		memcpy(c->id, id, 16);
		if (ch != NULL)
			rpt_uuid_text(ch, chan);
		c->scope = ch ? rpt_rows_scope(r->rows, chan) : -1;
		c->status = status_of(rpt_bin_text(res, i, f[C_STATUS]));
		c->type = type ? type[0] : '?';
		c->group = rpt_bin_bool(res, i, f[C_GROUP]);
		c->init_us = rpt_bin_ts(res, i, f[C_INIT]);
		c->start_us = rpt_bin_ts(res, i, f[C_START]);
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

static enum nc_err load_participants(struct db_conn *db, struct run *r, struct rpt_side *sd,
				     struct nc_error *err)
{
	enum { P_CALL, P_USER, P_STATUS, P_JOINED, P_LEFT, P_TOTAL, P_N };
	static const struct rpt_bin_col cols[P_N] = {
		{"call_id", RB_UUID}, {"user_id", RB_UUID}, {"status", RB_TEXT},
		{"joined", RB_TS}, {"left_at", RB_TS}, {"total", RB_INT4},
	};
	PGresult *res = rpt_side_take(sd, db, err);
	int f[P_N];

	if (res == NULL)
		return err->code;
	if (rpt_bin_columns(res, cols, f, P_N, err) != NC_OK) {
		PQclear(res);
		return err->code;
	}
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		struct call *c = call_find(r, rpt_bin_uuid(res, i, f[P_CALL]));
		const unsigned char *user = rpt_bin_uuid(res, i, f[P_USER]);
		const char *st = rpt_bin_text(res, i, f[P_STATUS]);
		int64_t joined = rpt_bin_ts(res, i, f[P_JOINED]), left = rpt_bin_ts(res, i, f[P_LEFT]);
		int64_t total = rpt_bin_i32(res, i, f[P_TOTAL], RPT_NO_TS), lo, hi, rest;

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
			char key[40] = "u:";   /* the key is the uuid's text, as it always was */

			rpt_uuid_text(user, key + 2);
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
	unsigned char user[16];
	bool has_user;          /* a sample without a user is a participant of its own */
	bool relay, failed, connected, used;
};

struct pairs {
	struct pair *p;
	size_t cap;
};

static struct pair *pair_of(struct pairs *ps, const struct call *c, const unsigned char *user)
{
	static const unsigned char none[16];
	size_t mask = ps->cap - 1, i;
	uint64_t h = uuid_hash(user ? user : none) ^ ((uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ULL);

	for (i = (size_t)(h ^ (h >> 29)) & mask; ps->p[i].used; i = (i + 1) & mask)
		if (ps->p[i].call == c && ps->p[i].has_user == (user != NULL) &&
		    (user == NULL || memcmp(ps->p[i].user, user, 16) == 0))
			return &ps->p[i];
	ps->p[i].used = true;
	ps->p[i].call = c;
	ps->p[i].has_user = user != NULL;
	if (user != NULL)
		memcpy(ps->p[i].user, user, 16);
	return &ps->p[i];
}

/* The samples' columns (see nchat_rtc_report_samples). */
enum { S_CALL, S_USER, S_ICE, S_LOCAL, S_TURN, S_RTT, S_JITTER, S_LOSS, S_BITRATE, S_QUALITY, S_N };
static const struct rpt_bin_col sample_cols[S_N] = {
	{"call_id", RB_UUID}, {"user_id", RB_UUID}, {"ice", RB_TEXT}, {"local_type", RB_TEXT},
	{"turn_used", RB_BOOL}, {"rtt", RB_TEXT}, {"jitter", RB_TEXT}, {"loss", RB_TEXT},
	{"bitrate", RB_INT4}, {"quality", RB_TEXT},
};

static void one_sample(struct run *r, const PGresult *res, int i, const int *f, struct pairs *ps)
{
	struct call *c = call_find(r, rpt_bin_uuid(res, i, f[S_CALL]));
	const char *ice = rpt_bin_text(res, i, f[S_ICE]), *lct = rpt_bin_text(res, i, f[S_LOCAL]);
	const char *q = rpt_bin_text(res, i, f[S_QUALITY]);
	const char *rtt = rpt_bin_text(res, i, f[S_RTT]), *jit = rpt_bin_text(res, i, f[S_JITTER]);
	const char *loss = rpt_bin_text(res, i, f[S_LOSS]);
	bool turn = rpt_bin_bool(res, i, f[S_TURN]), br = !PQgetisnull(res, i, f[S_BITRATE]);
	struct pair *pr;
	__int128 loss_v = 0;
	bool loss_ok;
	int rtt_b, jit_b, loss_b;
	int64_t bitrate;
	bool q_excellent, q_good, q_poor, q_lost;

	if (c == NULL || !c->here)
		return;
	pr = pair_of(ps, c, rpt_bin_uuid(res, i, f[S_USER]));
	pr->relay |= (lct && strcmp(lct, "relay") == 0) || turn;
	pr->failed |= ice && strcmp(ice, "failed") == 0;
	pr->connected |= ice && (strcmp(ice, "connected") == 0 || strcmp(ice, "completed") == 0);
	/* the sample's figures once, then into each of its scopes */
	loss_ok = loss != NULL && rpt_parse_e12(loss, &loss_v) == 0;
	rtt_b = rtt ? rpt_hist_bucket(strtod(rtt, NULL), RPT_UNIT_MS) : -1;
	jit_b = jit ? rpt_hist_bucket(strtod(jit, NULL), RPT_UNIT_MS) : -1;
	loss_b = loss_ok ? rpt_hist_bucket(strtod(loss, NULL), RPT_UNIT_LOSS) : -1;
	bitrate = rpt_bin_i32(res, i, f[S_BITRATE], 0);
	q_excellent = q && strcmp(q, "excellent") == 0;
	q_good = q && strcmp(q, "good") == 0;
	q_poor = q && strcmp(q, "poor") == 0;
	q_lost = q && strcmp(q, "lost") == 0;
	EACH_SCOPE(r, c->scope, floor_slot(c->init_us), a, {
		a->has_quality = true;
		a->samples++;
		if (rtt_b >= 0)
			rpt_hist_add(&a->rtt, rtt_b, 1);
		if (jit_b >= 0)
			rpt_hist_add(&a->jitter, jit_b, 1);
		if (loss_ok) {
			rpt_hist_add(&a->loss, loss_b, 1);
			a->loss_n++;
			a->loss_e12 += loss_v;
		}
		if (br) {
			a->bitrate_n++;
			a->bitrate_sum += bitrate;
		}
		a->q_excellent += q_excellent;
		a->q_good += q_good;
		a->q_poor += q_poor;
		a->q_lost += q_lost;
	});
}

static enum nc_err load_samples(struct db_conn *db, struct run *r, struct rpt_side *sd,
				struct nc_error *err)
{
	PGresult *res = rpt_side_take(sd, db, err);
	struct pairs ps = {0};
	int n, f[S_N];

	if (res == NULL)
		return err->code;
	if (rpt_bin_columns(res, sample_cols, f, S_N, err) != NC_OK) {
		PQclear(res);
		return err->code;
	}
	n = PQntuples(res);
	for (ps.cap = 64; ps.cap < (size_t)n * 2; ps.cap *= 2)
		;
	ps.p = xcalloc(ps.cap, sizeof(*ps.p));
	for (int i = 0; i < n; i++)
		one_sample(r, res, i, f, &ps);
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

/* ---- recordings, streams, viewers, chat, reactions (a few rows: columns by name) ---- */

static enum nc_err load_recordings(struct db_conn *db, struct run *r, struct nc_error *err)
{
	PGresult *res = fetch(db, READ("nchat_rtc_report_recordings"), r, err);

	if (res == NULL)
		return err->code;
	for (int i = 0, n = PQntuples(res); i < n; i++) {
		const char *ch = str_by(res, i, "channel_id");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t st = num_by(res, i, "started"), dur = num_by(res, i, "duration");
		int64_t end = num_by(res, i, "ended"), bytes = num_by(res, i, "bytes"), us = 0;

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
		const char *ch = str_by(res, i, "channel_id"), *status = str_by(res, i, "status");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t st = num_by(res, i, "started"), end = num_by(res, i, "ended");

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
		const char *ch = str_by(res, i, "channel_id"), *user = str_by(res, i, "user_id");
		const char *sess = str_by(res, i, "session");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		char key[160];
		uint64_t h;

		snprintf(key, sizeof(key), "%s:%s", user ? "u" : "a", user ? user : sess ? sess : "");
		h = rpt_hash(key);
		EACH_SCOPE(r, sc, floor_slot(num_by(res, i, "created")), a, {
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
		const char *ch = str_by(res, i, "channel_id"), *kind = str_by(res, i, "kind");
		int sc = ch ? rpt_rows_scope(r->rows, ch) : -1;
		int64_t cnt = num_by(res, i, "n");
		bool chat = kind && strcmp(kind, "chat") == 0;

		EACH_SCOPE(r, sc, num_by(res, i, "slot"), a, {
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
	struct rpt_side parts, samples;
	int64_t t0 = now_ms();
	enum nc_err rc;

	rpt_side_start(&samples, db, READ("nchat_rtc_report_samples"), a_us, b_us, as_of_us);
	rpt_side_start(&parts, db, READ("nchat_rtc_report_participants"), a_us, b_us, as_of_us);
	rc = load_calls(db, &r, err);
	log_debug("rollup-reports: %zu calls read in %lld ms", r.n_calls, (long long)(now_ms() - t0));
	if (rc == NC_OK) {
		for (size_t i = 0; i < r.n_calls; i++) {
			if (r.calls[i].here)
				count_call(&r, &r.calls[i]);
			active_call(&r, &r.calls[i]);
		}
		peaks(&r);
		rc = load_participants(db, &r, &parts, err);
	}
	log_debug("rollup-reports: participants at %lld ms", (long long)(now_ms() - t0));
	if (rc == NC_OK)
		rc = load_samples(db, &r, &samples, err);
	rpt_side_free(&parts);   /* both joined, whatever failed */
	rpt_side_free(&samples);
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
