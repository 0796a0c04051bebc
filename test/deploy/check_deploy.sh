#!/usr/bin/env bash
# test/deploy/check_deploy.sh - syntax and consistency checks of the
# deployment files in etc/ (containers cannot run where the tests run, so
# each file goes through the checker that exists for it):
#
#   * every YAML file (docker-compose.yml, livekit.yaml, egress.yaml,
#     ingress.yaml, openapi.yaml, openapi.d/*.yaml, prometheus/*.yml,
#     grafana/provisioning) through a real YAML parser
#     plus Compose structure and .env.example cross-checks
#     (test/standin/yamlcheck.js, npm package `yaml`);
#   * `docker compose config` when the Compose plugin is installed;
#   * nchat-rtc.service with `systemd-analyze verify` when it exists, and the
#     directives the service relies on;
#   * nginx.conf with `nginx -t` when nginx is installed, and the SSE and
#     header settings;
#   * turnserver.conf keys against the known coturn options;
#   * Dockerfile stages, nchat-rtc.crontab lines;
#   * that the checkers themselves catch broken input (a checker that cannot
#     fail proves nothing).
#
# Usage: bash test/deploy/check_deploy.sh     (from anywhere)
# Prints PASS/FAIL/SKIP lines, then "N passed, N failed"; exits 1 on failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ETC=$ROOT/etc
STANDIN=$ROOT/test/standin
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nchat-deploy.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; }
skip() { printf 'SKIP %s\n' "$1"; }
# check DESC PROBLEMS... : pass when no problem is given.
check() {
    local what=$1
    shift
    local msg
    if [ "$#" -eq 0 ]; then
        pass "$what"
    else
        msg=$(printf '%s; ' "$@")
        fail "$what: ${msg%; }"
    fi
}

# ----------------------------------------------------------------- YAML
# Runs yamlcheck.js and counts its PASS/FAIL lines as our own.
run_yamlcheck() {
    local out line
    out=$(cd "$ROOT" && node "$STANDIN/yamlcheck.js" "$@" 2>&1)
    while IFS= read -r line; do
        case $line in
            PASS\ *) pass "${line#PASS }" ;;
            FAIL\ *) fail "${line#FAIL }" ;;
            '') ;;
            *) fail "yamlcheck: $line" ;;
        esac
    done <<<"$out"
}

if ! command -v node >/dev/null 2>&1; then
    fail "node not found (needed for the YAML checks)"
elif [ ! -f "$STANDIN/node_modules/yaml/package.json" ]; then
    fail "test/standin/node_modules/yaml missing (run scripts/deps.sh)"
else
    yaml_files=()
    [ -f "$ETC/openapi.yaml" ] && yaml_files+=(etc/openapi.yaml)
    for f in "$ETC"/openapi.d/*.yaml; do
        [ -f "$f" ] && yaml_files+=("etc/openapi.d/${f##*/}")
    done
    for f in "$ETC"/prometheus/*.yml "$ETC"/grafana/provisioning/*/*.yml; do
        [ -f "$f" ] && yaml_files+=("${f#"$ROOT"/}")
    done
    run_yamlcheck --compose etc/docker-compose.yml --env-example etc/.env.example \
        --livekit etc/livekit.yaml --egress etc/egress.yaml --ingress etc/ingress.yaml \
        --turnconf etc/turnserver.conf "${yaml_files[@]}"

    # The checker must reject broken input.
    mkdir -p "$TMP/neg"
    cp "$ETC"/docker-compose.yml "$ETC"/.env.example "$ETC"/livekit.yaml \
        "$ETC"/egress.yaml "$ETC"/ingress.yaml "$ETC"/turnserver.conf "$ETC"/Dockerfile "$TMP/neg/"
    sed -e 's/^\( *\)condition: service_completed_successfully$/&\n\1# mutated/' \
        -e '0,/^      migrate:$/s//      migrate-typo:/' \
        -e 's/^  LOG_FORMAT: json$/  LOG_FORMAT: ${NOT_IN_ENV_EXAMPLE}/' \
        "$ETC/docker-compose.yml" >"$TMP/neg/docker-compose.yml"
    printf 'a: 1\na: 2\n' >"$TMP/neg/dup.yaml"
    printf 'a: [1, 2\n' >"$TMP/neg/broken.yaml"
    sed -e 's#/api/webhooks/livekit#/api/webhook#' "$ETC/livekit.yaml" >"$TMP/neg/livekit.yaml"
    neg=$(cd "$TMP/neg" && node "$STANDIN/yamlcheck.js" --compose docker-compose.yml \
        --env-example .env.example --livekit livekit.yaml dup.yaml broken.yaml 2>&1)
    p=()
    grep -q '^FAIL .*depends_on unknown service migrate-typo' <<<"$neg" ||
        p+=("a depends_on to a missing service went unnoticed")
    grep -q '^FAIL .*NOT_IN_ENV_EXAMPLE} is not listed' <<<"$neg" ||
        p+=("a variable missing from .env.example went unnoticed")
    grep -q '^FAIL parse dup.yaml' <<<"$neg" || p+=("a duplicate key went unnoticed")
    grep -q '^FAIL parse broken.yaml' <<<"$neg" || p+=("a syntax error went unnoticed")
    grep -q '^FAIL livekit.yaml: LiveKit settings: webhook.urls' <<<"$neg" ||
        p+=("a wrong webhook URL went unnoticed")
    check "yamlcheck rejects broken files" "${p[@]}"
