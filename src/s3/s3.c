/*
 * s3.c - S3 client for the recordings bucket: AWS Signature Version 4 over
 * libcurl, HMAC/SHA-256 from OpenSSL.
 *
 * Why our own: the service needs five S3 operations (PUT, GET, HEAD,
 * DELETE, ListObjectsV2) plus presigned GET URLs; an SDK would be a far
 * larger dependency than the ~500 lines below.
 *
 * Signing (header form): canonical request = method, URI (each key segment
 * URI-encoded, '/' kept; S3 does not double-encode), sorted encoded query,
 * the signed headers (host, x-amz-content-sha256, x-amz-date, plus any
 * x-amz-* we add), the signed-header list and the payload hash.  We always
 * send x-amz-content-sha256 with the real SHA-256 of the body (empty-string
 * hash for bodiless requests) because S3 refuses requests without it.  We
 * set the Host header ourselves so the value signed is the value sent.
 *
 * Presigned URLs sign only `host` with UNSIGNED-PAYLOAD and are always
 * path-style on S3_PUBLIC_ENDPOINT (what browsers can reach; API.md).
 *
 * Error mapping: transport failures and any non-2xx answer -> NC_ESTORAGE
 * (503), except 404 on GET/HEAD/DELETE -> NC_ENOTFOUND, which the callers of
 * delete treat as "already gone".  S3's own <Code> is kept in the message
 * (never the signature or the key material).
 */
#include "s3/s3.h"
#include "core/buf.h"
#include "core/log.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S3_SERVICE "s3"
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MAX_RESPONSE (16u * 1024 * 1024)
#define S3_CONNECT_TIMEOUT_MS 2000L
#define S3_TIMEOUT_MS 15000L
#define S3_MAX_HEADERS 8

struct s3_client {
	const struct nc_config *cfg;   /* borrowed; outlives the client */
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char *scheme;                  /* "http" | "https" */
	char *authority;               /* host[:port] of S3_ENDPOINT */
	char *body;                    /* response body of the current call */
	size_t body_len, body_cap;
	bool body_overflow;
	int64_t content_length;        /* from a HEAD answer, -1 if none */
	const char *copy_source;       /* set only during s3_encrypt_in_place */
};

/* ---- small helpers ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void hmac256(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
	unsigned int outlen = 32;

	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
		 &outlen) == NULL)
		fatal("s3: HMAC-SHA256 failed");
}

void s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof md, out);
}

char *s3_uri_encode(const char *s, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *p = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = digits[ch >> 4];
			*p++ = digits[ch & 15];
		}
	}
	*p = '\0';
	return out;
}

void s3_amz_date(int64_t unix_s, char out[17])
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void s3_signing_key(const char *secret, const char *date8, const char *region,
		    const char *service, unsigned char out[32])
{
	char *k = xasprintf("AWS4%s", secret);
	unsigned char a[32], b[32];

	hmac256(k, strlen(k), date8, a);
	hmac256(a, 32, region, b);
	hmac256(b, 32, service, a);
	hmac256(a, 32, "aws4_request", out);
	OPENSSL_cleanse(k, strlen(k));
	free(k);
	OPENSSL_cleanse(a, sizeof a);
	OPENSSL_cleanse(b, sizeof b);
}

static int header_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3_header *)a)->name, ((const struct s3_header *)b)->name);
}

char *s3_canonical_request(const char *method, const char *uri, const char *query,
			   const struct s3_header *hdrs, size_t n_hdrs,
			   const char *payload_hash, char **signed_headers)
{
	struct s3_header sorted[S3_MAX_HEADERS];
	struct buf b = { 0 }, sh = { 0 };

	if (n_hdrs > S3_MAX_HEADERS)
		fatal("s3: too many signed headers");
	memcpy(sorted, hdrs, n_hdrs * sizeof *hdrs);
	qsort(sorted, n_hdrs, sizeof *sorted, header_cmp);
	buf_add(&b, method);
	buf_add(&b, "\n");
	buf_add(&b, uri);
	buf_add(&b, "\n");
	buf_add(&b, query ? query : "");
	buf_add(&b, "\n");
	for (size_t i = 0; i < n_hdrs; i++) {
		buf_add(&b, sorted[i].name);
		buf_add(&b, ":");
		buf_add(&b, sorted[i].value);
		buf_add(&b, "\n");
		if (i)
			buf_add(&sh, ";");
		buf_add(&sh, sorted[i].name);
	}
	buf_add(&b, "\n");
	buf_add(&b, buf_str(&sh));
	buf_add(&b, "\n");
	buf_add(&b, payload_hash);
	if (signed_headers)
		*signed_headers = buf_steal(&sh);
	else
		buf_free(&sh);
	return buf_steal(&b);
}

void s3_signature(const char *secret, const char *region, const char *amz_date,
		  const char *canonical_request, char out[65])
{
	char date8[9], creq_hash[65];
	unsigned char key[32], sig[32];
	char *sts;

	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	s3_sha256_hex(canonical_request, strlen(canonical_request), creq_hash);
	sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date8, region,
			S3_SERVICE, creq_hash);
	s3_signing_key(secret, date8, region, S3_SERVICE, key);
	hmac256(key, sizeof key, sts, sig);
	hex_encode(sig, sizeof sig, out);
	OPENSSL_cleanse(key, sizeof key);
	free(sts);
}

char *s3_presign_raw(const char *base, const char *host, const char *uri,
		     const char *access_key, const char *secret, const char *region,
		     const char *amz_date, int expires_s)
{
	struct s3_header h = { "host", host };
	char date8[9], sig[65];
	char *cred, *cred_enc, *query, *creq, *url;

	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	cred = xasprintf("%s/%s/%s/%s/aws4_request", access_key, date8, region, S3_SERVICE);
	cred_enc = s3_uri_encode(cred, false);
	/* Already in sorted order: Algorithm < Credential < Date < Expires < SignedHeaders. */
	query = xasprintf("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s&X-Amz-Date=%s"
			  "&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
			  cred_enc, amz_date, expires_s);
	creq = s3_canonical_request("GET", uri, query, &h, 1, "UNSIGNED-PAYLOAD", NULL);
	s3_signature(secret, region, amz_date, creq, sig);
	url = xasprintf("%s%s?%s&X-Amz-Signature=%s", base, uri, query, sig);
	free(cred);
	free(cred_enc);
	free(query);
	free(creq);
	return url;
}

