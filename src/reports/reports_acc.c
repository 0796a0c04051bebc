/*
 * reports_acc.c - the figures of a rollup row or report bucket (see
 * reports_int.h): adding rows up, reading and writing rollup rows, and the
 * figures of API.md with their rounding.
 *
 * Every rounding is exact integer arithmetic on exact sums (microseconds,
 * counts, 1e-12 % of packet loss), half away from zero as Postgres's
 * round(numeric) does, so a figure equals what plain SQL over the base
 * rows gives (test/integration/check_reports.c checks it).
 */
#include "reports/reports_int.h"
#include "core/log.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A counter column of a rollup table and where it lives in rpt_acc. */
struct acc_col {
	const char *name;
	size_t off;
	bool max;     /* merged by maximum (the peak), else by sum */
	bool wide;    /* a bigint column, else integer */
};

#define COL(n) {#n, offsetof(struct rpt_acc, n), false, false}
#define WIDE(n) {#n, offsetof(struct rpt_acc, n), false, true}

static const struct acc_col usage_cols[] = {
	COL(calls), COL(calls_audio), COL(calls_video), COL(calls_screen_share),
	COL(calls_direct), COL(calls_group), COL(calls_channel), COL(answered),
	COL(missed), COL(declined), COL(failed), WIDE(call_us), WIDE(participant_us),
	{"peak_calls", offsetof(struct rpt_acc, peak_calls), true, false},
	COL(recordings), WIDE(recording_us), WIDE(recording_bytes), COL(streams),
	WIDE(stream_us), COL(stream_views), COL(chat_messages), COL(reactions),
};

static const struct acc_col quality_cols[] = {
	COL(samples), COL(participants), COL(relay_participants),
	COL(ice_failed_participants), COL(loss_n), COL(bitrate_n), WIDE(bitrate_sum),
	COL(q_excellent), COL(q_good), COL(q_poor), COL(q_lost),
};

#undef COL
#undef WIDE

/* The text columns that follow the counters (sketches; the exact loss sum). */
static const char *const usage_texts[] = {"setup_hist", "users_hll", "viewers_hll"};
static const char *const quality_texts[] = {"loss_sum", "rtt_hist", "jitter_hist", "loss_hist"};

static int64_t *field(struct rpt_acc *a, const struct acc_col *c)
{
	return (int64_t *)(void *)((char *)a + c->off);
}

static int64_t cfield(const struct rpt_acc *a, const struct acc_col *c)
{
	return *(const int64_t *)(const void *)((const char *)a + c->off);
}

static void merge_cols(struct rpt_acc *d, const struct rpt_acc *s, const struct acc_col *cols,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t *x = field(d, &cols[i]), y = cfield(s, &cols[i]);

		if (cols[i].max)
			*x = y > *x ? y : *x;
		else
			*x += y;
	}
}

struct rpt_hll *rpt_acc_users(struct rpt_acc *a)
{
	if (a->users == NULL)
		a->users = xcalloc(1, sizeof(*a->users));
	return a->users;
}

struct rpt_hll *rpt_acc_viewers(struct rpt_acc *a)
{
	if (a->viewers == NULL)
		a->viewers = xcalloc(1, sizeof(*a->viewers));
	return a->viewers;
}

void rpt_acc_merge(struct rpt_acc *d, const struct rpt_acc *s)
{
	merge_cols(d, s, usage_cols, NC_ARRAY_LEN(usage_cols));
	merge_cols(d, s, quality_cols, NC_ARRAY_LEN(quality_cols));
	rpt_hist_merge(&d->setup, &s->setup);
	rpt_hist_merge(&d->rtt, &s->rtt);
	rpt_hist_merge(&d->jitter, &s->jitter);
	rpt_hist_merge(&d->loss, &s->loss);
	if (s->users != NULL)
		rpt_hll_merge(rpt_acc_users(d), s->users);
	if (s->viewers != NULL)
		rpt_hll_merge(rpt_acc_viewers(d), s->viewers);
	d->loss_e12 += s->loss_e12;
	d->has_usage |= s->has_usage;
	d->has_quality |= s->has_quality;
}

void rpt_acc_free(struct rpt_acc *a)
{
	rpt_hist_free(&a->setup);
	rpt_hist_free(&a->rtt);
	rpt_hist_free(&a->jitter);
	rpt_hist_free(&a->loss);
	free(a->users);
	free(a->viewers);
	memset(a, 0, sizeof(*a));
}

