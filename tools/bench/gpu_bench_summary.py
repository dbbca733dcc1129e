#!/usr/bin/env python3
"""Summarises kvserve-gpu-bench and torch_reference.py JSON lines against issue 6's targets.

Usage: gpu_bench_summary.py FILE.jsonl...   (lines of both tools, any order)

Prints one line per ratio the issue sets a target for, with PASS/FAIL, or "missing" where a run
left a side out:
  prefill attention vs SDPA   kvserve / torch attention TFLOP/s, prompts of 8K-32K   >= 0.60
  TTFT vs torch               kvserve / torch full-prefill time at the longest prompt <= 1.10
  decode batch 1 vs roofline  achieved / --hbm-gbps bandwidth, per context           >= 0.70
  GEMM vs cuBLAS              cuBLASLt wrapper's rate / cublasGemmEx's, worst shape  >= 0.90
Exit status 0 whatever the outcome: this reports, the JSON lines are the record.
"""

import json
import sys

ATTENTION_MIN_TOKENS = 8192
TARGET_ATTENTION = 0.60
TARGET_TTFT = 1.10
TARGET_DECODE = 0.70
TARGET_GEMM = 0.90


def load(paths):
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                raw = raw.strip()
                if raw.startswith("{"):
                    lines.append(json.loads(raw))
    return lines


def by_key(lines, impl, bench, key):
    """{line[key]: line} of the measured (not skipped) lines of one tool and bench."""
    return {l[key]: l for l in lines
            if l.get("impl") == impl and l.get("bench") == bench and not l.get("skipped")}


def verdict(value, target, higher_is_better=True):
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def report(label, value, target, higher_is_better=True, detail=""):
    if value is None:
        print(f"{label:<40} missing {detail}")
        return
    sign = ">=" if higher_is_better else "<="
    print(f"{label:<40} {value:6.3f}  (target {sign} {target:.2f})  "
          f"{verdict(value, target, higher_is_better)}  {detail}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    lines = load(sys.argv[1:])
    devices = sorted({l["device"] for l in lines if "device" in l})
    print(f"device(s): {', '.join(devices) or 'unknown'}")
    if len(devices) > 1:
        print("warning: lines from different devices; ratios compare only within one GPU model")

    ours = by_key(lines, "kvserve", "prefill_attention", "prompt_tokens")
    theirs = by_key(lines, "torch", "prefill_attention", "prompt_tokens")
    lengths = sorted(n for n in set(ours) | set(theirs) if n >= ATTENTION_MIN_TOKENS)
    if not lengths:
        report("prefill attention vs SDPA (8K-32K)", None, TARGET_ATTENTION)
    for n in lengths:
        value, detail = None, ""
        if n in ours and n in theirs:
            value = ours[n]["tflops"] / theirs[n]["tflops"]
            detail = f"{ours[n]['tflops']:.0f} vs {theirs[n]['tflops']:.0f} TFLOP/s"
        report(f"prefill attention vs SDPA @ {n}", value, TARGET_ATTENTION, detail=detail)

    ours = by_key(lines, "kvserve", "prefill", "prompt_tokens")
    theirs = by_key(lines, "torch", "prefill", "prompt_tokens")
    common = sorted(set(ours) & set(theirs))
    if common:
        n = common[-1]
        report(f"TTFT vs torch @ {n}", ours[n]["ttft_ms"] / theirs[n]["ttft_ms"], TARGET_TTFT,
               higher_is_better=False,
               detail=f"{ours[n]['ttft_ms']:.1f} vs {theirs[n]['ttft_ms']:.1f} ms")
    else:
        report("TTFT vs torch", None, TARGET_TTFT, higher_is_better=False)

    decode = [l for l in lines if l.get("impl") == "kvserve" and l.get("bench") == "decode"
              and l.get("batch") == 1 and not l.get("skipped")]
    for l in sorted(decode, key=lambda l: l["context_tokens"]) or [None]:
        if l is None:
            report("decode b1 vs HBM roofline", None, TARGET_DECODE)
            continue
        report(f"decode b1 vs HBM roofline @ {l['context_tokens']}",
               l["hbm_roofline_fraction"], TARGET_DECODE,
               detail=f"{l['gbps']:.0f} of {l['hbm_gbps']:.0f} GB/s, "
                      f"{l['tokens_per_s']:.1f} tok/s")

    gemms = [l for l in lines if l.get("impl") == "kvserve" and l.get("bench") == "gemm"]
    if gemms:
        worst = min(gemms, key=lambda l: l["rate_vs_cublas"])
        report("GEMM vs cuBLAS (worst shape)", worst["rate_vs_cublas"], TARGET_GEMM,
               detail=f"{worst['op']} rows={worst['rows']} ({len(gemms)} shapes)")
    else:
        report("GEMM vs cuBLAS", None, TARGET_GEMM, detail="(run with --gemm-check)")


if __name__ == "__main__":
    main()
