/* Unit tests for auth.c: HS256/RS256 user tokens, claims, expiry, algorithm confusion. */
#include "http/auth.h"
#include "core/config.h"

#include <check.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UID "0b9e6f2a-5f0c-4d8e-9a57-3c1d2e4f5a6b"
#define NOW 1800000000

static char *sign(jwt_alg_t alg, const char *key, size_t keylen, const char *claims_json)
{
	jwt_t *jwt = NULL;
	char *out;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, claims_json), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen), 0);
	out = jwt_encode_str(jwt);
	jwt_free(jwt);
	ck_assert_ptr_nonnull(out);
	return out;
}

static struct nc_config hs_cfg(void)
{
	struct nc_config c;

	memset(&c, 0, sizeof(c));
	c.auth_alg = CFG_AUTH_HS256;
	c.auth_key = "user-secret";
	c.auth_key_len = strlen(c.auth_key);
	c.auth_leeway_s = 30;
	return c;
}

static enum nc_err verify_hs(const char *claims, struct principal *p, struct nc_error *e)
{
	struct nc_config c = hs_cfg();
	char *tok = sign(JWT_ALG_HS256, "user-secret", 11, claims);
	enum nc_err rc = auth_verify_user(&c, tok, NOW, p, e);

	free(tok);
	return rc;
}

START_TEST(hs256_hasura_claims)
{
	struct principal p;
	struct nc_error e = {0};
	const char *claims = "{\"sub\":\"someone-else\",\"exp\":1800000100,"
			     "\"https://hasura.io/jwt/claims\":{\"x-hasura-user-id\":\"" UID "\","
			     "\"x-hasura-allowed-roles\":[\"user\",\"moderator\"],"
			     "\"x-hasura-default-role\":\"user\"}}";

	ck_assert_int_eq(verify_hs(claims, &p, &e), NC_OK);
	ck_assert_str_eq(p.user_id, UID);
	ck_assert_uint_eq(p.roles, ROLE_USER | ROLE_MODERATOR);
	ck_assert(auth_is_staff(&p));
	ck_assert_int_eq(p.exp, 1800000100);
}
END_TEST

START_TEST(sub_fallback_and_stringified_claims)
{
	struct principal p;
	struct nc_error e = {0};

	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1800000100}", &p, &e), NC_OK);
	ck_assert_str_eq(p.user_id, UID);
	ck_assert_uint_eq(p.roles, ROLE_USER);
	ck_assert_int_eq(verify_hs("{\"exp\":1800000100,\"https://hasura.io/jwt/claims\":"
				   "\"{\\\"x-hasura-user-id\\\":\\\"" UID "\\\","
				   "\\\"x-hasura-allowed-roles\\\":[\\\"admin\\\"],"
				   "\\\"x-hasura-default-role\\\":\\\"admin\\\"}\"}",
				   &p, &e),
			 NC_OK);
	ck_assert_uint_eq(p.roles, ROLE_ADMIN);
}
END_TEST

/* Hasura's rule: the default role is one of the allowed roles, on every path. */
START_TEST(default_role_must_be_allowed)
{
	struct principal p;
	struct nc_error e = {0};
#define HC(inner) "{\"exp\":1800000100,\"https://hasura.io/jwt/claims\":{\"x-hasura-user-id\":\"" \
		UID "\"" inner "}}"
	/* the token: allowed user, default admin */
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"user\"],"
				      "\"x-hasura-default-role\":\"admin\""), &p, &e), NC_EUNAUTH);
	ck_assert_ptr_nonnull(strstr(e.msg, "default-role"));
	/* a default role and no allowed roles at all */
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-default-role\":\"admin\""), &p, &e), NC_EUNAUTH);
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[],"
				      "\"x-hasura-default-role\":\"moderator\""), &p, &e), NC_EUNAUTH);
	/* not a list, not strings, a default that is not a string */
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":\"admin\","
				      "\"x-hasura-default-role\":\"admin\""), &p, &e), NC_EUNAUTH);
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"user\",7],"
				      "\"x-hasura-default-role\":\"user\""), &p, &e), NC_EUNAUTH);
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"admin\"],"
				      "\"x-hasura-default-role\":[\"admin\"]"), &p, &e), NC_EUNAUTH);
	/* the comparison is exact */
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"user\"],"
				      "\"x-hasura-default-role\":\"User\""), &p, &e), NC_EUNAUTH);
	/* a Hasura claim that is neither an object nor a JSON object string */
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1800000100,"
				   "\"https://hasura.io/jwt/claims\":\"{not json\"}", &p, &e), NC_EUNAUTH);
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1800000100,"
				   "\"https://hasura.io/jwt/claims\":[1]}", &p, &e), NC_EUNAUTH);
	/* the same rule in the stringified form */
	ck_assert_int_eq(verify_hs("{\"exp\":1800000100,\"https://hasura.io/jwt/claims\":"
				   "\"{\\\"x-hasura-user-id\\\":\\\"" UID "\\\","
				   "\\\"x-hasura-allowed-roles\\\":[\\\"user\\\"],"
				   "\\\"x-hasura-default-role\\\":\\\"admin\\\"}\"}", &p, &e),
			 NC_EUNAUTH);
	/* fine: default among the allowed; unknown roles are held by nobody here */
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"user\",\"admin\"],"
				      "\"x-hasura-default-role\":\"user\""), &p, &e), NC_OK);
	ck_assert_uint_eq(p.roles, ROLE_USER | ROLE_ADMIN);
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"editor\"],"
				      "\"x-hasura-default-role\":\"editor\""), &p, &e), NC_OK);
	ck_assert_uint_eq(p.roles, ROLE_USER);
	ck_assert_int_eq(verify_hs(HC(",\"x-hasura-allowed-roles\":[\"moderator\"]"), &p, &e), NC_OK);
	ck_assert_uint_eq(p.roles, ROLE_MODERATOR);
