#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/model/tokenizer.h"

namespace kvserve {

// The prompt ids of a text prompt as the model expects it: its BOS when the tokenizer adds one
// (llama2.c, GGUF add_bos_token), then the encoded text. Token-id prompts are used as given and
// never pass through here.
std::vector<int32_t> EncodePromptText(const Tokenizer& tokenizer, std::string_view text);

}  // namespace kvserve
