#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/model/special_token_splitter.h"
#include "engine/model/token_type.h"
#include "engine/model/tokenizer.h"

namespace kvserve {

// SentencePiece-style BPE with byte fallback (GGUF `tokenizer.ggml.model = "llama"`, llama2.c):
// spaces become U+2581 "▁", text starts as UTF-8 characters (those not in the vocab fall back to
// <0xAB> byte tokens), and the adjacent pair whose concatenation is the best-scoring token merges
// until none is left, as llama2.c's `encode` does.
class SentencePieceTokenizer final : public Tokenizer {
 public:
  struct Options {
    // Pieces with "▁" for spaces; byte tokens spelled "<0xAB>".
    std::vector<std::string> tokens;
    // Merge priority, higher first; empty: all zero.
    std::vector<float> scores;
    // TokenType numbers; empty: inferred (bos/eos control, unk unknown, "<0xAB>" byte, else
    // normal).
    std::vector<int32_t> token_types;
    int32_t bos_id = -1;
    int32_t eos_id = -1;
    // Stands in for characters with neither a piece nor byte tokens; -1: none.
    int32_t unk_id = -1;
    bool add_bos = true;
    // SentencePiece's dummy prefix: a space before the text and after each special token in it.
    bool add_space_prefix = true;
  };

  // Fails with InvalidArgument naming the problem: empty vocab, scores or types of the wrong size,
  // an unknown type, an id out of range, a byte with neither a byte token nor an unk token.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Create(Options options);

  // A llama2.c tokenizer file (tok512.bin, tokenizer.bin): int32 max_token_length, then per token
  // float32 score, int32 length, bytes; spaces as " ". Ids 0 <unk>, 1 <s> (bos), 2 </s> (eos),
  // "<0xAB>" pieces are byte tokens. NotFound for an unreadable file, InvalidArgument naming the
  // token for a truncated or malformed one.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> LoadLlama2c(
      const std::string& path, int vocab_size);

  // pieces_ views piece_text_.
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int32_t> Encode(std::string_view text) const override;

 private:
  struct Symbol;
  struct Candidate;

  SentencePieceTokenizer() = default;
  absl::Status Init(Options options);
  // Appends the ids of `text`, already in "▁" form.
  void EncodeNormalized(std::string_view text, std::vector<int32_t>& out) const;
  // The mergeable token spelled `piece`, or -1.
  int32_t FindPiece(std::string_view piece) const;

  std::vector<float> scores_;
  // The tokens as spelled in the vocab, and those text may produce (normal and user-defined
  // ones) by spelling; the map's keys view piece_text_.
  std::vector<std::string> piece_text_;
  absl::flat_hash_map<std::string_view, int32_t> pieces_;
  // The byte token for each byte, -1 where there is none.
  std::array<int32_t, 256> byte_token_{};
  SpecialTokenSplitter special_tokens_;
  int32_t unk_id_ = -1;
  bool add_space_prefix_ = true;
};

}  // namespace kvserve
