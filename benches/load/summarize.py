#!/usr/bin/env python3
"""summarize.py summary.csv [MAX_FOREIGN] -> markdown table, medians over repetitions.

CPU s / 1M queries is the server's CPU time per million answers (lower is
better): compare it between peers at the same offered load (run.sh -Q).

Runs during which other work on the box used more than MAX_FOREIGN % of a CPU
(bg_run_pct, measured by run.sh inside its pid namespace; default 25) are left out
of the medians when at least one clean run exists; the 'runs' column shows
used/total, and '*' marks rows where every run was disturbed.
"""
import csv
import statistics
import sys
from collections import OrderedDict

rows = list(csv.DictReader(open(sys.argv[1])))
max_foreign = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
groups = OrderedDict()
for r in rows:
    groups.setdefault((r["peer"], r["workload"]), []).append(r)


def num(r, k):
    try:
        return float(r.get(k, ""))
    except (TypeError, ValueError):
        return None


def nums(rs, k):
    return [v for v in (num(r, k) for r in rs) if v is not None]


def med(rs, k, fmt="%.0f"):
    v = nums(rs, k)
    return fmt % statistics.median(v) if v else "-"


def cpu_s_per_million(rs):
    """Server CPU seconds per 1M answered queries: CPU share over the answer rate."""
    v = [num(r, "cpu_pct") / 100 / num(r, "qps") * 1e6 for r in rs
         if num(r, "cpu_pct") is not None and num(r, "qps")]
    return "%.2f" % statistics.median(v) if v else "-"


print("| peer | workload | QPS median (min-max) | avg lat ms | p99 lat ms | max lat ms | lost "
      "| SERVFAIL+REFUSED | NXDOMAIN % | server CPU % | CPU s / 1M queries | RSS start MiB "
      "| peak RSS MiB | runs used/total |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (peer, wl), allrs in groups.items():
    clean = [r for r in allrs if (num(r, "bg_run_pct") or 0) <= max_foreign]
    rs, mark = (clean, "") if clean else (allrs, " *")
    q = nums(rs, "qps")
    qps = "%.0f" % statistics.median(q) if q else "-"
    if len(q) > 1:
        qps += " (%.0f-%.0f)" % (min(q), max(q))
    sent = sum(nums(rs, "sent"))
    nx = "%.1f" % (100 * sum(nums(rs, "nxdomain")) / sent) if sent else "-"
    mx, peak = nums(rs, "max_ms"), nums(rs, "rss_peak_mib")
    died = sum(1 for r in allrs if r["rss_peak_mib"] == "DIED")
    print("| %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %d/%d%s%s |" % (
        peer, wl, qps, med(rs, "avg_ms", "%.3f"), med(rs, "p99_ms", "%.3f"),
        "%.1f" % max(mx) if mx else "-",
        sum(nums(rs, "lost")), sum(nums(rs, "failed")), nx, med(rs, "cpu_pct"),
        cpu_s_per_million(rs),
        med(rs, "rss_start_mib", "%.1f"), "%.1f" % max(peak) if peak else "-",
        len(rs), len(allrs), mark, " (%d died)" % died if died else ""))
