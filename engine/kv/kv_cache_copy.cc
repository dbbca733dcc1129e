#include "engine/kv/kv_cache_copy.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kvserve {

absl::Status CopyKvCache(const SequenceKvCache& from, SequenceKvCache& to) {
  if (from.n_layers() != to.n_layers() || from.n_kv_heads() != to.n_kv_heads() ||
      from.head_dim() != to.head_dim()) {
    return absl::FailedPreconditionError(
        absl::StrCat("copy kv cache: shapes differ (layers ", from.n_layers(), " vs ",
                     to.n_layers(), ", kv heads ", from.n_kv_heads(), " vs ", to.n_kv_heads(),
                     ", head dim ", from.head_dim(), " vs ", to.head_dim(), ")"));
  }
  for (int l = 0; l < to.n_layers(); ++l) {
    if (to.length(l) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("copy kv cache: the target's layer ", l, " is not empty"));
    }
  }
  const int heads = from.n_kv_heads();
  const int d = from.head_dim();
  const size_t row = static_cast<size_t>(heads) * d;
  std::vector<float> head_k, head_v, keys, values;
  for (int l = 0; l < from.n_layers(); ++l) {
    const int n = from.length(l);
    if (n == 0) continue;
    // Interleave the heads' rows back into token-major [n][heads * d], as Append takes them.
    keys.resize(n * row);
    values.resize(n * row);
    head_k.resize(static_cast<size_t>(n) * d);
    head_v.resize(static_cast<size_t>(n) * d);
    for (int h = 0; h < heads; ++h) {
      from.GatherHead(l, h, 0, n, head_k.data(), head_v.data());
      for (int i = 0; i < n; ++i) {
        const size_t src = static_cast<size_t>(i) * d;
        const size_t dst = i * row + static_cast<size_t>(h) * d;
        std::memcpy(keys.data() + dst, head_k.data() + src, d * sizeof(float));
        std::memcpy(values.data() + dst, head_v.data() + src, d * sizeof(float));
      }
    }
    if (!to.GrowLayer(l, n) ||
        !to.Append(l, keys.data(), values.data(), n, static_cast<int>(row))) {
      return absl::ResourceExhaustedError(
          absl::StrCat("copy kv cache: the target's page pool is full at layer ", l));
    }
  }
  return absl::OkStatus();
}

}  // namespace kvserve