/*
 * Split "scheme://authority[/...]" into its scheme and authority.  0 or -1.
 */
static int split_endpoint(const char *url, char **scheme, char **authority)
{
	const char *p = strstr(url ? url : "", "://");
	size_t n;

	if (p == NULL || p == url)
		return -1;
	n = strcspn(p + 3, "/?#");
	if (n == 0)
		return -1;
	*scheme = xstrndup(url, (size_t)(p - url));
	*authority = xstrndup(p + 3, n);
	return 0;
}

bool s3_configured(const struct nc_config *cfg)
{
	return cfg->s3_endpoint && *cfg->s3_endpoint && cfg->s3_bucket && *cfg->s3_bucket &&
	       cfg->s3_access_key && *cfg->s3_access_key && cfg->s3_secret_key &&
	       *cfg->s3_secret_key;
}

char *s3_presign_get(const struct nc_config *cfg, const char *key, int ttl_s, int64_t now)
{
	const char *ep = cfg->s3_public_endpoint && *cfg->s3_public_endpoint
				 ? cfg->s3_public_endpoint : cfg->s3_endpoint;
	char *scheme = NULL, *auth = NULL, *bucket, *kenc, *uri, *base, *url;
	char amz_date[17];

	if (!s3_configured(cfg) || split_endpoint(ep, &scheme, &auth) != 0) {
		free(scheme);
		free(auth);
		return NULL;
	}
	bucket = s3_uri_encode(cfg->s3_bucket, false);
	kenc = s3_uri_encode(key, true);
	uri = xasprintf("/%s/%s", bucket, kenc);
	base = xasprintf("%s://%s", scheme, auth);
	s3_amz_date(now, amz_date);
	url = s3_presign_raw(base, auth, uri, cfg->s3_access_key, cfg->s3_secret_key,
			     cfg->s3_region ? cfg->s3_region : "us-east-1", amz_date, ttl_s);
	free(scheme);
	free(auth);
	free(bucket);
	free(kenc);
	free(uri);
	free(base);
	return url;
}

