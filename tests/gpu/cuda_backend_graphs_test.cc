// CUDA graphs of decode steps (issue 13 item 7): a dense decode step runs as the graph captured
// for its shape, replayed for later steps of that shape with their own metadata. Against the same
// steps without graphs: the same tokens and logits within bf16 noise (a graph's decode splits are
// planned for the whole context, the eager ones for the longest cache), one capture per shape,
// and no kernel launch of a replayed step on the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

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

struct Trace {
  std::vector<std::vector<float>> logits;  // every step's rows, in batch order
  std::vector<int64_t> host_launches;      // kernel launches each step issued (emulator)
  int64_t captures = 0, replays = 0;
};

// Four sequences on `backend`: A, B, C prefilled together, three decode steps of the three (A
// and C cross a page boundary on the way), D's prompt beside their decode, two decode steps of
// all four, one of A and B alone.
Trace RunScenario(CudaBackend& backend) {
  const ModelConfig& c = backend.config();
  PagePool pool({c.n_kv_heads, kPageSize, c.head_dim}, PagePool::kUnbounded);
  const int prompt_lens[] = {15, 37, 46, 30};
  std::vector<std::unique_ptr<SequenceKvCache>> kv;
  std::vector<std::vector<int32_t>> tokens;
  for (int i = 0; i < 4; ++i) {
    kv.push_back(std::make_unique<SequenceKvCache>(pool, c.n_layers));
    std::vector<int32_t> t(prompt_lens[i]);
    for (size_t j = 0; j < t.size(); ++j) {
      t[j] = static_cast<int32_t>((j * 7919 + 31 * i + 5) % c.vocab_size);
    }
    tokens.push_back(std::move(t));
  }
  std::vector<int> fed(4, 0);  // tokens of each sequence already in its cache
  // Each step: which sequences run (a sequence not yet prefilled runs its prompt).
  const std::vector<std::vector<int>> steps = {{0, 1, 2},    {0, 1, 2},    {0, 1, 2},    {0, 1, 2},
                                               {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1}};
  Trace trace;
  for (const std::vector<int>& seqs : steps) {
    std::vector<SequenceChunk> batch;
    std::vector<std::vector<int32_t>> positions(seqs.size());
    for (size_t k = 0; k < seqs.size(); ++k) {
      const int i = seqs[k];
      const int n = static_cast<int>(tokens[i].size()) - fed[i];
      positions[k] = Positions(fed[i], n);
      batch.push_back({.tokens = std::span(tokens[i]).subspan(fed[i], n),
                       .positions = positions[k],
                       .kv = kv[i].get(),
                       .kind = fed[i] == 0 ? ChunkKind::kPrompt : ChunkKind::kDecode});
    }
    std::vector<float> logits;
    const uint64_t before = HostLaunches();
    const absl::Status s = backend.Forward(batch, &logits);
    trace.host_launches.push_back(static_cast<int64_t>(HostLaunches() - before));
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) break;
    for (size_t k = 0; k < seqs.size(); ++k) {
      const int i = seqs[k];
      fed[i] = static_cast<int>(tokens[i].size());
      tokens[i].push_back(ArgMax(std::span(logits).subspan(k * c.vocab_size, c.vocab_size)));
    }
    trace.logits.push_back(std::move(logits));
  }
  trace.captures = backend.graph_captures();
  trace.replays = backend.graph_replays();
  return trace;
}

TEST_F(CudaBackendGraphsTest, DecodeStepsReplayTheirShapesGraphAsEagerStepsRunThem) {
  Trace traces[2];
  for (const bool graphs : {true, false}) {
    auto backend = CudaBackend::CreateSynthetic(
        "smollm2-135m", 42, {.gpu_memory_fraction = kTestGpuMemoryFraction, .cuda_graphs = graphs});
    ASSERT_TRUE(backend.ok()) << backend.status();
    traces[graphs ? 0 : 1] = RunScenario(**backend);
  }
  const Trace& graphed = traces[0];
  const Trace& eager = traces[1];
  ASSERT_EQ(graphed.logits.size(), eager.logits.size());
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
    float scale = 0.0f;
    for (float v : eager.logits[step]) scale = std::max(scale, std::abs(v));
    EXPECT_LE(MaxAbsDifference(graphed.logits[step], eager.logits[step]), 0.02f * scale)
        << "step " << step;
  }
}

}  // namespace
}  // namespace kvserve::testing
