#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/token_type.h"

namespace kvserve {

// Text <-> token ids. Implementations: BpeTokenizer (GPT-2 byte-level, GGUF `gpt2`) and
// SentencePieceTokenizer (score-ranked BPE with byte fallback, GGUF `llama` and llama2.c).
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes `text` without adding BOS/EOS. Text of a special or added token (e.g. `<|im_start|>`)
  // maps to its id.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;

  // The raw bytes token `id` stands for (byte-level and byte-fallback tokens decoded; special
  // tokens give their text). Empty for an id out of range. May be an incomplete UTF-8 sequence.
  std::string TokenBytes(int32_t id) const;

  // Concatenated TokenBytes; incomplete UTF-8 is replaced by U+FFFD.
  std::string Decode(std::span<const int32_t> ids) const;

  int vocab_size() const { return static_cast<int>(token_bytes_.size()); }
  // -1 when the model has none.
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // True for control and unknown tokens such as <s>, </s>, <|im_end|> (not for added words).
  bool IsSpecial(int32_t id) const;
  // Whether `--prompt` text gets a BOS by default (llama2.c, GGUF add_bos_token).
  bool add_bos() const { return add_bos_; }

 protected:
  // What every vocabulary has, filled by the implementations' constructors.
  std::vector<std::string> token_bytes_;
  std::vector<TokenType> types_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  bool add_bos_ = false;
};

}  // namespace kvserve
