#include "engine/model/ggml_type.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kvserve {
namespace {

struct TypeEntry {
  GgmlType type;
  const char* name;
  GgmlTypeLayout layout;  // block_size 0: layout unknown
};

// Layouts as in ggml's type traits. Q8_1 is only a runtime intermediate whose size changed
// upstream.
constexpr TypeEntry kTypes[] = {
    {GgmlType::kF32, "F32", {1, 4}},
    {GgmlType::kF16, "F16", {1, 2}},
    {GgmlType::kQ4_0, "Q4_0", {32, 18}},
    {GgmlType::kQ4_1, "Q4_1", {32, 20}},
    {GgmlType::kQ5_0, "Q5_0", {32, 22}},
    {GgmlType::kQ5_1, "Q5_1", {32, 24}},
    {GgmlType::kQ8_0, "Q8_0", {32, 34}},
    {GgmlType::kQ8_1, "Q8_1", {0, 0}},
    {GgmlType::kQ2_K, "Q2_K", {256, 84}},
    {GgmlType::kQ3_K, "Q3_K", {256, 110}},
    {GgmlType::kQ4_K, "Q4_K", {256, 144}},
    {GgmlType::kQ5_K, "Q5_K", {256, 176}},
    {GgmlType::kQ6_K, "Q6_K", {256, 210}},
    {GgmlType::kQ8_K, "Q8_K", {256, 292}},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", {256, 66}},
    {GgmlType::kIQ2_XS, "IQ2_XS", {256, 74}},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", {256, 98}},
    {GgmlType::kIQ1_S, "IQ1_S", {256, 50}},
    {GgmlType::kIQ4_NL, "IQ4_NL", {32, 18}},
    {GgmlType::kIQ3_S, "IQ3_S", {256, 110}},
    {GgmlType::kIQ2_S, "IQ2_S", {256, 82}},
    {GgmlType::kIQ4_XS, "IQ4_XS", {256, 136}},
    {GgmlType::kI8, "I8", {1, 1}},
    {GgmlType::kI16, "I16", {1, 2}},
    {GgmlType::kI32, "I32", {1, 4}},
    {GgmlType::kI64, "I64", {1, 8}},
    {GgmlType::kF64, "F64", {1, 8}},
    {GgmlType::kIQ1_M, "IQ1_M", {256, 56}},
    {GgmlType::kBF16, "BF16", {1, 2}},
    {GgmlType::kTQ1_0, "TQ1_0", {256, 54}},
    {GgmlType::kTQ2_0, "TQ2_0", {256, 66}},
    {GgmlType::kMXFP4, "MXFP4", {32, 17}},
};

const TypeEntry* FindType(GgmlType type) {
  for (const TypeEntry& entry : kTypes) {
    if (entry.type == type) return &entry;
  }
  return nullptr;
}

}  // namespace

std::string GgmlTypeName(GgmlType type) {
  const TypeEntry* entry = FindType(type);
  return entry ? std::string(entry->name) : absl::StrCat("type#", static_cast<uint32_t>(type));
}

absl::StatusOr<GgmlTypeLayout> GgmlLayout(GgmlType type) {
  const TypeEntry* entry = FindType(type);
  if (entry == nullptr || entry->layout.block_size == 0) {
    return absl::NotFoundError(
        absl::StrCat("ggml type ", GgmlTypeName(type), " has no known storage layout"));
  }
  return entry->layout;
}

absl::StatusOr<uint64_t> RowBytes(GgmlType type, uint64_t n_elements) {
  absl::StatusOr<GgmlTypeLayout> layout = GgmlLayout(type);
  if (!layout.ok()) return absl::InvalidArgumentError(layout.status().message());
  if (n_elements % layout->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(n_elements, " elements of ", GgmlTypeName(type),
                                                   " are not a whole number of ",
                                                   layout->block_size, "-element blocks"));
  }
  const uint64_t blocks = n_elements / layout->block_size;
  if (blocks > std::numeric_limits<uint64_t>::max() / layout->block_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(n_elements, " elements of ", GgmlTypeName(type), " overflow a 64-bit size"));
  }
  return blocks * layout->block_bytes;
}

}  // namespace kvserve
