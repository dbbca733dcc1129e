#pragma once

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "nlohmann/json.hpp"
#include "tools/bench/gpu_bench_options.h"

namespace kvserve::bench {

// The flash-attention prefill kernel alone, one layer of `config`'s shape, at each prefill
// length: what the issue compares with PyTorch's scaled_dot_product_attention. One sequence, its
// K/V already in contiguous pages (the backend's paged layout), causal. Prints a
// "prefill_attention" line per length.
absl::Status RunPrefillAttentionBench(const ModelConfig& config, const GpuBenchOptions& options,
                                      cudaStream_t stream, const nlohmann::json& common);

}  // namespace kvserve::bench
