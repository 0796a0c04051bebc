#!/usr/bin/env bash
# test/contract/check.sh - the frontend's side of the contract (make test).
#
#   check.sh contract   etc/openapi.yaml through `redocly lint` (redocly.yaml: a problem of
#                       level error fails) and swagger-parser validate plus the project's
#                       own rules (src/lint.ts), checks that each checker rejects a broken
#                       document, generates the TypeScript types (openapi-typescript),
#                       type-checks the typed client with `tsc --noEmit --strict`, then runs
#                       that client against the service (src/contract.ts: every response
#                       validated against the document at run time)
#   check.sh browser    headless Chromium against the service (src/browser.ts): CORS
#                       preflight, EventSource, reconnect with Last-Event-ID
#
# Needs the environment of scripts/test.sh (NC_BIN, DATABASE_URL, ...) for the runs
# against the service. Prints PASS/FAIL/SKIP lines, then "N passed, N failed".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DOC=../../etc/openapi.yaml   # relative to test/contract
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nchat-contract.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$HERE" || exit 1

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; }
# Count the PASS/FAIL lines of a node program as ours; a crash is a failure.
run_counted() {
    local what=$1 out rc=0 line seen=0
    shift
    out=$("$@" 2>&1) || rc=$?
    while IFS= read -r line; do
        case $line in
            PASS\ *) pass "${line#PASS }"; seen=1 ;;
            FAIL\ *) fail "${line#FAIL }"; seen=1 ;;
            SKIP\ *|\#*) printf '%s\n' "$line" ;;
        esac
    done <<<"$out"
    if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        fail "$what exited $rc: $(tail -n 5 <<<"$out")"
    elif [ "$seen" = 0 ] && ! grep -q '^SKIP' <<<"$out"; then
        fail "$what printed no result: $(tail -n 5 <<<"$out")"
    fi
}
# quiet CMD...: run, keep the output for a failure message.
quiet() { "$@" >"$TMP/out" 2>&1; }
tail_out() { grep -v -e '║' -e '╔' -e '╚' -e '^[[:space:]]*$' "$TMP/out" | tail -n "${1:-15}"; }

REDOCLY=(node node_modules/@redocly/cli/bin/cli.js)
TSC=(node node_modules/typescript/bin/tsc)
OAT=(node node_modules/openapi-typescript/bin/cli.js)

if [ ! -d node_modules/@redocly/cli ] || [ ! -d node_modules/playwright-core ]; then
    fail "test/contract/node_modules missing (run scripts/deps.sh)"
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    exit 1
fi

build() {
    [ -f gen/nchat-rtc.d.ts ] || quiet "${OAT[@]}" "$DOC" --default-non-nullable false -o gen/nchat-rtc.d.ts
    # up to date: nothing newer than the last build
    if [ -f .build/.stamp ] && [ -z "$(find src gen tsconfig.json -newer .build/.stamp -print -quit)" ]; then
        return 0
    fi
    if quiet "${TSC[@]}" -p . --outDir .build; then touch .build/.stamp; return 0; fi
    fail "tsc build: $(tail_out)"
    return 1
}

lint_doc() { # FILE -> exit status of redocly lint
    "${REDOCLY[@]}" lint "$1" --config redocly.yaml --format stylish >"$TMP/out" 2>&1
}

contract() {
    # The types first: the client and the tests are compiled against them.
    if quiet "${OAT[@]}" "$DOC" --default-non-nullable false -o gen/nchat-rtc.d.ts; then
        pass "openapi-typescript: gen/nchat-rtc.d.ts"
    else
        fail "openapi-typescript: $(tail_out)"
    fi
    if quiet "${TSC[@]}" --noEmit --strict -p .; then
        pass "tsc --noEmit --strict (typed client, tests)"
    else
        fail "tsc --noEmit --strict: $(tail_out 30)"
    fi
    build || return
    if lint_doc "$DOC"; then
        pass "redocly lint etc/openapi.yaml (recommended-strict, test/contract/redocly.yaml)"
    else
        fail "redocly lint etc/openapi.yaml: $(tail_out 30)"
    fi
    run_counted lint node .build/src/lint.js "$DOC"

    # Each checker must reject a broken document (one that cannot fail proves nothing).
    # The YAML mistake of the old document: an unquoted comma in a flow mapping.
    sed -e '0,/^      operationId: getCall$/{/^      operationId: getCall$/d}' \
        -e "s|^    Unauthorized:\$|    Unauthorized: {description: Missing, expired or invalid token}\n    UnauthorizedOld:|" \
        "$DOC" >"$TMP/broken.yaml"
    local p=()
    lint_doc "$TMP/broken.yaml" && p+=("redocly lint passed it")
    grep -q 'operation-operationId' "$TMP/out" || p+=("redocly missed the missing operationId")
    node .build/src/lint.js "$TMP/broken.yaml" >"$TMP/lint.out" 2>&1
    grep -q '^FAIL swagger-parser' "$TMP/lint.out" || p+=("swagger-parser passed it")
    grep -q '^FAIL every operation has an operationId.*GET /api/calls/{id}: no operationId' "$TMP/lint.out" ||
        p+=("src/lint.ts missed the missing operationId")
    sed -e "0,/^        '429': {\$ref: '#\/components\/responses\/TooManyRequests'}\$/{//d}" "$DOC" >"$TMP/no429.yaml"
    node .build/src/lint.js "$TMP/no429.yaml" >"$TMP/lint.out" 2>&1
    grep -q '^FAIL the generic statuses.*: 429' "$TMP/lint.out" || p+=("src/lint.ts missed an undocumented 429")
    if [ "${#p[@]}" -eq 0 ]; then pass "the checkers reject broken documents"; else fail "the checkers reject broken documents: ${p[*]}"; fi

    if quiet "${REDOCLY[@]}" build-docs "$DOC" --config redocly.yaml -o "$TMP/reference.html" &&
        grep -q 'initiateCall' "$TMP/reference.html"; then
        pass "redocly build-docs renders the reference"
    else
        fail "redocly build-docs: $(tail_out)"
    fi
    run_counted contract node .build/src/contract.js
}

case ${1:-} in
    contract) contract ;;
    browser) build && run_counted browser node .build/src/browser.js ;;
    *) echo "usage: $0 contract|browser" >&2; exit 2 ;;
esac
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
