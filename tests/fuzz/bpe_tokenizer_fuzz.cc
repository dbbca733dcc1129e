// libFuzzer: GPT-2 byte-level BPE (SmolLM2's vocabulary and merges, from tests/data's
// tokenizer.json) on arbitrary bytes. Byte-level BPE is lossless: valid UTF-8 must decode back to
// itself.
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/model/bpe_tokenizer.h"
#include "engine/model/utf8.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/hf_tokenizer_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  static const std::unique_ptr<BpeTokenizer> tokenizer = [] {
    auto options = testing::BpeOptionsFromHfTokenizerJson(
        fuzz::TestDataPath("smollm2-135m-instruct/tokenizer.json"), "smollm", 1, 2);
    KVSERVE_FUZZ_CHECK(options.ok());
    auto tok = BpeTokenizer::Create(std::move(*options));
    KVSERVE_FUZZ_CHECK(tok.ok());
    return std::move(*tok);
  }();
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tokenizer->Encode(text);
  std::string bytes;
  for (int32_t id : ids) {
    KVSERVE_FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
    bytes += tokenizer->TokenBytes(id);
  }
  if (IsValidUtf8(text)) KVSERVE_FUZZ_CHECK(bytes == text);
  return 0;
}