/* ---- client ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct s3_client *c = ud;
	size_t n = size * nmemb;

	if (!buf_append_capped(&c->body, &c->body_len, &c->body_cap, S3_MAX_RESPONSE, ptr, n)) {
		c->body_overflow = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Content-Length of HEAD answers (curl reports it too, but only as a double in old versions). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct s3_client *c = ud;
	size_t n = size * nmemb;
	static const char cl[] = "content-length:";

	if (n > sizeof cl - 1 && strncasecmp(ptr, cl, sizeof cl - 1) == 0) {
		char tmp[32];
		size_t k = n - (sizeof cl - 1);
		if (k >= sizeof tmp)
			k = sizeof tmp - 1;
		memcpy(tmp, ptr + sizeof cl - 1, k);
		tmp[k] = '\0';
		c->content_length = strtoll(tmp, NULL, 10);
	}
	return n;
}

struct s3_client *s3_client_new(const struct nc_config *cfg)
{
	struct s3_client *c;

	if (!s3_configured(cfg))
		return NULL;
	c = xcalloc(1, sizeof *c);
	c->cfg = cfg;
	if (split_endpoint(cfg->s3_endpoint, &c->scheme, &c->authority) != 0) {
		log_error("s3: S3_ENDPOINT must be scheme://host[:port]");
		free(c);
		return NULL;
	}
	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		log_error("s3: cannot create a curl handle");
		s3_client_free(c);
		return NULL;
	}
	return c;
}

void s3_client_free(struct s3_client *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->scheme);
	free(c->authority);
	free(c->body);
	free(c);
}

/* The <Code> of an S3 XML error body, or "" (copied into out). */
static void xml_code(const char *body, char *out, size_t outlen)
{
	const char *a = body ? strstr(body, "<Code>") : NULL;
	const char *b = a ? strstr(a, "</Code>") : NULL;
	size_t n = 0;

	if (a && b) {
		a += 6;
		n = (size_t)(b - a);
		if (n >= outlen)
			n = outlen - 1;
		for (size_t i = 0; i < n; i++)
			out[i] = (a[i] >= 0x20 && a[i] < 0x7f) ? a[i] : '?';
	}
	out[n] = '\0';
}

/*
 * One signed request.  key NULL = the bucket itself; query = canonical query
 * string (sorted, encoded) or NULL.  Returns NC_OK for 2xx, NC_ENOTFOUND for
 * 404 when allow_404, NC_ESTORAGE otherwise (err set).  The body of the
 * answer is in c->body / c->body_len.
 */
static enum nc_err s3_request(struct s3_client *c, const char *method, const char *key,
			      const char *query, const void *data, size_t len,
			      const char *content_type, bool allow_404, long *status_out,
			      struct nc_error *err)
{
	const struct nc_config *cfg = c->cfg;
	const char *region = cfg->s3_region ? cfg->s3_region : "us-east-1";
	struct s3_header hd[S3_MAX_HEADERS];
	size_t nh = 0;
	char amz_date[17], payload[65], sig[65], code[64];
	char *bucket = s3_uri_encode(cfg->s3_bucket, false);
	char *kenc = key ? s3_uri_encode(key, true) : xstrdup("");
	char *host, *uri, *url, *creq, *signed_h = NULL, *line;
	struct curl_slist *hl = NULL;
	long http = 0;
	CURLcode rc;
	enum nc_err res;

	if (cfg->s3_force_path_style) {
		host = xstrdup(c->authority);
		uri = xasprintf("/%s/%s", bucket, kenc);
	} else {
		host = xasprintf("%s.%s", cfg->s3_bucket, c->authority);
		uri = xasprintf("/%s", kenc);
	}
	url = xasprintf("%s://%s%s%s%s", c->scheme, host, uri, query ? "?" : "", query ? query : "");
	s3_amz_date(now_unix(), amz_date);
	if (data && len)
		s3_sha256_hex(data, len, payload);
	else
		memcpy(payload, S3_EMPTY_SHA256, sizeof payload);
	hd[nh++] = (struct s3_header){ "host", host };
	hd[nh++] = (struct s3_header){ "x-amz-content-sha256", payload };
	hd[nh++] = (struct s3_header){ "x-amz-date", amz_date };
	if (strcmp(method, "PUT") == 0 && cfg->s3_sse && *cfg->s3_sse)
		hd[nh++] = (struct s3_header){ "x-amz-server-side-encryption", cfg->s3_sse };
	if (c->copy_source != NULL) {
		hd[nh++] = (struct s3_header){ "x-amz-copy-source", c->copy_source };
		/* REPLACE: S3 refuses an in-place COPY that changes "nothing" it counts */
		hd[nh++] = (struct s3_header){ "x-amz-metadata-directive", "REPLACE" };
	}
	creq = s3_canonical_request(method, uri, query, hd, nh, payload, &signed_h);
	s3_signature(cfg->s3_secret_key, region, amz_date, creq, sig);

