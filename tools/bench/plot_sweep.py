#!/usr/bin/env python3
"""kvserve-bench --sweep's plot: output throughput against p99 TTFT and p99 ITL, one point per
request rate, so the knee of the curve shows. Usage: plot_sweep.py SWEEP.csv OUT.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(csv_path, png_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{csv_path}: no rows")
    throughput = [float(r["output_throughput"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "p99_ttft_ms", "p99 time to first token"),
                           (axes[1], "p99_itl_ms", "p99 inter-token latency")):
        latency = [float(r[key]) for r in rows]
        ax.plot(throughput, latency, marker="o")
        for x, y, r in zip(throughput, latency, rows):
            ax.annotate(f'{r["request_rate"]} req/s', (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)
        ax.set_xlabel("output throughput (tokens/s)")
        ax.set_ylabel(f"{key.replace('_', ' ')}")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    fig.suptitle("kvserve-bench --sweep: throughput against tail latency")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
