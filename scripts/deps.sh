#!/usr/bin/env bash
# Install what `make run` / `make test` need and is missing. Idempotent and
# quiet: the output of apt-get and npm goes to .run/deps-*.log, shown only if
# something fails.
#
#   scripts/deps.sh           build and test dependencies, stand-in node modules
#   scripts/deps.sh --bench   also wrk, pgbouncer, valgrind
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BENCH=0
for arg in "$@"; do
    case $arg in
        --bench) BENCH=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) die "unknown option: $arg" ;;
    esac
done

LOG_DIR="$NC_ROOT/.run"
mkdir -p "$LOG_DIR"

PKGS=(build-essential pkg-config libevent-dev libpq-dev libcurl4-openssl-dev
      libjansson-dev libjwt-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler
      libhiredis-dev check postgresql postgresql-client redis-server nginx-light pgbouncer
      clang libclang-rt-14-dev)
if [ "$BENCH" = 1 ]; then
    PKGS+=(wrk pgbouncer valgrind)
fi
# node is a given; npm is not always packaged with it.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
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

if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing packages (${missing[*]}) and no apt-get; install them by hand"
    log "installing: ${missing[*]}"
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
    run_logged "$LOG_DIR/deps-apt.log" as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed"
    cleanup_policy
    trap - EXIT
    # In case a service got started anyway (e.g. a policy-rc.d that allowed it).
    for svc in postgresql redis-server; do
        case " ${missing[*]} " in
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

# Node modules for the LiveKit and S3 stand-ins used by the integration tests.
STANDIN="$NC_ROOT/test/standin"
if [ -f "$STANDIN/package.json" ]; then
    stamp="$STANDIN/node_modules/.package-lock.json"
    need=0
    if [ ! -d "$STANDIN/node_modules" ] || [ ! -f "$stamp" ]; then
        need=1
    elif [ -f "$STANDIN/package-lock.json" ] && [ "$STANDIN/package-lock.json" -nt "$stamp" ]; then
        need=1
    elif [ "$STANDIN/package.json" -nt "$stamp" ]; then
        need=1
    fi
    if [ "$need" = 1 ]; then
        command -v npm >/dev/null 2>&1 || die "npm not found (needed for test/standin)"
        if [ -f "$STANDIN/package-lock.json" ]; then
            npm_cmd=(npm ci --no-audit --no-fund)
        else
            npm_cmd=(npm install --no-audit --no-fund)
        fi
        log "installing stand-in node modules (${npm_cmd[*]})"
        (cd "$STANDIN" && run_logged "$LOG_DIR/deps-npm.log" "${npm_cmd[@]}") ||
            die "${npm_cmd[*]} failed in test/standin"
        touch "$stamp"
    fi
fi
exit 0
