/*
 * reports.h - usage and connection-quality reports (API.md "Reports").
 *
 *   GET /api/calls/{id}/quality     one call, exact, from its stats samples
 *   GET /api/reports/usage          per time bucket and in total, from rollups
 *   GET /api/reports/quality        the same for connection quality
 *
 * Reports never read the base tables: they add up the rollup rows that
 * tile each bucket (sql/0010_reports.sql explains the rollups).  The rollup
 * sweep keeps those rows: `nchat-rtc rollup-reports` (cron) and a timer in
 * `serve` (REPORTS_ROLLUP_INTERVAL_SECONDS).  Distinct counts are
 * HyperLogLog estimates and percentiles come from log-scale histograms; the
 * pure sketch arithmetic lives in reports_sketch.c so that it is unit
 * tested on its own.
 */
#ifndef NC_REPORTS_H
#define NC_REPORTS_H

#include "core/common.h"
#include "core/config.h"
#include "store/db.h"
#include "http/router.h"

#include <jansson.h>

/* ---- sketches (reports_sketch.c) ---- */

#define RPT_HLL_REGISTERS 1024
#define RPT_HLL_MAX_RANK 16        /* ranks are capped at this */
#define RPT_HIST_BUCKETS 400
#define RPT_HIST_RATIO 1.05        /* bucket b >= 1 covers [u 1.05^(b-1), u 1.05^b) */

/* HyperLogLog: 1024 registers of ranks 0..16 (standard error 3.25 %). */
struct rpt_hll {
	uint8_t reg[RPT_HLL_REGISTERS];
};

/* 64-bit hash of a key (FNV-1a, then MurmurHash3's finaliser). */
uint64_t rpt_hash(const char *key);
void rpt_hll_add(struct rpt_hll *h, uint64_t hash);
void rpt_hll_merge(struct rpt_hll *dst, const struct rpt_hll *src);
/* Merge the text form (sparse or dense, see sql/0010_reports.sql) into h; 0 or -1. */
int rpt_hll_decode(struct rpt_hll *h, const char *text) NC_MUSTCHECK;
/* The text form (malloc'd), or NULL when no register is set. */
char *rpt_hll_encode(const struct rpt_hll *h);
/* The estimate (linear counting below 2.5 x 1024). */
double rpt_hll_estimate(const struct rpt_hll *h);

/* A histogram: sorted (bucket, count) pairs. */
struct rpt_hist_entry {
	uint16_t b;
	uint64_t c;
};
struct rpt_hist {
	struct rpt_hist_entry *e;
	uint32_t n, cap;
};

int rpt_hist_bucket(double v, double unit);
void rpt_hist_add(struct rpt_hist *h, int bucket, uint64_t count);
void rpt_hist_merge(struct rpt_hist *dst, const struct rpt_hist *src);
/* Merge "bucket:count,..." into h; 0 or -1. */
int rpt_hist_decode(struct rpt_hist *h, const char *text) NC_MUSTCHECK;
/* "bucket:count,..." (malloc'd), or NULL when empty. */
char *rpt_hist_encode(const struct rpt_hist *h);
void rpt_hist_free(struct rpt_hist *h);
uint64_t rpt_hist_count(const struct rpt_hist *h);
/* The value a bucket stands for (unit / 2 for bucket 0). */
double rpt_hist_value(int bucket, double unit);
/*
 * percentile_cont(p) estimated from the histogram (interpolating between
 * the representatives of the two order statistics around rank p (n - 1)):
 * within 2.44 % of the true value, plus unit / 2 below unit.  false when
 * the histogram is empty.
 */
bool rpt_hist_percentile(const struct rpt_hist *h, double unit, double p, double *out);

/* ---- request parameters (reports_params.c) ---- */

enum rpt_interval { RPT_HOUR, RPT_DAY, RPT_WEEK, RPT_MONTH };

struct rpt_params {
	int64_t from_us, to_us;      /* effective range, 15-minute aligned */
	enum rpt_interval interval;
	char tz[64];                 /* canonical IANA name */
	char channel_id[37];         /* "" for all channels */
	bool csv;
};

const char *rpt_interval_name(enum rpt_interval iv);
/* RFC 3339 date-time to unix microseconds; 0 or -1. */
int rpt_parse_rfc3339(const char *s, int64_t *us) NC_MUSTCHECK;
/* Unix microseconds to "2026-03-29T01:00:00Z" (out >= 32 bytes). */
void rpt_format_us(int64_t us, char *out, size_t outlen);

struct req;
/*
 * Read from, to, interval, tz, channelId, format and the Accept header.
 * NC_EBADREQ with a message naming the parameter, or NC_EUNAVAILABLE when
 * the time zone cannot be checked against Postgres's zone list (read once,
 * then cached); nothing is written to r.
 */
enum nc_err rpt_read_params(struct req *r, struct rpt_params *p, struct nc_error *err) NC_MUSTCHECK;
/*
 * Read Postgres's list of time zones now (serve does it at start-up, before
 * it listens), so that no report request pays for it: Postgres builds the
 * list from every file of its zone database, about 90 ms with a cold page
 * cache.  Otherwise the first report request of the process loads it.
 */
void rpt_tz_preload(struct db_conn *db);

/* ---- the rollup sweep (reports_rollup.c) ---- */

struct rollup_stats {
	long hours;          /* hours recomputed */
	long queued;         /* hours still queued when the run stopped */
	bool skipped;        /* another instance holds the rollup lock */
	bool rebuilt;        /* everything was queued (first run or --rebuild) */
	char as_of[32];      /* the instant the figures are complete up to */
};

/*
 * One run: find what changed since the watermark, queue its hours, then
 * recompute queued hours until none is left or budget_ms has passed
 * (0 = no limit).  rebuild queues every hour that has data.
 */
enum nc_err reports_rollup(const struct nc_config *cfg, bool rebuild, int64_t budget_ms,
			   struct rollup_stats *st, struct nc_error *err) NC_MUSTCHECK;
/* The rollup's as_of (RFC 3339 into out) within the caller's transaction. */
enum nc_err reports_as_of(struct db_conn *db, char *out, size_t outlen,
			  struct nc_error *err) NC_MUSTCHECK;

struct nc_worker;
/* serve's timer: a periodic job of the worker pool. */
void reports_periodic(struct nc_worker *w, void *arg);

/* The reports routes (reports_api.c). */
extern const struct route reports_routes[];
/* `nchat-rtc rollup-reports [--rebuild]` (argv[0] is the subcommand). */
int cmd_rollup_reports(int argc, char **argv, const struct nc_config *cfg);

#endif
