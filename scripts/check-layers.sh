#!/usr/bin/env bash
# Check the include graph of src/ and include/ against scripts/layers: every
# project #include names a folder ("folder/name.h"), points to the same layer
# or a lower one, and the file graph has no cycle.  Prints each offending line
# as file:line: message, exits 1 if there is any.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

declare -A RANK=()
n=0
while read -r line; do
    line=${line%%#*}
    for f in $line; do RANK[$f]=$n; n=$((n + 1)); done
done < scripts/layers

bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

# module of a path: src/F/x.c and include/F/x.h are both "F/x"
module() { local p=${1#src/}; p=${p#include/}; echo "${p%.*}"; }

for file in $(find src include -name '*.[ch]' | sort); do
    rel=${file#src/}; rel=${rel#include/}
    folder=${rel%%/*}
    if [ "$folder" = "$rel" ] || [ -z "${RANK[$folder]+x}" ]; then
        echo "$file:1: not in a folder listed in scripts/layers"; bad=1; continue
    fi
    me=$(module "$file")
    while IFS=: read -r lineno text; do
        inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/' <<<"$text")
        case $inc in *.pb-c.h) continue ;; esac
        ifolder=${inc%%/*}
        if [ "$ifolder" = "$inc" ]; then
            echo "$file:$lineno: #include \"$inc\" names no folder"; bad=1; continue
        fi
        if [ ! -f "include/$inc" ]; then
            echo "$file:$lineno: #include \"$inc\": no such header under include/"; bad=1; continue
        fi
        if [ -z "${RANK[$ifolder]+x}" ]; then
            echo "$file:$lineno: #include \"$inc\": folder $ifolder not in scripts/layers"; bad=1; continue
        fi
        if [ "${RANK[$ifolder]}" -gt "${RANK[$folder]}" ]; then
            echo "$file:$lineno: #include \"$inc\": $folder may not include $ifolder (a higher layer)"; bad=1
        fi
        other=$(module "include/$inc")
        [ "$other" != "$me" ] && echo "$other $me" >> "$edges"
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$file")
done

# tsort prints the members of any cycle on stderr.
cyc=$(tsort "$edges" 2>&1 >/dev/null | sed -n 's/^tsort: //p' | grep -v 'input contains a loop')
if [ -n "$cyc" ]; then
    echo "include cycle between: $(tr '\n' ' ' <<<"$cyc")"
    bad=1
fi
[ "$bad" = 0 ] && echo "layers: ok ($(wc -l < "$edges") includes, $n layers)"
exit "$bad"
