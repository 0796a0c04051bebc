/*
 * cmd_bench.c - `nchat-rtc bench-tokens [--seconds N]`.
 *
 * Measures, on one thread, how many LiveKit access tokens per second the
 * real lk_token_mint produces for a typical call-join grant, and next to it
 * the ceiling of the same cryptographic work done bare in this binary:
 * HMAC-SHA256 over the very same header.claims bytes plus base64url of the
 * signature.  The ratio says how much the JSON building and the JWT library
 * cost on top of the unavoidable work.  Each part runs for --seconds, the
 * two parts alternate in short rounds so that noise from a shared machine
 * hits both alike.  Prints lines a script can parse:
 *   tokens_per_s <n>
 *   ceiling_per_s <n>
 *   ratio <r>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ops/bench.h"
#include "core/b64.h"
#include "livekit/lk.h"

#define ROUND_MS 200

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The grant api_calls gives a joining participant of a video call. */
static void join_opts(struct lk_token_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->identity = "7d5c1c52-3c9e-4c2b-9a57-1f0e4f1f2a10";
	o->name = "Bench User";
	o->ttl_s = 3600;
	o->grant.room = "call-1b4e28ba-2fa1-41d2-883f-0016d3cca427";
	o->grant.room_join = true;
	o->grant.can_publish = LK_TRUE;
	o->grant.can_subscribe = LK_TRUE;
	o->grant.can_publish_data = LK_TRUE;
	o->grant.sources = LK_SRC_CAMERA | LK_SRC_MICROPHONE | LK_SRC_SCREEN_SHARE |
			   LK_SRC_SCREEN_SHARE_AUDIO;
}

int cmd_bench_tokens(int argc, char **argv, const struct nc_config *cfg)
{
	const char *key = cfg->livekit_api_key, *secret = cfg->livekit_api_secret;
	struct lk_token_opts o;
	double seconds = 3, t_mint = 0, t_bare = 0, t0;
	long n_mint = 0, n_bare = 0;
	char *tok, *dot, sig_b64[64];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t input_len, secret_len;
	volatile size_t sink = 0;
	int64_t now = now_unix();

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: nchat-rtc bench-tokens [--seconds N]\n");
			return 2;
		}
	}
	if (seconds <= 0 || seconds > 600) {
		fprintf(stderr, "bench-tokens: --seconds must be in (0, 600]\n");
		return 2;
	}
	if (key == NULL || *key == '\0' || secret == NULL || *secret == '\0') {
		key = "devkey";
		secret = "secret";
	}
	secret_len = strlen(secret);
	join_opts(&o);
	/* The bare loop signs exactly the bytes lk_token_mint signs. */
	tok = lk_token_mint(key, secret, &o, now);
	if (tok == NULL || (dot = strrchr(tok, '.')) == NULL) {
		fprintf(stderr, "bench-tokens: lk_token_mint failed\n");
		free(tok);
		return 1;
	}
	input_len = (size_t)(dot - tok);
	if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)tok, input_len,
		 mac, &mac_len) == NULL) {
		fprintf(stderr, "bench-tokens: HMAC failed\n");
		free(tok);
		return 1;
	}
	b64url_encode(mac, mac_len, sig_b64);
	if (strcmp(sig_b64, dot + 1) != 0) {
		fprintf(stderr, "bench-tokens: bare signature differs from the token's\n");
		free(tok);
		return 1;
	}

	while (t_mint < seconds || t_bare < seconds) {
		double end;

		t0 = mono_s();
		end = t0 + ROUND_MS / 1000.0;
		do {
			for (int k = 0; k < 16; k++) {
				char *t = lk_token_mint(key, secret, &o, now);

				if (t == NULL) {
					fprintf(stderr, "bench-tokens: lk_token_mint failed\n");
					free(tok);
					return 1;
				}
				sink += strlen(t);
				free(t);
			}
			n_mint += 16;
		} while (mono_s() < end);
		t_mint += mono_s() - t0;

		t0 = mono_s();
		end = t0 + ROUND_MS / 1000.0;
		do {
			for (int k = 0; k < 16; k++) {
				HMAC(EVP_sha256(), secret, (int)secret_len,
				     (const unsigned char *)tok, input_len, mac, &mac_len);
				sink += b64url_encode(mac, mac_len, sig_b64);
			}
			n_bare += 16;
		} while (mono_s() < end);
		t_bare += mono_s() - t0;
	}
	(void)sink;
	printf("token_bytes %zu\n", strlen(tok));
	printf("signed_bytes %zu\n", input_len);
	printf("tokens_per_s %.0f\n", n_mint / t_mint);
	printf("ceiling_per_s %.0f\n", n_bare / t_bare);
	printf("ratio %.3f\n", (n_mint / t_mint) / (n_bare / t_bare));
	free(tok);
	return 0;
}
