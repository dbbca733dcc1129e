#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace kvserve {

// How a KV page stores its elements. The CPU backend keeps fp16 by default (half the memory and
// the bandwidth a decode step streams; attention computes in fp32); fp32 on request (--kv-dtype).
enum class KvDtype : uint8_t { kF32, kF16, kBf16 };

inline size_t KvDtypeBytes(KvDtype t) { return t == KvDtype::kF32 ? 4 : 2; }
const char* KvDtypeName(KvDtype t);
// "f32", "f16" or "bf16"; anything else is InvalidArgument naming the choices.
absl::StatusOr<KvDtype> ParseKvDtype(std::string_view name);

// `n` floats to `t` elements at `out`, and back.
void StoreKvRow(const float* in, int n, KvDtype t, std::byte* out);
void LoadKvRow(const std::byte* in, int n, KvDtype t, float* out);

}  // namespace kvserve
