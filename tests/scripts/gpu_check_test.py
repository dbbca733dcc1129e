#!/usr/bin/env python3
"""scripts/gpu-check.sh and tools/bench/gpu_check_report.py without a GPU.

The report's verdict and test counting run on recorded bench lines and GoogleTest XML; the
script runs end to end with the GPU binaries replaced by stand-ins that print recorded lines
(and a real GoogleTest binary from the CPU build as one of the "gpu tests", beside a failing and
a hanging one), so what is checked is the script's own work: the order and flags of its parts,
their timeouts and budget, and the one JSON file it leaves.

Usage: gpu_check_test.py --gtest-binary PATH   (ctest passes policy_prefill_test)
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "bench"))
import gpu_check_report  # noqa: E402

GTEST_BINARY = None

TORCH_LINES = [
    {"impl": "torch", "bench": "prefill", "prompt_tokens": 8192, "ttft_ms": 257.0},
    {"impl": "torch", "bench": "prefill", "prompt_tokens": 32768, "ttft_ms": 1380.0},
    {"impl": "torch", "bench": "prefill_model", "prompt_tokens": 32768, "ttft_ms": 1500.0},
]


def policy_line(policy, n, **fields):
    line = {"impl": "kvserve", "device": "NVIDIA H200", "bench": "policy_prefill",
            "kv_policy": policy, "prompt_tokens": n}
    line.update(fields)
    return line


def fastkv_line(ttft, full_ttft, sdpa_ttft, predicted=1.75):
    return policy_line("fastkv", 32768, ttft_ms=ttft, full_ttft_ms=full_ttft,
                       speedup_vs_full=full_ttft / ttft, predicted_speedup_vs_full=predicted,
                       speedup_vs_full_over_predicted=full_ttft / ttft / predicted,
                       sdpa_bench="prefill", sdpa_ttft_ms=sdpa_ttft,
                       speedup_vs_sdpa=sdpa_ttft / ttft, tsp_tokens=6553, tsp_layer=15)


GTEST_XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" disabled="0" errors="0" name="AllTests">
  <testsuite name="Kern" tests="4" failures="1" disabled="0" skipped="1" errors="0">
    <testcase name="Ok" status="run" result="completed" classname="Kern" />
    <testcase name="AlsoOk" status="run" result="completed" classname="Kern" />
    <testcase name="NoDevice" status="run" result="skipped" classname="Kern">
      <skipped message="no CUDA device" />
    </testcase>
    <testcase name="Wrong" status="run" result="completed" classname="Kern">
      <failure message="Expected equality of these values: 1 and 2" type="" />
    </testcase>
  </testsuite>
</testsuites>
"""


def write_work(work, parts, outputs, xml=None):
    """A gpu-check work folder: parts.jsonl, each part's stdout lines, tests/*.xml."""
    os.makedirs(os.path.join(work, "tests"), exist_ok=True)
    with open(os.path.join(work, "parts.jsonl"), "w") as f:
        for p in parts:
            f.write(json.dumps({"rc": 0, "wall_s": 1.0, "timeout_s": 100, "timed_out": False,
                                "skipped": False, **p}) + "\n")
    for name, lines in outputs.items():
        with open(os.path.join(work, name), "w") as f:
            for l in lines:
                f.write((l if isinstance(l, str) else json.dumps(l)) + "\n")
    for name, text in (xml or {}).items():
        with open(os.path.join(work, "tests", name + ".xml"), "w") as f:
            f.write(text)


def bench_parts():
    return [{"part": "torch_reference", "output": "torch-reference.jsonl"},
            {"part": "policy_prefill", "output": "kvserve-gpu-bench.jsonl"}]


