#!/usr/bin/env python3
"""Cross-checks kvserve's next-token logits against an independent NumPy Llama forward pass.

Usage:
  pip install -r tools/requirements-crosscheck.txt
  tools/crosscheck_logits.py [--model GGUF] [--kvserve-cli build/bin/kvserve-cli]
                             [--tokenizer tokenizer.json] [--prompt TEXT ...] [--tolerance 1e-4]
                             [--json] [--numpy-only [--max-new-tokens 24]]
  tools/crosscheck_logits.py --write-golden tests/data/smollm2-135m-instruct/crosscheck_golden.json

The reference shares nothing with kvserve but the GGUF file. It reads the weights with the `gguf`
package (dequantized to fp32 by `gguf.quants.dequantize`, as kvserve dequantizes them at load),
converts them to the Hugging Face convention the way transformers' GGUF loader does (undoing
llama.cpp's Q/K row permutation), and runs the Hugging Face Llama forward pass in float64:
RMSNorm, RoPE with rotate_half (channel pairs (i, i + d/2)), grouped-query attention (repeat_kv),
causal softmax, SwiGLU, tied LM head. Prompts are tokenized by the `tokenizers` package from the
Hugging Face tokenizer.json, not by kvserve's tokenizer.

For each prompt it runs `kvserve-cli logits --model M --prompt-ids 1,2,3 --format json`, which
prints one JSON object with "logits" (the next-token logits after the last prompt token), and
reports the prompt length, max and mean |Δlogit|, whether the top-1 tokens agree, the top-5 overlap
and the cosine similarity. Exit status: 0 when every prompt passes, 1 when one fails (top-1
differs, or max |Δlogit| > tolerance × max|reference logit|), 2 on a usage or runtime error.

Why the default tolerance is 1e-4 of the logit scale (~2.5e-3 absolute for this model, whose
largest logits are ~25): both sides use the same fp32 weights, so only rounding should differ.
An fp32 forward pass (this script's --dtype float32) differs from the float64 one by at most 2e-7
of the scale on the default prompts, and kvserve's CPU backend by at most 3e-6 (max |Δ| 1.8e-5 to
7.9e-5), so 1e-4 leaves a 30x margin. Real bugs land far above it: RMSNorm eps 1e-6 instead of
1e-5 moves the logits by 4e-4 of the scale, RoPE theta 1e4 instead of 1e5 by 0.2, an off-by-one
position by 0.15. A bf16 backend needs a looser bound (e.g. --tolerance 3e-2).

--write-golden PATH skips kvserve and stores the reference for CI (tests/unit/crosscheck_golden_test.cc
reads it; CI needs none of this script's packages): for a few prompts, one of them over 1K tokens,
the prompt ids, the logsumexp of the next-token logits, the top 64 (id, logit) and the logits of
every 97th vocabulary id; and for the long prompt, teacher-forced, the reference's top-1 id, its
logit and its margin over the second at each of the last 256 positions.

--numpy-only skips kvserve and prints the reference's greedy continuation of each prompt, a sanity
check of the reference itself (the default chat prompt should answer with Paris).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODEL_CANDIDATES = [
    REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf",  # scripts/fetch-model.sh
    REPO.parent / "shared" / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf",
]
DEFAULT_TOKENIZER = REPO.parent / "shared" / "models" / "smollm2-135m-instruct" / "tokenizer.json"
DEFAULT_CLI = REPO / "build" / "bin" / "kvserve-cli"

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user: str) -> str:
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


LONG_PARAGRAPH = (
    "The printing press changed Europe in ways its inventor could hardly have foreseen. Before the "
    "middle of the fifteenth century, books were copied by hand, usually in monasteries, and a "
    "single volume could take a scribe many months to finish. Johannes Gutenberg, a goldsmith from "
    "Mainz, combined several existing technologies into a practical system: movable metal type "
    "cast in a hand mould, an oil-based ink that clung to metal, and a screw press adapted from "
    "those used to make wine and paper. Within fifty years, presses were running in more than two "
    "hundred cities, and millions of books had been printed. Prices fell, literacy spread beyond "
    "the clergy and the nobility, and scholars in distant cities could finally read identical "
    "copies of the same text, which made it far easier to compare observations, correct errors "
    "and build on one another's work. Religious reformers used pamphlets to reach ordinary people "
    "directly, governments learned to fear and to license printers, and vernacular languages "
    "gained standard spellings because printers needed consistent forms. Historians still debate "
    "how much of the scientific revolution depended on print, but few doubt that the rapid, "
    "faithful copying of diagrams, tables and arguments made collaboration across borders possible "
    "on a scale that had never existed before. In that sense, the most important thing the press "
    "produced was not any single book but a new kind of conversation, one that"
)

DEFAULT_PROMPTS = [
    chatml("What is the capital of France?"),
    "The quick brown fox jumps over the lazy dog. Meanwhile, in a small village by the sea,",
    ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n'
     "        return n\n"),
    chatml("Write a haiku about the ocean."),
    LONG_PARAGRAPH,
    "Hello",  # a single token: position 0 only
]


# --------------------------------------------------------------------------------------------
# The reference model


def unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's convert-time permute(w, n_head), as transformers' GGUF loader does.

    The converter reorders each head's rows from Hugging Face's [first half; second half] into
    interleaved pairs (so that llama.cpp can rotate adjacent pairs): row (h, half, i) goes to
    (h, i, half). Reading the rows back as (h, i, half) and swapping the last two axes undoes it.
    """
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@dataclass
class Config:
    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    vocab_size: int
    rope_theta: float
    rms_eps: float


