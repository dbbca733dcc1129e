#include "kernels/decode_split_plan.h"

#include <algorithm>

#include "kernels/ceil_div.h"

namespace kvserve::kernels {
namespace {

// Blocks per SM the plan aims for, and the fewest tiles worth a split of their own.
constexpr int kTargetBlocksPerSm = 4;
constexpr int kMinTilesPerSplit = 4;

}  // namespace

DecodeSplitPlan PlanDecodeSplits(int num_seqs, int n_kv_heads, int max_kv_len, int num_sms) {
  const int tiles = std::max(1, CeilDiv(max_kv_len, kDecodeTileKeys));
  const int blocks_per_split = std::max(1, num_seqs * n_kv_heads);
  const int wanted = CeilDiv(kTargetBlocksPerSm * std::max(1, num_sms), blocks_per_split);
  const int splits = std::clamp(wanted, 1, std::max(1, CeilDiv(tiles, kMinTilesPerSplit)));
  const int tiles_per_split = CeilDiv(tiles, splits);
  return DecodeSplitPlan{.num_splits = CeilDiv(tiles, tiles_per_split),
                         .split_len = tiles_per_split * kDecodeTileKeys};
}

size_t DecodeWorkspaceBytes(const DecodeSplitPlan& plan, int num_seqs, int n_heads, int head_dim) {
  if (plan.num_splits <= 1) return 0;
  const size_t partials = static_cast<size_t>(num_seqs) * n_heads * plan.num_splits;
  return partials * (static_cast<size_t>(head_dim) + 2) * sizeof(float);
}

size_t MaxDecodeWorkspaceBytes(int max_seqs, int n_heads, int n_kv_heads, int head_dim,
                               int max_kv_len, int num_sms) {
  size_t most = 0;
  for (int seqs = 1; seqs <= max_seqs; ++seqs) {
    // Shorter contexts never need more splits than the longest one.
    const DecodeSplitPlan plan = PlanDecodeSplits(seqs, n_kv_heads, max_kv_len, num_sms);
    most = std::max(most, DecodeWorkspaceBytes(plan, seqs, n_heads, head_dim));
  }
  return most;
}

}  // namespace kvserve::kernels
