#!/usr/bin/env bash
# End to end with real peers, all on this machine, nothing sent off it:
#  a. an on-premises Unbound, configured with deploy/onprem's Unbound file as
#     `amldns forwarders` prints it (pointed at amldns on loopback), resolves
#     every name amldns holds to its private IP, with DNSSEC validation and
#     DNS-rebind protection on, as real servers have them; other names come
#     from an upstream stand-in (a second amldns) through amldns;
#  b. a VNet VM stand-in: a network namespace whose resolv.conf points at
#     amldns over a veth pair gets the notebook IP from `getent hosts`;
#  c. a changed workspace IP reaches clients through Unbound's cache once the
#     (short) TTL has passed.
# It first builds the commit under test (cargo build --locked, a no-op when
# fresh) and runs exactly that binary. Everything after the install and the
# build runs inside a network namespace of its own with only loopback up
# (b's namespace and veth pair are made inside it), so nothing can leave the
# machine. Everything is bounded in time and cleaned up on exit, however the
# script ends. Run as root (the namespaces need it; without root it runs on
# the host's loopback and b is skipped, saying so, except under CI=true,
# where both fail).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

if [[ ${1:-} != --inside ]]; then
  bash scripts/install-peers.sh
  for tool in unbound dig ip; do
    command -v "$tool" >/dev/null || { echo "e2e: $tool is missing" >&2; exit 1; }
  done
  BIN=$(bash scripts/build-amldns.sh)
  export BIN
  if unshare --net -- true 2>/dev/null; then
    # shellcheck disable=SC2016 # $1 is the inner shell's
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$1" --inside' _ "$PWD/scripts/e2e.sh"
  elif [[ ${CI:-} == true ]]; then
    echo "e2e: unshare --net is not permitted (run as root): CI=true, failing instead of running unisolated" >&2
    exit 1
  fi
  echo "e2e: SKIPPED the network namespace (unshare --net is not permitted): on the host's loopback"
  exec bash "$PWD/scripts/e2e.sh" --inside
fi
[[ -x ${BIN:-} ]] || { echo "e2e: --inside needs BIN, the amldns binary" >&2; exit 2; }
echo "e2e: in a network namespace with the links $(ip -o link show | awk -F": " '{print $2}' | paste -sd, -)"

# Ports far from the usual ones; amldns, Unbound, the upstream stand-in.
AMLDNS_PORT=25390
UNBOUND_PORT=25391
STANDIN_PORT=25392
TTL=2
WORK=$(mktemp -d /tmp/amldns-e2e.XXXXXX)
NS=amldns-e2e-$$
VETH_HOST=ae2e$$h
VETH_NS=ae2e$$n
HOST_IP=10.250.0.1
NS_IP=10.250.0.2
PIDS=()
passed=0
failed=0

cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n ${NETNS:-} ]]; then
    ip link del "$VETH_HOST" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "/etc/netns/$NS"
  fi
  if ((status != 0)); then
    for log in "$WORK"/*.log; do
      [[ -f $log ]] && { echo "---- $log"; tail -n 30 "$log"; }
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 124' TERM INT
# The whole run: 5 minutes at most. (A loop of short sleeps, so that killing
# the watchdog leaves no sleep holding the output open.)
(for _ in $(seq 300); do sleep 1; done; echo "e2e: timed out" >&2; kill -TERM $$) &
PIDS+=($!)

check() { # check DESCRIPTION WANT GOT
  if [[ $2 == "$3" ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1: want [$2], got [$3]" >&2
  fi
}

q() { # q PORT NAME [TYPE] [SERVER]: the answer's addresses, comma-separated ("" for none)
  dig +time=2 +tries=1 +short @"${4:-127.0.0.1}" -p "$1" "$2" "${3:-A}" | grep -v -e '\.$' -e '^;' | sort | paste -sd, -
}

status() { # status PORT NAME TYPE: rcode and the number of answers
  local out
  out=$(dig +time=2 +tries=1 @127.0.0.1 -p "$1" "$2" "$3")
  echo "$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out") $(sed -n 's/.*ANSWER: \([0-9]*\).*/\1/p' <<<"$out")"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
  local limit=$1 what=$2
  local until=$((SECONDS + limit))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= until)); then
      echo "e2e: $what: not after ${limit}s" >&2
      return 1
    fi
    sleep 0.2
  done
}

