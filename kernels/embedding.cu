#include "kernels/embedding.h"

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

constexpr int kThreads = 256;

// One block per token row; a bad id reads nothing and writes zeros.
template <typename Out>
__global__ void __launch_bounds__(kThreads)
    EmbeddingGatherKernel(const __nv_bfloat16* table, int vocab, int dim, const int32_t* ids,
                          Out* out) {
  const int row = blockIdx.x;
  const int32_t id = ids[row];
  const bool valid = id >= 0 && id < vocab;
  const __nv_bfloat16* src = table + static_cast<size_t>(valid ? id : 0) * dim;
  Out* dst = out + static_cast<size_t>(row) * dim;
  for (int i = threadIdx.x; i < dim; i += kThreads) {
    device::Store(dst + i, valid ? device::Load(src + i) : 0.0f);
  }
}

template <typename Out>
cudaError_t Launch(const Bf16* table, int vocab, int dim, const int32_t* ids, int rows, Out* out,
                   cudaStream_t stream) {
  if (rows < 0 || dim <= 0 || vocab <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  return device::LaunchKernel(EmbeddingGatherKernel<Out>, rows, kThreads, 0, stream, AsCuda(table),
                              vocab, dim, ids, out);
}

}  // namespace

cudaError_t LaunchEmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids,
                                  int rows, float* out, cudaStream_t stream) {
  return Launch(table, vocab, dim, ids, rows, out, stream);
}

cudaError_t LaunchEmbeddingGather(const Bf16* table, int vocab, int dim, const int32_t* ids,
                                  int rows, Bf16* out, cudaStream_t stream) {
  return Launch(table, vocab, dim, ids, rows, AsCuda(out), stream);
}

}  // namespace kvserve::kernels
