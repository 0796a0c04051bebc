#!/usr/bin/env bash
# `make bench` (issues 10, 16): own Postgres/Redis/LiveKit and S3 stand-ins
# under .run/bench, the release build, a seeded database, then every
# benchmark next to its ceiling, measured in one run (the machine is shared:
# compare the ratios, not the absolute figures).  Prints a table and stops
# everything.  For join and initiate the same requests also go to the Node
# peer (bench/peer/peer.js, the design report's stack; PEER_PROCESSES=1) and
# the table shows the ratio; join runs a third time on the same tables with
# row-level security disabled (the policies' overhead); the join ceiling is
# pgbench of the one-statement join (bench/pg_join_min.sql).  The hot-stream
# runs (one live stream, BENCH_CONNS connections posting reactions, then
# chat) sample pg_stat_activity for lock waits.  CPU use of each process
# group is shown for the main runs.
#
#   BENCH_SECONDS=15     length of each wrk / pgbench run (join: always this)
#   BENCH_CONNS=64       concurrent keep-alive connections / pgbench clients
#   BENCH_WORKERS="4 8 16"  worker counts tried on join (5 s each); the best
#                        is used for the rest.  One number skips the search.
#   SSE_CLIENTS=10000    idle SSE connections for the memory figure
#   SWEEP_RECORDINGS=500 expired recordings for the sweep figure
#   WEBHOOK_EVENTS=40000 pre-signed webhook events (each is sent once)
#   KEEP=1               leave the services running afterwards
#   BENCH=reports        only the reports case (bench/reports.sh: 1,000,000
#                        calls seeded, usage and quality reports warm and
#                        cold, the rollup catching up); the full run does it
#                        last.  REPORT_CALLS, REPORT_RUNS, REPORT_COLD tune it.
#   BENCH=core           everything but the reports case
#
# Not part of `make test`.  Needs wrk and pgbench (scripts/deps.sh --bench).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NC_ROOT"
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export RUN_DIR="$NC_ROOT/.run/bench"
. "$NC_ROOT/bench/common.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SECS=${BENCH_SECONDS:-15}
CONNS=${BENCH_CONNS:-64}
WORKER_CHOICES=${BENCH_WORKERS:-"4 8 16"}
SSE_CLIENTS=${SSE_CLIENTS:-10000}
SWEEP_N=${SWEEP_RECORDINGS:-500}
export WEBHOOK_EVENTS=${WEBHOOK_EVENTS:-40000}
export JOIN_CALLS=512
N_USERS=2400
T0=$(date +%s)

bash "$NC_ROOT/scripts/deps.sh" --bench >/dev/null || die "installing dependencies failed (scripts/deps.sh --bench)"
mkdir -p "$RUN_DIR"
peer_deps || die "installing the peer's node modules failed (bench/peer)"
for t in wrk pgbench psql node curl; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (scripts/deps.sh --bench)"
done

log "building (release) ..."
bench_build
log "starting Postgres, Redis, stand-ins ..."
bench_services
bench_seed_users "$N_USERS"
bench_service_env

