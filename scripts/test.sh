#!/usr/bin/env bash
# `make test`: install what is missing, build (release with -Werror, then the
# ASan+UBSan test binaries), start throw-away Postgres/Redis and the LiveKit/S3
# stand-ins, migrate, run every unit then every integration test binary, stop
# everything. The last line of output is `N passed, N failed` (test cases).
#
#   make unit                                  only the unit tests: no services
#   TESTS=check_config,check_calls make test   run only those binaries
#   KEEP=1 make test                           leave the services running
#                                              (stop: RUN_DIR=.run/test scripts/services.sh stop)
#   NC_TEST_TIMEOUT=900                        seconds one binary may take
#   AUTHZ_SETUPS="superuser owner"             extra database set-ups for the
#                                              authorisation suites (see below)
#
# A binary that exits 77 is skipped. Each binary's output is in
# .run/test/logs/<name>.log and printed only when it fails.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NC_ROOT" || exit 1
# `make SAN=1 test` or `make -j test` must not leak into our own make calls.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

export RUN_DIR="${NC_TEST_RUN_DIR:-$NC_ROOT/.run/test}"
LOGS="$RUN_DIR/logs"
SVC="$NC_ROOT/scripts/services.sh"
BUILD_DIR="$NC_ROOT/build/asan"
NC_BIN="$BUILD_DIR/nchat-rtc"
KEEP=${KEEP:-0}
TESTS=${TESTS:-}
UNIT_ONLY=${UNIT_ONLY:-0}
TIMEOUT=${NC_TEST_TIMEOUT:-900}

PASSED=0
FAILED=0
BAD_BINS=()     # binaries that failed or crashed
SETUP_ERR=""    # why nothing (more) could run
RAN_CASES=0

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$KEEP" = 1 ]; then
        [ -d "$RUN_DIR" ] && log "KEEP=1: services left running; env in ${RUN_DIR#"$NC_ROOT"/}/env; stop with: RUN_DIR=.run/test make stop"
    else
        bash "$SVC" stop >/dev/null 2>&1 || warn "stopping services failed"
    fi
    if [ -n "$SETUP_ERR" ]; then
        log "$SETUP_ERR"
        rc=1
    fi
    if [ "${#BAD_BINS[@]}" -gt 0 ]; then
        log "failed: ${BAD_BINS[*]} (logs in ${LOGS#"$NC_ROOT"/})"
        rc=1
    fi
    if [ "$FAILED" -gt 0 ]; then rc=1; fi
    if [ -z "$SETUP_ERR" ] && [ "$RAN_CASES" -eq 0 ] && [ "$rc" -eq 0 ]; then
        log "no test case ran (no test binaries built from test/unit or test/integration${TESTS:+ matching TESTS=$TESTS})"
        rc=1
    fi
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setup_fail() { SETUP_ERR="$*"; exit 1; }

