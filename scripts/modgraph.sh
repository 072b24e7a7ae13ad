#!/usr/bin/env bash
# The graph of amldns's modules (`use crate::…` and `crate::x::` paths in
# non-test code) and its cycles. Prints one "from to" line per edge, then
# either "no cycles" or the modules tsort(1) finds on a cycle, and exits 1 on
# a cycle, so CI can call it. A module is a top-level name under src/: both
# src/x.rs and src/x/*.rs count as `x`. Test modules (from a `#[cfg(test)]`
# over a `mod` to the end of the file) are left out: a test may use any module.
set -euo pipefail
# The source folder: the first argument, or this repository's src/.
cd "${1:-$(dirname "$0")/../src}"

module_of() {
    local f=${1#./}
    f=${f%.rs}
    f=${f%/mod}
    printf '%s\n' "${f%%/*}"
}

edges=$(
    find . -name '*.rs' | sort | while read -r file; do
        from=$(module_of "$file")
        [ "$from" = main ] && continue
        # Non-test code only: stop at a `#[cfg(test)]` over a module.
        awk '/^[[:space:]]*#\[cfg\(test\)\]/ { held = $0; next }
             held != "" && /^[[:space:]]*(pub )?mod / { exit }
             held != "" { print held; held = "" }
             { print }' "$file" |
            grep -v '^[[:space:]]*//' |
            grep -o 'crate::\(\({[^}]*}\)\|[a-z_][a-z0-9_]*\)' |
            sed 's/^crate:://' |
            tr -d '{}' | tr ',' '\n' | sed 's/^[[:space:]]*//; s/::.*//' |
            grep -E '^[a-z_][a-z0-9_]*$' |
            while read -r to; do
                [ "$to" != "$from" ] && [ "$to" != self ] && printf '%s %s\n' "$from" "$to"
            done
    done | sort -u
)
printf '%s\n' "$edges"
# tsort wants "before after"; an edge "a uses b" puts b before a.
# tsort reports each loop it breaks as "input contains a loop:" and then
# the loop's modules, one a line: print each loop on one line.
loops=$(
    printf '%s\n' "$edges" | awk '{ print $2, $1 }' | tsort 2>&1 >/dev/null |
        awk '/input contains a loop/ { if (l != "") print l; l = "cycle:"; next }
             { sub(/^tsort: /, ""); l = l " " $0 }
             END { if (l != "") print l }'
) || true
if [ -n "$loops" ]; then
    printf '%s\n' "$loops" >&2
    exit 1
fi
echo "no cycles" >&2
