#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/ggml_type.h"
#include "engine/model/model_weights.h"

namespace kvserve {

// --weights-dtype: how weight matrices are held after loading.
//   "stored" (the default): as the file stores them; GGUF's quantized, F16 and BF16 matrices stay
//            so, fp32 ones (llama2.c, synthetic, F32 tensors) stay fp32.
//   "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1": every matrix converted at load (re-quantizing
//            a quantized file decodes it first; "f32" is the old fp32 reference path).
inline constexpr absl::string_view kWeightsDtypeChoices =
    "stored, f32, f16, bf16, q8_0, q4_0, q4_1";

// nullopt for "stored"; InvalidArgument naming the choices otherwise.
absl::StatusOr<std::optional<GgmlType>> ParseWeightsDtype(absl::string_view name);

// Converts every matrix of `weights` to `target` (nullopt: leaves them as loaded), one at a time so
// that at most one extra fp32 matrix is alive. Norm vectors stay fp32.
absl::Status ConvertWeights(const ModelConfig& config, std::optional<GgmlType> target,
                            ModelWeights* weights);

}  // namespace kvserve
