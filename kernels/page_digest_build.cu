#include "kernels/page_digest_build.h"

#include "kernels/device/bf16_device.cuh"
#include "kernels/device/launch.cuh"

namespace kvserve::kernels {
namespace {

using device::AsCuda;

// Grid (pages, KV heads), one thread per channel, walking the page's rows in order as
// reference::BuildPageDigest does (consecutive threads read consecutive channels of a row).
__global__ void BuildPageDigestsKernel(const __nv_bfloat16* pages, PagedKvLayout l,
                                       const int32_t* src_pages, const int32_t* digest_rows,
                                       PageDigestKind kind, float* digests) {
  if (src_pages[blockIdx.x] < 0) return;  // an entry without a page (TieredDecode's fixed launch)
  const int head = blockIdx.y;
  const int c = threadIdx.x;
  const __nv_bfloat16* keys = pages + l.RowOffset(src_pages[blockIdx.x], head, 0, 0) + c;
  float* hi = digests +
              (static_cast<size_t>(digest_rows[blockIdx.x]) * l.n_kv_heads + head) * 2 * l.head_dim;
  float max = device::Load(keys);
  float min = max;
  for (int r = 1; r < l.page_size; ++r) {
    const float k = device::Load(keys + static_cast<size_t>(r) * l.head_dim);
    max = fmaxf(max, k);
    min = fminf(min, k);
  }
  if (kind == PageDigestKind::kMinMax) {
    hi[c] = max;
    hi[l.head_dim + c] = min;
    return;
  }
  const float center = 0.5f * (max + min);
  float mad = 0.0f;
  for (int r = 0; r < l.page_size; ++r) {
    mad += fabsf(device::Load(keys + static_cast<size_t>(r) * l.head_dim) - center);
  }
  mad /= static_cast<float>(l.page_size);
  hi[c] = center + mad;
  hi[l.head_dim + c] = center - mad;
}

}  // namespace

cudaError_t LaunchBuildPageDigests(const PageDigestBuildParams& p, cudaStream_t stream) {
  const PagedKvLayout& l = p.layout;
  if (l.n_kv_heads <= 0 || l.n_kv_heads > 65535 || l.page_size <= 0 || l.head_dim <= 0 ||
      l.head_dim > 1024 || p.num_pages < 0) {
    return cudaErrorInvalidValue;
  }
  if (p.num_pages == 0) return cudaSuccess;
  return device::LaunchKernel(BuildPageDigestsKernel, dim3(p.num_pages, l.n_kv_heads), l.head_dim,
                              0, stream, AsCuda(p.pages), l, p.src_pages, p.digest_rows, p.kind,
                              p.digests);
}

}  // namespace kvserve::kernels
