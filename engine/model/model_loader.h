#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"

namespace kvserve {

struct ModelSource {
  std::string model;      // a GGUF file, a llama2.c checkpoint, or synthetic:NAME
  std::string tokenizer;  // llama2.c only: its tokenizer file
  uint64_t synthetic_seed = 0;
  // How weight matrices are held after loading (engine/model/weights_dtype.h): "stored" keeps the
  // file's types; "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1" convert at load.
  std::string weights_dtype = "stored";
};

// Loads any supported model, telling the format from the file's magic bytes.
absl::StatusOr<LoadedModel> LoadModel(const ModelSource& source);

// The context length `source` declares, read from its header or metadata without loading weights
// (the server sizes its receive limit by it before the model loads).
absl::StatusOr<int> ReadContextLength(const ModelSource& source);

}  // namespace kvserve
