#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "engine/model/weight_matrix.h"
#include "engine/runtime/cpu/thread_pool.h"
#include "kernels/cpu/q8_activations.h"
#include "kernels/cpu/vec_dot.h"

namespace kvserve::cpu {

// One linear layer's weights as the CPU backend holds them: matrices with the same column count
// whose outputs are concatenated (fused Q/K/V, gate/up). Adjacent parts of one storage type are
// merged, so a model stored in one type runs each fused layer as one matrix.
class LinearWeights {
 public:
  struct Fp32Matrix {
    std::vector<float> values;  // [rows][cols]
    int64_t rows, cols;
  };
  // A part is an fp32 matrix or a WeightMatrix, all with the same cols.
  using Source = std::variant<Fp32Matrix, WeightMatrix>;
  LinearWeights() = default;
  explicit LinearWeights(std::vector<Source> parts);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t bytes() const;
  // Decodes row `r` into `out` ([cols]): embedding lookups.
  void RowToF32(int64_t r, float* out) const;

 private:
  friend class LinearRunner;
  struct Part {
    kernels::cpu::WeightFormat format;
    int64_t row0 = 0, rows = 0;
    size_t row_bytes = 0;
    std::vector<uint8_t> bytes;  // quantized formats
    std::vector<float> f32;      // kF32
    const uint8_t* data() const {
      return f32.empty() ? bytes.data() : reinterpret_cast<const uint8_t*>(f32.data());
    }
  };
  std::vector<Part> parts_;
  int64_t rows_ = 0, cols_ = 0;
};

// Runs linear layers: y[m][n] = x[m][k] * W^T (+ y when accumulate), output rows split across the
// pool. A single fp32 part runs the reference fp32 path (cpu::Linear). Otherwise few rows
// (decode) quantize x to int8 blocks once and stream each weight row through the selected ISA's
// dot kernels; many rows (prefill) decode tiles of weight rows into cache-sized fp32 panels for
// OpenBLAS sgemm. Holds the per-step scratch, so one runner per engine thread.
class LinearRunner {
 public:
  // Up to this many rows the int8 dot kernels beat decoding panels for sgemm (kvserve-linear-bench
  // measures both paths at every row count).
  static constexpr int kDefaultDotRowsMax = 16;
  // Batches of up to `dot_rows_max` rows take the dot kernels, larger ones the panels.
  explicit LinearRunner(ThreadPool& pool, int dot_rows_max = kDefaultDotRowsMax);
  void Run(const float* x, const LinearWeights& w, float* y, int m, bool accumulate = false);
  kernels::cpu::Isa isa() const { return kernels_.isa; }

 private:
  ThreadPool& pool_;
  int dot_rows_max_;
  const kernels::cpu::DotKernelTable& kernels_;
  std::vector<kernels::cpu::Q8Block> xq_;
  std::vector<std::vector<float>> panels_;  // one per pool worker
};

}  // namespace kvserve::cpu
