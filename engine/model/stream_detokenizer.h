#pragma once

#include <cstdint>
#include <string>

#include "engine/model/tokenizer.h"

namespace kvserve {

// Turns generated ids into text as they arrive, never emitting broken UTF-8: a character split
// across tokens (byte-level BPE, byte fallback) is held back until its last byte arrives. What the
// pushes and the final flush emit concatenates to tokenizer.Decode(ids), less skipped tokens.
class StreamDetokenizer {
 public:
  // `tokenizer` must outlive this. With `skip_special`, special tokens (</s>, <|im_end|>) add no
  // text, as vLLM's skip_special_tokens does.
  explicit StreamDetokenizer(const Tokenizer& tokenizer, bool skip_special = true);

  // The text completed by `id`: valid UTF-8, possibly empty. An ill-formed sequence becomes U+FFFD
  // as soon as it can no longer complete.
  std::string Push(int32_t id);

  // What is held back (an incomplete character, as U+FFFD); call once after the last token.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // the start of an incomplete character, at most 3 bytes
};

}  // namespace kvserve