fi

# `docker compose config` resolves the file the way Compose will run it.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    if out=$(docker compose -f "$ETC/docker-compose.yml" --env-file "$ETC/.env.example" config -q 2>&1); then
        pass "docker compose config"
    else
        fail "docker compose config: $out"
    fi
else
    skip "docker compose config (the Compose plugin is not installed)"
fi

# ---------------------------------------------------------------- systemd
UNIT=$ETC/nchat-rtc.service
# Problems systemd-analyze verify reports that come only from this machine
# not being the deployment target (the binary is not installed here).
unit_messages() { # FILE -> the verify lines about our unit that matter
    local f=$1 name
    name=$(basename "$f")
    systemd-analyze verify "$f" 2>&1 |
        grep -F "$name" |
        grep -v -x -F "$name: Command /usr/local/bin/nchat-rtc is not executable: No such file or directory" |
        grep -v -E "^$name: Failed to resolve (user|group) nchat-rtc"
}
if command -v systemd-analyze >/dev/null 2>&1; then
    msgs=$(unit_messages "$UNIT")
    if [ -z "$msgs" ]; then pass "systemd-analyze verify nchat-rtc.service"; else fail "systemd-analyze verify: $msgs"; fi
    # ...and it does complain about a broken copy.
    mkdir -p "$TMP/unit"
    sed -e 's/^Restart=on-failure$/Restart=sometimes/' "$UNIT" >"$TMP/unit/nchat-rtc.service"
    printf 'Bogus=1\n' >>"$TMP/unit/nchat-rtc.service"
    msgs=$(unit_messages "$TMP/unit/nchat-rtc.service")
    p=()
    grep -q 'sometimes' <<<"$msgs" || p+=("a bad Restart= value went unnoticed")
    grep -q 'Bogus' <<<"$msgs" || p+=("an unknown key went unnoticed")
    check "systemd-analyze verify rejects a broken unit" "${p[@]}"
else
    skip "systemd-analyze verify (systemd-analyze not installed)"
fi

# Directives the deployment relies on (checked with or without systemd).
unit_val() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
p=()
for kv in Type=simple User=nchat-rtc EnvironmentFile=/etc/nchat-rtc/nchat-rtc.env \
          "ExecStart=/usr/local/bin/nchat-rtc serve" Restart=on-failure KillSignal=SIGTERM \
          NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes LimitNOFILE=65536; do
    [ "$(unit_val "${kv%%=*}")" = "${kv#*=}" ] || p+=("${kv%%=*} is not ${kv#*=}")
done
grep -q '^ExecStartPre=.*migrate' "$UNIT" && p+=("migrations must not run from ExecStartPre")
stop=$(unit_val TimeoutStopSec)
stop_s=${stop%s}
if ! [[ "$stop_s" =~ ^[0-9]+$ ]] || [ "$stop_s" -le 25 ]; then
    p+=("TimeoutStopSec ($stop) must exceed the 25 s drain")
fi
check "nchat-rtc.service directives" "${p[@]}"