serve() { # serve NAME: amldns with $WORK/NAME.toml, in the background
  "$BIN" serve --config "$WORK/$1.toml" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
}

answers() { [[ -n $(dig +time=1 +tries=1 +short @127.0.0.1 -p "$1" "$2") ]]; }

for port in "$AMLDNS_PORT" "$UNBOUND_PORT" "$STANDIN_PORT"; do
  if [[ -n $(ss -Hlnu "sport = :$port") ]]; then
    echo "e2e: UDP port $port is taken; stop what listens there" >&2
    exit 1
  fi
done

# ---- b's network, first: amldns listens on it from the start -------------------
LISTEN="\"127.0.0.1:$AMLDNS_PORT\""
if ip netns add "$NS" 2>/dev/null; then
  NETNS=1
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
  ip link set "$VETH_NS" netns "$NS"
  ip addr add "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip -n "$NS" addr add "$NS_IP/30" dev "$VETH_NS"
  ip -n "$NS" link set "$VETH_NS" up
  ip -n "$NS" link set lo up
  mkdir -p "/etc/netns/$NS"
  echo "nameserver $HOST_IP" >"/etc/netns/$NS/resolv.conf"
  # resolv.conf has no port: the VM stand-in asks port 53.
  LISTEN="$LISTEN, \"$HOST_IP:53\""
elif [[ ${CI:-} == true ]]; then
  # CI runs as root, where namespaces are available: b must run there.
  echo "e2e: cannot make a network namespace for b (CI=true: failing instead of skipping)" >&2
  exit 1
else
  echo "e2e: SKIPPED b (network namespaces are not permitted here)"
fi

# ---- the upstream stand-in: a second amldns, on loopback only --------------------
cat >"$WORK/standin.toml" <<EOF
[server]
listen = ["127.0.0.1:$STANDIN_PORT"]
allow = ["127.0.0.0/8"]
[upstream]
# Nothing listens there: the stand-in never forwards off the machine.
servers = ["127.0.0.1:9"]
timeout_ms = 200
[[record]]
name = "www.example.com"
a = ["192.0.2.80"]
# It plays the public DNS, so it holds a name that must stay public, which a
# [[record]] may not (it would capture the public names beside it); an
# import of exact names may.
[[import]]
path = "standin-public.json"
EOF
echo '[{"fqdn": "eastus.api.azureml.ms", "ipAddresses": ["192.0.2.20"]}]' >"$WORK/standin-public.json"
serve standin

# ---- amldns: a workspace per cloud, a hub with a project, instances --------------
cat >"$WORK/amldns.toml" <<EOF
[server]
listen = [$LISTEN]
allow = ["127.0.0.0/8", "10.250.0.0/30"]
[upstream]
servers = ["127.0.0.1:$STANDIN_PORT"]
timeout_ms = 1000
[zone]
ttl = $TTL
[[workspace]]
name = "mlw-contoso-prod"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"
notebook_ip = "10.1.0.6"
inference_ip = "10.1.0.7"
instances = ["ci-alice"]
online_endpoints = ["fraud-score"]
[[workspace]]
name = "hub-contoso-research"
id = "03ce50c0-2e18-48ad-9e4a-ca338f571072"
region = "australiaeast"
ip = "10.2.0.5"
projects = [ { name = "proj-a", id = "0d5c2f4e-7a1b-4c3d-9e8f-102030405060" } ]
[[workspace]]
name = "mlw-china"
id = "1e0c1c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
region = "chinaeast2"
cloud = "china"
ip = "10.3.0.5"
instances = ["ci-bob"]
[[workspace]]
name = "mlw-gov"
id = "2f1d2d3b-4c5e-4f60-9bac-1d2e3f4a5b6c"
region = "usgovvirginia"
cloud = "usgov"
ip = "10.4.0.5"
notebook_ip = "10.4.0.6"
[[record]]
name = "kv-contoso.vault.azure.net"
a = ["10.1.0.9"]
EOF
serve amldns

# ---- the on-premises Unbound -----------------------------------------------------
"$BIN" forwarders --format unbound --to "127.0.0.1:$AMLDNS_PORT" >"$WORK/unbound-amldns.conf"
# What the test adds around the generated file, as an on-prem server has it:
# DNSSEC validation on, with the root's real trust anchor (nothing here is
# signed, so only zones marked domain-insecure resolve: the file's, and the
# stand-in's example.com), and DNS-rebind protection for 10/8. A control zone,
# vault.azure.net, is forwarded to amldns by hand without those settings.
cat >"$WORK/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    use-syslog: no
    logfile: ""
    directory: "$WORK"
    do-ip6: no
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor: ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
    domain-insecure: "example.com."
    private-address: 10.0.0.0/8
    include: "$WORK/unbound-amldns.conf"
