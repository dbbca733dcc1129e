#include "kernels/cpu_reference/page_digest.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvserve::kernels::reference {

void BuildPageDigest(const float* keys, int rows, int head_dim, PageDigestKind kind, float* hi,
                     float* lo) {
  for (int c = 0; c < head_dim; ++c) {
    float max = keys[c], min = keys[c];
    for (int r = 1; r < rows; ++r) {
      const float k = keys[static_cast<size_t>(r) * head_dim + c];
      max = std::max(max, k);
      min = std::min(min, k);
    }
    if (kind == PageDigestKind::kMinMax) {
      hi[c] = max;
      lo[c] = min;
      continue;
    }
    const float center = 0.5f * (max + min);
    float mad = 0.0f;
    for (int r = 0; r < rows; ++r)
      mad += std::abs(keys[static_cast<size_t>(r) * head_dim + c] - center);
    mad /= static_cast<float>(rows);
    hi[c] = center + mad;
    lo[c] = center - mad;
  }
}

namespace {

// Adds channels [0, count) of one page's bound into lanes [0, count): count is a whole lane
// width (then one AVX2 register) or the head's remainder.
inline void AddToLanes(const float* q, const float* hi, const float* lo, int count, float* lanes) {
  for (int l = 0; l < count; ++l) lanes[l] += std::max(q[l] * hi[l], q[l] * lo[l]);
}

}  // namespace

float PageUpperBound(const float* q, const float* hi, const float* lo, int head_dim) {
  float lanes[kPageBoundLanes] = {};
  int c = 0;
  for (; c + kPageBoundLanes <= head_dim; c += kPageBoundLanes) {
    AddToLanes(q + c, hi + c, lo + c, kPageBoundLanes, lanes);
  }
  AddToLanes(q + c, hi + c, lo + c, head_dim - c, lanes);
  return SumPageBoundLanes(lanes);
}

void PageUpperBounds(const float* q_group, int group, std::span<const float* const> hi,
                     std::span<const float* const> lo, int head_dim, float* bounds) {
  constexpr size_t kBlock = 4;  // four pages' lane sums in flight hide the adds' latency
  const size_t n = hi.size();
  const int whole = head_dim / kPageBoundLanes * kPageBoundLanes;
  // Every query head of a block before the next block: the block's digests are read from memory
  // once (the whole table of a layer is megabytes at pages of 4 tokens) and from L1 after.
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    for (int g = 0; g < group; ++g) {
      const float* q = q_group + static_cast<size_t>(g) * head_dim;
      float lanes[kBlock][kPageBoundLanes] = {};
      for (int c = 0; c < whole; c += kPageBoundLanes) {
        for (size_t j = 0; j < kBlock; ++j) {
          AddToLanes(q + c, hi[i + j] + c, lo[i + j] + c, kPageBoundLanes, lanes[j]);
        }
      }
      for (size_t j = 0; j < kBlock; ++j) {
        AddToLanes(q + whole, hi[i + j] + whole, lo[i + j] + whole, head_dim - whole, lanes[j]);
        bounds[static_cast<size_t>(g) * n + i + j] = SumPageBoundLanes(lanes[j]);
      }
    }
  }
  for (; i < n; ++i) {
    for (int g = 0; g < group; ++g) {
      bounds[static_cast<size_t>(g) * n + i] =
          PageUpperBound(q_group + static_cast<size_t>(g) * head_dim, hi[i], lo[i], head_dim);
    }
  }
}

void BuildPageDigests(const PageDigestBuildParams& p) {
  const PagedKvLayout& l = p.layout;
  const size_t head_floats = static_cast<size_t>(l.page_size) * l.head_dim;
  std::vector<float> keys(head_floats);
  for (int i = 0; i < p.num_pages; ++i) {
    if (p.src_pages[i] < 0) continue;
    for (int h = 0; h < l.n_kv_heads; ++h) {
      const Bf16* k = p.pages + l.RowOffset(p.src_pages[i], h, 0, 0);
      for (size_t e = 0; e < head_floats; ++e) keys[e] = ToFloat(k[e]);
      float* hi =
          p.digests + (static_cast<size_t>(p.digest_rows[i]) * l.n_kv_heads + h) * 2 * l.head_dim;
      BuildPageDigest(keys.data(), l.page_size, l.head_dim, p.kind, hi, hi + l.head_dim);
    }
  }
}

}  // namespace kvserve::kernels::reference
