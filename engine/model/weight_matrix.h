#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/ggml_type.h"
#include "kernels/cpu/weight_format.h"

namespace kvserve {

// A row-major [rows][cols] weight matrix kept in a ggml storage type (Q4_1, Q6_K, F16, ...), each
// row packed in that type's blocks: what the CPU backend computes on without expanding to fp32.
struct WeightMatrix {
  GgmlType type = GgmlType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> bytes;  // rows * row_bytes()

  size_t row_bytes() const;
};

// The CPU kernels' format for `type`; nullopt for a type they do not compute on.
std::optional<kernels::cpu::WeightFormat> KernelFormat(GgmlType type);

// Copies raw ggml bytes into a matrix, checking the size against the shape; InvalidArgument names
// `what` when the type has no kernels or the bytes do not match.
absl::StatusOr<WeightMatrix> WrapMatrix(GgmlType type, int64_t rows, int64_t cols,
                                        std::span<const uint8_t> bytes, absl::string_view what);

// Encodes an fp32 [rows][cols] matrix as `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1); InvalidArgument
// naming `what` when cols is not a whole number of the type's blocks.
absl::StatusOr<WeightMatrix> QuantizeMatrix(std::span<const float> values, int64_t rows,
                                            int64_t cols, GgmlType type, absl::string_view what);

// Decodes the whole matrix into fp32 [rows][cols].
std::vector<float> DequantizeMatrix(const WeightMatrix& m);

}  // namespace kvserve
