#!/usr/bin/env bash
# The graph of amldns's modules (`use crate::…` and `crate::x::` paths in
# non-test code) and its cycles. Prints one "from to" line per edge, then
# either "no cycles" or one "cycle: …" line per loop that tsort(1) finds, and
# exits 1 on a cycle, so CI can call it (needs perl and coreutils' tsort).
# A module is a top-level name under src/: src/x.rs and src/x/*.rs are `x`.
# Test modules are left out: a test may use any module.
set -euo pipefail
# The source folder: the first argument, or this repository's src/.
cd "${1:-$(dirname "$0")/../src}"

module_of() {
    local f=${1#./}
    f=${f%.rs}
    f=${f%/mod}
    printf '%s\n' "${f%%/*}"
}

# The modules a file's non-test code names: `crate::x`, and each first
# segment of a `crate::{x, y::{…}}` group, over lines; comments and test
# modules (a `#[cfg(test)]` over a `mod`, to the end of the file) left out.
uses() {
    perl -0777 -ne '
        s{#\[cfg\(test\)\]\s*(pub\s+)?mod\b.*}{}s;
        s{//[^\n]*}{}g;
        while (/\bcrate::(\{|[a-z_][a-z0-9_]*)/g) {
            if ($1 ne "{") { print "$1\n"; next }
            my ($depth, $item, $pos) = (0, "", pos());
            for (; $pos < length; $pos++) {
                my $c = substr($_, $pos, 1);
                last if $c eq "}" && $depth == 0;
                $depth++ if $c eq "{";
                $depth-- if $c eq "}";
                if ($c eq "," && $depth == 0) {
                    print "$1\n" if $item =~ /^\s*([a-z_][a-z0-9_]*)/;
                    $item = "";
                } else {
                    $item .= $c;
                }
            }
            print "$1\n" if $item =~ /^\s*([a-z_][a-z0-9_]*)/;
        }' "$1"
}

edges=$(
    find . -name '*.rs' | sort | while read -r file; do
        from=$(module_of "$file")
        [ "$from" = main ] && continue
        uses "$file" | while read -r to; do
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
