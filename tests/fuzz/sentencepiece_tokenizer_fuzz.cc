// libFuzzer: SentencePiece-style encoding (stories260K's tok512.bin) of arbitrary bytes; ids stay
// in the vocabulary and decoding never fails.
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/model/prompt_encoding.h"
#include "engine/model/sentencepiece_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  static const std::unique_ptr<SentencePieceTokenizer> tokenizer = [] {
    auto tok =
        SentencePieceTokenizer::LoadLlama2c(fuzz::TestDataPath("stories260K/tok512.bin"), 512);
    KVSERVE_FUZZ_CHECK(tok.ok());
    return std::move(*tok);
  }();
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tokenizer->Encode(text);
  for (int32_t id : ids) KVSERVE_FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
  (void)tokenizer->Decode(ids);
  (void)EncodePromptText(*tokenizer, text);
  return 0;
}
