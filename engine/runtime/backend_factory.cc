#include "engine/runtime/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "engine/model/model_loader.h"
#include "engine/runtime/cpu/cpu_backend.h"
#ifdef KVSERVE_HAS_CUDA_BACKEND
#include "engine/runtime/cuda/cuda_backend.h"
#include "engine/runtime/cuda/cuda_device.h"
#endif

namespace kvserve {
namespace {

absl::Status UnknownBackend(const std::string& name) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown backend '", name, "' (choices: cpu, cuda)"));
}

#ifdef KVSERVE_HAS_CUDA_BACKEND
absl::Status NoCudaDevice() {
  return absl::FailedPreconditionError("backend 'cuda': no CUDA device found");
}
#else
absl::Status NoCudaBuild() {
  return absl::UnimplementedError(
      "backend 'cuda': this build has no CUDA backend; configure with the cuda preset");
}
#endif

template <typename T>
absl::StatusOr<std::unique_ptr<Backend>> AsBackend(absl::StatusOr<std::unique_ptr<T>> created) {
  if (!created.ok()) return created.status();
  return std::unique_ptr<Backend>(*std::move(created));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const ModelConfig& config,
                                                       ModelWeights weights, int threads,
                                                       double gpu_memory_fraction,
                                                       [[maybe_unused]] bool cuda_graphs) {
  if (name == "cpu") return AsBackend(CpuBackend::Create(config, std::move(weights), threads));
  if (name != "cuda") return UnknownBackend(name);
#ifdef KVSERVE_HAS_CUDA_BACKEND
  if (cuda::CudaDeviceCount() <= 0) return NoCudaDevice();
  weights.DequantizeStored(config);  // the CUDA backend uploads fp32 host weights as bf16
  return AsBackend(CudaBackend::Create(
      config, std::move(weights),
      {.gpu_memory_fraction = gpu_memory_fraction, .cuda_graphs = cuda_graphs}));
#else
  return NoCudaBuild();
#endif
}

absl::StatusOr<std::unique_ptr<Backend>> CreateSyntheticBackend(const std::string& name,
                                                                const std::string& model,
                                                                uint64_t seed, int threads,
                                                                double gpu_memory_fraction,
                                                                [[maybe_unused]] bool cuda_graphs) {
  if (name == "cpu") {
    auto loaded = LoadModel({.model = absl::StrCat("synthetic:", model), .synthetic_seed = seed});
    if (!loaded.ok()) return loaded.status();
    return AsBackend(CpuBackend::Create(loaded->config, std::move(loaded->weights), threads));
  }
  if (name != "cuda") return UnknownBackend(name);
#ifdef KVSERVE_HAS_CUDA_BACKEND
  if (cuda::CudaDeviceCount() <= 0) return NoCudaDevice();
  return AsBackend(CudaBackend::CreateSynthetic(
      model, seed, {.gpu_memory_fraction = gpu_memory_fraction, .cuda_graphs = cuda_graphs}));
#else
  return NoCudaBuild();
#endif
}

}  // namespace kvserve
