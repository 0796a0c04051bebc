/*
 * auth.h - user authentication: the chat's Bearer JWTs (Hasura style).
 *
 * HS256 with a shared secret or RS256 with a PEM public key; the algorithm is
 * fixed by configuration and a token whose header names another algorithm is
 * refused (no algorithm confusion).  The user id is
 * claims["https://hasura.io/jwt/claims"]["x-hasura-user-id"], falling back to
 * "sub", and must be a UUID.  Roles are x-hasura-allowed-roles; by Hasura's
 * rule x-hasura-default-role must be one of them, else the token is refused
 * (a default role alone grants nothing).  No Hasura claims: role user.  exp
 * (required) and nbf are enforced with the configured leeway.
 */
#ifndef NC_AUTH_H
#define NC_AUTH_H

#include "core/common.h"
#include "core/config.h"

enum auth_role {
	ROLE_USER = 1 << 0,
	ROLE_MODERATOR = 1 << 1,
	ROLE_ADMIN = 1 << 2,
};

/* The authenticated caller, copied into each request context. */
struct principal {
	char user_id[37];  /* canonical lower-case UUID */
	unsigned roles;    /* enum auth_role bits */
	int64_t exp;       /* token expiry, unix seconds */
};

/*
 * Verify a bare token (no "Bearer ") at time now.  NC_OK and *out filled, or
 * NC_EUNAUTH with a short reason in err (safe to show the client).
 */
enum nc_err auth_verify_user(const struct nc_config *cfg, const char *token, int64_t now,
			     struct principal *out, struct nc_error *err) NC_MUSTCHECK;

/*
 * auth_verify_user through the process's cache of tokens verified before
 * (same outcome; a hit repeats only the exp/nbf checks).  Thread-safe; the
 * workers share it.  auth_cache_release empties it (each worker calls it
 * as it stops, so the last one leaves nothing behind).
 */
enum nc_err auth_verify_cached(const struct nc_config *cfg, const char *token, int64_t now,
			       struct principal *out, struct nc_error *err) NC_MUSTCHECK;
void auth_cache_release(void);

/* True if the principal holds admin or moderator. */
static inline bool auth_is_staff(const struct principal *p)
{
	return (p->roles & (ROLE_ADMIN | ROLE_MODERATOR)) != 0;
}

#endif
