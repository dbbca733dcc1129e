#!/usr/bin/env python3
"""PyTorch reference for kvserve-gpu-bench: the same shapes through torch on the GPU.

Prints JSON lines in kvserve-gpu-bench's format with "impl": "torch", so that
tools/bench/gpu_bench_summary.py can set the two side by side:

  prefill            a full prefill's GEMMs and causal attention for every layer, plus the LM head
                     on the last token: a TTFT-equivalent. It leaves out what is not a GEMM or
                     attention (embedding, norms, RoPE, SwiGLU, residual adds, KV writes), so it is
                     a lower bound on what a torch implementation of the model would take.
  prefill_model      the whole forward of a full prefill the way a PyTorch model with SDPA runs it
                     (embedding, RMSNorm, RoPE, SDPA, SwiGLU, residual adds, LM head on the last
                     token): the SDPA full-prefill TTFT. Only the KV writes to a cache are left
                     out. kvserve-gpu-bench --sdpa-reference compares its policies with either.
  prefill_attention  scaled_dot_product_attention(is_causal=True) alone, one layer.
  decode             one decode step of `batch` sequences over `context` tokens of KV: every
                     layer's GEMMs and attention plus the LM head (same omissions as prefill).

FLOPs and bytes are counted exactly as tools/bench/gpu_bench_costs.cc counts them. Needs only
torch and the standard library (the GPU machine has no network).
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# The shapes of engine/model/synthetic_model.cc (kept in step by hand: this script must run
# without the project's build).
MODELS = {
    "llama-3.1-8b": dict(
        n_layers=32, dim=4096, n_heads=32, n_kv_heads=8, head_dim=128,
        ffn_dim=14336, vocab=128256, context=131072, tied=False),
    "llama-3.2-1b": dict(
        n_layers=16, dim=2048, n_heads=32, n_kv_heads=8, head_dim=64,
        ffn_dim=8192, vocab=128256, context=131072, tied=True),
    "smollm2-135m": dict(
        n_layers=30, dim=576, n_heads=9, n_kv_heads=3, head_dim=64,
        ffn_dim=1536, vocab=49152, context=8192, tied=True),
}

BF16_BYTES = 2
# Free device memory left unclaimed when deciding whether a decode batch's KV fits.
MEMORY_MARGIN_BYTES = 2 << 30
DECODE_WARMUP_STEPS = 2


class Model:
    """Shape arithmetic of a Llama-style model (mirrors gpu_bench_costs.cc)."""

    def __init__(self, name):
        self.name = name
        for key, value in MODELS[name].items():
            setattr(self, key, value)
        self.q_dim = self.n_heads * self.head_dim
        self.kv_dim = self.n_kv_heads * self.head_dim
        self.group = self.n_heads // self.n_kv_heads

    def layer_params(self):
        d = self.dim
        return d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d + 3 * d * self.ffn_dim

    def attention_flops(self, n):
        return 2.0 * n * n * self.n_heads * self.head_dim

    def prefill_flops(self, n):
        layer = 2.0 * self.layer_params() * n + self.attention_flops(n)
        return self.n_layers * layer + 2.0 * self.dim * self.vocab

    def kv_bytes_per_token(self):
        return 2 * self.n_layers * self.kv_dim * BF16_BYTES

    def decode_step_bytes(self, batch, context):
        embedding = self.vocab * self.dim
        params = self.n_layers * self.layer_params() + embedding * (1 if self.tied else 2)
        weights = params - (0 if self.tied else embedding) + (2 * self.n_layers + 1) * self.dim
        return weights * BF16_BYTES + batch * context * self.kv_bytes_per_token()


def uniform(shape, scale, device):
    return torch.empty(shape, dtype=torch.bfloat16, device=device).uniform_(-scale, scale)


class Weights:
    """Per-layer bf16 weights, row-major [out][in] as the backend keeps them (fused Q/K/V and
    gate/up), so every GEMM reads its own weights from memory as in the real model."""

    def __init__(self, m, device):
        def linear(out, inp):
            return uniform((out, inp), inp ** -0.5, device)

        self.layers = [
            dict(wqkv=linear(m.q_dim + 2 * m.kv_dim, m.dim), wo=linear(m.dim, m.q_dim),
                 w_gate_up=linear(2 * m.ffn_dim, m.dim), w_down=linear(m.dim, m.ffn_dim))
            for _ in range(m.n_layers)
        ]
        self.lm_head = linear(m.vocab, m.dim)

    def add_model_weights(self, m, device):
        """What prefill_model needs besides the GEMM weights: the embedding (the LM head's when
        tied), the norms' gains and RoPE's inverse frequencies (Llama 3's theta)."""
        self.embedding = self.lm_head if m.tied else uniform((m.vocab, m.dim), 1.0, device)
        for layer in self.layers:
            layer["attn_norm"] = uniform((m.dim,), 1.0, device) + 1
            layer["mlp_norm"] = uniform((m.dim,), 1.0, device) + 1
        self.final_norm = uniform((m.dim,), 1.0, device) + 1
        half = m.head_dim // 2
        self.inv_freq = 1.0 / (500000.0 ** (torch.arange(half, device=device).float() / half))


def split_heads(m, qkv):
    """A fused projection's rows [n][Q | K | V] as SDPA's [1, heads, n, head_dim] views, without
    copies (what a model feeding SDPA from its projections does)."""
    n = qkv.shape[0]

    def heads(begin, count):
        t = qkv[:, begin:begin + count * m.head_dim].view(n, count, m.head_dim)
        return t.transpose(0, 1).unsqueeze(0)

    return (heads(0, m.n_heads), heads(m.q_dim, m.n_kv_heads),
            heads(m.q_dim + m.kv_dim, m.n_kv_heads))


def pick_sdpa_mode(m, device):
    """GQA straight into SDPA (enable_gqa) when a fused backend takes it, else K/V repeated to
    every query head. The math backend is excluded: it would not be SDPA's rate."""
    if device.type != "cuda":
        return "enable_gqa", None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION,
             SDPBackend.EFFICIENT_ATTENTION]
    # The probe's Q/K/V are views of a fused projection, as prefill() passes them.
    q, k, v = split_heads(m, uniform((256, m.q_dim + 2 * m.kv_dim), 1.0, device))
    try:
        with sdpa_kernel(fused):
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return "enable_gqa", fused
    except (RuntimeError, TypeError):
        return "repeat_kv", fused


