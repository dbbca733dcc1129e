#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets into tests/fuzz/corpus/TARGET/.

Run from the repository root: python3 tests/fuzz/make_corpus.py. Deterministic; needs only
Python's standard library and `protoc` (for the GenerateRequest seeds).
"""
import os
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- GGUF: a tiny llama (dim 8, 2 heads, 1 KV head, 1 layer, vocab 4) with a llama tokenizer.
def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, payload):
    return gguf_string(key) + struct.pack("<I", vtype) + payload


def gguf_u32(key, v):
    return gguf_kv(key, 4, struct.pack("<I", v))


def gguf_f32(key, v):
    return gguf_kv(key, 6, struct.pack("<f", v))


def gguf_str(key, v):
    return gguf_kv(key, 8, gguf_string(v))


def gguf_arr(key, etype, items, pack):
    return gguf_kv(key, 9, struct.pack("<IQ", etype, len(items)) + b"".join(pack(i) for i in items))


def tiny_llama_gguf(layers=1, claimed_layers=None, tensor_type=0):
    dim, heads, kv_heads, ffn, vocab, ctx = 8, 2, 1, 16, 4, 32
    head_dim = dim // heads
    kvs = [
        gguf_str("general.architecture", "llama"),
        gguf_str("general.name", "tiny"),
        gguf_u32("llama.block_count", layers if claimed_layers is None else claimed_layers),
        gguf_u32("llama.context_length", ctx),
        gguf_u32("llama.embedding_length", dim),
        gguf_u32("llama.feed_forward_length", ffn),
        gguf_u32("llama.attention.head_count", heads),
        gguf_u32("llama.attention.head_count_kv", kv_heads),
        gguf_f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
        gguf_str("tokenizer.ggml.model", "llama"),
        gguf_arr("tokenizer.ggml.tokens", 8, ["<unk>", "<s>", "</s>", "\u2581a"], gguf_string),
        gguf_arr("tokenizer.ggml.scores", 6, [0.0, 0.0, 0.0, -1.0], lambda v: struct.pack("<f", v)),
        gguf_arr("tokenizer.ggml.token_type", 5, [2, 3, 3, 1], lambda v: struct.pack("<i", v)),
        gguf_u32("tokenizer.ggml.bos_token_id", 1),
        gguf_u32("tokenizer.ggml.eos_token_id", 2),
        gguf_u32("tokenizer.ggml.unknown_token_id", 0),
        gguf_str("tokenizer.chat_template", "{{'<|im_start|>' + message['role'] }}"),
    ]
    tensors = [("token_embd.weight", [dim, vocab]), ("output_norm.weight", [dim])]
    for l in range(layers):
        p = f"blk.{l}."
        tensors += [
            (p + "attn_norm.weight", [dim]),
            (p + "attn_q.weight", [dim, heads * head_dim]),
            (p + "attn_k.weight", [dim, kv_heads * head_dim]),
            (p + "attn_v.weight", [dim, kv_heads * head_dim]),
            (p + "attn_output.weight", [heads * head_dim, dim]),
            (p + "ffn_norm.weight", [dim]),
            (p + "ffn_gate.weight", [dim, ffn]),
            (p + "ffn_up.weight", [dim, ffn]),
            (p + "ffn_down.weight", [ffn, dim]),
        ]
    infos, data, offset = b"", b"", 0
    for name, dims in tensors:
        n = 1
        for d in dims:
            n *= d
        ttype = 0 if len(dims) == 1 else tensor_type
        nbytes = n * 4 if ttype == 0 else n * 2
        infos += gguf_string(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", ttype, offset)
        payload = bytes((i * 37 + 11) % 251 for i in range(nbytes))
        if ttype == 0:
            payload = b"".join(struct.pack("<f", ((i % 17) - 8) / 64.0) for i in range(n))
        elif ttype == 1:
            payload = b"".join(struct.pack("<e", ((i % 17) - 8) / 64.0) for i in range(n))
        data += payload
        pad = (-len(payload)) % 32
        data += b"\0" * pad
        offset += len(payload) + pad
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    header += b"\0" * ((-len(header)) % 32)
    return header + data


write("gguf_file_fuzz", "tiny_llama_f32.gguf", tiny_llama_gguf())
write("gguf_file_fuzz", "tiny_llama_f16.gguf", tiny_llama_gguf(tensor_type=1))
write("gguf_file_fuzz", "tiny_llama_layers_disagree.gguf", tiny_llama_gguf(layers=2, claimed_layers=1))
write("gguf_file_fuzz", "header_only.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))


# ---- llama2.c: first byte 0 = checkpoint, odd = tokenizer file (vocab from the byte).
def tiny_llama2c(layers=1, vocab=4, seq=4):
    dim, ffn, heads, kv_heads = 8, 16, 2, 1
    head_dim = dim // heads
    header = struct.pack("<7i", dim, ffn, layers, heads, kv_heads, vocab, seq)
    floats = (vocab * dim + layers * (dim + dim * dim + 2 * dim * kv_heads * head_dim + dim * dim
                                      + dim + 3 * dim * ffn) + dim + seq * head_dim)
    return header + b"".join(struct.pack("<f", ((i % 13) - 6) / 32.0) for i in range(floats))


write("llama2c_loader_fuzz", "tiny_checkpoint", b"\0" + tiny_llama2c())
write("llama2c_loader_fuzz", "tiny_checkpoint_untied", b"\0" + tiny_llama2c()[:20] +
      struct.pack("<i", -4) + tiny_llama2c()[24:] + b"\0" * (4 * 4 * 8))
tok = open(os.path.join(ROOT, "tests", "data", "stories260K", "tok512.bin"), "rb").read()
write("llama2c_loader_fuzz", "tok512_first128", b"\xff" + tok)

# ---- Tokenizers: text.
texts = {
    "ascii": b"Once upon a time, there was a little girl named Lily.",
    "unicode": "caf\u00e9 \u00fcber \u65e5\u672c\u8a9e \U0001f600 \u0645\u0631\u062d\u0628\u0627".encode(),
    "special": b"<|im_start|>user\nHello<|im_end|>\n<|endoftext|>",
    "numbers": b"12345 apples cost $6.78 in 2024; 3.14159",
    "whitespace": b"  \t\n\n   leading and trailing   \r\n",
    "invalid_utf8": b"\xff\xfe\xc3\x28 \xe2\x82",
    "code": b"def f(x):\n    return x ** 2  # square\n",
}
for name, data in texts.items():
    write("bpe_tokenizer_fuzz", name, data)
    write("sentencepiece_tokenizer_fuzz", name, data)

# ---- Chat templates: template NUL role NUL content ...
chatml = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\\n' }}{% endif %}")
chatml_system = ("{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a "
                 "helpful AI assistant named SmolLM<|im_end|>\\n' }}{% endif %}" + chatml)
llama3 = ("{% for message in messages %}{{'<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>'}}{% endfor %}")
for name, template in {"chatml": chatml, "chatml_system": chatml_system, "llama3": llama3,
                       "none": ""}.items():
    write("chat_template_fuzz", name,
          "\0".join([template, "system", "Be brief.", "user", "Hi!", "assistant", "Hello.",
                     "user", "Bye"]).encode())

# ---- GenerateRequest seeds, encoded by protoc from text format.
requests = {
    "text": 'request_id: "r1" text: "Once upon a time" sampling { max_new_tokens: 8 temperature: 0 }',
    "ids": 'token_ids { ids: [1, 403, 407, 261] } sampling { max_new_tokens: 4 top_k: 5 top_p: 0.9 '
           'seed: 7 stop: "the" stop_token_ids: [2] logprobs: 3 }',
    "chat": 'chat { messages { role: "system" content: "Be brief." } messages { role: "user" '
            'content: "Tell a story" } } non_streaming: true',
    "snapkv": 'text: "Lily" kv_policy { name: "snapkv" window: 8 pool_kernel: 7 pool: "avg" '
              'budget: 64 }',
    "fastkv": 'text: "Lily" kv_policy { name: "fastkv" retain_rate: 0.1 tsp_layer: 2 tsp_rate: 0.2 }',
    "freekv": 'text: "Lily" kv_policy { name: "freekv" budget: 128 page_size: 16 sink: 16 '
              'recent: 16 tau: 0.8 }',
    "quest": 'text: "Lily" kv_policy { name: "quest" budget: 64 page_size: 16 }',
    "penalties": 'text: "a" sampling { repetition_penalty: 1.2 presence_penalty: 0.5 '
                 'frequency_penalty: -0.5 min_p: 0.1 min_new_tokens: 2 ignore_eos: true }',
}
proto_dir = os.path.join(ROOT, "proto")
for name, text in requests.items():
    encoded = subprocess.run(
        ["protoc", f"--proto_path={proto_dir}", "--encode=kvserve.v1.GenerateRequest",
         "kvserve/v1/inference.proto"], input=text.encode(), capture_output=True, check=True).stdout
    write("generate_request_fuzz", name, encoded)
print("seed corpora written to", OUT)
