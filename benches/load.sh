#!/usr/bin/env bash
# The load benchmark, one command: amldns beside Unbound, dnsmasq, Knot
# Resolver and PowerDNS Recursor, with the same records and the same loopback
# upstream stand-in (nsd), measured with dnsperf. Everything runs inside a
# private network namespace where only loopback exists.
#
# usage: benches/load.sh [run.sh options] [TARGET...]
#   benches/load.sh                       every peer and the floor, 4 workloads at full
#                                         speed, then local and forward_hot at 50k qps (p99:
#                                         dnsperf -v cannot offer 100k on one core here)
#   benches/load.sh -d 10 -r 3 unbound amldns
#   benches/load.sh -Q 100000 -w local unbound amldns
# Needs root (apt packages, namespaces). Output: target/load/results-*/summary.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
kit=$repo/benches/load
out=$repo/target/load
mkdir -p "$out"

bash "$kit/setup.sh"
# Build as the user who called sudo, so target/ stays theirs.
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
  sudo -u "$SUDO_USER" -H bash -lc "cargo build --release --locked --manifest-path '$repo/Cargo.toml'"
else
  cargo build --release --locked --manifest-path "$repo/Cargo.toml"
fi
export DATA=$out/data AMLDNS_BIN=$repo/target/release/amldns

opts=() targets=()
while (($#)); do
  case $1 in
    -d|-c|-q|-Q|-w|-r|-o|--wait-idle) opts+=("$1" "$2"); shift 2 ;;
    -*) opts+=("$1"); shift ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(unbound dnsmasq kresd pdns amldns floor)
stamp=$(date +%Y%m%d-%H%M%S)
if ((${#opts[@]})); then
  bash "$kit/run.sh" -o "$out/results-$stamp" "${opts[@]}" "${targets[@]}"
else
  bash "$kit/run.sh" -o "$out/results-$stamp-max" -d 10 -r 3 "${targets[@]}"
  bash "$kit/run.sh" -o "$out/results-$stamp-50k" --no-verify -d 10 -r 3 -Q 50000 \
    -w "local forward_hot" "${targets[@]}"
fi
