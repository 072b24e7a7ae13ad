#!/usr/bin/env bash
# Runs amldns beside its peers (Unbound, dnsmasq, Knot Resolver, PowerDNS
# Recursor) with shared/peerbench: same records, same loopback upstream
# stand-in, dnsperf, all inside a private network namespace (loopback only).
#
# usage: benches/peerbench.sh [run.sh options] [PEER...]
#   e.g. benches/peerbench.sh -d 10 -r 1 unbound
#        benches/peerbench.sh -Q 100000 -w local unbound dnsmasq
# Needs root (apt packages and namespaces). Results land in target/peerbench/.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
kit=${PEERBENCH:-$repo/../shared/peerbench}
[[ -x $kit/run.sh || -f $kit/run.sh ]] || { echo "no peerbench kit at $kit" >&2; exit 1; }

opts=() peers=()
while (($#)); do
  case $1 in
    -d|-c|-q|-Q|-w|-r|-o|--wait-idle) opts+=("$1" "$2"); shift 2 ;;
    -*) opts+=("$1"); shift ;;
    *) peers+=("$1"); shift ;;
  esac
done
((${#peers[@]})) || peers=(unbound)

bash "$kit/setup.sh"
cargo build --release --locked --manifest-path "$repo/Cargo.toml"

out=$repo/target/peerbench
mkdir -p "$out"
export DATA=$out/data AMLDNS_BIN=$repo/target/release/amldns
bash "$kit/run.sh" -o "$out/results-$(date +%Y%m%d-%H%M%S)" "${opts[@]}" "${peers[@]}" \
  "cmd:amldns:5320:$kit/amldns.sh {port} {upstream} {data} {rundir}"
