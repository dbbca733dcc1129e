#!/usr/bin/env python3
"""PNG plots of a kvserve-accuracy-eval log (run by `kvserve-accuracy-eval --plots DIR`).

For each task, the all-or-nothing score against the share of the KV kept (tiered: resident on the
GPU), one line per policy, one panel per length, with 95 % Wilson intervals; for fidelity, top-1
agreement with full and mean KL against the KV kept, one panel per context. Needs matplotlib
(Debian python3-matplotlib, installed by scripts/setup.sh).

Usage: plot_accuracy.py --log LOG.jsonl --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

POLICIES = ["snapkv", "fastkv", "quest", "freekv", "fastkv_freekv"]
COLORS = {"snapkv": "tab:blue", "fastkv": "tab:orange", "quest": "tab:green",
          "freekv": "tab:red", "fastkv_freekv": "tab:purple"}


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    z = 1.959963984540054
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# A tiered policy's other page digest (quest: center ± MAD; freekv, fastkv_freekv: min/max), or
# its one-page sink over finer pages (`k4p4`: pages of 4 tokens, a 4-token sink): dashed lines.
DIGEST_VARIANTS = ("+mad", "+minmax")
PAGE_VARIANT = re.compile(r"(k\d+p\d+|k\d+)$")


def variant_of(label: str) -> str:
    digest = next((v for v in DIGEST_VARIANTS if label.endswith(v)), "")
    if digest:
        return digest
    page = PAGE_VARIANT.search(label.split("-", 1)[1]) if "-" in label else None
    return " " + page.group(1) if page else ""


def policy_of(label: str) -> str:
    """The line a label belongs to: its policy, with its variant suffix if it has one."""
    return label.split("-")[0] + variant_of(label)


# Plain sweep labels only (NAME, NAME-B, NAME-rR, and tiered ones with a digest variant or a
# one-page sink over other pages): variants with a threshold, window, pooling or other suffix
# belong to investigations, not to a budget line.
SWEEP_LABEL = re.compile(r"^[a-z_]+(-(\d+|r[0-9.]+)(k\d+(p\d+)?)?(\+mad|\+minmax)?)?$")


def read(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def panel_lines(ax, points, ylabel, full_value=None, interval=True):
    """points: label -> (x, y, lo, hi)."""
    by_policy = defaultdict(list)
    for label, p in points.items():
        if label != "full" and SWEEP_LABEL.match(label):
            by_policy[policy_of(label)].append((label, *p))
    lines = sorted(by_policy, key=lambda p: (POLICIES.index(p.split(" ")[0].split("+")[0]), p))
    for policy in lines:
        pts = sorted(by_policy[policy], key=lambda t: t[1])
        xs = [p[1] for p in pts]
        ys = [p[2] for p in pts]
        variant = variant_of(pts[0][0])
        color = COLORS[policy.removesuffix(variant)]
        # Digest variants squares, one-page sinks triangles, finer pages diamonds.
        marker = "s" if variant.startswith("+") else ("D" if "p" in variant else "^")
        style = marker + "--" if variant else "o-"
        ax.plot(xs, ys, style, color=color, label=policy, markersize=4)
        if interval:
            for _, x, y, lo, hi in pts:
                ax.plot([x, x], [lo, hi], color=color, alpha=0.35, linewidth=3)
    if full_value is not None:
        ax.axhline(full_value, color="black", linestyle="--", linewidth=1, label="full")
    ax.set_xscale("log")
    ax.set_xlabel("share of the KV kept (tiered: resident on the GPU)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def plot_tasks(records, out: Path) -> list[Path]:
    cells = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0])))
    for r in records:
        if r.get("type") != "ruler":
            continue
        for label, res in r["results"].items():
            c = cells[r["task"]][r["target_tokens"]][label]
            c[0] += 1
            c[1] += 1 if res["correct"] else 0
            c[2] += res.get("kv_fraction", 1.0)
    written = []
    for task, by_length in sorted(cells.items()):
        lengths = sorted(by_length)
        fig, axes = plt.subplots(1, len(lengths), figsize=(5 * len(lengths), 4), squeeze=False)
        for ax, length in zip(axes[0], lengths):
            points = {}
            for label, (n, k, kv) in by_length[length].items():
                lo, hi = wilson(k, n)
                points[label] = (kv / n, 100 * k / n, 100 * lo, 100 * hi)
            full = points.get("full")
            panel_lines(ax, points, "score % (all references found)",
                        full[1] if full else None)
            n_full = by_length[length].get("full", [0])[0]
            ax.set_title(f"{task}, {length} tokens ({n_full} cases)")
            ax.set_ylim(-3, 103)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = out / f"task-{task}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def plot_fidelity(records, out: Path) -> list[Path]:
    acc = defaultdict(lambda: defaultdict(lambda: [0, 0, 0.0, 0.0, 0]))
    for r in records:
        if r.get("type") != "fidelity":
            continue
        for label, res in r["results"].items():
            a = acc[r["context_tokens"]][label]
            a[0] += res["positions"]
            a[1] += res["top1_equal"]
            a[2] += res["kl_mean"] * res["positions"]
            a[3] += res.get("kv_fraction", 1.0)
            a[4] += 1
    if not acc:
        return []
    contexts = sorted(acc)
    fig, axes = plt.subplots(2, len(contexts), figsize=(5 * len(contexts), 7.5), squeeze=False)
    for i, context in enumerate(contexts):
        top1, kl = {}, {}
        for label, (n, k, kl_sum, kv, docs) in acc[context].items():
            lo, hi = wilson(k, n)
            top1[label] = (kv / docs, 100 * k / n, 100 * lo, 100 * hi)
            kl[label] = (kv / docs, kl_sum / n, 0, 0)
        panel_lines(axes[0][i], top1, "top-1 agreement with full, %", 100.0)
        axes[0][i].set_title(f"fidelity, {context} tokens of context")
        panel_lines(axes[1][i], kl, "mean KL(full ‖ policy), nats", None, interval=False)
        axes[1][i].set_yscale("log")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = out / "fidelity.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--log", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    records = read(args.log)
    written = plot_tasks(records, args.out) + plot_fidelity(records, args.out)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
