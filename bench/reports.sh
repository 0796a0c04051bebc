# shellcheck shell=bash
# bench/reports.sh - the reports case of `make bench` (scripts/bench.sh; alone
# with `BENCH=reports make bench`).  Sourced after bench/common.sh, with the
# services up and row() defined.
#
#   1. seed (bench/reports_seed.sql): 1,000,000 calls, 3,000,000 participants,
#      5,000,000 connection stats samples, 50,000 recordings, 10,000 streams
#      over 400 days and 100 channels, with generate_series (REPORT_CALLS
#      scales it down for a quick look);
#   2. the first rollup (everything: nchat-rtc rollup-reports);
#   3. the reports: usage and quality, 90 days by day for all channels and for
#      one, 31 days by hour, 400 days by month (Europe/Berlin); warm p50/p95
#      over REPORT_RUNS requests each, cold p95 over REPORT_COLD rounds, each
#      after restarting Postgres with the page cache of its files dropped
#      (dd iflag=nocache) and restarting the service, after a CHECKPOINT and
#      sync so that no writeback of the rollup's pages is still under way;
#   4. the rollup catching up after 100,000 new calls (bench/reports_new.sql);
#   5. the size of the rollup.
# Postgres runs with shared_buffers = REPORT_SHARED_BUFFERS (1GB) for this case.

REPORT_CALLS=${REPORT_CALLS:-1000000}
REPORT_RUNS=${REPORT_RUNS:-40}
# 20 rounds: the nearest-rank p95 of fewer samples is their maximum
REPORT_COLD=${REPORT_COLD:-20}
REPORT_SHARED_BUFFERS=${REPORT_SHARED_BUFFERS:-1GB}

