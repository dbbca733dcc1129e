#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/selection_params.h"
#include "tests/gpu/gpu_test_support.h"

namespace kvserve::kernels::testing {

// One sequence of a prompt-compression batch: n cache tokens, the last `window` its observation
// window (0: not scored), and the budget it keeps (clamped by KeptRowCount; negative: none).
struct ScoredSequence {
  int n = 0;
  int window = 0;
  int budget = 0;
};

// ScoredPrefixes and the keep counts of a batch, in host memory.
struct HostScoredBatch {
  std::vector<int32_t> kv_lens;
  std::vector<int32_t> windows;
  std::vector<int32_t> cu_prefix;
  std::vector<int32_t> cu_keep;  // KeptRowCount per sequence; a window-0 sequence keeps its budget
  int max_kv_len = 0;
  int max_window = 0;
  int max_keep = 0;

  int num_seqs() const { return static_cast<int>(kv_lens.size()); }
  int total_prefix() const { return cu_prefix.back(); }
  int total_keep() const { return cu_keep.back(); }
  ScoredPrefixes View(const int32_t* lens, const int32_t* wins, const int32_t* cu) const {
    return ScoredPrefixes{.kv_lens = lens,
                          .windows = wins,
                          .cu_prefix = cu,
                          .num_seqs = num_seqs(),
                          .max_kv_len = max_kv_len,
                          .max_window = max_window,
                          .total_prefix = total_prefix()};
  }
  ScoredPrefixes HostView() const { return View(kv_lens.data(), windows.data(), cu_prefix.data()); }
};

inline HostScoredBatch MakeScoredBatch(const std::vector<ScoredSequence>& seqs) {
  HostScoredBatch b;
  b.cu_prefix.push_back(0);
  b.cu_keep.push_back(0);
  for (const ScoredSequence& s : seqs) {
    b.kv_lens.push_back(s.n);
    b.windows.push_back(s.window);
    b.cu_prefix.push_back(b.cu_prefix.back() + (s.window == 0 ? 0 : s.n - s.window));
    int keep = s.window == 0 ? std::min(s.budget, s.n) : KeptRowCount(s.n, s.window, s.budget);
    if (s.budget < 0) keep = 0;  // scored, but nothing kept here
    b.cu_keep.push_back(b.cu_keep.back() + keep);
    b.max_kv_len = std::max(b.max_kv_len, s.n);
    b.max_window = std::max(b.max_window, s.window);
    b.max_keep = std::max(b.max_keep, keep);
  }
  return b;
}

// The batch's arrays on the device, with the view over them.
struct DeviceScoredBatch {
  explicit DeviceScoredBatch(const HostScoredBatch& host)
      : kv_lens(host.kv_lens),
        windows(host.windows),
        cu_prefix(host.cu_prefix),
        cu_keep(host.cu_keep),
        view(host.View(kv_lens.data(), windows.data(), cu_prefix.data())) {}
  DeviceBuffer<int32_t> kv_lens;
  DeviceBuffer<int32_t> windows;
  DeviceBuffer<int32_t> cu_prefix;
  DeviceBuffer<int32_t> cu_keep;
  ScoredPrefixes view;
};

// Scores with many exact ties: multiples of 1/8 in [0, levels / 8).
inline std::vector<float> TiedScores(size_t count, int levels, std::mt19937& rng) {
  std::uniform_int_distribution<int> level(0, levels - 1);
  std::vector<float> out(count);
  for (float& v : out) v = static_cast<float>(level(rng)) / 8.0f;
  return out;
}

}  // namespace kvserve::kernels::testing
