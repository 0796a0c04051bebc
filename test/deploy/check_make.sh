#!/usr/bin/env bash
# test/deploy/check_make.sh - a plain `make` on a machine without the build tools stops
# at once with one line naming the command to run (`make deps`), instead of failing
# half-way with "protoc-c: command not found"; with the tools present it builds.
# Missing tools are simulated (PROTOC_C=<no such program>, PKG_CONFIG_LIBDIR=<empty>),
# and the build directory is a temporary one, so build/ is not touched.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nchat-make.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT" || exit 1
unset MAKEFLAGS MFLAGS MAKELEVEL
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; }

# expect_stop WHAT MISSING-NAME ENV... : make must fail with one line naming it and `make deps`.
expect_stop() {
    local what=$1 name=$2 out rc=0 lines
    shift 2
    out=$(env "$@" make BUILD="$TMP/b" 2>&1) || rc=$?
    lines=$(grep -c . <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && grep -q "missing .*$name.*run \`make deps\`" <<<"$out" &&
        [ ! -e "$TMP/b" ]; then
        pass "make without $what stops with one line: ${out#*\*\*\* }"
    else
        fail "make without $what: exit $rc, $lines line(s): $(head -c 400 <<<"$out")"
    fi
}
expect_stop protoc-c protoc-c PROTOC_C=nc-no-such-protoc-c
expect_stop "the libraries (pkg-config finds none)" libpq PKG_CONFIG_LIBDIR="$TMP/empty"
expect_stop pkg-config pkg-config PKG_CONFIG=nc-no-such-pkg-config
# The test binaries also need check: every .pc file but check.pc.
mkdir -p "$TMP/pc"
IFS=: read -r -a pcdirs <<<"$(pkg-config --variable pc_path pkg-config)"
for d in "${pcdirs[@]}"; do
    for f in "$d"/*.pc; do
        [ -f "$f" ] && [ "${f##*/}" != check.pc ] && ln -sf "$f" "$TMP/pc/"
    done
done
out=$(PKG_CONFIG_LIBDIR="$TMP/pc" make BUILD="$TMP/b" unit-bins 2>&1)
if [ $? -ne 0 ] && grep -q 'missing check: run `make deps`' <<<"$out"; then
    pass "make unit-bins without the check library names it"
else
    fail "make unit-bins without check: $(head -c 300 <<<"$out")"
fi
if out=$(PKG_CONFIG_LIBDIR="$TMP/pc" make -n BUILD="$TMP/b" 2>&1); then
    pass "make (the service alone) does not need check"
else
    fail "make -n without check: $(tail -n 3 <<<"$out")"
fi
if out=$(make -n BUILD="$TMP/b" 2>&1) && grep -q 'protoc-c --c_out' <<<"$out"; then
    pass "with the tools present make goes on to build"
else
    fail "make -n with the tools present: $(tail -n 3 <<<"$out")"
fi
if out=$(make -n deps 2>&1) && grep -q 'scripts/deps.sh' <<<"$out"; then
    pass "make deps runs scripts/deps.sh"
else
    fail "make -n deps: $out"
fi
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
