#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"

namespace kvserve {

struct ModelSource {
  std::string model;      // a GGUF file, a llama2.c checkpoint, or synthetic:NAME
  std::string tokenizer;  // llama2.c only: its tokenizer file
  uint64_t synthetic_seed = 0;
};

// Loads any supported model, telling the format from the file's magic bytes.
absl::StatusOr<LoadedModel> LoadModel(const ModelSource& source);

// The context length `source` declares, read from its header or metadata without loading weights
// (the server sizes its receive limit by it before the model loads).
absl::StatusOr<int> ReadContextLength(const ModelSource& source);

}  // namespace kvserve
