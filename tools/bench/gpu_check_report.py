#!/usr/bin/env python3
"""Assembles scripts/gpu-check.sh's work folder into one JSON file, with the issues' verdicts.

Usage: gpu_check_report.py WORK_DIR OUT.json [--wall-s S] [--budget-s S]

WORK_DIR holds what gpu-check.sh left there: parts.jsonl (one line per part: part, rc, wall_s,
timeout_s, timed_out, skipped, output), each part's stdout (the file its "output" names) and
stderr (PART.log), tests/NAME.xml (GoogleTest's XML) and nvidia-smi.txt. OUT.json gets:

  parts     every part with its exit status and timing, and the end of its log when it failed
  tests     per test binary: tests, passed, failed (with each failure's message), skipped, and
            whether it left no XML (crashed or timed out); totals over all binaries
  bench     per part, the JSON lines it printed (torch_reference, policy_prefill, ...)
  verdicts  P1 (issue 12): fastkv's TTFT at 32K >= 1.9x PyTorch SDPA full prefill in the same
            run, and >= 95% of the FLOP model's speedup over kvserve's own full prefill. Each
            check is pass, fail or missing (with the reason); issue 13 adds its own beside.
Prints the verdicts and test totals. Exit status 0 when OUT.json was written.
"""

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

P1_PROMPT_TOKENS = 32768
P1_MIN_SPEEDUP_VS_SDPA = 1.9
P1_MIN_FRACTION_OF_FLOP_MODEL = 0.95
LOG_TAIL_LINES = 20
MESSAGE_CHARS = 600


def read_lines(path):
    """(JSON objects, count of other non-empty lines) of a JSON-lines file; ([], 0) if absent."""
    objects, other = [], 0
    if not os.path.exists(path):
        return objects, other
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                other += 1
                continue
            if isinstance(value, dict):
                objects.append(value)
            else:
                other += 1
    return objects, other


def tail(path, n=LOG_TAIL_LINES):
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:])


def read_gtest_xml(path):
    """Counts of one GoogleTest XML file: tests, passed, failed, skipped, and the failures."""
    root = ET.parse(path).getroot()
    counts = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0, "failures": []}
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}.{case.get('name', '')}"
        failures = case.findall("failure") + case.findall("error")
        if failures:
            counts["failed"] += 1
            message = failures[0].get("message") or failures[0].text or ""
            counts["failures"].append({"test": name, "message": message[:MESSAGE_CHARS]})
        elif (case.find("skipped") is not None or case.get("result") == "skipped"
              or case.get("status") == "notrun"):
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def collect_tests(work, parts):
    binaries = []
    for part in parts:
        if not part["part"].startswith("test."):
            continue
        name = part["part"][len("test."):]
        entry = {"name": name, "rc": part["rc"], "wall_s": part["wall_s"],
                 "timed_out": part["timed_out"], "skipped_for_time": part["skipped"]}
        xml = os.path.join(work, "tests", name + ".xml")
        try:
            entry.update(read_gtest_xml(xml))
            entry["results"] = True
        except (OSError, ET.ParseError) as e:
            entry.update({"tests": 0, "passed": 0, "failed": 0, "skipped": 0, "failures": []})
            entry["results"] = False
            entry["why_no_results"] = ("timed out" if part["timed_out"] else
                                       "skipped: the budget ran out" if part["skipped"] else
                                       f"no XML ({e.__class__.__name__}); exit status "
                                       f"{part['rc']}")
            entry["log_tail"] = tail(os.path.join(work, "tests", name + ".log")) + tail(
                os.path.join(work, part["part"] + ".log"))
        binaries.append(entry)
    totals = {k: sum(b[k] for b in binaries) for k in ("tests", "passed", "failed", "skipped")}
    totals["binary_count"] = len(binaries)
    totals["binaries_without_results"] = [b["name"] for b in binaries if not b["results"]]
    # A binary that exited non-zero with every test passing (a crash at exit) still fails.
    totals["binaries_failed"] = [b["name"] for b in binaries if b["rc"] != 0]
    return {"binaries": binaries, **totals}