ROWS=()   # "name|value|unit|ceiling|ceiling unit|ratio|note"
row() { ROWS+=("$1|$2|$3|$4|$5|$6|$7"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }

print_table() {
    local T1 r a b c d e f g
    T1=$(date +%s)
    {
        printf '\nnchat-rtc make bench  (%s; %s cores, %s, %s RAM; WORKERS=%s; %d s)\n' \
            "$(date -u '+%F %H:%M UTC')" "$(nproc)" \
            "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
            "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" "${best_w:-4}" "$((T1 - T0))"
        printf '%-36s %14s %-10s %12s %-16s %7s  %s\n' "what" "figure" "unit" "ceiling" "ceiling is" "ratio" "note"
        printf '%s\n' "$(printf '%.0s-' {1..120})"
        for r in "${ROWS[@]}"; do
            IFS='|' read -r a b c d e f g <<<"$r"
            printf '%-36s %14s %-10s %12s %-16s %7s  %s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"
        done
    } | tee "$RUN_DIR/bench-table.txt"
}

. "$NC_ROOT/bench/reports.sh"
if [ "${BENCH:-all}" = reports ]; then
    bench_reports
    print_table
    exit 0
fi
# Every run starts from the same state of the hot rows: a stream's counter
# row updated by every chat message or reaction, or a call row, otherwise
# carries a growing chain of dead versions into the next run, and whichever
# side runs second would pay for the first one.
settle() {
    pg_owner -c "VACUUM nchat_streams, nchat_stream_reaction_counts, nchat_stream_viewers,
        nchat_stream_counts_pending, nchat_calls, nchat_call_participants,
        nchat_livekit_webhook_events" >/dev/null 2>&1 ||
        warn "VACUUM failed"
    # the pages the vacuum dirtied are written now, not by the checkpointer during the run
    pg_admin -c "CHECKPOINT" >/dev/null 2>&1 || warn "CHECKPOINT failed"
}

pgb() { # pgb NAME MODE SECONDS [CLIENTS]: tps of one pgbench run (default CONNS clients)
    local name=$1 mode=$2 secs=$3 c=${4:-$CONNS} out="$RUN_DIR/pgbench-$1-$2-c${4:-$CONNS}.out"
    settle
    pgbench -n -M "$mode" -c "$c" -j 2 -T "$secs" -D ini_base="$INI_BASE" \
        -D wh_base="$WH_BASE" -D wh_t0="$WH_T0" -D wh_k=0 -D chat_base="$CHAT_BASE" \
        -f "$RUN_DIR/pg/$name.sql" \
        "$DATABASE_URL" >"$out" 2>&1 || true
    if grep -q 'aborted\|error:' "$out"; then
        warn "pgbench $name ($mode) reported errors; see $out"
    fi
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n1 | awk '{ printf "%.1f", $1 }'
}

# ------------------------------------------------------------ 1. tokens
log "token minting ..."
TOK_OUT=$("$NC_BIN" bench-tokens --seconds 3 2>/dev/null) ||
    TOK_OUT=$("$BENCH_BUILD/bench/bench_tokens" --seconds 3)
tok=$(awk '$1 == "tokens_per_s" { print $2 }' <<<"$TOK_OUT")
tok_ceil=$(awk '$1 == "ceiling_per_s" { print $2 }' <<<"$TOK_OUT")
row "token mint, 1 thread" "$tok" "tokens/s" "$tok_ceil" "HMAC+b64url/s" "$(ratio "$tok" "$tok_ceil")" "target >= 50%"

# ------------------------------------------------------------- seed
log "seeding (calls, stream, viewers, $WEBHOOK_EVENTS signed webhook events) ..."
start_service 8
RSS_IDLE_FIRST=$(svc_rss_kib)
USERS_FILE="$RUN_DIR/users.txt" run_logged "$RUN_DIR/seed.log" node "$NC_ROOT/bench/seed.js" "$RUN_DIR/data" ||
    die "seeding failed"
D="$RUN_DIR/data"
# shellcheck disable=SC1091
. "$D/seed.env"
INI_BASE=$((2 * JOIN_CALLS))
CHAT_BASE=$((INI_BASE + 128))
WH_BASE=$((JOIN_CALLS - 64))
# pgbench's webhook events are newer than every one seed.js signed (createdAt
# from its start + at most WEBHOOK_EVENTS), so each of them applies.
WH_T0=$(($(date +%s) + WEBHOOK_EVENTS + 60))
mkdir -p "$RUN_DIR/pg"
sed -e "s|@USERS_FILE@|$RUN_DIR/users.txt|" -e "s|@CALLS_FILE@|$D/join_pairs.tsv|" \
    bench/pg_setup.sql >"$RUN_DIR/pg/setup.sql"
pg_owner -f "$RUN_DIR/pg/setup.sql" 2>&1 | grep -v NOTICE >&2 || true
for f in join join_min initiate webhook chat reaction; do
    sed "s/@STREAM_ID@/$STREAM_ID/g" "bench/pg_$f.sql" >"$RUN_DIR/pg/$f.sql"
done

# ------------------------------------------------------ worker count
best_w=""; best_rps=0
if [ "$(wc -w <<<"$WORKER_CHOICES")" -gt 1 ]; then
    for w in $WORKER_CHOICES; do
        start_service "$w"
        r=$(run_wrk "join-w$w" "$D/join.req" cycle 5 "$CONNS")
        rps=$(field rps "$r")
        log "  WORKERS=$w: join $rps req/s, p99 $(field p99_ms "$r") ms"
        row "join, WORKERS=$w (5 s)" "$rps" "req/s" "" "" "" "p99 $(field p99_ms "$r") ms"
        if awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then best_w=$w; best_rps=$rps; fi
    done
else
    best_w=$WORKER_CHOICES
fi
log "WORKERS=$best_w"

# --------------------------------------------------------- 5. memory
start_service "$best_w"
sleep 1
rss_idle=$(svc_rss_kib)
r=$(run_wrk mem-10k "$D/join.req" cycle 60 "$CONNS" 10000)
rss_10k=$(svc_rss_kib)
row "RSS idle" "$rss_idle" "KiB" "" "" "" "WORKERS=$best_w"
row "RSS after 10k requests" "$rss_10k" "KiB" "" "" "" "$(field requests "$r") join requests"
(ulimit -n $((SSE_CLIENTS + 100)) 2>/dev/null || true
 exec "$BENCH_BUILD/bench/sse_hold" "$SVC_PORT" "$D/tokens.txt" "$SSE_CLIENTS" 0) \
    >"$RUN_DIR/sse_hold.out" 2>&1 &
SSE_PID=$!
HELPER_PIDS+=("$SSE_PID")
for ((i = 0; i < 1200; i++)); do
    grep -q '^OPEN' "$RUN_DIR/sse_hold.out" && break
    kill -0 "$SSE_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 2
rss_sse=$(svc_rss_kib)
sse_open=$(awk '/^OPEN/ { print $2 }' "$RUN_DIR/sse_hold.out")
sse_open=${sse_open:-0}
kill -TERM "$SSE_PID" 2>/dev/null || true
wait "$SSE_PID" 2>/dev/null || true
per_conn=$(awk -v a="$rss_sse" -v b="$rss_10k" -v n="$sse_open" 'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "-" }')
row "RSS with idle SSE" "$rss_sse" "KiB" "" "" "" "$sse_open of $SSE_CLIENTS connections open"
row "RSS per SSE connection" "$per_conn" "bytes" "8192" "bytes (target)" "$(ratio "$per_conn" 8192)" "target < 8 KiB"
sleep 1

# ----------------------------------------------------------- 2. join
log "join: wrk ${SECS}s x $CONNS connections: nchat-rtc, the Node peer, RLS off; then pgbench ..."
start_service "$best_w"
settle
cpu_mark join
r=$(run_wrk join "$D/join.req" cycle "$SECS" "$CONNS")
cpu_join=$(cpu_report join)
JOIN_RESULT=$r
join_rps=$(field rps "$r")
stop_service
start_peer "${PEER_PROCESSES:-1}"
settle
cpu_mark pjoin
rp=$(run_wrk_at "$PEER_BASE" peer-join "$D/join.req" cycle "$SECS" "$CONNS")
cpu_pjoin=$(cpu_report pjoin)
peer_join=$(field rps "$rp")
stop_peer
# the policies' overhead: the same build on the same tables with RLS disabled
RLS_TABLES=$(pg_count "SELECT string_agg(quote_ident(relname), ',') FROM pg_class
    WHERE relkind = 'r' AND relrowsecurity AND relnamespace = 'public'::regnamespace")
pg_owner -c "DO \$\$ DECLARE t text; BEGIN FOREACH t IN ARRAY string_to_array('$RLS_TABLES', ',') LOOP
    EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', t); END LOOP; END \$\$" >/dev/null
start_service "$best_w"
settle
cpu_mark norls
rr=$(run_wrk join-norls "$D/join.req" cycle "$SECS" "$CONNS")
cpu_norls=$(cpu_report norls)
norls_rps=$(field rps "$rr")
pg_owner -c "DO \$\$ DECLARE t text; BEGIN FOREACH t IN ARRAY string_to_array('$RLS_TABLES', ',') LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t); END LOOP; END \$\$" >/dev/null
stop_service
# the ceiling: the one-statement join (pg_join_min.sql), service context from the connection
c4=$(PGOPTIONS="-c role=nchat_rtc_system" pgb join_min prepared "$SECS" 4)
c10=$(PGOPTIONS="-c role=nchat_rtc_system" pgb join_min prepared "$SECS" 10)
ceil=$(awk -v a="$c4" -v b="$c10" 'BEGIN { print (a > b ? a : b) }')
p_own=$(pgb join prepared "$SECS" "$best_w")
row "join req/s (member role, RLS on)" "$join_rps" "req/s" "$ceil" "pgbench 1-stmt" "$(ratio "$join_rps" "$ceil")" "target >= 40% of the one-statement ceiling"
row "join p50 / p99 / p99.9" "$(field p50_ms "$r") / $(field p99_ms "$r") / $(field p999_ms "$r")" "ms" "20" "ms p99 (target)" "" "errors: $(field non2xx "$r") non-2xx, $(field sockerr "$r") socket"
row "  CPU during join (% of one core)" "" "" "" "" "" "$cpu_join"
row "  Node peer join (${PEER_PROCESSES:-1} process)" "$peer_join" "req/s" "" "" "$(awk -v a="$join_rps" -v b="$peer_join" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')" "nchat-rtc / peer, target >= 3x; peer p99 $(field p99_ms "$rp") ms, non-2xx $(field non2xx "$rp")"
row "  CPU during the peer's join" "" "" "" "" "" "$cpu_pjoin"
row "  join with RLS disabled" "$norls_rps" "req/s" "" "" "$(ratio "$join_rps" "$norls_rps")" "RLS on / off: target >= 85% (overhead within 15%)"
row "  CPU during join, RLS disabled" "" "" "" "" "" "$cpu_norls"
row "  pgbench one-statement join -c 4 / -c 10" "$c4 / $c10" "tps" "" "" "" "the ceiling (bench/pg_join_min.sql)"
row "  pgbench the service's join -c $best_w" "$p_own" "tps" "" "" "$(ratio "$join_rps" "$p_own")" "identity + statement pipelined, as sent"

# ------------------------------------------------------- 3. initiate
log "initiate: nchat-rtc, the Node peer ..."
start_service "$best_w"
settle
cpu_mark ini
r=$(run_wrk initiate "$D/initiate.req" cycle "$SECS" "$CONNS")
cpu_ini=$(cpu_report ini)
ini_rps=$(field rps "$r")
stop_service
start_peer "${PEER_PROCESSES:-1}"
settle
cpu_mark pini
rp=$(run_wrk_at "$PEER_BASE" peer-initiate "$D/initiate.req" cycle "$SECS" "$CONNS")
cpu_pini=$(cpu_report pini)
stop_peer
p=$(pgb initiate prepared "$SECS")
row "initiate (CreateRoom to stand-in)" "$ini_rps" "req/s" "$p" "pgbench tps" "$(ratio "$ini_rps" "$p")" "p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r")"
row "  CPU during initiate" "" "" "" "" "" "$cpu_ini (lk = the LiveKit stand-in)"
row "  Node peer initiate" "$(field rps "$rp")" "req/s" "" "" "$(awk -v a="$ini_rps" -v b="$(field rps "$rp")" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')" "nchat-rtc / peer, target >= 2x; peer non-2xx $(field non2xx "$rp")"
row "  CPU during the peer's initiate" "" "" "" "" "" "$cpu_pini"
start_service "$best_w"

# ------------------------------------------------------- 3. webhooks
log "webhooks ($WEBHOOK_EVENTS events, each once) ..."
evq="SELECT count(*) FROM nchat_livekit_webhook_events WHERE event_id LIKE 'EV\\_bench\\_%'"
before=$(pg_count "$evq")
settle
r=$(run_wrk webhook "$D/webhook.req" once "$SECS" "$CONNS")
after=$(pg_count "$evq")
acked=$(field ok "$r")
stored=$((after - before))
wh_rps=$(awk -v n="$acked" -v s="$(field seconds "$r")" -v sp="$(field spare "$r")" 'BEGIN { printf "%.1f", n / s }')
# Every acknowledged event must be stored; a few more may be stored than
# acknowledged (in flight when wrk stopped counting).
note="$acked acked (200), $stored rows stored"
[ "$(field spare "$r")" -gt 0 ] && note="$note; all events sent before the end: rate is a lower bound"
p=$(pgb webhook prepared "$SECS")
row "webhook participant_joined/left" "$wh_rps" "events/s" "$p" "pgbench tps" "$(ratio "$wh_rps" "$p")" "$note"
WH_LOST=$((acked > stored ? acked - stored : 0))

# ---------------------------------------------- 4. a hot stream: chat, reactions
log "one live stream, $CONNS connections: reactions, then chat (lock waits sampled) ..."
settle
lockwatch_start reaction
cpu_mark react
r=$(run_wrk reaction "$D/reaction.req" cycle "$SECS" "$CONNS")
cpu_react=$(cpu_report react)
lw=$(lockwatch_stop)
react_rps=$(field rps "$r")
sleep 3   # serve folds what the burst left (STREAM_COUNTER_FLUSH_SECONDS)
cnt=$(pg_count "SELECT s.total_reactions || ' ' || (SELECT count(*) FROM nchat_stream_reactions x WHERE x.stream_id = s.id)
    || ' ' || (SELECT COALESCE(sum(count), 0) FROM nchat_stream_reaction_counts c WHERE c.stream_id = s.id)
    FROM nchat_streams s WHERE s.id = '$STREAM_ID'")
p=$(pgb reaction prepared "$SECS")
row "reaction post, one stream" "$react_rps" "req/s" "$join_rps" "join req/s" "$(ratio "$react_rps" "$join_rps")" "target >= join; p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r")"
row "  lock waits during the run" "$(sed -n 's/.*waiting_samples=\([0-9]*\).*/\1/p' <<<"$lw")" "samples" "" "" "" "$lw"
row "  CPU during reactions" "" "" "" "" "" "$cpu_react"
row "  counters after the flush" "$cnt" "" "" "" "" "total_reactions / reaction rows / per-type sum (all equal)"
row "  pgbench reaction -M prepared" "$p" "tps" "" "" "$(ratio "$react_rps" "$p")" "the service's statement for a reaction alone (a batch of several is one array statement)"
# reactions per statement (src/streams/reactions.c), from the service's own counters
mb=$(curl -s "http://$METRICS_ADDR/metrics" | awk '$1 == "nchat_stream_reaction_statements_total" { s = $2 }
    $1 == "nchat_stream_reaction_statement_rows_total" { n = $2 }
    END { if (s > 0) printf "%.1f", n / s; else print "-" }')
row "  reactions per statement" "$mb" "mean" "" "" "" "the reactions of the workers waiting at one moment share a statement"
# The batches grow with the requests in flight, which WORKERS bounds: the
# same run with twice the workers (join's best count is the one above).
start_service "$((best_w * 2))"
r2=$(run_wrk reaction2 "$D/reaction.req" cycle "$SECS" "$CONNS")
row "  reaction post, WORKERS=$((best_w * 2))" "$(field rps "$r2")" "req/s" "$join_rps" "join req/s" "$(ratio "$(field rps "$r2")" "$join_rps")" "join at WORKERS=$best_w; p99 $(field p99_ms "$r2") ms, non-2xx $(field non2xx "$r2")"
start_service "$best_w"
settle
lockwatch_start chat
r=$(run_wrk chat "$D/chat.req" cycle "$SECS" "$CONNS")
lw=$(lockwatch_stop)
p=$(pgb chat prepared "$SECS")
row "chat post, one stream" "$(field rps "$r")" "req/s" "$p" "pgbench tps" "$(ratio "$(field rps "$r")" "$p")" "p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r")"
row "  lock waits during the run" "$(sed -n 's/.*waiting_samples=\([0-9]*\).*/\1/p' <<<"$lw")" "samples" "" "" "" "$lw"

# ------------------------------------------------------- viewers
log "viewers: heartbeats and (re-)joins ..."
settle
r=$(run_wrk heartbeat "$D/heartbeat.req" cycle "$SECS" "$CONNS")
row "viewer heartbeat" "$(field rps "$r")" "req/s" "" "" "" "p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r")"
r=$(run_wrk viewer-join "$D/viewer_join.req" cycle "$SECS" "$CONNS")
row "viewer join (re-open)" "$(field rps "$r")" "req/s" "" "" "" "p99 $(field p99_ms "$r") ms, non-2xx $(field non2xx "$r")"
stop_service

