#!/usr/bin/env bash
# cargo audit of Cargo.lock (and fuzz/Cargo.lock) against the RustSec
# database, offline: the snapshot beside the repository
# (../shared/advisory-db), or the folder AMLDNS_ADVISORY_DB names.
# Without the default snapshot it says so and exits 0; a folder named by
# AMLDNS_ADVISORY_DB must exist. cargo-audit is installed when missing (it
# needs crates.io; if that fails, it says so and exits 0). Any advisory fails.
# Under CI=true (.ci/run), where the snapshot is beside the clone and
# crates.io is reachable, neither may skip: each fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_AUDIT_VERSION=0.22.2
# skip WHY: says so and exits, 0 or, under CI=true, 1.
skip() {
  if [ "${CI:-}" = true ]; then
    echo "audit: $1 (CI=true: failing instead of skipping)" >&2
    exit 1
  fi
  echo "audit: skipped: $1"
  exit 0
}
if [ -n "${AMLDNS_ADVISORY_DB:-}" ]; then
  db=$AMLDNS_ADVISORY_DB
  [ -d "$db" ] || { echo "audit: AMLDNS_ADVISORY_DB=$db is not a folder (relative paths start at the repository)" >&2; exit 1; }
else
  db=../shared/advisory-db
  [ -d "$db" ] || skip "no advisory database at $db (set AMLDNS_ADVISORY_DB)"
fi
db=$(realpath "$db")
if ! command -v cargo-audit >/dev/null 2>&1; then
  echo "audit: installing cargo-audit $CARGO_AUDIT_VERSION"
  timeout 1800 cargo install cargo-audit --version "$CARGO_AUDIT_VERSION" --locked --quiet ||
    skip "cargo-audit could not be installed"
fi
cargo audit --db "$db" --no-fetch --stale
(cd fuzz && cargo audit --db "$db" --no-fetch --stale)