def check(name, value, target, detail="", reason=""):
    """One verdict: pass/fail against a lower bound, or missing with the reason."""
    if value is None:
        return {"name": name, "status": "missing", "value": None, "target": f">= {target}",
                "reason": reason or "no figure"}
    return {"name": name, "status": "pass" if value >= target else "fail", "value": value,
            "target": f">= {target}", "detail": detail}


def overall(checks):
    statuses = {c["status"] for c in checks}
    if "fail" in statuses:
        return "fail"
    if "missing" in statuses:
        return "missing"
    return "pass"


def part_failure(parts, name):
    """Why a part left no figures, in a few words ("" when it ran to its end with rc 0)."""
    part = next((p for p in parts if p["part"] == name), None)
    if part is None:
        return f"the {name} part did not run"
    if part["skipped"]:
        return f"the {name} part was skipped: the time budget ran out"
    if part["timed_out"]:
        return f"the {name} part timed out after {part['timeout_s']} s"
    if part["rc"] != 0:
        last = (part.get("log_tail") or "").strip().splitlines()
        return f"the {name} part exited {part['rc']}" + (f": {last[-1]}" if last else "")
    return ""


def p1_verdict(bench, parts=()):
    """Issue 12's P1 from the policy_prefill lines (and the torch lines for the extra ratio)."""
    lines = bench.get("policy_prefill", [])
    torch_lines = bench.get("torch_reference", [])
    fastkv = next((l for l in lines if l.get("bench") == "policy_prefill"
                   and l.get("kv_policy") == "fastkv"
                   and l.get("prompt_tokens") == P1_PROMPT_TOKENS), None)
    names = ("fastkv_ttft_speedup_vs_pytorch_sdpa_full_prefill_32k",
             "fastkv_speedup_vs_kvserve_full_over_flop_model_32k")
    if fastkv is None:
        reason = f"no policy_prefill line for fastkv at {P1_PROMPT_TOKENS} tokens"
        why = part_failure(parts, "policy_prefill")
        reason += f" ({why})" if why else ""
        checks = [check(n, None, t, reason=reason)
                  for n, t in zip(names, (P1_MIN_SPEEDUP_VS_SDPA, P1_MIN_FRACTION_OF_FLOP_MODEL))]
        return {"status": overall(checks), "checks": checks}
    if "error" in fastkv:
        reason = f"fastkv failed: {fastkv.get('error_code', '')} {fastkv['error']}".strip()
        checks = [check(n, None, t, reason=reason)
                  for n, t in zip(names, (P1_MIN_SPEEDUP_VS_SDPA, P1_MIN_FRACTION_OF_FLOP_MODEL))]
        return {"status": overall(checks), "checks": checks}

    ttft = fastkv.get("ttft_ms")
    vs_sdpa = fastkv.get("speedup_vs_sdpa")
    sdpa_reason = ""
    if fastkv.get("sdpa_ttft_ms") is None:
        why = part_failure(parts, "torch_reference")
        sdpa_reason = ("no SDPA full-prefill TTFT at 32K from torch_reference.py in this run"
                       + (f" ({why})" if why else ""))
    vs_model = fastkv.get("speedup_vs_full_over_predicted")
    model_reason = ("no kvserve full-prefill TTFT at 32K in this run"
                    if fastkv.get("full_ttft_ms") is None else "")
    checks = [
        check(names[0], vs_sdpa, P1_MIN_SPEEDUP_VS_SDPA, reason=sdpa_reason,
              detail=f"fastkv {ttft:.1f} ms vs SDPA ({fastkv.get('sdpa_bench')}) "
                     f"{fastkv.get('sdpa_ttft_ms') or 0:.1f} ms" if vs_sdpa is not None else ""),
        check(names[1], vs_model, P1_MIN_FRACTION_OF_FLOP_MODEL, reason=model_reason,
              detail=(f"measured {fastkv.get('speedup_vs_full'):.3f}x over full "
                      f"({fastkv.get('full_ttft_ms'):.1f} ms), FLOP model "
                      f"{fastkv.get('predicted_speedup_vs_full'):.3f}x")
              if vs_model is not None else ""),
    ]
    info = {"fastkv_ttft_ms": ttft, "speedup_vs_full": fastkv.get("speedup_vs_full"),
            "predicted_speedup_vs_full": fastkv.get("predicted_speedup_vs_full"),
            "tsp_tokens": fastkv.get("tsp_tokens"), "tsp_layer": fastkv.get("tsp_layer")}
    # The same ratio against torch's whole forward (prefill_model), when it ran: context only.
    whole = next((l for l in torch_lines if l.get("bench") == "prefill_model"
                  and l.get("prompt_tokens") == P1_PROMPT_TOKENS and "ttft_ms" in l), None)
    if whole is not None and ttft:
        info["speedup_vs_sdpa_prefill_model"] = whole["ttft_ms"] / ttft
    return {"status": overall(checks), "checks": checks, "info": info}


