#!/usr/bin/env bash
# run.sh - benchmark DNS servers side by side with dnsperf (amldns's copy of the
# shared peerbench kit: adds the `amldns` target, p99 latency at a fixed rate,
# and CPU seconds per million answers). benches/load.sh is the one command.
#
# usage: run.sh [options] TARGET...
#   TARGET  unbound | unbound-auth | dnsmasq | kresd | pdns   peers configured here
#           amldns   this repo's release binary ($AMLDNS_BIN, default target/release/amldns)
#           floor, floor-single   floor.c: turns each query around unanswered, the
#                    kernel's cost per query and no more (recvmmsg/sendmmsg batches,
#                    or one recvfrom/sendto per query); its verify fails by design
#           (unbound = local-zone/local-data, unbound-auth = auth-zone files)
#           cmd:NAME:PORT:COMMAND                      a server this script starts (and
#                 kills) per workload, e.g. the project's binary; COMMAND may use
#                 {port} {upstream} (127.0.0.1:5301) {upstream_host} {upstream_port}
#                 {data} {rundir}, e.g.
#                 'cmd:azdns:5320:./target/release/azdns --listen 127.0.0.1:{port}
#                  --upstream {upstream} --records {data}/records.toml'
#           custom:PORT[:PID]                          an already running server (never
#                 started/killed here; must forward to 127.0.0.1:5301; forces --no-netns)
# options (or the same-named environment variables):
#   -d SECONDS   per workload (DURATION=10)      -c N  dnsperf clients (CLIENTS=10)
#   -q N         max outstanding (OUTSTANDING=100)  -Q QPS  rate cap (MAXQPS=, unlimited)
#   -w "LIST"    workloads (WORKLOADS="local forward_hot forward_cold mixed")
#   -r N         repetitions, interleaved across targets; the summary shows the
#                median QPS with min-max (REPEAT=1)
#   -o DIR       results dir (OUTDIR=results/<timestamp>)
#   --wait-idle S  before each run wait up to S s for other load on the box to fall
#                below IDLE_MAX=25 (% of one CPU); the load seen is kept as bg_cpu_pct,
#                and the foreign load during the run (netns mode) as bg_run_pct
#   --verify-only | --no-verify | --no-netns
#   KEEP_LATENCIES=1  with -Q: keep each run's per-answer latencies (seconds, one a
#                line, in the order answered) as latencies_PEER_WORKLOAD_rREP.txt in
#                the results dir; benches/load/tail.py prints their percentiles
#   THREADS=N    threads for Unbound (num-threads, so-reuseport) and amldns ([server]
#                threads); default 1. With SERVER_CPU=0,1 CLIENT_CPU=0,1 both servers and
#                dnsperf share both cores (the 2-thread comparison in BENCHMARKS.md)
#
# Everything runs on loopback. By default the whole run is re-executed inside new
# network + PID namespaces (unshare): only 'lo' exists there, so no peer can reach
# any other address, and every process started here dies with the namespace.
# The fake upstream (nsd, authoritative for the generated zones) listens on
# 127.0.0.1:5301; each peer is restarted (cold cache) for every workload.
set -uo pipefail   # no -e: one failing peer must not abort the others

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA=${DATA:-$HERE/data}
DURATION=${DURATION:-10} CLIENTS=${CLIENTS:-10} OUTSTANDING=${OUTSTANDING:-100}
MAXQPS=${MAXQPS:-} WORKLOADS=${WORKLOADS:-"local forward_hot forward_cold mixed"}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1} UPSTREAM_CPU=${UPSTREAM_CPU:-${CLIENT_CPU:-1}}
NETNS=${NETNS:-1} VERIFY=${VERIFY:-1} BENCH=${BENCH:-1} OUTDIR=${OUTDIR:-} REPEAT=${REPEAT:-1}
WAIT_IDLE=${WAIT_IDLE:-0} IDLE_MAX=${IDLE_MAX:-25} THREADS=${THREADS:-1}
UPSTREAM="127.0.0.1:5301"
declare -A PEER_PORT=([unbound]=5310 [dnsmasq]=5311 [kresd]=5312 [pdns]=5313 [unbound-auth]=5314 [amldns]=5320 [floor]=5321 [floor-single]=5322)
AMLDNS_BIN=${AMLDNS_BIN:-$(cd "$HERE/../.." && pwd)/target/release/amldns}
export AMLDNS_BIN

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
TARGETS=()
while (($#)); do
  case $1 in
    -d) DURATION=$2; shift ;;   -c) CLIENTS=$2; shift ;;
    -q) OUTSTANDING=$2; shift ;; -Q) MAXQPS=$2; shift ;;
    -w) WORKLOADS=$2; shift ;;   -o) OUTDIR=$2; shift ;;
    -r) REPEAT=$2; shift ;;
    --verify-only) BENCH=0 ;;    --no-verify) VERIFY=0 ;;
    --no-netns) NETNS=0 ;;       -h|--help) usage 0 ;;
    --wait-idle) WAIT_IDLE=$2; shift ;;
    -*) echo "unknown option $1" >&2; usage 1 ;;
    *) TARGETS+=("$1") ;;
  esac; shift