class ReportTest(unittest.TestCase):
    def report(self, kvserve_lines, torch_lines=TORCH_LINES, parts=None, xml=None):
        with tempfile.TemporaryDirectory() as work:
            write_work(work, parts or bench_parts(),
                       {"torch-reference.jsonl": torch_lines,
                        "kvserve-gpu-bench.jsonl": kvserve_lines}, xml)
            return gpu_check_report.build_report(work, 100.0, 470.0)

    def test_p3_recall_reads_the_tiered_kernel_bench_lines(self):
        def verdict(lines):
            return gpu_check_report.decode_verdicts({"tiered_kernels": lines})["P3_recall"]

        line = {"bench": "tiered_recall", "batch": 8, "max_blocks": 16}
        fast = verdict([{**line, "gb_s": 12.0}, {**line, "gb_s": 46.0},
                        {"bench": "tiered_recall_memcpy", "gb_s": 5.0}])
        self.assertEqual(fast["status"], "pass")
        self.assertEqual(fast["checks"][0]["value"], 46.0)
        self.assertEqual(fast["info"]["per_chunk_memcpy_gb_s"], [5.0])
        self.assertEqual(verdict([{**line, "gb_s": 30.0}])["status"], "fail")
        self.assertEqual(verdict([])["status"], "missing")

    def test_p2_and_p3_read_the_policy_decode_lines_at_the_largest_batch(self):
        def line(policy, batch, **fields):
            return {"bench": "policy_decode", "kv_policy": policy, "batch": batch,
                    "context_tokens": 32768, "tokens_per_s": 100.0 * batch, "step_ms": 10.0,
                    **fields}

        lines = [line("full", 1, speedup_vs_full=1.0), line("full", 4, speedup_vs_full=1.0),
                 line("fastkv", 1, speedup_vs_full=2.0), line("fastkv", 4, speedup_vs_full=5.5),
                 line("freekv", 1, speedup_vs_full=3.5, step_over_oracle=1.3),
                 line("freekv", 4, speedup_vs_full=2.5, step_over_oracle=1.1),
                 {"bench": "policy_decode", "kv_policy": "quest", "batch": 8, "error": "x"}]
        v = gpu_check_report.decode_verdicts({"policy_decode": lines})
        p2 = {c["name"]: c for c in v["P2"]["checks"]}
        self.assertEqual(p2["fastkv_decode_tokens_per_s_over_full"]["status"], "pass")
        self.assertEqual(p2["freekv_decode_tokens_per_s_over_full"]["value"], 2.5)  # batch 4
        self.assertEqual(v["P2"]["status"], "fail")
        p3 = {c["name"]: c for c in v["P3"]["checks"]}
        self.assertEqual(p3["freekv_step_over_oracle"]["status"], "pass")
        self.assertEqual(p3["recall_gb_s"]["status"], "missing")
        self.assertEqual(v["P3"]["status"], "missing")
        self.assertEqual(gpu_check_report.graphs_over_eager({"policy_decode": lines}), [],
                         "no decode_eager part: nothing to compare")
        empty = gpu_check_report.decode_verdicts({})
        self.assertEqual(empty["P2"]["status"], "missing")
        self.assertIn("no policy_decode line for fastkv", empty["P2"]["checks"][0]["reason"])

    def test_graphs_are_set_against_the_opt_in_eager_decode_lines(self):
        def line(policy, batch, tokens_per_s, graphs):
            return {"bench": "policy_decode", "kv_policy": policy, "batch": batch,
                    "tokens_per_s": tokens_per_s, "cuda_graphs": graphs}

        graphs = gpu_check_report.graphs_over_eager({
            "policy_decode": [line("full", 1, 60.0, True), line("freekv", 1, 90.0, True),
                              line("freekv", 4, 300.0, True)],
            "decode_eager": [line("full", 1, 40.0, False), line("freekv", 1, 60.0, False)]})
        self.assertEqual(graphs,
                         [{"kv_policy": "full", "batch": 1, "tokens_per_s": 60.0,
                           "eager_tokens_per_s": 40.0, "graphs_over_eager": 1.5},
                          {"kv_policy": "freekv", "batch": 1, "tokens_per_s": 90.0,
                           "eager_tokens_per_s": 60.0, "graphs_over_eager": 1.5}])

    def test_p1_passes_when_both_ratios_reach_their_targets(self):
        # 700 ms against SDPA's 1380: 1.97x; 2.2x over full against a predicted 1.75x: 1.26.
        r = self.report([fastkv_line(700.0, 1540.0, 1380.0)])
        p1 = r["verdicts"]["P1"]
        self.assertEqual(p1["status"], "pass", p1)
        self.assertAlmostEqual(p1["checks"][0]["value"], 1380.0 / 700.0)
        self.assertEqual([c["status"] for c in p1["checks"]], ["pass", "pass"])
        self.assertAlmostEqual(p1["info"]["speedup_vs_sdpa_prefill_model"], 1500.0 / 700.0)

    def test_p1_fails_on_either_ratio(self):
        slow = self.report([fastkv_line(800.0, 1540.0, 1380.0)])["verdicts"]["P1"]
        self.assertEqual(slow["status"], "fail")  # 1.725x SDPA
        self.assertEqual(slow["checks"][0]["status"], "fail")
        self.assertEqual(slow["checks"][1]["status"], "pass")
        # 1.6x over full where the FLOP model predicts 1.75x: 0.914 of it.
        under = self.report([fastkv_line(600.0, 960.0, 1380.0)])["verdicts"]["P1"]
        self.assertEqual(under["status"], "fail")
        self.assertEqual([c["status"] for c in under["checks"]], ["pass", "fail"])
        self.assertAlmostEqual(under["checks"][1]["value"], 1.6 / 1.75)

    def test_p1_is_missing_with_the_reason_when_fastkv_failed_or_did_not_run(self):
        error = policy_line("fastkv", 32768, error="kv policy 'fastkv' is not implemented on "
                            "the cuda backend yet", error_code="UNIMPLEMENTED")
        p1 = self.report([error])["verdicts"]["P1"]
        self.assertEqual(p1["status"], "missing")
        self.assertIn("not implemented on the cuda backend", p1["checks"][0]["reason"])
        parts = [{"part": "torch_reference", "output": "torch-reference.jsonl"},
                 {"part": "policy_prefill", "output": "kvserve-gpu-bench.jsonl", "rc": 124,
                  "timed_out": True, "timeout_s": 150}]
        nothing = self.report([], torch_lines=[], parts=parts)["verdicts"]["P1"]
        self.assertEqual(nothing["status"], "missing")
        self.assertIn("no policy_prefill line", nothing["checks"][1]["reason"])
        self.assertIn("timed out after 150 s", nothing["checks"][1]["reason"])
        # Measured, but torch gave no SDPA figure: that check alone is missing.
        line = fastkv_line(700.0, 1540.0, 1380.0)
        line.update(sdpa_ttft_ms=None, speedup_vs_sdpa=None)
        half = self.report([line], torch_lines=[])["verdicts"]["P1"]
        self.assertEqual([c["status"] for c in half["checks"]], ["missing", "pass"])
        self.assertEqual(half["status"], "missing")

    def test_tests_are_counted_from_the_xml_and_a_binary_without_xml_is_named(self):
        parts = [{"part": "test.kern_test", "output": "kern_test.log", "rc": 1},
                 {"part": "test.hang_test", "output": "hang_test.log", "rc": 124,
                  "timed_out": True}] + bench_parts()
        r = self.report([], parts=parts, xml={"kern_test": GTEST_XML})
        t = r["tests"]
        self.assertEqual((t["tests"], t["passed"], t["failed"], t["skipped"]), (4, 2, 1, 1))
        self.assertEqual(t["binaries_without_results"], ["hang_test"])
        self.assertEqual(t["binaries_failed"], ["kern_test", "hang_test"])
        kern = t["binaries"][0]
        self.assertEqual(kern["failures"][0]["test"], "Kern.Wrong")
        self.assertIn("1 and 2", kern["failures"][0]["message"])
        self.assertEqual(t["binaries"][1]["why_no_results"], "timed out")

    def test_bench_lines_are_kept_per_part_and_other_lines_counted(self):
        r = self.report([fastkv_line(700.0, 1540.0, 1380.0), "Segmentation fault"])
        self.assertEqual(len(r["bench"]["policy_prefill"]), 1)
        self.assertEqual(len(r["bench"]["torch_reference"]), 3)
        self.assertEqual(r["bench_non_json_lines"], {"policy_prefill": 1})
        self.assertEqual(r["devices"], ["NVIDIA H200"])


