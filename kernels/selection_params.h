#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/paged_kv_cache.h"

namespace kvserve::kernels {

// SnapKV/FastKV prompt compression (research/fastkv.md §2.2-§3) over a batch of sequences: window
// scores, pooling and GQA sum, per-KV-head and propagation top-k, compaction. Each kernel has a
// twin in kernels/cpu_reference that the CPU engine uses too.

// 1-D pooling of scores along tokens (stride 1, odd kernel, padding kernel / 2).
enum class ScorePooling { kMax, kAvg };

// The tokens each sequence scores: sequence s holds n = kv_lens[s] cache tokens, the last
// windows[s] (<= n) of them its observation window, and scores its prefix, the first n - window.
// Score arrays hold the sequences one after another, sequence s's prefix starting at cu_prefix[s]
// (times the rows per token: query heads, KV heads or 1). window 0: the sequence is not scored and
// its prefix counts 0 in cu_prefix.
struct ScoredPrefixes {
  const int32_t* kv_lens = nullptr;    // [num_seqs]
  const int32_t* windows = nullptr;    // [num_seqs]
  const int32_t* cu_prefix = nullptr;  // [num_seqs + 1] exclusive sums of the prefix lengths
  int num_seqs = 0;
  // Known on the host without reading the arrays: they size grids, scratch and checks.
  int max_kv_len = 0;
  int max_window = 0;
  int total_prefix = 0;  // cu_prefix[num_seqs]
};

// Observation-window scores (§2.2 steps 1-5) of every query head: softmax (fp32) of each window
// query over the keys it sees (all but the later window tokens), summed over the window queries,
// at the prefix columns.
struct WindowScoresParams {
  const Bf16* q = nullptr;  // RoPE applied; [rows][q_row_stride], head h at h * head_dim
  int q_row_stride = 0;
  // [num_seqs + 1]: the q rows of each sequence; its window queries are its last windows[s] rows
  // (cache tokens n - window .. n - 1), so a chunk must hold at least its window.
  const int32_t* cu_seqlens = nullptr;
  ScoredPrefixes prefixes;
  PagedKvCache cache;  // the layer's cache, all n tokens of each sequence in it
  int n_heads = 0;
  float scale = 0.0f;        // usually 1 / sqrt(head_dim)
  float* scores = nullptr;   // sequence s: [n_heads][n - window] at cu_prefix[s] * n_heads
  float* scratch = nullptr;  // WindowScoresScratchFloats(...) floats
};

// Steps 6-8: each query head's scores pooled along tokens, summed over its GQA group, and (for
// FastKV's token-selective propagation) the KV heads' scores summed per token.
struct ScorePoolingParams {
  const float* head_scores = nullptr;  // as WindowScoresParams::scores
  ScoredPrefixes prefixes;
  int n_heads = 0;
  int n_kv_heads = 0;
  ScorePooling pooling = ScorePooling::kMax;
  int kernel = 7;              // odd, >= 1
  float* kv_scores = nullptr;  // sequence s: [n_kv_heads][n - window] at cu_prefix[s] * n_kv_heads
  float* totals = nullptr;  // optional (nullptr: skipped): sequence s: [n - window] at cu_prefix[s]
};

// How many rows a sequence of n tokens with `window` keeps for a budget: the budget clamped to
// [min(window, n), n] (the window always stays; a budget >= n keeps everything).
KVSERVE_HOST_DEVICE inline int KeptRowCount(int n, int window, int budget) {
  const int low = window < n ? window : n;
  return budget < low ? low : (budget > n ? n : budget);
}

// The rows each (sequence, KV head) keeps (§3): the top-(keep - window) prefix tokens by KV-head
// score, best first, ties to the earlier token, then the window rows n - window .. n - 1.
struct KvHeadSelectParams {
  const float* kv_scores = nullptr;  // as ScorePoolingParams::kv_scores
  ScoredPrefixes prefixes;
  int n_kv_heads = 0;
  // [num_seqs + 1]: sequence s keeps keep_s = cu_kept[s + 1] - cu_kept[s] rows per KV head,
  // KeptRowCount(n, window, budget), or 0 where it is not compressed (scored for propagation
  // only). A window-0 sequence keeps rows 0 .. keep_s - 1 (keep_s <= n).
  const int32_t* cu_kept = nullptr;
  int32_t* kept_rows = nullptr;  // sequence s: [n_kv_heads][keep_s] at cu_kept[s] * n_kv_heads
  void* scratch = nullptr;       // SelectionScratchBytes(...) bytes
  size_t scratch_bytes = 0;
};

// The rows token-selective propagation keeps (§2.3): the top-(keep - window) prefix tokens by the
// summed score plus the window, in ascending order.
struct PropagationSelectParams {
  const float* totals = nullptr;  // as ScorePoolingParams::totals
  ScoredPrefixes prefixes;
  // [num_seqs + 1]: sequence s keeps keep_s = cu_keep[s + 1] - cu_keep[s] rows,
  // KeptRowCount(n, window, keep); keep_s = n keeps them all in order. A window-0 sequence keeps
  // rows 0 .. keep_s - 1 (keep_s = n: the sequences that do not propagate here).
  const int32_t* cu_keep = nullptr;
  int32_t* rows = nullptr;  // sequence s: keep_s row indices (in its own rows) at cu_keep[s]
  void* scratch = nullptr;  // SelectionScratchBytes(...) bytes
  size_t scratch_bytes = 0;
};

// Moves each (sequence, KV head)'s kept rows, K and V, to the front of its cache in the order
// listed: row kept_rows[i] becomes cache row i. The layer's other rows are left as they were.
struct KvCompactionParams {
  PagedKvCache cache;
  int num_seqs = 0;
  const int32_t* cu_kept = nullptr;    // as KvHeadSelectParams::cu_kept
  const int32_t* kept_rows = nullptr;  // as KvHeadSelectParams::kept_rows
  int total_kept = 0;                  // cu_kept[num_seqs], known on the host
  int max_kept = 0;                    // the largest keep_s, known on the host
  Bf16* scratch = nullptr;             // total_kept * n_kv_heads * 2 * head_dim bf16
};

}  // namespace kvserve::kernels