P3_RECALL_GB_S = 40.0


P2_MIN_SPEEDUP = {"fastkv": 5.0, "freekv": 3.0}
P3_MAX_STEP_OVER_ORACLE = 1.15


def check_at_most(name, value, target, detail="", reason=""):
    """check() for an upper bound."""
    if value is None:
        return {"name": name, "status": "missing", "value": None, "target": f"<= {target}",
                "reason": reason or "no figure"}
    return {"name": name, "status": "pass" if value <= target else "fail", "value": value,
            "target": f"<= {target}", "detail": detail}


def graphs_over_eager(bench):
    """What CUDA graphs change (issue 13 item 7; no target): per policy and batch where both ran,
    decode tokens/s of the policy_decode part (graphs on) over the opt-in decode_eager part's
    (--cuda-graphs false)."""
    graphed = [l for l in bench.get("policy_decode", [])
               if l.get("bench") == "policy_decode" and "error" not in l]
    eager = bench.get("decode_eager", [])
    eager_by = {(l.get("kv_policy"), l.get("batch")): l for l in eager
                if l.get("bench") == "policy_decode" and "error" not in l
                and l.get("cuda_graphs") is False and l.get("tokens_per_s")}
    out = []
    for l in graphed:
        e = eager_by.get((l.get("kv_policy"), l.get("batch")))
        if e is None or l.get("cuda_graphs") is False or not l.get("tokens_per_s"):
            continue
        out.append({"kv_policy": l["kv_policy"], "batch": l["batch"],
                    "tokens_per_s": l["tokens_per_s"], "eager_tokens_per_s": e["tokens_per_s"],
                    "graphs_over_eager": l["tokens_per_s"] / e["tokens_per_s"]})
    return out


def decode_verdicts(bench, parts=()):
    """Issue 13's verdicts from its parts' lines. P2: decode tokens/s of fastkv and freekv over
    full's at the largest batch where both ran (kvserve-gpu-bench's policy_decode lines; the
    check's minutes allow small batches only, which the detail names). P3: freekv's decode step
    over the oracle's (selected pages taken as resident) at that batch, and the recall kernel's
    best effective GB/s from pinned memory (kvserve-tiered-kernel-bench's tiered_recall lines)."""
    decode = [l for l in bench.get("policy_decode", [])
              if l.get("bench") == "policy_decode" and "error" not in l]
    why = part_failure(parts, "policy_decode") if parts else ""

    def largest(policy, field):
        ok = [l for l in decode if l.get("kv_policy") == policy and l.get(field) is not None]
        return max(ok, key=lambda l: l["batch"], default=None)

    p2 = []
    for policy, target in P2_MIN_SPEEDUP.items():
        line = largest(policy, "speedup_vs_full")
        reason = f"no policy_decode line for {policy} beside full" + (f" ({why})" if why else "")
        p2.append(check(f"{policy}_decode_tokens_per_s_over_full", line and line["speedup_vs_full"],
                        target, reason=reason,
                        detail=line and (f"batch {line['batch']}, context {line['context_tokens']}:"
                                         f" {line['tokens_per_s']:.1f} tokens/s")))
    step = largest("freekv", "step_over_oracle")
    lines = bench.get("tiered_kernels", [])
    recall = [l for l in lines if l.get("bench") == "tiered_recall" and l.get("gb_s") is not None]
    best = max(recall, key=lambda l: l["gb_s"], default=None)
    memcpy = [l["gb_s"] for l in lines
              if l.get("bench") == "tiered_recall_memcpy" and l.get("gb_s") is not None]
    p3 = [check_at_most("freekv_step_over_oracle", step and step["step_over_oracle"],
                        P3_MAX_STEP_OVER_ORACLE,
                        reason="no policy_decode line for freekv beside freekv_oracle"
                               + (f" ({why})" if why else ""),
                        detail=step and f"batch {step['batch']}, step {step['step_ms']:.2f} ms")]
    recall_check = check("recall_gb_s", best and best["gb_s"], P3_RECALL_GB_S,
                         detail=best and f"batch {best['batch']}, max_blocks {best['max_blocks']}",
                         reason="the tiered_kernels part left no tiered_recall line")
    return {"P2": {"status": overall(p2), "checks": p2},
            "P3": {"status": overall(p3 + [recall_check]), "checks": p3 + [recall_check]},
            "P3_recall": {"status": overall([recall_check]), "checks": [recall_check],
                          "info": {"per_chunk_memcpy_gb_s": memcpy}}}


