#include "engine/model/gguf_llama_loader.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/base/status_macros.h"
#include "engine/model/gguf_file.h"
#include "engine/model/gguf_tokenizer.h"

namespace kvserve {
namespace {

// Reads the `llama` hyperparameters; optional keys default as llama.cpp does.
absl::StatusOr<ModelConfig> ReadConfig(const GgufFile& f) {
  ModelConfig c;
  auto u32 = [&](const char* key, int* out) -> absl::Status {
    auto v = f.GetUint32(key);
    if (!v.ok()) return v.status();
    if (*v > static_cast<uint32_t>(INT32_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat("gguf: ", key, " = ", *v, " is too large"));
    }
    *out = static_cast<int>(*v);
    return absl::OkStatus();
  };
  auto name = f.GetStringOr("general.name", "");
  if (!name.ok()) return name.status();
  c.name = *name;
  for (auto [key, field] : {std::pair{"llama.block_count", &c.n_layers},
                            {"llama.embedding_length", &c.dim},
                            {"llama.feed_forward_length", &c.ffn_dim},
                            {"llama.attention.head_count", &c.n_heads},
                            {"llama.context_length", &c.context_length}}) {
    KVSERVE_RETURN_IF_ERROR(u32(key, field));
  }
  c.n_kv_heads = c.n_heads;
  if (f.Has("llama.attention.head_count_kv")) {
    KVSERVE_RETURN_IF_ERROR(u32("llama.attention.head_count_kv", &c.n_kv_heads));
  }
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  if (f.Has("llama.attention.key_length")) {
    KVSERVE_RETURN_IF_ERROR(u32("llama.attention.key_length", &c.head_dim));
  }
  c.rope_dim = c.head_dim;
  if (f.Has("llama.rope.dimension_count")) {
    KVSERVE_RETURN_IF_ERROR(u32("llama.rope.dimension_count", &c.rope_dim));
  }
  auto theta = f.GetFloat32Or("llama.rope.freq_base", 10000.0f);
  auto eps = f.GetFloat32("llama.attention.layer_norm_rms_epsilon");
  if (!theta.ok()) return theta.status();
  if (!eps.ok()) return eps.status();
  c.rope_theta = *theta;
  c.rms_eps = *eps;
  // llama.cpp's converter permutes Q/K rows so that RoPE rotates adjacent pairs.
  c.rope_style = RopeStyle::kAdjacentPairs;
  const GgufTensorInfo* embed = f.FindTensor("token_embd.weight");
  if (embed == nullptr) return absl::InvalidArgumentError("gguf: tensor token_embd.weight missing");
  c.vocab_size =
      embed->dims.size() == 2 && embed->dims[1] < (1u << 31) ? static_cast<int>(embed->dims[1]) : 0;
  c.tied_embeddings = f.FindTensor("output.weight") == nullptr;
  if (auto s = c.Validate(); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("gguf: ", s.message()));
  return c;
}

// Reads one tensor after checking its ggml dims against [cols, rows]: a matrix (rows > 1) of a
// type the CPU kernels compute on, other than F32, goes to `stored` as is; the rest is
// dequantized into `out`.
absl::Status ReadTensor(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols,
                        std::vector<float>* out, std::map<std::string, WeightMatrix>* stored) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("gguf: tensor ", name, " missing"));
  const std::vector<uint64_t> want =
      rows == 1 ? std::vector<uint64_t>{static_cast<uint64_t>(cols)}
                : std::vector<uint64_t>{static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
  if (t->dims != want) {
    return absl::InvalidArgumentError(absl::StrCat("gguf: tensor ", name, " has dims [",
                                                   absl::StrJoin(t->dims, ", "), "], expected [",
                                                   absl::StrJoin(want, ", "), "]"));
  }
  if (rows > 1 && t->type != GgmlType::kF32 && KernelFormat(t->type).has_value()) {
    auto m =
        WrapMatrix(t->type, rows, cols, f.TensorBytes(*t), absl::StrCat("gguf: tensor ", name));
    if (!m.ok()) return m.status();
    (*stored)[name] = *std::move(m);
    f.ReleaseTensorPages(*t);
    return absl::OkStatus();
  }
  auto data = f.ReadTensorF32(*t);
  if (!data.ok()) return data.status();
  *out = std::move(*data);
  f.ReleaseTensorPages(*t);
  return absl::OkStatus();
}

// A tensor of a block at or beyond llama.block_count means the layer count disagrees with the
// tensors; loading would silently drop layers.
absl::Status CheckNoExtraBlocks(const GgufFile& f, int n_layers) {
  for (const GgufTensorInfo& t : f.tensors()) {
    absl::string_view name = t.name;
    if (!absl::ConsumePrefix(&name, "blk.")) continue;
    const size_t dot = name.find('.');
    uint32_t block = 0;
    if (dot == absl::string_view::npos || !absl::SimpleAtoi(name.substr(0, dot), &block)) continue;
    if (block >= static_cast<uint32_t>(n_layers)) {
      return absl::InvalidArgumentError(absl::StrCat("gguf: tensor ", t.name, " belongs to block ",
                                                     block, ", but llama.block_count is ",
                                                     n_layers));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadedModel> LoadGgufLlamaModel(const std::string& path) {
  auto file = GgufFile::Open(path);
  if (!file.ok()) return file.status();
  const GgufFile& f = **file;
  auto arch = f.GetString("general.architecture");
  if (!arch.ok()) return arch.status();
  if (*arch != "llama") {
    return absl::InvalidArgumentError(
        absl::StrCat("gguf: architecture '", *arch, "' is not supported (only 'llama')"));
  }
  auto config = ReadConfig(f);
  if (!config.ok()) return config.status();
  KVSERVE_RETURN_IF_ERROR(CheckNoExtraBlocks(f, config->n_layers));

  LoadedModel m;
  m.format = "gguf";
  m.config = *config;
  const ModelConfig& c = m.config;
  ModelWeights& w = m.weights;
  absl::Status s =
      ReadTensor(f, "token_embd.weight", c.vocab_size, c.dim, &w.token_embedding, &w.stored);
  if (s.ok()) s = ReadTensor(f, "output_norm.weight", 1, c.dim, &w.final_norm, &w.stored);
  if (s.ok() && !c.tied_embeddings)
    s = ReadTensor(f, "output.weight", c.vocab_size, c.dim, &w.lm_head, &w.stored);
  w.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers && s.ok(); ++i) {
    LayerWeights& l = w.layers[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    for (const LayerTensor& t : LayerTensors(c)) {
      s = ReadTensor(f, p + t.gguf_name, t.rows, t.cols, &(l.*t.field), &w.stored);
      if (!s.ok()) break;
    }
  }
  if (!s.ok()) return s;

  auto tokenizer = MakeGgufTokenizer(f, c.vocab_size);
  if (!tokenizer.ok()) return tokenizer.status();
  m.tokenizer = std::move(*tokenizer);
  auto chat = f.GetStringOr("tokenizer.chat_template", "");
  if (!chat.ok()) return chat.status();
  m.chat_template = *chat;
  return m;
}

}  // namespace kvserve
