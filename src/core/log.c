/*
 * log.c - the one module that writes log output.
 *
 * Lines go to stderr in one write(2) each, so lines from different threads
 * never interleave.  Text format:
 *   2026-01-02T03:04:05.123Z INFO  [rid] message
 * JSON format (LOG_FORMAT=json): one object per line with ts, level, rid, msg
 * and, for access lines, method, route, path, status, ms, client.
 */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum log_level log_min_level = LOG_INFO;
static bool log_json;
static _Thread_local char tl_rid[40];

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_configure(const char *level, const char *format)
{
	if (level != NULL && *level != '\0') {
		if (strcasecmp(level, "debug") == 0)
			log_min_level = LOG_DEBUG;
		else if (strcasecmp(level, "info") == 0)
			log_min_level = LOG_INFO;
		else if (strcasecmp(level, "warn") == 0 || strcasecmp(level, "warning") == 0)
			log_min_level = LOG_WARN;
		else if (strcasecmp(level, "error") == 0)
			log_min_level = LOG_ERROR;
		else
			return -1;
	}
	if (format != NULL && *format != '\0') {
		if (strcasecmp(format, "json") == 0)
			log_json = true;
		else if (strcasecmp(format, "text") == 0)
			log_json = false;
		else
			return -1;
	}
	return 0;
}

void log_set_request_id(const char *rid)
{
	if (rid == NULL)
		tl_rid[0] = '\0';
	else
		snprintf(tl_rid, sizeof(tl_rid), "%s", rid);
}

const char *log_request_id(void)
{
	return tl_rid;
}

static void timestamp(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%.24s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

static void emit(const char *line, size_t len)
{
	ssize_t off = 0;

	while ((size_t)off < len) {
		ssize_t n = write(STDERR_FILENO, line + off, len - (size_t)off);
		if (n <= 0)
			return;
		off += n;
	}
}

static void emit_json(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	if (s != NULL) {
		size_t n = strlen(s);
		s = realloc(s, n + 2);
		if (s != NULL) {
			s[n] = '\n';
			emit(s, n + 1);
		}
		free(s);
	}
	json_decref(obj);
}

static void vlog(enum log_level lvl, const char *fmt, va_list ap)
{
	char ts[48], msg[2048], line[2300];
	int n;

	timestamp(ts, sizeof(ts));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_json) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level",
				      level_names[lvl], "msg", msg);
		if (o != NULL && tl_rid[0] != '\0')
			json_object_set_new(o, "rid", json_string(tl_rid));
		if (o != NULL)
			emit_json(o);
		return;
	}
	if (tl_rid[0] != '\0')
		n = snprintf(line, sizeof(line), "%s %-5s [%s] %s\n", ts, level_names[lvl], tl_rid, msg);
	else
		n = snprintf(line, sizeof(line), "%s %-5s %s\n", ts, level_names[lvl], msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	emit(line, (size_t)n);
}

void log_write(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min_level)
		return;
	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

void log_access(const char *method, const char *route, const char *path,
		int status, double ms, const char *client)
{
	if (log_min_level > LOG_INFO)
		return;
	if (log_json) {
		char ts[48];
		json_t *o;

		timestamp(ts, sizeof(ts));
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:s}", "ts", ts,
			      "level", "INFO", "rid", tl_rid, "method", method, "route",
			      route ? route : "", "path", path, "status", status, "ms", ms,
			      "client", client ? client : "");
		if (o != NULL)
			emit_json(o);
		return;
	}
	log_write(LOG_INFO, "%s %s -> %d %.2fms route=%s client=%s", method, path, status,
		  ms, route ? route : "-", client ? client : "-");
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERROR, fmt, ap);
	va_end(ap);
	abort();
}
