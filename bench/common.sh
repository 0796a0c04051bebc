# shellcheck shell=bash
# bench/common.sh - what scripts/bench.sh and scripts/soak.sh share: their
# own Postgres/Redis/stand-ins under RUN_DIR (scripts/services.sh), the
# release build with the bench helpers, the seed, the service itself.
# Source it after scripts/lib.sh; it sets `trap bench_cleanup EXIT`.

BENCH_BUILD="$NC_ROOT/build/release"
NC_BIN="$BENCH_BUILD/nchat-rtc"
SVC="$NC_ROOT/scripts/services.sh"
SVC_PID=""
HELPER_PIDS=()

bench_cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${HELPER_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    stop_service
    if [ "${KEEP:-0}" = 1 ]; then
        log "KEEP=1: services left running; env in $RUN_DIR/env; stop with: RUN_DIR=$RUN_DIR make stop"
    else
        bash "$SVC" stop >/dev/null 2>&1 || warn "stopping services failed"
    fi
    exit "$rc"
}

# Build the release binary and the helpers of bench/bench.mk (whether or not
# the top-level Makefile includes it yet).
bench_build() {
    local mk=(-f Makefile)
    grep -q 'bench/bench.mk' Makefile || mk+=(-f bench/bench.mk)
    run_logged "$RUN_DIR/build.log" make "${mk[@]}" -j"$(nproc 2>/dev/null || echo 2)" all bench-tools ||
        die "release build failed"
}

# Postgres, Redis, the LiveKit and S3 stand-ins; migrate; env loaded.
bench_services() {
    bash "$SVC" stop >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"
    bash "$SVC" start || die "starting PostgreSQL/Redis failed"
    bash "$SVC" standin-start || die "starting the stand-ins failed"
    load_env "$RUN_DIR/env"
    [ -n "${LK_STANDIN_URL:-}" ] || die "LiveKit stand-in not running"
    export AUTH_JWT_SECRET=nchat-bench-user-secret
    run_logged "$RUN_DIR/migrate.log" "$NC_BIN" migrate --sql-dir "$NC_ROOT/sql" || die "migrate failed"
    # max_connections is 200 (services.sh): 64 pgbench clients + the workers fit
}

pg_admin() { psql -X -q -v ON_ERROR_STOP=1 "$NC_TEST_ADMIN_URL" "$@"; }
pg_owner() { psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_MIGRATE_URL" "$@"; }
pg_count() { psql -X -qtA "$DATABASE_MIGRATE_URL" -c "$1"; }

# N users, all members of one channel.  Writes RUN_DIR/users.txt, CHANNEL_ID.
bench_seed_users() {
    local n=$1
    CHANNEL_ID=$(pg_owner -tA -c "INSERT INTO nchat_channels (id, name)
        VALUES (gen_random_uuid(), 'bench') RETURNING id" | head -n1)
    pg_owner -tA -c "WITH u AS (INSERT INTO nchat_users (id, display_name)
        SELECT gen_random_uuid(), 'Bench User ' || g FROM generate_series(1, $n) g RETURNING id)
        INSERT INTO nchat_channel_members (channel_id, user_id)
        SELECT '$CHANNEL_ID', id FROM u RETURNING user_id" >"$RUN_DIR/users.txt"
    export CHANNEL_ID
}

# Service configuration for load: limits far above what the load needs,
# no background timers that would change rows under the benchmark.
bench_service_env() {
    export LOG_LEVEL=${LOG_LEVEL:-warn}
    export STREAM_CHAT_RATE_LIMIT=10000 STREAM_CHAT_RATE_WINDOW_SECONDS=1
    export STREAM_REACTION_RATE_LIMIT=10000
    export SSE_MAX_PER_USER=1000 SSE_MAX_CONNECTIONS=100000 MAX_CONNECTIONS=30000
    export MAX_QUEUED_REQUESTS=100000
    export CALL_SWEEP_INTERVAL_SECONDS=0 OUTBOUND_WEBHOOK_INTERVAL_SECONDS=0
    export REPORTS_ROLLUP_INTERVAL_SECONDS=0
    export RING_TIMEOUT_SECONDS=3600 LIVEKIT_WEBHOOK_LEEWAY_SECONDS=600
    export RECORDING_RETENTION_DAYS=1
    # Raised, not off: the limiter's Redis round trip stays in every figure.
    local big=1000000/60
    export RATE_LIMITS="default=$big,initiate=$big,join=$big,chat=$big,reactions=$big,stats=$big"
    export RATE_LIMIT_IP=$big
}

# start_service WORKERS: nchat-rtc serve on a free port; BASE, SVC_PORT, SVC_PID.
start_service() {
    local workers=$1 i
    stop_service
    SVC_PORT=$(free_port)
    export LISTEN_ADDR="127.0.0.1:$SVC_PORT" WORKERS="$workers"
    BASE="http://127.0.0.1:$SVC_PORT"
    export BASE
    "$NC_BIN" serve >>"$RUN_DIR/service.log" 2>&1 </dev/null &
    SVC_PID=$!
    for ((i = 0; i < 200; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz")" = 200 ]; then
            return 0
        fi
        kill -0 "$SVC_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$RUN_DIR/service.log" >&2
    die "nchat-rtc did not become ready"
}

stop_service() {
    if [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        kill -TERM "$SVC_PID" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$SVC_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SVC_PID" 2>/dev/null || true
        wait "$SVC_PID" 2>/dev/null || true
    fi
    SVC_PID=""
}

# RSS of the service in KiB.
svc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SVC_PID/status"; }

# run_wrk NAME FILE MODE SECONDS [CONNS] [MAX]: prints the RESULT line,
# the full output in RUN_DIR/wrk-NAME.out.
run_wrk() {
    local name=$1 file=$2 mode=$3 secs=$4 conns=${5:-64} max=${6:-0} threads=2
    wrk -t "$threads" -c "$conns" -d "${secs}s" --timeout 10s --latency \
        -s "$NC_ROOT/bench/reqs.lua" "$BASE" -- "$file" "$mode" "$threads" "$max" \
        >"$RUN_DIR/wrk-$name.out" 2>&1 || true
    grep '^RESULT' "$RUN_DIR/wrk-$name.out" || echo "RESULT failed=1"
}

# field KEY LINE: value of key=value in a RESULT line.
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }
