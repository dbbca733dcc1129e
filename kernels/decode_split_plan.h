#pragma once

#include <cstddef>

namespace kvserve::kernels {

// Keys one decode block stages per step; a split is a whole number of tiles.
inline constexpr int kDecodeTileKeys = 64;

// How decode attention splits each sequence's context (flash-decoding): enough blocks to fill the
// GPU when the batch alone does not, but splits of at least a few tiles so merging stays cheap.
struct DecodeSplitPlan {
  int num_splits = 1;
  int split_len = kDecodeTileKeys;  // keys per split, a multiple of kDecodeTileKeys
};

DecodeSplitPlan PlanDecodeSplits(int num_seqs, int n_kv_heads, int max_kv_len, int num_sms);

// Scratch a launch with `plan` needs: each split's unnormalised output row, max and sum per
// (sequence, query head). Zero when the plan has one split.
size_t DecodeWorkspaceBytes(const DecodeSplitPlan& plan, int num_seqs, int n_heads, int head_dim);

// The most any batch of up to `max_seqs` sequences of up to `max_kv_len` tokens needs: allocate it
// once, so the decode loop never allocates.
size_t MaxDecodeWorkspaceBytes(int max_seqs, int n_heads, int n_kv_heads, int head_dim,
                               int max_kv_len, int num_sms);

}  // namespace kvserve::kernels
