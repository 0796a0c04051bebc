/*
 * reports_int.h - what the report modules share (not for other modules).
 *
 * struct rpt_acc holds the figures of one rollup row (a 15-minute slot or a
 * window, one scope), or of a report bucket being added up: counters that
 * add, a peak that takes the maximum, and sketches that merge.  The same
 * merge serves the rollup sweep (windows from slots) and the reports
 * (buckets from rows), so a report is exactly the rollup of its rows.
 */
#ifndef NC_REPORTS_INT_H
#define NC_REPORTS_INT_H

#include "reports/reports.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>

#define RPT_US INT64_C(1000000)
#define RPT_SLOT_US (900 * RPT_US)
#define RPT_HOUR_US (3600 * RPT_US)
#define RPT_DAY_US (86400 * RPT_US)
/* A recompute looks for calls and streams begun this long before an hour;
 * longer ones are listed in nchat_rtc_report_long. */
#define RPT_LOOKBACK_US (6 * RPT_HOUR_US)
#define RPT_NIL_SCOPE "00000000-0000-0000-0000-000000000000"
#define RPT_NO_TS INT64_MIN

/* Histogram units: milliseconds for setup, 0.1 ms for RTT and jitter, and
 * 0.001 % for packet loss. */
#define RPT_UNIT_SETUP 1.0
#define RPT_UNIT_MS 0.1
#define RPT_UNIT_LOSS 0.001

/* Timestamp <-> microseconds in SQL, exactly. */
#define RPT_SQL_US(x) "(extract(epoch FROM " x ") * 1000000)::bigint"
#define RPT_SQL_TS(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 microsecond')"

struct rpt_acc {
	/* usage */
	int64_t calls, calls_audio, calls_video, calls_screen_share;
	int64_t calls_direct, calls_group, calls_channel;
	int64_t answered, missed, declined, failed;
	int64_t call_us, participant_us, peak_calls;
	struct rpt_hist setup;
	struct rpt_hll *users;
	int64_t recordings, recording_us, recording_bytes;
	int64_t streams, stream_us, stream_views;
	struct rpt_hll *viewers;
	int64_t chat_messages, reactions;
	/* quality */
	int64_t samples, participants, relay_participants, ice_failed_participants;
	struct rpt_hist rtt, jitter, loss;
	int64_t loss_n, bitrate_n, bitrate_sum;
	__int128 loss_e12;            /* sum of packet loss, in 1e-12 % */
	int64_t q_excellent, q_good, q_poor, q_lost;
	bool has_usage, has_quality;  /* a row is written for the table */
};

void rpt_acc_merge(struct rpt_acc *dst, const struct rpt_acc *src);
void rpt_acc_free(struct rpt_acc *a);
struct rpt_hll *rpt_acc_users(struct rpt_acc *a);     /* allocated on first use */
struct rpt_hll *rpt_acc_viewers(struct rpt_acc *a);
/* Parse a decimal ("12.5") into 1e-12 units; 0 or -1. */
int rpt_parse_e12(const char *s, __int128 *out) NC_MUSTCHECK;

/* The column numbers of a result's rollup columns (looked up by name once
 * per result; -1 when absent). */
#define RPT_USAGE_COUNTERS 22
#define RPT_QUALITY_COUNTERS 11
struct rpt_colmap {
	int usage[RPT_USAGE_COUNTERS], quality[RPT_QUALITY_COUNTERS];
	int setup_hist, users_hll, viewers_hll, rtt_hist, jitter_hist, loss_hist, loss_sum;
};
void rpt_colmap_init(struct rpt_colmap *m, const PGresult *res);
/* Add one row of nchat_rtc_report_usage / _quality into a; 0, or -1 for a
 * malformed sketch. */
int rpt_acc_add_usage_row(struct rpt_acc *a, const PGresult *res, int row,
			  const struct rpt_colmap *m) NC_MUSTCHECK;