class Attention:
    """Causal or decode attention with the chosen GQA mode and backends."""

    def __init__(self, m, device):
        self.m = m
        self.mode, self.backends = pick_sdpa_mode(m, device)

    def expand(self, t):
        """K or V repeated to every query head ([b, Hkv, n, d] -> [b, Hq, n, d]) when
        enable_gqa is not taken; unchanged otherwise."""
        if self.mode == "enable_gqa":
            return t
        return t.repeat_interleave(self.m.group, dim=1)

    def __call__(self, q, k, v, causal):
        gqa = {"enable_gqa": True} if self.mode == "enable_gqa" else {}
        if self.backends is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, **gqa)
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel(self.backends):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, **gqa)


def time_ms(device, fn, warmup, repeats):
    """Median milliseconds of fn() over `repeats` runs after `warmup`: CUDA events on the GPU,
    perf_counter after a synchronize elsewhere (the CPU smoke test)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop))
        else:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def prefill(m, w, attn, x):
    """One full prefill of x's rows: GEMMs and causal attention per layer, LM head on the last
    row. x is overwritten layer by layer (no residual stream: adds and norms are left out)."""
    n = x.shape[0]
    for layer in w.layers:
        q, k, v = split_heads(m, x @ layer["wqkv"].t())
        o = attn(q, attn.expand(k), attn.expand(v), causal=True)
        o = o.squeeze(0).transpose(0, 1).reshape(n, m.q_dim)
        h = o @ layer["wo"].t()
        gate_up = h @ layer["w_gate_up"].t()
        x = gate_up[:, :m.ffn_dim] @ layer["w_down"].t()
    return x[-1:] @ w.lm_head.t()


def rms_norm(x, gain, eps=1e-5):
    """RMSNorm in fp32, back to bf16, as Llama's reference code does."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * gain


def rope(t, cos, sin):
    """Rotate-half RoPE of t [n, heads, head_dim] with cos/sin [n, 1, head_dim / 2]."""
    half = t.shape[-1] // 2
    t1, t2 = t[..., :half], t[..., half:]
    return torch.cat((t1 * cos - t2 * sin, t2 * cos + t1 * sin), dim=-1)


