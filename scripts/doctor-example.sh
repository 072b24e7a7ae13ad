#!/usr/bin/env bash
# The `amldns doctor` run docs/operating.md shows ("Checking clients' paths"), made
# again: amldns serves the shipped example (config/amldns.toml: DNS on
# 127.0.0.1:5353, metrics on 127.0.0.1:9153), and doctor checks its table
# through two resolvers: amldns itself (the faithful path) and
# scripts/doctor-example/resolver.py on 127.0.0.1:5354, which answers the
# notebooks names publicly and passes the DoH canary on (a forwarder set up
# wrong). Prints each command and its output. It builds the commit under test
# first, and runs inside a network namespace with only loopback up when it
# may (as root), so the example's fixed ports are free and nothing leaves the
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} != --inside ]]; then
  BIN=$(bash scripts/build-amldns.sh)
  export BIN
  if unshare --net -- true 2>/dev/null; then
    # shellcheck disable=SC2016 # $1 is the inner shell's
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$1" --inside' _ "$PWD/scripts/doctor-example.sh"
  fi
  echo "doctor-example: not root: on the host's loopback (ports 5353, 5354, 9153 must be free)" >&2
  exec bash "$PWD/scripts/doctor-example.sh" --inside
fi

PIDS=()
READY=$(mktemp -u /tmp/doctor-example.XXXXXX)
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$READY"
}
trap cleanup EXIT

"$BIN" serve --config config/amldns.toml --watch off 2>/dev/null &
PIDS+=($!)
timeout 120 python3 scripts/doctor-example/resolver.py --port 5354 --to 5353 --ready "$READY" &
PIDS+=($!)
for _ in $(seq 100); do
  [[ -e $READY ]] && "$BIN" status --server http://127.0.0.1:9153 >/dev/null 2>&1 && break
  sleep 0.1
done

# The README's commands say `amldns`; run the binary just built.
doctor() {
  echo "\$ amldns doctor $*"
  local rc=0
  "$BIN" doctor "$@" || rc=$?
  echo "\$ echo \$?"
  echo "$rc"
}
doctor --server http://127.0.0.1:9153 --via 127.0.0.1:5353
echo
doctor --server http://127.0.0.1:9153 --via 127.0.0.1:5354
