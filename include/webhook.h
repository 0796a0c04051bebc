/*
 * webhook.h - the LiveKit webhook receiver (POST /api/webhooks/livekit).
 *
 * LiveKit signs each delivery with a JWT in the Authorization header (raw,
 * no "Bearer "): HS256 with the secret of the API key named by `iss`, and a
 * `sha256` claim holding the standard base64 (padded) SHA-256 of the exact
 * body bytes.  webhook_verify checks exactly that; the handler then applies
 * the event once (event id unique in Postgres, same transaction) and in an
 * order-tolerant way (createdAt against each row's last_event_at).
 */
#ifndef NC_WEBHOOK_H
#define NC_WEBHOOK_H

#include "common.h"
#include "config.h"

/*
 * Verify a webhook's Authorization value against keys (several pairs for
 * rotation) at time now with leeway_s for exp/nbf.  0 when valid; -1 with a
 * short reason in why (never the token or a secret).
 */
int webhook_verify(const struct cfg_keypair *keys, size_t n_keys, int leeway_s,
		   const char *authorization, const char *body, size_t body_len, int64_t now,
		   char *why, size_t whylen) NC_MUSTCHECK;

/* Deliveries refused with 401 since start-up (metrics later). */
unsigned long webhook_rejected_count(void);

#endif
