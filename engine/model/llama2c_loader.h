#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"

namespace kvserve {

// Loads a llama2.c legacy fp32 checkpoint; the tokenizer comes from `tokenizer_path` (tok512.bin
// style) when non-empty.
absl::StatusOr<LoadedModel> LoadLlama2cModel(const std::string& path,
                                             const std::string& tokenizer_path);

}  // namespace kvserve
