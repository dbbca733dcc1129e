// libFuzzer: GPT-2 byte-level BPE (SmolLM2's vocabulary and merges, from tests/data's
// tokenizer.json) on arbitrary bytes. Byte-level BPE is lossless: valid UTF-8 decodes back to
// itself, less the bytes the vocabulary lacks.
#include <cstdint>
#include <cstdio>
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
  // Bytes the vocabulary has no token for are dropped, as Hugging Face's tokenizer drops them
  // (SmolLM2 lacks 21 of the 256, e.g. 0x04 and 0xff).
  static const std::string dropped = [] {
    std::string bytes;
    for (int b = 0; b < 256; ++b) {
      if (tokenizer->Encode(std::string(1, static_cast<char>(b))).empty())
        bytes += static_cast<char>(b);
    }
    return bytes;
  }();
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tokenizer->Encode(text);
  std::string bytes;
  for (int32_t id : ids) {
    KVSERVE_FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
    bytes += tokenizer->TokenBytes(id);
  }
  std::string expected;
  for (char c : text) {
    if (dropped.find(c) == std::string::npos) expected += c;
  }
  if (IsValidUtf8(text) && bytes != expected) {
    std::fprintf(stderr, "round trip: %zu bytes in, %zu out; ids:", text.size(), bytes.size());
    for (int32_t id : ids) std::fprintf(stderr, " %d", id);
    std::fprintf(stderr, "\n");
    KVSERVE_FUZZ_CHECK(bytes == expected);
  }
  return 0;
}
