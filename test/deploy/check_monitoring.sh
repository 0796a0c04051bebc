#!/usr/bin/env bash
# test/deploy/check_monitoring.sh - the operator's files: etc/prometheus/alerts.yml,
# etc/prometheus/prometheus.yml and etc/grafana/nchat-rtc.json.
#
#   * promtool check rules / check config, and promtool test rules with
#     etc/prometheus/alerts.test.yml (each alert fires on its failure, not on a
#     healthy service); promtool rejects a broken rule;
#   * the dashboard is a well-formed Grafana dashboard (ids, grid, datasource variable);
#   * every metric name the dashboard and the rules use is one a running nchat-rtc
#     exports (its /metrics is scraped), and the check flags a misspelt name;
#   * docker-compose.yml's optional monitoring profile mounts these files.
#
# Usage: bash test/deploy/check_monitoring.sh   (make test runs it with the test services;
# without NC_BIN/DATABASE_URL the scrape is skipped)
# Prints PASS/FAIL/SKIP lines, then "N passed, N failed"; exits 1 on failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/scripts/lib.sh"
ETC=$ROOT/etc
RULES=$ETC/prometheus/alerts.yml
DASH=$ETC/grafana/nchat-rtc.json
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nchat-monitoring.XXXXXX")
SRV_PID=""
cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$1"; }
skip() { printf 'SKIP %s\n' "$1"; }

# ---------------------------------------------------------------- promtool
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ]; then
    skip "promtool checks (promtool not installed: Debian package prometheus, scripts/deps.sh)"
else
    if out=$("$PROMTOOL" check rules "$RULES" 2>&1); then pass "promtool check rules alerts.yml ($(grep -o '[0-9]* rules found' <<<"$out"))"
    else fail "promtool check rules: $out"; fi
    if out=$(cd "$ETC/prometheus" && "$PROMTOOL" test rules alerts.test.yml 2>&1); then pass "promtool test rules alerts.test.yml"
    else fail "promtool test rules: $out"; fi
    if out=$("$PROMTOOL" check config "$ETC/prometheus/prometheus.yml" 2>&1); then pass "promtool check config prometheus.yml"
    else fail "promtool check config: $out"; fi
    sed -e '0,/expr: max(nchat_outbound_webhooks_dead) > 0/s//expr: max(nchat_outbound_webhooks_dead > 0/' "$RULES" >"$TMP/broken.yml"
    if "$PROMTOOL" check rules "$TMP/broken.yml" >/dev/null 2>&1; then fail "promtool accepted a broken rule"
    else pass "promtool rejects a broken rule"; fi
fi

# -------------------------------------------- dashboard and metric names
# names.js DASH RULES [METRICS]: PASS/FAIL lines; with METRICS (a /metrics scrape),
# every nchat_* name used must be exported (histograms: name_bucket/_sum/_count).
cat >"$TMP/names.js" <<'JS'
const fs = require('fs');
const YAML = require(process.env.YAML_MODULE);
const [dashFile, rulesFile, metricsFile] = process.argv.slice(2);
let failed = 0;
const out = (ok, what, why) => { if (!ok) failed++; console.log(`${ok ? 'PASS' : 'FAIL'} ${what}${ok ? '' : ': ' + why}`); };
const dash = JSON.parse(fs.readFileSync(dashFile, 'utf8'));
const rules = YAML.parse(fs.readFileSync(rulesFile, 'utf8'));
const exprs = [];
const p = [];
const ids = new Set();
for (const panel of dash.panels || []) {
  if (ids.has(panel.id)) p.push(`duplicate panel id ${panel.id}`);
  ids.add(panel.id);
  const g = panel.gridPos || {};
  if (!(g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24)) p.push(`panel ${panel.id} gridPos ${JSON.stringify(g)}`);
  if (panel.type === 'row') continue;
  if (!panel.title) p.push(`panel ${panel.id} has no title`);
  if (!panel.datasource || panel.datasource.uid !== '${datasource}') p.push(`panel ${panel.title}: datasource is not \${datasource}`);
  if (!(panel.targets || []).length) p.push(`panel ${panel.title}: no query`);
  for (const t of panel.targets || []) exprs.push({ where: `dashboard "${panel.title}"`, expr: t.expr || '' });
}
const vars = (dash.templating && dash.templating.list || []).map((v) => v.name);
if (!vars.includes('datasource')) p.push('no datasource variable');
if (!dash.uid || !dash.title) p.push('no uid/title');
out(p.length === 0, `${dashFile.split('/').slice(-2).join('/')}: a well-formed Grafana dashboard (${ids.size} panels)`, p.join('; '));
for (const g of rules.groups || []) for (const r of g.rules || [])
  exprs.push({ where: `rule ${r.alert || r.record}`, expr: String(r.expr) });
for (const v of dash.templating.list) if (v.definition) exprs.push({ where: `variable ${v.name}`, expr: v.definition });
const used = new Map();
for (const { where, expr } of exprs)
  for (const m of expr.matchAll(/\b(nchat_[a-z0-9_]+)\b/g)) used.set(m[1], (used.get(m[1]) || []).concat(where));