int rpt_acc_add_quality_row(struct rpt_acc *a, const PGresult *res, int row,
			    const struct rpt_colmap *m) NC_MUSTCHECK;
/*
 * The columns of a row of nchat_rtc_report_usage (quality: _quality) after
 * scope, level and slot, as the sweep writes them: the counters, then the
 * text columns (sketches; the exact loss sum, a numeric column).
 */
enum rpt_col_type { RC_INT4, RC_INT8, RC_TEXT, RC_NUMERIC };
size_t rpt_acc_ncols(bool quality);
const char *rpt_acc_colname(bool quality, size_t i, enum rpt_col_type *type);
/* Column i of a: an integer into *v (NULL returned), or the text
 * (malloc'd; NULL for SQL NULL). */
char *rpt_acc_colvalue(const struct rpt_acc *a, bool quality, size_t i, int64_t *v);
/* Zero the figures, keeping the memory of the sketches for the next use. */
void rpt_acc_reset(struct rpt_acc *a);

/* ---- writing figures (reports_output.c) ---- */

enum fw_mode { FW_JSON, FW_CSV_HEAD, FW_CSV_ROW };

struct fw {
	enum fw_mode mode;
	char *p;
	size_t len, cap;
	bool first;          /* no separator before the next item */
	bool overflow;       /* the text passed 32 MiB: nothing more was added */
	char prefix[32];     /* CSV header: the enclosing object's name */
};

void fw_init(struct fw *w, enum fw_mode mode);
void fw_free(struct fw *w);
void fw_raw(struct fw *w, const char *s, size_t n);
void fw_open(struct fw *w);                 /* JSON "{" */
void fw_close(struct fw *w);                /* JSON "}" */
void fw_line_end(struct fw *w);             /* CSV "\r\n" */
void fw_obj(struct fw *w, const char *key); /* a nested object (CSV: dotted names) */
void fw_end(struct fw *w);
void fw_str(struct fw *w, const char *key, const char *v);
void fw_null(struct fw *w, const char *key);
void fw_int(struct fw *w, const char *key, int64_t v);
/* scaled / 10^decimals, exactly, without trailing zeros. */
void fw_fixed(struct fw *w, const char *key, int64_t scaled, int decimals);

/* Exact percentiles that replace the sketch's (one call's quality). */
struct rpt_exact {
	const char *rtt_p50, *rtt_p95, *jitter_p50, *jitter_p95, *loss_p95;   /* NULL: none */
};

/* The figures of API.md, in their order. */
void rpt_emit_usage(struct fw *w, const struct rpt_acc *a);
void rpt_emit_quality(struct fw *w, const struct rpt_acc *a, const struct rpt_exact *ex);

/* ---- rollup rows: a set of (scope, slot) accumulators ---- */

struct rpt_cell {
	int scope;          /* index into rpt_rows.scopes; 0 = all channels */
	int64_t slot_us;
	struct rpt_acc acc;
};

struct rpt_rows {
	char (*scopes)[37];
	int n_scopes, cap_scopes;
	int *scope_index;       /* open-addressing table of scope numbers */
	size_t scope_index_cap;
	struct rpt_cell *cells;
	size_t n_cells, cap_cells;
	size_t *cell_index;     /* open-addressing table of cell number + 1 */
	size_t cell_index_cap;
};

void rpt_rows_init(struct rpt_rows *r);
void rpt_rows_free(struct rpt_rows *r);
/* The scope number of a channel id (NULL or "" = all channels, 0). */
int rpt_rows_scope(struct rpt_rows *r, const char *channel_id);
/* The accumulator of (scope, slot), created on first use (pointers into
 * the cells stay valid only until the next cell is created). */
struct rpt_acc *rpt_rows_cell(struct rpt_rows *r, int scope, int64_t slot_us);
/* The same, as a cell number. */
size_t rpt_rows_cell_at(struct rpt_rows *r, int scope, int64_t slot_us);

/* ---- the sweep's reads (reports_read.c) ---- */