#undef HC
}
END_TEST

START_TEST(time_claims)
{
	struct principal p;
	struct nc_error e = {0};

	/* expired beyond leeway */
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1799999960}", &p, &e), NC_EUNAUTH);
	ck_assert_str_eq(e.msg, "token expired");
	/* expired within leeway */
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1799999990}", &p, &e), NC_OK);
	/* not yet valid */
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\",\"exp\":1800009999,\"nbf\":1800000100}",
				   &p, &e),
			 NC_EUNAUTH);
	ck_assert_str_eq(e.msg, "token not yet valid");
	/* no exp at all */
	ck_assert_int_eq(verify_hs("{\"sub\":\"" UID "\"}", &p, &e), NC_EUNAUTH);
	ck_assert_str_eq(e.msg, "token has no exp");
	/* user id that is not a UUID */
	ck_assert_int_eq(verify_hs("{\"sub\":\"alice\",\"exp\":1800000100}", &p, &e), NC_EUNAUTH);
}
END_TEST

START_TEST(bad_signatures)
{
	struct nc_config c = hs_cfg();
	struct principal p;
	struct nc_error e = {0};
	char *tok = sign(JWT_ALG_HS256, "other-secret", 12, "{\"sub\":\"" UID "\",\"exp\":1800000100}");
	char *dot;

	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &p, &e), NC_EUNAUTH);
	free(tok);
	/* alg none, unsigned */
	ck_assert_int_eq(auth_verify_user(&c,
					  "eyJhbGciOiJub25lIn0.eyJzdWIiOiIwYjllNmYyYS01ZjBjLTRkOGUtOWE1Ny0zYzFkMmU0ZjVhNmIiLCJleHAiOjE4MDAwMDAxMDB9.",
					  NOW, &p, &e),
			 NC_EUNAUTH);
	/* HS512 with the right secret is still refused: only HS256 is configured */
	tok = sign(JWT_ALG_HS512, "user-secret", 11, "{\"sub\":\"" UID "\",\"exp\":1800000100}");
	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &p, &e), NC_EUNAUTH);
	/* tampered payload */
	dot = strchr(tok, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &p, &e), NC_EUNAUTH);
	free(tok);
	ck_assert_int_eq(auth_verify_user(&c, "garbage", NOW, &p, &e), NC_EUNAUTH);
	ck_assert_int_eq(auth_verify_user(&c, "", NOW, &p, &e), NC_EUNAUTH);
}
END_TEST

/* BIO memory is not NUL-terminated: copy exactly n bytes. */
static char *copy_mem(const char *p, long n)
{
	char *out = malloc((size_t)n + 1);

	ck_assert_ptr_nonnull(out);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return out;
}

static void rsa_pems(char **priv, char **pub)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem());
	char *p;
	long n;

	ck_assert_ptr_nonnull(k);
	ck_assert(PEM_write_bio_PrivateKey(b1, k, NULL, NULL, 0, NULL, NULL));
	ck_assert(PEM_write_bio_PUBKEY(b2, k));
	n = BIO_get_mem_data(b1, &p);
	*priv = copy_mem(p, n);
	n = BIO_get_mem_data(b2, &p);
	*pub = copy_mem(p, n);
	BIO_free(b1);
	BIO_free(b2);
	EVP_PKEY_free(k);
}

