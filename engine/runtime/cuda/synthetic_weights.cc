#include "engine/runtime/cuda/synthetic_weights.h"

#include <cmath>

#include "engine/base/status_macros.h"
#include "engine/runtime/cuda/cuda_status.h"
#include "engine/runtime/cuda/synthetic_fill.h"

namespace kvserve::cuda {

absl::Status FillSyntheticWeights(const ModelConfig& c, uint64_t seed, const DeviceWeights& w,
                                  cudaStream_t stream) {
  uint64_t drawn = 0;  // draws the host generator has made before the next tensor
  auto uniform = [&](kernels::Bf16* out, uint64_t n, float scale) {
    const cudaError_t e = LaunchSyntheticUniform(out, n, seed, drawn, scale, stream);
    drawn += n;
    return CudaStatus(e, "synthetic weights");
  };
  auto ones = [&](kernels::Bf16* out, uint64_t n) {
    return CudaStatus(LaunchFillOnes(out, n, stream), "synthetic weights");
  };
  const uint64_t d = c.dim;
  KVSERVE_RETURN_IF_ERROR(uniform(w.token_embedding, c.vocab_size * d, 1.0f));
  for (int l = 0; l < c.n_layers; ++l) {
    for (const LayerTensor& t : LayerTensors(c)) {
      kernels::Bf16* out = w.layers[l].Destination(t.field, c);
      const uint64_t n = static_cast<uint64_t>(t.rows) * t.cols;
      // Norm weights 1 (no draws); matrices scaled by their fan-in, as on the host.
      const absl::Status s = t.rows == 1
                                 ? ones(out, n)
                                 : uniform(out, n, 1.0f / std::sqrt(static_cast<float>(t.cols)));
      if (!s.ok()) return s;
    }
  }
  KVSERVE_RETURN_IF_ERROR(ones(w.final_norm, d));
  if (!c.tied_embeddings) {
    if (auto s = uniform(w.lm_head, c.vocab_size * d, 1.0f / std::sqrt(static_cast<float>(d)));
        !s.ok()) {
      return s;
    }
  }
  return CudaStatus(cudaStreamSynchronize(stream), "synthetic weights");
}

}  // namespace kvserve::cuda
