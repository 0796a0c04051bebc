#!/usr/bin/env bash
# `make valgrind`: the unit suites, then integration suites (VG_SUITES,
# default "check_http check_calls"; `make test` runs check_calls) with the
# server itself running under valgrind memcheck (release build, so valgrind
# sees the real allocations rather than AddressSanitizer's).  Any memcheck
# error or definite leak fails the run.  Not part of `make test` (the suite
# runs under ASan+UBSan there; valgrind multiplies the run time by ~20).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NC_ROOT"

export RUN_DIR="${VG_RUN_DIR:-$NC_ROOT/.run/valgrind}"
VG_SUITES=${VG_SUITES:-check_http check_calls}
SVC="$NC_ROOT/scripts/services.sh"
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --show-leak-kinds=definite --track-origins=yes)
PASSED=0 FAILED=0

cleanup() {
    bash "$SVC" standin-stop >/dev/null 2>&1
    bash "$SVC" stop >/dev/null 2>&1
    echo "$PASSED passed, $FAILED failed"
}
trap cleanup EXIT

command -v valgrind >/dev/null 2>&1 || bash scripts/deps.sh --bench >/dev/null ||
    die "installing dependencies failed"
env -u MAKEFLAGS make -j"$(nproc)" all unit-bins it-bins >"$NC_ROOT/.run/valgrind-build.log" 2>&1 ||
    die "build failed (.run/valgrind-build.log)"

for t in build/release/test/check_*; do
    name=$(basename "$t")
    [ -f "test/unit/$name.c" ] || continue
    # Fork mode off: memcheck then sees every test in one process.
    if CK_FORK=no "${VG[@]}" "$t" >"$NC_ROOT/.run/valgrind-$name.log" 2>&1; then
        PASSED=$((PASSED + 1)); echo "ok    $name (unit, memcheck)"
    else
        FAILED=$((FAILED + 1)); echo "FAIL  $name (unit, memcheck): .run/valgrind-$name.log"
    fi
done

bash "$SVC" start >/dev/null || die "services failed"
bash "$SVC" standin-start >/dev/null || die "stand-ins failed"
. "$RUN_DIR/env"
export NC_RUN_DIR="$RUN_DIR" NC_SQL_DIR="$NC_ROOT/sql" NC_ROOT AUTH_JWT_SECRET=nchat-test-user-secret
build/release/nchat-rtc migrate >/dev/null || die "migrate failed"
# The server under test runs under memcheck; the wrapper reports its errors.
rm -f "$RUN_DIR"/vg-server.*.log
wrapper="$RUN_DIR/nchat-rtc-vg"
cat >"$wrapper" <<SH
#!/bin/sh
exec ${VG[*]} --log-file=$RUN_DIR/vg-server.%p.log $NC_ROOT/build/release/nchat-rtc "\$@"
SH
chmod +x "$wrapper"
for name in $VG_SUITES; do
    if NC_BIN="$wrapper" CK_DEFAULT_TIMEOUT=600 build/release/test/$name >"$NC_ROOT/.run/valgrind-$name.log" 2>&1 &&
        ! grep -lE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]" "$RUN_DIR"/vg-server.*.log >/dev/null 2>&1 &&
        ! grep -qE "Invalid (read|write)|uninitialised|definitely lost" "$RUN_DIR"/vg-server.*.log 2>/dev/null; then
        PASSED=$((PASSED + 1)); echo "ok    $name (integration, server under memcheck)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL  $name (integration, server under memcheck): .run/valgrind-$name.log, $RUN_DIR/vg-server.*.log"
    fi
done
[ "$FAILED" -eq 0 ]
