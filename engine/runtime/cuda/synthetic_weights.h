#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "engine/runtime/cuda/device_weights.h"

namespace kvserve::cuda {

// Fills `weights` with a synthetic model's seeded random weights directly on the device, no host
// copy: the values MakeSyntheticModel (engine/model/synthetic_model.cc) draws for the same config
// and seed, rounded to bf16. It mirrors that generator: splitmix64 element k of the stream is
// element k of the host's draws, in its order (embedding, each layer's matrices in LayerTensors
// order, LM head when untied); norms are 1. A gpu test checks the two agree.
absl::Status FillSyntheticWeights(const ModelConfig& config, uint64_t seed,
                                  const DeviceWeights& weights, cudaStream_t stream);

}  // namespace kvserve::cuda
