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
    const LayerWeights& l = layers[i];
    const std::string p = absl::StrCat("layer ", i, " ");
    for (auto [name, t, rows, cols] : {std::tuple{"attn_norm", &l.attn_norm, 1, c.dim},
                                       {"wq", &l.wq, c.q_dim(), c.dim},
                                       {"wk", &l.wk, c.kv_dim(), c.dim},
                                       {"wv", &l.wv, c.kv_dim(), c.dim},
                                       {"wo", &l.wo, c.dim, c.q_dim()},
                                       {"ffn_norm", &l.ffn_norm, 1, c.dim},
                                       {"w_gate", &l.w_gate, c.ffn_dim, c.dim},
                                       {"w_up", &l.w_up, c.ffn_dim, c.dim},
                                       {"w_down", &l.w_down, c.dim, c.ffn_dim}}) {
      if (auto s = Expect(p + name, *t, rows, cols); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve
