#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/model/model_config.h"
#include "engine/model/weight_matrix.h"

namespace kvserve {

// Matrices are row-major [out][in] fp32, as every loader produces them (the CPU reference
// precision).
struct LayerWeights {
  std::vector<float> attn_norm;  // [dim]
  std::vector<float> wq;         // [n_heads * head_dim][dim]
  std::vector<float> wk;         // [n_kv_heads * head_dim][dim]
  std::vector<float> wv;         // [n_kv_heads * head_dim][dim]
  std::vector<float> wo;         // [dim][n_heads * head_dim]
  std::vector<float> ffn_norm;   // [dim]
  std::vector<float> w_gate;     // [ffn_dim][dim]
  std::vector<float> w_up;       // [ffn_dim][dim]
  std::vector<float> w_down;     // [dim][ffn_dim]
};

// One per-layer matrix or vector: its GGUF name, where it lives, and its [rows][cols] shape
// (rows == 1 for norm vectors). The one list loaders, checks and synthetic models share.
struct LayerTensor {
  const char* gguf_name;  // after the "blk.N." prefix
  std::vector<float> LayerWeights::*field;
  int64_t rows;
  int64_t cols;
};
std::vector<LayerTensor> LayerTensors(const ModelConfig& config);

struct ModelWeights {
  std::vector<float> token_embedding;  // [vocab][dim]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // [dim]
  std::vector<float> lm_head;     // [vocab][dim]; empty when tied to the embedding

  // Matrices kept in a ggml storage type rather than fp32, by GGUF name ("token_embd.weight",
  // "output.weight", "blk.3.attn_q.weight"); the matching fp32 field is then empty. The CPU
  // backend computes on them directly; DequantizeStored() expands them for other consumers.
  std::map<std::string, WeightMatrix> stored;

  const float* LmHead() const { return lm_head.empty() ? token_embedding.data() : lm_head.data(); }
  // Checks every tensor's size against the config (a stored matrix stands for its fp32 field).
  absl::Status CheckShapes(const ModelConfig& config) const;
  // Moves every stored matrix into its fp32 field, dequantized.
  void DequantizeStored(const ModelConfig& config);
  // Bytes the weights occupy as held: fp32 fields plus stored matrices.
  size_t HeldBytes() const;
};

// Every weight matrix of a model (embedding, LM head unless tied, each layer's seven): its GGUF
// name, fp32 field and [rows][cols] shape, in file order.
struct MatrixSlot {
  std::string gguf_name;
  std::vector<float>* field;
  int64_t rows;
  int64_t cols;
};
std::vector<MatrixSlot> MatrixSlots(const ModelConfig& config, ModelWeights& weights);

}  // namespace kvserve
