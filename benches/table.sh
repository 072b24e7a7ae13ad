#!/usr/bin/env bash
# Table size: how long a config of many workspaces takes to compile
# and swap in, and how much memory the server holds with it.
#
# Writes a config of N workspaces (14 names each, as in benches/hot_path.rs)
# or of N `[[record]]`s, times `amldns check` on it and reads its peak RSS,
# starts the release server on loopback (DNS and the metrics listener on
# port 0; the upstream is never asked; the files watched, as by default),
# times `POST /reload` R times, and reads VmRSS/VmHWM from /proc after the
# start and after the reloads. Only loopback is used.
#
# usage: benches/table.sh [-w WORKSPACES | -n RECORDS] [-r RELOADS] [--no-build]
#   benches/table.sh                  10,000 workspaces, 5 reloads
#   benches/table.sh -w 1000 -r 3
#   benches/table.sh -n 333000 -r 1   333,000 records (a 27 MB file)
#   AMLDNS_BIN=/tmp/amldns-old benches/table.sh --no-build    another build, to compare
# Output: a small table on stdout; the config and server log in target/table/.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
workspaces=10000 records=0 reloads=5 build=1
while (($#)); do
  case $1 in
    -w) workspaces=$2; shift 2 ;;
    -n) records=$2; workspaces=0; shift 2 ;;
    -r) reloads=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: $0 [-w WORKSPACES | -n RECORDS] [-r RELOADS] [--no-build]" >&2; exit 2 ;;
  esac
done

out=${CARGO_TARGET_DIR:-$repo/target}/table
bin=${AMLDNS_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/amldns}
mkdir -p "$out"
((build)) && cargo build --release --locked --manifest-path "$repo/Cargo.toml" >&2

# The same shape as config() in benches/hot_path.rs: one compute instance and
# one online endpoint per workspace, 14 names each; records under one
# private-link zone.
config=$out/table-$workspaces-$records.toml
awk -v n="$workspaces" -v r="$records" 'BEGIN {
  print "[server]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"127.0.0.0/8\"]"
  print "[metrics]\nlisten = \"127.0.0.1:0\""
  print "[upstream]\nservers = [\"127.0.0.1:9\"]"
  for (i = 0; i < n; i++)
    printf "[[workspace]]\nname = \"mlw-%d\"\nid = \"%08x-0000-4000-8000-000000000000\"\n" \
      "region = \"eastus\"\nip = \"10.%d.%d.5\"\ninstances = [\"ci-%d\"]\n" \
      "online_endpoints = [\"ep-%d\"]\n", i, i, int(i / 250), i % 250, i, i
  for (i = 0; i < r; i++)
    printf "[[record]]\nname = \"st%07d.privatelink.blob.core.windows.net\"\na = [\"10.%d.%d.%d\"]\n",
      i, int(i / 65536) % 256, int(i / 256) % 256, i % 256
}' >"$config"

ms() { echo $(($(date +%s%N) / 1000000)); }
mib() { awk -v k="$2" '$1 == k":" { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# `check` parses, validates, compiles and prints a summary, like a load.
t0=$(ms)
/usr/bin/time -f %M -o "$out/check.kib" "$bin" check -c "$config" >/dev/null
check_ms=$(($(ms) - t0))
check_mib=$(($(cat "$out/check.kib") / 1024))

log=$out/serve.log
t0=$(ms)
"$bin" serve --log-format json -c "$config" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
until grep -q "amldns serving" "$log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.05
done
start_ms=$(($(ms) - t0))
http=$(grep -o '"metrics":"127\.0\.0\.1:[0-9]*' "$log" | cut -d'"' -f4)
names=$(grep -o '"names":[0-9]*' "$log" | head -1 | cut -d: -f2)
rss_start=$(mib "$pid" VmRSS) hwm_start=$(mib "$pid" VmHWM)

walls=()
for ((i = 1; i <= reloads; i++)); do
  # A changed file, so that the reload compiles and swaps (the watcher then
  # reads it too, and finds it served).
  echo "# reload $i" >>"$config"
  t0=$(ms)
  curl -fsS -X POST "http://$http/reload" >/dev/null
  walls+=($(($(ms) - t0)))
done
# The watcher's own pass over the changed file, done before RSS is read.
sleep 10
# The server's own figure: read, parse, compile and swap, from its log.
served=$(grep -o '"millis":[0-9]*' "$log" | cut -d: -f2 | paste -sd' ')
rss_end=$(mib "$pid" VmRSS) hwm_end=$(mib "$pid" VmHWM)

printf '%s workspaces, %s records, %s names, config %s KiB\n' \
  "$workspaces" "$records" "$names" "$(($(stat -c %s "$config") / 1024))"
printf '%-34s %s\n' \
  "amldns check" "$check_ms ms, peak $check_mib MiB" \
  "start until serving" "$start_ms ms" \
  "POST /reload, server (ms)" "$served" \
  "POST /reload, curl (ms)" "${walls[*]}" \
  "RSS / peak after start" "$rss_start / $hwm_start MiB" \
  "RSS / peak after $reloads reloads" "$rss_end / $hwm_end MiB"