int rpt_parse_e12(const char *s, __int128 *out)
{
	__int128 v = 0;
	int frac = -1;
	bool neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -1;
		if (frac >= 12)
			continue;   /* beyond 1e-12: dropped */
		v = v * 10 + (*s - '0');
		if (frac >= 0)
			frac++;
	}
	for (int k = frac < 0 ? 0 : frac; k < 12; k++)
		v *= 10;
	*out = neg ? -v : v;
	return 0;
}

/* Decimal text of a 1e-12 value (exact). */
static void format_e12(__int128 v, char *out, size_t outlen)
{
	char digits[64];
	int n = 0;
	bool neg = v < 0;
	unsigned __int128 u = neg ? (unsigned __int128)(-v) : (unsigned __int128)v;

	do {
		digits[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u > 0 || n < 13);
	/* digits[] is reversed: the last 12 are the fraction */
	{
		size_t off = 0;

		if (neg && off + 1 < outlen)
			out[off++] = '-';
		for (int i = n - 1; i >= 12 && off + 1 < outlen; i--)
			out[off++] = digits[i];
		if (off + 1 < outlen)
			out[off++] = '.';
		for (int i = 11; i >= 0 && off + 1 < outlen; i--)
			out[off++] = digits[i];
		out[off] = '\0';
	}
}

_Static_assert(NC_ARRAY_LEN(usage_cols) == RPT_USAGE_COUNTERS, "usage columns");
_Static_assert(NC_ARRAY_LEN(quality_cols) == RPT_QUALITY_COUNTERS, "quality columns");

void rpt_colmap_init(struct rpt_colmap *m, const PGresult *res)
{
	for (size_t i = 0; i < NC_ARRAY_LEN(usage_cols); i++)
		m->usage[i] = PQfnumber(res, usage_cols[i].name);
	for (size_t i = 0; i < NC_ARRAY_LEN(quality_cols); i++)
		m->quality[i] = PQfnumber(res, quality_cols[i].name);
	m->setup_hist = PQfnumber(res, "setup_hist");
	m->users_hll = PQfnumber(res, "users_hll");
	m->viewers_hll = PQfnumber(res, "viewers_hll");
	m->rtt_hist = PQfnumber(res, "rtt_hist");
	m->jitter_hist = PQfnumber(res, "jitter_hist");
	m->loss_hist = PQfnumber(res, "loss_hist");
	m->loss_sum = PQfnumber(res, "loss_sum");
}

static void add_cols(struct rpt_acc *a, const PGresult *res, int row, const struct acc_col *cols,
		     const int *nums, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t *x, y;

		if (nums[i] < 0 || PQgetisnull(res, row, nums[i]))
			continue;
		x = field(a, &cols[i]);
		y = strtoll(PQgetvalue(res, row, nums[i]), NULL, 10);
		if (cols[i].max)
			*x = y > *x ? y : *x;
		else
			*x += y;
	}
}

/* The text of column f of row, or NULL. */
static const char *text_at(const PGresult *res, int row, int f)
{
	return f < 0 || PQgetisnull(res, row, f) ? NULL : PQgetvalue(res, row, f);
}

int rpt_acc_add_usage_row(struct rpt_acc *a, const PGresult *res, int row,
			  const struct rpt_colmap *m)
{
	const char *users = text_at(res, row, m->users_hll), *viewers = text_at(res, row, m->viewers_hll);

	add_cols(a, res, row, usage_cols, m->usage, NC_ARRAY_LEN(usage_cols));
	a->has_usage = true;
	if (rpt_hist_decode(&a->setup, text_at(res, row, m->setup_hist)) != 0 ||
	    (users != NULL && rpt_hll_decode(rpt_acc_users(a), users) != 0) ||
	    (viewers != NULL && rpt_hll_decode(rpt_acc_viewers(a), viewers) != 0))
		return -1;
	return 0;
}

