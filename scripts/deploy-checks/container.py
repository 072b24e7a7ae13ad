#!/usr/bin/env python3
"""Checks deploy/container/Dockerfile against the repository, since no
container engine runs here to build it (hadolint, run by
scripts/check-deploy.sh, checks it as a Dockerfile): the build stage runs
`cargo build --release --locked`, the runtime stage is non-root and exposes
53/udp, 53/tcp and 9153, every file it copies exists and is not excluded by
.dockerignore (which keeps target/ out), the config it ships loads in amldns
and puts the metrics listener where the HEALTHCHECK looks. Prints one line per
check; exits 1 on a failure.
"""

import argparse
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib

FAILED = []

# A name of the user's own, as they would add it to the shipped config.
LOCAL_NAME = """
[[record]]
name = "probe.privatelink.blob.core.windows.net"
a = ["10.9.9.9"]
"""


def report(ok, check, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", flush=True)
    if not ok:
        FAILED.append(check)


def instructions(path):
    """(INSTRUCTION, arguments) with continuation lines joined."""
    out, current = [], ""
    for line in open(path):
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = current.partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def ignored(rel, patterns):
    rel = rel.rstrip("/")
    hit = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        parts = rel.split("/")
        # A pattern matches the path or any folder above it.
        if any(fnmatch.fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1)):
            hit = not neg
    return hit


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--amldns", help="an amldns binary, to check the image's config")
    args = p.parse_args()
    repo = args.repo
    ins = instructions(os.path.join(repo, "deploy/container/Dockerfile"))
    patterns = [line.strip() for line in open(os.path.join(repo, ".dockerignore"))
                if line.strip() and not line.startswith("#")]

    stages, stage = [], None
    for word, rest in ins:
        if word == "FROM":
            stage = {"from": rest, "ins": []}
            stages.append(stage)
        elif stage is not None:
            stage["ins"].append((word, rest))
    build, final = stages[0], stages[-1]

    problems = []
    if len(stages) < 2:
        problems.append("not multi-stage")
    if not any(w == "RUN" and "cargo build --release --locked" in r for w, r in build["ins"]):
        problems.append("the build stage does not run cargo build --release --locked")
    release = lambda s: re.search(r"(bookworm|trixie|bullseye)", s["from"])  # noqa: E731
    if not (release(build) and release(final)) or release(build)[1] != release(final)[1]:
        problems.append("builder and runtime are not the same Debian release (glibc)")
    if "rust" in final["from"]:
        problems.append("the runtime image is the Rust toolchain")
    report(not problems, "container: stages",
           f"{build['from'].split()[0]} builds with --locked, {final['from'].split()[0]} runs it"
           if not problems else "; ".join(problems))

    problems = []
    users = [r for w, r in final["ins"] if w == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append("the runtime USER must be a numeric non-root id")
    exposed = set(" ".join(r for w, r in final["ins"] if w == "EXPOSE").split())
    exposed = {e if "/" in e else e + "/tcp" for e in exposed}
    if not {"53/udp", "53/tcp", "9153/tcp"} <= exposed:
        problems.append(f"EXPOSE {sorted(exposed)} misses 53/udp, 53/tcp or 9153")
    health = [r for w, r in final["ins"] if w == "HEALTHCHECK"]
    entry = " ".join(r for w, r in final["ins"] if w in ("ENTRYPOINT", "CMD"))
    report(not problems, "container: runtime",
           f"USER {users[-1] if users else '?'}, EXPOSE {' '.join(sorted(exposed))}"
           if not problems else "; ".join(problems))

    # COPY sources from the build context, and where they land.
    problems, dest = [], {}
    for stage_ in stages:
        for w, r in stage_["ins"]:
            if w not in ("COPY", "ADD"):
                continue
            words = [x for x in shlex.split(r) if not x.startswith("--")]
            if "--from=" in r:
                continue
            *srcs, target = words
            for s in srcs:
                if s == ".":
                    continue
                if not os.path.exists(os.path.join(repo, s)):
                    problems.append(f"{s} does not exist")
                elif ignored(s, patterns):
                    problems.append(f"{s} is excluded by .dockerignore")
                dest[target] = s
    if not ignored("target/release/amldns", patterns):
        problems.append(".dockerignore does not keep target/ out")
    for kept in ("Cargo.toml", "Cargo.lock", "src/main.rs"):
        if ignored(kept, patterns):
            problems.append(f".dockerignore excludes {kept}")
    report(not problems, "container: build context",
           ".dockerignore keeps target/ out and the sources in; every COPY source exists"
           if not problems else "; ".join(problems))

    # The HEALTHCHECK runs healthcheck.sh; the shipped config must put the
    # metrics listener where it looks, and be the file CMD serves.
    problems = []
    hc_cmd = re.search(r'CMD \["([^"]+)"', health[0]) if health else None
    hc_src = dest.get(hc_cmd[1]) if hc_cmd else None
    config_src = None
    m = re.search(r'"--config", "([^"]+)"', entry)
    if not hc_src:
        problems.append("the HEALTHCHECK does not run a file COPY'd from the repository")
    if not m or m[1] not in dest:
        problems.append("CMD's --config is not a file the image ships")
    else:
        config_src = dest[m[1]]
    if not problems:
        port = re.search(r'port="\$\{1:-(\d+)\}"', open(os.path.join(repo, hc_src)).read())
        conf = tomllib.load(open(os.path.join(repo, config_src), "rb"))
        metrics = conf.get("metrics", {}).get("listen", "")
        if not port or metrics not in (f"0.0.0.0:{port[1]}", f"127.0.0.1:{port[1]}"):
            problems.append(f"[metrics] listen {metrics!r} is not where the HEALTHCHECK looks")
        if "9153/tcp" in exposed and not metrics.startswith("0.0.0.0:"):
            problems.append("port 9153 is exposed but metrics listen on loopback only")
        if not any(a.startswith("0.0.0.0:53") or a.startswith("[::]:53")
                   for a in conf.get("server", {}).get("listen", ["0.0.0.0:53"])):
            problems.append("[server] listen is not port 53 on all addresses")
    report(not problems, "container: HEALTHCHECK and config",
           f"{hc_src} looks at the metrics listener of {config_src}"
           if not problems else "; ".join(problems))

    if args.amldns and config_src:
        # The shipped config is a starting point with nothing local, which
        # amldns refuses (a config that answers nothing would empty
        # the table). Checked as a user completes it: with one name of their
        # own, every setting it ships must load.
        with tempfile.TemporaryDirectory() as tmp:
            completed = os.path.join(tmp, "amldns.toml")
            with open(os.path.join(repo, config_src)) as f, open(completed, "w") as out:
                out.write(f.read() + LOCAL_NAME)
            r = subprocess.run([args.amldns, "check", "--config", completed],
                               capture_output=True, text=True, timeout=30)
        report(r.returncode == 0, "container: image config",
               "amldns check accepts it with one local name added"
               if r.returncode == 0 else r.stderr.strip())
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
