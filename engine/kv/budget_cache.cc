#include "engine/kv/budget_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "kernels/ceil_div.h"

namespace kvserve {

BudgetCache::BudgetCache(PagePool& device_pool, int n_layers, BudgetLayout layout)
    : pool_(device_pool), shape_(device_pool.shape()), n_layers_(n_layers), layout_(layout) {}

bool BudgetCache::Allocate() {
  if (state_ == State::kUnallocated) {
    const bool ok = pool_.Allocate(static_cast<int64_t>(n_layers_) * layout_.slots, &pages_);
    state_ = ok ? State::kAllocated : State::kShort;
  }
  return allocated();
}

void BudgetCache::Release() {
  pool_.Free(pages_);
  pages_.clear();
  state_ = State::kUnallocated;
}

void ProvideDeviceBudget(KvPolicy& policy, const SequenceKvCache& cache, int tokens,
                         bool from_first_step) {
  BudgetCache* budget = policy.device_budget();
  // A cache in other pages than the budget's cannot be served sparsely: it stays dense.
  if (budget == nullptr || budget->state() != BudgetCache::State::kUnallocated ||
      cache.page_size() != budget->page_size()) {
    return;
  }
  int longest = 0;
  for (int l = 0; l < cache.n_layers(); ++l) longest = std::max(longest, cache.length(l));
  if (from_first_step || CeilDiv(longest + tokens, cache.page_size()) > budget->layout().slots) {
    budget->Allocate();
  }
}

std::byte* BudgetCache::Slot(int layer, int32_t slot) const {
  return pool_.data(pages_[static_cast<size_t>(layer) * layout_.slots + slot]);
}

void BudgetCache::Recall(const SequenceKvCache& host, int layer, int32_t page, int kv_head,
                         int32_t slot, int first_row, int rows) {
  const int d = shape_.head_dim;
  const size_t e = pool_.element_bytes();
  const size_t row = d * e;                // one head's row here
  const size_t stride = row_stride() * e;  // one token's row of every head
  const size_t plane = static_cast<size_t>(shape_.page_size) * stride;  // the K (or V) half
  std::byte* dst = Slot(layer, slot) + static_cast<size_t>(kv_head) * row;
  const int first = page * shape_.page_size;
  // One head's page is contiguous on the host; scatter its rows into the token-major slot. Tiers
  // of one backend store the same type (a byte copy); a policy's own fp32 budget converts.
  const size_t host_row = host.row_bytes();
  const std::byte* k = host.key_bytes(layer, kv_head, first);
  const std::byte* v = host.value_bytes(layer, kv_head, first);
  std::vector<float> f32(host.dtype() == pool_.dtype() ? 0 : d);
  auto copy = [&](const std::byte* from, std::byte* to) {
    if (f32.empty()) {
      std::memcpy(to, from, row);
    } else {
      LoadKvRow(from, d, host.dtype(), f32.data());
      StoreKvRow(f32.data(), d, pool_.dtype(), to);
    }
  };
  for (int r = first_row; r < first_row + rows; ++r) {
    copy(k + r * host_row, dst + r * stride);
    copy(v + r * host_row, dst + plane + r * stride);
  }
}

const float* BudgetCache::key_row(int layer, int32_t slot, int row, int kv_head) const {
  assert(pool_.dtype() == KvDtype::kF32);
  return reinterpret_cast<const float*>(Slot(layer, slot)) +
         static_cast<size_t>(row) * row_stride() + static_cast<size_t>(kv_head) * shape_.head_dim;
}

const float* BudgetCache::value_row(int layer, int32_t slot, int row, int kv_head) const {
  return key_row(layer, slot, row, kv_head) + static_cast<size_t>(shape_.page_size) * row_stride();
}

size_t BudgetCache::bytes_per_chunk() const {
  return size_t{2} * shape_.page_size * shape_.head_dim * pool_.element_bytes();
}

namespace {

// Offset of (kv, token, head) in each layout, in units of head_dim.
size_t Nhd(const KvPageShape& s, int kv, int token, int head) {
  return (static_cast<size_t>(kv) * s.page_size + token) * s.n_kv_heads + head;
}
size_t Hnd(const KvPageShape& s, int kv, int token, int head) {
  return (static_cast<size_t>(head) * 2 + kv) * s.page_size + token;
}

}  // namespace

void NhdToHnd(const float* nhd, const KvPageShape& shape, float* hnd) {
  const int d = shape.head_dim;
  for (int kv = 0; kv < 2; ++kv)
    for (int t = 0; t < shape.page_size; ++t)
      for (int h = 0; h < shape.n_kv_heads; ++h)
        std::memcpy(hnd + Hnd(shape, kv, t, h) * d, nhd + Nhd(shape, kv, t, h) * d,
                    d * sizeof(float));
}

void HndToNhd(const float* hnd, const KvPageShape& shape, float* nhd) {
  const int d = shape.head_dim;
  for (int kv = 0; kv < 2; ++kv)
    for (int t = 0; t < shape.page_size; ++t)
      for (int h = 0; h < shape.n_kv_heads; ++h)
        std::memcpy(nhd + Nhd(shape, kv, t, h) * d, hnd + Hnd(shape, kv, t, h) * d,
                    d * sizeof(float));
}

}  // namespace kvserve
