#!/usr/bin/env bash
# First checks that every fuzz target builds, on the default (stable)
# toolchain: `cargo check --locked` in fuzz/, a crate with a Cargo.lock of its
# own, so that the targets cannot rot where no nightly toolchain is. Then runs
# every cargo-fuzz target in fuzz/ for N seconds (default 20) from the
# checked-in seeds (fuzz/seeds/<target>); what it finds goes to the ignored
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>. The runs need the
# nightly toolchain: without it, says so and exits 0 (even in CI: a fresh
# machine may lack it, and it cannot be fetched); installs cargo-fuzz when
# missing, and fails under CI=true when that install fails. Exits non-zero
# when a target fails to build or to run (CONTRIBUTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds per target]" >&2; exit 2; }

if ! timeout 1800 cargo check --locked --manifest-path fuzz/Cargo.toml --bins; then
  echo "fuzz: the targets do not build on $(rustc --version)" >&2
  exit 1
fi
echo "fuzz: every target builds on $(rustc --version)"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly) to run the targets; they were checked on stable"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (up to 15 minutes)"
  if ! timeout 900 cargo install cargo-fuzz --locked --quiet >/dev/null 2>&1; then
    # crates.io is reachable in CI: a failed install there is a failure.
    if [[ ${CI:-} == true ]]; then
      echo "fuzz: cargo-fuzz could not be installed (CI=true: failing instead of skipping)" >&2
      exit 1
    fi
    echo "fuzz: skipped: cargo-fuzz is not installed and could not be installed"
    exit 0
  fi
fi

root="$PWD"
log="$(mktemp)"
# The config target makes a folder under TMPDIR per run: keep them in one place.
tmp="$(mktemp -d)"
trap 'rm -rf "$log" "$tmp"' EXIT

# Debug assertions on (-a): overflow checks and debug_assert! catch more.
if ! cargo +nightly fuzz build -a >"$log" 2>&1; then
  tail -n 40 "$log"
  echo "fuzz: the targets do not build" >&2
  exit 1
fi

failed=0
for target in $(cargo +nightly fuzz list); do
  corpus="$root/fuzz/corpus/$target"
  mkdir -p "$corpus"
  # New inputs go to the first folder; the seeds stay as checked in.
  if TMPDIR="$tmp" cargo +nightly fuzz run -a "$target" "$corpus" "$root/fuzz/seeds/$target" -- \
      -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    echo "fuzz: $target: ${runs:-?} runs in ${secs}s, $cov, no failure"
  else
    # The panic's message, then how libFuzzer ended.
    grep -m 1 -A 2 'panicked at' "$log" || true
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (input saved under fuzz/artifacts/$target)" >&2
    failed=1
  fi
done
exit "$failed"
