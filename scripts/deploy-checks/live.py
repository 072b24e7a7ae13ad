#!/usr/bin/env python3
"""Runs a real amldns binary on loopback, the way the deploy/ files run it,
and checks what they promise about it (scripts/check-deploy.sh calls this).

- The config folder is laid out as Kubernetes lays out a ConfigMap volume
  (`amldns.toml -> ..data/amldns.toml`, `..data -> ..<timestamp>`); swapping
  `..data` must reload the table without a restart.
- deploy/container/healthcheck.sh must pass while amldns serves and fail once
  it has stopped.
- With --trace: amldns runs under strace, and every system call, socket
  address family and memory mapping it made must be allowed by the
  SystemCallFilter=, RestrictAddressFamilies= and MemoryDenyWriteExecute= of
  deploy/systemd/amldns.service.

Everything stays on 127.0.0.1: the upstream is a stand-in bound there.
Prints one line per check ("ok ..." or "FAIL ..."); exits 1 on a failure.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FAILED = []


def report(ok, check, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", flush=True)
    if not ok:
        FAILED.append(check)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port on 127.0.0.1")


# --- DNS on the wire (just enough for a question and its answer) ---

def query(name, qtype, qid):
    q = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


def parse_header(msg):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    return {"id": qid, "aa": bool(flags & 0x0400), "rcode": flags & 0xF, "an": an, "ns": ns}


def ask_udp(port, name, qtype, qid):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(query(name, qtype, qid), ("127.0.0.1", port))
        return parse_header(s.recv(4096))
    finally:
        s.close()


def ask_tcp(port, name, qtype, qid):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        q = query(name, qtype, qid)
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return parse_header(data)


class Upstream(threading.Thread):
    """A stand-in resolver on 127.0.0.1: A questions get 192.0.2.1 (a
    documentation address, only ever data), SOA questions an SOA as Azure's
    DNS gives for its zones, others an empty NOERROR. `asked` counts the
    questions but SOA ones: those amldns asks on its own, for the public
    zones its table holds names in."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = 0

    def run(self):
        while True:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            qid = msg[:2]
            end = 12
            while msg[end] != 0:
                end += msg[end] + 1
            question = msg[12:end + 5]
            qtype = struct.unpack(">H", msg[end + 1:end + 3])[0]
            if qtype != 6:
                self.asked += 1
            answer = b""
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])
            elif qtype == 6:
                names = dns_name("ns1-01.azure-dns.com") + dns_name("azuredns-hostmaster.microsoft.com")
                rdata = names + struct.pack(">IIIII", 1, 3600, 300, 2419200, 300)
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 6, 1, 3600, len(rdata)) + rdata
            header = qid + struct.pack(">HHHHH", 0x8180, 1, 1 if answer else 0, 0, 0)
            self.sock.sendto(header + question + answer, peer)


def dns_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"


# --- HTTP on the metrics listener, never through a proxy ---

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with OPENER.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


CONFIG = """\
[server]
listen = ["127.0.0.1:{dns}"]
allow = ["127.0.0.0/8"]

[metrics]
listen = "127.0.0.1:{metrics}"

[upstream]
servers = ["127.0.0.1:{upstream}"]
timeout_ms = 500

[[workspace]]
name = "mlw-contoso-prod"
id = "fb7e20a0-8891-458b-b969-55ddb3382f51"
region = "eastus"
ip = "10.1.0.5"
{extra}
"""
WORKSPACE_NAME = "fb7e20a0-8891-458b-b969-55ddb3382f51.workspace.eastus.api.azureml.ms"


def configmap_swap(folder, generation, text):
    """Writes a new version the way the kubelet does: a new timestamped
    folder, then `..data` renamed over to point at it."""
    version = f"..2026_11_22_00_00_0{generation}.{os.getpid()}"
    os.mkdir(os.path.join(folder, version))
    with open(os.path.join(folder, version, "amldns.toml"), "w") as f:
        f.write(text)
    tmp = os.path.join(folder, "..data_tmp")
    os.symlink(version, tmp)
    os.rename(tmp, os.path.join(folder, "..data"))
    link = os.path.join(folder, "amldns.toml")
    if not os.path.islink(link):
        os.symlink("..data/amldns.toml", link)


def amldns_pid(proc, traced):
    """amldns's pid: under strace, strace's child (None if there is none)."""
    if not traced:
        return proc.pid
    for _ in range(20):
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                children = f.read().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.1)
    return None


