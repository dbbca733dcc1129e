#pragma once

#include <string>

namespace kvserve::testing {

// stories260K checkpoint and tokenizer from ../shared/models.
std::string Stories260KModelPath();
std::string Stories260KTokenizerPath();
// The default model's GGUF: ../shared/models copy when present, else models/
// (scripts/fetch-model.sh); empty when neither exists.
std::string SmolLm2GgufPath();
// A fresh temporary directory for the calling test.
std::string MakeTempDir();

}  // namespace kvserve::testing
