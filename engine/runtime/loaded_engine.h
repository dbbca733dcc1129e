#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/loaded_model.h"
#include "engine/model/model_loader.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/backend_factory.h"

namespace kvserve {

// A loaded model and (when asked for) the backend running it: what the CLI, the benches and the
// server each start from.
struct LoadedEngine {
  LoadedModel model;  // its weights moved into `backend` when there is one
  std::unique_ptr<Backend> backend;
};

// Loads `source` and, unless `backend` is empty, creates that backend ("cpu", "cuda") over the
// model's weights with `threads` workers (<= 0: one per hardware thread) and, on CUDA,
// `gpu_memory_fraction` of the device's free memory. synthetic:NAME on "cuda" never builds host
// weights: the backend draws them on the device, and `model` then carries only the config, name
// and format ("synthetic"). `kv_dtype` (--kv-dtype: f32, f16, bf16) sets how the backend stores
// KV; empty keeps its default. `cuda_graphs`: CUDA decode steps as CUDA graphs. Errors name the
// file, the backend or the flag.
absl::StatusOr<LoadedEngine> LoadEngine(const ModelSource& source, const std::string& backend,
                                        int threads = 0,
                                        double gpu_memory_fraction = kDefaultGpuMemoryFraction,
                                        const std::string& kv_dtype = "", bool cuda_graphs = true);

// --kv-dtype on a backend made otherwise: empty keeps its default; else ParseKvDtype and
// Backend::SetKvDtype, whose errors name the flag.
absl::Status ApplyKvDtype(Backend& backend, const std::string& kv_dtype);

}  // namespace kvserve
