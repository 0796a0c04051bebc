/*
 * s3.h - a small S3 client for the recordings bucket (libcurl + OpenSSL).
 *
 * Every request is signed with AWS Signature Version 4 in the Authorization
 * header, x-amz-content-sha256 always sent (S3 requires it); downloads handed
 * to browsers are presigned GET URLs (query signing, UNSIGNED-PAYLOAD) on
 * S3_PUBLIC_ENDPOINT.  Path-style addressing (https://host/bucket/key) when
 * S3_FORCE_PATH_STYLE, virtual-hosted (https://bucket.host/key) otherwise.
 *
 * One client per worker thread (struct nc_worker.s3): it owns one curl easy
 * handle, reused so keep-alive connections survive between calls.  Failures
 * map to NC_ESTORAGE (503 storage_unavailable); a 404 on GET/HEAD/DELETE is
 * reported as NC_ENOTFOUND so callers can count "already gone" as deleted.
 *
 * The signing steps are exported separately so the unit tests can check them
 * against AWS's published examples.
 */
#ifndef NC_S3_H
#define NC_S3_H

#include "core/common.h"
#include "core/config.h"

#include <stdint.h>

struct s3_client;

/* ---- signing primitives (pure functions) ---- */

/* One header to sign: lower-case name, trimmed value. */
struct s3_header {
	const char *name;
	const char *value;
};

/*
 * URI-encode per SigV4: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX
 * (upper-case hex); '/' is kept when keep_slash (object key paths).
 */
char *s3_uri_encode(const char *s, bool keep_slash);

/* kSigning = HMAC chain over "AWS4"+secret, date (YYYYMMDD), region, service, "aws4_request". */
void s3_signing_key(const char *secret, const char *date8, const char *region,
		    const char *service, unsigned char out[32]);

/*
 * The canonical request: method, canonical URI (already encoded), canonical
 * query string (already sorted and encoded, "" for none), the headers (sorted
 * here by name; names must be lower case), signed header list, payload hash.
 * *signed_headers (if not NULL) receives the "a;b;c" list.  Malloc'd.
 */
char *s3_canonical_request(const char *method, const char *uri, const char *query,
			   const struct s3_header *hdrs, size_t n_hdrs,
			   const char *payload_hash, char **signed_headers);

/*
 * Hex signature (64 chars + NUL) of a canonical request made at amz_date
 * (YYYYMMDDTHHMMSSZ) for region/service "s3".
 */
void s3_signature(const char *secret, const char *region, const char *amz_date,
		  const char *canonical_request, char out[65]);

/* YYYYMMDDTHHMMSSZ of a unix time (out >= 17 bytes). */
void s3_amz_date(int64_t unix_s, char out[17]);

/* Lower-case hex SHA-256 of data (out >= 65 bytes). */
void s3_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * A presigned GET URL: base is "scheme://host[:port]" (no trailing '/'),
 * host the Host header value, uri the canonical (encoded) path.  Malloc'd.
 */
char *s3_presign_raw(const char *base, const char *host, const char *uri,
		     const char *access_key, const char *secret, const char *region,
		     const char *amz_date, int expires_s);

/* ---- the client ---- */

/* Defined in worker.h as well: NULL when S3 is not configured. */
struct s3_client *s3_client_new(const struct nc_config *cfg);
void s3_client_free(struct s3_client *c);

/* True when S3_ENDPOINT, S3_BUCKET and the key pair are all set. */
bool s3_configured(const struct nc_config *cfg);

/*
 * PUT data at key (x-amz-server-side-encryption: S3_SSE when configured).
 * NC_OK or NC_ESTORAGE.
 */
enum nc_err s3_put(struct s3_client *c, const char *key, const void *data, size_t len,
		   const char *content_type, struct nc_error *err);
/* GET key into a malloc'd buffer (capped at 16 MiB).  NC_OK, NC_ENOTFOUND, NC_ESTORAGE. */
enum nc_err s3_get(struct s3_client *c, const char *key, char **data, size_t *len,
		   struct nc_error *err);
/* HEAD key; *size (if not NULL) gets Content-Length.  NC_OK, NC_ENOTFOUND, NC_ESTORAGE. */
enum nc_err s3_head(struct s3_client *c, const char *key, int64_t *size, struct nc_error *err);
/*
 * DELETE key.  NC_OK (deleted, or S3's 204 for a key that never existed),
 * NC_ENOTFOUND (404: already gone - callers count it as deleted), NC_ESTORAGE.
 */
enum nc_err s3_delete(struct s3_client *c, const char *key, struct nc_error *err);
/* Re-write an object in place with server-side encryption (S3_SSE); no-op when unset. */
enum nc_err s3_encrypt_in_place(struct s3_client *c, const char *key, struct nc_error *err);

/* One ListObjectsV2 page. */
struct s3_list_page {
	char **keys;
	size_t n_keys;
	char *next_token;   /* continuation token, NULL on the last page */
};
void s3_list_page_free(struct s3_list_page *p);
/*
 * ListObjectsV2 under prefix, at most max_keys (1..1000) keys, continuing
 * from token (NULL for the first page).  NC_OK or NC_ESTORAGE.
 */
enum nc_err s3_list(struct s3_client *c, const char *prefix, const char *token, int max_keys,
		    struct s3_list_page *out, struct nc_error *err);

/*
 * Presigned GET URL for key on S3_PUBLIC_ENDPOINT (path-style), valid for
 * ttl_s seconds from now.  Malloc'd, or NULL when S3 is not configured.
 */
char *s3_presign_get(const struct nc_config *cfg, const char *key, int ttl_s, int64_t now);

#endif
