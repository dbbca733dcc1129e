#include "engine/kv/page_digests.h"

namespace kvserve {

PageDigests::PageDigests(int n_kv_heads, int head_dim, DigestKind kind)
    : n_kv_heads_(n_kv_heads), head_dim_(head_dim), kind_(kind) {}

void PageDigests::AppendPage(const SequenceKvCache& kv, int layer) {
  const int first_row = pages_ * kv.page_size();
  data_.resize(data_.size() + static_cast<size_t>(n_kv_heads_) * 2 * head_dim_);
  ++pages_;
  for (int h = 0; h < n_kv_heads_; ++h) {
    // A page's rows of one head are contiguous in the cache.
    float* hi = const_cast<float*>(At(pages_ - 1, h));
    BuildPageDigest(kv.key_row(layer, h, first_row), kv.page_size(), head_dim_, kind_, hi,
                    hi + head_dim_);
  }
}

void PageDigests::Clear() {
  data_.clear();
  pages_ = 0;
}

}  // namespace kvserve
