#!/usr/bin/env bash
# `make soak` (issue 9 item 7): a realistic mix for SOAK_SECONDS against the
# release build, with its own Postgres/Redis/stand-ins under .run/soak.
#
# Several wrk processes run side by side, a few connections each (a mix, not
# a maximum): join, initiate (CreateRoom to the stand-in), signed LiveKit
# webhooks (each event applied once, then replayed as LiveKit retries do),
# stream chat, reactions, viewer join and heartbeat; SOAK_SSE idle SSE
# clients stay connected throughout.  Reports per kind the requests, 5xx and
# p50/p99/p99.9 latency, and the service's RSS over time.
#
# Fails (exit 1) when any request got a 5xx or a socket error, when the
# server dropped SSE clients, or when RSS grew: "flat" means the RSS at the
# end is at most 10% (and at least 2 MiB of slack) above the RSS after the
# warm-up (the first tenth of the run, at least 10 s), the point by which
# the worker connections, caches and allocator arenas have reached their
# working size.
#
#   SOAK_SECONDS=300   SOAK_SSE=1000   SOAK_WORKERS=4   KEEP=1
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NC_ROOT"
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export RUN_DIR="$NC_ROOT/.run/soak"
. "$NC_ROOT/bench/common.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SECS=${SOAK_SECONDS:-300}
SSE_N=${SOAK_SSE:-1000}
WORKERS_N=${SOAK_WORKERS:-4}
export WEBHOOK_EVENTS=${SOAK_WEBHOOK_EVENTS:-10000} JOIN_CALLS=512 VIEWER_SESSIONS=256
WARM=$((SECS / 10)); [ "$WARM" -lt 10 ] && WARM=10
[ "$SECS" -gt "$WARM" ] || die "SOAK_SECONDS must be more than $WARM"

bash "$NC_ROOT/scripts/deps.sh" --bench >/dev/null || die "installing dependencies failed (scripts/deps.sh --bench)"
log "building (release) ..."
bench_build
log "starting Postgres, Redis, stand-ins ..."
bench_services
bench_seed_users 2400
bench_service_env
start_service "$WORKERS_N"
log "seeding ..."
USERS_FILE="$RUN_DIR/users.txt" run_logged "$RUN_DIR/seed.log" node "$NC_ROOT/bench/seed.js" "$RUN_DIR/data" ||
    die "seeding failed"
D="$RUN_DIR/data"

# SSE clients for the whole run (and a little longer).
"$BENCH_BUILD/bench/sse_hold" "$SVC_PORT" "$D/tokens.txt" "$SSE_N" $((SECS + 30)) \
    >"$RUN_DIR/sse_hold.out" 2>&1 &
SSE_PID=$!
HELPER_PIDS+=("$SSE_PID")
for ((i = 0; i < 600; i++)); do
    grep -q '^OPEN' "$RUN_DIR/sse_hold.out" && break
    sleep 0.1
done

# name file mode connections
KINDS=(
    "join join.req cycle 4"
    "initiate initiate.req cycle 2"
    "webhook webhook.req cycle 2"
    "chat chat.req cycle 4"
    "reaction reaction.req cycle 4"
    "viewer_join viewer_join.req cycle 2"
    "heartbeat heartbeat.req cycle 4"
)
log "soak: ${SECS}s, WORKERS=$WORKERS_N, $(awk '/^OPEN/ { print $2 }' "$RUN_DIR/sse_hold.out") SSE clients, ${#KINDS[@]} request kinds ..."
WRK_PIDS=()
for k in "${KINDS[@]}"; do
    read -r name file mode conns <<<"$k"
    wrk -t 1 -c "$conns" -d "${SECS}s" --timeout 10s -s "$NC_ROOT/bench/reqs.lua" "$BASE" \
        -- "$D/$file" "$mode" 1 >"$RUN_DIR/wrk-$name.out" 2>&1 &
    WRK_PIDS+=($!)
    HELPER_PIDS+=($!)
done

# RSS every 5 s
: >"$RUN_DIR/rss.log"
t0=$(date +%s)
rss_warm=""
while :; do
    now=$(($(date +%s) - t0))
    rss=$(svc_rss_kib) || die "nchat-rtc died during the soak"
    printf '%d %d\n' "$now" "$rss" >>"$RUN_DIR/rss.log"
    if [ -z "$rss_warm" ] && [ "$now" -ge "$WARM" ]; then rss_warm=$rss; fi
    [ "$now" -ge "$SECS" ] && break
    sleep 5
done
for p in "${WRK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
rss_end=$(svc_rss_kib)
rss_start=$(head -n1 "$RUN_DIR/rss.log" | cut -d' ' -f2)
rss_max=$(sort -k2 -n "$RUN_DIR/rss.log" | tail -n1 | cut -d' ' -f2)
kill -TERM "$SSE_PID" 2>/dev/null || true
wait "$SSE_PID" 2>/dev/null || true

# ------------------------------------------------------------------ report
rc=0
total5=0
printf '\nnchat-rtc make soak  (%s; %d s; WORKERS=%s; %s cores, %s)\n' "$(date -u '+%F %H:%M UTC')" \
    "$SECS" "$WORKERS_N" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
printf '%-12s %9s %9s %8s %6s %8s %9s %9s %9s\n' kind requests "req/s" non2xx 5xx sockerr p50_ms p99_ms p99.9_ms
for k in "${KINDS[@]}"; do
    read -r name _ <<<"$k"
    r=$(grep '^RESULT' "$RUN_DIR/wrk-$name.out" || echo "RESULT s5xx=1 sockerr=0")
    printf '%-12s %9s %9s %8s %6s %8s %9s %9s %9s\n' "$name" "$(field requests "$r")" "$(field rps "$r")" \
        "$(field non2xx "$r")" "$(field s5xx "$r")" "$(field sockerr "$r")" "$(field p50_ms "$r")" \
        "$(field p99_ms "$r")" "$(field p999_ms "$r")"
    total5=$((total5 + $(field s5xx "$r") + $(field sockerr "$r")))
done
sse_line=$(grep '^CLOSED_BY_SERVER' "$RUN_DIR/sse_hold.out" || echo "CLOSED_BY_SERVER ?")
sse_dropped=$(awk '{ print $2 }' <<<"$sse_line")
bound=$(awk -v w="$rss_warm" 'BEGIN { b = w * 1.10; if (b < w + 2048) b = w + 2048; printf "%d", b }')
printf '\nRSS KiB: start %s, after warm-up (%d s) %s, max %s, end %s; bound %s (warm-up +10%%, >= +2 MiB)\n' \
    "$rss_start" "$WARM" "$rss_warm" "$rss_max" "$rss_end" "$bound"
printf 'SSE: %s opened, %s\n' "$(awk '/^OPEN/ { print $2 }' "$RUN_DIR/sse_hold.out")" "$sse_line"
if [ "$total5" -ne 0 ]; then warn "$total5 responses were 5xx or socket errors"; rc=1; fi
if [ "$rss_end" -gt "$bound" ]; then warn "RSS grew from $rss_warm to $rss_end KiB"; rc=1; fi
if [ "$sse_dropped" != 0 ]; then warn "the server closed $sse_dropped SSE connections"; rc=1; fi
[ "$rc" -eq 0 ] && printf 'soak: ok (0 5xx, RSS flat)\n'
exit "$rc"
