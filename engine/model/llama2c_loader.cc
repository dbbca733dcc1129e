#include "engine/model/llama2c_loader.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/model/sentencepiece_tokenizer.h"

namespace kvserve {
namespace {

// Sequential reader over the checkpoint that refuses to read past the end.
class Cursor {
 public:
  Cursor(const std::vector<char>& bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  absl::Status Read(std::vector<float>* out, int64_t count, absl::string_view what) {
    const int64_t need = count * static_cast<int64_t>(sizeof(float));
    if (count < 0 || need > static_cast<int64_t>(bytes_.size()) - pos_) {
      return absl::InvalidArgumentError(
          absl::StrCat("llama2.c checkpoint ", path_, ": truncated in ", what, " (needs ", need,
                       " bytes at offset ", pos_, ", file has ", bytes_.size(), ")"));
    }
    out->resize(count);
    std::memcpy(out->data(), bytes_.data() + pos_, need);
    pos_ += need;
    return absl::OkStatus();
  }
  absl::Status Skip(int64_t floats, absl::string_view what) {
    std::vector<float> ignored;
    return Read(&ignored, floats, what);
  }
  // Splits a [layers][rows][cols] block into per-layer tensors.
  absl::Status ReadPerLayer(std::vector<LayerWeights>& layers,
                            std::vector<float> LayerWeights::*field, int64_t per_layer,
                            absl::string_view what) {
    for (LayerWeights& l : layers) {
      KVSERVE_RETURN_IF_ERROR(Read(&(l.*field), per_layer, what));
    }
    return absl::OkStatus();
  }
  int64_t remaining() const { return static_cast<int64_t>(bytes_.size()) - pos_; }

 private:
  const std::vector<char>& bytes_;
  const std::string& path_;
  int64_t pos_ = 7 * sizeof(int32_t);
};

}  // namespace

absl::StatusOr<LoadedModel> LoadLlama2cModel(const std::string& path,
                                             const std::string& tokenizer_path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open model file ", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int32_t h[7];
  if (bytes.size() < sizeof(h)) {
    return absl::InvalidArgumentError(absl::StrCat("llama2.c checkpoint ", path, ": too short"));
  }
  std::memcpy(h, bytes.data(), sizeof(h));

  LoadedModel m;
  m.format = "llama2c";
  ModelConfig& c = m.config;
  c.name = path.substr(path.find_last_of('/') + 1);
  c.dim = h[0];
  c.ffn_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.tied_embeddings = h[5] > 0;  // a negative vocab size marks an untied classifier
  c.vocab_size = h[5] == INT32_MIN ? 0 : std::abs(h[5]);
  c.context_length = h[6];
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  c.rope_dim = c.head_dim;
  c.rope_theta = 10000.0f;
  c.rms_eps = 1e-5f;
  c.rope_style = RopeStyle::kAdjacentPairs;
  if (c.n_heads > 0 && c.dim % c.n_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("llama2.c checkpoint ", path, ": dim ", c.dim,
                                                   " not divisible by n_heads ", c.n_heads));
  }
  if (auto s = c.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("llama2.c checkpoint ", path, ": ", s.message()));
  }

  // Check the total size before allocating anything large.
  const int64_t expected_floats = c.num_parameters() + c.n_layers * 2LL * c.dim + c.dim +
                                  int64_t{c.context_length} * c.head_dim;
  if (expected_floats * 4 > static_cast<int64_t>(bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat("llama2.c checkpoint ", path, ": ", bytes.size(),
                                                   " bytes, but its header needs ",
                                                   expected_floats * 4 + 28));
  }

  ModelWeights& w = m.weights;
  w.layers.resize(c.n_layers);
  Cursor cur(bytes, path);
  const int64_t d = c.dim;
  absl::Status s = cur.Read(&w.token_embedding, c.vocab_size * d, "token_embedding");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::attn_norm, d, "rms_att");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::wq, c.q_dim() * d, "wq");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::wk, c.kv_dim() * d, "wk");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::wv, c.kv_dim() * d, "wv");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::wo, d * c.q_dim(), "wo");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::ffn_norm, d, "rms_ffn");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::w_gate, c.ffn_dim * d, "w1");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::w_down, d * c.ffn_dim, "w2");
  if (s.ok()) s = cur.ReadPerLayer(w.layers, &LayerWeights::w_up, c.ffn_dim * d, "w3");
  if (s.ok()) s = cur.Read(&w.final_norm, d, "rms_final");
  // Legacy RoPE tables (real and imaginary halves) precede the optional classifier.
  if (s.ok()) s = cur.Skip(int64_t{c.context_length} * c.head_dim, "freq_cis");
  if (s.ok() && !c.tied_embeddings) s = cur.Read(&w.lm_head, c.vocab_size * d, "wcls");
  if (!s.ok()) return s;
  // The format has nothing after the weights: bytes left over mean the header's shape (layer
  // count, dims) disagrees with the tensors that follow it.
  if (cur.remaining() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "llama2.c checkpoint ", path, ": ", cur.remaining(), " bytes after the weights of ",
        c.n_layers, " layers; the header's shape disagrees with the file"));
  }

  if (!tokenizer_path.empty()) {
    auto tok = SentencePieceTokenizer::LoadLlama2c(tokenizer_path, c.vocab_size);
    if (!tok.ok()) return tok.status();
    m.tokenizer = std::move(*tok);
  }
  return m;
}

}  // namespace kvserve
