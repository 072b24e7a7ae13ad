#!/usr/bin/env bash
# Builds the commit under test (`cargo build --locked`, with any further
# cargo arguments given, e.g. --release; a no-op when the build is fresh) and
# prints the path of the amldns binary that build made, so that the scripts
# that run amldns (e2e.sh, zonecheck.sh, check-deploy.sh) run exactly it,
# never an older binary left in target/. Cargo's own messages go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(timeout 1800 cargo build --locked --bin amldns --message-format=json-render-diagnostics "$@")
exe=$(grep -o '"executable":"[^"]*/amldns"' <<<"$out" | tail -n 1 | sed 's/^"executable":"//; s/"$//')
if [[ -z $exe || ! -x $exe ]]; then
  echo "build-amldns: cargo build made no amldns binary" >&2
  exit 1
fi
echo "$exe"
