#pragma once

#include <cstddef>
#include <vector>

#include "engine/kv/page_digest.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve {

// The digests of one layer's full pages, per KV head: what page scoring reads instead of keys.
// Built at prefill for every full page and whenever a decode page fills.
class PageDigests {
 public:
  PageDigests(int n_kv_heads, int head_dim, DigestKind kind);

  int pages() const { return pages_; }
  // Appends the digest of page `pages()` of `layer` (it must be full in `kv`).
  void AppendPage(const SequenceKvCache& kv, int layer);
  const float* hi(int page, int kv_head) const { return At(page, kv_head); }
  const float* lo(int page, int kv_head) const { return At(page, kv_head) + head_dim_; }
  int head_dim() const { return head_dim_; }
  void Clear();
  size_t bytes() const { return data_.size() * sizeof(float); }

 private:
  const float* At(int page, int kv_head) const {
    return data_.data() + (static_cast<size_t>(page) * n_kv_heads_ + kv_head) * 2 * head_dim_;
  }

  int n_kv_heads_;
  int head_dim_;
  DigestKind kind_;
  int pages_ = 0;
  std::vector<float> data_;  // [page][kv_head][hi, lo][head_dim]
  std::vector<float> keys_;  // one page of one head's keys in fp32, as the digest reads them
};

}  // namespace kvserve
