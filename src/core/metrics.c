/*
 * metrics.c - counters, histograms and gauges for GET /metrics.
 *
 * A family is a metric name with a fixed list of label names; a series is
 * one set of label values.  Series are found by a linear scan of a short
 * array: families hold tens of series (routes x statuses is the largest), so
 * a scan is cheaper than hashing, and it happens under one mutex that is
 * held for well under a microsecond.
 */
#include "core/metrics.h"
#include "core/log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SERIES 2000
#define N_BUCKETS 14

static const double buckets_s[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,  0.025, 0.05,
					    0.1,    0.25,  0.5,    1.0,   2.5,   5.0,   10.0};

struct series {
	char labels[192];          /* rendered: route="/x",status="200" */
	double value;              /* counter or gauge value; histogram sum */
	uint64_t count;            /* histogram count */
	uint64_t bucket[N_BUCKETS];
};

struct family {
	const char *name;
	const char *help;
	const char *type;          /* counter, gauge, histogram */
	struct series *s;
	size_t n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static struct family f_http = {"nchat_http_requests_total", "HTTP requests answered, by route, method and status.", "counter", NULL, 0, 0};
static struct family f_http_lat = {"nchat_http_request_duration_seconds", "Time from request read to response queued, by route.", "histogram", NULL, 0, 0};
static struct family f_lk = {"nchat_livekit_requests_total", "LiveKit Twirp calls, by method and outcome.", "counter", NULL, 0, 0};
static struct family f_lk_lat = {"nchat_livekit_request_duration_seconds", "LiveKit Twirp call latency, by method.", "histogram", NULL, 0, 0};
static struct family f_wh = {"nchat_livekit_webhook_events_total", "LiveKit webhook events, by event and outcome.", "counter", NULL, 0, 0};
static struct family f_http_cls = {"nchat_http_class_requests_total", "HTTP requests answered, by route class and status class (2xx..5xx).", "counter", NULL, 0, 0};
static struct family f_http_cls_lat = {"nchat_http_class_request_duration_seconds", "Time from request read to response queued, by route class.", "histogram", NULL, 0, 0};
static struct family f_wh_lag = {"nchat_livekit_webhook_lag_seconds", "Seconds from a LiveKit webhook's createdAt to its arrival.", "histogram", NULL, 0, 0};
static struct family f_sweep_last = {"nchat_sweep_last_success_timestamp_seconds", "Unix time of the last run of each sweep that finished without error (any host; from Redis).", "gauge", NULL, 0, 0};
static struct family f_sweep = {"nchat_sweep_items_total", "Items handled by sweeps run inside this process, by sweep and result.", "counter", NULL, 0, 0};
static struct family f_gauge = {"", "", "gauge", NULL, 0, 0}; /* each series is its own gauge name */

static const struct {
	const char *name;
	const char *help;
} counters[M_COUNTER_MAX] = {
	[M_DB_ERRORS] = {"nchat_db_errors_total", "Failed Postgres connects or commands."},
	[M_REDIS_ERRORS] = {"nchat_redis_errors_total", "Failed Redis connects or commands."},
	[M_WEBHOOK_AUTH_FAILURES] = {"nchat_livekit_webhook_auth_failures_total", "LiveKit webhooks refused for a bad or missing signature."},
	[M_RATE_LIMITED] = {"nchat_rate_limited_total", "Requests answered 429."},
	[M_SSE_DROPPED_SLOW] = {"nchat_sse_dropped_slow_total", "Event streams closed because the client did not read."},
	[M_CONN_CLOSED_IDLE] = {"nchat_connections_closed_idle_total", "Connections closed for not completing a request in time."},
	[M_BAD_FRAMING] = {"nchat_http_bad_framing_total", "Requests refused for malformed or ambiguous framing (possible request smuggling)."},
	[M_REACTION_BATCHES] = {"nchat_stream_reaction_statements_total", "Statements that wrote stream reactions (one carries the reactions of every worker waiting at that moment)."},
	[M_REACTION_BATCHED] = {"nchat_stream_reaction_statement_rows_total", "Reactions carried by those statements (rows / statements = the mean batch)."},
};
static uint64_t counter_val[M_COUNTER_MAX];

/* Find or add the series with these labels; NULL past MAX_SERIES. */
static struct series *series_get(struct family *f, const char *labels)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->s[i].labels, labels) == 0)
			return &f->s[i];
	if (f->n == MAX_SERIES)
		return NULL;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->s = xrealloc(f->s, f->cap * sizeof(*f->s));
	}
	memset(&f->s[f->n], 0, sizeof(f->s[f->n]));
	snprintf(f->s[f->n].labels, sizeof(f->s[f->n].labels), "%s", labels);
	return &f->s[f->n++];
}

