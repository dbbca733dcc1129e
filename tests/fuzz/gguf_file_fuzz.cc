// libFuzzer: the GGUF reader, then the llama loader on the same bytes (metadata, tensor table,
// dequantization, config checks, tokenizer construction).
#include <cstdint>
#include <vector>

#include "engine/model/gguf_file.h"
#include "engine/model/model_loader.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvserve;
  auto file = GgufFile::FromBytes(std::vector<uint8_t>(data, data + size));
  if (!file.ok()) return 0;
  const GgufFile& f = **file;
  for (const std::string& key : f.metadata_keys()) {
    const GgufValue* value = f.FindValue(key);
    KVSERVE_FUZZ_CHECK(value != nullptr);
    (void)GgufValueTypeName(*value);
    (void)f.GetUint32(key);
    (void)f.GetString(key);
    (void)f.GetStringArray(key);
    (void)f.GetFloat32Array(key);
    (void)f.GetInt32Array(key);
  }
  size_t dequantized = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    KVSERVE_FUZZ_CHECK(f.FindTensor(t.name) != nullptr);
    const auto bytes = f.TensorBytes(t);
    KVSERVE_FUZZ_CHECK(bytes.empty() || bytes.size() == t.num_bytes);
    // Dequantize what is small (the reader checked the sizes against the file already).
    if (t.num_elements <= (1u << 16) && dequantized < (1u << 20)) {
      dequantized += t.num_elements;
      auto values = f.ReadTensorF32(t);
      if (values.ok()) KVSERVE_FUZZ_CHECK(values->size() == t.num_elements);
    }
  }
  // The whole llama loader, from a file (it maps it).
  if (size <= (1u << 20)) {
    const std::string path = fuzz::WriteScratchFile(data, size, "model.gguf");
    (void)LoadModel({.model = path});
    (void)ReadContextLength({.model = path});
  }
  return 0;
}
