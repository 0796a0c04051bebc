/*
 * router.h - method + path table with {param} segments.
 *
 * Patterns are absolute paths whose segments are either literal text or
 * "{name}", which matches exactly one non-empty segment.  Matching works on
 * the raw (still percent-encoded) request path: it is cut at its '/'s first,
 * and only then is each segment percent-decoded, so "%2F" can never act as
 * a separator ("/api%2fadmin" is one segment and matches nothing).  A path that matches
 * some pattern but not with the request's method is a 405 (the caller gets
 * the allowed methods for the Allow header); no pattern at all is a 404.
 * Matching allocates nothing: parameters point into a caller-owned copy of
 * the path.
 */
#ifndef NC_ROUTER_H
#define NC_ROUTER_H

#include "core/common.h"

#define ROUTE_MAX_PARAMS 4
#define ROUTE_MAX_SEGMENTS 12

struct req;
struct nc_error;
struct rl_bucket;
/*
 * A handler that reads top to bottom: it writes its success response and
 * returns NC_OK, or returns an error code with err filled in (err_set) and
 * leaves the rest to dispatch: rolling back a transaction left open, the
 * error body and status, the log line.
 */
typedef enum nc_err (*route_fn)(struct req *r, struct nc_error *err);

enum route_method {
	RM_GET = 1 << 0,
	RM_POST = 1 << 1,
	RM_PUT = 1 << 2,
	RM_DELETE = 1 << 3,
	RM_PATCH = 1 << 4,
	RM_HEAD = 1 << 5,
	RM_OPTIONS = 1 << 6,
};

enum route_flags {
	ROUTE_AUTH = 1 << 0,          /**< a valid user token is required */
	ROUTE_AUTH_OPTIONAL = 1 << 1, /**< a token is checked when given (anonymous allowed) */
	ROUTE_ON_LOOP = 1 << 2,       /**< cheap, touches no connection: run on the loop thread */
	ROUTE_RAW_BODY = 1 << 3,      /**< body is not JSON (webhooks): no content-type check */
	ROUTE_QUERY_TOKEN = 1 << 4,   /**< ?access_token= accepted (EventSource) */
	ROUTE_UUID_PARAMS = 1 << 5,   /**< every {param} must be a UUID (else 400) */
	ROUTE_JSON = 1 << 6,          /**< body parsed as a JSON object before the handler (empty: {}) */
	ROUTE_ADMIN = 1 << 7,         /**< the caller must hold the admin role (else 403) */
	ROUTE_METRICS = 1 << 9,       /**< served on the METRICS_ADDR listener (the only route there) */
};

struct route {
	unsigned methods;       /* enum route_method bits */
	const char *pattern;    /* "/api/calls/{id}/join" */
	route_fn handler;
	unsigned flags;         /* enum route_flags bits */
	const char *name;       /* for logs and metrics; defaults to pattern */
	/* fills in a bucket of the route's own, charged with the class's (ratelimit.h); NULL: none */
	void (*own_limit)(struct req *r, struct rl_bucket *b);
};

struct route_match {
	const struct route *route;
	size_t n_params;
	const char *names[ROUTE_MAX_PARAMS];   /* point into the route pattern copy */
	size_t name_lens[ROUTE_MAX_PARAMS];
	char *values[ROUTE_MAX_PARAMS];        /* point into the caller's path buffer */
	unsigned allowed;                      /* on 405: methods that would match */
};

enum route_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD, ROUTE_BAD_PATH };

/* Method name ("GET") to bit; 0 if unknown. */
unsigned route_method_bit(const char *name);
/* Comma-separated method list of bits into out ("GET, POST"). */
void route_allow_header(unsigned methods, char *out, size_t outlen);

/*
 * Match the raw path (modified in place: '/' separators become NULs and
 * each segment is percent-decoded) against the table.  A segment holding an
 * encoded '/' (%2F, %2f) is ROUTE_NOT_FOUND; an encoded NUL or a malformed
 * escape ('%' not followed by two hex digits) is ROUTE_BAD_PATH.  Parameter
 * values are decoded.  routes ends with an entry whose pattern is NULL.
 */
enum route_result route_match(const struct route *routes, unsigned method, char *path,
			      struct route_match *m);

/* The value of parameter `name` in m, or NULL. */
const char *route_param(const struct route_match *m, const char *name);

#endif