/* Run sql with the range's parameters ($1 a, $2 b, $3 as_of: microseconds),
 * in binary (see reports_read.c) or text. */
PGresult *rpt_read(struct db_conn *db, const char *sql, bool binary, int64_t a, int64_t b,
		   int64_t as_of, struct nc_error *err) NC_MUSTCHECK;

/* A binary read on a connection and thread of its own. */
struct rpt_side {
	struct db_conn db;
	const char *sql;
	int64_t a, b, as_of;
	pthread_t thread;
	bool started;
	PGresult *res;
};

void rpt_side_start(struct rpt_side *sd, const struct db_conn *main, const char *sql, int64_t a,
		    int64_t b, int64_t as_of);
/* Its result (the caller owns it), else the same read on `main`; NULL and
 * err filled when that fails too. */
PGresult *rpt_side_take(struct rpt_side *sd, struct db_conn *main,
			struct nc_error *err) NC_MUSTCHECK;
void rpt_side_join(struct rpt_side *sd);
/* Join and drop whatever was not taken. */
void rpt_side_free(struct rpt_side *sd);

/* The columns of a binary result: the column number of each name into f,
 * checking its type; NC_EINTERNAL when one is missing or of another type. */
enum rpt_bin_type { RB_BOOL, RB_INT4, RB_INT8, RB_TEXT, RB_TS, RB_UUID };
struct rpt_bin_col {
	const char *name;
	enum rpt_bin_type type;
};
enum nc_err rpt_bin_columns(const PGresult *res, const struct rpt_bin_col *cols, int *f, size_t n,
			    struct nc_error *err) NC_MUSTCHECK;
/* Values of binary columns; NULL (or a value of the wrong length) gives def,
 * RPT_NO_TS, false or NULL. */
int64_t rpt_bin_i64(const PGresult *res, int row, int f, int64_t def);
int64_t rpt_bin_i32(const PGresult *res, int row, int f, int64_t def);
int64_t rpt_bin_ts(const PGresult *res, int row, int f);   /* Unix microseconds */
bool rpt_bin_bool(const PGresult *res, int row, int f);
const char *rpt_bin_text(const PGresult *res, int row, int f);
const unsigned char *rpt_bin_uuid(const PGresult *res, int row, int f);   /* 16 bytes */
/* A uuid's 16 bytes as Postgres writes it (lower case, 36 characters + NUL). */
void rpt_uuid_text(const unsigned char *u, char *out);

/* ---- the sweep's steps ---- */

/* Compute the 15-minute rows of [a_us, b_us) from the base tables. */
enum nc_err rpt_compute_slots(struct db_conn *db, int64_t a_us, int64_t b_us, int64_t as_of_us,
			      struct rpt_rows *out, struct nc_error *err) NC_MUSTCHECK;
/* Insert cells[0..n) of rows at `level` (reports_write.c): a usage row for
 * each with usage, a quality row for each with samples, in that order. */
enum nc_err rpt_insert_cells(struct db_conn *db, const struct rpt_rows *rows,
			     const struct rpt_cell *const *cells, size_t n, int level,
			     struct nc_error *err) NC_MUSTCHECK;
/* Replace the level-0 rows of [a_us, b_us) by `rows`. */
enum nc_err rpt_write_slots(struct db_conn *db, int64_t a_us, int64_t b_us,
			    const struct rpt_rows *rows, struct nc_error *err) NC_MUSTCHECK;
/* Recompute the windows that cover the given hours (sorted, distinct). */
enum nc_err rpt_rebuild_windows(struct db_conn *db, const int64_t *hours, size_t n,
				struct nc_error *err) NC_MUSTCHECK;

/* ---- reports (reports_query.c) ---- */

enum rpt_kind { RPT_USAGE, RPT_QUALITY };

/* Run the report query and write the response body (JSON or CSV, as p says). */
enum nc_err rpt_run_report(struct db_conn *db, enum rpt_kind kind, const struct rpt_params *p,
			   struct fw *out, struct nc_error *err) NC_MUSTCHECK;

#endif
