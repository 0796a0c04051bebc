/*
 * fuzz_webhook.c - libFuzzer target for the LiveKit webhook verifier.
 *
 * webhook_verify runs on every unauthenticated POST /api/webhooks/livekit,
 * before anything else, so it must survive any Authorization value and body.
 * The input is split on NUL bytes into: mode, JWT header JSON, claims JSON,
 * body, signature override.  Mode 'r' passes part 1 as the raw header value;
 * otherwise the target builds a token from the parts and signs it with a
 * configured secret, so the fuzzer reaches the exp/nbf/sha256 checks behind
 * the signature.  Invariant: a token whose signature was not made with one of
 * the configured secrets is never accepted.
 */
#include "fuzz_util.h"
#include "livekit/webhook_verify.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * libcrypto is not instrumented, so ASan cannot see it write past a buffer
 * the service hands it.  This EVP_DecodeBlock (the executable's definition
 * wins over libcrypto's) decodes into a scratch buffer and copies the result
 * with memcpy, which ASan checks: an undersized output buffer in webhook.c
 * is then reported (this is how the 64-byte signature buffer was found).
 */
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
	static int (*real)(unsigned char *, const unsigned char *, int);
	unsigned char *tmp;
	int r;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "EVP_DecodeBlock");
	if (real == NULL || n < 0)
		abort();
	tmp = malloc((size_t)n / 4 * 3 + 3);
	if (tmp == NULL)
		abort();
	r = real(tmp, f, n);
	if (r > 0)
		memcpy(t, tmp, (size_t)r);
	free(tmp);
	return r;
}

static char k1[] = "devkey", s1[] = "secret", k2[] = "oldkey", s2[] = "old-secret-rotated";
static const struct cfg_keypair keys[] = {{k1, s1}, {k2, s2}, {NULL, NULL}};

/* Build header.claims.signature; sign with secret (NULL: use sig_override). */
static char *make_token(const char *hdr, size_t hlen, const char *claims, size_t clen,
			const char *secret, const char *sig_override)
{
	char *h64 = fz_b64url(hdr, hlen), *c64 = fz_b64url(claims, clen), *tok, *sig;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t n = strlen(h64) + strlen(c64) + 2;

	tok = malloc(n + 200 + (sig_override ? strlen(sig_override) : 0));
	if (tok == NULL)
		abort();
	snprintf(tok, n, "%s.%s", h64, c64);
	if (secret != NULL) {
		HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok, strlen(tok),
		     mac, &mac_len);
		sig = fz_b64url(mac, mac_len);
	} else {
		sig = strdup(sig_override ? sig_override : "");
		if (sig == NULL)
			abort();
	}
	strcat(tok, ".");
	strcat(tok, sig);
	free(sig);
	free(h64);
	free(c64);
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_parts p;
	char why[96], *tok = NULL;
	const char *mode, *body;
	size_t body_len, nkeys;
	int64_t now = 1800000000;
	int rc;
	bool forged = false;

	fz_split(data, size, &p);
	mode = fz_get(&p, 0, "");
	body = fz_get(&p, 3, "");
	body_len = p.n > 3 ? p.len[3] : 0;
	nkeys = 1 + (size % 3); /* also exercise the NULL-key terminator entry */
	if (mode[0] == 'r') {
		tok = strdup(fz_get(&p, 1, ""));
		if (tok == NULL)
			abort();
		forged = true;
	} else if (p.n > 2) {
		const char *secret = mode[0] == 'o' ? s2 : mode[0] == 'f' ? NULL : s1;
		const char *claims = p.part[2];
		char *filled = NULL;

		/* Mode 'b' replaces "@SHA@" in the claims with the body's real digest. */
		if (mode[0] == 'b' && strstr(claims, "@SHA@") != NULL) {
			unsigned char d[SHA256_DIGEST_LENGTH];
			char b64[64];
			const char *at = strstr(claims, "@SHA@");

			SHA256((const unsigned char *)body, body_len, d);
			EVP_EncodeBlock((unsigned char *)b64, d, SHA256_DIGEST_LENGTH);
			filled = malloc(p.len[2] + 64);
			if (filled == NULL)
				abort();
			snprintf(filled, p.len[2] + 64, "%.*s%s%s", (int)(at - claims), claims, b64, at + 5);
			claims = filled;
		}
		tok = make_token(p.part[1], p.len[1], claims, strlen(claims), secret, fz_get(&p, 4, ""));
		forged = secret == NULL;
		free(filled);
	}
	if (tok != NULL) {
		rc = webhook_verify(keys, nkeys, 10, tok, body, body_len, now, why, sizeof(why));
		if (rc != 0 && why[0] == '\0') {
			fprintf(stderr, "refused without a reason\n");
			abort();
		}
		/* A forged signature that verifies would be a real finding (HMAC collision
		 * aside): only possible if verification is broken. */
		if (rc == 0 && forged && mode[0] == 'f') {
			fprintf(stderr, "accepted a token with a forged signature\n");
			abort();
		}
		free(tok);
	}
	/* Raw calls with odd arguments. */
	(void)webhook_verify(keys, nkeys, 0, NULL, NULL, 0, now, why, sizeof(why));
	fz_free(&p);
	return 0;
}
