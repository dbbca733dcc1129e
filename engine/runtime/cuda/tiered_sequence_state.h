#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/kv_policy.h"
#include "engine/model/model_config.h"
#include "kernels/bf16.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve::cuda {

// What the CUDA backend keeps on the device for one quest/freekv sequence between steps, per
// layer: each KV head's residency maps (slot -> page, page -> slot, page count, window cursor),
// the pages' key digests, the previous step's query (FreeKV's correction and speculative
// selection read it), the budget's arena pages, and the correction counters. One cudaMalloc,
// attached to the sequence's policy (KvPolicy::BackendState), so finish, cancel and preemption
// free it with the policy. The host never reads the maps: only the counters, after a step.
class TieredSequenceState : public KvPolicy::BackendState {
 public:
  // `max_pages`: the most logical pages the sequence can reach (the model's context).
  static absl::StatusOr<std::unique_ptr<TieredSequenceState>> Create(
      const ModelConfig& config, const kernels::TieredLayout& layout, int page_size, int max_pages,
      std::span<const int32_t> budget_pages);
  ~TieredSequenceState() override;

  const kernels::TieredLayout& layout() const { return layout_; }
  int page_size() const { return page_size_; }
  int max_pages() const { return max_pages_; }

  // Layer `layer`'s residency for a launch with this sequence alone (units = its KV heads).
  kernels::ResidencyState residency(int layer) const;
  // Digest rows of `layer`: row = logical page, [max_pages][n_kv_heads][2][head_dim].
  float* digests(int layer) const;
  kernels::Bf16* last_q(int layer) const;
  uint8_t* has_last_q(int layer) const;
  const int32_t* budget_pages(int layer) const;  // [slots]
  // Cumulative correction counters: checks, corrections (per KV head), checked and corrected
  // layer steps (QueryDriftParams).
  int32_t* checks() const { return counters_; }
  int32_t* corrections() const { return counters_ + 1; }
  int32_t* checked_steps() const { return counters_ + 2; }
  int32_t* corrected_steps() const { return counters_ + 3; }
  static constexpr int kCounters = 4;

  // The host's mirror of what each layer's budget holds while the layer is dense (page i in slot
  // i): how many pages are there; 0 after a prefill, which writes the host tier only.
  std::vector<int> dense_resident;
  // Counters already reported (the device's are cumulative).
  int64_t reported[kCounters] = {};

 private:
  TieredSequenceState() = default;

  int n_kv_heads_ = 0, n_heads_ = 0, head_dim_ = 0, page_size_ = 0, max_pages_ = 0;
  kernels::TieredLayout layout_;
  char* block_ = nullptr;
  int32_t *slot_page_ = nullptr, *page_slot_ = nullptr, *n_pages_ = nullptr,
          *next_window_ = nullptr, *budget_ = nullptr, *counters_ = nullptr;
  float* digests_ = nullptr;
  kernels::Bf16* last_q_ = nullptr;
  uint8_t* has_last_q_ = nullptr;
};

// The budget slot the newest page `page` of a sparse sequence occupies: the sink slot for a sink
// page, else the window slot ResidencyMap::Extend's FIFO gives it (a function of the page alone,
// so the host knows where a decode row goes without reading the maps).
inline int32_t NewestPageSlot(const kernels::TieredLayout& layout, int32_t page) {
  if (page < layout.sink) return page;
  return layout.sink + layout.retrieved() + (page - layout.sink) % layout.window;
}

}  // namespace kvserve::cuda
