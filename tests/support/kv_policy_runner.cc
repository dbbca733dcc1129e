#include "tests/support/kv_policy_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"

namespace kvserve::testing {

PolicyRun RunGreedy(Backend& backend, std::span<const int32_t> prompt, KvPolicy* policy, int steps,
                    int page_size) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, page_size, c.head_dim}, PagePool::kUnbounded);
  SequenceKvCache kv(pool, c.n_layers);
  PolicyRun run;
  std::vector<int32_t> positions(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) positions[i] = static_cast<int32_t>(i);
  SequenceChunk chunk{.tokens = prompt,
                      .positions = positions,
                      .kv = &kv,
                      .compute_logits = true,
                      .policy = policy,
                      .whole_prompt = true};
  std::vector<float> logits;
  int32_t token = 0;
  for (int step = 0; step < steps; ++step) {
    const absl::Status s = backend.Forward(std::span(&chunk, 1), &logits);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
    if (step == 0) {
      for (int l = 0; l < c.n_layers; ++l) run.kept_after_prefill.push_back(kv.length(l));
    }
    token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    run.tokens.push_back(token);
    run.logits.push_back(logits);
    positions.assign(1, static_cast<int32_t>(prompt.size()) + step);
    chunk = {.tokens = std::span(&token, 1), .positions = positions, .kv = &kv, .policy = policy};
  }
  if (policy != nullptr) run.stats = policy->Stats(kv);
  return run;
}

KvPolicy::LayerDecision RecordingPolicy::OnPromptLayer(int layer, int n,
                                                       std::span<const float> window_scores) {
  Layer record{.layer = layer,
               .n = n,
               .window = inner_.ScoreWindow(layer, n),
               .scores = {window_scores.begin(), window_scores.end()}};
  record.decision = inner_.OnPromptLayer(layer, n, window_scores);
  layers_.push_back(record);
  return record.decision;
}

std::vector<int32_t> RandomPrompt(uint32_t seed, int n, int vocab) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, vocab - 1);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(d(rng));
  return p;
}

}  // namespace kvserve::testing
