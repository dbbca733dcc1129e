#include "engine/runtime/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/runtime/cpu/cpu_ops.h"

namespace kvserve {
namespace {

std::vector<float> Concat(std::vector<float>& a, std::vector<float>& b, std::vector<float>* c) {
  std::vector<float> out;
  out.reserve(a.size() + b.size() + (c ? c->size() : 0));
  out.insert(out.end(), a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  if (c) out.insert(out.end(), c->begin(), c->end());
  a = {};
  b = {};
  if (c) *c = {};
  return out;
}

template <typename T>
T* Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const ModelConfig& config,
                                                               ModelWeights weights) {
  if (auto s = config.Validate(); !s.ok()) return s;
  if (auto s = weights.CheckShapes(config); !s.ok()) return s;
  return std::unique_ptr<CpuBackend>(new CpuBackend(config, std::move(weights)));
}

CpuBackend::CpuBackend(const ModelConfig& config, ModelWeights w)
    : config_(config),
      token_embedding_(std::move(w.token_embedding)),
      final_norm_(std::move(w.final_norm)),
      lm_head_(std::move(w.lm_head)) {
  layers_.reserve(w.layers.size());
  for (LayerWeights& l : w.layers) {
    layers_.push_back(Layer{.attn_norm = std::move(l.attn_norm),
                            .wqkv = Concat(l.wq, l.wk, &l.wv),
                            .wo = std::move(l.wo),
                            .ffn_norm = std::move(l.ffn_norm),
                            .w_gate_up = Concat(l.w_gate, l.w_up, nullptr),
                            .w_down = std::move(l.w_down)});
  }
}

absl::Status CpuBackend::Validate(std::span<const SequenceChunk> batch) const {
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceChunk& c = batch[i];
    auto bad = [i](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("forward: chunk ", i, ": ", what));
    };
    if (c.tokens.empty()) return bad("no tokens");
    if (c.positions.size() != c.tokens.size()) return bad("positions and tokens differ in length");
    if (c.kv == nullptr || c.kv->n_layers() != config_.n_layers ||
        c.kv->kv_dim() != config_.kv_dim()) {
      return bad("KV cache missing or of another model's shape");
    }
    for (int32_t t : c.tokens) {
      if (t < 0 || t >= config_.vocab_size) return bad(absl::StrCat("token id ", t, " out of range"));
    }
    for (int32_t p : c.positions) {
      if (p < 0) return bad(absl::StrCat("negative position ", p));
    }
  }
  return absl::OkStatus();
}

