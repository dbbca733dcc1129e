#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/model_weights.h"
#include "engine/runtime/backend.h"

namespace kvserve {

// The CUDA backend's default share of the device memory free at load.
inline constexpr double kDefaultGpuMemoryFraction = 0.9;

// "cpu", or "cuda" where this build has it; anything else is InvalidArgument naming the choices.
// `threads`: the CPU backend's worker threads (<= 0: one per hardware thread).
// `gpu_memory_fraction`: the CUDA backend's memory pool, as a share of the device's free memory.
// `cuda_graphs`: whether the CUDA backend replays decode steps as CUDA graphs (--cuda-graphs).
// "cuda" without a device is FailedPrecondition ("backend 'cuda': no CUDA device found"); in a
// build without CUDA it is Unimplemented, naming the cuda preset.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(
    const std::string& name, const ModelConfig& config, ModelWeights weights, int threads = 0,
    double gpu_memory_fraction = kDefaultGpuMemoryFraction, bool cuda_graphs = true);

// synthetic:NAME (`model` is NAME) on backend `name`, seeded with `seed`. The CUDA backend makes
// the weights on the device directly (no host copy of, say, llama-3.1-8b's 32 GB of fp32); the CPU
// backend takes MakeSyntheticModel's host weights.
absl::StatusOr<std::unique_ptr<Backend>> CreateSyntheticBackend(
    const std::string& name, const std::string& model, uint64_t seed, int threads = 0,
    double gpu_memory_fraction = kDefaultGpuMemoryFraction, bool cuda_graphs = true);

}  // namespace kvserve