out(used.size > 0, `the dashboard and the rules use ${used.size} nchat-rtc metric names`, 'none found');
if (metricsFile) {
  const text = fs.readFileSync(metricsFile, 'utf8');
  const types = new Map();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  const known = (n) => types.has(n) ||
    [...['_bucket', '_sum', '_count']].some((s) => n.endsWith(s) && types.get(n.slice(0, -s.length)) === 'histogram');
  const missing = [...used.keys()].filter((n) => !known(n)).map((n) => `${n} (${used.get(n)[0]})`);
  out(missing.length === 0, `every metric name used is exported by nchat-rtc (${types.size} families scraped)`,
      `not exported: ${missing.join(', ')}`);
}
process.exitCode = failed ? 1 : 0;
JS
export YAML_MODULE="$ROOT/test/standin/node_modules/yaml"
run_names() {
    local line
    while IFS= read -r line; do
        case $line in
            PASS\ *) pass "${line#PASS }" ;;
            FAIL\ *) fail "${line#FAIL }" ;;
            *) [ -n "$line" ] && fail "names.js: $line" ;;
        esac
    done < <(node "$TMP/names.js" "$@" 2>&1)
}

if ! command -v node >/dev/null 2>&1 || [ ! -f "$YAML_MODULE/package.json" ]; then
    fail "node or test/standin/node_modules/yaml missing (run scripts/deps.sh)"
elif [ -z "${NC_BIN:-}" ] || [ -z "${DATABASE_URL:-}" ]; then
    if [ -n "${NC_RUN_DIR:-}" ]; then fail "NC_BIN/DATABASE_URL not set under make test"
    else skip "the scrape of a running nchat-rtc (NC_BIN/DATABASE_URL not set; run through make test)"; fi
    run_names "$DASH" "$RULES"
else
    port=$(free_port)
    mport=$(free_port)
    while [ "$mport" = "$port" ]; do mport=$(free_port); done
    logf=${NC_RUN_DIR:-$TMP}/monitoring-server.log
    # /metrics is served on its own listener (METRICS_ADDR), on a free port here
    LISTEN_ADDR=127.0.0.1:$port METRICS_ADDR=127.0.0.1:$mport LOG_LEVEL=warn "$NC_BIN" serve \
        >"$logf" 2>&1 </dev/null &
    SRV_PID=$!
    ok=0
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then ok=1; break; fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$ok" = 1 ] && curl -fsS -o "$TMP/metrics.txt" "http://127.0.0.1:$mport/metrics"; then
        run_names "$DASH" "$RULES" "$TMP/metrics.txt"
        # The name check must catch a misspelt metric.
        sed -e 's/max(nchat_active_calls{/max(nchat_active_calss{/' "$DASH" >"$TMP/typo.json"
        sed -e 's/max(nchat_recordings_starting_oldest_seconds)/max(nchat_recordings_starting_oldest)/' "$RULES" >"$TMP/typo.yml"
        neg=$(node "$TMP/names.js" "$TMP/typo.json" "$TMP/typo.yml" "$TMP/metrics.txt" 2>&1)
        if grep -q 'not exported: .*nchat_active_calss.*nchat_recordings_starting_oldest ' <<<"$neg"; then
            pass "the name check flags misspelt metric names"
        else
            fail "the name check missed misspelt names: $neg"
        fi
    else
        fail "nchat-rtc did not start or serve /metrics (see $logf)"
    fi
    kill -TERM "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
fi

# ------------------------------------------------------------ compose profile
out=$(node - "$ETC/docker-compose.yml" <<'JS' 2>&1
const fs = require('fs');
const YAML = require(process.env.YAML_MODULE);
const c = YAML.parse(fs.readFileSync(process.argv[2], 'utf8'));
const s = c.services || {};
const p = [];
for (const n of ['prometheus', 'grafana']) {
  if (!s[n]) { p.push(`service ${n} missing`); continue; }
  if (JSON.stringify(s[n].profiles) !== '["monitoring"]') p.push(`${n} is not only in profile monitoring`);
}
const vols = (n) => JSON.stringify((s[n] || {}).volumes || []);
for (const f of ['./prometheus/prometheus.yml', './prometheus/alerts.yml']) if (!vols('prometheus').includes(f)) p.push(`prometheus does not mount ${f}`);
for (const f of ['./grafana/provisioning', './grafana/nchat-rtc.json']) if (!vols('grafana').includes(f)) p.push(`grafana does not mount ${f}`);
for (const [n, svc] of Object.entries(s)) if (!['prometheus', 'grafana'].includes(n) && svc.profiles) p.push(`${n} has a profile: the base stack must not need one`);
console.log(p.join('; '));
JS
)
if [ -z "$out" ]; then pass "docker-compose.yml: prometheus and grafana in the optional monitoring profile, provisioned with these files"
else fail "docker-compose.yml monitoring profile: $out"; fi

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
