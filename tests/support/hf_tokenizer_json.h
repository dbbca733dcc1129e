#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/bpe_tokenizer.h"

namespace kvserve::testing {

// SmolLM2-135M-Instruct's Hugging Face tokenizer.json (tests/data, else ../shared/models); empty
// when absent.
std::string SmolLm2TokenizerJsonPath();

// BpeTokenizer options from a Hugging Face tokenizer.json with a BPE model, so tests need no GGUF
// reader: `model.vocab` (token -> id), `model.merges` ("a b" strings or [a, b] pairs) and
// `added_tokens` (special ones become control tokens, the others user-defined). The file does not
// name the pre-tokenizer nor bos/eos, so the caller does.
absl::StatusOr<BpeTokenizer::Options> BpeOptionsFromHfTokenizerJson(const std::string& path,
                                                                    std::string pre, int32_t bos_id,
                                                                    int32_t eos_id);

}  // namespace kvserve::testing
