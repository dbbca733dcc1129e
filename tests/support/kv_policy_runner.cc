#include "tests/support/kv_policy_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/kv/budget_cache.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve::testing {

PolicyRun RunGreedy(Backend& backend, std::span<const int32_t> prompt, KvPolicy* policy, int steps,
                    int page_size) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, page_size, c.head_dim}, PagePool::kUnbounded, backend.kv_dtype());
  SequenceKvCache kv(pool, c.n_layers);
  PolicyRun run;
  std::vector<int32_t> positions(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) positions[i] = static_cast<int32_t>(i);
  const PromptCompressionPlan plan = policy != nullptr
                                         ? policy->PlanPrompt(static_cast<int>(prompt.size()))
                                         : PromptCompressionPlan{};
  SequenceChunk chunk{.tokens = prompt,
                      .positions = positions,
                      .kv = &kv,
                      .compute_logits = true,
                      .policy = policy,
                      .whole_prompt = true,
                      .compression = &plan};
  StepOutput out;
  int32_t token = 0;
  for (int step = 0; step < steps; ++step) {
    absl::Status s = GrowForStep(backend, std::span(&chunk, 1));
    if (s.ok()) s = backend.Execute(std::span(&chunk, 1), &out);
    if (s.ok()) s = out.chunk_status[0];
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
    ApplyRetention(std::span(&chunk, 1), out);
    const std::vector<float>& logits = out.logits;
    if (step == 0) {
      for (int l = 0; l < c.n_layers; ++l) run.kept_after_prefill.push_back(kv.length(l));
      if (auto* recorder = dynamic_cast<RecordingPolicy*>(policy)) {
        recorder->Record(std::move(out.prompt_layers[0]));
      }
    }
    token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    run.tokens.push_back(token);
    run.logits.push_back(logits);
    positions.assign(1, static_cast<int32_t>(prompt.size()) + step);
    chunk = {.tokens = std::span(&token, 1),
             .positions = positions,
             .kv = &kv,
             .policy = policy,
             .kind = ChunkKind::kDecode};
  }
  if (policy != nullptr) run.stats = policy->Stats(kv);
  return run;
}

PromptCompressionPlan RecordingPolicy::PlanPrompt(int n) {
  plan_ = inner_.PlanPrompt(n);
  plan_.record_scores = true;
  return plan_;
}

std::vector<RecordingPolicy::Layer> RecordingPolicy::layers() const {
  std::vector<Layer> out;
  for (size_t l = 0; l < recorded_.size(); ++l) {
    const PromptLayerScores& r = recorded_[l];
    Layer layer{.layer = static_cast<int>(l), .n = r.n, .window = r.window, .scores = r.scores};
    auto selection =
        SelectPromptRows(plan_, layer.layer, r.n, r.scores, config_.n_heads, config_.n_kv_heads);
    EXPECT_TRUE(selection.ok()) << selection.status();
    if (selection.ok()) layer.decision = *std::move(selection);
    EXPECT_EQ(layer.decision.propagate, r.propagate);  // what the backend propagated
    out.push_back(std::move(layer));
  }
  return out;
}

std::vector<int32_t> RandomPrompt(uint32_t seed, int n, int vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, vocab - 1);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(d(rng));
  return p;
}

}  // namespace kvserve::testing
