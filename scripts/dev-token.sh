#!/usr/bin/env bash
# Mint a user JWT (HS256, Hasura claims) for trying the API of `make run`.
#
#   scripts/dev-token.sh [USER_ID] [ROLE] [HOURS]
#
# USER_ID defaults to a random UUID, ROLE to `user` (also: moderator, admin),
# HOURS to 24. The key is $AUTH_JWT_SECRET if set, else the secret `make run`
# generated in .run/dev/dev-jwt-secret (RUN_DIR overrides .run/dev).
#   curl -H "Authorization: Bearer $(scripts/dev-token.sh)" localhost:8080/api/...
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_DIR="${RUN_DIR:-$NC_ROOT/.run/dev}"
secret=${AUTH_JWT_SECRET:-}
if [ -z "$secret" ]; then
    [ -f "$RUN_DIR/dev-jwt-secret" ] ||
        die "no AUTH_JWT_SECRET and no $RUN_DIR/dev-jwt-secret (start the service with: make run)"
    secret=$(cat "$RUN_DIR/dev-jwt-secret")
fi

NC_JWT_SECRET=$secret exec node -e '
const c = require("crypto");
const [user = c.randomUUID(), role = "user", hours = "24"] = process.argv.slice(1);
const roles = role === "user" ? ["user"] : ["user", role];
const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const head = b({ alg: "HS256", typ: "JWT" }) + "." + b({
  sub: user, iat: now, exp: now + Math.round(Number(hours) * 3600),
  "https://hasura.io/jwt/claims": {
    "x-hasura-user-id": user, "x-hasura-default-role": role, "x-hasura-allowed-roles": roles,
  },
});
const sig = c.createHmac("sha256", process.env.NC_JWT_SECRET).update(head).digest("base64url");
console.log(head + "." + sig);
' -- "$@"
