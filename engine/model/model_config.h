#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace kvserve {

// Which channel pairs RoPE rotates within a head.
enum class RopeStyle {
  kAdjacentPairs,  // (2i, 2i+1): llama2.c and GGUF `llama` (whose Q/K rows are permuted for it)
  kHalfSplit,      // (i, i + d/2): Hugging Face / NeoX
};

// Hyperparameters of a Llama-family decoder with grouped-query attention.
struct ModelConfig {
  std::string architecture = "llama";
  std::string name;
  int n_layers = 0;
  int dim = 0;         // hidden size
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (GQA groups)
  int head_dim = 0;
  int ffn_dim = 0;
  int vocab_size = 0;
  int context_length = 0;
  int rope_dim = 0;  // channels of each head that RoPE rotates (== head_dim for Llama)
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kAdjacentPairs;
  bool tied_embeddings = true;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int group_size() const { return n_heads / n_kv_heads; }
  // Parameters of the weight matrices (embedding and LM head included).
  int64_t num_parameters() const;

  // Checks every field for consistency and sane bounds; the message names the field.
  absl::Status Validate() const;
};

}  // namespace kvserve
