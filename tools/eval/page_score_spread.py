#!/usr/bin/env python3
"""Offline check of Quest/FreeKV page scoring on the default model (docs/accuracy.md, investigation).

For the last query of a prompt (the first N tokens of Debian's GPL-3 text), per layer and KV head:
how many pages get an exactly-zero MeanS score (softmax over pages of the raw Quest bounds in
float32, as engine/kv/page_selection.cc computes it, then the group mean), the same with the bounds
divided by sqrt(head_dim), and the gap between a query head's best and median page bound.
Uses tools/crosscheck_logits.py's independent forward pass (float32 here).

Usage: build/crosscheck-venv/bin/python tools/eval/page_score_spread.py [N=2048]
"""
import sys
from pathlib import Path

import numpy as np
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from crosscheck_logits import NumpyLlama
from tokenizers import Tokenizer
model = NumpyLlama(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf", dtype=np.float32)
tok = Tokenizer.from_file(str(ROOT / "tests/data/smollm2-135m-instruct/tokenizer.json"))
ids = tok.encode(Path("/usr/share/common-licenses/GPL-3").read_text()).ids[:int(sys.argv[1]) if len(sys.argv) > 1 else 2048]
c = model.cfg
P = 32
t = len(ids)
x = model.embed[np.asarray(ids)]
positions = np.arange(t)
mask = np.triu(np.full((t, t), -np.inf, dtype=np.float32), k=1)
n_rep = c.n_heads // c.n_kv_heads
out = []
for li, layer in enumerate(model.layers):
    h = model.rms_norm(x, layer["attn_norm"])
    q = (h @ layer["wq"].T).reshape(t, c.n_heads, c.head_dim).transpose(1, 0, 2)
    k = (h @ layer["wk"].T).reshape(t, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
    v = (h @ layer["wv"].T).reshape(t, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
    q, k = model.rope(q, positions), model.rope(k, positions)
    # page digests over full pages, last query
    n_pages = t // P
    kp = k[:, :n_pages * P].reshape(c.n_kv_heads, n_pages, P, c.head_dim)
    hi, lo = kp.max(axis=2), kp.min(axis=2)
    zeros_raw, zeros_scaled, spread = [], [], []
    for g in range(c.n_kv_heads):
        score_raw = np.zeros(n_pages, np.float32); score_sc = np.zeros(n_pages, np.float32)
        for qh in range(g * n_rep, (g + 1) * n_rep):
            qq = q[qh, -1].astype(np.float32)
            b = np.maximum(qq * hi[g], qq * lo[g]).sum(axis=1).astype(np.float32)
            spread.append(float(b.max() - np.median(b)))
            e = np.exp((b - b.max()).astype(np.float32)); score_raw += e / e.sum() / n_rep
            e2 = np.exp(((b - b.max()) / np.sqrt(c.head_dim)).astype(np.float32)); score_sc += e2 / e2.sum() / n_rep
        zeros_raw.append(int((score_raw == 0).sum())); zeros_scaled.append(int((score_sc == 0).sum()))
    out.append((li, n_pages, zeros_raw, zeros_scaled, round(float(np.median(spread)), 1), round(float(np.max(spread)), 1)))
    keys = np.repeat(k, n_rep, axis=0); values = np.repeat(v, n_rep, axis=0)
    s = q @ keys.transpose(0, 2, 1) / np.sqrt(c.head_dim) + mask
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    attn = (s / s.sum(axis=-1, keepdims=True)) @ values
    x = x + attn.transpose(1, 0, 2).reshape(t, c.dim) @ layer["wo"].T
    hh = model.rms_norm(x, layer["ffn_norm"])
    gate = hh @ layer["w_gate"].T
    x = x + ((gate / (1.0 + np.exp(-gate))) * (hh @ layer["w_up"].T)) @ layer["w_down"].T
print("layer pages zero-score pages per KV head (raw bounds | bounds/sqrt(d))  bound spread max-median (median, max over q heads)")
for r in out:
    print(*r)
