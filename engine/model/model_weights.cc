#include "engine/model/model_weights.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace kvserve {
namespace {

absl::Status Expect(absl::string_view name, const std::vector<float>& t, int64_t rows,
                    int64_t cols) {
  if (static_cast<int64_t>(t.size()) == rows * cols) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("weights: tensor ", name, " has ", t.size(),
                                                 " elements, expected ", rows, " x ", cols));
}

}  // namespace

std::vector<LayerTensor> LayerTensors(const ModelConfig& c) {
  return {{"attn_norm.weight", &LayerWeights::attn_norm, 1, c.dim},
          {"attn_q.weight", &LayerWeights::wq, c.q_dim(), c.dim},
          {"attn_k.weight", &LayerWeights::wk, c.kv_dim(), c.dim},
          {"attn_v.weight", &LayerWeights::wv, c.kv_dim(), c.dim},
          {"attn_output.weight", &LayerWeights::wo, c.dim, c.q_dim()},
          {"ffn_norm.weight", &LayerWeights::ffn_norm, 1, c.dim},
          {"ffn_gate.weight", &LayerWeights::w_gate, c.ffn_dim, c.dim},
          {"ffn_up.weight", &LayerWeights::w_up, c.ffn_dim, c.dim},
          {"ffn_down.weight", &LayerWeights::w_down, c.dim, c.ffn_dim}};
}

absl::Status ModelWeights::CheckShapes(const ModelConfig& c) const {
  if (auto s = Expect("token_embedding", token_embedding, c.vocab_size, c.dim); !s.ok()) return s;
  if (auto s = Expect("final_norm", final_norm, 1, c.dim); !s.ok()) return s;
  if (!c.tied_embeddings) {
    if (auto s = Expect("lm_head", lm_head, c.vocab_size, c.dim); !s.ok()) return s;
  }
  if (static_cast<int>(layers.size()) != c.n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights: ", layers.size(), " layers, expected ", c.n_layers));
  }
  for (int i = 0; i < c.n_layers; ++i) {
    for (const LayerTensor& t : LayerTensors(c)) {
      const std::string name = absl::StrCat("blk.", i, ".", t.gguf_name);
      if (auto s = Expect(name, layers[i].*t.field, t.rows, t.cols); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve
