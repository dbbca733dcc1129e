#!/usr/bin/env python3
"""Load for scripts/soak.sh: mixed KV policies, prompts of every kind, client cancels, deadlines,
Aborts and bad requests against one kvserve on loopback, while the server's resident memory is
sampled. Fails (exit 1) when RSS keeps growing after warm-up, when KV pages are left in use once
the load stops, or when the server stops answering.

    soak_driver.py --server 127.0.0.1:PORT --pid PID --minutes M --csv curve.csv
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import kvserve_client  # noqa: E402  (stub generation from proto/)

POLICIES = [
    {},
    {"name": "full"},
    {"name": "snapkv", "budget": 64, "window": 8},
    {"name": "fastkv", "retain_rate": 0.2, "tsp_rate": 0.3},
    {"name": "quest", "budget": 64, "page_size": 16, "sink": 16, "recent": 16},
    {"name": "freekv", "budget": 64, "page_size": 16, "sink": 16, "recent": 32},
    {"name": "fastkv_freekv", "budget": 64, "page_size": 16, "sink": 16, "recent": 32},
]
WORDS = "once upon a time there was a little girl named lily she liked to play outside".split()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Soak:
    def __init__(self, args, pb2, pb2_grpc):
        self.args = args
        self.pb2 = pb2
        self.channel = grpc.insecure_channel(args.server)
        self.stub = pb2_grpc.InferenceStub(self.channel)
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []
        self.stop = threading.Event()
        self.seq = 0

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def unexpected(self, what):
        with self.lock:
            if len(self.errors) < 20 and what not in self.errors:
                self.errors.append(what)
        self.count("unexpected")

    def request(self, rng):
        pb2 = self.pb2
        r = pb2.GenerateRequest()
        kind = rng.random()
        # stories260K has no chat template: text and token-id prompts.
        if kind < 0.5:
            r.text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 120)))
        else:
            r.token_ids.ids.extend(rng.randint(3, 511) for _ in range(rng.randint(1, 300)))
        s = r.sampling
        s.max_new_tokens = rng.randint(1, 48)
        s.temperature = rng.choice([0.0, 0.7, 1.0])
        if rng.random() < 0.3:
            s.top_k = rng.randint(1, 50)
            s.top_p = 0.9
        if rng.random() < 0.2:
            s.stop.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            s.logprobs = rng.randint(0, 5)
        s.ignore_eos = rng.random() < 0.5
        r.non_streaming = rng.random() < 0.2
        policy = rng.choice(POLICIES)
        for key, value in policy.items():
            setattr(r.kv_policy, key, value)
        return r

    def bad_request(self, rng):
        r = self.request(rng)
        choice = rng.randrange(6)
        if choice == 0:
            r.sampling.top_p = 1.5
        elif choice == 1:
            r.text = ""
        elif choice == 2:
            r.kv_policy.name = "no-such-policy"
        elif choice == 3:
            r.sampling.stop.extend(["s"] * 100)
        elif choice == 4:
            r.request_id = "x" * 4096
        else:
            r.token_ids.ids[:] = [10**6]
        return r

    def run_one(self, rng):
        pb2 = self.pb2
        action = rng.random()
        try:
            if action < 0.55:  # runs to its end
                for _ in self.stub.Generate(self.request(rng), timeout=120):
                    pass
                self.count("completed")
            elif action < 0.68:  # client cancels after the first message
                call = self.stub.Generate(self.request(rng), timeout=120)
                for _ in call:
                    call.cancel()
                    break
                self.count("client_cancel")
            elif action < 0.78:  # deadline mid-request
                try:
                    r = self.request(rng)
                    r.sampling.max_new_tokens = 200
                    r.sampling.ignore_eos = True
                    for _ in self.stub.Generate(r, timeout=rng.uniform(0.02, 0.3)):
                        pass
                    self.count("completed")
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
                    self.count("deadline")
            elif action < 0.88:  # Abort by id from another call
                with self.lock:
                    self.seq += 1
                    rid = f"soak-{threading.get_ident()}-{self.seq}"
                r = self.request(rng)
                r.request_id = rid
                r.sampling.max_new_tokens = 200
                r.sampling.ignore_eos = True
                r.non_streaming = False
                call = self.stub.Generate(r, timeout=120)
                got = next(call, None)
                try:
                    self.stub.Abort(pb2.AbortRequest(request_id=rid), timeout=10)
                except grpc.RpcError as e:  # it finished before the Abort arrived
                    if e.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                for _ in call:
                    pass
                self.count("abort" if got is not None else "completed")
            elif action < 0.97:  # a request the server must refuse
                try:
                    for _ in self.stub.Generate(self.bad_request(rng), timeout=30):
                        pass
                    self.unexpected("a bad request was accepted")
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                        raise
                    self.count("refused")
            else:  # bytes that are no GenerateRequest
                raw = self.channel.unary_unary("/kvserve.v1.Inference/Abort")
                try:
                    raw(b"\x0a\xff\xff\xff\x0fabc", timeout=10)
                    self.unexpected("malformed bytes were accepted")
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                        raise
                    self.count("malformed")
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.count("busy")  # queue full: admission control, not a failure
            elif e.code() == grpc.StatusCode.CANCELLED:
                self.count("client_cancel")
            else:
                self.unexpected(f"{e.code().name}: {e.details()}")

    def worker(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            self.run_one(rng)

    def status(self):
        st = self.stub.GetServerStatus(self.pb2.GetServerStatusRequest(), timeout=10)
        pages = {t.tier: t.pages_used for t in st.kv_tiers}
        return st, pages


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--sample-seconds", type=float, default=10)
    p.add_argument("--warmup-fraction", type=float, default=0.25)
    p.add_argument("--max-growth-kib", type=int, default=8192,
                   help="allowed RSS growth after warm-up (plus 5%% of the warm RSS)")
    p.add_argument("--csv", required=True)
    args = p.parse_args()

    out_dir = tempfile.mkdtemp(prefix="kvserve-soak-stubs-")
    pb2, pb2_grpc = kvserve_client.load_stubs(kvserve_client.DEFAULT_PROTO_DIR, out_dir)
    soak = Soak(args, pb2, pb2_grpc)
    threads = [threading.Thread(target=soak.worker, args=(1000 + i,), daemon=True)
               for i in range(args.workers)]
    start = time.monotonic()
    end = start + args.minutes * 60
    for t in threads:
        t.start()
    samples = []
    with open(args.csv, "w") as csv:
        csv.write("elapsed_s,rss_kib,requests,device_pages,host_pages\n")
        while True:
            now = time.monotonic()
            with soak.lock:
                done = sum(v for k, v in soak.counts.items() if k != "unexpected")
            _, pages = soak.status()
            rss = rss_kib(args.pid)
            samples.append((now - start, rss))
            csv.write(f"{now - start:.0f},{rss},{done},{pages.get('device', 0)},"
                      f"{pages.get('host', 0)}\n")
            csv.flush()
            if now >= end:
                break
            time.sleep(min(args.sample_seconds, max(0.0, end - now)))
    soak.stop.set()
    for t in threads:
        t.join(timeout=180)

    # Pages: everything given back once the load has stopped.
    leaked = None
    for _ in range(300):
        st, pages = soak.status()
        if st.running == 0 and st.waiting == 0:
            leaked = pages
            if all(v == 0 for v in pages.values()):
                break
        time.sleep(0.1)

    warm_end = args.minutes * 60 * args.warmup_fraction
    after = [rss for t, rss in samples if t >= warm_end]
    quarter = max(1, len(after) // 4)
    first = statistics.median(after[:quarter]) if after else 0
    last = statistics.median(after[-quarter:]) if after else 0
    allowed = args.max_growth_kib + 0.05 * first
    growth = last - first
    result = {
        "minutes": args.minutes,
        "workers": args.workers,
        "counts": soak.counts,
        "rss_kib": {"start": samples[0][1], "warm": first, "end": last,
                    "growth_after_warmup": growth, "allowed_growth": round(allowed)},
        "pages_left": leaked,
        "unexpected": soak.errors,
    }
    failures = []
    if growth > allowed:
        failures.append(f"RSS grew {growth} KiB after warm-up (allowed {allowed:.0f})")
    if leaked is None or any(v != 0 for v in leaked.values()):
        failures.append(f"KV pages left in use after the load stopped: {leaked}")
    if soak.errors:
        failures.append(f"{soak.counts.get('unexpected', 0)} unexpected answers")
    result["failures"] = failures
    print(json.dumps(result, indent=1, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