absl::Status CpuBackend::Forward(std::span<const SequenceChunk> batch, std::vector<float>* logits) {
  if (auto s = Validate(batch); !s.ok()) return s;
  const ModelConfig& c = config_;
  const int dim = c.dim;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  int total = 0;
  int logit_rows = 0;
  for (const SequenceChunk& ch : batch) {
    total += static_cast<int>(ch.tokens.size());
    logit_rows += ch.compute_logits ? 1 : 0;
  }

  float* x = Grow(s_.x, static_cast<size_t>(total) * dim);
  float* xn = Grow(s_.xn, static_cast<size_t>(total) * dim);
  float* qkv = Grow(s_.qkv, static_cast<size_t>(total) * qkv_dim);
  float* ffn = Grow(s_.ffn, static_cast<size_t>(total) * c.ffn_dim);
  float* gate_up = Grow(s_.gate_up, static_cast<size_t>(total) * 2 * c.ffn_dim);
  Grow(s_.q, static_cast<size_t>(total) * c.q_dim());
  Grow(s_.attn, static_cast<size_t>(total) * c.q_dim());
  int32_t* positions = Grow(s_.positions, total);
  float* rope_cos = Grow(s_.rope_cos, static_cast<size_t>(total) * c.rope_dim / 2);
  float* rope_sin = Grow(s_.rope_sin, static_cast<size_t>(total) * c.rope_dim / 2);

  int row = 0;
  for (const SequenceChunk& ch : batch) {
    for (size_t i = 0; i < ch.tokens.size(); ++i, ++row) {
      std::memcpy(x + static_cast<size_t>(row) * dim,
                  token_embedding_.data() + static_cast<size_t>(ch.tokens[i]) * dim,
                  dim * sizeof(float));
      positions[row] = ch.positions[i];
    }
  }
  cpu::RopeTables({positions, static_cast<size_t>(total)}, c.rope_dim, c.rope_theta, rope_cos,
                  rope_sin);
  const bool adjacent = c.rope_style == RopeStyle::kAdjacentPairs;

  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& w = layers_[l];
    cpu::RmsNorm(x, w.attn_norm.data(), xn, total, dim, c.rms_eps);
    cpu::Linear(xn, w.wqkv.data(), qkv, total, qkv_dim, dim);
    // Rotate Q and K in place inside the fused [q | k | v] rows.
    cpu::ApplyRope(qkv, total, qkv_dim, c.n_heads, c.head_dim, c.rope_dim, rope_cos, rope_sin,
                   adjacent);
    cpu::ApplyRope(qkv + c.q_dim(), total, qkv_dim, c.n_kv_heads, c.head_dim, c.rope_dim, rope_cos,
                   rope_sin, adjacent);
    Attention(batch, l);
    cpu::Linear(s_.attn.data(), w.wo.data(), x, total, dim, c.q_dim(), /*accumulate=*/true);

    cpu::RmsNorm(x, w.ffn_norm.data(), xn, total, dim, c.rms_eps);
    cpu::Linear(xn, w.w_gate_up.data(), gate_up, total, 2 * c.ffn_dim, dim);
    cpu::SiluMul(gate_up, ffn, total, c.ffn_dim);
    cpu::Linear(ffn, w.w_down.data(), x, total, dim, c.ffn_dim, /*accumulate=*/true);
  }

  // Final norm and LM head only on the rows whose logits are wanted.
  row = 0;
  int out_row = 0;
  for (const SequenceChunk& ch : batch) {
    row += static_cast<int>(ch.tokens.size());
    if (!ch.compute_logits) continue;
    cpu::RmsNorm(x + static_cast<size_t>(row - 1) * dim, final_norm_.data(),
                 xn + static_cast<size_t>(out_row) * dim, 1, dim, c.rms_eps);
    ++out_row;
  }
  logits->resize(static_cast<size_t>(logit_rows) * c.vocab_size);
  if (logit_rows > 0) {
    cpu::Linear(xn, lm_head_.empty() ? token_embedding_.data() : lm_head_.data(), logits->data(),
                logit_rows, c.vocab_size, dim);
  }
  return absl::OkStatus();
}

void CpuBackend::Attention(std::span<const SequenceChunk> batch, int layer) {
  const ModelConfig& c = config_;
  const int qkv_dim = c.q_dim() + 2 * c.kv_dim();
  const cpu::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  int row = 0;
  for (const SequenceChunk& ch : batch) {
    const int n = static_cast<int>(ch.tokens.size());
    // Split this chunk's fused rows into contiguous Q, K and V.
    float* q = s_.q.data() + static_cast<size_t>(row) * c.q_dim();
    float* k = Grow(s_.keys, static_cast<size_t>(n) * c.kv_dim());
    float* v = Grow(s_.values, static_cast<size_t>(n) * c.kv_dim());
    for (int i = 0; i < n; ++i) {
      const float* src = s_.qkv.data() + static_cast<size_t>(row + i) * qkv_dim;
      std::memcpy(q + static_cast<size_t>(i) * c.q_dim(), src, c.q_dim() * sizeof(float));
      std::memcpy(k + static_cast<size_t>(i) * c.kv_dim(), src + c.q_dim(),
                  c.kv_dim() * sizeof(float));
      std::memcpy(v + static_cast<size_t>(i) * c.kv_dim(), src + c.q_dim() + c.kv_dim(),
                  c.kv_dim() * sizeof(float));
    }
    ch.kv->Append(layer, k, v, n);
    const int cache_len = ch.kv->length(layer);
    float* scratch = Grow(s_.scores, cpu::AttentionScratchFloats(n, cache_len));
    cpu::CausalAttention(q, ch.kv->keys(layer), ch.kv->values(layer),
                         s_.attn.data() + static_cast<size_t>(row) * c.q_dim(), n, cache_len,
                         shape, scratch);
    row += n;
  }
}

}  // namespace kvserve