int rpt_acc_add_quality_row(struct rpt_acc *a, const PGresult *res, int row,
			    const struct rpt_colmap *m)
{
	const char *sum = text_at(res, row, m->loss_sum);

	add_cols(a, res, row, quality_cols, m->quality, NC_ARRAY_LEN(quality_cols));
	a->has_quality = true;
	if (sum != NULL) {
		__int128 v;

		if (rpt_parse_e12(sum, &v) != 0)
			return -1;
		a->loss_e12 += v;
	}
	if (rpt_hist_decode(&a->rtt, text_at(res, row, m->rtt_hist)) != 0 ||
	    rpt_hist_decode(&a->jitter, text_at(res, row, m->jitter_hist)) != 0 ||
	    rpt_hist_decode(&a->loss, text_at(res, row, m->loss_hist)) != 0)
		return -1;
	return 0;
}

size_t rpt_acc_ncols(bool quality)
{
	return quality ? NC_ARRAY_LEN(quality_cols) + NC_ARRAY_LEN(quality_texts)
		       : NC_ARRAY_LEN(usage_cols) + NC_ARRAY_LEN(usage_texts);
}

const char *rpt_acc_colname(bool quality, size_t i, enum rpt_col_type *type)
{
	const struct acc_col *cols = quality ? quality_cols : usage_cols;
	size_t n = quality ? NC_ARRAY_LEN(quality_cols) : NC_ARRAY_LEN(usage_cols);

	if (i < n) {
		*type = cols[i].wide ? RC_INT8 : RC_INT4;
		return cols[i].name;
	}
	*type = quality && i == n ? RC_NUMERIC : RC_TEXT;
	return quality ? quality_texts[i - n] : usage_texts[i - n];
}

char *rpt_acc_colvalue(const struct rpt_acc *a, bool quality, size_t i, int64_t *v)
{
	const struct acc_col *cols = quality ? quality_cols : usage_cols;
	size_t n = quality ? NC_ARRAY_LEN(quality_cols) : NC_ARRAY_LEN(usage_cols);
	char sum[64];

	if (i < n) {
		*v = cfield(a, &cols[i]);
		return NULL;
	}
	*v = 0;
	switch (quality ? i - n + 3 : i - n) {
	case 0: return rpt_hist_encode(&a->setup);
	case 1: return a->users ? rpt_hll_encode(a->users) : NULL;
	case 2: return a->viewers ? rpt_hll_encode(a->viewers) : NULL;
	case 3:
		format_e12(a->loss_e12, sum, sizeof(sum));
		return xstrdup(sum);
	case 4: return rpt_hist_encode(&a->rtt);
	case 5: return rpt_hist_encode(&a->jitter);
	default: return rpt_hist_encode(&a->loss);
	}
}

void rpt_acc_reset(struct rpt_acc *a)
{
	struct rpt_acc keep = *a;

	memset(a, 0, sizeof(*a));
	a->setup = keep.setup;
	a->rtt = keep.rtt;
	a->jitter = keep.jitter;
	a->loss = keep.loss;
	a->setup.n = a->rtt.n = a->jitter.n = a->loss.n = 0;
	a->users = keep.users;
	a->viewers = keep.viewers;
	if (a->users != NULL)
		memset(a->users, 0, sizeof(*a->users));
	if (a->viewers != NULL)
		memset(a->viewers, 0, sizeof(*a->viewers));
}

/* ---- the figures ---- */

/* round(num / den * 10^d) half away from zero, exactly (den > 0). */
static __int128 round_div(__int128 num, __int128 den, int d)
{
	__int128 scale = 1, q;
	bool neg = num < 0;

	for (int i = 0; i < d; i++)
		scale *= 10;
	if (neg)
		num = -num;
	q = (num * scale * 2 + den) / (den * 2);
	return neg ? -q : q;
}

static void ratio(struct fw *w, const char *key, int64_t num, int64_t den, int decimals)
{
	if (den == 0)
		fw_null(w, key);
	else
		fw_fixed(w, key, (int64_t)round_div(num, den, decimals), decimals);
}

static void minutes(struct fw *w, const char *key, int64_t us)
{
	fw_fixed(w, key, (int64_t)round_div(us, 60 * RPT_US, 2), 2);
}

static void fixed_double(struct fw *w, const char *key, double v, int decimals)
{
	double f = 1;

	for (int i = 0; i < decimals; i++)
		f *= 10;
	fw_fixed(w, key, (int64_t)llround(v * f), decimals);
}

static void percentile(struct fw *w, const char *key, const struct rpt_hist *h, double unit,
		       double p, int decimals, const struct rpt_exact *ex, const char *exact)
{
	double v;

	if (ex != NULL) {
		if (exact == NULL)
			fw_null(w, key);
		else
			fixed_double(w, key, strtod(exact, NULL), decimals);
	} else if (!rpt_hist_percentile(h, unit, p, &v)) {
		fw_null(w, key);
	} else {
		fixed_double(w, key, v, decimals);
	}
}

