#include "engine/runtime/cpu/cpu_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/math/fast_exp.h"
#include "engine/runtime/cpu/simd.h"

namespace kvserve::cpu {
namespace {

// Query rows per attention block: bounds the score matrix at long context.
constexpr int kQueryBlock = 128;
// Up to this many rows a weight-streaming dot-product kernel beats sgemm (memory-bound regime).
constexpr int kSmallRows = 16;
// Up to this many new queries attention runs as dot products rather than GEMMs.
constexpr int kDirectAttentionRows = 4;
// Stored K/V rows DirectAttention converts to fp32 at a time.
constexpr int kConvertRows = 32;

// One query head over its visible keys with dot products: decode, where GEMM calls cost more than
// the arithmetic.
// Scores p[0, visible) -> softmax probabilities, in place.
void Softmax(float* p, int visible, float max) {
  float sum = 0.0f;
  for (int j = 0; j < visible; ++j) sum += (p[j] = FastExpNonPositive(p[j] - max));
  const float inv = 1.0f / sum;
  for (int j = 0; j < visible; ++j) p[j] *= inv;
}

}  // namespace

void AttentionProbabilities(const float* q, const float* k, int visible, int d, float scale,
                            float* p) {
  float max = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < visible; ++j) {
    p[j] = Dot(q, k + static_cast<size_t>(j) * d, d) * scale;
    max = std::max(max, p[j]);
  }
  Softmax(p, visible, max);
}

void Linear(ThreadPool& pool, const float* x, const float* w, float* y, int m, int n, int k,
            bool accumulate) {
  pool.ParallelFor(
      n,
      [&](int64_t begin, int64_t end, int) {
        if (m <= kSmallRows) {
          for (int64_t j = begin; j < end; ++j) {
            const float* wj = w + j * k;
            for (int i = 0; i < m; ++i) {
              const float dot = Dot(x + static_cast<size_t>(i) * k, wj, k);
              float& out = y[static_cast<size_t>(i) * n + j];
              out = accumulate ? out + dot : dot;
            }
          }
          return;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, static_cast<int>(end - begin), k,
                    1.0f, x, k, w + begin * k, k, accumulate ? 1.0f : 0.0f, y + begin, n);
      },
      2.0 * m * k);  // flops per output column
}

void RmsNorm(ThreadPool& pool, const float* x, const float* weight, float* out, int rows, int dim,
             float eps) {
  pool.ParallelFor(
      rows,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          const float* xr = x + r * dim;
          float* yr = out + r * dim;
          const float scale = 1.0f / std::sqrt(Dot(xr, xr, dim) / static_cast<float>(dim) + eps);
          for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
        }
      },
      4.0 * dim);
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

void SiluMul(ThreadPool& pool, const float* gate_up, float* out, int rows, int ffn) {
  pool.ParallelFor(
      rows,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t r = begin; r < end; ++r) {
          const float* g = gate_up + r * 2 * ffn;
          const float* u = g + ffn;
          float* o = out + r * ffn;
          for (int i = 0; i < ffn; ++i) {
            // sigmoid from exp(-|g|) so the exponent is never positive.
            const float e = FastExpNonPositive(-std::abs(g[i]));
            const float sigmoid = (g[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
            o[i] = g[i] * sigmoid * u[i];
          }
        }
      },
      8.0 * ffn);
}

int AttentionQueryBlocks(int n) {
  return n <= kDirectAttentionRows ? 1 : (n + kQueryBlock - 1) / kQueryBlock;
}

int AttentionKeysNeeded(int n, int cache_len, int block) {
  if (n <= kDirectAttentionRows) return cache_len;
  return cache_len - n + std::min(n, (block + 1) * kQueryBlock);
}

size_t AttentionScratchFloats(int n, int cache_len, const AttentionShape& shape) {
  const size_t group_rows =
      static_cast<size_t>(std::min(n, kQueryBlock)) * (shape.n_heads / shape.n_kv_heads);
  return group_rows * (cache_len + 2 * shape.head_dim) +
         static_cast<size_t>(kConvertRows) * shape.head_dim;
}

