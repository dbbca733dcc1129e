#include "engine/model/model_weights.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

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

std::vector<MatrixSlot> MatrixSlots(const ModelConfig& c, ModelWeights& w) {
  std::vector<MatrixSlot> slots = {{"token_embd.weight", &w.token_embedding, c.vocab_size, c.dim}};
  if (!c.tied_embeddings) slots.push_back({"output.weight", &w.lm_head, c.vocab_size, c.dim});
  for (int i = 0; i < static_cast<int>(w.layers.size()); ++i) {
    for (const LayerTensor& t : LayerTensors(c)) {
      if (t.rows == 1) continue;  // norm vectors stay fp32
      slots.push_back(
          {absl::StrCat("blk.", i, ".", t.gguf_name), &(w.layers[i].*t.field), t.rows, t.cols});
    }
  }
  return slots;
}

void ModelWeights::DequantizeStored(const ModelConfig& c) {
  for (const MatrixSlot& slot : MatrixSlots(c, *this)) {
    auto it = stored.find(slot.gguf_name);
    if (it == stored.end()) continue;
    *slot.field = DequantizeMatrix(it->second);
    stored.erase(it);
  }
}

size_t ModelWeights::HeldBytes() const {
  size_t bytes = (token_embedding.size() + final_norm.size() + lm_head.size()) * sizeof(float);
  for (const LayerWeights& l : layers) {
    for (const std::vector<float>* v :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      bytes += v->size() * sizeof(float);
  }
  for (const auto& [name, m] : stored) bytes += m.bytes.size();
  return bytes;
}

absl::Status ModelWeights::CheckShapes(const ModelConfig& c) const {
  for (const auto& [name, m] : stored) {
    if (m.bytes.size() != static_cast<size_t>(m.rows) * m.row_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights: stored tensor ", name, " holds ", m.bytes.size(), " bytes"));
    }
  }
  // A stored matrix checks its shape; its fp32 field must then be empty.
  auto expect = [&](const std::string& name, const std::vector<float>& t, int64_t rows,
                    int64_t cols) -> absl::Status {
    auto it = stored.find(name);
    if (it == stored.end()) return Expect(name, t, rows, cols);
    if (it->second.rows == rows && it->second.cols == cols && t.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("weights: stored tensor ", name, " is ",
                                                   it->second.rows, " x ", it->second.cols,
                                                   ", expected ", rows, " x ", cols));
  };
  KVSERVE_RETURN_IF_ERROR(expect("token_embd.weight", token_embedding, c.vocab_size, c.dim));
  KVSERVE_RETURN_IF_ERROR(Expect("final_norm", final_norm, 1, c.dim));
  if (!c.tied_embeddings) {
    KVSERVE_RETURN_IF_ERROR(expect("output.weight", lm_head, c.vocab_size, c.dim));
  }
  if (static_cast<int>(layers.size()) != c.n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights: ", layers.size(), " layers, expected ", c.n_layers));
  }
  for (int i = 0; i < c.n_layers; ++i) {
    for (const LayerTensor& t : LayerTensors(c)) {
      const std::string name = absl::StrCat("blk.", i, ".", t.gguf_name);
      KVSERVE_RETURN_IF_ERROR(expect(name, layers[i].*t.field, t.rows, t.cols));
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve
