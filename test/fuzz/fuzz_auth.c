/*
 * fuzz_auth.c - libFuzzer target for the user-token parser auth_verify_user.
 *
 * Every authenticated request passes its Bearer token through
 * auth_verify_user, so it sees arbitrary attacker text.  The input is split
 * on NUL bytes into: mode, JWT header JSON, claims JSON (or a raw token).
 *   'r' raw token, HS256 config       'R' raw token, RS256 config
 *   'h' token signed with the HS256 secret (reaches the claim checks)
 *   's' token signed with the RS256 private key
 *   'c' algorithm confusion: HS256-signed with the RS256 *public* PEM as the
 *       HMAC key, verified under the RS256 config: must never be accepted.
 * Invariants: an accepted token yields a canonical lower-case UUID, roles
 * include nothing unknown, and exp is not in the past beyond the leeway.
 */
#include "http/auth.h"
#include "core/uuid.h"
#include "fuzz_util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s\n", #c); abort(); } } while (0)

static struct nc_config hs_cfg, rs_cfg;
static EVP_PKEY *rsa_key;
static char hs_secret[] = "nchat-test-user-secret";

static void init_once(void)
{
	BIO *bio;
	char *pem;
	long n;

	if (rsa_key != NULL)
		return;
	hs_cfg.auth_alg = CFG_AUTH_HS256;
	hs_cfg.auth_key = hs_secret;
	hs_cfg.auth_key_len = strlen(hs_secret);
	hs_cfg.auth_leeway_s = 30;
	rsa_key = EVP_RSA_gen(2048);
	FZ_CHECK(rsa_key != NULL);
	bio = BIO_new(BIO_s_mem());
	FZ_CHECK(bio != NULL && PEM_write_bio_PUBKEY(bio, rsa_key) == 1);
	n = BIO_get_mem_data(bio, &pem);
	rs_cfg = hs_cfg;
	rs_cfg.auth_alg = CFG_AUTH_RS256;
	/* BIO memory is not NUL-terminated: copy exactly n bytes. */
	rs_cfg.auth_key = malloc((size_t)n + 1);
	FZ_CHECK(rs_cfg.auth_key != NULL);
	memcpy(rs_cfg.auth_key, pem, (size_t)n);
	rs_cfg.auth_key[n] = '\0';
	rs_cfg.auth_key_len = (size_t)n;
	BIO_free(bio);
}

/* header.claims signed HS256 with key, or RS256 with rsa_key when key is NULL. */
static char *make_token(const char *hdr, size_t hlen, const char *claims, size_t clen,
			const char *key, size_t keylen)
{
	char *h64 = fz_b64url(hdr, hlen), *c64 = fz_b64url(claims, clen), *tok, *sig;
	unsigned char mac[1024];
	size_t n = strlen(h64) + strlen(c64) + 2, mac_len = sizeof(mac);

	tok = malloc(n + 1400);
	FZ_CHECK(tok != NULL);
	snprintf(tok, n, "%s.%s", h64, c64);
	if (key != NULL) {
		unsigned int l = 0;

		HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)tok, strlen(tok), mac, &l);
		mac_len = l;
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		FZ_CHECK(ctx != NULL);
		FZ_CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, rsa_key) == 1);
		FZ_CHECK(EVP_DigestSign(ctx, mac, &mac_len, (unsigned char *)tok, strlen(tok)) == 1);
		EVP_MD_CTX_free(ctx);
	}
	sig = fz_b64url(mac, mac_len);
	strcat(tok, ".");
	strcat(tok, sig);
	free(sig);
	free(h64);
	free(c64);
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char std_hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char std_rs[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	const struct nc_config *cfg = &hs_cfg;
	struct fz_parts p;
	struct principal who;
	struct nc_error err;
	char *tok = NULL;
	const char *mode, *hdr;
	size_t hlen;
	int64_t now = 1800000000;
	enum nc_err rc;

	init_once();
	fz_split(data, size, &p);
	mode = fz_get(&p, 0, "");
	hdr = fz_get(&p, 1, "");
	hlen = p.n > 1 ? p.len[1] : 0;
	switch (mode[0]) {
	case 'r':
	case 'R':
		tok = strdup(hdr);
		FZ_CHECK(tok != NULL);
		cfg = mode[0] == 'R' ? &rs_cfg : &hs_cfg;
		break;
	case 'h':
		if (hlen == 0)
			hdr = std_hs, hlen = strlen(std_hs);
		tok = make_token(hdr, hlen, fz_get(&p, 2, ""), p.n > 2 ? p.len[2] : 0, hs_secret,
				 strlen(hs_secret));
		break;
	case 's':
		if (hlen == 0)
			hdr = std_rs, hlen = strlen(std_rs);
		tok = make_token(hdr, hlen, fz_get(&p, 2, ""), p.n > 2 ? p.len[2] : 0, NULL, 0);
		cfg = &rs_cfg;
		break;
	case 'c':
		if (hlen == 0)
			hdr = std_hs, hlen = strlen(std_hs);
		tok = make_token(hdr, hlen, fz_get(&p, 2, ""), p.n > 2 ? p.len[2] : 0,
				 rs_cfg.auth_key, rs_cfg.auth_key_len);
		cfg = &rs_cfg;
		break;
	default:
		break;
	}
	if (tok != NULL) {
		memset(&err, 0, sizeof(err));
		memset(&who, 0, sizeof(who));
		rc = auth_verify_user(cfg, tok, now, &who, &err);
		if (rc == NC_OK) {
			FZ_CHECK(mode[0] != 'c');
			FZ_CHECK(is_uuid(who.user_id));
			for (const char *c = who.user_id; *c; c++)
				FZ_CHECK(!(*c >= 'A' && *c <= 'F'));
			FZ_CHECK((who.roles & ~(unsigned)(ROLE_USER | ROLE_MODERATOR | ROLE_ADMIN)) == 0);
			FZ_CHECK(who.exp + cfg->auth_leeway_s >= now);
		} else {
			FZ_CHECK(rc == NC_EUNAUTH && err.msg[0] != '\0');
		}
		free(tok);
	}
	fz_free(&p);
	return 0;
}
