#!/usr/bin/env bash
# Run the libFuzzer targets built by `make fuzz-bins` (build/fuzz/fuzz_*).
#
#   scripts/fuzz.sh          each target for FUZZ_SECONDS (default 60)
#   scripts/fuzz.sh --ci     first replay test/fuzz/regressions/<target>/*
#                            (inputs that once crashed), then fuzz each target
#                            for FUZZ_SECONDS (default 10)
#
#   FUZZ_TARGETS="jsonv auth"  only these targets
#   FUZZ_BUILD=build/fuzz      where the binaries are
#
# Seeds come from test/fuzz/corpus/<target>; what the fuzzer learns goes to
# .run/fuzz/corpus/<target> (kept between runs, never in the repository).
# A crash leaves its input in .run/fuzz/artifacts/<target>/: copy it to
# test/fuzz/regressions/<target>/ once fixed.  Prints one line per check and
# `N passed, N failed`; exits 1 if anything failed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CI=0
for arg in "$@"; do
    case $arg in
        --ci) CI=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option: $arg" ;;
    esac
done

if [ "$CI" = 1 ]; then SECONDS_EACH=${FUZZ_SECONDS:-10}; else SECONDS_EACH=${FUZZ_SECONDS:-60}; fi
BUILD_DIR="$NC_ROOT/${FUZZ_BUILD:-build/fuzz}"
FUZZ_DIR="$NC_ROOT/test/fuzz"
WORK="$NC_ROOT/.run/fuzz"
PASSED=0
FAILED=0

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
    for t in $FUZZ_TARGETS; do targets+=("${t#fuzz_}"); done
else
    for b in "$BUILD_DIR"/fuzz_*; do
        [ -x "$b" ] && targets+=("$(basename "$b" | sed 's/^fuzz_//')")
    done
fi
[ "${#targets[@]}" -gt 0 ] || die "no fuzz targets in ${BUILD_DIR#"$NC_ROOT"/} (run make fuzz-bins)"

# UBSan findings must stop the run like ASan's do.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

result() { # result NAME OK|FAILED DETAIL
    printf '%-28s %s%s\n' "$1" "$2" "${3:+ ($3)}"
    if [ "$2" = ok ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

for t in "${targets[@]}"; do
    bin="$BUILD_DIR/fuzz_$t"
    if [ ! -x "$bin" ]; then
        result "fuzz_$t" FAILED "no binary"
        continue
    fi
    mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t" "$WORK/logs"

    # Regression inputs: each must run through without a finding.
    if [ "$CI" = 1 ]; then
        regs=()
        if [ -d "$FUZZ_DIR/regressions/$t" ]; then
            while IFS= read -r -d '' f; do regs+=("$f"); done \
                < <(find "$FUZZ_DIR/regressions/$t" -type f -print0 | sort -z)
        fi
        if [ "${#regs[@]}" -eq 0 ]; then
            result "fuzz_$t regressions" ok "none"
        elif "$bin" -runs=1 "${regs[@]}" >"$WORK/logs/$t.regress.log" 2>&1; then
            result "fuzz_$t regressions" ok "${#regs[@]} inputs"
        else
            result "fuzz_$t regressions" FAILED "see .run/fuzz/logs/$t.regress.log"
            tail -n 30 "$WORK/logs/$t.regress.log" >&2
        fi
    fi

    seeds=()
    [ -d "$FUZZ_DIR/corpus/$t" ] && seeds+=("$FUZZ_DIR/corpus/$t")
    log="$WORK/logs/$t.log"
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -max_len=8192 -print_final_stats=1 \
            -artifact_prefix="$WORK/artifacts/$t/" \
            "$WORK/corpus/$t" "${seeds[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        result "fuzz_$t" ok "${runs:-?} runs in ${SECONDS_EACH}s"
    else
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result "fuzz_$t" FAILED "input: ${art#"$NC_ROOT"/}; log: .run/fuzz/logs/$t.log"
        grep -m 20 -E 'ERROR|SUMMARY|runtime error|invariant|#[0-9] ' "$log" >&2 || true
    fi
done

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
