#include "engine/model/gguf_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "engine/model/bpe_tokenizer.h"
#include "engine/model/sentencepiece_tokenizer.h"

namespace kvserve {
namespace {

// Special ids default to -1 (none) when the file does not name them.
absl::StatusOr<int32_t> OptionalId(const GgufFile& f, const char* key) {
  if (!f.Has(key)) return -1;
  auto v = f.GetUint32(key);
  if (!v.ok()) return v.status();
  return static_cast<int32_t>(*v);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeGgufTokenizer(const GgufFile& f, int vocab_size) {
  auto model = f.GetString("tokenizer.ggml.model");
  auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
  auto bos = OptionalId(f, "tokenizer.ggml.bos_token_id");
  auto eos = OptionalId(f, "tokenizer.ggml.eos_token_id");
  for (const absl::Status& s : {model.status(), tokens.status(), bos.status(), eos.status()}) {
    if (!s.ok()) return s;
  }
  if (static_cast<int>(tokens->size()) != vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("gguf: tokenizer has ", tokens->size(),
                                                   " tokens but token_embd has ", vocab_size,
                                                   " rows"));
  }
  std::vector<int32_t> types;
  if (f.Has("tokenizer.ggml.token_type")) {
    auto t = f.GetInt32Array("tokenizer.ggml.token_type");
    if (!t.ok()) return t.status();
    types = std::move(*t);
  }

  if (*model == "gpt2") {
    auto merges = f.GetStringArray("tokenizer.ggml.merges");
    auto pre = f.GetStringOr("tokenizer.ggml.pre", "gpt2");
    auto add_bos = f.GetBoolOr("tokenizer.ggml.add_bos_token", false);
    for (const absl::Status& s : {merges.status(), pre.status(), add_bos.status()}) {
      if (!s.ok()) return s;
    }
    auto tok = BpeTokenizer::Create({.tokens = {tokens->begin(), tokens->end()},
                                     .token_types = std::move(types),
                                     .merges = {merges->begin(), merges->end()},
                                     .pre = *pre,
                                     .bos_id = *bos,
                                     .eos_id = *eos,
                                     .add_bos = *add_bos});
    if (!tok.ok()) return tok.status();
    return std::unique_ptr<Tokenizer>(std::move(*tok));
  }
  if (*model == "llama") {
    auto scores = f.GetFloat32Array("tokenizer.ggml.scores");
    auto unk = OptionalId(f, "tokenizer.ggml.unknown_token_id");
    auto add_bos = f.GetBoolOr("tokenizer.ggml.add_bos_token", true);
    auto add_space = f.GetBoolOr("tokenizer.ggml.add_space_prefix", true);
    for (const absl::Status& s :
         {scores.status(), unk.status(), add_bos.status(), add_space.status()}) {
      if (!s.ok()) return s;
    }
    auto tok = SentencePieceTokenizer::Create({.tokens = {tokens->begin(), tokens->end()},
                                               .scores = std::move(*scores),
                                               .token_types = std::move(types),
                                               .bos_id = *bos,
                                               .eos_id = *eos,
                                               .unk_id = *unk,
                                               .add_bos = *add_bos,
                                               .add_space_prefix = *add_space});
    if (!tok.ok()) return tok.status();
    return std::unique_ptr<Tokenizer>(std::move(*tok));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("gguf: tokenizer model '", *model, "' is not supported (gpt2, llama)"));
}

}  // namespace kvserve