# ------------------------------------------------------------------ nginx
CONF=$ETC/nginx.conf
# Static checks: the upstream and the SSE location.
p=()
opens=$(tr -cd '{' <"$CONF" | wc -c)
closes=$(tr -cd '}' <"$CONF" | wc -c)
[ "$opens" = "$closes" ] || p+=("unbalanced braces ($opens '{', $closes '}')")
upstream=$(awk '/^[ \t]*upstream[ \t]/,/^[ \t]*}/' "$CONF")
[ "$(grep -c '^[ \t]*server[ \t]' <<<"$upstream")" -ge 2 ] || p+=("upstream does not balance two instances")
grep -q '^[ \t]*keepalive[ \t]' <<<"$upstream" || p+=("upstream has no keepalive")
sse=$(awk '/location \/api\/events/,/^[ \t]*}/' "$CONF")
[ -n "$sse" ] || p+=("no location /api/events")
grep -q 'proxy_buffering off;' <<<"$sse" || p+=("/api/events is buffered")
timeout=$(sed -n 's/^[ \t]*proxy_read_timeout[ \t]*\([0-9]*\)\([smh]\);.*/\1 \2/p' <<<"$sse")
case $timeout in
    *\ h) ;;
    *\ m) [ "${timeout% m}" -ge 5 ] || p+=("/api/events proxy_read_timeout too short") ;;
    *\ s) [ "${timeout% s}" -ge 300 ] || p+=("/api/events proxy_read_timeout too short") ;;
    *) p+=("/api/events has no long proxy_read_timeout") ;;
esac
grep -q 'proxy_http_version 1.1;' "$CONF" || p+=("no proxy_http_version 1.1")
grep -q 'proxy_set_header Connection "";' "$CONF" || p+=('no proxy_set_header Connection ""')
grep -q 'proxy_set_header X-Request-Id ' "$CONF" || p+=("X-Request-Id not passed")
grep -q 'proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;' "$CONF" || p+=("no X-Forwarded-For")
check "nginx.conf upstream and SSE settings" "${p[@]}"

if command -v nginx >/dev/null 2>&1; then
    # Same file, with pid and logs moved under a temporary prefix (nginx -t
    # opens them) and ports moved off the privileged range.
    mkdir -p "$TMP/nginx/logs"
    sed -e "s#^pid .*#pid $TMP/nginx/nginx.pid;#" \
        -e "s#^error_log [^ ;]*#error_log $TMP/nginx/logs/error.log#" \
        -e "s#access_log [^ ;]*#access_log $TMP/nginx/logs/access.log#" \
        -e 's#listen 80;#listen 127.0.0.1:18080;#' \
        "$CONF" >"$TMP/nginx/nginx.conf"
    cp /etc/nginx/mime.types "$TMP/nginx/" 2>/dev/null || true
    if out=$(nginx -t -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'error_log stderr;' 2>&1); then
        pass "nginx -t"
    else
        fail "nginx -t: $out"
    fi
else
    skip "nginx -t (nginx is not installed; add nginx-light to run it)"
fi

# ------------------------------------------------------------ turnserver
TURN=$ETC/turnserver.conf
# coturn 4.6 options that take no value / take one (turnserver --help).
TURN_FLAGS=" use-auth-secret fingerprint no-cli no-multicast-peers no-tlsv1 no-tlsv1_1 no-tlsv1_2
 no-udp no-tcp no-tls no-dtls no-udp-relay no-tcp-relay simple-log no-stdout-log syslog
 lt-cred-mech no-auth verbose Verbose stale-nonce mobility no-loopback-peers
 no-software-attribute no-rfc5780 no-stun-backward-compatibility response-origin-only-with-rfc5780
 secure-stun check-origin-consistency prod log-binding new-log-timestamp "
TURN_OPTS=" listening-port tls-listening-port alt-listening-port alt-tls-listening-port
 listening-ip relay-ip external-ip relay-device listening-device min-port max-port
 static-auth-secret realm user userdb psql-userdb mysql-userdb mongo-userdb redis-userdb
 redis-statsdb max-bps bps-capacity user-quota total-quota cert pkey pkey-pwd cipher-list
 ca-file dh-file dh2066 ec-curve-name allowed-peer-ip denied-peer-ip log-file pidfile
 server-name oauth-attribute cli-ip cli-port cli-password web-admin-ip web-admin-port
 proc-user proc-group max-allocate-lifetime channel-lifetime permission-lifetime
 stale-nonce rest-api-separator aux-server udp-self-balance alternate-server
 tls-alternate-server server-relay keep-address-family prometheus prometheus-port
 no-prometheus-username-labels new-log-timestamp-format log-binding stun-only
 no-stun allocation-default-address-family acme-redirect  "