def device_name(work, bench):
    smi = tail(os.path.join(work, "nvidia-smi.txt")).strip()
    names = sorted({l["device"] for lines in bench.values() for l in lines if "device" in l})
    return smi, names


def build_report(work, wall_s=None, budget_s=None):
    parts, _ = read_lines(os.path.join(work, "parts.jsonl"))
    bench = {}
    non_json = {}
    for part in parts:
        if part["part"].startswith("test."):
            continue
        lines, other = read_lines(os.path.join(work, part.get("output", "")))
        bench[part["part"]] = lines
        if other:
            non_json[part["part"]] = other
        if part["rc"] != 0:
            part["log_tail"] = tail(os.path.join(work, part["part"] + ".log"))
    smi, devices = device_name(work, bench)
    verdicts = {"P1": p1_verdict(bench, parts), **decode_verdicts(bench, parts)}
    return {
        "schema": "kvserve-gpu-check/1",
        "nvidia_smi": smi,
        "devices": devices,
        "wall_s": wall_s,
        "budget_s": budget_s,
        "parts": parts,
        "tests": collect_tests(work, parts),
        "bench": bench,
        "bench_non_json_lines": non_json,
        "verdicts": verdicts,
        "cuda_graphs": graphs_over_eager(bench),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work")
    p.add_argument("out")
    p.add_argument("--wall-s", type=float)
    p.add_argument("--budget-s", type=float)
    args = p.parse_args()
    report = build_report(args.work, args.wall_s, args.budget_s)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    t = report["tests"]
    print(f"device: {report['nvidia_smi'] or ', '.join(report['devices']) or 'unknown'}")
    print(f"tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped in "
          f"{t['binary_count']} binaries; without results: {t['binaries_without_results'] or 'none'}")
    for part in report["parts"]:
        if part["rc"] != 0 and not part["part"].startswith("test."):
            print(f"part {part['part']}: rc {part['rc']}"
                  f"{' (timed out)' if part['timed_out'] else ''}")
    for line in report["bench"].get("policy_prefill", []):
        if line.get("bench") != "policy_prefill":
            continue
        if "error" in line:
            print(f"policy {line['kv_policy']} @ {line['prompt_tokens']}: error "
                  f"{line['error']}")
            continue

        def fmt(v):
            return "-" if v is None else f"{v:.3f}"

        print(f"policy {line['kv_policy']} @ {line['prompt_tokens']}: {line['ttft_ms']:.1f} ms; "
              f"vs full {fmt(line.get('speedup_vs_full'))} "
              f"(FLOP model {fmt(line.get('predicted_speedup_vs_full'))}); "
              f"vs SDPA {fmt(line.get('speedup_vs_sdpa'))}")
    for name, verdict in report["verdicts"].items():
        print(f"{name}: {verdict['status']}")
        for c in verdict.get("checks", []):
            value = "-" if c["value"] is None else f"{c['value']:.3f}"
            print(f"  {c['name']}: {value} (target {c['target']}) {c['status']} "
                  f"{c.get('detail') or c.get('reason', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
