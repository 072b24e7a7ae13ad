#!/usr/bin/env bash
# cargo audit of Cargo.lock against the RustSec database, offline: the
# snapshot beside the repository (../shared/advisory-db), or the one named by
# AMLDNS_ADVISORY_DB. Without a database it says so and exits 0; with one it
# installs cargo-audit when missing, and fails on any advisory.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${AMLDNS_ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$db" ]; then
  echo "audit: skipped: no advisory database at $db (set AMLDNS_ADVISORY_DB)"
  exit 0
fi
db=$(realpath "$db")
if ! command -v cargo-audit >/dev/null 2>&1; then
  echo "audit: installing cargo-audit"
  timeout 1800 cargo install cargo-audit --locked --quiet
fi
cargo audit --db "$db" --no-fetch --stale
(cd fuzz && cargo audit --db "$db" --no-fetch --stale)