remote-control:
    control-enable: no
forward-zone:
    name: "vault.azure.net."
    forward-addr: 127.0.0.1@$AMLDNS_PORT
# Everything else goes to the stand-in, never to the root servers.
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$STANDIN_PORT
EOF
unbound-checkconf "$WORK/unbound.conf" >/dev/null
timeout 290 unbound -d -c "$WORK/unbound.conf" >"$WORK/unbound.log" 2>&1 &
PIDS+=($!)

wait_for 20 "the stand-in answers" answers "$STANDIN_PORT" www.example.com
wait_for 20 "amldns answers" answers "$AMLDNS_PORT" www.example.com
wait_for 20 "Unbound answers" answers "$UNBOUND_PORT" www.example.com

# ---- a. every local name through Unbound --------------------------------------
n=0
while read -r ip name; do
  [[ -z $ip || $ip == \#* || $name == *.vault.azure.net ]] && continue
  check "$name through Unbound" "$ip" "$(q "$UNBOUND_PORT" "$name")"
  n=$((n + 1))
done < <("$BIN" records --config "$WORK/amldns.toml" --format hosts)
echo "e2e a: $n names through Unbound"
check "amldns holds names of all three clouds" 1 "$((n >= 40))"
# A local name's AAAA is NODATA through Unbound too, never a public answer.
check "AAAA of a workspace name" "NOERROR 0" \
  "$(status "$UNBOUND_PORT" fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms AAAA)"
# Neighbours in the forwarded zones reach the stand-in through amldns.
check "eastus.api.azureml.ms (public) through Unbound and amldns" 192.0.2.20 \
  "$(q "$UNBOUND_PORT" eastus.api.azureml.ms)"
check "www.example.com from the stand-in" 192.0.2.80 "$(q "$UNBOUND_PORT" www.example.com)"
# The control: amldns answers it, Unbound drops it without the file's settings.
check "kv-contoso.vault.azure.net from amldns itself" 10.1.0.9 "$(q "$AMLDNS_PORT" kv-contoso.vault.azure.net)"
check "kv-contoso.vault.azure.net through Unbound, no private-domain/domain-insecure" "" \
  "$(q "$UNBOUND_PORT" kv-contoso.vault.azure.net)"

# ---- b. the VNet VM stand-in ---------------------------------------------------
NB=ml-mlw-contoso-prod-eastus-fb7e20a0-8891-458b-b969-55ddb3382f51.eastus.notebooks.azure.net
if [[ -n ${NETNS:-} ]]; then
  got=$(timeout 10 ip netns exec "$NS" getent hosts "$NB" | awk '{print $1}' | paste -sd, -)
  check "getent hosts in the namespace" 10.1.0.6 "$got"
  echo "e2e b: $NB → $got from inside $NS"
fi

# ---- c. a reload while Unbound caches ------------------------------------------
API=fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms
check "before the change" 10.1.0.5 "$(q "$UNBOUND_PORT" "$API")"
# sed -i writes a new file and renames it over the old one, as editors do.
sed -i 's/^ip = "10.1.0.5"/ip = "10.1.0.55"/' "$WORK/amldns.toml"
changed_at=$SECONDS
new_in_amldns() { [[ $(q "$AMLDNS_PORT" "$API") == 10.1.0.55 ]]; }
new_in_unbound() { [[ $(q "$UNBOUND_PORT" "$API") == 10.1.0.55 ]]; }
wait_for 10 "amldns reloads the changed file" new_in_amldns
# Informational (timing-dependent): Unbound still serves its cached answer.
echo "e2e c: amldns has 10.1.0.55 after $((SECONDS - changed_at))s; Unbound then says $(q "$UNBOUND_PORT" "$API")"
wait_for $((TTL + 5)) "Unbound serves the new IP once the TTL has passed" new_in_unbound
took=$((SECONDS - changed_at))
check "Unbound has the new IP within the TTL and the reload" 1 "$((took <= TTL + 5))"
echo "e2e c: the new IP through Unbound after ${took}s (TTL ${TTL}s)"

echo "e2e: $passed passed, $failed failed"
((failed == 0))
