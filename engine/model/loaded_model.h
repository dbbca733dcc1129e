#pragma once

#include <memory>
#include <string>

#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"
#include "engine/model/tokenizer.h"

namespace kvserve {

// Everything a model file provides: shape, fp32 weights, tokenizer and chat template.
struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;  // null for synthetic models (token ids only)
  std::string chat_template;             // the file's template source; empty when none
  std::string format;                    // "gguf", "llama2c" or "synthetic"
};

}  // namespace kvserve
