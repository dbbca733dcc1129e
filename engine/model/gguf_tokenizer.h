#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "engine/model/gguf_file.h"
#include "engine/model/tokenizer.h"

namespace kvserve {

// Builds the tokenizer a GGUF file declares (`tokenizer.ggml.model`: `gpt2` or `llama`).
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeGgufTokenizer(const GgufFile& file, int vocab_size);

}  // namespace kvserve