def prefill_model(m, w, attn, tokens):
    """The whole forward of a full prefill of `tokens` (a model with SDPA attention): embedding,
    per layer RMSNorm, fused QKV, RoPE, causal SDPA, o_proj, residual, RMSNorm, SwiGLU MLP,
    residual; final RMSNorm and the LM head on the last row."""
    n = tokens.shape[0]
    x = w.embedding[tokens]
    angles = torch.outer(torch.arange(n, device=tokens.device).float(), w.inv_freq)
    cos = angles.cos().to(x.dtype).unsqueeze(1)
    sin = angles.sin().to(x.dtype).unsqueeze(1)
    for layer in w.layers:
        qkv = rms_norm(x, layer["attn_norm"]) @ layer["wqkv"].t()
        q = rope(qkv[:, :m.q_dim].view(n, m.n_heads, m.head_dim), cos, sin)
        k = rope(qkv[:, m.q_dim:m.q_dim + m.kv_dim].view(n, m.n_kv_heads, m.head_dim), cos, sin)
        v = qkv[:, m.q_dim + m.kv_dim:].view(n, m.n_kv_heads, m.head_dim)
        q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        o = attn(q, attn.expand(k), attn.expand(v), causal=True)
        x = x + o.squeeze(0).transpose(0, 1).reshape(n, m.q_dim) @ layer["wo"].t()
        gate_up = rms_norm(x, layer["mlp_norm"]) @ layer["w_gate_up"].t()
        h = F.silu(gate_up[:, :m.ffn_dim]) * gate_up[:, m.ffn_dim:]
        x = x + h @ layer["w_down"].t()
    return rms_norm(x[-1:], w.final_norm) @ w.lm_head.t()


def decode_step(m, w, x, caches):
    """One decode step of x's rows (one token per sequence) over per-layer K/V caches
    [b, Hkv, context, d]. A sequence's query heads go in as rows of their KV head's group
    (non-causal: a single new token sees its whole context), so no K/V is repeated. The new
    token's K/V are not written (left out like RoPE)."""
    b = x.shape[0]
    for layer, (k, v) in zip(w.layers, caches):
        qkv = x @ layer["wqkv"].t()
        q = qkv[:, :m.q_dim].view(b, m.n_kv_heads, m.group, m.head_dim)
        o = F.scaled_dot_product_attention(q, k, v).reshape(b, m.q_dim)
        h = o @ layer["wo"].t()
        gate_up = h @ layer["w_gate_up"].t()
        x = gate_up[:, :m.ffn_dim] @ layer["w_down"].t()
    return x @ w.lm_head.t()


def emit(common, **fields):
    print(json.dumps({**common, **fields}), flush=True)


def bench_prefill(m, w, attn, args, device, common):
    for n in args.prefill_lengths:
        if n > m.context:
            emit(common, bench="prefill", prompt_tokens=n, skipped=True,
                 reason=f"longer than the model's context of {m.context}")
            continue
        x = uniform((n, m.dim), 1.0, device)
        ms = time_ms(device, lambda: prefill(m, w, attn, x), 1, args.repeats)
        flops = m.prefill_flops(n)
        emit(common, bench="prefill", prompt_tokens=n, repeats=args.repeats, ttft_ms=ms,
             flops=flops, tflops=flops / (ms * 1e9), sdpa_gqa=attn.mode,
             note="GEMMs + attention only (no norms, RoPE, SwiGLU, embedding, KV writes)")
        del x


def bench_prefill_model(m, w, attn, args, device, common):
    for n in args.prefill_lengths:
        if n > m.context:
            emit(common, bench="prefill_model", prompt_tokens=n, skipped=True,
                 reason=f"longer than the model's context of {m.context}")
            continue
        tokens = torch.randint(3, m.vocab, (n,), device=device)
        ms = time_ms(device, lambda: prefill_model(m, w, attn, tokens), 1, args.repeats)
        flops = m.prefill_flops(n)
        emit(common, bench="prefill_model", prompt_tokens=n, repeats=args.repeats, ttft_ms=ms,
             flops=flops, tflops=flops / (ms * 1e9), sdpa_gqa=attn.mode,
             note="whole forward with SDPA (embedding, norms, RoPE, SwiGLU, residuals); "
                  "no KV cache writes")
        del tokens


