// CUDA graphs of decode steps (issue 13 item 7): a decode step runs as the graph captured for its
// shape, replayed for later steps of that shape with their own metadata. Against the same steps
// without graphs: the same tokens and logits within bf16 noise (a graph's dense decode splits are
// planned for the whole context, the eager ones for the longest cache), one capture per shape,
// and no kernel launch of a replayed step on the host. Tiered (quest/freekv) steps too: their
// logits and recall counts equal the eager steps' exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "engine/kv/kv_policy.h"
#include "engine/kv/page_pool.h"
#include "engine/kv/sequence_kv_cache.h"
#include "tests/gpu/cuda_backend_fixture.h"

namespace kvserve::testing {
namespace {

using CudaBackendGraphsTest = kernels::testing::GpuTest;

constexpr int kPageSize = 16;

// Kernel launches the host issued so far: the emulator counts them; a GPU run does not check.
uint64_t HostLaunches() {
#if defined(KVSERVE_CUDA_EMULATOR)
  return cuda_emulator::LaunchCount();
#else
  return 0;
#endif
}

// Sequences on one backend, each with its prompt and KV policy (none: full), run step by step:
// each step names the sequences that run (one not yet prefilled runs its prompt). Next tokens are
// greedy, or forced so that two backends whose logits differ still feed the same ones.
struct Scenario {
  std::vector<int> prompt_lens;
  std::vector<KvPolicyOptions> policies;  // empty: every sequence full, without a policy
  std::vector<std::vector<int>> steps;
  bool forced = false;
};

struct Trace {
  std::vector<std::vector<float>> logits;  // every step's rows, in batch order
  std::vector<int64_t> host_launches;      // kernel launches each step issued (emulator)
  std::vector<KvStats> stats;              // per sequence with a policy, at the end
  int64_t captures = 0, replays = 0;
  int state_rows_after = -1;  // tiered device rows held once the policies are gone
};

Trace RunScenario(CudaBackend& backend, const Scenario& sc) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, kPageSize, c.head_dim}, PagePool::kUnbounded);
  const size_t n = sc.prompt_lens.size();
  std::vector<std::unique_ptr<SequenceKvCache>> kv;
  std::vector<std::unique_ptr<KvPolicy>> policies(n);
  std::vector<PromptCompressionPlan> plans(n);
  std::vector<std::vector<int32_t>> tokens;
  for (size_t i = 0; i < n; ++i) {
    kv.push_back(std::make_unique<SequenceKvCache>(pool, c.n_layers));
    if (!sc.policies.empty()) {
      auto policy = CreateKvPolicy(sc.policies[i], c);
      EXPECT_TRUE(policy.ok()) << policy.status();
      if (!policy.ok()) return {};
      policies[i] = *std::move(policy);
      plans[i] = policies[i]->PlanPrompt(sc.prompt_lens[i]);
    }
    std::vector<int32_t> t(sc.prompt_lens[i]);
    for (size_t j = 0; j < t.size(); ++j) {
      t[j] = static_cast<int32_t>((j * 7919 + 31 * i + 5) % c.vocab_size);
    }
    tokens.push_back(std::move(t));
  }
  std::vector<int> fed(n, 0);  // tokens of each sequence already in its cache
  Trace trace;
  for (size_t step = 0; step < sc.steps.size(); ++step) {
    const std::vector<int>& seqs = sc.steps[step];
    std::vector<SequenceChunk> batch;
    std::vector<std::vector<int32_t>> positions(seqs.size());
    for (size_t k = 0; k < seqs.size(); ++k) {
      const int i = seqs[k];
      const int len = static_cast<int>(tokens[i].size()) - fed[i];
      positions[k] = Positions(fed[i], len);
      const bool prompt = fed[i] == 0;
      batch.push_back({.tokens = std::span(tokens[i]).subspan(fed[i], len),
                       .positions = positions[k],
                       .kv = kv[i].get(),
                       .policy = policies[i].get(),
                       .whole_prompt = prompt,
                       .compression = prompt && policies[i] != nullptr ? &plans[i] : nullptr,
                       .kind = prompt ? ChunkKind::kPrompt : ChunkKind::kDecode});
    }
    std::vector<float> logits;
    const uint64_t before = HostLaunches();
    const absl::Status s = backend.Forward(batch, &logits);
    trace.host_launches.push_back(static_cast<int64_t>(HostLaunches() - before));
    EXPECT_TRUE(s.ok()) << "step " << step << ": " << s;
    if (!s.ok()) break;
    for (size_t k = 0; k < seqs.size(); ++k) {
      const int i = seqs[k];
      fed[i] = static_cast<int>(tokens[i].size());
      tokens[i].push_back(sc.forced
                              ? static_cast<int32_t>((step * 389 + i * 53 + 11) % c.vocab_size)
                              : ArgMax(std::span(logits).subspan(k * c.vocab_size, c.vocab_size)));
    }
    trace.logits.push_back(std::move(logits));
  }
  for (size_t i = 0; i < n; ++i) {
    if (policies[i] != nullptr) trace.stats.push_back(policies[i]->Stats(*kv[i]));
  }
  trace.captures = backend.graph_captures();
  trace.replays = backend.graph_replays();
  policies.clear();  // their device state goes back to the backend's pools
  trace.state_rows_after = backend.tiered_state_rows();
  return trace;
}