void CausalAttention(const AttentionInputs& in, int kv_head, int block, float* scratch) {
  const AttentionShape& shape = in.shape;
  const int d = shape.head_dim;
  const int group = shape.n_heads / shape.n_kv_heads;
  const int q_stride = shape.n_heads * d;
  const int base = in.cache_len - in.n;  // cache entries before the first new query
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const float* k = in.keys;
  const float* v = in.values;
  const int first_head = kv_head * group;
  if (AttendsDirectly(in.n)) {
    const KvRowSpan whole{reinterpret_cast<const std::byte*>(k),
                          reinterpret_cast<const std::byte*>(v), in.cache_len, KvDtype::kF32};
    DirectAttention(in, {&whole, 1}, kv_head, scratch);
    return;
  }
  const int r0 = block * kQueryBlock;
  const int rows = std::min(kQueryBlock, in.n - r0);
  const int span = base + r0 + rows;  // keys the block's last query sees
  const int grows = rows * group;     // (row, head-in-group) pairs, row-major
  float* scores = scratch;
  float* qg = scores + static_cast<size_t>(grows) * span;
  float* og = qg + static_cast<size_t>(grows) * d;
  for (int r = 0; r < rows; ++r) {
    std::memcpy(qg + static_cast<size_t>(r) * group * d,
                in.q + static_cast<size_t>(r0 + r) * q_stride + static_cast<size_t>(first_head) * d,
                static_cast<size_t>(group) * d * sizeof(float));
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, grows, span, d, scale, qg, d, k, d, 0.0f,
              scores, span);
  for (int gr = 0; gr < grows; ++gr) {
    float* s = scores + static_cast<size_t>(gr) * span;
    const int visible = base + r0 + gr / group + 1;
    float max = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < visible; ++j) max = std::max(max, s[j]);
    float sum = 0.0f;
    for (int j = 0; j < visible; ++j) {
      s[j] = FastExpNonPositive(s[j] - max);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < visible; ++j) s[j] *= inv;
    std::fill(s + visible, s + span, 0.0f);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, grows, d, span, 1.0f, scores, span, v, d,
              0.0f, og, d);
  for (int r = 0; r < rows; ++r) {
    std::memcpy(
        in.out + static_cast<size_t>(r0 + r) * q_stride + static_cast<size_t>(first_head) * d,
        og + static_cast<size_t>(r) * group * d, static_cast<size_t>(group) * d * sizeof(float));
  }
}

bool AttendsDirectly(int n) { return n <= kDirectAttentionRows; }

namespace {

// Rows [r, r + n) of a span's keys or values in fp32: where they lie when stored so, else
// converted into `buf` ([n][d]).
const float* RowsF32(const std::byte* rows, int r, int n, int d, KvDtype t, float* buf) {
  const size_t at = static_cast<size_t>(r) * d;
  if (t == KvDtype::kF32) return reinterpret_cast<const float*>(rows) + at;
  LoadKvRow(rows + at * KvDtypeBytes(t), n * d, t, buf);
  return buf;
}

}  // namespace

void DirectAttention(const AttentionInputs& in, std::span<const KvRowSpan> spans, int kv_head,
                     float* scratch) {
  const AttentionShape& shape = in.shape;
  const int d = shape.head_dim;
  const int group = shape.n_heads / shape.n_kv_heads;
  const int q_stride = shape.n_heads * d;
  const int base = in.cache_len - in.n;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // The group's query heads share each K and V row: it is read (and converted) once for all.
  float* rows = scratch;                                      // [kConvertRows][d]: fp32 rows
  float* max = rows + static_cast<size_t>(kConvertRows) * d;  // [group]
  float* p = max + group;                                     // [group][visible]
  // Calls fn(j, row j in fp32) for the first `visible` rows of the keys or the values.
  auto for_each_row = [&](bool values, int visible, auto fn) {
    int j = 0;
    for (const KvRowSpan& s : spans) {
      for (int r = 0; r < s.rows && j < visible; r += kConvertRows) {
        const int n = std::min({kConvertRows, s.rows - r, visible - j});
        const float* x = RowsF32(values ? s.values : s.keys, r, n, d, s.dtype, rows);
        for (int i = 0; i < n; ++i, ++j) fn(j, x + static_cast<size_t>(i) * d);
      }
    }
  };
  for (int i = 0; i < in.n; ++i) {
    const int visible = base + i + 1;
    const size_t at = static_cast<size_t>(i) * q_stride + static_cast<size_t>(kv_head) * group * d;
    const float* q = in.q + at;
    float* out = in.out + at;
    std::fill(max, max + group, -std::numeric_limits<float>::infinity());
    for_each_row(false, visible, [&](int j, const float* k) {
      for (int g = 0; g < group; ++g) {
        float& score = p[static_cast<size_t>(g) * visible + j];
        score = Dot(q + static_cast<size_t>(g) * d, k, d) * scale;
        max[g] = std::max(max[g], score);
      }
    });
    for (int g = 0; g < group; ++g) Softmax(p + static_cast<size_t>(g) * visible, visible, max[g]);
    std::fill(out, out + static_cast<size_t>(group) * d, 0.0f);
    for_each_row(true, visible, [&](int j, const float* v) {
      for (int g = 0; g < group; ++g) {
        Axpy(p[static_cast<size_t>(g) * visible + j], v, out + static_cast<size_t>(g) * d, d);
      }
    });
  }
}

}  // namespace kvserve::cpu
