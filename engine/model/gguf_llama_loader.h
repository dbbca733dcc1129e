#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"

namespace kvserve {

// Loads a GGUF file of architecture `llama`: hyperparameters from metadata, every tensor
// dequantized to fp32, and the tokenizer (`gpt2` byte-level BPE or `llama` SentencePiece).
absl::StatusOr<LoadedModel> LoadGgufLlamaModel(const std::string& path);

}  // namespace kvserve