// The scenario on two fresh backends of synthetic SmolLM2 weights: with graphs, then without.
std::pair<Trace, Trace> GraphedAndEager(uint64_t seed, const Scenario& sc) {
  Trace traces[2];
  for (const bool graphs : {true, false}) {
    auto backend = CudaBackend::CreateSynthetic(
        "smollm2-135m", seed,
        {.gpu_memory_fraction = kTestGpuMemoryFraction, .cuda_graphs = graphs});
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return {};
    traces[graphs ? 0 : 1] = RunScenario(**backend, sc);
  }
  return {std::move(traces[0]), std::move(traces[1])};
}

// Max |graphed - eager| of a step's row, and the eager row's largest |logit|.
std::pair<float, float> RowDifference(const Trace& graphed, const Trace& eager, size_t step,
                                      size_t row, int vocab) {
  const auto g = std::span(graphed.logits[step]).subspan(row * vocab, vocab);
  const auto e = std::span(eager.logits[step]).subspan(row * vocab, vocab);
  float diff = 0.0f, scale = 0.0f;
  for (int v = 0; v < vocab; ++v) {
    diff = std::max(diff, std::abs(g[v] - e[v]));
    scale = std::max(scale, std::abs(e[v]));
  }
  return {diff, scale};
}

constexpr int kVocab = 49152;  // smollm2-135m

// Four sequences, no policy: A, B, C prefilled together, three decode steps of the three (A and C
// cross a page boundary on the way), D's prompt beside their decode, two decode steps of all
// four, one of A and B alone.
TEST_F(CudaBackendGraphsTest, DecodeStepsReplayTheirShapesGraphAsEagerStepsRunThem) {
  const Scenario sc{.prompt_lens = {15, 37, 46, 30},
                    .steps = {{0, 1, 2},
                              {0, 1, 2},
                              {0, 1, 2},
                              {0, 1, 2},
                              {0, 1, 2, 3},
                              {0, 1, 2, 3},
                              {0, 1, 2, 3},
                              {0, 1}}};
  const auto [graphed, eager] = GraphedAndEager(42, sc);
  ASSERT_EQ(graphed.logits.size(), sc.steps.size());
  ASSERT_EQ(eager.logits.size(), sc.steps.size());
  // Decode of three: captured at step 1, replayed at 2 and 3; of four at 5, replayed at 6; of two
  // at 7. Prompts run eagerly.
  EXPECT_EQ(graphed.captures, 3);
  EXPECT_EQ(graphed.replays, 3);
  EXPECT_EQ(eager.captures + eager.replays, 0);
#if defined(KVSERVE_CUDA_EMULATOR)
  for (int step : {2, 3, 6}) {
    EXPECT_EQ(graphed.host_launches[step], 0) << "step " << step;
    EXPECT_GT(eager.host_launches[step], 100) << "step " << step;
  }
#endif
  for (size_t step = 0; step < eager.logits.size(); ++step) {
    ASSERT_EQ(graphed.logits[step].size(), eager.logits[step].size());
    for (size_t row = 0; row < sc.steps[step].size(); ++row) {
      const auto [diff, scale] = RowDifference(graphed, eager, step, row, kVocab);
      EXPECT_LE(diff, 0.02f * scale) << "step " << step << " row " << row;
    }
  }
}