/* Label values are from fixed sets, but escape anyway: \ " and newline. */
static void label(char *out, size_t outlen, const char *name, const char *value, bool first)
{
	size_t off = strlen(out);
	int n = snprintf(out + off, outlen - off, "%s%s=\"", first ? "" : ",", name);

	if (n < 0 || (size_t)n >= outlen - off)
		return;
	off += (size_t)n;
	for (const char *p = value ? value : ""; *p && off + 3 < outlen; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			out[off++] = '\\';
			out[off++] = *p == '\n' ? 'n' : *p;
		} else {
			out[off++] = *p;
		}
	}
	if (off + 2 < outlen) {
		out[off++] = '"';
		out[off] = '\0';
	}
}

static void observe(struct series *s, double seconds)
{
	s->count++;
	s->value += seconds;
	for (int i = 0; i < N_BUCKETS; i++)
		if (seconds <= buckets_s[i])
			s->bucket[i]++;
}

void metrics_inc(enum metric_counter c)
{
	metrics_add(c, 1);
}

void metrics_add(enum metric_counter c, uint64_t n)
{
	pthread_mutex_lock(&mu);
	counter_val[c] += n;
	pthread_mutex_unlock(&mu);
}

void metrics_http(const char *route, const char *method, int status, double ms)
{
	char l1[192] = "", l2[192] = "", st[8];
	struct series *s;

	snprintf(st, sizeof(st), "%d", status);
	label(l1, sizeof(l1), "route", route ? route : "unmatched", true);
	snprintf(l2, sizeof(l2), "%s", l1);
	label(l1, sizeof(l1), "method", method, false);
	label(l1, sizeof(l1), "status", st, false);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_http, l1)) != NULL)
		s->value += 1;
	if ((s = series_get(&f_http_lat, l2)) != NULL)
		observe(s, ms / 1000.0);
	pthread_mutex_unlock(&mu);
}

void metrics_http_class(const char *route_class, int status, double ms)
{
	char l1[192] = "", l2[192] = "", sc[8];
	struct series *s;

	snprintf(sc, sizeof(sc), "%dxx", status >= 100 && status < 600 ? status / 100 : 5);
	label(l1, sizeof(l1), "class", route_class ? route_class : "unmatched", true);
	snprintf(l2, sizeof(l2), "%s", l1);
	label(l1, sizeof(l1), "code", sc, false);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_http_cls, l1)) != NULL)
		s->value += 1;
	if ((s = series_get(&f_http_cls_lat, l2)) != NULL)
		observe(s, ms / 1000.0);
	pthread_mutex_unlock(&mu);
}

void metrics_webhook_lag(double seconds)
{
	struct series *s;

	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_wh_lag, "")) != NULL)
		observe(s, seconds < 0 ? 0 : seconds);
	pthread_mutex_unlock(&mu);
}

void metrics_livekit(const char *method, const char *outcome, double ms)
{
	char l1[192] = "", l2[192] = "";
	struct series *s;

	label(l1, sizeof(l1), "method", method, true);
	snprintf(l2, sizeof(l2), "%s", l1);
	label(l1, sizeof(l1), "outcome", outcome, false);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_lk, l1)) != NULL)
		s->value += 1;
	if ((s = series_get(&f_lk_lat, l2)) != NULL)
		observe(s, ms / 1000.0);
	pthread_mutex_unlock(&mu);
}

