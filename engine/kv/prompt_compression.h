#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv/prefill_flops.h"
#include "engine/kv/token_selection.h"

namespace kvserve {

// What a compressing policy does to one layer of a whole-prompt chunk.
struct LayerCompression {
  int window = 0;          // observation window scored after the layer's attention; 0: none
  int keep = 0;            // rows each KV head keeps (top-(keep - window) + window); 0: all
  bool propagate = false;  // TSP: only the plan's tsp_keep rows run through the later layers
};

// A prompt compression plan (research/fastkv.md §2-§5): FastKV's and SnapKV's per-layer window,
// per-KV-head budget, TSP layer and TSP keep count are functions of the prompt length alone, so a
// policy decides them before the step and each backend runs the selection on its own device.
struct PromptCompressionPlan {
  int prompt_tokens = 0;
  std::vector<LayerCompression> layers;  // one per layer; empty: the prompt runs uncompressed
  int tsp_keep = 0;                      // rows kept at the propagating layer
  ScorePooling pool = ScorePooling::kMax;
  int pool_kernel = 7;
  // fastkv_freekv: every row is kept, reordered per KV head: the prefix rows by score, best first
  // (FastKV's selection leads, packed into the first pages), then the window rows.
  bool keep_unselected = false;
  // Return each layer's window scores with the step's output (evaluation: one prefill replayed
  // under several budgets).
  bool record_scores = false;

  bool empty() const { return layers.empty(); }
  // The layer TSP fires at, or -1.
  int tsp_layer() const;
  // Rows `layer` runs its attention on: the prompt up to the TSP layer, tsp_keep after it.
  int RowsAt(int layer) const;
  // The rows each layer ran on (attention and MLP), for the FLOP model.
  std::vector<LayerRows> ExecutedRows() const;
};

// What a backend saw at one layer of a whole-prompt chunk whose plan records its scores.
struct PromptLayerScores {
  int n = 0;                       // rows the layer ran on
  int window = 0;                  // observation window of `scores` (0: none)
  std::vector<float> scores;       // window scores [n_heads][n - window]
  std::vector<int32_t> propagate;  // rows carried to the next layer (empty: all)
  // Each KV head's kept rows as the backend selected them (empty: all, or not reported).
  std::vector<std::vector<int32_t>> retain;
};

// One layer's selection, data for the backend to apply: each KV head's rows to keep, in order
// (every head the same count; empty = all), and the rows carried on (ascending; empty = all).
struct LayerSelection {
  std::vector<std::vector<int32_t>> retain;
  std::vector<int32_t> propagate;
};

// Each query head's window scores ([n_heads][prefix]) pooled along tokens, then summed over its
// GQA group (§2.2 steps 6-7): [n_kv_heads][prefix].
std::vector<float> PooledKvHeadScores(std::span<const float> window_scores, int prefix, int n_heads,
                                      int n_kv_heads, ScorePooling pool, int pool_kernel);

// The host reference of what a backend does with the plan at `layer` of `n` rows, given that
// layer's window scores [n_heads][n - window] (cpu::WindowScores): pooling, the GQA group sum,
// per-KV-head top-k (ties to the earlier token) and TSP. InvalidArgument when the plan and the
// scores disagree with `n`.
absl::StatusOr<LayerSelection> SelectPromptRows(const PromptCompressionPlan& plan, int layer, int n,
                                                std::span<const float> window_scores, int n_heads,
                                                int n_kv_heads);

}  // namespace kvserve