# ------------------------------------------------------------------ set-up
# Check the filter names exist, so a typo does not pass silently.
if [ -n "$TESTS" ]; then
    for t in ${TESTS//,/ }; do
        t=${t#check_}
        [ -f "test/unit/check_$t.c" ] || [ -f "test/integration/check_$t.c" ] ||
            [ -f "test/deploy/check_$t.sh" ] || [ "$t" = fuzz ] || [ "$t" = valgrind ] ||
            [ "$t" = contract ] || [ "$t" = browser ] ||
            setup_fail "TESTS: no test/unit or test/integration source named check_$t.c"
    done
fi

bash "$NC_ROOT/scripts/deps.sh" || setup_fail "installing dependencies failed"

# Stop whatever a previous (maybe interrupted) run left, then start clean.
bash "$SVC" stop >/dev/null 2>&1 || true
rm -rf "$RUN_DIR"
mkdir -p "$LOGS"

JOBS=$(nproc 2>/dev/null || echo 2)
if [ "$UNIT_ONLY" = 1 ]; then
    run_logged "$LOGS/build-asan.log" make -j"$JOBS" SAN=1 unit-bins ||
        setup_fail "sanitizer build failed (make SAN=1 unit-bins)"
    log "build ok (build/asan unit tests)"
else
    run_logged "$LOGS/build-release.log" make -j"$JOBS" ||
        setup_fail "release build failed (make)"
    run_logged "$LOGS/build-asan.log" make -j"$JOBS" SAN=1 unit-bins it-bins ||
        setup_fail "sanitizer build failed (make SAN=1 unit-bins it-bins)"
    log "build ok (build/release, build/asan)"
fi

# LeakSanitizer does not work everywhere (e.g. under ptrace); find out once.
DETECT_LEAKS=1
probe_dir=$(mktemp -d)
printf 'int main(void) { return 0; }\n' >"$probe_dir/p.c"
if ${CC:-cc} -fsanitize=address -o "$probe_dir/p" "$probe_dir/p.c" >/dev/null 2>&1; then
    if ! ASAN_OPTIONS=detect_leaks=1 "$probe_dir/p" >"$probe_dir/out" 2>&1; then
        DETECT_LEAKS=0
        log "notice: LeakSanitizer cannot run here ($(head -n1 "$probe_dir/out")); running with detect_leaks=0"
    fi
fi
rm -rf "$probe_dir"

export NC_BIN NC_SQL_DIR="$NC_ROOT/sql" NC_RUN_DIR="$RUN_DIR" NC_ROOT
export AUTH_JWT_SECRET=nchat-test-user-secret
export ASAN_OPTIONS="detect_leaks=$DETECT_LEAKS:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CK_DEFAULT_TIMEOUT=60


# ------------------------------------------------------------------- tests
selected() {
    local name=$1 t
    [ -z "$TESTS" ] && return 0
    for t in ${TESTS//,/ }; do
        [ "$t" = "$name" ] || [ "check_$t" = "$name" ] && return 0
    done
    return 1
}

run_bin() {
    # label (3rd argument): a second run of the same binary, e.g. in another
    # database set-up; shown as name@label, logged to name@label.log
    local kind=$1 bin="$BUILD_DIR/test/$2" name=$2${3:+@$3} logf="$LOGS/$2${3:+@$3}.log"
    local rc=0 start end secs checks=0 fails=0 errs=0 line c f e
    if [ ! -x "$bin" ]; then
        printf '  FAIL  %-28s %s (not built)\n' "$name" "$kind"
        FAILED=$((FAILED + 1)); BAD_BINS+=("$name")
        return
    fi
    start=$(date +%s.%N)
    timeout -k 10 "$TIMEOUT" "$bin" >"$logf" 2>&1 </dev/null || rc=$?
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    # libcheck: "NN%: Checks: N, Failures: F, Errors: E" (one per srunner run)
    while IFS= read -r line; do
        c=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
        f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
        e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
        checks=$((checks + c)); fails=$((fails + f)); errs=$((errs + e))
    done < <(grep -E '[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$logf")

    if [ "$rc" -eq 77 ]; then
        printf '  SKIP  %-28s %s (%s)\n' "$name" "$kind" \
            "$(grep -v '^[[:space:]]*$' "$logf" | tail -n1 | cut -c1-100)"
        return
    fi
    RAN_CASES=$((RAN_CASES + checks))
    local bad=$((fails + errs))
    PASSED=$((PASSED + checks - bad))
    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]; then
        printf '  ok    %-28s %s, %d checks, %ss\n' "$name" "$kind" "$checks" "$secs"
        return
    fi
    # A crash, sanitizer report or leak after the summary still fails the binary.
    [ "$bad" -eq 0 ] && bad=1
    FAILED=$((FAILED + bad)); BAD_BINS+=("$name")
    local why="exit $rc"
    [ "$rc" -eq 124 ] && why="timed out after ${TIMEOUT}s"
    [ "$rc" -gt 128 ] && [ "$rc" -ne 124 ] && why="killed by signal $((rc - 128))"
    printf '  FAIL  %-28s %s, %d checks, %d failures, %d errors, %s, %ss\n' \
        "$name" "$kind" "$checks" "$fails" "$errs" "$why" "$secs"
    printf -- '----- %s -----\n' "${logf#"$NC_ROOT"/}"
    cat "$logf"
    printf -- '----- end of %s -----\n' "$name"
}

# A check written as a script ends with a line "N passed, N failed".
run_script() {
    local kind=$1 name=$2; shift 2
    local logf="$LOGS/$name.log" rc=0 p=0 f=0 line start end secs
    start=$(date +%s.%N)
    timeout -k 10 "$TIMEOUT" "$@" >"$logf" 2>&1 </dev/null || rc=$?
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logf" | tail -n1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    fi
    RAN_CASES=$((RAN_CASES + p + f))
    PASSED=$((PASSED + p))
    # A script that could not run its checks here says why on a SKIP line.
    if [ "$rc" -eq 0 ] && [ "$((p + f))" -eq 0 ] && grep -q '^SKIP ' "$logf"; then
        printf '  SKIP  %-28s %s (%s)\n' "$name" "$kind" "$(grep '^SKIP ' "$logf" | head -n1 | cut -c6-120)"
        return
    fi
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        printf '  ok    %-28s %s, %d checks, %ss\n' "$name" "$kind" "$((p + f))" "$secs"
        return
    fi
    [ "$f" -eq 0 ] && f=1
    FAILED=$((FAILED + f)); BAD_BINS+=("$name")
    printf '  FAIL  %-28s %s, %d passed, %d failed, exit %s, %ss\n' "$name" "$kind" "$p" "$f" "$rc" "$secs"
    printf -- '----- %s -----\n' "${logf#"$NC_ROOT"/}"
    cat "$logf"
    printf -- '----- end of %s -----\n' "$name"
}

run_suites() {
    local kind=$1 src name
    for src in test/"$kind"/check_*.c; do
        [ -f "$src" ] || continue
        name=$(basename "$src" .c)
        selected "$name" || continue
        run_bin "$kind" "$name"
    done
}

# Unit tests need nothing running: they go first, before any service starts.
run_suites unit
[ "$UNIT_ONLY" = 1 ] && exit 0

bash "$SVC" start || setup_fail "starting PostgreSQL/Redis failed"
bash "$SVC" standin-start || setup_fail "starting the LiveKit/S3 stand-ins failed"
load_env "$RUN_DIR/env" || setup_fail "no $RUN_DIR/env"
log "services up: postgres :$PGPORT, redis :$REDIS_PORT${LK_STANDIN_URL:+, livekit stand-in ${LK_STANDIN_URL##*:}}${S3_ENDPOINT:+, s3 stand-in ${S3_ENDPOINT##*:}}"
if [ -x "$NC_BIN" ]; then
    run_logged "$LOGS/migrate.log" "$NC_BIN" migrate || setup_fail "nchat-rtc migrate failed"
    log "migrate: $(tail -n1 "$LOGS/migrate.log")"
else
    setup_fail "$NC_BIN was not built"
fi

run_suites integration
# The authorisation suites once more in each other database set-up: the
# service logging in as the superuser with one URL for everything (what
# Hasura/nHost deployments hand out; DATABASE_MIGRATE_URL = DATABASE_URL),
# and as the schema owner.  Row-level security must hold in all of them.
AUTHZ_SUITES="check_authz check_schema check_recordings check_gdpr check_calls check_streams"
OWNER_SUITES="check_authz check_schema"
for setup in ${AUTHZ_SETUPS-superuser owner}; do
    case $setup in
        superuser) url="postgresql://postgres@127.0.0.1:$PGPORT/nchat" suites=$AUTHZ_SUITES ;;
        owner) url="$DATABASE_MIGRATE_URL" suites=$OWNER_SUITES ;;
        *) setup_fail "AUTHZ_SETUPS: unknown set-up $setup (superuser, owner)" ;;
    esac
    for name in $suites; do
        [ -f "test/integration/$name.c" ] || continue
        selected "$name" || continue
        DATABASE_URL=$url DATABASE_MIGRATE_URL=$url NC_TEST_DB_SETUP=$setup \
            run_bin integration "$name" "$setup"
    done