	for (size_t i = 0; i < nh; i++) {
		line = xasprintf("%s: %s", hd[i].name, hd[i].value);
		hl = curl_slist_append(hl, line);
		free(line);
	}
	line = xasprintf("Authorization: AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
			 "SignedHeaders=%s, Signature=%s",
			 cfg->s3_access_key, amz_date, region, S3_SERVICE, signed_h, sig);
	hl = curl_slist_append(hl, line);
	free(line);
	hl = curl_slist_append(hl, "Expect:");
	if (content_type) {
		line = xasprintf("Content-Type: %s", content_type);
		hl = curl_slist_append(hl, line);
		free(line);
	}

	/* Reset keeps the connection cache, so keep-alive survives between calls. */
	curl_easy_reset(c->curl);
	c->body_len = 0;
	c->body_overflow = false;
	c->content_length = -1;
	c->errbuf[0] = '\0';
	if (c->body)
		c->body[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, S3_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, S3_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "nchat-rtc");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hl);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data ? (const char *)data : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(c->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
	if (status_out)
		*status_out = http;

	/*
	 * The storage's own answer (curl's text with host names, the S3 error
	 * code) goes to the log; the caller's error carries a fixed message.
	 */
	if (rc != CURLE_OK) {
		log_warn("s3: %s %s: storage unreachable: %s", method, key ? key : "(bucket)",
			 c->body_overflow ? "response too large"
					  : (c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc)));
		res = err_set(err, NC_ESTORAGE, "storage is unavailable");
	} else if (http >= 200 && http < 300) {
		res = NC_OK;
	} else if (http == 404 && allow_404) {
		res = err_set(err, NC_ENOTFOUND, "object not found");
	} else {
		xml_code(c->body, code, sizeof code);
		log_warn("s3: %s %s: storage answered %ld%s%s", method, key ? key : "(bucket)", http,
			 code[0] ? " " : "", code);
		res = err_set(err, NC_ESTORAGE, "storage refused the request");
	}
	curl_slist_free_all(hl);
	free(bucket);
	free(kenc);
	free(host);
	free(uri);
	free(url);
	free(creq);
	free(signed_h);
	return res;
}

/*
 * Copy an object onto itself with x-amz-server-side-encryption set: how an
 * object someone else uploaded (LiveKit Egress cannot ask for encryption)
 * becomes encrypted at rest.  No-op unless S3_SSE is configured.
 */
enum nc_err s3_encrypt_in_place(struct s3_client *c, const char *key, struct nc_error *err)
{
	char *bucket, *kenc, *src;
	size_t kl = strlen(key);
	const char *ctype = kl > 4 && strcmp(key + kl - 4, ".ogg") == 0 ? "audio/ogg" : "video/mp4";
	enum nc_err e;

	if (c->cfg->s3_sse == NULL || *c->cfg->s3_sse == '\0')
		return NC_OK;
	bucket = s3_uri_encode(c->cfg->s3_bucket, false);
	kenc = s3_uri_encode(key, true);
	src = xasprintf("/%s/%s", bucket, kenc);
	c->copy_source = src;
	e = s3_request(c, "PUT", key, NULL, NULL, 0, ctype, false, NULL, err);
	c->copy_source = NULL;
	free(src);
	free(kenc);
	free(bucket);
	return e;
}

enum nc_err s3_put(struct s3_client *c, const char *key, const void *data, size_t len,
		   const char *content_type, struct nc_error *err)
{
	return s3_request(c, "PUT", key, NULL, data, len,
			  content_type ? content_type : "application/octet-stream", false, NULL,
			  err);
}

enum nc_err s3_get(struct s3_client *c, const char *key, char **data, size_t *len,
		   struct nc_error *err)
{
	enum nc_err e = s3_request(c, "GET", key, NULL, NULL, 0, NULL, true, NULL, err);

	if (e != NC_OK)
		return e;
	*data = xmalloc(c->body_len + 1);
	memcpy(*data, c->body ? c->body : "", c->body_len);
	(*data)[c->body_len] = '\0';
	*len = c->body_len;
	return NC_OK;
}

