#!/usr/bin/env bash
# Zone checkers against amldns's private-link apexes (docs/answers.md:
# "Private-link zones are amldns's own"). Inside a network namespace
# of its own where only loopback exists, so nothing leaves the machine:
#  - an upstream stand-in on 127.0.0.1:5301 (scripts/zonecheck/upstream.py)
#    answering as Azure's resolver does for names under the private-link zones
#    that amldns does not hold: NXDOMAIN with the public zone's SOA;
#  - amldns on 127.0.0.1:53 with a workspace in "cname" mode and a [[record]],
#    so that it owns three private-link apexes;
#  - per apex, `dnsviz probe -A` (ancestry stopped at the apex with -a, the
#    delegation given with -N, which dnsviz serves from a named of its own on
#    loopback) and `dnsviz grok -l warning`: any error or warning fails;
#  - per apex, `zonemaster-cli` undelegated (--ns ns.<apex>/127.0.0.1, root
#    hints on 127.0.0.2 so that it looks for parents on loopback only): its
#    messages are printed with their cause (sandbox or design,
#    scripts/zonecheck/report.py) and never fail the script.
# Needs root. Without dnsviz or zonemaster-cli it installs them under CI=true
# and skips, saying so, otherwise. Bounded in time; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
# dnsviz's own interpreter, which has dnspython; the stand-in uses it too.
PY=/usr/bin/python3

unavailable() { # unavailable REASON: fail under CI, else skip loudly
  if [[ ${CI:-} == true ]]; then
    echo "zonecheck: $1" >&2
    exit 1
  fi
  echo "zonecheck: SKIPPED: $1"
  exit 0
}

if [[ ${1:-} != --inside ]]; then
  [[ $(id -u) == 0 ]] || unavailable "needs root (unshare --net)"
  # named (dnsviz serves the -N delegation with it), dig and ip.
  bash scripts/install-peers.sh
  missing=()
  for tool in dnsviz zonemaster-cli; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    [[ ${CI:-} == true ]] || unavailable "${missing[*]} not installed (apt-get install dnsviz zonemaster-cli)"
    echo "zonecheck: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  for tool in dnsviz zonemaster-cli named dig ip unshare; do
    command -v "$tool" >/dev/null || unavailable "$tool is missing"
  done
  "$PY" -c 'import dns' 2>/dev/null || unavailable "$PY has no dnspython (python3-dnspython)"
  # The commit under test, built (a no-op when fresh): exactly that binary runs.
  BIN=$(bash scripts/build-amldns.sh)
  exec unshare --net -- env BIN="$BIN" bash "$0" --inside
fi

# ---- inside the namespace ---------------------------------------------------
ip link set lo up
links=$(ip -o link show | awk -F': ' '{print $2}' | paste -sd, -)
[[ $links == lo ]] || { echo "zonecheck: the namespace has links besides lo: $links" >&2; exit 1; }

UPSTREAM_PORT=5301
WORK=$(mktemp -d /tmp/amldns-zonecheck.XXXXXX)
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((status != 0)); then
    for log in "$WORK"/*.log; do
      [[ -f $log ]] && { echo "---- $log"; tail -n 20 "$log"; }
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 124' TERM INT
# The whole run: 6 minutes at most (short sleeps, so that killing the watchdog
# leaves no sleep holding the output open).
(for _ in $(seq 360); do sleep 1; done; echo "zonecheck: timed out" >&2; kill -TERM $$) &
PIDS+=($!)

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit=$1 what=$2
  local until=$((SECONDS + limit))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= until)); then
      echo "zonecheck: $what: not after ${limit}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

cat >"$WORK/amldns.toml" <<EOF
[server]
listen = ["127.0.0.1:53"]

[upstream]
servers = ["127.0.0.1:$UPSTREAM_PORT"]
timeout_ms = 1000

[zone]
answer = "cname"

[[workspace]]
name = "mlw-zonecheck"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"

[[record]]
name = "st.privatelink.blob.core.windows.net"
a = ["10.1.0.8"]
EOF

# The private-link apexes amldns owns: the zones of the names it holds.
mapfile -t ZONES < <("$BIN" records --config "$WORK/amldns.toml" --format json |
  "$PY" -c 'import json, sys; print("\n".join(sorted({r["zone"] for r in json.load(sys.stdin) if r["zone"].startswith("privatelink.")})))')
echo "zonecheck: private-link apexes: ${ZONES[*]}"
((${#ZONES[@]} >= 2)) || { echo "zonecheck: expected two private-link apexes or more" >&2; exit 1; }

"$PY" scripts/zonecheck/upstream.py "$UPSTREAM_PORT" "${ZONES[@]}" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
"$BIN" serve --config "$WORK/amldns.toml" --watch off >"$WORK/amldns.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the upstream stand-in answering" \
  bash -c "dig +time=1 +tries=1 @127.0.0.1 -p $UPSTREAM_PORT x.${ZONES[0]} | grep -q 'status: NXDOMAIN'"
wait_for 30 "amldns answering the apex SOA authoritatively" \
  bash -c "dig +norec +time=1 +tries=1 @127.0.0.1 SOA ${ZONES[0]} | grep -q 'flags: qr aa'"

# Root hints on loopback, where nothing listens: Zonemaster's search for the
# parent zone stays on this machine.
printf '. 3600000 NS a.root.zonecheck.test.\na.root.zonecheck.test. 3600000 A 127.0.0.2\n' >"$WORK/hints"

failed=0
for zone in "${ZONES[@]}"; do
  ns=ns.$zone
  echo "== $zone"
  echo "\$ dnsviz probe -A -a $zone -E -x $zone:$ns=127.0.0.1 -N $zone:$ns=127.0.0.1 $zone | dnsviz grok -l warning"
  timeout 180 dnsviz probe -A -a "$zone" -E -x "$zone:$ns=127.0.0.1" -N "$zone:$ns=127.0.0.1" \
    -o "$WORK/probe.json" "$zone" 2>"$WORK/dnsviz.log"
  timeout 60 dnsviz grok -l warning -r "$WORK/probe.json" -o "$WORK/grok.json" 2>>"$WORK/dnsviz.log"
  "$PY" scripts/zonecheck/report.py dnsviz "$WORK/grok.json" || failed=$((failed + 1))

  echo "\$ zonemaster-cli --no-ipv6 --hints=HINTS --ns=$ns/127.0.0.1 --level=NOTICE --raw $zone"
  timeout 120 zonemaster-cli --no-ipv6 --hints="$WORK/hints" --ns="$ns/127.0.0.1" --level=NOTICE \
    --raw --no-time --show-testcase --no-progress "$zone" >"$WORK/zonemaster.log" 2>&1 ||
    echo "zonecheck: zonemaster-cli exited $? (reported, not failed)"
  "$PY" scripts/zonecheck/report.py zonemaster <"$WORK/zonemaster.log"
done

if ((failed)); then
  echo "zonecheck: dnsviz found errors or warnings at $failed of ${#ZONES[@]} apexes" >&2
  exit 1
fi
echo "zonecheck: dnsviz: no error or warning at ${#ZONES[@]} apexes"
