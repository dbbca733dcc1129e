#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/ggml_type.h"

// Test-only encoders (ggml's reference quantizers), to build tensors for GGUF files in tests.
namespace kvserve::testing {

// Round to nearest even; overflow gives inf, NaN gives the canonical quiet NaN 0x7e00.
uint16_t F32ToF16Bits(float x);
// Round to nearest even; NaN stays a (quiet) NaN.
uint16_t F32ToBf16Bits(float x);

// Encodes `values` as F32, F16, BF16, Q8_0, Q4_0 or Q4_1 (block types need a multiple of 32).
absl::StatusOr<std::vector<uint8_t>> QuantizeFromF32(GgmlType type, std::span<const float> values);

}  // namespace kvserve::testing
