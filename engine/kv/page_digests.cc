#include "engine/kv/page_digests.h"

namespace kvserve {

PageDigests::PageDigests(int n_kv_heads, int head_dim, DigestKind kind)
    : n_kv_heads_(n_kv_heads), head_dim_(head_dim), kind_(kind) {}

void PageDigests::AppendPage(const SequenceKvCache& kv, int layer) {
  const int first_row = pages_ * kv.page_size();
  data_.resize(data_.size() + static_cast<size_t>(n_kv_heads_) * 2 * head_dim_);
  ++pages_;
  keys_.resize(static_cast<size_t>(kv.page_size()) * head_dim_);
  for (int h = 0; h < n_kv_heads_; ++h) {
    float* hi = const_cast<float*>(At(pages_ - 1, h));
    kv.GatherHead(layer, h, first_row, first_row + kv.page_size(), keys_.data(), nullptr);
    BuildPageDigest(keys_.data(), kv.page_size(), head_dim_, kind_, hi, hi + head_dim_);
  }
}

void PageDigests::Clear() {
  data_.clear();
  pages_ = 0;
}

}  // namespace kvserve
