#include "engine/runtime/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "engine/runtime/cpu/cpu_backend.h"

namespace kvserve {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const ModelConfig& config,
                                                       ModelWeights weights, int threads) {
  if (name == "cpu") {
    auto backend = CpuBackend::Create(config, std::move(weights), threads);
    if (!backend.ok()) return backend.status();
    return std::unique_ptr<Backend>(std::move(*backend));
  }
  if (name == "cuda") {
    return absl::UnimplementedError(
        "backend 'cuda' is not available in this build yet (the CUDA backend is issue #6); use "
        "--backend cpu");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown backend '", name, "' (choices: cpu, cuda)"));
}

}  // namespace kvserve
