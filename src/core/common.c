/*
 * common.c - error mapping, checked allocation, small parsing and time
 * helpers shared by every module.
 */
#include "core/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Allocation (or RNG) failure: nothing sensible is left to do.  Written straight to
 * stderr because the logger sits above this file (and may itself allocate).
 */
NC_NORETURN static void die(const char *what)
{
	fprintf(stderr, "fatal: %s\n", what);
	abort();
}

static const struct {
	int status;
	const char *name;
} err_table[NC_ERR_MAX] = {
	[NC_OK] = {200, "ok"},
	[NC_EBADREQ] = {400, "bad_request"},
	[NC_EUNAUTH] = {401, "unauthorized"},
	[NC_EFORBIDDEN] = {403, "forbidden"},
	[NC_ENOTFOUND] = {404, "not_found"},
	[NC_EMETHOD] = {405, "method_not_allowed"},
	[NC_ECONFLICT] = {409, "conflict"},
	[NC_EGONE] = {410, "gone"},
	[NC_ETOOLARGE] = {413, "payload_too_large"},
	[NC_EMEDIATYPE] = {415, "unsupported_media_type"},
	[NC_ERATELIMIT] = {429, "rate_limited"},
	[NC_EINTERNAL] = {500, "internal"},
	[NC_ELIVEKIT] = {502, "livekit_unavailable"},
	[NC_ELIVEKIT_DOWN] = {503, "livekit_unavailable"},
	[NC_ESTORAGE] = {503, "storage_unavailable"},
	[NC_EUNAVAILABLE] = {503, "unavailable"},
	[NC_ENOTIMPL] = {501, "not_implemented"},
};

enum nc_err err_set(struct nc_error *e, enum nc_err code, const char *fmt, ...)
{
	if (e != NULL) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int err_http_status(enum nc_err code)
{
	if ((int)code < 0 || code >= NC_ERR_MAX)
		return 500;
	return err_table[code].status;
}

const char *err_code_name(enum nc_err code)
{
	if ((int)code < 0 || code >= NC_ERR_MAX)
		return "internal";
	return err_table[code].name;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		die("out of memory");
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&out, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("out of memory (formatting)");
	return out;
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int64_t now_unix(void)
{
	return (int64_t)time(NULL);
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void format_rfc3339(int64_t unix_s, char *out, size_t outlen)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