TieredOptions SmallBudget() {
  return {.budget = 6 * kPageSize, .page_size = kPageSize, .sink = kPageSize, .recent = 32};
}

// Five sequences, each with its policy: A freekv (tau 0.8), B quest, C freekv that never corrects,
// D fastkv (dense decode over its compressed cache), E freekv. A-D prefill together (prompts of
// 6-10 pages over a budget of 6 pages: sparse from the first decode), decode three steps, E's
// prompt runs beside their fourth, then all five decode six steps. Tokens are forced.
TEST_F(CudaBackendGraphsTest, TieredDecodeStepsReplayAsGraphsWithTheEagerStepsResults) {
  Scenario sc{.prompt_lens = {120, 150, 100, 100, 110},
              .policies = {FreeKvOptions{SmallBudget(), 0.8f}, QuestOptions{SmallBudget()},
                           FreeKvOptions{SmallBudget(), 0.0f}, FastKvOptions{},
                           FreeKvOptions{SmallBudget(), 0.8f}},
              .steps = std::vector<std::vector<int>>(4, {0, 1, 2, 3}),
              .forced = true};
  for (int k = 0; k < 7; ++k) sc.steps.push_back({0, 1, 2, 3, 4});
  const auto [graphed, eager] = GraphedAndEager(7, sc);
  ASSERT_EQ(graphed.logits.size(), 11u);
  ASSERT_EQ(eager.logits.size(), 11u);
  // Every decode step runs as a graph: steps 1-3 of four sequences, 5-10 of five. Step parity
  // alternates the lists' buffers, so each shape is captured twice (1, 2; 5, 6) before it replays.
  EXPECT_EQ(graphed.captures, 4);
  EXPECT_EQ(graphed.replays, 5);
  EXPECT_EQ(eager.captures + eager.replays, 0);
#if defined(KVSERVE_CUDA_EMULATOR)
  int replayed_steps = 0;
  for (size_t step = 1; step < graphed.host_launches.size(); ++step) {
    if (step == 4) continue;  // E's prompt: eager
    if (graphed.host_launches[step] == 0) ++replayed_steps;
    EXPECT_GT(eager.host_launches[step], 100) << "step " << step;
  }
  EXPECT_EQ(replayed_steps, graphed.replays);
#endif
  for (size_t step = 0; step < eager.logits.size(); ++step) {
    ASSERT_EQ(graphed.logits[step].size(), eager.logits[step].size());
    // Row 3 is D, whose graph's decode splits differ: bf16 noise. The tiered rows run the same
    // launches with the same arguments: equal to the bit.
    for (size_t row = 0; row < sc.steps[step].size(); ++row) {
      const auto [diff, scale] = RowDifference(graphed, eager, step, row, kVocab);
      EXPECT_LE(diff, row == 3 ? 0.02f * scale : 0.0f) << "step " << step << " row " << row;
    }
  }
  ASSERT_EQ(graphed.stats.size(), 5u);
  ASSERT_EQ(eager.stats.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(graphed.stats[i].recalled_pages, eager.stats[i].recalled_pages) << i;
    EXPECT_EQ(graphed.stats[i].corrections, eager.stats[i].corrections) << i;
    EXPECT_EQ(graphed.stats[i].decode_steps, eager.stats[i].decode_steps) << i;
  }
  EXPECT_GT(graphed.stats[0].recalled_pages, 0);
  EXPECT_EQ(graphed.state_rows_after, 0);
}

}  // namespace
}  // namespace kvserve::testing
