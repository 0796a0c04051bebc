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
    # every anonymous viewer of the seed comes from 127.0.0.1
    export ANON_VIEWER_SESSIONS_PER_ADDRESS=1000000
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
    METRICS_PORT=$(free_port)
    export LISTEN_ADDR="127.0.0.1:$SVC_PORT" WORKERS="$workers" METRICS_ADDR="127.0.0.1:$METRICS_PORT"
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

# The peer (bench/peer/peer.js): its node modules, then start_peer / stop_peer.
PEER_PID=""
peer_deps() {
    local d="$NC_ROOT/bench/peer"
    [ -d "$d/node_modules/pg" ] && [ -d "$d/node_modules/jose" ] &&
        [ -d "$d/node_modules/ioredis" ] && [ -d "$d/node_modules/livekit-server-sdk" ] && return 0
    if [ -f "$d/package-lock.json" ]; then
        (cd "$d" && run_logged "$RUN_DIR/peer-npm.log" npm ci --no-audit --no-fund)
    else
        (cd "$d" && run_logged "$RUN_DIR/peer-npm.log" npm install --no-audit --no-fund)
    fi
}

# start_peer [PROCESSES]: PEER_BASE, PEER_PID.
start_peer() {
    local procs=${1:-1} port i
    stop_peer
    port=$(free_port)
    PEER_BASE="http://127.0.0.1:$port"
    PEER_PORT=$port PEER_PROCESSES=$procs MAX_ROOM_PARTICIPANTS=${MAX_ROOM_PARTICIPANTS:-100} \
        node "$NC_ROOT/bench/peer/peer.js" >>"$RUN_DIR/peer.log" 2>&1 </dev/null &
    PEER_PID=$!
    HELPER_PIDS+=("$PEER_PID")
    for ((i = 0; i < 100; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$PEER_BASE/healthz")" = 200 ] && return 0
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$RUN_DIR/peer.log" >&2
    die "the peer did not start"
}

stop_peer() {
    if [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; then
        kill -TERM "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
    fi
    PEER_PID=""
}

# run_wrk_at BASE NAME FILE MODE SECONDS [CONNS]: run_wrk against another server.
run_wrk_at() {
    local base=$1; shift
    local saved=$BASE
    BASE=$base
    run_wrk "$@"
    BASE=$saved
}

# Lock waits while a run goes on: lockwatch_start, then lockwatch_stop prints
# "samples=N waiting_samples=N max_waiting=N relations=..." (5 samples/s of
# pg_stat_activity: sessions of this database waiting on a lock).
LOCKWATCH_PID=""
lockwatch_start() {
    # as the superuser: only it sees every session's wait events
    local out="$RUN_DIR/lockwatch-$1.out" db=${DATABASE_URL##*/}
    db=${db%%\?*}
    : >"$out"
    LOCKWATCH_OUT=$out
    printf '%s\n' "SELECT count(DISTINCT a.pid) FILTER (WHERE a.wait_event_type = 'Lock'),
        COALESCE(string_agg(DISTINCT COALESCE(c.relname, l.locktype), ',')
                 FILTER (WHERE a.wait_event_type = 'Lock'), '-')
        FROM pg_stat_activity a
        LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
        LEFT JOIN pg_class c ON c.oid = l.relation
        WHERE a.datname = '$db' AND a.pid <> pg_backend_pid() \\watch 0.2" |
        psql -X -qtA -F ' ' "${NC_TEST_ADMIN_URL%/*}/$db" >"$out" 2>/dev/null &
    LOCKWATCH_PID=$!
    HELPER_PIDS+=("$LOCKWATCH_PID")
}

lockwatch_stop() {
    [ -n "$LOCKWATCH_PID" ] && kill -TERM "$LOCKWATCH_PID" 2>/dev/null
    wait "$LOCKWATCH_PID" 2>/dev/null || true
    LOCKWATCH_PID=""
    awk 'NF >= 2 && $1 ~ /^[0-9]+$/ { n++; if ($1 > 0) { w++; rel[$2] = 1 } if ($1 > m) m = $1 }
         END { r = ""; for (k in rel) r = r (r == "" ? "" : ",") k;
               printf "samples=%d waiting_samples=%d max_waiting=%d relations=%s\n", n, w, m, r == "" ? "-" : r }' \
        "$LOCKWATCH_OUT"
}

# CPU use during a run, from /proc (clock ticks, so exact for short runs):
# cpu_mark NAME, then after the run cpu_report NAME prints
# "svc=N% pg=N% redis=N% lk=N% peer=N%" (percent of one core, averaged
# over the run; pg sums every backend of this cluster).
cpu_pids_of() { # GROUP: pids of the group now
    local p
    case $1 in
        svc) [ -n "$SVC_PID" ] && echo "$SVC_PID" ;;
        peer) [ -n "$PEER_PID" ] && { echo "$PEER_PID"; pgrep -P "$PEER_PID"; } ;;
        pg) p=$(head -n1 "$(cat "$RUN_DIR/pg.datadir")/postmaster.pid" 2>/dev/null); [ -n "$p" ] && { echo "$p"; pgrep -P "$p"; } ;;
        redis) cat "$RUN_DIR/redis.pid" 2>/dev/null ;;
        lk) cat "$RUN_DIR/livekit.pid" 2>/dev/null ;;
    esac
}
cpu_ticks() { # GROUP: clock ticks used so far by the group's live processes
    local t=0 p s
    for p in $(cpu_pids_of "$1"); do
        s=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && t=$((t + s))
    done
    echo "$t"
}
declare -A CPU_MARK
cpu_mark() {
    local g
    CPU_MARK[$1.t]=$(date +%s.%N)
    for g in svc peer pg redis lk; do CPU_MARK[$1.$g]=$(cpu_ticks "$g"); done
}
cpu_report() {
    local g out="" hz secs
    hz=$(getconf CLK_TCK)
    secs=$(awk -v a="${CPU_MARK[$1.t]}" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    for g in svc peer pg redis lk; do
        out="$out $g=$(awk -v a="${CPU_MARK[$1.$g]}" -v b="$(cpu_ticks "$g")" -v hz="$hz" -v s="$secs" \
            'BEGIN { d = b - a; if (d < 0) d = 0; printf "%.0f%%", 100 * d / hz / s }')"
    done
    echo "cpu:${out}"
}
