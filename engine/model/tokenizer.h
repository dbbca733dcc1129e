#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  virtual std::string TokenBytes(int32_t id) const = 0;

  // Concatenated TokenBytes; incomplete UTF-8 is replaced by U+FFFD.
  std::string Decode(std::span<const int32_t> ids) const;

  virtual int vocab_size() const = 0;
  // -1 when the model has none.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  // True for control tokens such as <s>, </s>, <|im_end|> (not for plain added words).
  virtual bool IsSpecial(int32_t id) const = 0;
  // Whether `--prompt` text gets a BOS by default (llama2.c, GGUF add_bos_token).
  virtual bool add_bos() const = 0;
};

}  // namespace kvserve
