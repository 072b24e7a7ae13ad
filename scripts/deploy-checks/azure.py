#!/usr/bin/env python3
"""Checks deploy/azure/cloud-init.yaml beyond cloud-init's own schema check
(run by scripts/check-deploy.sh): its unit is deploy/systemd/amldns.service,
its config loads in amldns, and its installer script passes shellcheck, stops
while the placeholders are in, refuses a binary with the wrong SHA-256, and
installs one with the right one. The installer runs with every path it
writes moved into a temp folder, systemctl replaced by a stub and the
"download" a file:// URL: nothing on this machine changes and nothing goes
on the network. Prints one line per check; exits 1 on a failure.
"""

import argparse
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

import yaml

FAILED = []


def report(ok, check, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", flush=True)
    if not ok:
        FAILED.append(check)


def run_installer(script, work, url, sha, config_text):
    """The installer with its paths moved under `work` (and, unless `url` is
    None, its placeholders filled in); returns (exit code, output, systemctl
    calls)."""
    for sub in ("bin", "etc/amldns", "stub"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    with open(os.path.join(work, "etc/amldns/amldns.toml"), "w") as f:
        f.write(config_text)
    stub = os.path.join(work, "stub/systemctl")
    with open(stub, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> "{work}/systemctl.log"\n')
    os.chmod(stub, 0o755)
    moved = (script.replace("/usr/local/bin/", f"{work}/bin/")
             .replace("/etc/amldns/", f"{work}/etc/amldns/")
             .replace("/etc/resolv.conf", f"{work}/resolv.conf"))
    if url is not None:
        moved = (moved.replace('AMLDNS_URL="REPLACE_WITH_BINARY_URL"', f'AMLDNS_URL="{url}"')
                 .replace('AMLDNS_SHA256="REPLACE_WITH_SHA256"', f'AMLDNS_SHA256="{sha}"'))
    # Every absolute path it still names must be one it only reads or links to.
    left = set(re.findall(r"(?<![\w.$}])/(?:usr|etc|var|opt|srv|home|root)/[\w./-]*", moved))
    left -= {"/run/systemd/resolve/resolv.conf"}
    if left:
        return None, f"paths not moved: {sorted(left)}", []
    path = os.path.join(work, "install.sh")
    with open(path, "w") as f:
        f.write(moved)
    env = dict(os.environ, PATH=f"{work}/stub:{os.environ['PATH']}")
    r = subprocess.run(["sh", path], capture_output=True, text=True, timeout=60, env=env)
    log = os.path.join(work, "systemctl.log")
    calls = open(log).read().splitlines() if os.path.exists(log) else []
    return r.returncode, (r.stdout + r.stderr).strip(), calls


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--amldns", help="an amldns binary")
    p.add_argument("--shellcheck", required=True)
    p.add_argument("--schema", help="cloud-init's schema-cloud-config-v1.json")
    args = p.parse_args()
    path = os.path.join(args.repo, "deploy/azure/cloud-init.yaml")
    text = open(path).read()
    doc = yaml.safe_load(text)
    files = {f["path"]: f for f in doc.get("write_files", [])}

    if args.schema:
        props = set(re.findall(r'"([a-z_0-9]+)"\s*:', open(args.schema).read()))
        unknown = sorted(k for k in doc if k not in props)
        report(not unknown, "azure: cloud-init top-level keys",
               f"{', '.join(sorted(doc))} are cloud-init modules' keys"
               if not unknown else f"unknown to cloud-init: {unknown}")

    unit = files.get("/etc/systemd/system/amldns.service", {}).get("content")
    same = unit == open(os.path.join(args.repo, "deploy/systemd/amldns.service")).read()
    report(same, "azure: cloud-init's unit", "identical to deploy/systemd/amldns.service"
           if same else "differs from deploy/systemd/amldns.service: copy it again")

    dropin = files.get("/etc/systemd/resolved.conf.d/amldns.conf", {}).get("content", "")
    runs = any("/usr/local/sbin/amldns-install" in (c if isinstance(c, str) else " ".join(c))
               for c in doc.get("runcmd", []))
    ok = "DNSStubListener=no" in dropin and runs
    report(ok, "azure: cloud-init steps", "runcmd runs amldns-install; resolved's stub is off"
           if ok else "runcmd must run /usr/local/sbin/amldns-install and DNSStubListener=no be set")

    config = files["/etc/amldns/amldns.toml"]["content"]
    script = files["/usr/local/sbin/amldns-install"]["content"]
    with tempfile.TemporaryDirectory() as d:
        sc = os.path.join(d, "amldns-install")
        with open(sc, "w") as f:
            f.write(script)
        r = subprocess.run([args.shellcheck, "--shell=sh", sc], capture_output=True, text=True)
        report(r.returncode == 0, "azure: amldns-install shellcheck", "clean" if r.returncode == 0
               else r.stdout.strip())

        code, out, _ = run_installer(script, os.path.join(d, "placeholder"), None, None,
                                     config)
        ok = code == 1 and "set AMLDNS_URL" in out
        report(ok, "azure: amldns-install with placeholders", "stops with an error, as it should"
               if ok else f"exit {code}: {out}")

        if args.amldns:
            toml = os.path.join(d, "amldns.toml")
            with open(toml, "w") as f:
                f.write(config)
            r = subprocess.run([args.amldns, "check", "--config", toml], capture_output=True,
                               text=True, timeout=30)
            report(r.returncode == 0, "azure: cloud-init's amldns.toml",
                   "amldns check accepts it" if r.returncode == 0 else r.stderr.strip())

            url = "file://" + os.path.abspath(args.amldns)
            sha = hashlib.sha256(open(args.amldns, "rb").read()).hexdigest()
            work = os.path.join(d, "wrong")
            code, out, calls = run_installer(script, work, url, "0" * 64, config)
            ok = code not in (0, None) and not os.path.exists(os.path.join(work, "bin/amldns")) \
                and not calls
            report(ok, "azure: amldns-install, wrong SHA-256", "refused, nothing installed"
                   if ok else f"exit {code}: {out}")

            work = os.path.join(d, "right")
            code, out, calls = run_installer(script, work, url, sha, config)
            installed = os.path.join(work, "bin/amldns")
            ok = (code == 0 and os.path.exists(installed)
                  and os.stat(installed).st_mode & stat.S_IXUSR
                  and not os.path.exists(installed + ".new")
                  and os.readlink(os.path.join(work, "resolv.conf"))
                  == "/run/systemd/resolve/resolv.conf"
                  and calls == ["restart systemd-resolved", "daemon-reload",
                                "enable amldns.service", "restart amldns.service"])
            report(ok, "azure: amldns-install, right SHA-256",
                   "installs, checks the config, relinks resolv.conf, enables and restarts amldns"
                   if ok else f"exit {code}: {out}; systemctl {calls}")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
