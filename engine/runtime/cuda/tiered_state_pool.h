#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "kernels/bf16.h"
#include "kernels/tiered_kv_params.h"

namespace kvserve::cuda {

// What the CUDA backend keeps on the device between steps for the quest/freekv sequences that
// share one budget layout, one row per sequence, so that each per-layer kernel runs once for all
// of a step's sequences (research/freekv.md §6; issue 13 item 4): per layer, each KV head's
// residency maps (slot -> page, page -> slot, page count, window cursor), the pages' key digests,
// the previous step's query; per row, the correction counters. Arrays are layer-major
// ([layer][row][...]), so a launch indexes a row as kernels::StateRow says. The host never reads
// the maps: only the counters, after a step.
class TieredStatePool {
 public:
  // `max_pages`: the most logical pages a sequence can reach (the model's context).
  static absl::StatusOr<std::shared_ptr<TieredStatePool>> Create(
      const ModelConfig& config, const kernels::TieredLayout& layout, int page_size, int max_pages);
  ~TieredStatePool();
  TieredStatePool(const TieredStatePool&) = delete;
  TieredStatePool& operator=(const TieredStatePool&) = delete;

  // A row for a new sequence, its maps empty, its counters zero; grows the pool (doubling) when
  // every row is taken. Synchronises the device: a speculative recall still queued may write the
  // row's previous owner's maps, and growth moves every row.
  absl::StatusOr<int> Acquire();
  void Release(int row);

  const kernels::TieredLayout& layout() const { return layout_; }
  int page_size() const { return page_size_; }
  int n_kv_heads() const { return n_kv_heads_; }
  int max_pages() const { return max_pages_; }
  int capacity() const { return capacity_; }
  int rows_in_use() const;

  // Layer `layer`'s arrays over every row.
  kernels::ResidencyState residency(int layer, const int32_t* state_rows) const;
  float* digests(int layer) const;  // PageDigestTable::data, row_pages = max_pages()
  kernels::Bf16* last_q(int layer) const;
  uint8_t* has_last_q(int layer) const;
  // Counter `k` of every row (QueryDriftParams: checks, corrections, checked and corrected
  // layer steps), cumulative since the row was acquired.
  static constexpr int kCounters = 4;
  int32_t* counters(int k) const;
  // Every row's counters, [kCounters][capacity], after the device drained the step.
  absl::StatusOr<std::vector<int32_t>> ReadCounters() const;

 private:
  // One array: `per_row` bytes for each (layer, row), rows of a layer adjacent.
  struct Section {
    size_t per_row = 0;
    int layers = 0;
    int fill = -1;  // the byte an acquired row starts with; -1: left as it is (written first)
    char* data = nullptr;
    char* At(int layer, int capacity) const {
      return data + (static_cast<size_t>(layer) * capacity) * per_row;
    }
  };
  enum SectionId {
    kSlotPage,
    kPageSlot,
    kNPages,
    kNextWindow,
    kDigests,
    kLastQ,
    kHasLastQ,
    kCounterRows,
    kSections
  };

  TieredStatePool() = default;
  absl::Status Grow(int capacity);

  int n_kv_heads_ = 0, n_heads_ = 0, head_dim_ = 0, page_size_ = 0, max_pages_ = 0;
  kernels::TieredLayout layout_;
  int capacity_ = 0;
  Section sections_[kSections];
  std::vector<char> in_use_;
};

}  // namespace kvserve::cuda