done
for src in test/deploy/check_*.sh; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .sh)
    selected "$name" || continue
    run_script deploy "$name" bash "$src"
done
# The frontend's side: etc/openapi.yaml through two validators, the generated TypeScript
# types and the typed client (tsc --strict), that client against the service with every
# response checked against the document; then headless Chromium (CORS, EventSource).
if selected contract; then
    run_script contract contract bash test/contract/check.sh contract
fi
if selected browser; then
    run_script browser browser bash test/contract/check.sh browser
fi
# The unit suites and the calls suite once more with the service under valgrind memcheck
# (release build: valgrind sees real allocations, not ASan's).
if selected valgrind; then
    run_script valgrind valgrind env VG_SUITES="${VG_SUITES:-check_calls}" \
        VG_RUN_DIR="$RUN_DIR-valgrind" bash scripts/valgrind.sh
fi
# libFuzzer targets: replay every input that once crashed, then fuzz each briefly.
if selected fuzz && [ -d test/fuzz ]; then
    if run_logged "$LOGS/build-fuzz.log" env -u MAKEFLAGS make -j"$(nproc 2>/dev/null || echo 2)" fuzz-bins; then
        run_script fuzz fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash scripts/fuzz.sh --ci
    else
        printf '  FAIL  %-28s fuzz (build failed, see %s)\n' fuzz "${LOGS#"$NC_ROOT"/}/build-fuzz.log"
        FAILED=$((FAILED + 1)); BAD_BINS+=(fuzz)
    fi
fi
exit 0