pg_super() { psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$PGPORT/nchat" "$@"; }

# Drop the page cache of the cluster's files (Postgres stopped or not: the
# kernel drops clean pages only).
reports_drop_cache() {
    local dir
    dir=$(cat "$RUN_DIR/pg.datadir")
    find "$dir/base" -type f -print0 2>/dev/null |
        xargs -0 -r -n 256 sh -c 'for f; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done' sh
}

# The queries, as "name|query string".
reports_queries() {
    local to ch d90 d31 d400
    to=$(date -u +%Y-%m-%dT%H:00:00Z)
    ch=$(pg_count "SELECT md5('channel7')::uuid")
    d90=$(date -u -d "90 days ago" +%Y-%m-%dT%H:00:00Z)
    d31=$(date -u -d "31 days ago" +%Y-%m-%dT%H:00:00Z)
    d400=$(date -u -d "400 days ago" +%Y-%m-%dT%H:00:00Z)
    for kind in usage quality; do
        echo "$kind 90 days by day, all|/api/reports/$kind?from=$d90&to=$to&interval=day&tz=Europe/Berlin"
        echo "$kind 90 days by day, one channel|/api/reports/$kind?from=$d90&to=$to&interval=day&tz=Europe/Berlin&channelId=$ch"
        echo "$kind 31 days by hour, all|/api/reports/$kind?from=$d31&to=$to&interval=hour&tz=Europe/Berlin"
        echo "$kind 400 days by month, all|/api/reports/$kind?from=$d400&to=$to&interval=month&tz=Europe/Berlin"
    done
}

# Times of n requests (seconds, one per line).
reports_times() {
    local path=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $REPORT_TOKEN" \
            "$BASE$path"
    done
}

pctl() { # pctl P: the P-th percentile (nearest rank) of stdin numbers, in ms
    sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
        k = int(p / 100 * NR + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; printf "%.1f", v[k] * 1000 }'
}

bench_reports() {
    local t0 t1 out name path codes warm cold cmax q
    log "reports: shared_buffers = $REPORT_SHARED_BUFFERS ..."
    pg_admin -c "ALTER SYSTEM SET shared_buffers = '$REPORT_SHARED_BUFFERS'" >/dev/null
    bash "$SVC" pg-restart >/dev/null || die "restarting Postgres failed"

    log "reports: seeding $REPORT_CALLS calls ..."
    t0=$(date +%s.%N)
    pg_super -v calls="$REPORT_CALLS" -f "$NC_ROOT/bench/reports_seed.sql" >"$RUN_DIR/reports-seed.log" 2>&1 ||
        die "reports seed failed; see $RUN_DIR/reports-seed.log"
    t1=$(date +%s.%N)
    row "reports seed" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')" "s" "" "" "" \
        "$(pg_count "SELECT count(*) FROM nchat_calls WHERE livekit_room_name LIKE 'nchat-call-%'") calls, $(pg_count 'SELECT count(*) FROM nchat_call_participants') participants, $(pg_count 'SELECT count(*) FROM nchat_webrtc_connections') samples, $(pg_count 'SELECT count(*) FROM nchat_call_recordings') recordings, $(pg_count 'SELECT count(*) FROM nchat_streams') streams"

    log "reports: first rollup (everything) ..."
    out=$("$NC_BIN" rollup-reports 2>>"$RUN_DIR/reports-rollup.log") || die "rollup-reports failed: $out"
    row "rollup, first run (400 days)" "$(sed -n 's/.* in \([0-9.]*\) s.*/\1/p' <<<"$out")" "s" "" "" "" "$out"
    row "rollup size" "$(pg_count "SELECT pg_size_pretty(pg_total_relation_size('nchat_rtc_report_usage') + pg_total_relation_size('nchat_rtc_report_quality'))")" "" "" "" "" \
        "$(pg_count "SELECT count(*) FROM nchat_rtc_report_usage") usage rows, $(pg_count "SELECT count(*) FROM nchat_rtc_report_quality") quality rows (tables and indexes); base tables $(pg_count "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relname IN ('nchat_calls', 'nchat_call_participants', 'nchat_webrtc_connections', 'nchat_call_recordings', 'nchat_streams', 'nchat_stream_viewers', 'nchat_stream_chat_messages', 'nchat_stream_reactions')")"
    pg_owner -c "VACUUM ANALYZE nchat_rtc_report_usage, nchat_rtc_report_quality" >/dev/null

    REPORT_TOKEN=$(bash "$NC_ROOT/scripts/dev-token.sh" 5d1c0f7e-2b3a-4c5d-8e9f-0a1b2c3d4e5f admin 2)
    export REPORT_TOKEN
    start_service 4
    log "reports: warm, $REPORT_RUNS requests each ..."
    while IFS='|' read -r name path; do
        reports_times "$path" 3 >/dev/null
        out=$(reports_times "$path" "$REPORT_RUNS")
        codes=$(awk '$1 != 200' <<<"$out" | wc -l)
        warm="$(awk '{ print $2 }' <<<"$out" | pctl 50) / $(awk '{ print $2 }' <<<"$out" | pctl 95)"
        printf '%s|%s|%s\n' "$name" "$warm" "$codes" >>"$RUN_DIR/reports-warm.txt"
    done < <(reports_queries)

    log "reports: cold, $REPORT_COLD rounds (Postgres and service restarted, page cache dropped) ..."
    : >"$RUN_DIR/reports-cold.txt"
    # The rollup left dirty pages: written out now, so that the first round
    # measures reads from a cold cache, not reads queued behind that writeback.
    pg_super -c CHECKPOINT >/dev/null || warn "CHECKPOINT failed"
    sync
    for ((q = 0; q < REPORT_COLD; q++)); do
        while IFS='|' read -r name path; do
            stop_service
            bash "$SVC" pg-stop >/dev/null 2>&1
            reports_drop_cache
            bash "$SVC" pg-start >/dev/null 2>&1 || die "Postgres did not restart"
            start_service 4
            printf '%s|%s\n' "$name" "$(reports_times "$path" 1 | awk '{ print $2 }')" >>"$RUN_DIR/reports-cold.txt"
        done < <(reports_queries)
    done
    while IFS='|' read -r name warm codes; do
        cold=$(awk -F'|' -v n="$name" '$1 == n { print $2 }' "$RUN_DIR/reports-cold.txt" | pctl 95)
        cmax=$(awk -F'|' -v n="$name" '$1 == n { print $2 }' "$RUN_DIR/reports-cold.txt" | pctl 100)
        row "$name" "$warm" "ms p50/p95" "50 / 200" "ms warm / cold" "" \
            "cold p95 $cold ms (max $cmax ms, $REPORT_COLD rounds); non-200: $codes"
    done <"$RUN_DIR/reports-warm.txt"
    stop_service

    log "reports: 100,000 new calls, then the rollup catching up ..."
    pg_super -v calls=100000 -f "$NC_ROOT/bench/reports_new.sql" >"$RUN_DIR/reports-new.log" 2>&1 ||
        die "new calls failed; see $RUN_DIR/reports-new.log"
    out=$("$NC_BIN" rollup-reports 2>>"$RUN_DIR/reports-rollup.log") || die "rollup-reports failed: $out"
    row "rollup catch-up, 100,000 new calls" "$(sed -n 's/.* in \([0-9.]*\) s.*/\1/p' <<<"$out")" "s" "10" \
        "s (target)" "" "$out"
}
