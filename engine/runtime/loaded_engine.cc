#include "engine/runtime/loaded_engine.h"

#include <utility>

#include "engine/base/status_macros.h"
#include "engine/model/synthetic_model.h"

namespace kvserve {
namespace {

constexpr std::string_view kSyntheticPrefix = "synthetic:";

// synthetic:NAME on the CUDA backend: llama-3.1-8b's host fp32 copy alone would be 32 GB, so the
// backend makes the weights on the device and the model keeps what LoadModel would describe,
// minus the weights.
absl::StatusOr<LoadedEngine> LoadSyntheticOnDevice(const std::string& name, const ModelSource& s,
                                                   int threads, double gpu_memory_fraction,
                                                   bool cuda_graphs) {
  auto config = SyntheticModelConfig(name);
  if (!config.ok()) return config.status();
  auto backend = CreateSyntheticBackend("cuda", name, s.synthetic_seed, threads,
                                        gpu_memory_fraction, cuda_graphs);
  if (!backend.ok()) return backend.status();
  LoadedEngine engine;
  engine.model.config = *std::move(config);
  engine.model.format = "synthetic";
  engine.backend = *std::move(backend);
  return engine;
}

// The model and, unless `backend` is empty, that backend with its own defaults.
absl::StatusOr<LoadedEngine> LoadWithBackendDefaults(const ModelSource& source,
                                                     const std::string& backend, int threads,
                                                     double gpu_memory_fraction, bool cuda_graphs) {
  if (backend == "cuda" && source.model.starts_with(kSyntheticPrefix)) {
    return LoadSyntheticOnDevice(source.model.substr(kSyntheticPrefix.size()), source, threads,
                                 gpu_memory_fraction, cuda_graphs);
  }
  auto model = LoadModel(source);
  if (!model.ok()) return model.status();
  LoadedEngine engine{.model = *std::move(model), .backend = nullptr};
  if (backend.empty()) return engine;
  auto created = CreateBackend(backend, engine.model.config, std::move(engine.model.weights),
                               threads, gpu_memory_fraction, cuda_graphs);
  if (!created.ok()) return created.status();
  engine.backend = *std::move(created);
  return engine;
}

}  // namespace

absl::StatusOr<LoadedEngine> LoadEngine(const ModelSource& source, const std::string& backend,
                                        int threads, double gpu_memory_fraction,
                                        const std::string& kv_dtype, bool cuda_graphs) {
  // A bad flag fails before the (slow) load.
  if (!kv_dtype.empty()) KVSERVE_RETURN_IF_ERROR(ParseKvDtype(kv_dtype).status());
  auto engine = LoadWithBackendDefaults(source, backend, threads, gpu_memory_fraction, cuda_graphs);
  if (engine.ok() && engine->backend != nullptr) {
    KVSERVE_RETURN_IF_ERROR(ApplyKvDtype(*engine->backend, kv_dtype));
  }
  return engine;
}

absl::Status ApplyKvDtype(Backend& backend, const std::string& kv_dtype) {
  if (kv_dtype.empty()) return absl::OkStatus();
  auto dtype = ParseKvDtype(kv_dtype);
  if (!dtype.ok()) return dtype.status();
  return backend.SetKvDtype(*dtype);
}

}  // namespace kvserve
