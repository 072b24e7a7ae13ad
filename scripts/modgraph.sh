#!/usr/bin/env bash
# The graph of amldns's modules (`use crate::…` and `crate::x::` paths in
# non-test code) and its cycles. Prints one "from to" line per edge, then
# either "no cycles" or the modules tsort(1) finds on a cycle, and exits 1 on
# a cycle, so CI can call it. A module is a top-level name under src/: both
# src/x.rs and src/x/*.rs count as `x`. Test modules (from a line
# `#[cfg(test)]` on) are left out: a test may use any module.
set -euo pipefail
cd "$(dirname "$0")/../src"

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
        # Non-test code only: stop at the first `#[cfg(test)]`.
        awk '/^[[:space:]]*#\[cfg\(test\)\]/ { exit } { print }' "$file" |
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
loops=$(printf '%s\n' "$edges" | awk '{ print $2, $1 }' | tsort 2>&1 >/dev/null || true)
if [ -n "$loops" ]; then
    printf '%s\n' "$loops" >&2
    echo "cycles found" >&2
    exit 1
fi
echo "no cycles" >&2