done
((${#TARGETS[@]})) || usage 1
for t in "${TARGETS[@]}"; do
  case $t in
    unbound|unbound-auth|dnsmasq|kresd|pdns|amldns|floor|floor-single|cmd:*:*:*) ;;
    custom:*) NETNS=0 ;;   # an outside server cannot be reached from inside a netns
    *) echo "run.sh: bad target '$t'" >&2; exit 1 ;;
  esac
done
# Data made by another version of gen_data.py is made again.
gen_sum=$(sha256sum "$HERE/gen_data.py" | cut -d' ' -f1)
if [[ ! -f $DATA/checks.txt || $(cat "$DATA/.gen_data.sha256" 2>/dev/null) != "$gen_sum" ]]; then
  rm -rf "$DATA" && python3 "$HERE/gen_data.py" --out "$DATA" && echo "$gen_sum" >"$DATA/.gen_data.sha256" || exit 1
fi
OUTDIR=${OUTDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$OUTDIR"; OUTDIR=$(cd "$OUTDIR" && pwd)
export DATA DURATION CLIENTS OUTSTANDING MAXQPS WORKLOADS SERVER_CPU CLIENT_CPU \
       UPSTREAM_CPU NETNS VERIFY BENCH OUTDIR REPEAT WAIT_IDLE IDLE_MAX THREADS

# ---- enter private net+pid namespaces (bounded in time as a whole) ------------
if [[ $NETNS == 1 && -z ${PEERBENCH_IN_NS:-} ]]; then
  nw=$(wc -w <<<"$WORKLOADS")
  budget=$(( ${#TARGETS[@]} * ((nw * REPEAT + 1) * (DURATION + 60 + WAIT_IDLE)) + 120 ))
  if unshare --net --pid --fork --mount-proc true 2>/dev/null; then
    PEERBENCH_IN_NS=1 exec timeout -k 10 "$budget" \
      unshare --net --pid --fork --kill-child --mount-proc \
      bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "${TARGETS[@]}"
  fi
  # The promise is loopback only: without a namespace, stop unless the
  # caller said --no-netns (or NETNS=0) knowingly.
  echo "run.sh: cannot create network namespaces; rerun with --no-netns to use the host loopback" >&2
  exit 1
fi
if [[ -n ${PEERBENCH_IN_NS:-} ]]; then   # paranoia: only 'lo' may exist here
  if ip -o link show | awk -F': ' '{print $2}' | grep -qv '^lo$'; then
    echo "run.sh: namespace has non-loopback interfaces, refusing" >&2; exit 1
  fi
fi

# ---- helpers --------------------------------------------------------------------
TASKSET=(); (( $(nproc) >= 2 )) && command -v taskset >/dev/null && TASKSET=(taskset -c)
pin() {  # pin CPU -> prints the taskset prefix (empty without pinning); exec's, so PID is kept
  ((${#TASKSET[@]})) && printf '%s\n' "${TASKSET[@]}" "$1"; }
CLK_TCK=$(getconf CLK_TCK)
STARTED=()     # every PID this script started; only these are ever killed
log() { echo "$(date +%T) $*" | tee -a "$OUTDIR/run.log" >&2; }

start_daemon() {  # name cpu logfile cmd... ; sets SPID
  local name=$1 cpu=$2 lf=$3; shift 3
  echo "[$name] cpu=$cpu $*" >>"$OUTDIR/commands.log"
  local p; mapfile -t p < <(pin "$cpu")
  "${p[@]}" "$@" </dev/null >>"$lf" 2>&1 &      # simple command: $! is the daemon itself
  SPID=$!; STARTED+=("$SPID")
}
alive() { local s; s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [[ -n $s && $s != Z ]]; }
stop_pid() {   # TERM, up to 5 s grace, then KILL; always reaps
  local pid=$1 i
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null; return 0
}
cleanup() { local p; for p in "${STARTED[@]}"; do stop_pid "$p"; done; rm -rf "${SHM:-/nonexistent}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

dq() { dig @127.0.0.1 -p "$1" +tries=2 +time=2 "${@:2}" 2>&1; }
wait_ready() {  # port pid(or empty) name probe-qname -> 0 when answering
  local port=$1 pid=$2 name=$3 probe=$4 i
  for i in $(seq 60); do
    [[ -n $pid ]] && ! alive "$pid" && { log "[$name] died during startup"; return 1; }
    if [[ $name == floor* ]]; then  # it answers nothing, only turns queries around
      dig @127.0.0.1 -p "$port" +tries=1 +time=1 "$probe" A 2>/dev/null | grep -q 'status: ' && return 0
    else
      [[ -n $(dig @127.0.0.1 -p "$port" +tries=1 +time=1 +short "$probe" A 2>/dev/null | grep -v '^;') ]] && return 0
    fi
    sleep 0.5
  done
  log "[$name] not answering on $port after 30 s"; return 1
}
busy_pct() {   # CPU busy on the whole box over 1 s, in % of one CPU (0..100*ncpu)
  local a b i ta=0 tb=0
  read -ra a < /proc/stat; sleep 1; read -ra b < /proc/stat
  for i in 1 2 3 4 5 6 7 8; do ((ta += a[i], tb += b[i])); done
  (( tb > ta )) || { echo 0; return; }
  echo $(( ((tb - ta) - (b[4] + b[5] - a[4] - a[5])) * 100 * $(nproc) / (tb - ta) ))
}
await_idle() { # -> sets BG (foreign CPU load while our server sits idle)
  local waited=0
  BG=$(busy_pct)
  while (( BG > IDLE_MAX && waited < WAIT_IDLE )); do
    ((waited == 0)) && log "box busy (${BG}% of a CPU), waiting up to ${WAIT_IDLE}s"
    sleep 4; ((waited += 5)); BG=$(busy_pct)
  done
}
# busy = user+nice+system+steal (irq/softirq left out: our own loopback traffic is
# accounted there and not to any process), total = all of the first 8 fields
box_ticks() { read -ra a < /proc/stat; echo "$((a[1]+a[2]+a[3]+a[8])) $((a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8]))"; }
ns_ticks() {   # CPU ticks of every process visible (= ours inside the pid namespace), incl. reaped children
  cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^.*) //' | awk '{s += $12 + $13 + $14 + $15} END {print s + 0}'
}
vm() { awk -v k="$2:" '$1==k {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null; }   # MiB
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12+$13}'; }

# ---- the fake upstream: nsd, authoritative for data/upstream/*.zone -------------
port_busy() { [[ -n $(ss -Hlun "sport = :$1" 2>/dev/null) ]]; }
start_upstream() {
  local rd=$OUTDIR/run/upstream; mkdir -p "$rd"
  port_busy 5301 && { log "127.0.0.1:5301 is already in use (outside a netns?)"; return 1; }
  cat >"$rd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@5301
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$DATA/upstream"
  database: ""
  zonelistfile: "$rd/zone.list"
  xfrdfile: "$rd/xfrd.state"
  xfrdir: "$rd"
  pidfile: "$rd/nsd.pid"
  logfile: "$rd/nsd.log"
  verbosity: 0
  hide-version: yes
  minimal-responses: yes
  refuse-any: yes
  rrl-ratelimit: 0               # NSD's response-rate-limiting (default 200 qps per
  rrl-whitelist-ratelimit: 0     # source) would throttle the forwarders: disable it
remote-control:
  control-enable: no
include: "$DATA/upstream/nsd-zones.conf"
EOF
  start_daemon nsd "$UPSTREAM_CPU" "$rd/stderr.log" nsd -d -c "$rd/nsd.conf"
  UPID=$SPID
  wait_ready 5301 "$UPID" nsd host-00007.example-upstream.test
}

# ---- peers: write a config, start in the foreground, set SPID/PORT --------------
start_unbound() {  # rundir port [auth]: local-data (default) or auth-zone variant
  local localdata="include: \"$DATA/peers/unbound-local.conf\"" authzones=""
  if [[ ${3:-} == auth ]]; then localdata=""; authzones="include: \"$DATA/peers/unbound-auth.conf\""; fi
  cat >"$1/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $2
  do-ip6: no
  num-threads: $THREADS
  so-reuseport: yes
  username: ""
  chroot: ""
  directory: "$1"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-daemonize: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no      # the forwarder is on loopback
  outgoing-interface: 127.0.0.1
  module-config: "iterator"       # no DNSSEC validation (fake upstream is unsigned)
  qname-minimisation: no
  prefetch: no
  msg-cache-size: 64m
  rrset-cache-size: 128m
  num-queries-per-thread: 4096
  outgoing-range: 8192
  local-zone: "test." nodefault   # unbound blocks the special-use .test by default
  $localdata
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@5301
  forward-first: no
$authzones
EOF
  unbound-checkconf "$1/unbound.conf" >>"$1/stderr.log" 2>&1 || return 1
  start_daemon unbound "$SERVER_CPU" "$1/stderr.log" unbound -d -c "$1/unbound.conf"
}
start_unbound-auth() { start_unbound "$1" "$2" auth; }
start_dnsmasq() {
  cat >"$1/dnsmasq.conf" <<EOF
port=$2
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
server=127.0.0.1#5301
cache-size=10000
dns-forward-max=1000
user=root
pid-file=$1/dnsmasq.pid
conf-file=$DATA/peers/dnsmasq-local.conf
EOF
  dnsmasq --test -C "$1/dnsmasq.conf" >>"$1/stderr.log" 2>&1 || return 1
  start_daemon dnsmasq "$SERVER_CPU" "$1/stderr.log" dnsmasq -k -C "$1/dnsmasq.conf"
}
# unique per run ($$ is 1 inside the pid namespace, and runs may be concurrent)
SHM=$(mktemp -d /dev/shm/peerbench.XXXXXX 2>/dev/null) || { SHM=$OUTDIR/run/shm; mkdir -p "$SHM"; }
start_kresd() {   # LMDB cache on tmpfs, as kresd's docs advise (a disk-backed cache stalls)
  local cdir=$SHM/kresd-${1##*/}; rm -rf "$cdir"; mkdir -p "$cdir"
  cat >"$1/kresd.conf" <<EOF
log_level('warning')
net.ipv6 = false
net.listen('127.0.0.1', $2, { kind = 'dns' })
net.outgoing_v4('127.0.0.1')
cache.open(100 * MB, 'lmdb://$cdir')
-- fake upstream is unsigned, and nothing may go out: no validation, no priming,
-- no RFC 5011 / sentinel / time-skew probes
trust_anchors.remove('.')
for _, m in ipairs({'ta_update', 'ta_signal_query', 'ta_sentinel', 'priming',
                    'detect_time_skew', 'detect_time_jump', 'watchdog'}) do
  pcall(modules.unload, m)
end
dofile('$DATA/peers/kresd-local.lua')     -- hints + local policy filter (rule 1)
policy.add(policy.all(policy.FORWARD({'127.0.0.1@5301'})))
EOF
  start_daemon kresd "$SERVER_CPU" "$1/stderr.log" kresd -n -c "$1/kresd.conf" "$1"
}
start_pdns() {
  cat >"$1/recursor.conf" <<EOF
config-dir=$1
socket-dir=$1
local-address=127.0.0.1
local-port=$2
daemon=no
write-pid=no
threads=1
pdns-distributes-queries=no
reuseport=no
forward-zones-recurse=.=127.0.0.1:5301
auth-zones=$(cat "$DATA/peers/pdns-auth-zones.txt")
dnssec=off
query-local-address=127.0.0.1
allow-from=127.0.0.0/8
max-cache-entries=1000000
security-poll-suffix=
qname-minimization=no
disable-syslog=yes
quiet=yes
loglevel=4
webserver=no
EOF
  start_daemon pdns "$SERVER_CPU" "$1/stderr.log" pdns_recursor --config-dir="$1"
}
start_amldns() {  # the same records as every peer, the same loopback upstream
  [[ -x $AMLDNS_BIN ]] || { echo "no amldns binary at $AMLDNS_BIN (cargo build --release)" >>"$1/stderr.log"; return 1; }
  start_daemon amldns "$SERVER_CPU" "$1/stderr.log" bash "$HERE/amldns.sh" "$2" "$UPSTREAM" "$DATA" "$1"
}
start_floor() {  # rundir port [batch|single]
  local bin=$OUTDIR/floor
  [[ -x $bin ]] || cc -O2 -o "$bin" "$HERE/floor.c" 2>>"$1/stderr.log" || return 1
  start_daemon floor "$SERVER_CPU" "$1/stderr.log" "$bin" "$2" "${3:-batch}"
}
start_floor-single() { start_floor "$1" "$2" single; }
start_cmd() {  # rundir port command-template
  local c=$3
  c=${c//\{port\}/$2}; c=${c//\{upstream\}/$UPSTREAM}; c=${c//\{data\}/$DATA}; c=${c//\{rundir\}/$1}
  c=${c//\{upstream_host\}/127.0.0.1}; c=${c//\{upstream_port\}/5301}
  start_daemon "$CMD_NAME" "$SERVER_CPU" "$1/stderr.log" bash -c "exec $c"
}

# start_target TARGET RUNTAG -> sets NAME PORT SPID (SPID empty for custom)
start_target() {
  local t=$1 rd
  SPID=
  case $t in
    custom:*) IFS=: read -r _ PORT SPID <<<"$t"; NAME="custom-$PORT"
              [[ -z $SPID ]] && SPID=$(ss -Hlunp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
              CUSTOM=1; return 0 ;;
    cmd:*)    IFS=: read -r _ NAME PORT CMD <<<"$t"; CMD_NAME=$NAME ;;
    *)        NAME=$t; PORT=${PEER_PORT[$t]} ;;
  esac
  CUSTOM=0
  port_busy "$PORT" && { log "[$NAME] port $PORT already in use"; return 1; }
  rd=$OUTDIR/run/$NAME-$2; rm -rf "$rd"; mkdir -p "$rd"
  case $t in
    cmd:*) start_cmd "$rd" "$PORT" "$CMD" ;;
    *)     "start_$t" "$rd" "$PORT" ;;
  esac || { log "[$NAME] config check failed, see $rd/stderr.log"; SPID=; return 1; }
  wait_ready "$PORT" "$SPID" "$NAME" "$(awk '!/^#/{print $1; exit}' "$DATA/checks.txt")"
}
stop_target() { [[ $CUSTOM == 0 && -n $SPID ]] && stop_pid "$SPID"; return 0; }

# ---- correctness: every line of data/checks.txt --------------------------------
verify_target() {  # name port -> prints PASS/FAIL lines, returns #failures
  local name=$1 port=$2 fails=0 q t rc exp out st ans res flags soa
  while read -r q t rc exp; do
    [[ -z $q || $q == \#* ]] && continue
    out=$(dq "$port" +noall +comments +answer +authority "$q" "$t")
    printf ';; ---- %s %s\n%s\n' "$q" "$t" "$out" >>"$OUTDIR/verify_$name.log"
    st=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
    ans=$(awk '/^;; ANSWER SECTION:/ {a=1; next} /^;; / || /^$/ {a=0} a && NF>=5 {print $4":"$5}' <<<"$out" | sort -u | paste -sd, -)
    flags=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -1)
    soa=$(awk '/^;; AUTHORITY SECTION:/ {a=1; next} a && $4=="SOA" {print "SOA-in-auth"; exit}' <<<"$out")
    if [[ $st == "$rc" && ${ans:--} == "$exp" ]]; then res=PASS; else res=FAIL; ((fails++)); fi
    printf '%s %-8s %-4s %s -> %s %s [%s%s]\n' "$res" "$rc" "$t" "$q" "${st:-TIMEOUT}" "${ans:--}" "$flags" "${soa:+ $soa}"
  done <"$DATA/checks.txt" | tee "$OUTDIR/verify_$name.txt"
  fails=$(grep -c '^FAIL' "$OUTDIR/verify_$name.txt")
  log "[$name] verify: $(grep -c '^PASS' "$OUTDIR/verify_$name.txt") pass, $fails fail"
  return "$fails"
}

# ---- one dnsperf run against a started target ------------------------------------
CSV=$OUTDIR/summary.csv
echo "peer,workload,rep,qps,avg_ms,max_ms,sent,lost,failed,nxdomain,cpu_pct,rss_start_mib,rss_peak_mib,bg_cpu_pct,bg_run_pct,p99_ms" >"$CSV"
bench_one() {  # name port pid workload rep
  local name=$1 port=$2 pid=$3 wl=$4 f=$DATA/queries/$4.txt of=$OUTDIR/dnsperf_$1_$4_r$5.txt
  local args=(-s 127.0.0.1 -p "$port" -d "$f" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -t 3
              -O suppress=timeouts)
  [[ $wl == forward_cold ]] && args+=(-n 1)      # every name once: stays a cache miss
  [[ -n $MAXQPS ]] && args+=(-Q "$MAXQPS")
  local rss0= hwm= t0= t1= cpu=
  if [[ -n $pid ]]; then rss0=$(vm "$pid" VmRSS); t0=$(cpu_ticks "$pid"); fi
  local b0 n0 b1 n1 bgrun=; b0=$(box_ticks); n0=$(ns_ticks)
  echo "[dnsperf] cpu=$CLIENT_CPU dnsperf ${args[*]}" >>"$OUTDIR/commands.log"
  local p; mapfile -t p < <(pin "$CLIENT_CPU")
  local p99=
  if [[ -n $MAXQPS ]]; then
    # At a fixed rate the client has headroom for -v (one line per answer):
    # keep the latencies on tmpfs, and only the summary lines.
    local lat=$SHM/latencies-$$.txt
    # The filter runs on the client's CPU, away from the server's. Lost
    # queries print no line: p99 is of the answered ones (see `lost`).
    timeout -k 5 $((DURATION + 30)) "${p[@]}" dnsperf -v "${args[@]}" 2>&1 \
      | "${p[@]}" awk -v lat="$lat" '/^> / {print $NF > lat; next} {print}' >"$of"
    p99=$(sort -g "$lat" | awk '{v[NR] = $1} END {if (NR) {i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; printf "%.3f", v[i] * 1000}}')
    if [[ -n ${KEEP_LATENCIES:-} ]]; then mv "$lat" "$OUTDIR/latencies_$1_$4_r$5.txt"; else rm -f "$lat"; fi
  else
    timeout -k 5 $((DURATION + 30)) "${p[@]}" dnsperf "${args[@]}" >"$of" 2>&1
  fi
  b1=$(box_ticks); n1=$(ns_ticks)
  if [[ -n ${PEERBENCH_IN_NS:-} ]]; then   # foreign load during the run, % of one CPU
    read -r bb0 bt0 <<<"$b0"; read -r bb1 bt1 <<<"$b1"
    (( bt1 > bt0 )) && bgrun=$(( ((bb1 - bb0) - (n1 - n0)) * 100 * $(nproc) / (bt1 - bt0) ))
    (( ${bgrun:-0} < 0 )) && bgrun=0
  fi
  if [[ -n $pid ]] && alive "$pid"; then
    hwm=$(vm "$pid" VmHWM); t1=$(cpu_ticks "$pid")
  elif [[ -n $pid ]]; then log "[$name] DIED during $wl"; hwm=DIED; fi
  awk -v peer="$name" -v wl="$wl" -v rep="$5" -v bg="$BG" -v bgrun="$bgrun" -v rss0="$rss0" -v hwm="$hwm" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v p99="$p99" '
    /Queries sent:/        {sent=$3}
    /Queries lost:/        {lost=$3}
    /Run time \(s\):/      {rt=$4}
    /Queries per second:/  {qps=$4}
    /Average Latency/      {avg=$4*1000; gsub(/[(),]/,""); max=$8*1000}
    /Response codes:/      {for (i=3;i<=NF;i++) { if ($i ~ /^(SERVFAIL|REFUSED|FORMERR|NOTIMP)$/) fail+=$(i+1);
                                                  if ($i=="NXDOMAIN") nx=$(i+1) } }
    END { cpu = (t1 != "" && rt > 0) ? sprintf("%.0f", (t1-t0)/hz/rt*100) : "";
          printf "%s,%s,%s,%.0f,%.3f,%.1f,%d,%d,%d,%d,%s,%s,%s,%s,%s,%s\n", peer, wl, rep, qps, avg, max,
                 sent, lost, fail, nx, cpu, rss0, hwm, bg, bgrun, p99 }' "$of" >>"$CSV"
}

# ---- main -----------------------------------------------------------------------
{
  echo "date: $(date -Is)  host: $(uname -r), $(nproc) cpus  netns: ${PEERBENCH_IN_NS:-no}"
  echo "duration=$DURATION clients=$CLIENTS outstanding=$OUTSTANDING maxqps=${MAXQPS:-unlimited}"
  echo "cpus: server=$SERVER_CPU dnsperf=$CLIENT_CPU upstream(nsd)=$UPSTREAM_CPU pinning=${TASKSET[*]:-none} threads=$THREADS"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the box skews results)"
  dpkg-query -W -f='${Package} ${Version}\n' dnsperf bind9-dnsutils unbound dnsmasq-base \
    knot-resolver pdns-recursor nsd 2>/dev/null
} >"$OUTDIR/env.txt"
log "results -> $OUTDIR"
start_upstream || { log "fake upstream failed to start"; exit 1; }

if [[ $VERIFY == 1 ]]; then
  for t in "${TARGETS[@]}"; do
    if start_target "$t" verify; then verify_target "$NAME" "$PORT"; fi
    stop_target
  done
fi
if [[ $BENCH == 1 ]]; then
  for rep in $(seq "$REPEAT"); do      # interleaved: background noise hits every peer alike
    for t in "${TARGETS[@]}"; do
      for wl in $WORKLOADS; do
        [[ -f $DATA/queries/$wl.txt ]] || { log "no query file for $wl"; continue; }
        if ! start_target "$t" "$wl"; then stop_target; continue; fi
        await_idle
        log "[$NAME] $wl (rep $rep/$REPEAT): dnsperf ${DURATION}s (background load ${BG}%) ..."
        bench_one "$NAME" "$PORT" "$SPID" "$wl" "$rep"
        stop_target
      done
    done
  done
  python3 "$HERE/summarize.py" "$CSV" | tee "$OUTDIR/summary.md"
fi
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUTDIR/env.txt"
log "done: $OUTDIR"