START_TEST(rs256_and_algorithm_confusion)
{
	struct nc_config c;
	struct principal p;
	struct nc_error e = {0};
	char *priv, *pub, *tok;
	const char *claims = "{\"sub\":\"" UID "\",\"exp\":1800000100}";

	rsa_pems(&priv, &pub);
	memset(&c, 0, sizeof(c));
	c.auth_alg = CFG_AUTH_RS256;
	c.auth_key = pub;
	c.auth_key_len = strlen(pub);
	c.auth_leeway_s = 30;
	tok = sign(JWT_ALG_RS256, priv, strlen(priv), claims);
	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &p, &e), NC_OK);
	ck_assert_str_eq(p.user_id, UID);
	free(tok);
	/* HS256 "signed" with the public key text must not pass in an RS256 deployment */
	tok = sign(JWT_ALG_HS256, pub, strlen(pub), claims);
	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &p, &e), NC_EUNAUTH);
	free(tok);
	free(priv);
	free(pub);
}
END_TEST

START_TEST(hasura_secret_json)
{
	enum cfg_auth_alg alg;
	char *key = NULL, err[128];
	size_t len;

	ck_assert_int_eq(auth_parse_hasura_secret("{\"type\":\"HS256\",\"key\":\"abc\"}", &alg, &key,
						  &len, err, sizeof(err)),
			 0);
	ck_assert_int_eq(alg, CFG_AUTH_HS256);
	ck_assert_str_eq(key, "abc");
	ck_assert_uint_eq(len, 3);
	free(key);
	ck_assert_int_ne(auth_parse_hasura_secret("{\"type\":\"RS256\",\"key\":\"notpem\"}", &alg,
						  &key, &len, err, sizeof(err)),
			 0);
	ck_assert_int_ne(auth_parse_hasura_secret("not json", &alg, &key, &len, err, sizeof(err)), 0);
	ck_assert_int_ne(auth_parse_hasura_secret("{\"type\":\"HS256\"}", &alg, &key, &len, err,
						  sizeof(err)),
			 0);
}
END_TEST

/*
 * The per-thread cache: a hit gives what verification gave, expiry and nbf
 * still apply at the time of each use, and only a byte-equal token under the
 * same configuration hits (a changed signature, another key: verified anew).
 */
START_TEST(cache_same_outcome)
{
	struct nc_config c = hs_cfg(), other = hs_cfg();
	struct principal p, q;
	struct nc_error e = {0};
	char *tok = sign(JWT_ALG_HS256, "user-secret", 11,
			 "{\"nbf\":1800000000,\"exp\":1800000100,"
			 "\"https://hasura.io/jwt/claims\":{\"x-hasura-user-id\":\"" UID "\","
			 "\"x-hasura-allowed-roles\":[\"admin\"],\"x-hasura-default-role\":\"admin\"}}");
	char *bad = strdup(tok);
	size_t n = strlen(bad);

	ck_assert_ptr_nonnull(bad);
	bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(auth_verify_cached(&c, tok, NOW, &p, &e), NC_OK);
	for (int i = 0; i < 3; i++) {
		memset(&q, 0, sizeof(q));
		ck_assert_int_eq(auth_verify_cached(&c, tok, NOW + 50, &q, &e), NC_OK);
		ck_assert_mem_eq(&p, &q, sizeof(p));
	}
	ck_assert_str_eq(q.user_id, UID);
	ck_assert_uint_eq(q.roles, ROLE_ADMIN);
	/* expiry at the time of use, with the leeway (30 s) */
	ck_assert_int_eq(auth_verify_cached(&c, tok, 1800000130, &q, &e), NC_OK);
	ck_assert_int_eq(auth_verify_cached(&c, tok, 1800000131, &q, &e), NC_EUNAUTH);
	ck_assert_str_eq(e.msg, "token expired");
	ck_assert_int_eq(auth_verify_user(&c, tok, 1800000131, &q, &e), NC_EUNAUTH);
	/* nbf too (a clock stepped back) */
	ck_assert_int_eq(auth_verify_cached(&c, tok, 1800000000 - 31, &q, &e), NC_EUNAUTH);
	ck_assert_str_eq(e.msg, "token not yet valid");
	ck_assert_int_eq(auth_verify_cached(&c, tok, NOW, &q, &e), NC_OK);
	/* a tampered signature, and the right token under another key */
	ck_assert_int_eq(auth_verify_cached(&c, bad, NOW, &q, &e), NC_EUNAUTH);
	other.auth_key = "another-secret";
	other.auth_key_len = strlen(other.auth_key);
	ck_assert_int_eq(auth_verify_cached(&other, tok, NOW, &q, &e), NC_EUNAUTH);
	/* failures are not stored: the good token still hits, garbage still fails */
	ck_assert_int_eq(auth_verify_cached(&c, tok, NOW, &q, &e), NC_OK);
	ck_assert_int_eq(auth_verify_cached(&c, "garbage", NOW, &q, &e), NC_EUNAUTH);
	ck_assert_int_eq(auth_verify_cached(&c, "", NOW, &q, &e), NC_EUNAUTH);
	/*
	 * A hit does not verify again (the configuration is fixed for a
	 * process's life, so the cache keys on its address): with the key
	 * swapped in place the cached token still passes, while a verification
	 * refuses it, and after a release so does the cache.
	 */
	c.auth_key = "another-secret";
	c.auth_key_len = strlen(c.auth_key);
	ck_assert_int_eq(auth_verify_cached(&c, tok, NOW, &q, &e), NC_OK);
	ck_assert_int_eq(auth_verify_user(&c, tok, NOW, &q, &e), NC_EUNAUTH);
	auth_cache_release();
	ck_assert_int_eq(auth_verify_cached(&c, tok, NOW, &q, &e), NC_EUNAUTH);
	auth_cache_release();
	free(bad);
	free(tok);
}
END_TEST