/* LiveKit's event names; anything else is counted as "other". */
static const char *known_event(const char *event)
{
	static const char *const names[] = {
		"room_started", "room_finished", "participant_joined", "participant_left",
		"participant_connection_aborted", "track_published", "track_unpublished",
		"egress_started", "egress_updated", "egress_ended", "ingress_started",
		"ingress_ended", NULL};

	for (size_t i = 0; event != NULL && names[i] != NULL; i++)
		if (strcmp(event, names[i]) == 0)
			return names[i];
	return "other";
}

void metrics_webhook(const char *event, const char *outcome)
{
	char l[192] = "";
	struct series *s;

	event = known_event(event);
	label(l, sizeof(l), "event", event, true);
	label(l, sizeof(l), "outcome", outcome, false);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_wh, l)) != NULL)
		s->value += 1;
	pthread_mutex_unlock(&mu);
}

void metrics_sweep(const char *sweep, const char *result, long n)
{
	char l[192] = "";
	struct series *s;

	label(l, sizeof(l), "sweep", sweep, true);
	label(l, sizeof(l), "result", result, false);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_sweep, l)) != NULL)
		s->value += (double)n;
	pthread_mutex_unlock(&mu);
}

void metrics_set_gauge(const char *name, double value)
{
	struct series *s;

	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_gauge, name)) != NULL)
		s->value = value;
	pthread_mutex_unlock(&mu);
}

struct out {
	char *p;
	size_t n, cap;
};

static void outf(struct out *o, const char *fmt, ...) NC_PRINTF(2, 3);

static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->n) {
			o->n += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)n;
		o->p = xrealloc(o->p, o->cap);
	}
}

/*
 * Every family is declared (HELP and TYPE) even before its first series, so
 * dashboards and alert rules can rely on the names from the start.
 */
static void render_family(struct out *o, const struct family *f)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
	for (size_t i = 0; i < f->n; i++) {
		const struct series *s = &f->s[i];
		const char *sep = s->labels[0] ? "," : "";

		if (strcmp(f->type, "histogram") != 0) {
			outf(o, "%s{%s} %.17g\n", f->name, s->labels, s->value);
			continue;
		}
		for (int b = 0; b < N_BUCKETS; b++)
			outf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, sep, buckets_s[b],
			     (unsigned long long)s->bucket[b]);
		outf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep,
		     (unsigned long long)s->count);
		if (s->labels[0] == '\0')
			outf(o, "%s_sum %.17g\n%s_count %llu\n", f->name, s->value, f->name,
			     (unsigned long long)s->count);
		else
			outf(o, "%s_sum{%s} %.17g\n%s_count{%s} %llu\n", f->name, s->labels, s->value,
			     f->name, s->labels, (unsigned long long)s->count);
	}
}

char *metrics_render(void)
{
	struct out o = {xmalloc(16384), 0, 16384};

	o.p[0] = '\0';
	pthread_mutex_lock(&mu);
	for (int i = 0; i < M_COUNTER_MAX; i++)
		outf(&o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name,
		     counters[i].help, counters[i].name, counters[i].name,
		     (unsigned long long)counter_val[i]);
	render_family(&o, &f_http);
	render_family(&o, &f_http_lat);
	render_family(&o, &f_http_cls);
	render_family(&o, &f_http_cls_lat);
	render_family(&o, &f_lk);
	render_family(&o, &f_lk_lat);
	render_family(&o, &f_wh);
	render_family(&o, &f_wh_lag);
	render_family(&o, &f_sweep);
	render_family(&o, &f_sweep_last);
	for (size_t i = 0; i < f_gauge.n; i++)
		outf(&o, "# TYPE %s gauge\n%s %.17g\n", f_gauge.s[i].labels, f_gauge.s[i].labels,
		     f_gauge.s[i].value);
	pthread_mutex_unlock(&mu);
	return o.p;
}

/* The time of a sweep's last successful run (read from Redis at scrape time). */
void metrics_set_sweep_last(const char *sweep, double unix_s)
{
	char l[64] = "";
	struct series *s;

	label(l, sizeof(l), "sweep", sweep, true);
	pthread_mutex_lock(&mu);
	if ((s = series_get(&f_sweep_last, l)) != NULL)
		s->value = unix_s;
	pthread_mutex_unlock(&mu);
}
