#!/usr/bin/env bash
# Install what `make run` / `make test` need and is missing. Idempotent and
# quiet: the output of apt-get and npm goes to .run/deps-*.log, shown only if
# something fails.
#
#   scripts/deps.sh           build and test dependencies, node modules of the
#                             stand-ins and of the contract/browser tests
#   scripts/deps.sh --bench   also wrk, pgbouncer, valgrind
#   scripts/deps.sh --build   only what `make` needs to build the service
#
# chromium (browser tests) and prometheus (promtool for the alert rules) are
# installed too; if apt cannot install them, the tests that need them say so.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH=0
BUILD_ONLY=0
for arg in "$@"; do
    case $arg in
        --bench) BENCH=1 ;;
        --build) BUILD_ONLY=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown option: $arg" ;;
    esac
done

LOG_DIR="$NC_ROOT/.run"
mkdir -p "$LOG_DIR"

PKGS=(build-essential pkg-config libevent-dev libpq-dev libcurl4-openssl-dev
      libjansson-dev libjwt-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler
      libhiredis-dev check postgresql postgresql-client redis-server nginx-light pgbouncer
      clang libclang-rt-14-dev)
# Tests that can say "skipped" when these cannot be installed.
OPT_PKGS=(chromium prometheus)
if [ "$BENCH" = 1 ]; then
    PKGS+=(wrk pgbouncer valgrind)
fi
if [ "$BUILD_ONLY" = 1 ]; then
    PKGS=(build-essential pkg-config libevent-dev libpq-dev libcurl4-openssl-dev
          libjansson-dev libjwt-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler
          libhiredis-dev)
    OPT_PKGS=()
fi
# node is a given; npm is not always packaged with it.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=()
for p in "${PKGS[@]}"; do
    installed "$p" || missing+=("$p")
done
opt_missing=()
for p in "${OPT_PKGS[@]}"; do
    installed "$p" || opt_missing+=("$p")
done

# Installing postgresql/redis-server normally starts their system services.
# We run our own throw-away instances, so forbid that for the duration of the
# install with a policy-rc.d (only if there is none already) and stop
# anything that started anyway.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
cleanup_policy() {
    if [ "$OUR_POLICY" = 1 ]; then
        as_root rm -f "$POLICY"
        OUR_POLICY=0
    fi
}

if [ "${#missing[@]}" -gt 0 ] || [ "${#opt_missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages (${missing[*]}) and no apt-get; install them by hand"
    log "installing: ${missing[*]} ${opt_missing[*]}"
    if [ ! -e "$POLICY" ]; then
        trap cleanup_policy EXIT
        printf '#!/bin/sh\n# temporary, from nchat-rtc scripts/deps.sh\nexit 101\n' |
            as_root tee "$POLICY" >/dev/null
        as_root chmod 755 "$POLICY"
        OUR_POLICY=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    run_logged "$LOG_DIR/deps-apt.log" as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get update -qq || die "apt-get update failed"
    if [ "${#missing[@]}" -gt 0 ]; then
        run_logged "$LOG_DIR/deps-apt.log" as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
            die "apt-get install failed"
    fi
    for p in "${opt_missing[@]}"; do
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "$p" >>"$LOG_DIR/deps-apt.log" 2>&1 ||
            warn "could not install $p (see .run/deps-apt.log); the tests that need it will say so"
    done
    cleanup_policy
    trap - EXIT
    # In case a service got started anyway (e.g. a policy-rc.d that allowed it).
    for svc in postgresql redis-server prometheus; do
        case " ${missing[*]} ${opt_missing[*]} " in
            *" $svc "*)
                if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                    as_root systemctl stop "$svc" >/dev/null 2>&1 || true
                elif command -v service >/dev/null 2>&1; then
                    as_root service "$svc" stop >/dev/null 2>&1 || true
                fi ;;
        esac
    done
    log "packages installed"
fi

[ "$BUILD_ONLY" = 1 ] && exit 0

# node_modules of DIR from its package-lock.json (npm ci), when missing or stale.
npm_deps() {
    local dir=$1 what=$2 stamp need=0 npm_cmd
    [ -f "$dir/package.json" ] || return 0
    stamp="$dir/node_modules/.package-lock.json"
    if [ ! -d "$dir/node_modules" ] || [ ! -f "$stamp" ]; then
        need=1
    elif [ -f "$dir/package-lock.json" ] && [ "$dir/package-lock.json" -nt "$stamp" ]; then
        need=1
    elif [ "$dir/package.json" -nt "$stamp" ]; then
        need=1
    fi
    [ "$need" = 1 ] || return 0
    command -v npm >/dev/null 2>&1 || die "npm not found (needed for ${dir#"$NC_ROOT"/})"
    if [ -f "$dir/package-lock.json" ]; then
        npm_cmd=(npm ci --no-audit --no-fund)
    else
        npm_cmd=(npm install --no-audit --no-fund)
    fi
    log "installing $what node modules (${npm_cmd[*]})"
    (cd "$dir" && run_logged "$LOG_DIR/deps-npm.log" "${npm_cmd[@]}") ||
        die "${npm_cmd[*]} failed in ${dir#"$NC_ROOT"/}"
    touch "$stamp"
}

# The LiveKit and S3 stand-ins used by the integration tests; the OpenAPI
# tools, typed client and headless-browser driver of the contract tests
# (playwright-core drives Debian's chromium and downloads no browser).
npm_deps "$NC_ROOT/test/standin" stand-in
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_deps "$NC_ROOT/test/contract" contract-test
exit 0
