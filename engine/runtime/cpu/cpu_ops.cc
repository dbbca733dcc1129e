#include "engine/runtime/cpu/cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kvserve::cpu {
namespace {

// Query rows per attention block: bounds the score matrix at long context.
constexpr int kQueryBlock = 128;

}  // namespace

void Linear(const float* x, const float* w, float* y, int m, int n, int k, bool accumulate) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x, 1, beta, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, beta, y, n);
}

void RmsNorm(const float* x, const float* weight, float* out, int rows, int dim, float eps) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * dim;
    float* yr = out + static_cast<size_t>(r) * dim;
    float ss = 0.0f;
    for (int i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
  }
}

void RopeTables(std::span<const int32_t> positions, int rope_dim, float theta, float* cos_out,
                float* sin_out) {
  const int half = rope_dim / 2;
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int i = 0; i < half; ++i) {
      // Frequencies in fp32 as the reference implementations compute them; the angle in double.
      const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / rope_dim);
      const double angle = static_cast<double>(positions[t]) * inv_freq;
      cos_out[t * half + i] = static_cast<float>(std::cos(angle));
      sin_out[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void ApplyRope(float* x, int rows, int stride, int n_heads, int head_dim, int rope_dim,
               const float* cos_table, const float* sin_table, bool adjacent_pairs) {
  const int half = rope_dim / 2;
  for (int r = 0; r < rows; ++r) {
    const float* c = cos_table + static_cast<size_t>(r) * half;
    const float* s = sin_table + static_cast<size_t>(r) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + static_cast<size_t>(r) * stride + static_cast<size_t>(h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const int a = adjacent_pairs ? 2 * i : i;
        const int b = adjacent_pairs ? 2 * i + 1 : i + half;
        const float x0 = v[a];
        const float x1 = v[b];
        v[a] = x0 * c[i] - x1 * s[i];
        v[b] = x0 * s[i] + x1 * c[i];
      }
    }
  }
}

void SiluMul(const float* gate_up, float* out, int rows, int ffn) {
  for (int r = 0; r < rows; ++r) {
    const float* g = gate_up + static_cast<size_t>(r) * 2 * ffn;
    const float* u = g + ffn;
    float* o = out + static_cast<size_t>(r) * ffn;
    for (int i = 0; i < ffn; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

size_t AttentionScratchFloats(int n, int cache_len) {
  return static_cast<size_t>(std::min(n, kQueryBlock)) * cache_len;
}

void CausalAttention(const float* q, const float* keys, const float* values, float* out, int n,
                     int cache_len, const AttentionShape& shape, float* scratch) {
  const int d = shape.head_dim;
  const int q_stride = shape.n_heads * d;
  const int kv_stride = shape.n_kv_heads * d;
  const int group = shape.n_heads / shape.n_kv_heads;
  const int base = cache_len - n;  // cache entries before the first new query
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int head = 0; head < shape.n_heads; ++head) {
    const float* k = keys + static_cast<size_t>(head / group) * d;
    const float* v = values + static_cast<size_t>(head / group) * d;
    for (int r0 = 0; r0 < n; r0 += kQueryBlock) {
      const int rows = std::min(kQueryBlock, n - r0);
      const int span = base + r0 + rows;  // keys the block's last query sees
      const float* qb = q + static_cast<size_t>(r0) * q_stride + static_cast<size_t>(head) * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, span, d, scale, qb, q_stride, k,
                  kv_stride, 0.0f, scratch, span);
      for (int r = 0; r < rows; ++r) {
        float* s = scratch + static_cast<size_t>(r) * span;
        const int visible = base + r0 + r + 1;
        float max = -std::numeric_limits<float>::infinity();
        for (int j = 0; j < visible; ++j) max = std::max(max, s[j]);
        float sum = 0.0f;
        for (int j = 0; j < visible; ++j) {
          s[j] = std::exp(s[j] - max);
          sum += s[j];
        }
        const float inv = 1.0f / sum;
        for (int j = 0; j < visible; ++j) s[j] *= inv;
        std::fill(s + visible, s + span, 0.0f);
      }
      float* ob = out + static_cast<size_t>(r0) * q_stride + static_cast<size_t>(head) * d;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, span, 1.0f, scratch, span, v,
                  kv_stride, 0.0f, ob, q_stride);
    }
  }
}

}  // namespace kvserve::cpu
