#pragma once

#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"
#include "kernels/ragged_batch.h"

namespace kvserve::kernels {

// Causal GQA attention of a ragged batch of new query rows over each sequence's paged cache (the
// new tokens' K/V already appended). Query head h reads KV head h / (n_heads / n_kv_heads). Row t
// sees cache tokens j < kv_lens[seq] with j <= batch.cache_positions[t].
struct PrefillAttentionParams {
  const Bf16* q = nullptr;  // [total_tokens][q_row_stride]; head h at h * head_dim
  int q_row_stride = 0;
  Bf16* out = nullptr;  // [total_tokens][out_row_stride]
  int out_row_stride = 0;
  RaggedBatch batch;
  const int32_t* kv_lens = nullptr;  // [num_seqs] cache tokens of each sequence
  PagedKvCache cache;
  int n_heads = 0;
  float scale = 0.0f;  // usually 1 / sqrt(head_dim)
};

// One query row per sequence (decode) attending to all kv_lens[s] tokens of its cache.
struct DecodeAttentionParams {
  const Bf16* q = nullptr;  // [num_seqs][q_row_stride]
  int q_row_stride = 0;
  Bf16* out = nullptr;  // [num_seqs][out_row_stride]
  int out_row_stride = 0;
  const int32_t* kv_lens = nullptr;  // [num_seqs]
  int num_seqs = 0;
  int max_kv_len = 0;  // the largest kv_lens entry, known on the host: sizes the split
  PagedKvCache cache;
  int n_heads = 0;
  float scale = 0.0f;
};

}  // namespace kvserve::kernels
