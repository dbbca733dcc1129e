#include "engine/model/weights_dtype.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace kvserve {

absl::StatusOr<std::optional<GgmlType>> ParseWeightsDtype(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "stored") return std::optional<GgmlType>();
  for (auto [key, type] : {std::pair{"f32", GgmlType::kF32},
                           {"f16", GgmlType::kF16},
                           {"bf16", GgmlType::kBF16},
                           {"q8_0", GgmlType::kQ8_0},
                           {"q4_0", GgmlType::kQ4_0},
                           {"q4_1", GgmlType::kQ4_1}}) {
    if (lower == key) return std::optional<GgmlType>(type);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown weights dtype '", name, "' (choices: ", kWeightsDtypeChoices, ")"));
}

absl::Status ConvertWeights(const ModelConfig& config, std::optional<GgmlType> target,
                            ModelWeights* weights) {
  if (!target) return absl::OkStatus();
  if (*target == GgmlType::kF32) {
    weights->DequantizeStored(config);
    return absl::OkStatus();
  }
  for (const MatrixSlot& slot : MatrixSlots(config, *weights)) {
    auto it = weights->stored.find(slot.gguf_name);
    if (it != weights->stored.end() && it->second.type == *target) continue;
    std::vector<float> values =
        it != weights->stored.end() ? DequantizeMatrix(it->second) : std::move(*slot.field);
    *slot.field = {};
    auto converted = QuantizeMatrix(values, slot.rows, slot.cols, *target,
                                    absl::StrCat("--weights-dtype: tensor ", slot.gguf_name));
    if (!converted.ok()) return converted.status();
    weights->stored[slot.gguf_name] = *std::move(converted);
  }
  return absl::OkStatus();
}

}  // namespace kvserve
