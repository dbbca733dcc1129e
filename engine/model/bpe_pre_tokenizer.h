#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace kvserve {

// The regex split a byte-level BPE model applies before merging; merges never cross a piece
// boundary. Hand-written equivalents of the Hugging Face / llama.cpp regexes.
enum class BpePreTokenizer {
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // SmolLM, StarCoder: every \p{N} character is a piece of its own (HF `Digits` with
  // individual_digits), and GPT-2's regex splits the text between them.
  kDigitsGpt2,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
};

// Maps GGUF `tokenizer.ggml.pre` to its split; empty means the original GPT-2 regex.
absl::StatusOr<BpePreTokenizer> BpePreTokenizerFromName(std::string_view pre);

// The pieces of `text`, in order, as views into it; they concatenate to `text`. Ill-formed UTF-8
// counts as neither letter, number nor space.
std::vector<std::string_view> PreTokenize(BpePreTokenizer kind, std::string_view text);

}  // namespace kvserve