/* A distinct count: the estimate, never above `bound` (the rows it counts). */
static void distinct(struct fw *w, const char *key, const struct rpt_hll *h, int64_t bound)
{
	int64_t n = h ? (int64_t)llround(rpt_hll_estimate(h)) : 0;

	fw_int(w, key, bound >= 0 && n > bound ? bound : n);
}

void rpt_emit_usage(struct fw *w, const struct rpt_acc *a)
{
	fw_int(w, "calls", a->calls);
	fw_obj(w, "callsByType");
	fw_int(w, "audio", a->calls_audio);
	fw_int(w, "video", a->calls_video);
	fw_int(w, "screenShare", a->calls_screen_share);
	fw_end(w);
	fw_obj(w, "callsByKind");
	fw_int(w, "direct", a->calls_direct);
	fw_int(w, "group", a->calls_group);
	fw_int(w, "channel", a->calls_channel);
	fw_end(w);
	fw_int(w, "answered", a->answered);
	fw_int(w, "missed", a->missed);
	fw_int(w, "declined", a->declined);
	fw_int(w, "failed", a->failed);
	minutes(w, "callMinutes", a->call_us);
	minutes(w, "participantMinutes", a->participant_us);
	distinct(w, "uniqueUsers", a->users, -1);
	fw_int(w, "peakConcurrentCalls", a->peak_calls);
	percentile(w, "setupMsP50", &a->setup, RPT_UNIT_SETUP, 0.5, 0, NULL, NULL);
	percentile(w, "setupMsP95", &a->setup, RPT_UNIT_SETUP, 0.95, 0, NULL, NULL);
	fw_int(w, "recordings", a->recordings);
	minutes(w, "recordingMinutes", a->recording_us);
	fw_int(w, "recordingBytes", a->recording_bytes);
	fw_int(w, "streams", a->streams);
	minutes(w, "streamMinutes", a->stream_us);
	fw_int(w, "streamViews", a->stream_views);
	distinct(w, "streamUniqueViewers", a->viewers, a->stream_views);
	fw_int(w, "chatMessages", a->chat_messages);
	fw_int(w, "reactions", a->reactions);
}

void rpt_emit_quality(struct fw *w, const struct rpt_acc *a, const struct rpt_exact *ex)
{
	fw_int(w, "samples", a->samples);
	fw_int(w, "participants", a->participants);
	fw_obj(w, "rttMs");
	percentile(w, "p50", &a->rtt, RPT_UNIT_MS, 0.5, 1, ex, ex ? ex->rtt_p50 : NULL);
	percentile(w, "p95", &a->rtt, RPT_UNIT_MS, 0.95, 1, ex, ex ? ex->rtt_p95 : NULL);
	fw_end(w);
	fw_obj(w, "jitterMs");
	percentile(w, "p50", &a->jitter, RPT_UNIT_MS, 0.5, 1, ex, ex ? ex->jitter_p50 : NULL);
	percentile(w, "p95", &a->jitter, RPT_UNIT_MS, 0.95, 1, ex, ex ? ex->jitter_p95 : NULL);
	fw_end(w);
	fw_obj(w, "packetLossPct");
	if (a->loss_n == 0)
		fw_null(w, "avg");
	else
		fw_fixed(w, "avg", (int64_t)round_div(a->loss_e12, (__int128)a->loss_n * 1000000000, 0), 3);
	percentile(w, "p95", &a->loss, RPT_UNIT_LOSS, 0.95, 3, ex, ex ? ex->loss_p95 : NULL);
	fw_end(w);
	fw_obj(w, "bitrateKbps");
	ratio(w, "avg", a->bitrate_sum, a->bitrate_n, 1);
	fw_end(w);
	ratio(w, "turnRelayShare", a->relay_participants, a->participants, 4);
	ratio(w, "iceFailureRate", a->ice_failed_participants, a->participants, 4);
	fw_obj(w, "qualityShare");
	ratio(w, "excellent", a->q_excellent, a->samples, 4);
	ratio(w, "good", a->q_good, a->samples, 4);
	ratio(w, "poor", a->q_poor, a->samples, 4);
	ratio(w, "lost", a->q_lost, a->samples, 4);
	fw_end(w);
}