def generation(port):
    status, body = http(port, "/healthz")
    return json.loads(body)["generation"] if status == 200 else None


def reloads(port):
    """Successful reloads so far: a reload that changes nothing keeps the
    generation, so SIGHUP on an unchanged file is seen here, not there."""
    status, body = http(port, "/metrics")
    if status != 200:
        return None
    for line in body.splitlines():
        if line.startswith('amldns_reloads_total{result="success"}'):
            return float(line.split()[-1])
    return 0.0


def exercise(args, work):
    up = Upstream()
    up.start()
    dns, metrics = free_port(), free_port()
    folder = os.path.join(work, "etc-amldns")
    os.mkdir(folder)
    fields = {"dns": dns, "metrics": metrics, "upstream": up.port}
    configmap_swap(folder, 1, CONFIG.format(extra="", **fields))
    config = os.path.join(folder, "amldns.toml")

    cmd = [args.amldns, "serve", "--config", config]
    check_cmd = [args.amldns, "check", "--config", config]
    if args.trace:
        cmd = ["strace", "-f", "-qq", "-o", os.path.join(work, "serve.trace")] + cmd
        check_cmd = ["strace", "-f", "-qq", "-o", os.path.join(work, "check.trace")] + check_cmd
    checked = subprocess.run(check_cmd, capture_output=True, text=True, timeout=30)
    report(checked.returncode == 0, "live: amldns check", "the ExecStartPre command passes"
           if checked.returncode == 0 else checked.stderr.strip())

    log = open(os.path.join(work, "serve.log"), "w")
    env = dict(os.environ, RUST_LOG="info")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        ready = wait_for(lambda: http(metrics, "/readyz")[0] == 200, 15)
        report(ready, "live: /readyz", "200 once listening" if ready else "never ready")
        if not ready:
            return proc

        # NODATA carries the public zone's SOA once amldns has asked for it.
        wait_for(lambda: ask_udp(dns, WORKSPACE_NAME, 28, 9)["ns"] == 1, 15)
        a = ask_udp(dns, WORKSPACE_NAME, 1, 1)
        aaaa = ask_udp(dns, WORKSPACE_NAME, 28, 2)
        fwd1 = ask_udp(dns, "forwarded.example", 1, 3)
        fwd2 = ask_udp(dns, "forwarded.example", 1, 4)
        tcp = ask_tcp(dns, WORKSPACE_NAME, 1, 5)
        ok = (a["rcode"] == 0 and a["aa"] and a["an"] == 1
              and aaaa["rcode"] == 0 and aaaa["an"] == 0 and aaaa["ns"] == 1
              and fwd1["rcode"] == 0 and fwd1["an"] == 1 and fwd2["an"] == 1
              and tcp["an"] == 1 and up.asked == 1)
        report(ok, "live: DNS", "local A and AAAA over UDP and TCP, a forwarded name then cached"
               if ok else f"answers {a} {aaaa} {fwd1} {fwd2} {tcp}, upstream asked {up.asked}")

        status, body = http(metrics, "/metrics")
        report(status == 200 and "amldns_queries_total" in body, "live: /metrics",
               f"HTTP {status}")
        status, _ = http(metrics, "/reload", "POST")
        report(status == 200, "live: POST /reload", f"HTTP {status}")
        before = reloads(metrics)
        os.kill(amldns_pid(proc, args.trace), signal.SIGHUP)
        hup = wait_for(lambda: (reloads(metrics) or 0) > before, 5)
        report(hup, "live: SIGHUP (ExecReload)", "reloaded" if hup else "no reload seen")

        before = generation(metrics)
        extra = '[[record]]\nname = "swapped.example.com"\na = ["10.9.9.9"]\n'
        configmap_swap(folder, 2, CONFIG.format(extra=extra, **fields))
        swapped = wait_for(lambda: (generation(metrics) or 0) > before, 10)
        answer = ask_udp(dns, "swapped.example.com", 1, 6) if swapped else {}
        ok = swapped and answer.get("an") == 1 and answer.get("aa")
        report(ok, "live: ConfigMap ..data swap",
               "the new table serves without a restart" if ok else f"generation {before}, {answer}")

        if args.healthcheck:
            hc = subprocess.run(["bash", args.healthcheck, str(metrics)], capture_output=True,
                                text=True, timeout=15)
            report(hc.returncode == 0, "live: container HEALTHCHECK",
                   "passes while amldns serves" if hc.returncode == 0 else
                   f"exit {hc.returncode} {hc.stderr.strip()}")
    finally:
        # strace exits with its child's status; killing strace alone would
        # leave amldns running, so a stuck amldns is killed itself.
        pid = amldns_pid(proc, args.trace) if proc.poll() is None else None
        if pid:
            os.kill(pid, signal.SIGTERM)
        elif proc.poll() is None:
            proc.terminate()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if pid:
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            code = proc.wait()
        log.close()
    report(code == 0, "live: SIGTERM", "exit 0" if code == 0 else f"exit {code}")
    if args.healthcheck:
        hc = subprocess.run(["bash", args.healthcheck, str(metrics)], capture_output=True,
                            text=True, timeout=15)
        report(hc.returncode != 0, "live: container HEALTHCHECK when stopped",
               "fails as it should" if hc.returncode != 0 else "passed with nothing listening")
    up.sock.close()
    return proc


