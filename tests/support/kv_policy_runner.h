#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/runtime/backend.h"

namespace kvserve::testing {

// One sequence run straight through a backend, every step's logits kept: what policy tests
// compare against `full` and against references.
struct PolicyRun {
  std::vector<int32_t> tokens;             // greedy; the first comes from the prefill
  std::vector<std::vector<float>> logits;  // the row each token was chosen from
  std::vector<int> kept_after_prefill;     // cache length per layer once the prompt ran
  KvStats stats;                           // the policy's, at the end
};

// Prefills `prompt` as one whole-prompt chunk under `policy` (nullptr: none), then runs greedy
// decode steps until `steps` tokens exist, the cache in pages of `page_size` tokens. Fails the
// calling test on a backend error.
PolicyRun RunGreedy(Backend& backend, std::span<const int32_t> prompt, KvPolicy* policy, int steps,
                    int page_size = 16);

// Passes every call on to `inner`, with its prompt plan asking the backend to return each layer's
// window scores; RunGreedy hands them back, and layers() replays the plan's selection on them.
class RecordingPolicy : public KvPolicy {
 public:
  RecordingPolicy(KvPolicy& inner, const ModelConfig& config) : inner_(inner), config_(config) {}

  struct Layer {
    int layer = 0;
    int n = 0;
    int window = 0;  // the plan's window at this layer
    std::vector<float> scores;
    LayerSelection decision;
  };
  std::vector<Layer> layers() const;
  const PromptCompressionPlan& plan() const { return plan_; }
  void Record(std::vector<PromptLayerScores> layers) { recorded_ = std::move(layers); }

  std::string_view name() const override { return inner_.name(); }
  bool needs_whole_prompt() const override { return inner_.needs_whole_prompt(); }
  PromptCompressionPlan PlanPrompt(int n) override;
  KvStats Stats(const SequenceKvCache& kv) const override { return inner_.Stats(kv); }

 private:
  KvPolicy& inner_;
  ModelConfig config_;
  PromptCompressionPlan plan_;
  std::vector<PromptLayerScores> recorded_;
};

// A random prompt of `n` ids, BOS (1) first, ids in [3, vocab).
std::vector<int32_t> RandomPrompt(uint32_t seed, int n, int vocab);

}  // namespace kvserve::testing
