#!/usr/bin/env python3
"""Checks deploy/monitoring/ against amldns itself (scripts/check-deploy.sh
runs promtool on the rules and config first):

- every amldns_* metric named in the alerts, their tests, the scrape config,
  the Grafana dashboard, the README and docs/ (where a prefix of one may
  stand in a grep) is a constant of src/metrics/ or of the doctor's
  textfile (a
  histogram's _bucket/_sum/_count series included), and every value matched
  on an amldns label (outcome, rcode, result, error, protocol, limit) is one that
  amldns writes: a label of src/metrics/, or of the label sets metrics counts
  by (the outcomes and transports in src/resolve.rs, the upstream error kinds
  in src/forward/error.rs);
- the dashboard is a well-formed Grafana dashboard whose queries all parse as
  PromQL (through `promtool check rules`);
- the alerts select the job that prometheus.yml scrapes.

Prints one line per check; exits 1 on a failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

FAILED = []


def report(ok, check, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", flush=True)
    if not ok:
        FAILED.append(check)


# Where the metric names and every fixed label value are written.
LABEL_SOURCES = ("src/resolve.rs", "src/forward/error.rs")
# The metrics `amldns doctor --textfile` writes, named beside them.
NAME_SOURCES = ("src/doctor/report.rs",)


def metrics_rs(repo):
    folder = os.path.join(repo, "src/metrics")
    paths = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".rs")]
    paths += [os.path.join(repo, p) for p in LABEL_SOURCES]
    src = "\n".join(open(p).read() for p in paths)
    named = src + "\n" + "\n".join(open(os.path.join(repo, p)).read() for p in NAME_SOURCES)
    names = dict(re.findall(r'pub const (\w+): &str = "(amldns_\w+)";', named))
    histograms = set()
    for const in re.findall(r'histogram_vec\(\s*(\w+)', src):
        histograms.add(names[const])
    literals = set(re.findall(r'"([A-Za-z_]+)"', src))
    return set(names.values()), histograms, literals


def series_names(text):
    return set(re.findall(r"\bamldns_[a-z0-9_]*[a-z0-9]\b", text))


# Labels amldns sets, whose values come from fixed sets (see LABEL_SOURCES).
AMLDNS_LABELS = ("outcome", "rcode", "result", "error", "protocol", "qtype", "limit")
MATCHER = re.compile(r'\b(' + "|".join(AMLDNS_LABELS) + r')\s*(=|!=)\s*"([^"]*)"')


def dashboard_exprs(dash):
    exprs = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                exprs.append((p.get("title", "?"), t.get("expr", "")))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    return exprs


def grafana_to_promql(expr):
    """Grafana's variables replaced by what they stand for at query time."""
    for var, value in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"),
                       ("$job", ".*"), ("$instance", ".*")):
        expr = expr.replace(var, value)
    return expr


def check_dashboard(path, promtool):
    dash = json.load(open(path))
    problems = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problems.append(f"no {key}")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            g = p.get("gridPos", {})
            if not all(k in g for k in "xywh") or g["x"] + g["w"] > 24:
                problems.append(f"panel {p.get('title')!r}: bad gridPos {g}")
            if p.get("type") != "row":
                uid = p.get("datasource", {}).get("uid", "")
                if not p.get("targets"):
                    problems.append(f"panel {p.get('title')!r} has no query")
                if uid.startswith("${") and uid[2:-1] not in variables:
                    problems.append(f"panel {p.get('title')!r}: data source {uid} is not a variable")
                for t in p.get("targets", []):
                    if not t.get("expr") or not t.get("refId"):
                        problems.append(f"panel {p.get('title')!r}: a query without expr or refId")
                    for var in re.findall(r"\$(\w+)", t.get("expr", "")):
                        if not var.startswith("__") and var not in variables:
                            problems.append(f"panel {p.get('title')!r}: ${var} is not a variable")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat")
    exprs = dashboard_exprs(dash)
    report(not problems, "monitoring: dashboard structure",
           f"{len(ids)} panels, {len(exprs)} queries, variables {', '.join(sorted(variables))}"
           if not problems else "; ".join(problems))

    # Each query as a recording rule, so promtool parses it as PromQL.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)}
        for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rules, f)  # JSON is YAML
    try:
        r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True,
                           timeout=60)
    finally:
        os.unlink(f.name)
    report(r.returncode == 0, "monitoring: dashboard PromQL",
           f"all {len(exprs)} queries parse (promtool)" if r.returncode == 0
           else (r.stdout + r.stderr).strip().replace("\n", " "))
    return dash


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--promtool", required=True)
    args = p.parse_args()
    repo = args.repo
    known, histograms, literals = metrics_rs(repo)
    check_dashboard(os.path.join(repo, "deploy/monitoring/grafana-dashboard.json"), args.promtool)

    files = ["deploy/monitoring/alerts.yml", "deploy/monitoring/alerts_test.yml",
             "deploy/monitoring/prometheus.yml", "deploy/monitoring/grafana-dashboard.json",
             "README.md"] + sorted(
                 os.path.join("docs", f) for f in os.listdir(os.path.join(repo, "docs"))
                 if f.endswith(".md"))
    pages = [f for f in files if f.endswith(".md")]
    series = set(known)
    for h in histograms:
        series |= {h + "_bucket", h + "_sum", h + "_count"}
    unknown, used, bad_values = {}, set(), []
    for rel in files:
        text = open(os.path.join(repo, rel)).read()
        for name in series_names(text):
            used.add(name)
            # A page may grep by a prefix (`grep ^amldns_queries`).
            prefix_ok = rel in pages and any(s.startswith(name + "_") for s in series)
            if name not in series and not prefix_ok:
                unknown.setdefault(name, []).append(rel)
        if rel not in pages:
            for label, _, value in MATCHER.findall(text):
                for v in filter(None, value.split("|")):
                    if v not in literals and not v.startswith("$"):
                        bad_values.append(f'{label}="{v}" in {rel}')
    report(not unknown, "monitoring: metric names exist in src/metrics/",
           f"{len(used)} names used, all among the {len(known)} constants"
           if not unknown else "; ".join(f"{n} ({', '.join(f)})" for n, f in sorted(unknown.items())))
    report(not bad_values, "monitoring: label values exist in amldns",
           "every outcome/rcode/result/error/protocol/limit value matched is one amldns writes"
           if not bad_values else "; ".join(bad_values))
    scrape = open(os.path.join(repo, "deploy/monitoring/prometheus.yml")).read()
    jobs = set(re.findall(r"job_name:\s*(\S+)", scrape))
    wanted = set(re.findall(r'job="([^"]+)"', open(os.path.join(
        repo, "deploy/monitoring/alerts.yml")).read()))
    report(wanted <= jobs, "monitoring: job name",
           f"alerts.yml selects job {', '.join(sorted(wanted))}, which prometheus.yml scrapes"
           if wanted <= jobs else f"alerts.yml selects {sorted(wanted)}, prometheus.yml has "
           f"{sorted(jobs)}")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