# --- What the unit's sandbox allows ---

def unit_settings(unit):
    settings = {}
    for line in open(unit):
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


GROUPS = {}


def expand(item):
    """The system calls of one SystemCallFilter= item (a name or @group)."""
    if not item.startswith("@"):
        return {item}
    if item not in GROUPS:
        out = subprocess.run(["systemd-analyze", "syscall-filter", item], capture_output=True,
                             text=True, check=True).stdout
        names = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if line.startswith("#") or not line:
                continue
            if line.startswith("@"):
                names |= expand(line)
            else:
                names.add(line)
        GROUPS[item] = names
    return GROUPS[item]


def allowed_syscalls(filters):
    """systemd's rule: the first assignment decides allow- or deny-list;
    later ones add to it (or, with ~, take away)."""
    allowed = None
    for f in filters:
        deny = f.startswith("~")
        items = set().union(*(expand(i) for i in f.lstrip("~").split()))
        if allowed is None:
            if deny:
                raise SystemExit("this check handles an allow-list filter only")
            allowed = set(items)
        elif deny:
            allowed -= items
        else:
            allowed |= items
    return allowed


CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")


def analyse(trace_files, unit):
    s = unit_settings(unit)
    allowed = allowed_syscalls(s.get("SystemCallFilter", []))
    families = set(" ".join(s.get("RestrictAddressFamilies", [])).split())
    used, socket_families, wx = set(), set(), []
    for path in trace_files:
        for line in open(path, errors="replace"):
            m = CALL.match(line)
            if not m:
                continue
            name = m.group(1)
            used.add(name)
            if name == "socket" and "(" in line:
                socket_families.add(line.split("(", 1)[1].split(",", 1)[0])
            if name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_WRITE" in line \
                    and "PROT_EXEC" in line:
                wx.append(line.strip())
    # strace's own start of the program, before the unit's program runs.
    blocked = sorted(used - allowed - {"execve"})
    report(not blocked, "systemd: SystemCallFilter fits amldns",
           f"{len(used)} system calls traced, all allowed" if not blocked
           else f"blocked but used: {' '.join(blocked)}")
    outside = sorted(socket_families - families)
    report(not outside, "systemd: RestrictAddressFamilies fits amldns",
           f"sockets used: {' '.join(sorted(socket_families))}" if not outside
           else f"families used but not allowed: {' '.join(outside)}")
    if s.get("MemoryDenyWriteExecute") == ["yes"]:
        report(not wx, "systemd: MemoryDenyWriteExecute fits amldns",
               "no writable+executable mapping" if not wx else wx[0])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--amldns", required=True, help="the amldns binary")
    p.add_argument("--healthcheck", help="deploy/container/healthcheck.sh")
    p.add_argument("--trace", metavar="UNIT", help="run under strace, check against this unit")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="amldns-live-")
    try:
        exercise(args, work)
        if args.trace:
            analyse([os.path.join(work, "serve.trace"), os.path.join(work, "check.trace")],
                    args.trace)
        if FAILED:
            print(f"amldns log: {os.path.join(work, 'serve.log')}", file=sys.stderr)
            sys.stderr.write(open(os.path.join(work, "serve.log")).read()[-3000:])
    finally:
        if not FAILED:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
