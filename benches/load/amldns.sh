#!/usr/bin/env bash
# Start amldns as a peerbench target with the same records as the peers.
# usage: amldns.sh PORT UPSTREAM DATA RUNDIR
# run.sh's `amldns` target calls it with the binary in $AMLDNS_BIN.
set -euo pipefail
port=$1 upstream=$2 data=$3 rundir=$4
here=$(cd "$(dirname "$0")" && pwd)
bin=${AMLDNS_BIN:?set AMLDNS_BIN to the amldns binary (absolute path)}
mkdir -p "$rundir"
python3 - "$data/records.toml" "$rundir/amldns.toml" "$port" "$upstream" "${THREADS:-1}" <<'PY'
import sys, tomllib
src, dst, port, upstream, threads = sys.argv[1:6]
recs = tomllib.load(open(src, "rb"))["record"]
out = [
    "[server]", f'listen = ["127.0.0.1:{port}"]', 'allow = ["127.0.0.0/8"]',
    # run.sh's THREADS, as Unbound's num-threads.
    f'threads = {threads}',
    # The peers put no cap on their upstream; Azure's resolver needs the
    # defaults (150 in flight, 900/s), a loopback stand-in does not.
    "[upstream]", f'servers = ["{upstream}"]', "timeout_ms = 2000", "cache_entries = 100000",
    "max_in_flight = 100000", "max_qps = 1000000",
    "[zone]", "ttl = 300",
]
by_name = {}
for r in recs:
    by_name.setdefault(r["name"].rstrip(".").lower(), []).append(r)
for name, rs in by_name.items():
    out.append("[[record]]")
    out.append(f'name = "{name}"')
    a = [r["value"] for r in rs if r["type"] == "A"]
    c = [r["value"] for r in rs if r["type"] == "CNAME"]
    if a:
        out.append("a = [" + ", ".join(f'"{v}"' for v in a) + "]")
    elif c:
        out.append(f'cname = "{c[0].rstrip(".")}"')
open(dst, "w").write("\n".join(out) + "\n")
PY
exec "$bin" serve --watch off --config "$rundir/amldns.toml"
