#pragma once

#include <cstdint>

namespace kvserve {

// Token kinds as GGUF `tokenizer.ggml.token_type` numbers them.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <s>, </s>, <|im_start|>: never produced from text by merges
  kUserDefined = 4,  // added words, matched literally in the text
  kUnused = 5,
  kByte = 6,  // <0xAB> byte fallback
};

inline constexpr int32_t kMaxTokenType = 6;

}  // namespace kvserve
