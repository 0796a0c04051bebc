/*
 * turn.h - coturn "TURN REST API" credentials and the RTCIceServer list
 * handed to browsers.
 *
 * TURN is configured when both TURN_SERVER_URL and TURN_SECRET are set;
 * otherwise only STUN is offered.
 */
#ifndef NC_TURN_H
#define NC_TURN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"

/* base64 of a 20-byte HMAC-SHA1: 28 characters plus NUL. */
#define TURN_CRED_LEN 29

/* Default credential lifetime when TURN_TTL_SECONDS is not positive. */
#define TURN_DEFAULT_TTL_S 14400

/* True if both the TURN server and its shared secret are set. */
bool turn_configured(const struct nc_config *cfg);

/* "<expiry>:<user_id>" (malloc'd). */
char *turn_username(int64_t expiry, const char *user_id);

/* out = std base64 (padded) of HMAC-SHA1(secret, username).  0 or -1. */
int turn_credential(const char *secret, const char *username,
		    char out[TURN_CRED_LEN]);

/*
 * The RTCIceServer array for user_id (new reference): one STUN entry, then
 * when TURN is configured one TURN entry with udp, tcp and (TURNS_PORT > 0)
 * turns URLs plus username/credential valid until now + TURN_TTL_SECONDS.
 */
json_t *turn_ice_servers(const struct nc_config *cfg, const char *user_id,
			 int64_t now);

/* Log once at start-up whether TURN is on (never the secret). */
void turn_log_startup(const struct nc_config *cfg);

#endif