enum nc_err s3_head(struct s3_client *c, const char *key, int64_t *size, struct nc_error *err)
{
	enum nc_err e = s3_request(c, "HEAD", key, NULL, NULL, 0, NULL, true, NULL, err);

	if (e == NC_OK && size)
		*size = c->content_length;
	return e;
}

enum nc_err s3_delete(struct s3_client *c, const char *key, struct nc_error *err)
{
	return s3_request(c, "DELETE", key, NULL, NULL, 0, NULL, true, NULL, err);
}

void s3_list_page_free(struct s3_list_page *p)
{
	for (size_t i = 0; i < p->n_keys; i++)
		free(p->keys[i]);
	free(p->keys);
	free(p->next_token);
	memset(p, 0, sizeof *p);
}

/* Decode the five XML entities (and numeric ones) of a text node. */
static char *xml_text(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n;) {
		if (s[i] != '&') {
			*o++ = s[i++];
			continue;
		}
		if (strncmp(s + i, "&amp;", 5) == 0) { *o++ = '&'; i += 5; }
		else if (strncmp(s + i, "&lt;", 4) == 0) { *o++ = '<'; i += 4; }
		else if (strncmp(s + i, "&gt;", 4) == 0) { *o++ = '>'; i += 4; }
		else if (strncmp(s + i, "&quot;", 6) == 0) { *o++ = '"'; i += 6; }
		else if (strncmp(s + i, "&apos;", 6) == 0) { *o++ = '\''; i += 6; }
		else if (s[i + 1] == '#') {
			char *end;
			long v = (s[i + 2] == 'x') ? strtol(s + i + 3, &end, 16)
						   : strtol(s + i + 2, &end, 10);
			if (*end == ';' && v > 0 && v < 128) {
				*o++ = (char)v;
				i = (size_t)(end - s) + 1;
			} else {
				*o++ = s[i++];
			}
		} else {
			*o++ = s[i++];
		}
	}
	*o = '\0';
	return out;
}

/* The text of the first <tag>...</tag> at or after p, or NULL. *after = past it. */
static char *xml_next(const char *p, const char *tag, const char **after)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	a = strstr(p, open);
	if (a == NULL)
		return NULL;
	a += strlen(open);
	b = strstr(a, close);
	if (b == NULL)
		return NULL;
	if (after)
		*after = b + strlen(close);
	return xml_text(a, (size_t)(b - a));
}

enum nc_err s3_list(struct s3_client *c, const char *prefix, const char *token, int max_keys,
		    struct s3_list_page *out, struct nc_error *err)
{
	char *pfx = s3_uri_encode(prefix ? prefix : "", false);
	char *tok = token ? s3_uri_encode(token, false) : NULL;
	char *query, *trunc;
	const char *p;
	size_t cap = 0;
	enum nc_err e;

	memset(out, 0, sizeof *out);
	if (max_keys < 1 || max_keys > 1000)
		max_keys = 1000;
	/* Sorted: continuation-token < list-type < max-keys < prefix. */
	query = xasprintf("%s%s%slist-type=2&max-keys=%d&prefix=%s", tok ? "continuation-token=" : "",
			  tok ? tok : "", tok ? "&" : "", max_keys, pfx);
	e = s3_request(c, "GET", NULL, query, NULL, 0, NULL, false, NULL, err);
	free(query);
	free(pfx);
	free(tok);
	if (e != NC_OK)
		return e;
	p = c->body ? c->body : "";
	if (strstr(p, "<ListBucketResult") == NULL)
		return err_set(err, NC_ESTORAGE, "storage answered an unexpected list body");
	for (;;) {
		const char *contents = strstr(p, "<Contents>"), *after;
		char *key;
		if (contents == NULL)
			break;
		key = xml_next(contents, "Key", &after);
		if (key == NULL)
			break;
		if (out->n_keys == cap) {
			cap = cap ? 2 * cap : 64;
			out->keys = xrealloc(out->keys, cap * sizeof *out->keys);
		}
		out->keys[out->n_keys++] = key;
		p = after;
	}
	trunc = xml_next(c->body, "IsTruncated", NULL);
	if (trunc && strcmp(trunc, "true") == 0)
		out->next_token = xml_next(c->body, "NextContinuationToken", NULL);
	free(trunc);
	return NC_OK;
}
