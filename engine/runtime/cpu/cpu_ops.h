#pragma once

#include <cstdint>
#include <span>

namespace kvserve::cpu {

// y[m][n] = x[m][k] * w[n][k]^T (+ y when accumulate): every linear layer, weights row-major [out][in].
void Linear(const float* x, const float* w, float* y, int m, int n, int k, bool accumulate = false);

// out[i] = x[i] * weight / rms(x[i]) for each of `rows` rows of `dim`.
void RmsNorm(const float* x, const float* weight, float* out, int rows, int dim, float eps);

// Per-token rotation tables: cos/sin[t][rope_dim / 2] for each position.
void RopeTables(std::span<const int32_t> positions, int rope_dim, float theta, float* cos_out,
                float* sin_out);

// Rotates `n_heads` heads of `head_dim` in each of `rows` rows (row stride `stride`) in place.
// Adjacent pairs (2i, 2i+1) when `adjacent_pairs`, else halves (i, i + rope_dim / 2).
void ApplyRope(float* x, int rows, int stride, int n_heads, int head_dim, int rope_dim,
               const float* cos_table, const float* sin_table, bool adjacent_pairs);

// out[r][i] = silu(gate_up[r][i]) * gate_up[r][ffn + i]; gate_up is [rows][2 * ffn].
void SiluMul(const float* gate_up, float* out, int rows, int ffn);

// Causal GQA attention of one sequence's `n` new queries over its cache of `cache_len` tokens,
// the new ones last. q/out: [n][n_heads * head_dim]; keys/values: [cache_len][n_kv_heads * head_dim].
// `scratch` must hold AttentionScratchFloats(n, cache_len) floats.
struct AttentionShape {
  int n_heads;
  int n_kv_heads;
  int head_dim;
};
size_t AttentionScratchFloats(int n, int cache_len);
void CausalAttention(const float* q, const float* keys, const float* values, float* out, int n,
                     int cache_len, const AttentionShape& shape, float* scratch);

}  // namespace kvserve::cpu
