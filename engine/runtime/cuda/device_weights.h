#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/cuda/device_memory_pool.h"
#include "kernels/bf16.h"

namespace kvserve::cuda {

// One layer's bf16 weights on the device, fused as the CPU backend fuses them so each is one GEMM:
// wqkv = [wq; wk; wv] ([q_dim + 2 kv_dim][dim]) and w_gate_up = [w_gate; w_up] ([2 ffn][dim]).
struct DeviceLayerWeights {
  kernels::Bf16* attn_norm = nullptr;  // [dim]
  kernels::Bf16* wqkv = nullptr;
  kernels::Bf16* wo = nullptr;  // [dim][q_dim]
  kernels::Bf16* ffn_norm = nullptr;
  kernels::Bf16* w_gate_up = nullptr;
  kernels::Bf16* w_down = nullptr;  // [dim][ffn]

  // Where the host tensor `field` (one of LayerTensors) lives inside the fused layout.
  kernels::Bf16* Destination(std::vector<float> LayerWeights::*field,
                             const ModelConfig& config) const;
};

struct DeviceWeights {
  kernels::Bf16* token_embedding = nullptr;  // [vocab][dim]
  kernels::Bf16* final_norm = nullptr;       // [dim]
  kernels::Bf16* lm_head = nullptr;          // [vocab][dim]; the embedding when tied
  std::vector<DeviceLayerWeights> layers;
};

// Carves every tensor out of the pool's persistent memory (untied LM head only when `own_lm_head`).
absl::StatusOr<DeviceWeights> AllocateDeviceWeights(const ModelConfig& config, bool own_lm_head,
                                                    DeviceMemoryPool& pool);

// Converts the host fp32 weights to bf16 into `device`, tensor by tensor, freeing each host tensor
// once copied so the host peak stays one tensor above the model.
absl::Status UploadWeights(ModelWeights host, const ModelConfig& config,
                           const DeviceWeights& device);

}  // namespace kvserve::cuda