def bench_attention(m, attn, args, device, common):
    for n in args.prefill_lengths:
        q = uniform((1, m.n_heads, n, m.head_dim), 1.0, device)
        # Repeated K/V (where enable_gqa is not taken) are made before timing: this is the
        # kernel's own rate.
        k = attn.expand(uniform((1, m.n_kv_heads, n, m.head_dim), 1.0, device))
        v = attn.expand(uniform((1, m.n_kv_heads, n, m.head_dim), 1.0, device))
        ms = time_ms(device, lambda: attn(q, k, v, causal=True), 1, args.repeats)
        flops = m.attention_flops(n)
        emit(common, bench="prefill_attention", prompt_tokens=n, layers=1,
             repeats=args.repeats, ms=ms, flops=flops, tflops=flops / (ms * 1e9),
             sdpa_gqa=attn.mode)
        del q, k, v


def free_bytes(device):
    if device.type != "cuda":
        return 1 << 62
    torch.cuda.empty_cache()
    return torch.cuda.mem_get_info()[0]


def bench_decode(m, w, args, device, common):
    for context in args.decode_contexts:
        for batch in args.decode_batches:
            need = batch * context * m.kv_bytes_per_token()
            room = free_bytes(device) - MEMORY_MARGIN_BYTES
            if need > room:
                emit(common, bench="decode", batch=batch, context_tokens=context, skipped=True,
                     reason=f"KV of {batch} x {context} tokens needs {need / 2**30:.1f} GiB; "
                            f"{max(room, 0) / 2**30:.1f} GiB free")
                continue
            shape = (batch, m.n_kv_heads, context, m.head_dim)
            caches = [(uniform(shape, 1.0, device), uniform(shape, 1.0, device))
                      for _ in range(m.n_layers)]
            x = uniform((batch, m.dim), 1.0, device)
            ms = time_ms(device, lambda: decode_step(m, w, x, caches),
                         DECODE_WARMUP_STEPS, args.decode_steps)
            nbytes = m.decode_step_bytes(batch, context)
            gbps = nbytes / (ms * 1e6)
            emit(common, bench="decode", batch=batch, context_tokens=context,
                 steps=args.decode_steps, step_ms=ms, tokens_per_s=batch * 1000.0 / ms,
                 bytes_per_step=nbytes, gbps=gbps, hbm_gbps=args.hbm_gbps,
                 hbm_roofline_fraction=gbps / args.hbm_gbps,
                 note="GEMMs + attention only (no norms, RoPE, SwiGLU, KV writes)")
            del caches, x


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip()]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="synthetic:llama-3.1-8b",
                   help="synthetic:NAME, one of " + ", ".join(MODELS))
    p.add_argument("--prefill-lengths", type=int_list, default=[1024, 8192, 32768])
    p.add_argument("--decode-batches", type=int_list, default=[1, 8, 32, 64])
    p.add_argument("--decode-contexts", type=int_list, default=[1024, 8192, 32768])
    p.add_argument("--decode-steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--hbm-gbps", type=float, default=3350.0)
    p.add_argument("--benches", default="prefill,prefill_attention,decode",
                   help="comma-separated subset of prefill, prefill_model, prefill_attention, "
                        "decode")
    p.add_argument("--device", default="cuda", help="cuda (the comparison) or cpu (smoke test)")
    args = p.parse_args()

    name = args.model.removeprefix("synthetic:")
    if not args.model.startswith("synthetic:") or name not in MODELS:
        sys.exit(f"torch_reference.py: error: --model must be synthetic:NAME with NAME one of "
                 f"{', '.join(MODELS)}")
    if args.repeats < 1 or args.decode_steps < 1:
        sys.exit("torch_reference.py: error: --repeats and --decode-steps must be positive")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_reference.py: error: no CUDA device found")

    m = Model(name)
    benches = set(args.benches.split(","))
    unknown = benches - {"prefill", "prefill_model", "prefill_attention", "decode"}
    if unknown:
        sys.exit(f"torch_reference.py: error: unknown --benches {', '.join(sorted(unknown))}")
    common = {
        "impl": "torch",
        "model": args.model,
        "weights": "synthetic",
        "dtype": "bf16",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }
    torch.manual_seed(0)
    with torch.inference_mode():
        attn = Attention(m, device)
        if "prefill_attention" in benches:
            bench_attention(m, attn, args, device, common)
        if benches & {"prefill", "prefill_model", "decode"}:
            w = Weights(m, device)
            if "prefill" in benches:
                bench_prefill(m, w, attn, args, device, common)
            if "prefill_model" in benches:
                w.add_model_weights(m, device)
                bench_prefill_model(m, w, attn, args, device, common)
            if "decode" in benches:
                bench_decode(m, w, args, device, common)


if __name__ == "__main__":
    main()
