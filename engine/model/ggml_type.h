#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace kvserve {

// ggml tensor type ids as stored in GGUF tensor infos (ids 4, 5, 31-33 were retired upstream).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
};

// The ggml name ("Q4_1", "BF16"), or "type#<id>" for an id this build does not know.
std::string GgmlTypeName(GgmlType type);

// Storage layout of a type: `block_size` elements are packed into `block_bytes` bytes.
struct GgmlTypeLayout {
  uint32_t block_size;
  uint32_t block_bytes;
};

// The layout of `type`; NotFound for an id without a known layout (unknown ids, Q8_1).
absl::StatusOr<GgmlTypeLayout> GgmlLayout(GgmlType type);

// Bytes holding `n_elements` consecutive elements of `type` (one row, or a whole tensor).
// InvalidArgument when `n_elements` is not a multiple of the block size or the size overflows.
absl::StatusOr<uint64_t> RowBytes(GgmlType type, uint64_t n_elements);

}  // namespace kvserve