class NumpyLlama:
    """The Hugging Face LlamaForCausalLM forward pass with a KV cache, in NumPy."""

    def __init__(self, gguf_path: Path, dtype=np.float64):
        from gguf import GGUFReader
        from gguf.quants import dequantize

        reader = GGUFReader(str(gguf_path))

        def meta(key):
            return reader.fields[key].contents()

        arch = meta("general.architecture")
        if arch != "llama":
            raise ValueError(f"{gguf_path}: architecture {arch!r}, expected 'llama'")
        dim = int(meta("llama.embedding_length"))
        n_heads = int(meta("llama.attention.head_count"))
        self.cfg = Config(
            n_layers=int(meta("llama.block_count")),
            dim=dim,
            n_heads=n_heads,
            n_kv_heads=int(meta("llama.attention.head_count_kv")),
            head_dim=dim // n_heads,
            ffn_dim=int(meta("llama.feed_forward_length")),
            vocab_size=0,  # from the embedding below
            rope_theta=float(meta("llama.rope.freq_base")),
            rms_eps=float(meta("llama.attention.layer_norm_rms_epsilon")),
        )
        # dequantize() returns numpy arrays in row-major [out][in] order: the reverse of GGUF's
        # dims (token_embd is [576, 49152] in GGUF, (49152, 576) here), i.e. Hugging Face's layout.
        tensors = {t.name: dequantize(t.data, t.tensor_type).astype(dtype, copy=False)
                   for t in reader.tensors}
        c = self.cfg
        self.embed = tensors["token_embd.weight"]
        c.vocab_size = self.embed.shape[0]
        self.lm_head = tensors.get("output.weight", self.embed)  # tied when absent
        self.norm = tensors["output_norm.weight"]
        self.layers = []
        for i in range(c.n_layers):
            p = f"blk.{i}."
            self.layers.append({
                "attn_norm": tensors[p + "attn_norm.weight"],
                "wq": unpermute(tensors[p + "attn_q.weight"], c.n_heads),
                "wk": unpermute(tensors[p + "attn_k.weight"], c.n_kv_heads),
                "wv": tensors[p + "attn_v.weight"],
                "wo": tensors[p + "attn_output.weight"],
                "ffn_norm": tensors[p + "ffn_norm.weight"],
                "w_gate": tensors[p + "ffn_gate.weight"],
                "w_up": tensors[p + "ffn_up.weight"],
                "w_down": tensors[p + "ffn_down.weight"],
            })
        self.dtype = dtype
        self.inv_freq = 1.0 / (c.rope_theta ** (np.arange(0, c.head_dim, 2, dtype=np.float64) /
                                                c.head_dim))

    def rms_norm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg.rms_eps) * weight

    def rope(self, x, positions):
        """x: (heads, T, head_dim). Hugging Face RoPE: rotate channel pairs (i, i + d/2)."""
        freqs = np.outer(positions, self.inv_freq)  # (T, d/2)
        emb = np.concatenate([freqs, freqs], axis=-1)
        cos, sin = np.cos(emb).astype(self.dtype), np.sin(emb).astype(self.dtype)
        half = x.shape[-1] // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)  # rotate_half
        return x * cos + rotated * sin

    def new_cache(self):
        return [{"k": None, "v": None} for _ in range(self.cfg.n_layers)]

    def forward(self, tokens, cache, all_positions: bool = False) -> np.ndarray:
        """Runs `tokens` after whatever `cache` holds; returns the logits after the last one (or,
        with all_positions, one row per token)."""
        c = self.cfg
        past = 0 if cache[0]["k"] is None else cache[0]["k"].shape[1]
        t = len(tokens)
        positions = np.arange(past, past + t)
        x = self.embed[np.asarray(tokens)]
        # Query i (absolute position past + i) sees keys 0 .. past + i.
        mask = np.triu(np.full((t, past + t), -np.inf, dtype=self.dtype), k=past + 1)
        n_rep = c.n_heads // c.n_kv_heads
        for layer, kv in zip(self.layers, cache):
            h = self.rms_norm(x, layer["attn_norm"])
            q = (h @ layer["wq"].T).reshape(t, c.n_heads, c.head_dim).transpose(1, 0, 2)
            k = (h @ layer["wk"].T).reshape(t, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
            v = (h @ layer["wv"].T).reshape(t, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
            q, k = self.rope(q, positions), self.rope(k, positions)
            kv["k"] = k if kv["k"] is None else np.concatenate([kv["k"], k], axis=1)
            kv["v"] = v if kv["v"] is None else np.concatenate([kv["v"], v], axis=1)
            # repeat_kv: query head j uses KV head j // n_rep.
            keys = np.repeat(kv["k"], n_rep, axis=0)
            values = np.repeat(kv["v"], n_rep, axis=0)
            scores = q @ keys.transpose(0, 2, 1) / np.sqrt(c.head_dim) + mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attn = (scores / scores.sum(axis=-1, keepdims=True)) @ values  # (heads, T, head_dim)
            x = x + attn.transpose(1, 0, 2).reshape(t, c.dim) @ layer["wo"].T
            h = self.rms_norm(x, layer["ffn_norm"])
            gate = h @ layer["w_gate"].T
            x = x + ((gate / (1.0 + np.exp(-gate))) * (h @ layer["w_up"].T)) @ layer["w_down"].T
        if all_positions:
            return self.rms_norm(x, self.norm) @ self.lm_head.T
        return self.rms_norm(x[-1], self.norm) @ self.lm_head.T

    def greedy(self, tokens, max_new_tokens, stop_ids):
        cache = self.new_cache()
        logits = self.forward(tokens, cache)
        out = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(logits))
            out.append(token)
            if token in stop_ids:
                break
            logits = self.forward([token], cache)
        return out


# --------------------------------------------------------------------------------------------
# kvserve and the comparison


def kvserve_logits(cli: Path, model: Path, ids) -> np.ndarray:
    cmd = [str(cli), "logits", "--model", str(model), "--prompt-ids", ",".join(map(str, ids)),
           "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "--format" in proc.stderr and "not expected" in proc.stderr:
        # A kvserve-cli whose `logits` predates --format prints JSON anyway.
        proc = subprocess.run(cmd[:-2], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    # One JSON object on stdout; tolerate log lines around it.
    for candidate in [proc.stdout] + proc.stdout.splitlines()[::-1]:
        try:
            return np.asarray(json.loads(candidate)["logits"], dtype=np.float64)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    raise RuntimeError(f"no JSON object with 'logits' in kvserve-cli output:\n{proc.stdout[:2000]}")


def compare(ref: np.ndarray, got: np.ndarray, tolerance: float) -> dict:
    if ref.shape != got.shape:
        return {"ok": False, "error": f"logits shape {got.shape}, expected {ref.shape}"}
    diff = np.abs(ref - got)
    scale = float(np.max(np.abs(ref)))
    top5_ref, top5_got = np.argsort(-ref, kind="stable")[:5], np.argsort(-got, kind="stable")[:5]
    result = {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "logit_scale": scale,
        "top1_ref": int(top5_ref[0]),
        "top1_kvserve": int(top5_got[0]),
        "top1_equal": bool(top5_ref[0] == top5_got[0]),
        "top5_overlap": len(set(top5_ref.tolist()) & set(top5_got.tolist())),
        "cosine": float(ref @ got / (np.linalg.norm(ref) * np.linalg.norm(got))),
    }
    result["ok"] = result["top1_equal"] and result["max_abs_diff"] <= tolerance * scale
    return result


# --------------------------------------------------------------------------------------------
# Golden logits for CI

GOLDEN_TOP = 64
GOLDEN_STRIDE = 97
GOLDEN_LONG_TOKENS = 1280  # the long prompt, a prefix of GPL-3 (Debian's common-licenses)
GOLDEN_SCORED = 256        # teacher-forced positions at the end of it
GOLDEN_LONG_SOURCE = Path("/usr/share/common-licenses/GPL-3")


def logit_summary(row: np.ndarray) -> dict:
    order = np.argsort(-row, kind="stable")[:GOLDEN_TOP]
    m = float(row.max())
    return {
        "logsumexp": round(m + float(np.log(np.exp(row - m).sum())), 6),
        "top": [[int(i), round(float(row[i]), 6)] for i in order],
        "sample_stride": GOLDEN_STRIDE,
        "sample": [round(float(v), 6) for v in row[::GOLDEN_STRIDE]],
    }


def write_golden(model: "NumpyLlama", tokenizer, model_path: Path, out: Path) -> None:
    import hashlib
    long_ids = tokenizer.encode(GOLDEN_LONG_SOURCE.read_text(),
                                add_special_tokens=False).ids[:GOLDEN_LONG_TOKENS]
    if len(long_ids) < GOLDEN_LONG_TOKENS:
        sys.exit(f"{GOLDEN_LONG_SOURCE}: only {len(long_ids)} tokens")
    prompts = [("chat", tokenizer.encode(DEFAULT_PROMPTS[0], add_special_tokens=False).ids),
               ("code", tokenizer.encode(DEFAULT_PROMPTS[2], add_special_tokens=False).ids),
               ("paragraph", tokenizer.encode(LONG_PARAGRAPH, add_special_tokens=False).ids),
               ("gpl3_prefix", long_ids)]
    golden = {
        "about": "next-token logits of tools/crosscheck_logits.py's float64 reference "
                 "(--write-golden); read by tests/unit/crosscheck_golden_test.cc",
        "model": model_path.name,
        "model_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "vocab_size": model.cfg.vocab_size,
        "prompts": [],
    }
    for name, ids in prompts:
        start = time.perf_counter()
        rows = model.forward(ids, model.new_cache(), all_positions=name == "gpl3_prefix")
        last = rows[-1] if rows.ndim == 2 else rows
        golden["prompts"].append({"name": name, "ids": ids, **logit_summary(last)})
        if rows.ndim == 2:
            first = len(ids) - 1 - GOLDEN_SCORED  # row i predicts token i + 1
            scored = rows[first:len(ids) - 1]
            top2 = np.argsort(-scored, axis=1, kind="stable")[:, :2]
            golden["teacher_forced"] = {
                "prompt": name,
                "first_position": first,
                "top1": top2[:, 0].tolist(),
                "top1_logit": [round(float(r[t]), 6) for r, t in zip(scored, top2[:, 0])],
                "margin": [round(float(r[a] - r[b]), 6) for r, (a, b) in zip(scored, top2)],
            }
        print(f"golden {name}: {len(ids)} tokens, {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    out.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)


def find_model(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    for path in MODEL_CANDIDATES:
        if path.exists():
            return path
    sys.exit("no model found; pass --model or run scripts/fetch-model.sh "
             f"(looked in: {', '.join(map(str, MODEL_CANDIDATES))})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file (default: models/ or ../shared/models copy)")
    ap.add_argument("--kvserve-cli", default=str(DEFAULT_CLI), help="kvserve-cli binary")
    ap.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER),
                    help="Hugging Face tokenizer.json")
    ap.add_argument("--prompt", action="append",
                    help="prompt text (repeatable; default: a built-in set)")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="max |Δlogit| allowed, relative to max |reference logit| (default 1e-4)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="precision of the reference forward pass")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--numpy-only", action="store_true",
                    help="skip kvserve; print the reference's greedy continuation of each prompt")
    ap.add_argument("--max-new-tokens", type=int, default=24, help="for --numpy-only")
    ap.add_argument("--write-golden", metavar="PATH",
                    help="skip kvserve; write the CI golden file (see above) and exit")
    args = ap.parse_args()

    from tokenizers import Tokenizer

    model_path = find_model(args.model)
    tokenizer = Tokenizer.from_file(args.tokenizer)
    prompts = args.prompt or DEFAULT_PROMPTS
    start = time.perf_counter()
    model = NumpyLlama(model_path, dtype=np.dtype(args.dtype).type)
    load_s = time.perf_counter() - start
    log = sys.stderr if args.json else sys.stdout
    print(f"reference: {model_path.name}, {model.cfg.n_layers} layers, {args.dtype}, "
          f"loaded in {load_s:.1f} s", file=log)
    if args.write_golden:
        write_golden(model, tokenizer, model_path, Path(args.write_golden))
        return 0

    results = []
    failed = False
    for text in prompts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        start = time.perf_counter()
        entry = {"prompt": text[:60], "tokens": len(ids)}
        if args.numpy_only:
            stop = {tokenizer.token_to_id("<|im_end|>"), tokenizer.token_to_id("<|endoftext|>")}
            out = model.greedy(ids, args.max_new_tokens, stop)
            entry["greedy_ids"] = out
            entry["greedy_text"] = tokenizer.decode(out, skip_special_tokens=False)
        else:
            ref = model.forward(ids, model.new_cache())
            entry["reference_s"] = round(time.perf_counter() - start, 2)
            try:
                got = kvserve_logits(Path(args.kvserve_cli), model_path, ids)
            except (OSError, RuntimeError) as e:
                print(f"error: kvserve-cli: {e}", file=sys.stderr)
                return 2
            entry.update(compare(ref, got, args.tolerance))
            failed |= not entry["ok"]
        entry["seconds"] = round(time.perf_counter() - start, 2)
        results.append(entry)
        if not args.json:
            print_entry(entry)

    if args.json:
        print(json.dumps({"model": str(model_path), "dtype": args.dtype,
                          "tolerance": args.tolerance, "numpy_only": args.numpy_only,
                          "ok": not failed, "prompts": results}, indent=1))
    elif not args.numpy_only:
        print("PASS" if not failed else "FAIL")
    return 1 if failed else 0


def print_entry(e: dict) -> None:
    head = f"{e['prompt']!r:64.64} {e['tokens']:4d} tok"
    if "greedy_text" in e:
        print(f"{head}  {e['seconds']:5.1f} s\n    -> {e['greedy_text']!r}")
    elif "error" in e:
        print(f"{head}  FAIL {e['error']}")
    else:
        print(f"{head}  max|Δ| {e['max_abs_diff']:.2e}  mean|Δ| {e['mean_abs_diff']:.2e}  "
              f"scale {e['logit_scale']:5.1f}  top1 {'=' if e['top1_equal'] else '≠'} "
              f"({e['top1_ref']}/{e['top1_kvserve']})  top5 {e['top5_overlap']}/5  "
              f"cos {e['cosine']:.7f}  {'ok' if e['ok'] else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
