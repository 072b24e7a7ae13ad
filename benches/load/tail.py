#!/usr/bin/env python3
"""Percentiles of per-answer latencies kept by run.sh (KEEP_LATENCIES=1).

usage: tail.py FILE...   each file: one latency in seconds a line, in the
order answered. Prints p50, p90, p99, p99.9 and max in ms, and the moments
(seconds into the run, by answer count) where answers over 1 ms cluster:
a stall shows as a run of slow answers, not as one.
"""
import sys


def main(paths):
    for path in paths:
        with open(path) as f:
            lat = [float(x) * 1000 for x in f if x.strip()]
        if not lat:
            print(f"{path}: empty")
            continue
        ranked = sorted(lat)

        def pct(p):
            return ranked[min(len(ranked) - 1, int(len(ranked) * p))]

        print(f"{path}: {len(lat)} answers, p50 {pct(.5):.3f} p90 {pct(.9):.3f} "
              f"p99 {pct(.99):.3f} p99.9 {pct(.999):.3f} max {ranked[-1]:.1f} ms")
        # Runs of answers over 1 ms, at most 50 answers apart: where in the
        # run (as a share of it) each began, how many, and the worst.
        clusters, last = [], None
        for i, ms in enumerate(lat):
            if ms <= 1:
                continue
            if last is None or i - last > 50:
                clusters.append([i, 0, 0.0])
            clusters[-1][1] += 1
            clusters[-1][2] = max(clusters[-1][2], ms)
            last = i
        shown = ", ".join(f"{100 * i / len(lat):.1f}%: {n} up to {worst:.1f} ms"
                          for i, n, worst in clusters[:20])
        print(f"  slow runs: {len(clusters)}" + (f" ({shown})" if shown else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