/*
 * The workers share the cache: threads verifying one set of tokens at once
 * (tokens of different users, hits and misses, slots replaced while others
 * read them) always get the principal of the token they passed.
 */
#define SHARED_USERS 48
#define SHARED_THREADS 4

static char *shared_tok[SHARED_USERS];
static char shared_uid[SHARED_USERS][37];
static struct nc_config shared_cfg;

static void *shared_worker(void *arg)
{
	long bad = 0, t = (long)(intptr_t)arg;

	for (int i = 0; i < 3000; i++) {
		int k = (int)((i * 7 + t * 13) % SHARED_USERS);
		struct principal q;
		struct nc_error e = {0};

		if (auth_verify_cached(&shared_cfg, shared_tok[k], NOW, &q, &e) != NC_OK ||
		    strcmp(q.user_id, shared_uid[k]) != 0)
			bad++;
	}
	return (void *)(intptr_t)bad;
}

START_TEST(cache_shared_by_threads)
{
	pthread_t th[SHARED_THREADS];
	long bad = 0;

	shared_cfg = hs_cfg();
	auth_cache_release();
	for (int k = 0; k < SHARED_USERS; k++) {
		char claims[256];

		snprintf(shared_uid[k], sizeof(shared_uid[k]), "0b9e6f2a-5f0c-4d8e-9a57-%012d", k);
		snprintf(claims, sizeof(claims), "{\"exp\":1800000100,\"https://hasura.io/jwt/claims\":"
			 "{\"x-hasura-user-id\":\"%s\",\"x-hasura-allowed-roles\":[\"user\"],"
			 "\"x-hasura-default-role\":\"user\"}}", shared_uid[k]);
		shared_tok[k] = sign(JWT_ALG_HS256, "user-secret", 11, claims);
	}
	for (long t = 0; t < SHARED_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, shared_worker, (void *)(intptr_t)t), 0);
	for (int t = 0; t < SHARED_THREADS; t++) {
		void *r;

		ck_assert_int_eq(pthread_join(th[t], &r), 0);
		bad += (long)(intptr_t)r;
	}
	ck_assert_int_eq(bad, 0);
	/* one thread's entries serve another: a key swapped in place still passes them */
	shared_cfg.auth_key = "another-secret";
	shared_cfg.auth_key_len = strlen(shared_cfg.auth_key);
	{
		struct principal q;
		struct nc_error e = {0};
		int hits = 0;

		for (int k = 0; k < SHARED_USERS; k++)
			hits += auth_verify_cached(&shared_cfg, shared_tok[k], NOW, &q, &e) == NC_OK;
		ck_assert_int_ge(hits, SHARED_USERS - 2);
	}
	auth_cache_release();
	for (int k = 0; k < SHARED_USERS; k++)
		free(shared_tok[k]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("verify");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hs256_hasura_claims);
	tcase_add_test(tc, sub_fallback_and_stringified_claims);
	tcase_add_test(tc, default_role_must_be_allowed);
	tcase_add_test(tc, time_claims);
	tcase_add_test(tc, bad_signatures);
	tcase_add_test(tc, rs256_and_algorithm_confusion);
	tcase_add_test(tc, hasura_secret_json);
	tcase_add_test(tc, cache_same_outcome);
	tcase_add_test(tc, cache_shared_by_threads);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
