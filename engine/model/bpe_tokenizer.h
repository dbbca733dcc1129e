#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/model/bpe_pre_tokenizer.h"
#include "engine/model/special_token_splitter.h"
#include "engine/model/token_type.h"
#include "engine/model/tokenizer.h"

namespace kvserve {

// GPT-2 style byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`): text is cut at special
// tokens, split by the pre-tokenizer regex, and each piece's bytes are merged by rank.
class BpeTokenizer final : public Tokenizer {
 public:
  // Plain data, as a GGUF file or a Hugging Face tokenizer.json holds it.
  struct Options {
    // `tokenizer.ggml.tokens`: in GPT-2's byte-to-unicode form ("Ġthe" for " the"); control and
    // user-defined tokens as their literal text.
    std::vector<std::string> tokens;
    // `tokenizer.ggml.token_type` (TokenType numbers), one per token; empty: all normal.
    std::vector<int32_t> token_types;
    // `tokenizer.ggml.merges`: "Ġ t" (left and right token separated by one space); rank = index.
    std::vector<std::string> merges;
    // `tokenizer.ggml.pre`, e.g. "gpt2", "smollm", "llama-bpe".
    std::string pre;
    int32_t bos_id = -1;
    int32_t eos_id = -1;
    bool add_bos = false;
  };

  // Fails with InvalidArgument naming the problem: empty vocab, token_types of the wrong size or
  // an unknown type, bos/eos out of range, a malformed merge or one naming a token the vocab lacks,
  // an unsupported pre-tokenizer.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(Options options);

  std::vector<int32_t> Encode(std::string_view text) const override;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Symbol;
  struct Candidate;

  BpeTokenizer() = default;
  absl::Status Init(Options options);
  // Appends the ids of one pre-tokenized piece. `symbols` and `queue` are scratch space.
  void EncodePiece(std::string_view piece, std::vector<Symbol>& symbols,
                   std::vector<Candidate>& queue, std::vector<int32_t>& out) const;
  const Merge* FindMerge(int32_t left, int32_t right) const;

  // The token standing for each single byte; -1 for bytes the vocab lacks (SmolLM2 has none for
  // 21 bytes, e.g. 0xFF, which valid UTF-8 never holds): Encode drops those, as Hugging Face and
  // llama.cpp do.
  std::array<int32_t, 256> byte_token_{};
  // (left id << 32 | right id) -> merge.
  absl::flat_hash_map<uint64_t, Merge> merges_;
  SpecialTokenSplitter special_tokens_;
  BpePreTokenizer pre_ = BpePreTokenizer::kGpt2;
};

}  // namespace kvserve
