#include "engine/kv/kv_dtype.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/half_rows.h"

namespace kvserve {

namespace kc = kernels::cpu;

const char* KvDtypeName(KvDtype t) {
  switch (t) {
    case KvDtype::kF32:
      return "f32";
    case KvDtype::kF16:
      return "f16";
    case KvDtype::kBf16:
      return "bf16";
  }
  return "?";
}

absl::StatusOr<KvDtype> ParseKvDtype(std::string_view name) {
  for (const KvDtype t : {KvDtype::kF32, KvDtype::kF16, KvDtype::kBf16}) {
    if (name == KvDtypeName(t)) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("--kv-dtype: unknown KV element type '",
                                                 std::string(name), "' (f32, f16 or bf16)"));
}

void StoreKvRow(const float* in, int n, KvDtype t, std::byte* out) {
  switch (t) {
    case KvDtype::kF32:
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
      return;
    case KvDtype::kF16:
      kc::FloatRowToHalf(in, reinterpret_cast<uint16_t*>(out), n);
      return;
    case KvDtype::kBf16:
      kc::FloatRowToBf16(in, reinterpret_cast<uint16_t*>(out), n);
      return;
  }
}

void LoadKvRow(const std::byte* in, int n, KvDtype t, float* out) {
  switch (t) {
    case KvDtype::kF32:
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
      return;
    case KvDtype::kF16:
      kc::HalfRowToFloat(reinterpret_cast<const uint16_t*>(in), out, n);
      return;
    case KvDtype::kBf16:
      kc::Bf16RowToFloat(reinterpret_cast<const uint16_t*>(in), out, n);
      return;
  }
}

}  // namespace kvserve
