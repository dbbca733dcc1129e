#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv/kv_policy.h"

namespace kvserve::eval {

// What the backend showed a policy at one layer of a whole-prompt prefill.
struct PromptLayerRecord {
  int n = 0;                       // rows the layer ran on
  int window = 0;                  // observation window of `scores` (0: none)
  std::vector<float> scores;       // window scores [n_heads][n - window]
  std::vector<int32_t> propagate;  // rows carried to the next layer (empty: all)
};

// A KvPolicy that runs a prefill the way `inner` would but keeps every row in the cache, and
// records each layer's window scores, so one prefill can later be compressed under several KV
// budgets (SharedPrefill). It asks for the scores of every layer (window `window`), hands `inner`
// only what it asked for, and returns only `inner`'s `propagate` (TSP), never its `retain`. With no
// inner policy the prefill is `full`'s.
class RecordingPolicy : public KvPolicy {
 public:
  RecordingPolicy(std::unique_ptr<KvPolicy> inner, int window);

  std::string_view name() const override { return inner_ ? inner_->name() : "full"; }
  bool needs_whole_prompt() const override { return true; }
  int ScoreWindow(int layer, int n) const override;
  LayerDecision OnPromptLayer(int layer, int n, std::span<const float> window_scores) override;
  KvStats Stats(const SequenceKvCache& kv) const override;

  const std::vector<PromptLayerRecord>& layers() const { return layers_; }

 private:
  std::unique_ptr<KvPolicy> inner_;
  int window_;
  std::vector<PromptLayerRecord> layers_;  // indexed by layer
};

}  // namespace kvserve::eval
