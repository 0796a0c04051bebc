/*
 * auth.c - verification of the chat's user JWTs with libjwt.
 *
 * libjwt 1.x verifies with whatever algorithm the token's header names, so
 * the header is checked against the configured algorithm after decoding and
 * anything else is refused: an RS256 deployment must never accept an HS256
 * token "signed" with its public key.
 */
#include "http/auth.h"
#include "core/kvcache.h"
#include "core/uuid.h"
#include "core/log.h"

#include <ctype.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HASURA_NS "https://hasura.io/jwt/claims"
#define MAX_TOKEN_LEN 8192

static unsigned role_bit(const char *name)
{
	if (name == NULL)
		return 0;
	if (strcmp(name, "admin") == 0)
		return ROLE_ADMIN;
	if (strcmp(name, "moderator") == 0)
		return ROLE_MODERATOR;
	if (strcmp(name, "user") == 0)
		return ROLE_USER;
	return 0;
}

/*
 * The Hasura namespace may be an object or (claims_format stringified_json) a
 * string.  *bad is set when the claim is there but is neither.
 */
static json_t *hasura_claims(json_t *claims, json_t **owned, bool *bad)
{
	json_t *ns = json_object_get(claims, HASURA_NS);

	*owned = NULL;
	*bad = false;
	if (ns == NULL)
		return NULL;
	if (json_is_object(ns))
		return ns;
	if (json_is_string(ns)) {
		*owned = json_loads(json_string_value(ns), 0, NULL);
		if (json_is_object(*owned))
			return *owned;
	}
	*bad = true;
	return NULL;
}

/*
 * Roles from the Hasura claims, by Hasura's own rule: x-hasura-allowed-roles
 * is a list of role names, and x-hasura-default-role (the role a request acts
 * as) must be one of them.  The principal holds every allowed role this
 * service knows.  -1 (err set) when the claims break the rule.
 */
static int hasura_roles(json_t *hc, unsigned *roles, struct nc_error *err)
{
	json_t *allowed = json_object_get(hc, "x-hasura-allowed-roles");
	json_t *def = json_object_get(hc, "x-hasura-default-role");
	bool def_allowed = false;
	size_t i;
	json_t *r;

	if (allowed != NULL && !json_is_array(allowed)) {
		err_set(err, NC_EUNAUTH, "x-hasura-allowed-roles must be a list of role names");
		return -1;
	}
	if (def != NULL && !json_is_string(def)) {
		err_set(err, NC_EUNAUTH, "x-hasura-default-role must be a role name");
		return -1;
	}
	json_array_foreach(allowed, i, r) {
		if (!json_is_string(r)) {
			err_set(err, NC_EUNAUTH, "x-hasura-allowed-roles must be a list of role names");
			return -1;
		}
		if (def != NULL && strcmp(json_string_value(r), json_string_value(def)) == 0)
			def_allowed = true;
		*roles |= role_bit(json_string_value(r));
	}
	if (def != NULL && !def_allowed) {
		err_set(err, NC_EUNAUTH, "x-hasura-default-role is not one of x-hasura-allowed-roles");
		return -1;
	}
	return 0;
}

#define NUMERIC_DATE_MAX (INT64_C(1) << 53)

/* Read an integer NumericDate claim; absent → 0 and *present false. */
static int numeric_claim(json_t *claims, const char *name, int64_t *out, bool *present)
{
	json_t *v = json_object_get(claims, name);

	*present = v != NULL;
	*out = 0;
	if (v == NULL)
		return 0;
	/*
	 * Bounded to +-2^53 (far past any real date): a larger real cannot be
	 * converted to int64_t without undefined behaviour, and a huge integer
	 * would overflow exp + leeway below.  Found by test/fuzz/fuzz_auth.
	 */
	if (json_is_integer(v) && json_integer_value(v) >= -NUMERIC_DATE_MAX &&
	    json_integer_value(v) <= NUMERIC_DATE_MAX) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= (double)-NUMERIC_DATE_MAX &&
	    json_real_value(v) <= (double)NUMERIC_DATE_MAX) {
		*out = (int64_t)json_real_value(v);
		return 0;
	}
	return -1;
}

/* A token without nbf. */
#define NBF_NONE INT64_MIN

/* exp and nbf against now, with the leeway: at verification and at every cache hit. */
static enum nc_err time_checks(const struct nc_config *cfg, int64_t exp, int64_t nbf, int64_t now,
			       struct nc_error *err)
{
	if (now > exp + cfg->auth_leeway_s)
		return err_set(err, NC_EUNAUTH, "token expired");
	if (nbf != NBF_NONE && now + cfg->auth_leeway_s < nbf)
		return err_set(err, NC_EUNAUTH, "token not yet valid");
	return NC_OK;
}

static enum nc_err check_claims(const struct nc_config *cfg, json_t *claims, int64_t now,
				struct principal *out, int64_t *nbf_out, struct nc_error *err)
{
	bool hc_bad;
	json_t *owned = NULL, *hc = hasura_claims(claims, &owned, &hc_bad);
	const char *uid = NULL;
	int64_t exp, nbf;
	bool has_exp, has_nbf;
	enum nc_err rc = NC_EUNAUTH;

