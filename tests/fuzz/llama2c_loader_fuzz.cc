// libFuzzer: the llama2.c checkpoint loader (header checks, sizes, per-layer reads) and the
// llama2.c tokenizer file reader, each from a scratch file.
#include <cstdint>
#include <string_view>

#include "engine/model/llama2c_loader.h"
#include "engine/model/model_loader.h"
#include "engine/model/sentencepiece_tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  // The first byte picks the reader; the rest is the file.
  if (size < 1) return 0;
  const bool tokenizer_file = data[0] & 1;
  const std::string path = fuzz::WriteScratchFile(data + 1, size - 1, "llama2c.bin");
  if (tokenizer_file) {
    const int vocab = 1 + (data[0] >> 1);  // 1..128
    auto tok = SentencePieceTokenizer::LoadLlama2c(path, vocab);
    if (tok.ok()) {
      KVSERVE_FUZZ_CHECK((*tok)->vocab_size() == vocab);
      const auto ids = (*tok)->Encode("Once upon a time");
      (void)(*tok)->Decode(ids);
    }
    return 0;
  }
  auto model = LoadLlama2cModel(path, "");
  if (model.ok()) {
    KVSERVE_FUZZ_CHECK(static_cast<int>(model->weights.layers.size()) == model->config.n_layers);
    auto context = ReadContextLength({.model = path});
    KVSERVE_FUZZ_CHECK(context.ok() && *context == model->config.context_length);
  }
  return 0;
}
