/*
 * webhook_verify.c - the signature check of LiveKit webhooks (PROTOCOL.md §6):
 * a JWT in the Authorization header, HS256 with the secret of the API key
 * named by `iss`, whose `sha256` claim is the base64 SHA-256 of the body.
 * Pure CPU, no I/O: fuzzed alone (test/fuzz/fuzz_webhook.c).
 */
#include "livekit/webhook_verify.h"
#include "core/b64.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decode one base64url JWT segment holding a JSON object. */
static json_t *jwt_segment_json(const char *seg, size_t len)
{
	unsigned char *buf;
	long n;
	json_t *j;

	if (len == 0 || len > 8192)
		return NULL;
	buf = xmalloc(len + 4);
	n = b64url_decode(seg, len, buf);
	j = n > 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(buf);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A NumericDate claim (JSON integer or real); false if absent or not a number. */
static bool claim_time(json_t *claims, const char *key, int64_t *out)
{
	json_t *v = json_object_get(claims, key);
	/* +-2^53: a larger real has no int64_t value (undefined behaviour) and a
	 * huge integer would overflow exp + leeway (found by test/fuzz). */
	const int64_t lim = INT64_C(1) << 53;

	if (json_is_integer(v) && json_integer_value(v) >= -lim && json_integer_value(v) <= lim) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= (double)-lim && json_real_value(v) <= (double)lim) {
		*out = (int64_t)json_real_value(v);
		return true;
	}
	return false;
}

static int refuse(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return -1;
}

int webhook_verify(const struct cfg_keypair *keys, size_t n_keys, int leeway_s,
		   const char *auth, const char *body, size_t body_len, int64_t now,
		   char *why, size_t whylen)
{
	const char *dot1, *dot2;
	json_t *hdr = NULL, *claims = NULL;
	const char *alg, *iss, *sum;
	const struct cfg_keypair *kp = NULL;
	/* sig: b64url_decode of up to 86 chars writes 3 * (86 + 3) / 4 = 66 bytes. */
	unsigned char mac[EVP_MAX_MD_SIZE], sig[66], digest[SHA256_DIGEST_LENGTH];
	unsigned int mac_len = 0;
	char expect[64];
	long sig_len;
	int64_t exp, nbf;
	int rc = -1;

	if (auth == NULL || *auth == '\0')
		return refuse(why, whylen, "no Authorization header");
	if (strncasecmp(auth, "Bearer ", 7) == 0)
		return refuse(why, whylen, "Authorization must be the raw token (no Bearer)");
	dot1 = strchr(auth, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
		return refuse(why, whylen, "malformed token");
	hdr = jwt_segment_json(auth, (size_t)(dot1 - auth));
	claims = jwt_segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (hdr == NULL || claims == NULL) {
		refuse(why, whylen, "malformed token");
		goto out;
	}
	/* HS256 only: anything else (none, RS256, ...) is refused outright. */
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (alg == NULL || strcmp(alg, "HS256") != 0) {
		refuse(why, whylen, "token algorithm is not HS256");
		goto out;
	}
	iss = json_string_value(json_object_get(claims, "iss"));
	if (iss == NULL || *iss == '\0') {
		refuse(why, whylen, "token has no iss");
		goto out;
	}
	for (size_t i = 0; i < n_keys; i++)
		if (keys[i].key != NULL && strcmp(keys[i].key, iss) == 0) {
			kp = &keys[i];
			break;
		}
	if (kp == NULL || kp->secret == NULL) {
		refuse(why, whylen, "unknown API key");
		goto out;
	}
	if (HMAC(EVP_sha256(), kp->secret, (int)strlen(kp->secret),
		 (const unsigned char *)auth, (size_t)(dot2 - auth), mac, &mac_len) == NULL) {
		refuse(why, whylen, "cannot compute HMAC");
		goto out;
	}
	if (strlen(dot2 + 1) > 86) {
		refuse(why, whylen, "bad signature");
		goto out;
	}
	sig_len = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
	if (sig_len != (long)mac_len || CRYPTO_memcmp(sig, mac, mac_len) != 0) {
		refuse(why, whylen, "bad signature");
		goto out;
	}
	if (!claim_time(claims, "exp", &exp)) {
		refuse(why, whylen, "token has no exp");
		goto out;
	}
	if (now > exp + leeway_s) {
		refuse(why, whylen, "token expired");
		goto out;
	}
	if (claim_time(claims, "nbf", &nbf) && now + leeway_s < nbf) {
		refuse(why, whylen, "token not yet valid");
		goto out;
	}
	sum = json_string_value(json_object_get(claims, "sha256"));
	if (sum == NULL) {
		refuse(why, whylen, "token has no sha256 claim");
		goto out;
	}
	SHA256((const unsigned char *)(body ? body : ""), body_len, digest);
	EVP_EncodeBlock((unsigned char *)expect, digest, SHA256_DIGEST_LENGTH);
	if (strlen(sum) != strlen(expect) || CRYPTO_memcmp(sum, expect, strlen(expect)) != 0) {
		refuse(why, whylen, "body does not match the sha256 claim");
		goto out;
	}
	rc = 0;
out:
	json_decref(hdr);
	json_decref(claims);
	return rc;
}