	if (numeric_claim(claims, "exp", &exp, &has_exp) != 0 ||
	    numeric_claim(claims, "nbf", &nbf, &has_nbf) != 0) {
		err_set(err, NC_EUNAUTH, "token has malformed exp or nbf");
		goto out;
	}
	if (!has_exp) {
		err_set(err, NC_EUNAUTH, "token has no exp");
		goto out;
	}
	if (!has_nbf)
		nbf = NBF_NONE;
	if (time_checks(cfg, exp, nbf, now, err) != NC_OK)
		goto out;
	if (hc_bad) {
		err_set(err, NC_EUNAUTH, "token has malformed Hasura claims");
		goto out;
	}
	if (hc != NULL)
		uid = json_string_value(json_object_get(hc, "x-hasura-user-id"));
	if (uid == NULL)
		uid = json_string_value(json_object_get(claims, "sub"));
	if (uid == NULL || !is_uuid(uid)) {
		err_set(err, NC_EUNAUTH, "token has no valid user id");
		goto out;
	}
	memset(out, 0, sizeof(*out));
	uuid_lower(uid, out->user_id);
	out->exp = exp;
	*nbf_out = nbf;
	if (hc != NULL && hasura_roles(hc, &out->roles, err) != 0) {
		memset(out, 0, sizeof(*out));
		goto out;
	}
	if (out->roles == 0)
		out->roles = ROLE_USER;
	rc = NC_OK;
out:
	json_decref(owned);
	return rc;
}

static enum nc_err verify(const struct nc_config *cfg, const char *token, int64_t now,
			  struct principal *out, int64_t *nbf, struct nc_error *err)
{
	jwt_t *jwt = NULL;
	char *grants = NULL;
	json_t *claims = NULL;
	jwt_alg_t want;
	enum nc_err rc = NC_EUNAUTH;

	if (cfg->auth_alg == CFG_AUTH_NONE)
		return err_set(err, NC_EUNAUTH, "authentication is not configured");
	if (token == NULL || *token == '\0')
		return err_set(err, NC_EUNAUTH, "missing bearer token");
	if (strlen(token) > MAX_TOKEN_LEN)
		return err_set(err, NC_EUNAUTH, "token too long");
	want = cfg->auth_alg == CFG_AUTH_RS256 ? JWT_ALG_RS256 : JWT_ALG_HS256;
	if (jwt_decode(&jwt, token, (const unsigned char *)cfg->auth_key, (int)cfg->auth_key_len) != 0 ||
	    jwt == NULL) {
		err_set(err, NC_EUNAUTH, "invalid token");
		goto out;
	}
	if (jwt_get_alg(jwt) != want) {
		err_set(err, NC_EUNAUTH, "token algorithm not accepted");
		goto out;
	}
	grants = jwt_get_grants_json(jwt, NULL);
	claims = grants != NULL ? json_loads(grants, 0, NULL) : NULL;
	if (!json_is_object(claims)) {
		err_set(err, NC_EUNAUTH, "invalid token claims");
		goto out;
	}
	rc = check_claims(cfg, claims, now, out, nbf, err);
out:
	json_decref(claims);
	free(grants);
	jwt_free(jwt);
	return rc;
}

enum nc_err auth_verify_user(const struct nc_config *cfg, const char *token, int64_t now,
			     struct principal *out, struct nc_error *err)
{
	int64_t nbf;

	return verify(cfg, token, now, out, &nbf, err);
}

/* ---- the process's cache of verified tokens ---- */

/*
 * A browser sends the same token with every request until it is refreshed,
 * and verifying it costs more than the rest of a join's CPU outside libpq
 * (libjwt decodes it, HMACs or RSA-verifies it, and its claims are dumped
 * and parsed again).  So the process keeps the tokens it verified, in one
 * table that every worker shares (core/kvcache.h; a user's requests land on
 * any worker, and a table per worker held each token up to WORKERS times
 * and, with 512 users, hit about one time in eight): a hit is a token equal
 * byte for byte to one that passed verify() under the same configuration
 * (the key is the configuration's address, fixed for the process's life,
 * then the token), and only the time checks are repeated (exp and nbf with
 * the leeway, so a cached token expires exactly when it would have).  Only
 * successes are stored, so garbage cannot evict anything.  Nothing else in a
 * token can change its outcome: the claims are covered by the signature.
 */
struct verified {
	struct principal p;
	int64_t nbf;
};

static struct kvcache verified_tokens = KVCACHE_INIT;

enum nc_err auth_verify_cached(const struct nc_config *cfg, const char *token, int64_t now,
			       struct principal *out, struct nc_error *err)
{
	char key[sizeof(cfg) + MAX_TOKEN_LEN]; /* the configuration's address, then the token */
	struct verified v;
	size_t len, vlen;
	enum nc_err rc;

	if (token == NULL || cfg->auth_alg == CFG_AUTH_NONE)
		return auth_verify_user(cfg, token, now, out, err);
	len = strnlen(token, MAX_TOKEN_LEN + 1);
	if (len == 0 || len > MAX_TOKEN_LEN)
		return auth_verify_user(cfg, token, now, out, err);
	memcpy(key, &cfg, sizeof(cfg));
	memcpy(key + sizeof(cfg), token, len);
	if (kvcache_get(&verified_tokens, key, sizeof(cfg) + len, &v, sizeof(v), &vlen) &&
	    vlen == sizeof(v)) {
		rc = time_checks(cfg, v.p.exp, v.nbf, now, err);
		if (rc == NC_OK)
			*out = v.p;
		return rc;
	}
	memset(&v, 0, sizeof(v));
	rc = verify(cfg, token, now, out, &v.nbf, err);
	if (rc == NC_OK) {
		v.p = *out;
		kvcache_put(&verified_tokens, key, sizeof(cfg) + len, &v, sizeof(v));
	}
	return rc;
}

void auth_cache_release(void)
{
	kvcache_clear(&verified_tokens);
}
