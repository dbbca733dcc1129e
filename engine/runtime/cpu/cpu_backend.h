#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/backend.h"

namespace kvserve {

// The fp32 reference backend: OpenBLAS GEMMs for the linear layers, exact softmax attention.
class CpuBackend : public Backend {
 public:
  // Takes the weights; fuses Q/K/V and gate/up into single matrices so each is one GEMM.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const ModelConfig& config,
                                                            ModelWeights weights);

  std::string_view name() const override { return "cpu"; }
  const ModelConfig& config() const override { return config_; }
  absl::Status Forward(std::span<const SequenceChunk> batch, std::vector<float>* logits) override;

 private:
  struct Layer {
    std::vector<float> attn_norm, wqkv, wo, ffn_norm, w_gate_up, w_down;
  };
  // Per-step activations, grown to the largest step seen and reused.
  struct Scratch {
    std::vector<float> x, xn, qkv, q, attn, ffn, gate_up, rope_cos, rope_sin, scores, keys, values;
    std::vector<int32_t> positions;
  };

  CpuBackend(const ModelConfig& config, ModelWeights weights);
  absl::Status Validate(std::span<const SequenceChunk> batch) const;
  void Attention(std::span<const SequenceChunk> batch, int layer);

  ModelConfig config_;
  std::vector<float> token_embedding_, final_norm_, lm_head_;  // lm_head_ empty when tied
  std::vector<Layer> layers_;
  Scratch s_;
};

}  // namespace kvserve