/* ---- a set of (scope, slot) cells ---- */

void rpt_rows_init(struct rpt_rows *r)
{
	memset(r, 0, sizeof(*r));
	rpt_rows_scope(r, NULL);
}

void rpt_rows_free(struct rpt_rows *r)
{
	for (size_t i = 0; i < r->n_cells; i++)
		rpt_acc_free(&r->cells[i].acc);
	free(r->cells);
	free(r->cell_index);
	free(r->scopes);
	free(r->scope_index);
	memset(r, 0, sizeof(*r));
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

int rpt_rows_scope(struct rpt_rows *r, const char *channel_id)
{
	uint64_t h;
	size_t i;

	if (channel_id == NULL || *channel_id == '\0')
		channel_id = RPT_NIL_SCOPE;
	if ((size_t)(r->n_scopes + 1) * 2 > r->scope_index_cap) {
		size_t cap = r->scope_index_cap ? r->scope_index_cap * 2 : 256;

		free(r->scope_index);
		r->scope_index = xmalloc(cap * sizeof(int));
		for (size_t k = 0; k < cap; k++)
			r->scope_index[k] = -1;
		r->scope_index_cap = cap;
		for (int s = 0; s < r->n_scopes; s++) {
			for (i = rpt_hash(r->scopes[s]) & (cap - 1); r->scope_index[i] >= 0;
			     i = (i + 1) & (cap - 1))
				;
			r->scope_index[i] = s;
		}
	}
	h = rpt_hash(channel_id);
	for (i = h & (r->scope_index_cap - 1); r->scope_index[i] >= 0;
	     i = (i + 1) & (r->scope_index_cap - 1))
		if (strcmp(r->scopes[r->scope_index[i]], channel_id) == 0)
			return r->scope_index[i];
	if (r->n_scopes == r->cap_scopes) {
		r->cap_scopes = r->cap_scopes ? r->cap_scopes * 2 : 64;
		r->scopes = xrealloc(r->scopes, (size_t)r->cap_scopes * sizeof(*r->scopes));
	}
	snprintf(r->scopes[r->n_scopes], sizeof(r->scopes[0]), "%s", channel_id);
	r->scope_index[i] = r->n_scopes;
	return r->n_scopes++;
}

static size_t cell_hash(int scope, int64_t slot_us)
{
	return (size_t)mix((uint64_t)slot_us * 31 + (uint64_t)scope);
}

struct rpt_acc *rpt_rows_cell(struct rpt_rows *r, int scope, int64_t slot_us)
{
	size_t i = rpt_rows_cell_at(r, scope, slot_us);   /* may move r->cells */

	return &r->cells[i].acc;
}

size_t rpt_rows_cell_at(struct rpt_rows *r, int scope, int64_t slot_us)
{
	size_t i, mask;

	if ((r->n_cells + 1) * 2 > r->cell_index_cap) {
		size_t cap = r->cell_index_cap ? r->cell_index_cap * 2 : 1024;

		free(r->cell_index);
		r->cell_index = xcalloc(cap, sizeof(size_t));
		r->cell_index_cap = cap;
		for (size_t c = 0; c < r->n_cells; c++) {
			for (i = cell_hash(r->cells[c].scope, r->cells[c].slot_us) & (cap - 1);
			     r->cell_index[i] != 0; i = (i + 1) & (cap - 1))
				;
			r->cell_index[i] = c + 1;
		}
	}
	mask = r->cell_index_cap - 1;
	for (i = cell_hash(scope, slot_us) & mask; r->cell_index[i] != 0; i = (i + 1) & mask) {
		struct rpt_cell *c = &r->cells[r->cell_index[i] - 1];

		if (c->scope == scope && c->slot_us == slot_us)
			return r->cell_index[i] - 1;
	}
	if (r->n_cells == r->cap_cells) {
		r->cap_cells = r->cap_cells ? r->cap_cells * 2 : 256;
		r->cells = xrealloc(r->cells, r->cap_cells * sizeof(*r->cells));
	}
	memset(&r->cells[r->n_cells], 0, sizeof(r->cells[0]));
	r->cells[r->n_cells].scope = scope;
	r->cells[r->n_cells].slot_us = slot_us;
	r->cell_index[i] = ++r->n_cells;
	return r->n_cells - 1;
}