def executable(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


class ScriptTest(unittest.TestCase):
    """gpu-check.sh end to end with stand-ins for the GPU binaries."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        self.args_file = os.path.join(d, "bench-args.txt")
        torch_fixture = os.path.join(d, "torch.jsonl")
        with open(torch_fixture, "w") as f:
            f.writelines(json.dumps(l) + "\n" for l in TORCH_LINES)
        bench_fixture = os.path.join(d, "bench.jsonl")
        with open(bench_fixture, "w") as f:
            for policy in ("full", "snapkv"):
                f.write(json.dumps(policy_line(policy, 32768, ttft_ms=1540.0)) + "\n")
            f.write(json.dumps(fastkv_line(700.0, 1540.0, 1380.0)) + "\n")
        decode_fixture = os.path.join(d, "decode.jsonl")
        with open(decode_fixture, "w") as f:
            for policy, speedup in (("full", 1.0), ("fastkv", 5.5), ("freekv", 3.2)):
                f.write(json.dumps({"bench": "policy_decode", "kv_policy": policy, "batch": 4,
                                    "context_tokens": 32768, "tokens_per_s": 50.0 * speedup,
                                    "step_ms": 80.0 / speedup, "speedup_vs_full": speedup,
                                    **({"step_over_oracle": 1.1} if policy == "freekv" else {})})
                        + "\n")
        # The bench stand-in records its flags and what the SDPA reference held when it ran;
        # its policy_decode run records them apart and prints decode lines.
        self.bench = executable(os.path.join(d, "kvserve-gpu-bench"), f"""
            #!/usr/bin/env bash
            if [[ " $* " == *" policy_decode "* ]]; then
              printf '%s\\n' "$@" > {self.args_file}.decode
              cat {decode_fixture}
              exit 0
            fi
            printf '%s\\n' "$@" > {self.args_file}
            ref=""
            while [ $# -gt 0 ]; do [ "$1" = --sdpa-reference ] && ref=$2; shift; done
            cp "$ref" {self.args_file}.reference
            cat {bench_fixture}
            """)
        self.torch = executable(os.path.join(d, "torch_reference.py"), f"""
            import shutil, sys
            with open({self.args_file!r} + ".torch", "w") as f:
                f.write("\\n".join(sys.argv[1:]))
            sys.stdout.write(open({torch_fixture!r}).read())
            """)
        self.failing = executable(os.path.join(d, "failing_test"), f"""
            #!/usr/bin/env bash
            out=${{1#--gtest_output=xml:}}
            cat > "$out" <<'XML'
            {textwrap.indent(GTEST_XML, '            ').strip()}
            XML
            exit 1
            """)
        self.hanging = executable(os.path.join(d, "hanging_test"), """
            #!/usr/bin/env bash
            sleep 60
            """)

    def tearDown(self):
        self.tmp.cleanup()

    def run_check(self, tests, **env):
        results = os.path.join(self.tmp.name, "results")
        e = dict(os.environ, KVSERVE_GPU_BENCH=self.bench, KVSERVE_TORCH_REFERENCE=self.torch,
                 KVSERVE_GPU_TESTS=" ".join(tests), PYTHON=sys.executable,
                 KVSERVE_GPU_CHECK_TEST_S="4")
        e.update(env)
        t0 = time.monotonic()
        proc = subprocess.run([os.path.join(REPO, "scripts", "gpu-check.sh"), results], env=e,
                              capture_output=True, text=True, timeout=120)
        wall = time.monotonic() - t0
        with open(os.path.join(results, "gpu-check.json")) as f:
            report = json.load(f)
        return proc, report, results, wall

    def test_runs_tests_then_torch_then_the_policy_bench_into_one_json(self):
        proc, report, results, wall = self.run_check(
            [GTEST_BINARY, self.failing, self.hanging])
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)  # a test failed
        self.assertLess(wall, 60)  # the hanging test was cut at its 4 s
        self.assertEqual(sorted(os.listdir(results)), ["gpu-check-logs.tar.gz", "gpu-check.json"])

        t = report["tests"]
        real = t["binaries"][0]
        self.assertEqual(real["name"], os.path.basename(GTEST_BINARY))
        self.assertTrue(real["results"], real)
        self.assertGreater(real["passed"], 0)
        self.assertEqual(real["failed"], 0)
        self.assertEqual(t["binaries"][1]["failed"], 1)
        self.assertEqual(t["binaries_without_results"], ["hanging_test"])
        hang = next(p for p in report["parts"] if p["part"] == "test.hanging_test")
        self.assertTrue(hang["timed_out"])
        self.assertEqual(hang["timeout_s"], 4)

        # torch first, with the policy lengths; then kvserve reading what torch printed.
        with open(self.args_file + ".torch") as f:
            torch_args = f.read().split("\n")
        self.assertIn("prefill,prefill_model", torch_args)
        self.assertIn("8192,32768", torch_args)
        with open(self.args_file) as f:
            bench_args = f.read().split("\n")
        for flag, value in (("--kv-policy", "full,snapkv,fastkv"),
                            ("--policy-lengths", "8192,32768"), ("--kv-tsp-rate", "0.2"),
                            ("--model", "synthetic:llama-3.1-8b"), ("--sdpa-bench", "prefill"),
                            ("--benches", "policy_prefill")):
            self.assertEqual(bench_args[bench_args.index(flag) + 1], value, flag)
        with open(self.args_file + ".reference") as f:
            self.assertEqual(len(f.read().splitlines()), len(TORCH_LINES))

        # Then issue 13's decode part: every policy and freekv's oracle at 32K.
        with open(self.args_file + ".decode") as f:
            decode_args = f.read().split("\n")
        for flag, value in (("--decode-policy",
                             "full,fastkv,quest,freekv,freekv_oracle,fastkv_freekv"),
                            ("--decode-context", "32768"), ("--decode-batches", "1,4")):
            self.assertEqual(decode_args[decode_args.index(flag) + 1], value, flag)
        self.assertEqual(len(report["bench"]["policy_decode"]), 3)
        self.assertEqual(report["verdicts"]["P2"]["status"], "pass", report["verdicts"]["P2"])
        p3 = {c["name"]: c["status"] for c in report["verdicts"]["P3"]["checks"]}
        self.assertEqual(p3, {"freekv_step_over_oracle": "pass", "recall_gb_s": "missing"})
        self.assertEqual(len(report["bench"]["policy_prefill"]), 3)
        self.assertEqual(len(report["bench"]["torch_reference"]), 3)
        self.assertEqual(report["verdicts"]["P1"]["status"], "pass")
        self.assertIn("P1: pass", proc.stdout)
        with tarfile.open(os.path.join(results, "gpu-check-logs.tar.gz")) as tar:
            names = tar.getnames()
        self.assertIn("./tests/failing_test.xml", names)
        self.assertIn("./parts.jsonl", names)

    def test_parts_can_be_picked_for_a_rerun(self):
        proc, report, _, _ = self.run_check([self.failing],
                                            KVSERVE_GPU_CHECK_PARTS="policy_prefill")
        self.assertEqual([p["part"] for p in report["parts"]], ["policy_prefill"])
        self.assertEqual(report["tests"]["binary_count"], 0)
        self.assertEqual(report["verdicts"]["P1"]["status"], "pass")  # from the lines printed

    def test_the_opt_in_eager_decode_part_runs_the_bench_without_graphs(self):
        proc, report, _, _ = self.run_check([], KVSERVE_GPU_CHECK_PARTS="decode_eager")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual([p["part"] for p in report["parts"]], ["decode_eager"])
        with open(self.args_file + ".decode") as f:
            args = f.read().split("\n")
        for flag, value in (("--cuda-graphs", "false"), ("--decode-policy", "full,freekv"),
                            ("--decode-context", "32768")):
            self.assertEqual(args[args.index(flag) + 1], value, flag)
        self.assertEqual(len(report["bench"]["decode_eager"]), 3)
        self.assertEqual(report["cuda_graphs"], [])  # no graphed decode lines to set them against

    def test_a_bundle_runs_its_own_binaries_and_keeps_its_libraries_from_torch(self):
        import shutil
        bundle = os.path.join(self.tmp.name, "gpu-bundle")
        for sub in ("bin", "lib", "scripts", "tools/bench"):
            os.makedirs(os.path.join(bundle, sub))
        shutil.copy(os.path.join(REPO, "scripts", "gpu-check.sh"), os.path.join(bundle, "scripts"))
        shutil.copy(os.path.join(REPO, "tools", "bench", "gpu_check_report.py"),
                    os.path.join(bundle, "tools", "bench"))
        shutil.copy(self.failing, os.path.join(bundle, "bin", "kern_test"))
        record = os.path.join(self.tmp.name, "ld")
        executable(os.path.join(bundle, "bin", "kvserve-gpu-bench"), f"""
            #!/usr/bin/env bash
            echo "$LD_LIBRARY_PATH" > {record}.bench
            """)
        executable(os.path.join(bundle, "tools", "bench", "torch_reference.py"), f"""
            import os
            open({record!r} + ".torch", "w").write(os.environ.get("LD_LIBRARY_PATH", ""))
            """)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KVSERVE_")}
        env.update(PYTHON=sys.executable, LD_LIBRARY_PATH="/opt/outside")
        results = os.path.join(self.tmp.name, "bundle-results")
        proc = subprocess.run([os.path.join(bundle, "scripts", "gpu-check.sh"), results],
                              env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)  # kern_test fails
        with open(os.path.join(results, "gpu-check.json")) as f:
            report = json.load(f)
        self.assertEqual([b["name"] for b in report["tests"]["binaries"]], ["kern_test"])
        self.assertEqual(report["tests"]["failed"], 1)
        with open(record + ".bench") as f:
            self.assertTrue(f.read().startswith(os.path.join(bundle, "lib") + ":"))
        with open(record + ".torch") as f:
            self.assertEqual(f.read(), "/opt/outside")

    def test_a_spent_budget_skips_parts_and_still_writes_the_json(self):
        proc, report, _, wall = self.run_check([self.hanging], KVSERVE_GPU_CHECK_BUDGET_S="22",
                                               KVSERVE_GPU_CHECK_TEST_S="60")
        self.assertEqual(proc.returncode, 1)
        self.assertLess(wall, 40)
        parts = {p["part"]: p for p in report["parts"]}
        self.assertTrue(parts["test.hanging_test"]["timed_out"])  # cut at the budget's 12 s
        self.assertLessEqual(parts["test.hanging_test"]["timeout_s"], 12)
        self.assertTrue(parts["policy_prefill"]["skipped"])
        self.assertEqual(report["verdicts"]["P1"]["status"], "missing")


def main():
    global GTEST_BINARY
    p = argparse.ArgumentParser()
    p.add_argument("--gtest-binary", required=True)
    args, rest = p.parse_known_args()
    GTEST_BINARY = os.path.abspath(args.gtest_binary)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
