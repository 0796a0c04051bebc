/*
 * webhook_verify.h - the signature check of LiveKit webhooks.
 *
 * LiveKit signs each delivery with a JWT in the Authorization header (raw,
 * no "Bearer "): HS256 with the secret of the API key named by `iss`, and a
 * `sha256` claim holding the standard base64 (padded) SHA-256 of the exact
 * body bytes.  webhook_verify checks exactly that.  The receiver that applies
 * the events is ops/webhook.c.
 */
#ifndef NC_WEBHOOK_VERIFY_H
#define NC_WEBHOOK_VERIFY_H

#include "core/common.h"
#include "core/config.h"

#include <jansson.h>

/*
 * Verify a webhook's Authorization value against keys (several pairs for
 * rotation) at time now with leeway_s for exp/nbf.  0 when valid; -1 with a
 * short reason in why (never the token or a secret).
 */
int webhook_verify(const struct cfg_keypair *keys, size_t n_keys, int leeway_s,
		   const char *authorization, const char *body, size_t body_len, int64_t now,
		   char *why, size_t whylen) NC_MUSTCHECK;

#endif
