#include "engine/runtime/cpu/linear_weights.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "engine/runtime/cpu/cpu_ops.h"
#include "kernels/cpu/dequantize_rows.h"

namespace kvserve::cpu {
namespace {

using kernels::cpu::WeightFormat;

// A panel of decoded weight rows holds up to this many floats (2 MiB). Small panels cost more than
// they save: OpenBLAS repacks the activations for every sgemm call (64K floats: +13% prefill CPU
// time over fp32 at 512 tokens; 512K: +4%).
constexpr int64_t kPanelFloats = 512 * 1024;

}  // namespace

LinearWeights::LinearWeights(std::vector<Source> sources) {
  for (Source& source : sources) {
    Part part;
    if (auto* f = std::get_if<Fp32Matrix>(&source)) {
      part.format = WeightFormat::kF32;
      part.rows = f->rows;
      cols_ = f->cols;
      part.f32 = std::move(f->values);
    } else {
      WeightMatrix& q = std::get<WeightMatrix>(source);
      part.format = *KernelFormat(q.type);
      part.rows = q.rows;
      cols_ = q.cols;
      part.bytes = std::move(q.bytes);
    }
    part.row_bytes = kernels::cpu::RowBytesOf(part.format, cols_);
    part.row0 = rows_;
    rows_ += part.rows;
    if (!parts_.empty() && parts_.back().format == part.format) {
      Part& last = parts_.back();
      last.rows += part.rows;
      last.f32.insert(last.f32.end(), part.f32.begin(), part.f32.end());
      last.bytes.insert(last.bytes.end(), part.bytes.begin(), part.bytes.end());
      continue;
    }
    parts_.push_back(std::move(part));
  }
}

size_t LinearWeights::bytes() const {
  size_t n = 0;
  for (const Part& p : parts_) n += p.bytes.size() + p.f32.size() * sizeof(float);
  return n;
}

void LinearWeights::RowToF32(int64_t r, float* out) const {
  for (const Part& p : parts_) {
    if (r < p.row0 || r >= p.row0 + p.rows) continue;
    kernels::cpu::DequantizeRow(p.format, p.data() + static_cast<size_t>(r - p.row0) * p.row_bytes,
                                out, cols_);
    return;
  }
}

LinearRunner::LinearRunner(ThreadPool& pool, int dot_rows_max)
    : pool_(pool),
      dot_rows_max_(dot_rows_max),
      kernels_(kernels::cpu::KernelTable(kernels::cpu::SelectedIsa())),
      panels_(pool.size()) {}

void LinearRunner::Run(const float* x, const LinearWeights& w, float* y, int m, bool accumulate) {
  if (m <= 0 || w.rows() == 0) return;
  const int64_t n = w.rows(), k = w.cols();
  if (w.parts_.size() == 1 && w.parts_[0].format == WeightFormat::kF32) {
    Linear(pool_, x, w.parts_[0].f32.data(), y, m, static_cast<int>(n), static_cast<int>(k),
           accumulate);
    return;
  }
  const bool small = m <= dot_rows_max_;
  bool any_q8 = false;
  for (const LinearWeights::Part& p : w.parts_) any_q8 |= kernels::cpu::UsesQ8Activations(p.format);
  if (small && any_q8) {
    const int64_t blocks = k / kernels::cpu::kQ8BlockSize;
    if (xq_.size() < static_cast<size_t>(m * blocks)) xq_.resize(m * blocks);
    for (int i = 0; i < m; ++i) kernels::cpu::QuantizeToQ8(x + i * k, k, xq_.data() + i * blocks);
  }
  pool_.ParallelFor(
      n,
      [&](int64_t begin, int64_t end, int worker) {
        for (const LinearWeights::Part& p : w.parts_) {
          const int64_t b = std::max(begin, p.row0), e = std::min(end, p.row0 + p.rows);
          if (b >= e) continue;
          if (small) {
            const kernels::cpu::MatVecArgs args{.format = p.format,
                                                .w = p.data(),
                                                .row_bytes = p.row_bytes,
                                                .k = k,
                                                .x = x,
                                                .xq = xq_.data(),
                                                .m = m,
                                                .y = y + p.row0,
                                                .ldy = n,
                                                .accumulate = accumulate};
            kernels::cpu::DotRows(kernels_, args, b - p.row0, e - p.row0);
            continue;
          }
          // Prefill: decode a tile of rows into an fp32 panel, then one sgemm per tile.
          const int64_t tile = std::max<int64_t>(8, kPanelFloats / k);
          std::vector<float>& panel = panels_[worker];
          for (int64_t r = b; r < e; r += tile) {
            const int64_t rows = std::min(tile, e - r);
            const float* wr;
            if (p.format == WeightFormat::kF32) {
              wr = p.f32.data() + (r - p.row0) * k;
            } else {
              if (panel.size() < static_cast<size_t>(rows * k)) panel.resize(rows * k);
              kernels::cpu::DequantizeRows(p.format, p.data(), k, r - p.row0, r - p.row0 + rows,
                                           panel.data());
              wr = panel.data();
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, static_cast<int>(rows),
                        static_cast<int>(k), 1.0f, x, static_cast<int>(k), wr, static_cast<int>(k),
                        accumulate ? 1.0f : 0.0f, y + r, static_cast<int>(n));
          }
        }
      },
      2.0 * m * k);
}

}  // namespace kvserve::cpu
