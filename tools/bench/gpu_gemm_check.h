#pragma once

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "engine/model/model_config.h"
#include "nlohmann/json.hpp"
#include "tools/bench/gpu_bench_options.h"

namespace kvserve::bench {

// The backend's linear layers through its own cuBLASLt wrapper (cuda::CublasLtGemm) against a
// plain cublasGemmEx on the same operands, for every projection of `config` at each prefill
// length and decode batch (and the LM head at the decode batches): the issue asks for >= 90 % of
// cuBLAS's rate. Prints a "gemm" line per shape with both times and rate_vs_cublas.
absl::Status RunGemmCheck(const ModelConfig& config, const GpuBenchOptions& options,
                          cudaStream_t stream, const nlohmann::json& common);

}  // namespace kvserve::bench
