#!/usr/bin/env python3
"""The real Prometheus scraping a live kvserve under kvserve-bench traffic with several KV
policies: every Grafana panel's expression and every alert's expression (its comparison made a
`bool` one, so that a quiet alert still shows whether its expression has data) is evaluated
through Prometheus's HTTP API and must return data. An expression that returns nothing is a
broken panel or an alert that can never fire.

  prometheus_live_check.py --bin-dir build/bin [--load-seconds 30]

Loopback only; the load is bounded (--load-seconds at --request-rate, at most 8 in flight)."""
import argparse
import json
import math
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
POLICIES = ["full", "snapkv", "fastkv", "quest", "freekv", "fastkv_freekv"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def start_kvserve(bin_dir, workdir):
    log = workdir / "kvserve.log"
    stories = ROOT / "tests/data/stories260K"
    out = open(log, "w")
    proc = subprocess.Popen(
        [str(bin_dir / "kvserve"), "--model", str(stories / "stories260K.bin"), "--tokenizer",
         str(stories / "tok512.bin"), "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
         # A small device pool, so that the gauges move and preemptions can happen.
         "--kv-cache-memory", "4MiB", "--kv-host-memory", "16MiB", "--threads", "1"],
        stdout=out, stderr=subprocess.STDOUT)

    def ports():
        text = log.read_text()
        grpc = re.search(r"gRPC listening on 127\.0\.0\.1:(\d+)", text)
        metrics = re.search(r"metrics listening on 127\.0\.0\.1:(\d+)", text)
        if proc.poll() is not None:
            sys.exit(f"kvserve exited:\n{text}")
        return (int(grpc.group(1)), int(metrics.group(1))) if grpc and metrics and "ready:" in text else None

    return proc, wait_for(ports, 60, "kvserve to be ready")


def start_prometheus(workdir, metrics_port):
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus-local.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(ROOT / "deploy/prometheus/alerts.yml")]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{metrics_port}"]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("prometheus") or "/usr/bin/prometheus",
         f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(workdir / "prometheus.log", "w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def finite_values(result):
    return [float(s["value"][1]) for s in result if not math.isnan(float(s["value"][1]))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, type=pathlib.Path)
    ap.add_argument("--load-seconds", type=float, default=30)
    ap.add_argument("--request-rate", type=float, default=15)
    args = ap.parse_args()
    if not (shutil.which("prometheus") or pathlib.Path("/usr/bin/prometheus").exists()):
        sys.exit("prometheus not installed: run scripts/setup.sh")

    failures = []
    with tempfile.TemporaryDirectory(prefix="kvserve-prom-") as d:
        workdir = pathlib.Path(d)
        kvserve, (grpc_port, metrics_port) = start_kvserve(args.bin_dir, workdir)
        prometheus, base = start_prometheus(workdir, metrics_port)
        bench = None
        try:
            wait_for(lambda: query_ok(base, 'up{job="kvserve"} == 1'), 60, "the first scrape")
            prompts = int(args.load_seconds * args.request_rate)
            bench = subprocess.Popen(
                [str(args.bin_dir / "kvserve-bench"), "--server", f"127.0.0.1:{grpc_port}",
                 "--num-prompts", str(prompts), "--request-rate", str(args.request_rate),
                 "--max-concurrency", "8", "--random-input-len", "192", "--random-output-len", "48",
                 "--random-range-ratio", "0.5", "--kv-policy-mix", ",".join(POLICIES),
                 # Budgets below the context, so the tiered policies recall and correct.
                 "--kv-budget", "96", "--kv-sink", "16", "--kv-recent", "16",
                 "--disable-tqdm", "--warmup", "0", "--timeout", "60"],
                stdout=open(workdir / "bench.json", "w"), stderr=subprocess.PIPE, text=True)
            # Evaluate while the load runs, once the rate windows (30 s) hold a stretch of it.
            time.sleep(min(args.load_seconds * 0.8, 25))
            if bench.poll() not in (None, 0):
                sys.exit(f"kvserve-bench failed: {bench.stderr.read()}")
            failures += check_dashboard(base)
            failures += check_alerts(base)
            bench.wait(timeout=args.load_seconds * 4 + 60)
            result = json.loads((workdir / "bench.json").read_text().splitlines()[0])
            print(f"load: {result['completed']} completed, {result['failed']} failed, "
                  f"{result['output_throughput']:.0f} output tokens/s, "
                  f"p99 TTFT {result['p99_ttft_ms']:.1f} ms")
            if result["failed"]:
                failures.append(f"kvserve-bench: {result['failed']} requests failed")
        finally:
            for proc in (bench, prometheus, kvserve):
                if proc and proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=60)
    if failures:
        print("\n".join(f"FAIL: {f}" for f in failures))
        sys.exit(f"{len(failures)} expression(s) returned no data")
    print("every panel and alert expression returned data")


def query_ok(base, expr):
    try:
        return bool(query(base, expr))
    except OSError:
        return False


def check_dashboard(base):
    dash = json.loads((ROOT / "deploy/grafana/dashboards/kvserve.json").read_text())
    failures = []
    print(f"{'panel / legend':58} series  value")
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = (target["expr"].replace("$__rate_interval", "30s")
                    .replace('instance=~"$instance"', 'instance=~".*"'))
            result = query(base, expr)
            values = finite_values(result)
            label = f"{panel['title']} / {target['legendFormat']}"
            shown = f"{values[0]:.4g}" if values else "-"
            print(f"{label[:58]:58} {len(result):6}  {shown}")
            if not values:
                failures.append(f"panel \"{panel['title']}\": {expr} returned no data")
            # Under this load these move: a zero would mean the metric is not fed.
            moving = ("tokens_total", "recall_bytes_total", "freekv_corrections_total",
                      "request_success_total", "_seconds_bucket")
            if values and any(m in expr for m in moving) and max(values) <= 0:
                failures.append(f"panel \"{panel['title']}\": {expr} stayed at 0 under load")
    kept = query(base, 'max by (policy) (kvserve_kv_tokens_kept_ratio{job="kvserve"})')
    seen = {s["metric"].get("policy") for s in kept}
    missing = set(POLICIES) - seen
    if missing:
        failures.append(f"kept-token ratio: no series for {sorted(missing)}")
    return failures


def check_alerts(base):
    failures = []
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as r:
        loaded = {rule["name"]: rule for g in json.load(r)["data"]["groups"] for rule in g["rules"]}
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            if loaded.get(name, {}).get("health") != "ok":
                failures.append(f"alert {name} not loaded healthy: {loaded.get(name)}")
            m = re.match(r"^(.*\S)\s*(>=|<=|==|!=|>|<)\s*([0-9.eE+-]+)\s*$", rule["expr"], re.S)
            if not m:
                failures.append(f"alert {name}: expression does not end in a comparison")
                continue
            expr = f"{m.group(1)} {m.group(2)} bool {m.group(3)}"
            result = query(base, expr)
            print(f"alert {name:40} {len(result):6}  {[s['value'][1] for s in result][:3]}")
            if not finite_values(result):
                failures.append(f"alert {name}: {expr} returned no data")
    return failures


if __name__ == "__main__":
    main()