TURN_FLAGS=$(tr '\n' ' ' <<<"$TURN_FLAGS")
TURN_OPTS=$(tr '\n' ' ' <<<"$TURN_OPTS")
p=()
seen=" "
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=$(sed -e 's/^[ \t]*//' -e 's/[ \t]*$//' <<<"$line")
    [ -z "$line" ] && continue
    key=${line%%=*}
    key=${key#--}
    if [[ "$line" == *=* ]]; then
        [[ "$TURN_OPTS" == *" $key "* ]] || p+=("unknown option $key")
        [ -n "${line#*=}" ] || p+=("$key has an empty value")
    else
        [[ "$TURN_FLAGS" == *" $key "* ]] || p+=("unknown flag $key (or missing =value)")
    fi
    seen+="$key "
done <"$TURN"
for k in use-auth-secret static-auth-secret realm listening-port tls-listening-port \
         min-port max-port no-cli fingerprint denied-peer-ip; do
    [[ "$seen" == *" $k "* ]] || p+=("$k missing")
done
[[ "$seen" == *" lt-cred-mech "* || "$seen" == *" no-auth "* ]] &&
    p+=("lt-cred-mech/no-auth contradict use-auth-secret")
for range in 10.0.0.0-10.255.255.255 172.16.0.0-172.31.255.255 192.168.0.0-192.168.255.255 \
             127.0.0.0-127.255.255.255 169.254.0.0-169.254.255.255; do
    grep -q "^denied-peer-ip=$range\$" "$TURN" || p+=("private range $range not denied")
done
check "turnserver.conf options" "${p[@]}"

# ------------------------------------------------------------- Dockerfile
DF=$ETC/Dockerfile
p=()
[ "$(grep -c '^FROM debian:12' "$DF")" -ge 2 ] || p+=("expected two debian:12 stages")
grep -q '^FROM debian:12[^ ]* AS build$' "$DF" || p+=("no build stage")
grep -q '^COPY --from=build ' "$DF" || p+=("runtime does not copy from the build stage")
grep -q 'make ' "$DF" || p+=("the build stage does not run make")
grep -q 'usr/local/share/nchat-rtc/sql' "$DF" || p+=("sql/ not installed beside the binary")
runtime=$(awk '/^FROM /{n++} n==2' "$DF" | sed -e '/^[ \t]*#/d')
grep -q -- '-dev\b' <<<"$runtime" && p+=("the runtime stage installs -dev packages")
grep -q '^USER ' <<<"$runtime" || p+=("the runtime runs as root")
while IFS= read -r instr; do
    case $instr in
        FROM|RUN|COPY|ENV|USER|EXPOSE|STOPSIGNAL|HEALTHCHECK|ENTRYPOINT|CMD|WORKDIR|ARG|LABEL) ;;
        *) p+=("unknown instruction $instr") ;;
    esac
done < <(sed -e '/^[ \t]*#/d' -e '/^[ \t]*$/d' "$DF" | awk 'prev !~ /\\$/ {print $1} {prev=$0}')
for f in Makefile include proto src sql; do
    grep -q "^COPY $f" "$DF" && [ ! -e "$ROOT/$f" ] && p+=("COPY $f: no such path")
done
check "Dockerfile stages" "${p[@]}"

# --------------------------------------------------------------- crontab
CRON=$ETC/nchat-rtc.crontab
p=()
if [ -f "$CRON" ]; then
    while IFS= read -r line; do
        case $line in ''|\#*|[A-Z_]*=*) continue ;; esac
        read -r m h dom mon dow cmd rest <<<"$line"
        for f in "$m" "$h" "$dom" "$mon" "$dow"; do
            [[ "$f" =~ ^[0-9*/,-]+$ ]] || p+=("bad time field '$f' in: $line")
        done
        case "$cmd ${rest%% *}" in
            "nchat-rtc sweep-calls"|"nchat-rtc sweep-recordings"|"nchat-rtc sweep-data"|\
            "nchat-rtc rollup-reports") ;;
            *) p+=("not a nchat-rtc sweep: $line") ;;
        esac
    done <"$CRON"
else
    p+=("etc/nchat-rtc.crontab missing")
fi
check "nchat-rtc.crontab lines" "${p[@]}"

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