# ----------------------------------------------------------- 6. sweep
log "sweep: $SWEEP_N expired recordings with objects in the S3 stand-in ..."
"$BENCH_BUILD/bench/s3_seed" "bench/rec-" "$SWEEP_N" 1024 >"$RUN_DIR/s3_seed.log" 2>&1 ||
    warn "putting objects failed; see $RUN_DIR/s3_seed.log"
pg_owner -c "INSERT INTO nchat_call_recordings (call_id, livekit_egress_id, status, object_key,
    retention_days, started_at, ended_at)
    SELECT (SELECT call_id FROM bench_calls WHERE n = 0), 'EG_bench_' || g, 'completed',
           'bench/rec-' || (g - 1) || '.mp4', 1, now() - interval '3 days', now() - interval '2 days'
    FROM generate_series(1, $SWEEP_N) g" >/dev/null
s0=$(date +%s.%N)
"$NC_BIN" sweep-recordings >"$RUN_DIR/sweep.log" 2>&1 || warn "sweep-recordings failed; see $RUN_DIR/sweep.log"
s1=$(date +%s.%N)
deleted=$(pg_count "SELECT count(*) FROM nchat_call_recordings WHERE status = 'deleted' AND livekit_egress_id LIKE 'EG_bench_%'")
sweep_rate=$(awk -v n="$deleted" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", n / (b - a) }')
row "sweep-recordings" "$sweep_rate" "deleted/s" "" "" "" "$deleted of $SWEEP_N deleted in $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", b - a }') s"

# ---------------------------------------------------------- 7. reports
[ "${BENCH:-all}" = core ] || bench_reports

# ------------------------------------------------------------ table
print_table

rc=0
if [ "$(field non2xx "$JOIN_RESULT")" != 0 ] || [ "$(field sockerr "$JOIN_RESULT")" != 0 ]; then
    warn "join had errors"; rc=1
fi
if [ "$WH_LOST" -ne 0 ]; then warn "$WH_LOST acknowledged webhook events are not in the table"; rc=1; fi
exit "$rc"
