#!/usr/bin/env bash
# `make run`: install what is missing, build, start Postgres and Redis on
# loopback, pick a LiveKit, migrate, then serve in the foreground. Ctrl-C (or
# SIGTERM) stops the service and everything this script started.
#
# LiveKit: LIVEKIT_URL (+ LIVEKIT_API_KEY, LIVEKIT_API_SECRET) from the
# environment if set; else `livekit-server --dev` if it is on PATH; else the
# node stand-in from test/standin (API only, no media).
# Auth: without HASURA_GRAPHQL_JWT_SECRET / AUTH_JWT_SECRET /
# AUTH_JWT_PUBLIC_KEY_FILE a dev secret is kept in .run/dev/dev-jwt-secret;
# scripts/dev-token.sh mints user tokens for it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NC_ROOT"
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

export RUN_DIR="${RUN_DIR:-$NC_ROOT/.run/dev}"
USER_LIVEKIT_URL=${LIVEKIT_URL:-}
USER_LK_KEY=${LIVEKIT_API_KEY:-}
USER_LK_SECRET=${LIVEKIT_API_SECRET:-}
# shellcheck source=services.sh
. "$NC_ROOT/scripts/services.sh"
BIN="$NC_ROOT/build/release/nchat-rtc"

if [ -n "$USER_LIVEKIT_URL" ] && { [ -z "$USER_LK_KEY" ] || [ -z "$USER_LK_SECRET" ]; }; then
    die "LIVEKIT_URL is set; set LIVEKIT_API_KEY and LIVEKIT_API_SECRET too"
fi

bash "$NC_ROOT/scripts/deps.sh"
mkdir -p "$RUN_DIR"
log "building (make)"
run_logged "$RUN_DIR/build.log" make -j"$(nproc 2>/dev/null || echo 2)" || die "build failed"

# Remember what already ran, so that on exit we stop only what we started.
STARTED_PG=0 STARTED_REDIS=0 STARTED_STANDIN=0 STARTED_LKS=0 SERVER_PID=""
pg_running || STARTED_PG=1
redis_running || STARTED_REDIS=1

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [ "$STARTED_STANDIN" = 1 ] && standin_stop
    if [ "$STARTED_LKS" = 1 ]; then
        stop_pidfile "$RUN_DIR/livekit-server.pid" livekit-server
        rm -f "$RUN_DIR/env.extra"
    fi
    [ "$STARTED_REDIS" = 1 ] && redis_stop
    [ "$STARTED_PG" = 1 ] && pg_stop
    [ -d "$RUN_DIR" ] && write_env
    log "stopped"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

svc_start
load_env "$RUN_DIR/env"
log "PostgreSQL on 127.0.0.1:$PGPORT, Redis on 127.0.0.1:$REDIS_PORT (state in ${RUN_DIR#"$NC_ROOT"/})"

# ---------------------------------------------------------------- LiveKit
rm -f "$RUN_DIR/env.extra"
if [ -n "$USER_LIVEKIT_URL" ]; then
    export LIVEKIT_URL=$USER_LIVEKIT_URL LIVEKIT_API_KEY=$USER_LK_KEY LIVEKIT_API_SECRET=$USER_LK_SECRET
    lk_desc="LiveKit: $LIVEKIT_URL (from LIVEKIT_URL)"
elif command -v livekit-server >/dev/null 2>&1 && ! port_open 7880; then
    livekit-server --dev --bind 127.0.0.1 >"$RUN_DIR/livekit-server.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/livekit-server.pid"
    STARTED_LKS=1
    wait_port 7880 30 || die "livekit-server --dev did not listen on 7880 (see $RUN_DIR/livekit-server.log)"
    printf 'export LIVEKIT_URL=ws://127.0.0.1:7880\nexport LIVEKIT_API_KEY=devkey\nexport LIVEKIT_API_SECRET=secret\n' \
        >"$RUN_DIR/env.extra"
    export LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret
    lk_desc="LiveKit: livekit-server --dev at $LIVEKIT_URL (key devkey)"
else
    pid_alive "$RUN_DIR/livekit.pid" || STARTED_STANDIN=1
    standin_start || die "the LiveKit/S3 stand-ins did not start"
    load_env "$RUN_DIR/env"
    if [ -n "${LK_STANDIN_URL:-}" ]; then
        lk_desc="LiveKit: node stand-in at $LIVEKIT_URL (API only, no media; install livekit-server for real calls)"
    else
        lk_desc="LiveKit: none (no livekit-server, no stand-in); set LIVEKIT_URL"
    fi
fi
write_env

# ---------------------------------------------------------------- auth
if [ -z "${HASURA_GRAPHQL_JWT_SECRET:-}${AUTH_JWT_SECRET:-}${AUTH_JWT_PUBLIC_KEY_FILE:-}" ]; then
    if [ ! -s "$RUN_DIR/dev-jwt-secret" ]; then
        (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$RUN_DIR/dev-jwt-secret")
    fi
    AUTH_JWT_SECRET=$(cat "$RUN_DIR/dev-jwt-secret")
    export AUTH_JWT_SECRET
    auth_desc="user JWTs: HS256 with the dev secret in ${RUN_DIR#"$NC_ROOT"/}/dev-jwt-secret; mint one: bash scripts/dev-token.sh [USER_UUID] [user|moderator|admin]"
else
    auth_desc="user JWTs: as configured in the environment"
fi

export LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080}

# ---------------------------------------------------------------- migrate
run_logged "$RUN_DIR/migrate.log" "$BIN" migrate || die "nchat-rtc migrate failed"
log "migrate: $(tail -n1 "$RUN_DIR/migrate.log")"

host=${LISTEN_ADDR%:*} port=${LISTEN_ADDR##*:}
case $host in ""|0.0.0.0|"[::]"|"::") host=localhost ;; esac
log "$lk_desc"
log "$auth_desc"
log "serving on http://$LISTEN_ADDR  (check: curl -i http://$host:$port/readyz  should answer 200; Ctrl-C stops)"

"$BIN" serve &
SERVER_PID=$!
# Signals interrupt `wait`; pass them on and keep waiting for the server.
trap 'kill -TERM "$SERVER_PID" 2>/dev/null || true' INT TERM
rc=0
while kill -0 "$SERVER_PID" 2>/dev/null; do
    wait "$SERVER_PID" && rc=0 || rc=$?
done
SERVER_PID=""
log "nchat-rtc serve exited ($rc)"
exit "$rc"
