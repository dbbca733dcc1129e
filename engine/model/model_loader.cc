#include "engine/model/model_loader.h"

#include <unistd.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/model/gguf_file.h"
#include "engine/model/gguf_llama_loader.h"
#include "engine/model/llama2c_loader.h"
#include "engine/model/synthetic_model.h"
#include "engine/model/weights_dtype.h"

namespace kvserve {
namespace {

constexpr std::string_view kSyntheticPrefix = "synthetic:";

int64_t AvailableMemoryBytes() {
  return static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGESIZE);
}

absl::StatusOr<LoadedModel> LoadModelAsStored(const ModelSource& source) {
  const std::string& path = source.model;
  if (path.starts_with(kSyntheticPrefix)) {
    return MakeSyntheticModel(path.substr(kSyntheticPrefix.size()), source.synthetic_seed,
                              AvailableMemoryBytes());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open model file '", path, "'"));
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) {
    if (!source.tokenizer.empty()) {
      return absl::InvalidArgumentError(
          "--tokenizer applies to llama2.c checkpoints only; a GGUF "
          "file carries its own tokenizer");
    }
    return LoadGgufLlamaModel(path);
  }
  return LoadLlama2cModel(path, source.tokenizer);
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(const ModelSource& source) {
  auto dtype = ParseWeightsDtype(source.weights_dtype);
  if (!dtype.ok()) return dtype.status();
  auto model = LoadModelAsStored(source);
  if (!model.ok()) return model.status();
  KVSERVE_RETURN_IF_ERROR(ConvertWeights(model->config, *dtype, &model->weights));
  return model;
}

absl::StatusOr<int> ReadContextLength(const ModelSource& source) {
  const std::string& path = source.model;
  if (path.starts_with(kSyntheticPrefix)) {
    auto config = SyntheticModelConfig(path.substr(kSyntheticPrefix.size()));
    if (!config.ok()) return config.status();
    return config->context_length;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open model file '", path, "'"));
  char header[28] = {};
  in.read(header, sizeof(header));
  if (in.gcount() >= 4 && std::memcmp(header, "GGUF", 4) == 0) {
    auto file = GgufFile::Open(path);
    if (!file.ok()) return file.status();
    auto n = (*file)->GetUint32("llama.context_length");
    if (!n.ok()) return n.status();
    if (*n < 1 || *n > static_cast<uint32_t>(INT32_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat("gguf: llama.context_length = ", *n));
    }
    return static_cast<int>(*n);
  }
  if (in.gcount() != sizeof(header)) {
    return absl::InvalidArgumentError(absl::StrCat("llama2.c checkpoint ", path, ": too short"));
  }
  int32_t seq_len = 0;
  std::memcpy(&seq_len, header + 24, sizeof(seq_len));
  if (seq_len < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("llama2.c checkpoint ", path, ": context length ", seq_len));
  }
  return seq_len;
}

}  // namespace kvserve
