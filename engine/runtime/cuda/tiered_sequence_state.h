#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/runtime/cuda/tiered_state_pool.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve::cuda {

// One quest/freekv sequence's device state: its row in the TieredStatePool of its budget layout,
// attached to the sequence's policy (KvPolicy::BackendState), so that finish, cancel and
// preemption give the row back with the policy. It keeps the pool alive: a policy may outlive the
// step that admitted it.
class TieredSequenceState : public KvPolicy::BackendState {
 public:
  TieredSequenceState(std::shared_ptr<TieredStatePool> pool, int row, int n_layers)
      : dense_resident(n_layers, 0), pool_(std::move(pool)), row_(row) {}
  ~TieredSequenceState() override { pool_->Release(row_); }

  TieredStatePool& pool() const { return *pool_; }
  int row() const { return row_; }
  const kernels::TieredLayout& layout() const { return pool_->layout(); }
  int page_size() const { return pool_->page_size(); }

  // The host's mirror of what each layer's budget holds while the layer is dense (page i in slot
  // i): how many pages are there; 0 after a prefill, which writes the host tier only.
  std::vector<int> dense_resident;
  // Counters already reported (the device's are cumulative).
  int64_t reported[TieredStatePool::kCounters] = {};

 private:
  std::shared_ptr<TieredStatePool> pool_;
  int row_ = 0;
};

// The budget slot the newest page `page` of a sparse sequence occupies: the sink slot for a sink
// page, else the window slot ResidencyMap::Extend's FIFO gives it (a function of the page alone,
// so the host knows where a decode row goes without reading the maps).
inline int32_t NewestPageSlot(const kernels::TieredLayout& layout, int32_t page) {
  if (page < layout.sink) return page;
  return layout.sink + layout.retrieved() + (page - layout.sink) % layout.window;
}

}  // namespace kvserve::cuda
