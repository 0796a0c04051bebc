#!/usr/bin/env bash
# The documentation must match the code: etc/openapi.yaml is up to date with
# its fragments and describes exactly the endpoints the binary serves
# (`nchat-rtc routes`); etc/nchat-rtc.conf.example and README.md name exactly
# the configuration keys the binary reads (`nchat-rtc config`).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

if bash scripts/openapi.sh --check; then ok "etc/openapi.yaml matches etc/openapi.d"; else bad "etc/openapi.yaml is stale"; fi
bin=build/release/nchat-rtc
if [ ! -x "$bin" ]; then
    bad "$bin not built"
else
    "$bin" routes >"${TMPDIR:-/tmp}/nc-routes.$$" 2>&1
    out=$(node - "$root/etc/openapi.yaml" "${TMPDIR:-/tmp}/nc-routes.$$" <<'JS'
const fs = require('fs');
const Y = require(process.cwd() + '/test/standin/node_modules/yaml');
const doc = Y.parse(fs.readFileSync(process.argv[2], 'utf8'));
const routes = fs.readFileSync(process.argv[3], 'utf8').trim().split('\n')
  .map(l => l.split(' ')).filter(([m]) => m !== 'HEAD' && m !== 'OPTIONS');
const served = new Set(routes.map(([m, p]) => m.toLowerCase() + ' ' + p));
const documented = new Set();
for (const [p, ops] of Object.entries(doc.paths || {}))
  for (const m of Object.keys(ops)) if (['get','post','put','delete','patch'].includes(m)) documented.add(m + ' ' + p);
let bad = 0;
for (const r of served) if (!documented.has(r)) { console.log('undocumented: ' + r); bad++; }
for (const d of documented) if (!served.has(d)) { console.log('documented but not served: ' + d); bad++; }
console.log(`${served.size} served, ${documented.size} documented`);
process.exit(bad ? 1 : 0);
JS
    )
    rc=$?
    echo "$out"
    if [ $rc -eq 0 ]; then ok "every served endpoint is documented and vice versa"; else bad "routes and etc/openapi.yaml differ"; fi
    rm -f "${TMPDIR:-/tmp}/nc-routes.$$"
fi
if [ -x "$bin" ]; then
    keys=$(env -i PATH="$PATH" "$bin" config 2>/dev/null | cut -d= -f1 | sort)
    ex=$(grep -oE '^#? ?[A-Z][A-Z0-9_]+=' etc/nchat-rtc.conf.example | tr -d '# =' | sort)
    if [ -n "$keys" ] && [ "$keys" = "$ex" ]; then
        ok "etc/nchat-rtc.conf.example lists exactly the $(wc -l <<<"$keys") keys"
    else
        bad "etc/nchat-rtc.conf.example and the binary's keys differ: $(comm -3 <(echo "$keys") <(echo "$ex") | tr '\n' ' ')"
    fi
    missing=""
    for k in $keys; do grep -q "\`$k\`" README.md || missing="$missing $k"; done
    if [ -z "$missing" ]; then ok "README.md documents every key"; else bad "README.md lacks:$missing"; fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
