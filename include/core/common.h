/*
 * common.h - attributes, the error type shared by every module, and the
 * allocation policy.
 *
 * Allocation policy: small internal allocations go through xmalloc/xcalloc/
 * xstrdup, which log and abort on failure (there is nothing sensible to do
 * when a few bytes cannot be had).  Allocations sized by a request are capped
 * by the caller before they are made, and their failure becomes an error.
 */
#ifndef NC_COMMON_H
#define NC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define NC_MUSTCHECK __attribute__((warn_unused_result))
#define NC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NC_NORETURN __attribute__((noreturn))
#define NC_UNUSED __attribute__((unused))
#define NC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Errors that cross module boundaries.  Each maps to exactly one HTTP status
 * and error code string (err_http_status / err_code_name), in one place.
 */
enum nc_err {
	NC_OK = 0,
	NC_EBADREQ,        /**< 400 bad_request */
	NC_EUNAUTH,        /**< 401 unauthorized */
	NC_EFORBIDDEN,     /**< 403 forbidden */
	NC_ENOTFOUND,      /**< 404 not_found */
	NC_EMETHOD,        /**< 405 method_not_allowed */
	NC_ECONFLICT,      /**< 409 conflict */
	NC_EGONE,          /**< 410 gone */
	NC_ETOOLARGE,      /**< 413 payload_too_large */
	NC_EMEDIATYPE,     /**< 415 unsupported_media_type */
	NC_ERATELIMIT,     /**< 429 rate_limited */
	NC_EINTERNAL,      /**< 500 internal */
	NC_ELIVEKIT,       /**< 502 livekit_unavailable: LiveKit answered with an error */
	NC_ELIVEKIT_DOWN,  /**< 503 livekit_unavailable: LiveKit unreachable / timed out */
	NC_ESTORAGE,       /**< 503 storage_unavailable (S3) */
	NC_EUNAVAILABLE,   /**< 503 unavailable: Postgres or Redis down */
	NC_ENOTIMPL,       /**< 501 not_implemented: a method this server never serves */
	NC_ERR_MAX
};

/* An error plus a short human message (never SQL text, never a secret). */
struct nc_error {
	enum nc_err code;
	char msg[200];
};

/* Fill *e (if not NULL) and return code, so callers can `return err_set(...)`. */
enum nc_err err_set(struct nc_error *e, enum nc_err code, const char *fmt, ...)
	NC_PRINTF(3, 4);
int err_http_status(enum nc_err code);
const char *err_code_name(enum nc_err code);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that aborts on allocation failure. */
char *xasprintf(const char *fmt, ...) NC_PRINTF(1, 2);

/* Strict integer parsing: whole string, base 10, range-checked. 0 on success. */
int parse_long(const char *s, long min, long max, long *out) NC_MUSTCHECK;

/* Wall-clock helpers. */
int64_t now_unix(void);
int64_t now_ms(void);
/* RFC 3339 UTC ("2026-01-02T03:04:05Z") of a unix time; out >= 21 bytes. */
void format_rfc3339(int64_t unix_s, char *out, size_t outlen);

#endif
